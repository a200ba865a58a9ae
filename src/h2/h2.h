/* HTTP/2 server side (nghttp2): one session per client connection, each
 * stream a weir_req in the common request model, so routing, load
 * balancing, the proxy and logging are the HTTP/1 ones.
 *
 * Request bodies stream through a per-stream buffer bounded by the
 * stream's flow-control window: WINDOW_UPDATE goes out only when the proxy
 * has taken bytes upstream (backpressure end to end). Response bodies go
 * the other way through a bounded per-stream buffer that the DATA frames
 * drain. Abuse limits (rapid reset, SETTINGS/PING floods, CONTINUATION
 * floods, oversized header lists) end the connection with GOAWAY.
 */
#ifndef WEIR_H2_H
#define WEIR_H2_H

#include <stdbool.h>
#include <sys/uio.h>

#include "http/conn.h"

/* Takes over c (state CONN_H2); c->in may already hold the client preface
 * and the first frames. Returns 0, or -1 (c must be closed). */
int weir_h2_start(weir_conn_t *c);
/* Socket readiness changed (c->rd_ready / wr_ready updated). */
void weir_h2_on_io(weir_conn_t *c);
/* Frees the session; requests still in flight are aborted (499). */
void weir_h2_close(weir_conn_t *c);
/* Graceful shutdown: GOAWAY with the maximum stream id, then with the
 * last processed one; the connection closes when its streams are done. */
void weir_h2_drain(weir_conn_t *c);
/* Connection timer fired (idle or preface timeout). */
void weir_h2_timeout(weir_conn_t *c);

/* The weir_req_* operations for a request on an HTTP/2 stream. */
ssize_t weir_h2_send(weir_req_t *r, const struct iovec *iov, int iovcnt);
int weir_h2_submit_head(weir_req_t *r);
void weir_h2_flush_generated(weir_req_t *r);
void weir_h2_finish(weir_req_t *r, int ok);
weir_buf_t *weir_h2_body_src(weir_req_t *r);
void weir_h2_want_body(weir_req_t *r);
bool weir_h2_body_eof(const weir_req_t *r);
void weir_h2_resume_later(weir_req_t *r);
void weir_h2_response_started(weir_req_t *r);

#endif
