/* HTTP/1.1 server side: client connections, request heads, routing, error
 * responses, keep-alive and pipelining, tunnels after 101. */
#include <errno.h>
#include <stdarg.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "h2/h2.h"
#include "h3/h3.h"
#include "l4/l4.h"
#include "l4/proxy_proto.h"
#include "http/conn.h"
#include "tls/clienthello.h"
#include "tls/tls.h"

static void conn_on_io(weir_io_t *io, unsigned events);
static void conn_read_head(weir_conn_t *c);
static void conn_close(weir_conn_t *c);
static void conn_timeout(weir_timer_t *t);

static const weir_entrypoint_cfg_t *conn_ep(const weir_conn_t *c, const weir_view_t *v)
{
    return &v->snap->cfg->entrypoints[c->ep];
}

/* ---- requests ---- */

weir_req_t *weir_req_new(weir_conn_t *c)
{
    weir_worker_t *w = c->worker;
    weir_req_t *r = w->free_reqs;
    if (r) {
        w->free_reqs = r->next_free;
        w->num_free_reqs--;
    } else {
        r = malloc(sizeof *r);
        if (!r)
            return NULL;
    }
    /* Zero everything up to the header arrays; they are filled by parsers. */
    memset(r, 0, offsetof(weir_req_t, headers));
    memset(&r->reqbody, 0, offsetof(weir_req_t, resp_headers) - offsetof(weir_req_t, reqbody));
    memset(&r->respbody, 0, sizeof *r - offsetof(weir_req_t, respbody));
    r->conn = c;
    r->server = -1;
    r->h1.headers = r->headers;
    r->view = weir_worker_view_acquire(w);
    return r;
}

void weir_req_free(weir_req_t *r)
{
    weir_worker_t *w = r->conn->worker;
    weir_buf_release(&r->out);
    weir_buf_release(&r->uphead);
    weir_buf_release(&r->trailers);
    weir_buf_release(&r->sent_body);
    free(r->meta);
    r->meta = NULL;
    if (r->view)
        weir_worker_view_release(r->view);
    if (w->num_free_reqs < 16) {
        r->next_free = w->free_reqs;
        w->free_reqs = r;
        w->num_free_reqs++;
    } else {
        free(r);
    }
}

/* ---- client output ---- */

ssize_t weir_conn_write(weir_conn_t *c, const struct iovec *iov, int iovcnt)
{
    if (c->closed)
        return -1;
    if (c->tls) {
        if (!c->wr_ready)
            return 0;
        ssize_t n = weir_tls_io_writev(c->tls, iov, iovcnt);
        if (n < 0)
            return -1;
        if (c->tls->wr_full || n == 0)
            c->wr_ready = 0;
        return n;
    }
    size_t want = 0;
    for (int i = 0; i < iovcnt; i++)
        want += iov[i].iov_len;
    if (want == 0)
        return 0;
    if (!c->wr_ready)
        return 0;
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    ssize_t n = sendmsg(c->io.fd, &mh, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->wr_ready = 0;
            return 0;
        }
        if (errno == EINTR)
            return 0;
        return -1;
    }
    if ((size_t)n < want)
        c->wr_ready = 0;
    return n;
}

ssize_t weir_conn_send(weir_conn_t *c, const struct iovec *iov, int iovcnt)
{
    return weir_conn_write(c, iov, iovcnt);
}

ssize_t weir_conn_read(weir_conn_t *c, int *drained)
{
    if (!c->tls)
        return weir_buf_read(&c->in, c->io.fd, drained);
    *drained = 0;
    if (weir_buf_reserve(&c->in, 4096) < 0) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n = weir_tls_io_read(c->tls, weir_buf_tail(&c->in), weir_buf_room(&c->in));
    if (n > 0)
        c->in.end += (uint32_t)n;
    else if (n < 0 && errno == EAGAIN)
        weir_buf_release_if_empty(&c->in);
    return n;
}

ssize_t weir_conn_fill(weir_conn_t *c)
{
    int drained;
    ssize_t n = weir_conn_read(c, &drained);
    if (n > 0) {
        if (drained && !c->hup)
            c->rd_ready = 0; /* drained, unless a FIN is still to be read */
        return n;
    }
    if (n == 0) {
        c->rd_eof = 1;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->rd_ready = 0;
        return 0;
    }
    return errno == EINTR ? 0 : -1;
}

/* ---- the client side of a request, by HTTP version ---- */

ssize_t weir_req_send(weir_req_t *r, const struct iovec *iov, int iovcnt)
{
    if (r->h2s)
        return weir_h2_send(r, iov, iovcnt);
    if (r->h3s)
        return weir_h3_send(r, iov, iovcnt);
    return weir_conn_write(r->conn, iov, iovcnt);
}

int weir_req_client_head(weir_req_t *r)
{
    if (r->h2s)
        return weir_h2_submit_head(r);
    if (r->h3s)
        return weir_h3_submit_head(r);
    return weir_build_client_head(r);
}

weir_buf_t *weir_req_body_src(weir_req_t *r)
{
    return r->h2s ? weir_h2_body_src(r) : r->h3s ? weir_h3_body_src(r) : &r->conn->in;
}

void weir_req_want_body(weir_req_t *r)
{
    if (r->h2s)
        weir_h2_want_body(r);
    else if (r->h3s)
        weir_h3_want_body(r);
    else
        weir_conn_want_body(r->conn);
}

bool weir_req_body_eof(const weir_req_t *r)
{
    return r->h2s ? weir_h2_body_eof(r) : r->h3s ? weir_h3_body_eof(r) : r->conn->rd_eof;
}

void weir_req_abort(weir_req_t *r)
{
    if (weir_req_multiplexed(r))
        weir_req_finish(r, 0); /* the stream is reset */
    else
        weir_conn_abort(r->conn);
}

void weir_req_resume_later(weir_req_t *r)
{
    if (r->h2s)
        weir_h2_resume_later(r);
    else if (r->h3s)
        weir_h3_resume_later(r);
    else
        weir_conn_resume_later(r->conn);
}

void weir_req_request_sent(weir_req_t *r)
{
    if (!weir_req_multiplexed(r))
        weir_timer_stop(&r->conn->timer);
}

void weir_req_response_started(weir_req_t *r)
{
    if (r->h2s) {
        weir_h2_response_started(r);
        return;
    }
    if (r->h3s) {
        weir_h3_response_started(r);
        return;
    }
    weir_conn_t *c = r->conn;
    const weir_entrypoint_cfg_t *ep = &r->view->snap->cfg->entrypoints[c->ep];
    if (ep->write_timeout_ms > 0)
        weir_timer_set(c->worker->loop, &c->timer, ep->write_timeout_ms, c->timer.cb);
}

/* Writes what is pending in r->out. Returns 1 when it is empty, 0 when the
 * socket is full, -1 when the client is gone. */
static int flush_out(weir_req_t *r)
{
    while (weir_buf_len(&r->out)) {
        struct iovec iov = {weir_buf_head(&r->out), weir_buf_len(&r->out)};
        ssize_t n = weir_conn_send(r->conn, &iov, 1);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        weir_buf_consume(&r->out, (size_t)n);
    }
    return 1;
}

static int out_printf(weir_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int out_printf(weir_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    if (weir_buf_reserve(b, 512) < 0)
        return -1;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(weir_buf_tail(b), weir_buf_room(b), fmt, ap);
        va_end(ap);
        if (n < 0)
            return -1;
        if ((size_t)n < weir_buf_room(b)) {
            b->end += (uint32_t)n;
            return 0;
        }
        if (weir_buf_reserve(b, (size_t)n + 1) < 0)
            return -1;
    }
}

const char *weir_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 421: return "Misdirected Request";
    case 425: return "Too Early";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}

/* Appends a complete short response to r->out. */
static void append_simple_response(weir_req_t *r, int status, int close)
{
    const char *text = weir_status_text(status);
    char body[96];
    int blen = snprintf(body, sizeof body, "%s\n", *text ? text : "Error");
    if (status == 404)
        blen = snprintf(body, sizeof body, "404 page not found\n");
    out_printf(&r->out,
               "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "X-Content-Type-Options: nosniff\r\nContent-Length: %d\r\n%s",
               status, text, blen, close ? "Connection: close\r\n" : "");
    weir_put_alt_svc(r, &r->out);
    weir_buf_append(&r->out, "\r\n", 2);
    if (!r->head_method)
        weir_buf_append(&r->out, body, (size_t)blen);
    r->status = status;
    r->resp_bytes = r->head_method ? 0 : (uint64_t)blen;
}

/* ---- request lifecycle ---- */

static weir_slice_t find_header(const weir_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->h1.num_headers; i++)
        if (weir_slice_ieq_cstr(r->h1.headers[i].name, name))
            return r->h1.headers[i].value;
    return WEIR_SLICE_NULL;
}

void weir_req_keep_meta(weir_req_t *r)
{
    if (weir_server.access_fd < 0 || r->meta)
        return; /* only the access log needs them */
    weir_slice_t *dst[] = {&r->m_method, &r->m_path, &r->m_host, &r->m_referer, &r->m_ua};
    weir_slice_t src[] = {r->h1.method, r->h1.path, r->h1.authority.len ? r->h1.authority : r->h1.host,
                          find_header(r, "Referer"), find_header(r, "User-Agent")};
    size_t total = 0;
    for (size_t i = 0; i < 5; i++)
        total += src[i].len;
    char *p = r->meta = malloc(total + 1);
    if (!p)
        return;
    for (size_t i = 0; i < 5; i++) {
        if (src[i].len)
            memcpy(p, src[i].ptr, src[i].len);
        *dst[i] = weir_slice(p, src[i].len);
        p += src[i].len;
    }
}

static void conn_set_head_timer(weir_conn_t *c);

static void after_response(void *arg)
{
    weir_conn_t *c = arg;
    if (c->closed || c->state != CONN_HEAD)
        return;
    conn_read_head(c);
}

static int request_body_done(const weir_req_t *r)
{
    return weir_body_done(&r->reqbody);
}

void weir_req_finish(weir_req_t *r, int ok)
{
    weir_conn_t *c = r->conn;
    if (weir_req_multiplexed(r)) {
        weir_accesslog_write(r);
        if (r->up || r->ups)
            weir_proxy_abort(r);
        if (r->h2s)
            weir_h2_finish(r, ok);
        else
            weir_h3_finish(r, ok);
        return;
    }
    weir_timer_stop(&c->timer);
    weir_accesslog_write(r);
    int keep = ok && c->keep_alive && !r->close_after && request_body_done(r) &&
               !c->worker->draining && !c->rd_eof && r->h1.keep_alive;
    if (r->up || r->ups)
        weir_proxy_abort(r);
    if (!r->head_consumed && r->h1.head_len)
        weir_buf_consume(&c->in, r->h1.head_len);
    c->req = NULL;
    weir_req_free(r);
    if (!keep) {
        conn_close(c);
        return;
    }
    c->state = CONN_HEAD;
    c->requests++;
    c->scanned = 0;
    weir_buf_release_if_empty(&c->in);
    conn_set_head_timer(c);
    /* Bytes of the next request may be buffered, or may have arrived on the
     * socket while this one was in flight (the edge was consumed then, and
     * a body-less request never reads): either way no new event will come. */
    if (weir_buf_len(&c->in) || c->rd_ready)
        weir_loop_defer(c->worker->loop, after_response, c);
}

#define MAX_DISCARD (16u << 20)

static void discard_pump(weir_conn_t *c)
{
    weir_req_t *r = c->req;
    weir_body_t *b = &r->reqbody;
    b->decode = 0;
    for (;;) {
        if (b->len) {
            size_t n = b->len < weir_buf_len(&c->in) ? b->len : weir_buf_len(&c->in);
            weir_buf_consume(&c->in, n);
            b->len -= n;
            r->discarded += n;
            if (r->discarded > MAX_DISCARD) {
                weir_req_finish(r, 0);
                return;
            }
        }
        if (weir_body_done(b)) {
            weir_req_finish(r, 1);
            return;
        }
        if (!b->len) {
            int a = weir_body_accept(b, weir_buf_head(&c->in), weir_buf_len(&c->in));
            if (a < 0) {
                weir_req_finish(r, 0);
                return;
            }
            if (a > 0)
                continue;
        }
        size_t before = weir_buf_len(&c->in);
        weir_conn_want_body(c);
        if (weir_buf_len(&c->in) > before)
            continue;
        if (c->rd_eof)
            weir_req_finish(r, 0);
        return;
    }
}

void weir_req_discard_body(weir_req_t *r)
{
    if (weir_req_multiplexed(r)) {
        /* The stream's remaining DATA is dropped as it arrives. */
        weir_req_finish(r, 1);
        return;
    }
    r->conn->state = CONN_DISCARD;
    discard_pump(r->conn);
}

/* Writes an error or internal response sitting in r->out; finishes the
 * request when it is out. */
void weir_conn_flush_generated(weir_req_t *r)
{
    if (r->h2s) {
        weir_h2_flush_generated(r);
        return;
    }
    if (r->h3s) {
        weir_h3_flush_generated(r);
        return;
    }
    int f = flush_out(r);
    if (f < 0) {
        r->close_after = 1;
        weir_req_finish(r, 0);
        return;
    }
    if (f == 1)
        weir_req_finish(r, !r->close_after);
    /* else: wait for the socket to drain (conn_on_io calls us again) */
}

void weir_req_start_error(weir_req_t *r, int status)
{
    weir_loop_t *loop = r->conn->worker->loop;
    r->start_us = weir_loop_wall_us(loop);
    r->start_ms = weir_loop_now(loop);
    r->head_method = weir_slice_eq(r->h1.method, WEIR_SLICE_LIT("HEAD"));
    weir_req_error(r, status);
}

bool weir_req_drop(weir_req_t *r)
{
    if (r->up || r->ups)
        weir_proxy_abort(r);
    if (!r->internal_done && r->status == 0 && r->h1.method.len)
        r->status = 499;
    bool logged = r->h1.method.len != 0;
    if (logged)
        weir_accesslog_write(r);
    r->h2s = NULL;
    r->h3s = NULL;
    weir_req_free(r);
    return logged;
}

int weir_req_generated_head(weir_req_t *r)
{
    weir_h1_limits_t lim = {WEIR_H1_MAX_LINE_BYTES, 64 * 1024, WEIR_MAX_RESP_HEADERS};
    r->resp.headers = r->resp_headers;
    return weir_h1_parse_response(weir_buf_head(&r->out), weir_buf_len(&r->out), &r->resp, &lim,
                                  r->head_method);
}

void weir_req_error(weir_req_t *r, int status)
{
    weir_conn_t *c = r->conn;
    if (r->up || r->ups)
        weir_proxy_abort(r);
    weir_buf_consume(&r->out, weir_buf_len(&r->out));
    /* Close after errors that leave the request body unread or the framing
     * in doubt; keep-alive after a clean 404/503 etc. on a body-less request. */
    if (!request_body_done(r) || status == 400 || status == 408 || status == 414 ||
        status == 431 || status == 501 || status == 505)
        r->close_after = 1;
    append_simple_response(r, status, r->close_after || !c->keep_alive || !r->h1.keep_alive);
    r->internal_done = 1;
    if (!weir_req_multiplexed(r))
        c->state = CONN_ACTIVE;
    weir_conn_flush_generated(r);
}

/* An error found while parsing a head: there is no parsed request. */
static void head_error(weir_conn_t *c, int status)
{
    weir_req_t *r = c->req ? c->req : weir_req_new(c);
    if (!r) {
        conn_close(c);
        return;
    }
    c->req = r;
    r->close_after = 1;
    r->start_us = weir_loop_wall_us(c->worker->loop);
    r->start_ms = weir_loop_now(c->worker->loop);
    weir_req_error(r, status);
}

/* Splits the path into path and query for routing. */
static void split_target(weir_slice_t target, weir_slice_t *path, weir_slice_t *query)
{
    const char *q = memchr(target.ptr, '?', target.len);
    if (!q) {
        *path = target;
        *query = WEIR_SLICE_NULL;
        return;
    }
    *path = weir_slice(target.ptr, (size_t)(q - target.ptr));
    *query = weir_slice(q + 1, target.len - (size_t)(q - target.ptr) - 1);
}

static int method_idempotent(weir_slice_t m)
{
    static const char *const ok[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (weir_slice_eq(m, weir_slice_cstr(ok[i])))
            return 1;
    return 0;
}

/* The http → https style redirection of an entry point
 * (http.redirections.entryPoint), as Traefik's redirectScheme: 301/308 when
 * permanent, else 302/307 (307/308 for methods other than GET and HEAD,
 * which must not change). */
static void redirect_request(weir_req_t *r, const weir_entrypoint_cfg_t *ep)
{
    weir_slice_t host = r->h1.authority.len ? r->h1.authority : r->h1.host;
    /* Drop the port of the Host value (IPv6 literals keep their brackets). */
    size_t hl = host.len;
    for (size_t i = host.len; i > 0; i--) {
        char ch = host.ptr[i - 1];
        if (ch == ':') {
            hl = i - 1;
            break;
        }
        if (ch == ']' || ch < '0' || ch > '9')
            break;
    }
    const char *scheme = ep->redirect_scheme ? ep->redirect_scheme : "https";
    char port[8] = "";
    bool default_port = (ep->redirect_port == 443 && strcmp(scheme, "https") == 0) ||
                        (ep->redirect_port == 80 && strcmp(scheme, "http") == 0);
    if (ep->redirect_port && !default_port)
        snprintf(port, sizeof port, ":%u", ep->redirect_port);
    bool keep_method = !weir_slice_eq(r->h1.method, WEIR_SLICE_LIT("GET")) && !r->head_method;
    int status = ep->redirect_permanent ? (keep_method ? 308 : 301) : (keep_method ? 307 : 302);
    const char *text = weir_status_text(status);
    size_t blen = strlen(text);
    r->close_after = r->close_after || !weir_body_done(&r->reqbody);
    out_printf(&r->out,
               "HTTP/1.1 %d %s\r\nLocation: %s://%.*s%s%.*s\r\n"
               "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n%s",
               status, text, scheme, (int)hl, host.ptr, port, (int)r->h1.path.len, r->h1.path.ptr,
               blen, r->close_after || !r->conn->keep_alive ? "Connection: close\r\n" : "");
    weir_put_alt_svc(r, &r->out);
    weir_buf_append(&r->out, "\r\n", 2);
    if (!r->head_method)
        weir_buf_append(&r->out, text, blen);
    r->status = status;
    r->resp_bytes = r->head_method ? 0 : blen;
    r->internal_done = 1;
    weir_conn_flush_generated(r);
}

/* A TLS connection carries requests only for hosts whose TLS options are
 * the ones its handshake used (HTTP/2 coalescing must never serve a host
 * through another TLS context): Traefik answers 421 otherwise. */
static bool misdirected(const weir_req_t *r, weir_slice_t host)
{
    const weir_conn_t *c = r->conn;
    if (!c->is_tls || !r->view->snap->tls)
        return false;
    char norm[WEIR_HOST_MAX];
    int n = weir_host_normalize(host, norm, sizeof norm);
    if (n <= 0)
        return false;
    int opt = weir_tls_ctx_options_for(r->view->snap->tls, weir_slice(norm, (size_t)n));
    return opt != c->tls_opt;
}

static void route_request(weir_req_t *r)
{
    weir_conn_t *c = r->conn;
    weir_snapshot_t *s = r->view->snap;
    weir_rule_req_t rq = {0};
    rq.method = r->h1.method;
    rq.host = r->h1.authority.len ? r->h1.authority : r->h1.host;
    split_target(r->h1.path, &rq.path, &rq.query);
    rq.headers = r->h1.headers;
    rq.num_headers = r->h1.num_headers;
    rq.client = &c->peer.sa;
    const weir_entrypoint_cfg_t *ep =
        c->ep < s->cfg->num_entrypoints ? &s->cfg->entrypoints[c->ep] : NULL;
    weir_router_table_t *table = !ep ? NULL : c->is_tls ? s->tls_tables[c->ep] : s->tables[c->ep];
    r->route = table ? weir_router_table_match(table, &rq) : NULL;
    if (ep && ep->redirect_to && !c->is_tls &&
        (!r->route || r->route->cfg->priority <= ep->redirect_priority)) {
        redirect_request(r, ep);
        return;
    }
    if (!r->route) {
        weir_req_error(r, 404);
        return;
    }
    if (misdirected(r, rq.host)) {
        weir_req_error(r, 421);
        return;
    }
    r->service = r->route->service;
    if (r->service->internal == WEIR_INTERNAL_WHOAMI) {
        weir_whoami_respond(r);
        return;
    }
    if (r->service->internal == WEIR_INTERNAL_NOOP) {
        weir_req_error(r, 200);
        return;
    }
    weir_proxy_start(r);
}

void weir_req_start(weir_req_t *r)
{
    weir_loop_t *loop = r->conn->worker->loop;
    r->start_us = weir_loop_wall_us(loop);
    r->start_ms = weir_loop_now(loop);
    r->head_method = weir_slice_eq(r->h1.method, WEIR_SLICE_LIT("HEAD"));
    r->idempotent = method_idempotent(r->h1.method);
    r->upgrade = r->h1.upgrade;
    r->reqbody.kind = r->h1.body;
    r->reqbody.remaining = r->h1.content_length;
    if (r->reqbody.kind == WEIR_BODY_LENGTH && r->reqbody.remaining == 0)
        r->reqbody.kind = WEIR_BODY_NONE;
    route_request(r);
}

static void start_request(weir_conn_t *c, int head_len)
{
    weir_req_t *r = c->req;
    r->h1.head_len = (size_t)head_len;
    c->state = CONN_ACTIVE;
    weir_timer_stop(&c->timer);
    weir_req_start(r);
}

/* The head stays in c->in until the request is finished: its slices are
 * referenced by r->h1. Body bytes follow it in the same buffer; the proxy
 * consumes the head when it has sent the upstream request head. */
/* Whether a parse can tell more than "need more": the end of the head has
 * arrived, or a limit is already exceeded. Searching only the new bytes
 * keeps a head that trickles in byte by byte linear, not quadratic. */
static bool head_worth_parsing(weir_conn_t *c, const weir_entrypoint_cfg_t *ep)
{
    const char *p = weir_buf_head(&c->in);
    size_t len = weir_buf_len(&c->in);
    size_t from = c->scanned > 2 ? c->scanned - 2 : 0;
    c->scanned = (uint32_t)len;
    if (len >= 2 && (memmem(p + from, len - from, "\n\r\n", 3) || memmem(p + from, len - from, "\n\n", 2)))
        return true;
    if (len > ep->max_header_bytes)
        return true;
    return len > WEIR_H1_MAX_LINE_BYTES && !memchr(p, '\n', WEIR_H1_MAX_LINE_BYTES + 1);
}

static void conn_read_head(weir_conn_t *c)
{
    const weir_entrypoint_cfg_t *ep = NULL;
    for (;;) {
        if (weir_buf_len(&c->in)) {
            if (!c->req) {
                c->req = weir_req_new(c);
                if (!c->req) {
                    conn_close(c);
                    return;
                }
            }
            if (!ep)
                ep = conn_ep(c, c->req->view);
            if (!head_worth_parsing(c, ep))
                goto more;
            weir_h1_limits_t lim = {WEIR_H1_MAX_LINE_BYTES, ep->max_header_bytes,
                                    WEIR_H1_MAX_HEADERS};
            int n = weir_h1_parse_request(weir_buf_head(&c->in), weir_buf_len(&c->in), &c->req->h1,
                                          &lim);
            if (n > 0) {
                start_request(c, n);
                return;
            }
            if (n != WEIR_H1_NEED_MORE) {
                head_error(c, -n);
                return;
            }
        }
    more:
        if (c->rd_eof) {
            conn_close(c);
            return;
        }
        if (!c->rd_ready)
            return;
        ssize_t n = weir_conn_fill(c);
        if (n < 0) {
            conn_close(c);
            return;
        }
        if (n > 0 && c->requests && weir_buf_len(&c->in) == (size_t)n) {
            /* First bytes of a new request: the read timeout starts now. */
            weir_view_t *v = c->req ? c->req->view : c->worker->view;
            const weir_entrypoint_cfg_t *e = conn_ep(c, v);
            weir_timer_set(c->worker->loop, &c->timer,
                           e->read_timeout_ms > 0 ? e->read_timeout_ms : -1, conn_timeout);
        }
    }
}

/* ---- first bytes: TLS, h2c or HTTP/1 ---- */

#define MAX_CLIENT_HELLO (64 * 1024)

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void start_h2(weir_conn_t *c)
{
    if (weir_h2_start(c) < 0)
        conn_close(c);
}

static void conn_handshake(weir_conn_t *c)
{
    int rc = weir_tls_io_handshake(c->tls);
    if (rc < 0) {
        conn_close(c);
        return;
    }
    if (rc == 0) {
        if (c->tls->wr_full)
            c->wr_ready = 0;
        return;
    }
    c->wr_ready = !c->tls->wr_full;
    c->rd_ready = 1; /* application data may have come with the Finished */
    weir_slice_t alpn = weir_tls_io_alpn(c->tls);
    if (weir_slice_eq(alpn, WEIR_SLICE_LIT("h2"))) {
        start_h2(c);
        return;
    }
    c->state = CONN_HEAD;
    conn_read_head(c);
}

/* The ClientHello is complete in c->in: pick the certificate and the TLS
 * options by SNI, start the session with the hello's bytes. Returns 1 when
 * the connection moved on (or closed), 0 when more bytes are needed. */
static int start_tls(weir_conn_t *c)
{
    static __thread uint8_t scratch[MAX_CLIENT_HELLO];
    weir_client_hello_t ch;
    int rc = weir_client_hello_parse_records((const uint8_t *)weir_buf_head(&c->in),
                                             weir_buf_len(&c->in), scratch, sizeof scratch, &ch);
    if (rc == WEIR_CH_NEED_MORE && weir_buf_len(&c->in) < MAX_CLIENT_HELLO)
        return 0;
    weir_tls_ctx_t *ctx = c->worker->view->snap->tls;
    if (rc != WEIR_CH_OK || !ctx) {
        conn_close(c);
        return 1;
    }
    int tcp = weir_l4_route_tls(c, &ch);
    if (tcp != 0) {
        if (tcp < 0)
            conn_close(c);
        return 1;
    }
    const weir_tls_cert_t *cert;
    int opt = weir_tls_pick(ctx, &ch, &cert);
    gnutls_session_t session;
    if (weir_tls_session_new(ctx, opt, cert, true, &session) < 0) {
        conn_close(c); /* sniStrict and no certificate for the name */
        return 1;
    }
    c->tls = calloc(1, sizeof *c->tls);
    if (!c->tls) {
        gnutls_deinit(session);
        conn_close(c);
        return 1;
    }
    weir_tls_io_init(c->tls, ctx, session, c->io.fd, &c->in);
    c->is_tls = 1;
    c->tls_opt = (int16_t)opt;
    c->state = CONN_HANDSHAKE;
    conn_handshake(c);
    return 1;
}

#define PP_HEADER_TIMEOUT_MS 5000 /* a PROXY header must be complete by then */

/* Keeps a v4 client of a dual-stack socket (or a PROXY header) as the v4
 * address it is, for logs, headers and ClientIP rules. */
static void set_peer(weir_conn_t *c, const struct sockaddr *sa, socklen_t len)
{
    memcpy(&c->peer, sa, len < sizeof c->peer ? len : sizeof c->peer);
    if (c->peer.sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&c->peer.in6.sin6_addr)) {
        struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = c->peer.in6.sin6_port};
        memcpy(&v4.sin_addr, c->peer.in6.sin6_addr.s6_addr + 12, 4);
        c->peer.in = v4;
    }
}

/* entryPoints.<name>.proxyProtocol: a trusted sender (trustedIPs, or
 * insecure) may start with a PROXY v1/v2 header, whose source address then
 * is the client's everywhere (rules, forwarded headers, logs, PROXY out).
 * A header from anyone else is refused, never parsed; a malformed one
 * closes the connection. Returns 1 when done (c->in starts after the
 * header), 0 when more bytes are needed, -1 when c was closed. */
static int conn_proxy_header(weir_conn_t *c)
{
    weir_pp_header_t h;
    int rc = weir_pp_parse((const uint8_t *)weir_buf_head(&c->in), weir_buf_len(&c->in), &h);
    if (rc == WEIR_PP_NEED_MORE)
        return 0;
    c->pp_pending = 0;
    conn_set_head_timer(c);
    if (rc == WEIR_PP_NONE)
        return 1;
    const weir_entrypoint_cfg_t *ep = conn_ep(c, c->worker->view);
    bool trusted = ep->pp_insecure;
    for (size_t i = 0; !trusted && i < ep->num_pp_trusted; i++)
        trusted = weir_cidr_contains(&ep->pp_trusted[i], &c->peer.sa);
    if (rc == WEIR_PP_INVALID || !trusted) {
        weir_debug("entry point %s: PROXY header %s: connection closed", ep->name,
                   rc == WEIR_PP_INVALID ? "malformed" : "from an untrusted address");
        conn_close(c);
        return -1;
    }
    if (!h.local)
        set_peer(c, (const struct sockaddr *)&h.src, sizeof h.src);
    weir_buf_consume(&c->in, h.len);
    return 1;
}

static void conn_detect(weir_conn_t *c)
{
    for (;;) {
        size_t len = weir_buf_len(&c->in);
        if (len && c->pp_pending) {
            int rc = conn_proxy_header(c);
            if (rc < 0)
                return;
            len = weir_buf_len(&c->in);
        }
        if (len && !c->pp_pending) {
            const char *p = weir_buf_head(&c->in);
            if (p[0] == 0x16) {
                if (start_tls(c))
                    return;
            } else if (memcmp(p, h2_preface, len < 16 ? len : 16) == 0) {
                /* "PRI * HTTP/2.0\r\n" is nothing but HTTP/2: a broken
                 * rest of the preface gets nghttp2's GOAWAY, not an HTTP/1
                 * answer. */
                if (len >= 16) {
                    start_h2(c);
                    return;
                }
            } else {
                if (weir_l4_route_plain(c))
                    return;
                c->state = CONN_HEAD;
                conn_read_head(c);
                return;
            }
        }
        if (!c->pp_pending && weir_l4_immediate(c) && weir_l4_route_plain(c))
            return; /* a server-first protocol: relay before the client speaks */
        if (c->rd_eof || !c->rd_ready) {
            if (c->rd_eof)
                conn_close(c);
            return;
        }
        if (weir_conn_fill(c) < 0) {
            conn_close(c);
            return;
        }
    }
}

/* ---- timers ---- */

static void conn_timeout(weir_timer_t *t)
{
    weir_conn_t *c = (weir_conn_t *)((char *)t - offsetof(weir_conn_t, timer));
    if (c->closed)
        return;
    switch (c->state) {
    case CONN_DETECT:
    case CONN_HANDSHAKE:
        conn_close(c);
        break;
    case CONN_H2:
        weir_h2_timeout(c);
        break;
    case CONN_HEAD:
        if (weir_buf_len(&c->in) || c->requests == 0)
            head_error(c, 408);
        else
            conn_close(c);
        break;
    case CONN_ACTIVE:
        /* The request body stalled (readTimeout) or the response took longer
         * than writeTimeout. */
        if (c->req && !c->req->resp_started && !request_body_done(c->req)) {
            c->req->close_after = 1;
            weir_req_error(c->req, 408);
        } else if (c->req) {
            c->req->close_after = 1;
            weir_req_finish(c->req, 0);
        } else {
            conn_close(c);
        }
        break;
    default:
        conn_close(c);
    }
}

static void conn_set_head_timer(weir_conn_t *c)
{
    const weir_entrypoint_cfg_t *e = conn_ep(c, c->worker->view);
    int64_t ms = c->requests ? e->idle_timeout_ms : e->read_timeout_ms;
    weir_timer_set(c->worker->loop, &c->timer, ms > 0 ? ms : -1, conn_timeout);
}

/* ---- body and tunnel support for the proxy ---- */

void weir_conn_want_body(weir_conn_t *c)
{
    if (c->closed || !c->req)
        return;
    const weir_entrypoint_cfg_t *e = conn_ep(c, c->req->view);
    while (c->rd_ready && !c->rd_eof) {
        ssize_t n = weir_conn_fill(c);
        if (n > 0) {
            if (e->read_timeout_ms > 0 && (c->state == CONN_ACTIVE || c->state == CONN_DISCARD))
                weir_timer_set(c->worker->loop, &c->timer, e->read_timeout_ms, conn_timeout);
            return;
        }
        if (n < 0 || c->rd_eof) {
            c->rd_eof = 1; /* an error ends the body like an EOF */
            return;
        }
    }
    if (!c->rd_eof && e->read_timeout_ms > 0 &&
        (c->state == CONN_ACTIVE || c->state == CONN_DISCARD) &&
        !weir_timer_armed(&c->timer))
        weir_timer_set(c->worker->loop, &c->timer, e->read_timeout_ms, conn_timeout);
}

static void conn_resume(void *arg)
{
    weir_conn_t *c = arg;
    if (!c->closed && c->req && (c->state == CONN_ACTIVE || c->state == CONN_TUNNEL))
        weir_proxy_resume(c->req);
}

void weir_conn_resume_later(weir_conn_t *c)
{
    /* By connection, not by request: the connection's memory outlives this
     * pass (frees are deferred behind us), a finished request's may not. */
    weir_loop_defer(c->worker->loop, conn_resume, c);
}

void weir_conn_tunnel(weir_req_t *r)
{
    r->conn->state = CONN_TUNNEL;
    weir_timer_stop(&r->conn->timer);
}

/* ---- connection lifecycle ---- */

static void conn_free(void *arg)
{
    free(arg);
}

static void conn_close(weir_conn_t *c)
{
    if (c->closed)
        return;
    weir_worker_t *w = c->worker;
    c->closed = 1;
    if (c->req) {
        weir_req_t *r = c->req;
        c->req = NULL;
        if (r->up || r->ups)
            weir_proxy_abort(r);
        if (!r->internal_done && r->status == 0 && r->h1.method.len) {
            r->status = 499; /* client closed before the response; as nginx logs it */
        }
        if (r->h1.method.len)
            weir_accesslog_write(r);
        weir_req_free(r);
    }
    if (c->h2)
        weir_h2_close(c);
    if (c->l4)
        weir_l4_close(c);
    weir_timer_stop(&c->timer);
    if (c->tls) {
        weir_tls_io_bye(c->tls);
        weir_tls_io_free(c->tls);
        free(c->tls);
        c->tls = NULL;
    }
    weir_loop_del(w->loop, &c->io);
    close(c->io.fd);
    weir_buf_release(&c->in);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->num_conns--;
    weir_loop_defer(w->loop, conn_free, c);
}

/* The client closed its side while its request waits for the response
 * (the whole body sent): nothing but the FIN is left to read. Pipelined
 * requests before the FIN keep the connection. */
static bool client_gone(weir_conn_t *c)
{
    if (!c->hup || c->is_tls || weir_buf_len(&c->in) || !weir_body_done(&c->req->reqbody) ||
        c->req->resp_started)
        return false;
    char b;
    ssize_t n = recv(c->io.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0;
}

static void conn_on_io(weir_io_t *io, unsigned events)
{
    weir_conn_t *c = (weir_conn_t *)io;
    if (c->closed)
        return;
    if (events & WEIR_EV_READ)
        c->rd_ready = 1;
    if (events & WEIR_EV_WRITE)
        c->wr_ready = 1;
    if (events & WEIR_EV_HUP)
        c->hup = 1; /* a FIN is queued behind the data: read until EOF */
    if (events & WEIR_EV_ERR) {
        conn_close(c);
        return;
    }
    if (c->tls && (events & WEIR_EV_WRITE)) {
        int f = weir_tls_io_flush(c->tls);
        if (f < 0) {
            conn_close(c);
            return;
        }
        c->wr_ready = f == 1;
    }
    switch (c->state) {
    case CONN_DETECT:
        conn_detect(c);
        break;
    case CONN_HANDSHAKE:
        conn_handshake(c);
        break;
    case CONN_H2:
        weir_h2_on_io(c);
        break;
    case CONN_HEAD:
        conn_read_head(c);
        break;
    case CONN_ACTIVE:
        if (c->req && c->req->internal_done)
            weir_conn_flush_generated(c->req);
        else if (c->req && client_gone(c))
            conn_close(c); /* 499: the upstream request is cancelled, as Traefik does */
        else if (c->req)
            weir_proxy_resume(c->req);
        break;
    case CONN_TUNNEL:
        if (c->req)
            weir_proxy_resume(c->req);
        break;
    case CONN_DISCARD:
        if (c->req)
            discard_pump(c);
        break;
    case CONN_L4:
        weir_l4_on_io(c);
        break;
    default:
        conn_close(c);
    }
}

void weir_conn_accept(weir_worker_t *w, int fd, const struct sockaddr *peer, socklen_t len, int ep)
{
    weir_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->io.fd = fd;
    c->io.cb = conn_on_io;
    c->timer.cb = conn_timeout; /* begin_response() re-arms with timer.cb, even when
                                 * readTimeout is 0 and nothing armed it before */
    c->worker = w;
    c->ep = (uint16_t)ep;
    c->keep_alive = 1;
    c->wr_ready = 1;
    c->rd_ready = 1;
    set_peer(c, peer, len);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->num_conns++;
    if (weir_loop_add(w->loop, &c->io) < 0) {
        conn_close(c);
        return;
    }
    c->state = CONN_DETECT;
    conn_set_head_timer(c);
    const weir_entrypoint_cfg_t *e = conn_ep(c, w->view);
    if (e->proxy_protocol) {
        c->pp_pending = 1;
        int64_t ms = e->read_timeout_ms > 0 && e->read_timeout_ms < PP_HEADER_TIMEOUT_MS
                         ? e->read_timeout_ms
                         : PP_HEADER_TIMEOUT_MS;
        weir_timer_set(w->loop, &c->timer, ms, conn_timeout);
    }
    conn_detect(c);
}

/* Called by the proxy when a client connection must end now. */
void weir_conn_abort(weir_conn_t *c)
{
    conn_close(c);
}

void weir_conns_drain(weir_worker_t *w)
{
    weir_conn_t *c = w->conns;
    while (c) {
        weir_conn_t *next = c->next;
        c->keep_alive = 0;
        if (c->state == CONN_H2)
            weir_h2_drain(c);
        else if ((c->state == CONN_HEAD || c->state == CONN_DETECT) && weir_buf_len(&c->in) == 0)
            conn_close(c);
        c = next;
    }
}

void weir_conns_close_all(weir_worker_t *w)
{
    while (w->conns)
        conn_close(w->conns);
}
