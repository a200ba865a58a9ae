/* QUIC server side (ngtcp2 0.12 + its GnuTLS crypto helper): the UDP
 * sockets of the entry points with http3, connection IDs, address
 * validation (Retry, NEW_TOKEN), version negotiation, stateless reset,
 * timers, and packet I/O in batches (recvmmsg in, UDP GSO out).
 *
 * Every worker binds its own SO_REUSEPORT socket per entry point, so the
 * kernel keeps a client's 4-tuple on one worker. Server connection IDs
 * carry the owning worker's id in their first byte: a packet that reaches
 * another worker (the client migrated, or its NAT rebound) is handed to
 * the owner through its inbox.
 *
 * The TLS session of a connection is created only once its ClientHello
 * is complete (it may span several Initial packets): the certificate and
 * the TLS options are chosen by SNI up front, as on TCP.
 */
#ifndef WEIR_QUIC_H
#define WEIR_QUIC_H

#include "http/worker.h"

/* Process-wide: the secret that keys tokens and stateless resets. */
int weir_quic_global_init(void);

/* Opens worker w's UDP socket for entry point index ep (called before the
 * worker thread starts). Returns 0 or -errno. */
int weir_quic_listen(weir_worker_t *w, int ep);
/* On the worker's thread: packets other workers handed over. */
void weir_quic_on_wake(weir_worker_t *w);
/* A new configuration is serving: existing connections get GOAWAY and
 * close once their requests are done (clients reconnect to the new one). */
void weir_quic_reloaded(weir_worker_t *w);
/* Graceful shutdown: GOAWAY, no new connections; connections close when
 * their streams are done. */
void weir_quic_drain(weir_worker_t *w);
/* End of the grace period: closes every connection now. */
void weir_quic_close_all(weir_worker_t *w);
/* At worker exit: sockets and tables. */
void weir_quic_free(weir_worker_t *w);

#endif
