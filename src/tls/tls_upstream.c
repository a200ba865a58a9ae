/* Client sessions to https:// servers and to TCP servers with tls: per
 * serversTransport credentials (rootCAs or the system's trust store, a
 * client certificate), the name sent and verified, insecureSkipVerify. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls_internal.h"

static bool transport_used_by_https(const weir_config_t *cfg, size_t t)
{
    for (size_t i = 0; i < cfg->num_services; i++) {
        const weir_service_cfg_t *s = &cfg->services[i];
        size_t ti = s->transport_index >= 0 && (size_t)s->transport_index < cfg->num_transports
                        ? (size_t)s->transport_index
                        : 0;
        if (ti != t) continue;
        for (size_t k = 0; k < s->num_servers; k++)
            if (s->servers[k].scheme == WEIR_SCHEME_HTTPS) return true;
    }
    return false;
}

static int add_root_cas(tls_upstream_t *u, const weir_servers_transport_cfg_t *t,
                        weir_config_errors_t *errs)
{
    if (t->num_root_cas == 0) {
        if (!u->insecure && gnutls_certificate_set_x509_system_trust(u->cred) < 0)
            weir_config_errors_add(errs, t->pos,
                                   "serversTransport %s: cannot load the system's CA certificates",
                                   t->name);
        return 0;
    }
    for (size_t i = 0; i < t->num_root_cas; i++) {
        char err[256] = "";
        gnutls_datum_t d;
        if (tls_load_pem(t->root_cas[i], &d, err, sizeof err) < 0) {
            weir_config_errors_add(errs, t->root_cas_pos,
                                   "serversTransports.%s.rootCAs: cannot load \"%s\": %s", t->name,
                                   tls_shown(t->root_cas[i]), err);
            return -1;
        }
        int rc = gnutls_certificate_set_x509_trust_mem(u->cred, &d, GNUTLS_X509_FMT_PEM);
        gnutls_free(d.data);
        if (rc <= 0) {
            weir_config_errors_add(errs, t->root_cas_pos,
                                   "serversTransports.%s.rootCAs: no CA certificate in \"%s\"",
                                   t->name, tls_shown(t->root_cas[i]));
            return -1;
        }
    }
    return 0;
}

static int build_upstream(tls_upstream_t *u, const weir_servers_transport_cfg_t *t,
                          weir_config_errors_t *errs)
{
    if (gnutls_certificate_allocate_credentials(&u->cred) < 0) {
        u->cred = NULL;
        return -1;
    }
    u->insecure = t->insecure_skip_verify != 0;
    if (t->server_name && *t->server_name) {
        u->server_name = strdup(t->server_name);
        if (!u->server_name) return -1;
    }
    if (add_root_cas(u, t, errs) < 0) return 0; /* reported */
    if (t->client_cert_file && t->client_key_file) {
        char what[320];
        snprintf(what, sizeof what, "serversTransports.%s.certificates[0]", t->name);
        tls_cert_add(u->cred, t->client_cert_file, t->client_key_file, t->client_cert_pos,
                     t->client_cert_pos, what, errs);
    }
    return 0;
}

static bool tcp_transport_used_by_tls(const weir_config_t *cfg, size_t t)
{
    for (size_t i = 0; i < cfg->num_tcp_services; i++) {
        const weir_tcp_service_cfg_t *s = &cfg->tcp_services[i];
        if ((size_t)s->transport_index != t) continue;
        for (size_t k = 0; k < s->num_servers; k++)
            if (weir_tcp_server_tls(&s->servers[k], &cfg->tcp_transports[t])) return true;
    }
    return false;
}

int tls_upstreams_build(weir_tls_ctx_t *ctx, const weir_config_t *cfg, weir_config_errors_t *errs)
{
    ctx->up = calloc(cfg->num_transports ? cfg->num_transports : 1, sizeof *ctx->up);
    ctx->tcp_up = calloc(cfg->num_tcp_transports ? cfg->num_tcp_transports : 1, sizeof *ctx->tcp_up);
    if (!ctx->up || !ctx->tcp_up) return -1;
    ctx->num_up = cfg->num_transports;
    ctx->num_tcp_up = cfg->num_tcp_transports;
    for (size_t i = 0; i < cfg->num_transports; i++)
        if (transport_used_by_https(cfg, i) &&
            build_upstream(&ctx->up[i], &cfg->transports[i], errs) < 0)
            return -1;
    for (size_t i = 0; i < cfg->num_tcp_transports; i++)
        if (tcp_transport_used_by_tls(cfg, i) &&
            build_upstream(&ctx->tcp_up[i], &cfg->tcp_transports[i].tls, errs) < 0)
            return -1;
    return 0;
}

static void free_upstreams(tls_upstream_t *up, size_t n)
{
    for (size_t i = 0; up && i < n; i++) {
        if (up[i].cred) gnutls_certificate_free_credentials(up[i].cred);
        free(up[i].server_name);
    }
    free(up);
}

void tls_upstreams_free(weir_tls_ctx_t *ctx)
{
    free_upstreams(ctx->up, ctx->num_up);
    free_upstreams(ctx->tcp_up, ctx->num_tcp_up);
    ctx->up = ctx->tcp_up = NULL;
    ctx->num_up = ctx->num_tcp_up = 0;
}

/* One priority cache for every client session, made once. */
static gnutls_priority_t client_prio;
static bool client_prio_ok;
static pthread_once_t client_prio_once = PTHREAD_ONCE_INIT;

static void client_prio_init(void)
{
    client_prio_ok = gnutls_priority_init2(&client_prio, "NORMAL", NULL, 0) >= 0;
}

static bool is_ip(const char *name)
{
    return strchr(name, ':') || strspn(name, "0123456789.") == strlen(name);
}

/* A client session with u's credentials toward host, offering the nprotos
 * ALPN protocols of protos (none when 0). */
static int client_session(const tls_upstream_t *u, const char *host,
                          const gnutls_datum_t *protos, unsigned nprotos, gnutls_session_t *out)
{
    if (!u->cred) return -1;
    pthread_once(&client_prio_once, client_prio_init);
    if (!client_prio_ok) return -1;
    gnutls_session_t s;
    if (gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0) return -1;
    const char *name = u->server_name ? u->server_name : host;
    if (gnutls_priority_set(s, client_prio) < 0 ||
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, u->cred) < 0 ||
        (!is_ip(name) && gnutls_server_name_set(s, GNUTLS_NAME_DNS, name, strlen(name)) < 0) ||
        (nprotos && gnutls_alpn_set_protocols(s, protos, nprotos, 0) < 0)) {
        gnutls_deinit(s);
        return -1;
    }
    if (!u->insecure) gnutls_session_set_verify_cert(s, name, 0);
    *out = s;
    return 0;
}

int weir_tls_client_session_new(const weir_tls_ctx_t *ctx, int transport, const char *host,
                                bool offer_h2, gnutls_session_t *out)
{
    if (transport < 0 || (size_t)transport >= ctx->num_up) return -1;
    static const gnutls_datum_t protos[] = {{(unsigned char *)"h2", 2},
                                             {(unsigned char *)"http/1.1", 8}};
    return client_session(&ctx->up[transport], host, offer_h2 ? protos : protos + 1,
                          offer_h2 ? 2 : 1, out);
}

int weir_tls_tcp_client_session_new(const weir_tls_ctx_t *ctx, int transport, const char *host,
                                    gnutls_session_t *out)
{
    if (transport < 0 || (size_t)transport >= ctx->num_tcp_up) return -1;
    return client_session(&ctx->tcp_up[transport], host, NULL, 0, out);
}
