/* The dynamic configuration of the file provider: http.routers,
 * http.services, http.serversTransports (pkg/config/dynamic/http_config.go).
 * Only what one router or service says is checked here; references between
 * them are resolved once every file is read (config_resolve.c).
 */
#define WEIR_CONFIG_INTERNAL
#include "config/config.h"

#include <limits.h>
#include <stddef.h>

// clang-format off
#define UNSUPPORTED(name) {name, WEIR_KEY_UNSUPPORTED, 0, NULL, NULL, 0}
#define END {NULL, 0, 0, NULL, NULL, 0}
// clang-format on

/* Names become "name@file" in references, so '@' cannot be part of one. */
bool weir_config_name_ok(weir_config_ctx_t *ctx, const weir_config_node_t *name)
{
    if (!strchr(name->text, '@')) return true;
    weir_config_key_error(ctx, name, "a name must not contain \"@\"");
    return false;
}

/* ---- routers ---- */

/* Column of byte offset off inside scalar v. Exact for plain and quoted
 * scalars on one line (a quoted ' or " or \ takes two columns); a multi-line
 * or block scalar reports its start. libyaml counts columns in characters,
 * so UTF-8 continuation bytes take none. */
static int column_at(const weir_config_node_t *v, size_t off)
{
    if (v->multiline || v->style == WEIR_CONFIG_BLOCK) return v->col;
    int col = v->col + (v->style == WEIR_CONFIG_PLAIN ? 0 : 1);
    for (size_t i = 0; i < off && i < v->len; i++) {
        unsigned char c = (unsigned char)v->text[i];
        if ((c & 0xc0) == 0x80) continue;
        col++;
        if (v->style == WEIR_CONFIG_SINGLE_QUOTED && c == '\'') col++;
        if (v->style == WEIR_CONFIG_DOUBLE_QUOTED && (c == '"' || c == '\\' || c < 0x20)) col++;
    }
    return col;
}

static void set_rule(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                     const weir_config_node_t *v, void *target)
{
    weir_router_cfg_t *r = target;
    if (!weir_config_get_string(ctx, v, &r->rule)) return;
    r->rule_pos = weir_config_pos(ctx, v);
    if (!*r->rule) {
        weir_config_key_error(ctx, v, "the rule is empty");
        return;
    }
    weir_rule_error_t err = {.offset = 0};
    if (weir_rule_compile(r->rule, WEIR_RULE_HTTP, &r->compiled, &err) == 0) return;
    r->compiled = NULL;
    weir_pos_t pos = r->rule_pos;
    pos.col = column_at(v, err.offset);
    err.msg[sizeof err.msg - 1] = '\0';
    weir_config_error(ctx, pos, "%s: %s", ctx->path, err.msg);
}

/* Priorities near INT64_MAX are Traefik's internal routers' (MaxInt - 1000
 * and up); 0 means "the rule's length", decided in config_resolve.c. */
void weir_config_set_router_priority(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                     const weir_config_node_t *v, void *target)
{
    int64_t n;
    if (weir_config_get_int(ctx, v, INT64_MIN, INT64_MAX - 1000, &n))
        ((weir_router_cfg_t *)target)->priority = n;
}

void weir_config_set_router_service(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                    const weir_config_node_t *v, void *target)
{
    weir_router_cfg_t *r = target;
    if (!weir_config_get_string(ctx, v, &r->service)) return;
    r->service_pos = weir_config_pos(ctx, v);
    if (!*r->service) {
        weir_config_key_error(ctx, v, "expected a service name, got nothing");
        free(r->service);
        r->service = NULL;
    }
}

static void add_router_entrypoint(weir_config_ctx_t *ctx, const weir_config_node_t *item, size_t i,
                                  void *arg)
{
    weir_router_cfg_t *r = arg;
    char *name = NULL;
    if (!weir_config_get_string(ctx, item, &name)) return;
    size_t n = r->num_entrypoints;
    r->entrypoints = weir_config_grow(r->entrypoints, n, sizeof *r->entrypoints);
    r->entrypoints_pos = weir_config_grow(r->entrypoints_pos, n, sizeof *r->entrypoints_pos);
    r->entrypoints[n] = name;
    r->entrypoints_pos[n] = weir_config_pos(ctx, item);
    r->num_entrypoints++;
}

void weir_config_set_router_entrypoints(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                        const weir_config_node_t *v, void *target)
{
    weir_config_walk_list(ctx, v, add_router_entrypoint, target);
}

static void add_middleware(weir_config_ctx_t *ctx, const weir_config_node_t *item, size_t i,
                           void *arg)
{
    weir_router_cfg_t *r = arg;
    char *name = NULL;
    if (!weir_config_get_string(ctx, item, &name)) return;
    r->middlewares = weir_config_grow(r->middlewares, r->num_middlewares, sizeof(char *));
    r->middlewares[r->num_middlewares++] = name;
}

static void set_router_middlewares(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                   const weir_config_node_t *v, void *target)
{
    weir_router_cfg_t *r = target;
    weir_config_walk_list(ctx, v, add_middleware, r);
    if (r->num_middlewares) weir_config_key_error(ctx, key, "middlewares are not supported yet");
}

static const weir_config_key_t router_keys[] = {
    {"entryPoints", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_entrypoints, 0},
    {"rule", WEIR_KEY_CUSTOM, 0, NULL, set_rule, 0},
    {"ruleSyntax", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_rule_syntax, 0},
    {"priority", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_priority, 0},
    {"service", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_service, 0},
    {"middlewares", WEIR_KEY_CUSTOM, 0, NULL, set_router_middlewares, 0},
    {"tls", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_tls, 0},
    {"advertiseHTTP3", WEIR_KEY_BOOL, offsetof(weir_router_cfg_t, advertise_http3), NULL, NULL, 0},
    UNSUPPORTED("observability"),
    END,
};

static void add_router(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                       const weir_config_node_t *v, void *arg)
{
    if (!weir_config_name_ok(ctx, name)) return;
    weir_config_t *cfg = ctx->cfg;
    cfg->routers = weir_config_grow(cfg->routers, cfg->num_routers, sizeof *cfg->routers);
    weir_router_cfg_t *r = &cfg->routers[cfg->num_routers++];
    memset(r, 0, sizeof *r);
    r->name = weir_config_xstrdup(name->text);
    r->pos = weir_config_pos(ctx, name);
    r->service_index = -1;
    r->advertise_http3 = 1;
    weir_config_walk_map(ctx, v, router_keys, r);
    if (!weir_config_map_get(v, "rule")) weir_config_key_error(ctx, name, "missing rule");
    if (!weir_config_map_get(v, "service")) weir_config_key_error(ctx, name, "missing service");
}

/* ---- services ---- */

static void set_url(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                    const weir_config_node_t *v, void *target)
{
    weir_server_cfg_t *srv = target;
    if (!weir_config_get_string(ctx, v, &srv->url)) return;
    char err[600];
    if (weir_config_parse_server_url(srv->url, ctx->flags, srv, err, sizeof err) < 0)
        weir_config_key_error(ctx, v, "%s", err);
}

static const weir_config_key_t server_keys[] = {
    {"url", WEIR_KEY_CUSTOM, 0, NULL, set_url, 0},
    {"weight", WEIR_KEY_UINT, offsetof(weir_server_cfg_t, weight), NULL, NULL, 0},
    UNSUPPORTED("preservePath"),
    END,
};

static void add_server(weir_config_ctx_t *ctx, const weir_config_node_t *item, size_t i, void *arg)
{
    weir_service_cfg_t *s = arg;
    s->servers = weir_config_grow(s->servers, s->num_servers, sizeof *s->servers);
    weir_server_cfg_t *srv = &s->servers[s->num_servers++];
    memset(srv, 0, sizeof *srv);
    srv->weight = 1;
    srv->pos = weir_config_pos(ctx, item);
    weir_config_walk_map(ctx, item, server_keys, srv);
    if (!weir_config_map_get(item, "url") &&
        (weir_config_is_empty(item) || item->kind == WEIR_CONFIG_MAP))
        weir_config_key_error(ctx, item, "missing url");
}

static void set_servers(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                        const weir_config_node_t *v, void *target)
{
    weir_config_walk_list(ctx, v, add_server, target);
}

static void set_strategy(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    static const char *const later[] = {"p2c", "hrw", "leasttime"};
    char *s = NULL;
    if (!weir_config_get_string(ctx, v, &s)) return;
    bool known_later = false;
    for (size_t i = 0; i < 3; i++)
        known_later = known_later || strcasecmp(s, later[i]) == 0;
    if (known_later)
        weir_config_key_error(ctx, v, "strategy \"%s\" is not supported yet (only wrr)", s);
    else if (strcasecmp(s, "wrr") != 0)
        weir_config_key_error(ctx, v, "unknown strategy \"%s\" (only wrr)", s);
    free(s);
}

static void set_lb_transport(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                             const weir_config_node_t *v, void *target)
{
    weir_service_cfg_t *s = target;
    if (!weir_config_get_string(ctx, v, &s->servers_transport)) return;
    s->transport_pos = weir_config_pos(ctx, v);
    if (!*s->servers_transport) {
        free(s->servers_transport);
        s->servers_transport = NULL;
    }
}

static const weir_config_key_t load_balancer_keys[] = {
    {"servers", WEIR_KEY_CUSTOM, 0, NULL, set_servers, 0},
    {"passHostHeader", WEIR_KEY_BOOL, offsetof(weir_service_cfg_t, pass_host_header), NULL, NULL,
     0},
    {"strategy", WEIR_KEY_CUSTOM, 0, NULL, set_strategy, 0},
    {"serversTransport", WEIR_KEY_CUSTOM, 0, NULL, set_lb_transport, 0},
    UNSUPPORTED("sticky"),
    UNSUPPORTED("healthCheck"),
    UNSUPPORTED("passiveHealthCheck"),
    UNSUPPORTED("responseForwarding"),
    END,
};

static void set_child_name(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                           const weir_config_node_t *v, void *target)
{
    weir_service_ref_t *c = target;
    if (!weir_config_get_string(ctx, v, &c->name)) return;
    if (!*c->name) {
        weir_config_key_error(ctx, v, "expected a service name, got nothing");
        free(c->name);
        c->name = NULL;
    }
}

static const weir_config_key_t weighted_child_keys[] = {
    {"name", WEIR_KEY_CUSTOM, 0, NULL, set_child_name, 0},
    {"weight", WEIR_KEY_UINT, offsetof(weir_service_ref_t, weight), NULL, NULL, 0},
    END,
};

typedef struct {
    weir_service_ref_t **children;
    size_t *n;
} children_t;

static void add_child(weir_config_ctx_t *ctx, const weir_config_node_t *item, size_t i, void *arg)
{
    children_t *l = arg;
    *l->children = weir_config_grow(*l->children, *l->n, sizeof **l->children);
    weir_service_ref_t *c = &(*l->children)[(*l->n)++];
    memset(c, 0, sizeof *c);
    c->weight = 1;
    c->index = -1;
    const weir_config_node_t *name = weir_config_map_get(item, "name");
    c->pos = weir_config_pos(ctx, name ? name : item);
    weir_config_walk_map(ctx, item, weighted_child_keys, c);
    if (!weir_config_map_get(item, "name") &&
        (weir_config_is_empty(item) || item->kind == WEIR_CONFIG_MAP))
        weir_config_key_error(ctx, item, "missing name");
}

void weir_config_walk_children(weir_config_ctx_t *ctx, const weir_config_node_t *v,
                               weir_service_ref_t **children, size_t *n)
{
    children_t l = {children, n};
    weir_config_walk_list(ctx, v, add_child, &l);
}

static void set_children(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    weir_service_cfg_t *s = target;
    weir_config_walk_children(ctx, v, &s->children, &s->num_children);
}

static const weir_config_key_t weighted_keys[] = {
    {"services", WEIR_KEY_CUSTOM, 0, NULL, set_children, 0},
    UNSUPPORTED("sticky"),
    UNSUPPORTED("healthCheck"),
    END,
};

/* A service has exactly one type; the second one named is the error. */
bool weir_config_one_service_type(weir_config_ctx_t *ctx, const weir_config_node_t *key)
{
    if (ctx->service_types++ == 0) return true;
    weir_config_key_error(ctx, key, "a service has one type: loadBalancer or weighted, not both");
    return false;
}

static void set_load_balancer(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                              const weir_config_node_t *v, void *target)
{
    weir_service_cfg_t *s = target;
    if (!weir_config_one_service_type(ctx, key)) return;
    s->kind = WEIR_SERVICE_LOADBALANCER;
    weir_config_walk_map(ctx, v, load_balancer_keys, s);
}

static void set_weighted(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    weir_service_cfg_t *s = target;
    if (!weir_config_one_service_type(ctx, key)) return;
    s->kind = WEIR_SERVICE_WEIGHTED;
    weir_config_walk_map(ctx, v, weighted_keys, s);
}

static const weir_config_key_t service_keys[] = {
    {"loadBalancer", WEIR_KEY_CUSTOM, 0, NULL, set_load_balancer, 0},
    {"weighted", WEIR_KEY_CUSTOM, 0, NULL, set_weighted, 0},
    UNSUPPORTED("mirroring"),
    UNSUPPORTED("failover"),
    UNSUPPORTED("highestRandomWeight"),
    END,
};

static void add_service(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                        const weir_config_node_t *v, void *arg)
{
    if (!weir_config_name_ok(ctx, name)) return;
    weir_config_t *cfg = ctx->cfg;
    cfg->services = weir_config_grow(cfg->services, cfg->num_services, sizeof *cfg->services);
    weir_service_cfg_t *s = &cfg->services[cfg->num_services++];
    memset(s, 0, sizeof *s);
    s->name = weir_config_xstrdup(name->text);
    s->pos = weir_config_pos(ctx, name);
    s->pass_host_header = 1;
    ctx->service_types = 0;
    weir_config_walk_map(ctx, v, service_keys, s);
    if (ctx->service_types == 0 && (weir_config_is_empty(v) || v->kind == WEIR_CONFIG_MAP))
        weir_config_key_error(ctx, name, "needs a loadBalancer or a weighted section");
}

/* ---- serversTransports, middlewares, the http section ---- */

static void add_transport(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                          const weir_config_node_t *v, void *arg)
{
    if (!weir_config_name_ok(ctx, name)) return;
    weir_config_t *cfg = ctx->cfg;
    cfg->transports =
        weir_config_grow(cfg->transports, cfg->num_transports, sizeof *cfg->transports);
    weir_servers_transport_cfg_t *t = &cfg->transports[cfg->num_transports++];
    memset(t, 0, sizeof *t);
    weir_config_transport_defaults(t);
    t->name = weir_config_xstrdup(name->text);
    t->pos = weir_config_pos(ctx, name);
    weir_config_walk_map(ctx, v, weir_config_dynamic_transport_keys(), t);
}

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

static void set_middlewares(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *v, void *target)
{
    weir_config_key_error(ctx, key, "middlewares are not supported yet");
}

static const weir_config_key_t http_keys[] = {
    {"routers", WEIR_KEY_CUSTOM, 0, NULL, set_routers, 0},
    {"services", WEIR_KEY_CUSTOM, 0, NULL, set_services, 0},
    {"serversTransports", WEIR_KEY_CUSTOM, 0, NULL, set_transports, 0},
    {"middlewares", WEIR_KEY_CUSTOM, 0, NULL, set_middlewares, 0},
    END,
};

void weir_config_set_http(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                          const weir_config_node_t *v, void *target)
{
    weir_config_walk_map(ctx, v, http_keys, ctx->cfg);
}

static const weir_config_key_t dynamic_keys[] = {
    {"http", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_http, 0},
    {"tcp", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_tcp, 0},
    {"udp", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_udp, 0},
    {"tls", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_tls, 0},
    END,
};

void weir_config_parse_dynamic(weir_config_ctx_t *ctx, const weir_config_node_t *root)
{
    weir_config_walk_map(ctx, root, dynamic_keys, ctx->cfg);
}
