/* Client connections (HTTP/1.1 server side) and the request model.
 *
 * A weir_conn is what stays allocated for an idle keep-alive connection:
 * the fd, its timer, the peer address and a few flags, no buffers. A
 * weir_req exists only while a request is in flight; it carries the parsed
 * head (slices into the connection's input buffer), the routing result, the
 * upstream connection and the response state. Every HTTP version will land
 * in weir_req so that routing, load balancing and logging are written once.
 */
#ifndef WEIR_HTTP_CONN_H
#define WEIR_HTTP_CONN_H

#include <netinet/in.h>

#include "core/buf.h"
#include "core/loop.h"
#include "h1/h1.h"
#include "http/worker.h"

typedef struct weir_upconn weir_upconn_t;
typedef struct weir_req weir_req_t;
typedef struct weir_h2_conn weir_h2_conn_t;
typedef struct weir_h2_stream weir_h2_stream_t;
typedef struct weir_h3_stream weir_h3_stream_t;
typedef struct weir_l4 weir_l4_t;

typedef union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} weir_addr_t;

/* Client connection states. */
typedef enum {
    CONN_DETECT,    /* first bytes: a TLS ClientHello, the h2c preface or HTTP/1 */
    CONN_HANDSHAKE, /* TLS handshake in progress */
    CONN_H2,        /* HTTP/2: the session owns the connection */
    CONN_HEAD,    /* waiting for (more of) a request head */
    CONN_ACTIVE,  /* a request is in flight */
    CONN_TUNNEL,  /* after 101: bytes relayed both ways */
    CONN_DISCARD, /* the response is out; dropping the rest of the request body */
    CONN_CLOSING, /* flushing the last bytes, then close */
    CONN_L4,      /* a TCP router took it: bytes relayed to a server (src/l4) */
} weir_conn_state_t;

typedef struct weir_conn {
    weir_io_t io;
    weir_timer_t timer;
    weir_worker_t *worker;
    weir_buf_t in;
    weir_req_t *req;
    struct weir_conn *next, *prev; /* worker's connection list */
    weir_addr_t peer;
    struct weir_tls_io *tls; /* NULL on plain connections */
    weir_h2_conn_t *h2;        /* NULL unless HTTP/2 */
    weir_l4_t *l4;             /* NULL unless relayed by a TCP router */
    uint16_t ep;
    uint8_t state;
    uint8_t rd_ready : 1, wr_ready : 1, rd_eof : 1, closed : 1, keep_alive : 1, hup : 1;
    uint8_t is_tls : 1, pp_pending : 1;
    int16_t tls_opt; /* TLS options index the connection was made with */
    uint32_t requests; /* served on this connection */
    uint32_t scanned;  /* bytes of a partial head already searched for its end */
} weir_conn_t;

/* Request body / response body relay state. Bytes at the front of the
 * source buffer that the framing check has accepted but that have not been
 * written yet are described by pre (framing to drop first), len (bytes to
 * write) and post (framing to drop after them). */
typedef struct {
    weir_body_kind_t kind;
    uint64_t remaining;      /* LENGTH: bytes not yet accepted */
    weir_h1_chunked_t chunk; /* CHUNKED: validating decoder */
    size_t pre, len, post;
    uint8_t eof;    /* UNTIL_CLOSE: the upstream closed */
    uint8_t decode; /* CHUNKED: forward only the data (HTTP/1.0 client) */
    weir_buf_t *trailers; /* CHUNKED + decode: where the trailer section goes */
} weir_body_t;

static inline int weir_body_done(const weir_body_t *b)
{
    if (b->pre || b->len || b->post)
        return 0;
    switch (b->kind) {
    case WEIR_BODY_NONE: return 1;
    case WEIR_BODY_LENGTH: return b->remaining == 0;
    case WEIR_BODY_CHUNKED: return b->chunk.done;
    default: return b->eof;
    }
}

/* Accepts the next bytes of a body from p[0..n) into b->pre/len/post
 * (nothing may be pending). Returns 1 when something was accepted, 0 when
 * more bytes are needed, -1 on malformed chunked framing. */
int weir_body_accept(weir_body_t *b, const char *p, size_t n);

#define WEIR_MAX_RESP_HEADERS 128
#define WEIR_REPLAY_BODY_MAX (64 * 1024)

struct weir_req {
    weir_conn_t *conn;
    weir_h2_stream_t *h2s; /* the HTTP/2 stream carrying it; NULL for HTTP/1 */
    weir_h3_stream_t *h3s; /* the HTTP/3 stream carrying it */
    weir_view_t *view;
    const weir_route_t *route;
    const weir_service_rt_t *service;
    int server; /* snapshot server id, -1 none */
    weir_upconn_t *up;
    struct weir_h2up_stream *ups; /* when the request goes as an HTTP/2 stream */

    weir_h1_request_t h1;
    weir_header_t headers[WEIR_H1_MAX_HEADERS];

    /* request body: client → upstream */
    weir_body_t reqbody;
    /* response: upstream → client */
    weir_h1_response_t resp;
    weir_header_t resp_headers[WEIR_MAX_RESP_HEADERS];
    weir_body_t respbody;
    weir_buf_t out;    /* bytes we generate for the client: response head, error, whoami */
    weir_buf_t uphead; /* the request head we send upstream (kept for a retry) */
    weir_buf_t trailers; /* response trailer section (HTTP/2 clients), raw fields */
    size_t uphead_sent;

    /* copies of what the access log needs once the head is consumed */
    char *meta; /* one allocation holding the copies; NULL before */
    weir_slice_t m_method, m_path, m_host, m_referer, m_ua;

    int status;        /* sent to the client */
    int origin_status; /* received from the upstream, 0 if none */
    uint64_t resp_bytes; /* body bytes sent to the client */
    uint64_t discarded;  /* request body bytes dropped after the response */
    int64_t start_us;    /* wall clock at head completion */
    int64_t start_ms;    /* monotonic */
    uint8_t retried : 1, resp_started : 1, resp_head_sent : 1, reqbody_sent_some : 1,
        upgrade : 1, head_method : 1, idempotent : 1, sent_continue : 1, close_after : 1,
        up_req_done : 1, internal_done : 1, head_consumed : 1;
    uint8_t replays; /* times sent again after a backend refused or lost it */
    /* Request body bytes already sent on an HTTP/2 backend stream, kept
     * (up to WEIR_REPLAY_BODY_MAX) so a refused stream can be replayed. */
    weir_buf_t sent_body;
    uint8_t sent_body_over : 1; /* more was sent than kept: no replay */
    struct weir_req *next_free;
};

/* ---- request heads from field lists (HTTP/2, HTTP/3): fields.c ---- */
/* Appends one decoded field to a stream's list. Returns 0 or -1. */
int weir_fields_append(weir_buf_t *b, const uint8_t *name, size_t nlen, const uint8_t *value,
                       size_t vlen);
/* Fills r->h1 from a complete list (slices point into hdr, which may grow
 * once here to join cookies and must not change afterwards). no_body: the
 * head ended the stream. Returns 0 (*chunked: a body of unknown length,
 * to be sent chunked upstream), or the status to answer (400, 431, 500,
 * 501). */
int weir_fields_to_request(weir_req_t *r, weir_buf_t *hdr, bool no_body, bool *chunked);
/* Whether the response in r->resp carries a body (not for HEAD, 204, 304,
 * or an empty one). */
bool weir_resp_has_body(const weir_req_t *r);

/* The request rides a multiplexed stream (HTTP/2 or HTTP/3): the protocol
 * frames the body itself, trailers go in their own HEADERS. */
static inline bool weir_req_multiplexed(const weir_req_t *r)
{
    return r->h2s || r->h3s;
}

/* ---- the client side of a request, whatever the HTTP version ----
 * The proxy and the internal services talk to these; each dispatches to
 * HTTP/1 (this file's connection) or to the request's HTTP/2 stream. */
weir_req_t *weir_req_new(weir_conn_t *c);
void weir_req_free(weir_req_t *r);
/* A complete head is in r->h1 (and r->headers): route it and start it. */
void weir_req_start(weir_req_t *r);
/* Response bytes for the client (head bytes in r->out, then body). Returns
 * bytes taken (a short count: the client is full, weir_proxy_resume comes
 * later) or -1 when the client is gone. */
ssize_t weir_req_send(weir_req_t *r, const struct iovec *iov, int iovcnt);
/* The upstream response head is parsed into r->resp: prepare the client's. */
int weir_req_client_head(weir_req_t *r);
/* Where the request body bytes are (framed as r->reqbody says). */
weir_buf_t *weir_req_body_src(weir_req_t *r);
/* The proxy needs more request body bytes. */
void weir_req_want_body(weir_req_t *r);
/* The client will send no more request body bytes. */
bool weir_req_body_eof(const weir_req_t *r);
/* The response broke after it started: end the request so the client
 * cannot take it as complete (HTTP/1: close; HTTP/2: RST_STREAM). */
void weir_req_abort(weir_req_t *r);
/* Continue relaying on the next loop pass (fairness). */
void weir_req_resume_later(weir_req_t *r);
/* The request is fully sent upstream / the response has started: the
 * client timers change (readTimeout → writeTimeout). */
void weir_req_request_sent(weir_req_t *r);
void weir_req_response_started(weir_req_t *r);
/* Reads from the client (plain or TLS) into c->in: as weir_buf_read. */
ssize_t weir_conn_read(weir_conn_t *c, int *drained);
/* Reads once from the client and keeps the readiness flags right: returns
 * the bytes read (> 0), 0 when nothing came (the socket is empty: rd_ready
 * cleared; at end of stream: rd_eof set; EINTR: try again), or -1 on a
 * fatal error (the caller closes). */
ssize_t weir_conn_fill(weir_conn_t *c);
/* Writes to the client (plain or TLS): bytes written, 0 when full, -1. */
ssize_t weir_conn_write(weir_conn_t *c, const struct iovec *iov, int iovcnt);

/* Called by the listener for each accepted socket. */
void weir_conn_accept(weir_worker_t *w, int fd, const struct sockaddr *peer, socklen_t len, int ep);

/* Closes every idle connection and marks the others to close after their
 * current response (graceful drain). */
void weir_conns_drain(weir_worker_t *w);

/* Force-closes every connection (end of the grace period). */
void weir_conns_close_all(weir_worker_t *w);

/* Upstream side (src/upstream), called by the client side. */
void weir_proxy_start(weir_req_t *req);
/* The client side made room or got more body bytes; continue relaying. */
void weir_proxy_resume(weir_req_t *req);
/* The client went away or the request is abandoned: release the upstream. */
void weir_proxy_abort(weir_req_t *req);

/* Client side, called by the upstream side. */
/* Writes bytes to the client; returns bytes written, or -1 on a dead client.
 * A short count means the client's socket is full: the client side calls
 * weir_proxy_resume() when it drains. */
ssize_t weir_conn_send(weir_conn_t *c, const struct iovec *iov, int iovcnt);
/* The response is complete (ok) or failed after it started (!ok). */
void weir_req_finish(weir_req_t *req, int ok);
/* The response is complete but the request body is not: drop the rest of
 * it (bounded), then carry on with the next request. */
void weir_req_discard_body(weir_req_t *req);
/* Sends a short plain error response (before any response byte went out). */
void weir_req_error(weir_req_t *req, int status);
/* The same for a request whose head was refused before it started (its
 * clock starts now). */
void weir_req_start_error(weir_req_t *req, int status);
/* A multiplexed stream went away before its response was complete: the
 * upstream work is cancelled, the log says 499, r is freed. Returns
 * whether an access log line was written. */
bool weir_req_drop(weir_req_t *req);
/* Parses the HTTP/1.1 head weir generated in r->out (an error or internal
 * answer) into r->resp, for HTTP/2 and HTTP/3 to send as fields: returns
 * its length, or <= 0 when it does not parse. */
int weir_req_generated_head(weir_req_t *req);
/* Request body bytes available in the client buffer, for the upstream. */
void weir_conn_want_body(weir_conn_t *c);
/* Continues relaying on the next loop pass (fairness between connections). */
void weir_conn_resume_later(weir_conn_t *c);
/* Switches the client connection to tunnel mode (after 101). */
void weir_conn_tunnel(weir_req_t *req);

/* Copies the fields the access log needs out of the head, so the head's
 * bytes can be consumed from the connection buffer. */
void weir_req_keep_meta(weir_req_t *req);
/* Closes a client connection at once (a response broken after it started). */
void weir_conn_abort(weir_conn_t *c);

/* Writes what r->out holds (an error or internal response) and finishes
 * the request once it is out. */
void weir_conn_flush_generated(weir_req_t *req);

/* Internal services. */
void weir_whoami_respond(weir_req_t *req);

/* Access log line for a finished request. */
void weir_accesslog_write(weir_req_t *req);
void weir_accesslog_flush(weir_worker_t *w);

/* Generated heads. */
int weir_build_upstream_head(weir_req_t *req, const weir_server_cfg_t *srv, int pass_host);
int weir_build_client_head(weir_req_t *req);

/* Alt-Svc: whether a response to r advertises HTTP/3 (over TLS on an entry
 * point with http3, not over HTTP/3 itself, unless its router opts out). */
bool weir_alt_svc_wanted(const weir_req_t *r);
/* The Alt-Svc value for a response to r with fields h[0..n): weir's own
 * h3="<port>"; ma=<max age> first, then the alternatives of the backend's
 * Alt-Svc fields other than h3, h3-* and clear. Returns its length (0:
 * no Alt-Svc from weir; the backend's fields pass unchanged). */
size_t weir_alt_svc_value(const weir_req_t *r, const weir_header_t *h, size_t n, char *buf,
                          size_t cap);
/* Appends to buf[at..cap) the alternatives of an Alt-Svc field value (a
 * backend's) that are not weir's to give (h3, h3-*, clear), each after
 * ", " and without surrounding whitespace; commas inside quoted strings
 * do not split. An alternative that does not fit is left out. Returns the
 * new length. */
size_t weir_alt_svc_keep(weir_slice_t v, char *buf, size_t at, size_t cap);
/* Appends "Alt-Svc: ...\r\n" to a head weir generates, when wanted. */
int weir_put_alt_svc(const weir_req_t *r, weir_buf_t *b);

const char *weir_status_text(int status);

#endif
