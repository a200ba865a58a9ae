/* libFuzzer target for src/h1: the request parser (default and small
 * limits), the response parser (with and without HEAD) and the chunked
 * decoder (whole, in two pieces, and byte by byte for short inputs) all run
 * over each input, and their invariants are checked:
 *   - a result is "need more", a documented status, or a length <= size;
 *   - every slice returned lies inside the input;
 *   - a parsed head parses again alone to the same length, and one byte
 *     short of it is "need more";
 *   - the chunked decoder, run over the input after its first byte, gives
 *     the same body, trailers, verdict and consumption however the input
 *     is split.
 * Each call gets a heap copy of exactly the bytes it may read, so ASan sees
 * any read beyond them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h1/h1.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) abort();                                                                      \
    } while (0)

static char *copy(const char *p, size_t n)
{
    char *b = malloc(n ? n : 1);

    CHECK(b != NULL);
    if (n) memcpy(b, p, n);
    return b;
}

static void check_inside(weir_slice_t s, const char *buf, size_t n)
{
    CHECK(s.len == 0 || (s.ptr >= buf && s.ptr + s.len <= buf + n));
}

static void check_headers(const weir_header_t *h, size_t count, const char *buf, size_t n)
{
    for (size_t i = 0; i < count; i++) {
        check_inside(h[i].name, buf, n);
        check_inside(h[i].value, buf, n);
        CHECK(weir_h1_is_token(h[i].name));
        CHECK(weir_h1_is_field_value(h[i].value));
        CHECK(h[i].value.len == 0 ||
              (h[i].value.ptr[0] != ' ' && h[i].value.ptr[h[i].value.len - 1] != '\t' &&
               h[i].value.ptr[h[i].value.len - 1] != ' ' && h[i].value.ptr[0] != '\t'));
    }
}

static int request(const char *in, size_t n, const weir_h1_limits_t *lim)
{
    weir_header_t hdrs[WEIR_H1_MAX_HEADERS];
    weir_h1_request_t req = {.headers = hdrs};
    char *buf = copy(in, n);
    int r = weir_h1_parse_request(buf, n, &req, lim);

    if (r > 0) {
        CHECK((size_t)r <= n && req.head_len == (size_t)r);
        CHECK(req.minor == 0 || req.minor == 1);
        CHECK(req.num_headers <= (lim ? lim->max_headers : WEIR_H1_MAX_HEADERS));
        CHECK(weir_h1_is_token(req.method));
        check_inside(req.method, buf, n);
        check_inside(req.target, buf, n);
        check_inside(req.authority, buf, n);
        check_inside(req.host, buf, n);
        if (!weir_slice_eq(req.path, WEIR_SLICE_LIT("/"))) check_inside(req.path, buf, n);
        CHECK(req.body <= WEIR_BODY_CHUNKED);
        CHECK(req.body != WEIR_BODY_LENGTH || req.content_length <= INT64_MAX);
        check_headers(hdrs, req.num_headers, buf, n);
    } else {
        CHECK(r == WEIR_H1_NEED_MORE || r == -400 || r == -414 || r == -431 || r == -501 ||
              r == -505);
    }
    free(buf);
    return r;
}

static void requests(const char *in, size_t n)
{
    static const weir_h1_limits_t small = {64, 512, 8};
    const weir_h1_limits_t *lims[] = {NULL, &small};

    for (size_t i = 0; i < 2; i++) {
        int r = request(in, n, lims[i]);
        if (r > 0) {
            CHECK(request(in, (size_t)r, lims[i]) == r);
            CHECK(request(in, (size_t)r - 1, lims[i]) == WEIR_H1_NEED_MORE);
        }
    }
}

static int response(const char *in, size_t n, int head_request)
{
    static const weir_h1_limits_t lim = {128, 1024, 16};
    weir_header_t hdrs[16];
    weir_h1_response_t resp = {.headers = hdrs};
    char *buf = copy(in, n);
    int r = weir_h1_parse_response(buf, n, &resp, &lim, head_request);

    if (r > 0) {
        CHECK((size_t)r <= n && resp.head_len == (size_t)r);
        CHECK(resp.status >= 100 && resp.status <= 999);
        CHECK(resp.minor == 0 || resp.minor == 1);
        CHECK(resp.num_headers <= 16);
        check_inside(resp.reason, buf, n);
        check_headers(hdrs, resp.num_headers, buf, n);
        CHECK(!head_request || resp.body == WEIR_BODY_NONE);
        CHECK(resp.body != WEIR_BODY_UNTIL_CLOSE || !resp.keep_alive);
        CHECK(!resp.upgrade || resp.status == 101);
    } else {
        CHECK(r == WEIR_H1_NEED_MORE || r == -502);
    }
    free(buf);
    return r;
}

static void responses(const char *in, size_t n)
{
    for (int head = 0; head < 2; head++) {
        int r = response(in, n, head);
        if (r > 0) {
            CHECK(response(in, (size_t)r, head) == r);
            CHECK(response(in, (size_t)r - 1, head) == WEIR_H1_NEED_MORE);
        }
    }
}

struct decoded {
    ssize_t err;
    int done;
    size_t used;
    char *body;
    size_t body_len;
    char *trailers;
    size_t trailers_len;
};

/* Feeds in[0..n) as arriving in pieces ending at cuts[]; unconsumed bytes
 * are offered again with the next piece, as a caller's buffer would. */
static void decode(const char *in, size_t n, const size_t *cuts, size_t ncuts, size_t max_trailer,
                   struct decoded *out)
{
    weir_h1_chunked_t st = {.max_trailer_bytes = max_trailer};
    size_t used = 0;

    memset(out, 0, sizeof(*out));
    out->body = malloc(n + 1);
    out->trailers = malloc(n + 1);
    CHECK(out->body && out->trailers);
    for (size_t i = 0; i < ncuts && !st.done && !out->err; i++) {
        for (;;) {
            size_t avail = cuts[i] - used;
            char *buf = copy(in + used, avail);
            weir_slice_t data, tr;
            ssize_t r = weir_h1_chunked_decode(&st, buf, avail, &data, &tr);

            if (r < 0) {
                CHECK(r == -400);
                out->err = r;
                free(buf);
                break;
            }
            CHECK((size_t)r <= avail);
            check_inside(data, buf, avail);
            check_inside(tr, buf, avail);
            CHECK(data.len <= (size_t)r);
            memcpy(out->body + out->body_len, data.ptr ? data.ptr : "", data.len);
            out->body_len += data.len;
            if (tr.len) {
                CHECK(st.done);
                memcpy(out->trailers, tr.ptr, tr.len);
                out->trailers_len = tr.len;
            }
            free(buf);
            used += (size_t)r;
            if (st.done || r == 0 || used == cuts[i]) break;
        }
    }
    out->done = st.done;
    out->used = used;
}

static void same_decoding(const struct decoded *a, const struct decoded *b)
{
    CHECK(a->err == b->err && a->done == b->done);
    CHECK(a->body_len == b->body_len && memcmp(a->body, b->body, a->body_len) == 0);
    CHECK(a->trailers_len == b->trailers_len &&
          memcmp(a->trailers, b->trailers, a->trailers_len) == 0);
    /* after an error, how far each got is not defined */
    CHECK(a->err || a->used == b->used);
}

/* The first byte steers: where the input is split in two, and whether the
 * trailer section is capped small; the rest is the chunked body. */
static void chunked(const char *in, size_t n)
{
    unsigned char ctl = n ? (unsigned char)in[0] : 0;
    size_t body = n ? n - 1 : 0, max_trailer = ctl & 1 ? 24 : 0;
    size_t whole = body, two[2] = {body * ctl / 255, body};
    struct decoded a, b;

    in += n ? 1 : 0;
    decode(in, body, &whole, 1, max_trailer, &a);
    decode(in, body, two, 2, max_trailer, &b);
    same_decoding(&a, &b);
    free(b.body);
    free(b.trailers);
    if (body <= 256) {
        size_t bytes[256];
        for (size_t i = 0; i < body; i++)
            bytes[i] = i + 1;
        decode(in, body, bytes, body, max_trailer, &b);
        same_decoding(&a, &b);
        free(b.body);
        free(b.trailers);
    }
    free(a.body);
    free(a.trailers);
}

static void token_list(const char *in, size_t n)
{
    weir_slice_t list = weir_slice(in, n), tok;

    while (weir_h1_next_token(&list, &tok)) {
        check_inside(tok, in, n);
        CHECK(tok.len > 0 && memchr(tok.ptr, ',', tok.len) == NULL);
        CHECK(tok.ptr[0] != ' ' && tok.ptr[0] != '\t');
        CHECK(tok.ptr[tok.len - 1] != ' ' && tok.ptr[tok.len - 1] != '\t');
    }
    (void)weir_h1_list_has(weir_slice(in, n), "chunked");
    (void)weir_h1_is_hop_by_hop(weir_slice(in, n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;

    requests(in, size);
    responses(in, size);
    chunked(in, size);
    token_list(in, size);
    return 0;
}
