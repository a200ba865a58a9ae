/* A per-thread small-block allocator for nghttp2 sessions: nghttp2
 * allocates and frees several small objects per stream (the stream, its
 * frames, header copies); recycling them from per-thread free lists keeps
 * them out of malloc. Every session must be used and freed on the thread
 * that made it (a worker's sessions are). */
#ifndef WEIR_H2_MEM_H
#define WEIR_H2_MEM_H

#include <nghttp2/nghttp2.h>

nghttp2_mem *weir_h2_mem(void);

/* Frees the calling thread's cached blocks (at thread exit). */
void weir_h2_mem_thread_free(void);

#endif
