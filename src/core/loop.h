/* The event loop: one per worker thread. epoll (edge-triggered, each fd
 * registered once for input and output, so steady-state traffic costs no
 * epoll_ctl calls), a hashed timer wheel, a cross-thread wake-up, and a
 * deferred-free list run after each poll pass so a callback may close a
 * connection that a later event in the same pass still points to.
 */
#ifndef WEIR_CORE_LOOP_H
#define WEIR_CORE_LOOP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct weir_loop weir_loop_t;
typedef struct weir_io weir_io_t;
typedef struct weir_timer weir_timer_t;

/* Event bits passed to callbacks. */
enum { WEIR_EV_READ = 1, WEIR_EV_WRITE = 2, WEIR_EV_HUP = 4, WEIR_EV_ERR = 8 };

typedef void (*weir_io_cb)(weir_io_t *io, unsigned events);

/* Embedded in whatever owns the file descriptor. */
struct weir_io {
    int fd;
    weir_io_cb cb;
};

typedef void (*weir_timer_cb)(weir_timer_t *t);

/* Embedded in its owner; zero-initialised means "not armed". */
struct weir_timer {
    weir_timer_t *next, *prev;
    int64_t expire_ms;
    weir_timer_cb cb;
};

weir_loop_t *weir_loop_new(void);
void weir_loop_free(weir_loop_t *loop);

/* Registers fd for edge-triggered read+write readiness. Returns 0 or -errno. */
int weir_loop_add(weir_loop_t *loop, weir_io_t *io);
/* Registers fd for level-triggered read readiness only (listeners, eventfd). */
int weir_loop_add_reader(weir_loop_t *loop, weir_io_t *io);
/* Removes fd from the loop (the caller closes it). */
void weir_loop_del(weir_loop_t *loop, weir_io_t *io);

/* Milliseconds on a monotonic clock, updated once per poll pass. */
int64_t weir_loop_now(const weir_loop_t *loop);
/* Wall-clock time of the last poll pass, in microseconds since the epoch. */
int64_t weir_loop_wall_us(const weir_loop_t *loop);
void weir_loop_update_time(weir_loop_t *loop);

/* Arms (or re-arms) t to fire after ms milliseconds (ms < 0: disarm). */
void weir_timer_set(weir_loop_t *loop, weir_timer_t *t, int64_t ms, weir_timer_cb cb);
void weir_timer_stop(weir_timer_t *t);
static inline bool weir_timer_armed(const weir_timer_t *t)
{
    return t->prev != 0;
}

/* Runs fn(arg) after the current poll pass has finished dispatching. */
void weir_loop_defer(weir_loop_t *loop, void (*fn)(void *), void *arg);

/* Runs one poll pass: waits at most max_wait_ms (-1: until an event or the
 * next timer), dispatches events, fires due timers, runs deferred work. */
int weir_loop_run_once(weir_loop_t *loop, int max_wait_ms);  /* returns the number of I/O events */

/* Thread-safe: makes the loop's next (or current) wait return and calls the
 * wake callback on the loop's thread. */
void weir_loop_wake(weir_loop_t *loop);
void weir_loop_on_wake(weir_loop_t *loop, void (*fn)(void *), void *arg);

#endif
