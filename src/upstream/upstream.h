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
};

struct weir_pool {
    char *key;
    weir_worker_t *worker;
    weir_upconn_t *idle;
    int num_idle;
    int num_total;
};

/* Picks a server of service s by smooth weighted round-robin (weighted
 * services recurse into their children). Returns a snapshot server id or -1
 * when the service has no server with a positive weight. */
int weir_lb_pick(weir_view_t *v, const weir_service_rt_t *s);

/* Pool of server id in view v (created on first use). */
weir_pool_t *weir_pool_of(weir_view_t *v, int server);

/* Frees every pool and idle connection of a worker (shutdown). */
void weir_pools_free(weir_worker_t *w);

#endif
