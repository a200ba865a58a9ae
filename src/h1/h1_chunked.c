/* The chunked transfer coding (RFC 9112 §7.1), decoded incrementally.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 *
 * Everything up to the trailer section is a byte-at-a-time state machine, so
 * any split of the input decodes the same. The trailer section is parsed
 * like a head, from its start each time, and consumed only when complete. */
#include "h1/h1_internal.h"

enum {
    SIZE_FIRST = 0, /* first hex digit of a chunk size (zero state) */
    SIZE,           /* more digits, or what ends the size */
    EXT_BWS,        /* whitespace that only ';' may follow */
    EXT_NAME_FIRST, /* after ';' */
    EXT_NAME,
    EXT_NAME_BWS,  /* whitespace after a name: '=' or ';' */
    EXT_VAL_FIRST, /* after '=' */
    EXT_TOKEN,
    EXT_QUOTED,
    EXT_QUOTED_PAIR,
    EXT_QUOTED_END, /* after the closing quote */
    SIZE_LF,
    DATA,
    DATA_CR,
    DATA_LF,
    TRAILER,
    DONE,
};

#define MAX_SIZE_DIGITS 16 /* a uint64_t; more is an overflow */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool ws(char c)
{
    return c == ' ' || c == '\t';
}

/* The state after a byte that may end a name or value: ';' starts the next
 * extension, CR ends the line. */
static int ext_next(char c)
{
    return c == ';' ? EXT_NAME_FIRST : c == '\r' ? SIZE_LF : -1;
}

/* Advances the size line by one byte. Returns the new state or -1. */
static int size_line_step(weir_h1_chunked_t *st, char c)
{
    int v;

    switch (st->state) {
    case SIZE_FIRST:
    case SIZE:
        if ((v = hex_value(c)) >= 0) {
            if (st->size_digits == MAX_SIZE_DIGITS) return -1;
            st->size_digits++;
            st->remaining = st->remaining << 4 | (unsigned)v;
            return SIZE;
        }
        /* " 5", "-1", "0x5" and an empty size all fail here */
        if (st->state == SIZE_FIRST) return -1;
        return ws(c) ? EXT_BWS : ext_next(c);
    case EXT_BWS:
        return ws(c) ? EXT_BWS : c == ';' ? EXT_NAME_FIRST : -1;
    case EXT_NAME_FIRST:
        return ws(c) ? EXT_NAME_FIRST : H1_IS(c, H1_TOKEN) ? EXT_NAME : -1;
    case EXT_NAME:
        if (H1_IS(c, H1_TOKEN)) return EXT_NAME;
        return ws(c) ? EXT_NAME_BWS : c == '=' ? EXT_VAL_FIRST : ext_next(c);
    case EXT_NAME_BWS:
        return ws(c) ? EXT_NAME_BWS : c == '=' ? EXT_VAL_FIRST : c == ';' ? EXT_NAME_FIRST : -1;
    case EXT_VAL_FIRST:
        if (ws(c)) return EXT_VAL_FIRST;
        return c == '"' ? EXT_QUOTED : H1_IS(c, H1_TOKEN) ? EXT_TOKEN : -1;
    case EXT_TOKEN:
        if (H1_IS(c, H1_TOKEN)) return EXT_TOKEN;
        return ws(c) ? EXT_BWS : ext_next(c);
    case EXT_QUOTED:
        if (c == '"') return EXT_QUOTED_END;
        return c == '\\' ? EXT_QUOTED_PAIR : H1_IS(c, H1_QDTEXT) ? EXT_QUOTED : -1;
    case EXT_QUOTED_PAIR: /* HTAB, SP, VCHAR or obs-text */
        return H1_IS(c, H1_VALUE) ? EXT_QUOTED : -1;
    case EXT_QUOTED_END:
        return ws(c) ? EXT_BWS : ext_next(c);
    case SIZE_LF:
        if (c != '\n') return -1;
        return st->remaining ? DATA : TRAILER;
    case DATA_CR:
        return c == '\r' ? DATA_LF : -1;
    case DATA_LF:
        if (c != '\n') return -1;
        st->size_digits = 0;
        st->remaining = 0;
        return SIZE_FIRST;
    default:
        return -1;
    }
}

/* The trailer section: field lines, then the CRLF that ends the body.
 * Returns the position after it, pos itself while incomplete, or -400. */
static ssize_t trailer_section(weir_h1_chunked_t *st, const char *buf, size_t pos, size_t len,
                               weir_slice_t *trailers)
{
    size_t max = st->max_trailer_bytes ? st->max_trailer_bytes : WEIR_H1_MAX_TRAILER_BYTES;
    size_t end = len - pos > max ? pos + max : len, p = pos;
    weir_header_t h;
    ssize_t next;

    while (p < end) {
        if (buf[p] == '\r') {
            if (p + 1 == end) break;
            if (buf[p + 1] != '\n') return -400;
            if (p > pos) *trailers = weir_slice(buf + pos, p - pos);
            st->state = DONE;
            st->done = 1;
            return (ssize_t)(p + 2);
        }
        next = weir_h1_scan_field(buf, p, end, &h);
        if (next == H1_NEED_MORE) break;
        if (next < 0) return -400;
        p = (size_t)next;
    }
    return len - pos > max ? -400 : (ssize_t)pos;
}

ssize_t weir_h1_chunked_decode(weir_h1_chunked_t *st, const char *buf, size_t len,
                               weir_slice_t *data, weir_slice_t *trailers)
{
    size_t pos = 0, n;
    int next;

    *data = WEIR_SLICE_NULL;
    *trailers = WEIR_SLICE_NULL;
    while (pos < len) {
        switch (st->state) {
        case DATA:
            n = len - pos < st->remaining ? len - pos : (size_t)st->remaining;
            *data = weir_slice(buf + pos, n);
            st->remaining -= n;
            if (st->remaining == 0) st->state = DATA_CR;
            return (ssize_t)(pos + n);
        case TRAILER:
            return trailer_section(st, buf, pos, len, trailers);
        case DONE:
            return (ssize_t)pos;
        default:
            if ((next = size_line_step(st, buf[pos])) < 0) return -400;
            st->state = (uint8_t)next;
            pos++;
        }
    }
    return (ssize_t)pos;
}
