/* TLS in the configuration: the dynamic tls section (certificates, stores,
 * options), a router's tls section, and the entry point's http.tls,
 * http.redirections and http2 sections. Files are not read here: the TLS
 * module loads them and reports the ones that do not load.
 */
#define WEIR_CONFIG_INTERNAL
#include "config/config.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

#define EP(f) offsetof(weir_entrypoint_cfg_t, f)
#define OPT(f) offsetof(weir_tls_options_cfg_t, f)
// clang-format off
#define UNSUPPORTED(name) {name, WEIR_KEY_UNSUPPORTED, 0, NULL, NULL, 0}
#define END {NULL, 0, 0, NULL, NULL, 0}
// clang-format on

/* ---- shared helpers ---- */

static void add_string(char ***arr, size_t *n, char *s)
{
    *arr = weir_config_grow(*arr, *n, sizeof **arr);
    (*arr)[(*n)++] = s;
}

static void free_strings(char **arr, size_t n)
{
    for (size_t i = 0; i < n; i++) free(arr[i]);
    free(arr);
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s + 32);
}

typedef struct {
    char ***arr;
    size_t *n;
    bool lower;
} strlist_t;

static void add_list_item(weir_config_ctx_t *ctx, const weir_config_node_t *item, size_t i,
                          void *arg)
{
    strlist_t *l = arg;
    char *s = NULL;
    if (!weir_config_get_string(ctx, item, &s)) return;
    if (!s || !*s) {
        weir_config_key_error(ctx, item, "expected a non-empty string");
        free(s);
        return;
    }
    if (l->lower) lower(s);
    add_string(l->arr, l->n, s);
}

static void get_list(weir_config_ctx_t *ctx, const weir_config_node_t *v, char ***arr, size_t *n,
                     bool lowercase)
{
    free_strings(*arr, *n);
    *arr = NULL;
    *n = 0;
    strlist_t l = {arr, n, lowercase};
    weir_config_walk_list(ctx, v, add_list_item, &l);
}

/* tls.domains: [{main, sans: [...]}] flattened, lower-cased. */
typedef struct {
    char ***arr;
    size_t *n;
} domains_t;

static void set_domain_main(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *v, void *target)
{
    domains_t *d = target;
    char *s = NULL;
    if (!weir_config_get_string(ctx, v, &s)) return;
    if (!s || !*s) {
        weir_config_key_error(ctx, v, "expected a domain name");
        free(s);
        return;
    }
    lower(s);
    add_string(d->arr, d->n, s);
}

static void set_domain_sans(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *v, void *target)
{
    domains_t *d = target;
    strlist_t l = {d->arr, d->n, true};
    weir_config_walk_list(ctx, v, add_list_item, &l);
}

static const weir_config_key_t domain_keys[] = {
    {"main", WEIR_KEY_CUSTOM, 0, NULL, set_domain_main, 0},
    {"sans", WEIR_KEY_CUSTOM, 0, NULL, set_domain_sans, 0},
    END,
};

static void add_domain(weir_config_ctx_t *ctx, const weir_config_node_t *item, size_t i, void *arg)
{
    if (item->kind != WEIR_CONFIG_MAP) {
        char buf[64];
        weir_config_key_error(ctx, item, "expected a map with main and sans, got %s",
                              weir_config_describe(item, buf, sizeof buf));
        return;
    }
    weir_config_walk_map(ctx, item, domain_keys, arg);
    if (!weir_config_map_get(item, "main"))
        weir_config_key_error(ctx, item, "missing main (the domain name)");
}

static void get_domains(weir_config_ctx_t *ctx, const weir_config_node_t *v, char ***arr, size_t *n)
{
    domains_t d = {arr, n};
    weir_config_walk_list(ctx, v, add_domain, &d);
}

/* ---- router tls ---- */

void weir_config_set_router_tls_options(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                   const weir_config_node_t *v, void *target)
{
    weir_router_cfg_t *r = target;
    free(r->tls_options);
    r->tls_options = NULL;
    if (weir_config_get_string(ctx, v, &r->tls_options) && r->tls_options && *r->tls_options) {
        r->tls_options_pos = weir_config_pos(ctx, v);
        return;
    }
    free(r->tls_options); /* empty: the default options */
    r->tls_options = NULL;
}

void weir_config_set_router_tls_domains(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                   const weir_config_node_t *v, void *target)
{
    weir_router_cfg_t *r = target;
    get_domains(ctx, v, &r->tls_domains, &r->num_tls_domains);
}

static const weir_config_key_t router_tls_keys[] = {
    {"options", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_tls_options, 0},
    {"domains", WEIR_KEY_CUSTOM, 0, NULL, weir_config_set_router_tls_domains, 0},
    UNSUPPORTED("certResolver"),
    END,
};

void weir_config_set_router_tls(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                const weir_config_node_t *v, void *target)
{
    ((weir_router_cfg_t *)target)->tls = 1;
    weir_config_walk_map(ctx, v, router_tls_keys, target);
}

/* ---- entry point: http.tls, http.redirections, http2 ---- */

static void set_ep_tls_options(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                               const weir_config_node_t *v, void *target)
{
    weir_entrypoint_cfg_t *ep = target;
    free(ep->http_tls_options);
    ep->http_tls_options = NULL;
    if (weir_config_get_string(ctx, v, &ep->http_tls_options) && ep->http_tls_options &&
        *ep->http_tls_options) {
        ep->http_tls_options_pos = weir_config_pos(ctx, v);
        return;
    }
    free(ep->http_tls_options); /* empty: the default options */
    ep->http_tls_options = NULL;
}

static void set_ep_tls_domains(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                               const weir_config_node_t *v, void *target)
{
    weir_entrypoint_cfg_t *ep = target;
    get_domains(ctx, v, &ep->http_tls_domains, &ep->num_http_tls_domains);
}

static const weir_config_key_t ep_tls_keys[] = {
    {"options", WEIR_KEY_CUSTOM, 0, NULL, set_ep_tls_options, 0},
    {"domains", WEIR_KEY_CUSTOM, 0, NULL, set_ep_tls_domains, 0},
    UNSUPPORTED("certResolver"),
    END,
};

void weir_config_set_ep_tls(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *v, void *target)
{
    ((weir_entrypoint_cfg_t *)target)->http_tls = 1;
    weir_config_walk_map(ctx, v, ep_tls_keys, target);
}

static void set_redirect_to(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *v, void *target)
{
    weir_entrypoint_cfg_t *ep = target;
    free(ep->redirect_to);
    ep->redirect_to = NULL;
    if (!weir_config_get_string(ctx, v, &ep->redirect_to)) return;
    if (!ep->redirect_to || !*ep->redirect_to) {
        weir_config_key_error(ctx, v, "expected an entry point name or a port (\":443\")");
        free(ep->redirect_to);
        ep->redirect_to = NULL;
        return;
    }
    ep->redirect_pos = weir_config_pos(ctx, v);
}

static void set_redirect_scheme(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                const weir_config_node_t *v, void *target)
{
    weir_entrypoint_cfg_t *ep = target;
    char *s = NULL;
    if (!weir_config_get_string(ctx, v, &s)) return;
    if (!s || !*s) {
        weir_config_key_error(ctx, v, "expected a scheme such as \"https\"");
        free(s);
        return;
    }
    free(ep->redirect_scheme);
    ep->redirect_scheme = s;
}

static void set_redirect_priority(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                  const weir_config_node_t *v, void *target)
{
    int64_t p;
    if (weir_config_get_int(ctx, v, INT64_MIN, INT64_MAX, &p))
        ((weir_entrypoint_cfg_t *)target)->redirect_priority = p;
}

static const weir_config_key_t redirect_ep_keys[] = {
    {"to", WEIR_KEY_CUSTOM, 0, NULL, set_redirect_to, 0},
    {"scheme", WEIR_KEY_CUSTOM, 0, NULL, set_redirect_scheme, 0},
    {"permanent", WEIR_KEY_BOOL, EP(redirect_permanent), NULL, NULL, 0},
    {"priority", WEIR_KEY_CUSTOM, 0, NULL, set_redirect_priority, 0},
    END,
};

static void set_redirect_entrypoint(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                    const weir_config_node_t *v, void *target)
{
    weir_entrypoint_cfg_t *ep = target;
    weir_config_walk_map(ctx, v, redirect_ep_keys, target);
    if (!weir_config_map_get(v, "to"))
        weir_config_key_error(ctx, key, "missing to (the entry point to redirect to)");
    if (!ep->redirect_scheme) ep->redirect_scheme = weir_config_xstrdup("https");
}

static const weir_config_key_t redirect_keys[] = {
    {"entryPoint", WEIR_KEY_CUSTOM, 0, NULL, set_redirect_entrypoint, 0},
    END,
};

void weir_config_set_ep_redirections(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                     const weir_config_node_t *v, void *target)
{
    weir_config_walk_map(ctx, v, redirect_keys, target);
}

static void set_positive(weir_config_ctx_t *ctx, const weir_config_node_t *v, int *out)
{
    int64_t n;
    if (!weir_config_get_int(ctx, v, 0, INT_MAX, &n)) return;
    if (n == 0) {
        weir_config_key_error(ctx, v, "must be greater than 0");
        return;
    }
    *out = (int)n;
}

static void set_max_streams(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *v, void *target)
{
    set_positive(ctx, v, &((weir_entrypoint_cfg_t *)target)->h2_max_concurrent_streams);
}

static void set_decoder_table(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                              const weir_config_node_t *v, void *target)
{
    set_positive(ctx, v, &((weir_entrypoint_cfg_t *)target)->h2_max_decoder_table_size);
}

static void set_encoder_table(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                              const weir_config_node_t *v, void *target)
{
    set_positive(ctx, v, &((weir_entrypoint_cfg_t *)target)->h2_max_encoder_table_size);
}

static const weir_config_key_t http2_keys[] = {
    {"maxConcurrentStreams", WEIR_KEY_CUSTOM, 0, NULL, set_max_streams, 0},
    {"maxDecoderHeaderTableSize", WEIR_KEY_CUSTOM, 0, NULL, set_decoder_table, 0},
    {"maxEncoderHeaderTableSize", WEIR_KEY_CUSTOM, 0, NULL, set_encoder_table, 0},
    END,
};

void weir_config_set_ep_http2(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                              const weir_config_node_t *v, void *target)
{
    weir_config_walk_map(ctx, v, http2_keys, target);
}

/* ---- entryPoints.<name>.http3 ---- */

static void set_advertised_port(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                const weir_config_node_t *v, void *target)
{
    int64_t n;
    if (!weir_config_get_int(ctx, v, INT_MIN, INT_MAX, &n)) return;
    if (n < 0 || n > 65535) {
        weir_config_key_error(ctx, v, "must be a port number from 0 to 65535 (0: the listening port)");
        return;
    }
    ((weir_entrypoint_cfg_t *)target)->h3_advertised_port = (int)n;
}

static void set_retry(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                      const weir_config_node_t *v, void *target)
{
    static const char *const modes[] = {"auto", "always", "never"};
    char *s = NULL;
    if (!weir_config_get_string(ctx, v, &s)) return;
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, modes[i]) == 0) {
            ((weir_entrypoint_cfg_t *)target)->h3_retry = i;
            free(s);
            return;
        }
    weir_config_key_error(ctx, v, "expected auto, always or never, got \"%s\"", s ? s : "");
    free(s);
}

static void set_alt_svc_max_age(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                const weir_config_node_t *v, void *target)
{
    int64_t n;
    if (weir_config_get_int(ctx, v, 0, INT32_MAX, &n))
        ((weir_entrypoint_cfg_t *)target)->h3_alt_svc_max_age = n;
}

static const weir_config_key_t http3_keys[] = {
    {"advertisedPort", WEIR_KEY_CUSTOM, 0, NULL, set_advertised_port, 0},
    {"retry", WEIR_KEY_CUSTOM, 0, NULL, set_retry, 0},
    {"zeroRTT", WEIR_KEY_BOOL, offsetof(weir_entrypoint_cfg_t, h3_zero_rtt), NULL, NULL, 0},
    {"altSvcMaxAge", WEIR_KEY_CUSTOM, 0, NULL, set_alt_svc_max_age, 0},
    END,
};

void weir_config_set_ep_http3(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                              const weir_config_node_t *v, void *target)
{
    weir_entrypoint_cfg_t *ep = target;
    ep->http3 = 1;
    ep->http3_pos = weir_config_pos(ctx, key);
    weir_config_walk_map(ctx, v, http3_keys, target);
}

void weir_config_ep_tls_defaults(weir_entrypoint_cfg_t *ep)
{
    ep->h3_alt_svc_max_age = 2592000;
    ep->redirect_permanent = 1;
    ep->redirect_priority = INT64_MAX - 1;
    ep->h2_max_concurrent_streams = 250;
    ep->h2_max_decoder_table_size = 4096;
    ep->h2_max_encoder_table_size = 4096;
}

void weir_config_ep_tls_copy(weir_entrypoint_cfg_t *ep, const char *file)
{
    ep->http_tls_options = ep->http_tls_options ? weir_config_xstrdup(ep->http_tls_options) : NULL;
    char **d = NULL;
    size_t n = 0;
    for (size_t i = 0; i < ep->num_http_tls_domains; i++)
        add_string(&d, &n, weir_config_xstrdup(ep->http_tls_domains[i]));
    ep->http_tls_domains = d;
    ep->redirect_to = ep->redirect_to ? weir_config_xstrdup(ep->redirect_to) : NULL;
    ep->redirect_scheme = ep->redirect_scheme ? weir_config_xstrdup(ep->redirect_scheme) : NULL;
    ep->redirect_pos.file = ep->http_tls_options_pos.file = file;
}

void weir_config_ep_tls_free(weir_entrypoint_cfg_t *ep)
{
    free(ep->http_tls_options);
    free_strings(ep->http_tls_domains, ep->num_http_tls_domains);
    free(ep->redirect_to);
    free(ep->redirect_scheme);
}

/* ---- tls.options ---- */

static const char *const version_names[] = {"VersionTLS10", "VersionTLS11", "VersionTLS12",
                                            "VersionTLS13"};

static void set_version(weir_config_ctx_t *ctx, const weir_config_node_t *v, int *out)
{
    char *s = NULL;
    if (!weir_config_get_string(ctx, v, &s)) return;
    for (int i = 0; s && i < 4; i++)
        if (strcasecmp(s, version_names[i]) == 0) {
            *out = 0x0301 + i;
            free(s);
            return;
        }
    int best = s ? weir_config_suggest(s, version_names, 4) : -1;
    weir_config_key_error(ctx, v, "unknown TLS version \"%s\"%s%s%s", s ? s : "",
                          best >= 0 ? " (did you mean \"" : " (VersionTLS10 .. VersionTLS13",
                          best >= 0 ? version_names[best] : "", best >= 0 ? "\"?)" : ")");
    free(s);
}

static void set_min_version(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *v, void *target)
{
    set_version(ctx, v, &((weir_tls_options_cfg_t *)target)->min_version);
}

static void set_max_version(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *v, void *target)
{
    set_version(ctx, v, &((weir_tls_options_cfg_t *)target)->max_version);
}

static const char *const cipher_names[] = {
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
};

static const char *const curve_names[] = {"CurveP256", "CurveP384", "CurveP521", "X25519",
                                          "secp256r1", "secp384r1", "secp521r1", "x25519"};

typedef struct {
    char ***arr;
    size_t *n;
    const char *const *names;
    size_t num_names;
    const char *what;
} checked_t;

static void add_checked(weir_config_ctx_t *ctx, const weir_config_node_t *item, size_t i, void *arg)
{
    checked_t *c = arg;
    char *s = NULL;
    if (!weir_config_get_string(ctx, item, &s)) return;
    for (size_t k = 0; s && k < c->num_names; k++)
        if (strcmp(s, c->names[k]) == 0) {
            add_string(c->arr, c->n, s);
            return;
        }
    int best = s ? weir_config_suggest(s, c->names, c->num_names) : -1;
    if (best >= 0)
        weir_config_key_error(ctx, item, "unknown %s \"%s\" (did you mean \"%s\"?)", c->what,
                              s ? s : "", c->names[best]);
    else
        weir_config_key_error(ctx, item, "unknown %s \"%s\"", c->what, s ? s : "");
    free(s);
}

static void set_ciphers(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                        const weir_config_node_t *v, void *target)
{
    weir_tls_options_cfg_t *o = target;
    free_strings(o->cipher_suites, o->num_cipher_suites);
    o->cipher_suites = NULL;
    o->num_cipher_suites = 0;
    checked_t c = {&o->cipher_suites, &o->num_cipher_suites, cipher_names,
                   sizeof cipher_names / sizeof cipher_names[0], "cipher suite"};
    weir_config_walk_list(ctx, v, add_checked, &c);
}

static void set_curves(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                       const weir_config_node_t *v, void *target)
{
    weir_tls_options_cfg_t *o = target;
    free_strings(o->curves, o->num_curves);
    o->curves = NULL;
    o->num_curves = 0;
    checked_t c = {&o->curves, &o->num_curves, curve_names,
                   sizeof curve_names / sizeof curve_names[0], "curve"};
    weir_config_walk_list(ctx, v, add_checked, &c);
}

static void set_alpn(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                     const weir_config_node_t *v, void *target)
{
    weir_tls_options_cfg_t *o = target;
    get_list(ctx, v, &o->alpn, &o->num_alpn, false);
}

static void set_ca_files(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    weir_tls_options_cfg_t *o = target;
    get_list(ctx, v, &o->ca_files, &o->num_ca_files, false);
    o->ca_pos = weir_config_pos(ctx, v);
}

static const char *const auth_names[] = {"NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                                         "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"};

static void set_auth_type(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                          const weir_config_node_t *v, void *target)
{
    weir_tls_options_cfg_t *o = target;
    char *s = NULL;
    if (!weir_config_get_string(ctx, v, &s)) return;
    for (int i = 0; s && i < 5; i++)
        if (strcmp(s, auth_names[i]) == 0) {
            o->client_auth = (weir_client_auth_t)i;
            o->auth_pos = weir_config_pos(ctx, v);
            free(s);
            return;
        }
    int best = s ? weir_config_suggest(s, auth_names, 5) : -1;
    if (best >= 0)
        weir_config_key_error(ctx, v, "unknown clientAuthType \"%s\" (did you mean \"%s\"?)",
                              s ? s : "", auth_names[best]);
    else
        weir_config_key_error(ctx, v, "unknown clientAuthType \"%s\"", s ? s : "");
    free(s);
}

static const weir_config_key_t client_auth_keys[] = {
    {"caFiles", WEIR_KEY_CUSTOM, 0, NULL, set_ca_files, 0},
    {"clientAuthType", WEIR_KEY_CUSTOM, 0, NULL, set_auth_type, 0},
    END,
};

static void set_ignored_bool(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                             const weir_config_node_t *v, void *target)
{
    int ignored;
    weir_config_get_bool(ctx, v, &ignored); /* preferServerCipherSuites: Go ignores it */
}

static const weir_config_key_t options_keys[] = {
    {"minVersion", WEIR_KEY_CUSTOM, 0, NULL, set_min_version, 0},
    {"maxVersion", WEIR_KEY_CUSTOM, 0, NULL, set_max_version, 0},
    {"cipherSuites", WEIR_KEY_CUSTOM, 0, NULL, set_ciphers, 0},
    {"curvePreferences", WEIR_KEY_CUSTOM, 0, NULL, set_curves, 0},
    {"sniStrict", WEIR_KEY_BOOL, OPT(sni_strict), NULL, NULL, 0},
    {"alpnProtocols", WEIR_KEY_CUSTOM, 0, NULL, set_alpn, 0},
    {"clientAuth", WEIR_KEY_SECTION, 0, client_auth_keys, NULL, 0},
    {"preferServerCipherSuites", WEIR_KEY_CUSTOM, 0, NULL, set_ignored_bool, 0},
    {"disableSessionTickets", WEIR_KEY_BOOL, OPT(disable_session_tickets), NULL, NULL, 0},
    END,
};

static void option_defaults(weir_tls_options_cfg_t *o, const char *name)
{
    memset(o, 0, sizeof *o);
    o->name = weir_config_xstrdup(name);
    o->min_version = 0x0303;
    static const char *const alpn[] = {"h2", "http/1.1", "acme-tls/1"};
    for (size_t i = 0; i < 3; i++) add_string(&o->alpn, &o->num_alpn, weir_config_xstrdup(alpn[i]));
}

static void option_clear(weir_tls_options_cfg_t *o)
{
    free(o->name);
    free_strings(o->cipher_suites, o->num_cipher_suites);
    free_strings(o->curves, o->num_curves);
    free_strings(o->alpn, o->num_alpn);
    free_strings(o->ca_files, o->num_ca_files);
    memset(o, 0, sizeof *o);
}

void weir_config_tls_defaults(weir_config_t *cfg)
{
    cfg->tls_options = weir_config_grow(NULL, 0, sizeof *cfg->tls_options);
    option_defaults(&cfg->tls_options[0], "default");
    cfg->num_tls_options = 1;
}

static void add_option(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                       const weir_config_node_t *v, void *arg)
{
    weir_config_t *cfg = ctx->cfg;
    weir_tls_options_cfg_t *o = NULL;
    for (size_t i = 0; i < cfg->num_tls_options; i++) {
        if (strcmp(cfg->tls_options[i].name, name->text) != 0) continue;
        if (cfg->tls_options[i].pos.line) {
            weir_pos_t first = cfg->tls_options[i].pos;
            weir_config_key_error(ctx, name, "defined twice (first at %s:%d:%d)", first.file,
                                  first.line, first.col);
            return;
        }
        o = &cfg->tls_options[i]; /* the built-in default, redefined */
    }
    if (!o) {
        cfg->tls_options =
            weir_config_grow(cfg->tls_options, cfg->num_tls_options, sizeof *cfg->tls_options);
        o = &cfg->tls_options[cfg->num_tls_options++];
        memset(o, 0, sizeof *o);
    }
    option_clear(o);
    option_defaults(o, name->text);
    o->pos = weir_config_pos(ctx, name);
    weir_config_walk_map(ctx, v, options_keys, o);
    if (o->max_version && o->min_version > o->max_version)
        weir_config_key_error(ctx, name, "minVersion is above maxVersion");
    bool verify = o->client_auth == WEIR_CLIENT_AUTH_VERIFY_IF_GIVEN ||
                  o->client_auth == WEIR_CLIENT_AUTH_REQUIRE_AND_VERIFY;
    if (verify && o->num_ca_files == 0)
        weir_config_error(ctx, o->auth_pos, "tls.options.%s.clientAuth: %s needs caFiles", o->name,
                          auth_names[o->client_auth]);
}

static void set_options(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                        const weir_config_node_t *v, void *target)
{
    weir_config_walk_names(ctx, v, add_option, NULL);
}

/* ---- tls.certificates and tls.stores ---- */

static void set_cert_file(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                          const weir_config_node_t *v, void *target)
{
    weir_tls_cert_cfg_t *c = target;
    free(c->cert_file);
    c->cert_file = NULL;
    weir_config_get_string(ctx, v, &c->cert_file);
    c->cert_pos = weir_config_pos(ctx, v);
}

static void set_key_file(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    weir_tls_cert_cfg_t *c = target;
    free(c->key_file);
    c->key_file = NULL;
    weir_config_get_string(ctx, v, &c->key_file);
    c->key_pos = weir_config_pos(ctx, v);
}

static void set_stores(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                       const weir_config_node_t *v, void *target)
{
    weir_tls_cert_cfg_t *c = target;
    get_list(ctx, v, &c->stores, &c->num_stores, false);
}

static const weir_config_key_t cert_keys[] = {
    {"certFile", WEIR_KEY_CUSTOM, 0, NULL, set_cert_file, 0},
    {"keyFile", WEIR_KEY_CUSTOM, 0, NULL, set_key_file, 0},
    {"stores", WEIR_KEY_CUSTOM, 0, NULL, set_stores, 0},
    END,
};

/* a certificate without stores: tls.stores.<name>.defaultCertificate */
static const weir_config_key_t pair_keys[] = {
    {"certFile", WEIR_KEY_CUSTOM, 0, NULL, set_cert_file, 0},
    {"keyFile", WEIR_KEY_CUSTOM, 0, NULL, set_key_file, 0},
    END,
};

/* "missing certFile/keyFile" when a key is absent or empty (a value of the
 * wrong type has had its own error). at: where to report; map: the section. */
static void check_cert_pair(weir_config_ctx_t *ctx, const weir_config_node_t *at,
                            const weir_config_node_t *map, const char *cert, const char *key)
{
    if (cert ? !*cert : !weir_config_map_get(map, "certFile"))
        weir_config_key_error(ctx, at, "missing certFile");
    if (key ? !*key : !weir_config_map_get(map, "keyFile"))
        weir_config_key_error(ctx, at, "missing keyFile");
}

static void add_cert(weir_config_ctx_t *ctx, const weir_config_node_t *item, size_t i, void *arg)
{
    weir_config_t *cfg = ctx->cfg;
    if (item->kind != WEIR_CONFIG_MAP) {
        char buf[64];
        weir_config_key_error(ctx, item, "expected a map with certFile and keyFile, got %s",
                              weir_config_describe(item, buf, sizeof buf));
        return;
    }
    cfg->tls_certs = weir_config_grow(cfg->tls_certs, cfg->num_tls_certs, sizeof *cfg->tls_certs);
    weir_tls_cert_cfg_t *c = &cfg->tls_certs[cfg->num_tls_certs++];
    memset(c, 0, sizeof *c);
    c->pos = weir_config_pos(ctx, item);
    weir_config_walk_map(ctx, item, cert_keys, c);
    check_cert_pair(ctx, item, item, c->cert_file, c->key_file);
}

static void set_certificates(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                             const weir_config_node_t *v, void *target)
{
    weir_config_walk_list(ctx, v, add_cert, NULL);
}

static void set_default_cert(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                             const weir_config_node_t *v, void *target)
{
    weir_tls_store_cfg_t *s = target;
    weir_tls_cert_cfg_t c = {0};
    weir_config_walk_map(ctx, v, pair_keys, &c);
    s->default_pos = weir_config_pos(ctx, v);
    if (v->kind == WEIR_CONFIG_MAP || weir_config_is_empty(v)) /* else: walk_map's type error */
        check_cert_pair(ctx, key, v, c.cert_file, c.key_file);
    free(s->default_cert_file);
    free(s->default_key_file);
    s->default_cert_file = c.cert_file;
    s->default_key_file = c.key_file;
    s->default_pos = c.cert_pos.line ? c.cert_pos : s->default_pos;
}

static const weir_config_key_t store_keys[] = {
    {"defaultCertificate", WEIR_KEY_CUSTOM, 0, NULL, set_default_cert, 0},
    UNSUPPORTED("defaultGeneratedCert"),
    END,
};

static void add_store(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                      const weir_config_node_t *v, void *arg)
{
    weir_config_t *cfg = ctx->cfg;
    for (size_t i = 0; i < cfg->num_tls_stores; i++)
        if (strcmp(cfg->tls_stores[i].name, name->text) == 0) {
            weir_pos_t first = cfg->tls_stores[i].pos;
            weir_config_key_error(ctx, name, "defined twice (first at %s:%d:%d)", first.file,
                                  first.line, first.col);
            return;
        }
    cfg->tls_stores = weir_config_grow(cfg->tls_stores, cfg->num_tls_stores, sizeof *cfg->tls_stores);
    weir_tls_store_cfg_t *s = &cfg->tls_stores[cfg->num_tls_stores++];
    memset(s, 0, sizeof *s);
    s->name = weir_config_xstrdup(name->text);
    s->pos = weir_config_pos(ctx, name);
    weir_config_walk_map(ctx, v, store_keys, s);
}

static void set_stores_section(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                               const weir_config_node_t *v, void *target)
{
    weir_config_walk_names(ctx, v, add_store, NULL);
}

static const weir_config_key_t tls_keys[] = {
    {"certificates", WEIR_KEY_CUSTOM, 0, NULL, set_certificates, 0},
    {"options", WEIR_KEY_CUSTOM, 0, NULL, set_options, 0},
    {"stores", WEIR_KEY_CUSTOM, 0, NULL, set_stores_section, 0},
    END,
};

void weir_config_set_tls(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target)
{
    weir_config_walk_map(ctx, v, tls_keys, ctx->cfg);
}

/* ---- resolution ---- */

/* Index of tls.options ref ("name", "name@file", "default@internal"), or -1. */
static int find_option(const weir_config_t *cfg, const char *ref)
{
    size_t n = strlen(ref);
    const char *at = strchr(ref, '@');
    if (at) {
        /* "@internal" names only the built-in default */
        if (strcmp(at, "@internal") == 0) return strcmp(ref, "default@internal") == 0 ? 0 : -1;
        if (strcmp(at, "@file") != 0) return -1;
        n = (size_t)(at - ref);
    }
    for (size_t i = 0; i < cfg->num_tls_options; i++)
        if (strlen(cfg->tls_options[i].name) == n && strncmp(cfg->tls_options[i].name, ref, n) == 0)
            return (int)i;
    return -1;
}

static void unknown_option(weir_config_ctx_t *ctx, weir_pos_t pos, const char *where,
                           const char *ref)
{
    const weir_config_t *cfg = ctx->cfg;
    const char **names = weir_config_xalloc(cfg->num_tls_options * sizeof *names);
    for (size_t i = 0; i < cfg->num_tls_options; i++) names[i] = cfg->tls_options[i].name;
    int best = weir_config_suggest(ref, names, cfg->num_tls_options);
    if (best >= 0)
        weir_config_error(ctx, pos, "%s: tls option \"%s\" does not exist (did you mean \"%s\"?)",
                          where, ref, names[best]);
    else
        weir_config_error(ctx, pos, "%s: tls option \"%s\" does not exist", where, ref);
    free(names);
}

static uint16_t port_of(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    if (a->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)a)->sin_port);
    return 0;
}

static void resolve_router_options(weir_config_ctx_t *ctx, const char *section,
                                   weir_router_cfg_t *routers, size_t num)
{
    for (size_t i = 0; i < num; i++) {
        weir_router_cfg_t *r = &routers[i];
        r->tls_options_index = 0;
        if (!r->tls_options) continue;
        char where[320];
        snprintf(where, sizeof where, "%s.routers.%s.tls.options", section, r->name);
        int k = find_option(ctx->cfg, r->tls_options);
        if (k < 0)
            unknown_option(ctx, r->tls_options_pos, where, r->tls_options);
        else
            r->tls_options_index = k;
    }
}

void weir_config_resolve_tls(weir_config_ctx_t *ctx)
{
    weir_config_t *cfg = ctx->cfg;
    resolve_router_options(ctx, "http", cfg->routers, cfg->num_routers);
    resolve_router_options(ctx, "tcp", cfg->tcp_routers, cfg->num_tcp_routers);
    for (size_t i = 0; i < cfg->num_entrypoints; i++) {
        weir_entrypoint_cfg_t *ep = &cfg->entrypoints[i];
        char where[320];
        if (ep->http_tls_options && find_option(cfg, ep->http_tls_options) < 0) {
            snprintf(where, sizeof where, "entryPoints.%s.http.tls.options", ep->name);
            unknown_option(ctx, ep->http_tls_options_pos, where, ep->http_tls_options);
        }
        if (!ep->redirect_to || ctx->dynamic_only) continue;
        const char *to = ep->redirect_to;
        if (to[0] == ':') {
            char *end;
            long p = strtol(to + 1, &end, 10);
            if (*end || p <= 0 || p > 65535)
                weir_config_error(ctx, ep->redirect_pos,
                                  "entryPoints.%s.http.redirections.entryPoint.to: bad port \"%s\"",
                                  ep->name, to);
            else
                ep->redirect_port = (uint16_t)p;
            continue;
        }
        size_t k = 0;
        while (k < cfg->num_entrypoints && strcmp(cfg->entrypoints[k].name, to) != 0) k++;
        if (k == cfg->num_entrypoints) {
            const char **names = weir_config_xalloc(cfg->num_entrypoints * sizeof *names);
            for (size_t j = 0; j < cfg->num_entrypoints; j++) names[j] = cfg->entrypoints[j].name;
            int best = weir_config_suggest(to, names, cfg->num_entrypoints);
            weir_config_error(ctx, ep->redirect_pos,
                              "entryPoints.%s.http.redirections.entryPoint.to: entry point \"%s\" "
                              "does not exist%s%s%s",
                              ep->name, to, best >= 0 ? " (did you mean \"" : "",
                              best >= 0 ? names[best] : "", best >= 0 ? "\"?)" : "");
            free(names);
        } else if (k == i) {
            weir_config_error(ctx, ep->redirect_pos,
                              "entryPoints.%s.http.redirections.entryPoint.to: an entry point "
                              "cannot redirect to itself",
                              ep->name);
        } else {
            ep->redirect_port = port_of(&cfg->entrypoints[k].addr);
        }
    }
}

void weir_config_tls_free(weir_config_t *cfg)
{
    for (size_t i = 0; i < cfg->num_tls_options; i++) option_clear(&cfg->tls_options[i]);
    free(cfg->tls_options);
    for (size_t i = 0; i < cfg->num_tls_certs; i++) {
        free(cfg->tls_certs[i].cert_file);
        free(cfg->tls_certs[i].key_file);
        free_strings(cfg->tls_certs[i].stores, cfg->tls_certs[i].num_stores);
    }
    free(cfg->tls_certs);
    for (size_t i = 0; i < cfg->num_tls_stores; i++) {
        free(cfg->tls_stores[i].name);
        free(cfg->tls_stores[i].default_cert_file);
        free(cfg->tls_stores[i].default_key_file);
    }
    free(cfg->tls_stores);
}

/* ---- serversTransports: TLS to https:// servers ---- */

void weir_config_set_transport_server_name(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                           const weir_config_node_t *v, void *target)
{
    weir_servers_transport_cfg_t *t = target;
    free(t->server_name);
    t->server_name = NULL;
    weir_config_get_string(ctx, v, &t->server_name);
}

void weir_config_set_transport_root_cas(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                        const weir_config_node_t *v, void *target)
{
    weir_servers_transport_cfg_t *t = target;
    get_list(ctx, v, &t->root_cas, &t->num_root_cas, false);
    t->root_cas_pos = weir_config_pos(ctx, v);
}

void weir_config_set_transport_certificates(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                            const weir_config_node_t *v, void *target)
{
    weir_servers_transport_cfg_t *t = target;
    if (v->kind != WEIR_CONFIG_SEQ) {
        char buf[64];
        weir_config_key_error(ctx, v, "expected a list of {certFile, keyFile}, got %s",
                              weir_config_describe(v, buf, sizeof buf));
        return;
    }
    if (v->count == 0) return;
    if (v->count > 1)
        weir_config_key_error(ctx, v->items[1], "only one client certificate is supported");
    weir_tls_cert_cfg_t c = {0};
    weir_config_walk_map(ctx, v->items[0], cert_keys, &c);
    free_strings(c.stores, c.num_stores);
    if (!c.cert_file || !*c.cert_file) weir_config_key_error(ctx, v->items[0], "missing certFile");
    if (!c.key_file || !*c.key_file) weir_config_key_error(ctx, v->items[0], "missing keyFile");
    free(t->client_cert_file);
    free(t->client_key_file);
    t->client_cert_file = c.cert_file;
    t->client_key_file = c.key_file;
    t->client_cert_pos = c.cert_pos.line ? c.cert_pos : weir_config_pos(ctx, v);
}

void weir_config_transport_tls_copy(weir_servers_transport_cfg_t *t)
{
    t->server_name = t->server_name ? weir_config_xstrdup(t->server_name) : NULL;
    char **r = NULL;
    size_t n = 0;
    for (size_t i = 0; i < t->num_root_cas; i++) add_string(&r, &n, weir_config_xstrdup(t->root_cas[i]));
    t->root_cas = r;
    t->client_cert_file = t->client_cert_file ? weir_config_xstrdup(t->client_cert_file) : NULL;
    t->client_key_file = t->client_key_file ? weir_config_xstrdup(t->client_key_file) : NULL;
}

void weir_config_transport_tls_free(weir_servers_transport_cfg_t *t)
{
    free(t->server_name);
    free_strings(t->root_cas, t->num_root_cas);
    free(t->client_cert_file);
    free(t->client_key_file);
    t->server_name = t->client_cert_file = t->client_key_file = NULL;
    t->root_cas = NULL;
    t->num_root_cas = 0;
}
