/* The TLS record layer of one connection over a non-blocking socket.
 *
 * GnuTLS pushes whole records through push(): what the socket does not
 * take is queued in t->out, so GnuTLS never sees EAGAIN on a write and
 * never asks to be called again with the same data. The caller stops
 * handing it plaintext while records are queued (that is the backpressure)
 * and flushes them when the socket drains. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls/tls.h"

#define WRITE_BUDGET (64 * 1024) /* plaintext taken per writev call */

static ssize_t push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
    weir_tls_io_t *t = ptr;
    size_t done = 0;
    if (weir_buf_len(&t->out) == 0) {
        ssize_t n = send(t->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            t->failed = 1;
            gnutls_transport_set_errno(t->s, errno);
            return -1;
        }
        if (n > 0)
            done = (size_t)n;
    }
    if (done < len) {
        if (weir_buf_append(&t->out, (const char *)data + done, len - done) < 0) {
            t->failed = 1;
            gnutls_transport_set_errno(t->s, ENOMEM);
            return -1;
        }
        t->wr_full = 1;
    }
    return (ssize_t)len;
}

static ssize_t pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
    weir_tls_io_t *t = ptr;
    size_t pl = weir_buf_len(&t->pre);
    if (pl) {
        size_t n = pl < len ? pl : len;
        memcpy(data, weir_buf_head(&t->pre), n);
        weir_buf_consume(&t->pre, n);
        weir_buf_release_if_empty(&t->pre);
        return (ssize_t)n;
    }
    ssize_t n = recv(t->fd, data, len, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            t->rd_again = 1;
        gnutls_transport_set_errno(t->s, errno);
    }
    return n;
}

void weir_tls_io_init(weir_tls_io_t *t, weir_tls_ctx_t *ctx, gnutls_session_t s, int fd,
                      weir_buf_t *pre)
{
    memset(t, 0, sizeof *t);
    t->s = s;
    t->ctx = ctx;
    if (ctx)
        weir_tls_ctx_ref(ctx);
    t->fd = fd;
    if (pre) {
        t->pre = *pre;
        memset(pre, 0, sizeof *pre);
    }
    gnutls_transport_set_ptr(s, t);
    gnutls_transport_set_push_function(s, push);
    gnutls_transport_set_pull_function(s, pull);
}

void weir_tls_io_free(weir_tls_io_t *t)
{
    if (t->s)
        gnutls_deinit(t->s);
    t->s = NULL;
    if (t->ctx)
        weir_tls_ctx_unref(t->ctx);
    t->ctx = NULL;
    weir_buf_release(&t->out);
    weir_buf_release(&t->pre);
}

int weir_tls_io_flush(weir_tls_io_t *t)
{
    while (weir_buf_len(&t->out)) {
        ssize_t n = send(t->fd, weir_buf_head(&t->out), weir_buf_len(&t->out), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            t->failed = 1;
            return -1;
        }
        weir_buf_consume(&t->out, (size_t)n);
    }
    weir_buf_release(&t->out);
    t->wr_full = 0;
    return 1;
}

int weir_tls_io_handshake(weir_tls_io_t *t)
{
    if (t->handshaken)
        return 1;
    t->rd_again = 0;
    int rc = gnutls_handshake(t->s);
    if (rc == GNUTLS_E_SUCCESS) {
        t->handshaken = 1;
        return weir_tls_io_flush(t) < 0 ? -1 : 1;
    }
    if (weir_tls_io_flush(t) < 0)
        return -1;
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
        return 0;
    if (!gnutls_error_is_fatal(rc))
        return 0; /* a warning alert: keep going */
    /* Tell the peer why (bad_certificate, certificate_required,
     * protocol_version...): GnuTLS does not send the alert by itself. */
    gnutls_alert_send_appropriate(t->s, rc);
    weir_tls_io_flush(t);
    t->failed = 1;
    return -1;
}

ssize_t weir_tls_io_read(weir_tls_io_t *t, void *buf, size_t cap)
{
    for (int again = 0;;) {
        t->rd_again = 0;
        ssize_t n = gnutls_record_recv(t->s, buf, cap);
        if (n >= 0)
            return n;
        switch (n) {
        case GNUTLS_E_AGAIN:
            /* GnuTLS also says "again" after a post-handshake message (a
             * TLS 1.3 NewSessionTicket, a key update) when more records
             * may wait in the socket: with edge-triggered readiness no
             * event would come for them, so read on until the socket
             * itself is empty. */
            if (!t->rd_again && ++again < 16)
                continue;
            errno = EAGAIN;
            return -1;
        case GNUTLS_E_INTERRUPTED:
        case GNUTLS_E_REHANDSHAKE:
            continue;
        case GNUTLS_E_PREMATURE_TERMINATION:
            return 0; /* EOF without close_notify: treat as the end */
        default:
            if (!gnutls_error_is_fatal((int)n))
                continue;
            t->failed = 1;
            errno = ECONNRESET;
            return -1;
        }
    }
}

ssize_t weir_tls_io_writev(weir_tls_io_t *t, const struct iovec *iov, int iovcnt)
{
    if (t->failed)
        return -1;
    if (weir_buf_len(&t->out)) {
        int f = weir_tls_io_flush(t);
        if (f < 0)
            return -1;
        if (f == 0)
            return 0;
    }
    size_t taken = 0;
    gnutls_record_cork(t->s);
    for (int i = 0; i < iovcnt && taken < WRITE_BUDGET; i++) {
        const char *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        if (len > WRITE_BUDGET - taken)
            len = WRITE_BUDGET - taken;
        while (len) {
            ssize_t n = gnutls_record_send(t->s, p, len);
            if (n < 0) {
                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                    continue;
                t->failed = 1;
                return -1;
            }
            p += n;
            len -= (size_t)n;
            taken += (size_t)n;
        }
    }
    int rc;
    do
        rc = gnutls_record_uncork(t->s, 0);
    while (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED);
    if (rc < 0) {
        t->failed = 1;
        return -1;
    }
    return (ssize_t)taken;
}

weir_slice_t weir_tls_io_alpn(const weir_tls_io_t *t)
{
    gnutls_datum_t d;
    if (gnutls_alpn_get_selected_protocol(t->s, &d) < 0)
        return WEIR_SLICE_NULL;
    return weir_slice((const char *)d.data, d.size);
}

bool weir_tls_io_resumed(const weir_tls_io_t *t)
{
    return gnutls_session_is_resumed(t->s) != 0;
}

void weir_tls_io_bye(weir_tls_io_t *t)
{
    if (!t->s || t->failed || !t->handshaken)
        return;
    gnutls_bye(t->s, GNUTLS_SHUT_WR);
    weir_tls_io_flush(t);
}
