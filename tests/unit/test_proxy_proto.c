/* Unit tests for src/l4/proxy_proto.c: the PROXY protocol v1/v2 parser on
 * the header examples of haproxy's specification and on each kind of
 * malformation, every valid header cut at every byte (a strict prefix is
 * "need more", never a verdict), and the writers read back by the parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "l4/proxy_proto.h"

static int parse(const char *p, size_t n, weir_pp_header_t *h)
{
    return weir_pp_parse((const uint8_t *)p, n, h);
}

static int parse_str(const char *s, weir_pp_header_t *h)
{
    return parse(s, strlen(s), h);
}

static void prefixes_need_more(const uint8_t *p, size_t n)
{
    weir_pp_header_t h;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(weir_pp_parse(p, i, &h), WEIR_PP_NEED_MORE);
}

static const char *ntop(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    if (ss->ss_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, (socklen_t)cap);
    return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, (socklen_t)cap);
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
                                    : ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void v1_tcp4_and_tcp6(void **state)
{
    weir_pp_header_t h;
    char b[64];
    const char *l4 = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
    assert_int_equal(parse_str(l4, &h), WEIR_PP_OK);
    assert_int_equal(h.version, 1);
    assert_false(h.local);
    assert_int_equal(h.len, strlen("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"));
    assert_string_equal(ntop(&h.src, b, sizeof b), "192.168.0.1");
    assert_string_equal(ntop(&h.dst, b, sizeof b), "192.168.0.11");
    assert_int_equal(port_of(&h.src), 56324);
    assert_int_equal(port_of(&h.dst), 443);
    prefixes_need_more((const uint8_t *)l4, h.len);

    const char *l6 = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
    assert_int_equal(parse_str(l6, &h), WEIR_PP_OK);
    assert_int_equal(h.src.ss_family, AF_INET6);
    assert_string_equal(ntop(&h.src, b, sizeof b), "2001:db8::1");
    assert_int_equal(port_of(&h.src), 65535);
    assert_int_equal(port_of(&h.dst), 0);
    prefixes_need_more((const uint8_t *)l6, h.len);

    assert_int_equal(parse_str("PROXY UNKNOWN\r\n", &h), WEIR_PP_OK);
    assert_true(h.local);
    assert_int_equal(parse_str("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", &h), WEIR_PP_OK);
    assert_true(h.local);
}

static void v1_malformed(void **state)
{
    weir_pp_header_t h;
    static const char *const bad[] = {
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",          /* LF without CR */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",          /* a field missing */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",      /* one too many */
        "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",       /* two spaces */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",       /* trailing space */
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",    /* port out of range */
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",       /* leading zero */
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        "PROXY TCP4 ::1 ::2 1 2\r\n",                /* family mismatch */
        "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",        /* v1 knows only TCP */
        "PROXY \r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\x01\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse_str(bad[i], &h);
        if (rc != WEIR_PP_INVALID)
            fail_msg("accepted: %s (%d)", bad[i], rc);
    }
    /* 107 bytes without a line end: invalid, not "need more" */
    char longl[200] = "PROXY UNKNOWN ";
    memset(longl + 14, 'a', sizeof longl - 15);
    assert_int_equal(parse(longl, WEIR_PP_V1_MAX, &h), WEIR_PP_INVALID);
    assert_int_equal(parse(longl, WEIR_PP_V1_MAX - 1, &h), WEIR_PP_NEED_MORE);
    /* a line of exactly 107 bytes is fine */
    memcpy(longl + WEIR_PP_V1_MAX - 2, "\r\n", 2);
    assert_int_equal(parse(longl, WEIR_PP_V1_MAX, &h), WEIR_PP_OK);
    assert_int_equal(h.len, WEIR_PP_V1_MAX);
    /* not PROXY at all */
    assert_int_equal(parse_str("GET / HTTP/1.1\r\n", &h), WEIR_PP_NONE);
    assert_int_equal(parse_str("PROPFIND / HTTP/1.1\r\n", &h), WEIR_PP_NONE);
    assert_int_equal(parse_str("PRI * HTTP/2.0\r\n", &h), WEIR_PP_NONE);
    assert_int_equal(parse_str("\x16\x03\x01", &h), WEIR_PP_NONE);
    assert_int_equal(parse_str("PRO", &h), WEIR_PP_NEED_MORE);
}

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static size_t v2(uint8_t *b, uint8_t vc, uint8_t fam, const uint8_t *body, size_t n)
{
    memcpy(b, sig, 12);
    b[12] = vc;
    b[13] = fam;
    b[14] = (uint8_t)(n >> 8);
    b[15] = (uint8_t)n;
    memcpy(b + 16, body, n);
    return 16 + n;
}

static void v2_families_and_tlvs(void **state)
{
    uint8_t b[512], body[256];
    weir_pp_header_t h;
    char a[64];
    /* TCP over IPv4 with ALPN and authority TLVs */
    uint8_t v4[12] = {10, 0, 0, 7, 10, 0, 0, 1, 0x1f, 0x90, 0x01, 0xbb};
    memcpy(body, v4, 12);
    size_t n = 12;
    memcpy(body + n, "\x01\x00\x02h2", 5);
    n += 5;
    memcpy(body + n, "\x02\x00\x0b" "example.com", 14);
    n += 14;
    memcpy(body + n, "\x04\x00\x03xyz", 6); /* NOOP: skipped */
    n += 6;
    size_t len = v2(b, 0x21, 0x11, body, n);
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_OK);
    assert_int_equal(h.version, 2);
    assert_false(h.local);
    assert_false(h.dgram);
    assert_int_equal(h.len, len);
    assert_string_equal(ntop(&h.src, a, sizeof a), "10.0.0.7");
    assert_int_equal(port_of(&h.src), 8080);
    assert_int_equal(port_of(&h.dst), 443);
    assert_true(weir_slice_eq(h.alpn, WEIR_SLICE_LIT("h2")));
    assert_true(weir_slice_eq(h.authority, WEIR_SLICE_LIT("example.com")));
    prefixes_need_more(b, len);

    /* UDP over IPv6 */
    uint8_t v6[36] = {0};
    v6[15] = 1;
    v6[31] = 2;
    v6[32] = 0x30;
    v6[33] = 0x39;
    len = v2(b, 0x21, 0x22, v6, 36);
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_OK);
    assert_true(h.dgram);
    assert_string_equal(ntop(&h.src, a, sizeof a), "::1");
    assert_int_equal(port_of(&h.src), 12345);

    /* LOCAL: addresses ignored, whatever the family says */
    len = v2(b, 0x20, 0x00, NULL, 0);
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_OK);
    assert_true(h.local);
    len = v2(b, 0x20, 0x11, v4, 12);
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_OK);
    assert_true(h.local);
    /* UNIX sockets and UNSPEC carry nothing weir can use */
    memset(body, 0, 216);
    len = v2(b, 0x21, 0x31, body, 216);
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_OK);
    assert_true(h.local);
}

static void v2_malformed(void **state)
{
    uint8_t b[8192], body[64] = {0};
    weir_pp_header_t h;
    size_t len;
    len = v2(b, 0x11, 0x11, body, 12); /* version 1 in a v2 header */
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_INVALID);
    len = v2(b, 0x22, 0x11, body, 12); /* unknown command */
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_INVALID);
    len = v2(b, 0x21, 0x41, body, 12); /* unknown family */
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_INVALID);
    len = v2(b, 0x21, 0x13, body, 12); /* unknown transport */
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_INVALID);
    len = v2(b, 0x21, 0x11, body, 11); /* too short for IPv4 */
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_INVALID);
    len = v2(b, 0x21, 0x21, body, 12); /* too short for IPv6 */
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_INVALID);
    memcpy(body + 12, "\x01\x00\x05h2", 5); /* a TLV longer than what is left */
    len = v2(b, 0x21, 0x11, body, 17);
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_INVALID);
    len = v2(b, 0x21, 0x11, body, 14); /* two bytes: not even a TLV header */
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_INVALID);
    /* a length over the limit is refused as soon as it is known */
    memcpy(b, sig, 12);
    b[12] = 0x21;
    b[13] = 0x11;
    b[14] = 0x10;
    b[15] = 0x00;
    assert_int_equal(weir_pp_parse(b, 16, &h), WEIR_PP_INVALID);
    /* a damaged signature is not PROXY */
    len = v2(b, 0x21, 0x11, body, 12);
    b[5] ^= 1;
    assert_int_equal(weir_pp_parse(b, len, &h), WEIR_PP_NONE);
}

static void writers_round_trip(void **state)
{
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(40000)},
                       d4 = {.sin_family = AF_INET, .sin_port = htons(443)};
    inet_pton(AF_INET, "203.0.113.9", &s4.sin_addr);
    inet_pton(AF_INET, "10.1.2.3", &d4.sin_addr);
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(1)},
                        d6 = {.sin6_family = AF_INET6, .sin6_port = htons(2)};
    inet_pton(AF_INET6, "2001:db8::5", &s6.sin6_addr);
    inet_pton(AF_INET6, "2001:db8::6", &d6.sin6_addr);
    char line[WEIR_PP_V1_MAX];
    weir_pp_header_t h;
    char a[64];
    ssize_t n = weir_pp_write_v1(line, sizeof line, (struct sockaddr *)&s4, (struct sockaddr *)&d4);
    assert_true(n > 0);
    assert_memory_equal(line, "PROXY TCP4 203.0.113.9 10.1.2.3 40000 443\r\n", (size_t)n);
    n = weir_pp_write_v1(line, sizeof line, (struct sockaddr *)&s6, (struct sockaddr *)&d6);
    assert_int_equal(parse(line, (size_t)n, &h), WEIR_PP_OK);
    assert_string_equal(ntop(&h.src, a, sizeof a), "2001:db8::5");
    n = weir_pp_write_v1(line, sizeof line, (struct sockaddr *)&s4, (struct sockaddr *)&d6);
    assert_memory_equal(line, "PROXY UNKNOWN\r\n", (size_t)n);
    assert_int_equal(weir_pp_write_v1(line, 10, (struct sockaddr *)&s4, (struct sockaddr *)&d4), -1);

    uint8_t b[600];
    n = weir_pp_write_v2(b, sizeof b, (struct sockaddr *)&s4, (struct sockaddr *)&d4, false,
                         WEIR_SLICE_LIT("h2"), WEIR_SLICE_LIT("a.example.test"));
    assert_true(n > 0);
    assert_int_equal(weir_pp_parse(b, (size_t)n, &h), WEIR_PP_OK);
    assert_int_equal(h.len, (size_t)n);
    assert_string_equal(ntop(&h.src, a, sizeof a), "203.0.113.9");
    assert_int_equal(port_of(&h.src), 40000);
    assert_int_equal(port_of(&h.dst), 443);
    assert_true(weir_slice_eq(h.alpn, WEIR_SLICE_LIT("h2")));
    assert_true(weir_slice_eq(h.authority, WEIR_SLICE_LIT("a.example.test")));
    n = weir_pp_write_v2(b, sizeof b, (struct sockaddr *)&s6, (struct sockaddr *)&d6, true,
                         WEIR_SLICE_NULL, WEIR_SLICE_NULL);
    assert_int_equal(n, 16 + 36);
    assert_int_equal(weir_pp_parse(b, (size_t)n, &h), WEIR_PP_OK);
    assert_true(h.dgram);
    assert_int_equal(port_of(&h.dst), 2);
    n = weir_pp_write_v2(b, sizeof b, (struct sockaddr *)&s4, (struct sockaddr *)&d6, false,
                         WEIR_SLICE_NULL, WEIR_SLICE_NULL);
    assert_int_equal(n, 16);
    assert_int_equal(weir_pp_parse(b, (size_t)n, &h), WEIR_PP_OK);
    assert_true(h.local);
    assert_int_equal(weir_pp_write_v2(b, 20, (struct sockaddr *)&s4, (struct sockaddr *)&d4, false,
                                      WEIR_SLICE_NULL, WEIR_SLICE_NULL),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(v1_tcp4_and_tcp6),
        cmocka_unit_test(v1_malformed),
        cmocka_unit_test(v2_families_and_tlvs),
        cmocka_unit_test(v2_malformed),
        cmocka_unit_test(writers_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
