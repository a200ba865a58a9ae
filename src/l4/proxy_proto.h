/* PROXY protocol, versions 1 (text) and 2 (binary), as haproxy's
 * doc/proxy-protocol.txt defines them: a parser (no I/O, no allocation:
 * bytes in, a verdict and the addresses out) and writers.
 *
 * The parser is strict: a v1 line is at most 107 bytes with exactly the
 * fields of its protocol; a v2 header's length must hold the addresses of
 * its family, and its TLVs must fill the rest exactly. Anything else is
 * INVALID, never "part of a header".
 */
#ifndef WEIR_L4_PROXY_PROTO_H
#define WEIR_L4_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/slice.h"

#define WEIR_PP_V1_MAX 107   /* longest v1 line, CRLF included */
#define WEIR_PP_V2_MAX 4096  /* longest v2 header weir accepts (16 + length) */

typedef struct {
    int version;   /* 1 or 2 */
    bool local;    /* no addresses to use: v2 LOCAL, v1 UNKNOWN, v2 UNSPEC or UNIX */
    bool dgram;    /* v2 transport: datagrams (UDP) */
    struct sockaddr_storage src, dst; /* AF_INET or AF_INET6 unless local */
    size_t len;    /* bytes the header takes */
    weir_slice_t alpn;      /* v2 TLV PP2_TYPE_ALPN (0x01), borrowed; empty if none */
    weir_slice_t authority; /* v2 TLV PP2_TYPE_AUTHORITY (0x02): the SNI; empty if none */
} weir_pp_header_t;

enum {
    WEIR_PP_OK = 1,        /* a complete, valid header: *out filled */
    WEIR_PP_NEED_MORE = 0, /* the bytes so far are a strict prefix of a header */
    WEIR_PP_NONE = -1,     /* not a PROXY header at all */
    WEIR_PP_INVALID = -2,  /* a PROXY header, malformed */
};

/* Parses the start of a stream (or a datagram). */
int weir_pp_parse(const uint8_t *p, size_t len, weir_pp_header_t *out);

/* Writes a v1 line for a connection from src to dst (both AF_INET or both
 * AF_INET6; otherwise "PROXY UNKNOWN"). Returns its length, or -1 when cap
 * is too small (WEIR_PP_V1_MAX always suffices). */
ssize_t weir_pp_write_v1(char *buf, size_t cap, const struct sockaddr *src,
                         const struct sockaddr *dst);

/* Writes a v2 header: PROXY command, TCP (or UDP when dgram) over the
 * family of src (both must match; otherwise LOCAL with no address), then
 * the ALPN and authority TLVs when not empty. Returns its length, or -1
 * when cap is too small. */
ssize_t weir_pp_write_v2(uint8_t *buf, size_t cap, const struct sockaddr *src,
                         const struct sockaddr *dst, bool dgram, weir_slice_t alpn,
                         weir_slice_t authority);

#endif
