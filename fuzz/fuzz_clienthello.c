/* libFuzzer target for src/tls/clienthello.c. Each input is used three
 * ways:
 *   1. as the start of a TCP stream (weir_client_hello_parse_records);
 *   2. as a bare handshake message (weir_client_hello_parse_message);
 *   3. as a ClientHello body, given a correct message header, so that the
 *      fuzzer reaches the extension parsers without having to learn the
 *      framing; the message also goes through the record layer, whole and
 *      split into small records.
 * and these invariants are checked:
 *   - a result is one of the documented values, and *out is zeroed unless
 *     it is OK; NOT_TLS exactly when the first two bytes say so;
 *   - an OK hello's slices lie inside the input or the scratch buffer, its
 *     SNI is non-empty without NUL, its ALPN list iterates to exactly its
 *     length, in non-empty names that offers_alpn finds;
 *   - the record layer never changes a verdict: the message reassembled
 *     from an OK stream parses the same bare, and a complete message gives
 *     the same result and fields however it is split into records;
 *   - a strict prefix of an OK input is NEED_MORE (records: up to the end
 *     of the hello's last record, OK with the same fields after it).
 * Inputs and the scratch buffer are heap blocks of exactly their size, so
 * AddressSanitizer sees any access beyond them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/clienthello.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) abort();                                                                      \
    } while (0)

#define CAP (64 * 1024)
#define MAX_PREFIXES 96

static uint8_t *scratch;

static uint8_t *copy(const uint8_t *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    CHECK(b != NULL);
    if (n) memcpy(b, p, n);
    return b;
}

static bool inside(weir_slice_t s, const uint8_t *base, size_t n)
{
    const uint8_t *q = (const uint8_t *)s.ptr;
    return base && q >= base && q + s.len <= base + n;
}

static void check_zeroed(const weir_client_hello_t *ch)
{
    static const weir_client_hello_t zero;
    CHECK(memcmp(ch, &zero, sizeof zero) == 0);
}

static void check_rc(int rc, const weir_client_hello_t *ch)
{
    CHECK(rc == WEIR_CH_OK || rc == WEIR_CH_NEED_MORE || rc == WEIR_CH_NOT_TLS ||
          rc == WEIR_CH_INVALID);
    if (rc != WEIR_CH_OK) check_zeroed(ch);
}

static void check_hello(const weir_client_hello_t *ch, const uint8_t *in, size_t n,
                        const uint8_t *scr, size_t cap)
{
    CHECK(ch->has_sni == (ch->sni.len > 0));
    CHECK(!ch->has_alpn || ch->alpn.len >= 2);
    if (ch->has_sni) {
        CHECK(inside(ch->sni, in, n) || inside(ch->sni, scr, cap));
        CHECK(memchr(ch->sni.ptr, 0, ch->sni.len) == NULL);
    }
    if (ch->has_alpn) CHECK(inside(ch->alpn, in, n) || inside(ch->alpn, scr, cap));
    CHECK((ch->legacy_version >> 8) == 3);
    weir_slice_t proto;
    size_t total = 0, i;
    for (i = 0; weir_client_hello_alpn_at(ch, i, &proto); i++) {
        CHECK(proto.len > 0 && proto.len <= 255);
        CHECK(proto.ptr == ch->alpn.ptr + total + 1);
        char name[256];
        memcpy(name, proto.ptr, proto.len);
        name[proto.len] = 0;
        if (!memchr(name, 0, proto.len)) CHECK(weir_client_hello_offers_alpn(ch, name));
        total += 1 + proto.len;
    }
    CHECK(total == ch->alpn.len);
    CHECK(!weir_client_hello_alpn_at(ch, i + 1, &proto));
}

static bool same_slice(weir_slice_t a, weir_slice_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void check_same(const weir_client_hello_t *a, const weir_client_hello_t *b)
{
    CHECK(a->legacy_version == b->legacy_version && a->max_version == b->max_version);
    CHECK(a->has_sni == b->has_sni && a->has_alpn == b->has_alpn);
    CHECK(same_slice(a->sni, b->sni) && same_slice(a->alpn, b->alpn));
}

/* The message m[0..n) in handshake records of at most frag bytes (heap,
 * *out_len). */
static uint8_t *wrap(const uint8_t *m, size_t n, size_t frag, size_t *out_len)
{
    size_t nrec = n ? (n + frag - 1) / frag : 0;
    uint8_t *r = malloc(n + 5 * nrec + 1);
    CHECK(r != NULL);
    size_t o = 0;
    for (size_t off = 0; off < n; off += frag) {
        size_t k = n - off < frag ? n - off : frag;
        r[o++] = 22, r[o++] = 3, r[o++] = 1;
        r[o++] = (uint8_t)(k >> 8), r[o++] = (uint8_t)k;
        memcpy(r + o, m + off, k);
        o += k;
    }
    *out_len = o;
    return r;
}

/* The prefixes to try: all of them for short inputs, else the first and
 * last ones and an even spread. */
static size_t prefix_at(size_t n, size_t i)
{
    if (n <= MAX_PREFIXES) return i;
    if (i < MAX_PREFIXES / 3) return i;
    if (i >= 2 * MAX_PREFIXES / 3) return n - (MAX_PREFIXES - i);
    return (n / (MAX_PREFIXES / 3)) * (i - MAX_PREFIXES / 3);
}

/* A complete message: the bare verdict, and the same through records
 * (of the largest size, and of frag bytes). */
static void check_message(const uint8_t *m, size_t n, size_t frag)
{
    uint8_t *in = copy(m, n);
    weir_client_hello_t ch, rec;
    int rc = weir_client_hello_parse_message(in, n, &ch);
    check_rc(rc, &ch);
    CHECK(rc != WEIR_CH_NOT_TLS);
    if (rc == WEIR_CH_OK) {
        check_hello(&ch, in, n, NULL, 0);
        size_t count = n < MAX_PREFIXES ? n : MAX_PREFIXES;
        for (size_t i = 0; i < count; i++) {
            weir_client_hello_t p;
            CHECK(weir_client_hello_parse_message(in, prefix_at(n, i), &p) == WEIR_CH_NEED_MORE);
            check_zeroed(&p);
        }
    }
    if (n >= 4 && n <= CAP) {
        size_t sizes[2] = {WEIR_CH_MAX_RECORD, frag};
        for (size_t s = 0; s < 2; s++) {
            size_t rn;
            uint8_t *r = wrap(in, n, sizes[s], &rn);
            int rrc = weir_client_hello_parse_records(r, rn, scratch, CAP, &rec);
            check_rc(rrc, &rec);
            CHECK(rrc == rc);
            if (rrc == WEIR_CH_OK) {
                check_hello(&rec, r, rn, scratch, CAP);
                check_same(&ch, &rec);
            }
            free(r);
        }
    }
    free(in);
}

/* The handshake bytes of the records in[0..n) up to the end of a complete
 * hello (heap, *mlen), and where its last record ends; NULL if the records
 * do not hold one. */
static uint8_t *reassemble(const uint8_t *in, size_t n, size_t *mlen, size_t *end)
{
    uint8_t *m = malloc(n + 1);
    CHECK(m != NULL);
    size_t have = 0, off = 0;
    while (off + 5 <= n) {
        size_t k = (size_t)in[off + 3] << 8 | in[off + 4];
        if (off + 5 + k > n) break;
        memcpy(m + have, in + off + 5, k);
        have += k;
        off += 5 + k;
        if (have >= 4) {
            size_t want = 4 + ((size_t)m[1] << 16 | (size_t)m[2] << 8 | m[3]);
            if (have >= want) {
                *mlen = want;
                *end = off;
                return m;
            }
        }
    }
    free(m);
    return NULL;
}

static void check_records(const uint8_t *data, size_t n, size_t frag)
{
    uint8_t *in = copy(data, n);
    weir_client_hello_t ch;
    int rc = weir_client_hello_parse_records(in, n, scratch, CAP, &ch);
    check_rc(rc, &ch);
    bool not_tls = n >= 1 && (in[0] != 22 || (n >= 2 && in[1] != 3));
    CHECK((rc == WEIR_CH_NOT_TLS) == not_tls);
    if (rc == WEIR_CH_OK) {
        check_hello(&ch, in, n, scratch, CAP);
        /* Copy the fields out: scratch is reused below. */
        weir_client_hello_t saved = ch;
        uint8_t *fields = copy((const uint8_t *)ch.sni.ptr, ch.sni.len);
        uint8_t *alpn = copy((const uint8_t *)ch.alpn.ptr, ch.alpn.len);
        saved.sni.ptr = (const char *)fields, saved.alpn.ptr = (const char *)alpn;
        size_t mlen = 0, end = 0;
        uint8_t *m = reassemble(in, n, &mlen, &end);
        CHECK(m != NULL && mlen <= CAP);
        weir_client_hello_t bare;
        uint8_t *mc = copy(m, mlen);
        CHECK(weir_client_hello_parse_message(mc, mlen, &bare) == WEIR_CH_OK);
        check_same(&saved, &bare);
        free(mc);
        check_message(m, mlen, frag); /* and split another way */
        free(m);
        size_t count = n < MAX_PREFIXES ? n : MAX_PREFIXES;
        for (size_t i = 0; i < count; i++) {
            size_t cut = prefix_at(n, i);
            weir_client_hello_t p;
            int prc = weir_client_hello_parse_records(in, cut, scratch, CAP, &p);
            if (cut < end) {
                CHECK(prc == WEIR_CH_NEED_MORE);
                check_zeroed(&p);
            } else {
                CHECK(prc == WEIR_CH_OK);
                check_same(&saved, &p);
            }
        }
        free(fields);
        free(alpn);
    }
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!scratch) {
        scratch = malloc(CAP);
        CHECK(scratch != NULL);
    }
    size_t frag = 1 + (size * 31 + (size ? data[size / 2] : 0)) % 97;

    check_records(data, size, frag);

    /* As a message, complete or not. */
    uint8_t *in = copy(data, size);
    weir_client_hello_t ch;
    int rc = weir_client_hello_parse_message(in, size, &ch);
    check_rc(rc, &ch);
    CHECK(rc != WEIR_CH_NOT_TLS);
    free(in);
    if (rc == WEIR_CH_OK) check_message(data, size, frag);

    /* As a body, under a correct header. */
    if (size <= 0xffffff) {
        uint8_t *m = malloc(size + 4);
        CHECK(m != NULL);
        m[0] = 1, m[1] = (uint8_t)(size >> 16), m[2] = (uint8_t)(size >> 8), m[3] = (uint8_t)size;
        if (size) memcpy(m + 4, data, size);
        check_message(m, size + 4, frag);
        free(m);
    }
    return 0;
}
