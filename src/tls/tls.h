/* TLS (GnuTLS): the certificate store of a configuration, SNI selection,
 * TLS options turned into GnuTLS priorities, client authentication,
 * session tickets, and the per-connection record layer.
 *
 * A weir_tls_ctx is built from a loaded configuration on the control
 * thread (start and reload) and is immutable afterwards; snapshots hold a
 * reference, workers create sessions from it. Building it reads every
 * certificate, key and CA file the configuration names: a bad one is an
 * error naming the file and the key that names it, and the caller keeps the
 * previous context serving.
 */
#ifndef WEIR_TLS_H
#define WEIR_TLS_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/slice.h"
#include "tls/clienthello.h"

typedef struct weir_tls_ctx weir_tls_ctx_t;
typedef struct weir_tls_cert weir_tls_cert_t;

/* Process-wide set-up, once, before any other call: gnutls_global_init and
 * the session-ticket master key. The key is shared by every worker (so a
 * ticket issued by one worker resumes on another); GnuTLS derives the
 * encryption key from it per time window, so ticket keys rotate. Returns 0
 * or -1. */
int weir_tls_global_init(void);
void weir_tls_global_deinit(void);

/* Builds the TLS context of cfg: every tls.certificates entry (certFile and
 * keyFile are paths, or inline PEM as Traefik accepts), the stores' default
 * certificates, each tls.options entry (priority string, ALPN list, trust
 * list from clientAuth.caFiles). When no default certificate is configured,
 * prev's generated one is reused (it stays the same across reloads), or
 * a self-signed ECDSA P-256 certificate "TRAEFIK DEFAULT CERT" is generated
 * (as Traefik does). On failure returns NULL and appends errors to errs at
 * the position of the key that names the bad file ("tls.certificates[0].certFile:
 * cannot load certificate /x/y.pem: <reason>"). */
weir_tls_ctx_t *weir_tls_ctx_build(const weir_config_t *cfg, const weir_tls_ctx_t *prev,
                                   weir_config_errors_t *errs);
void weir_tls_ctx_ref(weir_tls_ctx_t *ctx);
void weir_tls_ctx_unref(weir_tls_ctx_t *ctx);

/* The certificate for a server name (lower-case, no trailing dot; may be
 * empty): exact match on a certificate's DNS SANs (or CN when it has none),
 * then a wildcard SAN ("*.example.com" covers exactly one label), then NULL.
 * Certificates of the "default" store only. */
const weir_tls_cert_t *weir_tls_ctx_find_cert(const weir_tls_ctx_t *ctx, weir_slice_t sni);
/* The default store's default certificate (configured or generated). */
const weir_tls_cert_t *weir_tls_ctx_default_cert(const weir_tls_ctx_t *ctx);

/* Which tls.options a server name uses (index into cfg->tls_options): the
 * routers with TLS map their hosts (tls.domains, else every Host(`...`)
 * of the rule) to their options; exact names first, then wildcard
 * domains; a host claimed by routers with different options, and any name
 * not claimed, uses "default" (0). The map covers every entry point (as
 * Traefik's). */
int weir_tls_ctx_options_for(const weir_tls_ctx_t *ctx, weir_slice_t name);

/* The TLS options index and the certificate (*cert; NULL: the default)
 * for a ClientHello's server name (lower-cased, trailing dot dropped). */
int weir_tls_pick(const weir_tls_ctx_t *ctx, const weir_client_hello_t *ch,
                  const weir_tls_cert_t **cert);

/* Starts a server session on fd for options index opt and certificate cert
 * (NULL: the default certificate): priorities, credentials, ALPN (the
 * options' alpnProtocols when alpn; else none is negotiated),
 * session tickets (unless disabled), client certificate request and
 * verification per clientAuthType. The session refuses the handshake when
 * opt has sniStrict and cert is NULL. Returns 0 and *out, or -1. */
int weir_tls_session_new(const weir_tls_ctx_t *ctx, int opt, const weir_tls_cert_t *cert,
                         bool alpn, gnutls_session_t *out);

/* A server session for a QUIC connection (RFC 9001) under options opt and
 * certificate cert (NULL: the default one): TLS 1.3 only, ALPN h3 only,
 * tickets sent by the caller after the handshake, early data (0-RTT)
 * accepted when early_data, with process-wide anti-replay. The session's
 * user pointer is left to the QUIC crypto helper. Returns 0 and *out, or
 * -1 (also when the options allow no TLS 1.3, or sniStrict refuses). */
int weir_tls_quic_session_new(const weir_tls_ctx_t *ctx, int opt, const weir_tls_cert_t *cert,
                              bool early_data, gnutls_session_t *out);

/* A client session to an https:// server through serversTransport number
 * transport (index into cfg->transports): SNI and the verified name are the
 * transport's serverName, else host (no SNI for an IP address);
 * insecureSkipVerify skips verification; rootCAs (else the system's trust
 * store) and the client certificate come from the transport. ALPN offers
 * h2 then http/1.1 (offer_h2), or http/1.1 alone. Returns 0 and *out, or -1. */
int weir_tls_client_session_new(const weir_tls_ctx_t *ctx, int transport, const char *host,
                                bool offer_h2, gnutls_session_t *out);
/* The same toward a TCP server (tcp.serversTransports number transport,
 * its tls section): no ALPN is offered (the bytes relayed are the client's,
 * whatever protocol they are). */
int weir_tls_tcp_client_session_new(const weir_tls_ctx_t *ctx, int transport, const char *host,
                                    gnutls_session_t *out);

/* ---- per-connection record layer (tls_io.c) ----
 *
 * GnuTLS writes through a push function that never blocks: what the socket
 * does not take is kept in out and written first when the socket drains.
 * Reads pull straight from the socket. */
typedef struct weir_tls_io {
    gnutls_session_t s;
    weir_tls_ctx_t *ctx;    /* a reference held for the session's credentials (may be NULL) */
    int fd;
    weir_buf_t out;         /* record bytes the socket did not take yet */
    weir_buf_t pre;         /* bytes read before the session existed (the
                             * ClientHello peeked at): pulled first */
    uint8_t rd_again : 1;   /* the last pull hit EAGAIN */
    uint8_t wr_full : 1;    /* the last push could not write everything */
    uint8_t handshaken : 1; /* handshake completed */
    uint8_t failed : 1;     /* a fatal error happened: close */
} weir_tls_io_t;

/* Binds a new session of ctx to fd (taking a reference on ctx); the bytes
 * of pre (already read from fd) are moved into the session's input first
 * (pre is left empty). */
void weir_tls_io_init(weir_tls_io_t *t, weir_tls_ctx_t *ctx, gnutls_session_t s, int fd,
                      weir_buf_t *pre);
/* Frees the session and drops the context reference. */
void weir_tls_io_free(weir_tls_io_t *t);
/* Drives the handshake: 1 done, 0 waiting for the socket, -1 failed. */
int weir_tls_io_handshake(weir_tls_io_t *t);
/* Reads decrypted bytes: > 0, 0 at a close_notify or EOF, -1 with errno
 * EAGAIN (nothing now) or EIO/ECONNRESET (fatal). */
ssize_t weir_tls_io_read(weir_tls_io_t *t, void *buf, size_t cap);
/* Encrypts and queues bytes from iov. Returns bytes taken (0 when earlier
 * records are still waiting for the socket), or -1 on a fatal error. */
ssize_t weir_tls_io_writev(weir_tls_io_t *t, const struct iovec *iov, int iovcnt);
/* Writes queued records: 1 when none are left, 0 when the socket is full,
 * -1 on error. */
int weir_tls_io_flush(weir_tls_io_t *t);
/* The ALPN protocol the handshake chose ("h2", "http/1.1"), empty if none. */
weir_slice_t weir_tls_io_alpn(const weir_tls_io_t *t);
/* Whether the session was resumed. */
bool weir_tls_io_resumed(const weir_tls_io_t *t);
/* Sends close_notify (best effort, non-blocking). */
void weir_tls_io_bye(weir_tls_io_t *t);

#endif
