/* Unit tests of the HTTP/1 parser (src/h1).
 *
 * Every input is copied into a heap buffer of exactly its length before it
 * is parsed, so AddressSanitizer reports any read past the end; every case
 * is also parsed at every truncation length. Table rows become one cmocka
 * test each, so the TAP output counts them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h1/h1.h"

#define NEED WEIR_H1_NEED_MORE
#define IN(s) s, sizeof(s) - 1

static char *guard(const char *in, size_t n)
{
    char *b = malloc(n);

    assert_true(b != NULL || n == 0);
    if (n) memcpy(b, in, n);
    return b;
}

static bool inside(weir_slice_t s, const char *buf, size_t n)
{
    return s.len == 0 || (s.ptr >= buf && s.ptr + s.len <= buf + n);
}

static void assert_slice(weir_slice_t s, const char *want)
{
    if (want == NULL) return;
    if (s.len != strlen(want) || (s.len && memcmp(s.ptr, want, s.len) != 0))
        fail_msg("got \"%.*s\", want \"%s\"", (int)s.len, s.ptr ? s.ptr : "", want);
}

/* ---------------------------------------------------------------- requests */

/* Expected fields of a parsed request; a NULL string is not checked. */
struct req_expect {
    const char *method, *target, *path, *authority, *host;
    int minor;
    weir_body_kind_t body;
    uint64_t content_length;
    int keep_alive, expect_continue, upgrade;
    size_t num_headers;
};

struct req_case {
    const char *name;
    const char *in;
    size_t len;
    int want; /* head length or a negative status */
    const weir_h1_limits_t *lim;
    const struct req_expect *expect;
};

static const weir_h1_limits_t line16 = {16, 0, WEIR_H1_MAX_HEADERS};
static const weir_h1_limits_t fields2 = {0, 0, 2};
static const weir_h1_limits_t head64 = {0, 64, WEIR_H1_MAX_HEADERS};

/* clang-format off */
#define BAD(name, s, status) {name, IN(s), status, NULL, NULL}
#define BAD_LIM(name, s, status, lim) {name, IN(s), status, lim, NULL}
#define GOOD(name, s, ...) \
    {name, IN(s), sizeof(s) - 1, NULL, &(const struct req_expect){__VA_ARGS__}}
/* a head followed by body bytes: the head length is that of head alone */
#define GOOD_BODY(name, head, body, ...) \
    {name, IN(head body), sizeof(head) - 1, NULL, &(const struct req_expect){__VA_ARGS__}}
#define GOOD_LIM(name, s, lim, ...) \
    {name, IN(s), sizeof(s) - 1, lim, &(const struct req_expect){__VA_ARGS__}}
/* clang-format on */

#define RL "GET / HTTP/1.1\r\n"
#define HOST "Host: a.example\r\n"

static const struct req_case bad_requests[] = {
    /* request line */
    BAD("req: lowercase http/1.1", "GET / http/1.1\r\n" HOST "\r\n", -400),
    BAD("req: HTTP/1.2 is 505", "GET / HTTP/1.2\r\n" HOST "\r\n", -505),
    BAD("req: HTTP/2.0 is 505", "GET / HTTP/2.0\r\n" HOST "\r\n", -505),
    BAD("req: HTTP/0.9 is 505", "GET / HTTP/0.9\r\n" HOST "\r\n", -505),
    BAD("req: HTTP/1.1 trailing space", "GET / HTTP/1.1 \r\n" HOST "\r\n", -400),
    BAD("req: HTTP/1.1 trailing junk", "GET / HTTP/1.1x\r\n" HOST "\r\n", -400),
    BAD("req: HTTP/1.10", "GET / HTTP/1.10\r\n" HOST "\r\n", -400),
    BAD("req: HTTP/1 without minor", "GET / HTTP/1\r\n" HOST "\r\n", -400),
    BAD("req: HTTP/11.1", "GET / HTTP/11.1\r\n" HOST "\r\n", -400),
    BAD("req: no version (HTTP/0.9 style)", "GET /\r\n" HOST "\r\n", -400),
    BAD("req: two spaces after method", "GET  / HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: two spaces before version", "GET /  HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: tab as separator", "GET\t/ HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: space before method", " GET / HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: non-token method", "GE(T / HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: NUL in method", "GE\0T / HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: control byte in target", "GET /a\001b HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: DEL in target", "GET /a\177b HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: obs-text in target", "GET /\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: fragment in target", "GET /a#b HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: asterisk-form with GET", "GET * HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: authority-form with GET", "GET a.example:80 HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: CONNECT with origin-form", "CONNECT / HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: CONNECT without port", "CONNECT a.example HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: CONNECT with absolute-form", "CONNECT http://a.example:80/ HTTP/1.1\r\n" HOST "\r\n",
        -400),
    BAD("req: lowercase method connect is not CONNECT",
        "connect a.example:443 HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: absolute-form ftp scheme", "GET ftp://a.example/ HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: absolute-form with userinfo", "GET http://u@a.example/ HTTP/1.1\r\n" HOST "\r\n",
        -400),
    BAD("req: absolute-form empty host", "GET http:///x HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: absolute-form query without path", "GET http://a.example?q HTTP/1.1\r\n" HOST "\r\n",
        -400),
    BAD("req: relative target", "GET a/b HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: bare LF after request line", "GET / HTTP/1.1\n" HOST "\r\n", -400),
    BAD("req: bare CR after request line", "GET / HTTP/1.1\r" HOST "\r\n", -400),
    BAD("req: bare LF as leading empty line", "\nGET / HTTP/1.1\r\n" HOST "\r\n", -400),
    BAD("req: five leading empty lines", "\r\n\r\n\r\n\r\n\r\n" RL HOST "\r\n", -400),
    BAD_LIM("req: request line over a 16-byte limit (414)",
            "GET /0123456789 HTTP/1.1\r\n" HOST "\r\n", -414, &line16),

    /* field lines (faults.md 5, 6) */
    BAD("field: obs-fold", RL HOST "X-A: a\r\n b\r\n\r\n", -400),
    BAD("field: obs-fold with tab", RL HOST "X-A: a\r\n\tb\r\n\r\n", -400),
    BAD("field: space before first field ( Host)", RL " Host: a.example\r\n\r\n", -400),
    BAD("field: tab before first field", RL "\tHost: a.example\r\n\r\n", -400),
    BAD("field: space before colon (Host : x)", RL "Host : a.example\r\n\r\n", -400),
    BAD("field: tab before colon", RL "Host\t: a.example\r\n\r\n", -400),
    BAD("field: empty name", RL HOST ": a\r\n\r\n", -400),
    BAD("field: non-token name", RL HOST "X(y): a\r\n\r\n", -400),
    BAD("field: space inside name", RL HOST "X Y: a\r\n\r\n", -400),
    BAD("field: no colon", RL HOST "X-A a\r\n\r\n", -400),
    BAD("field: NUL in value", RL HOST "X-A: a\0b\r\n\r\n", -400),
    BAD("field: bare CR in value", RL HOST "X-A: a\rb\r\n\r\n", -400),
    BAD("field: bare LF in value", RL HOST "X-A: a\nb\r\n\r\n", -400),
    BAD("field: CR CR LF", RL HOST "X-A: a\r\r\n\r\n", -400),
    BAD("field: bare LF line end", RL HOST "X-A: a\n\r\n", -400),
    BAD("field: bare LF ends the head", RL HOST "\n", -400),
    BAD("field: DEL in value", RL HOST "X-A: a\177\r\n\r\n", -400),
    BAD("field: vertical tab in value", RL HOST "X-A: \013a\r\n\r\n", -400),
    BAD("field: escape byte in value", RL HOST "X-A: a\033[0m\r\n\r\n", -400),
    BAD_LIM("field: more than max_headers (431)", RL HOST "A: 1\r\nB: 2\r\n\r\n", -431, &fields2),
    BAD_LIM("field: head over max_head_bytes (431)",
            RL HOST "X-A: 0123456789012345678901234567890123456789\r\n\r\n", -431, &head64),

    /* Host (faults.md 7) */
    BAD("host: missing on 1.1", RL "X-A: a\r\n\r\n", -400),
    BAD("host: two different", RL HOST "Host: b.example\r\n\r\n", -400),
    BAD("host: two equal", RL HOST HOST "\r\n", -400),
    BAD("host: two, one empty", RL "Host:\r\n" HOST "\r\n", -400),
    BAD("host: space inside", RL "Host: a b\r\n\r\n", -400),
    BAD("host: slash", RL "Host: a.example/x\r\n\r\n", -400),
    BAD("host: userinfo", RL "Host: u@a.example\r\n\r\n", -400),
    BAD("host: non-numeric port", RL "Host: a.example:http\r\n\r\n", -400),
    BAD("host: port above 65535", RL "Host: a.example:65536\r\n\r\n", -400),
    BAD("host: empty port", RL "Host: a.example:\r\n\r\n", -400),
    BAD("host: port only", RL "Host: :80\r\n\r\n", -400),
    BAD("host: unterminated IPv6", RL "Host: [::1\r\n\r\n", -400),
    BAD("host: bad percent escape", RL "Host: a%zz\r\n\r\n", -400),
    BAD("host: obs-text", RL "Host: \xc3\xa9.example\r\n\r\n", -400),

    /* Content-Length (faults.md 4) */
    BAD("cl: plus sign (+5)", RL HOST "Content-Length: +5\r\n\r\n", -400),
    BAD("cl: minus sign", RL HOST "Content-Length: -5\r\n\r\n", -400),
    BAD("cl: hex (0x5)", RL HOST "Content-Length: 0x5\r\n\r\n", -400),
    BAD("cl: underscore (5_0)", RL HOST "Content-Length: 5_0\r\n\r\n", -400),
    BAD("cl: differing list (5, 6)", RL HOST "Content-Length: 5, 6\r\n\r\n", -400),
    BAD("cl: two differing fields", RL HOST "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", -400),
    BAD("cl: empty", RL HOST "Content-Length:\r\n\r\n", -400),
    BAD("cl: trailing comma", RL HOST "Content-Length: 5,\r\n\r\n", -400),
    BAD("cl: inner space", RL HOST "Content-Length: 5 5\r\n\r\n", -400),
    BAD("cl: decimal point", RL HOST "Content-Length: 5.0\r\n\r\n", -400),
    BAD("cl: letters", RL HOST "Content-Length: five\r\n\r\n", -400),
    BAD("cl: 2^64 overflows", RL HOST "Content-Length: 18446744073709551616\r\n\r\n", -400),
    BAD("cl: above INT64_MAX", RL HOST "Content-Length: 9223372036854775808\r\n\r\n", -400),
    BAD("cl: space before colon", RL HOST "Content-Length : 5\r\n\r\n", -400),

    /* Transfer-Encoding (faults.md 1, 2, 3) */
    BAD("te: CL.TE",
        "POST / HTTP/1.1\r\n" HOST "Content-Length: 6\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
        -400),
    BAD("te: TE.CL",
        "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n"
        "Content-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
        -400),
    BAD("te: CL.TE with CHUNKED upper case",
        RL HOST "Content-Length: 0\r\n"
                "Transfer-Encoding: CHUNKED\r\n\r\n",
        -400),
    BAD("te: CL.TE with TE gzip", RL HOST "Content-Length: 0\r\nTransfer-Encoding: gzip\r\n\r\n",
        -400),
    BAD("te: chunked, chunked", RL HOST "Transfer-Encoding: chunked, chunked\r\n\r\n", -400),
    BAD("te: chunked in two fields",
        RL HOST "Transfer-Encoding: chunked\r\n"
                "Transfer-Encoding: chunked\r\n\r\n",
        -400),
    BAD("te: chunked, gzip", RL HOST "Transfer-Encoding: chunked, gzip\r\n\r\n", -400),
    BAD("te: gzip alone", RL HOST "Transfer-Encoding: gzip\r\n\r\n", -400),
    BAD("te: identity", RL HOST "Transfer-Encoding: identity\r\n\r\n", -400),
    BAD("te: gzip, chunked is 501", RL HOST "Transfer-Encoding: gzip, chunked\r\n\r\n", -501),
    BAD("te: unknown coding before chunked is 501",
        RL HOST "Transfer-Encoding: foo, chunked\r\n\r\n", -501),
    BAD("te: gzip then chunked in two fields is 501",
        RL HOST "Transfer-Encoding: gzip\r\n"
                "Transfer-Encoding: chunked\r\n\r\n",
        -501),
    BAD("te: xchunked", RL HOST "Transfer-Encoding: xchunked\r\n\r\n", -400),
    BAD("te: chunkedx", RL HOST "Transfer-Encoding: chunkedx\r\n\r\n", -400),
    BAD("te: chunked;", RL HOST "Transfer-Encoding: chunked;\r\n\r\n", -400),
    BAD("te: chunked with a parameter", RL HOST "Transfer-Encoding: chunked;q=1\r\n\r\n", -400),
    BAD("te: quoted chunked", RL HOST "Transfer-Encoding: \"chunked\"\r\n\r\n", -400),
    BAD("te: chunked with inner space", RL HOST "Transfer-Encoding: chun ked\r\n\r\n", -400),
    BAD("te: vertical tab before chunked", RL HOST "Transfer-Encoding: \013chunked\r\n\r\n", -400),
    BAD("te: space before colon", RL HOST "Transfer-Encoding : chunked\r\n\r\n", -400),
    BAD("te: obs-folded chunked", RL HOST "Transfer-Encoding:\r\n chunked\r\n\r\n", -400),
    BAD("te: empty value", RL HOST "Transfer-Encoding:\r\n\r\n", -400),
    BAD("te: only commas", RL HOST "Transfer-Encoding: , ,\r\n\r\n", -400),
    BAD("te: on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400),
    BAD("te: on HTTP/1.0 with CL",
        "POST / HTTP/1.0\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
        -400),
};

static const struct req_case good_requests[] = {
    GOOD("ok: GET", RL HOST "\r\n", .method = "GET", .target = "/", .path = "/", .authority = "",
         .host = "a.example", .minor = 1, .keep_alive = 1, .num_headers = 1),
    GOOD("ok: leading empty lines are skipped", "\r\n\r\n" RL HOST "\r\n", .method = "GET",
         .path = "/", .host = "a.example", .minor = 1, .keep_alive = 1, .num_headers = 1),
    GOOD_BODY("ok: POST with Content-Length",
              "POST /up?x=1 HTTP/1.1\r\n" HOST "Content-Length: 5\r\n\r\n", "hello",
              .method = "POST", .path = "/up?x=1", .minor = 1, .body = WEIR_BODY_LENGTH,
              .content_length = 5, .keep_alive = 1, .num_headers = 2),
    GOOD("ok: Content-Length 0", "POST / HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n",
         .body = WEIR_BODY_LENGTH, .minor = 1, .keep_alive = 1, .num_headers = 2),
    GOOD("ok: Content-Length repeated list 5, 5",
         "POST / HTTP/1.1\r\n" HOST "Content-Length: 5, 5\r\n\r\n", .body = WEIR_BODY_LENGTH,
         .content_length = 5, .minor = 1, .keep_alive = 1, .num_headers = 2),
    GOOD("ok: Content-Length in two equal fields",
         "POST / HTTP/1.1\r\n" HOST "Content-Length: 7\r\nContent-Length: 007\r\n\r\n",
         .body = WEIR_BODY_LENGTH, .content_length = 7, .minor = 1, .keep_alive = 1,
         .num_headers = 3),
    GOOD("ok: Content-Length INT64_MAX",
         "POST / HTTP/1.1\r\n" HOST "Content-Length: 9223372036854775807\r\n\r\n",
         .body = WEIR_BODY_LENGTH, .content_length = INT64_MAX, .minor = 1, .keep_alive = 1,
         .num_headers = 2),
    GOOD_BODY("ok: chunked", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n",
              "5\r\nhello\r\n0\r\n\r\n", .body = WEIR_BODY_CHUNKED, .minor = 1, .keep_alive = 1,
              .num_headers = 2),
    GOOD("ok: chunked in odd case and OWS",
         "POST / HTTP/1.1\r\n" HOST "transfer-encoding: \t ChUnKeD \t\r\n\r\n",
         .body = WEIR_BODY_CHUNKED, .minor = 1, .keep_alive = 1, .num_headers = 2),
    GOOD("ok: chunked with empty list elements",
         "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: , chunked ,\r\n\r\n",
         .body = WEIR_BODY_CHUNKED, .minor = 1, .keep_alive = 1, .num_headers = 2),
    GOOD("ok: absolute-form",
         "GET http://a.example:8080/p/q?x=1 HTTP/1.1\r\nHost: b.example\r\n"
         "\r\n",
         .target = "http://a.example:8080/p/q?x=1", .path = "/p/q?x=1",
         .authority = "a.example:8080", .host = "b.example", .minor = 1, .keep_alive = 1,
         .num_headers = 1),
    GOOD("ok: absolute-form without path", "GET HTTPS://a.example HTTP/1.1\r\n" HOST "\r\n",
         .path = "/", .authority = "a.example", .minor = 1, .keep_alive = 1, .num_headers = 1),
    GOOD("ok: absolute-form IPv6", "GET http://[::1]:81/x HTTP/1.1\r\n" HOST "\r\n", .path = "/x",
         .authority = "[::1]:81", .minor = 1, .keep_alive = 1, .num_headers = 1),
    GOOD("ok: OPTIONS *", "OPTIONS * HTTP/1.1\r\n" HOST "\r\n", .method = "OPTIONS", .path = "*",
         .authority = "", .minor = 1, .keep_alive = 1, .num_headers = 1),
    GOOD("ok: CONNECT authority-form",
         "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n"
         "\r\n",
         .method = "CONNECT", .path = "", .authority = "a.example:443", .host = "a.example:443",
         .minor = 1, .keep_alive = 1, .num_headers = 1),
    GOOD("ok: CONNECT IPv6", "CONNECT [2001:db8::1]:443 HTTP/1.1\r\n" HOST "\r\n",
         .authority = "[2001:db8::1]:443", .minor = 1, .keep_alive = 1, .num_headers = 1),
    GOOD("ok: HTTP/1.0 without Host closes", "GET / HTTP/1.0\r\n\r\n", .host = "", .minor = 0,
         .keep_alive = 0, .num_headers = 0),
    GOOD("ok: HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", .minor = 0,
         .keep_alive = 1, .num_headers = 1),
    GOOD_BODY("ok: HTTP/1.0 CL", "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n", "hi", .minor = 0,
              .body = WEIR_BODY_LENGTH, .content_length = 2, .num_headers = 1),
    GOOD("ok: Connection close", RL HOST "Connection: close\r\n\r\n", .minor = 1, .keep_alive = 0,
         .num_headers = 2),
    GOOD("ok: Connection close with extra tokens (faults 10)",
         RL HOST "Connection: close, X-Forwarded-For\r\n\r\n", .minor = 1, .keep_alive = 0,
         .num_headers = 2),
    GOOD("ok: keep-alive and close means close",
         "GET / HTTP/1.0\r\n"
         "Connection: keep-alive, close\r\n\r\n",
         .minor = 0, .keep_alive = 0, .num_headers = 1),
    GOOD("ok: Expect 100-continue",
         "PUT / HTTP/1.1\r\n" HOST "Expect: 100-Continue\r\n"
         "Content-Length: 1\r\n\r\n",
         .minor = 1, .body = WEIR_BODY_LENGTH, .content_length = 1, .keep_alive = 1,
         .expect_continue = 1, .num_headers = 3),
    GOOD("ok: Expect ignored on 1.0", "PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", .minor = 0,
         .expect_continue = 0, .num_headers = 1),
    GOOD("ok: websocket upgrade", RL HOST "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
         .minor = 1, .keep_alive = 1, .upgrade = 1, .num_headers = 3),
    GOOD("ok: h2c upgrade is reported (faults 10)",
         RL HOST "Connection: Upgrade, HTTP2-Settings\r\n"
                 "Upgrade: h2c\r\n"
                 "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
         .minor = 1, .keep_alive = 1, .upgrade = 1, .num_headers = 4),
    GOOD("ok: Upgrade without Connection upgrade", RL HOST "Upgrade: websocket\r\n\r\n", .minor = 1,
         .keep_alive = 1, .upgrade = 0, .num_headers = 2),
    GOOD("ok: Upgrade ignored on 1.0",
         "GET / HTTP/1.0\r\nConnection: upgrade\r\n"
         "Upgrade: websocket\r\n\r\n",
         .minor = 0, .upgrade = 0, .num_headers = 2),
    GOOD("ok: empty Host", RL "Host:\r\n\r\n", .host = "", .minor = 1, .keep_alive = 1,
         .num_headers = 1),
    GOOD("ok: Host with IPv6 and port", RL "Host: [::1]:8080\r\n\r\n", .host = "[::1]:8080",
         .minor = 1, .keep_alive = 1, .num_headers = 1),
    GOOD("ok: Host IPv4 with port and OWS", RL "HOST:\t 10.0.0.1:80 \t\r\n\r\n",
         .host = "10.0.0.1:80", .minor = 1, .keep_alive = 1, .num_headers = 1),
    GOOD("ok: Host with percent escape", RL "Host: a%2Db.example\r\n\r\n", .host = "a%2Db.example",
         .minor = 1, .keep_alive = 1, .num_headers = 1),
    GOOD("ok: values trimmed, inner spaces kept", RL HOST "X-A:  \t a  b \t \r\nX-B:\r\n\r\n",
         .minor = 1, .keep_alive = 1, .num_headers = 3),
    GOOD("ok: obs-text and tabs in values", RL HOST "X-A: caf\xc3\xa9\tb\r\n\r\n", .minor = 1,
         .keep_alive = 1, .num_headers = 2),
    GOOD("ok: long value takes the word-at-a-time path",
         RL HOST
         "Cookie: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1\r\n"
         "\r\n",
         .minor = 1, .keep_alive = 1, .num_headers = 2),
    GOOD("ok: long target takes the word-at-a-time path",
         "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?b=cccccccccccccccccccccccccccc "
         "HTTP/1.1\r\n" HOST "\r\n",
         .path = "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?b=cccccccccccccccccccccccccccc",
         .minor = 1, .keep_alive = 1, .num_headers = 1),
    GOOD("ok: method other than the usual", "PROPFIND /d HTTP/1.1\r\n" HOST "\r\n",
         .method = "PROPFIND", .minor = 1, .keep_alive = 1, .num_headers = 1),
    GOOD_LIM("ok: exactly max_headers fields", RL HOST "A: 1\r\n\r\n", &fields2, .minor = 1,
             .keep_alive = 1, .num_headers = 2),
    GOOD_LIM("ok: request line exactly max_line_bytes", "GET /ab HTTP/1.1\r\n" HOST "\r\n", &line16,
             .path = "/ab", .minor = 1, .keep_alive = 1, .num_headers = 1),
    GOOD_LIM("ok: head exactly max_head_bytes", RL HOST "X-A: 0123456789012345678901\r\n\r\n",
             &head64, .minor = 1, .keep_alive = 1, .num_headers = 2),
    /* two requests in one buffer: the first parse returns the first head only */
    {"ok: pipelined, first head",
     IN(RL HOST "\r\n"
                "GET /2 HTTP/1.1\r\n" HOST "\r\n"),
     sizeof(RL HOST "\r\n") - 1, NULL,
     &(const struct req_expect){.path = "/", .minor = 1, .keep_alive = 1, .num_headers = 1}},
};

static void check_request(const weir_h1_request_t *req, const char *buf, size_t n,
                          const struct req_expect *x)
{
    assert_slice(req->method, x->method);
    assert_slice(req->target, x->target);
    assert_slice(req->path, x->path);
    assert_slice(req->authority, x->authority);
    assert_slice(req->host, x->host);
    assert_int_equal(req->minor, x->minor);
    assert_int_equal(req->body, x->body);
    if (x->body == WEIR_BODY_LENGTH) assert_int_equal(req->content_length, x->content_length);
    assert_int_equal(req->keep_alive, x->keep_alive);
    assert_int_equal(req->expect_continue, x->expect_continue);
    assert_int_equal(req->upgrade, x->upgrade);
    assert_int_equal(req->num_headers, x->num_headers);
    assert_true(inside(req->method, buf, n) && inside(req->target, buf, n));
    assert_true(inside(req->authority, buf, n) && inside(req->host, buf, n));
    assert_true(inside(req->path, buf, n) || weir_slice_eq(req->path, WEIR_SLICE_LIT("/")));
    for (size_t i = 0; i < req->num_headers; i++) {
        assert_true(inside(req->headers[i].name, buf, n));
        assert_true(inside(req->headers[i].value, buf, n));
        assert_true(weir_h1_is_token(req->headers[i].name));
        assert_true(weir_h1_is_field_value(req->headers[i].value));
    }
}

static int parse_request_copy(const char *in, size_t n, const weir_h1_limits_t *lim,
                              const struct req_expect *x)
{
    weir_header_t hdrs[WEIR_H1_MAX_HEADERS];
    weir_h1_request_t req = {.headers = hdrs};
    char *buf = guard(in, n);
    int r = weir_h1_parse_request(buf, n, &req, lim);

    if (r > 0) {
        assert_int_equal(req.head_len, r);
        if (x) check_request(&req, buf, n, x);
    }
    free(buf);
    return r;
}

/* The whole input gives want; every prefix gives "need more" or, for a bad
 * input, the same error early; for a good one, the head once it is in. */
static void test_request_case(void **state)
{
    const struct req_case *c = *state;

    assert_int_equal(parse_request_copy(c->in, c->len, c->lim, c->expect), c->want);
    for (size_t k = 0; k < c->len; k++) {
        int r = parse_request_copy(c->in, k, c->lim, NULL);
        bool fine =
            c->want > 0 ? r == ((int)k < c->want ? NEED : c->want) : r == NEED || r == c->want;
        if (!fine) fail_msg("prefix of %zu bytes: got %d, want %d", k, r, c->want);
    }
}

/* --------------------------------------------------------------- responses */

struct resp_case {
    const char *name;
    const char *in;
    size_t len;
    int head_request;
    int want;
    int status;
    weir_body_kind_t body;
    uint64_t content_length;
    int keep_alive, upgrade;
    const char *reason;
    const weir_h1_limits_t *lim;
};

/* clang-format off */
#define RBAD(name, s) {name, IN(s), 0, -502, 0, 0, 0, 0, 0, NULL, NULL}
#define RGOOD(name, s, ...) {name, IN(s), .want = sizeof(s) - 1, __VA_ARGS__}
/* clang-format on */

static const weir_h1_limits_t status32 = {32, 0, WEIR_H1_MAX_HEADERS};

static const struct resp_case responses[] = {
    RGOOD("resp: 200 with Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
          .status = 200, .body = WEIR_BODY_LENGTH, .content_length = 5, .keep_alive = 1,
          .reason = "OK"),
    RGOOD("resp: 200 chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
          .status = 200, .body = WEIR_BODY_CHUNKED, .keep_alive = 1),
    RGOOD("resp: 204", "HTTP/1.1 204 No Content\r\n\r\n", .status = 204, .body = WEIR_BODY_NONE,
          .keep_alive = 1, .reason = "No Content"),
    RGOOD("resp: 204 with CL 0", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
          .status = 204, .body = WEIR_BODY_NONE, .keep_alive = 1),
    RGOOD("resp: 304 with CL", "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n",
          .status = 304, .body = WEIR_BODY_NONE, .keep_alive = 1),
    RGOOD("resp: HEAD response with CL", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
          .head_request = 1, .status = 200, .body = WEIR_BODY_NONE, .keep_alive = 1),
    RGOOD("resp: HEAD response chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
          .head_request = 1, .status = 200, .body = WEIR_BODY_NONE, .keep_alive = 1),
    RGOOD("resp: 100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", .status = 100,
          .body = WEIR_BODY_NONE, .keep_alive = 1, .reason = "Continue"),
    RGOOD("resp: 103 Early Hints",
          "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", .status = 103,
          .body = WEIR_BODY_NONE, .keep_alive = 1),
    RGOOD("resp: 101 upgrade",
          "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
          "Upgrade: websocket\r\n\r\n",
          .status = 101, .body = WEIR_BODY_NONE, .keep_alive = 1, .upgrade = 1),
    RGOOD("resp: until close", "HTTP/1.1 200 OK\r\n\r\n", .status = 200,
          .body = WEIR_BODY_UNTIL_CLOSE, .keep_alive = 0),
    RGOOD("resp: no reason, no space", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", .status = 200,
          .body = WEIR_BODY_LENGTH, .keep_alive = 1, .reason = ""),
    RGOOD("resp: empty reason after space", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
          .status = 404, .body = WEIR_BODY_LENGTH, .keep_alive = 1, .reason = ""),
    RGOOD("resp: reason with spaces, tab and obs-text",
          "HTTP/1.1 500 Internal\tServer \xc3\xa9rror\r\nContent-Length: 0\r\n\r\n", .status = 500,
          .body = WEIR_BODY_LENGTH, .keep_alive = 1, .reason = "Internal\tServer \xc3\xa9rror"),
    RGOOD("resp: 1.0 without keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
          .status = 200, .body = WEIR_BODY_LENGTH, .keep_alive = 0),
    RGOOD("resp: 1.0 keep-alive",
          "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
          "Content-Length: 0\r\n\r\n",
          .status = 200, .body = WEIR_BODY_LENGTH, .keep_alive = 1),
    RGOOD("resp: Connection close",
          "HTTP/1.1 200 OK\r\nConnection: close\r\n"
          "Content-Length: 3\r\n\r\n",
          .status = 200, .body = WEIR_BODY_LENGTH, .content_length = 3, .keep_alive = 0),
    RGOOD("resp: Host-like fields are not checked",
          "HTTP/1.1 200 OK\r\nHost: a b\r\nHost: c\r\n"
          "Content-Length: 0\r\n\r\n",
          .status = 200, .body = WEIR_BODY_LENGTH, .keep_alive = 1),
    RGOOD("resp: status 999", "HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n", .status = 999,
          .body = WEIR_BODY_LENGTH, .keep_alive = 1),
    RBAD("resp: CL then TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n"),
    RBAD("resp: TE then CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                             "Content-Length: 5\r\n\r\n"),
    RBAD("resp: CL and TE on a 204", "HTTP/1.1 204 OK\r\nTransfer-Encoding: chunked\r\n"
                                     "Content-Length: 0\r\n\r\n"),
    RBAD("resp: CL +5", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n"),
    RBAD("resp: CL differing", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
    RBAD("resp: TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
    RBAD("resp: TE gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
    RBAD("resp: TE chunked, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n"
                                      "\r\n"),
    RBAD("resp: TE on 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    RBAD("resp: HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n"),
    RBAD("resp: HTTP/2", "HTTP/2 200 OK\r\n\r\n"),
    RBAD("resp: lowercase http", "http/1.1 200 OK\r\n\r\n"),
    RBAD("resp: two-digit status", "HTTP/1.1 20 OK\r\n\r\n"),
    RBAD("resp: four-digit status", "HTTP/1.1 2000 OK\r\n\r\n"),
    RBAD("resp: status below 100", "HTTP/1.1 099 OK\r\n\r\n"),
    RBAD("resp: two spaces before status", "HTTP/1.1  200 OK\r\n\r\n"),
    RBAD("resp: bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"),
    RBAD("resp: bare LF end", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n"),
    RBAD("resp: obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n"),
    RBAD("resp: NUL in reason", "HTTP/1.1 200 O\0K\r\n\r\n"),
    RBAD("resp: NUL in value", "HTTP/1.1 200 OK\r\nX-A: \0\r\n\r\n"),
    RBAD("resp: leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n"),
    RBAD("resp: space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"),
    RBAD("resp: garbage", "<html>hello</html>\r\n\r\n"),
    {"resp: status line over max_line_bytes",
     IN("HTTP/1.1 200 OKAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n\r\n"), 0, -502, .lim = &status32},
    {"resp: head over max_head_bytes",
     IN("HTTP/1.1 200 OK\r\nX-A: 01234567890123456789012345"
        "6789012345678901234567890123456789\r\n\r\n"),
     0, -502, .lim = &head64},
};

static int parse_response_copy(const struct resp_case *c, size_t n, bool check)
{
    weir_header_t hdrs[WEIR_H1_MAX_HEADERS];
    weir_h1_response_t resp = {.headers = hdrs};
    char *buf = guard(c->in, n);
    int r = weir_h1_parse_response(buf, n, &resp, c->lim, c->head_request);

    if (r > 0 && check) {
        assert_int_equal(resp.head_len, r);
        assert_int_equal(resp.status, c->status);
        assert_int_equal(resp.body, c->body);
        if (c->body == WEIR_BODY_LENGTH) assert_int_equal(resp.content_length, c->content_length);
        assert_int_equal(resp.keep_alive, c->keep_alive);
        assert_int_equal(resp.upgrade, c->upgrade);
        assert_slice(resp.reason, c->reason);
        assert_true(inside(resp.reason, buf, n));
        for (size_t i = 0; i < resp.num_headers; i++)
            assert_true(inside(resp.headers[i].name, buf, n) &&
                        inside(resp.headers[i].value, buf, n));
    }
    free(buf);
    return r;
}

static void test_response_case(void **state)
{
    const struct resp_case *c = *state;
    int want = c->want;

    /* A good case's head ends at its empty line; a body may follow. */
    if (want > 0) want = (int)(strstr(c->in, "\r\n\r\n") - c->in) + 4;
    assert_int_equal(parse_response_copy(c, c->len, true), want);
    for (size_t k = 0; k < c->len; k++) {
        int r = parse_response_copy(c, k, false);
        bool fine = want > 0 ? r == ((int)k < want ? NEED : want) : r == NEED || r == want;
        if (!fine) fail_msg("prefix of %zu bytes: got %d, want %d", k, r, want);
    }
}

/* ----------------------------------------------------------------- chunked */

struct chunk_case {
    const char *name;
    const char *in;
    size_t len;
    int err;          /* 0 or -400 */
    int done;         /* expected st.done at the end */
    const char *data; /* the decoded body (up to the error, if any) */
    const char *trailers;
    size_t used;        /* bytes consumed when done (0: all of them) */
    size_t max_trailer; /* st.max_trailer_bytes */
};

/* clang-format off */
#define CGOOD(name, s, body) {name, IN(s), 0, 1, body, "", 0, 0}
#define CBAD(name, s, body) {name, IN(s), -400, 0, body, "", 0, 0}
/* clang-format on */

static const struct chunk_case chunks[] = {
    CGOOD("chunked: one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"),
    CGOOD("chunked: three chunks", "3\r\nabc\r\n4\r\ndefg\r\n1\r\nh\r\n0\r\n\r\n", "abcdefgh"),
    CGOOD("chunked: empty body", "0\r\n\r\n", ""),
    CGOOD("chunked: upper and lower hex", "A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n",
          "0123456789abcdefghijk"),
    CGOOD("chunked: leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello"),
    CGOOD("chunked: 16 hex digits", "000000000000000A\r\n0123456789\r\n0\r\n\r\n", "0123456789"),
    CGOOD("chunked: CRLF inside data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"),
    CGOOD("chunked: extension without value", "5;a\r\nhello\r\n0;last\r\n\r\n", "hello"),
    CGOOD("chunked: extension with token value", "5;name=value;x=1\r\nhello\r\n0\r\n\r\n", "hello"),
    CGOOD("chunked: extension with quoted value",
          "5;a=\"q \\\"x\\\" ;=\";b=\"\"\r\nhello\r\n0\r\n\r\n", "hello"),
    CGOOD("chunked: BWS around extension parts", "5 ;\ta = b ; c\r\nhello\r\n0\r\n\r\n", "hello"),
    CGOOD("chunked: extension with obs-text in quotes", "5;a=\"\xc3\xa9\"\r\nhello\r\n0\r\n\r\n",
          "hello"),
    {"chunked: trailer fields", IN("5\r\nhello\r\n0\r\nX-A: a\r\nX-B:  b \r\n\r\n"), 0, 1, "hello",
     "X-A: a\r\nX-B:  b \r\n", 0, 0},
    {"chunked: trailer exactly at max_trailer_bytes", IN("0\r\nX: 0123\r\n\r\n"), 0, 1, "",
     "X: 0123\r\n", 0, 11},
    {"chunked: next message follows", IN("2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), 0, 1, "hi", "",
     12, 0},
    {"chunked: incomplete data", IN("5\r\nhel"), 0, 0, "hel", "", 0, 0},
    {"chunked: incomplete trailer", IN("1\r\nx\r\n0\r\nX-A: a\r\n"), 0, 0, "x", "", 0, 0},
    {"chunked: huge size, partial data", IN("ffffffffffffffff\r\nabc"), 0, 0, "abc", "", 0, 0},
    CBAD("chunked: space before size", " 5\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: space after size", "5 \r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: tab after size", "5\t\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: negative size", "-1\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: non-hex size", "g\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: 0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: plus sign", "+5\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: 17 hex digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: empty size", "\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: bare LF after size", "5\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: bare CR after size", "5\rhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: data longer than size", "5\r\nhelloX\r\n0\r\n\r\n", "hello"),
    CBAD("chunked: data shorter than size", "5\r\nhell\r\n0\r\n\r\n", "hell\r"),
    CBAD("chunked: bare LF after data", "5\r\nhello\n0\r\n\r\n", "hello"),
    CBAD("chunked: no CRLF after data", "5\r\nhello0\r\n\r\n", "hello"),
    CBAD("chunked: empty extension name", "5;\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: extension starting with =", "5;=b\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: empty extension value", "5;a=\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: space inside extension value", "5;a=b c\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: whitespace before CRLF after extension", "5;a \r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: control byte in extension", "5;a\001\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: CR inside quoted extension", "5;a=\"x\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: NUL in quoted extension", "5;a=\"\0\"\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: LF in extension", "5;a\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: text after closing quote", "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n", ""),
    CBAD("chunked: obs-fold in trailer", "0\r\nX-A: a\r\n b\r\n\r\n", ""),
    CBAD("chunked: NUL in trailer", "0\r\nX-A: \0\r\n\r\n", ""),
    CBAD("chunked: space before colon in trailer", "0\r\nX-A : a\r\n\r\n", ""),
    CBAD("chunked: bare LF in trailer", "0\r\nX-A: a\n\r\n", ""),
    CBAD("chunked: bare LF ends the body", "0\r\n\n", ""),
    CBAD("chunked: bare CR ends the body", "0\r\n\rX", ""),
    {"chunked: trailer over max_trailer_bytes", IN("0\r\nX: 01234\r\n\r\n"), -400, 0, "", "", 0,
     11},
};

struct chunk_result {
    int err;
    int done;
    size_t used;
    char data[256];
    size_t data_len;
    char trailers[256];
    size_t trailers_len;
};

/* Feeds c->in as a caller would: the bytes arrive in pieces ending at cuts[],
 * bytes not consumed stay buffered and are offered again with the next ones.
 * Each call sees a fresh heap buffer of exactly the bytes it may read. */
static void feed(const struct chunk_case *c, const size_t *cuts, size_t ncuts,
                 struct chunk_result *out)
{
    weir_h1_chunked_t st = {.max_trailer_bytes = c->max_trailer};
    size_t used = 0;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < ncuts && !st.done && !out->err; i++) {
        for (;;) {
            size_t n = cuts[i] - used;
            char *buf = guard(c->in + used, n);
            weir_slice_t data, tr;
            ssize_t r = weir_h1_chunked_decode(&st, buf, n, &data, &tr);

            if (r < 0) {
                out->err = (int)r;
                free(buf);
                break;
            }
            assert_true((size_t)r <= n);
            assert_true(inside(data, buf, n) && inside(tr, buf, n));
            assert_true(out->data_len + data.len <= sizeof(out->data));
            if (data.len) memcpy(out->data + out->data_len, data.ptr, data.len);
            out->data_len += data.len;
            if (tr.len) {
                assert_true(st.done && tr.len <= sizeof(out->trailers));
                memcpy(out->trailers, tr.ptr, tr.len);
                out->trailers_len = tr.len;
            }
            free(buf);
            used += (size_t)r;
            if (st.done || r == 0 || used == cuts[i]) break;
        }
    }
    out->done = st.done;
    out->used = used;
}

static void check_chunk_result(const struct chunk_case *c, const struct chunk_result *got,
                               const char *how)
{
    size_t data_len = strlen(c->data), tr_len = strlen(c->trailers);

    if (got->err != c->err || got->done != c->done)
        fail_msg("%s: err %d done %d, want err %d done %d", how, got->err, got->done, c->err,
                 c->done);
    if (got->data_len != data_len || memcmp(got->data, c->data, data_len) != 0)
        fail_msg("%s: data \"%.*s\", want \"%s\"", how, (int)got->data_len, got->data, c->data);
    if (got->trailers_len != tr_len || memcmp(got->trailers, c->trailers, tr_len) != 0)
        fail_msg("%s: trailers differ", how);
    if (c->done && got->used != (c->used ? c->used : c->len))
        fail_msg("%s: used %zu bytes", how, got->used);
}

/* Whole, in two pieces split at every position, and one byte at a time. */
static void test_chunk_case(void **state)
{
    const struct chunk_case *c = *state;
    struct chunk_result got;
    size_t cuts[2], *bytes = malloc((c->len + 1) * sizeof(size_t));
    char how[64];

    cuts[0] = c->len;
    feed(c, cuts, 1, &got);
    check_chunk_result(c, &got, "whole");
    for (size_t k = 0; k <= c->len; k++) {
        cuts[0] = k;
        cuts[1] = c->len;
        feed(c, cuts, 1, &got);
        if (c->err == 0 && got.err != 0) fail_msg("first %zu bytes alone: error %d", k, got.err);
        feed(c, cuts, 2, &got);
        snprintf(how, sizeof(how), "split at %zu", k);
        check_chunk_result(c, &got, how);
    }
    for (size_t k = 0; k < c->len; k++)
        bytes[k] = k + 1;
    feed(c, bytes, c->len, &got);
    check_chunk_result(c, &got, "byte by byte");
    free(bytes);
}

static void test_chunked_done_consumes_nothing_more(void **state)
{
    weir_h1_chunked_t st = {0};
    weir_slice_t data, tr;
    const char in[] = "0\r\n\r\n";

    assert_int_equal(weir_h1_chunked_decode(&st, in, 5, &data, &tr), 5);
    assert_true(st.done);
    assert_int_equal(weir_h1_chunked_decode(&st, "1\r\nx", 4, &data, &tr), 0);
    assert_int_equal(data.len, 0);
    assert_int_equal(weir_h1_chunked_decode(&st, NULL, 0, &data, &tr), 0);
}

static void test_chunked_one_span_per_call(void **state)
{
    weir_h1_chunked_t st = {0};
    weir_slice_t data, tr;
    const char in[] = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    ssize_t r;

    r = weir_h1_chunked_decode(&st, in, sizeof(in) - 1, &data, &tr);
    assert_int_equal(r, 6);
    assert_slice(data, "abc");
    r = weir_h1_chunked_decode(&st, in + 6, sizeof(in) - 7, &data, &tr);
    assert_int_equal(r, 7);
    assert_slice(data, "de");
    r = weir_h1_chunked_decode(&st, in + 13, sizeof(in) - 14, &data, &tr);
    assert_int_equal(r, 7);
    assert_int_equal(data.len, 0);
    assert_true(st.done);
}

/* ------------------------------------------------------- generated inputs */

static char *repeat(const char *head, char fill, size_t n, const char *tail, size_t *len)
{
    size_t a = strlen(head), b = strlen(tail);
    char *s = malloc(a + n + b);

    memcpy(s, head, a);
    memset(s + a, fill, n);
    memcpy(s + a + n, tail, b);
    *len = a + n + b;
    return s;
}

static int parse_default(const char *in, size_t n)
{
    return parse_request_copy(in, n, NULL, NULL);
}

/* Default limit 8192: a line of exactly 8192 bytes passes, 8193 is 414, and
 * 414 comes as soon as 8193 bytes are in without a line end. */
static void test_request_line_limit(void **state)
{
    size_t ok_len, long_len, fixed = strlen("GET / HTTP/1.1") - 1;
    char *ok = repeat("GET /", 'a', WEIR_H1_MAX_LINE_BYTES - fixed - 1,
                      " HTTP/1.1\r\nHost: a\r\n\r\n", &ok_len);
    char *long_line = repeat("GET /", 'a', WEIR_H1_MAX_LINE_BYTES - fixed,
                             " HTTP/1.1\r\nHost: a\r\n\r\n", &long_len);

    assert_int_equal(parse_default(ok, ok_len), (int)ok_len);
    assert_int_equal(parse_default(long_line, long_len), -414);
    assert_int_equal(parse_default(long_line, WEIR_H1_MAX_LINE_BYTES), NEED);
    assert_int_equal(parse_default(long_line, WEIR_H1_MAX_LINE_BYTES + 1), -414);
    free(ok);
    free(long_line);
}

static char *many_fields(size_t count, size_t *len)
{
    char *s = malloc(64 + count * 16), *p = s;

    p += sprintf(p, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (size_t i = 1; i < count; i++)
        p += sprintf(p, "X-%zu: v\r\n", i);
    p += sprintf(p, "\r\n");
    *len = (size_t)(p - s);
    return s;
}

static void test_header_count_limit(void **state)
{
    size_t len;
    char *s = many_fields(WEIR_H1_MAX_HEADERS, &len);

    assert_int_equal(parse_default(s, len), (int)len);
    free(s);
    s = many_fields(WEIR_H1_MAX_HEADERS + 1, &len);
    assert_int_equal(parse_default(s, len), -431);
    /* already known before the head is complete */
    assert_int_equal(parse_default(s, len - 2), -431);
    free(s);
}

/* Default 1 MiB of head: over it is 431, also while the head is incomplete. */
static void test_head_bytes_limit(void **state)
{
    size_t len, fixed = strlen("GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n");
    char *s = repeat("GET / HTTP/1.1\r\nHost: a\r\nX: ", 'v', WEIR_H1_MAX_HEAD_BYTES - fixed,
                     "\r\n\r\n", &len);

    assert_int_equal(len, WEIR_H1_MAX_HEAD_BYTES);
    assert_int_equal(parse_default(s, len), (int)len);
    free(s);
    s = repeat("GET / HTTP/1.1\r\nHost: a\r\nX: ", 'v', WEIR_H1_MAX_HEAD_BYTES - fixed + 1,
               "\r\n\r\n", &len);
    assert_int_equal(parse_default(s, len), -431);
    assert_int_equal(parse_default(s, WEIR_H1_MAX_HEAD_BYTES), NEED);
    assert_int_equal(parse_default(s, WEIR_H1_MAX_HEAD_BYTES + 1), -431);
    free(s);
}

static void test_pipelined_second_request(void **state)
{
    const char in[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\n"
                      "Content-Length: 0\r\n\r\n";
    weir_header_t hdrs[4];
    weir_h1_limits_t lim = {0, 0, 4};
    weir_h1_request_t req = {.headers = hdrs};
    char *buf = guard(in, sizeof(in) - 1);
    int first = weir_h1_parse_request(buf, sizeof(in) - 1, &req, &lim);

    assert_int_equal(first, 28);
    assert_slice(req.path, "/1");
    assert_int_equal(weir_h1_parse_request(buf + first, sizeof(in) - 1 - first, &req, &lim),
                     sizeof(in) - 1 - first);
    assert_slice(req.method, "POST");
    assert_slice(req.path, "/2");
    assert_int_equal(req.body, WEIR_BODY_LENGTH);
    free(buf);
}

static void test_interim_then_final_response(void **state)
{
    const char in[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                      "Content-Length: 2\r\n\r\nok";
    weir_header_t hdrs[4];
    weir_h1_limits_t lim = {0, 0, 4};
    weir_h1_response_t resp = {.headers = hdrs};
    int first = weir_h1_parse_response(in, sizeof(in) - 1, &resp, &lim, 0);

    assert_int_equal(first, 25);
    assert_int_equal(resp.status, 100);
    assert_int_equal(weir_h1_parse_response(in + first, sizeof(in) - 1 - first, &resp, &lim, 0),
                     sizeof(in) - 3 - first);
    assert_int_equal(resp.status, 201);
    assert_int_equal(resp.content_length, 2);
    assert_slice(resp.headers[0].name, "Content-Length");
}

static void test_request_fields_in_order(void **state)
{
    const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A:  one two \r\nx-b:\r\n\r\n";
    weir_header_t hdrs[WEIR_H1_MAX_HEADERS];
    weir_h1_request_t req = {.headers = hdrs};

    assert_int_equal(weir_h1_parse_request(in, sizeof(in) - 1, &req, NULL), sizeof(in) - 1);
    assert_int_equal(req.num_headers, 3);
    assert_slice(hdrs[0].name, "Host");
    assert_slice(hdrs[0].value, "a");
    assert_slice(hdrs[1].name, "X-A");
    assert_slice(hdrs[1].value, "one two");
    assert_slice(hdrs[2].name, "x-b");
    assert_slice(hdrs[2].value, "");
}

/* ----------------------------------------------------------------- helpers */

static void test_next_token(void **state)
{
    weir_slice_t list = WEIR_SLICE_LIT(" ,a , b\tc,,\t d ,"), tok;

    assert_true(weir_h1_next_token(&list, &tok));
    assert_slice(tok, "a");
    assert_true(weir_h1_next_token(&list, &tok));
    assert_slice(tok, "b\tc");
    assert_true(weir_h1_next_token(&list, &tok));
    assert_slice(tok, "d");
    assert_false(weir_h1_next_token(&list, &tok));
    assert_false(weir_h1_next_token(&list, &tok));
    list = WEIR_SLICE_NULL;
    assert_false(weir_h1_next_token(&list, &tok));
    list = WEIR_SLICE_LIT(" , ,");
    assert_false(weir_h1_next_token(&list, &tok));
}

static void test_list_has(void **state)
{
    assert_true(weir_h1_list_has(WEIR_SLICE_LIT("keep-alive, Upgrade"), "upgrade"));
    assert_true(weir_h1_list_has(WEIR_SLICE_LIT("CLOSE"), "close"));
    assert_false(weir_h1_list_has(WEIR_SLICE_LIT("closed, xclose"), "close"));
    assert_false(weir_h1_list_has(WEIR_SLICE_NULL, "close"));
}

static void test_is_token(void **state)
{
    assert_true(weir_h1_is_token(WEIR_SLICE_LIT("X-Forwarded-For")));
    assert_true(weir_h1_is_token(WEIR_SLICE_LIT("!#$%&'*+-.^_`|~09azAZ")));
    assert_false(weir_h1_is_token(WEIR_SLICE_NULL));
    assert_false(weir_h1_is_token(WEIR_SLICE_LIT("a b")));
    assert_false(weir_h1_is_token(WEIR_SLICE_LIT("a:b")));
    assert_false(weir_h1_is_token(WEIR_SLICE_LIT("a\"b")));
    assert_false(weir_h1_is_token(WEIR_SLICE_LIT("\xc3\xa9")));
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        bool want = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c && strchr("!#$%&'*+-.^_`|~", c));
        assert_int_equal(weir_h1_is_token(weir_slice(&ch, 1)), want);
    }
}

static void test_is_field_value(void **state)
{
    assert_true(weir_h1_is_field_value(WEIR_SLICE_NULL));
    assert_true(weir_h1_is_field_value(WEIR_SLICE_LIT("a b\tc \xff")));
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        bool want = c == '\t' || (c >= 0x20 && c != 0x7f);
        assert_int_equal(weir_h1_is_field_value(weir_slice(&ch, 1)), want);
    }
}

static void test_is_hop_by_hop(void **state)
{
    static const char *const hop[] = {"Connection",
                                      "keep-alive",
                                      "PROXY-CONNECTION",
                                      "te",
                                      "Trailer",
                                      "Transfer-Encoding",
                                      "Upgrade",
                                      "Proxy-Authenticate",
                                      "proxy-authorization"};
    static const char *const end[] = {"Host", "Trailers", "Content-Length", "X-Forwarded-For",
                                      "TEE",  "Cookie",   "Proxy",          ""};

    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        assert_true(weir_h1_is_hop_by_hop(weir_slice_cstr(hop[i])));
    for (size_t i = 0; i < sizeof(end) / sizeof(end[0]); i++)
        assert_false(weir_h1_is_hop_by_hop(weir_slice_cstr(end[i])));
}

/* -------------------------------------------------------------------- main */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_request_line_limit),
        cmocka_unit_test(test_header_count_limit),
        cmocka_unit_test(test_head_bytes_limit),
        cmocka_unit_test(test_pipelined_second_request),
        cmocka_unit_test(test_interim_then_final_response),
        cmocka_unit_test(test_request_fields_in_order),
        cmocka_unit_test(test_chunked_done_consumes_nothing_more),
        cmocka_unit_test(test_chunked_one_span_per_call),
        cmocka_unit_test(test_next_token),
        cmocka_unit_test(test_list_has),
        cmocka_unit_test(test_is_token),
        cmocka_unit_test(test_is_field_value),
        cmocka_unit_test(test_is_hop_by_hop),
    };
    size_t n = 0, total = COUNT(bad_requests) + COUNT(good_requests) + COUNT(responses) +
                          COUNT(chunks) + COUNT(fixed);
    struct CMUnitTest *tests = calloc(total, sizeof(*tests));
    int failed;

    for (size_t i = 0; i < COUNT(bad_requests); i++)
        tests[n++] = (struct CMUnitTest){bad_requests[i].name, test_request_case, NULL, NULL,
                                         (void *)&bad_requests[i]};
    for (size_t i = 0; i < COUNT(good_requests); i++)
        tests[n++] = (struct CMUnitTest){good_requests[i].name, test_request_case, NULL, NULL,
                                         (void *)&good_requests[i]};
    for (size_t i = 0; i < COUNT(responses); i++)
        tests[n++] = (struct CMUnitTest){responses[i].name, test_response_case, NULL, NULL,
                                         (void *)&responses[i]};
    for (size_t i = 0; i < COUNT(chunks); i++)
        tests[n++] =
            (struct CMUnitTest){chunks[i].name, test_chunk_case, NULL, NULL, (void *)&chunks[i]};
    for (size_t i = 0; i < COUNT(fixed); i++)
        tests[n++] = fixed[i];
    failed = _cmocka_run_group_tests("h1", tests, n, NULL, NULL);
    free(tests);
    return failed;
}
