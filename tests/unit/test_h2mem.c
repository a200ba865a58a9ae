/* Unit tests for src/h2/h2_mem.c (the per-thread allocator of nghttp2
 * sessions) and src/h2/h2_nv.c (header lists), plus a real nghttp2 client
 * and server session pair exchanging a request over that allocator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "h2/h2_mem.h"
#include "h2/h2_nv.h"

static void blocks_are_reused_and_keep_their_contents(void **state)
{
    (void)state;
    nghttp2_mem *m = weir_h2_mem();
    void *a = m->malloc(40, m->mem_user_data);
    assert_non_null(a);
    memset(a, 0xab, 40);
    m->free(a, m->mem_user_data);
    void *b = m->malloc(30, m->mem_user_data);
    assert_ptr_equal(a, b); /* the same size class comes back from the free list */
    m->free(b, m->mem_user_data);
    char *z = m->calloc(10, 7, m->mem_user_data);
    for (int i = 0; i < 70; i++)
        assert_int_equal(z[i], 0);
    m->free(z, m->mem_user_data);
    assert_null(m->calloc(SIZE_MAX / 2, 4, m->mem_user_data));
    m->free(NULL, m->mem_user_data);
    weir_h2_mem_thread_free();
}

static void realloc_keeps_bytes_across_classes_and_big_blocks(void **state)
{
    (void)state;
    nghttp2_mem *m = weir_h2_mem();
    unsigned char *p = m->malloc(16, m->mem_user_data);
    for (int i = 0; i < 16; i++)
        p[i] = (unsigned char)i;
    size_t sizes[] = {20, 100, 3000, 10000, 100000, 50};
    size_t have = 16;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        p = m->realloc(p, sizes[k], m->mem_user_data);
        assert_non_null(p);
        size_t keep = have < sizes[k] ? have : sizes[k];
        for (size_t i = 0; i < keep; i++)
            assert_int_equal(p[i], (unsigned char)i);
        for (size_t i = keep; i < sizes[k]; i++)
            p[i] = (unsigned char)i;
        have = sizes[k];
    }
    m->free(p, m->mem_user_data);
    weir_h2_mem_thread_free();
}

static void nv_lowercases_names_and_reads_field_lines(void **state)
{
    (void)state;
    static weir_nvlist_t l;
    weir_nv_reset(&l);
    weir_nv_add(&l, WEIR_SLICE_LIT("X-Trace-ID"), WEIR_SLICE_LIT("Ab1"));
    const char lines[] = "Grpc-Status: 0\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"
                         "Content-Length: 3\r\nGrpc-Message:  ok \r\n:bad\r\nno colon\r\n";
    weir_nv_add_lines(&l, lines, sizeof lines - 1);
    assert_int_equal(l.n, 3);
    assert_memory_equal(l.nv[0].name, "x-trace-id", 10);
    assert_memory_equal(l.nv[0].value, "Ab1", 3);
    assert_memory_equal(l.nv[1].name, "grpc-status", 11);
    assert_memory_equal(l.nv[1].value, "0", 1);
    assert_int_equal(l.nv[2].valuelen, 2);
    assert_memory_equal(l.nv[2].value, "ok", 2);
    assert_true(weir_nv_forbidden(WEIR_SLICE_LIT("Keep-Alive")));
    assert_true(weir_nv_forbidden(WEIR_SLICE_LIT("host")));
    assert_false(weir_nv_forbidden(WEIR_SLICE_LIT("te-x")));
}

/* A client and a server session on the allocator, wired back to back. */
typedef struct {
    int status;
    int ended;
} seen_t;

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)s;
    (void)f;
    (void)flags;
    seen_t *seen = ud;
    if (nl == 7 && memcmp(name, ":status", 7) == 0 && vl == 3)
        seen->status = atoi((const char *)value);
    return 0;
}

static int on_frame_server(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if (f->hd.type == NGHTTP2_HEADERS && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)"204", 7, 3, 0}};
        nghttp2_submit_response(s, f->hd.stream_id, nv, 1, NULL);
    }
    return 0;
}

static int on_close_client(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)s;
    (void)id;
    (void)code;
    ((seen_t *)ud)->ended = 1;
    return 0;
}

static void pump(nghttp2_session *from, nghttp2_session *to)
{
    const uint8_t *d;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(from, &d)) > 0)
        assert_int_equal(nghttp2_session_mem_recv(to, d, (size_t)n), n);
}

static void sessions_run_on_the_allocator(void **state)
{
    (void)state;
    seen_t seen = {0, 0};
    nghttp2_session_callbacks *cb;
    nghttp2_session *client, *server;
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close_client);
    assert_int_equal(nghttp2_session_client_new3(&client, cb, &seen, NULL, weir_h2_mem()), 0);
    nghttp2_session_callbacks_del(cb);
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_server);
    assert_int_equal(nghttp2_session_server_new3(&server, cb, NULL, NULL, weir_h2_mem()), 0);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(client, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_submit_settings(server, NGHTTP2_FLAG_NONE, NULL, 0);
    for (int i = 0; i < 200; i++) {
        nghttp2_nv nv[] = {{(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
                           {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
                           {(uint8_t *)":authority", (uint8_t *)"a.test", 10, 6, 0},
                           {(uint8_t *)":path", (uint8_t *)"/", 5, 1, 0}};
        seen.status = seen.ended = 0;
        assert_true(nghttp2_submit_request(client, NULL, nv, 4, NULL, NULL) > 0);
        pump(client, server);
        pump(server, client);
        pump(client, server);
        assert_int_equal(seen.status, 204);
        assert_int_equal(seen.ended, 1);
    }
    nghttp2_session_del(client);
    nghttp2_session_del(server);
    weir_h2_mem_thread_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(blocks_are_reused_and_keep_their_contents),
        cmocka_unit_test(realloc_keeps_bytes_across_classes_and_big_blocks),
        cmocka_unit_test(nv_lowercases_names_and_reads_field_lines),
        cmocka_unit_test(sessions_run_on_the_allocator),
    };
    return cmocka_run_group_tests_name("h2mem", tests, NULL, NULL);
}
