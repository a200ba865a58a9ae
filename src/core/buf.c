/* Buffer pool: a per-thread LIFO of standard blocks. */
#include "core/buf.h"

#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Blocks kept per thread during a burst; weir_buf_pool_shrink() gives the
 * surplus back when the thread goes quiet. */
#define POOL_MAX 1024

typedef struct block {
    struct block *next;
} block_t;

static __thread block_t *pool;
static __thread size_t pool_count;

static char *block_get(void)
{
    if (pool) {
        block_t *b = pool;
        pool = b->next;
        pool_count--;
        return (char *)b;
    }
    return malloc(WEIR_BUF_BLOCK);
}

static void block_put(char *p)
{
    if (pool_count >= POOL_MAX) {
        free(p);
        return;
    }
    block_t *b = (block_t *)p;
    b->next = pool;
    pool = b;
    pool_count++;
}

int weir_buf_reserve(weir_buf_t *b, size_t min_room)
{
    if (!b->data) {
        size_t cap = WEIR_BUF_BLOCK;
        while (cap < min_room)
            cap *= 2;
        b->data = cap == WEIR_BUF_BLOCK ? block_get() : malloc(cap);
        if (!b->data)
            return -1;
        b->start = b->end = 0;
        b->cap = (uint32_t)cap;
        return 0;
    }
    if (weir_buf_room(b) >= min_room)
        return 0;
    size_t len = weir_buf_len(b);
    if (b->start && b->cap - len >= min_room) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = (uint32_t)len;
        return 0;
    }
    size_t cap = b->cap;
    while (cap - len < min_room)
        cap *= 2;
    char *n = malloc(cap);
    if (!n)
        return -1;
    memcpy(n, b->data + b->start, len);
    if (b->cap == WEIR_BUF_BLOCK)
        block_put(b->data);
    else
        free(b->data);
    b->data = n;
    b->start = 0;
    b->end = (uint32_t)len;
    b->cap = (uint32_t)cap;
    return 0;
}

int weir_buf_append(weir_buf_t *b, const void *p, size_t n)
{
    if (weir_buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->end, p, n);
    b->end += (uint32_t)n;
    return 0;
}

void weir_buf_release(weir_buf_t *b)
{
    if (!b->data)
        return;
    if (b->cap == WEIR_BUF_BLOCK)
        block_put(b->data);
    else
        free(b->data);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

void weir_buf_pool_shrink(size_t keep)
{
    while (pool && pool_count > keep) {
        block_t *b = pool;
        pool = b->next;
        pool_count--;
        free(b);
    }
}

void weir_buf_pool_free(void)
{
    while (pool) {
        block_t *b = pool;
        pool = b->next;
        free(b);
    }
    pool_count = 0;
}

ssize_t weir_buf_read(weir_buf_t *b, int fd, int *drained)
{
    *drained = 0;
    if (weir_buf_reserve(b, 4096) < 0) {
        errno = ENOMEM;
        return -1;
    }
    size_t room = weir_buf_room(b);
    ssize_t n = read(fd, weir_buf_tail(b), room);
    if (n > 0) {
        b->end += (uint32_t)n;
        *drained = (size_t)n < room;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        *drained = 1;
        weir_buf_release_if_empty(b);
    }
    return n;
}
