/* Event loop: epoll + hashed timer wheel + deferred work + wake-up. */
#include "core/loop.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* The wheel: WHEEL_SLOTS slots of TICK_MS each. A timer lives in the slot of
 * its expiry tick; timers further away than one turn share slots and are
 * skipped until their turn comes (expire_ms is checked on every visit). */
#define TICK_MS 4
#define WHEEL_SLOTS 1024
#define MAX_EVENTS 256

typedef struct {
    void (*fn)(void *);
    void *arg;
} deferred_t;

struct weir_loop {
    int epfd;
    int64_t now_ms;
    int64_t wall_us;
    int64_t last_tick; /* every tick <= last_tick has been processed */
    int64_t hint;      /* no slot before this tick holds a timer (lower bound) */
    size_t armed;
    weir_timer_t slots[WHEEL_SLOTS]; /* sentinels of circular lists */
    deferred_t *deferred;
    size_t num_deferred, cap_deferred;
    weir_io_t wake_io;
    void (*wake_fn)(void *);
    void *wake_arg;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void weir_loop_update_time(weir_loop_t *loop)
{
    struct timespec ts;
    loop->now_ms = mono_ms();
    clock_gettime(CLOCK_REALTIME, &ts);
    loop->wall_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t weir_loop_now(const weir_loop_t *loop)
{
    return loop->now_ms;
}

int64_t weir_loop_wall_us(const weir_loop_t *loop)
{
    return loop->wall_us;
}

static void on_wake(weir_io_t *io, unsigned events)
{
    weir_loop_t *loop = (weir_loop_t *)((char *)io - offsetof(weir_loop_t, wake_io));
    uint64_t n;
    while (read(io->fd, &n, sizeof n) > 0)
        ;
    if (loop->wake_fn)
        loop->wake_fn(loop->wake_arg);
}

weir_loop_t *weir_loop_new(void)
{
    weir_loop_t *loop = calloc(1, sizeof *loop);
    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wake_io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    loop->wake_io.cb = on_wake;
    if (loop->epfd < 0 || loop->wake_io.fd < 0) {
        weir_loop_free(loop);
        return NULL;
    }
    for (size_t i = 0; i < WHEEL_SLOTS; i++)
        loop->slots[i].next = loop->slots[i].prev = &loop->slots[i];
    weir_loop_update_time(loop);
    loop->last_tick = loop->now_ms / TICK_MS;
    weir_loop_add_reader(loop, &loop->wake_io);
    return loop;
}

void weir_loop_free(weir_loop_t *loop)
{
    if (!loop)
        return;
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->wake_io.fd >= 0)
        close(loop->wake_io.fd);
    free(loop->deferred);
    free(loop);
}

int weir_loop_add(weir_loop_t *loop, weir_io_t *io)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = io};
    return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0 ? -errno : 0;
}

int weir_loop_add_reader(weir_loop_t *loop, weir_io_t *io)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = io};
    return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0 ? -errno : 0;
}

void weir_loop_del(weir_loop_t *loop, weir_io_t *io)
{
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

void weir_timer_stop(weir_timer_t *t)
{
    if (!t->prev)
        return;
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

static weir_timer_t *slot_of(weir_loop_t *loop, int64_t expire_ms)
{
    int64_t tick = expire_ms / TICK_MS;
    if (tick <= loop->last_tick)
        tick = loop->last_tick + 1;
    if (tick > loop->last_tick + WHEEL_SLOTS)
        tick = loop->last_tick + 1 + (tick - loop->last_tick - 1) % WHEEL_SLOTS;
    if (tick < loop->hint)
        loop->hint = tick;
    return &loop->slots[tick % WHEEL_SLOTS];
}

static void link_timer(weir_loop_t *loop, weir_timer_t *t)
{
    weir_timer_t *head = slot_of(loop, t->expire_ms);
    t->next = head;
    t->prev = head->prev;
    head->prev->next = t;
    head->prev = t;
}

void weir_timer_set(weir_loop_t *loop, weir_timer_t *t, int64_t ms, weir_timer_cb cb)
{
    if (t->prev) {
        weir_timer_stop(t);
        loop->armed--;
    }
    if (ms < 0)
        return;
    t->cb = cb;
    t->expire_ms = loop->now_ms + ms;
    link_timer(loop, t);
    loop->armed++;
}

/* The armed count is kept approximately: weir_timer_stop() called directly
 * cannot see the loop, so the count only bounds how far we scan. */
static void process_slot(weir_loop_t *loop, weir_timer_t *head)
{
    weir_timer_t pending = {.next = &pending, .prev = &pending};
    if (head->next == head)
        return;
    /* Move the slot's list aside; callbacks may arm timers into this slot. */
    pending.next = head->next;
    pending.prev = head->prev;
    pending.next->prev = &pending;
    pending.prev->next = &pending;
    head->next = head->prev = head;
    while (pending.next != &pending) {
        weir_timer_t *t = pending.next;
        weir_timer_stop(t);
        if (t->expire_ms <= loop->now_ms) {
            if (loop->armed)
                loop->armed--;
            t->cb(t);
        } else {
            link_timer(loop, t);
        }
    }
}

static void run_timers(weir_loop_t *loop)
{
    int64_t now_tick = loop->now_ms / TICK_MS;
    int64_t from = loop->last_tick + 1;
    if (now_tick - from >= WHEEL_SLOTS)
        from = now_tick - WHEEL_SLOTS + 1;
    for (int64_t tick = from; tick <= now_tick; tick++) {
        loop->last_tick = tick;
        process_slot(loop, &loop->slots[tick % WHEEL_SLOTS]);
    }
    if (now_tick > loop->last_tick)
        loop->last_tick = now_tick;
}

/* Scans from the hint (not from the current tick) so a loop with only
 * far-away timers does not walk the whole wheel on every pass. */
static int next_timeout(weir_loop_t *loop)
{
    int64_t first = loop->hint > loop->last_tick + 1 ? loop->hint : loop->last_tick + 1;
    for (int64_t t = first; t <= loop->last_tick + WHEEL_SLOTS; t++) {
        weir_timer_t *head = &loop->slots[t % WHEEL_SLOTS];
        if (head->next != head) {
            loop->hint = t;
            int64_t ms = t * TICK_MS - loop->now_ms;
            return ms < 0 ? 0 : (int)ms + 1;
        }
    }
    loop->hint = loop->last_tick + WHEEL_SLOTS + 1;
    return -1;
}

void weir_loop_defer(weir_loop_t *loop, void (*fn)(void *), void *arg)
{
    if (loop->num_deferred == loop->cap_deferred) {
        size_t cap = loop->cap_deferred ? loop->cap_deferred * 2 : 64;
        deferred_t *d = realloc(loop->deferred, cap * sizeof *d);
        if (!d)
            abort(); /* cannot continue safely without freeing memory */
        loop->deferred = d;
        loop->cap_deferred = cap;
    }
    loop->deferred[loop->num_deferred++] = (deferred_t){fn, arg};
}

static void run_deferred(weir_loop_t *loop)
{
    /* Deferred work may defer more work; run until empty. */
    for (size_t i = 0; i < loop->num_deferred; i++)
        loop->deferred[i].fn(loop->deferred[i].arg);
    loop->num_deferred = 0;
}

int weir_loop_run_once(weir_loop_t *loop, int max_wait_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    int timeout = next_timeout(loop);
    if (max_wait_ms >= 0 && (timeout < 0 || timeout > max_wait_ms))
        timeout = max_wait_ms;
    int n = epoll_wait(loop->epfd, evs, MAX_EVENTS, timeout);
    weir_loop_update_time(loop);
    for (int i = 0; i < n; i++) {
        weir_io_t *io = evs[i].data.ptr;
        unsigned e = 0;
        if (evs[i].events & (EPOLLIN | EPOLLPRI))
            e |= WEIR_EV_READ;
        if (evs[i].events & EPOLLOUT)
            e |= WEIR_EV_WRITE;
        if (evs[i].events & (EPOLLHUP | EPOLLRDHUP))
            e |= WEIR_EV_HUP | WEIR_EV_READ;
        if (evs[i].events & EPOLLERR)
            e |= WEIR_EV_ERR | WEIR_EV_READ | WEIR_EV_WRITE;
        io->cb(io, e);
    }
    run_timers(loop);
    run_deferred(loop);
    return n < 0 ? 0 : n;
}

void weir_loop_wake(weir_loop_t *loop)
{
    uint64_t one = 1;
    ssize_t r = write(loop->wake_io.fd, &one, sizeof one);
    (void)r;
}

void weir_loop_on_wake(weir_loop_t *loop, void (*fn)(void *), void *arg)
{
    loop->wake_fn = fn;
    loop->wake_arg = arg;
}
