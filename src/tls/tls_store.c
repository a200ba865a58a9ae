/* The certificate store: certificate + key pairs loaded from files or
 * inline PEM, the SNI index of their DNS names, and the generated default
 * certificate. */
#include <errno.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tls/tls_internal.h"

/* ---- name map ---- */

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static int map_grow(tls_map_t *m)
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
        if (!m->keys[i]) continue;
        size_t j = hash_name(m->keys[i], strlen(m->keys[i])) & (cap - 1);
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
static long map_find(const tls_map_t *m, const char *key, size_t n)
{
    if (!m->mask) return -1;
    size_t j = hash_name(key, n) & m->mask;
    while (m->keys[j]) {
        if (strlen(m->keys[j]) == n && memcmp(m->keys[j], key, n) == 0) return (long)j;
        j = (j + 1) & m->mask;
    }
    return -1;
}

int tls_map_put(tls_map_t *m, const char *key, size_t n, int val, int **existing)
{
    *existing = NULL;
    long at = map_find(m, key, n);
    if (at >= 0) {
        *existing = &m->vals[at];
        return 0;
    }
    if ((m->count + 1) * 2 > (m->mask ? m->mask + 1 : 0) && map_grow(m) < 0) return -1;
    char *k = strndup(key, n);
    if (!k) return -1;
    size_t j = hash_name(key, n) & m->mask;
    while (m->keys[j])
        j = (j + 1) & m->mask;
    m->keys[j] = k;
    m->vals[j] = val;
    m->count++;
    return 0;
}

int tls_map_lookup_name(const tls_map_t *m, weir_slice_t name, int miss)
{
    if (name.len == 0 || memchr(name.ptr, '*', name.len)) return miss;
    long at = map_find(m, name.ptr, name.len);
    if (at >= 0) return m->vals[at];
    /* "*.parent" covers exactly one non-empty label before ".parent" */
    const char *dot = memchr(name.ptr, '.', name.len);
    if (!dot || dot == name.ptr || dot == name.ptr + name.len - 1) return miss;
    size_t plen = name.len - (size_t)(dot - name.ptr);
    char wild[WEIR_HOST_MAX + 2];
    if (plen + 1 > sizeof wild) return miss;
    wild[0] = '*';
    memcpy(wild + 1, dot, plen);
    at = map_find(m, wild, plen + 1);
    return at >= 0 ? m->vals[at] : miss;
}

void tls_map_free(tls_map_t *m)
{
    for (size_t i = 0; m->mask && i <= m->mask; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- loading ---- */

static bool is_inline_pem(const char *v)
{
    return strncmp(v, "-----BEGIN", 10) == 0;
}

const char *tls_shown(const char *value)
{
    return is_inline_pem(value) ? "(inline PEM)" : value;
}

int tls_load_pem(const char *value, gnutls_datum_t *out, char *err, size_t cap)
{
    out->data = NULL;
    out->size = 0;
    if (is_inline_pem(value)) {
        out->data = (unsigned char *)gnutls_strdup(value);
        out->size = (unsigned)strlen(value);
        if (!out->data) snprintf(err, cap, "out of memory");
        return out->data ? 0 : -1;
    }
    errno = 0;
    int rc = gnutls_load_file(value, out);
    if (rc < 0) {
        /* gnutls_load_file says only "error while reading file": the
         * system's reason (no such file, permission) is more useful */
        snprintf(err, cap, "%s", errno ? strerror(errno) : gnutls_strerror(rc));
        return -1;
    }
    return 0;
}

static void free_crts(gnutls_x509_crt_t *list, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(list[i]);
    gnutls_free(list);
}

/* Parses a PEM chain (leaf first). Returns 0, or a GnuTLS error. */
static int parse_chain(const gnutls_datum_t *pem, gnutls_x509_crt_t **list, unsigned *n)
{
    *list = NULL;
    *n = 0;
    int rc = gnutls_x509_crt_list_import2(list, n, pem, GNUTLS_X509_FMT_PEM, 0);
    if (rc >= 0 && *n == 0) {
        gnutls_free(*list);
        *list = NULL;
        rc = GNUTLS_E_NO_CERTIFICATE_FOUND;
    }
    return rc < 0 ? rc : 0;
}

/* Whether key is the private half of the leaf's public key. */
static bool key_matches(gnutls_x509_crt_t leaf, gnutls_x509_privkey_t key)
{
    unsigned char a[64], b[64];
    size_t na = sizeof a, nb = sizeof b;
    if (gnutls_x509_crt_get_key_id(leaf, GNUTLS_KEYID_USE_SHA256, a, &na) < 0 ||
        gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, b, &nb) < 0)
        return false;
    return na == nb && memcmp(a, b, na) == 0;
}

/* Reads and parses both halves; errors name the key that failed. */
static int read_pair(const char *certv, const char *keyv, weir_pos_t cpos, weir_pos_t kpos,
                     const char *what, weir_config_errors_t *errs, gnutls_x509_crt_t **list,
                     unsigned *n, gnutls_x509_privkey_t *key)
{
    char err[256] = "";
    gnutls_datum_t d;
    if (tls_load_pem(certv, &d, err, sizeof err) < 0) {
        weir_config_errors_add(errs, cpos, "%s.certFile: cannot load certificate \"%s\": %s", what,
                               tls_shown(certv), err);
        return -1;
    }
    int rc = parse_chain(&d, list, n);
    gnutls_free(d.data);
    if (rc < 0) {
        weir_config_errors_add(errs, cpos, "%s.certFile: cannot load certificate \"%s\": %s", what,
                               tls_shown(certv), gnutls_strerror(rc));
        return -1;
    }
    if (tls_load_pem(keyv, &d, err, sizeof err) < 0) {
        weir_config_errors_add(errs, kpos, "%s.keyFile: cannot load key \"%s\": %s", what,
                               tls_shown(keyv), err);
        free_crts(*list, *n);
        return -1;
    }
    rc = gnutls_x509_privkey_init(key);
    if (rc >= 0) {
        rc = gnutls_x509_privkey_import2(*key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
        if (rc < 0) gnutls_x509_privkey_deinit(*key);
    }
    gnutls_free(d.data);
    if (rc < 0) {
        weir_config_errors_add(
            errs, kpos, "%s.keyFile: cannot load key \"%s\": %s", what, tls_shown(keyv),
            rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE || rc == GNUTLS_E_BASE64_DECODING_ERROR
                ? "no PEM private key found"
                : gnutls_strerror(rc));
        free_crts(*list, *n);
        return -1;
    }
    return 0;
}

int tls_cert_add(gnutls_certificate_credentials_t cred, const char *certv, const char *keyv,
                 weir_pos_t cpos, weir_pos_t kpos, const char *what, weir_config_errors_t *errs)
{
    gnutls_x509_crt_t *list;
    unsigned n;
    gnutls_x509_privkey_t key;
    if (read_pair(certv, keyv, cpos, kpos, what, errs, &list, &n, &key) < 0) return -1;
    int rc = 0;
    if (!key_matches(list[0], key)) {
        weir_config_errors_add(errs, kpos,
                               "%s.keyFile: key \"%s\" does not match certificate \"%s\"", what,
                               tls_shown(keyv), tls_shown(certv));
        rc = -1;
    } else {
        int g = gnutls_certificate_set_x509_key(cred, list, n, key); /* copies */
        if (g < 0) {
            weir_config_errors_add(errs, cpos,
                                   "%s.certFile: cannot use certificate \"%s\" with key \"%s\": %s",
                                   what, tls_shown(certv), tls_shown(keyv), gnutls_strerror(g));
            rc = -1;
        }
    }
    free_crts(list, n);
    gnutls_x509_privkey_deinit(key);
    return rc;
}

int tls_cert_load(weir_tls_cert_t *c, const char *certv, const char *keyv, weir_pos_t cpos,
                  weir_pos_t kpos, const char *what, weir_config_errors_t *errs)
{
    if (gnutls_certificate_allocate_credentials(&c->cred) < 0) {
        c->cred = NULL;
        weir_config_errors_add(errs, cpos, "%s: out of memory", what);
        return -1;
    }
    if (tls_cert_add(c->cred, certv, keyv, cpos, kpos, what, errs) < 0) {
        tls_cert_free(c);
        return -1;
    }
    return 0;
}

void tls_cert_free(weir_tls_cert_t *c)
{
    if (c->cred) gnutls_certificate_free_credentials(c->cred);
    c->cred = NULL;
}

/* ---- SNI index ---- */

/* Lower-cases name[0..n) in place, drops one trailing dot, adds it. */
static int index_name(tls_map_t *names, char *name, size_t n, int idx)
{
    for (size_t i = 0; i < n; i++)
        if (name[i] >= 'A' && name[i] <= 'Z') name[i] = (char)(name[i] + 32);
    if (n && name[n - 1] == '.') n--;
    if (n == 0) return 0;
    int *old;
    return tls_map_put(names, name, n, idx, &old);
}

/* The DNS SANs of crt; *found tells whether it has any. */
static int index_sans(tls_map_t *names, gnutls_x509_crt_t crt, int idx, bool *found)
{
    *found = false;
    for (unsigned i = 0;; i++) {
        char name[WEIR_HOST_MAX];
        size_t size = sizeof name;
        int type = gnutls_x509_crt_get_subject_alt_name(crt, i, name, &size, NULL);
        if (type == GNUTLS_E_SHORT_MEMORY_BUFFER)
            continue;           /* longer than any host name weir matches */
        if (type < 0) return 0; /* the end (or an undecodable extension) */
        if (type != GNUTLS_SAN_DNSNAME || size >= sizeof name) continue;
        *found = true;
        if (index_name(names, name, size, idx) < 0) return -1;
    }
}

int tls_cert_index(tls_map_t *names, const weir_tls_cert_t *c, int idx)
{
    gnutls_x509_crt_t *crts;
    unsigned n;
    if (gnutls_certificate_get_x509_crt(c->cred, 0, &crts, &n) < 0) return 0;
    bool found;
    int rc = n ? index_sans(names, crts[0], idx, &found) : 0;
    if (rc == 0 && n && !found) {
        char cn[WEIR_HOST_MAX];
        size_t size = sizeof cn;
        if (gnutls_x509_crt_get_dn_by_oid(crts[0], GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &size) >=
                0 &&
            size < sizeof cn)
            rc = index_name(names, cn, size, idx);
    }
    free_crts(crts, n);
    return rc;
}

/* ---- the generated default certificate ---- */

static int dup_datum(gnutls_datum_t *dst, const gnutls_datum_t *src)
{
    dst->data = gnutls_malloc(src->size);
    dst->size = src->size;
    if (!dst->data) return -1;
    memcpy(dst->data, src->data, src->size);
    return 0;
}

/* Traefik's name: the hex of 32 random bytes, split in two labels. */
static void default_name(char *out, size_t cap)
{
    unsigned char rnd[32];
    gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof rnd);
    size_t p = 0;
    for (size_t i = 0; i < sizeof rnd; i++) {
        p += (size_t)snprintf(out + p, cap - p, "%02x", rnd[i]);
        if (i == 15) out[p++] = '.';
    }
    snprintf(out + p, cap - p, ".traefik.default");
}

static int fill_certificate(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
    static const char cn[] = "TRAEFIK DEFAULT CERT";
    unsigned char serial[16];
    gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial);
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x01); /* positive, 16 bytes */
    char san[96];
    default_name(san, sizeof san);
    time_t now = time(NULL);
    if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
        gnutls_x509_crt_set_serial(crt, serial, sizeof serial) < 0 ||
        gnutls_x509_crt_set_activation_time(crt, now) < 0 ||
        gnutls_x509_crt_set_expiration_time(crt, now + 365 * 24 * 3600) < 0 ||
        gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, sizeof cn - 1) < 0 ||
        gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, san, (unsigned)strlen(san),
                                             GNUTLS_FSAN_SET) < 0 ||
        gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
        gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
                                               GNUTLS_KEY_KEY_AGREEMENT) < 0 ||
        gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0 ||
        gnutls_x509_crt_set_key(crt, key) < 0)
        return -1;
    return gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0 ? -1 : 0;
}

int tls_generated_make(tls_generated_t *g, const tls_generated_t *from)
{
    memset(g, 0, sizeof *g);
    if (from && from->crt.data) {
        if (dup_datum(&g->crt, &from->crt) < 0 || dup_datum(&g->key, &from->key) < 0) {
            tls_generated_free(g);
            return -1;
        }
        return 0;
    }
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    int rc = -1;
    if (gnutls_x509_privkey_init(&key) < 0) {
        key = NULL;
        goto out;
    }
    if (gnutls_x509_crt_init(&crt) < 0) {
        crt = NULL;
        goto out;
    }
    if (gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
        fill_certificate(crt, key) < 0 ||
        gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &g->crt) < 0 ||
        gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &g->key) < 0)
        goto out;
    rc = 0;
out:
    if (crt) gnutls_x509_crt_deinit(crt);
    if (key) gnutls_x509_privkey_deinit(key);
    if (rc < 0) tls_generated_free(g);
    return rc;
}

int tls_generated_cert(weir_tls_cert_t *c, const tls_generated_t *g)
{
    if (gnutls_certificate_allocate_credentials(&c->cred) < 0) {
        c->cred = NULL;
        return -1;
    }
    if (gnutls_certificate_set_x509_key_mem2(c->cred, &g->crt, &g->key, GNUTLS_X509_FMT_PEM, NULL,
                                             0) < 0) {
        tls_cert_free(c);
        return -1;
    }
    return 0;
}

void tls_generated_free(tls_generated_t *g)
{
    if (g->key.data) gnutls_memset(g->key.data, 0, g->key.size);
    gnutls_free(g->key.data);
    gnutls_free(g->crt.data);
    memset(g, 0, sizeof *g);
}
