/* Header lists for nghttp2 (see h2_nv.h). */
#include <string.h>

#include "h1/h1.h"
#include "h2/h2_nv.h"

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
