/* A borrowed span of bytes: {ptr, len}. Slices never own memory; whoever
 * hands one out says how long it stays valid. */
#ifndef WEIR_CORE_SLICE_H
#define WEIR_CORE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *ptr;
    size_t len;
} weir_slice_t;

#define WEIR_SLICE_LIT(s) ((weir_slice_t){(s), sizeof(s) - 1})
#define WEIR_SLICE_NULL ((weir_slice_t){NULL, 0})

static inline weir_slice_t weir_slice(const char *p, size_t n)
{
    return (weir_slice_t){p, n};
}

static inline weir_slice_t weir_slice_cstr(const char *s)
{
    return (weir_slice_t){s, s ? strlen(s) : 0};
}

static inline bool weir_slice_eq(weir_slice_t a, weir_slice_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* ASCII case-insensitive comparison (header names, host names). */
static inline bool weir_slice_ieq(weir_slice_t a, weir_slice_t b)
{
    return a.len == b.len && (a.len == 0 || strncasecmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool weir_slice_ieq_cstr(weir_slice_t a, const char *s)
{
    return weir_slice_ieq(a, weir_slice_cstr(s));
}

/* s without leading and trailing spaces and tabs (HTTP's OWS). */
static inline weir_slice_t weir_slice_trim(weir_slice_t s)
{
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* A header field as it arrived: name and value borrowed from a buffer. */
typedef struct {
    weir_slice_t name;
    weir_slice_t value;
} weir_header_t;

#endif
