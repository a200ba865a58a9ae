/* PROXY protocol v1/v2 parser and writers (see proxy_proto.h). */
#include "l4/proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const char v1_sig[6] = {'P', 'R', 'O', 'X', 'Y', ' '};

enum { TLV_ALPN = 0x01, TLV_AUTHORITY = 0x02 };

/* ---- v1 ---- */

/* Next space-separated field of [*p, end): at least one byte, no spaces. */
static bool field(const char **p, const char *end, const char **f, size_t *n)
{
    const char *s = *p;
    if (s >= end)
        return false;
    const char *e = memchr(s, ' ', (size_t)(end - s));
    if (!e)
        e = end;
    if (e == s)
        return false;
    *f = s;
    *n = (size_t)(e - s);
    *p = e < end ? e + 1 : e;
    return true;
}

static bool v1_addr(const char *f, size_t n, int family, struct sockaddr_storage *out)
{
    char buf[INET6_ADDRSTRLEN];
    if (n >= sizeof buf)
        return false;
    memcpy(buf, f, n);
    buf[n] = 0;
    memset(out, 0, sizeof *out);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)out;
        a->sin_family = AF_INET;
        return inet_pton(AF_INET, buf, &a->sin_addr) == 1;
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    a->sin6_family = AF_INET6;
    return inet_pton(AF_INET6, buf, &a->sin6_addr) == 1;
}

static bool v1_port(const char *f, size_t n, struct sockaddr_storage *out)
{
    if (n == 0 || n > 5 || (n > 1 && f[0] == '0'))
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i] < '0' || f[i] > '9')
            return false;
        v = v * 10 + (unsigned)(f[i] - '0');
    }
    if (v > 65535)
        return false;
    if (out->ss_family == AF_INET)
        ((struct sockaddr_in *)out)->sin_port = htons((uint16_t)v);
    else
        ((struct sockaddr_in6 *)out)->sin6_port = htons((uint16_t)v);
    return true;
}

static int parse_v1(const uint8_t *p, size_t len, weir_pp_header_t *out)
{
    size_t scan = len < WEIR_PP_V1_MAX ? len : WEIR_PP_V1_MAX;
    const uint8_t *lf = memchr(p, '\n', scan);
    if (!lf) {
        if (len >= WEIR_PP_V1_MAX)
            return WEIR_PP_INVALID;
        for (size_t i = sizeof v1_sig; i < len; i++)
            if (p[i] < 0x20 && !(p[i] == '\r' && i + 1 == len))
                return WEIR_PP_INVALID;
        return WEIR_PP_NEED_MORE;
    }
    size_t linelen = (size_t)(lf - p) + 1;
    if (linelen < sizeof v1_sig + 2 || lf[-1] != '\r')
        return WEIR_PP_INVALID;
    const char *s = (const char *)p + sizeof v1_sig, *end = (const char *)lf - 1;
    for (const char *c = s; c < end; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            return WEIR_PP_INVALID;
    const char *f;
    size_t n;
    if (!field(&s, end, &f, &n))
        return WEIR_PP_INVALID;
    memset(out, 0, sizeof *out);
    out->version = 1;
    out->len = linelen;
    if (n == 7 && memcmp(f, "UNKNOWN", 7) == 0) {
        out->local = true; /* the rest of the line is ignored */
        return WEIR_PP_OK;
    }
    int family;
    if (n == 4 && memcmp(f, "TCP4", 4) == 0)
        family = AF_INET;
    else if (n == 4 && memcmp(f, "TCP6", 4) == 0)
        family = AF_INET6;
    else
        return WEIR_PP_INVALID;
    const char *sa, *da, *sp, *dp;
    size_t sal, dal, spl, dpl;
    if (!field(&s, end, &sa, &sal) || !field(&s, end, &da, &dal) ||
        !field(&s, end, &sp, &spl) || !field(&s, end, &dp, &dpl) || s != end ||
        dp + dpl != end)
        return WEIR_PP_INVALID;
    if (!v1_addr(sa, sal, family, &out->src) || !v1_addr(da, dal, family, &out->dst) ||
        !v1_port(sp, spl, &out->src) || !v1_port(dp, dpl, &out->dst))
        return WEIR_PP_INVALID;
    return WEIR_PP_OK;
}

/* ---- v2 ---- */

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static int parse_v2(const uint8_t *p, size_t len, weir_pp_header_t *out)
{
    if (len < 16)
        return WEIR_PP_NEED_MORE;
    uint8_t ver = p[12] >> 4, cmd = p[12] & 0x0F, af = p[13] >> 4, proto = p[13] & 0x0F;
    if (ver != 2 || cmd > 1 || af > 3 || proto > 2)
        return WEIR_PP_INVALID;
    size_t body = be16(p + 14), total = 16 + body;
    if (total > WEIR_PP_V2_MAX)
        return WEIR_PP_INVALID;
    static const size_t addr_size[4] = {0, 12, 36, 216};
    if (cmd == 1 && body < addr_size[af])
        return WEIR_PP_INVALID;
    if (len < total)
        return WEIR_PP_NEED_MORE;
    memset(out, 0, sizeof *out);
    out->version = 2;
    out->len = total;
    out->dgram = proto == 2;
    if (cmd == 0) {
        out->local = true; /* health checks of the sender: the block is ignored */
        return WEIR_PP_OK;
    }
    const uint8_t *a = p + 16;
    if (af == 1 && proto != 0) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src, *d = (struct sockaddr_in *)&out->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);
        memcpy(&d->sin_port, a + 10, 2);
    } else if (af == 2 && proto != 0) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src,
                            *d = (struct sockaddr_in6 *)&out->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
    } else {
        out->local = true; /* UNSPEC or UNIX: nothing weir can use */
    }
    /* TLVs fill the rest exactly. */
    const uint8_t *t = a + addr_size[af], *end = p + total;
    while (t < end) {
        if (end - t < 3)
            return WEIR_PP_INVALID;
        size_t n = be16(t + 1);
        if ((size_t)(end - t - 3) < n)
            return WEIR_PP_INVALID;
        if (t[0] == TLV_ALPN)
            out->alpn = weir_slice((const char *)t + 3, n);
        else if (t[0] == TLV_AUTHORITY)
            out->authority = weir_slice((const char *)t + 3, n);
        t += 3 + n;
    }
    return WEIR_PP_OK;
}

int weir_pp_parse(const uint8_t *p, size_t len, weir_pp_header_t *out)
{
    if (len == 0)
        return WEIR_PP_NEED_MORE;
    if (p[0] == v2_sig[0]) {
        size_t n = len < sizeof v2_sig ? len : sizeof v2_sig;
        if (memcmp(p, v2_sig, n) != 0)
            return WEIR_PP_NONE;
        return n < sizeof v2_sig ? WEIR_PP_NEED_MORE : parse_v2(p, len, out);
    }
    if (p[0] == v1_sig[0]) {
        size_t n = len < sizeof v1_sig ? len : sizeof v1_sig;
        if (memcmp(p, v1_sig, n) != 0)
            return WEIR_PP_NONE;
        return n < sizeof v1_sig ? WEIR_PP_NEED_MORE : parse_v1(p, len, out);
    }
    return WEIR_PP_NONE;
}

/* ---- writers ---- */

ssize_t weir_pp_write_v1(char *buf, size_t cap, const struct sockaddr *src,
                         const struct sockaddr *dst)
{
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    int n;
    if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)src, *b = (const void *)dst;
        inet_ntop(AF_INET, &a->sin_addr, s, sizeof s);
        inet_ntop(AF_INET, &b->sin_addr, d, sizeof d);
        n = snprintf(buf, cap, "PROXY TCP4 %s %s %u %u\r\n", s, d, ntohs(a->sin_port),
                     ntohs(b->sin_port));
    } else if (src->sa_family == AF_INET6 && dst->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)src, *b = (const void *)dst;
        inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof s);
        inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof d);
        n = snprintf(buf, cap, "PROXY TCP6 %s %s %u %u\r\n", s, d, ntohs(a->sin6_port),
                     ntohs(b->sin6_port));
    } else {
        n = snprintf(buf, cap, "PROXY UNKNOWN\r\n");
    }
    return n > 0 && (size_t)n < cap ? n : -1;
}

static size_t put_tlv(uint8_t *p, uint8_t type, weir_slice_t v)
{
    p[0] = type;
    p[1] = (uint8_t)(v.len >> 8);
    p[2] = (uint8_t)v.len;
    memcpy(p + 3, v.ptr, v.len);
    return 3 + v.len;
}

ssize_t weir_pp_write_v2(uint8_t *buf, size_t cap, const struct sockaddr *src,
                         const struct sockaddr *dst, bool dgram, weir_slice_t alpn,
                         weir_slice_t authority)
{
    int af = src->sa_family == dst->sa_family ? src->sa_family : AF_UNSPEC;
    size_t addr = af == AF_INET ? 12 : af == AF_INET6 ? 36 : 0;
    if (alpn.len > 255 || authority.len > 255)
        return -1;
    size_t tlvs = addr ? (alpn.len ? 3 + alpn.len : 0) + (authority.len ? 3 + authority.len : 0) : 0;
    size_t total = 16 + addr + tlvs;
    if (cap < total)
        return -1;
    memcpy(buf, v2_sig, sizeof v2_sig);
    if (!addr) {
        buf[12] = 0x20; /* LOCAL */
        buf[13] = 0x00;
        buf[14] = buf[15] = 0;
        return 16;
    }
    buf[12] = 0x21; /* version 2, PROXY */
    buf[13] = (uint8_t)((af == AF_INET ? 0x10 : 0x20) | (dgram ? 0x02 : 0x01));
    buf[14] = (uint8_t)((addr + tlvs) >> 8);
    buf[15] = (uint8_t)(addr + tlvs);
    uint8_t *p = buf + 16;
    if (af == AF_INET) {
        const struct sockaddr_in *a = (const void *)src, *b = (const void *)dst;
        memcpy(p, &a->sin_addr, 4);
        memcpy(p + 4, &b->sin_addr, 4);
        memcpy(p + 8, &a->sin_port, 2);
        memcpy(p + 10, &b->sin_port, 2);
    } else {
        const struct sockaddr_in6 *a = (const void *)src, *b = (const void *)dst;
        memcpy(p, &a->sin6_addr, 16);
        memcpy(p + 16, &b->sin6_addr, 16);
        memcpy(p + 32, &a->sin6_port, 2);
        memcpy(p + 34, &b->sin6_port, 2);
    }
    p += addr;
    if (alpn.len)
        p += put_tlv(p, TLV_ALPN, alpn);
    if (authority.len)
        p += put_tlv(p, TLV_AUTHORITY, authority);
    return (ssize_t)total;
}
