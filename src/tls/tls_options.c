/* TLS options (tls.options.<name>) as GnuTLS objects: the priority string
 * (versions, cipher suites, groups), the ALPN list, and client
 * authentication (request mode, trust list, verification during the
 * handshake). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls_internal.h"

/* ---- priority strings ---- */

/* A Go (crypto/tls) cipher suite name and the GnuTLS priority items that
 * enable it. TLS 1.3 suites have no key exchange item. */
typedef struct {
    const char *go;
    const char *kx;
    const char *cipher;
    const char *mac;
} suite_t;

static const suite_t suites[] = {
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "RSA", "AES-128-CBC", "SHA1"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "RSA", "AES-256-CBC", "SHA1"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", "RSA", "AES-128-CBC", "SHA256"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "RSA", "AES-128-GCM", "AEAD"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "RSA", "AES-256-GCM", "AEAD"},
    {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "RSA", "3DES-CBC", "SHA1"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA", "AES-128-CBC", "SHA1"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA", "AES-256-CBC", "SHA1"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA", "AES-128-CBC", "SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA", "AES-128-CBC", "SHA1"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA", "AES-256-CBC", "SHA1"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA", "AES-128-CBC", "SHA256"},
    {"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA", "3DES-CBC", "SHA1"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA", "AES-128-GCM", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA", "AES-256-GCM", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA", "AES-128-GCM", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA", "AES-256-GCM", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA", "CHACHA20-POLY1305", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA", "CHACHA20-POLY1305", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA", "CHACHA20-POLY1305", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA", "CHACHA20-POLY1305", "AEAD"},
    {"TLS_AES_128_GCM_SHA256", NULL, "AES-128-GCM", "AEAD"},
    {"TLS_AES_256_GCM_SHA384", NULL, "AES-256-GCM", "AEAD"},
    {"TLS_CHACHA20_POLY1305_SHA256", NULL, "CHACHA20-POLY1305", "AEAD"},
};

static const suite_t *find_suite(const char *name)
{
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        if (strcmp(suites[i].go, name) == 0) return &suites[i];
    return NULL;
}

/* curvePreferences (Go's names, and the lower-case curve names Traefik
 * also accepts) → GnuTLS group. */
static const char *group_of(const char *curve)
{
    static const char *const map[][2] = {
        {"CurveP256", "SECP256R1"}, {"secp256r1", "SECP256R1"}, {"CurveP384", "SECP384R1"},
        {"secp384r1", "SECP384R1"}, {"CurveP521", "SECP521R1"}, {"secp521r1", "SECP521R1"},
        {"X25519", "X25519"},       {"x25519", "X25519"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], curve) == 0) return map[i][1];
    return NULL;
}

typedef struct {
    char *s;
    size_t n, cap;
    bool overflow;
} strbuf_t;

static void sb_add(strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(strbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= b->cap - b->n) {
        b->overflow = true;
        b->s[b->n] = 0; /* drop the partial item */
        return;
    }
    b->n += (size_t)k;
}

/* Adds ":+item" unless the string already enables item. */
static void sb_enable(strbuf_t *b, const char *item)
{
    size_t len = strlen(item);
    for (const char *p = b->s; (p = strstr(p, ":+")) != NULL; p += 2)
        if (strncmp(p + 2, item, len) == 0 && (p[2 + len] == ':' || p[2 + len] == 0)) return;
    sb_add(b, ":+%s", item);
}

static void add_versions(strbuf_t *b, int min, int max)
{
    static const char *const vers[] = {"VERS-TLS1.0", "VERS-TLS1.1", "VERS-TLS1.2", "VERS-TLS1.3"};
    sb_add(b, ":-VERS-ALL");
    for (int v = 0x0304; v >= 0x0301; v--)
        if (v >= min && v <= max) sb_add(b, ":+%s", vers[v - 0x0301]);
}

/* cipherSuites: only the listed suites for TLS 1.2 and older. A list
 * without a TLS 1.3 suite leaves TLS 1.3 its defaults, as Go does. GnuTLS
 * names ciphers, not suites, and shares the names between versions: a
 * TLS 1.2 AEAD suite also enables that cipher for TLS 1.3, and TLS 1.3's
 * defaults enable AES-GCM / ChaCha20 for the listed TLS 1.2 key exchanges. */
static void add_suites(strbuf_t *b, const weir_tls_options_cfg_t *o, int max)
{
    sb_add(b, ":-CIPHER-ALL:-MAC-ALL:-KX-ALL");
    bool has13 = false;
    for (size_t i = 0; i < o->num_cipher_suites; i++) {
        const suite_t *s = find_suite(o->cipher_suites[i]);
        if (!s) continue;
        if (s->kx)
            sb_enable(b, s->kx);
        else
            has13 = true;
        sb_enable(b, s->cipher);
        sb_enable(b, s->mac);
    }
    if (!has13 && max >= 0x0304) {
        sb_enable(b, "AES-256-GCM");
        sb_enable(b, "CHACHA20-POLY1305");
        sb_enable(b, "AES-128-GCM");
        sb_enable(b, "AEAD");
    }
}

static void add_groups(strbuf_t *b, const weir_tls_options_cfg_t *o)
{
    sb_add(b, ":-GROUP-ALL");
    if (o->num_curves == 0) {
        /* Go's order: X25519 first. It is also the key share most clients
         * send, so preferring P-256 would answer most TLS 1.3 handshakes
         * with a HelloRetryRequest (one more round trip). */
        sb_add(b, ":+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1");
        return;
    }
    for (size_t i = 0; i < o->num_curves; i++) {
        const char *g = group_of(o->curves[i]);
        if (g) {
            char item[32];
            snprintf(item, sizeof item, "GROUP-%s", g);
            sb_enable(b, item);
        }
    }
}

int tls_priority_string(const weir_tls_options_cfg_t *o, char *buf, size_t cap)
{
    if (cap == 0) return -1;
    strbuf_t b = {buf, 0, cap, false};
    buf[0] = 0;
    int min = o->min_version ? o->min_version : 0x0303;
    int max = o->max_version ? o->max_version : 0x0304;
    sb_add(&b, "NORMAL:%%SERVER_PRECEDENCE");
    add_versions(&b, min, max);
    if (o->num_cipher_suites) add_suites(&b, o, max);
    add_groups(&b, o);
    return b.overflow ? -1 : 0;
}

/* ---- building ---- */

/* Names the model holds that GnuTLS would not know: a model built by hand
 * (the loader rejects them). */
static int check_names(const weir_tls_options_cfg_t *o, weir_config_errors_t *errs)
{
    int rc = 0;
    for (size_t i = 0; i < o->num_cipher_suites; i++)
        if (!find_suite(o->cipher_suites[i])) {
            weir_config_errors_add(errs, o->pos, "tls.options.%s: unknown cipher suite \"%s\"",
                                   o->name, o->cipher_suites[i]);
            rc = -1;
        }
    for (size_t i = 0; i < o->num_curves; i++)
        if (!group_of(o->curves[i])) {
            weir_config_errors_add(errs, o->pos, "tls.options.%s: unknown curve \"%s\"", o->name,
                                   o->curves[i]);
            rc = -1;
        }
    return rc;
}

static int build_priority(tls_opt_t *op, const weir_tls_options_cfg_t *o,
                          weir_config_errors_t *errs)
{
    char s[2048];
    if (check_names(o, errs) < 0) return -1;
    if (tls_priority_string(o, s, sizeof s) < 0) {
        weir_config_errors_add(errs, o->pos, "tls.options.%s: too many settings", o->name);
        return -1;
    }
    const char *where = NULL;
    int rc = gnutls_priority_init2(&op->prio, s, &where, 0);
    if (rc < 0) {
        op->prio = NULL;
        weir_config_errors_add(errs, o->pos,
                               "tls.options.%s: GnuTLS refuses these settings (%s at \"%s\")",
                               o->name, gnutls_strerror(rc), where ? where : "");
        return -1;
    }
    /* QUIC: TLS 1.3 only, without the middlebox compatibility mode (RFC
     * 9001 §8.4). Options that allow no TLS 1.3 get no QUIC priority, and
     * QUIC handshakes under them fail. */
    size_t n = strlen(s);
    snprintf(s + n, sizeof s - n,
             ":-VERS-TLS1.2:-VERS-TLS1.1:-VERS-TLS1.0:-VERS-DTLS-ALL:%%DISABLE_TLS13_COMPAT_MODE");
    if (gnutls_priority_init2(&op->quic_prio, s, NULL, 0) < 0)
        op->quic_prio = NULL;
    return 0;
}

static int build_alpn(tls_opt_t *op, const weir_tls_options_cfg_t *o, weir_config_errors_t *errs)
{
    if (o->num_alpn == 0) return 0;
    op->alpn = calloc(o->num_alpn, sizeof *op->alpn);
    if (!op->alpn) return -1;
    for (size_t i = 0; i < o->num_alpn; i++) {
        size_t len = strlen(o->alpn[i]);
        if (len == 0 || len > 255) {
            weir_config_errors_add(errs, o->pos,
                                   "tls.options.%s.alpnProtocols: \"%s\" is not 1 to 255 bytes",
                                   o->name, o->alpn[i]);
            return -1;
        }
        op->alpn[i].data = (unsigned char *)strdup(o->alpn[i]);
        if (!op->alpn[i].data) return -1;
        op->alpn[i].size = (unsigned)len;
        op->num_alpn++;
    }
    return 0;
}

/* clientAuth.caFiles → trust list. */
static int build_trust(tls_opt_t *op, const weir_tls_options_cfg_t *o, weir_config_errors_t *errs)
{
    if (o->num_ca_files == 0) return 0;
    if (gnutls_x509_trust_list_init(&op->trust, 0) < 0) {
        op->trust = NULL;
        return -1;
    }
    for (size_t i = 0; i < o->num_ca_files; i++) {
        char err[256] = "";
        gnutls_datum_t d;
        if (tls_load_pem(o->ca_files[i], &d, err, sizeof err) < 0) {
            weir_config_errors_add(errs, o->ca_pos,
                                   "tls.options.%s.clientAuth.caFiles: cannot load \"%s\": %s",
                                   o->name, tls_shown(o->ca_files[i]), err);
            return -1;
        }
        int rc =
            gnutls_x509_trust_list_add_trust_mem(op->trust, &d, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
        gnutls_free(d.data);
        if (rc <= 0) {
            weir_config_errors_add(
                errs, o->ca_pos,
                "tls.options.%s.clientAuth.caFiles: no CA certificate in \"%s\"%s%s", o->name,
                tls_shown(o->ca_files[i]), rc < 0 ? ": " : "", rc < 0 ? gnutls_strerror(rc) : "");
            return -1;
        }
    }
    return 0;
}

int tls_opt_build(tls_opt_t *op, const weir_tls_options_cfg_t *o, weir_config_errors_t *errs)
{
    memset(op, 0, sizeof *op);
    op->auth = o->client_auth;
    op->sni_strict = o->sni_strict != 0;
    op->tickets = !o->disable_session_tickets;
    size_t before = errs->count;
    int rc = build_priority(op, o, errs);
    if (build_alpn(op, o, errs) < 0) rc = -1;
    if (build_trust(op, o, errs) < 0) rc = -1;
    if (rc < 0 && errs->count == before)
        weir_config_errors_add(errs, o->pos, "tls.options.%s: out of memory", o->name);
    return rc;
}

void tls_opt_free(tls_opt_t *op)
{
    if (op->prio) gnutls_priority_deinit(op->prio);
    if (op->quic_prio) gnutls_priority_deinit(op->quic_prio);
    for (unsigned k = 0; k < op->num_alpn; k++)
        free(op->alpn[k].data);
    free(op->alpn);
    if (op->trust) gnutls_x509_trust_list_deinit(op->trust, 1);
    memset(op, 0, sizeof *op);
}

/* ---- client authentication ---- */

#define MAX_CHAIN 16

/* Verifies the client's chain against the option's trust list while the
 * handshake runs: a non-zero return fails the handshake (GnuTLS returns
 * GNUTLS_E_CERTIFICATE_ERROR; the record layer sends the alert). No
 * certificate is fine for VerifyClientCertIfGiven only. */
static int verify_client(gnutls_session_t s)
{
    const tls_opt_t *op = gnutls_db_get_ptr(s);
    unsigned n = 0;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(s, &n);
    if (!raw || n == 0) return op->auth == WEIR_CLIENT_AUTH_REQUIRE_AND_VERIFY ? -1 : 0;
    if (!op->trust || n > MAX_CHAIN) return -1;
    gnutls_x509_crt_t chain[MAX_CHAIN];
    unsigned got = 0;
    int rc = 0;
    for (; got < n; got++) {
        if (gnutls_x509_crt_init(&chain[got]) < 0) {
            rc = -1;
            break;
        }
        if (gnutls_x509_crt_import(chain[got], &raw[got], GNUTLS_X509_FMT_DER) < 0) {
            got++;
            rc = -1;
            break;
        }
    }
    unsigned status = 0;
    if (rc == 0) {
        /* Go checks ExtKeyUsageClientAuth on the chain */
        gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID,
                                         (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0};
        if (gnutls_x509_trust_list_verify_crt2(op->trust, chain, n, &purpose, 1, 0, &status, NULL) <
                0 ||
            status != 0)
            rc = -1;
    }
    for (unsigned i = 0; i < got; i++)
        gnutls_x509_crt_deinit(chain[i]);
    return rc;
}

void tls_opt_client_auth(const tls_opt_t *op, gnutls_session_t s)
{
    switch (op->auth) {
    case WEIR_CLIENT_AUTH_NONE:
        break;
    case WEIR_CLIENT_AUTH_REQUEST:
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
        break;
    case WEIR_CLIENT_AUTH_REQUIRE_ANY:
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
        break;
    case WEIR_CLIENT_AUTH_VERIFY_IF_GIVEN:
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
        gnutls_session_set_verify_function(s, verify_client);
        break;
    case WEIR_CLIENT_AUTH_REQUIRE_AND_VERIFY:
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_function(s, verify_client);
        break;
    }
}
