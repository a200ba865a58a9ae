/* HTTP/1 response heads (RFC 9112 §4, §6.3). Every fault is the backend's,
 * so every error is -502. */
#include "h1/h1_internal.h"

/* HTTP-version SP 3DIGIT [SP reason-phrase] CRLF. RFC 9112 §4 wants the SP
 * even with an empty reason, but "HTTP/1.1 200\r\n" is common and harmless. */
static ssize_t status_line(const char *buf, size_t len, size_t view, size_t max_line,
                           weir_h1_response_t *resp)
{
    static const char shape[] = "HTTP/0.0 000";
    bool capped = view > max_line;
    const char *p = buf, *stop = buf + (capped ? max_line + 1 : view), *reason;

    /* The fixed part byte by byte, so a short buffer is "need more" and a
     * wrong byte is an error at once. */
    for (size_t i = 0; i < sizeof(shape) - 1; i++, p++) {
        if (p == stop) goto incomplete;
        if (shape[i] == '0' ? !H1_IS(*p, H1_DIGIT) : *p != shape[i]) return -502;
    }
    if (weir_h1_version(buf, 8, &resp->minor) < 0) return -502;
    resp->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (resp->status < 100) return -502;
    if (p == stop) goto incomplete;
    reason = p;
    if (*p == ' ')
        for (reason = ++p; p < stop && H1_IS(*p, H1_VALUE);)
            p++;
    if (p == stop) goto incomplete;
    if (*p != '\r') return -502;
    resp->reason = weir_slice(reason, p - reason);
    if (p + 1 == buf + view) return len > view ? -502 : H1_NEED_MORE;
    if (p[1] != '\n') return -502;
    return p + 2 - buf;

incomplete:
    return capped || len > view ? -502 : H1_NEED_MORE;
}

/* RFC 9112 §6.3, in its order. */
static int response_framing(weir_h1_response_t *resp, const struct h1_fields *f, int head_request)
{
    int s = resp->status;

    /* TE with CL, TE in 1.0, and any coding list but a single "chunked" are
     * refused outright: we could not forward them faithfully. */
    if (f->has_te && (f->has_cl || resp->minor == 0 || weir_h1_te_verdict(f) != 0)) return -502;
    resp->keep_alive = !f->conn_close && (resp->minor == 1 || f->conn_keep_alive);
    resp->upgrade = s == 101 && f->conn_upgrade;
    if (head_request || s < 200 || s == 204 || s == 304)
        resp->body = WEIR_BODY_NONE;
    else if (f->has_te)
        resp->body = WEIR_BODY_CHUNKED;
    else if (f->has_cl) {
        resp->body = WEIR_BODY_LENGTH;
        resp->content_length = f->content_length;
    } else {
        resp->body = WEIR_BODY_UNTIL_CLOSE;
        resp->keep_alive = 0;
    }
    return 0;
}

int weir_h1_parse_response(const char *buf, size_t len, weir_h1_response_t *resp,
                           const weir_h1_limits_t *lim, int head_request)
{
    weir_h1_limits_t l = weir_h1_limits(lim);
    size_t view = len < l.max_head_bytes ? len : l.max_head_bytes;
    struct h1_fields f = {0};
    weir_header_t *headers = resp->headers;
    ssize_t pos;

    memset(resp, 0, sizeof(*resp));
    resp->headers = headers;
    pos = status_line(buf, len, view, l.max_line_bytes, resp);
    if (pos < 0) return (int)pos;
    pos = weir_h1_parse_fields(buf, (size_t)pos, view, headers, l.max_headers, &resp->num_headers,
                               &f, false);
    if (pos == H1_NEED_MORE) return len > view ? -502 : WEIR_H1_NEED_MORE;
    if (pos < 0 || response_framing(resp, &f, head_request) < 0) return -502;
    resp->head_len = (size_t)pos;
    return (int)pos;
}
