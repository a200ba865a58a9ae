/* Header lists for nghttp2, shared by the server (client-facing) and the
 * client (backend-facing) sides: names lower-cased into a scratch area,
 * values pointing at the caller's bytes (nghttp2 copies both when a frame
 * is submitted). */
#ifndef WEIR_H2_NV_H
#define WEIR_H2_NV_H

#include <nghttp2/nghttp2.h>

#include "core/slice.h"

#define WEIR_NV_MAX 256

typedef struct {
    nghttp2_nv nv[WEIR_NV_MAX];
    size_t n;
    char names[16384];
    size_t used;
    char status[8];
    char alt[1024]; /* the Alt-Svc value weir_nv_response builds */
} weir_nvlist_t;

/* nghttp3_nv has nghttp2_nv's layout: HTTP/3 uses the same lists. */
#define WEIR_NV3(l) ((const nghttp3_nv *)(const void *)(l)->nv)

static inline void weir_nv_reset(weir_nvlist_t *l)
{
    l->n = l->used = 0;
}

/* Appends one field; the name is lower-cased (a list that is full drops
 * the field). */
void weir_nv_add(weir_nvlist_t *l, weir_slice_t name, weir_slice_t value);

/* Appends the fields of an HTTP/1 field section ("Name: value\r\n" lines,
 * as a chunked trailer section carries them), leaving out the fields that
 * HTTP/2 forbids or that only frame an HTTP/1 message. */
void weir_nv_add_lines(weir_nvlist_t *l, const char *p, size_t n);

struct weir_req;
/* The response head of r->resp as a list: :status, then the fields that
 * may cross into HTTP/2 and HTTP/3 (hop-by-hop ones, those the Connection
 * field lists, transfer-encoding, and content-length when the body is
 * decoded, are left out), with Alt-Svc merged when weir advertises
 * HTTP/3. Values point into r. */
void weir_nv_response(weir_nvlist_t *l, const struct weir_req *r);

/* True for fields that must not cross into HTTP/2: connection-specific
 * ones and HTTP/1 framing (RFC 9113 §8.2.2). */
bool weir_nv_forbidden(weir_slice_t name);

#endif
