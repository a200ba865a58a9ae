/* HTTP/2 server side: nghttp2 sessions driven from the worker's loop.
 *
 * Input: bytes read from the connection (plain or TLS) go to
 * nghttp2_session_mem_recv; its callbacks collect each stream's header
 * fields, turn a complete head into a weir_req and start it like an
 * HTTP/1 request, and queue request body bytes in the stream's buffer.
 * Output: nghttp2_session_mem_send fills one write buffer per connection,
 * written once per loop pass (deferred), so the frames of every stream that
 * made progress leave together.
 *
 * Flow control is manual (NO_AUTO_WINDOW_UPDATE): received DATA is given
 * back to the client's window only once the proxy has taken it from the
 * stream's buffer, so a slow upstream slows the client down instead of
 * filling memory. Response bodies wait in a bounded per-stream buffer that
 * DATA frames drain; the proxy stops reading the upstream while it is full.
 */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "h2/h2.h"
#include "h2/h2_mem.h"
#include "h2/h2_nv.h"

#define STREAM_WINDOW (256 * 1024)  /* per-stream receive window we announce */
#define CONN_WINDOW (1024 * 1024)   /* connection receive window */
#define OUT_CAP (64 * 1024)         /* response bytes buffered per stream */
#define WBUF_FILL (64 * 1024)       /* frame bytes gathered before a write */
#define READ_ROUNDS 32              /* reads per readiness event (fairness) */
#define ABUSE_WINDOW_MS 10000
#define MAX_RESETS 200              /* client RST_STREAMs per window (rapid reset) */
#define MAX_SETTINGS 100            /* SETTINGS frames per window */
#define MAX_PINGS 100               /* PING frames per window */
#define MAX_CONTINUATIONS 16        /* CONTINUATION frames per header block */
#define DRAIN_FINAL_MS 1000         /* first GOAWAY → final GOAWAY */

struct weir_h2_stream {
    int32_t id;
    weir_h2_conn_t *h2;
    weir_req_t *req;     /* NULL once the request is finished */
    weir_buf_t hdr;      /* decoded fields: [u32 name len][u32 value len][name][value]... */
    size_t hdr_bytes;    /* decoded header list size (RFC 9113 §6.5.2 accounting) */
    uint32_t nfields;
    weir_buf_t body;     /* request body for the proxy, framed as req->reqbody says */
    uint64_t unacked;    /* DATA bytes received and not yet returned to the window */
    weir_buf_t out;      /* response body bytes waiting for DATA frames */
    weir_buf_t trailers; /* response trailer fields ("Name: value\r\n"...) */
    weir_buf_t req_trailers; /* request trailer fields, for a chunked upstream body */
    weir_timer_t timer;  /* writeTimeout once the response started */
    struct weir_h2_stream *next, *prev;
    uint8_t remote_closed : 1, out_eof : 1, submitted : 1, too_big : 1, resume : 1,
        deferred : 1, chunked_up : 1, reset : 1;
};

struct weir_h2_conn {
    nghttp2_session *s;
    weir_conn_t *c;
    weir_buf_t wbuf; /* frames waiting for the socket */
    weir_h2_stream_t *streams;
    int nstreams;
    uint8_t scheduled : 1, draining : 1, final_goaway : 1, dead : 1;
    int64_t abuse_start_ms;
    uint32_t resets, settings, pings;
    int32_t max_stream; /* highest stream id the client opened */
    uint8_t iws_changed; /* a SETTINGS_INITIAL_WINDOW_SIZE was just applied */
};

static void schedule(weir_h2_conn_t *h2);
static void flush(weir_h2_conn_t *h2);

static weir_loop_t *loop_of(const weir_h2_conn_t *h2)
{
    return h2->c->worker->loop;
}

static const weir_entrypoint_cfg_t *ep_of(const weir_conn_t *c)
{
    return &c->worker->view->snap->cfg->entrypoints[c->ep];
}

/* ---- streams ---- */

static weir_h2_stream_t *stream_new(weir_h2_conn_t *h2, int32_t id)
{
    weir_h2_stream_t *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->id = id;
    st->h2 = h2;
    st->next = h2->streams;
    if (h2->streams)
        h2->streams->prev = st;
    h2->streams = st;
    h2->nstreams++;
    weir_timer_stop(&h2->c->timer); /* a stream is open: not idle */
    return st;
}

/* Ends the request of a stream that goes away before its response is
 * complete: the upstream work is cancelled and the log says 499. */
static void stream_drop_req(weir_h2_stream_t *st)
{
    weir_req_t *r = st->req;
    if (!r)
        return;
    st->req = NULL;
    if (weir_req_drop(r))
        st->h2->c->requests++;
}

static void stream_free(weir_h2_stream_t *st)
{
    weir_h2_conn_t *h2 = st->h2;
    stream_drop_req(st);
    weir_timer_stop(&st->timer);
    weir_buf_release(&st->hdr);
    weir_buf_release(&st->body);
    weir_buf_release(&st->out);
    weir_buf_release(&st->trailers);
    weir_buf_release(&st->req_trailers);
    if (st->prev)
        st->prev->next = st->next;
    else
        h2->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    h2->nstreams--;
    free(st);
    if (h2->nstreams == 0 && !h2->dead) {
        const weir_entrypoint_cfg_t *ep = ep_of(h2->c);
        if (ep->idle_timeout_ms > 0 && !h2->draining)
            weir_timer_set(loop_of(h2), &h2->c->timer, ep->idle_timeout_ms, h2->c->timer.cb);
    }
}

static weir_h2_stream_t *stream_of(weir_h2_conn_t *h2, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h2->s, id);
}

/* Gives received DATA back to the client's windows once the proxy has
 * taken most of what is buffered (hysteresis: one WINDOW_UPDATE per half
 * window, not one per read). */
static void give_back(weir_h2_stream_t *st, bool all)
{
    if (!st->unacked)
        return;
    if (!all && weir_buf_len(&st->body) > STREAM_WINDOW / 2)
        return;
    nghttp2_session_consume(st->h2->s, st->id, st->unacked);
    st->unacked = 0;
    schedule(st->h2);
}

/* ---- request heads ---- */

/* The header block of a request is complete: fill a weir_req from it and
 * start it. Slices point into st->hdr, which no longer changes. */
static void start_stream(weir_h2_stream_t *st)
{
    weir_h2_conn_t *h2 = st->h2;
    weir_req_t *r = weir_req_new(h2->c);
    if (!r) {
        nghttp2_submit_rst_stream(h2->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    st->req = r;
    r->h2s = st;
    bool chunked;
    int err = weir_fields_to_request(r, &st->hdr, st->remote_closed, &chunked);
    if (!err && st->too_big)
        err = 431;
    if (err) {
        weir_req_start_error(r, err);
        return;
    }
    st->chunked_up = chunked;
    weir_req_start(r);
}

/* ---- nghttp2 callbacks ---- */

/* RFC 9113 §5.1.1: a client's new stream ids only grow. nghttp2 drops a
 * HEADERS frame on a lower, never-opened id silently; answer it with the
 * connection error the RFC asks for. */
static int on_begin_frame(nghttp2_session *s, const nghttp2_frame_hd *hd, void *ud)
{
    weir_h2_conn_t *h2 = ud;
    if (hd->type != NGHTTP2_HEADERS || hd->stream_id <= 0)
        return 0;
    if (hd->stream_id > h2->max_stream) {
        h2->max_stream = hd->stream_id;
        return 0;
    }
    if (hd->stream_id < h2->max_stream && !nghttp2_session_find_stream(s, hd->stream_id))
        nghttp2_session_terminate_session(s, NGHTTP2_PROTOCOL_ERROR);
    return 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    weir_h2_conn_t *h2 = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    weir_h2_stream_t *st = stream_new(h2, frame->hd.stream_id);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(s, frame->hd.stream_id, st);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    weir_h2_conn_t *h2 = ud;
    weir_h2_stream_t *st = stream_of(h2, frame->hd.stream_id);
    if (!st)
        return 0;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        /* Request trailers go upstream in the last chunk when the body is
         * chunked; with a content-length HTTP/1.1 has no place for them. */
        if (st->chunked_up && st->req && weir_buf_len(&st->req_trailers) + nlen + vlen < 65536 &&
            (weir_buf_append(&st->req_trailers, name, nlen) < 0 ||
             weir_buf_append(&st->req_trailers, ": ", 2) < 0 ||
             weir_buf_append(&st->req_trailers, value, vlen) < 0 ||
             weir_buf_append(&st->req_trailers, "\r\n", 2) < 0))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
    }
    st->hdr_bytes += nlen + vlen + 32;
    if (st->hdr_bytes > ep_of(h2->c)->max_header_bytes ||
        st->nfields >= WEIR_H1_MAX_HEADERS + 8) {
        st->too_big = 1; /* answered 431 once the block is complete */
        return 0;
    }
    if (weir_fields_append(&st->hdr, name, nlen, value, vlen) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->nfields++;
    return 0;
}

/* Counts frames a client can send at no cost to itself; past a budget the
 * connection ends with ENHANCE_YOUR_CALM. */
static bool over_budget(weir_h2_conn_t *h2, uint32_t *counter, uint32_t max)
{
    int64_t now = weir_loop_now(loop_of(h2));
    if (now - h2->abuse_start_ms >= ABUSE_WINDOW_MS) {
        h2->abuse_start_ms = now;
        h2->resets = h2->settings = h2->pings = 0;
    }
    return ++*counter > max;
}

static void calm_down(weir_h2_conn_t *h2, const char *why)
{
    weir_debug("http2: %s: GOAWAY ENHANCE_YOUR_CALM", why);
    nghttp2_session_terminate_session(h2->s, NGHTTP2_ENHANCE_YOUR_CALM);
}

static void wake(weir_h2_stream_t *st)
{
    if (st->req) {
        st->resume = 1;
        schedule(st->h2);
    }
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    weir_h2_conn_t *h2 = ud;
    if (frame->hd.type != NGHTTP2_SETTINGS)
        h2->iws_changed = 0;
    weir_h2_stream_t *st = frame->hd.stream_id ? stream_of(h2, frame->hd.stream_id) : NULL;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (!st)
            break;
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            st->remote_closed = 1;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            start_stream(st);
        } else if (st->remote_closed) {
            if (st->chunked_up && st->req) {
                weir_buf_append(&st->body, "0\r\n", 3);
                if (weir_buf_len(&st->req_trailers))
                    weir_buf_append(&st->body, weir_buf_head(&st->req_trailers),
                                    weir_buf_len(&st->req_trailers));
                weir_buf_append(&st->body, "\r\n", 2);
            }
            wake(st);
        }
        break;
    case NGHTTP2_DATA:
        if (st && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            st->remote_closed = 1;
            if (st->chunked_up && st->req)
                weir_buf_append(&st->body, "0\r\n\r\n", 5);
            wake(st);
        }
        break;
    case NGHTTP2_RST_STREAM:
        if (over_budget(h2, &h2->resets, MAX_RESETS))
            calm_down(h2, "too many stream resets");
        break;
    case NGHTTP2_SETTINGS:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            break;
        for (size_t i = 0; i < frame->settings.niv; i++)
            if (frame->settings.iv[i].settings_id == NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE)
                h2->iws_changed = 1;
        if (over_budget(h2, &h2->settings, MAX_SETTINGS))
            calm_down(h2, "SETTINGS flood");
        break;
    case NGHTTP2_PING:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && over_budget(h2, &h2->pings, MAX_PINGS))
            calm_down(h2, "PING flood");
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    weir_h2_conn_t *h2 = ud;
    weir_h2_stream_t *st = stream_of(h2, id);
    if (!st || !st->req) {
        /* Nobody wants it (the response is already out): drop it, but keep
         * the client's window open. */
        nghttp2_session_consume(s, id, len);
        schedule(h2);
        return 0;
    }
    if (st->chunked_up) {
        char size[24];
        int n = snprintf(size, sizeof size, "%zx\r\n", len);
        if (weir_buf_append(&st->body, size, (size_t)n) < 0 ||
            weir_buf_append(&st->body, data, len) < 0 || weir_buf_append(&st->body, "\r\n", 2) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    } else if (weir_buf_append(&st->body, data, len) < 0) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    st->unacked += len;
    wake(st);
    return 0;
}

/* RFC 9113 §6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE that overflows a
 * stream's window is a connection error. nghttp2 resets the stream instead
 * (RST_STREAM FLOW_CONTROL_ERROR, queued while applying the SETTINGS):
 * turn that into the GOAWAY the RFC asks for. */
static int before_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    weir_h2_conn_t *h2 = ud;
    if (h2->iws_changed && frame->hd.type == NGHTTP2_RST_STREAM &&
        frame->rst_stream.error_code == NGHTTP2_FLOW_CONTROL_ERROR) {
        h2->iws_changed = 0;
        nghttp2_session_terminate_session(s, NGHTTP2_FLOW_CONTROL_ERROR);
        return NGHTTP2_ERR_CANCEL;
    }
    return 0;
}

/* A complete response went out while the client is still sending a body
 * nobody will read: ask it to stop (RFC 9113 §8.1, RST_STREAM NO_ERROR)
 * instead of taking the rest. */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS))
        return 0;
    weir_h2_stream_t *st = stream_of(ud, frame->hd.stream_id);
    if (st && !st->req && !st->remote_closed && !st->reset) {
        st->reset = 1;
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    weir_h2_stream_t *st = stream_of(ud, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    stream_free(st);
    return 0;
}

/* ---- responses ---- */

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud);

/* Sends the response head of r->resp on the stream; the body follows from
 * st->out unless the response has none. */
static int submit_head(weir_req_t *r, bool has_body)
{
    weir_h2_stream_t *st = r->h2s;
    weir_h2_conn_t *h2 = st->h2;
    static __thread weir_nvlist_t l;
    weir_nv_response(&l, r);
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
    int rv = nghttp2_submit_response(h2->s, st->id, l.nv, l.n, has_body ? &prd : NULL);
    if (rv < 0)
        return -1;
    st->submitted = 1;
    if (!has_body)
        st->out_eof = 1;
    schedule(h2);
    return 0;
}

/* Trailer fields kept as "Name: value\r\n" lines → a trailing HEADERS. */
static void submit_trailers(weir_h2_stream_t *st)
{
    static __thread weir_nvlist_t l;
    weir_nv_reset(&l);
    weir_nv_add_lines(&l, weir_buf_head(&st->trailers), weir_buf_len(&st->trailers));
    nghttp2_submit_trailer(st->h2->s, st->id, l.nv, l.n);
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    weir_h2_stream_t *st = src->ptr;
    size_t have = weir_buf_len(&st->out);
    size_t n = have < length ? have : length;
    if (n) {
        memcpy(buf, weir_buf_head(&st->out), n);
        weir_buf_consume(&st->out, n);
        weir_buf_release_if_empty(&st->out);
        wake(st); /* room for more: the proxy may go on */
    }
    if (weir_buf_len(&st->out) == 0 && st->out_eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (weir_buf_len(&st->trailers)) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            submit_trailers(st);
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static void resume_data(weir_h2_stream_t *st)
{
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->h2->s, st->id);
    }
    schedule(st->h2);
}

/* ---- the weir_req operations ---- */

ssize_t weir_h2_send(weir_req_t *r, const struct iovec *iov, int iovcnt)
{
    weir_h2_stream_t *st = r->h2s;
    if (st->h2->dead || st->reset)
        return -1;
    size_t taken = 0;
    for (int i = 0; i < iovcnt; i++) {
        size_t room = OUT_CAP > weir_buf_len(&st->out) ? OUT_CAP - weir_buf_len(&st->out) : 0;
        size_t n = iov[i].iov_len < room ? iov[i].iov_len : room;
        if (n && weir_buf_append(&st->out, iov[i].iov_base, n) < 0)
            return -1;
        taken += n;
        if (n < iov[i].iov_len)
            break;
    }
    if (taken)
        resume_data(st);
    return (ssize_t)taken;
}

int weir_h2_submit_head(weir_req_t *r)
{
    return submit_head(r, weir_resp_has_body(r));
}

void weir_h2_flush_generated(weir_req_t *r)
{
    /* Internal answers (errors, whoami, redirections) are written as
     * HTTP/1.1 messages in r->out: read the head back and send it as
     * HTTP/2, with the rest as the body. */
    weir_h2_stream_t *st = r->h2s;
    int n = weir_req_generated_head(r);
    if (n <= 0) {
        weir_req_finish(r, 0);
        return;
    }
    if (submit_head(r, weir_resp_has_body(r)) < 0) {
        weir_req_finish(r, 0);
        return;
    }
    weir_buf_consume(&r->out, (size_t)n);
    if (weir_buf_len(&r->out) && !st->out_eof)
        weir_buf_append(&st->out, weir_buf_head(&r->out), weir_buf_len(&r->out));
    weir_buf_consume(&r->out, weir_buf_len(&r->out));
    weir_req_finish(r, 1);
}

void weir_h2_finish(weir_req_t *r, int ok)
{
    weir_h2_stream_t *st = r->h2s;
    weir_h2_conn_t *h2 = st->h2;
    st->req = NULL;
    r->h2s = NULL;
    weir_timer_stop(&st->timer);
    if (ok && st->submitted) {
        st->out_eof = 1;
        if (weir_buf_len(&r->trailers)) {
            st->trailers = r->trailers;
            memset(&r->trailers, 0, sizeof r->trailers);
        }
        resume_data(st);
    } else if (!st->reset) {
        st->reset = 1;
        nghttp2_submit_rst_stream(h2->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        schedule(h2);
    }
    /* Whatever request body is still buffered will not be read: free the
     * client's window for the rest (it is dropped as it comes). */
    weir_buf_release(&st->body);
    give_back(st, true);
    h2->c->requests++; /* (the access log line is written: it counts from 1) */
    weir_req_free(r);
}

weir_buf_t *weir_h2_body_src(weir_req_t *r)
{
    return &r->h2s->body;
}

void weir_h2_want_body(weir_req_t *r)
{
    give_back(r->h2s, false);
}

bool weir_h2_body_eof(const weir_req_t *r)
{
    return r->h2s->remote_closed || r->h2s->reset;
}

void weir_h2_resume_later(weir_req_t *r)
{
    r->h2s->resume = 1;
    schedule(r->h2s->h2);
}

static void stream_timeout(weir_timer_t *t)
{
    weir_h2_stream_t *st = (weir_h2_stream_t *)((char *)t - offsetof(weir_h2_stream_t, timer));
    if (st->req)
        weir_req_finish(st->req, 0); /* writeTimeout: RST_STREAM, upstream released */
}

void weir_h2_response_started(weir_req_t *r)
{
    weir_h2_stream_t *st = r->h2s;
    int64_t ms = ep_of(r->conn)->write_timeout_ms;
    if (ms > 0)
        weir_timer_set(loop_of(st->h2), &st->timer, ms, stream_timeout);
}

/* ---- connection I/O ---- */

static void close_conn(weir_h2_conn_t *h2)
{
    h2->dead = 1;
    weir_conn_abort(h2->c);
}

/* Streams that got room or bytes continue; then the frames go out. */
static void run(void *arg)
{
    weir_conn_t *c = arg;
    if (c->closed || !c->h2)
        return;
    weir_h2_conn_t *h2 = c->h2;
    h2->scheduled = 0;
    if (c->rd_ready && !c->rd_eof)
        weir_h2_on_io(c); /* input left over from a busy pass; it flushes too */
    else
        flush(h2);
}

static void schedule(weir_h2_conn_t *h2)
{
    if (h2->scheduled || h2->dead || h2->c->closed)
        return;
    h2->scheduled = 1;
    weir_loop_defer(loop_of(h2), run, h2->c);
}

static void resume_streams(weir_h2_conn_t *h2)
{
    /* Streams are freed only by on_stream_close, inside mem_send/recv, not
     * under a resumed request; the next pointer is still taken first. */
    weir_conn_t *c = h2->c;
    for (weir_h2_stream_t *st = h2->streams, *next; st; st = next) {
        next = st->next;
        if (st->resume && st->req) {
            st->resume = 0;
            weir_proxy_resume(st->req);
            if (c->closed)
                return;
        }
    }
}

static void flush(weir_h2_conn_t *h2)
{
    weir_conn_t *c = h2->c;
    int rounds;
    for (rounds = 0; rounds < 8; rounds++) {
        resume_streams(h2);
        if (c->closed)
            return;
        while (weir_buf_len(&h2->wbuf) < WBUF_FILL && nghttp2_session_want_write(h2->s)) {
            const uint8_t *d;
            ssize_t n = nghttp2_session_mem_send(h2->s, &d);
            if (n < 0) {
                close_conn(h2);
                return;
            }
            if (n == 0)
                break;
            if (weir_buf_append(&h2->wbuf, d, (size_t)n) < 0) {
                close_conn(h2);
                return;
            }
        }
        if (weir_buf_len(&h2->wbuf) == 0)
            break;
        while (weir_buf_len(&h2->wbuf)) {
            /* A short count without a full socket (TLS takes at most a
             * budget per call) means: write again. */
            struct iovec iov = {weir_buf_head(&h2->wbuf), weir_buf_len(&h2->wbuf)};
            ssize_t w = weir_conn_write(c, &iov, 1);
            if (w < 0) {
                close_conn(h2);
                return;
            }
            if (w == 0)
                return; /* the socket is full: EPOLLOUT brings us back */
            weir_buf_consume(&h2->wbuf, (size_t)w);
        }
        weir_buf_release(&h2->wbuf);
        bool again = nghttp2_session_want_write(h2->s);
        for (weir_h2_stream_t *st = h2->streams; st && !again; st = st->next)
            again = st->resume && st->req;
        if (!again)
            break;
    }
    if (rounds == 8) {
        schedule(h2); /* still busy: continue after the other work queued */
        return;
    }
    if ((!nghttp2_session_want_read(h2->s) && !nghttp2_session_want_write(h2->s)) ||
        (c->rd_eof && h2->nstreams == 0))
        close_conn(h2); /* GOAWAY exchanged, or the client left, and no stream is open */
}

static void on_recv_error(weir_h2_conn_t *h2, ssize_t rv)
{
    uint32_t code = NGHTTP2_PROTOCOL_ERROR;
    if (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
        code = NGHTTP2_ENHANCE_YOUR_CALM;
    else if (rv == NGHTTP2_ERR_NOMEM || rv == NGHTTP2_ERR_CALLBACK_FAILURE)
        code = NGHTTP2_INTERNAL_ERROR;
    weir_debug("http2: %s: GOAWAY %u", nghttp2_strerror((int)rv), code);
    /* The session cannot take more input; say why, then close. */
    nghttp2_session_terminate_session(h2->s, code);
    h2->dead = 1;
    const uint8_t *d;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(h2->s, &d)) > 0)
        weir_buf_append(&h2->wbuf, d, (size_t)n);
    if (weir_buf_len(&h2->wbuf)) {
        struct iovec iov = {weir_buf_head(&h2->wbuf), weir_buf_len(&h2->wbuf)};
        weir_conn_write(h2->c, &iov, 1);
    }
    weir_conn_abort(h2->c);
}

void weir_h2_on_io(weir_conn_t *c)
{
    weir_h2_conn_t *h2 = c->h2;
    for (int rounds = 0; rounds < READ_ROUNDS; rounds++) {
        if (weir_buf_len(&c->in)) {
            ssize_t rv = nghttp2_session_mem_recv(h2->s, (const uint8_t *)weir_buf_head(&c->in),
                                                  weir_buf_len(&c->in));
            if (rv < 0) {
                on_recv_error(h2, rv);
                return;
            }
            if (c->closed)
                return;
            weir_buf_consume(&c->in, (size_t)rv);
            weir_buf_release_if_empty(&c->in);
        }
        if (!c->rd_ready || c->rd_eof)
            break;
        if (weir_conn_fill(c) < 0) {
            close_conn(h2);
            return;
        }
    }
    if (c->rd_ready && !c->rd_eof)
        schedule(h2); /* more to read: after the other connections */
    if (c->rd_eof && h2->nstreams == 0) {
        close_conn(h2); /* the client closed its side and nothing is pending */
        return;
    }
    flush(h2);
}

int weir_h2_start(weir_conn_t *c)
{
    const weir_entrypoint_cfg_t *ep = ep_of(c);
    weir_h2_conn_t *h2 = calloc(1, sizeof *h2);
    if (!h2)
        return -1;
    h2->c = c;
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        free(h2);
        return -1;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_before_frame_send_callback(cb, before_frame_send);
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        free(h2);
        return -1;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(
        opt, (size_t)(ep->h2_max_encoder_table_size > 0 ? ep->h2_max_encoder_table_size : 4096));
    nghttp2_option_set_max_continuations(opt, MAX_CONTINUATIONS);
    nghttp2_option_set_max_settings(opt, 32);
    int rv = nghttp2_session_server_new3(&h2->s, cb, h2, opt, weir_h2_mem());
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) {
        free(h2);
        return -1;
    }
    uint32_t streams = ep->h2_max_concurrent_streams > 0 ? (uint32_t)ep->h2_max_concurrent_streams : 250;
    uint32_t table = ep->h2_max_decoder_table_size > 0 ? (uint32_t)ep->h2_max_decoder_table_size : 4096;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, table},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)ep->max_header_bytes},
    };
    nghttp2_submit_settings(h2->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    nghttp2_session_set_local_window_size(h2->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    h2->abuse_start_ms = weir_loop_now(c->worker->loop);
    c->h2 = h2;
    c->state = CONN_H2;
    c->keep_alive = 1;
    /* Until the first stream: the read timeout, then the idle timeout. */
    if (ep->read_timeout_ms > 0)
        weir_timer_set(c->worker->loop, &c->timer, ep->read_timeout_ms, c->timer.cb);
    if (c->worker->draining)
        weir_h2_drain(c);
    weir_h2_on_io(c);
    return 0;
}

void weir_h2_close(weir_conn_t *c)
{
    weir_h2_conn_t *h2 = c->h2;
    if (!h2)
        return;
    h2->dead = 1;
    while (h2->streams) {
        weir_h2_stream_t *st = h2->streams;
        stream_free(st);
    }
    nghttp2_session_del(h2->s);
    weir_buf_release(&h2->wbuf);
    c->h2 = NULL;
    free(h2);
}

void weir_h2_drain(weir_conn_t *c)
{
    weir_h2_conn_t *h2 = c->h2;
    if (!h2 || h2->draining)
        return;
    h2->draining = 1;
    /* First GOAWAY with the largest stream id: requests already on the
     * wire are still taken; the final one follows after a round trip. */
    nghttp2_submit_shutdown_notice(h2->s);
    weir_timer_set(c->worker->loop, &c->timer, DRAIN_FINAL_MS, c->timer.cb);
    schedule(h2);
}

void weir_h2_timeout(weir_conn_t *c)
{
    weir_h2_conn_t *h2 = c->h2;
    if (h2->draining && !h2->final_goaway) {
        h2->final_goaway = 1;
        nghttp2_submit_goaway(h2->s, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(h2->s), NGHTTP2_NO_ERROR,
                              NULL, 0);
        flush(h2);
        return;
    }
    if (h2->nstreams == 0) {
        /* Idle (or no preface in time): say goodbye, then close. */
        nghttp2_session_terminate_session(h2->s, NGHTTP2_NO_ERROR);
        flush(h2);
        if (!c->closed)
            close_conn(h2);
        return;
    }
    if (h2->final_goaway)
        return; /* draining: the worker's grace period ends it */
}
