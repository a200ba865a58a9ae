/* I/O buffers: contiguous byte ranges [start, end) inside data[0..cap).
 * Standard blocks (WEIR_BUF_BLOCK bytes) come from a per-thread free list so
 * a connection holds a buffer only while it has bytes in flight; an idle
 * keep-alive connection holds none. A buffer grows past one block only when
 * a single head needs it (up to the caller's limit). Not thread-safe: a
 * buffer belongs to one worker. */
#ifndef WEIR_CORE_BUF_H
#define WEIR_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WEIR_BUF_BLOCK 16384

typedef struct {
    char *data; /* NULL when the buffer holds no memory */
    uint32_t start, end, cap;
} weir_buf_t;

static inline size_t weir_buf_len(const weir_buf_t *b)
{
    return b->end - b->start;
}

static inline char *weir_buf_head(const weir_buf_t *b)
{
    return b->data + b->start;
}

static inline char *weir_buf_tail(const weir_buf_t *b)
{
    return b->data + b->end;
}

static inline size_t weir_buf_room(const weir_buf_t *b)
{
    return b->cap - b->end;
}

/* Ensures at least min_room free bytes after end, taking a block from the
 * pool, moving the data to the front, or growing. Returns 0 or -1 (ENOMEM). */
int weir_buf_reserve(weir_buf_t *b, size_t min_room);

/* Drops n bytes from the front; an emptied buffer rewinds to offset 0. */
static inline void weir_buf_consume(weir_buf_t *b, size_t n)
{
    b->start += (uint32_t)n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

/* Appends bytes (reserving as needed). Returns 0 or -1. */
int weir_buf_append(weir_buf_t *b, const void *p, size_t n);

/* Gives the memory back to the pool (or the allocator), whatever it holds. */
void weir_buf_release(weir_buf_t *b);

/* Releases the memory only if the buffer is empty. */
static inline void weir_buf_release_if_empty(weir_buf_t *b)
{
    if (b->data && b->start == b->end)
        weir_buf_release(b);
}

/* Reads once from a non-blocking fd into b, reserving 4 KiB of room first.
 * Returns the bytes read (> 0), 0 at end of stream, or -1 with errno set
 * (EAGAIN: nothing to read now; ENOMEM: no buffer). *drained is set when
 * fewer bytes than the room arrived: the socket is empty for now. */
ssize_t weir_buf_read(weir_buf_t *b, int fd, int *drained);

/* Frees pooled blocks of the calling thread beyond keep (when it is idle). */
void weir_buf_pool_shrink(size_t keep);

/* Frees the calling thread's pooled blocks (at thread exit). */
void weir_buf_pool_free(void);

#endif
