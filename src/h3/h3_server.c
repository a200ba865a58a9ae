/* HTTP/3 server side: nghttp3 sessions on top of the QUIC layer.
 *
 * Input: the QUIC layer hands each stream's bytes to nghttp3_conn_read_stream;
 * its callbacks collect a request's fields, turn a complete head into a
 * weir_req (started like any other request) and queue body bytes in the
 * stream's buffer. Output: the QUIC layer asks for stream data
 * (nghttp3_conn_writev_stream) while it builds packets.
 *
 * nghttp3 and ngtcp2 keep pointers to response body bytes until the peer
 * acknowledges them, so those bytes live in fixed chunks that are never
 * moved, and are freed as acknowledgements arrive.
 */
#include <errno.h>
#include <nghttp3/nghttp3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "h2/h2_nv.h"
#include "h3/h3.h"

#define STREAM_WINDOW (256 * 1024) /* must match the QUIC stream window */
#define CHUNK (16 * 1024)
#define OUT_CAP (256 * 1024) /* response bytes queued per stream, sent or not, until acked */

_Static_assert(sizeof(nghttp2_nv) == sizeof(nghttp3_nv), "nv layouts differ");
_Static_assert(offsetof(nghttp2_nv, valuelen) == offsetof(nghttp3_nv, valuelen), "nv layouts");

typedef struct chunk {
    struct chunk *next;
    size_t len;
    uint8_t data[CHUNK];
} chunk_t;

struct weir_h3_stream {
    int64_t id;
    weir_h3_conn_t *h3;
    weir_req_t *req; /* NULL once the request is finished */
    weir_buf_t hdr;  /* decoded fields (see weir_fields_append) */
    size_t hdr_bytes;
    uint32_t nfields;
    weir_buf_t body;     /* request body for the proxy, framed as req->reqbody says */
    uint64_t unacked;    /* body bytes received and still to be credited to the windows */
    weir_buf_t req_trailers; /* request trailer fields for a chunked upstream body */
    weir_buf_t trailers;     /* response trailer fields ("Name: value\r\n"...) */
    /* response body: chunks from head to tail; the first head_acked bytes
     * of head are acknowledged, sending continues at (send, send_off) */
    chunk_t *head, *tail, *send;
    size_t head_acked, send_off, queued;
    weir_timer_t timer; /* writeTimeout once the response started */
    struct weir_h3_stream *next, *prev;
    uint8_t remote_closed : 1, out_eof : 1, submitted : 1, too_big : 1, resume : 1, blocked : 1,
        chunked_up : 1, reset : 1;
    uint8_t eof_handed : 1, early : 1;
};

struct weir_h3_conn {
    nghttp3_conn *h;
    ngtcp2_conn *q;
    weir_quic_conn_t *qc;
    weir_conn_t *c;
    weir_h3_stream_t *streams;
    int nstreams;
    uint8_t goaway : 1, dead : 1, early_now : 1;
};

static const weir_entrypoint_cfg_t *ep_of(const weir_conn_t *c)
{
    return &c->worker->view->snap->cfg->entrypoints[c->ep];
}

/* ---- flow control ---- */

static void credit(weir_h3_conn_t *h3, int64_t sid, uint64_t n)
{
    if (!n)
        return;
    ngtcp2_conn_extend_max_stream_offset(h3->q, sid, n);
    ngtcp2_conn_extend_max_offset(h3->q, n);
    weir_quic_schedule(h3->qc);
}

/* Credits body bytes the proxy has taken, once most of the buffer is gone
 * (one MAX_STREAM_DATA per half window, not one per read). */
static void give_back(weir_h3_stream_t *st, bool all)
{
    if (!st->unacked)
        return;
    if (!all && weir_buf_len(&st->body) > STREAM_WINDOW / 2)
        return;
    credit(st->h3, st->id, st->unacked);
    st->unacked = 0;
}

/* ---- streams ---- */

static void out_free(weir_h3_stream_t *st)
{
    while (st->head) {
        chunk_t *k = st->head;
        st->head = k->next;
        free(k);
    }
    st->tail = st->send = NULL;
    st->queued = st->head_acked = st->send_off = 0;
}

static weir_h3_stream_t *stream_new(weir_h3_conn_t *h3, int64_t id)
{
    weir_h3_stream_t *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->id = id;
    st->h3 = h3;
    st->next = h3->streams;
    if (h3->streams)
        h3->streams->prev = st;
    h3->streams = st;
    h3->nstreams++;
    return st;
}

/* Ends the request of a stream that goes away before its response is
 * complete: the upstream work is cancelled and the log says 499. */
static void stream_drop_req(weir_h3_stream_t *st)
{
    weir_req_t *r = st->req;
    if (!r)
        return;
    st->req = NULL;
    if (weir_req_drop(r))
        st->h3->c->requests++;
}

static void stream_free(weir_h3_stream_t *st)
{
    weir_h3_conn_t *h3 = st->h3;
    stream_drop_req(st);
    weir_timer_stop(&st->timer);
    weir_buf_release(&st->hdr);
    weir_buf_release(&st->body);
    weir_buf_release(&st->req_trailers);
    weir_buf_release(&st->trailers);
    out_free(st);
    if (st->prev)
        st->prev->next = st->next;
    else
        h3->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    h3->nstreams--;
    free(st);
}

static void wake(weir_h3_stream_t *st)
{
    if (st->req) {
        st->resume = 1;
        weir_quic_schedule(st->h3->qc);
    }
}

/* ---- request heads ---- */

static void start_stream(weir_h3_stream_t *st)
{
    weir_h3_conn_t *h3 = st->h3;
    weir_req_t *r = weir_req_new(h3->c);
    if (!r) {
        ngtcp2_conn_shutdown_stream(h3->q, st->id, NGHTTP3_H3_INTERNAL_ERROR);
        weir_quic_schedule(h3->qc);
        return;
    }
    st->req = r;
    r->h3s = st;
    bool chunked;
    int err = weir_fields_to_request(r, &st->hdr, st->remote_closed, &chunked);
    if (!err && st->too_big)
        err = 431;
    if (!err && st->early) {
        weir_slice_t m = r->h1.method;
        if (weir_slice_eq(m, WEIR_SLICE_LIT("GET")) || weir_slice_eq(m, WEIR_SLICE_LIT("HEAD")) ||
            weir_slice_eq(m, WEIR_SLICE_LIT("OPTIONS"))) {
            if (r->h1.num_headers < WEIR_H1_MAX_HEADERS)
                r->h1.headers[r->h1.num_headers++] =
                    (weir_header_t){WEIR_SLICE_LIT("early-data"), WEIR_SLICE_LIT("1")};
        } else {
            err = 425;
        }
    }
    if (err) {
        weir_req_start_error(r, err);
        return;
    }
    st->chunked_up = chunked;
    weir_req_start(r);
}

/* ---- nghttp3 callbacks ---- */

static int on_begin_headers(nghttp3_conn *h, int64_t sid, void *ud, void *sud)
{
    weir_h3_conn_t *h3 = ud;
    if (sud)
        return 0; /* trailers come through their own callbacks */
    weir_h3_stream_t *st = stream_new(h3, sid);
    if (!st)
        return NGHTTP3_ERR_NOMEM;
    st->early = h3->early_now;
    nghttp3_conn_set_stream_user_data(h, sid, st);
    return 0;
}

static int on_header(nghttp3_conn *h, int64_t sid, int32_t token, nghttp3_rcbuf *name,
                     nghttp3_rcbuf *value, uint8_t flags, void *ud, void *sud)
{
    weir_h3_stream_t *st = sud;
    weir_h3_conn_t *h3 = ud;
    if (!st)
        return 0;
    nghttp3_vec n = nghttp3_rcbuf_get_buf(name), v = nghttp3_rcbuf_get_buf(value);
    st->hdr_bytes += n.len + v.len + 32;
    if (st->hdr_bytes > ep_of(h3->c)->max_header_bytes || st->nfields >= WEIR_H1_MAX_HEADERS + 8) {
        st->too_big = 1; /* answered 431 once the head is complete */
        return 0;
    }
    if (weir_fields_append(&st->hdr, n.base, n.len, v.base, v.len) < 0)
        return NGHTTP3_ERR_NOMEM;
    st->nfields++;
    return 0;
}

static int on_end_headers(nghttp3_conn *h, int64_t sid, int fin, void *ud, void *sud)
{
    weir_h3_stream_t *st = sud;
    if (!st)
        return 0;
    if (fin)
        st->remote_closed = 1;
    start_stream(st);
    return 0;
}

/* Request trailers go upstream in the last chunk when the body is chunked;
 * with a content-length HTTP/1.1 has no place for them. */
static int on_trailer(nghttp3_conn *h, int64_t sid, int32_t token, nghttp3_rcbuf *name,
                      nghttp3_rcbuf *value, uint8_t flags, void *ud, void *sud)
{
    weir_h3_stream_t *st = sud;
    if (!st || !st->chunked_up || !st->req)
        return 0;
    nghttp3_vec n = nghttp3_rcbuf_get_buf(name), v = nghttp3_rcbuf_get_buf(value);
    if (weir_buf_len(&st->req_trailers) + n.len + v.len >= 65536)
        return 0;
    if (weir_buf_append(&st->req_trailers, n.base, n.len) < 0 ||
        weir_buf_append(&st->req_trailers, ": ", 2) < 0 ||
        weir_buf_append(&st->req_trailers, v.base, v.len) < 0 ||
        weir_buf_append(&st->req_trailers, "\r\n", 2) < 0)
        return NGHTTP3_ERR_NOMEM;
    return 0;
}

static int on_data(nghttp3_conn *h, int64_t sid, const uint8_t *data, size_t len, void *ud,
                   void *sud)
{
    weir_h3_stream_t *st = sud;
    weir_h3_conn_t *h3 = ud;
    if (!st || !st->req) {
        credit(h3, sid, len); /* nobody reads it: keep the window open */
        return 0;
    }
    if (st->chunked_up) {
        char size[24];
        int n = snprintf(size, sizeof size, "%zx\r\n", len);
        if (weir_buf_append(&st->body, size, (size_t)n) < 0 ||
            weir_buf_append(&st->body, data, len) < 0 || weir_buf_append(&st->body, "\r\n", 2) < 0)
            return NGHTTP3_ERR_NOMEM;
    } else if (weir_buf_append(&st->body, data, len) < 0) {
        return NGHTTP3_ERR_NOMEM;
    }
    st->unacked += len;
    wake(st);
    return 0;
}

static int on_deferred_consume(nghttp3_conn *h, int64_t sid, size_t n, void *ud, void *sud)
{
    credit(ud, sid, n);
    return 0;
}

static int on_end_stream(nghttp3_conn *h, int64_t sid, void *ud, void *sud)
{
    weir_h3_stream_t *st = sud;
    if (!st)
        return 0;
    st->remote_closed = 1;
    if (st->chunked_up && st->req) {
        weir_buf_append(&st->body, "0\r\n", 3);
        if (weir_buf_len(&st->req_trailers))
            weir_buf_append(&st->body, weir_buf_head(&st->req_trailers),
                            weir_buf_len(&st->req_trailers));
        weir_buf_append(&st->body, "\r\n", 2);
    }
    wake(st);
    return 0;
}

/* The peer acknowledged n body bytes: free what no one points to any more. */
static int on_acked(nghttp3_conn *h, int64_t sid, uint64_t n, void *ud, void *sud)
{
    weir_h3_stream_t *st = sud;
    if (!st)
        return 0;
    st->queued -= n < st->queued ? n : st->queued;
    while (n && st->head) {
        chunk_t *k = st->head;
        size_t take = k->len - st->head_acked;
        if (take > n)
            take = (size_t)n;
        st->head_acked += take;
        n -= take;
        if (st->head_acked < k->len)
            break;
        if (k == st->tail) {
            if (st->send == k && st->send_off == k->len) {
                k->len = st->head_acked = st->send_off = 0; /* reuse the last chunk */
            }
            break;
        }
        st->head = k->next;
        if (st->send == k) {
            st->send = k->next;
            st->send_off = 0;
        }
        st->head_acked = 0;
        free(k);
    }
    wake(st); /* room for more: the proxy may go on */
    return 0;
}

static int on_stream_close(nghttp3_conn *h, int64_t sid, uint64_t code, void *ud, void *sud)
{
    weir_h3_conn_t *h3 = ud;
    weir_h3_stream_t *st = sud;
    if (st)
        stream_free(st);
    if (ngtcp2_is_bidi_stream(sid) && !ngtcp2_conn_is_local_stream(h3->q, sid))
        ngtcp2_conn_extend_max_streams_bidi(h3->q, 1);
    return 0;
}

static int on_stop_sending(nghttp3_conn *h, int64_t sid, uint64_t code, void *ud, void *sud)
{
    weir_h3_conn_t *h3 = ud;
    ngtcp2_conn_shutdown_stream_read(h3->q, sid, code);
    weir_quic_schedule(h3->qc);
    return 0;
}

static int on_reset_stream(nghttp3_conn *h, int64_t sid, uint64_t code, void *ud, void *sud)
{
    weir_h3_conn_t *h3 = ud;
    ngtcp2_conn_shutdown_stream_write(h3->q, sid, code);
    weir_quic_schedule(h3->qc);
    return 0;
}

static int on_shutdown(nghttp3_conn *h, int64_t id, void *ud)
{
    weir_h3_conn_t *h3 = ud;
    h3->goaway = 1; /* the client sent GOAWAY: it opens no new stream */
    return 0;
}

/* ---- responses ---- */

/* Hands nghttp3 the body bytes not handed yet (they stay put until acked). */
static nghttp3_ssize read_body(nghttp3_conn *h, int64_t sid, nghttp3_vec *vec, size_t veccnt,
                               uint32_t *flags, void *ud, void *sud)
{
    weir_h3_stream_t *st = sud;
    if (!st)
        return NGHTTP3_ERR_CALLBACK_FAILURE;
    size_t n = 0;
    while (n < veccnt && st->send) {
        chunk_t *k = st->send;
        if (st->send_off < k->len) {
            vec[n].base = k->data + st->send_off;
            vec[n].len = k->len - st->send_off;
            n++;
            st->send_off = k->len;
        }
        if (!k->next)
            break;
        st->send = k->next;
        st->send_off = 0;
    }
    bool all_handed = !st->send || (st->send_off == st->send->len && !st->send->next);
    if (st->out_eof && all_handed) {
        *flags |= NGHTTP3_DATA_FLAG_EOF;
        st->eof_handed = 1;
        if (weir_buf_len(&st->trailers)) {
            static __thread weir_nvlist_t l;
            weir_nv_reset(&l);
            weir_nv_add_lines(&l, weir_buf_head(&st->trailers), weir_buf_len(&st->trailers));
            if (l.n && nghttp3_conn_submit_trailers(h, sid, WEIR_NV3(&l), l.n) == 0)
                *flags |= NGHTTP3_DATA_FLAG_NO_END_STREAM;
        }
        return (nghttp3_ssize)n;
    }
    if (n == 0) {
        st->blocked = 1;
        return NGHTTP3_ERR_WOULDBLOCK;
    }
    if (n)
        wake(st);
    return (nghttp3_ssize)n;
}

static void resume_data(weir_h3_stream_t *st)
{
    if (st->blocked) {
        st->blocked = 0;
        nghttp3_conn_resume_stream(st->h3->h, st->id);
    }
    weir_quic_schedule(st->h3->qc);
}

static int submit_head(weir_req_t *r, bool has_body)
{
    weir_h3_stream_t *st = r->h3s;
    static __thread weir_nvlist_t l;
    weir_nv_response(&l, r);
    nghttp3_data_reader dr = {.read_data = read_body};
    if (nghttp3_conn_submit_response(st->h3->h, st->id, WEIR_NV3(&l), l.n,
                                     has_body ? &dr : NULL) != 0)
        return -1;
    st->submitted = 1;
    if (!has_body)
        st->out_eof = 1;
    weir_quic_schedule(st->h3->qc);
    return 0;
}

/* ---- the weir_req operations ---- */

ssize_t weir_h3_send(weir_req_t *r, const struct iovec *iov, int iovcnt)
{
    weir_h3_stream_t *st = r->h3s;
    if (st->h3->dead || st->reset)
        return -1;
    size_t taken = 0;
    for (int i = 0; i < iovcnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left && st->queued < OUT_CAP) {
            chunk_t *k = st->tail;
            if (!k || k->len == CHUNK) {
                chunk_t *nk = malloc(sizeof *nk);
                if (!nk)
                    return taken ? (ssize_t)taken : -1;
                nk->next = NULL;
                nk->len = 0;
                if (k)
                    k->next = nk;
                else
                    st->head = nk;
                if (!st->send || (st->send == k && st->send_off == k->len)) {
                    st->send = nk;
                    st->send_off = 0;
                }
                st->tail = k = nk;
            }
            size_t n = CHUNK - k->len;
            if (n > left)
                n = left;
            if (n > OUT_CAP - st->queued)
                n = OUT_CAP - st->queued;
            memcpy(k->data + k->len, p, n);
            k->len += n;
            st->queued += n;
            p += n;
            left -= n;
            taken += n;
        }
        if (left)
            break;
    }
    if (taken)
        resume_data(st);
    return (ssize_t)taken;
}

int weir_h3_submit_head(weir_req_t *r)
{
    return submit_head(r, weir_resp_has_body(r));
}

void weir_h3_flush_generated(weir_req_t *r)
{
    /* Internal answers are written as HTTP/1.1 messages in r->out: read
     * the head back and send it as HTTP/3, with the rest as the body. */
    int n = weir_req_generated_head(r);
    if (n <= 0 || submit_head(r, weir_resp_has_body(r)) < 0) {
        weir_req_finish(r, 0);
        return;
    }
    weir_buf_consume(&r->out, (size_t)n);
    size_t rest = weir_buf_len(&r->out);
    if (rest && !r->h3s->out_eof) {
        struct iovec iov = {weir_buf_head(&r->out), rest};
        weir_h3_send(r, &iov, 1); /* generated bodies are small */
    }
    weir_buf_consume(&r->out, rest);
    weir_req_finish(r, 1);
}

void weir_h3_finish(weir_req_t *r, int ok)
{
    weir_h3_stream_t *st = r->h3s;
    weir_h3_conn_t *h3 = st->h3;
    st->req = NULL;
    r->h3s = NULL;
    weir_timer_stop(&st->timer);
    if (ok && st->submitted) {
        st->out_eof = 1;
        if (weir_buf_len(&r->trailers)) {
            st->trailers = r->trailers;
            memset(&r->trailers, 0, sizeof r->trailers);
        }
        resume_data(st);
        /* The response is complete: the rest of the request body is not
         * wanted (RFC 9114 §4.1, STOP_SENDING with H3_NO_ERROR). */
        if (!st->remote_closed && !h3->dead) {
            ngtcp2_conn_shutdown_stream_read(h3->q, st->id, NGHTTP3_H3_NO_ERROR);
            nghttp3_conn_shutdown_stream_read(h3->h, st->id);
        }
    } else if (!st->reset && !h3->dead) {
        st->reset = 1;
        ngtcp2_conn_shutdown_stream(h3->q, st->id, NGHTTP3_H3_INTERNAL_ERROR);
        weir_quic_schedule(h3->qc);
    }
    weir_buf_release(&st->body);
    give_back(st, true);
    h3->c->requests++; /* (the access log line is written: it counts from 1) */
    weir_req_free(r);
}

weir_buf_t *weir_h3_body_src(weir_req_t *r)
{
    return &r->h3s->body;
}

void weir_h3_want_body(weir_req_t *r)
{
    give_back(r->h3s, false);
}

bool weir_h3_body_eof(const weir_req_t *r)
{
    return r->h3s->remote_closed || r->h3s->reset;
}

void weir_h3_resume_later(weir_req_t *r)
{
    r->h3s->resume = 1;
    weir_quic_schedule(r->h3s->h3->qc);
}

static void stream_timeout(weir_timer_t *t)
{
    weir_h3_stream_t *st = (weir_h3_stream_t *)((char *)t - offsetof(weir_h3_stream_t, timer));
    if (st->req)
        weir_req_finish(st->req, 0); /* writeTimeout: the stream is reset */
}

void weir_h3_response_started(weir_req_t *r)
{
    int64_t ms = ep_of(r->conn)->write_timeout_ms;
    if (ms > 0)
        weir_timer_set(r->conn->worker->loop, &r->h3s->timer, ms, stream_timeout);
}

/* ---- the QUIC layer's side ---- */

weir_h3_conn_t *weir_h3_new(weir_quic_conn_t *qc, ngtcp2_conn *q, weir_conn_t *c,
                            uint64_t max_bidi_streams)
{
    if (ngtcp2_conn_get_max_local_streams_uni(q) < 3)
        return NULL; /* the client must allow our control and QPACK streams */
    weir_h3_conn_t *h3 = calloc(1, sizeof *h3);
    if (!h3)
        return NULL;
    h3->q = q;
    h3->qc = qc;
    h3->c = c;
    nghttp3_callbacks cb = {
        .acked_stream_data = on_acked,
        .stream_close = on_stream_close,
        .recv_data = on_data,
        .deferred_consume = on_deferred_consume,
        .begin_headers = on_begin_headers,
        .recv_header = on_header,
        .end_headers = on_end_headers,
        .recv_trailer = on_trailer,
        .stop_sending = on_stop_sending,
        .end_stream = on_end_stream,
        .reset_stream = on_reset_stream,
        .shutdown = on_shutdown,
    };
    nghttp3_settings st;
    nghttp3_settings_default(&st);
    st.max_field_section_size = ep_of(c)->max_header_bytes;
    st.qpack_max_dtable_capacity = 4096;
    st.qpack_blocked_streams = 100;
    if (nghttp3_conn_server_new(&h3->h, &cb, &st, NULL, h3) != 0) {
        free(h3);
        return NULL;
    }
    nghttp3_conn_set_max_client_streams_bidi(h3->h, max_bidi_streams);
    int64_t ctrl, enc, dec;
    if (ngtcp2_conn_open_uni_stream(q, &ctrl, NULL) != 0 ||
        nghttp3_conn_bind_control_stream(h3->h, ctrl) != 0 ||
        ngtcp2_conn_open_uni_stream(q, &enc, NULL) != 0 ||
        ngtcp2_conn_open_uni_stream(q, &dec, NULL) != 0 ||
        nghttp3_conn_bind_qpack_streams(h3->h, enc, dec) != 0) {
        nghttp3_conn_del(h3->h);
        free(h3);
        return NULL;
    }
    return h3;
}

void weir_h3_free(weir_h3_conn_t *h3)
{
    if (!h3)
        return;
    h3->dead = 1;
    while (h3->streams)
        stream_free(h3->streams);
    nghttp3_conn_del(h3->h);
    free(h3);
}

ssize_t weir_h3_recv(weir_h3_conn_t *h3, int64_t sid, const uint8_t *p, size_t n, bool fin,
                     bool early)
{
    h3->early_now = early;
    ssize_t rv = nghttp3_conn_read_stream(h3->h, sid, p, n, fin);
    h3->early_now = 0;
    return rv;
}

int weir_h3_acked(weir_h3_conn_t *h3, int64_t sid, uint64_t n)
{
    return nghttp3_conn_add_ack_offset(h3->h, sid, n);
}

int weir_h3_stream_close(weir_h3_conn_t *h3, int64_t sid, uint64_t app_error)
{
    int rv = nghttp3_conn_close_stream(h3->h, sid, app_error);
    if (rv == NGHTTP3_ERR_STREAM_NOT_FOUND) {
        if (ngtcp2_is_bidi_stream(sid) && !ngtcp2_conn_is_local_stream(h3->q, sid))
            ngtcp2_conn_extend_max_streams_bidi(h3->q, 1);
        return 0;
    }
    return rv;
}

int weir_h3_stream_reset(weir_h3_conn_t *h3, int64_t sid)
{
    return nghttp3_conn_shutdown_stream_read(h3->h, sid);
}

void weir_h3_unblock(weir_h3_conn_t *h3, int64_t sid)
{
    nghttp3_conn_unblock_stream(h3->h, sid);
}

void weir_h3_max_streams(weir_h3_conn_t *h3, uint64_t max)
{
    nghttp3_conn_set_max_client_streams_bidi(h3->h, max);
}

ssize_t weir_h3_writev(weir_h3_conn_t *h3, int64_t *sid, int *fin, ngtcp2_vec *v, size_t n)
{
    return nghttp3_conn_writev_stream(h3->h, sid, fin, (nghttp3_vec *)v, n);
}

int weir_h3_wrote(weir_h3_conn_t *h3, int64_t sid, size_t n)
{
    return nghttp3_conn_add_write_offset(h3->h, sid, n);
}

void weir_h3_blocked(weir_h3_conn_t *h3, int64_t sid)
{
    nghttp3_conn_block_stream(h3->h, sid);
}

void weir_h3_write_shut(weir_h3_conn_t *h3, int64_t sid)
{
    nghttp3_conn_shutdown_stream_write(h3->h, sid);
}

void weir_h3_resume(weir_h3_conn_t *h3)
{
    /* Streams are freed only by on_stream_close, called from the QUIC
     * layer's reads, not under a resumed request. */
    for (weir_h3_stream_t *st = h3->streams, *next; st; st = next) {
        next = st->next;
        if (st->resume && st->req) {
            st->resume = 0;
            weir_proxy_resume(st->req);
            if (h3->dead)
                return;
        }
    }
}

void weir_h3_goaway(weir_h3_conn_t *h3, bool final)
{
    if (final)
        nghttp3_conn_shutdown(h3->h);
    else
        nghttp3_conn_submit_shutdown_notice(h3->h);
    weir_quic_schedule(h3->qc);
}

int weir_h3_streams(const weir_h3_conn_t *h3)
{
    return h3->nstreams;
}
