/* libFuzzer target for the QUIC Initial reader (src/quic/quic_initial.c).
 * The first input byte picks what the rest is:
 *   even: datagrams, each as a 2-byte big-endian length and its bytes, fed
 *         to one flow (headers, coalescing, header protection, decryption;
 *         the corpus holds real sealed Initials);
 *   odd:  decrypted Initial payloads in the same framing, fed to the frame
 *         walker (CRYPTO reassembly out of order, ACK, PADDING, limits).
 * Whatever comes, the received ranges stay sorted, disjoint and within the
 * hello's bound, and a complete hello parses or is refused cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quic/quic_initial.h"

#define CHECK(c)      \
    do {              \
        if (!(c))     \
            abort();  \
    } while (0)

static void check_ranges(const weir_quic_hello_t *h)
{
    CHECK(h->num_ranges <= WEIR_QI_MAX_RANGES);
    for (size_t i = 0; i < h->num_ranges; i++) {
        CHECK(h->ranges[i][0] < h->ranges[i][1]);
        CHECK(h->ranges[i][1] <= WEIR_QI_HELLO_MAX);
        CHECK(h->ranges[i][1] <= h->cap);
        if (i)
            CHECK(h->ranges[i - 1][1] < h->ranges[i][0]);
    }
    CHECK(h->need <= WEIR_QI_HELLO_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool payloads = data[0] & 1;
    data++;
    size--;
    weir_quic_hello_t h;
    weir_quic_hello_init(&h);
    int rc = WEIR_QI_MORE;
    while (size >= 2 && rc != WEIR_QI_BAD) {
        size_t n = (size_t)data[0] << 8 | data[1];
        data += 2;
        size -= 2;
        if (n > size)
            n = size;
        unsigned flags = 0;
        uint8_t *copy = malloc(n ? n : 1); /* exact-size copies: ASan sees overreads */
        CHECK(copy);
        memcpy(copy, data, n);
        if (payloads) {
            rc = weir_quic_hello_frames(&h, copy, n, &flags);
            CHECK(rc == WEIR_QI_MORE || rc == WEIR_QI_BAD);
        } else {
            rc = weir_quic_hello_feed(&h, copy, n, &flags);
            CHECK(rc >= WEIR_QI_BAD && rc <= WEIR_QI_DONE);
            CHECK(rc != WEIR_QI_NONE || flags == 0 || (flags & WEIR_QI_F_INITIAL) == 0);
        }
        free(copy);
        check_ranges(&h);
        data += n;
        size -= n;
    }
    if (weir_quic_hello_done(&h)) {
        weir_client_hello_t ch;
        int r = weir_quic_hello_get(&h, &ch);
        /* anything but OK is a refusal (a body shorter than its own
         * lengths claim is "need more" to the parser) */
        CHECK(r >= WEIR_CH_INVALID && r <= WEIR_CH_OK);
        if (r == WEIR_CH_OK && ch.has_sni)
            CHECK(ch.sni.ptr >= (const char *)h.crypto &&
                  ch.sni.ptr + ch.sni.len <= (const char *)h.crypto + h.need);
    }
    weir_quic_hello_free(&h);
    return 0;
}
