/* Worker threads: listeners, accept, snapshot switching, graceful drain. */
#include "http/worker.h"

#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "h2/h2_mem.h"
#include "http/conn.h"
#include "l4/l4.h"
#include "quic/quic.h"
#include "upstream/upstream.h"

weir_server_t weir_server = {.mu = PTHREAD_MUTEX_INITIALIZER, .access_fd = -1};

/* ---- views ---- */

static weir_view_t *view_new(weir_worker_t *w, weir_snapshot_t *snap)
{
    weir_view_t *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->snap = snap;
    v->worker = w;
    v->wrr = calloc((size_t)snap->wrr_total + 1, sizeof *v->wrr);
    v->pools = calloc((size_t)snap->num_servers + 1, sizeof *v->pools);
    if (!v->wrr || !v->pools) {
        free(v->wrr);
        free(v->pools);
        free(v);
        return NULL;
    }
    return v;
}

static void view_free(weir_view_t *v)
{
    weir_snapshot_unref(v->snap);
    free(v->wrr);
    free(v->pools);
    free(v);
}

weir_view_t *weir_worker_view_acquire(weir_worker_t *w)
{
    w->view->local_refs++;
    return w->view;
}

void weir_worker_view_release(weir_view_t *v)
{
    if (--v->local_refs == 0 && v->retired) {
        weir_worker_t *w = v->worker;
        weir_view_t **pp = &w->retired;
        while (*pp && *pp != v)
            pp = &(*pp)->next_retired;
        if (*pp)
            *pp = v->next_retired;
        view_free(v);
    }
}

static void adopt_snapshot(weir_worker_t *w)
{
    pthread_mutex_lock(&weir_server.mu);
    weir_snapshot_t *snap = weir_server.current;
    weir_snapshot_ref(snap);
    pthread_mutex_unlock(&weir_server.mu);
    if (w->view && w->view->snap == snap) {
        weir_snapshot_unref(snap);
        return;
    }
    weir_view_t *v = view_new(w, snap);
    if (!v) {
        weir_snapshot_unref(snap);
        return; /* keep serving the old view */
    }
    weir_view_t *old = w->view;
    w->view = v;
    if (old) {
        if (old->local_refs == 0) {
            view_free(old);
        } else {
            old->retired = 1;
            old->next_retired = w->retired;
            w->retired = old;
        }
    }
}

/* ---- listeners ---- */

static int open_listener(const weir_entrypoint_cfg_t *ep)
{
    int fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ep->addr.ss_family == AF_INET6) {
        /* ":8080" listens on both families, an explicit [::1] on v6 only. */
        const struct sockaddr_in6 *s6 = (const void *)&ep->addr;
        int v6only = !IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
    if (bind(fd, (const struct sockaddr *)&ep->addr, ep->addrlen) < 0 || listen(fd, 4096) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static void resume_accept(weir_timer_t *t)
{
    weir_listener_t *l = (weir_listener_t *)((char *)t - offsetof(weir_listener_t, resume));
    if (l->paused && l->io.fd >= 0) {
        l->paused = 0;
        weir_loop_add_reader(l->worker->loop, &l->io);
    }
}

static void on_accept(weir_io_t *io, unsigned events)
{
    weir_listener_t *l = (weir_listener_t *)io;
    weir_worker_t *w = l->worker;
    for (int i = 0; i < 64; i++) {
        weir_addr_t peer;
        socklen_t len = sizeof peer;
        int fd = accept4(io->fd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if ((errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) &&
                !l->paused) {
                /* Out of descriptors: the listener stays readable, so stop
                 * watching it for a moment instead of spinning on it. */
                weir_warn("accept on entry point %s: %s; pausing accepts for 100 ms",
                          w->view->snap->cfg->entrypoints[l->ep].name, strerror(errno));
                weir_loop_del(w->loop, io);
                l->paused = 1;
                weir_timer_set(w->loop, &l->resume, 100, resume_accept);
            }
            return;
        }
        weir_conn_accept(w, fd, &peer.sa, len, l->ep);
    }
}

static void close_listeners(weir_worker_t *w)
{
    for (int i = 0; i < w->num_listeners; i++) {
        weir_listener_t *l = &w->listeners[i];
        if (l->io.fd < 0)
            continue;
        /* Serve what already sits in the accept queue before closing. */
        on_accept(&l->io, WEIR_EV_READ);
        weir_timer_stop(&l->resume);
        if (!l->paused)
            weir_loop_del(w->loop, &l->io);
        close(l->io.fd);
        l->io.fd = -1;
    }
}

/* ---- the worker thread ---- */

static void on_wake(void *arg)
{
    weir_worker_t *w = arg;
    weir_quic_on_wake(w);
    if (atomic_exchange(&w->switch_pending, 0)) {
        /* (the old view may be freed and its address reused: compare
         * generations) */
        uint64_t before = w->view->snap->generation;
        adopt_snapshot(w);
        if (w->view->snap->generation != before)
            weir_quic_reloaded(w);
    }
    if (atomic_load(&weir_server.draining) && !w->draining) {
        w->draining = 1;
        w->drain_deadline_ms = weir_loop_now(w->loop) + weir_server.grace_ms;
        close_listeners(w);
        weir_conns_drain(w);
        weir_quic_drain(w);
    }
}

static void *worker_main(void *arg)
{
    weir_worker_t *w = arg;
    int dirty = 0;
    while (!w->done) {
        int wait = w->draining ? 50 : (weir_server.access_buffering > 1 ? 1000 : -1);
        if (dirty && (wait < 0 || wait > 250))
            wait = 250;
        int n = weir_loop_run_once(w->loop, wait);
        if (n > 0) {
            dirty = 1;
        } else if (dirty) {
            /* Quiet for a while after a burst: give freed buffers back to
             * the system so idle connections cost only their own state. */
            weir_buf_pool_shrink(16);
#ifndef __SANITIZE_ADDRESS__
            /* (ASan has its own allocator; glibc's trim must not run there.) */
            malloc_trim(0);
#endif
            dirty = 0;
        }
        if (w->alog_len && weir_loop_now(w->loop) - w->alog_flushed_ms >= 1000) {
            /* buffered lines are written at least once a second */
            weir_accesslog_flush(w);
            w->alog_flushed_ms = weir_loop_now(w->loop);
        }
        if (w->draining) {
            weir_accesslog_flush(w);
            if (w->num_conns == 0)
                w->done = 1;
            else if (weir_loop_now(w->loop) >= w->drain_deadline_ms) {
                weir_conns_close_all(w);
                weir_quic_close_all(w);
            }
        }
    }
    weir_loop_run_once(w->loop, 0); /* deferred frees of the last connections */
    weir_quic_free(w);
    weir_udp_free(w);
    weir_loop_run_once(w->loop, 0);
    weir_accesslog_flush(w);
    weir_pools_free(w);
    while (w->free_reqs) {
        struct weir_req *r = w->free_reqs;
        w->free_reqs = r->next_free;
        free(r);
    }
    weir_buf_pool_free();
    weir_h2_mem_thread_free();
    return NULL;
}

int weir_workers_start(weir_snapshot_t *snap, int n)
{
    weir_server.current = snap;
    weir_server.num_workers = n;
    weir_server.workers = calloc((size_t)n, sizeof *weir_server.workers);
    if (!weir_server.workers)
        return -1;
    const weir_config_t *cfg = snap->cfg;
    for (int i = 0; i < n; i++) {
        weir_worker_t *w = calloc(1, sizeof *w);
        if (!w)
            return -1;
        weir_server.workers[i] = w;
        w->id = i;
        w->loop = weir_loop_new();
        w->listeners = calloc(cfg->num_entrypoints + 1, sizeof *w->listeners);
        if (!w->loop || !w->listeners)
            return -1;
        weir_loop_on_wake(w->loop, on_wake, w);
        for (size_t e = 0; e < cfg->num_entrypoints; e++) {
            const weir_entrypoint_cfg_t *ep = &cfg->entrypoints[e];
            if (ep->udp) {
                /* one worker serves UDP routers: its flow and connection ID
                 * tables follow a client whatever address it comes from */
                if (i > 0)
                    continue;
                int rc = weir_udp_listen(w, (int)e);
                if (rc < 0) {
                    weir_error("entry point %s: cannot listen on %s: %s", ep->name, ep->address,
                               strerror(-rc));
                    fprintf(stderr, "weir: entry point %s: cannot listen on %s: %s\n", ep->name,
                            ep->address, strerror(-rc));
                    return -1;
                }
                continue;
            }
            int fd = open_listener(ep);
            if (fd < 0) {
                weir_error("entry point %s: cannot listen on %s: %s", ep->name, ep->address,
                           strerror(-fd));
                fprintf(stderr, "weir: entry point %s: cannot listen on %s: %s\n", ep->name,
                        ep->address, strerror(-fd));
                return -1;
            }
            weir_listener_t *l = &w->listeners[w->num_listeners++];
            l->io.fd = fd;
            l->io.cb = on_accept;
            l->worker = w;
            l->ep = (int)e;
            weir_loop_add_reader(w->loop, &l->io);
            if (ep->http3) {
                int rc = weir_quic_listen(w, (int)e);
                if (rc < 0) {
                    weir_error("entry point %s: cannot listen on UDP %s for HTTP/3: %s", ep->name,
                               ep->address, strerror(-rc));
                    fprintf(stderr, "weir: entry point %s: cannot listen on UDP %s for HTTP/3: %s\n",
                            ep->name, ep->address, strerror(-rc));
                    return -1;
                }
            }
        }
        weir_snapshot_ref(snap);
        w->view = view_new(w, snap);
        if (!w->view)
            return -1;
    }
    for (int i = 0; i < n; i++)
        if (pthread_create(&weir_server.workers[i]->thread, NULL, worker_main,
                           weir_server.workers[i]) != 0)
            return -1;
    return 0;
}

void weir_workers_publish(weir_snapshot_t *snap)
{
    pthread_mutex_lock(&weir_server.mu);
    weir_snapshot_t *old = weir_server.current;
    weir_server.current = snap;
    pthread_mutex_unlock(&weir_server.mu);
    weir_snapshot_unref(old);
    for (int i = 0; i < weir_server.num_workers; i++) {
        atomic_store(&weir_server.workers[i]->switch_pending, 1);
        weir_loop_wake(weir_server.workers[i]->loop);
    }
}

void weir_workers_drain_and_join(int64_t grace_ms)
{
    weir_server.grace_ms = grace_ms;
    atomic_store(&weir_server.draining, 1);
    for (int i = 0; i < weir_server.num_workers; i++)
        weir_loop_wake(weir_server.workers[i]->loop);
    for (int i = 0; i < weir_server.num_workers; i++)
        pthread_join(weir_server.workers[i]->thread, NULL);
}
