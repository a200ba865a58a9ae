/* libyaml's event stream to a tree of nodes that keep their positions.
 *
 * The only place weir talks to libyaml. Anchors, aliases and merge keys
 * ("<<", as go-yaml and so Traefik accept them) are resolved here, so the
 * walkers see plain maps, lists and scalars. Nothing recurses on the depth
 * of the input: open collections live on an explicit stack.
 */
#define WEIR_CONFIG_INTERNAL
#include "config/config.h"

#include <yaml.h>

/* Aliases may add at most this many nodes to a document: enough for real
 * files that share blocks, and a stop for "billion laughs" inputs. */
#define MAX_ALIAS_EXPANSION 100000

typedef struct {
    char *name;
    weir_config_node_t *node;
} anchor_t;

typedef struct {
    weir_config_node_t *node;
    char *anchor; /* registered when the collection is complete */
} open_t;

typedef struct {
    weir_config_doc_t *doc;
    weir_config_yaml_error_t *err;
    open_t *stack;
    size_t depth;
    anchor_t *anchors;
    size_t num_anchors;
    int documents;
    size_t raw_nodes;
    bool failed;
} builder_t;

static void fail(builder_t *b, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(builder_t *b, yaml_mark_t mark, const char *fmt, ...)
{
    if (b->failed) return;
    b->failed = true;
    b->err->line = (int)mark.line + 1;
    b->err->col = (int)mark.column + 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err->msg, sizeof b->err->msg, fmt, ap);
    va_end(ap);
}

static weir_config_node_t *new_node(builder_t *b, weir_config_node_kind_t kind, yaml_mark_t m)
{
    weir_config_doc_t *d = b->doc;
    weir_config_node_t *n = weir_config_xalloc(sizeof *n);
    n->kind = kind;
    n->line = (int)m.line + 1;
    n->col = (int)m.column + 1;
    n->weight = 1;
    d->all = weir_config_grow(d->all, d->num_all, sizeof *d->all);
    d->all[d->num_all++] = n;
    b->raw_nodes++;
    return n;
}

static void append_item(weir_config_node_t *parent, weir_config_node_t *child)
{
    parent->items = weir_config_grow(parent->items, parent->count, sizeof *parent->items);
    parent->items[parent->count++] = child;
    parent->weight += child->weight;
}

static bool too_big(const builder_t *b, const weir_config_node_t *n)
{
    return n->weight > b->raw_nodes + MAX_ALIAS_EXPANSION;
}

/* Hands a finished node to its parent (or makes it the root). */
static void attach(builder_t *b, weir_config_node_t *n, yaml_mark_t mark)
{
    if (b->depth == 0) {
        b->doc->root = n;
        return;
    }
    weir_config_node_t *parent = b->stack[b->depth - 1].node;
    append_item(parent, n);
    if (too_big(b, parent))
        fail(b, mark, "aliases expand to too many nodes (more than %d added)", MAX_ALIAS_EXPANSION);
}

static void add_anchor(builder_t *b, const char *name, weir_config_node_t *n)
{
    if (!name) return;
    b->anchors = weir_config_grow(b->anchors, b->num_anchors, sizeof *b->anchors);
    b->anchors[b->num_anchors].name = weir_config_xstrdup(name);
    b->anchors[b->num_anchors].node = n;
    b->num_anchors++;
}

/* The latest definition wins, as YAML allows an anchor to be redefined. */
static weir_config_node_t *find_anchor(const builder_t *b, const char *name)
{
    for (size_t i = b->num_anchors; i-- > 0;)
        if (strcmp(b->anchors[i].name, name) == 0) return b->anchors[i].node;
    return NULL;
}

static bool plain_null(const char *s, size_t len)
{
    return len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

static void on_scalar(builder_t *b, const yaml_event_t *ev)
{
    weir_config_node_t *n = new_node(b, WEIR_CONFIG_SCALAR, ev->start_mark);
    size_t len = ev->data.scalar.length;
    n->text = weir_config_xalloc(len + 1);
    memcpy(n->text, ev->data.scalar.value, len);
    n->len = len;
    n->multiline = ev->end_mark.line != ev->start_mark.line;
    switch (ev->data.scalar.style) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
        n->style = WEIR_CONFIG_SINGLE_QUOTED;
        break;
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        n->style = WEIR_CONFIG_DOUBLE_QUOTED;
        break;
    case YAML_LITERAL_SCALAR_STYLE:
    case YAML_FOLDED_SCALAR_STYLE:
        n->style = WEIR_CONFIG_BLOCK;
        break;
    default:
        n->style = WEIR_CONFIG_PLAIN;
        /* an explicit tag (!!str) makes even an empty scalar a value */
        n->is_null = !ev->data.scalar.tag && plain_null(n->text, len);
        break;
    }
    add_anchor(b, (const char *)ev->data.scalar.anchor, n);
    attach(b, n, ev->start_mark);
}

static void on_start(builder_t *b, const yaml_event_t *ev, weir_config_node_kind_t kind)
{
    const yaml_char_t *anchor =
        kind == WEIR_CONFIG_MAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    weir_config_node_t *n = new_node(b, kind, ev->start_mark);
    b->stack = weir_config_grow(b->stack, b->depth, sizeof *b->stack);
    b->stack[b->depth].node = n;
    b->stack[b->depth].anchor = anchor ? weir_config_xstrdup((const char *)anchor) : NULL;
    b->depth++;
}

static bool is_merge_key(const weir_config_node_t *k)
{
    return k->kind == WEIR_CONFIG_SCALAR && k->style == WEIR_CONFIG_PLAIN &&
           strcmp(k->text, "<<") == 0;
}

/* True if scalar key k is among the first count items of a map. */
static bool map_has(weir_config_node_t *const *items, size_t count, const weir_config_node_t *k)
{
    if (k->kind != WEIR_CONFIG_SCALAR) return false;
    for (size_t i = 0; i < count; i += 2)
        if (items[i]->kind == WEIR_CONFIG_SCALAR && items[i]->len == k->len &&
            memcmp(items[i]->text, k->text, k->len) == 0)
            return true;
    return false;
}

static void merge_from(weir_config_node_t *m, const weir_config_node_t *src)
{
    for (size_t i = 0; i + 1 < src->count; i += 2) {
        if (map_has(m->items, m->count, src->items[i])) continue;
        append_item(m, src->items[i]);
        append_item(m, src->items[i + 1]);
    }
}

/* Rebuilds map m without its "<<" keys, then appends the pairs of the maps
 * they name whose keys m does not already have (explicit keys win, and among
 * merged maps the first listed wins, as in YAML 1.1 and go-yaml). */
static void apply_merges(builder_t *b, weir_config_node_t *m)
{
    bool any = false;
    for (size_t i = 0; i < m->count; i += 2)
        any = any || is_merge_key(m->items[i]);
    if (!any) return;
    weir_config_node_t **old = m->items;
    size_t old_count = m->count;
    m->items = NULL;
    m->count = 0;
    m->weight = 1;
    for (size_t i = 0; i < old_count; i += 2)
        if (!is_merge_key(old[i])) {
            append_item(m, old[i]);
            append_item(m, old[i + 1]);
        }
    for (size_t i = 0; i < old_count && !b->failed; i += 2) {
        if (!is_merge_key(old[i])) continue;
        const weir_config_node_t *v = old[i + 1];
        yaml_mark_t mark = {.line = (size_t)old[i]->line - 1, .column = (size_t)old[i]->col - 1};
        if (v->kind == WEIR_CONFIG_MAP) {
            merge_from(m, v);
            continue;
        }
        if (v->kind != WEIR_CONFIG_SEQ) {
            fail(b, mark, "the merge key \"<<\" needs a map or a list of maps");
            break;
        }
        for (size_t k = 0; k < v->count && !b->failed; k++) {
            if (v->items[k]->kind != WEIR_CONFIG_MAP)
                fail(b, mark, "the merge key \"<<\" needs a map or a list of maps");
            else
                merge_from(m, v->items[k]);
        }
    }
    free(old);
}

static void on_end(builder_t *b, const yaml_event_t *ev)
{
    if (b->depth == 0) return; /* libyaml never sends an unbalanced end */
    open_t top = b->stack[--b->depth];
    weir_config_node_t *n = top.node;
    if (n->kind == WEIR_CONFIG_MAP) apply_merges(b, n);
    add_anchor(b, top.anchor, n);
    free(top.anchor);
    if (too_big(b, n))
        fail(b, ev->start_mark, "aliases expand to too many nodes (more than %d added)",
             MAX_ALIAS_EXPANSION);
    attach(b, n, ev->start_mark);
}

static void on_alias(builder_t *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    weir_config_node_t *n = find_anchor(b, name);
    /* An anchor is registered when its node is complete, so an alias inside
     * its own anchor's node is unknown here: no cycles in the tree. */
    if (!n) {
        fail(b, ev->start_mark, "unknown anchor \"%s\" (an alias must follow its anchor)", name);
        return;
    }
    attach(b, n, ev->start_mark);
}

static void on_event(builder_t *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1)
            fail(b, ev->start_mark, "several YAML documents in one file are not supported");
        break;
    case YAML_SCALAR_EVENT:
        on_scalar(b, ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
        on_start(b, ev, WEIR_CONFIG_SEQ);
        break;
    case YAML_MAPPING_START_EVENT:
        on_start(b, ev, WEIR_CONFIG_MAP);
        break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        on_end(b, ev);
        break;
    case YAML_ALIAS_EVENT:
        on_alias(b, ev);
        break;
    default:
        break;
    }
}

/* Line and column of a byte offset (reader errors carry only an offset). */
static void offset_pos(const char *data, size_t len, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (data[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)data[i] & 0xc0) != 0x80) {
            (*col)++;
        }
    }
}

static void syntax_error(builder_t *b, const yaml_parser_t *p, const char *data, size_t len)
{
    b->failed = true;
    weir_config_yaml_error_t *e = b->err;
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_READER_ERROR) {
        offset_pos(data, len, p->problem_offset, &e->line, &e->col);
        snprintf(e->msg, sizeof e->msg, "YAML syntax error: %s", problem);
        return;
    }
    e->line = (int)p->problem_mark.line + 1;
    e->col = (int)p->problem_mark.column + 1;
    if (p->context)
        snprintf(e->msg, sizeof e->msg, "YAML syntax error: %s (%s at line %d, column %d)", problem,
                 p->context, (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    else
        snprintf(e->msg, sizeof e->msg, "YAML syntax error: %s", problem);
}

static void builder_free(builder_t *b)
{
    for (size_t i = 0; i < b->depth; i++)
        free(b->stack[i].anchor);
    free(b->stack);
    for (size_t i = 0; i < b->num_anchors; i++)
        free(b->anchors[i].name);
    free(b->anchors);
}

int weir_config_yaml_parse(const char *data, size_t len, weir_config_doc_t *doc,
                           weir_config_yaml_error_t *err)
{
    memset(doc, 0, sizeof *doc);
    memset(err, 0, sizeof *err);
    builder_t b = {.doc = doc, .err = err};
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) abort();
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    for (bool done = false; !done && !b.failed;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            syntax_error(&b, &parser, data, len);
            break;
        }
        on_event(&b, &ev);
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    builder_free(&b);
    if (b.failed) {
        weir_config_yaml_free(doc);
        return -1;
    }
    return 0;
}

void weir_config_yaml_free(weir_config_doc_t *doc)
{
    for (size_t i = 0; i < doc->num_all; i++) {
        free(doc->all[i]->text);
        free(doc->all[i]->items);
        free(doc->all[i]);
    }
    free(doc->all);
    memset(doc, 0, sizeof *doc);
}
