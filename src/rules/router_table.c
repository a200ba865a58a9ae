/* Router table: priority-ordered routes with an exact-host index.
 *
 * After build, routes are sorted (priority descending, insertion order
 * ascending) and a route is known by its rank in that order. Routes that
 * need one exact host (weir_rule_exact_host) are grouped per host in an
 * open-addressing hash table; the rest form the general list. A match looks
 * up the request's host once and walks the host's ranks and the general
 * ranks merged in ascending rank order, so the first rule that matches is
 * the same one a linear scan of all routes would find. The cost depends on
 * the routes of that host plus the general ones, not on the table size. */
#include <errno.h>
#include <stdlib.h>

#include "rules/rules.h"

typedef struct {
    weir_rule_t *rule;
    int64_t priority;
    void *value;
    size_t seq; /* insertion order, the tie-break */
} route_t;

/* One host of the index. count == 0 marks an empty slot. */
typedef struct {
    uint64_t hash;
    const char *key; /* owned by the route's rule */
    uint32_t key_len;
    uint32_t first; /* into host_ranks */
    uint32_t count;
} slot_t;

struct weir_router_table {
    route_t *routes;
    size_t n, cap;
    bool built;
    weir_rule_kind_t kind; /* of the first route: decides Host vs HostSNI keys */
    uint32_t *general;     /* ranks not indexed, ascending */
    size_t num_general;
    uint32_t *host_ranks; /* ranks grouped by slot, ascending inside a group */
    slot_t *slots;
    size_t mask; /* slots - 1, a power of two minus one */
};

/* FNV-1a: hosts are short, and the table keeps the full hash to skip most
 * key comparisons. */
static uint64_t hash_key(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

weir_router_table_t *weir_router_table_new(void)
{
    return calloc(1, sizeof(weir_router_table_t));
}

int weir_router_table_add(weir_router_table_t *t, weir_rule_t *rule, int64_t priority, void *value)
{
    if (!t || !rule) {
        errno = EINVAL;
        return -1;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        route_t *r = realloc(t->routes, cap * sizeof(*r));
        if (!r) {
            errno = ENOMEM;
            return -1;
        }
        t->routes = r;
        t->cap = cap;
    }
    if (t->n == 0) t->kind = weir_rule_kind(rule);
    t->routes[t->n] = (route_t){rule, priority, value, t->n};
    t->n++;
    t->built = false;
    return 0;
}

static int cmp_route(const void *a, const void *b)
{
    const route_t *x = a, *y = b;
    if (x->priority != y->priority) return x->priority > y->priority ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void free_index(weir_router_table_t *t)
{
    free(t->general);
    free(t->host_ranks);
    free(t->slots);
    t->general = t->host_ranks = NULL;
    t->slots = NULL;
    t->num_general = 0;
    t->mask = 0;
}

static const slot_t *find_slot(const weir_router_table_t *t, weir_slice_t key, uint64_t h)
{
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const slot_t *s = &t->slots[i];
        if (s->count == 0) return NULL;
        if (s->hash == h && s->key_len == key.len && memcmp(s->key, key.ptr, key.len) == 0)
            return s;
    }
}

/* Finds or claims the slot for key; the table always has free slots
 * (load factor at most one half). */
static uint32_t claim_slot(weir_router_table_t *t, weir_slice_t key)
{
    uint64_t h = hash_key(key.ptr, key.len);
    size_t i = h & t->mask;
    for (;; i = (i + 1) & t->mask) {
        slot_t *s = &t->slots[i];
        if (s->count == 0) {
            *s = (slot_t){h, key.ptr, (uint32_t)key.len, 0, 0};
            break;
        }
        if (s->hash == h && s->key_len == key.len && memcmp(s->key, key.ptr, key.len) == 0) break;
    }
    t->slots[i].count++;
    return (uint32_t)i;
}

static bool indexable(const weir_router_table_t *t, const route_t *r, weir_slice_t *key)
{
    return weir_rule_kind(r->rule) == t->kind && weir_rule_exact_host(r->rule, key) &&
           key->len <= UINT32_MAX;
}

/* Two passes over the sorted routes: count routes per host, then place
 * ranks; slot_of remembers each indexed route's slot between the passes. */
static int build_index(weir_router_table_t *t, uint32_t *slot_of)
{
    size_t nslots = 16;
    while (nslots < 2 * t->n)
        nslots *= 2;
    t->slots = calloc(nslots, sizeof(*t->slots));
    t->general = malloc((t->n ? t->n : 1) * sizeof(*t->general));
    t->host_ranks = malloc((t->n ? t->n : 1) * sizeof(*t->host_ranks));
    if (!t->slots || !t->general || !t->host_ranks) return -1;
    t->mask = nslots - 1;
    for (size_t i = 0; i < t->n; i++) {
        weir_slice_t key;
        if (indexable(t, &t->routes[i], &key)) {
            slot_of[i] = claim_slot(t, key);
        } else {
            slot_of[i] = UINT32_MAX;
            t->general[t->num_general++] = (uint32_t)i;
        }
    }
    uint32_t next = 0;
    for (size_t i = 0; i < nslots; i++) {
        t->slots[i].first = next;
        next += t->slots[i].count;
        t->slots[i].count = 0; /* refilled below */
    }
    for (size_t i = 0; i < t->n; i++) {
        if (slot_of[i] == UINT32_MAX) continue;
        slot_t *s = &t->slots[slot_of[i]];
        t->host_ranks[s->first + s->count++] = (uint32_t)i;
    }
    return 0;
}

int weir_router_table_build(weir_router_table_t *t)
{
    if (t->n > UINT32_MAX - 1) {
        errno = ENOMEM;
        return -1;
    }
    free_index(t);
    if (t->n > 1) qsort(t->routes, t->n, sizeof(*t->routes), cmp_route);
    uint32_t *slot_of = malloc((t->n ? t->n : 1) * sizeof(*slot_of));
    int rc = slot_of ? build_index(t, slot_of) : -1;
    free(slot_of);
    if (rc < 0) {
        free_index(t);
        errno = ENOMEM;
        return -1;
    }
    t->built = true;
    return 0;
}

void *weir_router_table_match(const weir_router_table_t *t, const weir_rule_req_t *req)
{
    if (!t || !t->built || t->n == 0) return NULL;
    weir_rule_ctx_t ctx;
    weir_rule_ctx_init(&ctx, req);
    weir_slice_t key = t->kind == WEIR_RULE_TCP ? ctx.sni : ctx.host;
    const uint32_t *hr = NULL;
    size_t nh = 0;
    if (key.ptr) {
        const slot_t *s = find_slot(t, key, hash_key(key.ptr, key.len));
        if (s) {
            hr = t->host_ranks + s->first;
            nh = s->count;
        }
    }
    const uint32_t *gr = t->general;
    size_t ng = t->num_general, ih = 0, ig = 0;
    while (ih < nh || ig < ng) {
        uint32_t rank = (ig >= ng || (ih < nh && hr[ih] < gr[ig])) ? hr[ih++] : gr[ig++];
        const route_t *r = &t->routes[rank];
        if (weir_rule_match_ctx(r->rule, &ctx)) return r->value;
    }
    return NULL;
}

size_t weir_router_table_size(const weir_router_table_t *t)
{
    return t ? t->n : 0;
}

void weir_router_table_free(weir_router_table_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++)
        weir_rule_free(t->routes[i].rule);
    free(t->routes);
    free_index(t);
    free(t);
}
