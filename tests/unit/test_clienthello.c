/* Unit tests for src/tls/clienthello.c.
 *
 * Real hellos (curl, openssl s_client, gnutls-cli; clienthello_captures.h)
 * go through both entry points, cut at every byte, split across records
 * in every way, followed by more records, and squeezed into a scratch
 * buffer one byte too small. Synthetic hellos, built field by field below,
 * cover GREASE, TLS 1.2 and older forms, size limits, and each
 * malformation, always through both entry points (bare message, one
 * record, many small records) so that the record layer never changes a
 * verdict. Every input is placed right before an inaccessible page, so a
 * read past its end faults even without AddressSanitizer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "clienthello_captures.h"
#include "tls/clienthello.h"

#define SCRATCH (64 * 1024)
#define BIG (1024 * 1024)

/* ---- inputs against a guard page ---- */

typedef struct {
    uint8_t *map;
    size_t size;
} guard_t;

static guard_t g_in, g_scratch;

/* n bytes ending right before a PROT_NONE page (the previous use of g is
 * released). */
static uint8_t *guard_alloc(guard_t *g, size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = n ? (n + pg - 1) / pg : 1;
    if (g->map) munmap(g->map, g->size);
    g->size = (pages + 1) * pg;
    g->map = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g->map != MAP_FAILED);
    assert_int_equal(mprotect(g->map + pages * pg, pg, PROT_NONE), 0);
    return g->map + pages * pg - n;
}

static const uint8_t *guarded(const uint8_t *p, size_t n)
{
    uint8_t *dst = guard_alloc(&g_in, n);
    if (n) memcpy(dst, p, n);
    return dst;
}

static const uint8_t *last_in, *last_scratch;
static size_t last_in_len, last_cap;

static int records_cap(const uint8_t *p, size_t n, size_t cap, weir_client_hello_t *ch)
{
    last_in = guarded(p, n);
    last_in_len = n;
    last_scratch = guard_alloc(&g_scratch, cap);
    last_cap = cap;
    memset(ch, 0xa5, sizeof *ch); /* every result must overwrite it */
    return weir_client_hello_parse_records(last_in, n, (uint8_t *)last_scratch, cap, ch);
}

static int records(const uint8_t *p, size_t n, weir_client_hello_t *ch)
{
    return records_cap(p, n, SCRATCH, ch);
}

static int message(const uint8_t *p, size_t n, weir_client_hello_t *ch)
{
    last_in = guarded(p, n);
    last_in_len = n;
    last_scratch = NULL;
    last_cap = 0;
    memset(ch, 0xa5, sizeof *ch);
    return weir_client_hello_parse_message(last_in, n, ch);
}

static bool within(weir_slice_t s, const uint8_t *base, size_t n)
{
    const uint8_t *q = (const uint8_t *)s.ptr;
    return base && q >= base && q + s.len <= base + n;
}

/* ---- a byte writer ---- */

typedef struct {
    uint8_t b[BIG];
    size_t n;
} buf_t;

static buf_t g_ext, g_msg, g_rec, g_tmp;

static void put8(buf_t *w, unsigned v)
{
    assert_true(w->n < sizeof w->b);
    w->b[w->n++] = (uint8_t)v;
}

static void put16(buf_t *w, unsigned v)
{
    put8(w, v >> 8);
    put8(w, v & 0xff);
}

static void put(buf_t *w, const void *p, size_t n)
{
    assert_true(n <= sizeof w->b - w->n);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void fill(buf_t *w, unsigned v, size_t n)
{
    while (n--)
        put8(w, v);
}

/* Length fields written after their contents: open_N() reserves one and
 * returns where; close_N() stores the length of what came after it. */
static size_t open_n(buf_t *w, int bytes)
{
    size_t at = w->n;
    fill(w, 0, (size_t)bytes);
    return at;
}

static void close_n(buf_t *w, size_t at, int bytes)
{
    size_t len = w->n - at - (size_t)bytes;
    for (int i = bytes - 1; i >= 0; i--, len >>= 8)
        w->b[at + (size_t)i] = (uint8_t)(len & 0xff);
    assert_int_equal(len, 0);
}

/* ---- extensions (into g_ext) ---- */

static buf_t *exts(void)
{
    g_ext.n = 0;
    return &g_ext;
}

static void ext_raw(buf_t *e, unsigned type, const void *data, size_t n)
{
    put16(e, type);
    put16(e, (unsigned)n);
    put(e, data, n);
}

static void ext_sni(buf_t *e, const char *host)
{
    put16(e, 0);
    size_t ext = open_n(e, 2), list = open_n(e, 2);
    put8(e, 0);
    size_t name = open_n(e, 2);
    put(e, host, strlen(host));
    close_n(e, name, 2);
    close_n(e, list, 2);
    close_n(e, ext, 2);
}

/* Protocol names, NULL-terminated. */
static void ext_alpn(buf_t *e, ...)
{
    va_list ap;
    put16(e, 16);
    size_t ext = open_n(e, 2), list = open_n(e, 2);
    va_start(ap, e);
    for (const char *s; (s = va_arg(ap, const char *));) {
        put8(e, (unsigned)strlen(s));
        put(e, s, strlen(s));
    }
    va_end(ap);
    close_n(e, list, 2);
    close_n(e, ext, 2);
}

/* Versions, 0-terminated. */
static void ext_versions(buf_t *e, ...)
{
    va_list ap;
    put16(e, 43);
    size_t ext = open_n(e, 2), list = open_n(e, 1);
    va_start(ap, e);
    for (unsigned v; (v = va_arg(ap, unsigned));)
        put16(e, v);
    va_end(ap);
    close_n(e, list, 1);
    close_n(e, ext, 2);
}

/* ---- the ClientHello message (into g_msg) ---- */

typedef struct {
    unsigned version;   /* legacy_version */
    size_t sid_len;     /* bytes of legacy_session_id */
    size_t suites_len;  /* bytes of cipher_suites (TLS_AES_128_GCM_SHA256 repeated) */
    const char *comp;   /* compression methods */
    size_t comp_len;    /* bytes of comp */
    bool no_extensions; /* omit the extension block entirely */
    long ext_len_delta; /* added to the extension block's length field */
    long msg_len_delta; /* added to the message length field */
} head_t;

static const head_t STD = {0x0303, 32, 8, "\0", 1, false, 0, 0};

/* A ClientHello with head h and the extension bytes in e (may be NULL). */
static buf_t *hello_with(const head_t *h, const buf_t *e)
{
    buf_t *m = &g_msg;
    m->n = 0;
    put8(m, 1);
    size_t len = open_n(m, 3);
    put16(m, h->version);
    fill(m, 0x5a, 32); /* random */
    put8(m, (unsigned)h->sid_len);
    fill(m, 0xee, h->sid_len);
    put16(m, (unsigned)h->suites_len);
    for (size_t i = 0; i < h->suites_len; i++)
        put8(m, i % 2 ? 0x01 : 0x13);
    put8(m, (unsigned)h->comp_len);
    put(m, h->comp, h->comp_len);
    if (!h->no_extensions) {
        size_t el = open_n(m, 2);
        if (e) put(m, e->b, e->n);
        close_n(m, el, 2);
        unsigned v = (unsigned)((long)(m->b[el] << 8 | m->b[el + 1]) + h->ext_len_delta);
        m->b[el] = (uint8_t)(v >> 8);
        m->b[el + 1] = (uint8_t)v;
    }
    close_n(m, len, 3);
    size_t v = (size_t)((long)(m->n - 4) + h->msg_len_delta);
    m->b[1] = (uint8_t)(v >> 16);
    m->b[2] = (uint8_t)(v >> 8);
    m->b[3] = (uint8_t)v;
    return m;
}

static buf_t *hello(const buf_t *e)
{
    return hello_with(&STD, e);
}

/* The message in records of at most frag bytes (into out). */
static buf_t *wrap_into(buf_t *out, const uint8_t *p, size_t n, size_t frag)
{
    out->n = 0;
    for (size_t off = 0; off < n; off += frag) {
        size_t k = n - off < frag ? n - off : frag;
        put8(out, 22);
        put16(out, 0x0301);
        put16(out, (unsigned)k);
        put(out, p + off, k);
    }
    return out;
}

static buf_t *wrap(const buf_t *m, size_t frag)
{
    return wrap_into(&g_rec, m->b, m->n, frag);
}

/* The handshake bytes of a record stream (into out). */
static buf_t *unwrap(buf_t *out, const uint8_t *p, size_t n)
{
    out->n = 0;
    for (size_t off = 0; off + 5 <= n;) {
        size_t k = (size_t)p[off + 3] << 8 | p[off + 4];
        put(out, p + off + 5, k);
        off += 5 + k;
    }
    return out;
}

/* ---- expectations ---- */

typedef struct {
    unsigned legacy, max;
    const char *sni;  /* NULL: none */
    const char *alpn; /* comma-separated; NULL: none */
} expect_t;

static void check_hello(const weir_client_hello_t *ch, const expect_t *x)
{
    assert_int_equal(ch->legacy_version, x->legacy);
    assert_int_equal(ch->max_version, x->max);
    assert_int_equal(ch->has_sni, x->sni != NULL);
    if (x->sni) {
        assert_int_equal(ch->sni.len, strlen(x->sni));
        assert_memory_equal(ch->sni.ptr, x->sni, ch->sni.len);
    } else {
        assert_int_equal(ch->sni.len, 0);
    }
    assert_int_equal(ch->has_alpn, x->alpn != NULL);
    char joined[1024] = "";
    weir_slice_t s;
    size_t total = 0;
    for (size_t i = 0; weir_client_hello_alpn_at(ch, i, &s); i++) {
        char name[256];
        memcpy(name, s.ptr, s.len);
        name[s.len] = 0;
        assert_true(weir_client_hello_offers_alpn(ch, name));
        snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s%s", i ? "," : "",
                 name);
        total += 1 + s.len;
    }
    assert_int_equal(total, ch->alpn.len);
    assert_string_equal(joined, x->alpn ? x->alpn : "");
    /* Slices borrow from the input or the scratch buffer. */
    const weir_slice_t *sl[] = {&ch->sni, &ch->alpn};
    for (size_t i = 0; i < 2; i++)
        if (sl[i]->len)
            assert_true(within(*sl[i], last_in, last_in_len) ||
                        within(*sl[i], last_scratch, last_cap));
}

static void assert_zeroed(const weir_client_hello_t *ch)
{
    weir_client_hello_t zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(ch, &zero, sizeof zero);
}

/* The verdict rc for message m through every entry: bare, one record, and
 * records of 1, 3 and 100 bytes; with x checked when rc is OK. */
static void expect_all(const buf_t *m, int rc, const expect_t *x)
{
    static const size_t frags[] = {16384, 1, 3, 100};
    weir_client_hello_t ch;
    buf_t *copy = &g_tmp;
    memcpy(copy->b, m->b, m->n);
    copy->n = m->n;
    assert_int_equal(message(copy->b, copy->n, &ch), rc);
    if (rc == WEIR_CH_OK)
        check_hello(&ch, x);
    else
        assert_zeroed(&ch);
    for (size_t i = 0; i < sizeof frags / sizeof frags[0]; i++) {
        buf_t *r = wrap_into(&g_rec, copy->b, copy->n, frags[i]);
        assert_int_equal(records(r->b, r->n, &ch), rc);
        if (rc == WEIR_CH_OK)
            check_hello(&ch, x);
        else
            assert_zeroed(&ch);
    }
}

static void expect_invalid(const buf_t *m)
{
    expect_all(m, WEIR_CH_INVALID, NULL);
}

/* ---- real hellos ---- */

typedef struct {
    const char *name;
    const uint8_t *p;
    size_t n;
    expect_t x;
} capture_t;

#define CAP(c) #c, cap_##c, sizeof cap_##c
static const capture_t captures[] = {
    {CAP(curl_h2), {0x0303, 0x0304, "a.example.test", "h2,http/1.1"}},
    {CAP(curl_tls12), {0x0303, 0x0303, "b.example.test", "http/1.1"}},
    {CAP(curl_ip), {0x0303, 0x0304, NULL, "h2,http/1.1"}},
    {CAP(openssl_alpn), {0x0303, 0x0304, "c.example.test", "h2,http/1.1"}},
    {CAP(openssl_tls12_nosni), {0x0303, 0x0303, NULL, NULL}},
    {CAP(openssl_frag), {0x0303, 0x0304, "d.example.test", "h2"}},
    {CAP(openssl_psk), {0x0303, 0x0304, "h.example.test", "h2"}},
    {CAP(gnutls), {0x0303, 0x0304, "e.example.test", "h2,http/1.1"}},
    {CAP(gnutls_tls12), {0x0303, 0x0303, "f.example.test", NULL}},
};
#define NCAPTURES (sizeof captures / sizeof captures[0])

static void test_captures_parse(void **state)
{
    for (size_t i = 0; i < NCAPTURES; i++) {
        const capture_t *c = &captures[i];
        weir_client_hello_t ch;
        assert_int_equal(records(c->p, c->n, &ch), WEIR_CH_OK);
        check_hello(&ch, &c->x);
        buf_t *m = unwrap(&g_msg, c->p, c->n);
        assert_int_equal(message(m->b, m->n, &ch), WEIR_CH_OK);
        check_hello(&ch, &c->x);
    }
}

static void test_captures_slices(void **state)
{
    weir_client_hello_t ch;
    /* One record: read in place. */
    assert_int_equal(records(cap_curl_h2, sizeof cap_curl_h2, &ch), WEIR_CH_OK);
    assert_true(within(ch.sni, last_in, last_in_len));
    assert_true(within(ch.alpn, last_in, last_in_len));
    assert_true(weir_client_hello_offers_alpn(&ch, "h2"));
    assert_true(weir_client_hello_offers_alpn(&ch, "http/1.1"));
    /* Two records (as openssl sent it): gathered in scratch. */
    assert_int_equal(records(cap_openssl_frag, sizeof cap_openssl_frag, &ch), WEIR_CH_OK);
    assert_int_equal(cap_openssl_frag[3] << 8 | cap_openssl_frag[4], 512);
    assert_true(within(ch.sni, last_scratch, last_cap));
    assert_true(within(ch.alpn, last_scratch, last_cap));
    assert_true(weir_client_hello_offers_alpn(&ch, "h2"));
    assert_false(weir_client_hello_offers_alpn(&ch, "http/1.1"));
}

static void test_captures_every_truncation(void **state)
{
    for (size_t i = 0; i < NCAPTURES; i++) {
        const capture_t *c = &captures[i];
        weir_client_hello_t ch;
        for (size_t cut = 0; cut < c->n; cut++) {
            assert_int_equal(records(c->p, cut, &ch), WEIR_CH_NEED_MORE);
            assert_zeroed(&ch);
        }
        buf_t *m = unwrap(&g_msg, c->p, c->n);
        for (size_t cut = 0; cut < m->n; cut++) {
            assert_int_equal(message(m->b, cut, &ch), WEIR_CH_NEED_MORE);
            assert_zeroed(&ch);
        }
    }
}

static void test_captures_resplit(void **state)
{
    static const size_t frags[] = {1, 2, 3, 4, 5, 7, 64, 255, 256, 511, 512, 513};
    for (size_t i = 0; i < NCAPTURES; i++) {
        const capture_t *c = &captures[i];
        buf_t *m = unwrap(&g_msg, c->p, c->n);
        for (size_t f = 0; f < sizeof frags / sizeof frags[0]; f++) {
            weir_client_hello_t ch;
            buf_t *r = wrap(m, frags[f]);
            assert_int_equal(records(r->b, r->n, &ch), WEIR_CH_OK);
            check_hello(&ch, &c->x);
            /* and every prefix of the split form waits for more */
            for (size_t cut = 0; cut < r->n; cut += 1 + cut / 64)
                assert_int_equal(records(r->b, cut, &ch), WEIR_CH_NEED_MORE);
        }
    }
}

/* Two records, split at every byte of the message. */
static void test_captures_every_two_record_split(void **state)
{
    for (size_t i = 0; i < NCAPTURES; i++) {
        const capture_t *c = &captures[i];
        buf_t *m = unwrap(&g_msg, c->p, c->n);
        for (size_t at = 1; at < m->n; at++) {
            buf_t *r = &g_rec;
            r->n = 0;
            put8(r, 22), put16(r, 0x0301), put16(r, (unsigned)at), put(r, m->b, at);
            put8(r, 22), put16(r, 0x0303), put16(r, (unsigned)(m->n - at));
            put(r, m->b + at, m->n - at);
            weir_client_hello_t ch;
            assert_int_equal(records(r->b, r->n, &ch), WEIR_CH_OK);
            check_hello(&ch, &c->x);
        }
    }
}

/* What follows the hello's last record belongs to the TLS library: a
 * change_cipher_spec and early data, or anything at all. */
static void test_captures_followed_by_records(void **state)
{
    static const uint8_t after[] = {20, 3, 3, 0, 1, 1, 23, 3, 3, 0, 3, 'a', 'b', 'c', 0xff};
    for (size_t i = 0; i < NCAPTURES; i++) {
        const capture_t *c = &captures[i];
        buf_t *r = &g_rec;
        r->n = 0;
        put(r, c->p, c->n);
        for (size_t k = 1; k <= sizeof after; k++) {
            r->n = c->n;
            put(r, after, k);
            weir_client_hello_t ch;
            assert_int_equal(records(r->b, r->n, &ch), WEIR_CH_OK);
            check_hello(&ch, &c->x);
        }
    }
}

/* One more handshake byte inside the hello's last record is INVALID; a
 * byte after the bare message too. */
static void test_captures_trailing_bytes(void **state)
{
    for (size_t i = 0; i < NCAPTURES; i++) {
        const capture_t *c = &captures[i];
        buf_t *m = unwrap(&g_msg, c->p, c->n);
        put8(m, 2);
        weir_client_hello_t ch;
        assert_int_equal(message(m->b, m->n, &ch), WEIR_CH_INVALID);
        assert_int_equal(message(m->b, m->n - 1, &ch), WEIR_CH_OK);
        for (size_t frag = 100; frag <= 16384; frag += 16284) {
            buf_t *r = wrap(m, frag);
            assert_int_equal(records(r->b, r->n, &ch), WEIR_CH_INVALID);
            assert_zeroed(&ch);
            /* decided from the record header, before the bytes arrive */
            assert_int_equal(records(r->b, r->n - 2, &ch), WEIR_CH_INVALID);
        }
    }
}

static void test_captures_scratch_capacity(void **state)
{
    for (size_t i = 0; i < NCAPTURES; i++) {
        const capture_t *c = &captures[i];
        weir_client_hello_t ch;
        buf_t *m = unwrap(&g_tmp, c->p, c->n);
        /* the limit is the hello's size, however it is split */
        for (size_t frag = 50; frag <= 16384; frag += 16334) {
            buf_t *r = wrap(m, frag);
            assert_int_equal(records_cap(r->b, r->n, m->n, &ch), WEIR_CH_OK);
            check_hello(&ch, &c->x);
            assert_int_equal(records_cap(r->b, r->n, m->n - 1, &ch), WEIR_CH_INVALID);
            assert_zeroed(&ch);
            /* known as soon as the message header is in */
            assert_int_equal(records_cap(r->b, 9, m->n - 1, &ch), WEIR_CH_INVALID);
        }
        assert_int_equal(records_cap(c->p, c->n, 0, &ch), WEIR_CH_INVALID);
    }
}

static void test_captures_bitflips_never_crash(void **state)
{
    /* Not a verdict check: each single-byte change must give one of the
     * four results without reading out of bounds (the guard page). */
    for (size_t i = 0; i < NCAPTURES; i++) {
        const capture_t *c = &captures[i];
        buf_t *r = &g_tmp;
        for (size_t at = 0; at < c->n; at++) {
            static const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
            for (size_t v = 0; v < sizeof vals; v++) {
                weir_client_hello_t ch;
                r->n = 0;
                put(r, c->p, c->n);
                r->b[at] = vals[v];
                int rc = records(r->b, r->n, &ch);
                assert_true(rc >= WEIR_CH_INVALID && rc <= WEIR_CH_OK);
                if (rc != WEIR_CH_OK) assert_zeroed(&ch);
            }
        }
    }
}

/* ---- not TLS ---- */

static void test_not_tls(void **state)
{
    static const struct {
        const char *in;
        size_t n;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24},
        {"G", 1},
        {"\x80\x2e\x01\x03\x01", 5},         /* SSL 2.0-compatible hello */
        {"\x15\x03\x03\x00\x02\x02\x28", 7}, /* an alert first */
        {"\x14\x03\x03\x00\x01\x01", 6},
        {"\x17\x03\x03\x00\x01\x00", 6},
        {"\x00", 1},
        {"\x16\x02", 2}, /* version byte not 3 */
        {"\x16\x00\x00\x00\x05", 5},
        {"\x16\x04\x01\x00\x05\x01\x00\x00\x01\x00", 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        weir_client_hello_t ch;
        assert_int_equal(records((const uint8_t *)cases[i].in, cases[i].n, &ch), WEIR_CH_NOT_TLS);
        assert_zeroed(&ch);
    }
}

static void test_empty_and_tiny_inputs(void **state)
{
    weir_client_hello_t ch;
    assert_int_equal(records((const uint8_t *)"", 0, &ch), WEIR_CH_NEED_MORE);
    assert_int_equal(records((const uint8_t *)"\x16", 1, &ch), WEIR_CH_NEED_MORE);
    assert_int_equal(records((const uint8_t *)"\x16\x03", 2, &ch), WEIR_CH_NEED_MORE);
    assert_int_equal(records((const uint8_t *)"\x16\x03\x01\x02", 4, &ch), WEIR_CH_NEED_MORE);
    assert_int_equal(records((const uint8_t *)"\x16\x03\x01\x02\x00", 5, &ch), WEIR_CH_NEED_MORE);
    assert_int_equal(records((const uint8_t *)"\x16\x03\x01\x02\x00\x01", 6, &ch),
                     WEIR_CH_NEED_MORE);
    assert_int_equal(message((const uint8_t *)"", 0, &ch), WEIR_CH_NEED_MORE);
    assert_int_equal(message((const uint8_t *)"\x01", 1, &ch), WEIR_CH_NEED_MORE);
    assert_int_equal(message((const uint8_t *)"\x01\x00\x00", 3, &ch), WEIR_CH_NEED_MORE);
    assert_int_equal(message((const uint8_t *)"\x01\x00\x00\x00", 4, &ch), WEIR_CH_INVALID);
    assert_int_equal(message((const uint8_t *)"\x02", 1, &ch), WEIR_CH_INVALID);
}

/* ---- the record layer ---- */

static void test_record_not_a_client_hello(void **state)
{
    /* ServerHello, HelloRequest, Certificate, ...: INVALID from the first
     * fragment byte. */
    static const uint8_t types[] = {0, 2, 4, 8, 11, 16, 20, 24, 254, 255};
    weir_client_hello_t ch;
    buf_t *e = exts();
    ext_sni(e, "a.test");
    for (size_t i = 0; i < sizeof types; i++) {
        buf_t *m = hello(e);
        m->b[0] = types[i];
        buf_t *r = wrap(m, 16384);
        assert_int_equal(records(r->b, 6, &ch), WEIR_CH_INVALID);
        assert_int_equal(records(r->b, r->n, &ch), WEIR_CH_INVALID);
        r = wrap(m, 1);
        assert_int_equal(records(r->b, r->n, &ch), WEIR_CH_INVALID);
        expect_invalid(m);
    }
}

/* Splits m into two records and writes bad in place of the second record's
 * header byte at index k. */
static int second_record_with(const buf_t *m, size_t k, uint8_t bad)
{
    buf_t *r = wrap(m, 20);
    r->b[25 + k] = bad;
    weir_client_hello_t ch;
    return records(r->b, r->n, &ch);
}

static void test_record_non_handshake_amid_hello(void **state)
{
    buf_t *e = exts();
    ext_sni(e, "a.test");
    buf_t *m = hello(e);
    assert_int_equal(second_record_with(m, 0, 22), WEIR_CH_OK);
    assert_int_equal(second_record_with(m, 0, 20), WEIR_CH_INVALID); /* change_cipher_spec */
    assert_int_equal(second_record_with(m, 0, 21), WEIR_CH_INVALID); /* alert */
    assert_int_equal(second_record_with(m, 0, 23), WEIR_CH_INVALID); /* application_data */
    assert_int_equal(second_record_with(m, 0, 24), WEIR_CH_INVALID); /* heartbeat */
    assert_int_equal(second_record_with(m, 1, 2), WEIR_CH_INVALID);  /* version */
    assert_int_equal(second_record_with(m, 2, 0), WEIR_CH_OK);       /* minor: any */
    /* decided as soon as the byte is in */
    buf_t *r = wrap(m, 20);
    r->b[25] = 21;
    weir_client_hello_t ch;
    assert_int_equal(records(r->b, 26, &ch), WEIR_CH_INVALID);
    /* a whole alert record between two fragments */
    buf_t *s = &g_tmp;
    s->n = 0;
    put(s, r->b, 25);
    put(s, "\x15\x03\x03\x00\x02\x01\x00", 7);
    r->b[25] = 22;
    put(s, r->b + 25, r->n - 25);
    assert_int_equal(records(s->b, s->n, &ch), WEIR_CH_INVALID);
}

static void test_record_lengths(void **state)
{
    weir_client_hello_t ch;
    buf_t *e = exts();
    ext_sni(e, "a.test");
    buf_t *m = hello(e);
    /* zero-length first record, and zero-length record amid the hello */
    assert_int_equal(records((const uint8_t *)"\x16\x03\x01\x00\x00", 5, &ch), WEIR_CH_INVALID);
    buf_t *r = wrap(m, 30);
    buf_t *s = &g_tmp;
    s->n = 0;
    put(s, r->b, 35);
    put(s, "\x16\x03\x03\x00\x00", 5);
    put(s, r->b + 35, r->n - 35);
    assert_int_equal(records(s->b, s->n, &ch), WEIR_CH_INVALID);
    /* over 2^14 + 256 */
    assert_int_equal(records((const uint8_t *)"\x16\x03\x01\x41\x01", 5, &ch), WEIR_CH_INVALID);
    assert_int_equal(records((const uint8_t *)"\x16\x03\x01\xff\xff\x01", 6, &ch), WEIR_CH_INVALID);
    assert_int_equal(records((const uint8_t *)"\x16\x03\x01\x41\x00", 5, &ch), WEIR_CH_NEED_MORE);
    /* the limit, second record */
    r = wrap(m, 30);
    r->b[35 + 3] = 0x41, r->b[35 + 4] = 0x01;
    assert_int_equal(records(r->b, 35 + 5, &ch), WEIR_CH_INVALID);
    /* a record that claims more than the hello has left: INVALID at once */
    r = wrap(m, 30);
    size_t last = r->n - 5 - (m->n % 30 ? m->n % 30 : 30);
    r->b[last + 4] += 1;
    assert_int_equal(records(r->b, last + 5, &ch), WEIR_CH_INVALID);
}

/* A hello whose single record is exactly 2^14 + 256 bytes, then one more. */
static void test_record_maximum(void **state)
{
    weir_client_hello_t ch;
    for (size_t extra = 0; extra < 2; extra++) {
        buf_t *e = exts();
        ext_sni(e, "big.test");
        size_t base = hello(e)->n;
        e = exts();
        ext_sni(e, "big.test");
        put16(e, 21); /* padding */
        size_t pad = WEIR_CH_MAX_RECORD + extra - base - 4;
        put16(e, (unsigned)pad);
        fill(e, 0, pad);
        buf_t *m = hello(e);
        assert_int_equal(m->n, WEIR_CH_MAX_RECORD + extra);
        buf_t *r = wrap(m, 65535);
        int rc = records(r->b, r->n, &ch);
        assert_int_equal(rc, extra ? WEIR_CH_INVALID : WEIR_CH_OK);
        /* in two records the same hello is fine */
        expect_all(m, WEIR_CH_OK, &(expect_t){0x0303, 0x0303, "big.test", NULL});
    }
}

/* The handshake header itself split across records. */
static void test_record_header_split(void **state)
{
    buf_t *e = exts();
    ext_sni(e, "split.test");
    ext_alpn(e, "h2", NULL);
    buf_t *m = hello(e);
    expect_t x = {0x0303, 0x0303, "split.test", "h2"};
    for (size_t first = 1; first <= 4; first++) {
        buf_t *r = &g_rec;
        r->n = 0;
        put8(r, 22), put16(r, 0x0301), put16(r, (unsigned)first), put(r, m->b, first);
        put8(r, 22), put16(r, 0x0301), put16(r, (unsigned)(m->n - first));
        put(r, m->b + first, m->n - first);
        weir_client_hello_t ch;
        assert_int_equal(records(r->b, r->n, &ch), WEIR_CH_OK);
        check_hello(&ch, &x);
        for (size_t cut = 0; cut < r->n; cut++)
            assert_int_equal(records(r->b, cut, &ch), WEIR_CH_NEED_MORE);
        /* the record that completes the header runs one byte past the
         * hello: INVALID once the header is in, before the rest arrives */
        size_t second = 5 + first;
        r->b[second + 4] += 1;
        put8(r, 2);
        assert_int_equal(records(r->b, r->n, &ch), WEIR_CH_INVALID);
        assert_int_equal(records(r->b, second + 5 + (4 - first), &ch), WEIR_CH_INVALID);
        if (first < 4)
            assert_int_equal(records(r->b, second + 5 + 3 - first, &ch), WEIR_CH_NEED_MORE);
    }
}

/* ---- the message header ---- */

static void test_message_length_bounds(void **state)
{
    weir_client_hello_t ch;
    /* the longest body a ClientHello can have: 131396 bytes */
    assert_int_equal(message((const uint8_t *)"\x01\x02\x01\x44", 4, &ch), WEIR_CH_NEED_MORE);
    assert_int_equal(message((const uint8_t *)"\x01\x02\x01\x45", 4, &ch), WEIR_CH_INVALID);
    assert_int_equal(message((const uint8_t *)"\x01\xff\xff\xff", 4, &ch), WEIR_CH_INVALID);
    assert_int_equal(records((const uint8_t *)"\x16\x03\x01\x00\x04\x01\x02\x01\x45", 9, &ch),
                     WEIR_CH_INVALID);
    /* a length field shorter or longer than the body */
    buf_t *e = exts();
    ext_sni(e, "a.test");
    head_t h = STD;
    h.msg_len_delta = -1;
    expect_invalid(hello_with(&h, e));
    h.msg_len_delta = -40;
    expect_invalid(hello_with(&h, e));
    h.msg_len_delta = 1; /* one byte more than there is: the byte after is not ours */
    buf_t *m = hello_with(&h, e);
    assert_int_equal(message(m->b, m->n, &ch), WEIR_CH_NEED_MORE);
    put8(m, 0);
    assert_int_equal(message(m->b, m->n, &ch), WEIR_CH_INVALID);
}

/* The largest ClientHello the length fields allow: 65534 bytes of cipher
 * suites, 255 compression methods, 65535 bytes of extensions. */
static void test_message_maximum(void **state)
{
    buf_t *e = exts();
    ext_sni(e, "max.test");
    ext_alpn(e, "h2", NULL);
    put16(e, 21);
    size_t pad = 65535 - e->n - 2;
    put16(e, (unsigned)pad);
    fill(e, 0, pad);
    char comp[255];
    memset(comp, 1, sizeof comp);
    comp[254] = 0;
    head_t h = {0x0303, 32, 65534, comp, 255, false, 0, 0};
    buf_t *m = hello_with(&h, e);
    assert_int_equal(m->n, 4 + 131396);
    weir_client_hello_t ch;
    expect_t x = {0x0303, 0x0303, "max.test", "h2"};
    assert_int_equal(message(m->b, m->n, &ch), WEIR_CH_OK);
    check_hello(&ch, &x);
    buf_t *r = wrap(m, 16384);
    assert_int_equal(records_cap(r->b, r->n, m->n, &ch), WEIR_CH_OK);
    check_hello(&ch, &x);
    assert_int_equal(records_cap(r->b, r->n, SCRATCH, &ch), WEIR_CH_INVALID);
}

/* ---- the body ---- */

static void test_body_legacy_version(void **state)
{
    buf_t *e = exts();
    ext_sni(e, "v.test");
    head_t h = STD;
    static const unsigned ok[] = {0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x03ff};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        h.version = ok[i];
        expect_all(hello_with(&h, e), WEIR_CH_OK, &(expect_t){ok[i], ok[i], "v.test", NULL});
    }
    static const unsigned bad[] = {0x0002, 0x0200, 0x0203, 0x0403, 0xfeff, 0x7f1c, 0x0a0a};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h.version = bad[i];
        expect_invalid(hello_with(&h, e));
    }
}

static void test_body_too_short(void **state)
{
    /* cut inside each fixed field, length fields made to agree */
    buf_t *e = exts();
    ext_sni(e, "a.test");
    buf_t *full = hello(e);
    size_t n = full->n;
    static const size_t cuts[] = {4, 5, 6, 20, 37, 38, 39, 60, 71, 72, 73, 80, 81, 82};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        buf_t *m = hello(e);
        assert_int_equal(m->n, n);
        m->n = cuts[i];
        size_t body = m->n - 4;
        m->b[1] = (uint8_t)(body >> 16), m->b[2] = (uint8_t)(body >> 8), m->b[3] = (uint8_t)body;
        expect_invalid(m);
    }
}

static void test_body_session_id(void **state)
{
    buf_t *e = exts();
    ext_sni(e, "s.test");
    head_t h = STD;
    for (size_t len = 0; len <= 32; len += 8) {
        h.sid_len = len;
        expect_all(hello_with(&h, e), WEIR_CH_OK, &(expect_t){0x0303, 0x0303, "s.test", NULL});
    }
    h.sid_len = 33;
    expect_invalid(hello_with(&h, e));
    h.sid_len = 255;
    expect_invalid(hello_with(&h, e));
}

static void test_body_cipher_suites(void **state)
{
    buf_t *e = exts();
    ext_sni(e, "c.test");
    head_t h = STD;
    h.suites_len = 2;
    expect_all(hello_with(&h, e), WEIR_CH_OK, &(expect_t){0x0303, 0x0303, "c.test", NULL});
    h.suites_len = 0;
    expect_invalid(hello_with(&h, e));
    h.suites_len = 1;
    expect_invalid(hello_with(&h, e));
    h.suites_len = 7;
    expect_invalid(hello_with(&h, e));
    /* a length running past the message */
    buf_t *m = hello(e);
    m->b[71] = 0x40;
    expect_invalid(m);
}

static void test_body_compression(void **state)
{
    buf_t *e = exts();
    ext_sni(e, "z.test");
    head_t h = STD;
    expect_t x = {0x0303, 0x0303, "z.test", NULL};
    h.comp = "\x01\x00", h.comp_len = 2; /* DEFLATE offered too: still valid */
    expect_all(hello_with(&h, e), WEIR_CH_OK, &x);
    h.comp = "", h.comp_len = 0;
    expect_invalid(hello_with(&h, e));
    h.comp = "\x01", h.comp_len = 1; /* no null method */
    expect_invalid(hello_with(&h, e));
    h.comp = "\x01\x40", h.comp_len = 2;
    expect_invalid(hello_with(&h, e));
}

static void test_body_extension_block(void **state)
{
    expect_t x = {0x0303, 0x0303, NULL, NULL};
    /* absent (SSL 3.0 / early TLS style) and empty */
    head_t h = STD;
    h.no_extensions = true;
    expect_all(hello_with(&h, NULL), WEIR_CH_OK, &x);
    h.version = 0x0300;
    expect_all(hello_with(&h, NULL), WEIR_CH_OK, &(expect_t){0x0300, 0x0300, NULL, NULL});
    expect_all(hello(exts()), WEIR_CH_OK, &x);
    /* one stray byte where the block's length would be */
    buf_t *m = hello_with(&STD, NULL);
    m->n -= 1;
    m->b[3] -= 1;
    expect_invalid(m);
    /* the block's length shorter or longer than the bytes that follow */
    buf_t *e = exts();
    ext_sni(e, "a.test");
    ext_alpn(e, "h2", NULL);
    h = STD;
    for (long d = -3; d <= 3; d++) {
        if (d == 0) continue;
        h.ext_len_delta = d;
        expect_invalid(hello_with(&h, e));
    }
    /* an extension whose length runs past the block */
    e = exts();
    ext_sni(e, "a.test");
    put16(e, 0x1234), put16(e, 5), put(e, "abcd", 4);
    expect_invalid(hello(e));
    /* an extension header cut short */
    e = exts();
    ext_sni(e, "a.test");
    put16(e, 0x1234), put8(e, 0);
    expect_invalid(hello(e));
    e = exts();
    put8(e, 0);
    expect_invalid(hello(e));
}

static void test_body_unknown_extensions(void **state)
{
    buf_t *e = exts();
    ext_raw(e, 0xffff, "", 0);
    ext_raw(e, 0xfffe, "xyz", 3);
    ext_sni(e, "u.test");
    ext_raw(e, 0x1234, "\x00\x00\x00", 3);
    ext_raw(e, 0x0000 + 1, "\x01", 1);                             /* max_fragment_length */
    ext_raw(e, 0xfe0d, "\x00\x00\x01\x00\x01\x01\x00\x00\x00", 9); /* ECH outer, opaque here */
    expect_all(hello(e), WEIR_CH_OK, &(expect_t){0x0303, 0x0303, "u.test", NULL});
}

/* Thousands of extensions, each type once: fine, and fast. */
static void test_body_many_extensions(void **state)
{
    buf_t *e = exts();
    for (unsigned t = 100; t < 100 + 16000; t++)
        ext_raw(e, t, "", 0);
    ext_sni(e, "many.test");
    buf_t *m = hello(e);
    expect_all(m, WEIR_CH_OK, &(expect_t){0x0303, 0x0303, "many.test", NULL});
    ext_raw(e, 100 + 15999, "", 0);
    expect_invalid(hello(e));
}

static void test_body_duplicate_extensions(void **state)
{
    static const unsigned types[] = {0, 16, 43, 10, 13, 51, 0x0a0a, 0xfafa, 0xffff, 0x1234};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        buf_t *e = exts();
        if (types[i] == 0)
            ext_sni(e, "a.test"), ext_alpn(e, "h2", NULL), ext_sni(e, "b.test");
        else if (types[i] == 16)
            ext_alpn(e, "h2", NULL), ext_sni(e, "a.test"), ext_alpn(e, "h2", NULL);
        else if (types[i] == 43)
            ext_versions(e, 0x0304, 0), ext_versions(e, 0x0304, 0);
        else
            ext_raw(e, types[i], "", 0), ext_sni(e, "a.test"), ext_raw(e, types[i], "x", 1);
        expect_invalid(hello(e));
    }
}

/* pre_shared_key must be the last extension (RFC 8446 §4.2.11). */
static void test_body_pre_shared_key_last(void **state)
{
    static const char psk[] = "\x00\x06\x00\x01\x61\x00\x00\x00\x00\x03\x02\x00\x00";
    buf_t *e = exts();
    ext_sni(e, "p.test");
    ext_raw(e, 41, psk, sizeof psk - 1);
    expect_all(hello(e), WEIR_CH_OK, &(expect_t){0x0303, 0x0303, "p.test", NULL});
    ext_raw(e, 45, "\x01\x01", 2);
    expect_invalid(hello(e));
    e = exts();
    ext_raw(e, 41, "", 0);
    ext_sni(e, "p.test");
    expect_invalid(hello(e));
}

/* ---- server_name ---- */

static void test_sni_forms(void **state)
{
    static const char *names[] = {"a",
                                  "Example.COM",  /* case kept */
                                  "example.com.", /* trailing dot kept */
                                  "xn--bcher-kva.example",
                                  "*.odd but sent", /* checked by the caller, not here */
                                  "127.0.0.1"};     /* not allowed by RFC 6066, kept */
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        buf_t *e = exts();
        ext_sni(e, names[i]);
        expect_all(hello(e), WEIR_CH_OK, &(expect_t){0x0303, 0x0303, names[i], NULL});
    }
    /* a long one */
    static char longname[60001];
    memset(longname, 'a', 60000);
    buf_t *e = exts();
    ext_sni(e, longname);
    expect_all(hello(e), WEIR_CH_OK, &(expect_t){0x0303, 0x0303, longname, NULL});
}

static void test_sni_host_name_rules(void **state)
{
    buf_t *e;
    /* empty host_name */
    e = exts();
    ext_raw(e, 0, "\x00\x03\x00\x00\x00", 5);
    expect_invalid(hello(e));
    /* NUL inside */
    e = exts();
    ext_raw(e, 0, "\x00\x06\x00\x00\x03\x61\x00\x62", 8);
    expect_invalid(hello(e));
    e = exts();
    ext_raw(e, 0, "\x00\x06\x00\x00\x03\x61\x62\x00", 8);
    expect_invalid(hello(e));
    /* two host_name entries, same or different */
    e = exts();
    ext_raw(e, 0, "\x00\x08\x00\x00\x01\x61\x00\x00\x01\x62", 10);
    expect_invalid(hello(e));
    e = exts();
    ext_raw(e, 0, "\x00\x08\x00\x00\x01\x61\x00\x00\x01\x61", 10);
    expect_invalid(hello(e));
    /* another name type (RFC 6066: 16-bit length) is skipped, before or after */
    expect_t x = {0x0303, 0x0303, "a", NULL};
    e = exts();
    ext_raw(e, 0, "\x00\x09\x07\x00\x02\x7a\x7a\x00\x00\x01\x61", 11);
    expect_all(hello(e), WEIR_CH_OK, &x);
    e = exts();
    ext_raw(e, 0, "\x00\x09\x00\x00\x01\x61\xff\x00\x02\x7a\x7a", 11);
    expect_all(hello(e), WEIR_CH_OK, &x);
    /* ...and may be empty; alone, it leaves no SNI */
    e = exts();
    ext_raw(e, 0, "\x00\x03\x07\x00\x00", 5);
    expect_all(hello(e), WEIR_CH_OK, &(expect_t){0x0303, 0x0303, NULL, NULL});
    /* but at most once per type */
    e = exts();
    ext_raw(e, 0, "\x00\x06\x07\x00\x00\x07\x00\x00", 8);
    expect_invalid(hello(e));
}

static void test_sni_lengths(void **state)
{
    static const struct {
        const char *data;
        size_t n;
    } bad[] = {
        {"", 0},                                 /* empty extension: only ServerHello's form */
        {"\x00", 1},                             /* list length cut */
        {"\x00\x00", 2},                         /* empty list */
        {"\x00\x05\x00\x00\x01\x61", 6},         /* list longer than the extension */
        {"\x00\x03\x00\x00\x01\x61", 6},         /* list shorter: the name runs past it */
        {"\x00\x04\x00\x00\x01\x61\x00", 7},     /* a byte after the list */
        {"\x00\x04\x00\x00\x02\x61", 6},         /* name runs past the list */
        {"\x00\x01\x00", 3},                     /* entry: type only */
        {"\x00\x02\x00\x00", 4},                 /* entry: half a length */
        {"\x00\x04\x00\x00\x00\x61", 6},         /* empty name, then a stray byte */
        {"\x00\x05\x00\x00\x01\x61\x00", 7},     /* a second entry: type only */
        {"\x00\x06\x00\x00\x01\x61\x00\x00", 8}, /* a second entry cut short */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_t *e = exts();
        ext_raw(e, 0, bad[i].data, bad[i].n);
        expect_invalid(hello(e));
    }
}

/* ---- ALPN ---- */

static void test_alpn_lists(void **state)
{
    buf_t *e = exts();
    ext_alpn(e, "h2", "http/1.1", "acme-tls/1", "h3", NULL);
    buf_t *m = hello(e);
    expect_all(m, WEIR_CH_OK, &(expect_t){0x0303, 0x0303, NULL, "h2,http/1.1,acme-tls/1,h3"});
    weir_client_hello_t ch;
    assert_int_equal(message(m->b, m->n, &ch), WEIR_CH_OK);
    weir_slice_t s;
    assert_true(weir_client_hello_alpn_at(&ch, 2, &s));
    assert_true(weir_slice_eq(s, WEIR_SLICE_LIT("acme-tls/1")));
    assert_false(weir_client_hello_alpn_at(&ch, 4, &s));
    assert_false(weir_client_hello_alpn_at(&ch, (size_t)-1, &s));
    /* exact matches only */
    assert_true(weir_client_hello_offers_alpn(&ch, "h3"));
    assert_false(weir_client_hello_offers_alpn(&ch, "h"));
    assert_false(weir_client_hello_offers_alpn(&ch, "h2c"));
    assert_false(weir_client_hello_offers_alpn(&ch, "H2"));
    assert_false(weir_client_hello_offers_alpn(&ch, "http/1.0"));
    assert_false(weir_client_hello_offers_alpn(&ch, ""));
    /* a 255-byte name, and binary bytes */
    char name[256];
    memset(name, 'p', 255);
    name[255] = 0;
    e = exts();
    ext_alpn(e, "\x01\x02\xff", name, NULL);
    m = hello(e);
    assert_int_equal(message(m->b, m->n, &ch), WEIR_CH_OK);
    assert_true(weir_client_hello_offers_alpn(&ch, name));
    assert_true(weir_client_hello_offers_alpn(&ch, "\x01\x02\xff"));
    assert_true(weir_client_hello_alpn_at(&ch, 1, &s));
    assert_int_equal(s.len, 255);
}

static void test_alpn_malformed(void **state)
{
    static const struct {
        const char *data;
        size_t n;
    } bad[] = {
        {"", 0},                   /* no list */
        {"\x00", 1},               /* length cut */
        {"\x00\x00", 2},           /* empty list */
        {"\x00\x01\x00", 3},       /* an empty name (and a list under 2 bytes) */
        {"\x00\x04\x02h2\x00", 6}, /* an empty name after a good one */
        {"\x00\x03\x03h2", 5},     /* name runs past the list */
        {"\x00\x04\x02h2", 5},     /* list longer than the extension */
        {"\x00\x02\x01h2", 5},     /* list shorter: bytes left over */
        {"\x00\x03\x02h2\x00", 6}, /* a byte after the list */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_t *e = exts();
        ext_raw(e, 16, bad[i].data, bad[i].n);
        expect_invalid(hello(e));
    }
}

/* alpn_at never trusts a structure it did not fill. */
static void test_alpn_at_defensive(void **state)
{
    weir_client_hello_t ch;
    memset(&ch, 0, sizeof ch);
    weir_slice_t s;
    assert_false(weir_client_hello_alpn_at(&ch, 0, &s));
    assert_false(weir_client_hello_offers_alpn(&ch, "h2"));
    ch.has_alpn = true;
    ch.alpn = weir_slice("\x02h2\x05h", 5);
    assert_true(weir_client_hello_alpn_at(&ch, 0, &s));
    assert_false(weir_client_hello_alpn_at(&ch, 1, &s));
    ch.alpn = weir_slice("\x00\x02h2", 4);
    assert_false(weir_client_hello_alpn_at(&ch, 0, &s));
    assert_false(weir_client_hello_offers_alpn(&ch, "h2"));
    ch.has_alpn = false;
    ch.alpn = weir_slice("\x02h2", 3);
    assert_false(weir_client_hello_offers_alpn(&ch, "h2"));
}

/* ---- supported_versions and GREASE ---- */

static void test_versions(void **state)
{
    static const struct {
        unsigned v[4];
        unsigned max;
    } cases[] = {
        {{0x0304, 0x0303}, 0x0304},
        {{0x0303, 0x0304}, 0x0304}, /* order does not matter */
        {{0x0303, 0x0302, 0x0301}, 0x0303},
        {{0x0a0a, 0x0304, 0x0303}, 0x0304},
        {{0x0304, 0xfafa}, 0x0304},
        {{0x3a3a}, 0},      /* only GREASE: nothing real offered */
        {{0x0a1a}, 0x0a1a}, /* not GREASE (bytes differ) */
        {{0x0b0b}, 0x0b0b}, /* not GREASE (low nibble not a) */
        {{0x0301}, 0x0301},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_t *e = exts();
        ext_versions(e, cases[i].v[0], cases[i].v[1], cases[i].v[2], cases[i].v[3], 0);
        expect_all(hello(e), WEIR_CH_OK, &(expect_t){0x0303, cases[i].max, NULL, NULL});
    }
    /* 127 versions: the most that fits in 254 bytes */
    buf_t *e = exts();
    put16(e, 43), put16(e, 255), put8(e, 254);
    for (unsigned v = 0; v < 127; v++)
        put16(e, 0x0200 + v);
    expect_all(hello(e), WEIR_CH_OK, &(expect_t){0x0303, 0x027e, NULL, NULL});
}

static void test_versions_malformed(void **state)
{
    static const struct {
        const char *data;
        size_t n;
    } bad[] = {
        {"", 0},
        {"\x00", 1},             /* empty list */
        {"\x01\x03", 2},         /* odd */
        {"\x03\x03\x04\x03", 4}, /* odd */
        {"\x02\x03\x04\x03", 4}, /* a byte after the list */
        {"\x04\x03\x04", 3},     /* list longer than the extension */
        {"\x02\x03", 2},         /* list longer than the extension */
        {"\xff\x03\x04", 3},     /* 255: odd, and past the end */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_t *e = exts();
        ext_raw(e, 43, bad[i].data, bad[i].n);
        expect_invalid(hello(e));
    }
}

/* A hello shaped like Chrome's: GREASE cipher suite, GREASE extensions
 * first and last, GREASE in supported_versions, supported_groups and
 * key_share, an ECH extension; TLS 1.3 with h2. */
static void test_grease_hello(void **state)
{
    buf_t *e = exts();
    ext_raw(e, 0x2a2a, "", 0);
    ext_sni(e, "www.example.org");
    ext_raw(e, 23, "", 0);
    ext_raw(e, 0xff01, "\x00", 1);
    ext_raw(e, 10, "\x00\x08\xba\xba\x00\x1d\x00\x17\x00\x18", 10);
    ext_raw(e, 11, "\x01\x00", 2);
    ext_raw(e, 35, "", 0);
    ext_alpn(e, "h2", "http/1.1", NULL);
    ext_raw(e, 5, "\x01\x00\x00\x00\x00", 5);
    ext_raw(e, 13, "\x00\x04\x04\x03\x08\x04", 6);
    ext_raw(e, 18, "", 0);
    put16(e, 51), put16(e, 2 + 5 + 36), put16(e, 5 + 36);
    put16(e, 0xbaba), put16(e, 1), put8(e, 0);
    put16(e, 0x001d), put16(e, 32), fill(e, 0x42, 32);
    ext_raw(e, 45, "\x01\x01", 2);
    ext_versions(e, 0x6a6a, 0x0304, 0x0303, 0);
    ext_raw(e, 27, "\x02\x00\x02", 3);
    ext_raw(e, 17513, "\x00\x03\x02h2", 6);
    ext_raw(e, 0xfe0d, "\x00\x00\x01\x00\x01\x33\x00\x20", 8);
    ext_raw(e, 0x4a4a, "\x00", 1);
    buf_t *m = hello(e);
    /* a GREASE cipher suite first */
    m->b[73] = 0x8a, m->b[74] = 0x8a;
    expect_all(m, WEIR_CH_OK, &(expect_t){0x0303, 0x0304, "www.example.org", "h2,http/1.1"});
}

static void test_tls12_only_hellos(void **state)
{
    /* no supported_versions: max_version is legacy_version */
    buf_t *e = exts();
    ext_sni(e, "old.test");
    ext_alpn(e, "http/1.1", NULL);
    ext_raw(e, 0xff01, "\x00", 1);
    head_t h = STD;
    expect_all(hello_with(&h, e), WEIR_CH_OK, &(expect_t){0x0303, 0x0303, "old.test", "http/1.1"});
    h.version = 0x0301;
    h.sid_len = 0;
    expect_all(hello_with(&h, e), WEIR_CH_OK, &(expect_t){0x0301, 0x0301, "old.test", "http/1.1"});
    /* supported_versions listing TLS 1.2 and 1.1 only */
    e = exts();
    ext_versions(e, 0x0303, 0x0302, 0);
    ext_sni(e, "old.test");
    expect_all(hello(e), WEIR_CH_OK, &(expect_t){0x0303, 0x0303, "old.test", NULL});
}

/* ---- results leave no stale fields ---- */

static void test_output_reset(void **state)
{
    weir_client_hello_t ch;
    assert_int_equal(records(cap_curl_h2, sizeof cap_curl_h2, &ch), WEIR_CH_OK);
    assert_true(ch.has_sni);
    /* an SNI and ALPN parsed before the bad extension must not survive */
    buf_t *e = exts();
    ext_sni(e, "gone.test");
    ext_alpn(e, "h2", NULL);
    ext_raw(e, 43, "\x01", 1);
    buf_t *m = hello(e);
    assert_int_equal(message(m->b, m->n, &ch), WEIR_CH_INVALID);
    assert_zeroed(&ch);
    m = wrap(m, 40);
    assert_int_equal(records(m->b, m->n, &ch), WEIR_CH_INVALID);
    assert_zeroed(&ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captures_parse),
        cmocka_unit_test(test_captures_slices),
        cmocka_unit_test(test_captures_every_truncation),
        cmocka_unit_test(test_captures_resplit),
        cmocka_unit_test(test_captures_every_two_record_split),
        cmocka_unit_test(test_captures_followed_by_records),
        cmocka_unit_test(test_captures_trailing_bytes),
        cmocka_unit_test(test_captures_scratch_capacity),
        cmocka_unit_test(test_captures_bitflips_never_crash),
        cmocka_unit_test(test_not_tls),
        cmocka_unit_test(test_empty_and_tiny_inputs),
        cmocka_unit_test(test_record_not_a_client_hello),
        cmocka_unit_test(test_record_non_handshake_amid_hello),
        cmocka_unit_test(test_record_lengths),
        cmocka_unit_test(test_record_maximum),
        cmocka_unit_test(test_record_header_split),
        cmocka_unit_test(test_message_length_bounds),
        cmocka_unit_test(test_message_maximum),
        cmocka_unit_test(test_body_legacy_version),
        cmocka_unit_test(test_body_too_short),
        cmocka_unit_test(test_body_session_id),
        cmocka_unit_test(test_body_cipher_suites),
        cmocka_unit_test(test_body_compression),
        cmocka_unit_test(test_body_extension_block),
        cmocka_unit_test(test_body_unknown_extensions),
        cmocka_unit_test(test_body_many_extensions),
        cmocka_unit_test(test_body_duplicate_extensions),
        cmocka_unit_test(test_body_pre_shared_key_last),
        cmocka_unit_test(test_sni_forms),
        cmocka_unit_test(test_sni_host_name_rules),
        cmocka_unit_test(test_sni_lengths),
        cmocka_unit_test(test_alpn_lists),
        cmocka_unit_test(test_alpn_malformed),
        cmocka_unit_test(test_alpn_at_defensive),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_versions_malformed),
        cmocka_unit_test(test_grease_hello),
        cmocka_unit_test(test_tls12_only_hellos),
        cmocka_unit_test(test_output_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
