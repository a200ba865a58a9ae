/* Durations as Traefik reads them: Go's time.ParseDuration syntax, or a bare
 * integer meaning seconds (paerser's types.Duration). */
#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NS_MAX ((uint64_t)INT64_MAX) /* Go's time.Duration is int64 nanoseconds */

typedef struct {
    const char *name;
    uint64_t ns;
} unit_t;

/* Longest names first so "ms" is not read as "m" followed by "s". */
static const unit_t units[] = {
    {"ns", 1ULL},
    {"us", 1000ULL},
    {"\xc2\xb5s", 1000ULL}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000ULL}, /* U+03BC Greek mu */
    {"ms", 1000000ULL},
    {"s", 1000000000ULL},
    {"m", 60ULL * 1000000000ULL},
    {"h", 3600ULL * 1000000000ULL},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A bare integer: seconds. Returns 1 if text is one (then *ns is set or
 * *bad is true on overflow), 0 if text is something else. */
static int bare_seconds(const char *text, uint64_t *ns, bool *bad)
{
    const char *p = text;
    if (*p == '+') p++;
    if (!*p) return 0;
    uint64_t v = 0;
    for (; *p; p++) {
        if (!is_digit(*p)) return 0;
        if (v > NS_MAX / 10) {
            *bad = true;
            return 1;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > NS_MAX / 1000000000ULL)
        *bad = true;
    else
        *ns = v * 1000000000ULL;
    return 1;
}

static const unit_t *match_unit(const char **p)
{
    const unit_t *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t n = strlen(units[i].name);
        if (n > best_len && strncmp(*p, units[i].name, n) == 0) {
            best = &units[i];
            best_len = n;
        }
    }
    *p += best_len;
    return best;
}

/* One "<number><unit>" term; adds its value to *total. */
static int term(const char **pp, uint64_t *total)
{
    const char *p = *pp;
    uint64_t whole = 0, frac = 0, scale = 1;
    bool digits = false;
    for (; is_digit(*p); p++, digits = true) {
        if (whole > NS_MAX / 10) return -1;
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        for (p++; is_digit(*p); p++, digits = true) {
            /* digits beyond nanosecond precision of an hour are dropped */
            if (scale < 1000000000000000000ULL) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                scale *= 10;
            }
        }
    }
    if (!digits) return -1;
    const unit_t *u = match_unit(&p);
    if (!u) return -1;
    if (whole > NS_MAX / u->ns) return -1;
    uint64_t v = whole * u->ns;
    /* frac/scale of a unit (< one unit); 128 bits because frac * unit can
     * reach 1e18 * 3.6e12. */
    uint64_t part = (uint64_t)((unsigned __int128)frac * u->ns / scale);
    if (v > NS_MAX - part || *total > NS_MAX - (v + part)) return -1;
    *total += v + part;
    *pp = p;
    return 0;
}

int weir_duration_parse(const char *text, int64_t *ms)
{
    if (!text || !*text) return -1;
    uint64_t ns = 0;
    bool bad = false;
    if (bare_seconds(text, &ns, &bad)) {
        if (bad) return -1;
    } else {
        const char *p = text;
        if (*p == '+') p++;
        /* Go accepts "0" without a unit; bare_seconds has handled it. */
        if (!*p) return -1;
        while (*p)
            if (term(&p, &ns) < 0) return -1;
    }
    int64_t v = (int64_t)(ns / 1000000ULL);
    if (v == 0 && ns != 0) v = 1;
    *ms = v;
    return 0;
}
