/* The tcp section of the dynamic configuration (Traefik's
 * pkg/config/dynamic/tcp_config.go): routers matched on the TLS ClientHello
 * (HostSNI, HostSNIRegexp, ALPN) and the client address, services that
 * balance connections over server addresses, servers transports (dial
 * timeout, PROXY protocol version, termination delay).
 */
#define WEIR_CONFIG_INTERNAL
#include "config/config.h"

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

// clang-format off
#define UNSUPPORTED(name) {name, WEIR_KEY_UNSUPPORTED, 0, NULL, NULL, 0}
#define END {NULL, 0, 0, NULL, NULL, 0}
// clang-format on

#define TCP_DIAL_TIMEOUT_MS 30000
#define TCP_DIAL_KEEPALIVE_MS 15000
#define TCP_TERMINATION_DELAY_MS 100
#define UDP_TIMEOUT_MS 3000       /* udp.timeout's default (Traefik's) */
#define UDP_QUIC_TIMEOUT_MS 30000 /* udp.timeout's default where QUIC is routed by SNI */

static void set_nonempty(weir_config_ctx_t *ctx, const weir_config_node_t *v, char **out,
                         weir_pos_t *pos, const char *what)
{
    if (!weir_config_get_string(ctx, v, out)) return;
    if (pos) *pos = weir_config_pos(ctx, v);
    if (!**out) {
        weir_config_key_error(ctx, v, "expected %s, got nothing", what);
        free(*out);
        *out = NULL;
    }
}

/* terminationDelay: a duration, or a negative one for "never": the other
 * direction may run until it ends by itself (Traefik's meaning). */
static void get_termination_delay(weir_config_ctx_t *ctx, const weir_config_node_t *v,
                                  int64_t *target)
{
    int64_t ms;
    if (v->kind == WEIR_CONFIG_SCALAR && v->text && v->text[0] == '-') {
        if (weir_duration_parse(v->text + 1, &ms) < 0) {
            weir_config_key_error(ctx, v, "invalid duration \"%s\"", v->text);
            return;
        }
        *target = -1;
        return;
    }
    weir_config_get_duration(ctx, v, target);
}

/* ---- routers ---- */

static void set_rule(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                     const weir_config_node_t *v, void *target)
{
    weir_router_cfg_t *r = target;
    set_nonempty(ctx, v, &r->rule, &r->rule_pos, "a rule");
    if (!r->rule) return;
    weir_rule_error_t err = {.offset = 0};
    if (weir_rule_compile(r->rule, WEIR_RULE_TCP, &r->compiled, &err) == 0) return;
    r->compiled = NULL;
    weir_pos_t pos = r->rule_pos;
    if (!v->multiline && v->style != WEIR_CONFIG_BLOCK)
        pos.col = v->col + (v->style == WEIR_CONFIG_PLAIN ? 0 : 1) + (int)err.offset;
    err.msg[sizeof err.msg - 1] = '\0';
    weir_config_error(ctx, pos, "%s: %s", ctx->path, err.msg);
}

static void add_router_middleware(weir_config_ctx_t *ctx, const weir_config_node_t *item,
                                  size_t i, void *arg)
{
    weir_router_cfg_t *r = arg;
    char *name = NULL;
    if (!weir_config_get_string(ctx, item, &name)) return;
    r->middlewares = weir_config_grow(r->middlewares, r->num_middlewares, sizeof(char *));
    r->middleware_index =
        weir_config_grow(r->middleware_index, r->num_middlewares, sizeof *r->middleware_index);
    r->middlewares[r->num_middlewares] = name;
    r->middleware_index[r->num_middlewares] = -1;
    r->num_middlewares++;
}

static void set_router_middlewares(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                   const weir_config_node_t *v, void *target)
{
    weir_config_walk_list(ctx, v, add_router_middleware, target);
}

/* tls: passthrough relays the TLS bytes as they are; without it weir
 * terminates TLS (the certificate by SNI from the store, the router's
 * options) and relays the plaintext. */
static const weir_config_key_t router_tls_keys[] = {
    {"passthrough", WEIR_KEY_BOOL, offsetof(weir_router_cfg_t, passthrough), NULL, NULL, 0},
    {"options", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_tls_options, 0},
    {"domains", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_tls_domains, 0},
    UNSUPPORTED("certResolver"),
    END,
};

static void set_router_tls(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                           const weir_config_node_t *v, void *target)
{
    weir_router_cfg_t *r = target;
    r->tls = 1;
    weir_config_walk_map(ctx, v, router_tls_keys, r);
}

static const weir_config_key_t router_keys[] = {
    {"entryPoints", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_entrypoints, 0},
    {"rule", WEIR_KEY_CUSTOM, 0, NULL, set_rule, 0},
    {"ruleSyntax", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_rule_syntax, 0},
    {"priority", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_priority, 0},
    {"service", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_service, 0},
    {"middlewares", WEIR_KEY_CUSTOM, 0, NULL, set_router_middlewares, 0},
    {"tls", WEIR_KEY_CUSTOM, 0, NULL, set_router_tls, 0},
    END,
};

static void add_router(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                       const weir_config_node_t *v, void *arg)
{
    if (!weir_config_name_ok(ctx, name)) return;
    weir_config_t *cfg = ctx->cfg;
    cfg->tcp_routers =
        weir_config_grow(cfg->tcp_routers, cfg->num_tcp_routers, sizeof *cfg->tcp_routers);
    weir_router_cfg_t *r = &cfg->tcp_routers[cfg->num_tcp_routers++];
    memset(r, 0, sizeof *r);
    r->name = weir_config_xstrdup(name->text);
    r->pos = weir_config_pos(ctx, name);
    r->service_index = -1;
    weir_config_walk_map(ctx, v, router_keys, r);
    if (!weir_config_map_get(v, "rule")) weir_config_key_error(ctx, name, "missing rule");
    if (!weir_config_map_get(v, "service")) weir_config_key_error(ctx, name, "missing service");
}

/* ---- services ---- */

static void set_address(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                        const weir_config_node_t *v, void *target)
{
    weir_tcp_server_cfg_t *srv = target;
    if (!weir_config_get_string(ctx, v, &srv->address)) return;
    char err[600];
    if (weir_config_parse_tcp_address(srv->address, ctx->flags, &srv->addr, &srv->addrlen, err,
                                      sizeof err) < 0) {
        srv->addrlen = 0;
        weir_config_key_error(ctx, v, "%s", err);
        return;
    }
    /* the host part: "[v6]:port" or "host:port" (the port is required) */
    const char *a = srv->address, *end = strrchr(a, ':');
    if (*a == '[') {
        a++;
        end = strchr(a, ']');
    }
    free(srv->host);
    srv->host = strndup(a, end ? (size_t)(end - a) : strlen(a));
}

static const weir_config_key_t server_keys[] = {
    {"address", WEIR_KEY_CUSTOM, 0, NULL, set_address, 0},
    {"tls", WEIR_KEY_BOOL, offsetof(weir_tcp_server_cfg_t, tls), NULL, NULL, 0},
    END,
};

static void add_server(weir_config_ctx_t *ctx, const weir_config_node_t *item, size_t i, void *arg)
{
    weir_tcp_service_cfg_t *s = arg;
    s->servers = weir_config_grow(s->servers, s->num_servers, sizeof *s->servers);
    weir_tcp_server_cfg_t *srv = &s->servers[s->num_servers++];
    memset(srv, 0, sizeof *srv);
    srv->pos = weir_config_pos(ctx, item);
    srv->tls = -1;
    weir_config_walk_map(ctx, item, server_keys, srv);
    if (!weir_config_map_get(item, "address") &&
        (weir_config_is_empty(item) || item->kind == WEIR_CONFIG_MAP))
        weir_config_key_error(ctx, item, "missing address");
}

static void set_servers(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                        const weir_config_node_t *v, void *target)
{
    weir_config_walk_list(ctx, v, add_server, target);
}

static void set_pp_version(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                           const weir_config_node_t *v, void *target)
{
    int64_t n;
    if (!weir_config_get_int(ctx, v, INT_MIN, INT_MAX, &n)) return;
    if (n != 1 && n != 2) {
        weir_config_key_error(ctx, v, "the PROXY protocol version is 1 or 2");
        return;
    }
    *(int *)target = (int)n;
}

static const weir_config_key_t pp_keys[] = {
    {"version", WEIR_KEY_CUSTOM, 0, NULL, set_pp_version, 0},
    END,
};

static void set_lb_pp(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                      const weir_config_node_t *v, void *target)
{
    weir_tcp_service_cfg_t *s = target;
    s->proxy_protocol = 2; /* Traefik's default version when the section is present */
    weir_config_walk_map(ctx, v, pp_keys, &s->proxy_protocol);
}

static void set_lb_transport(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                             const weir_config_node_t *v, void *target)
{
    weir_tcp_service_cfg_t *s = target;
    set_nonempty(ctx, v, &s->servers_transport, &s->transport_pos, "a serversTransport name");
}

/* The older loadBalancer.terminationDelay is an integer of milliseconds
 * (Traefik's *int); a duration string is taken too. */
static void set_lb_termination_delay(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                     const weir_config_node_t *v, void *target)
{
    int64_t *ms = &((weir_tcp_service_cfg_t *)target)->termination_delay_ms;
    const char *t = v->kind == WEIR_CONFIG_SCALAR ? v->text : NULL;
    if (t && *t && strspn(t + (*t == '-'), "0123456789") == strlen(t + (*t == '-'))) {
        int64_t n;
        if (weir_config_get_int(ctx, v, INT_MIN, INT_MAX, &n)) *ms = n < 0 ? -1 : n;
        return;
    }
    get_termination_delay(ctx, v, ms);
}

static const weir_config_key_t load_balancer_keys[] = {
    {"servers", WEIR_KEY_CUSTOM, 0, NULL, set_servers, 0},
    {"serversTransport", WEIR_KEY_CUSTOM, 0, NULL, set_lb_transport, 0},
    {"proxyProtocol", WEIR_KEY_CUSTOM, 0, NULL, set_lb_pp, 0},
    {"terminationDelay", WEIR_KEY_CUSTOM, 0, NULL, set_lb_termination_delay, 0},
    UNSUPPORTED("healthCheck"),
    END,
};

static void set_children(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    weir_tcp_service_cfg_t *s = target;
    weir_config_walk_children(ctx, v, &s->children, &s->num_children);
}

static const weir_config_key_t weighted_keys[] = {
    {"services", WEIR_KEY_CUSTOM, 0, NULL, set_children, 0},
    END,
};

static void load_balancer(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                          const weir_config_node_t *v, weir_tcp_service_cfg_t *s,
                          const weir_config_key_t *keys)
{
    if (!weir_config_one_service_type(ctx, key)) return;
    s->kind = WEIR_SERVICE_LOADBALANCER;
    weir_config_walk_map(ctx, v, keys, s);
}

static void set_load_balancer(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                              const weir_config_node_t *v, void *target)
{
    load_balancer(ctx, key, v, target, load_balancer_keys);
}

static void set_weighted(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    weir_tcp_service_cfg_t *s = target;
    if (!weir_config_one_service_type(ctx, key)) return;
    s->kind = WEIR_SERVICE_WEIGHTED;
    weir_config_walk_map(ctx, v, weighted_keys, s);
}

static const weir_config_key_t service_keys[] = {
    {"loadBalancer", WEIR_KEY_CUSTOM, 0, NULL, set_load_balancer, 0},
    {"weighted", WEIR_KEY_CUSTOM, 0, NULL, set_weighted, 0},
    END,
};

/* A TCP or UDP service named name, appended to *arr, read with keys. */
static void add_l4_service(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                           const weir_config_node_t *v, weir_tcp_service_cfg_t **arr,
                           size_t *num, const weir_config_key_t *keys)
{
    if (!weir_config_name_ok(ctx, name)) return;
    *arr = weir_config_grow(*arr, *num, sizeof **arr);
    weir_tcp_service_cfg_t *s = &(*arr)[(*num)++];
    memset(s, 0, sizeof *s);
    s->name = weir_config_xstrdup(name->text);
    s->pos = weir_config_pos(ctx, name);
    s->termination_delay_ms = -2;
    s->transport_index = 0;
    ctx->service_types = 0;
    weir_config_walk_map(ctx, v, keys, s);
    if (ctx->service_types == 0 && (weir_config_is_empty(v) || v->kind == WEIR_CONFIG_MAP))
        weir_config_key_error(ctx, name, "needs a loadBalancer or a weighted section");
}

static void add_service(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                        const weir_config_node_t *v, void *arg)
{
    add_l4_service(ctx, name, v, &ctx->cfg->tcp_services, &ctx->cfg->num_tcp_services,
                   service_keys);
}

/* ---- serversTransports ---- */

static void set_transport_pp(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                             const weir_config_node_t *v, void *target)
{
    weir_tcp_transport_cfg_t *t = target;
    t->proxy_protocol = 2;
    weir_config_walk_map(ctx, v, pp_keys, &t->proxy_protocol);
}

static void set_transport_termination_delay(weir_config_ctx_t *ctx,
                                            const weir_config_node_t *key,
                                            const weir_config_node_t *v, void *target)
{
    get_termination_delay(ctx, v, &((weir_tcp_transport_cfg_t *)target)->termination_delay_ms);
}

/* tls: how weir speaks TLS to the servers (Traefik's TLSClientConfig). */
static const weir_config_key_t transport_tls_keys[] = {
    {"serverName", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_transport_server_name, 0},
    {"insecureSkipVerify", WEIR_KEY_BOOL, offsetof(weir_servers_transport_cfg_t, insecure_skip_verify),
     NULL, NULL, 0},
    {"rootCAs", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_transport_root_cas, 0},
    {"certificates", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_transport_certificates, 0},
    UNSUPPORTED("peerCertURI"),
    UNSUPPORTED("spiffe"),
    END,
};

static void set_transport_tls(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                              const weir_config_node_t *v, void *target)
{
    weir_tcp_transport_cfg_t *t = target;
    t->has_tls = 1;
    weir_config_walk_map(ctx, v, transport_tls_keys, &t->tls);
}

static const weir_config_key_t transport_keys[] = {
    {"dialTimeout", WEIR_KEY_DURATION, offsetof(weir_tcp_transport_cfg_t, dial_timeout_ms), NULL,
     NULL, 0},
    {"dialKeepAlive", WEIR_KEY_DURATION, offsetof(weir_tcp_transport_cfg_t, dial_keep_alive_ms),
     NULL, NULL, 0},
    {"terminationDelay", WEIR_KEY_CUSTOM, 0, NULL, set_transport_termination_delay, 0},
    {"proxyProtocol", WEIR_KEY_CUSTOM, 0, NULL, set_transport_pp, 0},
    {"tls", WEIR_KEY_CUSTOM, 0, NULL, set_transport_tls, 0},
    UNSUPPORTED("spiffe"),
    END,
};

static void transport_defaults(weir_tcp_transport_cfg_t *t)
{
    t->dial_timeout_ms = TCP_DIAL_TIMEOUT_MS;
    t->dial_keep_alive_ms = TCP_DIAL_KEEPALIVE_MS;
    t->termination_delay_ms = TCP_TERMINATION_DELAY_MS;
}

/* A TCP or UDP serversTransport named name, appended to *arr, read with
 * keys (TCP ones start from the dial and termination defaults). */
static void add_l4_transport(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                             const weir_config_node_t *v, weir_tcp_transport_cfg_t **arr,
                             size_t *num, const weir_config_key_t *keys, bool tcp)
{
    if (!weir_config_name_ok(ctx, name)) return;
    *arr = weir_config_grow(*arr, *num, sizeof **arr);
    weir_tcp_transport_cfg_t *t = &(*arr)[(*num)++];
    memset(t, 0, sizeof *t);
    if (tcp) transport_defaults(t);
    t->name = weir_config_xstrdup(name->text);
    t->pos = weir_config_pos(ctx, name);
    t->tls.name = t->name;
    t->tls.pos = t->pos;
    weir_config_walk_map(ctx, v, keys, t);
}

static void add_transport(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                          const weir_config_node_t *v, void *arg)
{
    add_l4_transport(ctx, name, v, &ctx->cfg->tcp_transports, &ctx->cfg->num_tcp_transports,
                     transport_keys, true);
}

void weir_config_tcp_defaults(weir_config_t *cfg)
{
    cfg->tcp_transports = weir_config_grow(NULL, 0, sizeof *cfg->tcp_transports);
    memset(cfg->tcp_transports, 0, sizeof *cfg->tcp_transports);
    transport_defaults(&cfg->tcp_transports[0]);
    cfg->tcp_transports[0].name = weir_config_xstrdup("default@internal");
    cfg->tcp_transports[0].tls.name = cfg->tcp_transports[0].name;
    cfg->num_tcp_transports = 1;
    cfg->udp_transports = weir_config_grow(NULL, 0, sizeof *cfg->udp_transports);
    memset(cfg->udp_transports, 0, sizeof *cfg->udp_transports);
    cfg->udp_transports[0].name = weir_config_xstrdup("default@internal");
    cfg->udp_transports[0].tls.name = cfg->udp_transports[0].name;
    cfg->num_udp_transports = 1;
}

/* The static tcpServersTransport: the defaults of default@internal. Its
 * tls section configures TLS for servers with tls: true; it does not
 * turn TLS on by itself (it would for every TCP service). */
static const weir_config_key_t static_tls_keys[] = {
    {"insecureSkipVerify", WEIR_KEY_BOOL, offsetof(weir_servers_transport_cfg_t, insecure_skip_verify),
     NULL, NULL, 0},
    {"rootCAs", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_transport_root_cas, 0},
    UNSUPPORTED("spiffe"),
    END,
};

static const weir_config_key_t static_transport_keys[] = {
    {"dialTimeout", WEIR_KEY_DURATION, offsetof(weir_tcp_transport_cfg_t, dial_timeout_ms), NULL,
     NULL, 0},
    {"dialKeepAlive", WEIR_KEY_DURATION, offsetof(weir_tcp_transport_cfg_t, dial_keep_alive_ms),
     NULL, NULL, 0},
    {"terminationDelay", WEIR_KEY_CUSTOM, 0, NULL, set_transport_termination_delay, 0},
    {"tls", WEIR_KEY_SECTION, offsetof(weir_tcp_transport_cfg_t, tls), static_tls_keys, NULL, 0},
    END,
};

void weir_config_set_static_tcp_transport(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                          const weir_config_node_t *v, void *target)
{
    weir_tcp_transport_cfg_t *t = &((weir_config_t *)target)->tcp_transports[0];
    t->pos = t->tls.pos = weir_config_pos(ctx, key);
    weir_config_walk_map(ctx, v, static_transport_keys, t);
}

void weir_config_tcp_copy_static(weir_config_t *cfg, const weir_config_t *base, const char *file)
{
    weir_tcp_transport_cfg_t *t = &cfg->tcp_transports[0];
    free(t->name);
    weir_config_transport_tls_free(&t->tls);
    *t = base->tcp_transports[0];
    t->name = t->tls.name = weir_config_xstrdup(t->name);
    t->pos.file = t->tls.pos.file = t->tls.root_cas_pos.file = file;
    weir_config_transport_tls_copy(&t->tls);
}

/* ---- the tcp section ---- */

static void set_routers(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                        const weir_config_node_t *v, void *target)
{
    weir_config_walk_names(ctx, v, add_router, NULL);
}

static void set_services(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    weir_config_walk_names(ctx, v, add_service, NULL);
}

static void set_transports(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                           const weir_config_node_t *v, void *target)
{
    weir_config_walk_names(ctx, v, add_transport, NULL);
}

/* ---- middlewares ---- */

static void set_source_range(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                             const weir_config_node_t *v, void *target)
{
    weir_tcp_middleware_cfg_t *m = target;
    weir_config_walk_cidrs(ctx, v, &m->ranges, &m->num_ranges);
}

static const weir_config_key_t allowlist_keys[] = {
    {"sourceRange", WEIR_KEY_CUSTOM, 0, NULL, set_source_range, 0},
    END,
};

static void set_amount(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                       const weir_config_node_t *v, void *target)
{
    int64_t n;
    if (!weir_config_get_int(ctx, v, 0, INT_MAX, &n)) return;
    if (n == 0) {
        weir_config_key_error(ctx, v, "must be greater than 0");
        return;
    }
    ((weir_tcp_middleware_cfg_t *)target)->amount = (int)n;
}

static const weir_config_key_t inflight_keys[] = {
    {"amount", WEIR_KEY_CUSTOM, 0, NULL, set_amount, 0},
    END,
};

static bool one_kind(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                     weir_tcp_middleware_cfg_t *m, weir_tcp_mw_kind_t kind)
{
    if (m->kind == WEIR_TCP_MW_NONE) {
        m->kind = kind;
        return true;
    }
    weir_config_key_error(ctx, key, "a middleware has one type");
    return false;
}

static void set_allowlist(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                          const weir_config_node_t *v, void *target)
{
    if (one_kind(ctx, key, target, WEIR_TCP_MW_ALLOWLIST))
        weir_config_walk_map(ctx, v, allowlist_keys, target);
}

static void set_inflight(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    if (!one_kind(ctx, key, target, WEIR_TCP_MW_INFLIGHT)) return;
    weir_config_walk_map(ctx, v, inflight_keys, target);
    if (!weir_config_map_get(v, "amount"))
        weir_config_key_error(ctx, key, "missing amount");
}

static const weir_config_key_t middleware_keys[] = {
    {"ipAllowList", WEIR_KEY_CUSTOM, 0, NULL, set_allowlist, 0},
    {"inFlightConn", WEIR_KEY_CUSTOM, 0, NULL, set_inflight, 0},
    UNSUPPORTED("ipWhiteList"),
    END,
};

static void add_middleware(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                           const weir_config_node_t *v, void *arg)
{
    if (!weir_config_name_ok(ctx, name)) return;
    weir_config_t *cfg = ctx->cfg;
    cfg->tcp_middlewares = weir_config_grow(cfg->tcp_middlewares, cfg->num_tcp_middlewares,
                                            sizeof *cfg->tcp_middlewares);
    weir_tcp_middleware_cfg_t *m = &cfg->tcp_middlewares[cfg->num_tcp_middlewares++];
    memset(m, 0, sizeof *m);
    m->name = weir_config_xstrdup(name->text);
    m->pos = weir_config_pos(ctx, name);
    weir_config_walk_map(ctx, v, middleware_keys, m);
    if (m->kind == WEIR_TCP_MW_NONE && (weir_config_is_empty(v) || v->kind == WEIR_CONFIG_MAP))
        weir_config_key_error(ctx, name, "needs ipAllowList or inFlightConn");
}

static void set_middlewares(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *v, void *target)
{
    weir_config_walk_names(ctx, v, add_middleware, NULL);
}

static const weir_config_key_t tcp_keys[] = {
    {"routers", WEIR_KEY_CUSTOM, 0, NULL, set_routers, 0},
    {"services", WEIR_KEY_CUSTOM, 0, NULL, set_services, 0},
    {"serversTransports", WEIR_KEY_CUSTOM, 0, NULL, set_transports, 0},
    {"middlewares", WEIR_KEY_CUSTOM, 0, NULL, set_middlewares, 0},
    END,
};

void weir_config_set_tcp(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    weir_config_walk_map(ctx, v, tcp_keys, ctx->cfg);
}

/* ---- the udp section ---- */

/* UDP routers: Traefik's (entryPoints, service: one per entry point), and
 * weir's rule and priority to route QUIC connections by the SNI and ALPN
 * of their Initial packets (the TCP rule language). */
static const weir_config_key_t udp_router_keys[] = {
    {"entryPoints", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_entrypoints, 0},
    {"service", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_service, 0},
    {"rule", WEIR_KEY_CUSTOM, 0, NULL, set_rule, 0},
    {"ruleSyntax", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_rule_syntax, 0},
    {"priority", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_priority, 0},
    END,
};

static void add_udp_router(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                           const weir_config_node_t *v, void *arg)
{
    if (!weir_config_name_ok(ctx, name)) return;
    weir_config_t *cfg = ctx->cfg;
    cfg->udp_routers =
        weir_config_grow(cfg->udp_routers, cfg->num_udp_routers, sizeof *cfg->udp_routers);
    weir_router_cfg_t *r = &cfg->udp_routers[cfg->num_udp_routers++];
    memset(r, 0, sizeof *r);
    r->name = weir_config_xstrdup(name->text);
    r->pos = weir_config_pos(ctx, name);
    r->service_index = -1;
    weir_config_walk_map(ctx, v, udp_router_keys, r);
    if (!weir_config_map_get(v, "service")) weir_config_key_error(ctx, name, "missing service");
}

static const weir_config_key_t udp_lb_keys[] = {
    {"servers", WEIR_KEY_CUSTOM, 0, NULL, set_servers, 0},
    {"serversTransport", WEIR_KEY_CUSTOM, 0, NULL, set_lb_transport, 0},
    END,
};

static void set_udp_lb(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                       const weir_config_node_t *v, void *target)
{
    load_balancer(ctx, key, v, target, udp_lb_keys);
}

static const weir_config_key_t udp_service_keys[] = {
    {"loadBalancer", WEIR_KEY_CUSTOM, 0, NULL, set_udp_lb, 0},
    {"weighted", WEIR_KEY_CUSTOM, 0, NULL, set_weighted, 0},
    END,
};

static void add_udp_service(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                            const weir_config_node_t *v, void *arg)
{
    add_l4_service(ctx, name, v, &ctx->cfg->udp_services, &ctx->cfg->num_udp_services,
                   udp_service_keys);
}

static void set_udp_routers(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *v, void *target)
{
    weir_config_walk_names(ctx, v, add_udp_router, NULL);
}

static void set_udp_services(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                             const weir_config_node_t *v, void *target)
{
    weir_config_walk_names(ctx, v, add_udp_service, NULL);
}

/* udp.serversTransports: a PROXY v2 header (DGRAM) in front of every
 * datagram to the servers; v1 has no UDP form. */
static void set_udp_pp_version(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                               const weir_config_node_t *v, void *target)
{
    set_pp_version(ctx, key, v, target);
    if (*(int *)target == 1) {
        weir_config_key_error(ctx, v, "PROXY protocol over UDP is version 2 only");
        *(int *)target = 0;
    }
}

static const weir_config_key_t udp_pp_keys[] = {
    {"version", WEIR_KEY_CUSTOM, 0, NULL, set_udp_pp_version, 0},
    END,
};

static void set_udp_transport_pp(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                 const weir_config_node_t *v, void *target)
{
    weir_tcp_transport_cfg_t *t = target;
    t->proxy_protocol = 2;
    weir_config_walk_map(ctx, v, udp_pp_keys, &t->proxy_protocol);
}

static const weir_config_key_t udp_transport_keys[] = {
    {"proxyProtocol", WEIR_KEY_CUSTOM, 0, NULL, set_udp_transport_pp, 0},
    END,
};

static void add_udp_transport(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                              const weir_config_node_t *v, void *arg)
{
    add_l4_transport(ctx, name, v, &ctx->cfg->udp_transports, &ctx->cfg->num_udp_transports,
                     udp_transport_keys, false);
}

static void set_udp_transports(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                               const weir_config_node_t *v, void *target)
{
    weir_config_walk_names(ctx, v, add_udp_transport, NULL);
}

static const weir_config_key_t udp_keys[] = {
    {"routers", WEIR_KEY_CUSTOM, 0, NULL, set_udp_routers, 0},
    {"services", WEIR_KEY_CUSTOM, 0, NULL, set_udp_services, 0},
    {"serversTransports", WEIR_KEY_CUSTOM, 0, NULL, set_udp_transports, 0},
    END,
};

void weir_config_set_udp(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    weir_config_walk_map(ctx, v, udp_keys, ctx->cfg);
}

/* ---- resolution ---- */

static int by_name(const void *a, const void *b, size_t off)
{
    return strcmp(*(char *const *)((const char *)a + off), *(char *const *)((const char *)b + off));
}

static int cmp_router(const void *a, const void *b)
{
    return by_name(a, b, offsetof(weir_router_cfg_t, name));
}

static int cmp_service(const void *a, const void *b)
{
    return by_name(a, b, offsetof(weir_tcp_service_cfg_t, name));
}

static int find_service_in(const weir_tcp_service_cfg_t *arr, size_t num, const char *ref)
{
    if (!ref) return -1;
    size_t n = strlen(ref);
    const char *at = strchr(ref, '@');
    if (at) {
        if (strcmp(at, "@file") != 0) return -1;
        n = (size_t)(at - ref);
    }
    for (size_t i = 0; i < num; i++)
        if (strlen(arr[i].name) == n && strncmp(arr[i].name, ref, n) == 0) return (int)i;
    return -1;
}

/* "name", "name@file" → the index of that TCP service, or -1. */
int weir_config_find_tcp_service(const weir_config_t *cfg, const char *ref)
{
    return cfg ? find_service_in(cfg->tcp_services, cfg->num_tcp_services, ref) : -1;
}

static int find_transport_in(const weir_tcp_transport_cfg_t *arr, size_t num, const char *ref)
{
    size_t n = strlen(ref);
    const char *at = strchr(ref, '@');
    if (at && strcmp(at, "@internal") == 0) return strcmp(ref, "default@internal") == 0 ? 0 : -1;
    if (at) {
        if (strcmp(at, "@file") != 0) return -1;
        n = (size_t)(at - ref);
    }
    for (size_t i = 1; i < num; i++)
        if (strlen(arr[i].name) == n && strncmp(arr[i].name, ref, n) == 0) return (int)i;
    return -1;
}

static int find_transport(const weir_config_t *cfg, const char *ref)
{
    return find_transport_in(cfg->tcp_transports, cfg->num_tcp_transports, ref);
}

/* A UDP router that takes whatever no rule claims: no rule, or HostSNI(`*`)
 * alone. */
static bool udp_catch_all(const weir_router_cfg_t *r)
{
    return !r->rule || strcmp(r->rule, "HostSNI(`*`)") == 0;
}

static const weir_entrypoint_cfg_t *find_entrypoint(const weir_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->num_entrypoints; i++)
        if (strcmp(cfg->entrypoints[i].name, name) == 0) return &cfg->entrypoints[i];
    return NULL;
}

static void resolve_children(weir_config_ctx_t *ctx, const char *section,
                             weir_tcp_service_cfg_t *arr, size_t num, size_t i)
{
    weir_tcp_service_cfg_t *s = &arr[i];
    for (size_t k = 0; k < s->num_children; k++) {
        weir_service_ref_t *c = &s->children[k];
        if (!c->name) continue;
        c->index = find_service_in(arr, num, c->name);
        if (c->index < 0)
            weir_config_error(ctx, c->pos,
                              "%s.services.%s.weighted.services[%zu].name: service \"%s\" does "
                              "not exist",
                              section, s->name, k, c->name);
        else if ((size_t)c->index == i)
            weir_config_error(ctx, c->pos,
                              "%s.services.%s.weighted.services[%zu].name: a service cannot "
                              "contain itself",
                              section, s->name, k);
    }
}

static void resolve_udp(weir_config_ctx_t *ctx)
{
    weir_config_t *cfg = ctx->cfg;
    for (size_t i = 0; i < cfg->num_udp_services; i++) {
        weir_tcp_service_cfg_t *s = &cfg->udp_services[i];
        resolve_children(ctx, "udp", cfg->udp_services, cfg->num_udp_services, i);
        if (!s->servers_transport) continue;
        int t = find_transport_in(cfg->udp_transports, cfg->num_udp_transports,
                                  s->servers_transport);
        if (t < 0)
            weir_config_error(ctx, s->transport_pos,
                              "udp.services.%s.loadBalancer.serversTransport: \"%s\" does not "
                              "exist",
                              s->name, s->servers_transport);
        else
            s->transport_index = t;
    }
    /* one catch-all UDP router per entry point (a datagram that is not a
     * QUIC Initial carries nothing to route on); routers with rules route
     * QUIC connections by SNI, ALPN and client address */
    const char **owner = calloc(cfg->num_entrypoints + 1, sizeof *owner);
    for (size_t e = 0; e < cfg->num_entrypoints; e++)
        if (!cfg->entrypoints[e].udp_timeout_set)
            cfg->entrypoints[e].udp_timeout_ms = UDP_TIMEOUT_MS;
    for (size_t i = 0; i < cfg->num_udp_routers; i++) {
        weir_router_cfg_t *r = &cfg->udp_routers[i];
        for (size_t k = 0; k < r->num_entrypoints; k++) {
            const weir_entrypoint_cfg_t *ep = find_entrypoint(cfg, r->entrypoints[k]);
            if (!ep || !ep->udp)
                weir_config_error(ctx, r->entrypoints_pos[k],
                                  "udp.routers.%s.entryPoints[%zu]: %s \"%s\"", r->name, k,
                                  ep ? "not a UDP entry point:" : "no such entry point:",
                                  r->entrypoints[k]);
        }
        for (size_t e = 0; owner && e < cfg->num_entrypoints; e++) {
            weir_entrypoint_cfg_t *ep = &cfg->entrypoints[e];
            bool on = ep->udp && r->num_entrypoints == 0;
            for (size_t k = 0; k < r->num_entrypoints && !on; k++)
                on = strcmp(r->entrypoints[k], ep->name) == 0 && ep->udp;
            if (!on) continue;
            if (!udp_catch_all(r)) {
                if (!ep->udp_timeout_set) ep->udp_timeout_ms = UDP_QUIC_TIMEOUT_MS;
                continue;
            }
            if (owner[e])
                weir_config_error(ctx, r->pos,
                                  "udp.routers.%s: entry point \"%s\" already has the UDP "
                                  "router \"%s\" without a rule (one per entry point)",
                                  r->name, ep->name, owner[e]);
            else
                owner[e] = r->name;
        }
        if (r->priority == 0 && r->rule)
            r->priority = weir_rule_default_priority(r->rule, WEIR_RULE_TCP);
        if (!r->service) continue;
        r->service_index = find_service_in(cfg->udp_services, cfg->num_udp_services, r->service);
        if (r->service_index < 0)
            weir_config_error(ctx, r->service_pos,
                              "udp.routers.%s.service: UDP service \"%s\" does not exist",
                              r->name, r->service);
    }
    free(owner);
}

void weir_config_resolve_tcp(weir_config_ctx_t *ctx)
{
    weir_config_t *cfg = ctx->cfg;
    if (cfg->num_tcp_routers > 1)
        qsort(cfg->tcp_routers, cfg->num_tcp_routers, sizeof *cfg->tcp_routers, cmp_router);
    if (cfg->num_tcp_services > 1)
        qsort(cfg->tcp_services, cfg->num_tcp_services, sizeof *cfg->tcp_services, cmp_service);
    for (size_t i = 1; i < cfg->num_tcp_routers; i++)
        if (strcmp(cfg->tcp_routers[i].name, cfg->tcp_routers[i - 1].name) == 0)
            weir_config_error(ctx, cfg->tcp_routers[i].pos, "tcp.routers.%s: defined twice",
                              cfg->tcp_routers[i].name);
    for (size_t i = 1; i < cfg->num_tcp_services; i++)
        if (strcmp(cfg->tcp_services[i].name, cfg->tcp_services[i - 1].name) == 0)
            weir_config_error(ctx, cfg->tcp_services[i].pos, "tcp.services.%s: defined twice",
                              cfg->tcp_services[i].name);
    for (size_t i = 0; i < cfg->num_tcp_services; i++) {
        weir_tcp_service_cfg_t *s = &cfg->tcp_services[i];
        if (s->servers_transport) {
            int t = find_transport(cfg, s->servers_transport);
            if (t < 0)
                weir_config_error(ctx, s->transport_pos,
                                  "tcp.services.%s.loadBalancer.serversTransport: \"%s\" does "
                                  "not exist",
                                  s->name, s->servers_transport);
            else
                s->transport_index = t;
        }
        resolve_children(ctx, "tcp", cfg->tcp_services, cfg->num_tcp_services, i);
    }
    for (size_t i = 0; i < cfg->num_tcp_routers; i++) {
        weir_router_cfg_t *r = &cfg->tcp_routers[i];
        for (size_t k = 0; k < r->num_entrypoints; k++) {
            const weir_entrypoint_cfg_t *ep = find_entrypoint(cfg, r->entrypoints[k]);
            if (!ep || ep->udp)
                weir_config_error(ctx, r->entrypoints_pos[k],
                                  "tcp.routers.%s.entryPoints[%zu]: %s \"%s\"", r->name, k,
                                  ep ? "not a TCP entry point:" : "no such entry point:",
                                  r->entrypoints[k]);
        }
        if (r->priority == 0 && r->rule)
            r->priority = weir_rule_default_priority(r->rule, WEIR_RULE_TCP);
        for (size_t k = 0; k < r->num_middlewares; k++) {
            const char *ref = r->middlewares[k];
            size_t n = strlen(ref);
            const char *at = strchr(ref, '@');
            if (at && strcmp(at, "@file") == 0)
                n = (size_t)(at - ref);
            for (size_t m = 0; m < cfg->num_tcp_middlewares && (!at || at == ref + n); m++)
                if (strlen(cfg->tcp_middlewares[m].name) == n &&
                    strncmp(cfg->tcp_middlewares[m].name, ref, n) == 0)
                    r->middleware_index[k] = (int)m;
            if (r->middleware_index[k] < 0)
                weir_config_error(ctx, r->pos, "tcp.routers.%s.middlewares[%zu]: TCP middleware "
                                               "\"%s\" does not exist",
                                  r->name, k, ref);
        }
        if (!r->service) continue;
        r->service_index = weir_config_find_tcp_service(cfg, r->service);
        if (r->service_index < 0)
            weir_config_error(ctx, r->service_pos,
                              "tcp.routers.%s.service: TCP service \"%s\" does not exist",
                              r->name, r->service);
    }
    resolve_udp(ctx);
}

static void free_services(weir_tcp_service_cfg_t *arr, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        weir_tcp_service_cfg_t *s = &arr[i];
        free(s->name);
        for (size_t k = 0; k < s->num_servers; k++) {
            free(s->servers[k].address);
            free(s->servers[k].host);
        }
        free(s->servers);
        free(s->servers_transport);
        for (size_t k = 0; k < s->num_children; k++)
            free(s->children[k].name);
        free(s->children);
    }
    free(arr);
}

void weir_config_tcp_free(weir_config_t *cfg)
{
    for (size_t i = 0; i < cfg->num_tcp_routers; i++)
        weir_config_router_clear(&cfg->tcp_routers[i]);
    free(cfg->tcp_routers);
    free_services(cfg->tcp_services, cfg->num_tcp_services);
    for (size_t i = 0; i < cfg->num_udp_routers; i++)
        weir_config_router_clear(&cfg->udp_routers[i]);
    free(cfg->udp_routers);
    free_services(cfg->udp_services, cfg->num_udp_services);
    for (size_t i = 0; i < cfg->num_tcp_transports; i++) {
        free(cfg->tcp_transports[i].name);
        weir_config_transport_tls_free(&cfg->tcp_transports[i].tls);
    }
    for (size_t i = 0; i < cfg->num_udp_transports; i++)
        free(cfg->udp_transports[i].name);
    free(cfg->udp_transports);
    free(cfg->tcp_transports);
    for (size_t i = 0; i < cfg->num_tcp_middlewares; i++) {
        free(cfg->tcp_middlewares[i].name);
        free(cfg->tcp_middlewares[i].ranges);
    }
    free(cfg->tcp_middlewares);
}
