/* Addresses: entry point listen addresses ("[host]:port[/tcp|/udp]") and
 * server URLs ("http://host:port/path"), resolved at load time.
 *
 * Host names go through getaddrinfo unless WEIR_CONFIG_NO_DNS is set (the
 * fuzz target), in which case only numeric addresses and "localhost" resolve,
 * so that no input can make the loader wait on the network.
 */
#define WEIR_CONFIG_INTERNAL
#include "config/config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <strings.h>
#include <unistd.h>

static bool set_numeric(const char *host, uint16_t port, struct sockaddr_storage *ss,
                        socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        return true;
    }
    return false;
}

/* Resolves host (numeric, "localhost" or a name). Prefers an IPv4 result,
 * which is what a backend or listener on "localhost" most often expects. */
static int resolve(const char *host, uint16_t port, unsigned flags, bool passive,
                   struct sockaddr_storage *ss, socklen_t *len, char *err, size_t cap)
{
    if (set_numeric(host, port, ss, len)) return 0;
    if (strcasecmp(host, "localhost") == 0 && (flags & WEIR_CONFIG_NO_DNS))
        return set_numeric("127.0.0.1", port, ss, len) ? 0 : -1;
    if (flags & WEIR_CONFIG_NO_DNS) {
        snprintf(err, cap, "cannot resolve host \"%s\": name resolution is off", host);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (passive) hints.ai_flags = AI_PASSIVE;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, cap, "cannot resolve host \"%s\": %s", host,
                 rc ? gai_strerror(rc) : "no address");
        return -1;
    }
    const struct addrinfo *pick = res;
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    memset(ss, 0, sizeof *ss);
    memcpy(ss, pick->ai_addr, pick->ai_addrlen);
    *len = pick->ai_addrlen;
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    freeaddrinfo(res);
    return 0;
}

/* A port: decimal digits, no sign, at most 65535. */
static bool parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5) return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535) return false;
    *out = (uint16_t)v;
    return true;
}

/* Splits "host:port" or "[v6]:port" like Go's net.SplitHostPort. */
static int split_host_port(const char *hp, char *host, size_t host_cap, const char **port)
{
    const char *colon;
    size_t hlen;
    if (hp[0] == '[') {
        const char *end = strchr(hp, ']');
        if (!end || end[1] != ':') return -1;
        hlen = (size_t)(end - hp - 1);
        colon = end + 1;
        if (hlen == 0 || hlen >= host_cap) return -1;
        memcpy(host, hp + 1, hlen);
    } else {
        colon = strrchr(hp, ':');
        if (!colon || memchr(hp, ':', (size_t)(colon - hp)))
            return -1; /* no port, or an IPv6 address without brackets */
        hlen = (size_t)(colon - hp);
        if (hlen >= host_cap) return -1;
        memcpy(host, hp, hlen);
    }
    host[hlen] = '\0';
    *port = colon + 1;
    return 0;
}

/* All addresses: "::" (IPv4 and IPv6, as Go listens for ":port") when the
 * system has IPv6, otherwise 0.0.0.0. */
static void wildcard(uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd >= 0) close(fd);
    set_numeric(fd >= 0 ? "::" : "0.0.0.0", port, ss, len);
}

int weir_config_parse_listen(const char *text, unsigned flags, weir_entrypoint_cfg_t *ep, char *err,
                             size_t cap)
{
    char hp[300];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    ep->udp = 0;
    if (slash) {
        if (strcasecmp(slash + 1, "udp") == 0)
            ep->udp = 1;
        else if (strcasecmp(slash + 1, "tcp") != 0) {
            snprintf(err, cap, "invalid protocol \"%s\" (use /tcp or /udp)", slash + 1);
            return -1;
        }
    }
    if (n == 0 || n >= sizeof hp) {
        snprintf(err, cap,
                 "invalid address \"%s\" (use \":port\", \"host:port\" or "
                 "\"[ipv6]:port\")",
                 text);
        return -1;
    }
    memcpy(hp, text, n);
    hp[n] = '\0';
    char host[300];
    const char *port_text;
    uint16_t port;
    if (split_host_port(hp, host, sizeof host, &port_text) < 0) {
        snprintf(err, cap,
                 "invalid address \"%s\" (use \":port\", \"host:port\" or "
                 "\"[ipv6]:port\")",
                 text);
        return -1;
    }
    if (!parse_port(port_text, strlen(port_text), &port)) {
        snprintf(err, cap, "invalid port \"%s\" in address \"%s\" (0 to 65535)", port_text, text);
        return -1;
    }
    if (!host[0]) {
        wildcard(port, &ep->addr, &ep->addrlen);
        return 0;
    }
    return resolve(host, port, flags, true, &ep->addr, &ep->addrlen, err, cap);
}

static uint16_t sa_port(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
                                    : ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static bool is_any(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* Same protocol and port, and the same address or one of them is "all
 * addresses". With SO_REUSEPORT such listeners would silently share the
 * traffic instead of failing to bind, so the loader rejects them. Port 0
 * (any free port) never collides. */
bool weir_config_listen_overlap(const weir_entrypoint_cfg_t *a, const weir_entrypoint_cfg_t *b)
{
    if (a->udp != b->udp || !a->addrlen || !b->addrlen) return false;
    uint16_t pa = sa_port(&a->addr), pb = sa_port(&b->addr);
    if (pa != pb || pa == 0) return false;
    return same_host(&a->addr, &b->addr) || is_any(&a->addr) || is_any(&b->addr);
}

static bool scheme_of(const char *s, size_t n, weir_scheme_t *out, uint16_t *port)
{
    if (n == 4 && strncasecmp(s, "http", 4) == 0) {
        *out = WEIR_SCHEME_HTTP;
        *port = 80;
    } else if (n == 5 && strncasecmp(s, "https", 5) == 0) {
        *out = WEIR_SCHEME_HTTPS;
        *port = 443;
    } else if (n == 3 && strncasecmp(s, "h2c", 3) == 0) {
        *out = WEIR_SCHEME_H2C;
        *port = 80;
    } else {
        return false;
    }
    return true;
}

/* The authority part "host[:port]" of a URL into srv (host without
 * brackets, explicit port or the scheme's). */
static int parse_authority(const char *a, size_t n, weir_server_cfg_t *srv, char *err, size_t cap)
{
    if (memchr(a, '@', n)) {
        snprintf(err, cap, "user information in a server URL is not supported");
        return -1;
    }
    const char *host = a, *port = NULL;
    size_t hlen = n;
    if (n && a[0] == '[') {
        const char *end = memchr(a, ']', n);
        if (!end) {
            snprintf(err, cap, "missing \"]\" after an IPv6 address");
            return -1;
        }
        host = a + 1;
        hlen = (size_t)(end - a - 1);
        if (end + 1 < a + n) {
            if (end[1] != ':') {
                snprintf(err, cap, "unexpected text after \"]\"");
                return -1;
            }
            port = end + 2;
        }
    } else {
        const char *colon = memchr(a, ':', n);
        if (colon) {
            hlen = (size_t)(colon - a);
            port = colon + 1;
        }
    }
    if (hlen == 0) {
        snprintf(err, cap, "missing host");
        return -1;
    }
    if (port && (!parse_port(port, (size_t)(a + n - port), &srv->port) || srv->port == 0)) {
        snprintf(err, cap, "invalid port \"%.*s\" (1 to 65535)", (int)(a + n - port), port);
        return -1;
    }
    srv->host = weir_config_xalloc(hlen + 1);
    memcpy(srv->host, host, hlen);
    srv->authority = weir_config_xalloc(n + 1);
    memcpy(srv->authority, a, n);
    return 0;
}

int weir_config_parse_server_url(const char *url, unsigned flags, weir_server_cfg_t *srv, char *err,
                                 size_t cap)
{
    const char *sep = strstr(url, "://");
    if (!sep) {
        snprintf(err, cap, "invalid URL \"%s\": missing scheme (http://, https:// or h2c://)", url);
        return -1;
    }
    if (!scheme_of(url, (size_t)(sep - url), &srv->scheme, &srv->port)) {
        snprintf(err, cap, "unsupported scheme \"%.*s\" in \"%s\" (use http, https or h2c)",
                 (int)(sep - url), url, url);
        return -1;
    }
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *rest = auth + alen;
    if (*rest == '?' || *rest == '#' || strpbrk(rest, "?#")) {
        snprintf(err, cap, "a query or fragment in a server URL is not supported");
        return -1;
    }
    char detail[200];
    if (parse_authority(auth, alen, srv, detail, sizeof detail) < 0) {
        snprintf(err, cap, "invalid URL \"%s\": %s", url, detail);
        return -1;
    }
    srv->path = weir_config_xstrdup(rest);
    return resolve(srv->host, srv->port, flags, false, &srv->addr, &srv->addrlen, err, cap);
}

int weir_config_parse_tcp_address(const char *text, unsigned flags, struct sockaddr_storage *ss,
                                  socklen_t *len, char *err, size_t cap)
{
    weir_server_cfg_t srv;
    memset(&srv, 0, sizeof srv);
    srv.port = 0;
    char detail[200];
    size_t n = strlen(text);
    int rc = -1;
    if (parse_authority(text, n, &srv, detail, sizeof detail) < 0)
        snprintf(err, cap, "invalid address \"%s\": %s", text, detail);
    else if (srv.port == 0)
        snprintf(err, cap, "invalid address \"%s\": a port is needed (\"host:port\")", text);
    else
        rc = resolve(srv.host, srv.port, flags, false, ss, len, err, cap);
    free(srv.host);
    free(srv.authority);
    return rc;
}
