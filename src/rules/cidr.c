/* IP networks: "1.2.3.4", "10.0.0.0/8", "::1", "2001:db8::/32".
 *
 * A v4-mapped IPv6 network ("::ffff:10.0.0.0/104") is stored as the IPv4
 * network it denotes, and a v4-mapped client address is compared as IPv4,
 * so the two spellings of an IPv4 client meet the same rules (Go's
 * net.IPNet.Contains behaves the same way). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "rules/rules.h"

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Parses the decimal prefix length after '/': digits only, no sign, no
 * leading zero, at most max. */
static int parse_bits(const char *s, int max)
{
    if (!*s || (s[0] == '0' && s[1]) || strlen(s) > 3) return -1;
    int v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (*s - '0');
    }
    return v <= max ? v : -1;
}

/* Clears the host bits so that contains() can compare whole bytes. */
static void mask_host_bits(weir_cidr_t *c)
{
    size_t n = c->family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < n; i++) {
        int keep = (int)c->bits - (int)(i * 8);
        if (keep >= 8) continue;
        c->addr[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    }
}

int weir_cidr_parse(const char *text, weir_cidr_t *out)
{
    char ip[64];
    if (!text) return -1;
    const char *slash = strchr(text, '/');
    size_t iplen = slash ? (size_t)(slash - text) : strlen(text);
    if (iplen == 0 || iplen >= sizeof(ip)) return -1;
    memcpy(ip, text, iplen);
    ip[iplen] = '\0';

    weir_cidr_t c;
    memset(&c, 0, sizeof(c));
    if (inet_pton(AF_INET, ip, c.addr) == 1) {
        c.family = AF_INET;
        c.bits = 32;
    } else if (strchr(ip, ':') && inet_pton(AF_INET6, ip, c.addr) == 1) {
        c.family = AF_INET6;
        c.bits = 128;
    } else {
        return -1;
    }
    if (slash) {
        int bits = parse_bits(slash + 1, c.bits);
        if (bits < 0) return -1;
        c.bits = (uint8_t)bits;
    }
    if (c.family == AF_INET6 && c.bits >= 96 &&
        memcmp(c.addr, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
        memmove(c.addr, c.addr + 12, 4);
        memset(c.addr + 4, 0, 12);
        c.family = AF_INET;
        c.bits -= 96;
    }
    mask_host_bits(&c);
    *out = c;
    return 0;
}

bool weir_cidr_contains(const weir_cidr_t *c, const struct sockaddr *sa)
{
    const uint8_t *a;
    int family;
    if (!c || !sa) return false;
    if (sa->sa_family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        family = AF_INET;
    } else if (sa->sa_family == AF_INET6) {
        a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        family = AF_INET6;
        if (memcmp(a, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
            a += 12;
            family = AF_INET;
        }
    } else {
        return false;
    }
    if (family != c->family) return false;
    size_t whole = c->bits / 8;
    if (memcmp(a, c->addr, whole) != 0) return false;
    unsigned rest = c->bits % 8;
    if (rest == 0) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == c->addr[whole];
}
