/* Unit tests of the rule language (src/rules): parsing, errors, every
 * matcher, priorities, router tables and CIDRs. Most cases are rows of a
 * table; each row is registered as its own cmocka test so that the TAP
 * output counts them one by one. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules/rules.h"

/* ---- building requests ---- */

#define MAX_TEST_HEADERS 4
#define MAX_TEST_ALPNS 3

/* A request as the rows describe it: plain strings, NULL = absent. */
typedef struct {
    const char *method, *host, *path, *query;
    const char *headers[MAX_TEST_HEADERS][2];
    const char *client; /* "10.0.0.1" or "2001:db8::1" */
    const char *sni;
    const char *alpns[MAX_TEST_ALPNS];
} spec_t;

typedef struct {
    weir_rule_req_t req;
    weir_header_t headers[MAX_TEST_HEADERS];
    weir_slice_t alpns[MAX_TEST_ALPNS];
    struct sockaddr_storage ss;
} built_req_t;

static void build_req(const spec_t *s, built_req_t *b)
{
    memset(b, 0, sizeof(*b));
    b->req.method = weir_slice_cstr(s->method ? s->method : "GET");
    b->req.host = weir_slice_cstr(s->host);
    b->req.path = weir_slice_cstr(s->path ? s->path : "/");
    b->req.query = weir_slice_cstr(s->query);
    for (size_t i = 0; i < MAX_TEST_HEADERS && s->headers[i][0]; i++) {
        b->headers[i].name = weir_slice_cstr(s->headers[i][0]);
        b->headers[i].value = weir_slice_cstr(s->headers[i][1]);
        b->req.num_headers = i + 1;
    }
    b->req.headers = b->headers;
    if (s->client) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)&b->ss;
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&b->ss;
        if (inet_pton(AF_INET, s->client, &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
        } else {
            assert_int_equal(inet_pton(AF_INET6, s->client, &v6->sin6_addr), 1);
            v6->sin6_family = AF_INET6;
        }
        b->req.client = (const struct sockaddr *)&b->ss;
    }
    b->req.sni = weir_slice_cstr(s->sni);
    for (size_t i = 0; i < MAX_TEST_ALPNS && s->alpns[i]; i++) {
        b->alpns[i] = weir_slice_cstr(s->alpns[i]);
        b->req.num_alpns = i + 1;
    }
    b->req.alpns = b->alpns;
}

static weir_rule_t *compile_ok(const char *text, weir_rule_kind_t kind)
{
    weir_rule_t *r = NULL;
    weir_rule_error_t err = {{0}, 0};
    if (weir_rule_compile(text, kind, &r, &err) != 0)
        fail_msg("compiling %s: %s (offset %zu)", text, err.msg, err.offset);
    return r;
}

/* ---- matching rows ---- */

typedef struct {
    const char *name;
    weir_rule_kind_t kind;
    const char *rule;
    spec_t req;
    bool want;
} match_case_t;

#define HTTP WEIR_RULE_HTTP
#define TCP WEIR_RULE_TCP

static const match_case_t match_cases[] = {
    /* operators and syntax */
    {"and binds tighter than or (1)",
     HTTP,
     "Host(`a.com`) || Host(`b.com`) && Path(`/x`)",
     {.host = "b.com", .path = "/y"},
     false},
    {"and binds tighter than or (2)",
     HTTP,
     "Host(`a.com`) || Host(`b.com`) && Path(`/x`)",
     {.host = "a.com", .path = "/y"},
     true},
    {"and binds tighter than or (3)",
     HTTP,
     "Path(`/x`) && Host(`b.com`) || Host(`a.com`)",
     {.host = "a.com", .path = "/y"},
     true},
    {"parentheses override precedence",
     HTTP,
     "(Host(`a.com`) || Host(`b.com`)) && Path(`/x`)",
     {.host = "a.com", .path = "/y"},
     false},
    {"parentheses and both sides true",
     HTTP,
     "(Host(`a.com`) || Host(`b.com`)) && Path(`/x`)",
     {.host = "b.com", .path = "/x"},
     true},
    {"not", HTTP, "!Host(`a.com`)", {.host = "b.com"}, true},
    {"not of a match", HTTP, "!Host(`a.com`)", {.host = "a.com"}, false},
    {"double not", HTTP, "!!Host(`a.com`)", {.host = "a.com"}, true},
    {"not binds tighter than and",
     HTTP,
     "!Host(`a.com`) && Path(`/x`)",
     {.host = "b.com", .path = "/x"},
     true},
    {"not of a group",
     HTTP,
     "!(Host(`a.com`) || Path(`/x`))",
     {.host = "b.com", .path = "/x"},
     false},
    {"long and chain",
     HTTP,
     "Method(`GET`) && Host(`a.com`) && PathPrefix(`/a`) && Path(`/a/b`) && !Path(`/c`)",
     {.host = "a.com", .path = "/a/b"},
     true},
    {"long or chain",
     HTTP,
     "Path(`/1`) || Path(`/2`) || Path(`/3`) || Path(`/4`)",
     {.path = "/4"},
     true},
    {"double-quoted argument", HTTP, "Host(\"a.com\")", {.host = "a.com"}, true},
    {"mixed quote styles", HTTP, "Header(\"X-A\", `b`)", {.headers = {{"X-A", "b"}}}, true},
    {"escape \\x", HTTP, "Path(\"/a\\x62c\")", {.path = "/abc"}, true},
    {"escape \\\" and \\\\",
     HTTP,
     "Header(`X`, \"q\\\"t\\\\\")",
     {.headers = {{"X", "q\"t\\"}}},
     true},
    {"escape \\t", HTTP, "Header(`X`, \"a\\tb\")", {.headers = {{"X", "a\tb"}}}, true},
    {"escape \\u", HTTP, "Path(\"/caf\\u00e9\")", {.path = "/caf\xc3\xa9"}, true},
    {"escape octal", HTTP, "Path(\"/\\141\")", {.path = "/a"}, true},
    {"backslash is literal in backticks",
     HTTP,
     "Header(`X`, `a\\n`)",
     {.headers = {{"X", "a\\n"}}},
     true},
    {"whitespace everywhere",
     HTTP,
     "  Host( `a.com` )\n&&\t( Path(`/x`)\r\n||Path( `/y` ) ) ",
     {.host = "a.com", .path = "/y"},
     true},
    {"lower-case matcher name",
     HTTP,
     "host(`a.com`) && pathprefix(`/a`)",
     {.host = "a.com", .path = "/a"},
     true},
    {"upper-case matcher name", HTTP, "HOST(`a.com`) && METHOD(`get`)", {.host = "a.com"}, true},
    {"mixed-case matcher name", HTTP, "hOsTrEgExP(`^a`)", {.host = "a.com"}, true},

    /* Host */
    {"host equal", HTTP, "Host(`example.com`)", {.host = "example.com"}, true},
    {"host differs", HTTP, "Host(`example.com`)", {.host = "example.org"}, false},
    {"host case-insensitive", HTTP, "Host(`Example.COM`)", {.host = "eXample.com"}, true},
    {"host port stripped", HTTP, "Host(`example.com`)", {.host = "example.com:8080"}, true},
    {"host trailing dot in request", HTTP, "Host(`example.com`)", {.host = "example.com."}, true},
    {"host trailing dot and port", HTTP, "Host(`example.com`)", {.host = "example.com.:443"}, true},
    {"host trailing dot in rule", HTTP, "Host(`example.com.`)", {.host = "example.com"}, true},
    {"host not a suffix match", HTTP, "Host(`example.com`)", {.host = "wwwexample.com"}, false},
    {"host IPv6 with port", HTTP, "Host(`[::1]`)", {.host = "[::1]:8080"}, true},
    {"host IPv6 without port", HTTP, "Host(`[::1]`)", {.host = "[::1]"}, true},
    {"host IPv6 rule without brackets", HTTP, "Host(`::1`)", {.host = "[::1]:80"}, true},
    {"host IPv6 other address", HTTP, "Host(`[::1]`)", {.host = "[::2]:8080"}, false},
    {"host IPv4", HTTP, "Host(`127.0.0.1`)", {.host = "127.0.0.1:8080"}, true},
    {"host missing", HTTP, "Host(`example.com`)", {.host = NULL}, false},
    {"host wildcard one label", HTTP, "Host(`*.example.com`)", {.host = "api.example.com"}, true},
    {"host wildcard two labels", HTTP, "Host(`*.example.com`)", {.host = "a.b.example.com"}, false},
    {"host wildcard apex", HTTP, "Host(`*.example.com`)", {.host = "example.com"}, false},
    {"host wildcard empty label", HTTP, "Host(`*.example.com`)", {.host = ".example.com"}, false},
    {"host wildcard case and port",
     HTTP,
     "Host(`*.Example.com`)",
     {.host = "API.example.COM:443"},
     true},
    {"host star matches anything", HTTP, "Host(`*`)", {.host = "whatever.test:1"}, true},
    {"host star matches no host", HTTP, "Host(`*`)", {.host = NULL}, true},
    {"hostregexp",
     HTTP,
     "HostRegexp(`^[a-z]+\\.example\\.com$`)",
     {.host = "API.Example.com:443"},
     true},
    {"hostregexp unanchored", HTTP, "HostRegexp(`example`)", {.host = "www.example.org"}, true},
    {"hostregexp no match", HTTP, "HostRegexp(`^api\\.`)", {.host = "www.example.org"}, false},
    {"hostregexp sees no port", HTTP, "HostRegexp(`8080`)", {.host = "a.com:8080"}, false},

    /* Path, PathPrefix, PathRegexp */
    {"path exact", HTTP, "Path(`/a`)", {.path = "/a"}, true},
    {"path trailing slash differs", HTTP, "Path(`/a`)", {.path = "/a/"}, false},
    {"path is case-sensitive", HTTP, "Path(`/a`)", {.path = "/A"}, false},
    {"path percent-decoded", HTTP, "Path(`/a b`)", {.path = "/a%20b"}, true},
    {"path utf-8 decoded", HTTP, "Path(`/caf\xc3\xa9`)", {.path = "/caf%C3%A9"}, true},
    {"path unreserved decoded", HTTP, "Path(`/abc`)", {.path = "/%61b%63"}, true},
    {"path encoded slash stays encoded", HTTP, "Path(`/a/b`)", {.path = "/a%2Fb"}, false},
    {"path encoded slash matches encoded rule", HTTP, "Path(`/a%2Fb`)", {.path = "/a%2fb"}, true},
    {"path encoded rule matches decoded",
     HTTP,
     "Path(`/caf%C3%A9`)",
     {.path = "/caf\xc3\xa9"},
     true},
    {"path malformed escape compared raw", HTTP, "Path(`/a%zz`)", {.path = "/a%zz"}, true},
    {"pathprefix", HTTP, "PathPrefix(`/api`)", {.path = "/api/v1"}, true},
    {"pathprefix is a byte prefix", HTTP, "PathPrefix(`/api`)", {.path = "/apix"}, true},
    {"pathprefix shorter path", HTTP, "PathPrefix(`/api`)", {.path = "/ap"}, false},
    {"pathprefix root", HTTP, "PathPrefix(`/`)", {.path = "/anything"}, true},
    {"pathprefix decoded", HTTP, "PathPrefix(`/a b/`)", {.path = "/a%20b/c"}, true},
    {"pathregexp", HTTP, "PathRegexp(`^/v[0-9]+/`)", {.path = "/v2/x"}, true},
    {"pathregexp unanchored", HTTP, "PathRegexp(`[0-9]{3}`)", {.path = "/a/123"}, true},
    {"pathregexp no match", HTTP, "PathRegexp(`^/v[0-9]+/`)", {.path = "/x/v2/"}, false},
    {"pathregexp case-sensitive", HTTP, "PathRegexp(`^/api`)", {.path = "/API"}, false},
    {"pathregexp on decoded path", HTTP, "PathRegexp(`^/a b$`)", {.path = "/a%20b"}, true},

    /* Method */
    {"method", HTTP, "Method(`GET`)", {.method = "GET"}, true},
    {"method upper-cased rule", HTTP, "Method(`post`)", {.method = "POST"}, true},
    {"method differs", HTTP, "Method(`GET`)", {.method = "POST"}, false},

    /* Header, HeaderRegexp */
    {"header", HTTP, "Header(`X-Env`, `prod`)", {.headers = {{"x-env", "prod"}}}, true},
    {"header value differs",
     HTTP,
     "Header(`X-Env`, `prod`)",
     {.headers = {{"X-Env", "dev"}}},
     false},
    {"header value is case-sensitive",
     HTTP,
     "Header(`X-Env`, `prod`)",
     {.headers = {{"X-Env", "Prod"}}},
     false},
    {"header absent", HTTP, "Header(`X-Env`, `prod`)", {.headers = {{"X-Other", "prod"}}}, false},
    {"header any of several fields",
     HTTP,
     "Header(`X-Env`, `prod`)",
     {.headers = {{"X-Env", "dev"}, {"Accept", "*/*"}, {"X-ENV", "prod"}}},
     true},
    {"headerregexp", HTTP, "HeaderRegexp(`X-Env`, `^pr`)", {.headers = {{"X-Env", "prod"}}}, true},
    {"headerregexp unanchored",
     HTTP,
     "HeaderRegexp(`User-Agent`, `curl`)",
     {.headers = {{"user-agent", "x curl/8"}}},
     true},
    {"headerregexp no match",
     HTTP,
     "HeaderRegexp(`X-Env`, `^pr`)",
     {.headers = {{"X-Env", "dev"}}},
     false},

    /* Query, QueryRegexp */
    {"query", HTTP, "Query(`a`, `1`)", {.query = "b=2&a=1"}, true},
    {"query value differs", HTTP, "Query(`a`, `1`)", {.query = "a=2"}, false},
    {"query repeated key", HTTP, "Query(`a`, `1`)", {.query = "a=2&a=1"}, true},
    {"query plus is space", HTTP, "Query(`q`, `hello world`)", {.query = "q=hello+world"}, true},
    {"query percent-decoded",
     HTTP,
     "Query(`q`, `hello world`)",
     {.query = "q=hello%20world"},
     true},
    {"query key decoded", HTTP, "Query(`k y`, `v`)", {.query = "k%20y=v"}, true},
    {"query one-arg form, bare key", HTTP, "Query(`a`)", {.query = "x=1&a"}, true},
    {"query one-arg form, empty value", HTTP, "Query(`a`)", {.query = "a="}, true},
    {"query one-arg form, non-empty value", HTTP, "Query(`a`)", {.query = "a=1"}, false},
    {"query segment with semicolon dropped", HTTP, "Query(`a`, `1`)", {.query = "a=1;b=2"}, false},
    {"query no split on semicolon", HTTP, "Query(`b`, `2`)", {.query = "a=1;b=2"}, false},
    {"query malformed escape dropped", HTTP, "Query(`a`, `%zz`)", {.query = "a=%zz"}, false},
    {"query empty", HTTP, "Query(`a`)", {.query = ""}, false},
    {"query value keeps equals", HTTP, "Query(`a`, `b=c`)", {.query = "a=b=c"}, true},
    {"queryregexp", HTTP, "QueryRegexp(`a`, `^[0-9]+$`)", {.query = "a=x&a=42"}, true},
    {"queryregexp decoded value", HTTP, "QueryRegexp(`a`, `^x y$`)", {.query = "a=x+y"}, true},
    {"queryregexp no match", HTTP, "QueryRegexp(`a`, `^[0-9]+$`)", {.query = "a=x"}, false},
    {"queryregexp one-arg form", HTTP, "QueryRegexp(`a`)", {.query = "a="}, true},

    /* ClientIP */
    {"clientip v4 cidr", HTTP, "ClientIP(`10.0.0.0/8`)", {.client = "10.1.2.3"}, true},
    {"clientip v4 outside", HTTP, "ClientIP(`10.0.0.0/8`)", {.client = "11.0.0.1"}, false},
    {"clientip v4 odd prefix",
     HTTP,
     "ClientIP(`192.168.0.0/23`)",
     {.client = "192.168.1.200"},
     true},
    {"clientip v4 odd prefix outside",
     HTTP,
     "ClientIP(`192.168.0.0/23`)",
     {.client = "192.168.2.1"},
     false},
    {"clientip bare v4", HTTP, "ClientIP(`192.168.1.1`)", {.client = "192.168.1.1"}, true},
    {"clientip bare v4 other", HTTP, "ClientIP(`192.168.1.1`)", {.client = "192.168.1.2"}, false},
    {"clientip v6 cidr", HTTP, "ClientIP(`2001:db8::/32`)", {.client = "2001:db8::1"}, true},
    {"clientip v6 outside", HTTP, "ClientIP(`2001:db8::/32`)", {.client = "2001:db9::1"}, false},
    {"clientip bare v6", HTTP, "ClientIP(`::1`)", {.client = "::1"}, true},
    {"clientip v4-mapped client",
     HTTP,
     "ClientIP(`10.0.0.0/8`)",
     {.client = "::ffff:10.1.2.3"},
     true},
    {"clientip v4-mapped client outside",
     HTTP,
     "ClientIP(`10.0.0.0/8`)",
     {.client = "::ffff:11.1.2.3"},
     false},
    {"clientip v4 rule, v6 client",
     HTTP,
     "ClientIP(`0.0.0.0/0`)",
     {.client = "2001:db8::1"},
     false},
    {"clientip v6 rule, v4 client", HTTP, "ClientIP(`::/0`)", {.client = "10.0.0.1"}, false},
    {"clientip no client address", HTTP, "ClientIP(`0.0.0.0/0`)", {.client = NULL}, false},

    /* TCP */
    {"hostsni", TCP, "HostSNI(`a.com`)", {.sni = "A.com"}, true},
    {"hostsni differs", TCP, "HostSNI(`a.com`)", {.sni = "b.com"}, false},
    {"hostsni trailing dot", TCP, "HostSNI(`a.com`)", {.sni = "a.com."}, true},
    {"hostsni no sni", TCP, "HostSNI(`a.com`)", {.sni = NULL}, false},
    {"hostsni star, no sni", TCP, "HostSNI(`*`)", {.sni = NULL}, true},
    {"hostsni star, sni", TCP, "HostSNI(`*`)", {.sni = "x.y"}, true},
    {"hostsni wildcard", TCP, "HostSNI(`*.a.com`)", {.sni = "x.a.com"}, true},
    {"hostsni wildcard two labels", TCP, "HostSNI(`*.a.com`)", {.sni = "y.x.a.com"}, false},
    {"hostsniregexp", TCP, "HostSNIRegexp(`^[a-z]+\\.a\\.com$`)", {.sni = "WWW.a.com"}, true},
    {"hostsniregexp no match", TCP, "HostSNIRegexp(`^b\\.`)", {.sni = "a.b.com"}, false},
    {"alpn", TCP, "ALPN(`h2`)", {.alpns = {"http/1.1", "h2"}}, true},
    {"alpn not offered", TCP, "ALPN(`h2`)", {.alpns = {"http/1.1"}}, false},
    {"alpn none offered", TCP, "ALPN(`h2`)", {.sni = "a.com"}, false},
    {"tcp clientip", TCP, "ClientIP(`10.0.0.0/8`) && HostSNI(`*`)", {.client = "10.9.9.9"}, true},
    {"tcp combination",
     TCP,
     "HostSNI(`a.com`) && (ALPN(`h2`) || ALPN(`http/1.1`))",
     {.sni = "a.com", .alpns = {"http/1.1"}},
     true},
};

static void run_match_case(void **state)
{
    const match_case_t *c = *state;
    weir_rule_t *r = compile_ok(c->rule, c->kind);
    built_req_t b;
    build_req(&c->req, &b);
    bool got = weir_rule_match(r, &b.req);
    weir_rule_free(r);
    if (got != c->want) fail_msg("%s: expected %s", c->rule, c->want ? "match" : "no match");
}

/* ---- error rows ---- */

typedef struct {
    const char *name;
    weir_rule_kind_t kind;
    const char *rule;
    const char *msg;
    size_t offset;
} error_case_t;

static char deep_parens[200];
static char deep_nots[200];

static const error_case_t error_cases[] = {
    {"unknown matcher with suggestion", HTTP, "Hots(`a`)",
     "unknown matcher \"Hots\" (did you mean \"Host\"?)", 0},
    {"unknown matcher later in rule", HTTP, "Host(`a`) && Pth(`/`)",
     "unknown matcher \"Pth\" (did you mean \"Path\"?)", 13},
    {"v2 Headers suggests Header", HTTP, "Headers(`a`, `b`)",
     "unknown matcher \"Headers\" (did you mean \"Header\"?)", 0},
    {"unknown matcher, lower-case suggestion", HTTP, "pathprefx(`/`)",
     "unknown matcher \"pathprefx\" (did you mean \"PathPrefix\"?)", 0},
    {"unknown matcher without suggestion", HTTP, "Frobnicate(`x`)",
     "unknown matcher \"Frobnicate\"", 0},
    {"tcp suggestion", TCP, "HostSNl(`a`)",
     "unknown matcher \"HostSNl\" (did you mean \"HostSNI\"?)", 0},
    {"tcp matcher in http rule", HTTP, "HostSNI(`a`)", "matcher HostSNI is only valid in TCP rules",
     0},
    {"http matcher in tcp rule", TCP, "HostSNI(`a`) && Path(`/`)",
     "matcher Path is only valid in HTTP rules", 16},
    {"missing closing paren of arguments", HTTP, "Host(`a`", "missing ')' after arguments of Host",
     8},
    {"missing opening paren", HTTP, "Host`a`", "expected '(' after Host, found a string", 4},
    {"unclosed group", HTTP, "(Host(`a`)", "unclosed '('", 0},
    {"group closed by garbage", HTTP, "(Host(`a`) Path(`/`))", "expected ')', found \"Path\"", 11},
    {"unmatched closing paren", HTTP, "Host(`a`))", "unmatched ')'", 9},
    {"trailing garbage", HTTP, "Host(`a`) Path(`/`)", "expected '&&' or '||', found \"Path\"", 10},
    {"trailing string", HTTP, "Host(`a`) `b`", "expected '&&' or '||', found a string", 10},
    {"dangling operator", HTTP, "Host(`a`) &&", "expected a matcher, '!' or '(', found end of rule",
     12},
    {"double operator", HTTP, "Host(`a`) && || Path(`/`)",
     "expected a matcher, '!' or '(', found '||'", 13},
    {"single ampersand", HTTP, "Host(`a`) & Path(`/`)", "unexpected '&' (did you mean '&&'?)", 10},
    {"single bar", HTTP, "Host(`a`) | Path(`/`)", "unexpected '|' (did you mean '||'?)", 10},
    {"stray character", HTTP, "Host(`a`) && #", "unexpected character '#'", 13},
    {"empty rule", HTTP, "", "empty rule", 0},
    {"blank rule", HTTP, "   ", "empty rule", 3},
    {"too many arguments", HTTP, "Host(`a`, `b`)", "Host takes 1 argument, got 2", 0},
    {"no arguments", HTTP, "Host()", "Host takes 1 argument, got 0", 0},
    {"too few arguments", HTTP, "Header(`X`)", "Header takes 2 arguments, got 1", 0},
    {"query argument count", HTTP, "Query(`a`, `b`, `c`)", "Query takes 1 or 2 arguments, got 3",
     0},
    {"empty argument", HTTP, "Host(``)", "empty argument to Host", 5},
    {"empty second argument", HTTP, "Header(`X`, \"\")", "empty argument to Header", 12},
    {"trailing comma", HTTP, "Host(`a`,)", "expected an argument of Host, found ')'", 9},
    {"missing comma", HTTP, "Header(`a` `b`)",
     "expected ',' or ')' in arguments of Header, found a string", 11},
    {"unquoted argument", HTTP, "Host(a)", "arguments of Host must be quoted strings", 5},
    {"single quotes", HTTP, "Host('a')",
     "single quotes are not allowed; use backticks or double quotes", 5},
    {"unterminated backtick", HTTP, "Host(`a)", "unterminated string", 5},
    {"unterminated double quote", HTTP, "Host(\"a\\\")", "unterminated string", 5},
    {"newline in double quotes", HTTP, "Host(\"a\nb\")", "unterminated string", 5},
    {"unknown escape", HTTP, "Host(\"a\\qb\")", "unknown escape sequence '\\q'", 7},
    {"short hex escape", HTTP, "Host(\"a\\x4\")", "malformed escape sequence", 7},
    {"surrogate escape", HTTP, "Path(\"/\\ud800\")",
     "escape sequence is an invalid Unicode code point", 7},
    {"bad regexp", HTTP, "PathRegexp(`(a`)",
     "invalid regexp in PathRegexp: missing closing parenthesis", 14},
    {"bad regexp in double quotes", HTTP, "HostRegexp(\"[a\")",
     "invalid regexp in HostRegexp: missing terminating ] for character class", 11},
    {"bad header regexp", HTTP, "HeaderRegexp(`X`, `a{2,1}`)",
     "invalid regexp in HeaderRegexp: numbers out of order in {} quantifier", 24},
    {"bad tcp regexp", TCP, "HostSNIRegexp(`*`)",
     "invalid regexp in HostSNIRegexp: quantifier does not follow a repeatable item", 15},
    {"bad cidr prefix", HTTP, "ClientIP(`10.0.0.0/33`)",
     "invalid IP or CIDR \"10.0.0.0/33\" in ClientIP", 9},
    {"bad ip", HTTP, "ClientIP(`10.0.0.256`)", "invalid IP or CIDR \"10.0.0.256\" in ClientIP", 9},
    {"cidr junk", HTTP, "Host(`a`) && ClientIP(`foo`)", "invalid IP or CIDR \"foo\" in ClientIP",
     22},
    {"v6 prefix too long", TCP, "ClientIP(`::1/129`)", "invalid IP or CIDR \"::1/129\" in ClientIP",
     9},
    {"path without leading slash", HTTP, "Path(`api`)", "path \"api\" must start with '/'", 5},
    {"pathprefix without leading slash", HTTP, "PathPrefix(`api/`)",
     "path \"api/\" must start with '/'", 11},
    {"non-ascii host", HTTP, "Host(`h\xc3\xa9llo.com`)",
     "non-ASCII host in Host; use its punycode form", 5},
    {"misplaced wildcard", HTTP, "Host(`a.*.com`)",
     "invalid wildcard in Host: only \"*\" or a leading \"*.\" label is allowed", 5},
    {"partial-label wildcard", TCP, "HostSNI(`*a.com`)",
     "invalid wildcard in HostSNI: only \"*\" or a leading \"*.\" label is allowed", 8},
    {"acme-tls alpn", TCP, "ALPN(`acme-tls/1`)", "ALPN protocol \"acme-tls/1\" is not allowed", 5},
    {"nesting too deep (parentheses)", HTTP, deep_parens, "rule nests too deeply", 64},
    {"nesting too deep (not)", HTTP, deep_nots, "rule nests too deeply", 64},
};

static void run_error_case(void **state)
{
    const error_case_t *c = *state;
    weir_rule_t *r = (weir_rule_t *)1;
    weir_rule_error_t err;
    memset(&err, 0, sizeof(err));
    int rc = weir_rule_compile(c->rule, c->kind, &r, &err);
    if (rc == 0) weir_rule_free(r);
    assert_int_equal(rc, -1);
    assert_null(r);
    assert_string_equal(err.msg, c->msg);
    assert_int_equal(err.offset, c->offset);
}

static void make_deep_rules(void)
{
    size_t i = 0;
    for (; i < 100; i++)
        deep_parens[i] = '(';
    strcpy(deep_parens + i, "Host(`a`)");
    for (i = 0; i < 100; i++)
        deep_nots[i] = '!';
    strcpy(deep_nots + i, "Host(`a`)");
}

/* ---- single tests ---- */

static void test_nesting_at_limit_compiles(void **state)
{
    char rule[256];
    size_t n = 0;
    for (int i = 0; i < 64; i++)
        rule[n++] = '(';
    n += (size_t)sprintf(rule + n, "Host(`a`)");
    for (int i = 0; i < 64; i++)
        rule[n++] = ')';
    rule[n] = '\0';
    weir_rule_t *r = compile_ok(rule, HTTP);
    spec_t s = {.host = "a"};
    built_req_t b;
    build_req(&s, &b);
    assert_true(weir_rule_match(r, &b.req));
    weir_rule_free(r);
}

static void test_default_priority(void **state)
{
    assert_int_equal(weir_rule_default_priority("Host(`a.com`)", HTTP), 13);
    assert_int_equal(weir_rule_default_priority("HostSNI(`*`)", TCP), -1);
    assert_int_equal(weir_rule_default_priority("  HostSNI(`*`)\n", TCP), -1);
    assert_int_equal(weir_rule_default_priority("HostSNI(`a`)", TCP), 12);
    assert_int_equal(weir_rule_default_priority("HostSNI(`*`) && ALPN(`h2`)", TCP), 26);
    assert_int_equal(weir_rule_default_priority("HostSNI(`*`)", HTTP), 12);
}

static void test_exact_host(void **state)
{
    static const struct {
        weir_rule_kind_t kind;
        const char *rule, *host; /* host NULL: not indexable */
    } rows[] = {
        {HTTP, "Host(`A.com.`)", "a.com"},
        {HTTP, "Host(`a.com`) && Path(`/x`)", "a.com"},
        {HTTP, "Path(`/x`) && Host(`a.com`)", "a.com"},
        {HTTP, "Host(`a.com`) || Path(`/x`)", NULL},
        {HTTP, "!Host(`a.com`)", NULL},
        {HTTP, "Host(`*.a.com`)", NULL},
        {HTTP, "Host(`*`)", NULL},
        {HTTP, "(Host(`a.com`) || Host(`b.com`)) && Path(`/`)", NULL},
        {TCP, "HostSNI(`a.com`) && ALPN(`h2`)", "a.com"},
        {TCP, "HostSNI(`*`)", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        weir_rule_t *r = compile_ok(rows[i].rule, rows[i].kind);
        weir_slice_t h;
        bool got = weir_rule_exact_host(r, &h);
        if (rows[i].host) {
            assert_true(got);
            assert_true(weir_slice_eq(h, weir_slice_cstr(rows[i].host)));
        } else {
            assert_false(got);
        }
        weir_rule_free(r);
    }
}

static void test_host_normalize(void **state)
{
    static const char *rows[][2] = {
        {"Example.COM", "example.com"},
        {"example.com:8080", "example.com"},
        {"example.com.", "example.com"},
        {"example.com.:80", "example.com"},
        {"[::1]:8080", "[::1]"},
        {"[::1]", "[::1]"},
        {"::1", "[::1]"},
        {"[FE80::1]", "[fe80::1]"},
        {"", ""},
        {"1.2.3.4:5", "1.2.3.4"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int n = weir_host_normalize(weir_slice_cstr(rows[i][0]), out, sizeof(out));
        assert_int_equal(n, (int)strlen(rows[i][1]));
        assert_memory_equal(out, rows[i][1], (size_t)n);
    }
    assert_int_equal(weir_host_normalize(weir_slice_cstr("toolong.example"), out, 4), -1);
}

static void test_path_routing(void **state)
{
    static const char *rows[][2] = {
        {"/plain", "/plain"}, {"/a%20b", "/a b"},           {"/a%2fb", "/a%2Fb"},
        {"/%41%42", "/AB"},   {"/%3f%3D%25", "/%3F%3D%25"}, {"/bad%", "/bad%"},
        {"/bad%4", "/bad%4"}, {"/bad%zz", "/bad%zz"},       {"/%e2%82%ac", "/\xe2\x82\xac"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int n = weir_path_routing(weir_slice_cstr(rows[i][0]), out, sizeof(out));
        assert_int_equal(n, (int)strlen(rows[i][1]));
        assert_memory_equal(out, rows[i][1], (size_t)n);
    }
    assert_int_equal(weir_path_routing(weir_slice_cstr("/%2F"), out, 2), -1);
}

static void test_long_encoded_path_compared_raw(void **state)
{
    /* Beyond WEIR_RULE_PATH_MAX the path is not decoded: documented limit. */
    size_t n = WEIR_RULE_PATH_MAX + 100;
    char *path = malloc(n + 1);
    assert_non_null(path);
    memset(path, 'a', n);
    path[0] = '/';
    memcpy(path + n - 3, "%41", 3);
    path[n] = '\0';
    weir_rule_t *r = compile_ok("PathPrefix(`/aaa`) && PathRegexp(`%41$`)", HTTP);
    spec_t s = {.path = path};
    built_req_t b;
    build_req(&s, &b);
    assert_true(weir_rule_match(r, &b.req));
    weir_rule_free(r);
    free(path);
}

static void test_query_helpers(void **state)
{
    char out[16];
    assert_int_equal(weir_query_unescape(weir_slice_cstr("a+b%21"), out, sizeof(out)), 4);
    assert_memory_equal(out, "a b!", 4);
    assert_int_equal(weir_query_unescape(weir_slice_cstr("%2"), out, sizeof(out)), -1);
    assert_int_equal(weir_query_unescape(weir_slice_cstr("abcdef"), out, 3), -1);
    assert_true(weir_query_component_eq(weir_slice_cstr("x%2By"), weir_slice_cstr("x+y")));
    assert_false(weir_query_component_eq(weir_slice_cstr("x+y"), weir_slice_cstr("x+y")));
    assert_false(weir_query_component_eq(weir_slice_cstr("ab"), weir_slice_cstr("abc")));
}

/* ---- CIDR ---- */

static void test_cidr_parse_valid(void **state)
{
    weir_cidr_t c;
    assert_int_equal(weir_cidr_parse("10.1.2.3/8", &c), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.bits, 8);
    assert_memory_equal(c.addr, "\x0a\x00\x00\x00", 4); /* host bits cleared */
    assert_int_equal(weir_cidr_parse("1.2.3.4", &c), 0);
    assert_int_equal(c.bits, 32);
    assert_int_equal(weir_cidr_parse("0.0.0.0/0", &c), 0);
    assert_int_equal(c.bits, 0);
    assert_int_equal(weir_cidr_parse("2001:db8::/32", &c), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(c.bits, 32);
    assert_int_equal(weir_cidr_parse("::1", &c), 0);
    assert_int_equal(c.bits, 128);
    assert_int_equal(weir_cidr_parse("::ffff:10.0.0.0/104", &c), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.bits, 8);
}

static void test_cidr_parse_invalid(void **state)
{
    static const char *bad[] = {
        "",           "1.2.3",    "1.2.3.4/",     "1.2.3.4/-1", "1.2.3.4/33", "1.2.3.4/08",
        "1.2.3.4/a",  "01.2.3.4", "1.2.3.4 ",     " 1.2.3.4",   "::1/129",    "abc",
        "1.2.3.4/3/", "::g",      "1.2.3.4/1000", "/8",
    };
    weir_cidr_t c;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (weir_cidr_parse(bad[i], &c) != -1) fail_msg("accepted \"%s\"", bad[i]);
}

static void test_cidr_contains(void **state)
{
    weir_cidr_t c;
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    assert_int_equal(weir_cidr_parse("172.16.0.0/12", &c), 0);
    inet_pton(AF_INET, "172.31.255.255", &v4.sin_addr);
    assert_true(weir_cidr_contains(&c, (struct sockaddr *)&v4));
    inet_pton(AF_INET, "172.32.0.0", &v4.sin_addr);
    assert_false(weir_cidr_contains(&c, (struct sockaddr *)&v4));
    inet_pton(AF_INET6, "::ffff:172.20.1.1", &v6.sin6_addr);
    assert_true(weir_cidr_contains(&c, (struct sockaddr *)&v6));
    assert_int_equal(weir_cidr_parse("fe80::/10", &c), 0);
    inet_pton(AF_INET6, "febf::1", &v6.sin6_addr);
    assert_true(weir_cidr_contains(&c, (struct sockaddr *)&v6));
    inet_pton(AF_INET6, "fec0::1", &v6.sin6_addr);
    assert_false(weir_cidr_contains(&c, (struct sockaddr *)&v6));
    assert_false(weir_cidr_contains(&c, NULL));
}

/* ---- router tables ---- */

static weir_router_table_t *table_of(const char *const *rules, const int64_t *prio, size_t n,
                                     weir_rule_kind_t kind)
{
    weir_router_table_t *t = weir_router_table_new();
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        int64_t p = prio && prio[i] ? prio[i] : weir_rule_default_priority(rules[i], kind);
        assert_int_equal(
            weir_router_table_add(t, compile_ok(rules[i], kind), p, (void *)(uintptr_t)(i + 1)), 0);
    }
    assert_int_equal(weir_router_table_build(t), 0);
    return t;
}

/* The 1-based index of the route that matched, 0 for none. */
static size_t table_pick(const weir_router_table_t *t, spec_t s)
{
    built_req_t b;
    build_req(&s, &b);
    return (size_t)(uintptr_t)weir_router_table_match(t, &b.req);
}

static void test_priority_longer_rule_wins(void **state)
{
    const char *rules[] = {"PathPrefix(`/`)", "PathPrefix(`/api`)"};
    weir_router_table_t *t = table_of(rules, NULL, 2, HTTP);
    assert_int_equal(table_pick(t, (spec_t){.path = "/api/x"}), 2);
    assert_int_equal(table_pick(t, (spec_t){.path = "/other"}), 1);
    weir_router_table_free(t);
}

static void test_priority_explicit(void **state)
{
    const char *rules[] = {"PathPrefix(`/`)", "PathPrefix(`/api`)"};
    const int64_t prio[] = {1000, 0};
    weir_router_table_t *t = table_of(rules, prio, 2, HTTP);
    assert_int_equal(table_pick(t, (spec_t){.path = "/api/x"}), 1);
    weir_router_table_free(t);
}

static void test_priority_negative(void **state)
{
    const char *rules[] = {"PathPrefix(`/a`)", "PathPrefix(`/`)"};
    const int64_t prio[] = {-5, -1};
    weir_router_table_t *t = table_of(rules, prio, 2, HTTP);
    assert_int_equal(table_pick(t, (spec_t){.path = "/a"}), 2);
    weir_router_table_free(t);
}

static void test_priority_ties_insertion_order(void **state)
{
    const char *rules[] = {"PathPrefix(`/b`)", "PathPrefix(`/a`)", "PathPrefix(`/x`)",
                           "PathPrefix(`/a`)"};
    weir_router_table_t *t = table_of(rules, NULL, 4, HTTP);
    assert_int_equal(table_pick(t, (spec_t){.path = "/a"}), 2);
    weir_router_table_free(t);
}

static void test_priority_ties_indexed_and_general(void **state)
{
    /* Same priority: the one added first wins whichever list holds it. */
    const char *rules[] = {"PathPrefix(`/`)", "Host(`a.com`)", "Host(`a.com`)"};
    const int64_t prio[] = {7, 7, 7};
    weir_router_table_t *t = table_of(rules, prio, 3, HTTP);
    assert_int_equal(table_pick(t, (spec_t){.host = "a.com"}), 1);
    weir_router_table_free(t);
    const char *rules2[] = {"Host(`a.com`)", "PathPrefix(`/`)"};
    t = table_of(rules2, prio, 2, HTTP);
    assert_int_equal(table_pick(t, (spec_t){.host = "a.com"}), 1);
    weir_router_table_free(t);
}

static void test_tcp_catch_all_last(void **state)
{
    const char *rules[] = {"HostSNI(`*`)", "HostSNI(`a.com`)", "HostSNI(`*.b.com`)"};
    weir_router_table_t *t = table_of(rules, NULL, 3, TCP);
    assert_int_equal(table_pick(t, (spec_t){.sni = "A.COM"}), 2);
    assert_int_equal(table_pick(t, (spec_t){.sni = "x.b.com"}), 3);
    assert_int_equal(table_pick(t, (spec_t){.sni = "c.com"}), 1);
    assert_int_equal(table_pick(t, (spec_t){.sni = NULL}), 1);
    weir_router_table_free(t);
}

static void test_table_10000_hosts(void **state)
{
    weir_router_table_t *t = weir_router_table_new();
    char rule[64];
    for (size_t i = 0; i < 10000; i++) {
        snprintf(rule, sizeof(rule), "Host(`host%zu.example.com`)", i);
        assert_int_equal(weir_router_table_add(t, compile_ok(rule, HTTP),
                                               weir_rule_default_priority(rule, HTTP),
                                               (void *)(uintptr_t)(i + 1)),
                         0);
    }
    assert_int_equal(weir_router_table_build(t), 0);
    assert_int_equal(weir_router_table_size(t), 10000);
    assert_int_equal(table_pick(t, (spec_t){.host = "host0.example.com"}), 1);
    assert_int_equal(table_pick(t, (spec_t){.host = "host4999.example.com"}), 5000);
    assert_int_equal(table_pick(t, (spec_t){.host = "HOST9999.Example.com:8443"}), 10000);
    assert_int_equal(table_pick(t, (spec_t){.host = "host123.example.com."}), 124);
    assert_int_equal(table_pick(t, (spec_t){.host = "host10000.example.com"}), 0);
    assert_int_equal(table_pick(t, (spec_t){.host = "unknown.test"}), 0);
    assert_int_equal(table_pick(t, (spec_t){.host = NULL}), 0);
    weir_router_table_free(t);
}

static void test_table_general_beats_indexed(void **state)
{
    const char *rules[] = {"Host(`a.com`) && Path(`/x`)", "PathPrefix(`/`)", "HostRegexp(`^b\\.`)"};
    const int64_t prio[] = {10, 100, 50};
    weir_router_table_t *t = table_of(rules, prio, 3, HTTP);
    assert_int_equal(table_pick(t, (spec_t){.host = "a.com", .path = "/x"}), 2);
    weir_router_table_free(t);

    const int64_t prio2[] = {10, 5, 50};
    t = table_of(rules, prio2, 3, HTTP);
    assert_int_equal(table_pick(t, (spec_t){.host = "a.com", .path = "/x"}), 1);
    assert_int_equal(table_pick(t, (spec_t){.host = "a.com", .path = "/y"}), 2);
    assert_int_equal(table_pick(t, (spec_t){.host = "b.com", .path = "/x"}), 3);
    weir_router_table_free(t);
}

static void test_table_bucket_merge_order(void **state)
{
    /* Indexed and general ranks interleave: 30 (a.com), 25 (general),
     * 20 (a.com), 15 (general); the walk must visit them in that order. */
    const char *rules[] = {"Host(`a.com`) && Header(`X`, `1`)", "Header(`X`, `2`)",
                           "Host(`a.com`) && Path(`/p`)", "PathPrefix(`/`)"};
    const int64_t prio[] = {30, 25, 20, 15};
    weir_router_table_t *t = table_of(rules, prio, 4, HTTP);
    assert_int_equal(table_pick(t, (spec_t){.host = "a.com", .headers = {{"X", "1"}}}), 1);
    assert_int_equal(
        table_pick(t, (spec_t){.host = "a.com", .path = "/p", .headers = {{"X", "2"}}}), 2);
    assert_int_equal(table_pick(t, (spec_t){.host = "a.com", .path = "/p"}), 3);
    assert_int_equal(table_pick(t, (spec_t){.host = "a.com", .path = "/q"}), 4);
    assert_int_equal(table_pick(t, (spec_t){.host = "z.com", .path = "/p"}), 4);
    weir_router_table_free(t);
}

static void test_table_rebuild_after_add(void **state)
{
    const char *rules[] = {"Host(`a.com`)"};
    weir_router_table_t *t = table_of(rules, NULL, 1, HTTP);
    assert_int_equal(weir_router_table_add(t, compile_ok("Host(`a.com`) && Path(`/`)", HTTP), 99,
                                           (void *)(uintptr_t)2),
                     0);
    assert_int_equal(weir_router_table_build(t), 0);
    assert_int_equal(weir_router_table_size(t), 2);
    assert_int_equal(table_pick(t, (spec_t){.host = "a.com", .path = "/"}), 2);
    weir_router_table_free(t);
}

static void test_table_empty(void **state)
{
    weir_router_table_t *t = weir_router_table_new();
    assert_int_equal(weir_router_table_build(t), 0);
    assert_int_equal(weir_router_table_size(t), 0);
    assert_int_equal(table_pick(t, (spec_t){.host = "a.com"}), 0);
    weir_router_table_free(t);
}

/* Regexp matchers keep a match block per thread: several threads sharing
 * one compiled rule must all get the right answers. */
static void *thread_body(void *arg)
{
    const weir_rule_t *r = arg;
    spec_t yes = {.host = "abc.example.com", .path = "/v1/x"};
    spec_t no = {.host = "abc.example.com", .path = "/x"};
    built_req_t by, bn;
    build_req(&yes, &by);
    build_req(&no, &bn);
    for (int i = 0; i < 2000; i++)
        if (!weir_rule_match(r, &by.req) || weir_rule_match(r, &bn.req)) return (void *)1;
    return NULL;
}

static void test_threads_share_rule(void **state)
{
    weir_rule_t *r = compile_ok("HostRegexp(`^[a-z]+\\.example`) && PathRegexp(`^/v[0-9]/`)", HTTP);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_body, r), 0);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(th[i], &res);
        assert_null(res);
    }
    weir_rule_free(r);
}

/* ---- weir_rule_hosts ---- */

/* Every Host / HostSNI argument, anywhere in the tree, normalised, in rule
 * order; the count is the total even when out is shorter. */
static void test_rule_hosts(void **state)
{
    static const struct {
        weir_rule_kind_t kind;
        const char *rule;
        const char *hosts[4];
        size_t count;
    } rows[] = {
        {HTTP, "Host(`A.com`)", {"a.com"}, 1},
        {HTTP, "Host(`a.com.`) && Path(`/x`)", {"a.com"}, 1},
        {HTTP, "Host(`a.com`) || (Path(`/x`) && Host(`B.com`))", {"a.com", "b.com"}, 2},
        {HTTP, "!Host(`c.com`) && Method(`GET`)", {"c.com"}, 1},
        {HTTP, "Host(`*.x.com`) || Host(`*`)", {"*.x.com", "*"}, 2},
        {HTTP, "HostRegexp(`^a\\.com$`) && PathPrefix(`/`)", {NULL}, 0},
        {HTTP, "Path(`/`)", {NULL}, 0},
        {TCP,
         "HostSNI(`Db.Example.com`) || HostSNI(`*.example.org`)",
         {"db.example.com", "*.example.org"},
         2},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        weir_rule_t *r = compile_ok(rows[i].rule, rows[i].kind);
        weir_slice_t out[4];
        assert_int_equal(weir_rule_hosts(r, NULL, 0), rows[i].count);
        assert_int_equal(weir_rule_hosts(r, out, 4), rows[i].count);
        for (size_t k = 0; k < rows[i].count; k++)
            if (!weir_slice_eq(out[k], weir_slice_cstr(rows[i].hosts[k])))
                fail_msg("%s: host %zu is \"%.*s\", want \"%s\"", rows[i].rule, k, (int)out[k].len,
                         out[k].ptr, rows[i].hosts[k]);
        weir_rule_free(r);
    }
    /* out shorter than the list: the first ones, the full count */
    weir_rule_t *r = compile_ok("Host(`a.com`) || Host(`b.com`) || Host(`c.com`)", HTTP);
    weir_slice_t two[3] = {{0}};
    assert_int_equal(weir_rule_hosts(r, two, 2), 3);
    assert_true(weir_slice_eq(two[0], WEIR_SLICE_LIT("a.com")));
    assert_true(weir_slice_eq(two[1], WEIR_SLICE_LIT("b.com")));
    assert_null(two[2].ptr);
    weir_rule_free(r);
}

/* ---- registration ---- */

#define N_MATCH (sizeof(match_cases) / sizeof(match_cases[0]))
#define N_ERROR (sizeof(error_cases) / sizeof(error_cases[0]))

static const struct CMUnitTest single_tests[] = {
    cmocka_unit_test(test_nesting_at_limit_compiles),
    cmocka_unit_test(test_default_priority),
    cmocka_unit_test(test_exact_host),
    cmocka_unit_test(test_host_normalize),
    cmocka_unit_test(test_path_routing),
    cmocka_unit_test(test_long_encoded_path_compared_raw),
    cmocka_unit_test(test_query_helpers),
    cmocka_unit_test(test_cidr_parse_valid),
    cmocka_unit_test(test_cidr_parse_invalid),
    cmocka_unit_test(test_cidr_contains),
    cmocka_unit_test(test_priority_longer_rule_wins),
    cmocka_unit_test(test_priority_explicit),
    cmocka_unit_test(test_priority_negative),
    cmocka_unit_test(test_priority_ties_insertion_order),
    cmocka_unit_test(test_priority_ties_indexed_and_general),
    cmocka_unit_test(test_tcp_catch_all_last),
    cmocka_unit_test(test_table_10000_hosts),
    cmocka_unit_test(test_table_general_beats_indexed),
    cmocka_unit_test(test_table_bucket_merge_order),
    cmocka_unit_test(test_table_rebuild_after_add),
    cmocka_unit_test(test_table_empty),
    cmocka_unit_test(test_threads_share_rule),
    cmocka_unit_test(test_rule_hosts),
};

#define N_SINGLE (sizeof(single_tests) / sizeof(single_tests[0]))

int main(void)
{
    static struct CMUnitTest tests[N_MATCH + N_ERROR + N_SINGLE];
    static char names[N_MATCH + N_ERROR][128];
    size_t n = 0;
    make_deep_rules();
    for (size_t i = 0; i < N_MATCH; i++, n++) {
        snprintf(names[n], sizeof(names[n]), "match: %s", match_cases[i].name);
        tests[n] =
            (struct CMUnitTest){names[n], run_match_case, NULL, NULL, (void *)&match_cases[i]};
    }
    for (size_t i = 0; i < N_ERROR; i++, n++) {
        snprintf(names[n], sizeof(names[n]), "error: %s", error_cases[i].name);
        tests[n] =
            (struct CMUnitTest){names[n], run_error_case, NULL, NULL, (void *)&error_cases[i]};
    }
    for (size_t i = 0; i < N_SINGLE; i++, n++)
        tests[n] = single_tests[i];
    return _cmocka_run_group_tests("rules", tests, n, NULL, NULL);
}
