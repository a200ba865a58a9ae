/* Upstream connections (HTTP/1.1 client side), keep-alive pools and load
 * balancing. One pool per server URL and transport per worker; pools
 * outlive configuration snapshots, so a reload that keeps a server keeps
 * its warm connections. */
#ifndef WEIR_UPSTREAM_H
#define WEIR_UPSTREAM_H

#include "http/conn.h"

typedef enum { UP_CONNECTING, UP_HANDSHAKE, UP_BUSY, UP_IDLE } weir_upstate_t;

struct weir_upconn {
    weir_io_t io;
    weir_timer_t timer;
    weir_pool_t *pool;
    weir_req_t *req;
    weir_buf_t in;
    weir_upconn_t *next, *prev; /* pool's idle list */
    struct weir_tls_io *tls;    /* https:// servers; NULL otherwise */
    uint8_t state;
    uint8_t rd_ready : 1, wr_ready : 1, rd_eof : 1, reused : 1, closed : 1, got_bytes : 1, hup : 1;
    uint8_t offered_h2 : 1; /* ALPN offered h2 (https:// servers) */
};

/* What an https:// server answered to ALPN on this pool's last handshake. */
enum { POOL_PROTO_UNKNOWN, POOL_PROTO_H1, POOL_PROTO_H2 };

struct weir_pool {
    char *key;
    weir_worker_t *worker;
    weir_upconn_t *idle;
    int num_idle;
    int num_total;
    struct weir_h2up *h2; /* HTTP/2 connections (h2c://, or https:// that chose h2) */
    uint8_t proto;        /* POOL_PROTO_* (https:// servers) */
    uint32_t h2_max_streams; /* the backend's last SETTINGS_MAX_CONCURRENT_STREAMS (0: none yet) */
};

/* Picks a server of service s by smooth weighted round-robin (weighted
 * services recurse into their children). Returns a snapshot server id or -1
 * when the service has no server with a positive weight. */
int weir_lb_pick(weir_view_t *v, const weir_service_rt_t *s);

/* Pool of server id in view v (created on first use). */
weir_pool_t *weir_pool_of(weir_view_t *v, int server);

/* Frees every pool and idle connection of a worker (shutdown). */
void weir_pools_free(weir_worker_t *w);

/* The forwarding timeouts of the request's server (its service's
 * serversTransport, else the defaults). */
const weir_forwarding_timeouts_t *weir_timeouts_of(const weir_req_t *r);

/* ---- HTTP/2 to backends (h2_up.c) ----
 * Requests multiplex as streams over few connections per pool; a
 * connection takes new streams while it has fewer than the backend's
 * SETTINGS_MAX_CONCURRENT_STREAMS and has not sent GOAWAY. */

/* Sends r (server and upstream head chosen) as a stream on one of pool's
 * HTTP/2 connections, dialing one when none has room. Returns 0, or -1
 * (nothing was started: the caller answers 502). */
int weir_h2up_start(weir_req_t *r, weir_pool_t *pool);
/* Takes over an https:// connection whose handshake chose h2, with its
 * request as the first stream. Returns 0, or -1 (u is untouched). */
int weir_h2up_adopt(weir_upconn_t *u);
/* True when one of pool's HTTP/2 connections is up and can take a stream. */
bool weir_h2up_pool_has_room(const weir_pool_t *pool);
void weir_h2up_resume(weir_req_t *r);
void weir_h2up_abort(weir_req_t *r);
/* Closes every HTTP/2 connection of a pool (worker shutdown). */
void weir_h2up_pool_free(weir_pool_t *pool);

/* Shared by both upstream protocols (proxy.c). */
void weir_up_detach(weir_upconn_t *u); /* forgets u without closing its fd or TLS */
/* Writes to a backend socket, through its TLS session when tls is set:
 * bytes taken (0 when nothing could go), or -1 on an error; *full is set
 * when the socket (or the TLS queue) is full. */
ssize_t weir_up_write(int fd, struct weir_tls_io *tls, const void *p, size_t n, bool *full);
/* A non-blocking socket connecting to srv (TCP_NODELAY), or -1. */
int weir_up_connect(const weir_server_cfg_t *srv);
/* Sends r (server picked, head built) by the protocol its server takes:
 * after a replay too. Returns 0, or -1 (nothing started). */
int weir_proxy_redispatch(weir_req_t *r);
/* Whole-process count of one more backend connection closed for a missing
 * PING ACK, per server URL; returns the new count. */
unsigned long weir_up_count_ping_close(const char *url);

#endif
