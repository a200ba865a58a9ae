/* Field lines of an HTTP/1 head or trailer section (RFC 9112 §5), and what
 * the framing fields among them say (RFC 9112 §6, RFC 9110 §8.6). */
#include "h1/h1_internal.h"

/* Line endings: only CRLF. RFC 9112 §2.2 lets a recipient accept a bare LF,
 * but a parser that does while another hop does not is how requests get
 * smuggled; we always emit CRLF ourselves, so a bare LF anywhere is -400. */

/* Field values are the bulk of a head (cookies, user agents): eight bytes
 * at a time until something other than VCHAR or SP shows up; HTAB, obs-text
 * and the byte that ends the value are then decided one at a time. */
static const char *skip_value(const char *p, const char *e)
{
    uint64_t w;

    while (e - p >= 8) {
        memcpy(&w, p, 8);
        if (h1_has_below(w, 0x20) | h1_has_byte(w, 0x7f) | h1_has_high(w)) break;
        p += 8;
    }
    while (p < e && H1_IS(*p, H1_VALUE))
        p++;
    return p;
}

ssize_t weir_h1_scan_field(const char *buf, size_t pos, size_t end, weir_header_t *h)
{
    const char *p = buf + pos, *e = buf + end, *name = p, *value, *stop;

    while (p < e && H1_IS(*p, H1_TOKEN))
        p++;
    if (p == e) return H1_NEED_MORE;
    /* An empty name covers obs-fold (a line starting with SP or HTAB, RFC 9112
     * §5.2) and whitespace before the first field; a byte other than ':' after
     * the name covers whitespace before the colon (§5.1) and non-token names. */
    if (*p != ':' || p == name) return -400;
    h->name = weir_slice(name, p - name);
    p++;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    value = p;
    p = skip_value(p, e);
    if (p == e) return H1_NEED_MORE;
    if (*p != '\r') /* NUL, LF, DEL or another control byte */
        return -400;
    if (p + 1 == e) return H1_NEED_MORE;
    if (p[1] != '\n') /* bare CR */
        return -400;
    for (stop = p; stop > value && (stop[-1] == ' ' || stop[-1] == '\t');)
        stop--;
    h->value = weir_slice(value, stop - value);
    return p + 2 - buf;
}

/* Content-Length = 1*DIGIT, possibly as a list of one repeated value (RFC
 * 9110 §8.6); repeated fields must agree too. No sign, no hex, no empty
 * element, nothing above INT64_MAX (others hold lengths in off_t). */
static int note_content_length(struct h1_fields *f, weir_slice_t v)
{
    const char *p = v.ptr, *e = p + v.len;
    const uint64_t max = INT64_MAX;

    if (v.len == 0) return -400;
    for (;;) {
        uint64_t n = 0;
        const char *digits = p;

        for (; p < e && H1_IS(*p, H1_DIGIT); p++) {
            unsigned d = (unsigned)(*p - '0');
            if (n > (max - d) / 10) return -400;
            n = n * 10 + d;
        }
        if (p == digits || (f->has_cl && n != f->content_length)) return -400;
        f->has_cl = 1;
        f->content_length = n;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        if (p == e) return 0;
        if (*p++ != ',') return -400;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
    }
}

/* Transfer codings are counted here and judged once every field is in,
 * because a later Transfer-Encoding field continues the list. */
static int note_transfer_encoding(struct h1_fields *f, weir_slice_t v)
{
    weir_slice_t tok;
    bool any = false;

    f->has_te = 1;
    while (weir_h1_next_token(&v, &tok)) {
        any = true;
        /* "chunked;x" and the like: codings with parameters are not
         * something we implement, and a bare "chunked;" is malformed. */
        if (!weir_h1_is_token(tok)) return -400;
        if (weir_slice_ieq_cstr(tok, "chunked")) {
            f->te_chunked++;
            f->te_last_chunked = 1;
        } else {
            f->te_other++;
            f->te_last_chunked = 0;
        }
    }
    return any ? 0 : -400;
}

int weir_h1_te_verdict(const struct h1_fields *f)
{
    /* RFC 9112 §6.1: chunked at most once, and last. Anything else before
     * it is a coding we do not implement (§6.1: 501). */
    if (f->te_chunked != 1 || !f->te_last_chunked) return -400;
    return f->te_other ? -501 : 0;
}

static void note_connection(struct h1_fields *f, weir_slice_t v)
{
    weir_slice_t tok;

    while (weir_h1_next_token(&v, &tok)) {
        if (weir_slice_ieq_cstr(tok, "close"))
            f->conn_close = 1;
        else if (weir_slice_ieq_cstr(tok, "keep-alive"))
            f->conn_keep_alive = 1;
        else if (weir_slice_ieq_cstr(tok, "upgrade"))
            f->conn_upgrade = 1;
    }
}

static int note_host(struct h1_fields *f, weir_slice_t v)
{
    /* An empty Host is valid (RFC 9110 §7.2); anything else must be an
     * authority without userinfo, so no spaces, slashes or '@'. */
    if (v.len && !weir_h1_is_authority(v, false)) return -400;
    if (f->host_count++ == 0) f->host = v;
    return 0;
}

/* Looks at the fields that matter to framing; the length switch keeps the
 * common case (any other field) to one comparison. */
static int note_field(struct h1_fields *f, const weir_header_t *h, bool request)
{
    switch (h->name.len) {
    case 4:
        if (request && weir_slice_ieq_cstr(h->name, "host")) return note_host(f, h->value);
        break;
    case 6:
        if (request && weir_slice_ieq_cstr(h->name, "expect") &&
            weir_h1_list_has(h->value, "100-continue"))
            f->expect_continue = 1;
        break;
    case 7:
        if (weir_slice_ieq_cstr(h->name, "upgrade") && h->value.len) f->has_upgrade = 1;
        break;
    case 10:
        if (weir_slice_ieq_cstr(h->name, "connection")) note_connection(f, h->value);
        break;
    case 14:
        if (weir_slice_ieq_cstr(h->name, "content-length")) return note_content_length(f, h->value);
        break;
    case 17:
        if (weir_slice_ieq_cstr(h->name, "transfer-encoding"))
            return note_transfer_encoding(f, h->value);
        break;
    }
    return 0;
}

ssize_t weir_h1_parse_fields(const char *buf, size_t pos, size_t end, weir_header_t *hdrs,
                             size_t max, size_t *count, struct h1_fields *f, bool request)
{
    weir_header_t h;
    ssize_t next;

    for (;;) {
        if (pos == end) return H1_NEED_MORE;
        if (buf[pos] == '\r') {
            if (pos + 1 == end) return H1_NEED_MORE;
            return buf[pos + 1] == '\n' ? (ssize_t)pos + 2 : -400;
        }
        next = weir_h1_scan_field(buf, pos, end, &h);
        if (next < 0) return next;
        if (*count == max) return -431;
        hdrs[(*count)++] = h;
        if (note_field(f, &h, request) < 0) return -400;
        pos = (size_t)next;
    }
}
