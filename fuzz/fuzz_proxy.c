/* libFuzzer target for the PROXY protocol parser (src/l4/proxy_proto.c):
 * every input is parsed whole and at each shorter length. A verdict on a
 * prefix must agree with the whole input (a strict prefix of a header is
 * never OK or INVALID when the whole is OK); an OK header's length stays
 * inside the input and within the version's limit; its addresses, when
 * used, survive a trip through the writer of the same version. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "l4/proxy_proto.h"

#define CHECK(c)      \
    do {              \
        if (!(c))     \
            abort();  \
    } while (0)

static socklen_t sslen(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weir_pp_header_t h;
    int rc = weir_pp_parse(data, size, &h);
    CHECK(rc >= WEIR_PP_INVALID && rc <= WEIR_PP_OK);
    if (rc != WEIR_PP_OK)
        return 0;
    CHECK(h.len > 0 && h.len <= size);
    CHECK(h.version == 1 || h.version == 2);
    CHECK(h.len <= (h.version == 1 ? (size_t)WEIR_PP_V1_MAX : (size_t)WEIR_PP_V2_MAX));
    if (h.alpn.len)
        CHECK(h.alpn.ptr >= (const char *)data && h.alpn.ptr + h.alpn.len <= (const char *)data + h.len);
    if (h.authority.len)
        CHECK(h.authority.ptr >= (const char *)data &&
              h.authority.ptr + h.authority.len <= (const char *)data + h.len);
    /* every strict prefix of the header only asks for more */
    for (size_t i = 0; i < h.len; i++) {
        weir_pp_header_t p;
        CHECK(weir_pp_parse(data, i, &p) == WEIR_PP_NEED_MORE);
    }
    if (!h.local) {
        CHECK(h.src.ss_family == AF_INET || h.src.ss_family == AF_INET6);
        CHECK(h.src.ss_family == h.dst.ss_family);
        uint8_t buf[WEIR_PP_V2_MAX];
        weir_pp_header_t back;
        ssize_t n = h.version == 1
                        ? weir_pp_write_v1((char *)buf, sizeof buf, (struct sockaddr *)&h.src,
                                           (struct sockaddr *)&h.dst)
                        : weir_pp_write_v2(buf, sizeof buf, (struct sockaddr *)&h.src,
                                           (struct sockaddr *)&h.dst, h.dgram, WEIR_SLICE_NULL,
                                           WEIR_SLICE_NULL);
        CHECK(n > 0);
        CHECK(weir_pp_parse(buf, (size_t)n, &back) == WEIR_PP_OK);
        CHECK(memcmp(&back.src, &h.src, sslen(&h.src)) == 0);
        CHECK(memcmp(&back.dst, &h.dst, sslen(&h.dst)) == 0);
    }
    return 0;
}
