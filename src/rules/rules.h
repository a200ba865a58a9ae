/* Traefik v3 rule language: parsing, matching, and router tables.
 *
 * A rule is text such as
 *     Host(`example.com`) && (PathPrefix(`/api`) || Header(`X-Canary`, `1`))
 * compiled once (at configuration load) into an immutable matcher tree that
 * any number of worker threads may evaluate at once.
 *
 * HTTP matchers: Host, HostRegexp, Path, PathPrefix, PathRegexp, Method,
 * Header, HeaderRegexp, Query, QueryRegexp, ClientIP.
 * TCP matchers (kind WEIR_RULE_TCP): HostSNI, HostSNIRegexp, ClientIP, ALPN.
 * Operators: &&, ||, !, parentheses (! binds tightest, then &&, then ||).
 * Arguments: backtick or double-quoted strings (Go literal escapes in the
 * latter). Matcher names are case-insensitive as in Traefik.
 */
#ifndef WEIR_RULES_H
#define WEIR_RULES_H

#include <stdint.h>
#include <sys/socket.h>

#include "core/slice.h"

typedef enum { WEIR_RULE_HTTP, WEIR_RULE_TCP } weir_rule_kind_t;

typedef struct weir_rule weir_rule_t;

/* What a rule can look at. Slices borrow the request's buffers. */
typedef struct {
    weir_slice_t method;
    weir_slice_t host;  /* Host header or :authority as received; the matcher
                           lower-cases, drops the port and a trailing dot */
    weir_slice_t path;  /* path without query, as received (percent-encoded) */
    weir_slice_t query; /* raw query string without '?' (may be empty) */
    const weir_header_t *headers;
    size_t num_headers;
    const struct sockaddr *client; /* AF_INET or AF_INET6; NULL never matches ClientIP */
    /* TCP */
    weir_slice_t sni;
    weir_slice_t alpn; /* one protocol offered by the client; TCP ALPN matches any of alpns */
    const weir_slice_t *alpns;
    size_t num_alpns;
} weir_rule_req_t;

/* Error detail from weir_rule_compile: a message and the 0-based byte offset
 * in the rule text where the problem was found. */
typedef struct {
    char msg[256];
    size_t offset;
} weir_rule_error_t;

/* Compiles text. Returns 0 and *out, or -1 with *err filled (unknown matcher
 * with a suggestion, wrong argument count, empty argument, bad regexp, bad
 * IP/CIDR, syntax error). The compiled rule owns its memory. */
int weir_rule_compile(const char *text, weir_rule_kind_t kind, weir_rule_t **out,
                      weir_rule_error_t *err);

void weir_rule_free(weir_rule_t *rule);

/* Evaluates rule against req. Thread-safe; allocation-free for non-regexp
 * matchers (regexp matchers use a per-thread PCRE2 match-data block). */
bool weir_rule_match(const weir_rule_t *rule, const weir_rule_req_t *req);

/* Default priority of a rule: its length in bytes (Traefik), or -1 for the
 * TCP catch-all HostSNI(`*`). */
int64_t weir_rule_default_priority(const char *text, weir_rule_kind_t kind);

/* Normalises a host for comparison: lower-case, port and trailing dot
 * removed, IPv6 brackets kept. Writes at most cap bytes to out; returns the
 * length, or -1 if it does not fit. */
int weir_host_normalize(weir_slice_t host, char *out, size_t cap);

/* A router table: rules with priorities and an opaque value each, matched by
 * highest priority first (ties: insertion order). Routes whose rule requires
 * one exact Host (Host(`a`) alone or at the top of an && chain) are indexed
 * by that host, so thousands of host routes cost one hash lookup.
 * Build single-threaded, then share read-only. */
typedef struct weir_router_table weir_router_table_t;

weir_router_table_t *weir_router_table_new(void);

/* Adds a route. The table takes ownership of rule. Returns 0 or -1 (ENOMEM). */
int weir_router_table_add(weir_router_table_t *t, weir_rule_t *rule, int64_t priority,
                          void *value);

/* Sorts and indexes; call once after the last add, before matching. */
int weir_router_table_build(weir_router_table_t *t);

/* Returns the value of the best matching route, or NULL. */
void *weir_router_table_match(const weir_router_table_t *t, const weir_rule_req_t *req);

size_t weir_router_table_size(const weir_router_table_t *t);

void weir_router_table_free(weir_router_table_t *t);

/* IP networks (ClientIP, forwardedHeaders.trustedIPs, ipAllowList). */
typedef struct {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t bits;
    uint8_t addr[16];
} weir_cidr_t;

/* Parses "1.2.3.4", "10.0.0.0/8", "::1", "2001:db8::/32". Returns 0 or -1. */
int weir_cidr_parse(const char *text, weir_cidr_t *out);

/* True if sa (AF_INET/AF_INET6; v4-mapped v6 counts as v4) is inside c. */
bool weir_cidr_contains(const weir_cidr_t *c, const struct sockaddr *sa);

/* ---- Additions (rules module): shared matching context and helpers ---- */

#define WEIR_HOST_MAX 256        /* longest normalised host or SNI kept */
#define WEIR_RULE_PATH_MAX 4096  /* longest percent-decoded routing path kept */

/* A request prepared once for matching several rules (a router table walk):
 * host and SNI are normalised at init, the routing path on first use. Lives
 * on the caller's stack; no allocation; one thread at a time. A host that
 * does not fit leaves host.ptr NULL: only Host(`*`) matches it. */
typedef struct {
    const weir_rule_req_t *req;
    weir_slice_t host; /* weir_host_normalize() of req->host */
    weir_slice_t sni;  /* req->sni lower-cased, one trailing dot removed */
    weir_slice_t path; /* routing path; valid once path_ready */
    bool path_ready;
    char host_buf[WEIR_HOST_MAX];
    char sni_buf[WEIR_HOST_MAX];
    char path_buf[WEIR_RULE_PATH_MAX];
} weir_rule_ctx_t;

void weir_rule_ctx_init(weir_rule_ctx_t *ctx, const weir_rule_req_t *req);

/* The routing path of ctx's request (see weir_path_routing), computed once. */
weir_slice_t weir_rule_ctx_path(weir_rule_ctx_t *ctx);

/* weir_rule_match with a prepared context; weir_rule_match is this with a
 * fresh one. */
bool weir_rule_match_ctx(const weir_rule_t *rule, weir_rule_ctx_t *ctx);

weir_rule_kind_t weir_rule_kind(const weir_rule_t *rule);

/* True if every request the rule matches has one exact host: the rule is
 * Host(`h`) (HostSNI(`h`) for TCP) without wildcard, alone or as a term of
 * the top-level && chain. *host is then the normalised host, owned by rule. */
bool weir_rule_exact_host(const weir_rule_t *rule, weir_slice_t *host);

/* The "routing path" of a raw request path: percent-escapes decoded except
 * those of reserved characters (":/?#[]@!$&'()*+,;=" and '%'), which stay
 * encoded with upper-case hex; malformed escapes are kept as they are.
 * Returns the length written to out, or -1 if it does not fit in cap. */
int weir_path_routing(weir_slice_t path, char *out, size_t cap);

/* The normalised argument of every Host (HostSNI for TCP) matcher of the
 * rule, anywhere in it, in rule order: stores at most max in out and
 * returns how many there are. Traefik derives a TLS router's domains from
 * them (certificates, TLS options by SNI). */
size_t weir_rule_hosts(const weir_rule_t *rule, weir_slice_t *out, size_t max);

/* Host pattern test on normalised names: "*" matches anything (also empty),
 * "*.example.com" exactly one non-empty label before ".example.com",
 * anything else is byte equality. */
bool weir_host_match(weir_slice_t pattern, weir_slice_t host);

/* Query string components (application/x-www-form-urlencoded: %XX and '+').
 * weir_query_unescape returns the decoded length or -1 (malformed escape or
 * no room); weir_query_component_eq compares without a buffer and is false
 * for a malformed escape, as Go's url.ParseQuery drops such pairs. */
int weir_query_unescape(weir_slice_t raw, char *out, size_t cap);
bool weir_query_component_eq(weir_slice_t raw, weir_slice_t want);

/* Regular expressions: the PCRE2 adapter (UTF-8, JIT when available,
 * unanchored search like Go's regexp.MatchString). A compiled regex is
 * immutable and shared by threads; matching uses a per-thread match block
 * and never allocates after a thread's first match. */
typedef struct weir_regex weir_regex_t;

#define WEIR_REGEX_CASELESS 1u
#define WEIR_REGEX_MAX_PATTERN 4096

/* Returns 0 and *out, or -1 with a message in err and the byte offset of the
 * problem in the pattern in *erroff. */
int weir_regex_compile(const char *pattern, size_t len, unsigned flags, weir_regex_t **out,
                       char *err, size_t errcap, size_t *erroff);
bool weir_regex_match(const weir_regex_t *re, const char *subject, size_t len);
void weir_regex_free(weir_regex_t *re);

#endif
