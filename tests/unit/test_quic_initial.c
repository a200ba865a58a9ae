/* Unit tests for src/quic/quic_initial.c: the Initial keys of RFC 9001
 * Appendix A.1 (QUIC v1) and RFC 9369 Appendix A.1 (QUIC v2), and the
 * ClientHello read back from Initial packets sealed here: whole, split over
 * two packets, CRYPTO frames out of order and repeated, the first packet
 * lost then resent, coalesced with 0-RTT, too small a datagram, a packet
 * that does not authenticate, frames an Initial may not carry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>

#include "clienthello_captures.h"
#include "quic/quic_initial.h"

static void hex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static void test_rfc9001_keys(void **state)
{
    (void)state;
    uint8_t dcid[8], key[16], iv[12], hp[16], want[16];
    hex("8394c8f03e515708", dcid, 8);
    assert_int_equal(weir_quic_initial_keys(WEIR_QUIC_V1, dcid, 8, key, iv, hp), 0);
    hex("1f369613dd76d5467730efcbe3b1a22d", want, 16);
    assert_memory_equal(key, want, 16);
    hex("fa044b2f42a3fd3b46fb255c", want, 12);
    assert_memory_equal(iv, want, 12);
    hex("9f50449e04a0e810283a1e9933adedd2", want, 16);
    assert_memory_equal(hp, want, 16);
}

static void test_rfc9369_keys(void **state)
{
    (void)state;
    uint8_t dcid[8], key[16], iv[12], hp[16], want[16];
    hex("8394c8f03e515708", dcid, 8);
    assert_int_equal(weir_quic_initial_keys(WEIR_QUIC_V2, dcid, 8, key, iv, hp), 0);
    hex("8b1a0bc121284290a29e0971b5cd045d", want, 16);
    assert_memory_equal(key, want, 16);
    hex("91f73e2351d8fa91660e909f", want, 12);
    assert_memory_equal(iv, want, 12);
    hex("45b95e15235d6f45a6b19cbcb0294ba9", want, 16);
    assert_memory_equal(hp, want, 16);
    assert_int_equal(weir_quic_initial_keys(0xff00001d, dcid, 8, key, iv, hp), -1);
}

/* ---- sealing client Initials (the other side of what is tested) ---- */

static const uint8_t DCID[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
static const uint8_t SCID[4] = {0xaa, 0xbb, 0xcc, 0xdd};

static size_t put_varint(uint8_t *p, uint64_t v)
{
    if (v < 64) {
        p[0] = (uint8_t)v;
        return 1;
    }
    if (v < 16384) {
        p[0] = (uint8_t)(0x40 | v >> 8);
        p[1] = (uint8_t)v;
        return 2;
    }
    p[0] = (uint8_t)(0x80 | v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return 4;
}

/* A CRYPTO frame for hello bytes [off, off+n). */
static size_t crypto(uint8_t *p, const uint8_t *hello, size_t off, size_t n)
{
    size_t k = 0;
    p[k++] = 0x06;
    k += put_varint(p + k, off);
    k += put_varint(p + k, n);
    memcpy(p + k, hello + off, n);
    return k + n;
}

/* Seals a long-header packet of type bits `bits` carrying frames[0..flen),
 * padded so the packet is `size` bytes, with packet number pn (4 bytes).
 * Returns its length. */
static size_t seal(uint8_t *out, uint32_t version, uint8_t bits, const uint8_t *frames,
                   size_t flen, size_t size, uint32_t pn, const uint8_t *dcid, size_t dcid_len)
{
    uint8_t key[16], iv[12], hp[16];
    assert_int_equal(weir_quic_initial_keys(version, dcid, dcid_len, key, iv, hp), 0);
    size_t k = 0;
    out[k++] = (uint8_t)(0xc0 | bits << 4 | 3);
    out[k++] = (uint8_t)(version >> 24);
    out[k++] = (uint8_t)(version >> 16);
    out[k++] = (uint8_t)(version >> 8);
    out[k++] = (uint8_t)version;
    out[k++] = (uint8_t)dcid_len;
    memcpy(out + k, dcid, dcid_len);
    k += dcid_len;
    out[k++] = sizeof SCID;
    memcpy(out + k, SCID, sizeof SCID);
    k += sizeof SCID;
    bool initial = version == WEIR_QUIC_V1 ? bits == 0 : bits == 1;
    if (initial)
        out[k++] = 0; /* no token */
    size_t payload = size > k + 2 + 4 + 16 ? size - k - 2 - 4 - 16 : flen;
    if (payload < flen)
        payload = flen;
    out[k++] = (uint8_t)(0x40 | (4 + payload + 16) >> 8);
    out[k++] = (uint8_t)(4 + payload + 16);
    size_t pn_off = k;
    out[k++] = (uint8_t)(pn >> 24);
    out[k++] = (uint8_t)(pn >> 16);
    out[k++] = (uint8_t)(pn >> 8);
    out[k++] = (uint8_t)pn;
    uint8_t plain[2048] = {0};
    memcpy(plain, frames, flen); /* the rest is PADDING */
    uint8_t nonce[12];
    memcpy(nonce, iv, 12);
    for (int i = 0; i < 4; i++)
        nonce[11 - i] ^= (uint8_t)(pn >> (8 * i));
    gnutls_aead_cipher_hd_t a;
    gnutls_datum_t kd = {key, 16};
    assert_int_equal(gnutls_aead_cipher_init(&a, GNUTLS_CIPHER_AES_128_GCM, &kd), 0);
    size_t clen = payload + 16;
    assert_int_equal(gnutls_aead_cipher_encrypt(a, nonce, 12, out, k, 16, plain, payload,
                                                out + k, &clen),
                     0);
    gnutls_aead_cipher_deinit(a);
    k += clen;
    /* header protection: AES-ECB of the sample, by a one-block CBC with a zero IV */
    static const uint8_t zero[16];
    gnutls_cipher_hd_t c;
    gnutls_datum_t hk = {hp, 16}, ivd = {(uint8_t *)zero, 16};
    uint8_t mask[16];
    assert_int_equal(gnutls_cipher_init(&c, GNUTLS_CIPHER_AES_128_CBC, &hk, &ivd), 0);
    assert_int_equal(gnutls_cipher_encrypt2(c, out + pn_off + 4, 16, mask, 16), 0);
    gnutls_cipher_deinit(c);
    out[0] ^= mask[0] & 0x0f;
    for (int i = 0; i < 4; i++)
        out[pn_off + i] ^= mask[1 + i];
    return k;
}

#define HELLO (cap_curl_h2 + 5)
#define HELLO_LEN (sizeof cap_curl_h2 - 5)

static void assert_sni(const weir_quic_hello_t *h, const char *name)
{
    weir_client_hello_t ch;
    assert_int_equal(weir_quic_hello_get(h, &ch), WEIR_CH_OK);
    assert_int_equal(ch.sni.len, strlen(name));
    assert_memory_equal(ch.sni.ptr, name, strlen(name));
    assert_true(weir_client_hello_offers_alpn(&ch, "h2"));
}

static void test_whole_hello_in_one_initial(void **state)
{
    (void)state;
    static const uint32_t versions[] = {WEIR_QUIC_V1, WEIR_QUIC_V2, WEIR_QUIC_V2_DRAFT};
    for (size_t v = 0; v < 3; v++) {
        uint8_t frames[2048], pkt[2048];
        size_t f = crypto(frames, HELLO, 0, HELLO_LEN);
        uint8_t bits = versions[v] == WEIR_QUIC_V1 ? 0 : 1;
        size_t n = seal(pkt, versions[v], bits, frames, f, 1200, 0, DCID, sizeof DCID);
        weir_quic_hello_t h;
        weir_quic_hello_init(&h);
        unsigned flags;
        assert_int_equal(weir_quic_hello_feed(&h, pkt, n, &flags), WEIR_QI_DONE);
        assert_int_equal(flags, WEIR_QI_F_INITIAL | WEIR_QI_F_OFFSET0);
        assert_int_equal(h.version, versions[v]);
        assert_sni(&h, "a.example.test");
        weir_quic_hello_free(&h);
    }
}

static void test_split_reordered_repeated(void **state)
{
    (void)state;
    /* packet A (pn 0): bytes [300, end) then [100, 200); packet B (pn 1):
     * [0, 150) and [150, 300) — B arrives first, then A, then A again */
    uint8_t fa[2048], fb[2048], a[2048], b[2048];
    size_t la = crypto(fa, HELLO, 300, HELLO_LEN - 300);
    la += crypto(fa + la, HELLO, 100, 100);
    size_t lb = crypto(fb, HELLO, 0, 150);
    lb += crypto(fb + lb, HELLO, 150, 150);
    size_t na = seal(a, WEIR_QUIC_V1, 0, fa, la, 1200, 0, DCID, sizeof DCID);
    size_t nb = seal(b, WEIR_QUIC_V1, 0, fb, lb, 1200, 1, DCID, sizeof DCID);
    weir_quic_hello_t h;
    weir_quic_hello_init(&h);
    unsigned flags;
    assert_int_equal(weir_quic_hello_feed(&h, b, nb, &flags), WEIR_QI_MORE);
    assert_int_equal(flags, WEIR_QI_F_INITIAL | WEIR_QI_F_OFFSET0);
    uint8_t copy[2048];
    memcpy(copy, a, na);
    assert_int_equal(weir_quic_hello_feed(&h, a, na, &flags), WEIR_QI_DONE);
    assert_int_equal(flags, WEIR_QI_F_INITIAL);
    assert_int_equal(weir_quic_hello_feed(&h, copy, na, &flags), WEIR_QI_DONE);
    assert_sni(&h, "a.example.test");
    weir_quic_hello_free(&h);
}

static void test_first_lost_then_resent(void **state)
{
    (void)state;
    uint8_t f1[2048], f2[2048], p2[2048], p3[2048];
    size_t l1 = crypto(f1, HELLO, 0, 256);
    size_t l2 = crypto(f2, HELLO, 256, HELLO_LEN - 256);
    /* pn 0 (offset 0) is lost; pn 1 arrives, then the retransmission as pn 2 */
    size_t n2 = seal(p2, WEIR_QUIC_V1, 0, f2, l2, 1200, 1, DCID, sizeof DCID);
    size_t n3 = seal(p3, WEIR_QUIC_V1, 0, f1, l1, 1200, 2, DCID, sizeof DCID);
    weir_quic_hello_t h;
    weir_quic_hello_init(&h);
    unsigned flags;
    assert_int_equal(weir_quic_hello_feed(&h, p2, n2, &flags), WEIR_QI_MORE);
    assert_int_equal(flags, WEIR_QI_F_INITIAL); /* not offset 0: held by the caller */
    assert_int_equal(weir_quic_hello_feed(&h, p3, n3, &flags), WEIR_QI_DONE);
    assert_true(flags & WEIR_QI_F_OFFSET0);
    assert_sni(&h, "a.example.test");
    weir_quic_hello_free(&h);
}

static void test_coalesced_initial_and_0rtt(void **state)
{
    (void)state;
    uint8_t f[2048], d[4096], zr[16] = {0x01};
    size_t l = crypto(f, HELLO, 0, HELLO_LEN);
    size_t n = seal(d, WEIR_QUIC_V1, 0, f, l, 1100, 0, DCID, sizeof DCID);
    /* a 0-RTT packet after it (sealed with Initial keys here: only its
     * framing matters, it is not read) */
    n += seal(d + n, WEIR_QUIC_V1, 1, zr, 1, 200, 1, DCID, sizeof DCID);
    assert_true(n >= 1200);
    weir_quic_hello_t h;
    weir_quic_hello_init(&h);
    unsigned flags;
    assert_int_equal(weir_quic_hello_feed(&h, d, n, &flags), WEIR_QI_DONE);
    assert_sni(&h, "a.example.test");
    weir_quic_hello_free(&h);
}

static void test_rejects(void **state)
{
    (void)state;
    uint8_t f[2048], p[2048];
    size_t l = crypto(f, HELLO, 0, HELLO_LEN);
    weir_quic_hello_t h;
    unsigned flags;
    /* a datagram under 1,200 bytes with an Initial */
    size_t n = seal(p, WEIR_QUIC_V1, 0, f, l, 1199, 0, DCID, sizeof DCID);
    assert_int_equal(n, 1199);
    weir_quic_hello_init(&h);
    assert_int_equal(weir_quic_hello_feed(&h, p, n, &flags), WEIR_QI_NONE);
    weir_quic_hello_free(&h);
    /* a flipped ciphertext byte: skipped, as a receiver must */
    n = seal(p, WEIR_QUIC_V1, 0, f, l, 1200, 0, DCID, sizeof DCID);
    p[n - 20] ^= 1;
    weir_quic_hello_init(&h);
    assert_int_equal(weir_quic_hello_feed(&h, p, n, &flags), WEIR_QI_NONE);
    assert_int_equal(flags, 0);
    weir_quic_hello_free(&h);
    /* a STREAM frame in an Initial */
    uint8_t bad[64] = {0x08, 0x00, 0x03, 'a', 'b', 'c'};
    n = seal(p, WEIR_QUIC_V1, 0, bad, 6, 1200, 0, DCID, sizeof DCID);
    weir_quic_hello_init(&h);
    assert_int_equal(weir_quic_hello_feed(&h, p, n, &flags), WEIR_QI_BAD);
    weir_quic_hello_free(&h);
    /* a handshake message other than a ClientHello */
    uint8_t sh[8] = {0x02, 0x00, 0x00, 0x02, 0x03, 0x03};
    uint8_t fs[64];
    size_t ls = crypto(fs, sh, 0, 6);
    n = seal(p, WEIR_QUIC_V1, 0, fs, ls, 1200, 0, DCID, sizeof DCID);
    weir_quic_hello_init(&h);
    assert_int_equal(weir_quic_hello_feed(&h, p, n, &flags), WEIR_QI_BAD);
    weir_quic_hello_free(&h);
    /* a hello that claims more than WEIR_QI_HELLO_MAX bytes */
    uint8_t big[8] = {0x01, 0x00, 0x50, 0x00, 0x03, 0x03};
    ls = crypto(fs, big, 0, 6);
    n = seal(p, WEIR_QUIC_V1, 0, fs, ls, 1200, 0, DCID, sizeof DCID);
    weir_quic_hello_init(&h);
    assert_int_equal(weir_quic_hello_feed(&h, p, n, &flags), WEIR_QI_BAD);
    weir_quic_hello_free(&h);
    /* a short-header packet, an unknown version */
    uint8_t s[1200] = {0x40, 1, 2, 3};
    weir_quic_hello_init(&h);
    assert_int_equal(weir_quic_hello_feed(&h, s, sizeof s, &flags), WEIR_QI_NONE);
    n = seal(p, WEIR_QUIC_V1, 0, f, l, 1200, 0, DCID, sizeof DCID);
    p[1] = 0xff; /* version ff...01 */
    assert_int_equal(weir_quic_hello_feed(&h, p, n, &flags), WEIR_QI_NONE);
    weir_quic_hello_free(&h);
}

static void test_long_header_fields(void **state)
{
    (void)state;
    uint8_t f[64] = {0x01}, p[2048];
    size_t n = seal(p, WEIR_QUIC_V2, 3, f, 1, 1200, 0, DCID, sizeof DCID); /* v2 Handshake */
    weir_quic_long_t lh;
    assert_true(weir_quic_long_header(p, n, &lh));
    assert_int_equal(lh.version, WEIR_QUIC_V2);
    assert_int_equal(lh.type, WEIR_QUIC_HANDSHAKE);
    assert_int_equal(lh.dcid_len, sizeof DCID);
    assert_memory_equal(lh.dcid, DCID, sizeof DCID);
    assert_int_equal(lh.scid_len, sizeof SCID);
    assert_memory_equal(lh.scid, SCID, sizeof SCID);
    p[5] = 21; /* a connection ID over 20 bytes */
    assert_false(weir_quic_long_header(p, n, &lh));
    assert_false(weir_quic_long_header(p, 6, &lh));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc9001_keys),
        cmocka_unit_test(test_rfc9369_keys),
        cmocka_unit_test(test_whole_hello_in_one_initial),
        cmocka_unit_test(test_split_reordered_repeated),
        cmocka_unit_test(test_first_lost_then_resent),
        cmocka_unit_test(test_coalesced_initial_and_0rtt),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_long_header_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
