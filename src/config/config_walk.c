/* Walking YAML nodes against key tables.
 *
 * Each section of the configuration is a static table of keys (Traefik's
 * spelling) with a type and an offset or a setter. Keys match whatever their
 * case, as Traefik's YAML decoder (paerser) does; names chosen by the user
 * (routers, services, entry points) stay case-sensitive. Every problem is
 * recorded and the walk goes on, so one run reports all of them.
 */
#define WEIR_CONFIG_INTERNAL
#include "config/config.h"

#include <ctype.h>
#include <limits.h>

weir_pos_t weir_config_pos(const weir_config_ctx_t *ctx, const weir_config_node_t *n)
{
    weir_pos_t p = {ctx->file, 1, 1};
    if (n) {
        p.line = n->line;
        p.col = n->col;
    }
    return p;
}

/* ---- key path ---- */

static void path_append(weir_config_ctx_t *ctx, const char *s, size_t n)
{
    if (ctx->path_len + n + 1 > ctx->path_cap) {
        ctx->path_cap = (ctx->path_len + n + 1) * 2;
        ctx->path = weir_config_xrealloc(ctx->path, ctx->path_cap);
    }
    memcpy(ctx->path + ctx->path_len, s, n);
    ctx->path_len += n;
    ctx->path[ctx->path_len] = '\0';
}

size_t weir_config_path_push(weir_config_ctx_t *ctx, const char *name)
{
    size_t mark = ctx->path_len;
    if (ctx->path_len) path_append(ctx, ".", 1);
    path_append(ctx, name, strlen(name));
    return mark;
}

size_t weir_config_path_push_index(weir_config_ctx_t *ctx, size_t i)
{
    size_t mark = ctx->path_len;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "[%zu]", i);
    path_append(ctx, buf, (size_t)n);
    return mark;
}

void weir_config_path_pop(weir_config_ctx_t *ctx, size_t mark)
{
    ctx->path_len = mark;
    if (ctx->path) ctx->path[mark] = '\0';
}

/* ---- suggestions ---- */

/* Levenshtein distance, ASCII case ignored; gives up (returns max + 1) when
 * the lengths alone rule out a distance <= max. */
static size_t distance(const char *a, const char *b, size_t max)
{
    size_t la = strlen(a), lb = strlen(b);
    if ((la > lb ? la - lb : lb - la) > max || la > 256 || lb > 256) return max + 1;
    size_t row[257];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

int weir_config_suggest(const char *word, const char *const *cands, size_t n)
{
    int best = -1;
    size_t best_d = 3;
    if (!word || !*word) return -1;
    for (size_t i = 0; i < n; i++) {
        size_t d = distance(word, cands[i], 2);
        if (d < best_d) {
            best_d = d;
            best = (int)i;
        }
    }
    return best;
}

/* ---- scalars ---- */

bool weir_config_is_empty(const weir_config_node_t *n)
{
    return !n || (n->kind == WEIR_CONFIG_SCALAR && n->is_null);
}

const weir_config_node_t *weir_config_map_get(const weir_config_node_t *n, const char *key)
{
    if (!n || n->kind != WEIR_CONFIG_MAP) return NULL;
    for (size_t i = 0; i + 1 < n->count; i += 2)
        if (n->items[i]->kind == WEIR_CONFIG_SCALAR && strcasecmp(n->items[i]->text, key) == 0)
            return n->items[i + 1];
    return NULL;
}

const char *weir_config_describe(const weir_config_node_t *n, char *buf, size_t cap)
{
    if (weir_config_is_empty(n)) return "nothing";
    if (n->kind == WEIR_CONFIG_MAP) return "a map";
    if (n->kind == WEIR_CONFIG_SEQ) return "a list";
    /* quote the value, cut long ones, and keep control bytes out of messages */
    size_t o = 0;
    buf[o++] = '"';
    for (size_t i = 0; i < n->len && o + 6 < cap; i++) {
        unsigned char c = (unsigned char)n->text[i];
        if (i == 40) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        buf[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static void type_error(weir_config_ctx_t *ctx, const weir_config_node_t *n, const char *want)
{
    char buf[64];
    weir_config_key_error(ctx, n, "expected %s, got %s", want,
                          weir_config_describe(n, buf, sizeof buf));
}

static bool scalar(weir_config_ctx_t *ctx, const weir_config_node_t *n, const char *want)
{
    if (weir_config_is_empty(n) || n->kind != WEIR_CONFIG_SCALAR) {
        type_error(ctx, n, want);
        return false;
    }
    return true;
}

bool weir_config_get_string(weir_config_ctx_t *ctx, const weir_config_node_t *n, char **out)
{
    if (n && n->kind == WEIR_CONFIG_SCALAR && n->is_null) {
        free(*out);
        *out = weir_config_xstrdup("");
        return true;
    }
    if (!scalar(ctx, n, "a string")) return false;
    if (strlen(n->text) != n->len) {
        weir_config_key_error(ctx, n, "the value contains a NUL character");
        return false;
    }
    free(*out);
    *out = weir_config_xstrdup(n->text);
    return true;
}

bool weir_config_get_bool(weir_config_ctx_t *ctx, const weir_config_node_t *n, int *out)
{
    /* Go's strconv.ParseBool, which Traefik applies to every value */
    static const char *const yes[] = {"true", "True", "TRUE", "t", "T", "1"};
    static const char *const no[] = {"false", "False", "FALSE", "f", "F", "0"};
    if (!scalar(ctx, n, "true or false")) return false;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcmp(n->text, yes[i]) == 0) {
            *out = 1;
            return true;
        }
        if (strcmp(n->text, no[i]) == 0) {
            *out = 0;
            return true;
        }
    }
    type_error(ctx, n, "true or false");
    return false;
}

/* Decimal integers with an optional sign. Quoted numbers are accepted, as
 * Traefik converts every value from its text. */
static bool parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = *p == '-';
    if (*p == '-' || *p == '+') p++;
    if (!*p) return false;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        if (v > ((uint64_t)INT64_MAX + 1) / 10) return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > (uint64_t)INT64_MAX + (neg ? 1 : 0)) return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

bool weir_config_get_int(weir_config_ctx_t *ctx, const weir_config_node_t *n, int64_t min,
                         int64_t max, int64_t *out)
{
    if (!scalar(ctx, n, "an integer")) return false;
    int64_t v;
    if (!parse_int(n->text, &v)) {
        type_error(ctx, n, "an integer");
        return false;
    }
    if (v < min || v > max) {
        weir_config_key_error(ctx, n, "%lld is out of range (%lld to %lld)", (long long)v,
                              (long long)min, (long long)max);
        return false;
    }
    *out = v;
    return true;
}

bool weir_config_get_duration(weir_config_ctx_t *ctx, const weir_config_node_t *n, int64_t *out)
{
    if (!scalar(ctx, n, "a duration")) return false;
    if (strlen(n->text) != n->len || weir_duration_parse(n->text, out) < 0) {
        char buf[64];
        weir_config_key_error(ctx, n,
                              "invalid duration %s (use Go syntax such as \"10s\", "
                              "\"1m30s\", \"250ms\", or a number of seconds)",
                              weir_config_describe(n, buf, sizeof buf));
        return false;
    }
    return true;
}

/* ---- tables ---- */

static const weir_config_key_t *find_key(const weir_config_key_t *table, const char *name)
{
    for (const weir_config_key_t *k = table; k->name; k++)
        if (strcasecmp(k->name, name) == 0) return k;
    return NULL;
}

static void unknown_key(weir_config_ctx_t *ctx, const weir_config_node_t *key,
                        const weir_config_key_t *table)
{
    const char *cands[128];
    size_t n = 0;
    for (const weir_config_key_t *k = table; k->name && n < 128; k++)
        cands[n++] = k->name;
    int s = weir_config_suggest(key->text, cands, n);
    char hint[160] = "";
    if (s >= 0) snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", cands[s]);
    char buf[64];
    const char *name = weir_config_describe(key, buf, sizeof buf);
    if (ctx->path_len)
        weir_config_error(ctx, weir_config_pos(ctx, key), "unknown key %s in %s%s", name, ctx->path,
                          hint);
    else
        weir_config_error(ctx, weir_config_pos(ctx, key), "unknown top-level key %s%s", name, hint);
}

static void set_value(weir_config_ctx_t *ctx, const weir_config_key_t *k,
                      const weir_config_node_t *key, const weir_config_node_t *v, void *target)
{
    char *field = (char *)target + k->offset;
    int64_t i;
    switch (k->type) {
    case WEIR_KEY_STRING: {
        char **s = (char **)field;
        if (weir_config_get_string(ctx, v, s) && !**s) {
            free(*s);
            *s = NULL;
        }
        break;
    }
    case WEIR_KEY_BOOL:
        weir_config_get_bool(ctx, v, (int *)field);
        break;
    case WEIR_KEY_UINT:
        if (weir_config_get_int(ctx, v, 0, INT_MAX, &i)) *(int *)field = (int)i;
        break;
    case WEIR_KEY_DURATION:
        weir_config_get_duration(ctx, v, (int64_t *)field);
        break;
    case WEIR_KEY_SECTION:
        weir_config_walk_map(ctx, v, k->section, field);
        break;
    case WEIR_KEY_CUSTOM:
        k->set(ctx, key, v, target);
        break;
    case WEIR_KEY_UNSUPPORTED:
        weir_config_key_error(ctx, key, "not supported yet");
        break;
    }
}

/* Index of an earlier key of map n equal to key i, ASCII case ignored. */
static size_t earlier_key(const weir_config_node_t *n, size_t i)
{
    for (size_t j = 0; j < i; j += 2)
        if (n->items[j]->kind == WEIR_CONFIG_SCALAR &&
            strcasecmp(n->items[j]->text, n->items[i]->text) == 0)
            return j;
    return i;
}

static bool key_ok(weir_config_ctx_t *ctx, const weir_config_node_t *key)
{
    if (key->kind != WEIR_CONFIG_SCALAR || strlen(key->text) != key->len) {
        char buf[64];
        weir_config_key_error(ctx, key, "a key must be a string, got %s",
                              weir_config_describe(key, buf, sizeof buf));
        return false;
    }
    return true;
}

void weir_config_walk_map(weir_config_ctx_t *ctx, const weir_config_node_t *n,
                          const weir_config_key_t *table, void *target)
{
    if (weir_config_is_empty(n)) return;
    if (n->kind != WEIR_CONFIG_MAP) {
        type_error(ctx, n, "a map");
        return;
    }
    for (size_t i = 0; i + 1 < n->count; i += 2) {
        const weir_config_node_t *key = n->items[i];
        if (!key_ok(ctx, key)) continue;
        size_t j = earlier_key(n, i);
        if (j != i) {
            weir_config_key_error(ctx, key, "duplicate key \"%s\" (first at line %d)", key->text,
                                  n->items[j]->line);
            continue;
        }
        const weir_config_key_t *k = find_key(table, key->text);
        if (!k) {
            unknown_key(ctx, key, table);
            continue;
        }
        if (ctx->dynamic_only && (k->flags & WEIR_KEY_STATIC)) continue;
        size_t mark = weir_config_path_push(ctx, k->name);
        set_value(ctx, k, key, n->items[i + 1], target);
        weir_config_path_pop(ctx, mark);
    }
}

static int cmp_names(const void *pa, const void *pb)
{
    const weir_config_node_t *const *a = pa, *const *b = pb;
    int c = strcmp((*a)->text, (*b)->text);
    if (c) return c;
    /* same name: the earlier one in the file first */
    return (*a)->line != (*b)->line ? ((*a)->line < (*b)->line ? -1 : 1)
                                    : ((*a)->col < (*b)->col ? -1 : (*a)->col > (*b)->col);
}

/* Marks names that repeat an earlier one (exact, case-sensitive) with an
 * error, and returns them so that the walk skips them. Sorting keeps this
 * O(n log n) for files with thousands of routers. */
static const weir_config_node_t **repeated_names(weir_config_ctx_t *ctx,
                                                 const weir_config_node_t *n, size_t *count)
{
    size_t pairs = n->count / 2, k = 0;
    const weir_config_node_t **keys = weir_config_xalloc(pairs * sizeof *keys);
    for (size_t i = 0; i < pairs; i++)
        if (n->items[2 * i]->kind == WEIR_CONFIG_SCALAR) keys[k++] = n->items[2 * i];
    qsort(keys, k, sizeof *keys, cmp_names);
    const weir_config_node_t **dups = weir_config_xalloc(k * sizeof *dups);
    *count = 0;
    for (size_t i = 1; i < k; i++) {
        if (strcmp(keys[i]->text, keys[i - 1]->text) != 0) continue;
        size_t first = i - 1;
        while (first > 0 && strcmp(keys[first - 1]->text, keys[i]->text) == 0)
            first--;
        size_t mark = weir_config_path_push(ctx, keys[i]->text);
        weir_config_key_error(ctx, keys[i], "defined twice in this map (first at line %d)",
                              keys[first]->line);
        weir_config_path_pop(ctx, mark);
        dups[(*count)++] = keys[i];
    }
    free(keys);
    return dups;
}

static bool in_list(const weir_config_node_t **list, size_t n, const weir_config_node_t *x)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == x) return true;
    return false;
}

void weir_config_walk_names(weir_config_ctx_t *ctx, const weir_config_node_t *n,
                            weir_config_name_fn fn, void *arg)
{
    if (weir_config_is_empty(n)) return;
    if (n->kind != WEIR_CONFIG_MAP) {
        type_error(ctx, n, "a map of names");
        return;
    }
    size_t num_dups;
    const weir_config_node_t **dups = repeated_names(ctx, n, &num_dups);
    for (size_t i = 0; i + 1 < n->count; i += 2) {
        const weir_config_node_t *key = n->items[i];
        if (!key_ok(ctx, key) || in_list(dups, num_dups, key)) continue;
        if (!*key->text) {
            weir_config_key_error(ctx, key, "a name must not be empty");
            continue;
        }
        size_t mark = weir_config_path_push(ctx, key->text);
        fn(ctx, key, n->items[i + 1], arg);
        weir_config_path_pop(ctx, mark);
    }
    free(dups);
}

void weir_config_walk_list(weir_config_ctx_t *ctx, const weir_config_node_t *n,
                           weir_config_item_fn fn, void *arg)
{
    if (weir_config_is_empty(n)) return;
    if (n->kind != WEIR_CONFIG_SEQ) {
        type_error(ctx, n, "a list");
        return;
    }
    for (size_t i = 0; i < n->count; i++) {
        size_t mark = weir_config_path_push_index(ctx, i);
        fn(ctx, n->items[i], i, arg);
        weir_config_path_pop(ctx, mark);
    }
}
