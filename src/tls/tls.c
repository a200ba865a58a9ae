/* The TLS context of a configuration: certificates and their SNI index,
 * TLS options as GnuTLS priorities, client authentication, the host →
 * options map, and server sessions made from them. */
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "tls/tls.h"

struct weir_tls_cert {
    gnutls_certificate_credentials_t cred;
};

typedef struct {
    gnutls_priority_t prio;
    gnutls_datum_t *alpn;
    unsigned num_alpn;
    gnutls_x509_trust_list_t trust; /* clientAuth.caFiles; NULL when none */
    weir_client_auth_t auth;
    int sni_strict;
    int tickets;
} opt_t;

/* String → index, open addressing; keys are owned copies. */
typedef struct {
    char **keys;
    int *vals;
    size_t mask; /* capacity - 1; 0 when empty */
    size_t count;
} map_t;

/* What a serversTransport needs for https:// servers. */
typedef struct {
    gnutls_certificate_credentials_t cred; /* NULL: no https server uses it */
    char *server_name;
    int insecure;
} upstream_t;

struct weir_tls_ctx {
    atomic_int refs;
    upstream_t *up; /* one per serversTransport */
    size_t num_up;
    weir_tls_cert_t *certs; /* tls.certificates (default store) */
    size_t num_certs;
    weir_tls_cert_t def; /* the default certificate */
    map_t cert_names;    /* lower-cased SAN (or "*.parent") → index into certs */
    opt_t *opts;
    size_t num_opts;
    map_t host_opts; /* host (or "*.parent") → options index; -1 = conflict */
};

/* ---- process-wide ---- */

static gnutls_datum_t ticket_key;
static gnutls_x509_crt_t gen_crt; /* the generated default certificate */
static gnutls_x509_privkey_t gen_key;

int weir_tls_global_init(void)
{
    if (gnutls_global_init() < 0)
        return -1;
    if (gnutls_session_ticket_key_generate(&ticket_key) < 0)
        return -1;
    return 0;
}

void weir_tls_global_deinit(void)
{
    if (ticket_key.data)
        gnutls_memset(ticket_key.data, 0, ticket_key.size);
    gnutls_free(ticket_key.data);
    ticket_key.data = NULL;
    if (gen_crt)
        gnutls_x509_crt_deinit(gen_crt);
    if (gen_key)
        gnutls_x509_privkey_deinit(gen_key);
    gen_crt = NULL;
    gen_key = NULL;
    gnutls_global_deinit();
}

/* ---- map ---- */

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static int map_grow(map_t *m)
{
    size_t cap = m->mask ? (m->mask + 1) * 2 : 16;
    char **keys = calloc(cap, sizeof *keys);
    int *vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t i = 0; m->mask && i <= m->mask; i++) {
        if (!m->keys[i])
            continue;
        size_t j = hash_str(m->keys[i], strlen(m->keys[i])) & (cap - 1);
        while (keys[j])
            j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->mask = cap - 1;
    return 0;
}

/* Slot of key, or -1. */
static long map_find(const map_t *m, const char *key, size_t n)
{
    if (!m->mask)
        return -1;
    size_t j = hash_str(key, n) & m->mask;
    while (m->keys[j]) {
        if (strlen(m->keys[j]) == n && memcmp(m->keys[j], key, n) == 0)
            return (long)j;
        j = (j + 1) & m->mask;
    }
    return -1;
}

/* Sets key → val unless present: returns the existing slot's value pointer
 * through *existing (NULL when inserted). -1 on ENOMEM. */
static int map_put(map_t *m, const char *key, size_t n, int val, int **existing)
{
    *existing = NULL;
    long at = map_find(m, key, n);
    if (at >= 0) {
        *existing = &m->vals[at];
        return 0;
    }
    if ((m->count + 1) * 2 > (m->mask ? m->mask + 1 : 0) && map_grow(m) < 0)
        return -1;
    char *k = strndup(key, n);
    if (!k)
        return -1;
    size_t j = hash_str(key, n) & m->mask;
    while (m->keys[j])
        j = (j + 1) & m->mask;
    m->keys[j] = k;
    m->vals[j] = val;
    m->count++;
    return 0;
}

static void map_free(map_t *m)
{
    for (size_t i = 0; m->mask && i <= m->mask; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* Lookup of a server name: exact, then the wildcard of its parent. */
static int map_lookup_name(const map_t *m, weir_slice_t name, int miss)
{
    long at = map_find(m, name.ptr, name.len);
    if (at >= 0)
        return m->vals[at];
    const char *dot = memchr(name.ptr, '.', name.len);
    if (!dot || dot == name.ptr)
        return miss;
    size_t plen = name.len - (size_t)(dot - name.ptr);
    char wild[WEIR_HOST_MAX + 2];
    if (plen + 1 > sizeof wild)
        return miss;
    wild[0] = '*';
    memcpy(wild + 1, dot, plen);
    at = map_find(m, wild, plen + 1);
    return at >= 0 ? m->vals[at] : miss;
}

/* ---- loading ---- */

static bool is_inline_pem(const char *v)
{
    return strncmp(v, "-----BEGIN", 10) == 0;
}

/* The PEM bytes of a certFile/keyFile/caFile value: the file's contents,
 * or the value itself when it is inline PEM. */
static int load_pem(const char *value, gnutls_datum_t *out, char *err, size_t cap)
{
    if (is_inline_pem(value)) {
        out->data = (unsigned char *)gnutls_strdup(value);
        out->size = (unsigned)strlen(value);
        return out->data ? 0 : -1;
    }
    int rc = gnutls_load_file(value, out);
    if (rc < 0) {
        FILE *f = fopen(value, "rb");
        if (!f)
            snprintf(err, cap, "%s", strerror(errno));
        else {
            fclose(f);
            snprintf(err, cap, "%s", gnutls_strerror(rc));
        }
        return -1;
    }
    return 0;
}

static const char *shown(const char *value)
{
    return is_inline_pem(value) ? "(inline PEM)" : value;
}

/* Loads one certificate + key pair into c. Returns 0, or -1 with an error
 * added at the right key. */
static int load_pair(weir_tls_cert_t *c, const char *certv, const char *keyv, weir_pos_t cpos,
                     weir_pos_t kpos, const char *what, weir_config_errors_t *errs)
{
    char err[256] = "";
    gnutls_datum_t cd = {0}, kd = {0};
    if (load_pem(certv, &cd, err, sizeof err) < 0) {
        weir_config_errors_add(errs, cpos, "%s.certFile: cannot load certificate \"%s\": %s", what,
                               shown(certv), err);
        return -1;
    }
    if (load_pem(keyv, &kd, err, sizeof err) < 0) {
        weir_config_errors_add(errs, kpos, "%s.keyFile: cannot load key \"%s\": %s", what,
                               shown(keyv), err);
        gnutls_free(cd.data);
        return -1;
    }
    /* Parse the certificates first: GnuTLS 3.7 leaks a half-parsed chain
     * when set_x509_key_mem2 fails on a broken PEM block. */
    gnutls_x509_crt_t *list = NULL;
    unsigned n = 0;
    int rc = gnutls_x509_crt_list_import2(&list, &n, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (rc >= 0) {
        for (unsigned i = 0; i < n; i++)
            gnutls_x509_crt_deinit(list[i]);
        gnutls_free(list);
        if (n == 0)
            rc = GNUTLS_E_NO_CERTIFICATE_FOUND;
    }
    if (rc >= 0)
        rc = gnutls_certificate_allocate_credentials(&c->cred);
    if (rc >= 0)
        rc = gnutls_certificate_set_x509_key_mem2(c->cred, &cd, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_free(cd.data);
    gnutls_free(kd.data);
    if (rc < 0) {
        if (rc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
            weir_config_errors_add(errs, kpos, "%s.keyFile: key \"%s\" does not match certificate \"%s\"",
                                   what, shown(keyv), shown(certv));
        else
            weir_config_errors_add(errs, cpos, "%s.certFile: cannot use certificate \"%s\" with key \"%s\": %s",
                                   what, shown(certv), shown(keyv), gnutls_strerror(rc));
        if (c->cred)
            gnutls_certificate_free_credentials(c->cred);
        c->cred = NULL;
        return -1;
    }
    return 0;
}

static void lower(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] + 32);
}

/* Adds the DNS names of c's leaf certificate (SANs, or the CN without
 * any) to the name index. The first certificate listed wins a name. */
static int index_names(weir_tls_ctx_t *ctx, const weir_tls_cert_t *c, int idx)
{
    gnutls_x509_crt_t *crts;
    unsigned n;
    if (gnutls_certificate_get_x509_crt(c->cred, 0, &crts, &n) < 0 || n == 0)
        return 0;
    int found = 0, rc = 0;
    for (unsigned i = 0;; i++) {
        char name[WEIR_HOST_MAX];
        size_t size = sizeof name;
        unsigned critical;
        int type = gnutls_x509_crt_get_subject_alt_name(crts[0], i, name, &size, &critical);
        if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (type == GNUTLS_E_SHORT_MEMORY_BUFFER)
            continue;
        if (type != GNUTLS_SAN_DNSNAME || size == 0 || size >= sizeof name)
            continue;
        lower(name, size);
        if (name[size - 1] == '.')
            size--;
        int *old;
        if (map_put(&ctx->cert_names, name, size, idx, &old) < 0)
            rc = -1;
        found = 1;
    }
    if (!found) {
        char cn[WEIR_HOST_MAX];
        size_t size = sizeof cn;
        if (gnutls_x509_crt_get_dn_by_oid(crts[0], GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &size) >= 0 &&
            size > 0 && size < sizeof cn) {
            lower(cn, size);
            int *old;
            if (map_put(&ctx->cert_names, cn, size, idx, &old) < 0)
                rc = -1;
        }
    }
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    return rc;
}

/* The self-signed default certificate, made once per process (a reload
 * keeps serving the same one, as Traefik's). */
static int generated_default(weir_tls_cert_t *c)
{
    if (!gen_crt) {
        gnutls_x509_privkey_t key;
        gnutls_x509_crt_t crt;
        if (gnutls_x509_privkey_init(&key) < 0)
            return -1;
        if (gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                         GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
            gnutls_x509_crt_init(&crt) < 0) {
            gnutls_x509_privkey_deinit(key);
            return -1;
        }
        unsigned char serial[16], rnd[16];
        gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial);
        gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof rnd);
        serial[0] &= 0x7f;
        char san[80];
        int p = 0;
        for (size_t i = 0; i < sizeof rnd; i++) {
            p += snprintf(san + p, sizeof san - (size_t)p, "%02x", rnd[i]);
            if (i == 7)
                san[p++] = '.';
        }
        snprintf(san + p, sizeof san - (size_t)p, ".traefik.default");
        time_t now = time(NULL);
        const char *cn = "TRAEFIK DEFAULT CERT";
        int rc = 0;
        rc |= gnutls_x509_crt_set_version(crt, 3);
        rc |= gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
        rc |= gnutls_x509_crt_set_activation_time(crt, now - 3600);
        rc |= gnutls_x509_crt_set_expiration_time(crt, now + 365 * 24 * 3600);
        rc |= gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn));
        rc |= gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, san, (unsigned)strlen(san),
                                                   GNUTLS_FSAN_SET);
        rc |= gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
        rc |= gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
        rc |= gnutls_x509_crt_set_key(crt, key);
        if (rc < 0 || gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0) {
            gnutls_x509_crt_deinit(crt);
            gnutls_x509_privkey_deinit(key);
            return -1;
        }
        gen_crt = crt;
        gen_key = key;
    }
    if (gnutls_certificate_allocate_credentials(&c->cred) < 0)
        return -1;
    if (gnutls_certificate_set_x509_key(c->cred, &gen_crt, 1, gen_key) < 0) {
        gnutls_certificate_free_credentials(c->cred);
        c->cred = NULL;
        return -1;
    }
    return 0;
}

/* ---- options ---- */

typedef struct {
    const char *go;   /* Go's crypto/tls name */
    const char *kx;   /* GnuTLS key exchange, NULL for TLS 1.3 suites */
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
        if (strcmp(suites[i].go, name) == 0)
            return &suites[i];
    return NULL;
}

static const char *group_of(const char *curve)
{
    static const char *const map[][2] = {
        {"CurveP256", "SECP256R1"}, {"secp256r1", "SECP256R1"}, {"P-256", "SECP256R1"},
        {"CurveP384", "SECP384R1"}, {"secp384r1", "SECP384R1"}, {"P-384", "SECP384R1"},
        {"CurveP521", "SECP521R1"}, {"secp521r1", "SECP521R1"}, {"P-521", "SECP521R1"},
        {"X25519", "X25519"},       {"x25519", "X25519"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], curve) == 0)
            return map[i][1];
    return NULL;
}

typedef struct {
    char s[2048];
    size_t n;
} strbuf_t;

static void sb_add(strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(strbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->n = b->n + (size_t)k < sizeof b->s ? b->n + (size_t)k : sizeof b->s - 1;
}

static void sb_add_once(strbuf_t *b, const char *item)
{
    char tok[64];
    snprintf(tok, sizeof tok, ":+%s", item);
    if (!strstr(b->s, tok))
        sb_add(b, "%s", tok);
}

/* The GnuTLS priority string of a tls.options entry. */
static void priority_of(const weir_tls_options_cfg_t *o, strbuf_t *b)
{
    b->n = 0;
    b->s[0] = 0;
    sb_add(b, "NORMAL:%%SERVER_PRECEDENCE:-VERS-ALL");
    int min = o->min_version ? o->min_version : 0x0303;
    int max = o->max_version ? o->max_version : 0x0304;
    static const char *const vers[] = {"VERS-TLS1.0", "VERS-TLS1.1", "VERS-TLS1.2", "VERS-TLS1.3"};
    for (int v = 0x0304; v >= 0x0301; v--)
        if (v >= min && v <= max)
            sb_add(b, ":+%s", vers[v - 0x0301]);
    if (o->num_cipher_suites) {
        sb_add(b, ":-CIPHER-ALL:-MAC-ALL:-KX-ALL");
        bool has13 = false;
        for (size_t i = 0; i < o->num_cipher_suites; i++) {
            const suite_t *s = find_suite(o->cipher_suites[i]);
            if (!s)
                continue;
            if (!s->kx)
                has13 = true;
            else
                sb_add_once(b, s->kx);
            sb_add_once(b, s->cipher);
            sb_add_once(b, s->mac);
        }
        if (!has13 && max >= 0x0304) {
            /* As Go: the list governs TLS 1.2 and older; TLS 1.3 keeps its
             * suites (GnuTLS shares the cipher names between versions). */
            sb_add_once(b, "AES-128-GCM");
            sb_add_once(b, "AES-256-GCM");
            sb_add_once(b, "CHACHA20-POLY1305");
            sb_add_once(b, "AEAD");
        }
    }
    if (o->num_curves) {
        sb_add(b, ":-GROUP-ALL");
        for (size_t i = 0; i < o->num_curves; i++) {
            const char *g = group_of(o->curves[i]);
            if (g)
                sb_add(b, ":+GROUP-%s", g);
        }
    } else {
        /* Go's order: X25519 first. It is also the key share most clients
         * send, so a server preferring P-256 would answer most TLS 1.3
         * handshakes with a HelloRetryRequest (one more round trip and a
         * second key exchange). */
        sb_add(b, ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1");
    }
}

static int load_trust(opt_t *op, const weir_tls_options_cfg_t *o, weir_config_errors_t *errs)
{
    if (!o->num_ca_files)
        return 0;
    if (gnutls_x509_trust_list_init(&op->trust, 0) < 0)
        return -1;
    for (size_t i = 0; i < o->num_ca_files; i++) {
        char err[256] = "";
        gnutls_datum_t d = {0};
        if (load_pem(o->ca_files[i], &d, err, sizeof err) < 0) {
            weir_config_errors_add(errs, o->ca_pos, "tls.options.%s.clientAuth.caFiles: cannot load \"%s\": %s",
                                   o->name, shown(o->ca_files[i]), err);
            return -1;
        }
        int rc = gnutls_x509_trust_list_add_trust_mem(op->trust, &d, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
        gnutls_free(d.data);
        if (rc <= 0) {
            weir_config_errors_add(errs, o->ca_pos,
                                   "tls.options.%s.clientAuth.caFiles: no CA certificate in \"%s\"%s%s",
                                   o->name, shown(o->ca_files[i]), rc < 0 ? ": " : "",
                                   rc < 0 ? gnutls_strerror(rc) : "");
            return -1;
        }
    }
    return 0;
}

static int build_option(opt_t *op, const weir_tls_options_cfg_t *o, weir_config_errors_t *errs)
{
    strbuf_t b;
    priority_of(o, &b);
    const char *where = NULL;
    int rc = gnutls_priority_init2(&op->prio, b.s, &where, 0);
    if (rc < 0) {
        weir_config_errors_add(errs, o->pos, "tls.options.%s: GnuTLS refuses these settings (%s near \"%s\")",
                               o->name, gnutls_strerror(rc), where ? where : "");
        op->prio = NULL;
        return -1;
    }
    op->num_alpn = (unsigned)o->num_alpn;
    if (o->num_alpn) {
        op->alpn = calloc(o->num_alpn, sizeof *op->alpn);
        if (!op->alpn)
            return -1;
        for (size_t i = 0; i < o->num_alpn; i++)
            op->alpn[i] = (gnutls_datum_t){(unsigned char *)strdup(o->alpn[i]),
                                           (unsigned)strlen(o->alpn[i])};
    }
    op->auth = o->client_auth;
    op->sni_strict = o->sni_strict;
    op->tickets = !o->disable_session_tickets;
    return load_trust(op, o, errs);
}

/* ---- host → options ---- */

static bool router_on(const weir_router_cfg_t *r, const char *ep)
{
    if (r->num_entrypoints == 0)
        return true;
    for (size_t i = 0; i < r->num_entrypoints; i++)
        if (strcmp(r->entrypoints[i], ep) == 0)
            return true;
    return false;
}

static int option_index(const weir_config_t *cfg, const char *ref)
{
    if (!ref)
        return 0;
    size_t n = strcspn(ref, "@");
    for (size_t i = 0; i < cfg->num_tls_options; i++)
        if (strlen(cfg->tls_options[i].name) == n && strncmp(cfg->tls_options[i].name, ref, n) == 0)
            return (int)i;
    return 0;
}

static int claim(weir_tls_ctx_t *ctx, const char *host, size_t n, int opt)
{
    char h[WEIR_HOST_MAX];
    if (n == 0 || n >= sizeof h)
        return 0;
    memcpy(h, host, n);
    lower(h, n);
    if (h[n - 1] == '.')
        n--;
    int *old;
    if (map_put(&ctx->host_opts, h, n, opt, &old) < 0)
        return -1;
    if (old && *old != opt)
        *old = -1; /* routers disagree: the default options (Traefik logs it) */
    return 0;
}

static int map_hosts(weir_tls_ctx_t *ctx, const weir_config_t *cfg)
{
    for (size_t i = 0; i < cfg->num_routers; i++) {
        const weir_router_cfg_t *r = &cfg->routers[i];
        const weir_entrypoint_cfg_t *ep_tls = NULL;
        for (size_t e = 0; e < cfg->num_entrypoints && !r->tls; e++)
            if (cfg->entrypoints[e].http_tls && router_on(r, cfg->entrypoints[e].name))
                ep_tls = &cfg->entrypoints[e];
        if (!r->tls && !ep_tls)
            continue;
        int opt = r->tls ? (r->tls_options ? r->tls_options_index : 0)
                         : option_index(cfg, ep_tls->http_tls_options);
        if (opt < 0 || (size_t)opt >= ctx->num_opts)
            opt = 0;
        char *const *domains = r->tls ? r->tls_domains : ep_tls->http_tls_domains;
        size_t ndomains = r->tls ? r->num_tls_domains : ep_tls->num_http_tls_domains;
        if (ndomains) {
            for (size_t k = 0; k < ndomains; k++)
                if (claim(ctx, domains[k], strlen(domains[k]), opt) < 0)
                    return -1;
            continue;
        }
        weir_rule_t *rule = r->compiled;
        weir_rule_error_t rerr;
        bool own = false;
        if (!rule && r->rule) {
            if (weir_rule_compile(r->rule, WEIR_RULE_HTTP, &rule, &rerr) < 0)
                continue;
            own = true;
        }
        if (!rule)
            continue;
        weir_slice_t hosts[64];
        size_t nh = weir_rule_hosts(rule, hosts, 64);
        for (size_t k = 0; k < nh && k < 64; k++)
            if (claim(ctx, hosts[k].ptr, hosts[k].len, opt) < 0) {
                if (own)
                    weir_rule_free(rule);
                return -1;
            }
        if (own)
            weir_rule_free(rule);
    }
    return 0;
}

/* ---- upstream (client) credentials ---- */

static bool transport_used_by_https(const weir_config_t *cfg, size_t t)
{
    for (size_t i = 0; i < cfg->num_services; i++) {
        const weir_service_cfg_t *s = &cfg->services[i];
        size_t ti = s->transport_index >= 0 && (size_t)s->transport_index < cfg->num_transports
                        ? (size_t)s->transport_index
                        : 0;
        if (ti != t)
            continue;
        for (size_t k = 0; k < s->num_servers; k++)
            if (s->servers[k].scheme == WEIR_SCHEME_HTTPS)
                return true;
    }
    return false;
}

static int build_upstream(upstream_t *u, const weir_servers_transport_cfg_t *t,
                          weir_config_errors_t *errs)
{
    if (gnutls_certificate_allocate_credentials(&u->cred) < 0)
        return -1;
    u->insecure = t->insecure_skip_verify;
    u->server_name = t->server_name && *t->server_name ? strdup(t->server_name) : NULL;
    if (t->num_root_cas == 0) {
        if (!u->insecure && gnutls_certificate_set_x509_system_trust(u->cred) < 0)
            weir_config_errors_add(errs, t->pos, "serversTransport %s: cannot load the system's CA certificates",
                                   t->name);
    }
    for (size_t i = 0; i < t->num_root_cas; i++) {
        char err[256] = "";
        gnutls_datum_t d = {0};
        if (load_pem(t->root_cas[i], &d, err, sizeof err) < 0) {
            weir_config_errors_add(errs, t->root_cas_pos, "serversTransports.%s.rootCAs: cannot load \"%s\": %s",
                                   t->name, shown(t->root_cas[i]), err);
            return -1;
        }
        int rc = gnutls_certificate_set_x509_trust_mem(u->cred, &d, GNUTLS_X509_FMT_PEM);
        gnutls_free(d.data);
        if (rc <= 0) {
            weir_config_errors_add(errs, t->root_cas_pos, "serversTransports.%s.rootCAs: no CA certificate in \"%s\"",
                                   t->name, shown(t->root_cas[i]));
            return -1;
        }
    }
    if (t->client_cert_file && t->client_key_file) {
        weir_tls_cert_t c = {0};
        char what[320];
        snprintf(what, sizeof what, "serversTransports.%s.certificates[0]", t->name);
        if (load_pair(&c, t->client_cert_file, t->client_key_file, t->client_cert_pos,
                      t->client_cert_pos, what, errs) < 0)
            return -1;
        gnutls_certificate_free_credentials(c.cred); /* checked; now load into ours */
        gnutls_datum_t cd = {0}, kd = {0};
        char err[256];
        int rc = -1;
        if (load_pem(t->client_cert_file, &cd, err, sizeof err) == 0 &&
            load_pem(t->client_key_file, &kd, err, sizeof err) == 0)
            rc = gnutls_certificate_set_x509_key_mem2(u->cred, &cd, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
        gnutls_free(cd.data);
        gnutls_free(kd.data);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int build_upstreams(weir_tls_ctx_t *ctx, const weir_config_t *cfg, weir_config_errors_t *errs)
{
    ctx->num_up = cfg->num_transports;
    ctx->up = calloc(ctx->num_up ? ctx->num_up : 1, sizeof *ctx->up);
    if (!ctx->up)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < cfg->num_transports; i++)
        if (transport_used_by_https(cfg, i) && build_upstream(&ctx->up[i], &cfg->transports[i], errs) < 0)
            rc = -1;
    return rc;
}

/* One priority cache for every client session, made once. */
static gnutls_priority_t client_prio;
static int client_prio_ok;
static pthread_once_t client_prio_once = PTHREAD_ONCE_INIT;

static void client_prio_init(void)
{
    client_prio_ok = gnutls_priority_init2(&client_prio, "NORMAL", NULL, 0) >= 0;
}

int weir_tls_client_session_new(const weir_tls_ctx_t *ctx, int transport, const char *host,
                                gnutls_session_t *out)
{
    if (transport < 0 || (size_t)transport >= ctx->num_up || !ctx->up[transport].cred)
        return -1;
    const upstream_t *u = &ctx->up[transport];
    pthread_once(&client_prio_once, client_prio_init);
    if (!client_prio_ok)
        return -1;
    gnutls_session_t s;
    if (gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0)
        return -1;
    const char *name = u->server_name ? u->server_name : host;
    bool ip = strchr(name, ':') || strspn(name, "0123456789.") == strlen(name);
    static const gnutls_datum_t http11 = {(unsigned char *)"http/1.1", 8};
    if (gnutls_priority_set(s, client_prio) < 0 ||
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, u->cred) < 0 ||
        (!ip && gnutls_server_name_set(s, GNUTLS_NAME_DNS, name, strlen(name)) < 0) ||
        gnutls_alpn_set_protocols(s, &http11, 1, 0) < 0) {
        gnutls_deinit(s);
        return -1;
    }
    if (!u->insecure)
        gnutls_session_set_verify_cert(s, name, 0);
    *out = s;
    return 0;
}

/* ---- context ---- */

static void ctx_free(weir_tls_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->num_certs; i++)
        if (ctx->certs[i].cred)
            gnutls_certificate_free_credentials(ctx->certs[i].cred);
    free(ctx->certs);
    if (ctx->def.cred)
        gnutls_certificate_free_credentials(ctx->def.cred);
    for (size_t i = 0; i < ctx->num_opts; i++) {
        opt_t *o = &ctx->opts[i];
        if (o->prio)
            gnutls_priority_deinit(o->prio);
        for (unsigned k = 0; k < o->num_alpn; k++)
            free(o->alpn[k].data);
        free(o->alpn);
        if (o->trust)
            gnutls_x509_trust_list_deinit(o->trust, 1);
    }
    free(ctx->opts);
    for (size_t i = 0; i < ctx->num_up; i++) {
        if (ctx->up[i].cred)
            gnutls_certificate_free_credentials(ctx->up[i].cred);
        free(ctx->up[i].server_name);
    }
    free(ctx->up);
    map_free(&ctx->cert_names);
    map_free(&ctx->host_opts);
    free(ctx);
}

static bool in_default_store(const weir_tls_cert_cfg_t *c)
{
    if (c->num_stores == 0)
        return true;
    for (size_t i = 0; i < c->num_stores; i++)
        if (strcmp(c->stores[i], "default") == 0)
            return true;
    return false;
}

weir_tls_ctx_t *weir_tls_ctx_build(const weir_config_t *cfg, const weir_tls_ctx_t *prev,
                                   weir_config_errors_t *errs)
{
    (void)prev; /* the generated default certificate is process-wide */
    weir_tls_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    atomic_init(&ctx->refs, 1);
    size_t before = errs->count;
    ctx->certs = calloc(cfg->num_tls_certs + 1, sizeof *ctx->certs);
    if (!ctx->certs)
        goto fail;
    for (size_t i = 0; i < cfg->num_tls_certs; i++) {
        const weir_tls_cert_cfg_t *cc = &cfg->tls_certs[i];
        char what[48];
        snprintf(what, sizeof what, "tls.certificates[%zu]", i);
        if (load_pair(&ctx->certs[ctx->num_certs], cc->cert_file, cc->key_file, cc->cert_pos,
                      cc->key_pos, what, errs) < 0)
            continue;
        if (in_default_store(cc) && index_names(ctx, &ctx->certs[ctx->num_certs], (int)ctx->num_certs) < 0)
            goto fail;
        ctx->num_certs++;
    }
    const weir_tls_store_cfg_t *store = NULL;
    for (size_t i = 0; i < cfg->num_tls_stores; i++)
        if (strcmp(cfg->tls_stores[i].name, "default") == 0)
            store = &cfg->tls_stores[i];
    if (store && store->default_cert_file && store->default_key_file) {
        load_pair(&ctx->def, store->default_cert_file, store->default_key_file, store->default_pos,
                  store->default_pos, "tls.stores.default.defaultCertificate", errs);
    } else if (generated_default(&ctx->def) < 0) {
        weir_config_errors_add(errs, (weir_pos_t){0}, "cannot generate the default certificate");
    }
    ctx->num_opts = cfg->num_tls_options ? cfg->num_tls_options : 1;
    ctx->opts = calloc(ctx->num_opts, sizeof *ctx->opts);
    if (!ctx->opts)
        goto fail;
    if (cfg->num_tls_options == 0) {
        weir_tls_options_cfg_t def = {.name = "default", .min_version = 0x0303};
        char *alpn[] = {"h2", "http/1.1", "acme-tls/1"};
        def.alpn = alpn;
        def.num_alpn = 3;
        build_option(&ctx->opts[0], &def, errs);
    } else {
        for (size_t i = 0; i < cfg->num_tls_options; i++)
            build_option(&ctx->opts[i], &cfg->tls_options[i], errs);
    }
    if (build_upstreams(ctx, cfg, errs) < 0 && errs->count == before)
        goto fail;
    if (errs->count > before)
        goto fail;
    if (map_hosts(ctx, cfg) < 0)
        goto fail;
    return ctx;
fail:
    if (errs->count == before)
        weir_config_errors_add(errs, (weir_pos_t){0}, "TLS: out of memory");
    ctx_free(ctx);
    return NULL;
}

void weir_tls_ctx_ref(weir_tls_ctx_t *ctx)
{
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

void weir_tls_ctx_unref(weir_tls_ctx_t *ctx)
{
    if (ctx && atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) == 1)
        ctx_free(ctx);
}

const weir_tls_cert_t *weir_tls_ctx_find_cert(const weir_tls_ctx_t *ctx, weir_slice_t sni)
{
    if (sni.len == 0)
        return NULL;
    int i = map_lookup_name(&ctx->cert_names, sni, -1);
    return i >= 0 ? &ctx->certs[i] : NULL;
}

const weir_tls_cert_t *weir_tls_ctx_default_cert(const weir_tls_ctx_t *ctx)
{
    return &ctx->def;
}

int weir_tls_ctx_options_for(const weir_tls_ctx_t *ctx, weir_slice_t name)
{
    int i = name.len ? map_lookup_name(&ctx->host_opts, name, 0) : 0;
    return i < 0 ? 0 : i;
}

/* ---- sessions ---- */

/* Verifies a client certificate during the handshake (clientAuth with
 * verification): a chain that does not lead to a configured CA fails the
 * handshake with an alert. */
static int verify_client(gnutls_session_t s)
{
    const opt_t *op = gnutls_session_get_ptr(s);
    unsigned n = 0;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(s, &n);
    if (!raw || n == 0)
        return op->auth == WEIR_CLIENT_AUTH_REQUIRE_AND_VERIFY ? -1 : 0;
    if (!op->trust)
        return -1;
    if (n > 16)
        return -1;
    gnutls_x509_crt_t chain[16];
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
        gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID,
                                         (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0};
        if (gnutls_x509_trust_list_verify_crt2(op->trust, chain, n, &purpose, 1, 0, &status, NULL) < 0 ||
            status != 0)
            rc = -1;
    }
    for (unsigned i = 0; i < got; i++)
        gnutls_x509_crt_deinit(chain[i]);
    return rc;
}

int weir_tls_session_new(const weir_tls_ctx_t *ctx, int opt, const weir_tls_cert_t *cert,
                         gnutls_session_t *out)
{
    if (opt < 0 || (size_t)opt >= ctx->num_opts)
        opt = 0;
    const opt_t *op = &ctx->opts[opt];
    if (!cert) {
        if (op->sni_strict)
            return -1; /* sniStrict: no certificate for this name, no handshake */
        cert = &ctx->def;
    }
    if (!cert->cred || !op->prio)
        return -1;
    gnutls_session_t s;
    if (gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0)
        return -1;
    if (gnutls_priority_set(s, op->prio) < 0 ||
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cert->cred) < 0) {
        gnutls_deinit(s);
        return -1;
    }
    if (op->num_alpn)
        gnutls_alpn_set_protocols(s, op->alpn, op->num_alpn, GNUTLS_ALPN_SERVER_PRECEDENCE);
    if (op->tickets)
        gnutls_session_ticket_enable_server(s, &ticket_key);
    gnutls_session_set_ptr(s, (void *)op);
    switch (op->auth) {
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
    default:
        break;
    }
    *out = s;
    return 0;
}
