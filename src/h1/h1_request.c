/* HTTP/1 request heads (RFC 9112 §3, §6; RFC 9110 §7.2). */
#include "h1/h1_internal.h"

/* RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the
 * request line (old clients send CRLF after a POST body). A few is robust;
 * an endless stream of them is not a request. */
#define MAX_EMPTY_LINES 4

/* Where the parser may look: buf[0..view), view = min(len, max_head_bytes).
 * Running out of the view is "need more" unless the buffer goes further,
 * which means the head is too long. */
struct bounds {
    size_t len;
    size_t view;
};

static int incomplete(const struct bounds *b)
{
    return b->len > b->view ? -431 : WEIR_H1_NEED_MORE;
}

static int skip_empty_lines(const char *buf, const struct bounds *b, size_t *pos)
{
    size_t p = 0;

    for (int n = 0; p < b->view && (buf[p] == '\r' || buf[p] == '\n'); n++) {
        if (n == MAX_EMPTY_LINES || buf[p] == '\n') return -400;
        if (p + 1 == b->view) return incomplete(b);
        if (buf[p + 1] != '\n') return -400;
        p += 2;
    }
    *pos = p;
    return 0;
}

/* Request targets can be long (query strings); same idea as field values:
 * eight bytes at a time while they hold only VCHAR other than '#'. */
static const char *skip_target(const char *p, const char *e)
{
    uint64_t w;

    while (e - p >= 8) {
        memcpy(&w, p, 8);
        if (h1_has_below(w, 0x21) | h1_has_byte(w, 0x7f) | h1_has_byte(w, '#') | h1_has_high(w))
            break;
        p += 8;
    }
    while (p < e && H1_IS(*p, H1_TARGET))
        p++;
    return p;
}

/* method SP request-target SP HTTP-version CRLF, exactly one SP each.
 * The line may not exceed max_line_bytes (without its CRLF); that is
 * noticed as soon as that many bytes are in without a line end. */
static int request_line(const char *buf, size_t pos, const struct bounds *b, size_t max_line,
                        weir_h1_request_t *req, size_t *next)
{
    const char *line = buf + pos, *p = line, *start, *stop;
    size_t room = b->view - pos;
    bool capped = room > max_line;
    int r;

    stop = line + (capped ? max_line + 1 : room);
    while (p < stop && H1_IS(*p, H1_TOKEN))
        p++;
    if (p == stop) goto incomplete;
    if (*p != ' ' || p == line) return -400;
    req->method = weir_slice(line, p - line);

    start = ++p;
    p = skip_target(p, stop);
    if (p == stop) goto incomplete;
    if (*p != ' ' || p == start) return -400;
    req->target = weir_slice(start, p - start);

    start = ++p;
    while (p < stop && *p >= 0x21 && *p <= 0x7e)
        p++;
    if (p == stop) goto incomplete;
    if (*p != '\r') return -400;
    r = weir_h1_version(start, p - start, &req->minor);
    if (r < 0) return r;
    if (p + 1 == buf + b->view) return incomplete(b);
    if (p[1] != '\n') return -400;
    *next = p + 2 - buf;
    return 0;

incomplete:
    return capped ? -414 : incomplete(b);
}

/* absolute-form (RFC 9112 §3.2.2): http or https only; the authority becomes
 * req->authority, the rest req->path. */
static int absolute_form(weir_h1_request_t *req)
{
    static const char root[] = "/";
    const char *p = req->target.ptr, *e = p + req->target.len, *a;

    if (req->target.len > 7 && strncasecmp(p, "http://", 7) == 0)
        p += 7;
    else if (req->target.len > 8 && strncasecmp(p, "https://", 8) == 0)
        p += 8;
    else
        return -400;
    for (a = p; p < e && *p != '/' && *p != '?';)
        p++;
    req->authority = weir_slice(a, p - a);
    if (!weir_h1_is_authority(req->authority, false)) return -400;
    if (p == e) {
        req->path = weir_slice(root, 1);
        return 0;
    }
    /* "http://h?q" has an empty path and a query; the origin-form would be
     * "/?q", which is not a span of the buffer. Too rare to be worth a copy. */
    if (*p == '?') return -400;
    req->path = weir_slice(p, e - p);
    return 0;
}

/* RFC 9112 §3.2: which target form goes with which method. Methods are
 * case-sensitive (RFC 9110 §9.1). */
static int request_target(weir_h1_request_t *req)
{
    weir_slice_t t = req->target;

    if (weir_slice_eq(req->method, WEIR_SLICE_LIT("CONNECT"))) {
        if (!weir_h1_is_authority(t, true)) return -400;
        req->authority = t;
        return 0;
    }
    if (t.ptr[0] == '/') {
        req->path = t;
        return 0;
    }
    if (t.len == 1 && t.ptr[0] == '*') {
        if (!weir_slice_eq(req->method, WEIR_SLICE_LIT("OPTIONS"))) return -400;
        req->path = t;
        return 0;
    }
    return absolute_form(req);
}

static int request_semantics(weir_h1_request_t *req, const struct h1_fields *f)
{
    int r;

    /* RFC 9112 §3.2: Host is mandatory in 1.1 and never repeated, even
     * with the same value. */
    if (f->host_count > 1 || (req->minor == 1 && f->host_count == 0)) return -400;
    req->host = f->host;
    if (f->has_te) {
        /* RFC 9112 §6.1: TE with CL is a smuggling attempt; TE in 1.0 means
         * the framing is faulty. Refuse rather than guess. */
        if (f->has_cl || req->minor == 0) return -400;
        r = weir_h1_te_verdict(f);
        if (r < 0) return r;
        req->body = WEIR_BODY_CHUNKED;
    } else if (f->has_cl) {
        req->body = WEIR_BODY_LENGTH;
        req->content_length = f->content_length;
    }
    req->keep_alive = !f->conn_close && (req->minor == 1 || f->conn_keep_alive);
    /* RFC 9110 §10.1.1 and §7.8: 1.0 recipients ignore Expect and Upgrade. */
    req->expect_continue = req->minor == 1 && f->expect_continue;
    req->upgrade = req->minor == 1 && f->conn_upgrade && f->has_upgrade;
    return 0;
}

int weir_h1_parse_request(const char *buf, size_t len, weir_h1_request_t *req,
                          const weir_h1_limits_t *lim)
{
    weir_h1_limits_t l = weir_h1_limits(lim);
    struct bounds b = {len, len < l.max_head_bytes ? len : l.max_head_bytes};
    struct h1_fields f = {0};
    weir_header_t *headers = req->headers;
    size_t pos;
    ssize_t end;
    int r;

    memset(req, 0, sizeof(*req));
    req->headers = headers;
    if ((r = skip_empty_lines(buf, &b, &pos)) < 0) return r;
    if ((r = request_line(buf, pos, &b, l.max_line_bytes, req, &pos)) < 0) return r;
    if ((r = request_target(req)) < 0) return r;
    end =
        weir_h1_parse_fields(buf, pos, b.view, headers, l.max_headers, &req->num_headers, &f, true);
    if (end == H1_NEED_MORE) return incomplete(&b);
    if (end < 0) return (int)end;
    if ((r = request_semantics(req, &f)) < 0) return r;
    req->head_len = (size_t)end;
    return (int)end;
}
