/* HTTP/1 character classes and the small helpers shared with other HTTP
 * versions: token lists, field validation, hop-by-hop names, authorities. */
#include <limits.h>

#include "h1/h1_internal.h"

/* The class table is computed by the compiler from the RFC grammar below, so
 * it cannot drift from it the way a hand-typed table of 256 numbers can. */
#define ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define DIGIT(c) ((c) >= '0' && (c) <= '9')
#define VCHAR(c) ((c) >= 0x21 && (c) <= 0x7e)
#define TCHAR(c)                                                                                   \
    (ALPHA(c) || DIGIT(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || \
     (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' ||          \
     (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')
#define FIELD_VALUE(c) (VCHAR(c) || (c) >= 0x80 || (c) == ' ' || (c) == '\t')
#define TARGET(c) (VCHAR(c) && (c) != '#')
#define SUB_DELIM(c)                                                                               \
    ((c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' ||          \
     (c) == '*' || (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=')
#define REGNAME(c)                                                                                 \
    (ALPHA(c) || DIGIT(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' ||               \
     SUB_DELIM(c) || (c) == '%')
#define HEX(c) (DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define QDTEXT(c)                                                                                  \
    ((c) == '\t' || (c) == ' ' || (c) == 0x21 || ((c) >= 0x23 && (c) <= 0x5b) ||                   \
     ((c) >= 0x5d && (c) <= 0x7e) || (c) >= 0x80)

#define CLASS(c)                                                                                   \
    ((TCHAR(c) ? H1_TOKEN : 0) | (FIELD_VALUE(c) ? H1_VALUE : 0) | (TARGET(c) ? H1_TARGET : 0) |   \
     (REGNAME(c) ? H1_REGNAME : 0) | (HEX(c) ? H1_HEX : 0) | (QDTEXT(c) ? H1_QDTEXT : 0) |         \
     (DIGIT(c) ? H1_DIGIT : 0))
#define ROW(b)                                                                                     \
    CLASS(b + 0), CLASS(b + 1), CLASS(b + 2), CLASS(b + 3), CLASS(b + 4), CLASS(b + 5),            \
        CLASS(b + 6), CLASS(b + 7), CLASS(b + 8), CLASS(b + 9), CLASS(b + 10), CLASS(b + 11),      \
        CLASS(b + 12), CLASS(b + 13), CLASS(b + 14), CLASS(b + 15)

const uint8_t weir_h1_class[256] = {
    ROW(0x00), ROW(0x10), ROW(0x20), ROW(0x30), ROW(0x40), ROW(0x50), ROW(0x60), ROW(0x70),
    ROW(0x80), ROW(0x90), ROW(0xa0), ROW(0xb0), ROW(0xc0), ROW(0xd0), ROW(0xe0), ROW(0xf0),
};

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

int weir_h1_next_token(weir_slice_t *list, weir_slice_t *tok)
{
    const char *p = list->ptr, *e, *start, *stop;

    *tok = WEIR_SLICE_NULL;
    if (list->len == 0) return 0;
    e = p + list->len;
    while (p < e && (ows(*p) || *p == ','))
        p++;
    if (p == e) {
        *list = weir_slice(e, 0);
        return 0;
    }
    start = p;
    stop = memchr(p, ',', e - p);
    p = stop ? stop : e;
    while (p > start && ows(p[-1]))
        p--;
    *tok = weir_slice(start, p - start);
    p = stop ? stop : e;
    *list = weir_slice(p, e - p);
    return 1;
}

bool weir_h1_list_has(weir_slice_t list, const char *token)
{
    weir_slice_t want = weir_slice_cstr(token), tok;

    while (weir_h1_next_token(&list, &tok))
        if (weir_slice_ieq(tok, want)) return true;
    return false;
}

bool weir_h1_is_token(weir_slice_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!H1_IS(s.ptr[i], H1_TOKEN)) return false;
    return s.len > 0;
}

bool weir_h1_is_field_value(weir_slice_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!H1_IS(s.ptr[i], H1_VALUE)) return false;
    return true;
}

bool weir_h1_is_hop_by_hop(weir_slice_t name)
{
    /* Called for every forwarded field: dispatch on the length first. */
    switch (name.len) {
    case 2:
        return weir_slice_ieq_cstr(name, "te");
    case 7:
        return weir_slice_ieq_cstr(name, "trailer") || weir_slice_ieq_cstr(name, "upgrade");
    case 10:
        return weir_slice_ieq_cstr(name, "connection") || weir_slice_ieq_cstr(name, "keep-alive");
    case 16:
        return weir_slice_ieq_cstr(name, "proxy-connection");
    case 17:
        return weir_slice_ieq_cstr(name, "transfer-encoding");
    case 18:
        return weir_slice_ieq_cstr(name, "proxy-authenticate");
    case 19:
        return weir_slice_ieq_cstr(name, "proxy-authorization");
    default:
        return false;
    }
}

int weir_h1_version(const char *p, size_t n, int *minor)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || !DIGIT(p[5]) || p[6] != '.' || !DIGIT(p[7]))
        return -400;
    if (p[5] != '1' || p[7] > '1') return -505;
    *minor = p[7] - '0';
    return 0;
}

/* "[" IPv6address "]": hex digits, colons and dots (an IPv4 tail). Zone IDs
 * and IPvFuture are not accepted: nothing we route to uses them. */
static const char *skip_ip_literal(const char *p, const char *e)
{
    const char *start = ++p;

    while (p < e && (H1_IS(*p, H1_HEX) || *p == ':' || *p == '.'))
        p++;
    if (p == start || p == e || *p != ']') return NULL;
    return p + 1;
}

/* reg-name, which covers IPv4 too; every '%' must start a %XX escape. */
static const char *skip_reg_name(const char *p, const char *e)
{
    const char *start = p;

    while (p < e && H1_IS(*p, H1_REGNAME)) {
        if (*p == '%') {
            if (e - p < 3 || !H1_IS(p[1], H1_HEX) || !H1_IS(p[2], H1_HEX)) return NULL;
            p += 2;
        }
        p++;
    }
    return p == start ? NULL : p;
}

bool weir_h1_is_authority(weir_slice_t s, bool need_port)
{
    const char *p = s.ptr, *e;
    unsigned port = 0;
    int digits = 0;

    if (s.len == 0) return false;
    e = p + s.len;
    p = *p == '[' ? skip_ip_literal(p, e) : skip_reg_name(p, e);
    if (p == NULL) return false;
    if (p == e) return !need_port;
    if (*p++ != ':') return false;
    for (; p < e && DIGIT(*p) && digits < 5; p++, digits++)
        port = port * 10 + (unsigned)(*p - '0');
    return p == e && digits > 0 && port <= 65535;
}

weir_h1_limits_t weir_h1_limits(const weir_h1_limits_t *lim)
{
    weir_h1_limits_t l = {WEIR_H1_MAX_LINE_BYTES, WEIR_H1_MAX_HEAD_BYTES, WEIR_H1_MAX_HEADERS};

    if (lim) {
        l.max_headers = lim->max_headers;
        if (lim->max_line_bytes) l.max_line_bytes = lim->max_line_bytes;
        if (lim->max_head_bytes) l.max_head_bytes = lim->max_head_bytes;
    }
    /* Head lengths are returned as int. */
    if (l.max_head_bytes > INT_MAX) l.max_head_bytes = INT_MAX;
    return l;
}
