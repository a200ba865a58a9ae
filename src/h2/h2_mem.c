/* Per-thread free lists for nghttp2's small allocations (see h2_mem.h).
 * Each block carries a 16-byte header with its size class; blocks above the
 * largest class go to malloc directly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2/h2_mem.h"

#define HDR 16
#define NUM_CLASSES 7   /* 64, 128, ..., 4096 bytes including the header */
#define MAX_CACHED 512  /* blocks kept per class and thread */
#define BIG 0xff

typedef struct block {
    struct block *next;
} block_t;

static __thread block_t *free_list[NUM_CLASSES];
static __thread unsigned cached[NUM_CLASSES];

static int class_of(size_t size)
{
    size_t need = size + HDR;
    for (int c = 0; c < NUM_CLASSES; c++)
        if (need <= (size_t)64 << c)
            return c;
    return -1;
}

static void *mem_malloc(size_t size, void *ud)
{
    (void)ud;
    int c = class_of(size);
    uint8_t *p;
    if (c < 0) {
        p = malloc(size + HDR);
        if (!p)
            return NULL;
        p[0] = BIG;
        memcpy(p + 8, &size, sizeof size);
        return p + HDR;
    }
    if (free_list[c]) {
        p = (uint8_t *)free_list[c];
        free_list[c] = free_list[c]->next;
        cached[c]--;
    } else if (!(p = malloc((size_t)64 << c))) {
        return NULL;
    }
    p[0] = (uint8_t)c;
    return p + HDR;
}

static void mem_free(void *ptr, void *ud)
{
    (void)ud;
    if (!ptr)
        return;
    uint8_t *p = (uint8_t *)ptr - HDR;
    int c = p[0];
    if (c == BIG || cached[c] >= MAX_CACHED) {
        free(p);
        return;
    }
    block_t *b = (block_t *)p;
    b->next = free_list[c];
    free_list[c] = b;
    cached[c]++;
}

static void *mem_calloc(size_t n, size_t size, void *ud)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = mem_malloc(n * size, ud);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static void *mem_realloc(void *ptr, size_t size, void *ud)
{
    if (!ptr)
        return mem_malloc(size, ud);
    uint8_t *p = (uint8_t *)ptr - HDR;
    if (p[0] != BIG && size + HDR <= (size_t)64 << p[0])
        return ptr; /* still fits its block */
    void *n = mem_malloc(size, ud);
    if (!n)
        return NULL;
    size_t old = ((size_t)64 << (p[0] == BIG ? 0 : p[0])) - HDR;
    if (p[0] == BIG)
        memcpy(&old, p + 8, sizeof old);
    memcpy(n, ptr, old < size ? old : size);
    mem_free(ptr, ud);
    return n;
}

nghttp2_mem *weir_h2_mem(void)
{
    static nghttp2_mem mem = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc};
    return &mem;
}

void weir_h2_mem_thread_free(void)
{
    for (int c = 0; c < NUM_CLASSES; c++) {
        while (free_list[c]) {
            block_t *b = free_list[c];
            free_list[c] = b->next;
            free(b);
        }
        cached[c] = 0;
    }
}
