/* Request-side helpers of the rule language: host normalisation, the
 * routing path, host patterns, query components, and the per-request
 * matching context. Nothing here allocates. */
#include "rules/rules.h"

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static size_t count_colons(weir_slice_t s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++)
        n += s.ptr[i] == ':';
    return n;
}

/* The host part of an authority: "[v6]:port" keeps "[v6]", "name:port"
 * keeps "name", and a bare IPv6 literal (two or more colons, no brackets)
 * is kept whole; the caller brackets it. */
static weir_slice_t strip_port(weir_slice_t h, bool *bare_v6)
{
    *bare_v6 = false;
    if (h.len > 0 && h.ptr[0] == '[') {
        const char *close = memchr(h.ptr, ']', h.len);
        if (close) h.len = (size_t)(close - h.ptr) + 1;
        return h;
    }
    size_t colons = count_colons(h);
    if (colons >= 2) {
        *bare_v6 = true;
    } else if (colons == 1) {
        h.len = (size_t)((const char *)memchr(h.ptr, ':', h.len) - h.ptr);
    }
    return h;
}

int weir_host_normalize(weir_slice_t host, char *out, size_t cap)
{
    bool bare_v6;
    weir_slice_t h = strip_port(host, &bare_v6);
    if (h.len > 0 && h.ptr[h.len - 1] == '.') h.len--;
    size_t need = h.len + (bare_v6 ? 2 : 0);
    if (need > cap) return -1;
    size_t o = 0;
    if (bare_v6) out[o++] = '[';
    for (size_t i = 0; i < h.len; i++)
        out[o++] = lower(h.ptr[i]);
    if (bare_v6) out[o++] = ']';
    return (int)o;
}

/* RFC 3986 gen-delims and sub-delims, plus '%': decoding them would change
 * how the path splits into segments, so the routing path keeps them
 * encoded (an escaped "/" must not match Path(`/a/b`)). */
static bool is_reserved(unsigned char c)
{
    return c != '\0' && strchr(":/?#[]@!$&'()*+,;=%", c) != NULL;
}

int weir_path_routing(weir_slice_t path, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < path.len; i++) {
        char c = path.ptr[i];
        int hi = -1, lo = -1;
        if (c == '%' && i + 2 < path.len) {
            hi = hexval(path.ptr[i + 1]);
            lo = hexval(path.ptr[i + 2]);
        }
        if (hi < 0 || lo < 0) {
            if (o >= cap) return -1;
            out[o++] = c;
            continue;
        }
        unsigned char d = (unsigned char)(hi << 4 | lo);
        i += 2;
        if (is_reserved(d)) {
            if (o + 3 > cap) return -1;
            out[o++] = '%';
            out[o++] = hex[d >> 4];
            out[o++] = hex[d & 15];
        } else {
            if (o >= cap) return -1;
            out[o++] = (char)d;
        }
    }
    return (int)o;
}

bool weir_host_match(weir_slice_t pattern, weir_slice_t host)
{
    if (pattern.len == 1 && pattern.ptr[0] == '*') return true;
    if (!host.ptr) return false;
    if (pattern.len >= 2 && pattern.ptr[0] == '*' && pattern.ptr[1] == '.') {
        size_t suffix = pattern.len - 1; /* ".example.com" */
        if (host.len <= suffix) return false;
        size_t label = host.len - suffix;
        if (memcmp(host.ptr + label, pattern.ptr + 1, suffix) != 0) return false;
        return memchr(host.ptr, '.', label) == NULL;
    }
    return weir_slice_eq(pattern, host);
}

/* Decodes one form-encoded byte at raw[*i], advancing *i; -1 on a malformed
 * escape. */
static int next_query_byte(weir_slice_t raw, size_t *i)
{
    char c = raw.ptr[*i];
    if (c == '+') {
        (*i)++;
        return ' ';
    }
    if (c != '%') {
        (*i)++;
        return (unsigned char)c;
    }
    if (*i + 2 >= raw.len) return -1;
    int hi = hexval(raw.ptr[*i + 1]), lo = hexval(raw.ptr[*i + 2]);
    if (hi < 0 || lo < 0) return -1;
    *i += 3;
    return hi << 4 | lo;
}

int weir_query_unescape(weir_slice_t raw, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < raw.len;) {
        int b = next_query_byte(raw, &i);
        if (b < 0 || o >= cap) return -1;
        out[o++] = (char)b;
    }
    return (int)o;
}

bool weir_query_component_eq(weir_slice_t raw, weir_slice_t want)
{
    size_t o = 0;
    for (size_t i = 0; i < raw.len;) {
        int b = next_query_byte(raw, &i);
        if (b < 0 || o >= want.len || (char)b != want.ptr[o]) return false;
        o++;
    }
    return o == want.len;
}

static weir_slice_t normalize_sni(weir_slice_t sni, char *buf)
{
    if (sni.len > 0 && sni.ptr[sni.len - 1] == '.') sni.len--;
    if (sni.len > WEIR_HOST_MAX) return WEIR_SLICE_NULL;
    for (size_t i = 0; i < sni.len; i++)
        buf[i] = lower(sni.ptr[i]);
    return weir_slice(buf, sni.len);
}

void weir_rule_ctx_init(weir_rule_ctx_t *ctx, const weir_rule_req_t *req)
{
    ctx->req = req;
    ctx->path_ready = false;
    ctx->path = WEIR_SLICE_NULL;
    int n = weir_host_normalize(req->host, ctx->host_buf, sizeof(ctx->host_buf));
    ctx->host = n < 0 ? WEIR_SLICE_NULL : weir_slice(ctx->host_buf, (size_t)n);
    ctx->sni = normalize_sni(req->sni, ctx->sni_buf);
}

/* Paths without '%' are their own routing path, the common case: no copy.
 * A decoded path longer than the buffer is compared raw (documented in
 * rules.h as WEIR_RULE_PATH_MAX). */
weir_slice_t weir_rule_ctx_path(weir_rule_ctx_t *ctx)
{
    if (ctx->path_ready) return ctx->path;
    weir_slice_t raw = ctx->req->path;
    ctx->path = raw;
    if (raw.len > 0 && memchr(raw.ptr, '%', raw.len)) {
        int n = weir_path_routing(raw, ctx->path_buf, sizeof(ctx->path_buf));
        if (n >= 0) ctx->path = weir_slice(ctx->path_buf, (size_t)n);
    }
    if (!ctx->path.ptr) ctx->path = weir_slice("", 0);
    ctx->path_ready = true;
    return ctx->path;
}
