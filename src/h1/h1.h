/* HTTP/1.1 message parsing (RFC 9112), with no I/O.
 *
 * Bytes in; a parsed head, "need more", or an error out. Every slice the
 * parser returns points into the caller's buffer and stays valid as long as
 * that buffer does. The parser is strict: anything RFC 9112 lets a recipient
 * reject, and anything a request-smuggling attack relies on, is rejected.
 *
 * Error returns are negative HTTP status codes so the caller can answer with
 * exactly that status: -400, -414, -431, -501, -505. WEIR_H1_NEED_MORE (-1)
 * means the head is incomplete; call again with more bytes (the parser
 * restarts from the beginning of the buffer; heads are small).
 */
#ifndef WEIR_H1_H
#define WEIR_H1_H

#include <stdint.h>
#include <sys/types.h>

#include "core/slice.h"

#define WEIR_H1_NEED_MORE (-1)

/* Default limits (Traefik/Go: 1 MiB of header bytes; we cap at 100 fields). */
#define WEIR_H1_MAX_LINE_BYTES 8192
#define WEIR_H1_MAX_HEADERS 100
#define WEIR_H1_MAX_HEAD_BYTES (1024 * 1024)
#define WEIR_H1_MAX_TRAILER_BYTES (64 * 1024) /* weir_h1_chunked_t.max_trailer_bytes == 0 */

typedef enum {
    WEIR_BODY_NONE = 0,    /* no body follows the head */
    WEIR_BODY_LENGTH,      /* content_length bytes follow */
    WEIR_BODY_CHUNKED,     /* chunked transfer coding follows */
    WEIR_BODY_UNTIL_CLOSE, /* responses only: the body ends when the connection closes */
} weir_body_kind_t;

/* A NULL limits pointer means all defaults (then the header array must hold
 * WEIR_H1_MAX_HEADERS entries); a zero max_line_bytes or max_head_bytes means
 * its default. max_headers is used as given. */
typedef struct {
    size_t max_line_bytes; /* request line; longer → -414 (requests) or -502 (responses) */
    size_t max_head_bytes; /* whole head including the final CRLF; longer → -431 */
    size_t max_headers;    /* capacity of the caller's header array; more fields → -431 */
} weir_h1_limits_t;

typedef struct {
    /* request line */
    weir_slice_t method;
    weir_slice_t target; /* exactly as sent */
    weir_slice_t path;   /* origin-form part of the target: "/p?q" ("*" for OPTIONS *) */
    weir_slice_t authority; /* host[:port] of an absolute-form or authority-form target;
                               when set it, not Host, names the target (RFC 9112 §3.2.2) */
    int minor;              /* HTTP/1.<minor>, 0 or 1 */

    /* header fields, in order; the array belongs to the caller */
    weir_header_t *headers;
    size_t num_headers;

    /* derived framing and semantics */
    weir_body_kind_t body;
    uint64_t content_length; /* valid when body == WEIR_BODY_LENGTH */
    weir_slice_t host;       /* the Host field value (empty if absent on HTTP/1.0); may be
                                empty on 1.1 too ("Host:" is valid, RFC 9110 §7.2) */
    unsigned keep_alive : 1; /* 1.1 without "close", or 1.0 with "keep-alive" */
    unsigned expect_continue : 1;
    unsigned upgrade : 1; /* Connection: upgrade and an Upgrade field are present */
    size_t head_len;      /* bytes of the head, including the final CRLF */
} weir_h1_request_t;

typedef struct {
    int status; /* 100..999 */
    int minor;
    weir_slice_t reason;
    weir_header_t *headers;
    size_t num_headers;
    weir_body_kind_t body;
    uint64_t content_length;
    unsigned keep_alive : 1; /* the server lets us reuse the connection */
    unsigned upgrade : 1;    /* 101 with Connection: upgrade */
    size_t head_len;
} weir_h1_response_t;

/* Parses a request head from buf[0..len). req->headers must point to an array
 * of lim->max_headers entries. Returns the head length (> 0) on success,
 * WEIR_H1_NEED_MORE, or a negative status:
 *   -400 malformed line or field, obs-fold, whitespace before a colon, control
 *        bytes, missing/duplicate Host on 1.1, CL with TE, TE on 1.0, bad or
 *        conflicting Content-Length, TE whose final coding is not chunked
 *   -414 request line longer than lim->max_line_bytes
 *   -431 head longer than lim->max_head_bytes or more than lim->max_headers fields
 *   -501 a transfer coding other than chunked (gzip, deflate, ... ) ending in chunked
 *   -505 an HTTP version other than 1.0 or 1.1 */
int weir_h1_parse_request(const char *buf, size_t len, weir_h1_request_t *req,
                          const weir_h1_limits_t *lim);

/* Parses a response head. head_request: the request was HEAD (no body).
 * 1xx responses parse with body NONE; the caller reads the next head.
 * Returns the head length, WEIR_H1_NEED_MORE, or -502 for any malformed or
 * ambiguous response (including Content-Length together with Transfer-Encoding,
 * a head over the limits, and any Transfer-Encoding but a single "chunked":
 * we could not forward other codings faithfully). A 2xx answer to CONNECT is a
 * tunnel whatever the framing says; the caller knows the method, we do not. */
int weir_h1_parse_response(const char *buf, size_t len, weir_h1_response_t *resp,
                           const weir_h1_limits_t *lim, int head_request);

/* Incremental decoder of the chunked transfer coding. Zero-initialise. */
typedef struct {
    uint8_t state;
    uint8_t done;          /* set once the last chunk and the trailer section are consumed */
    uint8_t size_digits;
    uint64_t remaining;    /* data bytes left in the current chunk */
    size_t max_trailer_bytes; /* 0 means 64 KiB */
} weir_h1_chunked_t;

/* Decodes buf[0..len). Returns the number of bytes consumed (>= 0) or -400
 * for a malformed chunk size, extension, chunk terminator or trailer field.
 * On return *data is a span of body bytes inside buf (possibly empty) and
 * *trailers is the trailer section's field lines inside buf, each ending in
 * CRLF but without the final empty line (empty when there are none or they
 * are not complete yet). The trailer section is consumed only when complete.
 * At most one data span is returned per call; call again while bytes remain
 * and st->done is 0. */
ssize_t weir_h1_chunked_decode(weir_h1_chunked_t *st, const char *buf, size_t len,
                               weir_slice_t *data, weir_slice_t *trailers);

/* Comma-separated list iteration (Connection, TE, Transfer-Encoding, ...):
 * stores the next token, trimmed of OWS, in *tok and advances *list.
 * Returns 0 at the end of the list. Empty elements are skipped. */
int weir_h1_next_token(weir_slice_t *list, weir_slice_t *tok);

/* True when the comma-separated list contains token (case-insensitive). */
bool weir_h1_list_has(weir_slice_t list, const char *token);

/* Field validation shared with other HTTP versions. */
bool weir_h1_is_token(weir_slice_t s);       /* RFC 9110 token (field names, methods) */
bool weir_h1_is_field_value(weir_slice_t s); /* no CR, LF, NUL or other CTL but HTAB */

/* True for hop-by-hop fields a proxy never forwards (Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-Authenticate, Proxy-Authorization per RFC 9110 §7.6.1 as Go and
 * Traefik treat them). */
bool weir_h1_is_hop_by_hop(weir_slice_t name);

#endif
