/* Shared inside src/h1 only: character classes, the field-line scanner and
 * the framing facts gathered from a head's fields. Not part of the contract;
 * other modules use h1.h. */
#ifndef WEIR_H1_INTERNAL_H
#define WEIR_H1_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "h1/h1.h"

/* Bits of weir_h1_class[]. */
#define H1_TOKEN 0x01   /* tchar (RFC 9110 §5.6.2) */
#define H1_VALUE 0x02   /* field-vchar, SP, HTAB (RFC 9110 §5.5) */
#define H1_TARGET 0x04  /* request-target bytes: VCHAR but '#' */
#define H1_REGNAME 0x08 /* reg-name bytes (RFC 3986 §3.2.2), '%' included */
#define H1_HEX 0x10
#define H1_QDTEXT 0x20 /* quoted-string text (RFC 9110 §5.6.4) */
#define H1_DIGIT 0x40

extern const uint8_t weir_h1_class[256];

#define H1_IS(c, bits) (weir_h1_class[(unsigned char)(c)] & (bits))

/* Eight bytes at a time (a uint64_t loaded with memcpy): nonzero when some
 * byte is below n (n <= 128), equals c, or has its high bit set. Exact as a
 * yes/no answer, whatever the byte order. */
#define H1_ONES (~(uint64_t)0 / 255)

static inline uint64_t h1_has_below(uint64_t w, unsigned n)
{
    return (w - H1_ONES * n) & ~w & (H1_ONES * 0x80);
}

static inline uint64_t h1_has_byte(uint64_t w, unsigned char c)
{
    return h1_has_below(w ^ (H1_ONES * c), 1);
}

static inline uint64_t h1_has_high(uint64_t w)
{
    return w & (H1_ONES * 0x80);
}

/* Parsers return positions as ssize_t: >= 0 a position, else one of these or
 * a negative status. */
#define H1_NEED_MORE ((ssize_t)WEIR_H1_NEED_MORE)

/* What the fields of a head say about framing and the connection. */
struct h1_fields {
    unsigned host_count;
    weir_slice_t host;
    uint64_t content_length;
    unsigned has_cl : 1;
    unsigned has_te : 1;
    unsigned te_last_chunked : 1; /* the final coding seen so far is chunked */
    unsigned conn_close : 1;
    unsigned conn_keep_alive : 1;
    unsigned conn_upgrade : 1;
    unsigned has_upgrade : 1;
    unsigned expect_continue : 1;
    unsigned te_chunked; /* how many times "chunked" was listed */
    unsigned te_other;   /* codings other than chunked */
};

/* Scans one field line "name: value CRLF" starting at buf[pos], looking no
 * further than buf[end]. Fills *h and returns the position after the CRLF,
 * H1_NEED_MORE, or -400. */
ssize_t weir_h1_scan_field(const char *buf, size_t pos, size_t end, weir_header_t *h);

/* Parses field lines from buf[pos] up to and including the empty line that
 * ends the head, storing up to max of them in hdrs[] and summing up framing in
 * *f (request: Host and Expect are looked at too). Returns the position after
 * the empty line, H1_NEED_MORE, -400 or -431. */
ssize_t weir_h1_parse_fields(const char *buf, size_t pos, size_t end, weir_header_t *hdrs,
                             size_t max, size_t *count, struct h1_fields *f, bool request);

/* The Transfer-Encoding verdict once all fields are in: 0 when the codings are
 * exactly "chunked" last and once, -400 when malformed, -501 when other codings
 * precede chunked. */
int weir_h1_te_verdict(const struct h1_fields *f);

/* Checks the 8 bytes "HTTP/d.d". Returns 0 and sets *minor for 1.0 and 1.1,
 * -505 for another version, -400 when it is no version at all. */
int weir_h1_version(const char *p, size_t n, int *minor);

/* True for host[:port] with a non-empty IP-literal, IPv4 or reg-name host and
 * a port of 1 to 5 digits below 65536; the port is mandatory when need_port. */
bool weir_h1_is_authority(weir_slice_t s, bool need_port);

/* Effective limits: defaults for NULL or zero byte limits. */
weir_h1_limits_t weir_h1_limits(const weir_h1_limits_t *lim);

#endif
