/* Micro-benchmark: router table match time with 10 vs 10,000 Host routers.
 * Not built by make; from the repository root, link it with the .c files
 * of src/rules:
 *   gcc -std=gnu11 -O2 -D_GNU_SOURCE -Isrc -o /tmp/rules_bench \
 *       bench/rules_bench.c src/rules/[a-z]*.c -lpcre2-8
 * Each figure is the best of several rounds, in nanoseconds per match. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "rules/rules.h"

#define ROUNDS 7
#define MATCHES 2000000

static weir_router_table_t *host_table(size_t n)
{
    weir_router_table_t *t = weir_router_table_new();
    char rule[80];
    weir_rule_error_t err;
    for (size_t i = 0; i < n; i++) {
        weir_rule_t *r;
        snprintf(rule, sizeof(rule), "Host(`host%zu.example.com`) && PathPrefix(`/`)", i);
        if (weir_rule_compile(rule, WEIR_RULE_HTTP, &r, &err) != 0 ||
            weir_router_table_add(t, r, weir_rule_default_priority(rule, WEIR_RULE_HTTP),
                                  (void *)(uintptr_t)(i + 1)) != 0) {
            fprintf(stderr, "setup failed: %s\n", err.msg);
            exit(1);
        }
    }
    if (weir_router_table_build(t) != 0) exit(1);
    return t;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Matches requests for hosts[i % nhosts]; returns the best ns per match. */
static double run(const weir_router_table_t *t, char (*hosts)[64], size_t nhosts)
{
    double best = 1e30;
    weir_rule_req_t req = {.method = WEIR_SLICE_LIT("GET"), .path = WEIR_SLICE_LIT("/index")};
    for (int round = 0; round < ROUNDS; round++) {
        uintptr_t sink = 0;
        double start = now_ns();
        for (size_t i = 0; i < MATCHES; i++) {
            req.host = weir_slice_cstr(hosts[i % nhosts]);
            sink += (uintptr_t)weir_router_table_match(t, &req);
        }
        double ns = (now_ns() - start) / MATCHES;
        if (sink == 1) /* keep the loop */
            puts("");
        if (ns < best) best = ns;
    }
    return best;
}

int main(void)
{
    static char few[10][64], many[10000][64], unknown[1][64] = {"nowhere.example.org:8080"};
    for (size_t i = 0; i < 10; i++)
        snprintf(few[i], sizeof(few[i]), "Host%zu.Example.com:443", i);
    for (size_t i = 0; i < 10000; i++)
        snprintf(many[i], sizeof(many[i]), "host%zu.example.com", (i * 7919) % 10000);
    weir_router_table_t *t10 = host_table(10), *t10k = host_table(10000);

    printf("%-44s %10s %10s\n", "ns per match", "10", "10,000");
    printf("%-44s %10.1f %10.1f\n", "same 10 hosts (present in both)", run(t10, few, 10),
           run(t10k, few, 10));
    printf("%-44s %10.1f %10.1f\n", "unknown host", run(t10, unknown, 1), run(t10k, unknown, 1));
    printf("%-44s %10s %10.1f\n", "all 10,000 hosts in turn (cache-cold)", "-",
           run(t10k, many, 10000));
    weir_router_table_free(t10);
    weir_router_table_free(t10k);
    return 0;
}
