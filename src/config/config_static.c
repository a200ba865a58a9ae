/* The static configuration: entry points, providers, log, access log,
 * serversTransport, core. One key table per section, in Traefik's
 * spelling (pkg/config/static). Keys Traefik has and weir does not
 * implement yet are listed as WEIR_KEY_UNSUPPORTED, so using one is an
 * error that says so instead of a silent default.
 */
#define WEIR_CONFIG_INTERNAL
#include "config/config.h"

#include <limits.h>
#include <stddef.h>

#define EP(f) offsetof(weir_entrypoint_cfg_t, f)
#define CFG(f) offsetof(weir_config_t, f)
#define TR(f) offsetof(weir_servers_transport_cfg_t, f)
#define FT(f) offsetof(weir_forwarding_timeouts_t, f)
// clang-format off
#define UNSUPPORTED(name) {name, WEIR_KEY_UNSUPPORTED, 0, NULL, NULL, 0}
#define STATIC_UNSUPPORTED(name) {name, WEIR_KEY_UNSUPPORTED, 0, NULL, NULL, WEIR_KEY_STATIC}
#define END {NULL, 0, 0, NULL, NULL, 0}
// clang-format on

/* ---- defaults (Traefik's) ---- */

void weir_config_transport_defaults(weir_servers_transport_cfg_t *t)
{
    t->max_idle_conns_per_host = 200;
    t->timeouts.dial_timeout_ms = 30000;
    t->timeouts.response_header_timeout_ms = 0;
    t->timeouts.idle_conn_timeout_ms = 90000;
    t->timeouts.read_idle_timeout_ms = 0;
    t->timeouts.ping_timeout_ms = 15000;
}

static void entrypoint_defaults(weir_entrypoint_cfg_t *ep)
{
    ep->read_timeout_ms = 60000;
    ep->write_timeout_ms = 0;
    ep->idle_timeout_ms = 180000;
    ep->grace_timeout_ms = 10000;
    ep->request_accept_grace_timeout_ms = 0;
    ep->max_header_bytes = 1048576;
    ep->udp_timeout_ms = 3000;
    weir_config_ep_tls_defaults(ep);
}

void weir_config_static_defaults(weir_config_t *cfg)
{
    cfg->workers = 0;
    cfg->provider_watch = 1;
    cfg->providers_throttle_ms = 2000;
    cfg->log.level = WEIR_LOG_ERROR;
    /* grown like every model array, as serversTransports append to it */
    cfg->transports = weir_config_grow(NULL, 0, sizeof *cfg->transports);
    memset(cfg->transports, 0, sizeof *cfg->transports);
    cfg->num_transports = 1;
    cfg->transports[0].name = weir_config_xstrdup("default@internal");
    weir_config_transport_defaults(&cfg->transports[0]);
    weir_config_tls_defaults(cfg);
    weir_config_tcp_defaults(cfg);
}

/* ---- servers transports (shared with the dynamic http.serversTransports) ---- */

static const weir_config_key_t forwarding_timeout_keys[] = {
    {"dialTimeout", WEIR_KEY_DURATION, FT(dial_timeout_ms), NULL, NULL, 0},
    {"responseHeaderTimeout", WEIR_KEY_DURATION, FT(response_header_timeout_ms), NULL, NULL, 0},
    {"idleConnTimeout", WEIR_KEY_DURATION, FT(idle_conn_timeout_ms), NULL, NULL, 0},
    {"readIdleTimeout", WEIR_KEY_DURATION, FT(read_idle_timeout_ms), NULL, NULL, 0},
    {"pingTimeout", WEIR_KEY_DURATION, FT(ping_timeout_ms), NULL, NULL, 0},
    END,
};

/* Go's http.Transport keeps 2 idle connections per host when the setting is
 * zero (DefaultMaxIdleConnsPerHost); weir stores what that means. */
static void set_max_idle(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    weir_servers_transport_cfg_t *t = target;
    int64_t n;
    if (weir_config_get_int(ctx, v, 0, INT_MAX, &n))
        t->max_idle_conns_per_host = n == 0 ? 2 : (int)n;
}

static const weir_config_key_t static_transport_keys[] = {
    {"insecureSkipVerify", WEIR_KEY_BOOL, TR(insecure_skip_verify), NULL, NULL, 0},
    {"maxIdleConnsPerHost", WEIR_KEY_CUSTOM, 0, NULL, set_max_idle, 0},
    {"forwardingTimeouts", WEIR_KEY_SECTION, TR(timeouts), forwarding_timeout_keys, NULL, 0},
    {"rootCAs", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_transport_root_cas, 0},
    UNSUPPORTED("spiffe"),
    END,
};

static const weir_config_key_t dynamic_transport_keys[] = {
    {"insecureSkipVerify", WEIR_KEY_BOOL, TR(insecure_skip_verify), NULL, NULL, 0},
    {"maxIdleConnsPerHost", WEIR_KEY_CUSTOM, 0, NULL, set_max_idle, 0},
    {"forwardingTimeouts", WEIR_KEY_SECTION, TR(timeouts), forwarding_timeout_keys, NULL, 0},
    {"serverName", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_transport_server_name, 0},
    {"rootCAs", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_transport_root_cas, 0},
    {"certificates", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_transport_certificates, 0},
    {"disableHTTP2", WEIR_KEY_BOOL, TR(disable_http2), NULL, NULL, 0},
    UNSUPPORTED("peerCertURI"),
    UNSUPPORTED("spiffe"),
    UNSUPPORTED("cipherSuites"),
    UNSUPPORTED("minVersion"),
    UNSUPPORTED("maxVersion"),
    END,
};

const weir_config_key_t *weir_config_dynamic_transport_keys(void)
{
    return dynamic_transport_keys;
}

static void set_static_transport(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                 const weir_config_node_t *v, void *target)
{
    weir_config_t *cfg = target;
    cfg->transports[0].pos = weir_config_pos(ctx, key);
    weir_config_walk_map(ctx, v, static_transport_keys, &cfg->transports[0]);
}

/* ---- entry points ---- */

static void set_address(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                        const weir_config_node_t *v, void *target)
{
    weir_entrypoint_cfg_t *ep = target;
    if (!weir_config_get_string(ctx, v, &ep->address)) return;
    ep->address_pos = weir_config_pos(ctx, v);
    char err[400];
    if (weir_config_parse_listen(ep->address, ctx->flags, ep, err, sizeof err) < 0) {
        ep->addrlen = 0;
        weir_config_key_error(ctx, v, "%s", err);
    }
}

/* A list of trusted addresses: forwardedHeaders or proxyProtocol. */
typedef struct {
    weir_cidr_t **list;
    size_t *n;
} cidr_list_t;

static void add_cidr(weir_config_ctx_t *ctx, const weir_config_node_t *item, size_t i, void *arg)
{
    cidr_list_t *l = arg;
    char *text = NULL;
    if (!weir_config_get_string(ctx, item, &text)) return;
    weir_cidr_t c;
    if (weir_cidr_parse(text, &c) < 0) {
        weir_config_key_error(ctx, item, "invalid IP address or CIDR \"%s\"", text);
    } else {
        *l->list = weir_config_grow(*l->list, *l->n, sizeof **l->list);
        (*l->list)[(*l->n)++] = c;
    }
    free(text);
}

void weir_config_walk_cidrs(weir_config_ctx_t *ctx, const weir_config_node_t *v,
                            weir_cidr_t **list, size_t *n)
{
    cidr_list_t l = {list, n};
    weir_config_walk_list(ctx, v, add_cidr, &l);
}

static void set_trusted_ips(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *v, void *target)
{
    weir_entrypoint_cfg_t *ep = target;
    weir_config_walk_cidrs(ctx, v, &ep->fwd_trusted, &ep->num_fwd_trusted);
}

static void set_pp_trusted_ips(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                               const weir_config_node_t *v, void *target)
{
    weir_entrypoint_cfg_t *ep = target;
    weir_config_walk_cidrs(ctx, v, &ep->pp_trusted, &ep->num_pp_trusted);
}

static const weir_config_key_t proxy_protocol_keys[] = {
    {"trustedIPs", WEIR_KEY_CUSTOM, 0, NULL, set_pp_trusted_ips, 0},
    {"insecure", WEIR_KEY_BOOL, EP(pp_insecure), NULL, NULL, 0},
    END,
};

static void set_proxy_protocol(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                               const weir_config_node_t *v, void *target)
{
    weir_entrypoint_cfg_t *ep = target;
    ep->proxy_protocol = 1;
    weir_config_walk_map(ctx, v, proxy_protocol_keys, target);
}

/* Go's http.Server uses 1 MiB when MaxHeaderBytes is zero. */
static void set_max_header_bytes(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                 const weir_config_node_t *v, void *target)
{
    weir_entrypoint_cfg_t *ep = target;
    int64_t n;
    if (weir_config_get_int(ctx, v, 0, INT_MAX, &n))
        ep->max_header_bytes = n == 0 ? 1048576 : (size_t)n;
}

static const weir_config_key_t responding_timeout_keys[] = {
    {"readTimeout", WEIR_KEY_DURATION, EP(read_timeout_ms), NULL, NULL, 0},
    {"writeTimeout", WEIR_KEY_DURATION, EP(write_timeout_ms), NULL, NULL, 0},
    {"idleTimeout", WEIR_KEY_DURATION, EP(idle_timeout_ms), NULL, NULL, 0},
    END,
};

static const weir_config_key_t lifecycle_keys[] = {
    {"graceTimeOut", WEIR_KEY_DURATION, EP(grace_timeout_ms), NULL, NULL, 0},
    {"requestAcceptGraceTimeout", WEIR_KEY_DURATION, EP(request_accept_grace_timeout_ms), NULL,
     NULL, 0},
    END,
};

static const weir_config_key_t ep_transport_keys[] = {
    {"respondingTimeouts", WEIR_KEY_SECTION, 0, responding_timeout_keys, NULL, 0},
    {"lifeCycle", WEIR_KEY_SECTION, 0, lifecycle_keys, NULL, 0},
    UNSUPPORTED("keepAliveMaxTime"),
    UNSUPPORTED("keepAliveMaxRequests"),
    END,
};

static const weir_config_key_t forwarded_headers_keys[] = {
    {"trustedIPs", WEIR_KEY_CUSTOM, 0, NULL, set_trusted_ips, 0},
    {"insecure", WEIR_KEY_BOOL, EP(fwd_insecure), NULL, NULL, 0},
    UNSUPPORTED("connection"),
    UNSUPPORTED("notAppendXForwardedFor"),
    UNSUPPORTED("addXForwardedSchemeHeaders"),
    END,
};

static const weir_config_key_t ep_http_keys[] = {
    {"maxHeaderBytes", WEIR_KEY_CUSTOM, 0, NULL, set_max_header_bytes, 0},
    {"redirections", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_ep_redirections, 0},
    UNSUPPORTED("middlewares"),
    {"tls", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_ep_tls, 0},
    UNSUPPORTED("encodedCharacters"),
    UNSUPPORTED("encodeQuerySemicolons"),
    UNSUPPORTED("sanitizePath"),
    UNSUPPORTED("underscoreHeadersStrategy"),
    END,
};

static void set_udp_timeout(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *v, void *target)
{
    weir_entrypoint_cfg_t *ep = target;
    if (weir_config_get_duration(ctx, v, &ep->udp_timeout_ms))
        ep->udp_timeout_set = 1;
}

static const weir_config_key_t ep_udp_keys[] = {
    {"timeout", WEIR_KEY_CUSTOM, 0, NULL, set_udp_timeout, 0},
    END,
};

static const weir_config_key_t entrypoint_keys[] = {
    {"address", WEIR_KEY_CUSTOM, 0, NULL, set_address, 0},
    {"transport", WEIR_KEY_SECTION, 0, ep_transport_keys, NULL, 0},
    {"forwardedHeaders", WEIR_KEY_SECTION, 0, forwarded_headers_keys, NULL, 0},
    {"http", WEIR_KEY_SECTION, 0, ep_http_keys, NULL, 0},
    UNSUPPORTED("asDefault"),
    UNSUPPORTED("reusePort"),
    UNSUPPORTED("allowACMEByPass"),
    {"proxyProtocol", WEIR_KEY_CUSTOM, 0, NULL, set_proxy_protocol, 0},
    {"http2", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_ep_http2, 0},
    {"http3", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_ep_http3, 0},
    {"udp", WEIR_KEY_SECTION, 0, ep_udp_keys, NULL, 0},
    UNSUPPORTED("observability"),
    END,
};

static void add_entrypoint(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                           const weir_config_node_t *v, void *arg)
{
    weir_config_t *cfg = ctx->cfg;
    cfg->entrypoints =
        weir_config_grow(cfg->entrypoints, cfg->num_entrypoints, sizeof *cfg->entrypoints);
    weir_entrypoint_cfg_t *ep = &cfg->entrypoints[cfg->num_entrypoints++];
    memset(ep, 0, sizeof *ep);
    entrypoint_defaults(ep);
    ep->name = weir_config_xstrdup(name->text);
    ep->pos = weir_config_pos(ctx, name);
    weir_config_walk_map(ctx, v, entrypoint_keys, ep);
    if (!weir_config_map_get(v, "address"))
        weir_config_key_error(ctx, name, "missing address (such as \":8080\")");
    else if (ep->http3 && ep->udp)
        weir_config_error(ctx, ep->http3_pos,
                          "entryPoints.%s.http3: HTTP/3 needs a TCP entry point (it opens the "
                          "same port on UDP); %s is a UDP address", ep->name, ep->address);
}

static void set_entrypoints(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *v, void *target)
{
    weir_config_walk_names(ctx, v, add_entrypoint, NULL);
    if (ctx->cfg->num_entrypoints == 0) weir_config_key_error(ctx, key, "no entry points defined");
}

/* ---- providers ---- */

static void set_provider_path(weir_config_ctx_t *ctx, const weir_config_node_t *v, char **field)
{
    if (!weir_config_get_string(ctx, v, field)) return;
    if (!**field) {
        weir_config_key_error(ctx, v, "expected a path, got nothing");
        free(*field);
        *field = NULL;
        return;
    }
    ctx->cfg->provider_pos = weir_config_pos(ctx, v);
}

static void set_filename(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    set_provider_path(ctx, v, &ctx->cfg->provider_filename);
}

static void set_directory(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                          const weir_config_node_t *v, void *target)
{
    set_provider_path(ctx, v, &ctx->cfg->provider_directory);
}

static const weir_config_key_t file_provider_keys[] = {
    {"filename", WEIR_KEY_CUSTOM, 0, NULL, set_filename, 0},
    {"directory", WEIR_KEY_CUSTOM, 0, NULL, set_directory, 0},
    {"watch", WEIR_KEY_BOOL, CFG(provider_watch), NULL, NULL, 0},
    UNSUPPORTED("debugLogGeneratedTemplate"),
    END,
};

/* Traefik reads the directory when both are set; weir refuses to guess. */
static void set_file_provider(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                              const weir_config_node_t *v, void *target)
{
    weir_config_t *cfg = ctx->cfg;
    weir_config_walk_map(ctx, v, file_provider_keys, cfg);
    if (cfg->provider_filename && cfg->provider_directory)
        weir_config_key_error(ctx, key, "set filename or directory, not both");
    else if (!cfg->provider_filename && !cfg->provider_directory &&
             (weir_config_is_empty(v) || v->kind == WEIR_CONFIG_MAP))
        weir_config_key_error(ctx, key, "needs a filename or a directory");
}

static const weir_config_key_t providers_keys[] = {
    {"file", WEIR_KEY_CUSTOM, 0, NULL, set_file_provider, 0},
    {"providersThrottleDuration", WEIR_KEY_DURATION, CFG(providers_throttle_ms), NULL, NULL, 0},
    UNSUPPORTED("precedence"),
    UNSUPPORTED("docker"),
    UNSUPPORTED("swarm"),
    UNSUPPORTED("kubernetesIngress"),
    UNSUPPORTED("kubernetesIngressNGINX"),
    UNSUPPORTED("kubernetesCRD"),
    UNSUPPORTED("kubernetesGateway"),
    UNSUPPORTED("knative"),
    UNSUPPORTED("rest"),
    UNSUPPORTED("consulCatalog"),
    UNSUPPORTED("nomad"),
    UNSUPPORTED("ecs"),
    UNSUPPORTED("consul"),
    UNSUPPORTED("etcd"),
    UNSUPPORTED("zooKeeper"),
    UNSUPPORTED("redis"),
    UNSUPPORTED("http"),
    UNSUPPORTED("plugin"),
    END,
};

/* ---- log, accessLog ---- */

static void set_log_level(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                          const weir_config_node_t *v, void *target)
{
    static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR", "FATAL", "PANIC"};
    weir_log_cfg_t *log = target;
    char *s = NULL;
    if (!weir_config_get_string(ctx, v, &s)) return;
    size_t i = 0;
    while (i < 6 && strcasecmp(s, names[i]) != 0)
        i++;
    if (i < 6)
        log->level = (weir_log_level_t)i;
    else
        weir_config_key_error(ctx, v,
                              "unknown level \"%s\" (DEBUG, INFO, WARN, ERROR, FATAL or PANIC)", s);
    free(s);
}

/* Sets *json from a format name; genericCLF (access log only) is common. */
static void set_format(weir_config_ctx_t *ctx, const weir_config_node_t *v, int *json, bool clf)
{
    char *s = NULL;
    if (!weir_config_get_string(ctx, v, &s)) return;
    if (strcasecmp(s, "common") == 0 || (clf && strcasecmp(s, "genericCLF") == 0))
        *json = 0;
    else if (strcasecmp(s, "json") == 0)
        *json = 1;
    else
        weir_config_key_error(ctx, v, "unknown format \"%s\" (%s)", s,
                              clf ? "common, genericCLF or json" : "common or json");
    free(s);
}

static void set_log_format(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                           const weir_config_node_t *v, void *target)
{
    set_format(ctx, v, &((weir_log_cfg_t *)target)->json, false);
}

static void set_access_format(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                              const weir_config_node_t *v, void *target)
{
    set_format(ctx, v, &((weir_accesslog_cfg_t *)target)->json, true);
}

static const weir_config_key_t log_keys[] = {
    {"level", WEIR_KEY_CUSTOM, 0, NULL, set_log_level, 0},
    {"filePath", WEIR_KEY_STRING, offsetof(weir_log_cfg_t, file_path), NULL, NULL, 0},
    {"format", WEIR_KEY_CUSTOM, 0, NULL, set_log_format, 0},
    UNSUPPORTED("noColor"),
    UNSUPPORTED("maxSize"),
    UNSUPPORTED("maxAge"),
    UNSUPPORTED("maxBackups"),
    UNSUPPORTED("compress"),
    UNSUPPORTED("otlp"),
    END,
};

static const weir_config_key_t access_log_keys[] = {
    {"filePath", WEIR_KEY_STRING, offsetof(weir_accesslog_cfg_t, file_path), NULL, NULL, 0},
    {"format", WEIR_KEY_CUSTOM, 0, NULL, set_access_format, 0},
    {"bufferingSize", WEIR_KEY_UINT, offsetof(weir_accesslog_cfg_t, buffering_size), NULL, NULL, 0},
    UNSUPPORTED("filters"),
    UNSUPPORTED("fields"),
    UNSUPPORTED("addInternals"),
    UNSUPPORTED("otlp"),
    END,
};

static void set_access_log(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                           const weir_config_node_t *v, void *target)
{
    weir_config_t *cfg = target;
    cfg->access_log.enabled = 1;
    weir_config_walk_map(ctx, v, access_log_keys, &cfg->access_log);
}

/* ---- core, global ---- */

static void set_workers(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                        const weir_config_node_t *v, void *target)
{
    int64_t n;
    if (weir_config_get_int(ctx, v, 0, 4096, &n)) ((weir_config_t *)target)->workers = (int)n;
}

/* core.defaultRuleSyntax and a router's ruleSyntax: v2 is deprecated in
 * Traefik v3 and weir's rule language is v3 only. */
void weir_config_set_rule_syntax(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                 const weir_config_node_t *v, void *target)
{
    char *s = NULL;
    if (!weir_config_get_string(ctx, v, &s)) return;
    if (strcmp(s, "v3") != 0)
        weir_config_key_error(ctx, v, "only the v3 rule syntax is supported, got \"%s\"", s);
    free(s);
}

static const weir_config_key_t core_keys[] = {
    {"workers", WEIR_KEY_CUSTOM, 0, NULL, set_workers, 0},
    {"defaultRuleSyntax", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_rule_syntax, 0},
    END,
};

/* global only tells Traefik whether to phone home: checked, then dropped. */
static void check_bool(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                       const weir_config_node_t *v, void *target)
{
    int ignored;
    weir_config_get_bool(ctx, v, &ignored);
}

static const weir_config_key_t global_keys[] = {
    {"checkNewVersion", WEIR_KEY_CUSTOM, 0, NULL, check_bool, 0},
    {"sendAnonymousUsage", WEIR_KEY_CUSTOM, 0, NULL, check_bool, 0},
    END,
};

/* ---- the top level of the static file ---- */

static const weir_config_key_t static_keys[] = {
    {"entryPoints", WEIR_KEY_CUSTOM, 0, NULL, set_entrypoints, WEIR_KEY_STATIC},
    {"providers", WEIR_KEY_SECTION, 0, providers_keys, NULL, WEIR_KEY_STATIC},
    {"log", WEIR_KEY_SECTION, CFG(log), log_keys, NULL, WEIR_KEY_STATIC},
    {"accessLog", WEIR_KEY_CUSTOM, 0, NULL, set_access_log, WEIR_KEY_STATIC},
    {"serversTransport", WEIR_KEY_CUSTOM, 0, NULL, set_static_transport, WEIR_KEY_STATIC},
    {"tcpServersTransport", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_static_tcp_transport,
     WEIR_KEY_STATIC},
    {"core", WEIR_KEY_SECTION, 0, core_keys, NULL, WEIR_KEY_STATIC},
    {"global", WEIR_KEY_SECTION, 0, global_keys, NULL, WEIR_KEY_STATIC},
    {"http", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_http, 0},
    {"tcp", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_tcp, 0},
    {"udp", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_udp, 0},
    {"tls", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_tls, 0},
    STATIC_UNSUPPORTED("api"),
    STATIC_UNSUPPORTED("metrics"),
    STATIC_UNSUPPORTED("ping"),
    STATIC_UNSUPPORTED("tracing"),
    STATIC_UNSUPPORTED("hostResolver"),
    STATIC_UNSUPPORTED("certificatesResolvers"),
    STATIC_UNSUPPORTED("experimental"),
    STATIC_UNSUPPORTED("spiffe"),
    STATIC_UNSUPPORTED("ocsp"),
    END,
};

void weir_config_parse_static(weir_config_ctx_t *ctx, const weir_config_node_t *root)
{
    weir_config_walk_map(ctx, root, static_keys, ctx->cfg);
}

static bool has_entrypoints_key(const weir_config_node_t *root)
{
    if (!root || root->kind != WEIR_CONFIG_MAP) return false;
    for (size_t i = 0; i < root->count; i += 2)
        if (root->items[i]->kind == WEIR_CONFIG_SCALAR &&
            strcasecmp(root->items[i]->text, "entryPoints") == 0)
            return true;
    return false;
}

void weir_config_check_static(weir_config_ctx_t *ctx, const weir_config_node_t *root)
{
    weir_config_t *cfg = ctx->cfg;
    /* an entryPoints key that is present reports its own emptiness */
    if (cfg->num_entrypoints == 0 && !has_entrypoints_key(root))
        weir_config_error(ctx, weir_config_pos(ctx, NULL),
                          "no entry points defined (add entryPoints.<name>.address)");
    for (size_t j = 1; j < cfg->num_entrypoints; j++) {
        const weir_entrypoint_cfg_t *b = &cfg->entrypoints[j];
        for (size_t i = 0; i < j; i++) {
            const weir_entrypoint_cfg_t *a = &cfg->entrypoints[i];
            if (!weir_config_listen_overlap(a, b)) continue;
            weir_config_error(ctx, b->address_pos,
                              "entryPoints.%s.address: \"%s\" is already used by entry point "
                              "\"%s\" (\"%s\")",
                              b->name, b->address, a->name, a->address);
            break;
        }
    }
}
