/* Unit tests of the configuration module (src/config).
 *
 * Run from the repository root: fixtures are read by relative path from
 * tests/unit/config/ (good/ parses into an expected model, bad/ fails with
 * an exact list of "file:line:column: message" errors).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

#define GOOD "tests/unit/config/good/"
#define BAD "tests/unit/config/bad/"

/* ---- helpers ---- */

static void print_errors(const weir_config_errors_t *errs)
{
    for (size_t i = 0; i < errs->count; i++) {
        char *s = weir_config_error_format(&errs->items[i]);
        print_message("  got: %s\n", s);
        free(s);
    }
}

static weir_config_t *load_ok(const char *path)
{
    weir_config_t *cfg = NULL;
    weir_config_errors_t errs;
    int rc = weir_config_load(path, &cfg, &errs);
    print_errors(&errs);
    assert_int_equal(errs.count, 0);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    weir_config_errors_free(&errs);
    return cfg;
}

/* Compares every error, printing both lists when they differ. */
static void check_errors(weir_config_errors_t *errs, const char *const *want, size_t n)
{
    bool same = errs->count == n;
    for (size_t i = 0; same && i < n; i++) {
        char *s = weir_config_error_format(&errs->items[i]);
        same = strcmp(s, want[i]) == 0;
        free(s);
    }
    if (!same) {
        print_errors(errs);
        for (size_t i = 0; i < n; i++)
            print_message("  want: %s\n", want[i]);
    }
    assert_true(same);
    weir_config_errors_free(errs);
}

static void expect_load_errors(const char *path, const char *const *want, size_t n)
{
    weir_config_t *cfg = (weir_config_t *)&cfg; /* must be reset to NULL */
    weir_config_errors_t errs;
    assert_int_equal(weir_config_load(path, &cfg, &errs), -1);
    assert_null(cfg);
    check_errors(&errs, want, n);
}

#define EXPECT_ERRORS(path, ...)                                                                   \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__};                                                 \
        expect_load_errors(path, want_, sizeof want_ / sizeof want_[0]);                           \
    } while (0)

static void expect_buffer_errors(const char *yaml, const char *const *want, size_t n)
{
    weir_config_t *cfg = NULL;
    weir_config_errors_t errs;
    assert_int_equal(weir_config_load_buffer("buf.yml", yaml, strlen(yaml),
                                             WEIR_CONFIG_NO_DNS | WEIR_CONFIG_NO_FILES, &cfg,
                                             &errs),
                     -1);
    assert_null(cfg);
    check_errors(&errs, want, n);
}

#define EXPECT_BUFFER_ERRORS(yaml, ...)                                                            \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__};                                                 \
        expect_buffer_errors(yaml, want_, sizeof want_ / sizeof want_[0]);                         \
    } while (0)

static weir_config_t *buffer_ok(const char *yaml)
{
    weir_config_t *cfg = NULL;
    weir_config_errors_t errs;
    int rc = weir_config_load_buffer("buf.yml", yaml, strlen(yaml),
                                     WEIR_CONFIG_NO_DNS | WEIR_CONFIG_NO_FILES, &cfg, &errs);
    print_errors(&errs);
    assert_int_equal(rc, 0);
    weir_config_errors_free(&errs);
    return cfg;
}

static const weir_router_cfg_t *router(const weir_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->num_routers; i++)
        if (strcmp(cfg->routers[i].name, name) == 0) return &cfg->routers[i];
    fail_msg("no router %s", name);
    return NULL;
}

static const weir_service_cfg_t *service(const weir_config_t *cfg, const char *ref)
{
    int i = weir_config_find_service(cfg, ref);
    if (i < 0) fail_msg("no service %s", ref);
    return &cfg->services[i];
}

static int port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void assert_addr(const struct sockaddr_storage *ss, const char *want_ip, int want_port)
{
    char ip[INET6_ADDRSTRLEN];
    const void *a = ss->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    assert_non_null(inet_ntop(ss->ss_family, a, ip, sizeof ip));
    assert_string_equal(ip, want_ip);
    assert_int_equal(port_of(ss), want_port);
}

static const char *const MINIMAL = "entryPoints:\n  web:\n    address: \":8080\"\n";

/* ---- durations ---- */

static void test_duration_table(void **state)
{
    static const struct {
        const char *text;
        int ok;
        int64_t ms;
    } cases[] = {
        {"0", 1, 0},
        {"0s", 1, 0},
        {"250ms", 1, 250},
        {"10s", 1, 10000},
        {"1m30s", 1, 90000},
        {"1h", 1, 3600000},
        {"1.5s", 1, 1500},
        {".5s", 1, 500},
        {"5.s", 1, 5000},
        {"60", 1, 60000},
        {"+2s", 1, 2000},
        {"1h2m3s4ms", 1, 3723004},
        {"100us", 1, 1},
        {"1500us", 1, 1},
        {"2500\xc2\xb5s", 1, 2},
        {"999ns", 1, 1},
        {"1000000ns", 1, 1},
        {"2562047h", 1, 9223369200000},
        {"-1s", 0, 0},
        {"-1", 0, 0},
        {"", 0, 0},
        {"1", 1, 1000},
        {"1.5", 0, 0},
        {"s", 0, 0},
        {"10 s", 0, 0},
        {"10S", 0, 0},
        {"1d", 0, 0},
        {".", 0, 0},
        {".s", 0, 0},
        {"3000000h", 0, 0},
        {"9223372036854775807", 0, 0},
        {"1e3s", 0, 0},
        {"10s ", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -42;
        int rc = weir_duration_parse(cases[i].text, &ms);
        if ((rc == 0) != cases[i].ok || (cases[i].ok && ms != cases[i].ms))
            fail_msg("\"%s\": rc %d ms %lld", cases[i].text, rc, (long long)ms);
    }
}

/* ---- good files ---- */

static void test_good_quickstart(void **state)
{
    weir_config_t *cfg = load_ok(GOOD "quickstart.yml");
    assert_int_equal(cfg->num_files, 1);
    assert_string_equal(cfg->files[0], GOOD "quickstart.yml");
    assert_int_equal(cfg->num_entrypoints, 1);
    const weir_entrypoint_cfg_t *web = &cfg->entrypoints[0];
    assert_string_equal(web->name, "web");
    assert_string_equal(web->address, ":8080");
    assert_int_equal(port_of(&web->addr), 8080);
    assert_int_equal(web->udp, 0);
    assert_int_equal(web->pos.line, 7);
    assert_int_equal(web->pos.col, 3);
    assert_int_equal(cfg->log.level, WEIR_LOG_INFO);
    assert_int_equal(cfg->access_log.enabled, 1);
    assert_int_equal(cfg->access_log.json, 1);
    assert_int_equal(cfg->workers, 2);

    /* sorted by name; internal services included */
    assert_int_equal(cfg->num_routers, 3);
    assert_string_equal(cfg->routers[0].name, "app");
    assert_string_equal(cfg->routers[1].name, "secure");
    assert_string_equal(cfg->routers[2].name, "whoami");
    assert_int_equal(cfg->num_services, 3);
    assert_string_equal(cfg->services[0].name, "app");
    assert_string_equal(cfg->services[1].name, "noop@internal");
    assert_string_equal(cfg->services[2].name, "whoami@internal");
    assert_int_equal(cfg->services[2].kind, WEIR_SERVICE_INTERNAL);

    const weir_router_cfg_t *app = router(cfg, "app");
    assert_int_equal(app->priority, 100);
    assert_int_equal(app->num_entrypoints, 1);
    assert_string_equal(app->entrypoints[0], "web");
    assert_non_null(app->compiled);
    assert_string_equal(cfg->services[app->service_index].name, "app");

    const weir_router_cfg_t *who = router(cfg, "whoami");
    assert_int_equal(who->num_entrypoints, 0); /* all entry points */
    assert_int_equal(who->priority, (int64_t)strlen("Host(`whoami.localhost`)"));
    assert_string_equal(cfg->services[who->service_index].name, "whoami@internal");
    assert_int_equal(who->rule_pos.line, 23);
    assert_int_equal(who->rule_pos.col, 13);
    assert_int_equal(who->tls, 0);

    const weir_router_cfg_t *sec = router(cfg, "secure");
    assert_int_equal(sec->tls, 1);
    assert_int_equal(sec->service_index, app->service_index); /* "app@file" */

    const weir_service_cfg_t *s = service(cfg, "app");
    assert_int_equal(s->kind, WEIR_SERVICE_LOADBALANCER);
    assert_int_equal(s->pass_host_header, 0);
    assert_int_equal(s->transport_index, 0);
    assert_int_equal(s->num_servers, 2);
    assert_int_equal(s->servers[0].scheme, WEIR_SCHEME_HTTP);
    assert_string_equal(s->servers[0].host, "127.0.0.1");
    assert_string_equal(s->servers[0].authority, "127.0.0.1:8081");
    assert_string_equal(s->servers[0].path, "");
    assert_int_equal(s->servers[0].port, 8081);
    assert_int_equal(s->servers[0].weight, 1);
    assert_addr(&s->servers[0].addr, "127.0.0.1", 8081);
    assert_string_equal(s->servers[1].host, "localhost");
    assert_string_equal(s->servers[1].path, "/base");
    assert_int_equal(s->servers[1].weight, 3);
    assert_int_equal(port_of(&s->servers[1].addr), 8082);
    weir_config_free(cfg);
}

static void test_good_static_file(void **state)
{
    weir_config_t *cfg = load_ok(GOOD "static_file.yml");
    assert_int_equal(cfg->num_files, 2);
    assert_string_equal(cfg->files[1], GOOD "dynamic.yml");
    assert_string_equal(cfg->provider_filename, GOOD "dynamic.yml");
    assert_null(cfg->provider_directory);
    assert_int_equal(cfg->provider_watch, 0);
    assert_int_equal(cfg->providers_throttle_ms, 500);

    const weir_entrypoint_cfg_t *admin = &cfg->entrypoints[1];
    assert_string_equal(admin->name, "admin");
    assert_addr(&admin->addr, "127.0.0.1", 8081);
    assert_int_equal(admin->read_timeout_ms, 5000);
    assert_int_equal(admin->idle_timeout_ms, 180000);
    assert_int_equal(admin->max_header_bytes, 65536);
    assert_int_equal(admin->num_fwd_trusted, 2);
    assert_int_equal(admin->fwd_trusted[0].family, AF_INET);
    assert_int_equal(admin->fwd_trusted[0].bits, 8);
    assert_int_equal(admin->fwd_trusted[1].bits, 32);

    /* transports: [0] static default@internal, then the dynamic ones */
    assert_int_equal(cfg->num_transports, 2);
    assert_string_equal(cfg->transports[0].name, "default@internal");
    assert_int_equal(cfg->transports[0].max_idle_conns_per_host, 50);
    assert_int_equal(cfg->transports[0].insecure_skip_verify, 1);
    assert_string_equal(cfg->transports[1].name, "slow");
    assert_int_equal(cfg->transports[1].timeouts.dial_timeout_ms, 2000);
    assert_int_equal(cfg->transports[1].timeouts.read_idle_timeout_ms, 10000);
    assert_int_equal(cfg->transports[1].timeouts.ping_timeout_ms, 15000);
    assert_int_equal(cfg->transports[1].max_idle_conns_per_host, 200);

    const weir_router_cfg_t *api = router(cfg, "api");
    assert_string_equal(api->pos.file, GOOD "dynamic.yml");
    assert_int_equal(api->pos.line, 3);
    assert_string_equal(api->entrypoints[0], "admin");
    const weir_service_cfg_t *canary = &cfg->services[api->service_index];
    assert_string_equal(canary->name, "canary");
    assert_int_equal(canary->kind, WEIR_SERVICE_WEIGHTED);
    assert_int_equal(canary->num_children, 2);
    assert_string_equal(cfg->services[canary->children[0].index].name, "v1");
    assert_int_equal(canary->children[0].weight, 9);
    assert_string_equal(canary->children[1].name, "v2@file");
    assert_string_equal(cfg->services[canary->children[1].index].name, "v2");
    assert_int_equal(canary->children[1].weight, 1);
    assert_int_equal(service(cfg, "v1")->transport_index, 1);
    assert_int_equal(service(cfg, "v2")->transport_index, 0);
    assert_int_equal(service(cfg, "v2")->servers[0].scheme, WEIR_SCHEME_H2C);
    weir_config_free(cfg);
}

static void test_good_static_dir(void **state)
{
    weir_config_t *cfg = load_ok(GOOD "static_dir.yml");
    /* sorted by name, subdirectories too, other files ignored */
    assert_int_equal(cfg->num_files, 4);
    assert_string_equal(cfg->files[1], GOOD "dir/10-routers.yml");
    assert_string_equal(cfg->files[2], GOOD "dir/20-services.yaml");
    assert_string_equal(cfg->files[3], GOOD "dir/sub/30-more.yml");
    const weir_router_cfg_t *front = router(cfg, "front");
    const weir_service_cfg_t *back = &cfg->services[front->service_index];
    assert_string_equal(back->name, "back");
    assert_string_equal(back->pos.file, GOOD "dir/20-services.yaml");
    assert_int_equal(back->servers[0].scheme, WEIR_SCHEME_HTTPS);
    assert_int_equal(back->servers[0].port, 443);
    assert_string_equal(back->servers[0].authority, "127.0.0.1");
    assert_string_equal(cfg->services[router(cfg, "nested")->service_index].name, "noop@internal");
    weir_config_free(cfg);
}

static void test_good_durations(void **state)
{
    weir_config_t *cfg = load_ok(GOOD "durations.yml");
    const weir_entrypoint_cfg_t *ep = &cfg->entrypoints[0];
    assert_int_equal(ep->read_timeout_ms, 90000);
    assert_int_equal(ep->write_timeout_ms, 250);
    assert_int_equal(ep->idle_timeout_ms, 60000);
    assert_int_equal(ep->grace_timeout_ms, 1500);
    assert_int_equal(ep->request_accept_grace_timeout_ms, 0);
    assert_int_equal(cfg->providers_throttle_ms, 3000);
    const weir_forwarding_timeouts_t *t = &cfg->transports[0].timeouts;
    assert_int_equal(t->dial_timeout_ms, 3600000);
    assert_int_equal(t->response_header_timeout_ms, 120000);
    assert_int_equal(t->idle_conn_timeout_ms, 0);
    assert_int_equal(t->read_idle_timeout_ms, 10000);
    assert_int_equal(t->ping_timeout_ms, 1);
    weir_config_free(cfg);
}

static void test_good_ipv6(void **state)
{
    weir_config_t *cfg = load_ok(GOOD "ipv6.yml");
    assert_int_equal(cfg->num_entrypoints, 3);
    assert_addr(&cfg->entrypoints[0].addr, "::1", 8080);
    assert_int_equal(cfg->entrypoints[0].addrlen, sizeof(struct sockaddr_in6));
    assert_addr(&cfg->entrypoints[1].addr, "127.0.0.1", 8080);
    const weir_entrypoint_cfg_t *dns = &cfg->entrypoints[2];
    assert_int_equal(dns->udp, 1);
    assert_int_equal(port_of(&dns->addr), 53);
    assert_int_equal(dns->num_fwd_trusted, 2);
    assert_int_equal(dns->fwd_trusted[1].family, AF_INET6);
    assert_int_equal(dns->fwd_trusted[1].bits, 32);
    const weir_service_cfg_t *s = service(cfg, "s");
    assert_string_equal(s->servers[0].host, "::1");
    assert_string_equal(s->servers[0].authority, "[::1]:9000");
    assert_string_equal(s->servers[0].path, "/base/");
    assert_addr(&s->servers[0].addr, "::1", 9000);
    assert_addr(&s->servers[1].addr, "2001:db8::1", 443);
    assert_string_equal(s->servers[1].authority, "[2001:db8::1]");
    weir_config_free(cfg);
}

static void test_good_yaml_features(void **state)
{
    weir_config_t *cfg = load_ok(GOOD "yaml_features.yml");
    assert_int_equal(cfg->num_entrypoints, 1);
    const weir_router_cfg_t *a = router(cfg, "a"), *b = router(cfg, "b");
    assert_string_equal(a->rule, "Path(`/a`)");
    assert_string_equal(b->rule, "Path(`/b`)");
    assert_string_equal(b->service, "second");
    const weir_service_cfg_t *first = service(cfg, "first"), *second = service(cfg, "second");
    assert_int_equal(first->pass_host_header, 0);
    assert_int_equal(second->pass_host_header, 1);
    assert_int_equal(second->num_servers, 1);
    assert_int_equal(second->servers[0].port, 7000);
    weir_config_free(cfg);
}

static void test_defaults(void **state)
{
    weir_config_t *cfg = buffer_ok(MINIMAL);
    const weir_entrypoint_cfg_t *ep = &cfg->entrypoints[0];
    assert_int_equal(ep->read_timeout_ms, 60000);
    assert_int_equal(ep->write_timeout_ms, 0);
    assert_int_equal(ep->idle_timeout_ms, 180000);
    assert_int_equal(ep->grace_timeout_ms, 10000);
    assert_int_equal(ep->request_accept_grace_timeout_ms, 0);
    assert_int_equal(ep->max_header_bytes, 1048576);
    assert_int_equal(ep->num_fwd_trusted, 0);
    assert_int_equal(ep->fwd_insecure, 0);
    assert_int_equal(ep->address_pos.line, 3);
    assert_int_equal(ep->address_pos.col, 14);
    assert_int_equal(cfg->workers, 0);
    assert_int_equal(cfg->log.level, WEIR_LOG_ERROR);
    assert_null(cfg->log.file_path);
    assert_int_equal(cfg->log.json, 0);
    assert_int_equal(cfg->access_log.enabled, 0);
    assert_int_equal(cfg->providers_throttle_ms, 2000);
    assert_int_equal(cfg->provider_watch, 1);
    assert_null(cfg->provider_filename);
    assert_int_equal(cfg->num_transports, 1);
    const weir_servers_transport_cfg_t *t = &cfg->transports[0];
    assert_string_equal(t->name, "default@internal");
    assert_int_equal(t->max_idle_conns_per_host, 200);
    assert_int_equal(t->insecure_skip_verify, 0);
    assert_int_equal(t->timeouts.dial_timeout_ms, 30000);
    assert_int_equal(t->timeouts.response_header_timeout_ms, 0);
    assert_int_equal(t->timeouts.idle_conn_timeout_ms, 90000);
    assert_int_equal(t->timeouts.read_idle_timeout_ms, 0);
    assert_int_equal(t->timeouts.ping_timeout_ms, 15000);
    assert_int_equal(cfg->num_routers, 0);
    assert_int_equal(cfg->num_services, 2);
    weir_config_free(cfg);
}

static void test_find_service(void **state)
{
    weir_config_t *cfg = load_ok(GOOD "quickstart.yml");
    assert_int_equal(weir_config_find_service(cfg, "app"), 0);
    assert_int_equal(weir_config_find_service(cfg, "app@file"), 0);
    assert_int_equal(weir_config_find_service(cfg, "noop@internal"), 1);
    assert_int_equal(weir_config_find_service(cfg, "whoami@internal"), 2);
    assert_int_equal(weir_config_find_service(cfg, "whoami"), -1);
    assert_int_equal(weir_config_find_service(cfg, "app@internal"), -1);
    assert_int_equal(weir_config_find_service(cfg, "app@docker"), -1);
    assert_int_equal(weir_config_find_service(cfg, "ap"), -1);
    assert_int_equal(weir_config_find_service(cfg, "apps"), -1);
    assert_int_equal(weir_config_find_service(cfg, ""), -1);
    assert_int_equal(weir_config_find_service(NULL, "app"), -1);
    weir_config_free(cfg);
}

static void test_provider_is_static_file(void **state)
{
    weir_config_t *cfg = load_ok(GOOD "self.yml");
    assert_int_equal(cfg->num_routers, 1);
    assert_int_equal(cfg->num_files, 1);
    weir_config_free(cfg);
}

static void test_reload_dynamic(void **state)
{
    weir_config_t *base = load_ok(GOOD "quickstart.yml");
    weir_config_t *cfg = NULL;
    weir_config_errors_t errs;
    int rc = weir_config_reload_dynamic(base, GOOD "reload.yml", &cfg, &errs);
    print_errors(&errs);
    assert_int_equal(rc, 0);
    weir_config_free(base); /* the reloaded configuration owns its copies */
    assert_int_equal(cfg->num_entrypoints, 1);
    assert_string_equal(cfg->entrypoints[0].address, ":8080"); /* from base */
    assert_string_equal(cfg->entrypoints[0].pos.file, GOOD "reload.yml");
    assert_int_equal(cfg->log.level, WEIR_LOG_INFO); /* from base */
    assert_int_equal(cfg->workers, 2);
    assert_int_equal(cfg->access_log.json, 1);
    assert_int_equal(cfg->num_routers, 1);
    assert_string_equal(cfg->routers[0].name, "fresh");
    assert_int_equal(cfg->num_services, 2);
    weir_config_free(cfg);
    weir_config_errors_free(&errs);
}

static void test_reload_uses_base_entrypoints(void **state)
{
    weir_config_t *base = buffer_ok("entryPoints:\n  web:\n    address: \":8080\"\n");
    weir_config_t *cfg = NULL;
    weir_config_errors_t errs;
    /* static_dir.yml names no entry point "admin": the router fails */
    assert_int_equal(weir_config_reload_dynamic(base, GOOD "dynamic.yml", &cfg, &errs), -1);
    assert_null(cfg);
    const char *const want[] = {
        GOOD "dynamic.yml:5:11: http.routers.api.entryPoints[0]: entry point \"admin\" does "
             "not exist",
    };
    check_errors(&errs, want, 1);
    weir_config_free(base);
}

/* ---- bad files ---- */

static void test_bad_unknown_key(void **state)
{
    EXPECT_ERRORS(BAD "unknown_key.yml",
                  BAD "unknown_key.yml:2:3: entryPoints.web: missing address (such as \":8080\")",
                  BAD "unknown_key.yml:3:5: unknown key \"adress\" in entryPoints.web (did you "
                      "mean \"address\"?)");
}

static void test_bad_wrong_type(void **state)
{
    EXPECT_ERRORS(BAD "wrong_type.yml",
                  BAD "wrong_type.yml:5:23: entryPoints.web.http.maxHeaderBytes: expected an "
                      "integer, got \"lots\"",
                  BAD "wrong_type.yml:10:9: http.routers.r.entryPoints: expected a list, got a "
                      "map");
}

static void test_bad_missing_service(void **state)
{
    EXPECT_ERRORS(BAD "missing_service.yml",
                  BAD "missing_service.yml:8:16: http.routers.r.service: service \"whomi\" does "
                      "not exist (did you mean \"whoami\"?)");
}

/* The message comes from the rules module; the position is this module's
 * job: the value's column plus the error offset (plus the opening quote and
 * the doubled '' for the single-quoted value). */
static void test_bad_invalid_rule(void **state)
{
    weir_rule_t *r = NULL;
    weir_rule_error_t e1, e2;
    assert_int_equal(weir_rule_compile("Host(`a`) && Hots(`b`)", WEIR_RULE_HTTP, &r, &e1), -1);
    assert_int_equal(weir_rule_compile("Path(`/it's`) && Hots(`b`)", WEIR_RULE_HTTP, &r, &e2), -1);
    assert_true(e2.offset > 10); /* past the quote that is written twice */
    char want1[512], want2[512];
    snprintf(want1, sizeof want1, BAD "invalid_rule.yml:7:%d: http.routers.plain.rule: %s",
             13 + (int)e1.offset, e1.msg);
    snprintf(want2, sizeof want2, BAD "invalid_rule.yml:10:%d: http.routers.quoted.rule: %s",
             13 + 1 + (int)e2.offset + 1, e2.msg);
    EXPECT_ERRORS(BAD "invalid_rule.yml", want1, want2);
}

static void test_bad_duplicate_address(void **state)
{
    EXPECT_ERRORS(BAD "duplicate_address.yml",
                  BAD "duplicate_address.yml:5:14: entryPoints.other.address: "
                      "\"127.0.0.1:8080/tcp\" is already used by entry point \"web\" "
                      "(\"127.0.0.1:8080\")",
                  BAD "duplicate_address.yml:9:14: entryPoints.all.address: \":8080\" is already "
                      "used by entry point \"web\" (\"127.0.0.1:8080\")");
}

static void test_bad_duration(void **state)
{
    EXPECT_ERRORS(BAD "bad_duration.yml",
                  BAD "bad_duration.yml:6:22: entryPoints.web.transport.respondingTimeouts."
                      "readTimeout: invalid duration \"10 seconds\" (use Go syntax such as "
                      "\"10s\", \"1m30s\", \"250ms\", or a number of seconds)",
                  BAD "bad_duration.yml:7:22: entryPoints.web.transport.respondingTimeouts."
                      "idleTimeout: invalid duration \"-1s\" (use Go syntax such as \"10s\", "
                      "\"1m30s\", \"250ms\", or a number of seconds)");
}

static void test_bad_scheme(void **state)
{
    EXPECT_ERRORS(BAD "bad_scheme.yml",
                  BAD "bad_scheme.yml:9:18: http.services.s.loadBalancer.servers[0].url: "
                      "unsupported scheme \"ftp\" in \"ftp://127.0.0.1/files\" (use http, https "
                      "or h2c)",
                  BAD "bad_scheme.yml:10:18: http.services.s.loadBalancer.servers[1].url: "
                      "invalid URL \"127.0.0.1:8080\": missing scheme (http://, https:// or "
                      "h2c://)");
}

static void test_bad_middleware(void **state)
{
    EXPECT_ERRORS(BAD "middleware.yml",
                  BAD "middleware.yml:9:7: http.routers.r.middlewares: middlewares are not "
                      "supported yet",
                  BAD "middleware.yml:10:3: http.middlewares: middlewares are not supported yet");
}

static void test_bad_unsupported(void **state)
{
    EXPECT_ERRORS(BAD "unsupported.yml",
                  BAD "unsupported.yml:4:5: entryPoints.web.observability: not supported yet",
                  BAD "unsupported.yml:5:1: api: not supported yet",
                  BAD "unsupported.yml:9:5: tcp.middlewares.m: needs ipAllowList or inFlightConn",
                  BAD "unsupported.yml:9:9: tcp.middlewares.m.ipWhiteList: not supported yet");
}

static void test_bad_syntax(void **state)
{
    EXPECT_ERRORS(BAD "syntax.yml",
                  BAD "syntax.yml:4:4: YAML syntax error: did not find expected key (while "
                      "parsing a block mapping at line 2, column 3)");
}

static void test_bad_missing_provider(void **state)
{
    EXPECT_ERRORS(BAD "missing_provider.yml",
                  BAD "missing_provider.yml:6:15: providers.file.filename: cannot read "
                      "\"" BAD "does-not-exist.yml\": No such file or directory");
}

static void test_bad_dup_router(void **state)
{
    EXPECT_ERRORS(BAD "dup_router.yml",
                  BAD "dup_router/b.yml:6:5: http.routers.api: defined twice (first at " BAD
                      "dup_router/a.yml:3:5)");
}

static void test_bad_cycle(void **state)
{
    EXPECT_ERRORS(BAD "cycle.yml",
                  BAD "cycle.yml:15:19: http.services.b.weighted.services[1].name: weighted "
                      "services form a cycle: a -> b -> a");
}

static void test_bad_several(void **state)
{
    EXPECT_ERRORS(
        BAD "several.yml",
        BAD "several.yml:3:14: entryPoints.web.address: invalid port \"80800\" in address "
            "\":80800\" (0 to 65535)",
        BAD "several.yml:5:10: log.level: unknown level \"verbose\" (DEBUG, INFO, WARN, ERROR, "
            "FATAL or PANIC)",
        BAD "several.yml:6:11: log.format: unknown format \"text\" (common or json)",
        BAD "several.yml:8:11: accessLog.format: unknown format \"xml\" (common, genericCLF or "
            "json)",
        BAD "several.yml:11:5: http.routers.nosvc: missing service",
        BAD "several.yml:13:5: http.routers.norule: missing rule",
        BAD "several.yml:14:16: http.routers.norule.service: service \"whoami\" does not exist "
            "(did you mean \"whoami@internal\"?)",
        BAD "several.yml:18:7: http.services.both.weighted: a service has one type: "
            "loadBalancer or weighted, not both",
        BAD "several.yml:19:5: http.services.neither: needs a loadBalancer or a weighted section",
        BAD "several.yml:23:19: http.services.w.weighted.services[0].name: service \"missing\" "
            "does not exist",
        BAD "several.yml:24:21: http.services.w.weighted.services[0].weight: -1 is out of range "
            "(0 to 2147483647)");
}

static void test_bad_empty(void **state)
{
    EXPECT_ERRORS(BAD "empty.yml",
                  BAD "empty.yml:1:1: no entry points defined (add entryPoints.<name>.address)");
}

static void test_bad_toml(void **state)
{
    EXPECT_ERRORS(BAD "toml.yml",
                  BAD "toml/dynamic.toml:1:1: TOML is not supported (write the file in YAML)");
}

static void test_bad_missing_static_file(void **state)
{
    EXPECT_ERRORS(BAD "nope.yml",
                  BAD "nope.yml: cannot read \"" BAD "nope.yml\": No such file or directory");
}

/* ---- in-memory cases ---- */

static void test_no_dns(void **state)
{
    EXPECT_BUFFER_ERRORS(
        "entryPoints:\n  web:\n    address: \"example.invalid:80\"\n"
        "http:\n  services:\n    s:\n      loadBalancer:\n        servers:\n"
        "          - url: http://backend.invalid\n"
        "          - url: http://LOCALHOST:81\n",
        "buf.yml:3:14: entryPoints.web.address: cannot resolve host \"example.invalid\": name "
        "resolution is off",
        "buf.yml:9:18: http.services.s.loadBalancer.servers[0].url: cannot resolve host "
        "\"backend.invalid\": name resolution is off");
}

static void test_alias_bomb(void **state)
{
    /* "billion laughs": stopped early instead of expanding 10^9 nodes */
    EXPECT_BUFFER_ERRORS("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                         "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                         "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                         "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                         "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
                         "buf.yml:5:44: aliases expand to too many nodes (more than 100000 "
                         "added)");
}

static void test_yaml_structure_errors(void **state)
{
    EXPECT_BUFFER_ERRORS("a: *nope\n", "buf.yml:1:4: unknown anchor \"nope\" (an alias must "
                                       "follow its anchor)");
    EXPECT_BUFFER_ERRORS("a: &x [*x]\n", "buf.yml:1:8: unknown anchor \"x\" (an alias must "
                                         "follow its anchor)");
    EXPECT_BUFFER_ERRORS("entryPoints: {}\n---\nx: 1\n",
                         "buf.yml:2:1: several YAML documents in one file are not supported");
    EXPECT_BUFFER_ERRORS("a:\n  <<: 3\n",
                         "buf.yml:2:3: the merge key \"<<\" needs a map or a list of maps");
    EXPECT_BUFFER_ERRORS("- a\n", "buf.yml:1:1: expected a map, got a list",
                         "buf.yml:1:1: no entry points defined (add entryPoints.<name>.address)");
    EXPECT_BUFFER_ERRORS("\xff\n", "buf.yml:1:1: YAML syntax error: invalid leading UTF-8 octet");
}

static void test_duplicate_keys(void **state)
{
    EXPECT_BUFFER_ERRORS(
        "entryPoints:\n  web:\n    address: \":80\"\n  web:\n    address: \":81\"\n"
        "entrypoints: {}\n",
        "buf.yml:4:3: entryPoints.web: defined twice in this map (first at line 2)",
        "buf.yml:6:1: duplicate key \"entrypoints\" (first at line 1)");
}

static void test_router_details(void **state)
{
    EXPECT_BUFFER_ERRORS(
        "entryPoints:\n  web:\n    address: \":80\"\n  dns:\n    address: \":53/udp\"\n"
        "http:\n  routers:\n    r:\n      rule: Path(`/`)\n      ruleSyntax: v2\n"
        "      service: noop@internal\n      priority: 9223372036854775807\n"
        "      entryPoints: [dns]\n      tls:\n        certResolver: le\n"
        "    r@x:\n      rule: Path(`/`)\n      service: noop\n",
        "buf.yml:10:19: http.routers.r.ruleSyntax: only the v3 rule syntax is supported, got "
        "\"v2\"",
        "buf.yml:12:17: http.routers.r.priority: 9223372036854775807 is out of range "
        "(-9223372036854775808 to 9223372036854774807)",
        "buf.yml:13:21: http.routers.r.entryPoints[0]: entry point \"dns\" is a UDP entry point",
        "buf.yml:15:9: http.routers.r.tls.certResolver: not supported yet",
        "buf.yml:16:5: http.routers.r@x: a name must not contain \"@\"");
}

static void test_service_details(void **state)
{
    EXPECT_BUFFER_ERRORS(
        "entryPoints:\n  web:\n    address: \":80\"\n"
        "http:\n  services:\n    s:\n      loadBalancer:\n        strategy: p2c\n"
        "        serversTransport: slo\n        sticky: {}\n        servers:\n"
        "          - url: http://127.0.0.1:0\n          - weight: 2\n"
        "          - url: http://user@127.0.0.1\n          - url: http://[::1\n"
        "  serversTransports:\n    slow:\n      peerCertURI: x\n",
        "buf.yml:8:19: http.services.s.loadBalancer.strategy: strategy \"p2c\" is not supported "
        "yet (only wrr)",
        "buf.yml:9:27: http.services.s.loadBalancer.serversTransport: serversTransport \"slo\" "
        "does not exist (did you mean \"slow\"?)",
        "buf.yml:10:9: http.services.s.loadBalancer.sticky: not supported yet",
        "buf.yml:12:18: http.services.s.loadBalancer.servers[0].url: invalid URL "
        "\"http://127.0.0.1:0\": invalid port \"0\" (1 to 65535)",
        "buf.yml:13:13: http.services.s.loadBalancer.servers[1]: missing url",
        "buf.yml:14:18: http.services.s.loadBalancer.servers[2].url: invalid URL "
        "\"http://user@127.0.0.1\": user information in a server URL is not supported",
        "buf.yml:15:18: http.services.s.loadBalancer.servers[3].url: invalid URL "
        "\"http://[::1\": missing \"]\" after an IPv6 address",
        "buf.yml:18:7: http.serversTransports.slow.peerCertURI: not supported yet");
}

static void test_static_details(void **state)
{
    EXPECT_BUFFER_ERRORS(
        "entryPoints:\n  a:\n    address: \"::1:80\"\n  b:\n    address: \":80/sctp\"\n"
        "  c:\n    address: \":http\"\n  d:\n    forwardedHeaders:\n"
        "      trustedIPs: [\"10.0.0.0/33\"]\n      insecure: maybe\n    address: \":0\"\n"
        "providers:\n  file: {filename: a.yml, directory: d}\n  docker: {}\n"
        "core:\n  workers: -1\n  defaultRuleSyntax: v2\nglobal:\n  checkNewVersion: yes\n"
        "serversTransport:\n  maxIdleConnsPerHost: 1.5\n",
        "buf.yml:3:14: entryPoints.a.address: invalid address \"::1:80\" (use \":port\", "
        "\"host:port\" or \"[ipv6]:port\")",
        "buf.yml:5:14: entryPoints.b.address: invalid protocol \"sctp\" (use /tcp or /udp)",
        "buf.yml:7:14: entryPoints.c.address: invalid port \"http\" in address \":http\" (0 to "
        "65535)",
        "buf.yml:10:20: entryPoints.d.forwardedHeaders.trustedIPs[0]: invalid IP address or "
        "CIDR \"10.0.0.0/33\"",
        "buf.yml:11:17: entryPoints.d.forwardedHeaders.insecure: expected true or false, got "
        "\"maybe\"",
        "buf.yml:14:3: providers.file: set filename or directory, not both",
        "buf.yml:15:3: providers.docker: not supported yet",
        "buf.yml:17:12: core.workers: -1 is out of range (0 to 4096)",
        "buf.yml:18:22: core.defaultRuleSyntax: only the v3 rule syntax is supported, got \"v2\"",
        "buf.yml:20:20: global.checkNewVersion: expected true or false, got \"yes\"",
        "buf.yml:22:24: serversTransport.maxIdleConnsPerHost: expected an integer, got \"1.5\"");
}

/* A key that is present with a wrong value gets one error, not a second
 * "missing" one. */
static void test_present_but_wrong(void **state)
{
    EXPECT_BUFFER_ERRORS(
        "entryPoints:\n  web:\n    address: [1]\n"
        "http:\n  routers:\n    r:\n      rule: {a: b}\n      service: [s]\n"
        "  services:\n    s:\n      weighted:\n        services:\n          - name: \"\"\n"
        "          - name: ~\n          - weight: 1\n",
        "buf.yml:3:14: entryPoints.web.address: expected a string, got a list",
        "buf.yml:7:13: http.routers.r.rule: expected a string, got a map",
        "buf.yml:8:16: http.routers.r.service: expected a string, got a list",
        "buf.yml:13:19: http.services.s.weighted.services[0].name: expected a service name, got "
        "nothing",
        "buf.yml:14:19: http.services.s.weighted.services[1].name: expected a service name, got "
        "nothing",
        "buf.yml:15:13: http.services.s.weighted.services[2]: missing name");
}

static void test_lenient_values(void **state)
{
    /* Traefik converts values from text: quoted numbers and booleans work,
     * and an empty section is an empty map. */
    weir_config_t *cfg = buffer_ok("entryPoints:\n  web:\n    address: :8080\n"
                                   "    http:\n      maxHeaderBytes: \"0\"\n"
                                   "    forwardedHeaders:\n      insecure: \"True\"\n"
                                   "accessLog:\nlog:\n  level: warn\n  filePath: \"\"\n"
                                   "serversTransport:\n  maxIdleConnsPerHost: 0\n"
                                   "http:\n  routers:\n  services:\n    e:\n"
                                   "      loadBalancer:\n        servers:\n");
    assert_int_equal(cfg->entrypoints[0].max_header_bytes, 1048576);
    assert_int_equal(cfg->entrypoints[0].fwd_insecure, 1);
    assert_int_equal(cfg->access_log.enabled, 1);
    assert_int_equal(cfg->access_log.json, 0);
    assert_int_equal(cfg->log.level, WEIR_LOG_WARN);
    assert_null(cfg->log.file_path);
    assert_int_equal(cfg->transports[0].max_idle_conns_per_host, 2);
    assert_int_equal(service(cfg, "e")->num_servers, 0);
    weir_config_free(cfg);
}

static void test_garbage_never_crashes(void **state)
{
    static const char *const inputs[] = {
        "",
        "[",
        "]",
        "{",
        "- - -",
        "a: [1, {b: }]",
        "*a",
        "&a b",
        "!!map x",
        "? [a]\n: b",
        "\"\\x00\"",
        "entryPoints: [1]",
        "http: 1",
        "http:\n  routers:\n    r: 3\n",
        "entryPoints:\n  ? [a]\n  : b\n",
        "http:\n  services:\n    s:\n      weighted:\n        services: [3, {name: s}]\n",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        weir_config_t *cfg = NULL;
        weir_config_errors_t errs;
        int rc = weir_config_load_buffer("g.yml", inputs[i], strlen(inputs[i]),
                                         WEIR_CONFIG_NO_DNS | WEIR_CONFIG_NO_FILES, &cfg, &errs);
        assert_int_equal(rc, -1);
        assert_null(cfg);
        assert_true(errs.count > 0);
        weir_config_errors_free(&errs);
    }
    /* bytes after a NUL are still input */
    weir_config_t *cfg = NULL;
    weir_config_errors_t errs;
    assert_int_equal(
        weir_config_load_buffer("n.yml", "a: b\0c", 6, WEIR_CONFIG_NO_DNS, &cfg, &errs), -1);
    weir_config_errors_free(&errs);
}

static void test_error_format(void **state)
{
    weir_config_error_t e = {{"f.yml", 3, 7}, "boom"};
    char *s = weir_config_error_format(&e);
    assert_string_equal(s, "f.yml:3:7: boom");
    free(s);
    e.pos.line = 0;
    s = weir_config_error_format(&e);
    assert_string_equal(s, "f.yml: boom");
    free(s);
    weir_config_errors_t empty = {0};
    weir_config_errors_free(&empty);
    weir_config_free(NULL);
}


/* ---- TLS, redirections, HTTP/2 settings ---- */

static void test_tls_defaults(void **state)
{
    weir_config_t *cfg = buffer_ok(MINIMAL);
    assert_int_equal(cfg->num_tls_options, 1);
    const weir_tls_options_cfg_t *o = &cfg->tls_options[0];
    assert_string_equal(o->name, "default");
    assert_int_equal(o->min_version, 0x0303);
    assert_int_equal(o->max_version, 0);
    assert_int_equal(o->num_alpn, 3);
    assert_string_equal(o->alpn[0], "h2");
    assert_string_equal(o->alpn[1], "http/1.1");
    assert_string_equal(o->alpn[2], "acme-tls/1");
    assert_int_equal(o->client_auth, WEIR_CLIENT_AUTH_NONE);
    const weir_entrypoint_cfg_t *ep = &cfg->entrypoints[0];
    assert_int_equal(ep->h2_max_concurrent_streams, 250);
    assert_int_equal(ep->h2_max_decoder_table_size, 4096);
    assert_int_equal(ep->h2_max_encoder_table_size, 4096);
    assert_null(ep->redirect_to);
    assert_int_equal(ep->http_tls, 0);
    weir_config_free(cfg);
}

static const char *const TLS_GOOD =
    "entryPoints:\n"
    "  web:\n"
    "    address: \":80\"\n"
    "    http:\n"
    "      redirections:\n"
    "        entryPoint: {to: websecure, scheme: https, permanent: false, priority: 10}\n"
    "  websecure:\n"
    "    address: \":8443\"\n"
    "    http2: {maxConcurrentStreams: 32, maxDecoderHeaderTableSize: 8192}\n"
    "    http:\n"
    "      tls: {options: modern, domains: [{main: Example.COM, sans: [\"*.example.com\"]}]}\n"
    "tls:\n"
    "  certificates:\n"
    "    - certFile: /c/a.crt\n"
    "      keyFile: /c/a.key\n"
    "      stores: [default]\n"
    "  stores:\n"
    "    default:\n"
    "      defaultCertificate: {certFile: /c/d.crt, keyFile: /c/d.key}\n"
    "  options:\n"
    "    default: {minVersion: VersionTLS13}\n"
    "    modern:\n"
    "      minVersion: VersionTLS12\n"
    "      maxVersion: VersionTLS13\n"
    "      cipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n"
    "      curvePreferences: [CurveP256, X25519]\n"
    "      sniStrict: true\n"
    "      alpnProtocols: [http/1.1]\n"
    "      disableSessionTickets: true\n"
    "      clientAuth:\n"
    "        caFiles: [/c/ca.crt]\n"
    "        clientAuthType: RequireAndVerifyClientCert\n"
    "http:\n"
    "  routers:\n"
    "    r:\n"
    "      rule: \"Host(`a`)\"\n"
    "      service: noop@internal\n"
    "      tls: {options: modern@file, domains: [{main: a.test}]}\n";

static void test_tls_good(void **state)
{
    weir_config_t *cfg = buffer_ok(TLS_GOOD);
    assert_int_equal(cfg->num_tls_options, 2);
    assert_string_equal(cfg->tls_options[0].name, "default");
    assert_int_equal(cfg->tls_options[0].min_version, 0x0304);
    const weir_tls_options_cfg_t *m = &cfg->tls_options[1];
    assert_string_equal(m->name, "modern");
    assert_int_equal(m->min_version, 0x0303);
    assert_int_equal(m->max_version, 0x0304);
    assert_int_equal(m->num_cipher_suites, 2);
    assert_int_equal(m->num_curves, 2);
    assert_true(m->sni_strict);
    assert_true(m->disable_session_tickets);
    assert_int_equal(m->num_alpn, 1);
    assert_string_equal(m->alpn[0], "http/1.1");
    assert_int_equal(m->num_ca_files, 1);
    assert_int_equal(m->client_auth, WEIR_CLIENT_AUTH_REQUIRE_AND_VERIFY);
    assert_int_equal(cfg->num_tls_certs, 1);
    assert_string_equal(cfg->tls_certs[0].cert_file, "/c/a.crt");
    assert_int_equal(cfg->tls_certs[0].cert_pos.line, 14);
    assert_int_equal(cfg->num_tls_stores, 1);
    assert_string_equal(cfg->tls_stores[0].default_cert_file, "/c/d.crt");
    const weir_router_cfg_t *r = router(cfg, "r");
    assert_true(r->tls);
    assert_int_equal(r->tls_options_index, 1);
    assert_int_equal(r->num_tls_domains, 1);
    assert_string_equal(r->tls_domains[0], "a.test");
    const weir_entrypoint_cfg_t *web = &cfg->entrypoints[0], *sec = &cfg->entrypoints[1];
    assert_string_equal(web->redirect_to, "websecure");
    assert_int_equal(web->redirect_port, 8443);
    assert_false(web->redirect_permanent);
    assert_int_equal(web->redirect_priority, 10);
    assert_string_equal(web->redirect_scheme, "https");
    assert_true(sec->http_tls);
    assert_string_equal(sec->http_tls_options, "modern");
    assert_int_equal(sec->num_http_tls_domains, 2);
    assert_string_equal(sec->http_tls_domains[0], "example.com");
    assert_string_equal(sec->http_tls_domains[1], "*.example.com");
    assert_int_equal(sec->h2_max_concurrent_streams, 32);
    assert_int_equal(sec->h2_max_decoder_table_size, 8192);
    weir_config_free(cfg);
}

static void test_tls_reload_keeps_entrypoint_tls(void **state)
{
    char path[] = "/tmp/weir-test-tls-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, TLS_GOOD, strlen(TLS_GOOD)), (ssize_t)strlen(TLS_GOOD));
    close(fd);
    weir_config_t *base = NULL, *next = NULL;
    weir_config_errors_t errs;
    assert_int_equal(weir_config_load(path, &base, &errs), 0);
    weir_config_errors_free(&errs);
    assert_int_equal(weir_config_reload_dynamic(base, path, &next, &errs), 0);
    weir_config_errors_free(&errs);
    weir_config_free(base); /* the copy must not share the entry points' strings */
    assert_string_equal(next->entrypoints[0].redirect_to, "websecure");
    assert_int_equal(next->entrypoints[0].redirect_port, 8443);
    assert_string_equal(next->entrypoints[1].http_tls_options, "modern");
    assert_int_equal(next->num_tls_options, 2);
    weir_config_free(next);
    unlink(path);
}

static void test_http3_good(void **state)
{
    weir_config_t *cfg = buffer_ok(
        "entryPoints:\n"
        "  a:\n"
        "    address: \":8443\"\n"
        "    http3: {}\n"
        "  b:\n"
        "    address: \":9443\"\n"
        "    http3: {advertisedPort: 443, retry: always, zeroRTT: true, altSvcMaxAge: 60}\n"
        "  c:\n"
        "    address: \":80\"\n"
        "http:\n"
        "  routers:\n"
        "    r: {rule: \"Host(`a`)\", service: noop@internal, tls: {}}\n"
        "    q: {rule: \"Host(`b`)\", service: noop@internal, advertiseHTTP3: false}\n");
    const weir_entrypoint_cfg_t *a = &cfg->entrypoints[0], *b = &cfg->entrypoints[1],
                                 *c = &cfg->entrypoints[2];
    assert_true(a->http3);
    assert_int_equal(a->h3_advertised_port, 0);
    assert_int_equal(a->h3_retry, WEIR_H3_RETRY_AUTO);
    assert_false(a->h3_zero_rtt);
    assert_int_equal(a->h3_alt_svc_max_age, 2592000);
    assert_int_equal(a->http3_pos.line, 4);
    assert_true(b->http3);
    assert_int_equal(b->h3_advertised_port, 443);
    assert_int_equal(b->h3_retry, WEIR_H3_RETRY_ALWAYS);
    assert_true(b->h3_zero_rtt);
    assert_int_equal(b->h3_alt_svc_max_age, 60);
    assert_false(c->http3);
    assert_true(router(cfg, "r")->advertise_http3);
    assert_false(router(cfg, "q")->advertise_http3);
    weir_config_free(cfg);
}

static void test_http3_bad(void **state)
{
    EXPECT_BUFFER_ERRORS(
        "entryPoints:\n"
        "  a:\n"
        "    address: \":8443\"\n"
        "    http3: {advertisedPort: -1, retry: maybe, altSvcMaxAge: -5}\n"
        "  u:\n"
        "    address: \":53/udp\"\n"
        "    http3: {advertisedPort: 70000}\n",
        "buf.yml:4:29: entryPoints.a.http3.advertisedPort: must be a port number from 0 to 65535 "
        "(0: the listening port)",
        "buf.yml:4:40: entryPoints.a.http3.retry: expected auto, always or never, got \"maybe\"",
        "buf.yml:4:61: entryPoints.a.http3.altSvcMaxAge: -5 is out of range (0 to 2147483647)",
        "buf.yml:7:5: entryPoints.u.http3: HTTP/3 needs a TCP entry point (it opens the same port "
        "on UDP); :53/udp is a UDP address",
        "buf.yml:7:29: entryPoints.u.http3.advertisedPort: must be a port number from 0 to 65535 "
        "(0: the listening port)");
}

static void test_tls_bad(void **state)
{
    EXPECT_BUFFER_ERRORS(
        "entryPoints:\n"
        "  web:\n"
        "    address: \":80\"\n"
        "    http: {redirections: {entryPoint: {to: webscure}}}\n"
        "    http2: {maxConcurrentStreams: 0}\n"
        "tls:\n"
        "  certificates:\n"
        "    - {certFile: /a.crt}\n"
        "  options:\n"
        "    o1: {minVersion: VersionTLS14, cipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA257]}\n"
        "    o2: {minVersion: VersionTLS13, maxVersion: VersionTLS12}\n"
        "    o3: {clientAuth: {clientAuthType: VerifyClientCertIfGiven}}\n"
        "    o4: {curvePreferences: [CurveP999], clientAuth: {clientAuthType: Nope}}\n"
        "http:\n"
        "  routers:\n"
        "    r: {rule: \"Host(`a`)\", service: noop@internal, tls: {options: o5, certResolver: le}}\n",
        "buf.yml:4:44: entryPoints.web.http.redirections.entryPoint.to: entry point \"webscure\" "
        "does not exist",
        "buf.yml:5:35: entryPoints.web.http2.maxConcurrentStreams: must be greater than 0",
        "buf.yml:8:7: tls.certificates[0]: missing keyFile",
        "buf.yml:10:22: tls.options.o1.minVersion: unknown TLS version \"VersionTLS14\" (did you "
        "mean \"VersionTLS10\"?)",
        "buf.yml:10:51: tls.options.o1.cipherSuites[0]: unknown cipher suite "
        "\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA257\" (did you mean "
        "\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"?)",
        "buf.yml:11:5: tls.options.o2: minVersion is above maxVersion",
        "buf.yml:12:39: tls.options.o3.clientAuth: VerifyClientCertIfGiven needs caFiles",
        "buf.yml:13:29: tls.options.o4.curvePreferences[0]: unknown curve \"CurveP999\"",
        "buf.yml:13:70: tls.options.o4.clientAuth.clientAuthType: unknown clientAuthType \"Nope\"",
        "buf.yml:16:67: http.routers.r.tls.options: tls option \"o5\" does not exist (did you mean "
        "\"o1\"?)",
        "buf.yml:16:71: http.routers.r.tls.certResolver: not supported yet");
}

static void test_tls_dir(void **state)
{
    weir_config_t *cfg = load_ok(GOOD "tls_dir.yml");
    const char *opts = GOOD "tls_dir/10-options.yml", *routers = GOOD "tls_dir/20-routers.yml";
    /* the static file's options are read first; default stays at index 0 */
    assert_int_equal(cfg->num_tls_options, 3);
    const weir_tls_options_cfg_t *def = &cfg->tls_options[0], *st = &cfg->tls_options[1],
                                 *modern = &cfg->tls_options[2];
    assert_string_equal(def->name, "default");
    assert_string_equal(def->pos.file, opts);
    assert_int_equal(def->pos.line, 3);
    assert_int_equal(def->pos.col, 5);
    assert_int_equal(def->min_version, 0x0304);
    assert_int_equal(def->num_alpn, 1);
    assert_string_equal(def->alpn[0], "h2");
    assert_string_equal(st->name, "static-opt");
    assert_string_equal(st->pos.file, GOOD "tls_dir.yml");
    assert_true(st->sni_strict);
    assert_int_equal(st->num_alpn, 3); /* a new option starts from Traefik's defaults */
    assert_string_equal(modern->name, "modern");
    assert_int_equal(modern->min_version, 0x0303);
    assert_int_equal(modern->max_version, 0);
    assert_int_equal(modern->num_cipher_suites, 2);
    assert_string_equal(modern->cipher_suites[0], "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");
    assert_string_equal(modern->cipher_suites[1], "TLS_AES_256_GCM_SHA384");
    assert_int_equal(modern->num_curves, 2);
    assert_string_equal(modern->curves[0], "X25519");
    assert_string_equal(modern->curves[1], "CurveP384");
    assert_false(modern->sni_strict);
    assert_false(modern->disable_session_tickets);
    /* certificates from both files, in file order; inline PEM kept as is */
    assert_int_equal(cfg->num_tls_certs, 2);
    const weir_tls_cert_cfg_t *inl = &cfg->tls_certs[0], *a = &cfg->tls_certs[1];
    assert_string_equal(inl->cert_file, "-----BEGIN CERTIFICATE-----\nMIIBinlinepem\n"
                                        "-----END CERTIFICATE-----\n");
    assert_string_equal(inl->key_file, "/etc/weir/inline.key");
    assert_int_equal(inl->num_stores, 0);
    assert_string_equal(inl->pos.file, opts);
    assert_int_equal(inl->pos.line, 13);
    assert_int_equal(inl->pos.col, 7);
    assert_int_equal(inl->cert_pos.line, 13);
    assert_int_equal(inl->cert_pos.col, 17);
    assert_int_equal(inl->key_pos.line, 17);
    assert_int_equal(inl->key_pos.col, 16);
    assert_string_equal(a->cert_file, "/etc/weir/a.crt");
    assert_string_equal(a->cert_pos.file, routers);
    assert_int_equal(a->num_stores, 1);
    assert_string_equal(a->stores[0], "default");
    assert_int_equal(cfg->num_tls_stores, 1);
    const weir_tls_store_cfg_t *store = &cfg->tls_stores[0];
    assert_string_equal(store->name, "default");
    assert_int_equal(store->pos.line, 7);
    assert_string_equal(store->default_cert_file, "/etc/weir/default.crt");
    assert_string_equal(store->default_key_file, "/etc/weir/default.key");
    assert_string_equal(store->default_pos.file, routers);
    assert_int_equal(store->default_pos.line, 9);
    assert_int_equal(store->default_pos.col, 19);
    /* references across files */
    const weir_router_cfg_t *secure = router(cfg, "secure"), *stat = router(cfg, "static");
    assert_string_equal(secure->tls_options, "modern@file");
    assert_int_equal(secure->tls_options_index, 2);
    assert_string_equal(secure->tls_options_pos.file, routers);
    assert_int_equal(secure->tls_options_pos.line, 17);
    assert_int_equal(secure->tls_options_pos.col, 18);
    assert_int_equal(stat->tls_options_index, 1);
    const weir_entrypoint_cfg_t *web = &cfg->entrypoints[0], *sec = &cfg->entrypoints[1];
    assert_string_equal(web->redirect_to, "websecure");
    assert_int_equal(web->redirect_port, 8443);
    assert_int_equal(web->redirect_pos.line, 9);
    assert_int_equal(web->redirect_pos.col, 15);
    assert_string_equal(sec->http_tls_options, "modern");
    assert_int_equal(sec->http_tls_options_pos.line, 14);
    assert_int_equal(sec->num_http_tls_domains, 2);
    assert_string_equal(sec->http_tls_domains[0], "example.org");
    assert_string_equal(sec->http_tls_domains[1], "*.example.org");
    weir_config_free(cfg);
}

static const char *const TLS_VALUES =
    "entryPoints:\n"
    "  web:\n"
    "    address: \":80\"\n"
    "    http:\n"
    "      redirections:\n"
    "        entryPoint: {to: \":8443\"}\n"
    "  alt:\n"
    "    address: \"127.0.0.1:81\"\n"
    "    http: {redirections: {entryPoint: {to: web, scheme: http, permanent: true}}}\n"
    "  websecure:\n"
    "    address: \"[::1]:8443\"\n"
    "    http: {tls: {}}\n"
    "    HTTP2: {maxEncoderHeaderTableSize: 65536}\n"
    "tls:\n"
    "  certificates:\n"
    "    - {certFile: \"-----BEGIN CERTIFICATE-----\\nMIIB\\n\", keyFile: /k.key, stores: []}\n"
    "  options:\n"
    "    legacy:\n"
    "      MINVERSION: VersionTLS10\n"
    "      maxVersion: versiontls11\n"
    "      cipherSuites:\n"
    "        - TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305\n"
    "        - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\n"
    "        - TLS_RSA_WITH_AES_128_CBC_SHA\n"
    "      curvePreferences: [secp256r1, secp384r1, secp521r1, x25519, CurveP521]\n"
    "      preferServerCipherSuites: true\n"
    "      alpnProtocols: [http/1.1]\n"
    "      clientAuth:\n"
    "        caFiles: [/ca1.pem, /ca2.pem]\n"
    "        clientAuthType: VerifyClientCertIfGiven\n"
    "    req: {clientAuth: {clientAuthType: RequireAnyClientCert}, disableSessionTickets: true}\n"
    "    ask: {clientAuth: {clientAuthType: RequestClientCert}}\n"
    "    none: {clientAuth: {clientAuthType: NoClientCert}}\n"
    "http:\n"
    "  routers:\n"
    "    a: {rule: \"Host(`a`)\", service: noop@internal, tls: {}}\n"
    "    b: {rule: \"Host(`b`)\", service: noop@internal, tls: {options: default@internal}}\n"
    "    c:\n"
    "      rule: \"Host(`c`)\"\n"
    "      service: noop@internal\n"
    "      tls:\n"
    "        options: default@file\n"
    "        domains:\n"
    "          - {main: C.test, sans: [www.C.test, \"*.c.TEST\"]}\n"
    "          - main: d.test\n"
    "    d: {rule: \"Host(`d`)\", service: noop@internal, tls: {options: legacy, domains: []}}\n"
    "    e: {rule: \"Host(`e`)\", service: noop@internal}\n"
    "    f: {rule: \"Host(`f`)\", service: noop@internal, tls: {options: \"\"}}\n";

static void test_tls_values(void **state)
{
    weir_config_t *cfg = buffer_ok(TLS_VALUES);
    const weir_entrypoint_cfg_t *web = &cfg->entrypoints[0], *alt = &cfg->entrypoints[1],
                                *sec = &cfg->entrypoints[2];
    /* redirection defaults; ":port" form */
    assert_string_equal(web->redirect_to, ":8443");
    assert_int_equal(web->redirect_port, 8443);
    assert_string_equal(web->redirect_scheme, "https");
    assert_int_equal(web->redirect_permanent, 1);
    assert_true(web->redirect_priority == INT64_MAX - 1);
    assert_int_equal(web->redirect_pos.line, 6);
    assert_int_equal(web->redirect_pos.col, 26);
    assert_string_equal(alt->redirect_to, "web");
    assert_int_equal(alt->redirect_port, 80);
    assert_string_equal(alt->redirect_scheme, "http");
    assert_int_equal(alt->redirect_permanent, 1);
    assert_int_equal(sec->redirect_port, 0);
    assert_null(sec->redirect_scheme);
    /* http.tls: {} */
    assert_int_equal(sec->http_tls, 1);
    assert_null(sec->http_tls_options);
    assert_int_equal(sec->num_http_tls_domains, 0);
    assert_int_equal(web->http_tls, 0);
    /* http2 */
    assert_int_equal(sec->h2_max_encoder_table_size, 65536);
    assert_int_equal(sec->h2_max_decoder_table_size, 4096);
    assert_int_equal(sec->h2_max_concurrent_streams, 250);
    /* certificates: inline PEM kept, an empty stores list */
    assert_int_equal(cfg->num_tls_certs, 1);
    assert_string_equal(cfg->tls_certs[0].cert_file, "-----BEGIN CERTIFICATE-----\nMIIB\n");
    assert_int_equal(cfg->tls_certs[0].num_stores, 0);
    assert_int_equal(cfg->num_tls_stores, 0);
    /* options: legacy names and aliases */
    assert_int_equal(cfg->num_tls_options, 5);
    const weir_tls_options_cfg_t *legacy = &cfg->tls_options[1];
    assert_string_equal(legacy->name, "legacy");
    assert_int_equal(legacy->min_version, 0x0301);
    assert_int_equal(legacy->max_version, 0x0302);
    assert_int_equal(legacy->num_cipher_suites, 3);
    assert_string_equal(legacy->cipher_suites[0], "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305");
    assert_int_equal(legacy->num_curves, 5);
    assert_string_equal(legacy->curves[0], "secp256r1");
    assert_string_equal(legacy->curves[3], "x25519");
    assert_int_equal(legacy->num_alpn, 1);
    assert_int_equal(legacy->num_ca_files, 2);
    assert_string_equal(legacy->ca_files[1], "/ca2.pem");
    assert_int_equal(legacy->ca_pos.line, 29);
    assert_int_equal(legacy->ca_pos.col, 18);
    assert_int_equal(legacy->client_auth, WEIR_CLIENT_AUTH_VERIFY_IF_GIVEN);
    assert_int_equal(legacy->auth_pos.line, 30);
    assert_int_equal(legacy->auth_pos.col, 25);
    assert_int_equal(cfg->tls_options[2].client_auth, WEIR_CLIENT_AUTH_REQUIRE_ANY);
    assert_true(cfg->tls_options[2].disable_session_tickets);
    assert_int_equal(cfg->tls_options[2].min_version, 0x0303);
    assert_int_equal(cfg->tls_options[2].num_ca_files, 0);
    assert_int_equal(cfg->tls_options[3].client_auth, WEIR_CLIENT_AUTH_REQUEST);
    assert_int_equal(cfg->tls_options[4].client_auth, WEIR_CLIENT_AUTH_NONE);
    /* the default is untouched */
    assert_int_equal(cfg->tls_options[0].pos.line, 0);
    assert_int_equal(cfg->tls_options[0].num_alpn, 3);
    /* routers */
    const weir_router_cfg_t *a = router(cfg, "a"), *b = router(cfg, "b"), *c = router(cfg, "c"),
                            *d = router(cfg, "d"), *e = router(cfg, "e"), *f = router(cfg, "f");
    assert_true(a->tls);
    assert_null(a->tls_options);
    assert_int_equal(a->tls_options_index, 0);
    assert_int_equal(a->num_tls_domains, 0);
    assert_int_equal(b->tls_options_index, 0);
    assert_int_equal(c->tls_options_index, 0);
    assert_int_equal(c->num_tls_domains, 4);
    assert_string_equal(c->tls_domains[0], "c.test");
    assert_string_equal(c->tls_domains[1], "www.c.test");
    assert_string_equal(c->tls_domains[2], "*.c.test");
    assert_string_equal(c->tls_domains[3], "d.test");
    assert_int_equal(d->tls_options_index, 1);
    assert_int_equal(d->num_tls_domains, 0);
    assert_false(e->tls);
    assert_null(e->tls_options);
    assert_true(f->tls);
    assert_null(f->tls_options); /* empty: the default */
    assert_int_equal(f->tls_options_index, 0);
    weir_config_free(cfg);
}

static void test_tls_bad_files(void **state)
{
    EXPECT_ERRORS(BAD "tls_dup.yml",
                  BAD "tls_dup/b.yml:3:5: tls.options.mine: defined twice (first at " BAD
                      "tls_dup/a.yml:5:5)",
                  BAD "tls_dup/b.yml:5:5: tls.options.default: defined twice (first at " BAD
                      "tls_dup/a.yml:3:5)",
                  BAD "tls_dup/b.yml:6:5: tls.options.shared: defined twice (first at " BAD
                      "tls_dup.yml:9:5)",
                  BAD "tls_dup/b.yml:8:5: tls.stores.default: defined twice (first at " BAD
                      "tls_dup/a.yml:7:5)");
}

static void test_tls_bad_entrypoints(void **state)
{
    EXPECT_BUFFER_ERRORS(
        "entryPoints:\n"
        "  web:\n"
        "    address: \":80\"\n"
        "    http: {redirections: {entryPoint: {to: web}}}\n"
        "  a:\n"
        "    address: \":81\"\n"
        "    http: {redirections: {entryPoint: {scheme: http, permanent: maybe}}}\n"
        "  b:\n"
        "    address: \":82\"\n"
        "    http: {redirections: {entryPoint: {to: \":0\", priority: high}}}\n"
        "  c:\n"
        "    address: \":83\"\n"
        "    http: {redirections: {entryPoint: {to: \":https\", scheme: \"\"}, other: {}}}\n"
        "  d:\n"
        "    address: \":84\"\n"
        "    http: {tls: {options: modrn, certResolver: le, domains: [{main: \"\"}]}}\n"
        "    http2: {maxDecoderHeaderTableSize: 0, maxEncoderHeaderTableSize: -1}\n"
        "  e:\n"
        "    address: \":85\"\n"
        "    http: {redirections: {entryPoint: {to: \":65536\"}}, tls: [x]}\n"
        "    http2: {maxConcurrentStreams: lots, maxStreams: 1}\n"
        "tls:\n"
        "  options:\n"
        "    modern: {}\n",
        "buf.yml:4:44: entryPoints.web.http.redirections.entryPoint.to: an entry point cannot "
        "redirect to itself",
        "buf.yml:7:27: entryPoints.a.http.redirections.entryPoint: missing to (the entry point "
        "to redirect to)",
        "buf.yml:7:65: entryPoints.a.http.redirections.entryPoint.permanent: expected true or "
        "false, got \"maybe\"",
        "buf.yml:10:44: entryPoints.b.http.redirections.entryPoint.to: bad port \":0\"",
        "buf.yml:10:60: entryPoints.b.http.redirections.entryPoint.priority: expected an "
        "integer, got \"high\"",
        "buf.yml:13:44: entryPoints.c.http.redirections.entryPoint.to: bad port \":https\"",
        "buf.yml:13:62: entryPoints.c.http.redirections.entryPoint.scheme: expected a scheme "
        "such as \"https\"",
        "buf.yml:13:67: unknown key \"other\" in entryPoints.c.http.redirections",
        "buf.yml:16:27: entryPoints.d.http.tls.options: tls option \"modrn\" does not exist (did "
        "you mean \"modern\"?)",
        "buf.yml:16:34: entryPoints.d.http.tls.certResolver: not supported yet",
        "buf.yml:16:69: entryPoints.d.http.tls.domains[0].main: expected a domain name",
        "buf.yml:17:40: entryPoints.d.http2.maxDecoderHeaderTableSize: must be greater than 0",
        "buf.yml:17:70: entryPoints.d.http2.maxEncoderHeaderTableSize: -1 is out of range (0 "
        "to 2147483647)",
        "buf.yml:20:44: entryPoints.e.http.redirections.entryPoint.to: bad port \":65536\"",
        "buf.yml:20:61: entryPoints.e.http.tls: expected a map, got a list",
        "buf.yml:21:35: entryPoints.e.http2.maxConcurrentStreams: expected an integer, got "
        "\"lots\"",
        "buf.yml:21:41: unknown key \"maxStreams\" in entryPoints.e.http2");
}

static void test_tls_bad_sections(void **state)
{
    EXPECT_BUFFER_ERRORS(
        "entryPoints:\n"
        "  web:\n"
        "    address: \":80\"\n"
        "tls:\n"
        "  certificates:\n"
        "    - /a.crt\n"
        "    - {keyFile: /a.key, certFile: [x]}\n"
        "    - {certFile: \"\", keyFile: /a.key, stores: default}\n"
        "    - {}\n"
        "  stores:\n"
        "    default:\n"
        "      defaultCertificate: {certFile: /d.crt, stores: [x]}\n"
        "      defaultGeneratedCert: {resolver: le}\n"
        "    other:\n"
        "      defaultCertificate: /d.crt\n"
        "  options:\n"
        "    modern:\n"
        "      clientAuth: {clientAuthType: RequireAndVerifyClientCert, caFile: [/ca]}\n"
        "      cipherSuites: [TLS_RSA_WITH_RC4_128_SHA, tls_aes_128_gcm_sha256]\n"
        "      minVersion: 1.2\n"
        "      sniStrict: maybe\n"
        "      curvePreferences: [P-256]\n"
        "      alpnProtocols: [h2, \"\"]\n"
        "    \"\": {}\n"
        "  resolvers: {}\n"
        "http:\n"
        "  routers:\n"
        "    r1: {rule: \"Host(`a`)\", service: noop@internal, tls: {options: modern@docker}}\n"
        "    r2: {rule: \"Host(`a`)\", service: noop@internal, tls: {options: modern@internal}}\n"
        "    r3: {rule: \"Host(`a`)\", service: noop@internal, tls: {domains: [{sans: [x]}, y]}}\n"
        "    r4: {rule: \"Host(`a`)\", service: noop@internal, tls: true}\n",
        "buf.yml:6:7: tls.certificates[0]: expected a map with certFile and keyFile, got "
        "\"/a.crt\"",
        "buf.yml:7:35: tls.certificates[1].certFile: expected a string, got a list",
        "buf.yml:8:7: tls.certificates[2]: missing certFile",
        "buf.yml:8:47: tls.certificates[2].stores: expected a list, got \"default\"",
        "buf.yml:9:7: tls.certificates[3]: missing certFile",
        "buf.yml:9:7: tls.certificates[3]: missing keyFile",
        "buf.yml:12:7: tls.stores.default.defaultCertificate: missing keyFile",
        "buf.yml:12:46: unknown key \"stores\" in tls.stores.default.defaultCertificate",
        "buf.yml:13:7: tls.stores.default.defaultGeneratedCert: not supported yet",
        "buf.yml:15:27: tls.stores.other.defaultCertificate: expected a map, got \"/d.crt\"",
        "buf.yml:18:36: tls.options.modern.clientAuth: RequireAndVerifyClientCert needs caFiles",
        "buf.yml:18:64: unknown key \"caFile\" in tls.options.modern.clientAuth (did you mean "
        "\"caFiles\"?)",
        "buf.yml:19:22: tls.options.modern.cipherSuites[0]: unknown cipher suite "
        "\"TLS_RSA_WITH_RC4_128_SHA\"",
        "buf.yml:19:48: tls.options.modern.cipherSuites[1]: unknown cipher suite "
        "\"tls_aes_128_gcm_sha256\" (did you mean \"TLS_AES_128_GCM_SHA256\"?)",
        "buf.yml:20:19: tls.options.modern.minVersion: unknown TLS version \"1.2\" "
        "(VersionTLS10 .. VersionTLS13)",
        "buf.yml:21:18: tls.options.modern.sniStrict: expected true or false, got \"maybe\"",
        "buf.yml:22:26: tls.options.modern.curvePreferences[0]: unknown curve \"P-256\"",
        "buf.yml:23:27: tls.options.modern.alpnProtocols[1]: expected a non-empty string",
        "buf.yml:24:5: tls.options: a name must not be empty",
        "buf.yml:25:3: unknown key \"resolvers\" in tls",
        "buf.yml:28:68: http.routers.r1.tls.options: tls option \"modern@docker\" does not exist",
        "buf.yml:29:68: http.routers.r2.tls.options: tls option \"modern@internal\" does not "
        "exist",
        "buf.yml:30:69: http.routers.r3.tls.domains[0]: missing main (the domain name)",
        "buf.yml:30:82: http.routers.r3.tls.domains[1]: expected a map with main and sans, got "
        "\"y\"",
        "buf.yml:31:58: http.routers.r4.tls: expected a map, got \"true\"");
}

/* A reload keeps the entry points' TLS settings (static) and re-reads the
 * tls section of the provider, checking http.tls.options against it. */
static void test_tls_reload_provider(void **state)
{
    char dir[] = "/tmp/weir-test-tlsdir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char stat_path[64], dyn_path[64];
    snprintf(stat_path, sizeof stat_path, "%s/static.yml", dir);
    snprintf(dyn_path, sizeof dyn_path, "%s/dynamic.yml", dir);
    FILE *f = fopen(stat_path, "w");
    assert_non_null(f);
    fprintf(f,
            "entryPoints:\n"
            "  web:\n"
            "    address: \":8080\"\n"
            "    http: {redirections: {entryPoint: {to: websecure, permanent: false}}}\n"
            "  websecure:\n"
            "    address: \":8443\"\n"
            "    http: {tls: {options: modern, domains: [{main: a.test, sans: [b.test]}]}}\n"
            "    http2: {maxConcurrentStreams: 10}\n"
            "providers: {file: {filename: \"%s\"}}\n",
            dyn_path);
    fclose(f);
    f = fopen(dyn_path, "w");
    assert_non_null(f);
    fputs("tls:\n  options:\n    modern: {minVersion: VersionTLS13}\n"
          "  certificates: [{certFile: /a.crt, keyFile: /a.key}]\n",
          f);
    fclose(f);
    weir_config_t *base = load_ok(stat_path), *next = NULL;
    weir_config_errors_t errs;
    /* the provider changes: one more option, another certificate */
    f = fopen(dyn_path, "w");
    assert_non_null(f);
    fputs("tls:\n  options:\n    old: {}\n    modern: {minVersion: VersionTLS12}\n"
          "  certificates: [{certFile: /b.crt, keyFile: /b.key}]\n",
          f);
    fclose(f);
    assert_int_equal(weir_config_reload_dynamic(base, stat_path, &next, &errs), 0);
    weir_config_errors_free(&errs);
    const weir_entrypoint_cfg_t *web = &next->entrypoints[0], *sec = &next->entrypoints[1];
    assert_string_equal(web->redirect_to, "websecure");
    assert_int_equal(web->redirect_port, 8443);
    assert_string_equal(web->redirect_scheme, "https");
    assert_int_equal(web->redirect_permanent, 0);
    assert_int_equal(sec->http_tls, 1);
    assert_string_equal(sec->http_tls_options, "modern");
    assert_int_equal(sec->num_http_tls_domains, 2);
    assert_string_equal(sec->http_tls_domains[1], "b.test");
    assert_int_equal(sec->h2_max_concurrent_streams, 10);
    assert_int_equal(next->num_tls_options, 3);
    assert_string_equal(next->tls_options[2].name, "modern");
    assert_int_equal(next->tls_options[2].min_version, 0x0303);
    assert_int_equal(next->num_tls_certs, 1);
    assert_string_equal(next->tls_certs[0].cert_file, "/b.crt");
    weir_config_free(next);
    /* the option the entry point names disappears: the reload fails */
    f = fopen(dyn_path, "w");
    assert_non_null(f);
    fputs("tls:\n  options:\n    modem: {}\n", f);
    fclose(f);
    next = (weir_config_t *)&next;
    assert_int_equal(weir_config_reload_dynamic(base, stat_path, &next, &errs), -1);
    assert_null(next);
    char want0[320];
    snprintf(want0, sizeof want0,
             "%s:7:27: entryPoints.websecure.http.tls.options: tls option \"modern\" does not "
             "exist (did you mean \"modem\"?)",
             stat_path);
    const char *const want[] = {want0};
    check_errors(&errs, want, 1);
    weir_config_free(base);
    unlink(dyn_path);
    unlink(stat_path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_table),
        cmocka_unit_test(test_tls_defaults),
        cmocka_unit_test(test_tls_good),
        cmocka_unit_test(test_tls_reload_keeps_entrypoint_tls),
        cmocka_unit_test(test_tls_bad),
        cmocka_unit_test(test_http3_good),
        cmocka_unit_test(test_http3_bad),
        cmocka_unit_test(test_tls_dir),
        cmocka_unit_test(test_tls_values),
        cmocka_unit_test(test_tls_bad_files),
        cmocka_unit_test(test_tls_bad_entrypoints),
        cmocka_unit_test(test_tls_bad_sections),
        cmocka_unit_test(test_tls_reload_provider),
        cmocka_unit_test(test_good_quickstart),
        cmocka_unit_test(test_good_static_file),
        cmocka_unit_test(test_good_static_dir),
        cmocka_unit_test(test_good_durations),
        cmocka_unit_test(test_good_ipv6),
        cmocka_unit_test(test_good_yaml_features),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_find_service),
        cmocka_unit_test(test_provider_is_static_file),
        cmocka_unit_test(test_reload_dynamic),
        cmocka_unit_test(test_reload_uses_base_entrypoints),
        cmocka_unit_test(test_bad_unknown_key),
        cmocka_unit_test(test_bad_wrong_type),
        cmocka_unit_test(test_bad_missing_service),
        cmocka_unit_test(test_bad_invalid_rule),
        cmocka_unit_test(test_bad_duplicate_address),
        cmocka_unit_test(test_bad_duration),
        cmocka_unit_test(test_bad_scheme),
        cmocka_unit_test(test_bad_middleware),
        cmocka_unit_test(test_bad_unsupported),
        cmocka_unit_test(test_bad_syntax),
        cmocka_unit_test(test_bad_missing_provider),
        cmocka_unit_test(test_bad_dup_router),
        cmocka_unit_test(test_bad_cycle),
        cmocka_unit_test(test_bad_several),
        cmocka_unit_test(test_bad_empty),
        cmocka_unit_test(test_bad_toml),
        cmocka_unit_test(test_bad_missing_static_file),
        cmocka_unit_test(test_no_dns),
        cmocka_unit_test(test_alias_bomb),
        cmocka_unit_test(test_yaml_structure_errors),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_router_details),
        cmocka_unit_test(test_service_details),
        cmocka_unit_test(test_static_details),
        cmocka_unit_test(test_present_but_wrong),
        cmocka_unit_test(test_lenient_values),
        cmocka_unit_test(test_garbage_never_crashes),
        cmocka_unit_test(test_error_format),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
