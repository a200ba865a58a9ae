/* libFuzzer target for the rule language: the input, as a NUL-terminated
 * rule, is compiled as an HTTP rule and as a TCP rule; whatever compiles is
 * matched against a few fixed requests, put in a router table, and freed.
 * Catches crashes, leaks, deep recursion and runaway regexps. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"

static const weir_header_t headers[] = {
    {WEIR_SLICE_LIT("X-Env"), WEIR_SLICE_LIT("prod")},
    {WEIR_SLICE_LIT("User-Agent"), WEIR_SLICE_LIT("curl/8.0")},
};

static const weir_slice_t alpns[] = {WEIR_SLICE_LIT("h2"), WEIR_SLICE_LIT("http/1.1")};

static void match_requests(const weir_rule_t *rule)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_addr = {htonl(0x0a000001)}};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    v6.sin6_addr.s6_addr[15] = 1;
    weir_rule_req_t reqs[3] = {
        {.method = WEIR_SLICE_LIT("GET"),
         .host = WEIR_SLICE_LIT("API.Example.com:8443"),
         .path = WEIR_SLICE_LIT("/v1/caf%C3%A9/a%2Fb"),
         .query = WEIR_SLICE_LIT("a=1&b=x+y&c=%zz&d;e=2&flag"),
         .headers = headers,
         .num_headers = 2,
         .client = (const struct sockaddr *)&v4,
         .sni = WEIR_SLICE_LIT("api.example.com"),
         .alpns = alpns,
         .num_alpns = 2},
        {.method = WEIR_SLICE_LIT("POST"),
         .host = WEIR_SLICE_LIT("[::1]:80"),
         .path = WEIR_SLICE_LIT("/"),
         .client = (const struct sockaddr *)&v6},
        {.host = WEIR_SLICE_NULL},
    };
    for (size_t i = 0; i < 3; i++)
        (void)weir_rule_match(rule, &reqs[i]);
}

static void try_kind(const char *text, weir_rule_kind_t kind)
{
    weir_rule_t *rule;
    weir_rule_error_t err;
    if (weir_rule_compile(text, kind, &rule, &err) != 0) {
        if (!memchr(err.msg, '\0', sizeof(err.msg)) || err.offset > strlen(text))
            abort(); /* errors must be terminated and point inside the text */
        return;
    }
    match_requests(rule);
    weir_slice_t host;
    (void)weir_rule_exact_host(rule, &host);
    (void)weir_rule_default_priority(text, kind);
    weir_router_table_t *t = weir_router_table_new();
    if (!t || weir_router_table_add(t, rule, 1, (void *)1) != 0) {
        weir_rule_free(rule);
        weir_router_table_free(t);
        return;
    }
    if (weir_router_table_build(t) == 0) {
        weir_rule_req_t req = {.host = WEIR_SLICE_LIT("api.example.com"),
                               .path = WEIR_SLICE_LIT("/v1"),
                               .sni = WEIR_SLICE_LIT("api.example.com")};
        (void)weir_router_table_match(t, &req);
    }
    weir_router_table_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    try_kind(text, WEIR_RULE_HTTP);
    try_kind(text, WEIR_RULE_TCP);
    free(text);
    return 0;
}
