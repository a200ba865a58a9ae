/* TLS ClientHello parser (see clienthello.h).
 *
 * The body is read with a cursor over exactly the bytes a length field
 * encloses: a vector is taken whole or not at all, and each enclosing
 * structure must be used up exactly, so a length that disagrees with its
 * contents cannot go unnoticed. The record layer is walked separately and
 * hands the parser one contiguous message (in place, or gathered in the
 * caller's scratch buffer). */
#include "tls/clienthello.h"

#include <string.h>

#define CONTENT_HANDSHAKE 22
#define HANDSHAKE_CLIENT_HELLO 1
#define RECORD_HEADER 5
#define MESSAGE_HEADER 4

/* The longest body a ClientHello can have: legacy_version, random, the
 * largest session id, cipher suite list, compression list and extension
 * block their length fields allow. A message header saying more is INVALID
 * at once rather than a wait for bytes that cannot make a hello. */
#define MAX_BODY (2 + 32 + (1 + 32) + (2 + 65534) + (1 + 255) + (2 + 65535))

#define EXT_SERVER_NAME 0
#define EXT_ALPN 16
#define EXT_PRE_SHARED_KEY 41
#define EXT_SUPPORTED_VERSIONS 43

#define NAME_TYPE_HOST_NAME 0

/* A cursor over [p, end). */
typedef struct {
    const uint8_t *p, *end;
} cur_t;

static size_t left(const cur_t *c)
{
    return (size_t)(c->end - c->p);
}

static bool take8(cur_t *c, unsigned *v)
{
    if (left(c) < 1) return false;
    *v = c->p[0];
    c->p += 1;
    return true;
}

static bool take16(cur_t *c, unsigned *v)
{
    if (left(c) < 2) return false;
    *v = (unsigned)c->p[0] << 8 | c->p[1];
    c->p += 2;
    return true;
}

static bool take_bytes(cur_t *c, size_t n, cur_t *out)
{
    if (left(c) < n) return false;
    *out = (cur_t){c->p, c->p + n};
    c->p += n;
    return true;
}

/* A vector with a 1- or 2-byte length (lenbytes) of min..max bytes. */
static bool take_vec(cur_t *c, int lenbytes, size_t min, size_t max, cur_t *out)
{
    unsigned n;
    if (!(lenbytes == 1 ? take8(c, &n) : take16(c, &n))) return false;
    return n >= min && n <= max && take_bytes(c, n, out);
}

static size_t get24(const uint8_t *p)
{
    return (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
}

/* GREASE values (RFC 8701) for versions and extension types: 0x0a0a,
 * 0x1a1a, ..., 0xfafa. */
static bool is_grease(unsigned v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/* server_name (RFC 6066 §3): ServerNameList server_name_list<1..2^16-1>,
 * each entry a NameType and, for host_name and every future type, a
 * 16-bit-length name. At most one entry per name type. */
static bool parse_server_name(cur_t e, weir_client_hello_t *out)
{
    cur_t list;
    uint8_t seen[256 / 8] = {0};
    if (!take_vec(&e, 2, 1, 0xffff, &list) || left(&e) != 0) return false;
    while (left(&list) > 0) {
        unsigned type;
        cur_t name;
        if (!take8(&list, &type) || !take_vec(&list, 2, 0, 0xffff, &name)) return false;
        if (seen[type / 8] & (1u << (type % 8))) return false;
        seen[type / 8] |= (uint8_t)(1u << (type % 8));
        if (type != NAME_TYPE_HOST_NAME) continue;
        /* HostName<1..2^16-1>; a NUL would cut the name short for any C
         * consumer, so it makes the hello invalid rather than mismatched. */
        if (left(&name) == 0 || memchr(name.p, 0, left(&name))) return false;
        out->sni = weir_slice((const char *)name.p, left(&name));
        out->has_sni = true;
    }
    return true;
}

/* application_layer_protocol_negotiation (RFC 7301 §3.1):
 * ProtocolNameList protocol_name_list<2..2^16-1>, each ProtocolName<1..2^8-1>. */
static bool parse_alpn(cur_t e, weir_client_hello_t *out)
{
    cur_t list;
    if (!take_vec(&e, 2, 2, 0xffff, &list) || left(&e) != 0) return false;
    out->alpn = weir_slice((const char *)list.p, left(&list));
    while (left(&list) > 0) {
        cur_t name;
        if (!take_vec(&list, 1, 1, 0xff, &name)) return false;
    }
    out->has_alpn = true;
    return true;
}

/* supported_versions in a ClientHello (RFC 8446 §4.2.1):
 * ProtocolVersion versions<2..254>. */
static bool parse_supported_versions(cur_t e, weir_client_hello_t *out)
{
    cur_t list;
    if (!take_vec(&e, 1, 2, 254, &list) || left(&e) != 0 || left(&list) % 2 != 0) return false;
    unsigned best = 0, v;
    while (take16(&list, &v))
        if (!is_grease(v) && v > best) best = v;
    out->max_version = (uint16_t)best;
    return true;
}

/* The extension block: each type at most once (RFC 8446 §4.2), and
 * pre_shared_key, when present, last (§4.2.11). */
static bool parse_extensions(cur_t exts, weir_client_hello_t *out)
{
    uint64_t seen[65536 / 64] = {0};
    while (left(&exts) > 0) {
        unsigned type;
        cur_t e;
        if (!take16(&exts, &type) || !take_vec(&exts, 2, 0, 0xffff, &e)) return false;
        if (seen[type / 64] & (UINT64_C(1) << (type % 64))) return false;
        seen[type / 64] |= UINT64_C(1) << (type % 64);
        bool ok = true;
        switch (type) {
        case EXT_SERVER_NAME:
            ok = parse_server_name(e, out);
            break;
        case EXT_ALPN:
            ok = parse_alpn(e, out);
            break;
        case EXT_SUPPORTED_VERSIONS:
            ok = parse_supported_versions(e, out);
            break;
        case EXT_PRE_SHARED_KEY:
            ok = left(&exts) == 0;
            break;
        default:
            break;
        }
        if (!ok) return false;
    }
    return true;
}

/* The ClientHello body (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2 for the
 * optional extension block of older clients). */
static int parse_body(cur_t b, weir_client_hello_t *out)
{
    unsigned version, m;
    cur_t random, sid, suites, comp, exts;
    if (!take16(&b, &version) || version >> 8 != 3 || !take_bytes(&b, 32, &random))
        return WEIR_CH_INVALID;
    out->legacy_version = (uint16_t)version;
    out->max_version = (uint16_t)version;
    if (!take_vec(&b, 1, 0, 32, &sid) || !take_vec(&b, 2, 2, 0xfffe, &suites) ||
        left(&suites) % 2 != 0 || !take_vec(&b, 1, 1, 0xff, &comp))
        return WEIR_CH_INVALID;
    bool null_compression = false;
    while (take8(&comp, &m))
        null_compression |= m == 0;
    if (!null_compression) return WEIR_CH_INVALID; /* the null method must be offered */
    if (left(&b) == 0) return WEIR_CH_OK; /* no extension block: TLS 1.2 and older may omit it */
    if (!take_vec(&b, 2, 0, 0xffff, &exts) || left(&b) != 0 || !parse_extensions(exts, out))
        return WEIR_CH_INVALID;
    return WEIR_CH_OK;
}

/* A complete message of exactly n bytes at p. */
static int parse_whole_message(const uint8_t *p, size_t n, weir_client_hello_t *out)
{
    int rc = parse_body((cur_t){p + MESSAGE_HEADER, p + n}, out);
    if (rc != WEIR_CH_OK) memset(out, 0, sizeof *out);
    return rc;
}

/* The total length of the message whose 4-byte header is at p, or 0 when
 * it cannot be a ClientHello. */
static size_t message_length(const uint8_t *p)
{
    size_t body = get24(p + 1);
    if (p[0] != HANDSHAKE_CLIENT_HELLO || body > MAX_BODY) return 0;
    return MESSAGE_HEADER + body;
}

int weir_client_hello_parse_message(const uint8_t *p, size_t len, weir_client_hello_t *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0) return WEIR_CH_NEED_MORE;
    if (p[0] != HANDSHAKE_CLIENT_HELLO) return WEIR_CH_INVALID;
    if (len < MESSAGE_HEADER) return WEIR_CH_NEED_MORE;
    size_t n = message_length(p);
    if (n == 0) return WEIR_CH_INVALID;
    if (len < n) return WEIR_CH_NEED_MORE;
    if (len > n) return WEIR_CH_INVALID; /* nothing may follow the hello */
    return parse_whole_message(p, n, out);
}

/* Checks the record header bytes present at h (avail of them, maybe fewer
 * than 5): INVALID, NEED_MORE while incomplete, or OK with *rlen. */
static int record_header(const uint8_t *h, size_t avail, size_t *rlen)
{
    if (avail >= 1 && h[0] != CONTENT_HANDSHAKE)
        return WEIR_CH_INVALID; /* alert, change_cipher_spec... amid the hello */
    if (avail >= 2 && h[1] != 3) return WEIR_CH_INVALID;
    if (avail < RECORD_HEADER) return WEIR_CH_NEED_MORE;
    *rlen = (size_t)h[3] << 8 | h[4];
    if (*rlen == 0 || *rlen > WEIR_CH_MAX_RECORD)
        return WEIR_CH_INVALID; /* RFC 8446 §5.1: no empty handshake fragments */
    return WEIR_CH_OK;
}

/* The hello spans records: gathers its bytes into scratch. have counts the bytes gathered, want is
 * the message length once its header is in (0 before). No record may reach past the hello's end:
 * that would be another handshake message in its last record. */
static int gather(const uint8_t *p, size_t len, uint8_t *scratch, size_t cap,
                  weir_client_hello_t *out)
{
    size_t off = 0, have = 0, want = 0;
    for (;;) {
        size_t rlen = 0;
        int rc = record_header(p + off, len - off, &rlen);
        if (rc != WEIR_CH_OK) return rc;
        if (want && rlen > want - have) return WEIR_CH_INVALID;
        size_t avail = len - off - RECORD_HEADER;
        if (avail > rlen) avail = rlen;
        if (avail > cap - have)
            return WEIR_CH_INVALID; /* the hello (or this record) does not fit */
        if (avail > 0) memcpy(scratch + have, p + off + RECORD_HEADER, avail);
        have += avail;
        if (have >= 1 && scratch[0] != HANDSHAKE_CLIENT_HELLO) return WEIR_CH_INVALID;
        if (!want && have >= MESSAGE_HEADER) {
            want = message_length(scratch);
            if (want == 0 || want > cap || have - avail + rlen > want) return WEIR_CH_INVALID;
        }
        if (avail < rlen) return WEIR_CH_NEED_MORE;
        if (want && have == want) return parse_whole_message(scratch, want, out);
        off += RECORD_HEADER + rlen;
    }
}

int weir_client_hello_parse_records(const uint8_t *p, size_t len, uint8_t *scratch, size_t cap,
                                    weir_client_hello_t *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0) return WEIR_CH_NEED_MORE;
    if (p[0] != CONTENT_HANDSHAKE || (len >= 2 && p[1] != 3)) return WEIR_CH_NOT_TLS;
    size_t rlen = 0;
    int rc = record_header(p, len, &rlen);
    if (rc != WEIR_CH_OK) return rc;
    const uint8_t *frag = p + RECORD_HEADER;
    size_t avail = len - RECORD_HEADER < rlen ? len - RECORD_HEADER : rlen;
    if (avail >= 1 && frag[0] != HANDSHAKE_CLIENT_HELLO) return WEIR_CH_INVALID;
    if (rlen >= MESSAGE_HEADER) {
        if (avail < MESSAGE_HEADER) return WEIR_CH_NEED_MORE;
        size_t n = message_length(frag);
        if (n == 0 || n > cap) return WEIR_CH_INVALID;
        if (n <= rlen) {
            /* The usual case: the whole hello in the first record, read in
             * place. It must fill the record. */
            if (n < rlen) return WEIR_CH_INVALID;
            if (avail < rlen) return WEIR_CH_NEED_MORE;
            return parse_whole_message(frag, n, out);
        }
    }
    return gather(p, len, scratch, cap, out);
}

bool weir_client_hello_alpn_at(const weir_client_hello_t *ch, size_t i, weir_slice_t *proto)
{
    if (!ch->has_alpn) return false;
    const uint8_t *p = (const uint8_t *)ch->alpn.ptr;
    size_t off = 0;
    while (off < ch->alpn.len) {
        size_t n = p[off];
        if (n == 0 || n > ch->alpn.len - off - 1) return false;
        if (i == 0) {
            *proto = weir_slice((const char *)p + off + 1, n);
            return true;
        }
        i--;
        off += 1 + n;
    }
    return false;
}

bool weir_client_hello_offers_alpn(const weir_client_hello_t *ch, const char *proto)
{
    weir_slice_t want = weir_slice_cstr(proto), s;
    for (size_t i = 0; weir_client_hello_alpn_at(ch, i, &s); i++)
        if (weir_slice_eq(s, want)) return true;
    return false;
}
