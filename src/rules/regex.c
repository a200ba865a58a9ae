/* PCRE2 adapter: the only file that talks to libpcre2-8.
 *
 * Patterns are compiled in UTF mode with PCRE2_MATCH_INVALID_UTF so that a
 * request carrying invalid UTF-8 simply does not match instead of failing,
 * close to Go's RE2, which treats bad bytes as U+FFFD. Matching is an
 * unanchored search (Go's regexp.MatchString). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "rules/rules.h"

/* Bounds that keep a hostile pattern from costing more than a rule should:
 * nesting like "((((...))))" and catastrophic backtracking. */
#define PARENS_NEST_LIMIT 64
#define MATCH_LIMIT 1000000

struct weir_regex {
    pcre2_code *code;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t md_key;
static pcre2_match_context *match_ctx; /* read-only after once */
static __thread pcre2_match_data *thread_md;

static void free_md(void *md)
{
    pcre2_match_data_free(md);
}

static void init_once(void)
{
    pthread_key_create(&md_key, free_md);
    match_ctx = pcre2_match_context_create(NULL);
    if (match_ctx) pcre2_set_match_limit(match_ctx, MATCH_LIMIT);
}

/* One match block per thread, freed at thread exit by the key's destructor.
 * A boolean match needs a single ovector pair: PCRE2 reports a match with a
 * too-small ovector as rc 0, which is all we look at. */
static pcre2_match_data *thread_match_data(void)
{
    if (thread_md) return thread_md;
    pthread_once(&once, init_once);
    thread_md = pcre2_match_data_create(1, NULL);
    if (thread_md) pthread_setspecific(md_key, thread_md);
    return thread_md;
}

static void set_error(char *err, size_t errcap, int code)
{
    PCRE2_UCHAR buf[200];
    if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0)
        snprintf((char *)buf, sizeof(buf), "error %d", code);
    snprintf(err, errcap, "%s", (const char *)buf);
}

int weir_regex_compile(const char *pattern, size_t len, unsigned flags, weir_regex_t **out,
                       char *err, size_t errcap, size_t *erroff)
{
    *out = NULL;
    *erroff = 0;
    if (len > WEIR_REGEX_MAX_PATTERN) {
        snprintf(err, errcap, "regexp longer than %d bytes", WEIR_REGEX_MAX_PATTERN);
        return -1;
    }
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    pcre2_set_parens_nest_limit(cc, PARENS_NEST_LIMIT);
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    if (flags & WEIR_REGEX_CASELESS) opts |= PCRE2_CASELESS;
    int code;
    PCRE2_SIZE off = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &code, &off, cc);
    pcre2_compile_context_free(cc);
    if (!re) {
        set_error(err, errcap, code);
        *erroff = off;
        return -1;
    }
    weir_regex_t *r = malloc(sizeof(*r));
    if (!r) {
        pcre2_code_free(re);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    /* JIT is an optimisation: without it (unsupported CPU, no executable
     * memory) pcre2_match falls back to the interpreter. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    r->code = re;
    *out = r;
    return 0;
}

bool weir_regex_match(const weir_regex_t *re, const char *subject, size_t len)
{
    pcre2_match_data *md = thread_match_data();
    if (!md) return false;
    if (!subject) subject = "";
    int rc = pcre2_match(re->code, (PCRE2_SPTR)subject, len, 0, 0, md, match_ctx);
    return rc >= 0;
}

void weir_regex_free(weir_regex_t *re)
{
    if (!re) return;
    pcre2_code_free(re->code);
    free(re);
}
