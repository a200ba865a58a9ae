/* Shared inside src/tls only (tls.c, tls_store.c, tls_options.c,
 * tls_upstream.c): the context's layout, the name map, certificate loading,
 * the TLS options turned into GnuTLS objects and the upstream credentials.
 * Not part of the contract; other modules use tls.h. */
#ifndef WEIR_TLS_INTERNAL_H
#define WEIR_TLS_INTERNAL_H

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdatomic.h>

#include "tls/tls.h"

struct weir_tls_cert {
    gnutls_certificate_credentials_t cred; /* NULL: not loaded */
};

/* ---- name map (tls_store.c) ----
 *
 * Lower-case name → int, open addressing; keys are owned copies. Wildcard
 * names are kept as "*.parent" keys beside the exact ones: a lookup tries
 * the name, then "*" + the name without its first label. */
typedef struct {
    char **keys;
    int *vals;
    size_t mask; /* capacity - 1; 0 while empty */
    size_t count;
} tls_map_t;

/* Inserts key → val unless key is present; then *existing points at the
 * present value (NULL when inserted). Returns 0, or -1 on ENOMEM. */
int tls_map_put(tls_map_t *m, const char *key, size_t n, int val, int **existing);
/* The value of name (exact), else of its one-label wildcard, else miss. A
 * name holding '*' matches nothing (it is no server name). */
int tls_map_lookup_name(const tls_map_t *m, weir_slice_t name, int miss);
void tls_map_free(tls_map_t *m);

/* ---- certificates (tls_store.c) ---- */

/* The bytes of a certFile / keyFile / caFiles value: the file's contents,
 * or the value itself when it is inline PEM ("-----BEGIN..."). Returns 0
 * and out (free with gnutls_free), or -1 with the reason in err. */
int tls_load_pem(const char *value, gnutls_datum_t *out, char *err, size_t cap);
/* How a value appears in error messages: the path, or "(inline PEM)". */
const char *tls_shown(const char *value);

/* Loads a certificate chain and its key into c. what names the section
 * ("tls.certificates[0]"); errors go to errs at cpos (certificate) or kpos
 * (key). Returns 0 or -1. */
int tls_cert_load(weir_tls_cert_t *c, const char *certv, const char *keyv, weir_pos_t cpos,
                  weir_pos_t kpos, const char *what, weir_config_errors_t *errs);
/* Adds the DNS SANs of c's leaf certificate (its CN when it has none),
 * lower-cased, to names with value idx; a name already there keeps its
 * first certificate. Returns 0, or -1 on ENOMEM. */
int tls_cert_index(tls_map_t *names, const weir_tls_cert_t *c, int idx);
void tls_cert_free(weir_tls_cert_t *c);
/* tls_cert_load into existing credentials (a client certificate beside a
 * trust list). */
int tls_cert_add(gnutls_certificate_credentials_t cred, const char *certv, const char *keyv,
                 weir_pos_t cpos, weir_pos_t kpos, const char *what, weir_config_errors_t *errs);

/* The generated default certificate, kept as PEM so that a reload copies
 * it into the next context (the same certificate across reloads). */
typedef struct {
    gnutls_datum_t crt;
    gnutls_datum_t key;
} tls_generated_t;

/* Makes g: a self-signed ECDSA P-256 certificate, CN "TRAEFIK DEFAULT CERT",
 * one DNS SAN "<32 hex>.<32 hex>.traefik.default", valid one year. When
 * from holds one, copies it instead. Returns 0 or -1. */
int tls_generated_make(tls_generated_t *g, const tls_generated_t *from);
/* Credentials of the generated certificate. Returns 0 or -1. */
int tls_generated_cert(weir_tls_cert_t *c, const tls_generated_t *g);
void tls_generated_free(tls_generated_t *g);

/* ---- TLS options (tls_options.c) ---- */

typedef struct {
    gnutls_priority_t prio;
    gnutls_priority_t quic_prio; /* TLS 1.3 only, for QUIC; NULL when the options forbid it */
    gnutls_datum_t *alpn;
    unsigned num_alpn;
    gnutls_x509_trust_list_t trust; /* clientAuth.caFiles; NULL when none */
    weir_client_auth_t auth;
    bool sni_strict;
    bool tickets;
} tls_opt_t;

/* The GnuTLS priority string of o into buf (always terminated). Returns 0,
 * or -1 when it does not fit. */
int tls_priority_string(const weir_tls_options_cfg_t *o, char *buf, size_t cap);
/* Builds op from o: priority (checked by GnuTLS), ALPN list, trust list.
 * Errors go to errs at o's positions. Returns 0 or -1. */
int tls_opt_build(tls_opt_t *op, const weir_tls_options_cfg_t *o, weir_config_errors_t *errs);
void tls_opt_free(tls_opt_t *op);
/* Applies op's client authentication to a server session s: certificate
 * request mode and, for the verifying modes, a verify function run during
 * the handshake (it finds op in the session's db pointer: the user pointer
 * belongs to the QUIC crypto helper on QUIC sessions). */
void tls_opt_client_auth(const tls_opt_t *op, gnutls_session_t s);

/* ---- upstream (client) sessions (tls_upstream.c) ---- */

/* What a serversTransport needs for https:// servers. */
typedef struct {
    gnutls_certificate_credentials_t cred; /* NULL: no https server uses it */
    char *server_name;
    bool insecure;
} tls_upstream_t;

/* One tls_upstream_t per cfg->transports entry, credentials only for the
 * transports an https:// server uses. Errors (a rootCAs or client
 * certificate file that does not load) go to errs. Returns 0, or -1 on
 * ENOMEM without an error added. */
int tls_upstreams_build(weir_tls_ctx_t *ctx, const weir_config_t *cfg, weir_config_errors_t *errs);
void tls_upstreams_free(weir_tls_ctx_t *ctx);

/* ---- the context (tls.c) ---- */

struct weir_tls_ctx {
    atomic_int refs;
    weir_tls_cert_t *certs; /* tls.certificates that loaded */
    size_t num_certs;
    weir_tls_cert_t def;  /* the default store's default certificate */
    tls_generated_t gen;  /* def's PEM when generated (empty otherwise) */
    tls_map_t cert_names; /* SAN or "*.parent" → index into certs (default store) */
    tls_opt_t *opts;      /* one per cfg->tls_options entry */
    size_t num_opts;
    tls_map_t host_opts; /* host or "*.parent" → options index; -1 = conflict */
    tls_upstream_t *up;  /* one per serversTransport */
    size_t num_up;
    tls_upstream_t *tcp_up; /* one per tcp.serversTransports entry */
    size_t num_tcp_up;
};

#endif
