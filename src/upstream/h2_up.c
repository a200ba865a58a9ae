/* HTTP/2 to backends: h2c:// servers, and https:// servers whose TLS
 * handshake chose h2. One nghttp2 client session per connection; each
 * request is a stream. Requests from every client protocol share few
 * connections per pool: a connection takes streams while it has fewer than
 * the backend's SETTINGS_MAX_CONCURRENT_STREAMS and no GOAWAY came on it,
 * else another one is dialed.
 *
 * nghttp2 callbacks only record what arrived (response fields, DATA bytes
 * framed for the client, the end of a stream) and put the stream on the
 * connection's dirty list; the requests are moved on after the session
 * call returns, so client code never runs inside nghttp2.
 *
 * Health: when readIdleTimeout > 0 and nothing was read on a connection
 * for that long, a PING goes out; without its ACK within pingTimeout the
 * connection is closed, its streams are answered with 502 or replayed
 * (idempotent requests that got no response byte), and the next request
 * dials a fresh connection. This is Go's HTTP/2 transport health check,
 * which Traefik exposes, for middleboxes that keep dead connections open.
 *
 * Streams the backend refused (RST_STREAM REFUSED_STREAM, or ids above a
 * GOAWAY's last stream id) were not processed: they are replayed on
 * another connection whatever their method, as long as no request body
 * byte was taken from the client. */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "h2/h2_mem.h"
#include "h2/h2_nv.h"
#include "tls/tls.h"
#include "upstream/upstream.h"

#define STREAM_WINDOW (256 * 1024)     /* per-stream receive window we announce */
#define CONN_WINDOW (16 * 1024 * 1024) /* connection receive window */
#define WBUF_FILL (64 * 1024)          /* frame bytes gathered before a write */
#define READ_ROUNDS 16                 /* reads per readiness event (fairness) */
#define MAX_RESP_FIELDS_BYTES (64 * 1024)
#define MAX_REPLAYS 3          /* requests lost with a connection (idempotent, no response byte) */
#define MAX_REFUSED_REPLAYS 100 /* requests the backend did not process (each round
                                   * trip makes progress: a backend takes at least one) */
#define STREAMS_BEFORE_SETTINGS 100 /* nghttp2's limit until the first SETTINGS */

enum { H2UP_CONNECTING, H2UP_HANDSHAKE, H2UP_READY };

typedef struct weir_h2up_stream weir_h2up_stream_t;
typedef struct weir_h2up weir_h2up_t;

struct weir_h2up {
    weir_io_t io;
    weir_timer_t timer;  /* dialTimeout, then idleConnTimeout while no stream is open */
    weir_timer_t health; /* readIdleTimeout, then pingTimeout */
    weir_pool_t *pool;
    weir_loop_t *loop;
    nghttp2_session *s;
    weir_tls_io_t *tls;
    weir_buf_t wbuf; /* frames waiting for the socket */
    weir_h2up_t *next, *prev;       /* pool->h2 */
    weir_h2up_stream_t *streams;    /* every stream still allocated */
    weir_h2up_stream_t *dirty;      /* streams with news for their request */
    uint32_t nstreams;              /* streams open (for the concurrency limit) */
    int64_t last_read_ms;
    weir_forwarding_timeouts_t to;  /* of the latest request */
    uint8_t state;
    uint8_t rd_ready : 1, wr_ready : 1, goaway : 1, dead : 1, ping_out : 1, scheduled : 1,
        settings_seen : 1, fallback : 1, closing : 1, hup : 1;
};

struct weir_h2up_stream {
    weir_h2up_t *c;
    weir_req_t *r;   /* NULL once the request is done with this stream */
    int32_t id;      /* 0 before nghttp2 took it */
    int status;      /* :status of the response head being received */
    weir_buf_t hdr;  /* response fields: [u32 name len][u32 value len][name][value]... */
    uint32_t nfields;
    weir_buf_t in;   /* response bytes for the client, framed for it */
    weir_buf_t trl;  /* trailer section for a chunked HTTP/1.1 client */
    weir_buf_t req_trailers; /* trailer section of a chunked request body */
    uint64_t unconsumed;     /* DATA bytes received and still owed to the windows */
    size_t resent;           /* bytes of r->sent_body sent again (a replay) */
    uint64_t content_length;
    weir_timer_t timer; /* responseHeaderTimeout */
    weir_h2up_stream_t *next, *prev, *dirty_next;
    uint32_t close_code;
    uint8_t body_kind; /* of the response, decided when its head is complete */
    uint8_t head_ready : 1, end : 1, closed : 1, in_dirty : 1, deferred : 1, body_taken : 1,
        sent_all : 1, sent_noted : 1;
    uint8_t chunked_out : 1, counted : 1, headers_sent : 1, failed : 1, refused : 1,
        bad_body : 1, has_cl : 1, no_replay : 1;
};

static void schedule(weir_h2up_t *c);
static void conn_fail(weir_h2up_t *c, const char *why);
static void stream_pump(weir_h2up_stream_t *st);
static void conn_on_io(weir_io_t *io, unsigned events);
static void idle_timeout(weir_timer_t *t);
static void conn_read(weir_h2up_t *c);
static void conn_free(void *arg);

/* ---- streams ---- */

static void mark_dirty(weir_h2up_stream_t *st)
{
    if (st->in_dirty)
        return;
    st->in_dirty = 1;
    st->dirty_next = st->c->dirty;
    st->c->dirty = st;
}

static void uncount(weir_h2up_stream_t *st)
{
    if (st->counted) {
        st->counted = 0;
        st->c->nstreams--;
    }
}

static void stream_free(weir_h2up_stream_t *st)
{
    weir_h2up_t *c = st->c;
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    uncount(st);
    weir_timer_stop(&st->timer);
    weir_buf_release(&st->hdr);
    weir_buf_release(&st->in);
    weir_buf_release(&st->trl);
    weir_buf_release(&st->req_trailers);
    free(st);
}

/* A stream whose request has left is freed once nghttp2 is done with it
 * (closed, or never sent) and it is off the dirty list. */
static void stream_maybe_free(weir_h2up_stream_t *st)
{
    if (!st->r && !st->in_dirty && (st->closed || st->id == 0 || st->c->dead))
        stream_free(st);
}

/* The request stops using the stream: a stream nghttp2 still has open is
 * reset (code), its unread DATA given back to the connection window. */
static void detach(weir_h2up_stream_t *st, uint32_t code)
{
    weir_h2up_t *c = st->c;
    if (st->r)
        st->r->ups = NULL;
    st->r = NULL;
    weir_timer_stop(&st->timer);
    if (c->dead && !c->closing) {
        /* The last bytes of a complete response reached the client after
         * its connection was gone: the stream was all that kept c. */
        stream_free(st);
        if (!c->streams)
            weir_loop_defer(c->loop, conn_free, c);
        return;
    }
    if (!c->dead) {
        if (st->id > 0 && !st->closed)
            nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, st->id, code);
        if (st->unconsumed && st->id > 0)
            nghttp2_session_consume(c->s, st->id, st->unconsumed);
        st->unconsumed = 0;
        if (st->id == 0)
            uncount(st);
        mark_dirty(st);
        schedule(c);
    }
}

static void header_timeout(weir_timer_t *t)
{
    weir_h2up_stream_t *st = (weir_h2up_stream_t *)((char *)t - offsetof(weir_h2up_stream_t, timer));
    weir_req_t *r = st->r;
    if (!r || r->resp_started)
        return;
    detach(st, NGHTTP2_CANCEL);
    weir_req_error(r, 504);
}

/* The stream failed before its response was complete: replay it when that
 * is safe, else 502 (or abort a response already started). */
static void stream_failed(weir_h2up_stream_t *st, int status)
{
    weir_req_t *r = st->r;
    bool got_bytes = st->head_ready || st->nfields || weir_buf_len(&st->in);
    bool body_untouched = r->reqbody.kind == WEIR_BODY_NONE || !st->body_taken ||
                          !r->sent_body_over; /* all that was sent is kept */
    bool safe = st->refused || (r->idempotent && !got_bytes);
    detach(st, NGHTTP2_CANCEL);
    if (r->resp_started) {
        weir_req_abort(r);
        return;
    }
    if (st->bad_body) {
        weir_req_error(r, 400);
        return;
    }
    int limit = st->refused ? MAX_REFUSED_REPLAYS : MAX_REPLAYS;
    if (safe && body_untouched && !st->no_replay && r->replays < limit) {
        r->replays++;
        r->up_req_done = 0;
        if (weir_proxy_redispatch(r) == 0)
            return;
    }
    weir_debug("backend HTTP/2 stream failed: %d (refused %d, replays %d, response bytes %d)",
               status, st->refused, r->replays, got_bytes);
    weir_req_error(r, status);
}

/* ---- the request: head and body ---- */

/* Keeps sent body bytes while the whole body so far fits, so a refused
 * stream can be sent again. */
static void keep_for_replay(weir_req_t *r, const uint8_t *p, size_t n)
{
    if (r->sent_body_over)
        return;
    if (weir_buf_len(&r->sent_body) + n > WEIR_REPLAY_BODY_MAX ||
        weir_buf_append(&r->sent_body, p, n) < 0) {
        r->sent_body_over = 1;
        weir_buf_release(&r->sent_body);
    }
}

static ssize_t read_req_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                             uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    weir_h2up_stream_t *st = src->ptr;
    weir_req_t *r = st->r;
    if (!r)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    weir_buf_t *in = weir_req_body_src(r);
    weir_body_t *b = &r->reqbody;
    size_t n = 0;
    /* A replay first sends again what the refused stream had sent. */
    size_t kept = weir_buf_len(&r->sent_body);
    if (st->resent < kept) {
        n = kept - st->resent < length ? kept - st->resent : length;
        memcpy(buf, weir_buf_head(&r->sent_body) + st->resent, n);
        st->resent += n;
    }
    while (n < length) {
        if (b->pre) {
            weir_buf_consume(in, b->pre);
            b->pre = 0;
        }
        if (b->len) {
            size_t k = b->len < length - n ? b->len : length - n;
            memcpy(buf + n, weir_buf_head(in), k);
            keep_for_replay(r, buf + n, k);
            st->resent += r->sent_body_over ? 0 : k;
            weir_buf_consume(in, k);
            b->len -= k;
            n += k;
            st->body_taken = 1;
            continue;
        }
        if (b->post) {
            weir_buf_consume(in, b->post);
            b->post = 0;
        }
        if (weir_body_done(b))
            break;
        int a = weir_body_accept(b, weir_buf_head(in), weir_buf_len(in));
        if (a < 0) {
            st->bad_body = 1;
            st->failed = 1;
            mark_dirty(st);
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        if (a == 0)
            break;
    }
    if (weir_body_done(b) && st->resent >= weir_buf_len(&r->sent_body)) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (weir_buf_len(&st->req_trailers)) {
            static __thread weir_nvlist_t l;
            weir_nv_reset(&l);
            weir_nv_add_lines(&l, weir_buf_head(&st->req_trailers),
                              weir_buf_len(&st->req_trailers));
            if (l.n && nghttp2_submit_trailer(st->c->s, st->id, l.nv, l.n) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        /* Nothing buffered: the pump asks the client for more. */
        st->deferred = 1;
        mark_dirty(st);
        return NGHTTP2_ERR_DEFERRED;
    }
    mark_dirty(st); /* room in the client's buffer: it may read more */
    return (ssize_t)n;
}

/* The request head weir built for HTTP/1.1 (r->uphead, kept for replays)
 * becomes the HTTP/2 header list: the request line gives :method and
 * :path, Host gives :authority; the fields HTTP/2 forbids are left out
 * (TE stays when it is "trailers"). Values point into r->uphead. */
static int submit_request(weir_h2up_stream_t *st)
{
    weir_req_t *r = st->r;
    weir_h2up_t *c = st->c;
    static __thread weir_nvlist_t l;
    weir_nv_reset(&l);
    const char *p = weir_buf_head(&r->uphead), *end = p + weir_buf_len(&r->uphead);
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *sp1 = eol ? memchr(p, ' ', (size_t)(eol - p)) : NULL;
    const char *sp2 = sp1 ? memrchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp2)
        return -1;
    /* weir_build_upstream_head writes Host right after the request line. */
    const char *host = eol + 1, *host_end = memchr(host, '\n', (size_t)(end - host));
    if (!host_end || host_end - host < 7 || !weir_slice_ieq_cstr(weir_slice(host, 5), "host:"))
        return -1;
    weir_slice_t authority = weir_slice(host + 6, (size_t)(host_end - 1 - (host + 6)));
    weir_nv_add(&l, WEIR_SLICE_LIT(":method"), weir_slice(p, (size_t)(sp1 - p)));
    weir_nv_add(&l, WEIR_SLICE_LIT(":scheme"), c->tls ? WEIR_SLICE_LIT("https") : WEIR_SLICE_LIT("http"));
    weir_nv_add(&l, WEIR_SLICE_LIT(":authority"), authority);
    weir_nv_add(&l, WEIR_SLICE_LIT(":path"), weir_slice(sp1 + 1, (size_t)(sp2 - sp1 - 1)));
    for (const char *q = host_end + 1; q < end;) {
        const char *e = memchr(q, '\n', (size_t)(end - q));
        if (!e || e - q <= 1)
            break;
        const char *colon = memchr(q, ':', (size_t)(e - q));
        if (colon) {
            weir_slice_t name = weir_slice(q, (size_t)(colon - q));
            const char *v = colon + 1, *ve = e;
            while (v < ve && *v == ' ')
                v++;
            while (ve > v && ve[-1] == '\r')
                ve--;
            weir_slice_t value = weir_slice(v, (size_t)(ve - v));
            bool te = weir_slice_ieq_cstr(name, "te");
            if (te ? weir_slice_ieq_cstr(value, "trailers") : !weir_h1_is_hop_by_hop(name))
                weir_nv_add(&l, name, value);
        }
        q = e + 1;
    }
    bool body = r->reqbody.kind != WEIR_BODY_NONE &&
                (!weir_body_done(&r->reqbody) || weir_buf_len(&r->sent_body));
    if (r->reqbody.kind == WEIR_BODY_CHUNKED) {
        r->reqbody.decode = 1; /* HTTP/2 frames the body itself */
        r->reqbody.trailers = &st->req_trailers;
    }
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_req_body};
    int32_t id = nghttp2_submit_request(c->s, NULL, l.nv, l.n, body ? &prd : NULL, st);
    if (id < 0)
        return -1;
    st->id = id;
    return 0;
}

/* ---- the response ---- */

static int add_field(weir_buf_t *b, const uint8_t *name, size_t nlen, const uint8_t *value,
                     size_t vlen)
{
    uint32_t lens[2] = {(uint32_t)nlen, (uint32_t)vlen};
    if (weir_buf_reserve(b, sizeof lens + nlen + vlen) < 0)
        return -1;
    char *p = weir_buf_tail(b);
    memcpy(p, lens, sizeof lens);
    memcpy(p + sizeof lens, name, nlen);
    memcpy(p + sizeof lens + nlen, value, vlen);
    b->end += (uint32_t)(sizeof lens + nlen + vlen);
    return 0;
}

/* The head is complete: how its body reaches the client. */
static void decide_framing(weir_h2up_stream_t *st)
{
    weir_req_t *r = st->r;
    int s = st->status;
    if ((r && r->head_method) || s == 204 || s == 304)
        st->body_kind = WEIR_BODY_NONE;
    else if (st->has_cl)
        st->body_kind = WEIR_BODY_LENGTH;
    else
        st->body_kind = WEIR_BODY_CHUNKED;
    /* HTTP/1.1 clients get chunks (and the trailers in the last one);
     * HTTP/2 clients and HTTP/1.0 ones get the bare data. */
    st->chunked_out = r && st->body_kind == WEIR_BODY_CHUNKED && !weir_req_multiplexed(r) && r->h1.minor >= 1;
}

static int append_chunk(weir_buf_t *b, const uint8_t *data, size_t len)
{
    char line[24];
    int n = snprintf(line, sizeof line, "%zx\r\n", len);
    if (weir_buf_reserve(b, (size_t)n + len + 2) < 0)
        return -1;
    weir_buf_append(b, line, (size_t)n);
    weir_buf_append(b, data, len);
    return weir_buf_append(b, "\r\n", 2);
}

/* END_STREAM: a chunked body gets its last chunk and trailers. */
static void stream_ended(weir_h2up_stream_t *st)
{
    st->end = 1;
    if (st->chunked_out) {
        weir_buf_append(&st->in, "0\r\n", 3);
        if (weir_buf_len(&st->trl))
            weir_buf_append(&st->in, weir_buf_head(&st->trl), weir_buf_len(&st->trl));
        weir_buf_append(&st->in, "\r\n", 2);
    }
    mark_dirty(st);
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    weir_h2up_stream_t *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (!st || !st->r)
        return 0;
    if (st->head_ready) {
        /* Trailers: the HTTP/2 client's trailing HEADERS, or the last
         * chunk's trailer section for an HTTP/1.1 client. */
        weir_buf_t *b = weir_req_multiplexed(st->r) ? &st->r->trailers : st->chunked_out ? &st->trl : NULL;
        if (!b || (nlen && name[0] == ':'))
            return 0;
        if (weir_buf_len(b) + nlen + vlen > MAX_RESP_FIELDS_BYTES)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        weir_buf_append(b, name, nlen);
        weir_buf_append(b, ": ", 2);
        weir_buf_append(b, value, vlen);
        weir_buf_append(b, "\r\n", 2);
        return 0;
    }
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        st->status = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            st->status = st->status * 10 + (value[i] - '0'); /* nghttp2 checked it */
        return 0;
    }
    if (nlen && name[0] == ':')
        return 0;
    if (nlen == 14 && memcmp(name, "content-length", 14) == 0) {
        uint64_t v = 0;
        for (size_t i = 0; i < vlen; i++)
            v = v * 10 + (uint64_t)(value[i] - '0');
        st->content_length = v;
        st->has_cl = 1;
    }
    if (weir_buf_len(&st->hdr) + nlen + vlen > MAX_RESP_FIELDS_BYTES ||
        st->nfields >= WEIR_MAX_RESP_HEADERS || add_field(&st->hdr, name, nlen, value, vlen) < 0) {
        st->failed = 1;
        mark_dirty(st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    st->nfields++;
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    weir_h2up_t *c = ud;
    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
            c->settings_seen = 1;
            /* New connections to this backend assume it until their own
             * SETTINGS arrive. */
            c->pool->h2_max_streams =
                nghttp2_session_get_remote_settings(s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        }
        return 0;
    case NGHTTP2_GOAWAY:
        c->goaway = 1; /* no new stream here; refused ones are replayed */
        weir_debug("backend HTTP/2 GOAWAY (last stream %d, code %u)",
                   frame->goaway.last_stream_id, frame->goaway.error_code);
        return 0;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            c->ping_out = 0;
        return 0;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        break;
    default:
        return 0;
    }
    weir_h2up_stream_t *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (!st || !st->r)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && !st->head_ready) {
        if (st->status >= 100 && st->status < 200) {
            /* Interim response (100, 103): the final one follows. */
            weir_buf_release(&st->hdr);
            st->nfields = 0;
            st->has_cl = 0;
            st->status = 0;
            return 0;
        }
        st->head_ready = 1;
        decide_framing(st);
        mark_dirty(st);
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        stream_ended(st);
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    weir_h2up_stream_t *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || !st->r || !st->head_ready) {
        nghttp2_session_consume(s, id, len); /* nobody reads it */
        return 0;
    }
    int rv = st->chunked_out ? append_chunk(&st->in, data, len) : weir_buf_append(&st->in, data, len);
    if (rv < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->unconsumed += len;
    st->r->resp_bytes += len;
    mark_dirty(st);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)ud;
    weir_h2up_stream_t *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st)
        return 0;
    st->closed = 1;
    st->close_code = code;
    uncount(st);
    if (!st->end) {
        st->failed = 1;
        /* REFUSED_STREAM (from the backend, or nghttp2's own for streams
         * above a GOAWAY's last id): it was not processed. */
        if (code == NGHTTP2_REFUSED_STREAM)
            st->refused = 1;
    }
    mark_dirty(st);
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    weir_h2up_stream_t *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (!st)
        return 0;
    st->headers_sent = 1;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        st->sent_all = 1;
        mark_dirty(st);
    }
    return 0;
}

static int on_frame_not_send(nghttp2_session *s, const nghttp2_frame *frame, int err, void *ud)
{
    (void)err;
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    weir_h2up_stream_t *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (st && !st->headers_sent) {
        st->failed = 1;
        st->refused = 1; /* never left: safe to send elsewhere */
        mark_dirty(st);
    }
    return 0;
}

/* ---- moving a stream's request on ---- */

static int start_response(weir_h2up_stream_t *st)
{
    weir_req_t *r = st->r;
    weir_h1_response_t *resp = &r->resp;
    memset(resp, 0, sizeof *resp);
    resp->headers = r->resp_headers;
    const char *p = weir_buf_head(&st->hdr), *end = p + weir_buf_len(&st->hdr);
    while (p < end && resp->num_headers < WEIR_MAX_RESP_HEADERS) {
        uint32_t lens[2];
        memcpy(lens, p, sizeof lens);
        p += sizeof lens;
        resp->headers[resp->num_headers++] =
            (weir_header_t){weir_slice(p, lens[0]), weir_slice(p + lens[0], lens[1])};
        p += lens[0] + lens[1];
    }
    resp->status = st->status;
    resp->minor = 1;
    resp->reason = weir_slice_cstr(weir_status_text(st->status));
    resp->body = st->body_kind;
    resp->content_length = st->content_length;
    resp->keep_alive = 1;
    resp->head_len = weir_buf_len(&st->hdr) + 64;

    weir_body_t *b = &r->respbody;
    r->origin_status = r->status = st->status;
    b->kind = st->body_kind;
    b->remaining = st->content_length;
    if (b->kind == WEIR_BODY_CHUNKED && !st->chunked_out) {
        b->decode = 1; /* no Transfer-Encoding to the client */
        if (!weir_req_multiplexed(r))
            r->close_after = 1; /* HTTP/1.0: the end of the body is the close */
    }
    r->resp_started = 1;
    weir_timer_stop(&st->timer);
    weir_req_response_started(r);
    return weir_req_client_head(r);
}

/* Gives DATA the client has taken back to the backend's windows, one
 * WINDOW_UPDATE per half window rather than one per write. */
static void give_back(weir_h2up_stream_t *st)
{
    size_t buffered = weir_buf_len(&st->in);
    if (!st->unconsumed || buffered > STREAM_WINDOW / 2 || st->c->dead)
        return;
    uint64_t n = st->unconsumed > buffered ? st->unconsumed - buffered : 0;
    if (!n)
        return;
    nghttp2_session_consume(st->c->s, st->id, n);
    st->unconsumed -= n;
    schedule(st->c);
}

/* The response is complete. */
static void stream_done(weir_h2up_stream_t *st)
{
    weir_req_t *r = st->r;
    detach(st, NGHTTP2_CANCEL); /* only an unfinished upload is reset */
    if (!weir_body_done(&r->reqbody) && !r->close_after) {
        /* The backend answered before taking the whole body: drop the
         * rest so the client connection stays usable. */
        weir_req_discard_body(r);
        return;
    }
    weir_req_finish(r, 1);
}

static void stream_pump(weir_h2up_stream_t *st)
{
    weir_req_t *r = st->r;
    weir_h2up_t *c = st->c;
    if (st->sent_all && !st->sent_noted) {
        st->sent_noted = 1;
        r->up_req_done = 1;
        weir_req_request_sent(r);
        int64_t ms = c->to.response_header_timeout_ms;
        if (!r->resp_started && !st->head_ready && ms > 0)
            weir_timer_set(c->loop, &st->timer, ms, header_timeout);
    }
    if (st->head_ready && !r->resp_started && start_response(st) < 0) {
        detach(st, NGHTTP2_CANCEL);
        weir_req_error(r, 502);
        return;
    }
    if (r->resp_started) {
        for (int rounds = 0; rounds < 64; rounds++) {
            size_t hl = weir_buf_len(&r->out), bl = weir_buf_len(&st->in);
            if (!hl && !bl)
                break;
            struct iovec iov[2];
            int cnt = 0;
            if (hl)
                iov[cnt++] = (struct iovec){weir_buf_head(&r->out), hl};
            if (bl)
                iov[cnt++] = (struct iovec){weir_buf_head(&st->in), bl};
            ssize_t w = weir_req_send(r, iov, cnt);
            if (w < 0) {
                detach(st, NGHTTP2_CANCEL);
                weir_req_abort(r);
                return;
            }
            if (w == 0)
                break; /* the client is full: weir_proxy_resume comes later */
            size_t fh = (size_t)w < hl ? (size_t)w : hl;
            weir_buf_consume(&r->out, fh);
            weir_buf_consume(&st->in, (size_t)w - fh);
        }
        weir_buf_release_if_empty(&st->in);
        give_back(st);
        if (st->end && !weir_buf_len(&st->in) && !weir_buf_len(&r->out)) {
            stream_done(st);
            return;
        }
    }
    if (st->failed && !st->end) {
        stream_failed(st, 502);
        return;
    }
    if (st->deferred && !c->dead) {
        /* The body provider ran dry: ask the client for more. */
        weir_buf_t *src = weir_req_body_src(r);
        if (!weir_buf_len(src))
            weir_req_want_body(r);
        if (!r->ups)
            return;
        if (weir_buf_len(src) || weir_body_done(&r->reqbody)) {
            st->deferred = 0;
            nghttp2_session_resume_data(c->s, st->id);
            schedule(c);
        } else if (weir_req_body_eof(r)) {
            st->bad_body = 1; /* the client left in the middle of its body */
            stream_failed(st, 400);
        }
    }
}

/* Runs the requests of the streams that have news. */
static void process_dirty(weir_h2up_t *c)
{
    while (c->dirty) {
        weir_h2up_stream_t *st = c->dirty;
        c->dirty = st->dirty_next;
        st->in_dirty = 0;
        if (st->r)
            stream_pump(st);
        else
            stream_maybe_free(st);
        if (c->dead)
            return;
    }
}

/* ---- connection I/O ---- */

static ssize_t conn_write(weir_h2up_t *c, const void *p, size_t n)
{
    bool full = false;
    ssize_t w = weir_up_write(c->io.fd, c->tls, p, n, &full);
    if (full)
        c->wr_ready = 0;
    return w;
}

static void flush(weir_h2up_t *c)
{
    if (c->dead || c->state != H2UP_READY)
        return;
    for (int rounds = 0; rounds < 8; rounds++) {
        process_dirty(c);
        if (c->dead)
            return;
        while (weir_buf_len(&c->wbuf) < WBUF_FILL && nghttp2_session_want_write(c->s)) {
            const uint8_t *d;
            ssize_t n = nghttp2_session_mem_send(c->s, &d);
            if (n < 0) {
                conn_fail(c, nghttp2_strerror((int)n));
                return;
            }
            if (n == 0)
                break;
            if (weir_buf_append(&c->wbuf, d, (size_t)n) < 0) {
                conn_fail(c, "out of memory");
                return;
            }
        }
        while (weir_buf_len(&c->wbuf) && c->wr_ready) {
            ssize_t w = conn_write(c, weir_buf_head(&c->wbuf), weir_buf_len(&c->wbuf));
            if (w < 0) {
                /* The backend may have said GOAWAY before it reset: read
                 * that first, so the streams it refused are replayed. */
                c->rd_ready = 1;
                conn_read(c);
                conn_fail(c, "write error");
                return;
            }
            if (w == 0)
                break;
            weir_buf_consume(&c->wbuf, (size_t)w);
        }
        if (weir_buf_len(&c->wbuf))
            return; /* the socket is full: EPOLLOUT brings us back */
        weir_buf_release(&c->wbuf);
        if (!c->dirty && !nghttp2_session_want_write(c->s))
            break;
    }
    if (c->dirty || nghttp2_session_want_write(c->s)) {
        schedule(c);
        return;
    }
    if (c->nstreams == 0 && !c->streams) {
        if (c->goaway) {
            conn_fail(c, "GOAWAY and no stream left");
            return;
        }
        if (!weir_timer_armed(&c->timer)) {
            int64_t ms = c->to.idle_conn_timeout_ms;
            weir_timer_set(c->loop, &c->timer, ms > 0 ? ms : -1, idle_timeout);
        }
    }
}

static void run(void *arg)
{
    weir_h2up_t *c = arg;
    c->scheduled = 0;
    if (c->dead)
        return;
    flush(c);
}

static void schedule(weir_h2up_t *c)
{
    if (c->scheduled || c->dead)
        return;
    c->scheduled = 1;
    weir_loop_defer(c->loop, run, c);
}

static void conn_read(weir_h2up_t *c)
{
    static __thread uint8_t buf[65536];
    for (int rounds = 0; rounds < READ_ROUNDS && c->rd_ready; rounds++) {
        ssize_t n;
        if (c->tls) {
            n = weir_tls_io_read(c->tls, buf, sizeof buf);
            if (n < 0 && errno == EAGAIN) {
                c->rd_ready = 0;
                break;
            }
        } else {
            n = recv(c->io.fd, buf, sizeof buf, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                if (errno != EINTR)
                    c->rd_ready = 0;
                continue;
            }
        }
        if (n <= 0) {
            conn_fail(c, n == 0 ? "closed by the backend" : "read error");
            return;
        }
        c->last_read_ms = weir_loop_now(c->loop);
        ssize_t rv = nghttp2_session_mem_recv(c->s, buf, (size_t)n);
        if (rv < 0) {
            conn_fail(c, nghttp2_strerror((int)rv));
            return;
        }
        process_dirty(c);
        if (c->dead)
            return;
        if (!c->tls && (size_t)n < sizeof buf && !c->hup)
            c->rd_ready = 0; /* drained, unless a FIN is still to be read */
    }
    if (c->rd_ready)
        schedule(c); /* more to read after the other connections had a turn */
}

/* ---- health ---- */

static void fmt_ms(char *out, size_t cap, int64_t ms)
{
    if (ms % 1000 == 0)
        snprintf(out, cap, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, cap, "%lldms", (long long)ms);
}

static int64_t ping_timeout_of(const weir_h2up_t *c)
{
    return c->to.ping_timeout_ms > 0 ? c->to.ping_timeout_ms : 15000;
}

static void health_fire(weir_timer_t *t)
{
    weir_h2up_t *c = (weir_h2up_t *)((char *)t - offsetof(weir_h2up_t, health));
    if (c->dead || c->state != H2UP_READY)
        return;
    int64_t idle_ms = c->to.read_idle_timeout_ms;
    if (c->ping_out) {
        const char *key = c->pool->key, *bar = strchr(key, '|');
        int len = bar ? (int)(bar - key) : (int)strlen(key);
        char url[512], within[32];
        snprintf(url, sizeof url, "%.*s", len, key);
        fmt_ms(within, sizeof within, ping_timeout_of(c));
        unsigned long n = weir_up_count_ping_close(url);
        weir_error("backend HTTP/2 connection to %s closed: no PING ACK within %s (%lu so far)",
                   url, within, n);
        conn_fail(c, "no PING ACK");
        return;
    }
    if (idle_ms <= 0)
        return;
    int64_t quiet = weir_loop_now(c->loop) - c->last_read_ms;
    if (quiet < idle_ms) {
        weir_timer_set(c->loop, &c->health, idle_ms - quiet, health_fire);
        return;
    }
    if (nghttp2_submit_ping(c->s, NGHTTP2_FLAG_NONE, NULL) != 0) {
        conn_fail(c, "cannot send PING");
        return;
    }
    c->ping_out = 1;
    weir_timer_set(c->loop, &c->health, ping_timeout_of(c), health_fire);
    schedule(c);
}

/* Watches for silence: when the connection is ready, after a PING's ACK,
 * and when a reload turned the check on. */
static void health_rearm(weir_h2up_t *c)
{
    if (!c->ping_out && c->to.read_idle_timeout_ms > 0 && c->state == H2UP_READY)
        weir_timer_set(c->loop, &c->health, c->to.read_idle_timeout_ms, health_fire);
}

/* ---- connection lifecycle ---- */

static void conn_free(void *arg)
{
    free(arg);
}

/* Closes c: its streams are replayed (when safe) or answered 502. */
static void conn_fail(weir_h2up_t *c, const char *why)
{
    if (c->dead)
        return;
    weir_debug("backend HTTP/2 connection to %s closed: %s", c->pool->key, why);
    c->dead = 1;
    weir_pool_t *pool = c->pool;
    if (c->prev)
        c->prev->next = c->next;
    else if (pool->h2 == c)
        pool->h2 = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    weir_timer_stop(&c->timer);
    weir_timer_stop(&c->health);
    if (c->tls) {
        weir_tls_io_bye(c->tls);
        weir_tls_io_free(c->tls);
        free(c->tls);
        c->tls = NULL;
    }
    weir_loop_del(c->loop, &c->io);
    close(c->io.fd);
    weir_buf_release(&c->wbuf);
    /* The requests go elsewhere (or get their error) now. A stream whose
     * response is complete keeps its bytes until the client has taken
     * them (it keeps c allocated meanwhile); the others are freed. */
    c->dirty = NULL;
    c->closing = 1;
    for (weir_h2up_stream_t *st = c->streams; st; st = st->next) {
        st->in_dirty = 0;
        if (!st->r)
            continue;
        if (st->end) {
            stream_pump(st);
            if (st->r)
                weir_debug("backend connection gone, %zu response bytes kept for the client",
                           weir_buf_len(&st->in));
            continue;
        }
        if (c->state != H2UP_READY && !c->fallback)
            st->no_replay = 1; /* the backend cannot be reached: 502 at once */
        else if (!st->headers_sent)
            st->refused = 1; /* never reached the backend */
        stream_failed(st, 502);
    }
    c->closing = 0;
    for (weir_h2up_stream_t *st = c->streams, *next; st; st = next) {
        next = st->next;
        if (!st->r)
            stream_free(st);
    }
    nghttp2_session_del(c->s);
    c->s = NULL;
    if (!c->streams)
        weir_loop_defer(c->loop, conn_free, c);
}

static void idle_timeout(weir_timer_t *t)
{
    weir_h2up_t *c = (weir_h2up_t *)((char *)t - offsetof(weir_h2up_t, timer));
    if (c->state != H2UP_READY) {
        conn_fail(c, "dial timeout");
        return;
    }
    if (c->nstreams || c->streams)
        return;
    nghttp2_session_terminate_session(c->s, NGHTTP2_NO_ERROR);
    const uint8_t *d;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(c->s, &d)) > 0)
        if (conn_write(c, d, (size_t)n) < (ssize_t)n)
            break;
    conn_fail(c, "idle");
}

static void dial_timeout(weir_timer_t *t)
{
    weir_h2up_t *c = (weir_h2up_t *)((char *)t - offsetof(weir_h2up_t, timer));
    /* Like the HTTP/1.1 path: a dial timeout is a 504 for every stream
     * waiting, and it is not retried. */
    for (weir_h2up_stream_t *st = c->streams; st; st = st->next)
        if (st->r) {
            weir_req_t *r = st->r;
            detach(st, NGHTTP2_CANCEL);
            weir_req_error(r, 504);
        }
    conn_fail(c, "dial timeout");
}

static weir_h2up_t *conn_new(weir_pool_t *pool, int fd, const weir_forwarding_timeouts_t *to)
{
    weir_h2up_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        free(c);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send);
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        free(c);
        return NULL;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, STREAMS_BEFORE_SETTINGS);
    int rv = nghttp2_session_client_new3(&c->s, cb, c, opt, weir_h2_mem());
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) {
        free(c);
        return NULL;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    c->io.fd = fd;
    c->io.cb = conn_on_io;
    c->pool = pool;
    c->loop = pool->worker->loop;
    c->to = *to;
    c->next = pool->h2;
    if (c->next)
        c->next->prev = c;
    pool->h2 = c;
    return c;
}

static void conn_ready(weir_h2up_t *c)
{
    c->state = H2UP_READY;
    c->wr_ready = 1;
    c->rd_ready = 1;
    c->last_read_ms = weir_loop_now(c->loop);
    weir_timer_stop(&c->timer);
    health_rearm(c);
    conn_read(c);
    if (!c->dead)
        flush(c);
}

static void handshake(weir_h2up_t *c)
{
    int rc = weir_tls_io_handshake(c->tls);
    if (rc == 0)
        return;
    if (rc < 0) {
        conn_fail(c, "TLS handshake failed");
        return;
    }
    weir_slice_t alpn = weir_tls_io_alpn(c->tls);
    if (!weir_slice_eq(alpn, WEIR_SLICE_LIT("h2"))) {
        /* The server no longer speaks h2: its requests go over HTTP/1.1. */
        c->pool->proto = POOL_PROTO_H1;
        c->fallback = 1;
        conn_fail(c, "ALPN did not choose h2");
        return;
    }
    conn_ready(c);
}

static void connected(weir_h2up_t *c, const weir_req_t *r)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        conn_fail(c, strerror(err));
        return;
    }
    if (!c->tls) {
        conn_ready(c);
        return;
    }
    (void)r;
    c->state = H2UP_HANDSHAKE;
    handshake(c);
}

static void conn_on_io(weir_io_t *io, unsigned events)
{
    weir_h2up_t *c = (weir_h2up_t *)io;
    if (c->dead)
        return;
    if (events & WEIR_EV_READ)
        c->rd_ready = 1;
    if (events & WEIR_EV_WRITE)
        c->wr_ready = 1;
    if (c->tls && (events & WEIR_EV_WRITE) && c->state != H2UP_CONNECTING) {
        int f = weir_tls_io_flush(c->tls);
        if (f < 0) {
            conn_fail(c, "TLS write error");
            return;
        }
        c->wr_ready = f == 1;
    }
    switch (c->state) {
    case H2UP_CONNECTING:
        if (events & (WEIR_EV_WRITE | WEIR_EV_ERR | WEIR_EV_HUP))
            connected(c, NULL);
        return;
    case H2UP_HANDSHAKE:
        if (events & WEIR_EV_ERR)
            conn_fail(c, "connection error");
        else
            handshake(c);
        return;
    default:
        break;
    }
    if (events & WEIR_EV_HUP)
        c->hup = 1; /* the backend closed its side: read on to the end */
    if (events & (WEIR_EV_ERR | WEIR_EV_HUP))
        c->rd_ready = 1; /* what came before a reset (a GOAWAY) is still read first */
    bool pinged = c->ping_out;
    conn_read(c);
    if (c->dead)
        return;
    if (events & WEIR_EV_ERR) {
        conn_fail(c, "connection error");
        return;
    }
    if (pinged && !c->ping_out)
        health_rearm(c);
    flush(c);
}

/* ---- attaching requests ---- */

static uint32_t stream_limit(const weir_h2up_t *c)
{
    if (c->settings_seen)
        return nghttp2_session_get_remote_settings(c->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    /* Before the backend's SETTINGS: what it said last time, at most 100
     * (nghttp2's own limit until then). */
    uint32_t n = c->pool->h2_max_streams;
    return n && n < STREAMS_BEFORE_SETTINGS ? n : STREAMS_BEFORE_SETTINGS;
}

static weir_h2up_t *dial(weir_req_t *r, weir_pool_t *pool)
{
    const weir_server_cfg_t *srv = r->view->snap->servers[r->server];
    int fd = weir_up_connect(srv);
    if (fd < 0)
        return NULL;
    const weir_forwarding_timeouts_t *to = weir_timeouts_of(r);
    weir_h2up_t *c = conn_new(pool, fd, to);
    if (!c) {
        close(fd);
        return NULL;
    }
    if (srv->scheme == WEIR_SCHEME_HTTPS) {
        weir_tls_ctx_t *ctx = r->view->snap->tls;
        int ti = r->view->snap->server_service[r->server]->cfg->transport_index;
        gnutls_session_t s;
        c->tls = ctx ? calloc(1, sizeof *c->tls) : NULL;
        if (!c->tls || weir_tls_client_session_new(ctx, ti, srv->host, true, &s) < 0) {
            free(c->tls);
            c->tls = NULL;
            c->state = H2UP_READY; /* nothing to undo but the session */
            conn_fail(c, "TLS session");
            return NULL;
        }
        weir_tls_io_init(c->tls, ctx, s, fd, NULL);
    }
    c->state = H2UP_CONNECTING;
    if (weir_loop_add(c->loop, &c->io) < 0) {
        conn_fail(c, "epoll");
        return NULL;
    }
    int64_t ms = to->dial_timeout_ms;
    weir_timer_set(c->loop, &c->timer, ms > 0 ? ms : -1, dial_timeout);
    return c;
}

static int attach(weir_req_t *r, weir_h2up_t *c)
{
    weir_h2up_stream_t *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    st->c = c;
    st->r = r;
    st->next = c->streams;
    if (st->next)
        st->next->prev = st;
    c->streams = st;
    st->counted = 1;
    c->nstreams++;
    r->ups = st;
    c->to = *weir_timeouts_of(r);
    if (c->state == H2UP_READY) {
        weir_timer_stop(&c->timer); /* not idle any more */
        if (!weir_timer_armed(&c->health))
            health_rearm(c);
    }
    if (submit_request(st) < 0) {
        r->ups = NULL;
        st->r = NULL;
        stream_free(st);
        return -1;
    }
    schedule(c);
    return 0;
}

int weir_h2up_start(weir_req_t *r, weir_pool_t *pool)
{
    weir_h2up_t *c = pool->h2;
    for (; c; c = c->next)
        if (!c->dead && !c->goaway && c->nstreams < stream_limit(c))
            break;
    if (!c) {
        if (pool->h2 && weir_log_enabled(WEIR_LOG_LVL_DEBUG))
            for (weir_h2up_t *o = pool->h2; o; o = o->next)
                weir_debug("backend HTTP/2 connection full or closing: %u/%u streams%s%s", o->nstreams,
                           stream_limit(o), o->goaway ? ", GOAWAY" : "", o->dead ? ", dead" : "");
        if (!(c = dial(r, pool)))
            return -1;
    }
    return attach(r, c);
}

bool weir_h2up_pool_has_room(const weir_pool_t *pool)
{
    for (const weir_h2up_t *c = pool->h2; c; c = c->next)
        if (c->state == H2UP_READY && !c->dead && !c->goaway && c->nstreams < stream_limit(c))
            return true;
    return false;
}

int weir_h2up_adopt(weir_upconn_t *u)
{
    weir_req_t *r = u->req;
    weir_pool_t *pool = u->pool;
    weir_h2up_t *c = conn_new(pool, u->io.fd, weir_timeouts_of(r));
    if (!c)
        return -1;
    c->tls = u->tls;
    u->tls = NULL;
    u->req = NULL;
    r->up = NULL;
    weir_up_detach(u);
    c->state = H2UP_CONNECTING; /* until it is back in the loop */
    if (weir_loop_add(c->loop, &c->io) < 0 || attach(r, c) < 0) {
        conn_fail(c, "cannot take over the connection");
        return weir_proxy_redispatch(r);
    }
    conn_ready(c);
    return 0;
}

void weir_h2up_resume(weir_req_t *r)
{
    weir_h2up_stream_t *st = r->ups;
    if (st && (!st->c->dead || st->end))
        stream_pump(st);
}

void weir_h2up_abort(weir_req_t *r)
{
    weir_h2up_stream_t *st = r->ups;
    if (st)
        detach(st, NGHTTP2_CANCEL);
}

void weir_h2up_pool_free(weir_pool_t *pool)
{
    while (pool->h2) {
        weir_h2up_t *c = pool->h2;
        pool->h2 = c->next;
        weir_timer_stop(&c->timer);
        weir_timer_stop(&c->health);
        if (c->tls) {
            weir_tls_io_free(c->tls);
            free(c->tls);
        }
        close(c->io.fd);
        weir_buf_release(&c->wbuf);
        while (c->streams)
            stream_free(c->streams);
        nghttp2_session_del(c->s);
        free(c);
    }
}
