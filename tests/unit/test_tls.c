/* Unit tests for the TLS context (src/tls/tls.c, tls_store.c,
 * tls_options.c): certificates and keys are made at test time with GnuTLS
 * into a temporary directory (RSA and ECDSA servers with exact and
 * wildcard SANs, a CN-only one, a CA with a client certificate, a rogue
 * client certificate); contexts are built from configuration models filled
 * by hand. Handshakes run in memory: a GnuTLS client session against a
 * server session from weir_tls_session_new over a non-blocking socketpair.
 *
 * The tests include tls_internal.h to read the credentials a context holds
 * (which certificate it serves). */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "tls/tls.h"
#include "tls/tls_internal.h"

/* ---- making keys and certificates ---- */

static char dir[64];

typedef struct {
    gnutls_x509_crt_t crt;
    gnutls_x509_privkey_t key;
} pki_t;

static pki_t ca, rsa, ec, cn_only, client, rogue;

static gnutls_x509_privkey_t new_key(gnutls_pk_algorithm_t pk, unsigned bits)
{
    gnutls_x509_privkey_t k;
    assert_int_equal(gnutls_x509_privkey_init(&k), 0);
    assert_int_equal(gnutls_x509_privkey_generate(k, pk, bits, 0), 0);
    return k;
}

/* A certificate for key: CN, DNS SANs (NULL-terminated, may be NULL),
 * signed by issuer (NULL: self-signed), with a key purpose (NULL: none). */
static void make_cert(pki_t *p, gnutls_x509_privkey_t key, const char *cn, const char *const *sans,
                      bool is_ca, const pki_t *issuer, const char *purpose)
{
    static unsigned char serial = 1;
    gnutls_x509_crt_t c;
    time_t now = time(NULL);
    unsigned char sn[2] = {0x10, serial++};
    assert_int_equal(gnutls_x509_crt_init(&c), 0);
    assert_int_equal(gnutls_x509_crt_set_version(c, 3), 0);
    assert_int_equal(gnutls_x509_crt_set_serial(c, sn, sizeof sn), 0);
    assert_int_equal(gnutls_x509_crt_set_activation_time(c, now - 3600), 0);
    assert_int_equal(gnutls_x509_crt_set_expiration_time(c, now + 86400), 0);
    assert_int_equal(
        gnutls_x509_crt_set_dn_by_oid(c, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn)), 0);
    for (size_t i = 0; sans && sans[i]; i++)
        assert_int_equal(gnutls_x509_crt_set_subject_alt_name(c, GNUTLS_SAN_DNSNAME, sans[i],
                                                              strlen(sans[i]), GNUTLS_FSAN_APPEND),
                         0);
    assert_int_equal(gnutls_x509_crt_set_basic_constraints(c, is_ca, -1), 0);
    assert_int_equal(gnutls_x509_crt_set_key_usage(
                         c, is_ca ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN
                                  : GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT),
                     0);
    if (purpose) assert_int_equal(gnutls_x509_crt_set_key_purpose_oid(c, purpose, 0), 0);
    assert_int_equal(gnutls_x509_crt_set_key(c, key), 0);
    if (issuer) {
        assert_int_equal(gnutls_x509_crt_sign2(c, issuer->crt, issuer->key, GNUTLS_DIG_SHA256, 0),
                         0);
    } else {
        assert_int_equal(gnutls_x509_crt_sign2(c, c, key, GNUTLS_DIG_SHA256, 0), 0);
    }
    p->crt = c;
    p->key = key;
}

static char *path_of(const char *name)
{
    static char bufs[16][128];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, 128, "%s/%s", dir, name);
    return b;
}

static void write_file(const char *name, const void *data, size_t len)
{
    FILE *f = fopen(path_of(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_pki(const pki_t *p, const char *base)
{
    gnutls_datum_t d;
    char name[64];
    assert_int_equal(gnutls_x509_crt_export2(p->crt, GNUTLS_X509_FMT_PEM, &d), 0);
    snprintf(name, sizeof name, "%s.pem", base);
    write_file(name, d.data, d.size);
    gnutls_free(d.data);
    assert_int_equal(gnutls_x509_privkey_export2(p->key, GNUTLS_X509_FMT_PEM, &d), 0);
    snprintf(name, sizeof name, "%s.key", base);
    write_file(name, d.data, d.size);
    gnutls_free(d.data);
}

/* The contents of a file of the temporary directory (inline PEM tests). */
static char *read_back(const char *name)
{
    gnutls_datum_t d;
    assert_int_equal(gnutls_load_file(path_of(name), &d), 0);
    char *s = strndup((const char *)d.data, d.size);
    gnutls_free(d.data);
    return s;
}

static int setup_pki(void **state)
{
    if (weir_tls_global_init() < 0) return -1;
    snprintf(dir, sizeof dir, "/tmp/weir-tls-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    static const char *const rsa_sans[] = {"rsa.example.com", "MiXeD.Example.com",
                                           "*.wild.example.com", NULL};
    static const char *const ec_sans[] = {"ecdsa.example.com", "*.example.org", NULL};
    make_cert(&ca, new_key(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1)),
              "weir test CA", NULL, true, NULL, NULL);
    make_cert(&rsa, new_key(GNUTLS_PK_RSA, 2048), "rsa.example.com", rsa_sans, false, &ca,
              GNUTLS_KP_TLS_WWW_SERVER);
    make_cert(&ec, new_key(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1)),
              "ecdsa.example.com", ec_sans, false, &ca, GNUTLS_KP_TLS_WWW_SERVER);
    make_cert(&cn_only, new_key(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1)),
              "CN-Only.Example.net", NULL, false, &ca, NULL);
    make_cert(&client, new_key(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1)),
              "client one", NULL, false, &ca, GNUTLS_KP_TLS_WWW_CLIENT);
    make_cert(&rogue, new_key(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1)),
              "rogue", NULL, false, NULL, GNUTLS_KP_TLS_WWW_CLIENT);
    write_pki(&ca, "ca");
    write_pki(&rsa, "rsa");
    write_pki(&ec, "ec");
    write_pki(&cn_only, "cn");
    write_pki(&client, "client");
    write_pki(&rogue, "rogue");
    write_file("garbage.pem",
               "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
               "-----END CERTIFICATE-----\n",
               70);
    write_file("empty.pem", "", 0);
    return 0;
}

static void free_pki(pki_t *p)
{
    gnutls_x509_crt_deinit(p->crt);
    gnutls_x509_privkey_deinit(p->key);
}

static int teardown_pki(void **state)
{
    static const char *const files[] = {
        "ca.pem", "ca.key",     "rsa.pem",    "rsa.key",   "ec.pem",    "ec.key",      "cn.pem",
        "cn.key", "client.pem", "client.key", "rogue.pem", "rogue.key", "garbage.pem", "empty.pem"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(path_of(files[i]));
    rmdir(dir);
    free_pki(&ca);
    free_pki(&rsa);
    free_pki(&ec);
    free_pki(&cn_only);
    free_pki(&client);
    free_pki(&rogue);
    weir_tls_global_deinit();
    return 0;
}

/* ---- configuration models ---- */

static weir_pos_t P(int line, int col)
{
    return (weir_pos_t){"dyn.yml", line, col};
}

static char *default_alpn[] = {"h2", "http/1.1", "acme-tls/1"};

static weir_tls_options_cfg_t option(const char *name)
{
    weir_tls_options_cfg_t o = {0};
    o.name = (char *)name;
    o.pos = P(30, 5);
    o.min_version = 0x0303;
    o.alpn = default_alpn;
    o.num_alpn = 3;
    return o;
}

static weir_tls_cert_cfg_t cert_cfg(const char *base, int line)
{
    char c[64], k[64];
    snprintf(c, sizeof c, "%s.pem", base);
    snprintf(k, sizeof k, "%s.key", base);
    weir_tls_cert_cfg_t t = {0};
    t.cert_file = strdup(path_of(c));
    t.key_file = strdup(path_of(k));
    t.pos = P(line, 7);
    t.cert_pos = P(line, 17);
    t.key_pos = P(line + 1, 17);
    return t;
}

static void free_cert_cfgs(weir_tls_cert_cfg_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].cert_file);
        free(c[i].key_file);
    }
}

static weir_tls_ctx_t *build_ok(const weir_config_t *cfg, const weir_tls_ctx_t *prev)
{
    weir_config_errors_t errs = {0};
    weir_tls_ctx_t *ctx = weir_tls_ctx_build(cfg, prev, &errs);
    for (size_t i = 0; i < errs.count; i++)
        print_error("unexpected error: %s\n", errs.items[i].msg);
    assert_int_equal(errs.count, 0);
    assert_non_null(ctx);
    weir_config_errors_free(&errs);
    return ctx;
}

/* Builds cfg expecting failure with exactly one error at pos whose message
 * contains want. */
static void build_fails(const weir_config_t *cfg, weir_pos_t pos, const char *want)
{
    weir_config_errors_t errs = {0};
    weir_tls_ctx_t *ctx = weir_tls_ctx_build(cfg, NULL, &errs);
    assert_null(ctx);
    for (size_t i = 0; i < errs.count; i++)
        print_message("error: %s\n", errs.items[i].msg);
    assert_int_equal(errs.count, 1);
    const weir_config_error_t *e = &errs.items[0];
    assert_string_equal(e->pos.file, pos.file);
    assert_ptr_not_equal(e->pos.file, pos.file); /* errs owns its copy */
    assert_int_equal(e->pos.line, pos.line);
    assert_int_equal(e->pos.col, pos.col);
    if (!strstr(e->msg, want)) fail_msg("error \"%s\" lacks \"%s\"", e->msg, want);
    weir_config_errors_free(&errs);
}

/* The leaf certificate a weir_tls_cert_t serves. */
static gnutls_x509_crt_t leaf_of(const weir_tls_cert_t *c)
{
    gnutls_datum_t der;
    gnutls_x509_crt_t crt;
    assert_int_equal(gnutls_certificate_get_crt_raw(c->cred, 0, 0, &der), 0);
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER), 0);
    return crt;
}

/* SAN number i (DNS) of crt into buf; "" when none. */
static const char *san_of(gnutls_x509_crt_t crt, unsigned i, char *buf, size_t cap)
{
    size_t size = cap;
    if (gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &size, NULL) != GNUTLS_SAN_DNSNAME)
        buf[0] = 0;
    return buf;
}

static bool serves(const weir_tls_cert_t *c, const char *first_san)
{
    if (!c) return false;
    gnutls_x509_crt_t crt = leaf_of(c);
    char san[256];
    bool ok = strcmp(san_of(crt, 0, san, sizeof san), first_san) == 0;
    gnutls_x509_crt_deinit(crt);
    return ok;
}

/* ---- certificate store ---- */

static void test_find_cert(void **state)
{
    weir_tls_cert_cfg_t certs[4] = {cert_cfg("rsa", 10), cert_cfg("ec", 13), cert_cfg("cn", 16),
                                    cert_cfg("client", 19)};
    char *other_store[] = {"other"};
    certs[3].stores = other_store; /* not in the default store: never found by name */
    certs[3].num_stores = 1;
    weir_config_t cfg = {.tls_certs = certs, .num_tls_certs = 4};
    weir_tls_ctx_t *ctx = build_ok(&cfg, NULL);
    static const struct {
        const char *sni, *want; /* want: first SAN of the certificate, NULL = none */
    } rows[] = {
        {"rsa.example.com", "rsa.example.com"},
        {"mixed.example.com", "rsa.example.com"}, /* SANs are indexed lower-case */
        {"a.wild.example.com", "rsa.example.com"},
        {"b.a.wild.example.com", NULL}, /* a wildcard covers one label */
        {"wild.example.com", NULL},
        {"ecdsa.example.com", "ecdsa.example.com"},
        {"www.example.org", "ecdsa.example.com"},
        {"example.org", NULL},
        {"cn-only.example.net", "CN-only"}, /* no SAN: the CN (checked below) */
        {"client one", NULL},
        {"*.example.org", NULL}, /* a pattern is no server name */
        {"unknown.test", NULL},
        {"", NULL},
    };
    const weir_tls_cert_t *cn = weir_tls_ctx_find_cert(ctx, WEIR_SLICE_LIT("cn-only.example.net"));
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const weir_tls_cert_t *c = weir_tls_ctx_find_cert(ctx, weir_slice_cstr(rows[i].sni));
        if (!rows[i].want) {
            if (c) fail_msg("\"%s\" found a certificate", rows[i].sni);
        } else if (strcmp(rows[i].want, "CN-only") == 0) {
            assert_non_null(c);
        } else if (!serves(c, rows[i].want)) {
            fail_msg("\"%s\" does not find %s", rows[i].sni, rows[i].want);
        }
    }
    assert_non_null(cn);
    assert_ptr_not_equal(cn, weir_tls_ctx_find_cert(ctx, WEIR_SLICE_LIT("rsa.example.com")));
    assert_ptr_not_equal(cn, weir_tls_ctx_find_cert(ctx, WEIR_SLICE_LIT("ecdsa.example.com")));
    /* no certificate for a name: the default one */
    assert_non_null(weir_tls_ctx_default_cert(ctx));
    weir_tls_ctx_unref(ctx);
    free_cert_cfgs(certs, 4);
}

/* The first certificate listed keeps a name two certificates claim. */
static void test_find_cert_first_wins(void **state)
{
    weir_tls_cert_cfg_t certs[2] = {cert_cfg("ec", 10), cert_cfg("ec", 13)};
    free(certs[1].cert_file);
    free(certs[1].key_file);
    certs[1] = cert_cfg("rsa", 13);
    weir_config_t cfg = {.tls_certs = certs, .num_tls_certs = 2};
    weir_tls_ctx_t *ctx = build_ok(&cfg, NULL);
    assert_true(serves(weir_tls_ctx_find_cert(ctx, WEIR_SLICE_LIT("ecdsa.example.com")),
                       "ecdsa.example.com"));
    weir_tls_ctx_unref(ctx);
    free_cert_cfgs(certs, 2);
}

static void test_inline_pem(void **state)
{
    weir_tls_cert_cfg_t c = {0};
    c.cert_file = read_back("ec.pem");
    c.key_file = read_back("ec.key");
    weir_config_t cfg = {.tls_certs = &c, .num_tls_certs = 1};
    weir_tls_ctx_t *ctx = build_ok(&cfg, NULL);
    assert_true(
        serves(weir_tls_ctx_find_cert(ctx, WEIR_SLICE_LIT("x.example.org")), "ecdsa.example.com"));
    weir_tls_ctx_unref(ctx);
    /* a broken inline certificate is named as such, not printed */
    free(c.cert_file);
    c.cert_file = strdup("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    c.cert_pos = P(4, 9);
    build_fails(&cfg, P(4, 9),
                "tls.certificates[0].certFile: cannot load certificate \"(inline PEM)\"");
    free(c.cert_file);
    free(c.key_file);
}

static void check_generated(const weir_tls_cert_t *def, char *san, size_t cap)
{
    gnutls_x509_crt_t crt = leaf_of(def);
    char cn[64];
    size_t n = sizeof cn;
    assert_int_equal(gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &n),
                     0);
    assert_string_equal(cn, "TRAEFIK DEFAULT CERT");
    san_of(crt, 0, san, cap);
    /* <32 hex>.<32 hex>.traefik.default, as Traefik's */
    assert_int_equal(strlen(san), 32 + 1 + 32 + strlen(".traefik.default"));
    assert_int_equal(san[32], '.');
    assert_string_equal(san + 65, ".traefik.default");
    for (int i = 0; i < 65; i++)
        if (i != 32 && !strchr("0123456789abcdef", san[i])) fail_msg("SAN %s is not hex", san);
    unsigned bits = 0;
    assert_int_equal(gnutls_x509_crt_get_pk_algorithm(crt, &bits), GNUTLS_PK_ECDSA);
    assert_int_equal(bits, 256);
    time_t life =
        gnutls_x509_crt_get_expiration_time(crt) - gnutls_x509_crt_get_activation_time(crt);
    assert_true(life >= 364 * 86400 && life <= 366 * 86400);
    assert_int_equal(gnutls_x509_crt_verify(crt, &crt, 1, 0, &(unsigned){0}), 0);
    gnutls_x509_crt_deinit(crt);
}

static void test_default_generated(void **state)
{
    weir_config_t cfg = {0};
    weir_tls_ctx_t *a = build_ok(&cfg, NULL);
    char san_a[128], san_b[128], san_c[128];
    check_generated(weir_tls_ctx_default_cert(a), san_a, sizeof san_a);
    /* a reload keeps it */
    weir_tls_ctx_t *b = build_ok(&cfg, a);
    check_generated(weir_tls_ctx_default_cert(b), san_b, sizeof san_b);
    assert_string_equal(san_a, san_b);
    /* a fresh start makes another */
    weir_tls_ctx_t *c = build_ok(&cfg, NULL);
    check_generated(weir_tls_ctx_default_cert(c), san_c, sizeof san_c);
    assert_string_not_equal(san_a, san_c);
    weir_tls_ctx_unref(a);
    weir_tls_ctx_unref(b);
    weir_tls_ctx_unref(c);
}

static void test_default_configured(void **state)
{
    weir_tls_store_cfg_t store = {.name = "default", .pos = P(40, 5), .default_pos = P(42, 9)};
    store.default_cert_file = path_of("ec.pem");
    store.default_key_file = path_of("ec.key");
    weir_config_t cfg = {.tls_stores = &store, .num_tls_stores = 1};
    weir_tls_ctx_t *ctx = build_ok(&cfg, NULL);
    assert_true(serves(weir_tls_ctx_default_cert(ctx), "ecdsa.example.com"));
    /* not indexed by name: only tls.certificates are */
    assert_null(weir_tls_ctx_find_cert(ctx, WEIR_SLICE_LIT("ecdsa.example.com")));
    weir_tls_ctx_unref(ctx);
    store.default_key_file = path_of("rsa.key");
    build_fails(&cfg, P(42, 9), "tls.stores.default.defaultCertificate.keyFile: key");
}

/* ---- errors ---- */

static void test_cert_errors(void **state)
{
    weir_tls_cert_cfg_t c = cert_cfg("rsa", 10);
    weir_config_t cfg = {.tls_certs = &c, .num_tls_certs = 1};
    char *good_cert = c.cert_file, *good_key = c.key_file;

    c.cert_file = "/nonexistent/x.pem";
    build_fails(&cfg, P(10, 17),
                "tls.certificates[0].certFile: cannot load certificate \"/nonexistent/x.pem\": "
                "No such file or directory");
    c.cert_file = path_of("garbage.pem");
    build_fails(&cfg, P(10, 17), "tls.certificates[0].certFile: cannot load certificate \"");
    c.cert_file = path_of("empty.pem");
    build_fails(&cfg, P(10, 17), "tls.certificates[0].certFile: cannot load certificate \"");
    c.cert_file = good_cert;

    c.key_file = "/nonexistent/x.key";
    build_fails(&cfg, P(11, 17),
                "tls.certificates[0].keyFile: cannot load key \"/nonexistent/x.key\": "
                "No such file or directory");
    c.key_file = path_of("garbage.pem");
    build_fails(&cfg, P(11, 17), "tls.certificates[0].keyFile: cannot load key \"");
    c.key_file = path_of("ec.key");
    char want[512];
    snprintf(want, sizeof want,
             "tls.certificates[0].keyFile: key \"%s\" does not match certificate \"%s\"",
             path_of("ec.key"), good_cert);
    build_fails(&cfg, P(11, 17), want);
    c.key_file = good_key;
    free_cert_cfgs(&c, 1);
}

/* Every bad file is reported, not only the first. */
static void test_errors_collected(void **state)
{
    weir_tls_cert_cfg_t certs[3] = {cert_cfg("rsa", 10), cert_cfg("ec", 13), cert_cfg("cn", 16)};
    free(certs[0].cert_file);
    certs[0].cert_file = strdup("/nonexistent/a.pem");
    free(certs[2].key_file);
    certs[2].key_file = strdup(path_of("rsa.key"));
    weir_tls_options_cfg_t opts[1] = {option("default")};
    char *cas[] = {"/nonexistent/ca.pem"};
    opts[0].ca_files = cas;
    opts[0].num_ca_files = 1;
    opts[0].client_auth = WEIR_CLIENT_AUTH_REQUIRE_AND_VERIFY;
    opts[0].ca_pos = P(50, 18);
    weir_config_t cfg = {
        .tls_certs = certs, .num_tls_certs = 3, .tls_options = opts, .num_tls_options = 1};
    weir_config_errors_t errs = {0};
    assert_null(weir_tls_ctx_build(&cfg, NULL, &errs));
    assert_int_equal(errs.count, 3);
    assert_int_equal(errs.items[0].pos.line, 10);
    assert_non_null(strstr(errs.items[0].msg, "tls.certificates[0].certFile"));
    assert_int_equal(errs.items[1].pos.line, 17);
    assert_non_null(strstr(errs.items[1].msg, "tls.certificates[2].keyFile"));
    assert_int_equal(errs.items[2].pos.line, 50);
    assert_int_equal(errs.items[2].pos.col, 18);
    assert_non_null(strstr(errs.items[2].msg, "tls.options.default.clientAuth.caFiles: cannot load "
                                              "\"/nonexistent/ca.pem\""));
    char *line = weir_config_error_format(&errs.items[2]);
    assert_non_null(strstr(line, "dyn.yml:50:18: tls.options.default.clientAuth.caFiles"));
    free(line);
    weir_config_errors_free(&errs);
    free_cert_cfgs(certs, 3);
}

static void test_option_errors(void **state)
{
    weir_tls_options_cfg_t o = option("bad");
    weir_config_t cfg = {.tls_options = &o, .num_tls_options = 1};
    char *ciphers[] = {"TLS_NOT_A_SUITE"};
    o.cipher_suites = ciphers;
    o.num_cipher_suites = 1;
    build_fails(&cfg, P(30, 5), "tls.options.bad: unknown cipher suite \"TLS_NOT_A_SUITE\"");
    o.num_cipher_suites = 0;
    char *curves[] = {"CurveP999"};
    o.curves = curves;
    o.num_curves = 1;
    build_fails(&cfg, P(30, 5), "tls.options.bad: unknown curve \"CurveP999\"");
    o.num_curves = 0;
    char *cas[] = {path_of("garbage.pem")};
    o.ca_files = cas;
    o.num_ca_files = 1;
    o.ca_pos = P(33, 9);
    build_fails(&cfg, P(33, 9), "tls.options.bad.clientAuth.caFiles: no CA certificate in");
}

/* ---- TLS options ---- */

static const char *const all_suites[] = {
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
#define NUM_SUITES (sizeof all_suites / sizeof all_suites[0])

/* Every cipher suite, every curve, every version range: GnuTLS accepts the
 * priority string (the build checks it with gnutls_priority_init2). */
static void test_priorities_accepted(void **state)
{
    char *suites[NUM_SUITES];
    for (size_t i = 0; i < NUM_SUITES; i++)
        suites[i] = (char *)all_suites[i];
    char *curves[] = {"CurveP256", "CurveP384", "CurveP521", "X25519",
                      "secp256r1", "secp384r1", "secp521r1", "x25519"};
    weir_tls_options_cfg_t opts[NUM_SUITES + 1 + 8 + 16];
    size_t n = 0;
    for (size_t i = 0; i < NUM_SUITES; i++) {
        opts[n] = option(all_suites[i]);
        opts[n].cipher_suites = &suites[i];
        opts[n++].num_cipher_suites = 1;
    }
    opts[n] = option("all");
    opts[n].cipher_suites = suites;
    opts[n++].num_cipher_suites = NUM_SUITES;
    for (size_t i = 0; i < 8; i++) {
        opts[n] = option(curves[i]);
        opts[n].curves = &curves[i];
        opts[n++].num_curves = 1;
    }
    for (int min = 0x0301; min <= 0x0304; min++)
        for (int max = 0x0300; max <= 0x0304; max++) {
            if (max && max < min) continue;
            opts[n] = option("versions");
            opts[n].min_version = min;
            opts[n++].max_version = max == 0x0300 ? 0 : max;
        }
    assert_true(n <= sizeof opts / sizeof opts[0]);
    weir_config_t cfg = {.tls_options = opts, .num_tls_options = n};
    weir_tls_ctx_t *ctx = build_ok(&cfg, NULL);
    weir_tls_ctx_unref(ctx);
}

static void test_priority_strings(void **state)
{
    char s[2048];
    weir_tls_options_cfg_t o = option("x");
    assert_int_equal(tls_priority_string(&o, s, sizeof s), 0);
    assert_string_equal(s, "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
                           ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1"
                           ":+GROUP-SECP521R1");
    char *suites[] = {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"};
    char *curves[] = {"CurveP384", "X25519", "secp384r1"};
    o.cipher_suites = suites;
    o.num_cipher_suites = 3;
    o.curves = curves;
    o.num_curves = 3;
    o.min_version = 0x0301;
    o.max_version = 0x0303;
    assert_int_equal(tls_priority_string(&o, s, sizeof s), 0);
    assert_string_equal(s, "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.1"
                           ":+VERS-TLS1.0:-CIPHER-ALL:-MAC-ALL:-KX-ALL:+ECDHE-RSA:+AES-128-GCM"
                           ":+AEAD:+ECDHE-ECDSA:+AES-256-GCM:-GROUP-ALL:+GROUP-SECP384R1"
                           ":+GROUP-X25519");
    /* no TLS 1.3 suite in the list: TLS 1.3 keeps its ciphers */
    o.num_cipher_suites = 1;
    o.max_version = 0;
    o.num_curves = 0;
    o.min_version = 0x0303;
    assert_int_equal(tls_priority_string(&o, s, sizeof s), 0);
    assert_non_null(strstr(s, ":-CIPHER-ALL:-MAC-ALL:-KX-ALL:+ECDHE-RSA:+AES-128-GCM:+AEAD"
                              ":+AES-256-GCM:+CHACHA20-POLY1305:-GROUP-ALL"));
    assert_int_equal(tls_priority_string(&o, s, 20), -1);
}

/* ---- host → options ---- */

static void test_options_for(void **state)
{
    weir_tls_options_cfg_t opts[3] = {option("default"), option("modern"), option("other")};
    opts[1].min_version = 0x0304;
    char *wild[] = {"*.wild.test"}, *exact[] = {"Exact.Wild.test."}, *dom[] = {"dom.test"};
    char *websecure[] = {"websecure"}, *web[] = {"web"};
    weir_router_cfg_t routers[] = {
        {.name = "r1",
         .tls = 1,
         .tls_options = "modern",
         .tls_options_index = 1,
         .rule = "Host(`a.example.com`) || (Host(`B.example.com`) && Path(`/x`))"},
        {.name = "r2",
         .tls = 1,
         .tls_options = "other@file",
         .tls_options_index = 2,
         .tls_domains = wild,
         .num_tls_domains = 1,
         .rule = "Host(`ignored.test`)"},
        {.name = "r3",
         .tls = 1,
         .tls_options = "modern",
         .tls_options_index = 1,
         .rule = "Host(`conflict.test`)"},
        {.name = "r4",
         .tls = 1,
         .tls_options = "other",
         .tls_options_index = 2,
         .rule = "Host(`conflict.test`)"},
        {.name = "r5", .rule = "Host(`plain.test`)", .entrypoints = web, .num_entrypoints = 1},
        {.name = "r6", .rule = "Host(`ep.test`)", .entrypoints = websecure, .num_entrypoints = 1},
        {.name = "r7", .tls = 1, .rule = "Host(`def.test`) || Host(`*`)"},
        {.name = "r8",
         .tls = 1,
         .tls_options = "modern",
         .tls_options_index = 1,
         .tls_domains = exact,
         .num_tls_domains = 1},
        {.name = "r9",
         .tls = 1,
         .tls_options = "modern",
         .tls_options_index = 1,
         .tls_domains = dom,
         .num_tls_domains = 1,
         .rule = "Host(`ruleonly.test`)"},
        {.name = "r10",
         .tls = 1,
         .tls_options = "modern",
         .tls_options_index = 1,
         .rule = "Host(`same.test`)"},
        {.name = "r11",
         .tls = 1,
         .tls_options = "modern@file",
         .tls_options_index = 1,
         .rule = "Host(`same.test`) && Path(`/y`)"},
    };
    weir_entrypoint_cfg_t eps[2] = {
        {.name = "web"}, {.name = "websecure", .http_tls = 1, .http_tls_options = "other@file"}};
    weir_config_t cfg = {.tls_options = opts,
                         .num_tls_options = 3,
                         .routers = routers,
                         .num_routers = sizeof routers / sizeof routers[0],
                         .entrypoints = eps,
                         .num_entrypoints = 2};
    /* one router's rule already compiled (the snapshot may own the others) */
    weir_rule_error_t rerr;
    assert_int_equal(
        weir_rule_compile(routers[0].rule, WEIR_RULE_HTTP, &routers[0].compiled, &rerr), 0);
    weir_tls_ctx_t *ctx = build_ok(&cfg, NULL);
    static const struct {
        const char *name;
        int opt;
    } rows[] = {
        {"a.example.com", 1}, {"b.example.com", 1},   {"x.wild.test", 2},  {"a.b.wild.test", 0},
        {"wild.test", 0},     {"exact.wild.test", 1}, {"ignored.test", 0}, {"conflict.test", 0},
        {"plain.test", 0},    {"ep.test", 2},         {"def.test", 0},     {"dom.test", 1},
        {"ruleonly.test", 0}, {"same.test", 1},       {"unknown.test", 0}, {"", 0},
        {"*.wild.test", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int got = weir_tls_ctx_options_for(ctx, weir_slice_cstr(rows[i].name));
        if (got != rows[i].opt) fail_msg("%s: options %d, want %d", rows[i].name, got, rows[i].opt);
    }
    weir_tls_ctx_unref(ctx);
    weir_rule_free(routers[0].compiled);
}

/* Entry-point TLS: the router takes the options of each TLS entry point it
 * is on; two entry points with different options → default. */
static void test_options_for_entrypoints(void **state)
{
    weir_tls_options_cfg_t opts[3] = {option("default"), option("a"), option("b")};
    char *dom[] = {"dom.ep.test"};
    weir_router_cfg_t routers[] = {
        {.name = "all", .rule = "Host(`all.test`)"}, /* on every entry point */
    };
    weir_entrypoint_cfg_t eps[2] = {
        {.name = "one", .http_tls = 1, .http_tls_options = "a"},
        {.name = "two", .http_tls = 1, .http_tls_options = "b@file"},
    };
    weir_config_t cfg = {.tls_options = opts,
                         .num_tls_options = 3,
                         .routers = routers,
                         .num_routers = 1,
                         .entrypoints = eps,
                         .num_entrypoints = 2};
    weir_tls_ctx_t *ctx = build_ok(&cfg, NULL);
    assert_int_equal(weir_tls_ctx_options_for(ctx, WEIR_SLICE_LIT("all.test")), 0);
    weir_tls_ctx_unref(ctx);
    eps[1].http_tls = 0;
    eps[0].http_tls_domains = dom;
    eps[0].num_http_tls_domains = 1;
    ctx = build_ok(&cfg, NULL);
    assert_int_equal(weir_tls_ctx_options_for(ctx, WEIR_SLICE_LIT("all.test")), 0);
    assert_int_equal(weir_tls_ctx_options_for(ctx, WEIR_SLICE_LIT("dom.ep.test")), 1);
    weir_tls_ctx_unref(ctx);
}

/* ---- handshakes ---- */

enum {
    O_DEFAULT,
    O_H11,
    O_TLS13,
    O_MAX12,
    O_REQUEST,
    O_REQUIRE_ANY,
    O_VERIFY_IF_GIVEN,
    O_REQUIRE_VERIFY,
    O_STRICT,
    O_NO_TICKETS,
    O_INLINE_CA,
    O_CBC_ONLY,
    NUM_O
};

static weir_tls_ctx_t *hs_ctx;
static const weir_tls_cert_t *hs_rsa, *hs_ec;

static int setup_handshakes(void **state)
{
    static char *h11[] = {"http/1.1"};
    static char *cas[1], *inline_ca[1];
    static char *cbc[] = {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"};
    static weir_tls_options_cfg_t o[NUM_O];
    static const char *const names[NUM_O] = {
        "default",       "h11",           "tls13",  "max12",     "request",  "requireany",
        "verifyifgiven", "requireverify", "strict", "notickets", "inlineca", "cbc"};
    cas[0] = strdup(path_of("ca.pem"));
    inline_ca[0] = read_back("ca.pem");
    for (int i = 0; i < NUM_O; i++)
        o[i] = option(names[i]);
    o[O_H11].alpn = h11;
    o[O_H11].num_alpn = 1;
    o[O_TLS13].min_version = 0x0304;
    o[O_MAX12].max_version = 0x0303;
    o[O_REQUEST].client_auth = WEIR_CLIENT_AUTH_REQUEST;
    o[O_REQUIRE_ANY].client_auth = WEIR_CLIENT_AUTH_REQUIRE_ANY;
    o[O_VERIFY_IF_GIVEN].client_auth = WEIR_CLIENT_AUTH_VERIFY_IF_GIVEN;
    o[O_VERIFY_IF_GIVEN].ca_files = cas;
    o[O_VERIFY_IF_GIVEN].num_ca_files = 1;
    o[O_REQUIRE_VERIFY].client_auth = WEIR_CLIENT_AUTH_REQUIRE_AND_VERIFY;
    o[O_REQUIRE_VERIFY].ca_files = cas;
    o[O_REQUIRE_VERIFY].num_ca_files = 1;
    o[O_INLINE_CA].client_auth = WEIR_CLIENT_AUTH_REQUIRE_AND_VERIFY;
    o[O_INLINE_CA].ca_files = inline_ca;
    o[O_INLINE_CA].num_ca_files = 1;
    o[O_STRICT].sni_strict = 1;
    o[O_NO_TICKETS].disable_session_tickets = 1;
    o[O_CBC_ONLY].cipher_suites = cbc;
    o[O_CBC_ONLY].num_cipher_suites = 1;
    weir_tls_cert_cfg_t certs[2] = {cert_cfg("rsa", 10), cert_cfg("ec", 13)};
    weir_config_t cfg = {
        .tls_certs = certs, .num_tls_certs = 2, .tls_options = o, .num_tls_options = NUM_O};
    weir_config_errors_t errs = {0};
    hs_ctx = weir_tls_ctx_build(&cfg, NULL, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "setup: %s\n", errs.items[i].msg);
    weir_config_errors_free(&errs);
    free_cert_cfgs(certs, 2);
    free(cas[0]);
    free(inline_ca[0]);
    if (!hs_ctx) return -1;
    hs_rsa = weir_tls_ctx_find_cert(hs_ctx, WEIR_SLICE_LIT("rsa.example.com"));
    hs_ec = weir_tls_ctx_find_cert(hs_ctx, WEIR_SLICE_LIT("ecdsa.example.com"));
    return hs_rsa && hs_ec ? 0 : -1;
}

static int teardown_handshakes(void **state)
{
    weir_tls_ctx_unref(hs_ctx);
    hs_ctx = NULL;
    return 0;
}

/* A client: priority string, ALPN list (NULL-terminated), certificate. */
typedef struct {
    const char *prio;
    const char *const *alpn;
    const pki_t *cert;
    const gnutls_datum_t *resume; /* session data from an earlier handshake */
} client_spec_t;

typedef struct {
    gnutls_session_t srv, cli;
    gnutls_certificate_credentials_t cli_cred;
    int fds[2];
    int srv_rc, cli_rc; /* 0 done, < 0 GnuTLS error */
} hs_t;

static void set_client_cert(gnutls_certificate_credentials_t cred, const pki_t *p)
{
    assert_int_equal(gnutls_certificate_set_x509_key(cred, (gnutls_x509_crt_t *)&p->crt, 1, p->key),
                     0);
}

static void client_new(hs_t *h, const client_spec_t *c)
{
    assert_int_equal(gnutls_init(&h->cli, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL), 0);
    assert_int_equal(gnutls_certificate_allocate_credentials(&h->cli_cred), 0);
    if (c->cert) set_client_cert(h->cli_cred, c->cert);
    assert_int_equal(gnutls_credentials_set(h->cli, GNUTLS_CRD_CERTIFICATE, h->cli_cred), 0);
    const char *err = NULL;
    if (gnutls_priority_set_direct(h->cli, c->prio ? c->prio : "NORMAL", &err) < 0)
        fail_msg("client priority refused at %s", err ? err : "?");
    gnutls_datum_t protos[4];
    unsigned n = 0;
    for (; c->alpn && c->alpn[n]; n++)
        protos[n] = (gnutls_datum_t){(unsigned char *)c->alpn[n], (unsigned)strlen(c->alpn[n])};
    if (n) assert_int_equal(gnutls_alpn_set_protocols(h->cli, protos, n, 0), 0);
    if (c->resume)
        assert_int_equal(gnutls_session_set_data(h->cli, c->resume->data, c->resume->size), 0);
}

/* One handshake step of s: 1 still going, 0 done, < 0 failed (then the
 * alert is sent and the write side closed, as the record layer does). */
static int step(gnutls_session_t s, int fd)
{
    int rc = gnutls_handshake(s);
    if (rc == 0) return 0;
    if (!gnutls_error_is_fatal(rc)) return 1;
    gnutls_alert_send_appropriate(s, rc);
    shutdown(fd, SHUT_WR);
    return rc;
}

/* Handshakes a server session of hs_ctx (options opt, certificate cert)
 * with client c; both sides run until each is done or has failed. */
static void handshake(hs_t *h, int opt, const weir_tls_cert_t *cert, const client_spec_t *c)
{
    memset(h, 0, sizeof *h);
    assert_int_equal(weir_tls_session_new(hs_ctx, opt, cert, true, &h->srv), 0);
    client_new(h, c);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, h->fds), 0);
    for (int i = 0; i < 2; i++)
        fcntl(h->fds[i], F_SETFL, fcntl(h->fds[i], F_GETFL) | O_NONBLOCK);
    gnutls_transport_set_int(h->srv, h->fds[0]);
    gnutls_transport_set_int(h->cli, h->fds[1]);
    h->srv_rc = h->cli_rc = 1;
    for (int i = 0; i < 1000 && (h->srv_rc == 1 || h->cli_rc == 1); i++) {
        if (h->cli_rc == 1) h->cli_rc = step(h->cli, h->fds[1]);
        if (h->srv_rc == 1) h->srv_rc = step(h->srv, h->fds[0]);
    }
    assert_true(h->srv_rc != 1 && h->cli_rc != 1);
}

static void hs_free(hs_t *h)
{
    gnutls_deinit(h->srv);
    gnutls_deinit(h->cli);
    gnutls_certificate_free_credentials(h->cli_cred);
    close(h->fds[0]);
    close(h->fds[1]);
}

/* Reads one record on s (looping over EAGAIN a while): bytes, or the
 * GnuTLS error. */
static ssize_t recv_some(gnutls_session_t s, char *buf, size_t cap)
{
    for (int i = 0; i < 1000; i++) {
        ssize_t n = gnutls_record_recv(s, buf, cap);
        if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED) return n;
        usleep(100);
    }
    return GNUTLS_E_AGAIN;
}

/* The connection really works: the server's bytes reach the client. */
static void assert_connected(hs_t *h)
{
    if (h->srv_rc != 0 || h->cli_rc != 0)
        fail_msg("handshake failed: server %s, client %s",
                 h->srv_rc ? gnutls_strerror(h->srv_rc) : "ok",
                 h->cli_rc ? gnutls_strerror(h->cli_rc) : "ok");
    assert_int_equal(gnutls_record_send(h->srv, "ping", 4), 4);
    char buf[16];
    assert_int_equal(recv_some(h->cli, buf, sizeof buf), 4);
    assert_memory_equal(buf, "ping", 4);
}

/* The server refused: its handshake failed, and the client's failed too
 * or (TLS 1.3: the client is done before the server checks its
 * certificate) its first read gets the alert. */
static void assert_refused(hs_t *h)
{
    if (h->srv_rc == 0) fail_msg("the server accepted the handshake");
    if (h->cli_rc == 0) {
        char buf[16];
        ssize_t n = recv_some(h->cli, buf, sizeof buf);
        assert_true(n < 0 && n != GNUTLS_E_AGAIN);
    }
}

static void test_handshake_alpn(void **state)
{
    static const char *const h2_h11[] = {"http/1.1", "h2", NULL};
    static const char *const only_h11[] = {"http/1.1", NULL};
    static const char *const unknown[] = {"spdy/3", NULL};
    static const struct {
        int opt;
        const char *const *offer;
        const char *want; /* "" = none */
    } rows[] = {
        {O_DEFAULT, h2_h11, "h2"}, /* the server's order wins */
        {O_DEFAULT, only_h11, "http/1.1"}, {O_H11, h2_h11, "http/1.1"}, {O_DEFAULT, NULL, ""},
        {O_DEFAULT, unknown, ""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        hs_t h;
        client_spec_t c = {.alpn = rows[i].offer};
        handshake(&h, rows[i].opt, hs_rsa, &c);
        assert_connected(&h);
        gnutls_datum_t p = {0};
        int rc = gnutls_alpn_get_selected_protocol(h.srv, &p);
        if (!*rows[i].want) {
            assert_true(rc < 0);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(p.size, strlen(rows[i].want));
            assert_memory_equal(p.data, rows[i].want, p.size);
        }
        hs_free(&h);
    }
}

static void test_handshake_versions(void **state)
{
    static const struct {
        int opt;
        const char *client;
        int want; /* negotiated version, 0 = refused */
    } rows[] = {
        {O_DEFAULT, "NORMAL", GNUTLS_TLS1_3},
        {O_DEFAULT, "NORMAL:-VERS-ALL:+VERS-TLS1.2", GNUTLS_TLS1_2},
        {O_DEFAULT, "NORMAL:-VERS-ALL:+VERS-TLS1.1", 0},
        {O_DEFAULT, "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0", 0},
        {O_TLS13, "NORMAL:-VERS-ALL:+VERS-TLS1.2", 0},
        {O_TLS13, "NORMAL", GNUTLS_TLS1_3},
        {O_MAX12, "NORMAL", GNUTLS_TLS1_2},
        {O_MAX12, "NORMAL:-VERS-ALL:+VERS-TLS1.3", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        hs_t h;
        client_spec_t c = {.prio = rows[i].client};
        handshake(&h, rows[i].opt, hs_ec, &c);
        if (rows[i].want) {
            assert_connected(&h);
            assert_int_equal(gnutls_protocol_get_version(h.srv), rows[i].want);
        } else {
            assert_refused(&h);
        }
        hs_free(&h);
    }
}

/* Each Go cipher suite alone in cipherSuites: a client offering
 * everything negotiates that suite (TLS 1.2) or that cipher (TLS 1.3). */
static void test_handshake_cipher_suites(void **state)
{
    static const struct {
        const char *go, *kx, *cipher, *mac;
    } rows[] = {
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
        {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA", "CHACHA20-POLY1305",
         "AEAD"},
        {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA", "CHACHA20-POLY1305", "AEAD"},
        {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA", "CHACHA20-POLY1305", "AEAD"},
        {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA", "CHACHA20-POLY1305", "AEAD"},
        {"TLS_AES_128_GCM_SHA256", NULL, "AES-128-GCM", "AEAD"},
        {"TLS_AES_256_GCM_SHA384", NULL, "AES-256-GCM", "AEAD"},
        {"TLS_CHACHA20_POLY1305_SHA256", NULL, "CHACHA20-POLY1305", "AEAD"},
    };
    static const char client_all[] =
        "NORMAL:+VERS-TLS1.2:+VERS-TLS1.3:+RSA:+ECDHE-RSA:+ECDHE-ECDSA:+3DES-CBC:+AES-128-CBC"
        ":+AES-256-CBC:+SHA1:+SHA256";
    weir_tls_ctx_t *saved = hs_ctx;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *suite = (char *)rows[i].go;
        weir_tls_options_cfg_t o = option(rows[i].go);
        o.cipher_suites = &suite;
        o.num_cipher_suites = 1;
        if (rows[i].kx)
            o.max_version = 0x0303; /* TLS 1.3 would take its own suites */
        else
            o.min_version = 0x0304;
        weir_tls_cert_cfg_t certs[2] = {cert_cfg("rsa", 10), cert_cfg("ec", 13)};
        weir_config_t cfg = {
            .tls_certs = certs, .num_tls_certs = 2, .tls_options = &o, .num_tls_options = 1};
        hs_ctx = build_ok(&cfg, NULL);
        bool ecdsa = rows[i].kx && strcmp(rows[i].kx, "ECDHE-ECDSA") == 0;
        const weir_tls_cert_t *cert =
            weir_tls_ctx_find_cert(hs_ctx, ecdsa ? WEIR_SLICE_LIT("ecdsa.example.com")
                                                 : WEIR_SLICE_LIT("rsa.example.com"));
        hs_t h;
        client_spec_t c = {.prio = client_all};
        handshake(&h, 0, cert, &c);
        if (h.srv_rc || h.cli_rc)
            fail_msg("%s: handshake failed (server %s, client %s)", rows[i].go,
                     gnutls_strerror(h.srv_rc), gnutls_strerror(h.cli_rc));
        assert_connected(&h);
        assert_string_equal(gnutls_cipher_get_name(gnutls_cipher_get(h.srv)), rows[i].cipher);
        assert_string_equal(gnutls_mac_get_name(gnutls_mac_get(h.srv)), rows[i].mac);
        if (rows[i].kx) {
            assert_int_equal(gnutls_protocol_get_version(h.srv), GNUTLS_TLS1_2);
            assert_string_equal(gnutls_kx_get_name(gnutls_kx_get(h.srv)), rows[i].kx);
        } else {
            assert_int_equal(gnutls_protocol_get_version(h.srv), GNUTLS_TLS1_3);
        }
        hs_free(&h);
        weir_tls_ctx_unref(hs_ctx);
        free_cert_cfgs(certs, 2);
    }
    hs_ctx = saved;
}

/* A list without TLS 1.3 suites restricts TLS 1.2 only (as Go). */
static void test_handshake_suites_keep_tls13(void **state)
{
    hs_t h;
    client_spec_t c = {0};
    handshake(&h, O_CBC_ONLY, hs_rsa, &c);
    assert_connected(&h);
    assert_int_equal(gnutls_protocol_get_version(h.srv), GNUTLS_TLS1_3);
    hs_free(&h);
    client_spec_t c12 = {.prio = "NORMAL:-VERS-ALL:+VERS-TLS1.2:+AES-128-CBC:+SHA1"};
    handshake(&h, O_CBC_ONLY, hs_rsa, &c12);
    assert_connected(&h);
    assert_string_equal(gnutls_cipher_get_name(gnutls_cipher_get(h.srv)), "AES-128-CBC");
    assert_string_equal(gnutls_kx_get_name(gnutls_kx_get(h.srv)), "ECDHE-RSA");
    hs_free(&h);
    client_spec_t gcm12 = {.prio = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM"
                                   ":-KX-ALL:+ECDHE-ECDSA:+RSA"};
    handshake(&h, O_CBC_ONLY, hs_rsa, &gcm12);
    assert_refused(&h);
    hs_free(&h);
}

static void test_handshake_certificate(void **state)
{
    static const struct {
        const char *sni, *want;
    } rows[] = {
        {"ecdsa.example.com", "ecdsa.example.com"},
        {"a.wild.example.com", "rsa.example.com"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        hs_t h;
        client_spec_t c = {0};
        handshake(&h, O_DEFAULT, weir_tls_ctx_find_cert(hs_ctx, weir_slice_cstr(rows[i].sni)), &c);
        assert_connected(&h);
        unsigned n = 0;
        const gnutls_datum_t *peers = gnutls_certificate_get_peers(h.cli, &n);
        assert_true(peers && n >= 1);
        gnutls_x509_crt_t crt;
        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER), 0);
        char san[256];
        assert_string_equal(san_of(crt, 0, san, sizeof san), rows[i].want);
        gnutls_x509_crt_deinit(crt);
        hs_free(&h);
    }
    /* no certificate for the name: the generated default */
    hs_t h;
    client_spec_t c = {0};
    handshake(&h, O_DEFAULT, NULL, &c);
    assert_connected(&h);
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(h.cli, &n);
    gnutls_x509_crt_t crt;
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER), 0);
    char cn[64];
    size_t size = sizeof cn;
    assert_int_equal(
        gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &size), 0);
    assert_string_equal(cn, "TRAEFIK DEFAULT CERT");
    gnutls_x509_crt_deinit(crt);
    hs_free(&h);
}

static void test_sni_strict(void **state)
{
    gnutls_session_t s;
    assert_int_equal(weir_tls_session_new(hs_ctx, O_STRICT, NULL, true, &s), -1);
    assert_int_equal(weir_tls_session_new(hs_ctx, O_STRICT, hs_rsa, true, &s), 0);
    gnutls_deinit(s);
    assert_int_equal(weir_tls_session_new(hs_ctx, O_DEFAULT, NULL, true, &s), 0);
    gnutls_deinit(s);
    /* an options index out of range is the default's */
    assert_int_equal(weir_tls_session_new(hs_ctx, 999, NULL, true, &s), 0);
    gnutls_deinit(s);
}

static void test_handshake_client_auth(void **state)
{
    enum { NONE, GOOD, ROGUE };
    static const struct {
        int opt, present;
        bool ok;
    } rows[] = {
        {O_DEFAULT, NONE, true},          {O_DEFAULT, GOOD, true},
        {O_DEFAULT, ROGUE, true},         {O_REQUEST, NONE, true},
        {O_REQUEST, GOOD, true},          {O_REQUEST, ROGUE, true},
        {O_REQUIRE_ANY, NONE, false},     {O_REQUIRE_ANY, GOOD, true},
        {O_REQUIRE_ANY, ROGUE, true},     {O_VERIFY_IF_GIVEN, NONE, true},
        {O_VERIFY_IF_GIVEN, GOOD, true},  {O_VERIFY_IF_GIVEN, ROGUE, false},
        {O_REQUIRE_VERIFY, NONE, false},  {O_REQUIRE_VERIFY, GOOD, true},
        {O_REQUIRE_VERIFY, ROGUE, false}, {O_INLINE_CA, GOOD, true},
        {O_INLINE_CA, ROGUE, false},
    };
    static const char *const prios[] = {"NORMAL", "NORMAL:-VERS-ALL:+VERS-TLS1.2"};
    for (size_t v = 0; v < 2; v++)
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
            hs_t h;
            client_spec_t c = {.prio = prios[v],
                               .cert = rows[i].present == GOOD    ? &client
                                       : rows[i].present == ROGUE ? &rogue
                                                                  : NULL};
            handshake(&h, rows[i].opt, hs_ec, &c);
            print_message("%s: options %d, client certificate %d: server %s\n", prios[v],
                          rows[i].opt, rows[i].present,
                          h.srv_rc ? gnutls_strerror(h.srv_rc) : "ok");
            if (rows[i].ok) {
                assert_connected(&h);
                unsigned n = 0;
                bool sent = gnutls_certificate_get_peers(h.srv, &n) && n > 0;
                bool requested = rows[i].opt != O_DEFAULT;
                assert_int_equal(sent, requested && rows[i].present != NONE);
            } else {
                assert_refused(&h);
            }
            hs_free(&h);
        }
}

/* Session data after the first exchange (TLS 1.3 tickets come after the
 * handshake: the client reads them with the first record). */
static void first_session(int opt, const char *prio, gnutls_datum_t *data)
{
    hs_t h;
    client_spec_t c = {.prio = prio};
    handshake(&h, opt, hs_rsa, &c);
    assert_connected(&h);
    assert_false(gnutls_session_is_resumed(h.srv));
    assert_int_equal(gnutls_session_get_data2(h.cli, data), 0);
    hs_free(&h);
}

static bool resumes(int opt, const char *prio, const gnutls_datum_t *data)
{
    hs_t h;
    client_spec_t c = {.prio = prio, .resume = data};
    handshake(&h, opt, hs_rsa, &c);
    assert_connected(&h);
    bool r = gnutls_session_is_resumed(h.srv) != 0;
    assert_int_equal(r, gnutls_session_is_resumed(h.cli) != 0);
    hs_free(&h);
    return r;
}

static void test_ticket_resumption(void **state)
{
    static const char *const prios[] = {"NORMAL", "NORMAL:-VERS-ALL:+VERS-TLS1.2"};
    for (size_t v = 0; v < 2; v++) {
        gnutls_datum_t d;
        first_session(O_DEFAULT, prios[v], &d);
        assert_true(resumes(O_DEFAULT, prios[v], &d));
        gnutls_free(d.data);
        /* disableSessionTickets: a full handshake every time */
        first_session(O_NO_TICKETS, prios[v], &d);
        assert_false(resumes(O_NO_TICKETS, prios[v], &d));
        gnutls_free(d.data);
    }
    /* the ticket key is process-wide: a ticket from one context resumes
     * on another (another worker, or after a reload) */
    gnutls_datum_t d;
    first_session(O_DEFAULT, "NORMAL", &d);
    weir_tls_ctx_t *saved = hs_ctx;
    weir_tls_cert_cfg_t certs[1] = {cert_cfg("rsa", 10)};
    weir_config_t cfg = {.tls_certs = certs, .num_tls_certs = 1};
    hs_ctx = build_ok(&cfg, saved);
    hs_rsa = weir_tls_ctx_find_cert(hs_ctx, WEIR_SLICE_LIT("rsa.example.com"));
    assert_true(resumes(O_DEFAULT, "NORMAL", &d));
    weir_tls_ctx_unref(hs_ctx);
    hs_ctx = saved;
    hs_rsa = weir_tls_ctx_find_cert(hs_ctx, WEIR_SLICE_LIT("rsa.example.com"));
    free_cert_cfgs(certs, 1);
    gnutls_free(d.data);
}

/* ---- reference counting ---- */

static void *ref_loop(void *arg)
{
    weir_tls_ctx_t *ctx = arg;
    for (int i = 0; i < 20000; i++) {
        weir_tls_ctx_ref(ctx);
        weir_tls_ctx_unref(ctx);
    }
    return NULL;
}

static void test_refcount(void **state)
{
    weir_config_t cfg = {0};
    weir_tls_ctx_t *ctx = build_ok(&cfg, NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, ref_loop, ctx), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    weir_tls_ctx_ref(ctx);
    weir_tls_ctx_unref(ctx);
    assert_int_equal(atomic_load(&ctx->refs), 1);
    weir_tls_ctx_unref(ctx); /* freed here (ASan checks) */
    weir_tls_ctx_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_cert),
        cmocka_unit_test(test_find_cert_first_wins),
        cmocka_unit_test(test_inline_pem),
        cmocka_unit_test(test_default_generated),
        cmocka_unit_test(test_default_configured),
        cmocka_unit_test(test_cert_errors),
        cmocka_unit_test(test_errors_collected),
        cmocka_unit_test(test_option_errors),
        cmocka_unit_test(test_priorities_accepted),
        cmocka_unit_test(test_priority_strings),
        cmocka_unit_test(test_options_for),
        cmocka_unit_test(test_options_for_entrypoints),
        cmocka_unit_test_setup_teardown(test_handshake_alpn, setup_handshakes, teardown_handshakes),
        cmocka_unit_test_setup_teardown(test_handshake_versions, setup_handshakes,
                                        teardown_handshakes),
        cmocka_unit_test_setup_teardown(test_handshake_cipher_suites, setup_handshakes,
                                        teardown_handshakes),
        cmocka_unit_test_setup_teardown(test_handshake_suites_keep_tls13, setup_handshakes,
                                        teardown_handshakes),
        cmocka_unit_test_setup_teardown(test_handshake_certificate, setup_handshakes,
                                        teardown_handshakes),
        cmocka_unit_test_setup_teardown(test_sni_strict, setup_handshakes, teardown_handshakes),
        cmocka_unit_test_setup_teardown(test_handshake_client_auth, setup_handshakes,
                                        teardown_handshakes),
        cmocka_unit_test_setup_teardown(test_ticket_resumption, setup_handshakes,
                                        teardown_handshakes),
        cmocka_unit_test(test_refcount),
    };
    return cmocka_run_group_tests_name("tls", tests, setup_pki, teardown_pki);
}
