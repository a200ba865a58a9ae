/* TCP routers (Traefik's tcp section): a client connection whose
 * ClientHello (SNI, ALPN) or address a TCP router matches is relayed, as
 * bytes, to a server of the router's service: TLS passthrough, or any
 * other TCP protocol for routers without tls.
 *
 * Order on an entry point shared with HTTP routers, as Traefik: a TCP
 * router with a specific HostSNI first, then the HTTPS routers that serve
 * that name, then the TCP catch-alls (HostSNI(`*`)), then whatever HTTPS
 * has (404), else the connection closes.
 *
 * The relay moves bytes with splice() through a pipe per direction (no
 * copy into user space), propagates half-close, and ends the connection a
 * terminationDelay after one side finished. A PROXY v1/v2 header goes to
 * the server first when the service's transport asks for it.
 */
#ifndef WEIR_L4_H
#define WEIR_L4_H

#include "http/conn.h"
#include "tls/clienthello.h"

/* A TLS connection whose ClientHello is in c->in: 1 when a TCP router took
 * it (c is now relayed), 0 when HTTPS should serve it, -1 when c was
 * closed (no router at all). */
int weir_l4_route_tls(weir_conn_t *c, const weir_client_hello_t *ch);
/* A plain connection (its first bytes, if any, in c->in): 1 when a TCP
 * router without tls took it, 0 when HTTP should serve it. */
int weir_l4_route_plain(weir_conn_t *c);
/* True when the entry point relays plain connections without waiting for
 * the client to speak (server-first protocols): TCP routers without tls
 * and nothing that could want TLS. */
bool weir_l4_immediate(const weir_conn_t *c);
/* Readiness of the client socket of a relayed connection. */
void weir_l4_on_io(weir_conn_t *c);
/* The client connection closes: the server side goes too. */
void weir_l4_close(weir_conn_t *c);

/* The next server of a TCP or UDP service (round robin; weighted services
 * by weight); *owner is the load balancer it belongs to. NULL: none. */
const weir_tcp_server_cfg_t *weir_l4_pick(weir_tcp_service_rt_t *s,
                                          const weir_tcp_service_rt_t **owner);

/* ---- UDP routers (udp_proxy.c) ----
 * Every worker binds the UDP entry points (SO_REUSEPORT keeps a client's
 * flow on one worker). Each client address gets its own connected socket
 * toward the server its first datagram picked, so replies find their way
 * back; a flow idle for the entry point's udp.timeout is closed. */
int weir_udp_listen(weir_worker_t *w, int ep);
void weir_udp_free(weir_worker_t *w);

#endif
