/* The TLS context of a configuration: process-wide set-up, building the
 * context (certificates: tls_store.c; options: tls_options.c; upstream
 * credentials: tls_upstream.c), the host → options map, and server
 * sessions made from it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <time.h>

#include "core/log.h"
#include "tls/tls_internal.h"

/* ---- process-wide ---- */

/* The session-ticket master key, shared by every worker thread. GnuTLS
 * derives the key that encrypts tickets from it per time window, so the
 * encryption keys rotate while this one stays. */
static gnutls_datum_t ticket_key;

/* 0-RTT anti-replay (QUIC early data): GnuTLS checks a ClientHello's
 * ticket age against its window and asks this store whether the same
 * hello was seen inside it. The store is process-wide (any worker may get
 * the replay), a fixed table of hashes with their expiry: a full slot
 * whose entry has not expired refuses early data for the newcomer (the
 * safe side: the request then waits for the handshake). */
static gnutls_anti_replay_t anti_replay;
#define REPLAY_SLOTS 65536
static struct {
    uint64_t hash;
    time_t expires;
} replay_seen[REPLAY_SLOTS];
static pthread_mutex_t replay_mu = PTHREAD_MUTEX_INITIALIZER;

static int replay_add(void *ptr, time_t exp_time, const gnutls_datum_t *key,
                      const gnutls_datum_t *data)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned i = 0; i < key->size; i++)
        h = (h ^ key->data[i]) * 0x100000001b3ull;
    time_t now = time(NULL);
    int rc = 0;
    pthread_mutex_lock(&replay_mu);
    for (unsigned probe = 0; probe < 4; probe++) {
        unsigned slot = (unsigned)((h >> 16) + probe) % REPLAY_SLOTS;
        if (replay_seen[slot].expires > now && replay_seen[slot].hash == h) {
            rc = GNUTLS_E_DB_ENTRY_EXISTS;
            break;
        }
        if (replay_seen[slot].expires <= now) {
            replay_seen[slot].hash = h;
            replay_seen[slot].expires = exp_time;
            break;
        }
        if (probe == 3)
            rc = GNUTLS_E_DB_ENTRY_EXISTS; /* no room: no early data */
    }
    pthread_mutex_unlock(&replay_mu);
    return rc;
}

int weir_tls_global_init(void)
{
    if (gnutls_global_init() < 0) return -1;
    if (gnutls_session_ticket_key_generate(&ticket_key) < 0) {
        gnutls_global_deinit();
        return -1;
    }
    if (gnutls_anti_replay_init(&anti_replay) < 0) {
        gnutls_free(ticket_key.data);
        gnutls_global_deinit();
        return -1;
    }
    gnutls_anti_replay_set_add_function(anti_replay, replay_add);
    return 0;
}

void weir_tls_global_deinit(void)
{
    if (anti_replay) gnutls_anti_replay_deinit(anti_replay);
    anti_replay = NULL;
    if (ticket_key.data) gnutls_memset(ticket_key.data, 0, ticket_key.size);
    gnutls_free(ticket_key.data);
    ticket_key.data = NULL;
    ticket_key.size = 0;
    gnutls_global_deinit();
}

/* ---- host → options ---- */

static bool router_on(const weir_router_cfg_t *r, const char *ep)
{
    if (r->num_entrypoints == 0) return true;
    for (size_t i = 0; i < r->num_entrypoints; i++)
        if (strcmp(r->entrypoints[i], ep) == 0) return true;
    return false;
}

/* Index of an options reference ("name" or "name@provider"); 0 (default)
 * when NULL or unknown. */
static int option_index(const weir_config_t *cfg, const char *ref)
{
    if (!ref) return 0;
    size_t n = strcspn(ref, "@");
    for (size_t i = 0; i < cfg->num_tls_options; i++)
        if (strlen(cfg->tls_options[i].name) == n && strncmp(cfg->tls_options[i].name, ref, n) == 0)
            return (int)i;
    return 0;
}

/* Maps host (any case, maybe a trailing dot) to opt; a host already mapped
 * to other options gets -1: routers disagree, the default options apply
 * (Traefik logs it and does the same). */
static int claim(weir_tls_ctx_t *ctx, const char *host, size_t n, int opt)
{
    char h[WEIR_HOST_MAX];
    if (n && host[n - 1] == '.') n--;
    if (n == 0 || n >= sizeof h || (n == 1 && host[0] == '*'))
        return 0; /* Host(`*`) names no host */
    for (size_t i = 0; i < n; i++)
        h[i] = host[i] >= 'A' && host[i] <= 'Z' ? (char)(host[i] + 32) : host[i];
    int *old;
    if (tls_map_put(&ctx->host_opts, h, n, opt, &old) < 0) return -1;
    if (old && *old != opt) *old = -1;
    return 0;
}

/* The hosts of every Host matcher of r's rule. */
static int claim_rule_hosts(weir_tls_ctx_t *ctx, const weir_router_cfg_t *r, int opt)
{
    weir_rule_t *rule = r->compiled;
    bool own = false;
    if (!rule && r->rule) {
        weir_rule_error_t rerr;
        if (weir_rule_compile(r->rule, WEIR_RULE_HTTP, &rule, &rerr) < 0)
            return 0; /* the loader reported it */
        own = true;
    }
    if (!rule) return 0;
    int rc = 0;
    size_t n = weir_rule_hosts(rule, NULL, 0);
    weir_slice_t *hosts = n ? calloc(n, sizeof *hosts) : NULL;
    if (n && !hosts)
        rc = -1;
    else
        weir_rule_hosts(rule, hosts, n);
    for (size_t k = 0; k < n && rc == 0; k++)
        rc = claim(ctx, hosts[k].ptr, hosts[k].len, opt);
    free(hosts);
    if (own) weir_rule_free(rule);
    return rc;
}

static int claim_router(weir_tls_ctx_t *ctx, const weir_router_cfg_t *r, int opt,
                        char *const *domains, size_t ndomains)
{
    if (opt < 0 || (size_t)opt >= ctx->num_opts) opt = 0;
    if (ndomains == 0) return claim_rule_hosts(ctx, r, opt);
    for (size_t k = 0; k < ndomains; k++)
        if (claim(ctx, domains[k], strlen(domains[k]), opt) < 0) return -1;
    return 0;
}

/* Every TLS router: one with its own tls section, or one on an entry
 * point with http.tls (whose options and domains it takes, per entry
 * point, as Traefik copies the router per entry point). */
static int map_hosts(weir_tls_ctx_t *ctx, const weir_config_t *cfg)
{
    for (size_t i = 0; i < cfg->num_routers; i++) {
        const weir_router_cfg_t *r = &cfg->routers[i];
        if (r->tls) {
            int opt = r->tls_options ? r->tls_options_index : 0;
            if (claim_router(ctx, r, opt, r->tls_domains, r->num_tls_domains) < 0) return -1;
            continue;
        }
        for (size_t e = 0; e < cfg->num_entrypoints; e++) {
            const weir_entrypoint_cfg_t *ep = &cfg->entrypoints[e];
            if (!ep->http_tls || !router_on(r, ep->name)) continue;
            if (claim_router(ctx, r, option_index(cfg, ep->http_tls_options), ep->http_tls_domains,
                             ep->num_http_tls_domains) < 0)
                return -1;
        }
    }
    return 0;
}

/* ---- the context ---- */

static void ctx_free(weir_tls_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->num_certs; i++)
        tls_cert_free(&ctx->certs[i]);
    free(ctx->certs);
    tls_cert_free(&ctx->def);
    tls_generated_free(&ctx->gen);
    for (size_t i = 0; i < ctx->num_opts; i++)
        tls_opt_free(&ctx->opts[i]);
    free(ctx->opts);
    tls_map_free(&ctx->cert_names);
    tls_map_free(&ctx->host_opts);
    tls_upstreams_free(ctx);
    free(ctx);
}

static bool in_default_store(const weir_tls_cert_cfg_t *c)
{
    if (c->num_stores == 0) return true;
    for (size_t i = 0; i < c->num_stores; i++)
        if (strcmp(c->stores[i], "default") == 0) return true;
    return false;
}

/* tls.certificates: those that load, indexed by name when in the default
 * store. Returns -1 on ENOMEM only (bad files are errors in errs). */
static int load_certs(weir_tls_ctx_t *ctx, const weir_config_t *cfg, weir_config_errors_t *errs)
{
    ctx->certs = calloc(cfg->num_tls_certs ? cfg->num_tls_certs : 1, sizeof *ctx->certs);
    if (!ctx->certs) return -1;
    for (size_t i = 0; i < cfg->num_tls_certs; i++) {
        const weir_tls_cert_cfg_t *cc = &cfg->tls_certs[i];
        weir_tls_cert_t *c = &ctx->certs[ctx->num_certs];
        char what[48];
        snprintf(what, sizeof what, "tls.certificates[%zu]", i);
        if (tls_cert_load(c, cc->cert_file, cc->key_file, cc->cert_pos, cc->key_pos, what, errs) <
            0)
            continue;
        ctx->num_certs++;
        if (in_default_store(cc) &&
            tls_cert_index(&ctx->cert_names, c, (int)ctx->num_certs - 1) < 0)
            return -1;
    }
    return 0;
}

/* The default store's defaultCertificate, else the generated one (prev's
 * when it has one). */
static int load_default(weir_tls_ctx_t *ctx, const weir_config_t *cfg, const weir_tls_ctx_t *prev,
                        weir_config_errors_t *errs)
{
    const weir_tls_store_cfg_t *store = NULL;
    for (size_t i = 0; i < cfg->num_tls_stores; i++)
        if (strcmp(cfg->tls_stores[i].name, "default") == 0) store = &cfg->tls_stores[i];
    if (store && store->default_cert_file && store->default_key_file) {
        tls_cert_load(&ctx->def, store->default_cert_file, store->default_key_file,
                      store->default_pos, store->default_pos,
                      "tls.stores.default.defaultCertificate", errs);
        return 0;
    }
    if (tls_generated_make(&ctx->gen, prev ? &prev->gen : NULL) < 0 ||
        tls_generated_cert(&ctx->def, &ctx->gen) < 0) {
        weir_config_errors_add(errs, store ? store->pos : (weir_pos_t){0},
                               "tls: cannot generate the default certificate");
    }
    return 0;
}

/* One tls_opt_t per tls.options entry; Traefik's default options when the
 * model has none (a model built by hand). */
static int load_options(weir_tls_ctx_t *ctx, const weir_config_t *cfg, weir_config_errors_t *errs)
{
    ctx->num_opts = cfg->num_tls_options ? cfg->num_tls_options : 1;
    ctx->opts = calloc(ctx->num_opts, sizeof *ctx->opts);
    if (!ctx->opts) {
        ctx->num_opts = 0;
        return -1;
    }
    if (cfg->num_tls_options == 0) {
        char *alpn[] = {"h2", "http/1.1", "acme-tls/1"};
        weir_tls_options_cfg_t def = {.name = "default", .min_version = 0x0303};
        def.alpn = alpn;
        def.num_alpn = 3;
        tls_opt_build(&ctx->opts[0], &def, errs);
        return 0;
    }
    for (size_t i = 0; i < cfg->num_tls_options; i++)
        tls_opt_build(&ctx->opts[i], &cfg->tls_options[i], errs);
    return 0;
}

weir_tls_ctx_t *weir_tls_ctx_build(const weir_config_t *cfg, const weir_tls_ctx_t *prev,
                                   weir_config_errors_t *errs)
{
    size_t before = errs->count;
    weir_tls_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        weir_config_errors_add(errs, (weir_pos_t){0}, "tls: out of memory");
        return NULL;
    }
    atomic_init(&ctx->refs, 1);
    if (load_certs(ctx, cfg, errs) < 0 || load_default(ctx, cfg, prev, errs) < 0 ||
        load_options(ctx, cfg, errs) < 0 || tls_upstreams_build(ctx, cfg, errs) < 0 ||
        map_hosts(ctx, cfg) < 0) {
        weir_config_errors_add(errs, (weir_pos_t){0}, "tls: out of memory");
        ctx_free(ctx);
        return NULL;
    }
    if (errs->count > before) {
        ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

void weir_tls_ctx_ref(weir_tls_ctx_t *ctx)
{
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

void weir_tls_ctx_unref(weir_tls_ctx_t *ctx)
{
    if (ctx && atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) == 1) ctx_free(ctx);
}

const weir_tls_cert_t *weir_tls_ctx_find_cert(const weir_tls_ctx_t *ctx, weir_slice_t sni)
{
    int i = tls_map_lookup_name(&ctx->cert_names, sni, -1);
    return i >= 0 ? &ctx->certs[i] : NULL;
}

const weir_tls_cert_t *weir_tls_ctx_default_cert(const weir_tls_ctx_t *ctx)
{
    return &ctx->def;
}

int weir_tls_ctx_options_for(const weir_tls_ctx_t *ctx, weir_slice_t name)
{
    int i = tls_map_lookup_name(&ctx->host_opts, name, 0);
    return i < 0 ? 0 : i;
}

/* ---- sessions ---- */

int weir_tls_session_new(const weir_tls_ctx_t *ctx, int opt, const weir_tls_cert_t *cert,
                         bool alpn, gnutls_session_t *out)
{
    if (opt < 0 || (size_t)opt >= ctx->num_opts) opt = 0;
    const tls_opt_t *op = &ctx->opts[opt];
    if (!cert) {
        if (op->sni_strict) return -1; /* sniStrict: no certificate for this name, no handshake */
        cert = &ctx->def;
    }
    if (!cert->cred || !op->prio) return -1;
    unsigned flags = GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL;
    if (!op->tickets) flags |= GNUTLS_NO_TICKETS;
    gnutls_session_t s;
    if (gnutls_init(&s, flags) < 0) return -1;
    if (gnutls_priority_set(s, op->prio) < 0 ||
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cert->cred) < 0 ||
        (alpn && op->num_alpn &&
         gnutls_alpn_set_protocols(s, op->alpn, op->num_alpn, GNUTLS_ALPN_SERVER_PRECEDENCE) < 0) ||
        (op->tickets && gnutls_session_ticket_enable_server(s, &ticket_key) < 0)) {
        gnutls_deinit(s);
        return -1;
    }
    gnutls_db_set_ptr(s, (void *)op); /* for the client certificate check */
    tls_opt_client_auth(op, s);
    *out = s;
    return 0;
}

int weir_tls_pick(const weir_tls_ctx_t *ctx, const weir_client_hello_t *ch,
                  const weir_tls_cert_t **cert)
{
    char sni[256];
    size_t n = 0;
    if (ch->has_sni && ch->sni.len < sizeof sni) {
        for (; n < ch->sni.len; n++) {
            char c = ch->sni.ptr[n];
            sni[n] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
        }
        if (n && sni[n - 1] == '.')
            n--;
    }
    weir_slice_t name = weir_slice(sni, n);
    int opt = weir_tls_ctx_options_for(ctx, name);
    *cert = n ? weir_tls_ctx_find_cert(ctx, name) : NULL;
    weir_debug("tls: sni \"%.*s\" options %d certificate %s", (int)n, sni, opt,
               *cert ? "found" : "default");
    return opt;
}

int weir_tls_quic_session_new(const weir_tls_ctx_t *ctx, int opt, const weir_tls_cert_t *cert,
                              bool early_data, gnutls_session_t *out)
{
    if (opt < 0 || (size_t)opt >= ctx->num_opts) opt = 0;
    const tls_opt_t *op = &ctx->opts[opt];
    if (!cert) {
        if (op->sni_strict) return -1;
        cert = &ctx->def;
    }
    if (!cert->cred || !op->quic_prio) return -1;
    unsigned flags = GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET | GNUTLS_NO_END_OF_EARLY_DATA;
    if (early_data) flags |= GNUTLS_ENABLE_EARLY_DATA;
    if (!op->tickets) flags |= GNUTLS_NO_TICKETS;
    gnutls_session_t s;
    if (gnutls_init(&s, flags) < 0) return -1;
    static const gnutls_datum_t h3 = {(unsigned char *)"h3", 2};
    if (gnutls_priority_set(s, op->quic_prio) < 0 ||
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cert->cred) < 0 ||
        gnutls_alpn_set_protocols(s, &h3, 1, GNUTLS_ALPN_MANDATORY) < 0 ||
        (op->tickets && gnutls_session_ticket_enable_server(s, &ticket_key) < 0)) {
        gnutls_deinit(s);
        return -1;
    }
    if (early_data) {
        gnutls_anti_replay_enable(s, anti_replay);
        gnutls_record_set_max_early_data_size(s, 0xffffffffu);
    }
    gnutls_db_set_ptr(s, (void *)op);
    tls_opt_client_auth(op, s);
    *out = s;
    return 0;
}
