/* Workers: one thread per core, each with its own event loop, SO_REUSEPORT
 * listeners, connections, upstream pools and timers. Nothing on the data
 * path is shared between workers except read-only configuration snapshots.
 */
#ifndef WEIR_HTTP_WORKER_H
#define WEIR_HTTP_WORKER_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core/loop.h"
#include "http/snapshot.h"

typedef struct weir_worker weir_worker_t;
typedef struct weir_pool weir_pool_t;

/* A worker's view of one snapshot: per-worker mutable state that belongs
 * with it (load-balancer positions, pool pointers per server). Requests hold
 * a local, non-atomic reference; the view drops its snapshot reference when
 * it is retired and its last request has finished. */
typedef struct weir_view {
    weir_snapshot_t *snap;
    weir_worker_t *worker;
    int local_refs;
    int retired;
    int *wrr;            /* current weights, snap->wrr_total entries */
    weir_pool_t **pools; /* per server id, looked up lazily */
    struct weir_view *next_retired;
} weir_view_t;

typedef struct {
    weir_io_t io;
    weir_worker_t *worker;
    int ep; /* entry point index */
    int paused;
    weir_timer_t resume; /* after EMFILE: accept again later */
} weir_listener_t;

/* Process-wide state shared by workers and the control thread. */
typedef struct {
    pthread_mutex_t mu;
    weir_snapshot_t *current; /* guarded by mu */
    atomic_int draining;
    int num_workers;
    weir_worker_t **workers;
    int access_fd;   /* -1: access log off */
    int access_json;
    int access_buffering; /* lines */
    int64_t grace_ms; /* set before draining starts */
    char hostname[256];
} weir_server_t;

extern weir_server_t weir_server;

struct weir_worker {
    int id;
    pthread_t thread;
    weir_loop_t *loop;
    weir_listener_t *listeners;
    int num_listeners;
    weir_view_t *view;
    weir_view_t *retired;
    atomic_int switch_pending;
    int draining;
    int64_t drain_deadline_ms;
    int num_conns;        /* client connections */
    struct weir_conn *conns; /* list of client connections (for draining) */
    /* upstream pools, keyed by server URL and transport */
    weir_pool_t **pool_tab;
    size_t pool_cap, pool_count;
    /* access log lines waiting for a write */
    char *alog;
    size_t alog_len, alog_cap;
    int alog_lines;
    int64_t alog_flushed_ms;
    /* free lists */
    struct weir_req *free_reqs;
    int num_free_reqs;
    struct weir_quic_worker *quic; /* HTTP/3: UDP sockets and QUIC connections */
    struct weir_udp_worker *udp;   /* UDP routers: entry point sockets and flows */
    int done;
};

/* Creates and binds the listeners of every worker; returns 0 or -1 after
 * logging which address failed. */
int weir_workers_start(weir_snapshot_t *snap, int nworkers);

/* Publishes a new snapshot (takes the caller's reference). */
void weir_workers_publish(weir_snapshot_t *snap);

/* Starts a graceful drain on every worker and waits for them to finish. */
void weir_workers_drain_and_join(int64_t grace_ms);

/* Worker-side helpers used by the HTTP code. */
weir_view_t *weir_worker_view_acquire(weir_worker_t *w);
void weir_worker_view_release(weir_view_t *v);

#endif
