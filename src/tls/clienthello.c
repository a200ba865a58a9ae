/* TLS ClientHello parser (see clienthello.h). */
#include "tls/clienthello.h"

#include <string.h>

#define MAX_RECORD 16384    /* TLSPlaintext.length limit (RFC 8446 §5.1) */
#define MAX_EXTENSIONS 128

#define EXT_SERVER_NAME 0
#define EXT_ALPN 16
#define EXT_SUPPORTED_VERSIONS 43

/* A bounded reader: every get fails once the input is short. */
typedef struct {
    const uint8_t *p;
    size_t len, off;
} rd_t;

static bool get8(rd_t *r, unsigned *v)
{
    if (r->len - r->off < 1)
        return false;
    *v = r->p[r->off++];
    return true;
}

static bool get16(rd_t *r, unsigned *v)
{
    if (r->len - r->off < 2)
        return false;
    *v = (unsigned)r->p[r->off] << 8 | r->p[r->off + 1];
    r->off += 2;
    return true;
}

static bool skip(rd_t *r, size_t n)
{
    if (r->len - r->off < n)
        return false;
    r->off += n;
    return true;
}

/* A sub-reader over the next n bytes. */
static bool sub(rd_t *r, size_t n, rd_t *out)
{
    if (r->len - r->off < n)
        return false;
    *out = (rd_t){r->p + r->off, n, 0};
    r->off += n;
    return true;
}

static bool is_grease(unsigned v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

static int parse_server_name(rd_t *e, weir_client_hello_t *out)
{
    unsigned list;
    rd_t l;
    if (!get16(e, &list) || list != e->len - e->off || list == 0 || !sub(e, list, &l))
        return WEIR_CH_INVALID;
    while (l.off < l.len) {
        unsigned type, n;
        if (!get8(&l, &type) || !get16(&l, &n) || l.len - l.off < n)
            return WEIR_CH_INVALID;
        const uint8_t *name = l.p + l.off;
        l.off += n;
        if (type != 0)
            continue;
        if (out->has_sni || n == 0 || memchr(name, 0, n))
            return WEIR_CH_INVALID;
        out->has_sni = true;
        out->sni = weir_slice((const char *)name, n);
    }
    return WEIR_CH_OK;
}

static int parse_alpn(rd_t *e, weir_client_hello_t *out)
{
    unsigned list;
    rd_t l;
    if (!get16(e, &list) || list != e->len - e->off || list == 0 || !sub(e, list, &l))
        return WEIR_CH_INVALID;
    while (l.off < l.len) {
        unsigned n;
        if (!get8(&l, &n) || n == 0 || !skip(&l, n))
            return WEIR_CH_INVALID;
    }
    out->has_alpn = true;
    out->alpn = weir_slice((const char *)l.p, l.len);
    return WEIR_CH_OK;
}

static int parse_versions(rd_t *e, weir_client_hello_t *out)
{
    unsigned n;
    if (!get8(e, &n) || n != e->len - e->off || n < 2 || n % 2)
        return WEIR_CH_INVALID;
    unsigned best = 0;
    for (unsigned i = 0; i < n; i += 2) {
        unsigned v = 0;
        get16(e, &v);
        if (!is_grease(v) && v > best)
            best = v;
    }
    if (best)
        out->max_version = (uint16_t)best;
    return WEIR_CH_OK;
}

/* The ClientHello body (after the 4-byte handshake header). */
static int parse_body(const uint8_t *p, size_t len, weir_client_hello_t *out)
{
    rd_t r = {p, len, 0};
    unsigned v, n;
    memset(out, 0, sizeof *out);
    if (!get16(&r, &v) || !skip(&r, 32))
        return WEIR_CH_INVALID;
    out->legacy_version = (uint16_t)v;
    out->max_version = (uint16_t)v;
    if (!get8(&r, &n) || n > 32 || !skip(&r, n)) /* legacy_session_id */
        return WEIR_CH_INVALID;
    if (!get16(&r, &n) || n < 2 || n % 2 || !skip(&r, n)) /* cipher_suites */
        return WEIR_CH_INVALID;
    if (!get8(&r, &n) || n < 1 || !skip(&r, n)) /* legacy_compression_methods */
        return WEIR_CH_INVALID;
    if (r.off == r.len)
        return WEIR_CH_OK; /* no extensions (TLS 1.2 and older may omit them) */
    rd_t exts;
    if (!get16(&r, &n) || n != r.len - r.off || !sub(&r, n, &exts))
        return WEIR_CH_INVALID;
    unsigned seen[MAX_EXTENSIONS];
    size_t nseen = 0;
    while (exts.off < exts.len) {
        unsigned type, elen;
        rd_t e;
        if (!get16(&exts, &type) || !get16(&exts, &elen) || !sub(&exts, elen, &e))
            return WEIR_CH_INVALID;
        for (size_t i = 0; i < nseen; i++)
            if (seen[i] == type)
                return WEIR_CH_INVALID; /* RFC 8446 §4.2: at most one of each */
        if (nseen == MAX_EXTENSIONS)
            return WEIR_CH_INVALID;
        seen[nseen++] = type;
        int rc = WEIR_CH_OK;
        if (type == EXT_SERVER_NAME)
            rc = parse_server_name(&e, out);
        else if (type == EXT_ALPN)
            rc = parse_alpn(&e, out);
        else if (type == EXT_SUPPORTED_VERSIONS)
            rc = parse_versions(&e, out);
        if (rc != WEIR_CH_OK)
            return rc;
    }
    return WEIR_CH_OK;
}

int weir_client_hello_parse_message(const uint8_t *p, size_t len, weir_client_hello_t *out)
{
    if (len == 0)
        return WEIR_CH_NEED_MORE;
    if (p[0] != 1)
        return WEIR_CH_INVALID;
    if (len < 4)
        return WEIR_CH_NEED_MORE;
    size_t body = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    if (len - 4 < body)
        return WEIR_CH_NEED_MORE;
    return parse_body(p + 4, body, out);
}

int weir_client_hello_parse_records(const uint8_t *p, size_t len, uint8_t *scratch, size_t cap,
                                    weir_client_hello_t *out)
{
    if (len == 0)
        return WEIR_CH_NEED_MORE;
    if (p[0] != 22)
        return WEIR_CH_NOT_TLS;
    if (len >= 2 && p[1] != 3)
        return WEIR_CH_NOT_TLS;
    size_t off = 0, have = 0, want = 0; /* handshake bytes gathered / needed */
    bool in_place = true;
    for (;;) {
        if (len - off < 5)
            return WEIR_CH_NEED_MORE;
        const uint8_t *h = p + off;
        if (h[0] != 22)
            return WEIR_CH_INVALID; /* only handshake records before the hello */
        if (h[1] != 3)
            return WEIR_CH_INVALID;
        size_t rlen = (size_t)h[3] << 8 | h[4];
        if (rlen == 0 || rlen > MAX_RECORD)
            return WEIR_CH_INVALID;
        size_t avail = len - off - 5 < rlen ? len - off - 5 : rlen;
        const uint8_t *frag = h + 5;
        if (have == 0 && avail >= 1 && frag[0] != 1)
            return WEIR_CH_INVALID;
        if (in_place && have == 0 && avail >= 4) {
            /* The usual case: the whole hello in the first record. */
            size_t body = (size_t)frag[1] << 16 | (size_t)frag[2] << 8 | frag[3];
            want = 4 + body;
            if (want <= rlen) {
                if (avail < want)
                    return WEIR_CH_NEED_MORE;
                if (want != rlen)
                    return WEIR_CH_INVALID; /* other messages after the hello */
                return weir_client_hello_parse_message(frag, want, out);
            }
        }
        /* The hello spans records: gather its bytes in scratch. */
        in_place = false;
        if (have + avail > cap)
            return WEIR_CH_INVALID;
        memcpy(scratch + have, frag, avail);
        have += avail;
        if (want == 0 && have >= 4) {
            want = 4 + ((size_t)scratch[1] << 16 | (size_t)scratch[2] << 8 | scratch[3]);
            if (want > cap)
                return WEIR_CH_INVALID;
        }
        if (want && have >= want) {
            if (have > want)
                return WEIR_CH_INVALID; /* other messages after the hello */
            return weir_client_hello_parse_message(scratch, want, out);
        }
        if (avail < rlen)
            return WEIR_CH_NEED_MORE;
        off += 5 + rlen;
    }
}

bool weir_client_hello_alpn_at(const weir_client_hello_t *ch, size_t i, weir_slice_t *proto)
{
    if (!ch->has_alpn)
        return false;
    const uint8_t *p = (const uint8_t *)ch->alpn.ptr;
    size_t off = 0;
    while (off < ch->alpn.len) {
        size_t n = p[off];
        if (off + 1 + n > ch->alpn.len)
            return false;
        if (i-- == 0) {
            *proto = weir_slice((const char *)p + off + 1, n);
            return true;
        }
        off += 1 + n;
    }
    return false;
}

bool weir_client_hello_offers_alpn(const weir_client_hello_t *ch, const char *proto)
{
    weir_slice_t s;
    for (size_t i = 0; weir_client_hello_alpn_at(ch, i, &s); i++)
        if (weir_slice_eq(s, weir_slice_cstr(proto)))
            return true;
    return false;
}
