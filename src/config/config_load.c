/* Loading: the static file, then the file provider's file or directory,
 * then cross-references; and the reload of the dynamic part only.
 *
 * The order of a load: read and walk the static file (its dynamic sections
 * too), check the entry points, read each provider file in name order,
 * resolve references, sort the errors. Any error fails the whole load: the
 * caller keeps serving its previous configuration.
 */
#define WEIR_CONFIG_INTERNAL
#include "config/config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE_SIZE (64u << 20) /* far above any real configuration */
#define MAX_DIR_DEPTH 16

/* ---- freeing ---- */

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void weir_config_router_clear(weir_router_cfg_t *r)
{
    free(r->name);
    free_strings(r->entrypoints, r->num_entrypoints);
    free(r->entrypoints_pos);
    free(r->rule);
    weir_rule_free(r->compiled);
    free(r->service);
    free_strings(r->middlewares, r->num_middlewares);
    free(r->tls_options);
    free_strings(r->tls_domains, r->num_tls_domains);
    free(r->middleware_index);
    memset(r, 0, sizeof *r);
}

void weir_config_service_clear(weir_service_cfg_t *s)
{
    free(s->name);
    for (size_t i = 0; i < s->num_servers; i++) {
        free(s->servers[i].url);
        free(s->servers[i].host);
        free(s->servers[i].authority);
        free(s->servers[i].path);
    }
    free(s->servers);
    free(s->servers_transport);
    for (size_t i = 0; i < s->num_children; i++)
        free(s->children[i].name);
    free(s->children);
    memset(s, 0, sizeof *s);
}

void weir_config_free(weir_config_t *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < cfg->num_entrypoints; i++) {
        free(cfg->entrypoints[i].name);
        free(cfg->entrypoints[i].address);
        free(cfg->entrypoints[i].fwd_trusted);
        free(cfg->entrypoints[i].pp_trusted);
        weir_config_ep_tls_free(&cfg->entrypoints[i]);
    }
    free(cfg->entrypoints);
    weir_config_tls_free(cfg);
    free(cfg->provider_filename);
    free(cfg->provider_directory);
    free(cfg->log.file_path);
    free(cfg->access_log.file_path);
    for (size_t i = 0; i < cfg->num_transports; i++) {
        free(cfg->transports[i].name);
        weir_config_transport_tls_free(&cfg->transports[i]);
    }
    free(cfg->transports);
    for (size_t i = 0; i < cfg->num_routers; i++)
        weir_config_router_clear(&cfg->routers[i]);
    free(cfg->routers);
    for (size_t i = 0; i < cfg->num_services; i++)
        weir_config_service_clear(&cfg->services[i]);
    free(cfg->services);
    weir_config_tcp_free(cfg);
    free_strings(cfg->files, cfg->num_files);
    free(cfg);
}

int weir_config_file_index(const weir_config_t *cfg, const char *file)
{
    for (size_t i = 0; i < cfg->num_files; i++)
        if (cfg->files[i] == file) return (int)i;
    return -1;
}

/* ---- files ---- */

/* Records a file the model will point to; returns the model's copy. */
static const char *add_file(weir_config_ctx_t *ctx, const char *path)
{
    weir_config_t *cfg = ctx->cfg;
    cfg->files = weir_config_grow(cfg->files, cfg->num_files, sizeof *cfg->files);
    cfg->files[cfg->num_files] = weir_config_xstrdup(path);
    weir_config_error_file(ctx->errs, path); /* errors sort by this order */
    return cfg->files[cfg->num_files++];
}

/* Reads a whole file. Returns 0, or -1 with a message in err. Special files
 * (a FIFO, /dev/stdin) are allowed, with the same size limit. */
static int read_all(const char *path, char **data, size_t *len, char *err, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, cap, "cannot read \"%s\": %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, cap, "cannot read \"%s\": it is a directory", path);
        close(fd);
        return -1;
    }
    size_t n = 0, size = 4096;
    char *buf = weir_config_xalloc(size + 1);
    for (;;) {
        if (n == size) {
            if (size >= MAX_FILE_SIZE) {
                snprintf(err, cap, "\"%s\" is larger than %u MiB", path, MAX_FILE_SIZE >> 20);
                break;
            }
            size *= 2;
            buf = weir_config_xrealloc(buf, size + 1);
        }
        ssize_t r = read(fd, buf + n, size - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, cap, "cannot read \"%s\": %s", path, strerror(errno));
            break;
        }
        if (r == 0) {
            close(fd);
            buf[n] = '\0';
            *data = buf;
            *len = n;
            return 0;
        }
        n += (size_t)r;
    }
    close(fd);
    free(buf);
    return -1;
}

typedef void (*walk_fn)(weir_config_ctx_t *ctx, const weir_config_node_t *root);

/* Parses data as file `name` and walks it with fn. Returns false on a YAML
 * syntax error (reported; the file is not walked, since a partial tree
 * would only add misleading errors). */
static bool walk_text(weir_config_ctx_t *ctx, const char *file, const char *data, size_t len,
                      walk_fn fn, const weir_config_node_t **root_out, weir_config_doc_t *doc)
{
    weir_config_yaml_error_t yerr;
    ctx->file = file;
    if (weir_config_yaml_parse(data, len, doc, &yerr) < 0) {
        weir_config_error(ctx, (weir_pos_t){file, yerr.line, yerr.col}, "%s", yerr.msg);
        return false;
    }
    fn(ctx, doc->root);
    if (root_out) *root_out = doc->root;
    return true;
}

static void error_at_provider(weir_config_ctx_t *ctx, const char *fmt, const char *arg)
{
    const char *key =
        ctx->cfg->provider_filename ? "providers.file.filename" : "providers.file.directory";
    char *msg = weir_config_xprintf(fmt, arg);
    weir_config_error(ctx, ctx->cfg->provider_pos, "%s: %s", key, msg);
    free(msg);
}

static bool has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e && strcasecmp(name + n - e, ext) == 0;
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* One provider file. TOML is refused by name, as Traefik picks the decoder
 * by extension. `own` is the static file, whose dynamic sections are
 * already read: pointing the provider at it (a common one-file trick with
 * Traefik) must not define everything twice. */
static void load_provider_file(weir_config_ctx_t *ctx, const char *path, const char *own)
{
    if (own && same_file(path, own)) return;
    const char *file = add_file(ctx, path);
    if (has_ext(path, ".toml")) {
        weir_config_error(ctx, (weir_pos_t){file, 1, 1},
                          "TOML is not supported (write the file in YAML)");
        return;
    }
    char *data;
    size_t len;
    char err[600];
    if (read_all(path, &data, &len, err, sizeof err) < 0) {
        error_at_provider(ctx, "%s", err);
        return;
    }
    weir_config_doc_t doc;
    walk_text(ctx, file, data, len, weir_config_parse_dynamic, NULL, &doc);
    weir_config_yaml_free(&doc);
    free(data);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir, sorted bytewise like Go's os.ReadDir. Hidden entries are
 * skipped: Kubernetes mounts a ConfigMap with "..data" links beside the
 * files, which would otherwise define everything twice. */
static char **list_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        names = weir_config_grow(names, n, sizeof *names);
        names[n++] = weir_config_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    *count = n;
    return names ? names : weir_config_xalloc(sizeof *names);
}

/* Every *.yml, *.yaml (and *.toml, refused) file, subdirectories included
 * as Traefik does; symbolic links to directories are not followed. */
static void load_dir(weir_config_ctx_t *ctx, const char *dir, const char *own, int depth)
{
    size_t n;
    char **names = list_dir(dir, &n);
    if (!names) {
        char *msg = weir_config_xprintf("cannot read directory \"%s\": %s", dir, strerror(errno));
        error_at_provider(ctx, "%s", msg);
        free(msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char *path = weir_config_xprintf("%s/%s", dir, names[i]);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (depth < MAX_DIR_DEPTH) load_dir(ctx, path, own, depth + 1);
        } else if (has_ext(names[i], ".yml") || has_ext(names[i], ".yaml") ||
                   has_ext(names[i], ".toml")) {
            load_provider_file(ctx, path, own);
        }
        free(path);
    }
    free_strings(names, n);
}

static void load_provider(weir_config_ctx_t *ctx, const char *own)
{
    const weir_config_t *cfg = ctx->cfg;
    if (ctx->flags & WEIR_CONFIG_NO_FILES) return;
    if (cfg->provider_filename && cfg->provider_directory)
        return; /* reported while reading providers.file */
    if (cfg->provider_directory) {
        char *dir = weir_config_xstrdup(cfg->provider_directory);
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
            dir[--n] = '\0';
        load_dir(ctx, dir, own, 0);
        free(dir);
        return;
    }
    if (!cfg->provider_filename) return;
    const char *f = cfg->provider_filename;
    if (!has_ext(f, ".yml") && !has_ext(f, ".yaml") && !has_ext(f, ".toml")) {
        error_at_provider(ctx, "\"%s\" has an unsupported extension (use .yml or .yaml)", f);
        return;
    }
    load_provider_file(ctx, f, own);
}

/* ---- the load ---- */

static weir_config_t *new_config(void)
{
    weir_config_t *cfg = weir_config_xalloc(sizeof *cfg);
    weir_config_static_defaults(cfg);
    return cfg;
}

static void ctx_init(weir_config_ctx_t *ctx, weir_config_t *cfg, weir_config_errors_t *errs,
                     unsigned flags)
{
    memset(errs, 0, sizeof *errs);
    memset(ctx, 0, sizeof *ctx);
    ctx->cfg = cfg;
    ctx->errs = errs;
    ctx->flags = flags;
}

/* Ends a load: resolves, sorts errors, hands out cfg or frees it. */
static int finish(weir_config_ctx_t *ctx, weir_config_t **out)
{
    ctx->file = ctx->cfg->files[0];
    weir_config_resolve(ctx);
    weir_config_errors_sort(ctx);
    free(ctx->path);
    free(ctx->err_seq);
    if (ctx->errs->count) {
        weir_config_free(ctx->cfg);
        *out = NULL;
        return -1;
    }
    *out = ctx->cfg;
    return 0;
}

/* The static file's text: walked fully, or for its dynamic sections only
 * (reload). own is its path on disk, NULL for a buffer. */
static void load_static_text(weir_config_ctx_t *ctx, const char *data, size_t len, const char *own)
{
    weir_config_doc_t doc;
    const weir_config_node_t *root = NULL;
    const char *file = ctx->cfg->files[0];
    bool ok = walk_text(ctx, file, data, len, weir_config_parse_static, &root, &doc);
    if (ok && !ctx->dynamic_only) weir_config_check_static(ctx, root);
    weir_config_yaml_free(&doc);
    /* Without a readable static file there is no provider to read. */
    if (ok) load_provider(ctx, own);
}

static void load_static_file(weir_config_ctx_t *ctx, const char *file, const char *path)
{
    char *data;
    size_t len;
    char err[600];
    if (read_all(path, &data, &len, err, sizeof err) < 0) {
        weir_config_error(ctx, (weir_pos_t){file, 0, 0}, "%s", err);
        return;
    }
    load_static_text(ctx, data, len, path);
    free(data);
}

int weir_config_load_buffer(const char *name, const char *data, size_t len, unsigned flags,
                            weir_config_t **out, weir_config_errors_t *errs)
{
    weir_config_ctx_t ctx;
    ctx_init(&ctx, new_config(), errs, flags);
    add_file(&ctx, name ? name : "<buffer>");
    load_static_text(&ctx, data ? data : "", data ? len : 0, NULL);
    return finish(&ctx, out);
}

int weir_config_load(const char *path, weir_config_t **out, weir_config_errors_t *errs)
{
    weir_config_ctx_t ctx;
    ctx_init(&ctx, new_config(), errs, 0);
    const char *file = add_file(&ctx, path);
    load_static_file(&ctx, file, path);
    return finish(&ctx, out);
}

/* ---- reload: static settings from base ---- */

static char *dup_or_null(const char *s)
{
    return s ? weir_config_xstrdup(s) : NULL;
}

static void copy_static(weir_config_t *cfg, const weir_config_t *base, const char *file)
{
    for (size_t i = 0; i < base->num_entrypoints; i++) {
        cfg->entrypoints = weir_config_grow(cfg->entrypoints, i, sizeof *cfg->entrypoints);
        cfg->num_entrypoints = i + 1;
        weir_entrypoint_cfg_t *ep = &cfg->entrypoints[i];
        *ep = base->entrypoints[i];
        ep->name = weir_config_xstrdup(ep->name);
        ep->address = dup_or_null(ep->address);
        size_t n = ep->num_fwd_trusted * sizeof *ep->fwd_trusted;
        ep->fwd_trusted = n ? memcpy(weir_config_xalloc(n), ep->fwd_trusted, n) : NULL;
        n = ep->num_pp_trusted * sizeof *ep->pp_trusted;
        ep->pp_trusted = n ? memcpy(weir_config_xalloc(n), ep->pp_trusted, n) : NULL;
        /* static positions are all in the static file, files[0] here too */
        ep->pos.file = ep->address_pos.file = file;
        weir_config_ep_tls_copy(ep, file);
    }
    cfg->workers = base->workers;
    cfg->provider_filename = dup_or_null(base->provider_filename);
    cfg->provider_directory = dup_or_null(base->provider_directory);
    cfg->provider_watch = base->provider_watch;
    cfg->providers_throttle_ms = base->providers_throttle_ms;
    cfg->provider_pos = base->provider_pos;
    cfg->provider_pos.file = file;
    cfg->log = base->log;
    cfg->log.file_path = dup_or_null(base->log.file_path);
    cfg->access_log = base->access_log;
    cfg->access_log.file_path = dup_or_null(base->access_log.file_path);
    free(cfg->transports[0].name);
    weir_config_transport_tls_free(&cfg->transports[0]);
    cfg->transports[0] = base->transports[0];
    cfg->transports[0].name = weir_config_xstrdup(base->transports[0].name);
    cfg->transports[0].pos.file = file;
    weir_config_transport_tls_copy(&cfg->transports[0]);
    cfg->transports[0].root_cas_pos.file = file;
    cfg->transports[0].client_cert_pos.file = file;
    weir_config_tcp_copy_static(cfg, base, file);
}

int weir_config_reload_dynamic(const weir_config_t *base, const char *path, weir_config_t **out,
                               weir_config_errors_t *errs)
{
    weir_config_ctx_t ctx;
    ctx_init(&ctx, new_config(), errs, 0);
    ctx.dynamic_only = true;
    const char *file = add_file(&ctx, path);
    copy_static(ctx.cfg, base, file);
    load_static_file(&ctx, file, path);
    return finish(&ctx, out);
}
