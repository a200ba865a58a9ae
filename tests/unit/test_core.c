/* Unit tests for src/core: the event loop, its timers, and buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/loop.h"

/* ---- timers ---- */

static int fired_order[8];
static int fired_count;

typedef struct {
    weir_timer_t t;
    int id;
} tagged_timer_t;

static void record(weir_timer_t *t)
{
    tagged_timer_t *tt = (tagged_timer_t *)t;
    fired_order[fired_count++] = tt->id;
}

static void run_until(weir_loop_t *loop, int count, int64_t max_ms)
{
    int64_t end = weir_loop_now(loop) + max_ms;
    while (fired_count < count && weir_loop_now(loop) < end)
        weir_loop_run_once(loop, 5);
}

static void timers_fire_in_deadline_order(void **state)
{
    weir_loop_t *loop = weir_loop_new();
    tagged_timer_t a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
    fired_count = 0;
    weir_timer_set(loop, &c.t, 60, record);
    weir_timer_set(loop, &a.t, 10, record);
    weir_timer_set(loop, &b.t, 30, record);
    run_until(loop, 3, 2000);
    assert_int_equal(fired_count, 3);
    assert_int_equal(fired_order[0], 1);
    assert_int_equal(fired_order[1], 2);
    assert_int_equal(fired_order[2], 3);
    assert_false(weir_timer_armed(&a.t));
    weir_loop_free(loop);
}

static void stopped_timer_never_fires(void **state)
{
    weir_loop_t *loop = weir_loop_new();
    tagged_timer_t a = {.id = 1}, b = {.id = 2};
    fired_count = 0;
    weir_timer_set(loop, &a.t, 10, record);
    weir_timer_set(loop, &b.t, 40, record);
    weir_timer_stop(&a.t);
    run_until(loop, 1, 2000);
    assert_int_equal(fired_count, 1);
    assert_int_equal(fired_order[0], 2);
    weir_loop_free(loop);
}

static void rearming_moves_the_deadline(void **state)
{
    weir_loop_t *loop = weir_loop_new();
    tagged_timer_t a = {.id = 1}, b = {.id = 2};
    fired_count = 0;
    weir_timer_set(loop, &a.t, 10, record);
    weir_timer_set(loop, &b.t, 50, record);
    weir_timer_set(loop, &a.t, 100, record); /* a now fires after b */
    run_until(loop, 2, 2000);
    assert_int_equal(fired_count, 2);
    assert_int_equal(fired_order[0], 2);
    assert_int_equal(fired_order[1], 1);
    weir_loop_free(loop);
}

static void timer_beyond_one_wheel_turn(void **state)
{
    /* The wheel spans 4096 ms; a 4.5 s timer shares a slot with earlier
     * ones and must not fire on the first pass over that slot. */
    weir_loop_t *loop = weir_loop_new();
    tagged_timer_t a = {.id = 1}, b = {.id = 2};
    fired_count = 0;
    weir_timer_set(loop, &a.t, 4500, record);
    weir_timer_set(loop, &b.t, 4500 - 4096, record);
    int64_t start = weir_loop_now(loop);
    run_until(loop, 1, 3000);
    assert_int_equal(fired_count, 1);
    assert_int_equal(fired_order[0], 2);
    run_until(loop, 2, 6000);
    assert_int_equal(fired_count, 2);
    assert_true(weir_loop_now(loop) - start >= 4500);
    weir_loop_free(loop);
}

static void zero_timer_fires_on_next_pass(void **state)
{
    weir_loop_t *loop = weir_loop_new();
    tagged_timer_t a = {.id = 7};
    fired_count = 0;
    weir_timer_set(loop, &a.t, 0, record);
    run_until(loop, 1, 500);
    assert_int_equal(fired_count, 1);
    weir_loop_free(loop);
}

/* ---- I/O dispatch ---- */

typedef struct {
    weir_io_t io;
    unsigned events;
    int calls;
} probe_t;

static void probe_cb(weir_io_t *io, unsigned events)
{
    probe_t *p = (probe_t *)io;
    p->events |= events;
    p->calls++;
}

static void io_events_reach_the_owner(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    weir_loop_t *loop = weir_loop_new();
    probe_t p = {.io = {.fd = sv[0], .cb = probe_cb}};
    assert_int_equal(weir_loop_add(loop, &p.io), 0);
    weir_loop_run_once(loop, 100);
    assert_true(p.events & WEIR_EV_WRITE); /* writable from the start */
    p.events = 0;
    assert_int_equal(write(sv[1], "x", 1), 1);
    weir_loop_run_once(loop, 100);
    assert_true(p.events & WEIR_EV_READ);
    p.events = 0;
    close(sv[1]);
    weir_loop_run_once(loop, 100);
    assert_true(p.events & WEIR_EV_HUP);
    weir_loop_del(loop, &p.io);
    close(sv[0]);
    weir_loop_free(loop);
}

static int deferred_ran;
static void deferred_fn(void *arg)
{
    deferred_ran += *(int *)arg;
}

static void deferred_work_runs_after_the_pass(void **state)
{
    weir_loop_t *loop = weir_loop_new();
    int one = 1;
    deferred_ran = 0;
    weir_loop_defer(loop, deferred_fn, &one);
    weir_loop_defer(loop, deferred_fn, &one);
    assert_int_equal(deferred_ran, 0);
    weir_loop_run_once(loop, 0);
    assert_int_equal(deferred_ran, 2);
    weir_loop_free(loop);
}

static int woken;
static void on_wake(void *arg)
{
    woken++;
}

static void wake_interrupts_the_wait(void **state)
{
    weir_loop_t *loop = weir_loop_new();
    woken = 0;
    weir_loop_on_wake(loop, on_wake, NULL);
    weir_loop_wake(loop);
    weir_loop_run_once(loop, 1000);
    assert_int_equal(woken, 1);
    weir_loop_free(loop);
}

/* ---- buffers ---- */

static void buffer_append_consume_rewinds(void **state)
{
    weir_buf_t b = {0};
    assert_int_equal(weir_buf_append(&b, "hello", 5), 0);
    assert_int_equal(weir_buf_len(&b), 5);
    assert_int_equal(b.cap, WEIR_BUF_BLOCK);
    weir_buf_consume(&b, 2);
    assert_memory_equal(weir_buf_head(&b), "llo", 3);
    weir_buf_consume(&b, 3);
    assert_int_equal(b.start, 0);
    assert_int_equal(b.end, 0);
    weir_buf_release_if_empty(&b);
    assert_null(b.data);
}

static void buffer_compacts_before_growing(void **state)
{
    weir_buf_t b = {0};
    char chunk[WEIR_BUF_BLOCK - 100];
    memset(chunk, 'a', sizeof chunk);
    assert_int_equal(weir_buf_append(&b, chunk, sizeof chunk), 0);
    weir_buf_consume(&b, sizeof chunk - 10);
    assert_int_equal(weir_buf_reserve(&b, 1000), 0);
    assert_int_equal(b.cap, WEIR_BUF_BLOCK); /* moved to the front, same block */
    assert_int_equal(b.start, 0);
    assert_int_equal(weir_buf_len(&b), 10);
    weir_buf_release(&b);
}

static void buffer_grows_for_large_heads(void **state)
{
    weir_buf_t b = {0};
    char big[3 * WEIR_BUF_BLOCK];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(weir_buf_append(&b, big, sizeof big), 0);
    assert_true(b.cap >= sizeof big);
    assert_memory_equal(weir_buf_head(&b), big, sizeof big);
    weir_buf_release(&b);
    assert_null(b.data);
}

static void buffer_blocks_are_recycled(void **state)
{
    weir_buf_t a = {0}, b = {0};
    weir_buf_reserve(&a, 1);
    char *first = a.data;
    weir_buf_release(&a);
    weir_buf_reserve(&b, 1);
    assert_ptr_equal(b.data, first);
    weir_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timers_fire_in_deadline_order),
        cmocka_unit_test(stopped_timer_never_fires),
        cmocka_unit_test(rearming_moves_the_deadline),
        cmocka_unit_test(timer_beyond_one_wheel_turn),
        cmocka_unit_test(zero_timer_fires_on_next_pass),
        cmocka_unit_test(io_events_reach_the_owner),
        cmocka_unit_test(deferred_work_runs_after_the_pass),
        cmocka_unit_test(wake_interrupts_the_wait),
        cmocka_unit_test(buffer_append_consume_rewinds),
        cmocka_unit_test(buffer_compacts_before_growing),
        cmocka_unit_test(buffer_grows_for_large_heads),
        cmocka_unit_test(buffer_blocks_are_recycled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
