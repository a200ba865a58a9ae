/* Client Initial packets read without the server's keys (see
 * quic_initial.h): key derivation, header protection removal, AEAD
 * decryption, the frames an Initial may carry, CRYPTO reassembly. */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>

#include "quic/quic_initial.h"

static const uint8_t salt_v1[20] = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
                                    0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
static const uint8_t salt_v2[20] = {0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
                                    0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9};
static const uint8_t salt_v2_draft[20] = {0xa7, 0x07, 0xc2, 0x03, 0xa5, 0x9b, 0x47,
                                          0x18, 0x4a, 0x1d, 0x62, 0xca, 0x57, 0x04,
                                          0x06, 0xea, 0x7a, 0xe3, 0xe5, 0xd3};

static bool is_v2(uint32_t version)
{
    return version == WEIR_QUIC_V2 || version == WEIR_QUIC_V2_DRAFT;
}

bool weir_quic_version_known(uint32_t version)
{
    return version == WEIR_QUIC_V1 || is_v2(version);
}

/* ---- headers ---- */

/* A QUIC variable-length integer at *p (RFC 9000 §16): true and *v, p
 * advanced; false when it does not fit before end. */
static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    if (*p >= end)
        return false;
    size_t n = (size_t)1 << (**p >> 6);
    if ((size_t)(end - *p) < n)
        return false;
    uint64_t x = **p & 0x3f;
    for (size_t i = 1; i < n; i++)
        x = x << 8 | (*p)[i];
    *p += n;
    *v = x;
    return true;
}

bool weir_quic_long_header(const uint8_t *d, size_t len, weir_quic_long_t *out)
{
    if (len < 7 || !(d[0] & 0x80))
        return false;
    uint32_t version = (uint32_t)d[1] << 24 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 8 | d[4];
    size_t at = 5;
    uint8_t dl = d[at++];
    if (dl > 20 || len < at + dl + 1)
        return false;
    const uint8_t *dcid = d + at;
    at += dl;
    uint8_t sl = d[at++];
    if (sl > 20 || len < at + sl)
        return false;
    uint8_t bits = (d[0] >> 4) & 3, type = 0xff;
    if (version == WEIR_QUIC_V1)
        type = bits;
    else if (is_v2(version)) /* v2: Retry 0, Initial 1, 0-RTT 2, Handshake 3 */
        type = bits == 0 ? WEIR_QUIC_RETRY : (uint8_t)(bits - 1);
    *out = (weir_quic_long_t){.version = version,
                              .type = type,
                              .dcid_len = dl,
                              .scid_len = sl,
                              .dcid = dcid,
                              .scid = d + at};
    return true;
}

/* ---- keys ---- */

/* HKDF-Expand-Label (RFC 8446 §7.1) with an empty context. */
static int expand_label(const uint8_t *secret, size_t secret_len, const char *label,
                        uint8_t *out, size_t len)
{
    uint8_t info[2 + 1 + 6 + 32 + 1];
    size_t ll = strlen(label);
    if (ll > 32)
        return -1;
    info[0] = (uint8_t)(len >> 8);
    info[1] = (uint8_t)len;
    info[2] = (uint8_t)(6 + ll);
    memcpy(info + 3, "tls13 ", 6);
    memcpy(info + 9, label, ll);
    info[9 + ll] = 0;
    gnutls_datum_t prk = {(unsigned char *)secret, (unsigned)secret_len};
    gnutls_datum_t inf = {info, (unsigned)(10 + ll)};
    return gnutls_hkdf_expand(GNUTLS_MAC_SHA256, &prk, &inf, out, len) < 0 ? -1 : 0;
}

int weir_quic_initial_keys(uint32_t version, const uint8_t *dcid, size_t dcid_len,
                           uint8_t key[16], uint8_t iv[12], uint8_t hp[16])
{
    const uint8_t *salt = version == WEIR_QUIC_V1    ? salt_v1
                          : version == WEIR_QUIC_V2 ? salt_v2
                          : version == WEIR_QUIC_V2_DRAFT ? salt_v2_draft
                                                          : NULL;
    if (!salt)
        return -1;
    uint8_t initial[32], client[32];
    gnutls_datum_t ikm = {(unsigned char *)dcid, (unsigned)dcid_len};
    gnutls_datum_t s = {(unsigned char *)salt, 20};
    if (gnutls_hkdf_extract(GNUTLS_MAC_SHA256, &ikm, &s, initial) < 0 ||
        expand_label(initial, 32, "client in", client, 32) < 0)
        return -1;
    bool v2 = is_v2(version);
    return expand_label(client, 32, v2 ? "quicv2 key" : "quic key", key, 16) < 0 ||
                   expand_label(client, 32, v2 ? "quicv2 iv" : "quic iv", iv, 12) < 0 ||
                   expand_label(client, 32, v2 ? "quicv2 hp" : "quic hp", hp, 16) < 0
               ? -1
               : 0;
}

/* AES-128 of one block (header protection is AES-ECB on a 16-byte sample):
 * the first block of CBC with a zero IV is exactly that. */
static int aes_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
    static const uint8_t zero[16];
    gnutls_cipher_hd_t c;
    gnutls_datum_t k = {(unsigned char *)key, 16}, iv = {(unsigned char *)zero, 16};
    if (gnutls_cipher_init(&c, GNUTLS_CIPHER_AES_128_CBC, &k, &iv) < 0)
        return -1;
    int rc = gnutls_cipher_encrypt2(c, in, 16, out, 16);
    gnutls_cipher_deinit(c);
    return rc < 0 ? -1 : 0;
}

/* ---- reassembly ---- */

void weir_quic_hello_init(weir_quic_hello_t *h)
{
    memset(h, 0, sizeof *h);
    h->largest_pn = -1;
}

void weir_quic_hello_free(weir_quic_hello_t *h)
{
    free(h->crypto);
    h->crypto = NULL;
    h->cap = 0;
}

/* Bytes from offset 0 held without a gap. */
static size_t contiguous(const weir_quic_hello_t *h)
{
    return h->num_ranges && h->ranges[0][0] == 0 ? h->ranges[0][1] : 0;
}

/* Records [start, end) as received, merging ranges. -1 when too many
 * disjoint ranges would be needed. */
static int add_range(weir_quic_hello_t *h, uint32_t start, uint32_t end)
{
    size_t i = 0;
    while (i < h->num_ranges && h->ranges[i][1] < start)
        i++;
    /* ranges i.. that touch [start, end) merge into one */
    size_t j = i;
    while (j < h->num_ranges && h->ranges[j][0] <= end) {
        if (h->ranges[j][0] < start)
            start = h->ranges[j][0];
        if (h->ranges[j][1] > end)
            end = h->ranges[j][1];
        j++;
    }
    if (j == i && h->num_ranges == WEIR_QI_MAX_RANGES)
        return -1;
    size_t tail = h->num_ranges - j;
    if (j == i) { /* insert */
        memmove(h->ranges[i + 1], h->ranges[i], tail * sizeof h->ranges[0]);
        h->num_ranges++;
    } else if (j > i + 1) { /* several merged into i */
        memmove(h->ranges[i + 1], h->ranges[j], tail * sizeof h->ranges[0]);
        h->num_ranges -= j - i - 1;
    }
    h->ranges[i][0] = start;
    h->ranges[i][1] = end;
    return 0;
}

/* Keeps CRYPTO bytes data[0..n) at offset off. Returns WEIR_QI_MORE or
 * WEIR_QI_BAD. */
static int crypto_frame(weir_quic_hello_t *h, uint64_t off, const uint8_t *data, size_t n)
{
    if (n == 0)
        return WEIR_QI_MORE;
    size_t limit = h->need ? h->need : WEIR_QI_HELLO_MAX;
    if (off >= limit)
        return WEIR_QI_MORE; /* past the hello: nothing to route on */
    if (off + n > limit)
        n = (size_t)(limit - off);
    size_t end = (size_t)off + n;
    if (end > h->cap) {
        size_t cap = h->need ? h->need : end < 2048 ? 2048 : end;
        uint8_t *p = realloc(h->crypto, cap);
        if (!p)
            return WEIR_QI_BAD;
        h->crypto = p;
        h->cap = cap;
    }
    memcpy(h->crypto + off, data, n);
    if (add_range(h, (uint32_t)off, (uint32_t)end) < 0)
        return WEIR_QI_BAD;
    if (!h->need && contiguous(h) >= 4) {
        if (h->crypto[0] != 1) /* not a ClientHello */
            return WEIR_QI_BAD;
        size_t need = 4 + ((size_t)h->crypto[1] << 16 | (size_t)h->crypto[2] << 8 | h->crypto[3]);
        if (need > WEIR_QI_HELLO_MAX)
            return WEIR_QI_BAD;
        h->need = need;
    }
    return WEIR_QI_MORE;
}

int weir_quic_hello_frames(weir_quic_hello_t *h, const uint8_t *p, size_t len, unsigned *flags)
{
    const uint8_t *end = p + len;
    while (p < end) {
        uint64_t type, a, b, c;
        if (!varint(&p, end, &type))
            return WEIR_QI_BAD;
        switch (type) {
        case 0x00: /* PADDING */
        case 0x01: /* PING */
            break;
        case 0x02: /* ACK */
        case 0x03: { /* ACK with ECN counts */
            uint64_t count;
            if (!varint(&p, end, &a) || !varint(&p, end, &b) || !varint(&p, end, &count) ||
                !varint(&p, end, &c) || count > (uint64_t)(end - p))
                return WEIR_QI_BAD;
            for (uint64_t i = 0; i < count; i++)
                if (!varint(&p, end, &a) || !varint(&p, end, &b))
                    return WEIR_QI_BAD;
            if (type == 0x03 &&
                (!varint(&p, end, &a) || !varint(&p, end, &b) || !varint(&p, end, &c)))
                return WEIR_QI_BAD;
            break;
        }
        case 0x06: /* CRYPTO */
            if (!varint(&p, end, &a) || !varint(&p, end, &b) || b > (uint64_t)(end - p) ||
                a > ((uint64_t)1 << 62) - 1 - b)
                return WEIR_QI_BAD;
            if (a == 0 && b > 0)
                *flags |= WEIR_QI_F_OFFSET0;
            if (crypto_frame(h, a, p, (size_t)b) != WEIR_QI_MORE)
                return WEIR_QI_BAD;
            p += b;
            break;
        case 0x1c: /* CONNECTION_CLOSE */
            if (!varint(&p, end, &a) || !varint(&p, end, &b) || !varint(&p, end, &c) ||
                c > (uint64_t)(end - p))
                return WEIR_QI_BAD;
            p += c;
            break;
        default: /* no other frame may be in an Initial (RFC 9000 §12.4) */
            return WEIR_QI_BAD;
        }
    }
    return WEIR_QI_MORE;
}

/* The full packet number from its truncated form (RFC 9000 §A.3). */
static uint64_t decode_pn(int64_t largest, uint64_t truncated, size_t pn_len)
{
    uint64_t expected = (uint64_t)(largest + 1);
    uint64_t win = (uint64_t)1 << (pn_len * 8), hwin = win / 2, mask = win - 1;
    uint64_t candidate = (expected & ~mask) | truncated;
    if (candidate + hwin <= expected && candidate + win < ((uint64_t)1 << 62))
        return candidate + win;
    if (candidate > expected + hwin && candidate >= win)
        return candidate - win;
    return candidate;
}

/* Decrypts the Initial packet at d[0..len) (the packet alone: its Length
 * field is already checked) into out. Returns the payload length, or -1
 * when it does not authenticate. */
static long open_initial(weir_quic_hello_t *h, uint8_t *pkt, size_t pn_off, size_t len,
                         uint8_t *out)
{
    if (len < pn_off + 4 + 16)
        return -1;
    uint8_t mask[16];
    if (aes_block(h->hp, pkt + pn_off + 4, mask) < 0)
        return -1;
    pkt[0] ^= mask[0] & 0x0f;
    size_t pn_len = (size_t)(pkt[0] & 3) + 1;
    uint64_t truncated = 0;
    for (size_t i = 0; i < pn_len; i++) {
        pkt[pn_off + i] ^= mask[1 + i];
        truncated = truncated << 8 | pkt[pn_off + i];
    }
    uint64_t pn = decode_pn(h->largest_pn, truncated, pn_len);
    uint8_t nonce[12];
    memcpy(nonce, h->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(pn >> (8 * i));
    size_t hdr = pn_off + pn_len;
    gnutls_aead_cipher_hd_t a;
    gnutls_datum_t k = {h->key, 16};
    if (gnutls_aead_cipher_init(&a, GNUTLS_CIPHER_AES_128_GCM, &k) < 0)
        return -1;
    size_t olen = len - hdr;
    int rc = gnutls_aead_cipher_decrypt(a, nonce, 12, pkt, hdr, 16, pkt + hdr, len - hdr, out,
                                        &olen);
    gnutls_aead_cipher_deinit(a);
    if (rc < 0)
        return -1;
    if ((int64_t)pn > h->largest_pn)
        h->largest_pn = (int64_t)pn;
    return (long)olen;
}

int weir_quic_hello_feed(weir_quic_hello_t *h, const uint8_t *d, size_t len, unsigned *flags)
{
    static __thread uint8_t pkt[65536], plain[65536];
    *flags = 0;
    bool initial = false;
    int rc = WEIR_QI_NONE;
    weir_quic_long_t first;
    if (len < WEIR_QI_MIN_DATAGRAM && weir_quic_long_header(d, len, &first) &&
        first.type == WEIR_QUIC_INITIAL)
        return WEIR_QI_NONE; /* too small to be a client's Initial datagram */
    while (len) {
        weir_quic_long_t lh;
        if (!weir_quic_long_header(d, len, &lh) || !weir_quic_version_known(lh.version))
            break; /* a short header ends the coalesced packets; unknown versions pass */
        const uint8_t *p = lh.scid + lh.scid_len, *end = d + len;
        uint64_t token_len = 0, length;
        if (lh.type == WEIR_QUIC_RETRY)
            break;
        if (lh.type == WEIR_QUIC_INITIAL &&
            (!varint(&p, end, &token_len) || token_len > (uint64_t)(end - p)))
            return initial ? WEIR_QI_BAD : WEIR_QI_NONE;
        p += token_len;
        if (!varint(&p, end, &length) || length > (uint64_t)(end - p))
            return initial ? WEIR_QI_BAD : WEIR_QI_NONE;
        size_t pn_off = (size_t)(p - d), pkt_len = pn_off + (size_t)length;
        if (lh.type == WEIR_QUIC_INITIAL) {
            initial = true;
            if (!h->keyed) {
                if (weir_quic_initial_keys(lh.version, lh.dcid, lh.dcid_len, h->key, h->iv,
                                           h->hp) < 0)
                    return WEIR_QI_BAD;
                h->version = lh.version;
                memcpy(h->dcid, lh.dcid, lh.dcid_len);
                h->dcid_len = lh.dcid_len;
                h->keyed = true;
            }
            if (lh.version == h->version && lh.dcid_len == h->dcid_len &&
                memcmp(lh.dcid, h->dcid, lh.dcid_len) == 0 && pkt_len <= sizeof pkt) {
                memcpy(pkt, d, pkt_len);
                long n = open_initial(h, pkt, pn_off, pkt_len, plain);
                if (n >= 0) {
                    *flags |= WEIR_QI_F_INITIAL;
                    if (weir_quic_hello_frames(h, plain, (size_t)n, flags) == WEIR_QI_BAD)
                        return WEIR_QI_BAD;
                    rc = WEIR_QI_MORE;
                }
            }
        }
        d += pkt_len;
        len -= pkt_len;
    }
    if (rc != WEIR_QI_MORE)
        return WEIR_QI_NONE;
    return weir_quic_hello_done(h) ? WEIR_QI_DONE : WEIR_QI_MORE;
}

bool weir_quic_hello_done(const weir_quic_hello_t *h)
{
    return h->need && contiguous(h) >= h->need;
}

int weir_quic_hello_get(const weir_quic_hello_t *h, weir_client_hello_t *ch)
{
    if (!h->need || contiguous(h) < h->need)
        return WEIR_CH_NEED_MORE;
    return weir_client_hello_parse_message(h->crypto, h->need, ch);
}
