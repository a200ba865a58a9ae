/* Snapshot building: config model → router tables and resolved services. */
#include "http/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *full_name(const char *name, const char *provider)
{
    if (strchr(name, '@'))
        return strdup(name);
    size_t n = strlen(name) + strlen(provider) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s@%s", name, provider);
    return s;
}

static bool router_on_entrypoint(const weir_router_cfg_t *r, const char *ep)
{
    if (r->num_entrypoints == 0)
        return true;
    for (size_t i = 0; i < r->num_entrypoints; i++)
        if (strcmp(r->entrypoints[i], ep) == 0)
            return true;
    return false;
}

static int build_services(weir_snapshot_t *s)
{
    weir_config_t *cfg = s->cfg;
    s->num_services = cfg->num_services;
    s->services = calloc(cfg->num_services ? cfg->num_services : 1, sizeof *s->services);
    if (!s->services)
        return -1;
    int nservers = 0;
    for (size_t i = 0; i < cfg->num_services; i++)
        nservers += (int)cfg->services[i].num_servers;
    s->servers = calloc((size_t)nservers + 1, sizeof *s->servers);
    s->server_service = calloc((size_t)nservers + 1, sizeof *s->server_service);
    if (!s->servers || !s->server_service)
        return -1;
    int wrr = 0;
    for (size_t i = 0; i < cfg->num_services; i++) {
        const weir_service_cfg_t *sc = &cfg->services[i];
        weir_service_rt_t *rt = &s->services[i];
        rt->cfg = sc;
        rt->full_name = full_name(sc->name, "file");
        if (!rt->full_name)
            return -1;
        if (sc->kind == WEIR_SERVICE_INTERNAL)
            rt->internal = strncmp(sc->name, "whoami", 6) == 0 ? WEIR_INTERNAL_WHOAMI
                                                               : WEIR_INTERNAL_NOOP;
        int ti = sc->transport_index;
        if (ti < 0 || (size_t)ti >= cfg->num_transports)
            ti = 0;
        rt->transport = cfg->num_transports ? &cfg->transports[ti] : NULL;
        rt->server_base = s->num_servers;
        rt->num_servers = (int)sc->num_servers;
        for (size_t k = 0; k < sc->num_servers; k++) {
            s->servers[s->num_servers] = &sc->servers[k];
            s->server_service[s->num_servers] = rt;
            s->num_servers++;
        }
        rt->wrr_base = wrr;
        rt->wrr_len = sc->kind == WEIR_SERVICE_WEIGHTED ? (int)sc->num_children : (int)sc->num_servers;
        wrr += rt->wrr_len;
    }
    s->wrr_total = wrr;
    for (size_t i = 0; i < cfg->num_services; i++) {
        const weir_service_cfg_t *sc = &cfg->services[i];
        weir_service_rt_t *rt = &s->services[i];
        if (sc->kind != WEIR_SERVICE_WEIGHTED || sc->num_children == 0)
            continue;
        rt->children = calloc(sc->num_children, sizeof *rt->children);
        rt->child_weights = calloc(sc->num_children, sizeof *rt->child_weights);
        if (!rt->children || !rt->child_weights)
            return -1;
        for (size_t k = 0; k < sc->num_children; k++) {
            int idx = sc->children[k].index;
            if (idx < 0 || (size_t)idx >= cfg->num_services)
                continue; /* the loader rejects these; stay safe */
            rt->children[rt->num_children] = &s->services[idx];
            rt->child_weights[rt->num_children] = sc->children[k].weight;
            rt->num_children++;
        }
    }
    return 0;
}

/* The hosts an HTTP router with TLS serves, so that a TCP catch-all does
 * not take their connections. */
static int note_https_hosts(weir_tcp_ep_t *te, const weir_rule_t *rule)
{
    weir_slice_t hosts[64];
    size_t n = weir_rule_hosts(rule, hosts, 64);
    te->https = true;
    if (n == 0 || n > 64) {
        te->https_any = true;
        return 0;
    }
    weir_slice_t *a = realloc(te->https_hosts, (te->num_https_hosts + n) * sizeof *a);
    if (!a)
        return -1;
    memcpy(a + te->num_https_hosts, hosts, n * sizeof *a);
    te->https_hosts = a;
    te->num_https_hosts += n;
    return 0;
}

/* TCP or UDP services (the same model: addresses, weighted children). */
static int build_l4_services(weir_tcp_service_rt_t *rts, const weir_tcp_service_cfg_t *cfgs,
                             size_t ns, const weir_tcp_transport_cfg_t *transports,
                             size_t num_transports)
{
    for (size_t i = 0; i < ns; i++) {
        const weir_tcp_service_cfg_t *c = &cfgs[i];
        weir_tcp_service_rt_t *rt = &rts[i];
        rt->cfg = c;
        int ti = c->transport_index >= 0 && (size_t)c->transport_index < num_transports
                     ? c->transport_index
                     : 0;
        rt->transport = &transports[ti];
        rt->proxy_protocol = rt->transport->proxy_protocol ? rt->transport->proxy_protocol
                                                           : c->proxy_protocol;
        rt->termination_delay_ms = c->termination_delay_ms != -2 ? c->termination_delay_ms
                                                                 : rt->transport->termination_delay_ms;
        atomic_init(&rt->next, 0);
        if (c->kind != WEIR_SERVICE_WEIGHTED)
            continue;
        rt->children = calloc(c->num_children + 1, sizeof *rt->children);
        rt->child_weights = calloc(c->num_children + 1, sizeof *rt->child_weights);
        if (!rt->children || !rt->child_weights)
            return -1;
        for (size_t k = 0; k < c->num_children; k++) {
            int ci = c->children[k].index;
            rt->children[k] = ci >= 0 && (size_t)ci < ns ? &rts[ci] : NULL;
            rt->child_weights[k] = rt->children[k] ? c->children[k].weight : 0;
            rt->total_weight += rt->child_weights[k];
        }
    }
    return 0;
}

static int build_udp(weir_snapshot_t *s)
{
    weir_config_t *cfg = s->cfg;
    size_t ns = cfg->num_udp_services;
    s->udp_services = calloc(ns ? ns : 1, sizeof *s->udp_services);
    s->udp_ep_service = calloc(cfg->num_entrypoints + 1, sizeof *s->udp_ep_service);
    if (!s->udp_services || !s->udp_ep_service ||
        build_l4_services(s->udp_services, cfg->udp_services, ns, cfg->udp_transports,
                          cfg->num_udp_transports) < 0)
        return -1;
    s->udp_routes = calloc(cfg->num_udp_routers + 1, sizeof *s->udp_routes);
    s->udp_tables = calloc(cfg->num_entrypoints + 1, sizeof *s->udp_tables);
    if (!s->udp_routes || !s->udp_tables)
        return -1;
    for (size_t i = 0; i < cfg->num_udp_routers; i++) {
        const weir_router_cfg_t *rc = &cfg->udp_routers[i];
        weir_tcp_route_t *r = &s->udp_routes[i];
        int si = rc->service_index;
        r->cfg = rc;
        r->full_name = full_name(rc->name, "file");
        if (!r->full_name)
            return -1;
        if (si < 0 || (size_t)si >= ns)
            continue;
        r->service = &s->udp_services[si];
        bool catch_all = !rc->rule || strcmp(rc->rule, "HostSNI(`*`)") == 0;
        for (size_t e = 0; e < cfg->num_entrypoints; e++) {
            if (!cfg->entrypoints[e].udp || !router_on_entrypoint(rc, cfg->entrypoints[e].name))
                continue;
            if (catch_all) {
                if (!s->udp_ep_service[e])
                    s->udp_ep_service[e] = r->service;
                continue;
            }
            weir_rule_t *rule;
            weir_rule_error_t err;
            if (weir_rule_compile(rc->rule, WEIR_RULE_TCP, &rule, &err) < 0)
                continue;
            if (!s->udp_tables[e] && !(s->udp_tables[e] = weir_router_table_new())) {
                weir_rule_free(rule);
                return -1;
            }
            if (weir_router_table_add(s->udp_tables[e], rule, rc->priority, r) < 0)
                return -1;
        }
    }
    for (size_t e = 0; e < cfg->num_entrypoints; e++)
        if (s->udp_tables[e] && weir_router_table_build(s->udp_tables[e]) < 0)
            return -1;
    return 0;
}

static int build_tcp(weir_snapshot_t *s)
{
    weir_config_t *cfg = s->cfg;
    size_t ns = cfg->num_tcp_services;
    s->tcp_services = calloc(ns ? ns : 1, sizeof *s->tcp_services);
    s->tcp_routes = calloc(cfg->num_tcp_routers ? cfg->num_tcp_routers : 1, sizeof *s->tcp_routes);
    if (!s->tcp_services || !s->tcp_routes ||
        build_l4_services(s->tcp_services, cfg->tcp_services, ns, cfg->tcp_transports,
                          cfg->num_tcp_transports) < 0)
        return -1;
    size_t nm = cfg->num_tcp_middlewares;
    s->tcp_mws = calloc(nm ? nm : 1, sizeof *s->tcp_mws);
    if (!s->tcp_mws)
        return -1;
    for (size_t i = 0; i < nm; i++) {
        s->tcp_mws[i].cfg = &cfg->tcp_middlewares[i];
        pthread_mutex_init(&s->tcp_mws[i].mu, NULL);
    }
    for (size_t i = 0; i < cfg->num_tcp_routers; i++) {
        weir_tcp_route_t *r = &s->tcp_routes[i];
        const weir_router_cfg_t *rc = &cfg->tcp_routers[i];
        r->cfg = rc;
        r->full_name = full_name(rc->name, "file");
        r->mws = calloc(rc->num_middlewares + 1, sizeof *r->mws);
        if (!r->full_name || !r->mws)
            return -1;
        for (size_t k = 0; k < rc->num_middlewares; k++) {
            int mi = rc->middleware_index ? rc->middleware_index[k] : -1;
            if (mi >= 0 && (size_t)mi < nm)
                r->mws[r->num_mws++] = &s->tcp_mws[mi];
        }
        int si = rc->service_index;
        r->service = si >= 0 && (size_t)si < ns ? &s->tcp_services[si] : NULL;
    }
    for (size_t e = 0; e < cfg->num_entrypoints; e++) {
        const weir_entrypoint_cfg_t *ep = &cfg->entrypoints[e];
        weir_tcp_ep_t *te = &s->tcp_eps[e];
        for (size_t i = 0; i < cfg->num_tcp_routers; i++) {
            const weir_router_cfg_t *rc = &cfg->tcp_routers[i];
            if (!router_on_entrypoint(rc, ep->name) || !s->tcp_routes[i].service || ep->udp)
                continue;
            weir_rule_t *rule;
            weir_rule_error_t err;
            if (weir_rule_compile(rc->rule, WEIR_RULE_TCP, &rule, &err) < 0)
                continue;
            weir_slice_t hosts[8];
            size_t n = weir_rule_hosts(rule, hosts, 8);
            bool specific = false;
            for (size_t k = 0; k < n && k < 8; k++)
                specific = specific || !weir_slice_eq(hosts[k], WEIR_SLICE_LIT("*"));
            s->tcp_routes[i].catch_all = !specific;
            weir_router_table_t **dst = rc->tls ? &te->tls : &te->plain;
            if (!*dst && !(*dst = weir_router_table_new())) {
                weir_rule_free(rule);
                return -1;
            }
            if (weir_router_table_add(*dst, rule, rc->priority, &s->tcp_routes[i]) < 0)
                return -1;
        }
        if ((te->tls && weir_router_table_build(te->tls) < 0) ||
            (te->plain && weir_router_table_build(te->plain) < 0))
            return -1;
    }
    return 0;
}

static int build_routes(weir_snapshot_t *s)
{
    weir_config_t *cfg = s->cfg;
    s->num_routes = cfg->num_routers;
    s->routes = calloc(cfg->num_routers ? cfg->num_routers : 1, sizeof *s->routes);
    s->tables = calloc(cfg->num_entrypoints ? cfg->num_entrypoints : 1, sizeof *s->tables);
    s->tls_tables = calloc(cfg->num_entrypoints ? cfg->num_entrypoints : 1, sizeof *s->tls_tables);
    s->tcp_eps = calloc(cfg->num_entrypoints ? cfg->num_entrypoints : 1, sizeof *s->tcp_eps);
    if (!s->routes || !s->tables || !s->tls_tables || !s->tcp_eps)
        return -1;
    for (size_t i = 0; i < cfg->num_routers; i++) {
        weir_route_t *r = &s->routes[i];
        r->cfg = &cfg->routers[i];
        r->full_name = full_name(cfg->routers[i].name, "file");
        int si = cfg->routers[i].service_index;
        r->service = si >= 0 && (size_t)si < s->num_services ? &s->services[si] : NULL;
        if (!r->full_name)
            return -1;
    }
    for (size_t e = 0; e < cfg->num_entrypoints; e++) {
        const weir_entrypoint_cfg_t *ep = &cfg->entrypoints[e];
        weir_router_table_t *t = weir_router_table_new();
        weir_router_table_t *tt = weir_router_table_new();
        s->tables[e] = t;
        s->tls_tables[e] = tt;
        if (!t || !tt)
            return -1;
        for (size_t i = 0; i < cfg->num_routers; i++) {
            weir_router_cfg_t *rc = &cfg->routers[i];
            if (!router_on_entrypoint(rc, ep->name) || !s->routes[i].service)
                continue;
            /* Each table owns its matcher tree, so compile a copy per table
             * after the first (the loader's compiled rule goes to the first). */
            weir_rule_t *rule = rc->compiled;
            rc->compiled = NULL;
            if (!rule) {
                weir_rule_error_t err;
                if (weir_rule_compile(rc->rule, WEIR_RULE_HTTP, &rule, &err) < 0)
                    continue;
            }
            /* Traefik: routers with tls serve TLS connections only, the
             * others plain ones only; http.tls on the entry point makes
             * every router on it a TLS router. */
            weir_router_table_t *dst = rc->tls || ep->http_tls ? tt : t;
            if (dst == tt && note_https_hosts(&s->tcp_eps[e], rule) < 0) {
                weir_rule_free(rule);
                return -1;
            }
            s->tcp_eps[e].http_plain = s->tcp_eps[e].http_plain || dst == t;
            if (weir_router_table_add(dst, rule, rc->priority, &s->routes[i]) < 0)
                return -1;
        }
        if (weir_router_table_build(t) < 0 || weir_router_table_build(tt) < 0)
            return -1;
    }
    return 0;
}

static void snapshot_free(weir_snapshot_t *s)
{
    if (s->tables) {
        for (size_t e = 0; e < s->cfg->num_entrypoints; e++)
            weir_router_table_free(s->tables[e]);
        free(s->tables);
    }
    if (s->tcp_eps) {
        for (size_t e = 0; e < s->cfg->num_entrypoints; e++) {
            weir_router_table_free(s->tcp_eps[e].tls);
            weir_router_table_free(s->tcp_eps[e].plain);
            free(s->tcp_eps[e].https_hosts);
        }
        free(s->tcp_eps);
    }
    if (s->tcp_services) {
        for (size_t i = 0; i < s->cfg->num_tcp_services; i++) {
            free(s->tcp_services[i].children);
            free(s->tcp_services[i].child_weights);
        }
        free(s->tcp_services);
    }
    if (s->tcp_routes) {
        for (size_t i = 0; i < s->cfg->num_tcp_routers; i++) {
            free(s->tcp_routes[i].full_name);
            free(s->tcp_routes[i].mws);
        }
        free(s->tcp_routes);
    }
    if (s->udp_services) {
        for (size_t i = 0; i < s->cfg->num_udp_services; i++) {
            free(s->udp_services[i].children);
            free(s->udp_services[i].child_weights);
        }
        free(s->udp_services);
    }
    free(s->udp_ep_service);
    if (s->udp_routes) {
        for (size_t i = 0; i < s->cfg->num_udp_routers; i++)
            free(s->udp_routes[i].full_name);
        free(s->udp_routes);
    }
    if (s->udp_tables) {
        for (size_t e = 0; e < s->cfg->num_entrypoints; e++)
            weir_router_table_free(s->udp_tables[e]);
        free(s->udp_tables);
    }
    if (s->tcp_mws) {
        for (size_t i = 0; i < s->cfg->num_tcp_middlewares; i++) {
            pthread_mutex_destroy(&s->tcp_mws[i].mu);
            free(s->tcp_mws[i].slots);
        }
        free(s->tcp_mws);
    }
    if (s->tls_tables) {
        for (size_t e = 0; e < s->cfg->num_entrypoints; e++)
            weir_router_table_free(s->tls_tables[e]);
        free(s->tls_tables);
    }
    if (s->tls)
        weir_tls_ctx_unref(s->tls);
    if (s->routes) {
        for (size_t i = 0; i < s->num_routes; i++)
            free(s->routes[i].full_name);
        free(s->routes);
    }
    if (s->services) {
        for (size_t i = 0; i < s->num_services; i++) {
            free(s->services[i].full_name);
            free(s->services[i].children);
            free(s->services[i].child_weights);
        }
        free(s->services);
    }
    free(s->servers);
    free(s->server_service);
    weir_config_free(s->cfg);
    free(s);
}

weir_snapshot_t *weir_snapshot_build(weir_config_t *cfg, weir_tls_ctx_t *tls, uint64_t generation)
{
    weir_snapshot_t *s = calloc(1, sizeof *s);
    if (!s) {
        weir_config_free(cfg);
        if (tls)
            weir_tls_ctx_unref(tls);
        return NULL;
    }
    s->cfg = cfg;
    s->tls = tls;
    s->generation = generation;
    atomic_init(&s->refs, 1);
    if (build_services(s) < 0 || build_routes(s) < 0 || build_tcp(s) < 0 || build_udp(s) < 0) {
        snapshot_free(s);
        return NULL;
    }
    return s;
}

void weir_snapshot_ref(weir_snapshot_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void weir_snapshot_unref(weir_snapshot_t *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        snapshot_free(s);
}
