/* The rule language: text -> matcher tree -> evaluation.
 *
 *   expr  := or
 *   or    := and ('||' and)*
 *   and   := unary ('&&' unary)*
 *   unary := '!' unary | '(' expr ')' | Name '(' [string (',' string)*] ')'
 *
 * A hand-written lexer and recursive-descent parser. && and || chains
 * become n-ary nodes, so only parentheses and '!' add depth, and those are
 * capped at MAX_DEPTH: the parser, the evaluator and the destructor recurse
 * no deeper than that. Errors keep the first problem found, with the byte
 * offset of the token at fault. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "rules/rules.h"

#define MAX_DEPTH 64
#define MAX_ARGS 2
#define QUERY_VALUE_MAX 2048 /* longest decoded query value a QueryRegexp sees */

typedef enum {
    M_HOST,
    M_HOST_REGEXP,
    M_PATH,
    M_PATH_PREFIX,
    M_PATH_REGEXP,
    M_METHOD,
    M_HEADER,
    M_HEADER_REGEXP,
    M_QUERY,
    M_QUERY_REGEXP,
    M_CLIENT_IP,
    M_HOST_SNI,
    M_HOST_SNI_REGEXP,
    M_ALPN,
} matcher_id_t;

#define KIND_HTTP 1u
#define KIND_TCP 2u

typedef struct {
    const char *name;
    matcher_id_t id;
    unsigned kinds;
    uint8_t min_args, max_args;
} matcher_def_t;

static const matcher_def_t matchers[] = {
    {"Host", M_HOST, KIND_HTTP, 1, 1},
    {"HostRegexp", M_HOST_REGEXP, KIND_HTTP, 1, 1},
    {"Path", M_PATH, KIND_HTTP, 1, 1},
    {"PathPrefix", M_PATH_PREFIX, KIND_HTTP, 1, 1},
    {"PathRegexp", M_PATH_REGEXP, KIND_HTTP, 1, 1},
    {"Method", M_METHOD, KIND_HTTP, 1, 1},
    {"Header", M_HEADER, KIND_HTTP, 2, 2},
    {"HeaderRegexp", M_HEADER_REGEXP, KIND_HTTP, 2, 2},
    {"Query", M_QUERY, KIND_HTTP, 1, 2},
    {"QueryRegexp", M_QUERY_REGEXP, KIND_HTTP, 1, 2},
    {"ClientIP", M_CLIENT_IP, KIND_HTTP | KIND_TCP, 1, 1},
    {"HostSNI", M_HOST_SNI, KIND_TCP, 1, 1},
    {"HostSNIRegexp", M_HOST_SNI_REGEXP, KIND_TCP, 1, 1},
    {"ALPN", M_ALPN, KIND_TCP, 1, 1},
};

#define NUM_MATCHERS (sizeof(matchers) / sizeof(matchers[0]))

/* An owned, NUL-terminated argument (NUL terminated so that inet_pton and
 * error messages can use it; len is authoritative). */
typedef struct {
    char *ptr;
    size_t len;
} str_t;

typedef struct {
    matcher_id_t id;
    str_t a, b; /* arguments, normalised for comparison */
    weir_regex_t *re;
    weir_cidr_t cidr;
} leaf_t;

typedef enum { N_LEAF, N_NOT, N_AND, N_OR } node_kind_t;

typedef struct node node_t;
struct node {
    node_kind_t kind;
    union {
        leaf_t leaf;
        node_t *child;
        struct {
            node_t **kids;
            size_t n, cap;
        } list;
    } u;
};

struct weir_rule {
    weir_rule_kind_t kind;
    node_t *root;
};

/* ---- tree ---- */

static void free_str(str_t *s)
{
    free(s->ptr);
    s->ptr = NULL;
}

static void free_node(node_t *n)
{
    if (!n) return;
    switch (n->kind) {
    case N_LEAF:
        free_str(&n->u.leaf.a);
        free_str(&n->u.leaf.b);
        weir_regex_free(n->u.leaf.re);
        break;
    case N_NOT:
        free_node(n->u.child);
        break;
    case N_AND:
    case N_OR:
        for (size_t i = 0; i < n->u.list.n; i++)
            free_node(n->u.list.kids[i]);
        free(n->u.list.kids);
        break;
    }
    free(n);
}

static node_t *new_node(node_kind_t kind)
{
    node_t *n = calloc(1, sizeof(*n));
    if (n) n->kind = kind;
    return n;
}

static int list_push(node_t *list, node_t *kid)
{
    if (list->u.list.n == list->u.list.cap) {
        size_t cap = list->u.list.cap ? list->u.list.cap * 2 : 4;
        node_t **k = realloc(list->u.list.kids, cap * sizeof(*k));
        if (!k) return -1;
        list->u.list.kids = k;
        list->u.list.cap = cap;
    }
    list->u.list.kids[list->u.list.n++] = kid;
    return 0;
}

/* ---- lexer ---- */

typedef enum {
    T_EOF,
    T_IDENT,
    T_STRING,
    T_LPAREN,
    T_RPAREN,
    T_COMMA,
    T_AND,
    T_OR,
    T_NOT,
    T_ERROR,
} tok_kind_t;

typedef struct {
    tok_kind_t kind;
    size_t off, len;
} token_t;

typedef struct {
    const char *s;
    size_t len, pos;
    token_t tok; /* lookahead */
    weir_rule_kind_t kind;
    int depth;
    bool failed;
    weir_rule_error_t *err;
} parser_t;

/* Records the first error only: later ones are usually consequences. */
__attribute__((format(printf, 3, 4))) static void fail(parser_t *p, size_t off, const char *fmt,
                                                       ...)
{
    if (p->failed) return;
    p->failed = true;
    if (!p->err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
    va_end(ap);
    p->err->offset = off;
}

static void describe(const parser_t *p, const token_t *t, char *buf, size_t cap)
{
    switch (t->kind) {
    case T_EOF:
        snprintf(buf, cap, "end of rule");
        break;
    case T_IDENT:
        snprintf(buf, cap, "\"%.*s\"", (int)(t->len > 40 ? 40 : t->len), p->s + t->off);
        break;
    case T_STRING:
        snprintf(buf, cap, "a string");
        break;
    case T_AND:
        snprintf(buf, cap, "'&&'");
        break;
    case T_OR:
        snprintf(buf, cap, "'||'");
        break;
    default:
        snprintf(buf, cap, "'%c'", p->s[t->off]);
        break;
    }
}

/* "<what>, found <token>" at the lookahead token. */
static void fail_found(parser_t *p, const char *what)
{
    char found[64];
    if (p->tok.kind == T_ERROR) return;
    describe(p, &p->tok, found, sizeof(found));
    fail(p, p->tok.off, "%s, found %s", what, found);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* Returns the length of the string literal at off, or 0 after reporting an
 * unterminated one. Go forbids newlines inside double-quoted literals. */
static size_t scan_string(parser_t *p, size_t off)
{
    char quote = p->s[off];
    for (size_t i = off + 1; i < p->len; i++) {
        char c = p->s[i];
        if (c == quote) return i - off + 1;
        if (quote == '"' && c == '\n') break;
        if (quote == '"' && c == '\\') i++;
    }
    fail(p, off, "unterminated string");
    return 0;
}

static void lex_error(parser_t *p, size_t off)
{
    unsigned char c = (unsigned char)p->s[off];
    if (c == '&' || c == '|')
        fail(p, off, "unexpected '%c' (did you mean '%c%c'?)", c, c, c);
    else if (c == '\'')
        fail(p, off, "single quotes are not allowed; use backticks or double quotes");
    else if (c > 0x20 && c < 0x7f)
        fail(p, off, "unexpected character '%c'", c);
    else
        fail(p, off, "unexpected byte 0x%02x", c);
}

/* Scans the token at pos into t (t->off set, t->len 1 on entry). */
static void scan_token(parser_t *p, token_t *t)
{
    const char *c = p->s + t->off;
    size_t rest = p->len - t->off;
    switch (*c) {
    case '(':
        t->kind = T_LPAREN;
        return;
    case ')':
        t->kind = T_RPAREN;
        return;
    case ',':
        t->kind = T_COMMA;
        return;
    case '!':
        t->kind = T_NOT;
        return;
    case '`':
    case '"':
        t->len = scan_string(p, t->off);
        t->kind = t->len ? T_STRING : T_ERROR;
        return;
    }
    if ((*c == '&' || *c == '|') && rest > 1 && c[1] == *c) {
        t->kind = *c == '&' ? T_AND : T_OR;
        t->len = 2;
    } else if (is_ident_start(*c)) {
        while (t->len < rest && is_ident(c[t->len]))
            t->len++;
        t->kind = T_IDENT;
    } else {
        lex_error(p, t->off);
        t->kind = T_ERROR;
    }
}

static void next(parser_t *p)
{
    while (p->pos < p->len && is_space(p->s[p->pos]))
        p->pos++;
    token_t t = {T_EOF, p->pos, 0};
    if (p->pos < p->len) {
        t.len = 1;
        scan_token(p, &t);
    }
    p->tok = t;
    if (t.kind == T_ERROR)
        p->pos = p->len; /* stop scanning; the error is recorded */
    else
        p->pos = t.off + t.len;
}

/* ---- string literals ---- */

static int hexdigit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Reads n digits of the given base at s; -1 if one is missing. */
static long read_digits(const char *s, size_t avail, size_t n, int base)
{
    long v = 0;
    if (avail < n) return -1;
    for (size_t i = 0; i < n; i++) {
        int d = hexdigit(s[i]);
        if (d < 0 || d >= base) return -1;
        v = v * base + d;
    }
    return v;
}

/* The one-character escapes of Go string literals; -1 for any other. */
static int simple_escape(char c)
{
    static const char from[] = "abfnrtv\\\"", to[] = "\a\b\f\n\r\t\v\\\"";
    const char *p = c ? strchr(from, c) : NULL;
    return p ? to[p - from] : -1;
}

/* Decodes one escape at s[i] (just after the backslash) into o. Returns the
 * number of bytes written and advances *i past the escape, or -1. */
static int decode_escape(parser_t *p, size_t *i, size_t end, char *o)
{
    size_t at = *i - 1; /* the backslash, for error offsets */
    const char *s = p->s + *i;
    size_t avail = end - *i;
    int simple = simple_escape(*s);
    if (simple >= 0) {
        *o = (char)simple;
        *i += 1;
        return 1;
    }
    long v;
    switch (*s) {
    case 'x':
        v = read_digits(s + 1, avail - 1, 2, 16);
        *i += 3;
        break;
    case 'u':
        v = read_digits(s + 1, avail - 1, 4, 16);
        *i += 5;
        break;
    case 'U':
        v = read_digits(s + 1, avail - 1, 8, 16);
        *i += 9;
        break;
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
        v = read_digits(s, avail, 3, 8);
        *i += 3;
        if (v > 255) v = -1;
        break;
    default:
        fail(p, at, "unknown escape sequence '\\%c'", *s > 0x20 && *s < 0x7f ? *s : '?');
        return -1;
    }
    if (v < 0) {
        fail(p, at, "malformed escape sequence");
        return -1;
    }
    if (*s == 'x' || (*s >= '0' && *s <= '7')) {
        *o = (char)v;
        return 1;
    }
    if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000)) {
        fail(p, at, "escape sequence is an invalid Unicode code point");
        return -1;
    }
    return (int)put_utf8(o, (uint32_t)v);
}

/* Turns the string token t into its value (Go literal rules: raw strings
 * drop '\r'; quoted strings take Go escapes). */
static int decode_string(parser_t *p, const token_t *t, str_t *out)
{
    size_t start = t->off + 1, end = t->off + t->len - 1;
    char *buf = malloc(end - start + 1);
    if (!buf) {
        fail(p, t->off, "out of memory");
        return -1;
    }
    size_t o = 0;
    for (size_t i = start; i < end;) {
        char c = p->s[i];
        if (c == '\\' && p->s[t->off] == '"') {
            i++;
            int n = decode_escape(p, &i, end, buf + o);
            if (n < 0) {
                free(buf);
                return -1;
            }
            o += (size_t)n;
            continue;
        }
        if (c != '\r' || p->s[t->off] != '`') buf[o++] = c;
        i++;
    }
    buf[o] = '\0';
    out->ptr = buf;
    out->len = o;
    return 0;
}

/* ---- matcher names ---- */

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/* Optimal string alignment distance, case-insensitive: a transposition
 * ("Hots") counts as one edit. Names are short; inputs over 32 bytes are
 * not worth a suggestion. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t d[33][33];
    if (la > 32 || lb > 32) return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = lower(a[i - 1]) != lower(b[j - 1]);
            size_t best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1]) && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

static unsigned kind_bit(weir_rule_kind_t kind)
{
    return kind == WEIR_RULE_TCP ? KIND_TCP : KIND_HTTP;
}

static void fail_unknown(parser_t *p, const token_t *name)
{
    const char *s = p->s + name->off;
    const matcher_def_t *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < NUM_MATCHERS; i++) {
        if (!(matchers[i].kinds & kind_bit(p->kind))) continue;
        size_t d = edit_distance(s, name->len, matchers[i].name, strlen(matchers[i].name));
        if (d < best_d) best = &matchers[i], best_d = d;
    }
    int shown = (int)(name->len > 40 ? 40 : name->len);
    size_t limit = 1 + name->len / 4;
    if (best && best_d <= (limit > 3 ? 3 : limit))
        fail(p, name->off, "unknown matcher \"%.*s\" (did you mean \"%s\"?)", shown, s, best->name);
    else
        fail(p, name->off, "unknown matcher \"%.*s\"", shown, s);
}

static const matcher_def_t *lookup_matcher(parser_t *p, const token_t *name)
{
    for (size_t i = 0; i < NUM_MATCHERS; i++) {
        const matcher_def_t *m = &matchers[i];
        if (strlen(m->name) != name->len || strncasecmp(m->name, p->s + name->off, name->len))
            continue;
        if (m->kinds & kind_bit(p->kind)) return m;
        fail(p, name->off, "matcher %s is only valid in %s rules", m->name,
             p->kind == WEIR_RULE_TCP ? "HTTP" : "TCP");
        return NULL;
    }
    fail_unknown(p, name);
    return NULL;
}

/* ---- matcher arguments ---- */

typedef struct {
    str_t v[MAX_ARGS];
    size_t off[MAX_ARGS];
    bool raw[MAX_ARGS]; /* backtick literal: value offsets map to text offsets */
    size_t n;           /* as written, may exceed MAX_ARGS */
} args_t;

static void free_args(args_t *a)
{
    for (size_t i = 0; i < MAX_ARGS; i++)
        free_str(&a->v[i]);
}

static bool is_ascii(const str_t *s)
{
    for (size_t i = 0; i < s->len; i++)
        if ((unsigned char)s->ptr[i] >= 0x80) return false;
    return true;
}

static size_t count_char(const str_t *s, char c)
{
    size_t n = 0;
    for (size_t i = 0; i < s->len; i++)
        n += s->ptr[i] == c;
    return n;
}

/* Host and HostSNI arguments are compared against normalised request hosts:
 * lower-case, one trailing dot dropped, a bare IPv6 literal bracketed. */
static int normalize_host_arg(parser_t *p, const matcher_def_t *def, str_t *h, size_t off)
{
    if (!is_ascii(h)) {
        fail(p, off, "non-ASCII host in %s; use its punycode form", def->name);
        return -1;
    }
    size_t stars = count_char(h, '*');
    bool wildcard_ok = (h->len == 1 && stars == 1) ||
                       (stars == 1 && h->len > 2 && h->ptr[0] == '*' && h->ptr[1] == '.');
    if (stars && !wildcard_ok) {
        fail(p, off, "invalid wildcard in %s: only \"*\" or a leading \"*.\" label is allowed",
             def->name);
        return -1;
    }
    for (size_t i = 0; i < h->len; i++)
        h->ptr[i] = lower(h->ptr[i]);
    if (h->len > 1 && h->ptr[h->len - 1] == '.') h->ptr[--h->len] = '\0';
    if (h->ptr[0] != '[' && count_char(h, ':') >= 2) {
        char *b = malloc(h->len + 3);
        if (!b) {
            fail(p, off, "out of memory");
            return -1;
        }
        snprintf(b, h->len + 3, "[%s]", h->ptr);
        free(h->ptr);
        h->ptr = b;
        h->len += 2;
    }
    return 0;
}

/* Path and PathPrefix arguments get the routing-path form too, so that
 * Path(`/caf%C3%A9`) and Path(`/café`) both match a request for either. */
static int normalize_path_arg(parser_t *p, str_t *s, size_t off)
{
    if (s->ptr[0] != '/') {
        fail(p, off, "path \"%.*s\" must start with '/'", (int)(s->len > 40 ? 40 : s->len), s->ptr);
        return -1;
    }
    int n = weir_path_routing(weir_slice(s->ptr, s->len), s->ptr, s->len);
    s->len = (size_t)n; /* never longer than the input, and decoding in place is safe */
    s->ptr[s->len] = '\0';
    return 0;
}

static int compile_regex(parser_t *p, const matcher_def_t *def, args_t *a, size_t i, unsigned flags,
                         weir_regex_t **out)
{
    char msg[160];
    size_t erroff;
    if (weir_regex_compile(a->v[i].ptr, a->v[i].len, flags, out, msg, sizeof(msg), &erroff) == 0)
        return 0;
    size_t off = a->off[i];
    if (a->raw[i] && erroff <= a->v[i].len) off += 1 + erroff;
    fail(p, off, "invalid regexp in %s: %s", def->name, msg);
    return -1;
}

static int compile_client_ip(parser_t *p, args_t *a, weir_cidr_t *out)
{
    if (strlen(a->v[0].ptr) == a->v[0].len && weir_cidr_parse(a->v[0].ptr, out) == 0) return 0;
    fail(p, a->off[0], "invalid IP or CIDR \"%.*s\" in ClientIP",
         (int)(a->v[0].len > 60 ? 60 : a->v[0].len), a->v[0].ptr);
    return -1;
}

/* Moves argument i into s (the leaf takes ownership). */
static void take(args_t *a, size_t i, str_t *s)
{
    *s = a->v[i];
    a->v[i].ptr = NULL;
}

static int build_leaf(parser_t *p, const matcher_def_t *def, args_t *a, leaf_t *l)
{
    l->id = def->id;
    switch (def->id) {
    case M_HOST:
    case M_HOST_SNI:
        if (normalize_host_arg(p, def, &a->v[0], a->off[0]) < 0) return -1;
        take(a, 0, &l->a);
        return 0;
    case M_HOST_REGEXP:
    case M_HOST_SNI_REGEXP:
        if (!is_ascii(&a->v[0])) {
            fail(p, a->off[0], "non-ASCII pattern in %s; use punycode", def->name);
            return -1;
        }
        return compile_regex(p, def, a, 0, WEIR_REGEX_CASELESS, &l->re);
    case M_PATH:
    case M_PATH_PREFIX:
        if (normalize_path_arg(p, &a->v[0], a->off[0]) < 0) return -1;
        take(a, 0, &l->a);
        return 0;
    case M_PATH_REGEXP:
        return compile_regex(p, def, a, 0, 0, &l->re);
    case M_METHOD:
        /* The rule's method is upper-cased (gorilla/mux does); the request's
         * is compared as sent, since methods are case-sensitive. */
        for (char *c = a->v[0].ptr; *c; c++)
            if (*c >= 'a' && *c <= 'z') *c = (char)(*c - ('a' - 'A'));
        take(a, 0, &l->a);
        return 0;
    case M_HEADER:
    case M_QUERY:
        take(a, 0, &l->a);
        if (a->n == 2) take(a, 1, &l->b);
        return 0;
    case M_HEADER_REGEXP:
    case M_QUERY_REGEXP:
        take(a, 0, &l->a);
        if (a->n == 1) { /* QueryRegexp(`k`) is Query(`k`), as in Traefik */
            l->id = M_QUERY;
            return 0;
        }
        return compile_regex(p, def, a, 1, 0, &l->re);
    case M_CLIENT_IP:
        return compile_client_ip(p, a, &l->cidr);
    case M_ALPN:
        if (a->v[0].len == 10 && memcmp(a->v[0].ptr, "acme-tls/1", 10) == 0) {
            fail(p, a->off[0], "ALPN protocol \"acme-tls/1\" is not allowed");
            return -1;
        }
        take(a, 0, &l->a);
        return 0;
    }
    return -1;
}

static int check_args(parser_t *p, const matcher_def_t *def, const token_t *name, args_t *a)
{
    if (a->n < def->min_args || a->n > def->max_args) {
        if (def->min_args == def->max_args)
            fail(p, name->off, "%s takes %u argument%s, got %zu", def->name, def->min_args,
                 def->min_args == 1 ? "" : "s", a->n);
        else
            fail(p, name->off, "%s takes %u or %u arguments, got %zu", def->name, def->min_args,
                 def->max_args, a->n);
        return -1;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i].len == 0) {
            fail(p, a->off[i], "empty argument to %s", def->name);
            return -1;
        }
    }
    return 0;
}

/* ---- parser ---- */

/* Reads "( string, ... )" after a matcher name into a. */
static int parse_args(parser_t *p, const matcher_def_t *def, args_t *a)
{
    char what[80];
    next(p);
    if (p->tok.kind != T_LPAREN) {
        snprintf(what, sizeof(what), "expected '(' after %s", def->name);
        fail_found(p, what);
        return -1;
    }
    next(p);
    if (p->tok.kind == T_RPAREN) {
        next(p);
        return 0;
    }
    for (;;) {
        if (p->tok.kind == T_IDENT) {
            fail(p, p->tok.off, "arguments of %s must be quoted strings", def->name);
            return -1;
        }
        if (p->tok.kind == T_EOF) {
            fail(p, p->tok.off, "missing ')' after arguments of %s", def->name);
            return -1;
        }
        if (p->tok.kind != T_STRING) {
            snprintf(what, sizeof(what), "expected an argument of %s", def->name);
            fail_found(p, what);
            return -1;
        }
        if (a->n < MAX_ARGS) {
            a->off[a->n] = p->tok.off;
            a->raw[a->n] = p->s[p->tok.off] == '`';
            if (decode_string(p, &p->tok, &a->v[a->n]) < 0) return -1;
        }
        a->n++;
        next(p);
        if (p->tok.kind == T_RPAREN) break;
        if (p->tok.kind == T_EOF) {
            fail(p, p->tok.off, "missing ')' after arguments of %s", def->name);
            return -1;
        }
        if (p->tok.kind != T_COMMA) {
            snprintf(what, sizeof(what), "expected ',' or ')' in arguments of %s", def->name);
            fail_found(p, what);
            return -1;
        }
        next(p);
    }
    next(p);
    return 0;
}

static node_t *parse_matcher(parser_t *p)
{
    token_t name = p->tok;
    const matcher_def_t *def = lookup_matcher(p, &name);
    if (!def) return NULL;
    args_t a;
    memset(&a, 0, sizeof(a));
    node_t *n = NULL;
    if (parse_args(p, def, &a) == 0 && check_args(p, def, &name, &a) == 0) {
        n = new_node(N_LEAF);
        if (!n)
            fail(p, name.off, "out of memory");
        else if (build_leaf(p, def, &a, &n->u.leaf) < 0)
            free_node(n), n = NULL;
    }
    free_args(&a);
    return n;
}

static node_t *parse_or(parser_t *p);

static bool enter(parser_t *p)
{
    if (++p->depth <= MAX_DEPTH) return true;
    fail(p, p->tok.off, "rule nests too deeply");
    return false;
}

static node_t *parse_unary(parser_t *p)
{
    node_t *n, *e;
    size_t open = p->tok.off;
    switch (p->tok.kind) {
    case T_NOT:
        if (!enter(p)) return NULL;
        next(p);
        e = parse_unary(p);
        p->depth--;
        if (!e) return NULL;
        if (!(n = new_node(N_NOT))) {
            free_node(e);
            fail(p, open, "out of memory");
            return NULL;
        }
        n->u.child = e;
        return n;
    case T_LPAREN:
        if (!enter(p)) return NULL;
        next(p);
        e = parse_or(p);
        p->depth--;
        if (e && p->tok.kind != T_RPAREN) {
            if (p->tok.kind == T_EOF)
                fail(p, open, "unclosed '('");
            else
                fail_found(p, "expected ')'");
        }
        if (!e || p->failed) {
            free_node(e);
            return NULL;
        }
        next(p);
        return e;
    case T_IDENT:
        return parse_matcher(p);
    default:
        fail_found(p, "expected a matcher, '!' or '('");
        return NULL;
    }
}

/* One level of a binary operator: sub (op sub)* as an n-ary node. */
static node_t *parse_chain(parser_t *p, tok_kind_t op, node_kind_t kind, node_t *(*sub)(parser_t *))
{
    node_t *first = sub(p);
    if (!first || p->tok.kind != op) return first;
    node_t *list = new_node(kind);
    if (!list || list_push(list, first) < 0) {
        free(list);
        free_node(first);
        fail(p, p->tok.off, "out of memory");
        return NULL;
    }
    while (p->tok.kind == op) {
        next(p);
        node_t *k = sub(p);
        if (!k || list_push(list, k) < 0) {
            if (k) fail(p, p->tok.off, "out of memory");
            free_node(k);
            free_node(list);
            return NULL;
        }
    }
    return list;
}

static node_t *parse_and(parser_t *p)
{
    return parse_chain(p, T_AND, N_AND, parse_unary);
}

static node_t *parse_or(parser_t *p)
{
    return parse_chain(p, T_OR, N_OR, parse_and);
}

static node_t *parse_rule(parser_t *p)
{
    next(p);
    if (p->tok.kind == T_EOF) {
        fail(p, p->tok.off, "empty rule");
        return NULL;
    }
    node_t *root = parse_or(p);
    if (root && !p->failed && p->tok.kind != T_EOF) {
        if (p->tok.kind == T_RPAREN)
            fail(p, p->tok.off, "unmatched ')'");
        else
            fail_found(p, "expected '&&' or '||'");
    }
    if (p->failed) {
        free_node(root);
        return NULL;
    }
    return root;
}

int weir_rule_compile(const char *text, weir_rule_kind_t kind, weir_rule_t **out,
                      weir_rule_error_t *err)
{
    parser_t p;
    memset(&p, 0, sizeof(p));
    p.s = text ? text : "";
    p.len = strlen(p.s);
    p.kind = kind;
    p.err = err;
    *out = NULL;
    node_t *root = parse_rule(&p);
    if (!root) return -1;
    weir_rule_t *r = malloc(sizeof(*r));
    if (!r) {
        free_node(root);
        fail(&p, 0, "out of memory");
        return -1;
    }
    r->kind = kind;
    r->root = root;
    *out = r;
    return 0;
}

void weir_rule_free(weir_rule_t *rule)
{
    if (!rule) return;
    free_node(rule->root);
    free(rule);
}

weir_rule_kind_t weir_rule_kind(const weir_rule_t *rule)
{
    return rule->kind;
}

int64_t weir_rule_default_priority(const char *text, weir_rule_kind_t kind)
{
    static const char catch_all[] = "HostSNI(`*`)";
    if (!text) return 0;
    size_t len = strlen(text);
    if (kind == WEIR_RULE_TCP) {
        const char *s = text, *e = text + len;
        while (s < e && is_space(*s))
            s++;
        while (e > s && is_space(e[-1]))
            e--;
        if ((size_t)(e - s) == sizeof(catch_all) - 1 && memcmp(s, catch_all, e - s) == 0) return -1;
    }
    return (int64_t)len;
}

static bool leaf_exact_host(const node_t *n, weir_rule_kind_t kind, weir_slice_t *host)
{
    if (n->kind != N_LEAF) return false;
    matcher_id_t want = kind == WEIR_RULE_TCP ? M_HOST_SNI : M_HOST;
    const leaf_t *l = &n->u.leaf;
    if (l->id != want || l->a.ptr[0] == '*') return false;
    *host = weir_slice(l->a.ptr, l->a.len);
    return true;
}

bool weir_rule_exact_host(const weir_rule_t *rule, weir_slice_t *host)
{
    const node_t *root = rule->root;
    if (root->kind != N_AND) return leaf_exact_host(root, rule->kind, host);
    for (size_t i = 0; i < root->u.list.n; i++)
        if (leaf_exact_host(root->u.list.kids[i], rule->kind, host)) return true;
    return false;
}

static void collect_hosts(const node_t *n, weir_slice_t *out, size_t max, size_t *count)
{
    switch (n->kind) {
    case N_LEAF:
        if (n->u.leaf.id == M_HOST || n->u.leaf.id == M_HOST_SNI) {
            if (*count < max) out[*count] = weir_slice(n->u.leaf.a.ptr, n->u.leaf.a.len);
            (*count)++;
        }
        break;
    case N_NOT:
        collect_hosts(n->u.child, out, max, count);
        break;
    default:
        for (size_t i = 0; i < n->u.list.n; i++) collect_hosts(n->u.list.kids[i], out, max, count);
    }
}

size_t weir_rule_hosts(const weir_rule_t *rule, weir_slice_t *out, size_t max)
{
    size_t count = 0;
    collect_hosts(rule->root, out, max, &count);
    return count;
}

/* ---- evaluation ---- */

static weir_slice_t S(const str_t *s)
{
    return weir_slice(s->ptr, s->len);
}

static bool match_header(const leaf_t *l, const weir_rule_req_t *r)
{
    for (size_t i = 0; i < r->num_headers; i++) {
        const weir_header_t *h = &r->headers[i];
        if (!weir_slice_ieq(h->name, S(&l->a))) continue;
        if (l->re ? weir_regex_match(l->re, h->value.ptr, h->value.len)
                  : weir_slice_eq(h->value, S(&l->b)))
            return true;
    }
    return false;
}

/* Next key=value pair of a raw query string, as Go's url.ParseQuery splits
 * it: on '&' only, skipping empty segments and segments with ';'. */
static bool next_query_pair(weir_slice_t *rest, weir_slice_t *key, weir_slice_t *val)
{
    while (rest->len > 0) {
        const char *amp = memchr(rest->ptr, '&', rest->len);
        size_t n = amp ? (size_t)(amp - rest->ptr) : rest->len;
        weir_slice_t seg = weir_slice(rest->ptr, n);
        rest->ptr += amp ? n + 1 : n;
        rest->len -= amp ? n + 1 : n;
        if (n == 0 || memchr(seg.ptr, ';', n)) continue;
        const char *eq = memchr(seg.ptr, '=', n);
        size_t klen = eq ? (size_t)(eq - seg.ptr) : n;
        *key = weir_slice(seg.ptr, klen);
        *val = eq ? weir_slice(eq + 1, n - klen - 1) : weir_slice(seg.ptr + n, 0);
        return true;
    }
    return false;
}

static bool match_query(const leaf_t *l, const weir_rule_req_t *r)
{
    weir_slice_t rest = r->query, key, val;
    char buf[QUERY_VALUE_MAX];
    if (!rest.ptr) return false;
    while (next_query_pair(&rest, &key, &val)) {
        if (!weir_query_component_eq(key, S(&l->a))) continue;
        if (!l->re) {
            if (weir_query_component_eq(val, S(&l->b))) return true;
            continue;
        }
        int n = weir_query_unescape(val, buf, sizeof(buf));
        if (n >= 0 && weir_regex_match(l->re, buf, (size_t)n)) return true;
    }
    return false;
}

static bool match_alpn(const leaf_t *l, const weir_rule_req_t *r)
{
    if (r->alpn.len && weir_slice_eq(r->alpn, S(&l->a))) return true;
    for (size_t i = 0; i < r->num_alpns; i++)
        if (weir_slice_eq(r->alpns[i], S(&l->a))) return true;
    return false;
}

static bool match_regex_on(const weir_regex_t *re, weir_slice_t s)
{
    return s.ptr && weir_regex_match(re, s.ptr, s.len);
}

static bool eval_leaf(const leaf_t *l, weir_rule_ctx_t *ctx)
{
    const weir_rule_req_t *r = ctx->req;
    weir_slice_t path;
    switch (l->id) {
    case M_HOST:
        return weir_host_match(S(&l->a), ctx->host);
    case M_HOST_SNI:
        return weir_host_match(S(&l->a), ctx->sni);
    case M_HOST_REGEXP:
        return match_regex_on(l->re, ctx->host);
    case M_HOST_SNI_REGEXP:
        return match_regex_on(l->re, ctx->sni);
    case M_PATH:
        return weir_slice_eq(weir_rule_ctx_path(ctx), S(&l->a));
    case M_PATH_PREFIX:
        path = weir_rule_ctx_path(ctx);
        return path.len >= l->a.len && memcmp(path.ptr, l->a.ptr, l->a.len) == 0;
    case M_PATH_REGEXP:
        return match_regex_on(l->re, weir_rule_ctx_path(ctx));
    case M_METHOD:
        return weir_slice_eq(r->method, S(&l->a));
    case M_HEADER:
    case M_HEADER_REGEXP:
        return match_header(l, r);
    case M_QUERY:
    case M_QUERY_REGEXP:
        return match_query(l, r);
    case M_CLIENT_IP:
        return weir_cidr_contains(&l->cidr, r->client);
    case M_ALPN:
        return match_alpn(l, r);
    }
    return false;
}

static bool eval(const node_t *n, weir_rule_ctx_t *ctx)
{
    switch (n->kind) {
    case N_LEAF:
        return eval_leaf(&n->u.leaf, ctx);
    case N_NOT:
        return !eval(n->u.child, ctx);
    case N_AND:
        for (size_t i = 0; i < n->u.list.n; i++)
            if (!eval(n->u.list.kids[i], ctx)) return false;
        return true;
    case N_OR:
        for (size_t i = 0; i < n->u.list.n; i++)
            if (eval(n->u.list.kids[i], ctx)) return true;
        return false;
    }
    return false;
}

bool weir_rule_match_ctx(const weir_rule_t *rule, weir_rule_ctx_t *ctx)
{
    return eval(rule->root, ctx);
}

bool weir_rule_match(const weir_rule_t *rule, const weir_rule_req_t *req)
{
    weir_rule_ctx_t ctx;
    weir_rule_ctx_init(&ctx, req);
    return eval(rule->root, &ctx);
}
