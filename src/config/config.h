/* Configuration: Traefik's YAML (static + file provider) into weir's model.
 *
 * weir_config_load() reads the static file, then the file provider's
 * filename or directory (every *.yml / *.yaml / *.toml-less file in it, sorted
 * by name), and also accepts the dynamic sections (http:, tls:, tcp:, udp:)
 * inside the static file (weir extension). It validates everything and
 * returns either a complete model or the full list of errors, each with
 * file:line:column. It never prints and never exits.
 *
 * The model is plain data owned by one weir_config_t (freed with
 * weir_config_free). Strings are NUL-terminated heap copies. Durations are
 * milliseconds. Positions point at the key (or value) an error names.
 */
#ifndef WEIR_CONFIG_H
#define WEIR_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rules/rules.h"

typedef struct {
    const char *file; /* borrowed from weir_config_t.files */
    int line;         /* 1-based */
    int col;          /* 1-based */
} weir_pos_t;

/* ---- errors ---- */

typedef struct {
    weir_pos_t pos;
    char *msg; /* "unknown key \"adress\" in entryPoints.web (did you mean \"address\"?)" */
} weir_config_error_t;

typedef struct {
    weir_config_error_t *items;
    size_t count;
    /* added: the file names items[].pos.file point to (owned here, so errors
     * outlive the configuration that failed to load) */
    char **files;
    size_t num_files;
} weir_config_errors_t;

/* Formats error i as "file:line:column: message" ("file: message" when the
 * error has no line, e.g. a file that cannot be read). Returns a heap string. */
char *weir_config_error_format(const weir_config_error_t *e);
/* Appends an error found outside the loader (a certificate file that
 * does not load, ...) at pos; the file name is copied into errs. */
void weir_config_errors_add(weir_config_errors_t *errs, weir_pos_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Frees every error and resets *errs to empty; safe on an empty list. */
void weir_config_errors_free(weir_config_errors_t *errs);

/* ---- durations ---- */

/* Parses a Go duration ("250ms", "1m30s", "1h", "1.5s", "0") or a bare
 * integer (seconds, Traefik's convention). Returns 0 and milliseconds
 * (rounded down; sub-millisecond values that are not zero become 1), or -1. */
int weir_duration_parse(const char *text, int64_t *ms);

/* ---- static configuration ---- */

typedef struct {
    char *name;
    weir_pos_t pos;
    char *address; /* as written: ":8080", "127.0.0.1:8080", "[::1]:8080", ":53/udp" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int udp;       /* address ends in /udp */
    /* transport.respondingTimeouts */
    int64_t read_timeout_ms;  /* default 60000 */
    int64_t write_timeout_ms; /* default 0 (off) */
    int64_t idle_timeout_ms;  /* default 180000 */
    /* transport.lifeCycle */
    int64_t grace_timeout_ms; /* default 10000 */
    int64_t request_accept_grace_timeout_ms; /* default 0 */
    /* forwardedHeaders */
    weir_cidr_t *fwd_trusted;
    size_t num_fwd_trusted;
    int fwd_insecure;
    /* proxyProtocol: a PROXY v1/v2 header is read from trusted senders */
    int proxy_protocol;
    weir_cidr_t *pp_trusted;
    size_t num_pp_trusted;
    int pp_insecure; /* every sender is trusted */
    /* http */
    size_t max_header_bytes; /* http.maxHeaderBytes, default 1048576 */
    weir_pos_t address_pos;  /* added: position of the address value */
    /* http.tls: every router on this entry point is a TLS router; options
     * and domains apply to routers without their own tls section */
    int http_tls;
    char *http_tls_options;  /* NULL = "default" */
    weir_pos_t http_tls_options_pos;
    char **http_tls_domains; /* main and sans of http.tls.domains, flattened */
    size_t num_http_tls_domains;
    /* http.redirections.entryPoint */
    char *redirect_to;        /* entry point name, or ":port"; NULL = no redirection */
    uint16_t redirect_port;   /* resolved: the target's port (0 = keep none) */
    char *redirect_scheme;    /* default "https" */
    int redirect_permanent;   /* default 1 (Traefik's default) */
    int64_t redirect_priority; /* default INT64_MAX - 1 (Traefik: MaxInt - 1) */
    weir_pos_t redirect_pos;  /* position of redirections.entryPoint.to */
    /* http2 */
    int h2_max_concurrent_streams;      /* default 250 */
    int h2_max_decoder_table_size;      /* maxDecoderHeaderTableSize, default 4096 */
    int h2_max_encoder_table_size;      /* maxEncoderHeaderTableSize, default 4096 */
    /* http3: its presence serves HTTP/3 over QUIC on UDP, same address and port */
    int http3;
    weir_pos_t http3_pos;
    int h3_advertised_port;   /* http3.advertisedPort: 0 = the listening port */
    int h3_retry;             /* http3.retry (weir): WEIR_H3_RETRY_*, default auto */
    int h3_zero_rtt;          /* http3.zeroRTT (weir): default 0 (off) */
    int64_t h3_alt_svc_max_age; /* http3.altSvcMaxAge (weir): seconds, default 2592000 */
    int64_t udp_timeout_ms;   /* udp.timeout: a UDP flow's idle time; default 3s, 30s on an
                               * entry point whose UDP routers have rules (QUIC by SNI) */
    int udp_timeout_set;      /* udp.timeout was written */
} weir_entrypoint_cfg_t;

enum { WEIR_H3_RETRY_AUTO, WEIR_H3_RETRY_ALWAYS, WEIR_H3_RETRY_NEVER };

typedef struct {
    int64_t dial_timeout_ms;            /* 30000 */
    int64_t response_header_timeout_ms; /* 0 = none */
    int64_t idle_conn_timeout_ms;       /* 90000 */
    int64_t read_idle_timeout_ms;       /* 0 = off: no PING health check on HTTP/2 backends */
    int64_t ping_timeout_ms;            /* 15000 */
} weir_forwarding_timeouts_t;

typedef struct {
    char *name; /* "default@internal" for the static serversTransport */
    weir_pos_t pos;
    int max_idle_conns_per_host; /* default 200 */
    int insecure_skip_verify;
    weir_forwarding_timeouts_t timeouts;
    /* TLS to https:// servers */
    char *server_name;  /* SNI and the name verified; NULL = the server URL's host */
    char **root_cas;    /* rootCAs: paths or PEM; none = the system's trust store */
    size_t num_root_cas;
    char *client_cert_file; /* certificates[0]: the client certificate offered */
    char *client_key_file;
    int disable_http2;      /* disableHTTP2: ALPN offers http/1.1 only */
    weir_pos_t root_cas_pos;
    weir_pos_t client_cert_pos;
} weir_servers_transport_cfg_t;

typedef enum { WEIR_LOG_DEBUG, WEIR_LOG_INFO, WEIR_LOG_WARN, WEIR_LOG_ERROR, WEIR_LOG_FATAL, WEIR_LOG_PANIC } weir_log_level_t;

typedef struct {
    weir_log_level_t level; /* default ERROR, as Traefik */
    char *file_path;        /* NULL = stdout */
    int json;               /* format: common (0) | json (1) */
} weir_log_cfg_t;

typedef struct {
    int enabled;      /* the accessLog section is present */
    char *file_path;  /* NULL = stdout */
    int json;         /* format common (0) | json (1); genericCLF is treated as common */
    int buffering_size; /* lines kept before a write; default 0 */
} weir_accesslog_cfg_t;

/* ---- dynamic configuration (http) ---- */

typedef enum { WEIR_SCHEME_HTTP, WEIR_SCHEME_HTTPS, WEIR_SCHEME_H2C } weir_scheme_t;

typedef struct {
    char *url; /* as written */
    weir_pos_t pos;
    weir_scheme_t scheme;
    char *host;      /* host part, without brackets */
    uint16_t port;   /* default 80 / 443 */
    char *authority; /* host[:port] as a Host header would carry it */
    char *path;      /* path prefix of the URL ("" when none) */
    struct sockaddr_storage addr; /* resolved at load (numeric or getaddrinfo) */
    socklen_t addrlen;
    int weight; /* default 1; 0 takes no traffic */
} weir_server_cfg_t;

typedef enum { WEIR_SERVICE_LOADBALANCER, WEIR_SERVICE_WEIGHTED, WEIR_SERVICE_INTERNAL } weir_service_kind_t;

typedef struct {
    char *name;    /* as referenced: "<name>" for file services ("<name>@file" also resolves) */
    int index;     /* index into weir_config_t.services after resolution */
    int weight;
    weir_pos_t pos;
} weir_service_ref_t;

typedef struct {
    char *name; /* without provider suffix; internal services keep "@internal" */
    weir_pos_t pos;
    weir_service_kind_t kind;
    /* loadBalancer */
    weir_server_cfg_t *servers;
    size_t num_servers;
    int pass_host_header; /* default 1 */
    char *servers_transport; /* NULL = default@internal */
    int transport_index;     /* index into transports, resolved */
    /* weighted */
    weir_service_ref_t *children;
    size_t num_children;
    weir_pos_t transport_pos; /* added: position of loadBalancer.serversTransport */
} weir_service_cfg_t;

typedef struct {
    char *name;
    weir_pos_t pos;
    char **entrypoints; /* empty = all entry points (Traefik's default) */
    size_t num_entrypoints;
    char *rule;
    weir_pos_t rule_pos;
    weir_rule_t *compiled; /* owned; the snapshot builder may take it (set to NULL) */
    int64_t priority;      /* explicit, or the rule's length when 0/absent */
    char *service;
    int service_index;     /* resolved index into services */
    char **middlewares;
    size_t num_middlewares;
    int tls; /* a tls section is present (served only on TLS connections) */
    char *tls_options;     /* tls.options as written ("name", "name@file"); NULL = default */
    int tls_options_index; /* resolved index into cfg->tls_options (0 = "default") */
    weir_pos_t tls_options_pos;
    char **tls_domains;    /* tls.domains main and sans, flattened */
    size_t num_tls_domains;
    int advertise_http3;   /* advertiseHTTP3 (weir): Alt-Svc on its responses, default 1 */
    weir_pos_t service_pos;     /* added: position of the service value */
    weir_pos_t *entrypoints_pos; /* added: position of each entrypoints[i] */
    int passthrough;       /* TCP routers: tls.passthrough */
    int *middleware_index; /* TCP routers: resolved index of each middlewares[i] */
} weir_router_cfg_t;

/* ---- dynamic configuration (tcp) ---- */

typedef struct {
    char *address; /* "host:port" as written */
    char *host;    /* its host part (no brackets): the name sent and verified over TLS */
    weir_pos_t pos;
    struct sockaddr_storage addr; /* resolved at load */
    socklen_t addrlen;
    int tls; /* tls: TLS toward the server; -1 unset (then: its transport has a tls section) */
} weir_tcp_server_cfg_t;

typedef struct {
    char *name;
    weir_pos_t pos;
    weir_service_kind_t kind; /* loadBalancer or weighted */
    weir_tcp_server_cfg_t *servers;
    size_t num_servers;
    int proxy_protocol;        /* loadBalancer.proxyProtocol.version (older key); 0 = none */
    int64_t termination_delay_ms; /* loadBalancer.terminationDelay (older key); -2 = unset */
    char *servers_transport;   /* NULL = the default TCP transport */
    weir_pos_t transport_pos;
    int transport_index;       /* index into tcp_transports, resolved */
    weir_service_ref_t *children; /* weighted */
    size_t num_children;
} weir_tcp_service_cfg_t;

typedef enum { WEIR_TCP_MW_NONE, WEIR_TCP_MW_ALLOWLIST, WEIR_TCP_MW_INFLIGHT } weir_tcp_mw_kind_t;

typedef struct {
    char *name;
    weir_pos_t pos;
    weir_tcp_mw_kind_t kind;
    weir_cidr_t *ranges; /* ipAllowList.sourceRange */
    size_t num_ranges;
    int amount;          /* inFlightConn.amount: connections per client address */
} weir_tcp_middleware_cfg_t;

typedef struct {
    char *name;
    weir_pos_t pos;
    int proxy_protocol;            /* proxyProtocol.version: 0 none, 1, 2 */
    int64_t dial_timeout_ms;       /* default 30s */
    int64_t dial_keep_alive_ms;    /* default 15s; negative: off */
    int64_t termination_delay_ms;  /* default 100ms; negative: wait forever */
    int has_tls;                   /* a tls section is present */
    weir_servers_transport_cfg_t tls; /* its serverName, insecureSkipVerify, rootCAs,
                                       * certificates (the other fields are unused) */
} weir_tcp_transport_cfg_t;

/* Whether weir speaks TLS to server srv of a TCP service using transport t:
 * the server's tls key, else whether the transport has a tls section. */
static inline bool weir_tcp_server_tls(const weir_tcp_server_cfg_t *srv,
                                       const weir_tcp_transport_cfg_t *t)
{
    return srv->tls >= 0 ? srv->tls != 0 : t->has_tls != 0;
}


/* ---- dynamic configuration (tls) ---- */

typedef enum {
    WEIR_CLIENT_AUTH_NONE,                 /* NoClientCert (default) */
    WEIR_CLIENT_AUTH_REQUEST,              /* RequestClientCert */
    WEIR_CLIENT_AUTH_REQUIRE_ANY,          /* RequireAnyClientCert */
    WEIR_CLIENT_AUTH_VERIFY_IF_GIVEN,      /* VerifyClientCertIfGiven */
    WEIR_CLIENT_AUTH_REQUIRE_AND_VERIFY,   /* RequireAndVerifyClientCert */
} weir_client_auth_t;

/* tls.options.<name>. Index 0 of weir_config_t.tls_options is always
 * "default" (Traefik's defaults unless the user redefines it). */
typedef struct {
    char *name; /* without provider suffix */
    weir_pos_t pos;
    int min_version; /* wire version: 0x0301 TLS 1.0 .. 0x0304 TLS 1.3; default 0x0303 */
    int max_version; /* 0 = the highest supported */
    char **cipher_suites; /* Traefik (Go) names, validated at load */
    size_t num_cipher_suites;
    char **curves; /* curvePreferences, Go names (CurveP256, CurveP384, CurveP521, X25519) */
    size_t num_curves;
    int sni_strict;
    char **alpn; /* alpnProtocols; default h2, http/1.1, acme-tls/1 */
    size_t num_alpn;
    char **ca_files; /* clientAuth.caFiles: paths or inline PEM */
    size_t num_ca_files;
    weir_client_auth_t client_auth;
    int disable_session_tickets;
    weir_pos_t ca_pos; /* position of clientAuth.caFiles (errors naming a bad file) */
    weir_pos_t auth_pos; /* position of clientAuth.clientAuthType */
} weir_tls_options_cfg_t;

/* tls.certificates[i]. certFile and keyFile are paths, or inline PEM
 * (Traefik accepts both). */
typedef struct {
    char *cert_file;
    char *key_file;
    char **stores; /* empty = "default" */
    size_t num_stores;
    weir_pos_t pos;      /* the list item */
    weir_pos_t cert_pos; /* certFile value */
    weir_pos_t key_pos;  /* keyFile value */
} weir_tls_cert_cfg_t;

/* tls.stores.<name> */
typedef struct {
    char *name;
    weir_pos_t pos;
    char *default_cert_file; /* defaultCertificate.certFile, NULL = generated */
    char *default_key_file;
    weir_pos_t default_pos;
} weir_tls_store_cfg_t;

typedef struct {
    /* every file read, for weir_pos_t.file */
    char **files;
    size_t num_files;

    /* static */
    weir_entrypoint_cfg_t *entrypoints;
    size_t num_entrypoints;
    int workers;              /* core.workers; 0 = one per online CPU */
    char *provider_filename;  /* providers.file.filename */
    char *provider_directory; /* providers.file.directory */
    int provider_watch;       /* providers.file.watch, default true when a file provider is set (Traefik: true) */
    int64_t providers_throttle_ms; /* providers.providersThrottleDuration, default 2000 */
    weir_log_cfg_t log;
    weir_accesslog_cfg_t access_log;

    /* transports: [0] is always the static serversTransport (default@internal) */
    weir_servers_transport_cfg_t *transports;
    size_t num_transports;

    /* dynamic */
    weir_router_cfg_t *routers; /* sorted by name */
    size_t num_routers;
    weir_service_cfg_t *services; /* sorted by name; includes whoami@internal, noop@internal */
    size_t num_services;
    /* tcp: routers and services sorted by name; transports[0] is default@internal */
    weir_router_cfg_t *tcp_routers;
    size_t num_tcp_routers;
    weir_tcp_service_cfg_t *tcp_services;
    size_t num_tcp_services;
    weir_tcp_transport_cfg_t *tcp_transports;
    size_t num_tcp_transports;
    weir_tcp_middleware_cfg_t *tcp_middlewares;
    size_t num_tcp_middlewares;
    /* udp: routers (entryPoints, service only) and services (addresses) */
    weir_router_cfg_t *udp_routers;
    size_t num_udp_routers;
    weir_tcp_service_cfg_t *udp_services;
    size_t num_udp_services;
    weir_tcp_transport_cfg_t *udp_transports; /* [0] is default@internal (no PROXY) */
    size_t num_udp_transports;

    weir_pos_t provider_pos; /* added: position of providers.file.filename / directory */

    /* tls */
    weir_tls_options_cfg_t *tls_options; /* [0] is "default" */
    size_t num_tls_options;
    weir_tls_cert_cfg_t *tls_certs;
    size_t num_tls_certs;
    weir_tls_store_cfg_t *tls_stores;
    size_t num_tls_stores;
} weir_config_t;

/* Loads and validates the static file at path and everything it points to.
 * On success returns 0 and *out. On failure returns -1, *out = NULL, and
 * errs holds every error found (not just the first), sorted by file (in the
 * order read), line and column. *errs is reset on entry (it need not be
 * initialised); free it with weir_config_errors_free. Relative provider paths
 * are relative to the working directory, as in Traefik. An allocation
 * failure aborts (configuration is loaded at start and on reload only). */
int weir_config_load(const char *path, weir_config_t **out, weir_config_errors_t *errs);

/* added: weir_config_load_buffer flags */
#define WEIR_CONFIG_NO_DNS 1u   /* resolve only numeric addresses and "localhost" */
#define WEIR_CONFIG_NO_FILES 2u /* do not read the file provider's files */

/* added: loads a static configuration held in memory; name is the file name
 * errors and positions carry. Same conventions as weir_config_load. Used by
 * the fuzz target (WEIR_CONFIG_NO_DNS | WEIR_CONFIG_NO_FILES) and tests. */
int weir_config_load_buffer(const char *name, const char *data, size_t len, unsigned flags,
                            weir_config_t **out, weir_config_errors_t *errs);

/* Reloads only the dynamic part: keeps static settings of base (entry points
 * cannot change without a restart, as in Traefik), re-reads the static file's
 * dynamic sections and the file provider. Same return convention. */
int weir_config_reload_dynamic(const weir_config_t *base, const char *path, weir_config_t **out,
                               weir_config_errors_t *errs);

void weir_config_free(weir_config_t *cfg);

/* Finds a service by reference ("name", "name@file", "name@internal").
 * Returns its index or -1. */
int weir_config_find_service(const weir_config_t *cfg, const char *ref);

/* ---- internal to src/config ----------------------------------------------
 * Shared by the module's .c files only (they define WEIR_CONFIG_INTERNAL
 * before including this header); other modules must not use it. Kept here
 * because a module has one header. */
#ifdef WEIR_CONFIG_INTERNAL

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Allocation that cannot fail: configuration is loaded at start and on
 * reload only, where there is nothing useful to do without memory. */
static inline void *weir_config_xalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) abort();
    return p;
}

static inline void *weir_config_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) abort();
    return p;
}

static inline char *weir_config_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(weir_config_xalloc(n), s, n);
}

/* Returns arr with room for element count (count+1 elements), growing the
 * capacity in powers of two so that appending one at a time stays linear. */
static inline void *weir_config_grow(void *arr, size_t count, size_t size)
{
    if (count == 0) return weir_config_xrealloc(arr, 4 * size);
    if (count >= 4 && (count & (count - 1)) == 0)
        return weir_config_xrealloc(arr, 2 * count * size);
    return arr;
}

/* heap string from a printf format */
char *weir_config_xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* -- yaml_tree.c: libyaml events to a tree of nodes with positions -- */

typedef enum { WEIR_CONFIG_SCALAR, WEIR_CONFIG_MAP, WEIR_CONFIG_SEQ } weir_config_node_kind_t;
typedef enum {
    WEIR_CONFIG_PLAIN,
    WEIR_CONFIG_SINGLE_QUOTED,
    WEIR_CONFIG_DOUBLE_QUOTED,
    WEIR_CONFIG_BLOCK
} weir_config_style_t;

typedef struct weir_config_node weir_config_node_t;
struct weir_config_node {
    weir_config_node_kind_t kind;
    weir_config_style_t style; /* scalars */
    int line, col;             /* 1-based start of the node */
    bool multiline;            /* a scalar whose source spans several lines */
    bool is_null;              /* plain "", "~", "null" */
    char *text;                /* scalar value, NUL-terminated (may hold NULs: see len) */
    size_t len;
    /* SEQ: count items. MAP: count = 2 * pairs; items[2i] key, items[2i+1]
     * value. Aliases make the tree a DAG: nodes may be shared. */
    weir_config_node_t **items;
    size_t count;
    size_t weight; /* nodes in this subtree once aliases are expanded */
};

/* A parsed file: owns every node (shared ones included). */
typedef struct {
    weir_config_node_t *root; /* NULL for an empty document */
    weir_config_node_t **all;
    size_t num_all;
} weir_config_doc_t;

typedef struct {
    int line, col;
    char msg[320];
} weir_config_yaml_error_t;

/* Parses one YAML document from data. Returns 0, or -1 with *err (the first
 * syntax error ends the parse; doc is then empty). Anchors, aliases and
 * merge keys ("<<") are resolved; the expansion of aliases is bounded. */
int weir_config_yaml_parse(const char *data, size_t len, weir_config_doc_t *doc,
                           weir_config_yaml_error_t *err);
void weir_config_yaml_free(weir_config_doc_t *doc);

/* -- config_walk.c: key tables, scalar getters, paths, suggestions -- */

typedef struct weir_config_ctx weir_config_ctx_t;
typedef struct weir_config_key weir_config_key_t;

/* A custom key handler: key is the key node (for errors about the key),
 * value its value (never NULL: an empty value is a null scalar); target is
 * the table's target struct. */
typedef void (*weir_config_setter_t)(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                     const weir_config_node_t *value, void *target);

typedef enum {
    WEIR_KEY_STRING,      /* char *; "" stores NULL */
    WEIR_KEY_BOOL,        /* int */
    WEIR_KEY_UINT,        /* int, 0..INT_MAX */
    WEIR_KEY_DURATION,    /* int64_t milliseconds */
    WEIR_KEY_SECTION,     /* a nested table; target + offset */
    WEIR_KEY_CUSTOM,      /* set(ctx, key, value, target) */
    WEIR_KEY_UNSUPPORTED, /* a Traefik key weir does not implement yet: error */
} weir_config_key_type_t;

#define WEIR_KEY_STATIC 1u /* static setting: skipped when reloading dynamic sections */

struct weir_config_key {
    const char *name; /* Traefik's spelling; matched case-insensitively */
    weir_config_key_type_t type;
    size_t offset;
    const weir_config_key_t *section;
    weir_config_setter_t set;
    unsigned flags;
};

struct weir_config_ctx {
    weir_config_t *cfg;
    weir_config_errors_t *errs;
    size_t *err_seq;   /* insertion order of errs->items, for a stable sort */
    unsigned flags;    /* WEIR_CONFIG_NO_DNS | WEIR_CONFIG_NO_FILES */
    bool dynamic_only; /* walking the static file for its dynamic sections */
    const char *file;  /* file being walked (owned by cfg->files) */
    char *path;        /* key path of the value being walked: "entryPoints.web" */
    size_t path_len, path_cap;
    int service_types; /* loadBalancer/weighted sections seen in the current service */
};

weir_pos_t weir_config_pos(const weir_config_ctx_t *ctx, const weir_config_node_t *n);
/* Appends one error at pos (message printf-style). */
void weir_config_error(weir_config_ctx_t *ctx, weir_pos_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends "<path>: <message>" at node n (current file and key path). */
void weir_config_key_error(weir_config_ctx_t *ctx, const weir_config_node_t *n, const char *fmt,
                           ...) __attribute__((format(printf, 3, 4)));
/* Registers a file errors may name; returns the errors' own copy. */
const char *weir_config_error_file(weir_config_errors_t *errs, const char *file);
/* Sorts errors by file (registration order), line, column, insertion. */
void weir_config_errors_sort(weir_config_ctx_t *ctx);

/* Key path: push returns a mark to pop back to. */
size_t weir_config_path_push(weir_config_ctx_t *ctx, const char *name);
size_t weir_config_path_push_index(weir_config_ctx_t *ctx, size_t i);
void weir_config_path_pop(weir_config_ctx_t *ctx, size_t mark);

/* Walks a map against table (NULL or null value: an empty map). */
void weir_config_walk_map(weir_config_ctx_t *ctx, const weir_config_node_t *n,
                          const weir_config_key_t *table, void *target);

/* Calls fn for each entry of a map of user-chosen names (routers, entry
 * points...): names are case-sensitive, non-empty, unique in the map. */
typedef void (*weir_config_name_fn)(weir_config_ctx_t *ctx, const weir_config_node_t *name,
                                    const weir_config_node_t *value, void *arg);
void weir_config_walk_names(weir_config_ctx_t *ctx, const weir_config_node_t *n,
                            weir_config_name_fn fn, void *arg);

/* Calls fn for each item of a list (NULL or null value: an empty list). */
typedef void (*weir_config_item_fn)(weir_config_ctx_t *ctx, const weir_config_node_t *item,
                                    size_t index, void *arg);
void weir_config_walk_list(weir_config_ctx_t *ctx, const weir_config_node_t *n,
                           weir_config_item_fn fn, void *arg);

bool weir_config_is_empty(const weir_config_node_t *n);
/* The value of key in map n (ASCII case ignored), or NULL if n is not a map
 * or has no such key. For "missing X" checks: a key that is present but
 * wrong has its own error. */
const weir_config_node_t *weir_config_map_get(const weir_config_node_t *n, const char *key);
/* Scalar getters: report a type error at n and return false on bad input. */
bool weir_config_get_string(weir_config_ctx_t *ctx, const weir_config_node_t *n, char **out);
bool weir_config_get_bool(weir_config_ctx_t *ctx, const weir_config_node_t *n, int *out);
bool weir_config_get_int(weir_config_ctx_t *ctx, const weir_config_node_t *n, int64_t min,
                         int64_t max, int64_t *out);
bool weir_config_get_duration(weir_config_ctx_t *ctx, const weir_config_node_t *n, int64_t *out);
/* "a map", "a list", "nothing" or the quoted scalar, for type errors */
const char *weir_config_describe(const weir_config_node_t *n, char *buf, size_t cap);

/* The candidate closest to word (Levenshtein distance <= 2, ASCII case
 * ignored), or -1. Ties go to the first candidate. */
int weir_config_suggest(const char *word, const char *const *cands, size_t n);

/* -- config_address.c -- */
int weir_config_parse_listen(const char *text, unsigned flags, weir_entrypoint_cfg_t *ep, char *err,
                             size_t cap);
/* "host:port" or "[v6]:port" of a TCP server (port required), resolved. */
int weir_config_parse_tcp_address(const char *text, unsigned flags, struct sockaddr_storage *ss,
                                  socklen_t *len, char *err, size_t cap);
int weir_config_parse_server_url(const char *url, unsigned flags, weir_server_cfg_t *srv, char *err,
                                 size_t cap);
/* True if two listening addresses would take the same packets. */
bool weir_config_listen_overlap(const weir_entrypoint_cfg_t *a, const weir_entrypoint_cfg_t *b);

/* -- config_static.c / config_dynamic.c -- */
void weir_config_static_defaults(weir_config_t *cfg);
void weir_config_transport_defaults(weir_servers_transport_cfg_t *t);
/* Accepts only "v3" (core.defaultRuleSyntax, http.routers.<name>.ruleSyntax). */
void weir_config_set_rule_syntax(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                 const weir_config_node_t *value, void *target);
/* The keys of http.serversTransports.<name> (shared with the static one). */
const weir_config_key_t *weir_config_dynamic_transport_keys(void);
/* Walks the static file (also its dynamic sections). */
void weir_config_parse_static(weir_config_ctx_t *ctx, const weir_config_node_t *root);
/* Checks across entry points once the static file is read. */
void weir_config_check_static(weir_config_ctx_t *ctx, const weir_config_node_t *root);
/* Walks a file provider's file. */
void weir_config_parse_dynamic(weir_config_ctx_t *ctx, const weir_config_node_t *root);
/* The static file's "http" key (weir extension) and the provider's. */
void weir_config_set_http(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                          const weir_config_node_t *value, void *target);

/* -- config_tls.c: the tls section, router tls, entry point http.tls,
 * http.redirections and http2 -- */
void weir_config_set_tls(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *value, void *target);
void weir_config_set_router_tls(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                const weir_config_node_t *value, void *target);
void weir_config_set_ep_tls(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                            const weir_config_node_t *value, void *target);
void weir_config_set_ep_redirections(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                     const weir_config_node_t *value, void *target);
void weir_config_set_ep_http2(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                              const weir_config_node_t *value, void *target);
void weir_config_set_ep_http3(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                              const weir_config_node_t *v, void *target);
void weir_config_tls_defaults(weir_config_t *cfg);
void weir_config_ep_tls_defaults(weir_entrypoint_cfg_t *ep);
/* Deep-copies the TLS fields of an entry point copied by value (reload). */
void weir_config_ep_tls_copy(weir_entrypoint_cfg_t *ep, const char *file);
void weir_config_ep_tls_free(weir_entrypoint_cfg_t *ep);
void weir_config_resolve_tls(weir_config_ctx_t *ctx);
void weir_config_tls_free(weir_config_t *cfg);
/* The TLS keys of a serversTransport (shared by the static and dynamic ones). */
void weir_config_set_transport_server_name(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                           const weir_config_node_t *value, void *target);
void weir_config_set_transport_root_cas(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                        const weir_config_node_t *value, void *target);
void weir_config_set_transport_certificates(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                            const weir_config_node_t *value, void *target);
void weir_config_transport_tls_copy(weir_servers_transport_cfg_t *t);
void weir_config_set_router_tls_options(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                        const weir_config_node_t *v, void *target);
void weir_config_set_router_tls_domains(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                        const weir_config_node_t *v, void *target);
void weir_config_transport_tls_free(weir_servers_transport_cfg_t *t);

/* -- config_resolve.c: cross-references once every file is read -- */
void weir_config_resolve(weir_config_ctx_t *ctx);

/* -- config_load.c -- */
void weir_config_router_clear(weir_router_cfg_t *r);
/* -- config_static.c: a list of IP addresses or CIDRs ("invalid ..." errors) -- */
void weir_config_walk_cidrs(weir_config_ctx_t *ctx, const weir_config_node_t *v,
                            weir_cidr_t **list, size_t *n);
/* -- config_dynamic.c, shared with config_tcp.c -- */
bool weir_config_name_ok(weir_config_ctx_t *ctx, const weir_config_node_t *name);
void weir_config_set_router_priority(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                     const weir_config_node_t *v, void *target);
void weir_config_set_router_service(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                    const weir_config_node_t *v, void *target);
void weir_config_set_router_entrypoints(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                        const weir_config_node_t *v, void *target);
void weir_config_walk_children(weir_config_ctx_t *ctx, const weir_config_node_t *v,
                               weir_service_ref_t **children, size_t *n);
bool weir_config_one_service_type(weir_config_ctx_t *ctx, const weir_config_node_t *key);
/* -- config_tcp.c -- */
void weir_config_set_tcp(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target);
void weir_config_set_udp(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                         const weir_config_node_t *v, void *target);
void weir_config_tcp_defaults(weir_config_t *cfg);
void weir_config_set_static_tcp_transport(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                                          const weir_config_node_t *v, void *target);
/* Copies base's static tcpServersTransport into cfg (a reload). */
void weir_config_tcp_copy_static(weir_config_t *cfg, const weir_config_t *base, const char *file);
void weir_config_resolve_tcp(weir_config_ctx_t *ctx);
void weir_config_tcp_free(weir_config_t *cfg);
int weir_config_find_tcp_service(const weir_config_t *cfg, const char *ref);
void weir_config_service_clear(weir_service_cfg_t *s);
/* Index of file in cfg->files (the order files were read), or -1. */
int weir_config_file_index(const weir_config_t *cfg, const char *file);

#endif /* WEIR_CONFIG_INTERNAL */

#endif
