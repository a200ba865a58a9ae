/* HTTP/3 server side (nghttp3): one session per QUIC connection, each
 * request stream a weir_req in the common request model, like HTTP/2.
 *
 * The QUIC layer (src/quic) owns the connection and feeds this module the
 * bytes of every stream; it asks here for the next stream bytes to put in
 * packets. nghttp3 sends body bytes without copying them: what a stream
 * hands it stays in the stream's chunks until the peer acknowledges it.
 *
 * Backpressure both ways: request body bytes are credited back to the
 * client's QUIC flow-control windows only once the proxy has taken them;
 * response bytes wait in a bounded per-stream queue (sent and unacked
 * bytes count), and the proxy stops reading its backend while it is full.
 */
#ifndef WEIR_H3_H
#define WEIR_H3_H

#include <ngtcp2/ngtcp2.h>
#include <stdbool.h>
#include <sys/uio.h>

#include "http/conn.h"

typedef struct weir_h3_conn weir_h3_conn_t;
typedef struct weir_quic_conn weir_quic_conn_t;

/* ---- called by the QUIC layer ---- */

/* The session of a connection whose 1-RTT keys are ready: opens the
 * control and QPACK streams. c is the connection's request-model side.
 * Returns NULL on failure. */
weir_h3_conn_t *weir_h3_new(weir_quic_conn_t *qc, ngtcp2_conn *q, weir_conn_t *c,
                            uint64_t max_bidi_streams);
/* Frees the session; requests still in flight end with 499. */
void weir_h3_free(weir_h3_conn_t *h3);
/* Bytes of stream sid (early: they came in 0-RTT packets, before the
 * handshake completed): returns how many the HTTP/3 framing consumed (to
 * credit at once; body bytes are credited when the proxy takes them), or
 * a negative nghttp3 error (the connection must close with the QUIC
 * application error it maps to).
 *
 * A request whose head came in early data is replayable by an attacker:
 * only GET, HEAD and OPTIONS go on, with "Early-Data: 1" for the backend
 * (RFC 8470); other methods get 425 Too Early and the client retries
 * after the handshake. */
ssize_t weir_h3_recv(weir_h3_conn_t *h3, int64_t sid, const uint8_t *p, size_t n, bool fin,
                     bool early);
/* The peer acknowledged n more body bytes of sid. */
int weir_h3_acked(weir_h3_conn_t *h3, int64_t sid, uint64_t n);
/* The QUIC stream is closed (both directions, or reset). */
int weir_h3_stream_close(weir_h3_conn_t *h3, int64_t sid, uint64_t app_error);
/* The peer reset its side of sid or asked us to stop sending on it. */
int weir_h3_stream_reset(weir_h3_conn_t *h3, int64_t sid);
/* Flow control opened on sid again. */
void weir_h3_unblock(weir_h3_conn_t *h3, int64_t sid);
/* The peer allows max more bidirectional streams in total. */
void weir_h3_max_streams(weir_h3_conn_t *h3, uint64_t max);

/* The next stream bytes to send: *sid (-1: none), *fin, up to n vectors.
 * Returns the vector count or a negative nghttp3 error. */
ssize_t weir_h3_writev(weir_h3_conn_t *h3, int64_t *sid, int *fin, ngtcp2_vec *v, size_t n);
/* n bytes of what weir_h3_writev gave for sid went into a packet. */
int weir_h3_wrote(weir_h3_conn_t *h3, int64_t sid, size_t n);
/* sid cannot send now (flow control), or its write side is shut. */
void weir_h3_blocked(weir_h3_conn_t *h3, int64_t sid);
void weir_h3_write_shut(weir_h3_conn_t *h3, int64_t sid);

/* Requests that got room or bytes continue (before a write pass). */
void weir_h3_resume(weir_h3_conn_t *h3);
/* Graceful shutdown: GOAWAY (final: with the last stream id accepted). */
void weir_h3_goaway(weir_h3_conn_t *h3, bool final);
/* Number of request streams still open. */
int weir_h3_streams(const weir_h3_conn_t *h3);

/* ---- the weir_req operations for a request on an HTTP/3 stream ---- */
ssize_t weir_h3_send(weir_req_t *r, const struct iovec *iov, int iovcnt);
int weir_h3_submit_head(weir_req_t *r);
void weir_h3_flush_generated(weir_req_t *r);
void weir_h3_finish(weir_req_t *r, int ok);
weir_buf_t *weir_h3_body_src(weir_req_t *r);
void weir_h3_want_body(weir_req_t *r);
bool weir_h3_body_eof(const weir_req_t *r);
void weir_h3_resume_later(weir_req_t *r);
void weir_h3_response_started(weir_req_t *r);

/* ---- provided by the QUIC layer to this module ---- */

/* Runs a write pass for qc after the current loop pass. */
void weir_quic_schedule(weir_quic_conn_t *qc);
/* The application took n bytes of sid: credit the flow-control windows. */
void weir_quic_consumed(weir_quic_conn_t *qc, int64_t sid, uint64_t n);
/* Resets sid in both directions (read: STOP_SENDING only) with an HTTP/3
 * error code. */
void weir_quic_stream_reset(weir_quic_conn_t *qc, int64_t sid, uint64_t code, bool read_only);

#endif
