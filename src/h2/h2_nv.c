/* Header lists for nghttp2 (see h2_nv.h). */
#include <string.h>

#include "h1/h1.h"
#include "h2/h2_nv.h"
#include "http/conn.h"
#include <stdio.h>

void weir_nv_add(weir_nvlist_t *l, weir_slice_t name, weir_slice_t value)
{
    if (l->n >= WEIR_NV_MAX)
        return;
    uint8_t *nm = (uint8_t *)name.ptr;
    if (l->used + name.len <= sizeof l->names) {
        nm = (uint8_t *)l->names + l->used;
        for (size_t i = 0; i < name.len; i++) {
            char ch = name.ptr[i];
            nm[i] = (uint8_t)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        l->used += name.len;
    }
    l->nv[l->n++] = (nghttp2_nv){nm, (uint8_t *)value.ptr, name.len, value.len,
                                 NGHTTP2_NV_FLAG_NONE};
}

bool weir_nv_forbidden(weir_slice_t name)
{
    return weir_h1_is_hop_by_hop(name) || weir_slice_ieq_cstr(name, "content-length") ||
           weir_slice_ieq_cstr(name, "transfer-encoding") || weir_slice_ieq_cstr(name, "host");
}

void weir_nv_add_lines(weir_nvlist_t *l, const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && colon > p) {
            weir_slice_t name = weir_slice(p, (size_t)(colon - p));
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (!weir_nv_forbidden(name))
                weir_nv_add(l, name, weir_slice(v, (size_t)(ve - v)));
        }
        p = eol + 1;
    }
}

static bool connection_lists(const weir_h1_response_t *resp, weir_slice_t name)
{
    for (size_t i = 0; i < resp->num_headers; i++) {
        if (!weir_slice_ieq_cstr(resp->headers[i].name, "connection"))
            continue;
        weir_slice_t list = resp->headers[i].value, tok;
        while (weir_h1_next_token(&list, &tok))
            if (weir_slice_ieq(tok, name))
                return true;
    }
    return false;
}

void weir_nv_response(weir_nvlist_t *l, const weir_req_t *r)
{
    weir_nv_reset(l);
    snprintf(l->status, sizeof l->status, "%03d", r->resp.status % 1000);
    weir_nv_add(l, WEIR_SLICE_LIT(":status"), weir_slice(l->status, 3));
    size_t alt_len = weir_alt_svc_value(r, r->resp.headers, r->resp.num_headers, l->alt,
                                        sizeof l->alt);
    if (alt_len)
        weir_nv_add(l, WEIR_SLICE_LIT("alt-svc"), weir_slice(l->alt, alt_len));
    for (size_t i = 0; i < r->resp.num_headers; i++) {
        weir_slice_t n = r->resp.headers[i].name;
        if (weir_h1_is_hop_by_hop(n) || connection_lists(&r->resp, n) ||
            weir_slice_ieq_cstr(n, "transfer-encoding"))
            continue;
        if (alt_len && weir_slice_ieq_cstr(n, "alt-svc"))
            continue;
        if (r->respbody.decode && weir_slice_ieq_cstr(n, "content-length"))
            continue;
        weir_nv_add(l, n, r->resp.headers[i].value);
    }
}
