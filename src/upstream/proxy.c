/* The proxy path for HTTP/1.1 upstreams: pick a server, take or dial a
 * connection, send the rewritten head, stream the request body, parse the
 * response head, stream the response body back, return the connection to
 * its pool. One pump function moves bytes in both directions; every event
 * on either socket calls it, and it stops where a socket is full or empty
 * (backpressure: nothing is read that cannot be written). */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "tls/tls.h"
#include "upstream/upstream.h"

#define MAX_RESP_HEAD (64 * 1024)

static void pump(weir_req_t *r);
static void up_on_io(weir_io_t *io, unsigned events);
static void up_close(weir_upconn_t *u);

const weir_forwarding_timeouts_t *weir_timeouts_of(const weir_req_t *r)
{
    static const weir_forwarding_timeouts_t defaults = {30000, 0, 90000, 0, 15000};
    const weir_service_rt_t *s = r->view->snap->server_service[r->server];
    return s->transport ? &s->transport->timeouts : &defaults;
}

/* ---- upstream connection lifecycle ---- */

static void up_free(void *arg)
{
    free(arg);
}

void weir_up_detach(weir_upconn_t *u)
{
    weir_worker_t *w = u->pool->worker;
    u->closed = 1;
    if (u->state == UP_IDLE) {
        if (u->prev)
            u->prev->next = u->next;
        else
            u->pool->idle = u->next;
        if (u->next)
            u->next->prev = u->prev;
        u->pool->num_idle--;
    }
    u->pool->num_total--;
    weir_timer_stop(&u->timer);
    weir_loop_del(w->loop, &u->io);
    weir_buf_release(&u->in);
    weir_loop_defer(w->loop, up_free, u);
}

static void up_close(weir_upconn_t *u)
{
    if (u->closed)
        return;
    if (u->tls) {
        weir_tls_io_bye(u->tls);
        weir_tls_io_free(u->tls);
        free(u->tls);
        u->tls = NULL;
    }
    int fd = u->io.fd;
    weir_up_detach(u);
    close(fd);
}

static void idle_timeout(weir_timer_t *t)
{
    up_close((weir_upconn_t *)((char *)t - offsetof(weir_upconn_t, timer)));
}

static void up_release(weir_req_t *r, int reusable)
{
    weir_upconn_t *u = r->up;
    r->up = NULL;
    u->req = NULL;
    weir_timer_stop(&u->timer);
    const weir_service_rt_t *svc = r->view->snap->server_service[r->server];
    int max_idle = svc->transport ? svc->transport->max_idle_conns_per_host : 200;
    if (max_idle <= 0)
        max_idle = 200; /* Traefik: 0 means the default */
    if (!reusable || u->rd_eof || u->hup || weir_buf_len(&u->in) || u->pool->num_idle >= max_idle ||
        u->pool->worker->draining) {
        up_close(u);
        return;
    }
    weir_buf_release(&u->in);
    u->state = UP_IDLE;
    u->reused = 1;
    u->prev = NULL;
    u->next = u->pool->idle;
    if (u->next)
        u->next->prev = u;
    u->pool->idle = u;
    u->pool->num_idle++;
    int64_t ms = weir_timeouts_of(r)->idle_conn_timeout_ms;
    weir_timer_set(u->pool->worker->loop, &u->timer, ms > 0 ? ms : -1, idle_timeout);
}

void weir_proxy_abort(weir_req_t *r)
{
    if (r->ups) {
        weir_h2up_abort(r);
        return;
    }
    if (!r->up)
        return;
    weir_upconn_t *u = r->up;
    r->up = NULL;
    u->req = NULL;
    up_close(u);
}

/* ---- dialing ---- */

static void req_timeout(weir_timer_t *t);

int weir_up_connect(const weir_server_cfg_t *srv)
{
    int fd = socket(srv->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&srv->addr, srv->addrlen) < 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static weir_upconn_t *dial(weir_req_t *r, weir_pool_t *pool)
{
    int fd = weir_up_connect(r->view->snap->servers[r->server]);
    if (fd < 0)
        return NULL;
    weir_upconn_t *u = calloc(1, sizeof *u);
    if (!u) {
        close(fd);
        return NULL;
    }
    u->io.fd = fd;
    u->io.cb = up_on_io;
    u->pool = pool;
    u->state = UP_CONNECTING;
    pool->num_total++;
    if (weir_loop_add(pool->worker->loop, &u->io) < 0) {
        u->closed = 1;
        pool->num_total--;
        close(fd);
        free(u);
        return NULL;
    }
    int64_t ms = weir_timeouts_of(r)->dial_timeout_ms;
    weir_timer_set(pool->worker->loop, &u->timer, ms > 0 ? ms : -1, req_timeout);
    return u;
}

static int attach_conn(weir_req_t *r, int fresh)
{
    weir_pool_t *pool = weir_pool_of(r->view, r->server);
    if (!pool)
        return -1;
    weir_upconn_t *u = NULL;
    if (!fresh && pool->idle) {
        u = pool->idle;
        pool->idle = u->next;
        if (u->next)
            u->next->prev = NULL;
        pool->num_idle--;
        u->next = u->prev = NULL;
        u->state = UP_BUSY;
        u->got_bytes = 0;
        weir_timer_stop(&u->timer);
    } else {
        u = dial(r, pool);
        if (!u)
            return -1;
    }
    u->req = r;
    r->up = u;
    return 0;
}

/* ---- failures ---- */

/* The upstream failed before any response byte: retry once on a fresh
 * connection when that is safe, else answer 502 (or 504 on a timeout). */
static void upstream_failed(weir_req_t *r, int status)
{
    weir_upconn_t *u = r->up;
    int retry = u && u->reused && !u->got_bytes && !r->retried && r->idempotent &&
                r->reqbody.kind == WEIR_BODY_NONE && status == 502;
    weir_proxy_abort(r);
    if (r->resp_started) {
        /* Part of the response is out: the client must not see a clean end. */
        weir_req_abort(r);
        return;
    }
    if (retry) {
        r->retried = 1;
        r->uphead_sent = 0;
        r->up_req_done = 0;
        if (attach_conn(r, 1) == 0) {
            pump(r);
            return;
        }
    }
    weir_req_error(r, status);
}

static void req_timeout(weir_timer_t *t)
{
    weir_upconn_t *u = (weir_upconn_t *)((char *)t - offsetof(weir_upconn_t, timer));
    weir_req_t *r = u->req;
    if (!r) {
        up_close(u);
        return;
    }
    if (r->resp_started) {
        weir_proxy_abort(r);
        weir_req_abort(r);
        return;
    }
    r->retried = 1; /* a timeout is not retried */
    upstream_failed(r, 504);
}

/* ---- I/O helpers ---- */

/* Returns bytes written, 0 when the socket is full, -1 on error. */
ssize_t weir_up_write(int fd, weir_tls_io_t *tls, const void *p, size_t n, bool *full)
{
    if (tls) {
        struct iovec iov = {(void *)p, n};
        ssize_t w = weir_tls_io_writev(tls, &iov, 1);
        if (w == 0 || (w > 0 && tls->wr_full))
            *full = true;
        return w;
    }
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *full = true;
            return 0;
        }
        return errno == EINTR ? 0 : -1;
    }
    if ((size_t)w < n)
        *full = true;
    return w;
}

static ssize_t up_send(weir_upconn_t *u, const void *p, size_t n)
{
    if (!u->wr_ready || n == 0)
        return 0;
    bool full = false;
    ssize_t w = weir_up_write(u->io.fd, u->tls, p, n, &full);
    if (full)
        u->wr_ready = 0;
    return w;
}

/* Reads into u->in. Returns bytes read, 0 when nothing is available, -1 on
 * EOF or error (u->rd_eof set). */
static ssize_t up_recv(weir_upconn_t *u)
{
    if (!u->rd_ready || u->rd_eof)
        return u->rd_eof ? -1 : 0;
    if (u->tls) {
        if (weir_buf_reserve(&u->in, 4096) < 0) {
            u->rd_eof = 1;
            return -1;
        }
        ssize_t n = weir_tls_io_read(u->tls, weir_buf_tail(&u->in), weir_buf_room(&u->in));
        if (n > 0) {
            u->in.end += (uint32_t)n;
            u->got_bytes = 1;
            return n;
        }
        if (n < 0 && errno == EAGAIN) {
            u->rd_ready = 0;
            weir_buf_release_if_empty(&u->in);
            return 0;
        }
        u->rd_eof = 1;
        return -1;
    }
    int drained;
    ssize_t n = weir_buf_read(&u->in, u->io.fd, &drained);
    if (n > 0) {
        u->got_bytes = 1;
        if (drained && !u->hup)
            u->rd_ready = 0; /* drained, unless a FIN is still to be read */
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (errno != EINTR)
            u->rd_ready = 0;
        return 0;
    }
    u->rd_eof = 1;
    return -1;
}

/* Accepts the next bytes of a body from buf (nothing must be pending).
 * Returns 1 when something was accepted, 0 when more bytes are needed, -1
 * on malformed chunked framing. */
int weir_body_accept(weir_body_t *b, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (b->kind == WEIR_BODY_LENGTH) {
        size_t k = n < b->remaining ? n : (size_t)b->remaining;
        b->remaining -= k;
        b->len = k;
        return k > 0;
    }
    if (b->kind == WEIR_BODY_UNTIL_CLOSE) {
        b->len = n;
        return 1;
    }
    if (b->kind != WEIR_BODY_CHUNKED)
        return 0;
    size_t total = 0;
    while (total < n && !b->chunk.done) {
        weir_slice_t d, tr;
        ssize_t k = weir_h1_chunked_decode(&b->chunk, p + total, n - total, &d, &tr);
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        if (tr.len && b->trailers)
            weir_buf_append(b->trailers, tr.ptr, tr.len);
        if (b->decode && d.len) {
            b->pre = (size_t)(d.ptr - p);
            b->len = d.len;
            b->post = total + (size_t)k - b->pre - b->len;
            return 1;
        }
        total += (size_t)k;
    }
    if (b->decode)
        b->pre = total;
    else
        b->len = total;
    return total > 0;
}

/* ---- request direction ---- */

static void arm_response_timer(weir_req_t *r)
{
    r->up_req_done = 1;
    weir_req_request_sent(r);
    int64_t ms = weir_timeouts_of(r)->response_header_timeout_ms;
    if (!r->resp_started && ms > 0)
        weir_timer_set(r->conn->worker->loop, &r->up->timer, ms, req_timeout);
    else if (!r->resp_started)
        weir_timer_stop(&r->up->timer);
}

/* Sends the head and as much of the request body as possible. Returns 1 on
 * progress, 0 when blocked, -1 on upstream failure, -2 on a bad or
 * abandoned body (400). */
static int send_request(weir_req_t *r)
{
    weir_upconn_t *u = r->up;
    weir_buf_t *in = weir_req_body_src(r);
    weir_body_t *b = &r->reqbody;
    int progress = 0;
    while (r->uphead_sent < weir_buf_len(&r->uphead)) {
        ssize_t w = up_send(u, weir_buf_head(&r->uphead) + r->uphead_sent,
                            weir_buf_len(&r->uphead) - r->uphead_sent);
        if (w < 0)
            return -1;
        if (w == 0)
            return progress;
        r->uphead_sent += (size_t)w;
        progress = 1;
    }
    while (!weir_body_done(b)) {
        if (b->len) {
            ssize_t w = up_send(u, weir_buf_head(in), b->len);
            if (w < 0)
                return -1;
            if (w == 0)
                return progress;
            weir_buf_consume(in, (size_t)w);
            b->len -= (size_t)w;
            progress = 1;
            continue;
        }
        int a = weir_body_accept(b, weir_buf_head(in), weir_buf_len(in));
        if (a < 0)
            return -2;
        if (a > 0)
            continue;
        /* Need more bytes from the client. */
        size_t before = weir_buf_len(in);
        weir_req_want_body(r);
        if (weir_buf_len(in) > before)
            continue;
        if (weir_req_body_eof(r))
            return -2;
        return progress;
    }
    if (!r->up_req_done && r->uphead_sent == weir_buf_len(&r->uphead))
        arm_response_timer(r);
    return progress;
}

/* ---- response direction ---- */

static void begin_response(weir_req_t *r)
{
    weir_body_t *b = &r->respbody;
    r->origin_status = r->resp.status;
    r->status = r->resp.status;
    b->kind = r->resp.body;
    b->remaining = r->resp.content_length;
    if (weir_req_multiplexed(r)) {
        /* HTTP/2 and HTTP/3 frame the body themselves: only the data goes on, and the
         * trailer section becomes a trailing HEADERS frame. */
        if (b->kind == WEIR_BODY_CHUNKED) {
            b->decode = 1;
            b->trailers = &r->trailers;
        }
    } else {
        if (b->kind == WEIR_BODY_CHUNKED && r->h1.minor == 0)
            b->decode = 1;
        if (b->kind == WEIR_BODY_UNTIL_CLOSE || b->decode)
            r->close_after = 1;
    }
    r->resp_started = 1;
    weir_timer_stop(&r->up->timer);
    weir_req_response_started(r);
}

/* Returns 1 when a final head was parsed, 0 when more bytes are needed,
 * -1 on a malformed response. */
static int parse_response_head(weir_req_t *r)
{
    weir_upconn_t *u = r->up;
    for (;;) {
        weir_h1_limits_t lim = {WEIR_H1_MAX_LINE_BYTES, MAX_RESP_HEAD, WEIR_MAX_RESP_HEADERS};
        r->resp.headers = r->resp_headers;
        int n = weir_h1_parse_response(weir_buf_head(&u->in), weir_buf_len(&u->in), &r->resp, &lim,
                                       r->head_method);
        if (n == WEIR_H1_NEED_MORE)
            return 0;
        if (n < 0)
            return -1;
        int st = r->resp.status;
        if (st >= 100 && st < 200 && st != 101) {
            /* Interim responses: 100 is ours to send; forward the others
             * (103 Early Hints) to HTTP/1.1 clients. */
            if (st != 100 && r->h1.minor >= 1 && !weir_req_multiplexed(r))
                weir_buf_append(&r->out, weir_buf_head(&u->in), (size_t)n);
            weir_buf_consume(&u->in, (size_t)n);
            continue;
        }
        if (st == 101 && !r->upgrade)
            return -1;
        begin_response(r);
        if (weir_req_client_head(r) < 0)
            return -1;
        weir_buf_consume(&u->in, (size_t)n);
        return 1;
    }
}

/* Moves response bytes (our head, then the body) to the client. Returns 1
 * on progress, 0 when blocked, -1 when the client is gone, -2 on an
 * upstream failure or malformed body. */
static int send_response(weir_req_t *r)
{
    weir_upconn_t *u = r->up;
    weir_body_t *b = &r->respbody;
    int progress = 0;
    for (;;) {
        if (b->pre) {
            weir_buf_consume(&u->in, b->pre);
            b->pre = 0;
        }
        if (!b->len && !b->post && !weir_body_done(b)) {
            /* Take what is already buffered first, so the head and the
             * first body bytes leave in one sendmsg. */
            if (weir_body_accept(b, weir_buf_head(&u->in), weir_buf_len(&u->in)) < 0)
                return -2;
            if (b->pre)
                continue;
        }
        size_t hl = weir_buf_len(&r->out);
        if (hl || b->len) {
            struct iovec iov[2];
            int cnt = 0;
            if (hl)
                iov[cnt++] = (struct iovec){weir_buf_head(&r->out), hl};
            if (b->len)
                iov[cnt++] = (struct iovec){weir_buf_head(&u->in), b->len};
            ssize_t w = weir_req_send(r, iov, cnt);
            if (w < 0)
                return -1;
            if (w == 0)
                return progress;
            size_t fh = (size_t)w < hl ? (size_t)w : hl;
            weir_buf_consume(&r->out, fh);
            size_t fb = (size_t)w - fh;
            weir_buf_consume(&u->in, fb);
            b->len -= fb;
            r->resp_bytes += fb;
            progress = 1;
            continue;
        }
        if (b->post) {
            weir_buf_consume(&u->in, b->post);
            b->post = 0;
        }
        if (weir_body_done(b))
            return 1;
        int a = weir_body_accept(b, weir_buf_head(&u->in), weir_buf_len(&u->in));
        if (a < 0)
            return -2;
        if (a > 0)
            continue;
        ssize_t got = up_recv(u);
        if (got > 0)
            continue;
        if (got < 0) {
            if (b->kind == WEIR_BODY_UNTIL_CLOSE) {
                b->eof = 1;
                return 1;
            }
            return -2;
        }
        return progress;
    }
}

/* ---- tunnel (after 101) ---- */

static int tunnel_pump(weir_req_t *r)
{
    weir_upconn_t *u = r->up;
    weir_conn_t *c = r->conn;
    for (int rounds = 0; rounds < 64; rounds++) {
        int progress = 0;
        if (weir_buf_len(&r->out)) {
            int f = 0;
            struct iovec iov = {weir_buf_head(&r->out), weir_buf_len(&r->out)};
            ssize_t w = weir_conn_send(c, &iov, 1);
            if (w < 0)
                return -1;
            weir_buf_consume(&r->out, (size_t)w);
            progress |= w > 0;
            (void)f;
        }
        /* upstream → client */
        if (weir_buf_len(&u->in)) {
            struct iovec iov = {weir_buf_head(&u->in), weir_buf_len(&u->in)};
            ssize_t w = weir_conn_send(c, &iov, 1);
            if (w < 0)
                return -1;
            weir_buf_consume(&u->in, (size_t)w);
            progress |= w > 0;
        } else if (!u->rd_eof) {
            progress |= up_recv(u) > 0;
        }
        /* client → upstream */
        if (weir_buf_len(&c->in)) {
            ssize_t w = up_send(u, weir_buf_head(&c->in), weir_buf_len(&c->in));
            if (w < 0)
                return -1;
            weir_buf_consume(&c->in, (size_t)w);
            progress |= w > 0;
        } else if (!c->rd_eof) {
            size_t before = weir_buf_len(&c->in);
            weir_conn_want_body(c);
            progress |= weir_buf_len(&c->in) > before;
        }
        if ((u->rd_eof && !weir_buf_len(&u->in)) || (c->rd_eof && !weir_buf_len(&c->in)))
            return -1; /* one side ended: end the tunnel */
        if (!progress)
            return 0;
    }
    /* Fairness: let other connections run; come back on the next pass. */
    weir_conn_resume_later(c);
    return 0;
}

/* ---- the pump ---- */

static void response_done(weir_req_t *r)
{
    int reusable = r->resp.keep_alive && weir_body_done(&r->reqbody) && r->up_req_done &&
                   r->respbody.kind != WEIR_BODY_UNTIL_CLOSE;
    up_release(r, reusable);
    if (!weir_body_done(&r->reqbody) && !r->close_after) {
        /* The origin answered before reading the whole body (an early 401,
         * nginx's return): read and drop the rest so the client's
         * connection stays usable and nothing is reset under its answer. */
        weir_req_discard_body(r);
        return;
    }
    weir_req_finish(r, 1);
}

static void pump(weir_req_t *r)
{
    weir_upconn_t *u = r->up;
    if (!u || u->state == UP_CONNECTING || u->state == UP_HANDSHAKE)
        return;
    if (r->conn->state == CONN_TUNNEL) {
        if (tunnel_pump(r) < 0) {
            weir_proxy_abort(r);
            weir_req_finish(r, 0);
        }
        return;
    }
    for (int rounds = 0; rounds < 1000; rounds++) {
        int progress = 0;
        if (!r->up_req_done || !weir_body_done(&r->reqbody)) {
            int s = send_request(r);
            if (s == -2) {
                if (r->resp_started) {
                    weir_proxy_abort(r);
                    weir_req_abort(r);
                } else {
                    weir_proxy_abort(r);
                    weir_req_error(r, 400);
                }
                return;
            }
            if (s == -1) {
                /* A write error: the upstream may still have answered
                 * (early response); read what it sent before failing. */
                if (!r->resp_started && up_recv(r->up) <= 0 && !weir_buf_len(&r->up->in)) {
                    upstream_failed(r, 502);
                    return;
                }
                r->reqbody.len = 0;
                r->close_after = 1;
            }
            progress |= s > 0;
        }
        if (!r->resp_started) {
            int h = parse_response_head(r);
            if (h < 0) {
                weir_proxy_abort(r);
                weir_req_error(r, 502);
                return;
            }
            if (h == 0) {
                ssize_t got = up_recv(u);
                if (got < 0) {
                    upstream_failed(r, 502);
                    return;
                }
                if (weir_buf_len(&u->in) >= MAX_RESP_HEAD) {
                    weir_proxy_abort(r);
                    weir_req_error(r, 502);
                    return;
                }
                if (got > 0)
                    continue;
                /* Flush interim responses we queued. */
                if (weir_buf_len(&r->out)) {
                    struct iovec iov = {weir_buf_head(&r->out), weir_buf_len(&r->out)};
                    ssize_t w = weir_req_send(r, &iov, 1);
                    if (w > 0)
                        weir_buf_consume(&r->out, (size_t)w);
                }
                if (!progress)
                    return;
                continue;
            }
            if (r->resp.status == 101) {
                weir_conn_tunnel(r);
                pump(r);
                return;
            }
        }
        int s = send_response(r);
        if (s < 0) {
            /* The client is gone (-1) or the upstream broke the body (-2). */
            weir_proxy_abort(r);
            weir_req_abort(r);
            return;
        }
        if (weir_body_done(&r->respbody) && weir_buf_len(&r->out) == 0) {
            response_done(r);
            return;
        }
        progress |= s > 0;
        if (!progress)
            return;
    }
    weir_req_resume_later(r);
}

void weir_proxy_resume(weir_req_t *r)
{
    if (r->ups)
        weir_h2up_resume(r);
    else
        pump(r);
}

/* Drives the TLS handshake with an https:// server (the dial timer still
 * runs: dialTimeout covers connect and handshake). */
static void handshake(weir_upconn_t *u)
{
    weir_req_t *r = u->req;
    int rc = weir_tls_io_handshake(u->tls);
    if (rc == 0) {
        if (u->tls->wr_full)
            u->wr_ready = 0;
        return;
    }
    if (rc < 0) {
        weir_debug("upstream TLS handshake failed");
        if (r)
            upstream_failed(r, 502);
        else
            up_close(u);
        return;
    }
    u->state = UP_BUSY;
    u->wr_ready = !u->tls->wr_full;
    u->rd_ready = 1;
    weir_timer_stop(&u->timer);
    if (!r) {
        up_close(u);
        return;
    }
    if (u->offered_h2) {
        /* The server's answer holds for the pool's next requests. */
        bool h2 = weir_slice_eq(weir_tls_io_alpn(u->tls), WEIR_SLICE_LIT("h2"));
        u->pool->proto = h2 ? POOL_PROTO_H2 : POOL_PROTO_H1;
        if (h2 && weir_h2up_pool_has_room(u->pool)) {
            /* A concurrent handshake already gave the pool an HTTP/2
             * connection with room: use it and close this one (Go's
             * transport does the same with concurrent dials). */
            weir_pool_t *pool = u->pool;
            u->req = NULL;
            r->up = NULL;
            up_close(u);
            if (weir_h2up_start(r, pool) < 0)
                weir_req_error(r, 502);
            return;
        }
        if (h2) {
            if (weir_h2up_adopt(u) < 0) {
                weir_proxy_abort(r);
                weir_req_error(r, 502);
            }
            return;
        }
    }
    pump(r);
}

static bool transport_disables_h2(const weir_req_t *r)
{
    const weir_service_rt_t *svc = r->view->snap->server_service[r->server];
    return svc->transport && svc->transport->disable_http2;
}

static void connected(weir_upconn_t *u)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(u->io.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    weir_req_t *r = u->req;
    if (err || !r) {
        if (r)
            upstream_failed(r, 502);
        else
            up_close(u);
        return;
    }
    const weir_server_cfg_t *srv = r->view->snap->servers[r->server];
    if (srv->scheme == WEIR_SCHEME_HTTPS) {
        weir_tls_ctx_t *ctx = r->view->snap->tls;
        int ti = r->view->snap->server_service[r->server]->cfg->transport_index;
        gnutls_session_t s;
        u->offered_h2 = !r->upgrade && !transport_disables_h2(r);
        u->tls = ctx ? calloc(1, sizeof *u->tls) : NULL;
        if (!u->tls || weir_tls_client_session_new(ctx, ti, srv->host, u->offered_h2, &s) < 0) {
            free(u->tls);
            u->tls = NULL;
            upstream_failed(r, 502);
            return;
        }
        weir_tls_io_init(u->tls, ctx, s, u->io.fd, NULL);
        u->state = UP_HANDSHAKE;
        handshake(u);
        return;
    }
    u->state = UP_BUSY;
    weir_timer_stop(&u->timer);
    pump(r);
}

static void up_on_io(weir_io_t *io, unsigned events)
{
    weir_upconn_t *u = (weir_upconn_t *)io;
    if (u->closed)
        return;
    if (events & WEIR_EV_READ)
        u->rd_ready = 1;
    if (events & WEIR_EV_WRITE)
        u->wr_ready = 1;
    if (events & WEIR_EV_HUP)
        u->hup = 1; /* the server sent FIN: never reuse this connection */
    if (u->tls && (events & WEIR_EV_WRITE)) {
        int f = weir_tls_io_flush(u->tls);
        if (f < 0) {
            if (u->req)
                u->rd_eof = 1;
            else {
                up_close(u);
                return;
            }
        }
        u->wr_ready = f == 1;
    }
    switch (u->state) {
    case UP_CONNECTING:
        if (events & (WEIR_EV_WRITE | WEIR_EV_ERR | WEIR_EV_HUP))
            connected(u);
        break;
    case UP_HANDSHAKE:
        if (events & WEIR_EV_ERR) {
            if (u->req)
                upstream_failed(u->req, 502);
            else
                up_close(u);
            break;
        }
        handshake(u);
        break;
    case UP_IDLE:
        /* An idle connection has nothing to say: data or EOF ends it. */
        if (events & (WEIR_EV_READ | WEIR_EV_ERR))
            up_close(u);
        break;
    default:
        if (u->req)
            pump(u->req);
        else
            up_close(u);
    }
}

void weir_proxy_start(weir_req_t *r)
{
    weir_conn_t *c = r->conn;
    r->server = weir_lb_pick(r->view, r->service);
    if (r->server < 0) {
        weir_req_error(r, 503);
        return;
    }
    const weir_server_cfg_t *srv = r->view->snap->servers[r->server];
    if (weir_build_upstream_head(r, srv, r->service->cfg->pass_host_header) < 0) {
        weir_req_error(r, 500);
        return;
    }
    weir_req_keep_meta(r);
    weir_buf_consume(&c->in, r->h1.head_len);
    r->head_consumed = 1;
    if (r->h1.expect_continue && r->reqbody.kind != WEIR_BODY_NONE && weir_buf_len(&c->in) == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        weir_buf_append(&r->out, cont, sizeof cont - 1);
        struct iovec iov = {weir_buf_head(&r->out), weir_buf_len(&r->out)};
        ssize_t w = weir_conn_send(c, &iov, 1);
        if (w > 0)
            weir_buf_consume(&r->out, (size_t)w);
        r->sent_continue = 1;
    }
    if (weir_proxy_redispatch(r) < 0)
        weir_req_error(r, 502);
}

/* HTTP/2 for h2c:// servers and for https:// ones that chose h2 by ALPN
 * (unless the transport disables it); HTTP/1.1 for the others and for
 * every upgrade (WebSocket). */
int weir_proxy_redispatch(weir_req_t *r)
{
    weir_pool_t *pool = weir_pool_of(r->view, r->server);
    if (!pool)
        return -1;
    const weir_server_cfg_t *srv = r->view->snap->servers[r->server];
    bool h2 = !r->upgrade &&
              (srv->scheme == WEIR_SCHEME_H2C ||
               (srv->scheme == WEIR_SCHEME_HTTPS && pool->proto == POOL_PROTO_H2 &&
                !transport_disables_h2(r)));
    if (h2)
        return weir_h2up_start(r, pool);
    if (attach_conn(r, 0) < 0)
        return -1;
    if (r->up->state != UP_CONNECTING)
        r->up->reused = 1;
    pump(r);
    return 0;
}
