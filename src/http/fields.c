/* Request heads that arrive as decoded field lists (HTTP/2 HEADERS, HTTP/3
 * HEADERS after QPACK): the fields are kept in one buffer per stream and,
 * once the block is complete, turned into the common request model
 * (r->h1), so routing and the proxy see the same thing as for HTTP/1.1. */
#include <string.h>

#include "http/conn.h"

int weir_fields_append(weir_buf_t *b, const uint8_t *name, size_t nlen, const uint8_t *value,
                       size_t vlen)
{
    uint32_t lens[2] = {(uint32_t)nlen, (uint32_t)vlen};
    if (weir_buf_append(b, lens, sizeof lens) < 0 || weir_buf_append(b, name, nlen) < 0 ||
        weir_buf_append(b, value, vlen) < 0)
        return -1;
    return 0;
}

static weir_slice_t field_at(const char *p, uint32_t *nl, uint32_t *vl)
{
    memcpy(nl, p, 4);
    memcpy(vl, p + 4, 4);
    return weir_slice(p + 8, *nl);
}

int weir_fields_to_request(weir_req_t *r, weir_buf_t *hdr, bool no_body, bool *chunked)
{
    weir_h1_request_t *h = &r->h1;
    h->minor = 1;
    h->keep_alive = 1;
    *chunked = false;

    /* Cookie fields may be split (RFC 9113 §8.2.3, RFC 9114 §4.2.1): join
     * them for the HTTP/1.1 upstream. Make room first so the slices stay
     * valid. */
    size_t cookie_len = 0, ncookies = 0, off = 0, len = weir_buf_len(hdr);
    uint32_t nl, vl;
    while (off < len) {
        weir_slice_t n = field_at(weir_buf_head(hdr) + off, &nl, &vl);
        if (weir_slice_eq(n, WEIR_SLICE_LIT("cookie"))) {
            cookie_len += vl + 2;
            ncookies++;
        }
        off += 8 + nl + vl;
    }
    if (ncookies > 1 && weir_buf_reserve(hdr, cookie_len) < 0)
        return 500;
    char *cookie = ncookies > 1 ? weir_buf_tail(hdr) : NULL;
    size_t clen = 0;
    bool cookie_added = false, too_big = false;

    weir_slice_t host = WEIR_SLICE_NULL, authority = WEIR_SLICE_NULL, cl = WEIR_SLICE_NULL;
    const char *base = weir_buf_head(hdr);
    for (off = 0; off < len; off += 8 + nl + vl) {
        weir_slice_t n = field_at(base + off, &nl, &vl);
        weir_slice_t v = weir_slice(base + off + 8 + nl, vl);
        if (n.len && n.ptr[0] == ':') {
            if (weir_slice_eq(n, WEIR_SLICE_LIT(":method")))
                h->method = v;
            else if (weir_slice_eq(n, WEIR_SLICE_LIT(":path")))
                h->path = h->target = v;
            else if (weir_slice_eq(n, WEIR_SLICE_LIT(":authority")))
                authority = v;
            continue; /* :scheme: the library checked it; the upstream is ours */
        }
        if (ncookies > 1 && weir_slice_eq(n, WEIR_SLICE_LIT("cookie"))) {
            if (clen) {
                memcpy(cookie + clen, "; ", 2);
                clen += 2;
            }
            memcpy(cookie + clen, v.ptr, v.len);
            clen += v.len;
            if (cookie_added)
                continue;
            cookie_added = true; /* the joined value takes the first one's place */
        }
        if (weir_slice_eq(n, WEIR_SLICE_LIT("host")))
            host = v;
        else if (weir_slice_eq(n, WEIR_SLICE_LIT("content-length")))
            cl = v;
        if (h->num_headers >= WEIR_H1_MAX_HEADERS) {
            too_big = true;
            break;
        }
        h->headers[h->num_headers++] = (weir_header_t){n, v};
    }
    if (ncookies > 1) {
        for (size_t i = 0; i < h->num_headers; i++)
            if (weir_slice_eq(h->headers[i].name, WEIR_SLICE_LIT("cookie"))) {
                h->headers[i].value = weir_slice(cookie, clen);
                break;
            }
    }
    /* :authority wins over Host (RFC 9113 §8.3.1, RFC 9114 §4.3.1). */
    h->host = authority.len ? authority : host;
    if (too_big)
        return 431;
    if (weir_slice_eq(h->method, WEIR_SLICE_LIT("CONNECT")))
        return 501; /* no tunnels over multiplexed streams yet */
    if (no_body) {
        h->body = WEIR_BODY_NONE;
    } else if (cl.len) {
        uint64_t v = 0;
        for (size_t i = 0; i < cl.len; i++) {
            if (cl.ptr[i] < '0' || cl.ptr[i] > '9' || v > UINT64_MAX / 10 - 1)
                return 400;
            v = v * 10 + (uint64_t)(cl.ptr[i] - '0');
        }
        h->body = WEIR_BODY_LENGTH;
        h->content_length = v;
    } else {
        /* A body of unknown length: chunked to the HTTP/1.1 upstream. */
        h->body = WEIR_BODY_CHUNKED;
        *chunked = true;
    }
    return 0;
}

bool weir_resp_has_body(const weir_req_t *r)
{
    if (r->head_method || r->resp.status == 204 || r->resp.status == 304)
        return false;
    if (r->resp.body == WEIR_BODY_NONE)
        return false;
    return !(r->resp.body == WEIR_BODY_LENGTH && r->resp.content_length == 0);
}
