/* Cross-references, once every file is read: names defined twice, the
 * services routers and weighted services name, serversTransports, entry
 * points, cycles among weighted services, and default priorities.
 */
#define WEIR_CONFIG_INTERNAL
#include "config/config.h"

/* ---- the built-in services ---- */

static void add_internal(weir_config_ctx_t *ctx, const char *name)
{
    weir_config_t *cfg = ctx->cfg;
    cfg->services = weir_config_grow(cfg->services, cfg->num_services, sizeof *cfg->services);
    weir_service_cfg_t *s = &cfg->services[cfg->num_services++];
    memset(s, 0, sizeof *s);
    s->name = weir_config_xstrdup(name);
    s->pos = (weir_pos_t){cfg->files[0], 0, 0};
    s->kind = WEIR_SERVICE_INTERNAL;
    s->pass_host_header = 1;
}

/* ---- sorting and names defined twice ---- */

static int cmp_pos(const weir_config_t *cfg, weir_pos_t a, weir_pos_t b)
{
    int fa = weir_config_file_index(cfg, a.file), fb = weir_config_file_index(cfg, b.file);
    if (fa != fb) return fa < fb ? -1 : 1;
    if (a.line != b.line) return a.line < b.line ? -1 : 1;
    return a.col < b.col ? -1 : a.col > b.col;
}

/* By name, then in the order the definitions were read. */
static int cmp_routers(const void *pa, const void *pb, void *arg)
{
    const weir_router_cfg_t *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    return c ? c : cmp_pos(arg, a->pos, b->pos);
}

static int cmp_services(const void *pa, const void *pb, void *arg)
{
    const weir_service_cfg_t *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    return c ? c : cmp_pos(arg, a->pos, b->pos);
}

static void twice(weir_config_ctx_t *ctx, const char *section, const char *name, weir_pos_t pos,
                  weir_pos_t first)
{
    weir_config_error(ctx, pos, "http.%s.%s: defined twice (first at %s:%d:%d)", section, name,
                      first.file, first.line, first.col);
}

static void dedupe_routers(weir_config_ctx_t *ctx)
{
    weir_config_t *cfg = ctx->cfg;
    if (cfg->num_routers > 1)
        qsort_r(cfg->routers, cfg->num_routers, sizeof *cfg->routers, cmp_routers, cfg);
    size_t kept = 0;
    for (size_t i = 0; i < cfg->num_routers; i++) {
        weir_router_cfg_t *r = &cfg->routers[i];
        if (kept && strcmp(cfg->routers[kept - 1].name, r->name) == 0) {
            twice(ctx, "routers", r->name, r->pos, cfg->routers[kept - 1].pos);
            weir_config_router_clear(r);
            continue;
        }
        if (kept != i) cfg->routers[kept] = *r;
        kept++;
    }
    cfg->num_routers = kept;
}

static void dedupe_services(weir_config_ctx_t *ctx)
{
    weir_config_t *cfg = ctx->cfg;
    if (cfg->num_services > 1)
        qsort_r(cfg->services, cfg->num_services, sizeof *cfg->services, cmp_services, cfg);
    size_t kept = 0;
    for (size_t i = 0; i < cfg->num_services; i++) {
        weir_service_cfg_t *s = &cfg->services[i];
        if (kept && strcmp(cfg->services[kept - 1].name, s->name) == 0) {
            twice(ctx, "services", s->name, s->pos, cfg->services[kept - 1].pos);
            weir_config_service_clear(s);
            continue;
        }
        if (kept != i) cfg->services[kept] = *s;
        kept++;
    }
    cfg->num_services = kept;
}

/* Transports keep their order ([0] is the static one); there are few. */
static void dedupe_transports(weir_config_ctx_t *ctx)
{
    weir_config_t *cfg = ctx->cfg;
    size_t kept = 1;
    for (size_t i = 1; i < cfg->num_transports; i++) {
        weir_servers_transport_cfg_t *t = &cfg->transports[i];
        size_t j = 1;
        while (j < kept && strcmp(cfg->transports[j].name, t->name) != 0)
            j++;
        if (j < kept) {
            twice(ctx, "serversTransports", t->name, t->pos, cfg->transports[j].pos);
            free(t->name);
            continue;
        }
        if (kept != i) cfg->transports[kept] = *t;
        kept++;
    }
    cfg->num_transports = kept;
}

/* ---- references ---- */

/* " (did you mean \"x\"?)" or "" */
static void hint(char *buf, size_t cap, const char *word, const char *const *cands,
                 const char *const *shown, size_t n)
{
    int i = weir_config_suggest(word, cands, n);
    if (i >= 0)
        snprintf(buf, cap, " (did you mean \"%s\"?)", shown[i]);
    else
        buf[0] = '\0';
}

/* Suggests a service: internal ones also by their bare name, so that
 * "whoami" suggests "whoami@internal". */
static void service_hint(const weir_config_t *cfg, const char *ref, char *buf, size_t cap)
{
    size_t n = 0, max = 2 * cfg->num_services;
    const char **cands = weir_config_xalloc(max * sizeof *cands);
    const char **shown = weir_config_xalloc(max * sizeof *shown);
    char **bare = weir_config_xalloc(max * sizeof *bare);
    for (size_t i = 0; i < cfg->num_services; i++) {
        const char *name = cfg->services[i].name;
        cands[n] = shown[n] = name;
        n++;
        const char *at = strchr(name, '@');
        if (at) {
            bare[n] = strndup(name, (size_t)(at - name));
            if (!bare[n]) abort();
            cands[n] = bare[n];
            shown[n] = name;
            n++;
        }
    }
    const char *at = strchr(ref, '@');
    char *word = strndup(ref, at && strcmp(at, "@file") == 0 ? (size_t)(at - ref) : strlen(ref));
    if (!word) abort();
    hint(buf, cap, word, cands, shown, n);
    free(word);
    for (size_t i = 0; i < n; i++)
        free(bare[i]);
    free(bare);
    free(cands);
    free(shown);
}

static int find_transport(const weir_config_t *cfg, const char *ref)
{
    if (strcmp(ref, "default@internal") == 0) return 0;
    const char *at = strchr(ref, '@');
    size_t n = at ? (size_t)(at - ref) : strlen(ref);
    if (at && strcmp(at, "@file") != 0) return -1;
    for (size_t i = 1; i < cfg->num_transports; i++)
        if (strlen(cfg->transports[i].name) == n && strncmp(cfg->transports[i].name, ref, n) == 0)
            return (int)i;
    return -1;
}

static void resolve_transport(weir_config_ctx_t *ctx, weir_service_cfg_t *s)
{
    const weir_config_t *cfg = ctx->cfg;
    s->transport_index = 0;
    if (!s->servers_transport) return;
    int i = find_transport(cfg, s->servers_transport);
    if (i >= 0) {
        s->transport_index = i;
        return;
    }
    const char **names = weir_config_xalloc(cfg->num_transports * sizeof *names);
    for (size_t k = 0; k < cfg->num_transports; k++)
        names[k] = cfg->transports[k].name;
    char h[300];
    hint(h, sizeof h, s->servers_transport, names, names, cfg->num_transports);
    free(names);
    weir_config_error(ctx, s->transport_pos,
                      "http.services.%s.loadBalancer.serversTransport: serversTransport \"%s\" "
                      "does not exist%s",
                      s->name, s->servers_transport, h);
}

static void resolve_children(weir_config_ctx_t *ctx, weir_service_cfg_t *s)
{
    for (size_t k = 0; k < s->num_children; k++) {
        weir_service_ref_t *c = &s->children[k];
        if (!c->name) continue; /* reported when read */
        c->index = weir_config_find_service(ctx->cfg, c->name);
        if (c->index >= 0) continue;
        char h[300];
        service_hint(ctx->cfg, c->name, h, sizeof h);
        weir_config_error(ctx, c->pos,
                          "http.services.%s.weighted.services[%zu].name: service \"%s\" does "
                          "not exist%s",
                          s->name, k, c->name, h);
    }
}

static const weir_entrypoint_cfg_t *find_entrypoint(const weir_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->num_entrypoints; i++)
        if (strcmp(cfg->entrypoints[i].name, name) == 0) return &cfg->entrypoints[i];
    return NULL;
}

static void resolve_entrypoints(weir_config_ctx_t *ctx, const weir_router_cfg_t *r)
{
    const weir_config_t *cfg = ctx->cfg;
    for (size_t k = 0; k < r->num_entrypoints; k++) {
        const weir_entrypoint_cfg_t *ep = find_entrypoint(cfg, r->entrypoints[k]);
        if (ep && !ep->udp) continue;
        if (ep) {
            weir_config_error(ctx, r->entrypoints_pos[k],
                              "http.routers.%s.entryPoints[%zu]: entry point \"%s\" is a UDP "
                              "entry point",
                              r->name, k, ep->name);
            continue;
        }
        const char **names = weir_config_xalloc((cfg->num_entrypoints + 1) * sizeof *names);
        for (size_t i = 0; i < cfg->num_entrypoints; i++)
            names[i] = cfg->entrypoints[i].name;
        char h[300];
        hint(h, sizeof h, r->entrypoints[k], names, names, cfg->num_entrypoints);
        free(names);
        weir_config_error(ctx, r->entrypoints_pos[k],
                          "http.routers.%s.entryPoints[%zu]: entry point \"%s\" does not "
                          "exist%s",
                          r->name, k, r->entrypoints[k], h);
    }
}

static void resolve_router(weir_config_ctx_t *ctx, weir_router_cfg_t *r)
{
    resolve_entrypoints(ctx, r);
    if (r->priority == 0 && r->rule)
        r->priority = weir_rule_default_priority(r->rule, WEIR_RULE_HTTP);
    if (!r->service) return; /* reported when read */
    r->service_index = weir_config_find_service(ctx->cfg, r->service);
    if (r->service_index >= 0) return;
    char h[300];
    service_hint(ctx->cfg, r->service, h, sizeof h);
    weir_config_error(ctx, r->service_pos,
                      "http.routers.%s.service: service \"%s\" does not exist%s", r->name,
                      r->service, h);
}

/* ---- cycles among weighted services ---- */

typedef struct {
    size_t svc;
    size_t next; /* next child to visit */
} frame_t;

static void report_cycle(weir_config_ctx_t *ctx, const frame_t *stack, size_t depth, size_t back_to)
{
    const weir_config_t *cfg = ctx->cfg;
    size_t from = 0;
    while (stack[from].svc != back_to)
        from++;
    size_t len = 0;
    for (size_t i = from; i < depth; i++)
        len += strlen(cfg->services[stack[i].svc].name) + 4;
    len += strlen(cfg->services[back_to].name) + 1;
    char *chain = weir_config_xalloc(len);
    for (size_t i = from; i < depth; i++) {
        strcat(chain, cfg->services[stack[i].svc].name);
        strcat(chain, " -> ");
    }
    strcat(chain, cfg->services[back_to].name);
    const frame_t *top = &stack[depth - 1];
    const weir_service_cfg_t *s = &cfg->services[top->svc];
    weir_config_error(ctx, s->children[top->next - 1].pos,
                      "http.services.%s.weighted.services[%zu].name: weighted services form a "
                      "cycle: %s",
                      s->name, top->next - 1, chain);
    free(chain);
}

/* Depth-first search with an explicit stack (no recursion on the input). */
static void find_cycles(weir_config_ctx_t *ctx)
{
    const weir_config_t *cfg = ctx->cfg;
    size_t n = cfg->num_services;
    unsigned char *color = weir_config_xalloc(n); /* 0 new, 1 on the stack, 2 done */
    frame_t *stack = weir_config_xalloc(n * sizeof *stack);
    for (size_t root = 0; root < n; root++) {
        if (color[root] || cfg->services[root].kind != WEIR_SERVICE_WEIGHTED) continue;
        size_t depth = 0;
        stack[depth++] = (frame_t){root, 0};
        color[root] = 1;
        while (depth) {
            frame_t *f = &stack[depth - 1];
            const weir_service_cfg_t *s = &cfg->services[f->svc];
            if (f->next == s->num_children) {
                color[f->svc] = 2;
                depth--;
                continue;
            }
            int c = s->children[f->next++].index;
            if (c < 0 || cfg->services[c].kind != WEIR_SERVICE_WEIGHTED || color[c] == 2) continue;
            if (color[c] == 1) {
                report_cycle(ctx, stack, depth, (size_t)c);
                continue;
            }
            color[c] = 1;
            stack[depth++] = (frame_t){(size_t)c, 0};
        }
    }
    free(stack);
    free(color);
}

void weir_config_resolve(weir_config_ctx_t *ctx)
{
    weir_config_t *cfg = ctx->cfg;
    if (!cfg->transports[0].pos.file) cfg->transports[0].pos = (weir_pos_t){cfg->files[0], 0, 0};
    add_internal(ctx, "noop@internal");
    add_internal(ctx, "whoami@internal");
    dedupe_services(ctx);
    dedupe_routers(ctx);
    dedupe_transports(ctx);
    for (size_t i = 0; i < cfg->num_services; i++) {
        resolve_transport(ctx, &cfg->services[i]);
        resolve_children(ctx, &cfg->services[i]);
    }
    find_cycles(ctx);
    for (size_t i = 0; i < cfg->num_routers; i++)
        resolve_router(ctx, &cfg->routers[i]);
    weir_config_resolve_tls(ctx);
    weir_config_resolve_tcp(ctx);
}

int weir_config_find_service(const weir_config_t *cfg, const char *ref)
{
    if (!cfg || !ref) return -1;
    const char *at = strchr(ref, '@');
    bool internal = at && strcmp(at, "@internal") == 0;
    size_t n = strlen(ref);
    if (at && !internal) {
        if (strcmp(at, "@file") != 0)
            return -1; /* another provider: weir has only file and internal */
        n = (size_t)(at - ref);
    }
    /* services are sorted by name (strcmp) */
    size_t lo = 0, hi = cfg->num_services;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *name = cfg->services[mid].name;
        int c = strncmp(name, ref, n);
        if (c == 0 && name[n] != '\0') c = 1;
        if (c == 0) {
            bool is_internal = cfg->services[mid].kind == WEIR_SERVICE_INTERNAL;
            return is_internal == internal ? (int)mid : -1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}
