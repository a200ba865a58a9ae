/* QUIC server: UDP sockets, connection table, ngtcp2 connections.
 *
 * Reads take up to BATCH datagrams per recvmmsg call; each goes to the
 * connection its destination connection ID names. A connection that got
 * packets is written once, after the batch (deferred), so the ACKs and
 * responses for a burst leave together. Writes gather the packets one
 * ngtcp2 call produces into a buffer and send them with one sendmsg,
 * segmented by the kernel (UDP_SEGMENT) when there are several.
 */
#include "quic/quic.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <nghttp3/nghttp3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "h3/h3.h"
#include "l4/proxy_proto.h"
#include "http/conn.h"
#include "tls/clienthello.h"
#include "tls/tls.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define SCIDLEN 18           /* server connection IDs: [worker id][17 random bytes] */
#define BATCH 32             /* datagrams per recvmmsg */
#define RX_SIZE 4096         /* largest datagram accepted (announced as max_udp_payload_size) */
#define READ_ROUNDS 8        /* recvmmsg calls per readiness event before yielding */
#define TX_SIZE (64 * 1024)  /* one GSO send at most */
#define STREAM_WINDOW (256 * 1024)
#define CONN_WINDOW (1024 * 1024)
#define MAX_STREAMS_BIDI 256
#define RETRY_HALF_OPEN 128  /* retry: auto asks for Retry past this many handshakes in progress */
#define RETRY_TOKEN_TTL (10 * NGTCP2_SECONDS)
#define REGULAR_TOKEN_TTL (3600 * NGTCP2_SECONDS)
#define MAX_HELLO 16384      /* largest ClientHello accepted */
#define INBOX_MAX 4096       /* datagrams queued for a worker by the others */
#define RESETS_PER_SEC 200   /* stateless resets a worker sends per second */
#define DRAIN_FINAL_MS 1000

static uint8_t secret[32]; /* keys tokens and stateless reset tokens */
/* Handshakes in progress in the whole process (retry: auto): a flood may
 * land on any worker, the next client on another. */
static atomic_int half_open;

typedef struct weir_quic_worker quic_worker_t;

typedef struct {
    weir_io_t io;
    quic_worker_t *qw;
    int ep;
    struct sockaddr_storage addr; /* bound address */
    socklen_t addrlen;
    bool pktinfo; /* bound to a wildcard address: replies name their source */
    bool no_gso;
    weir_quic_conn_t *blocked; /* connections waiting for the socket to drain */
} qep_t;

typedef struct {
    ngtcp2_cid cid;
    weir_quic_conn_t *qc;
} cid_slot_t;

typedef struct {
    int ep;
    socklen_t rlen, llen;
    struct sockaddr_storage remote, local;
    size_t len;
    uint8_t data[];
} handoff_t;

struct weir_quic_worker {
    weir_worker_t *w;
    qep_t **eps; /* allocated one by one: the loop holds their addresses */
    int neps;
    cid_slot_t *tab; /* open addressing, linear probing, backward-shift delete */
    size_t tab_mask, tab_count;
    uint64_t seed;
    weir_quic_conn_t *conns;
    bool draining;
    weir_timer_t drain_timer;
    int64_t reset_window_ms;
    int resets;
    pthread_mutex_t inbox_mu;
    handoff_t **inbox;
    size_t inbox_len;
    uint8_t rx[BATCH][RX_SIZE];
    uint8_t tx[TX_SIZE];
};

struct weir_quic_conn {
    weir_conn_t c; /* the request model's side; c.timer runs ngtcp2's expiry */
    quic_worker_t *qw;
    qep_t *qep;
    ngtcp2_conn *q;
    ngtcp2_crypto_conn_ref ref;
    gnutls_session_t tls;
    weir_tls_ctx_t *tls_ctx; /* reference: the credentials outlive the session */
    weir_buf_t hello;        /* Initial CRYPTO bytes until the ClientHello is complete */
    weir_h3_conn_t *h3;
    struct sockaddr_storage local;
    socklen_t local_len;
    ngtcp2_cid odcid; /* the client's first destination ID (a key in the table) */
    ngtcp2_connection_close_error err;
    uint8_t *closebuf; /* CONNECTION_CLOSE, repeated while closing */
    size_t closelen;
    uint8_t *pend; /* datagrams the socket did not take */
    size_t pend_len, pend_gso;
    struct sockaddr_storage pend_to, pend_from;
    socklen_t pend_to_len, pend_from_len;
    weir_quic_conn_t *next, *prev, *blocked_next;
    uint8_t scheduled : 1, handshaken : 1, closing : 1, draining : 1, dead : 1, blocked : 1,
        half_open : 1, goaway : 1;
    uint8_t final_goaway : 1;
    uint8_t pp_peer : 1; /* c.peer comes from PROXY headers: paths are the relay's */
};

static ngtcp2_tstamp now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ngtcp2_tstamp)ts.tv_sec * NGTCP2_SECONDS + (ngtcp2_tstamp)ts.tv_nsec;
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NGTCP2_SECONDS + (uint64_t)ts.tv_nsec;
}

static const weir_entrypoint_cfg_t *ep_cfg(const weir_quic_conn_t *qc)
{
    return &qc->c.worker->view->snap->cfg->entrypoints[qc->c.ep];
}

int weir_quic_global_init(void)
{
    return gnutls_rnd(GNUTLS_RND_KEY, secret, sizeof secret) < 0 ? -1 : 0;
}

/* ---- connection ID table ---- */

static uint64_t cid_hash(const quic_worker_t *qw, const uint8_t *p, size_t n)
{
    uint64_t h = qw->seed ^ (n * 0x9e3779b97f4a7c15ull);
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h ^ (h >> 32);
}

static bool cid_eq(const ngtcp2_cid *a, const uint8_t *p, size_t n)
{
    return a->datalen == n && memcmp(a->data, p, n) == 0;
}

static weir_quic_conn_t *cid_find(const quic_worker_t *qw, const uint8_t *p, size_t n)
{
    if (!qw->tab)
        return NULL;
    for (size_t i = cid_hash(qw, p, n) & qw->tab_mask;; i = (i + 1) & qw->tab_mask) {
        if (!qw->tab[i].qc)
            return NULL;
        if (cid_eq(&qw->tab[i].cid, p, n))
            return qw->tab[i].qc;
    }
}

static int cid_put(quic_worker_t *qw, const ngtcp2_cid *cid, weir_quic_conn_t *qc)
{
    if ((qw->tab_count + 1) * 2 > qw->tab_mask + 1 || !qw->tab) {
        size_t cap = qw->tab ? (qw->tab_mask + 1) * 2 : 1024;
        cid_slot_t *t = calloc(cap, sizeof *t), *old = qw->tab;
        if (!t)
            return -1;
        size_t oldcap = qw->tab ? qw->tab_mask + 1 : 0;
        qw->tab = t;
        qw->tab_mask = cap - 1;
        qw->tab_count = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].qc)
                cid_put(qw, &old[i].cid, old[i].qc);
        free(old);
    }
    size_t i = cid_hash(qw, cid->data, cid->datalen) & qw->tab_mask;
    for (;; i = (i + 1) & qw->tab_mask) {
        if (!qw->tab[i].qc)
            break;
        if (cid_eq(&qw->tab[i].cid, cid->data, cid->datalen)) {
            qw->tab[i].qc = qc;
            return 0;
        }
    }
    qw->tab[i].cid = *cid;
    qw->tab[i].qc = qc;
    qw->tab_count++;
    return 0;
}

static void cid_del(quic_worker_t *qw, const ngtcp2_cid *cid)
{
    if (!qw->tab)
        return;
    size_t i = cid_hash(qw, cid->data, cid->datalen) & qw->tab_mask;
    for (;; i = (i + 1) & qw->tab_mask) {
        if (!qw->tab[i].qc)
            return;
        if (cid_eq(&qw->tab[i].cid, cid->data, cid->datalen))
            break;
    }
    /* Backward-shift: move later entries of the run into the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & qw->tab_mask; qw->tab[j].qc; j = (j + 1) & qw->tab_mask) {
        size_t home = cid_hash(qw, qw->tab[j].cid.data, qw->tab[j].cid.datalen) & qw->tab_mask;
        if (((j - home) & qw->tab_mask) >= ((j - hole) & qw->tab_mask)) {
            qw->tab[hole] = qw->tab[j];
            hole = j;
        }
    }
    qw->tab[hole].qc = NULL;
    qw->tab_count--;
}

static void new_scid(const quic_worker_t *qw, ngtcp2_cid *cid)
{
    cid->datalen = SCIDLEN;
    gnutls_rnd(GNUTLS_RND_NONCE, cid->data, SCIDLEN);
    cid->data[0] = (uint8_t)qw->w->id;
}

/* ---- sending ---- */

/* Sends len bytes (segments of gso bytes) from `from` to `to`. Returns 1
 * sent (or lost for good), 0 when the socket is full. */
static int send_dgrams(qep_t *qep, const struct sockaddr *to, socklen_t tolen,
                       const struct sockaddr *from, const uint8_t *p, size_t len, size_t gso)
{
    if (qep->no_gso && len > gso) {
        for (size_t off = 0; off < len; off += gso) {
            size_t n = len - off < gso ? len - off : gso;
            if (send_dgrams(qep, to, tolen, from, p + off, n, n) == 0)
                return 0; /* (the rest is lost: QUIC retransmits) */
        }
        return 1;
    }
    struct iovec iov = {(void *)p, len};
    struct msghdr m = {.msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = &iov, .msg_iovlen = 1};
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    size_t clen = 0;
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    if (qep->pktinfo && from) {
        if (from->sa_family == AF_INET) {
            cm->cmsg_level = IPPROTO_IP;
            cm->cmsg_type = IP_PKTINFO;
            cm->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
            struct in_pktinfo pi = {0};
            pi.ipi_spec_dst = ((const struct sockaddr_in *)from)->sin_addr;
            memcpy(CMSG_DATA(cm), &pi, sizeof pi);
            clen += CMSG_SPACE(sizeof(struct in_pktinfo));
        } else {
            cm->cmsg_level = IPPROTO_IPV6;
            cm->cmsg_type = IPV6_PKTINFO;
            cm->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
            struct in6_pktinfo pi = {0};
            pi.ipi6_addr = ((const struct sockaddr_in6 *)from)->sin6_addr;
            memcpy(CMSG_DATA(cm), &pi, sizeof pi);
            clen += CMSG_SPACE(sizeof(struct in6_pktinfo));
        }
        cm = CMSG_NXTHDR(&m, cm);
    }
    if (len > gso) {
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t seg = (uint16_t)gso;
        memcpy(CMSG_DATA(cm), &seg, sizeof seg);
        clen += CMSG_SPACE(sizeof(uint16_t));
    }
    m.msg_controllen = clen;
    if (!clen)
        m.msg_control = NULL;
    for (;;) {
        if (sendmsg(qep->io.fd, &m, 0) >= 0)
            return 1;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if ((errno == EIO || errno == EINVAL) && len > gso && !qep->no_gso) {
            weir_info("quic: UDP segmentation offload refused (%s): sending datagrams one by one",
                      strerror(errno));
            qep->no_gso = true;
            return send_dgrams(qep, to, tolen, from, p, len, gso);
        }
        weir_debug("quic: sendmsg: %s", strerror(errno));
        return 1; /* lost: QUIC recovers */
    }
}

static void send_one(qep_t *qep, const struct sockaddr *to, socklen_t tolen,
                     const struct sockaddr *from, const uint8_t *p, size_t len)
{
    send_dgrams(qep, to, tolen, from, p, len, len);
}

/* ---- connections: lifetime ---- */

static void conn_write(weir_quic_conn_t *qc);
static void update_timer(weir_quic_conn_t *qc);

static void conn_free(void *arg)
{
    weir_quic_conn_t *qc = arg;
    free(qc->closebuf);
    free(qc->pend);
    weir_buf_release(&qc->hello);
    free(qc);
}

static void unblock_remove(weir_quic_conn_t *qc)
{
    if (!qc->blocked)
        return;
    for (weir_quic_conn_t **pp = &qc->qep->blocked; *pp; pp = &(*pp)->blocked_next)
        if (*pp == qc) {
            *pp = qc->blocked_next;
            break;
        }
    qc->blocked = 0;
}

static void conn_destroy(weir_quic_conn_t *qc)
{
    if (qc->dead)
        return;
    quic_worker_t *qw = qc->qw;
    qc->dead = 1;
    weir_timer_stop(&qc->c.timer);
    unblock_remove(qc);
    weir_h3_free(qc->h3);
    qc->h3 = NULL;
    if (qc->q) {
        size_t n = ngtcp2_conn_get_num_scid(qc->q);
        ngtcp2_cid *ids = calloc(n ? n : 1, sizeof *ids);
        if (ids) {
            ngtcp2_conn_get_scid(qc->q, ids);
            for (size_t i = 0; i < n; i++)
                if (cid_find(qw, ids[i].data, ids[i].datalen) == qc)
                    cid_del(qw, &ids[i]);
            free(ids);
        }
        ngtcp2_conn_del(qc->q);
        qc->q = NULL;
    }
    if (cid_find(qw, qc->odcid.data, qc->odcid.datalen) == qc)
        cid_del(qw, &qc->odcid);
    if (qc->tls)
        gnutls_deinit(qc->tls);
    qc->tls = NULL;
    if (qc->tls_ctx)
        weir_tls_ctx_unref(qc->tls_ctx);
    qc->tls_ctx = NULL;
    if (qc->half_open)
        atomic_fetch_sub(&half_open, 1);
    if (qc->prev)
        qc->prev->next = qc->next;
    else
        qw->conns = qc->next;
    if (qc->next)
        qc->next->prev = qc->prev;
    qc->c.closed = 1;
    qw->w->num_conns--;
    weir_loop_defer(qw->w->loop, conn_free, qc);
}

static weir_quic_conn_t *of_timer(weir_timer_t *t)
{
    return (weir_quic_conn_t *)((char *)t - offsetof(weir_quic_conn_t, c.timer));
}

static void close_wait_done(weir_timer_t *t)
{
    conn_destroy(of_timer(t));
}

/* Enters the closing period: CONNECTION_CLOSE goes out now and again for
 * packets that still arrive; the connection ends after three PTOs. */
static void conn_close(weir_quic_conn_t *qc)
{
    if (qc->dead || qc->closing || qc->draining)
        return;
    if (qc->err.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT_IDLE_CLOSE ||
        ngtcp2_conn_is_in_draining_period(qc->q)) {
        conn_destroy(qc);
        return;
    }
    qc->closing = 1;
    unblock_remove(qc);
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    uint8_t buf[1500];
    ngtcp2_ssize n = ngtcp2_conn_write_connection_close(qc->q, &ps.path, &pi, buf, sizeof buf,
                                                        &qc->err, now_ns());
    if (n > 0 && (qc->closebuf = malloc((size_t)n))) {
        memcpy(qc->closebuf, buf, (size_t)n);
        qc->closelen = (size_t)n;
        send_one(qc->qep, ps.path.remote.addr, ps.path.remote.addrlen, ps.path.local.addr,
                 qc->closebuf, qc->closelen);
    }
    weir_h3_free(qc->h3);
    qc->h3 = NULL;
    ngtcp2_duration pto = ngtcp2_conn_get_pto(qc->q);
    weir_timer_set(qc->c.worker->loop, &qc->c.timer, (int64_t)(pto * 3 / NGTCP2_MILLISECONDS) + 1,
                   close_wait_done);
}

static void conn_fail(weir_quic_conn_t *qc, int liberr)
{
    if (qc->err.error_code == 0 && qc->err.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT) {
        if (liberr == NGTCP2_ERR_CRYPTO)
            ngtcp2_connection_close_error_set_transport_error_tls_alert(
                &qc->err, ngtcp2_conn_get_tls_alert(qc->q), NULL, 0);
        else
            ngtcp2_connection_close_error_set_transport_error_liberr(&qc->err, liberr, NULL, 0);
    }
    weir_debug("quic: connection error: %s (TLS alert %u)", ngtcp2_strerror(liberr),
               (unsigned)ngtcp2_conn_get_tls_alert(qc->q));
    conn_close(qc);
}

static void start_draining(weir_quic_conn_t *qc)
{
    qc->draining = 1;
    unblock_remove(qc);
    weir_h3_free(qc->h3);
    qc->h3 = NULL;
    ngtcp2_duration pto = ngtcp2_conn_get_pto(qc->q);
    weir_timer_set(qc->c.worker->loop, &qc->c.timer, (int64_t)(pto * 3 / NGTCP2_MILLISECONDS) + 1,
                   close_wait_done);
}

/* ---- ngtcp2 callbacks ---- */

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((weir_quic_conn_t *)ref->user_data)->q;
}

/* The ClientHello arrives in CRYPTO frames at the Initial level, maybe
 * over several packets: gather it, choose certificate and TLS options by
 * its SNI, then create the TLS session and give it the whole hello. */
static int on_crypto_data(ngtcp2_conn *q, ngtcp2_crypto_level level, uint64_t offset,
                          const uint8_t *data, size_t len, void *ud)
{
    weir_quic_conn_t *qc = ud;
    if (qc->tls || level != NGTCP2_CRYPTO_LEVEL_INITIAL)
        return ngtcp2_crypto_recv_crypto_data_cb(q, level, offset, data, len, ud);
    if (weir_buf_len(&qc->hello) + len > MAX_HELLO || weir_buf_append(&qc->hello, data, len) < 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    weir_client_hello_t ch;
    int rc = weir_client_hello_parse_message((const uint8_t *)weir_buf_head(&qc->hello),
                                             weir_buf_len(&qc->hello), &ch);
    if (rc == WEIR_CH_NEED_MORE)
        return 0;
    weir_tls_ctx_t *ctx = qc->c.worker->view->snap->tls;
    if (rc != WEIR_CH_OK || !ctx) {
        ngtcp2_connection_close_error_set_transport_error(&qc->err, NGTCP2_PROTOCOL_VIOLATION, NULL,
                                                          0);
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    const weir_tls_cert_t *cert;
    int opt = weir_tls_pick(ctx, &ch, &cert);
    if (weir_tls_quic_session_new(ctx, opt, cert, ep_cfg(qc)->h3_zero_rtt, &qc->tls) < 0 ||
        ngtcp2_crypto_gnutls_configure_server_session(qc->tls) != 0) {
        /* sniStrict without a certificate, or options without TLS 1.3 */
        ngtcp2_connection_close_error_set_transport_error_tls_alert(&qc->err, 112 /* unrecognized_name */,
                                                                    NULL, 0);
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    weir_tls_ctx_ref(ctx);
    qc->tls_ctx = ctx;
    qc->c.tls_opt = (int16_t)opt;
    qc->ref.get_conn = get_conn;
    qc->ref.user_data = qc;
    gnutls_session_set_ptr(qc->tls, &qc->ref);
    ngtcp2_conn_set_tls_native_handle(q, qc->tls);
    int rv = ngtcp2_crypto_recv_crypto_data_cb(q, level, 0, (const uint8_t *)weir_buf_head(&qc->hello),
                                               weir_buf_len(&qc->hello), ud);
    weir_buf_release(&qc->hello);
    return rv;
}

static int on_handshake_completed(ngtcp2_conn *q, void *ud)
{
    weir_quic_conn_t *qc = ud;
    qc->handshaken = 1;
    if (qc->half_open) {
        qc->half_open = 0;
        atomic_fetch_sub(&half_open, 1);
    }
    gnutls_session_ticket_send(qc->tls, 1, 0); /* resumption (and 0-RTT when enabled) */
    /* NEW_TOKEN: the client's next connection from this address skips Retry. */
    uint8_t token[NGTCP2_CRYPTO_MAX_REGULAR_TOKENLEN];
    const ngtcp2_path *path = ngtcp2_conn_get_path(q);
    ngtcp2_ssize n = ngtcp2_crypto_generate_regular_token(token, secret, sizeof secret,
                                                          path->remote.addr, path->remote.addrlen,
                                                          wall_ns());
    if (n > 0)
        ngtcp2_conn_submit_new_token(q, token, (size_t)n);
    return 0;
}

static int on_stream_data(ngtcp2_conn *q, uint32_t flags, int64_t sid, uint64_t offset,
                          const uint8_t *data, size_t len, void *ud, void *sud)
{
    weir_quic_conn_t *qc = ud;
    if (!qc->h3)
        return 0;
    ssize_t n = weir_h3_recv(qc->h3, sid, data, len, flags & NGTCP2_STREAM_DATA_FLAG_FIN,
                             flags & NGTCP2_STREAM_DATA_FLAG_EARLY);
    if (n < 0) {
        ngtcp2_connection_close_error_set_application_error(
            &qc->err, nghttp3_err_infer_quic_app_error_code((int)n), NULL, 0);
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    ngtcp2_conn_extend_max_stream_offset(q, sid, (uint64_t)n);
    ngtcp2_conn_extend_max_offset(q, (uint64_t)n);
    return 0;
}

static int on_acked(ngtcp2_conn *q, int64_t sid, uint64_t offset, uint64_t len, void *ud,
                    void *sud)
{
    weir_quic_conn_t *qc = ud;
    if (qc->h3 && weir_h3_acked(qc->h3, sid, len) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int on_stream_close(ngtcp2_conn *q, uint32_t flags, int64_t sid, uint64_t code, void *ud,
                           void *sud)
{
    weir_quic_conn_t *qc = ud;
    if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET))
        code = NGHTTP3_H3_NO_ERROR;
    if (qc->h3 && weir_h3_stream_close(qc->h3, sid, code) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int on_stream_reset(ngtcp2_conn *q, int64_t sid, uint64_t final_size, uint64_t code,
                           void *ud, void *sud)
{
    weir_quic_conn_t *qc = ud;
    if (qc->h3 && weir_h3_stream_reset(qc->h3, sid) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int on_stop_sending(ngtcp2_conn *q, int64_t sid, uint64_t code, void *ud, void *sud)
{
    return on_stream_reset(q, sid, 0, code, ud, sud);
}

static int on_max_remote_bidi(ngtcp2_conn *q, uint64_t max, void *ud)
{
    weir_quic_conn_t *qc = ud;
    if (qc->h3)
        weir_h3_max_streams(qc->h3, max);
    return 0;
}

static int on_max_stream_data(ngtcp2_conn *q, int64_t sid, uint64_t max, void *ud, void *sud)
{
    weir_quic_conn_t *qc = ud;
    if (qc->h3)
        weir_h3_unblock(qc->h3, sid);
    return 0;
}

static void on_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    gnutls_rnd(GNUTLS_RND_NONCE, dest, len);
}

static int on_new_cid(ngtcp2_conn *q, ngtcp2_cid *cid, uint8_t *token, size_t cidlen, void *ud)
{
    weir_quic_conn_t *qc = ud;
    new_scid(qc->qw, cid);
    if (ngtcp2_crypto_generate_stateless_reset_token(token, secret, sizeof secret, cid) != 0 ||
        cid_put(qc->qw, cid, qc) < 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int on_remove_cid(ngtcp2_conn *q, const ngtcp2_cid *cid, void *ud)
{
    weir_quic_conn_t *qc = ud;
    if (cid_find(qc->qw, cid->data, cid->datalen) == qc)
        cid_del(qc->qw, cid);
    return 0;
}

static int on_tx_key(ngtcp2_conn *q, ngtcp2_crypto_level level, void *ud)
{
    weir_quic_conn_t *qc = ud;
    if (level != NGTCP2_CRYPTO_LEVEL_APPLICATION || qc->h3)
        return 0;
    qc->h3 = weir_h3_new(qc, q, &qc->c, MAX_STREAMS_BIDI);
    if (!qc->h3)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    if (qc->qw->draining)
        weir_h3_goaway(qc->h3, false);
    return 0;
}

static int on_path_validation(ngtcp2_conn *q, uint32_t flags, const ngtcp2_path *path,
                              ngtcp2_path_validation_result res, void *ud)
{
    weir_debug("quic: path validation %s", res == NGTCP2_PATH_VALIDATION_RESULT_SUCCESS ? "succeeded"
                                                                                      : "failed");
    weir_quic_conn_t *qc = ud;
    if (res == NGTCP2_PATH_VALIDATION_RESULT_SUCCESS && !qc->pp_peer)
        memcpy(&qc->c.peer, path->remote.addr, path->remote.addrlen); /* the client moved */
    return 0;
}

static const ngtcp2_callbacks callbacks = {
    .recv_client_initial = ngtcp2_crypto_recv_client_initial_cb,
    .recv_crypto_data = on_crypto_data,
    .handshake_completed = on_handshake_completed,
    .encrypt = ngtcp2_crypto_encrypt_cb,
    .decrypt = ngtcp2_crypto_decrypt_cb,
    .hp_mask = ngtcp2_crypto_hp_mask_cb,
    .recv_stream_data = on_stream_data,
    .acked_stream_data_offset = on_acked,
    .stream_close = on_stream_close,
    .rand = on_rand,
    .get_new_connection_id = on_new_cid,
    .remove_connection_id = on_remove_cid,
    .update_key = ngtcp2_crypto_update_key_cb,
    .path_validation = on_path_validation,
    .stream_reset = on_stream_reset,
    .extend_max_remote_streams_bidi = on_max_remote_bidi,
    .extend_max_stream_data = on_max_stream_data,
    .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
    .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
    .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
    .stream_stop_sending = on_stop_sending,
    .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
    .recv_tx_key = on_tx_key,
};

/* ---- writing ---- */

static void run_write(void *arg)
{
    conn_write(arg);
}

void weir_quic_schedule(weir_quic_conn_t *qc)
{
    if (qc->scheduled || qc->dead || qc->closing || qc->draining)
        return;
    qc->scheduled = 1;
    weir_loop_defer(qc->c.worker->loop, run_write, qc);
}

/* Keeps what the socket refused; the connection writes again once the
 * socket drains. */
static void park(weir_quic_conn_t *qc, const ngtcp2_path *path, const uint8_t *p, size_t len,
                 size_t gso)
{
    uint8_t *copy = malloc(len);
    if (!copy)
        return; /* lost: QUIC retransmits */
    free(qc->pend);
    qc->pend = copy;
    memcpy(copy, p, len);
    qc->pend_len = len;
    qc->pend_gso = gso;
    memcpy(&qc->pend_to, path->remote.addr, path->remote.addrlen);
    qc->pend_to_len = path->remote.addrlen;
    memcpy(&qc->pend_from, path->local.addr, path->local.addrlen);
    qc->pend_from_len = path->local.addrlen;
    if (!qc->blocked) {
        qc->blocked = 1;
        qc->blocked_next = qc->qep->blocked;
        qc->qep->blocked = qc;
    }
}

static bool flush_parked(weir_quic_conn_t *qc)
{
    if (!qc->pend)
        return true;
    if (!send_dgrams(qc->qep, (struct sockaddr *)&qc->pend_to, qc->pend_to_len,
                     (struct sockaddr *)&qc->pend_from, qc->pend, qc->pend_len, qc->pend_gso))
        return false;
    free(qc->pend);
    qc->pend = NULL;
    return true;
}

static void conn_write(weir_quic_conn_t *qc)
{
    qc->scheduled = 0;
    if (qc->dead || qc->closing || qc->draining)
        return;
    if (qc->blocked)
        return; /* the socket's EPOLLOUT brings us back */
    if (qc->h3) {
        weir_h3_resume(qc->h3);
        if (qc->dead || qc->closing)
            return;
    }
    quic_worker_t *qw = qc->qw;
    ngtcp2_tstamp ts = now_ns();
    size_t max_udp = ngtcp2_conn_get_max_tx_udp_payload_size(qc->q);
    size_t max_pkts = ngtcp2_conn_get_send_quantum(qc->q) / max_udp;
    if (max_pkts > TX_SIZE / max_udp)
        max_pkts = TX_SIZE / max_udp;
    if (max_pkts == 0)
        max_pkts = 1;
    ngtcp2_path_storage ps, bps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_path_storage_zero(&bps);
    size_t off = 0, gso = 0, npkts = 0;
    for (int guard = 0; guard < 4096; guard++) {
        int64_t sid = -1;
        int fin = 0;
        ngtcp2_vec vec[16];
        ssize_t nvec = 0;
        if (qc->h3 && ngtcp2_conn_get_max_data_left(qc->q)) {
            nvec = weir_h3_writev(qc->h3, &sid, &fin, vec, 16);
            if (nvec < 0) {
                ngtcp2_connection_close_error_set_application_error(
                    &qc->err, nghttp3_err_infer_quic_app_error_code((int)nvec), NULL, 0);
                conn_close(qc);
                return;
            }
        }
        ngtcp2_ssize ndata = -1;
        uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE | (fin ? NGTCP2_WRITE_STREAM_FLAG_FIN : 0);
        ngtcp2_pkt_info pi;
        ngtcp2_ssize n = ngtcp2_conn_writev_stream(qc->q, &ps.path, &pi, qw->tx + off, max_udp,
                                                   &ndata, flags, sid, vec, (size_t)nvec, ts);
        if (n < 0) {
            if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
                weir_h3_blocked(qc->h3, sid);
                continue;
            }
            if (n == NGTCP2_ERR_STREAM_SHUT_WR) {
                weir_h3_write_shut(qc->h3, sid);
                continue;
            }
            if (n == NGTCP2_ERR_WRITE_MORE) {
                if (weir_h3_wrote(qc->h3, sid, (size_t)ndata) != 0) {
                    conn_fail(qc, NGTCP2_ERR_INTERNAL);
                    return;
                }
                continue;
            }
            conn_fail(qc, (int)n);
            return;
        }
        if (ndata >= 0 && weir_h3_wrote(qc->h3, sid, (size_t)ndata) != 0) {
            conn_fail(qc, NGTCP2_ERR_INTERNAL);
            return;
        }
        if (n == 0)
            break; /* nothing more, or the congestion window is full */
        if (npkts && (!ngtcp2_path_eq(&bps.path, &ps.path) || (size_t)n > gso)) {
            /* another path (a probe), or a larger packet: send the batch first */
            if (!send_dgrams(qc->qep, bps.path.remote.addr, bps.path.remote.addrlen,
                             bps.path.local.addr, qw->tx, off, gso)) {
                park(qc, &bps.path, qw->tx, off, gso);
                ngtcp2_conn_update_pkt_tx_time(qc->q, ts);
                update_timer(qc);
                return;
            }
            memmove(qw->tx, qw->tx + off, (size_t)n);
            off = 0;
            npkts = 0;
        }
        if (npkts == 0) {
            ngtcp2_path_copy(&bps.path, &ps.path);
            gso = (size_t)n;
        }
        off += (size_t)n;
        npkts++;
        if (npkts >= max_pkts || (size_t)n < gso || off + max_udp > TX_SIZE) {
            bool quantum = npkts >= max_pkts;
            if (!send_dgrams(qc->qep, bps.path.remote.addr, bps.path.remote.addrlen,
                             bps.path.local.addr, qw->tx, off, gso)) {
                park(qc, &bps.path, qw->tx, off, gso);
                ngtcp2_conn_update_pkt_tx_time(qc->q, ts);
                update_timer(qc);
                return;
            }
            off = 0;
            npkts = 0;
            if (quantum)
                break; /* paced: ngtcp2's timer says when to go on */
        }
    }
    if (off && !send_dgrams(qc->qep, bps.path.remote.addr, bps.path.remote.addrlen,
                            bps.path.local.addr, qw->tx, off, gso))
        park(qc, &bps.path, qw->tx, off, gso);
    ngtcp2_conn_update_pkt_tx_time(qc->q, ts);
    update_timer(qc);
    /* A connection told to go away closes once its last stream is done. */
    if (qc->goaway && qc->final_goaway && qc->h3 && weir_h3_streams(qc->h3) == 0 && !qc->pend) {
        ngtcp2_connection_close_error_set_application_error(&qc->err, NGHTTP3_H3_NO_ERROR, NULL, 0);
        conn_close(qc);
    }
}

static void on_expiry(weir_timer_t *t)
{
    weir_quic_conn_t *qc = of_timer(t);
    int rv = ngtcp2_conn_handle_expiry(qc->q, now_ns());
    if (rv != 0) {
        if (rv == NGTCP2_ERR_IDLE_CLOSE) {
            conn_destroy(qc); /* idle timeout: silently, as RFC 9000 §10.1 says */
            return;
        }
        conn_fail(qc, rv);
        return;
    }
    conn_write(qc);
}

static void update_timer(weir_quic_conn_t *qc)
{
    if (qc->dead || qc->closing || qc->draining)
        return;
    ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(qc->q), now = now_ns();
    int64_t ms = 0;
    if (exp == UINT64_MAX)
        ms = -1;
    else if (exp > now)
        ms = (int64_t)((exp - now + NGTCP2_MILLISECONDS - 1) / NGTCP2_MILLISECONDS);
    weir_timer_set(qc->c.worker->loop, &qc->c.timer, ms, on_expiry);
}

/* ---- reading ---- */

static void send_version_negotiation(qep_t *qep, const ngtcp2_version_cid *vc,
                                     const struct sockaddr *to, socklen_t tolen,
                                     const struct sockaddr *from)
{
    uint8_t buf[256], r;
    gnutls_rnd(GNUTLS_RND_NONCE, &r, 1);
    /* a reserved version (0x?a?a?a?a) keeps clients from ossifying on our list */
    uint32_t sv[2] = {0x1a2a3a4au, NGTCP2_PROTO_VER_V1};
    ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(buf, sizeof buf, r, vc->scid, vc->scidlen,
                                                          vc->dcid, vc->dcidlen, sv, 2);
    if (n > 0)
        send_one(qep, to, tolen, from, buf, (size_t)n);
}

static void send_retry(qep_t *qep, const ngtcp2_pkt_hd *hd, const struct sockaddr *to,
                       socklen_t tolen, const struct sockaddr *from, size_t inlen)
{
    ngtcp2_cid scid;
    new_scid(qep->qw, &scid);
    uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN], buf[1500];
    ngtcp2_ssize tl = ngtcp2_crypto_generate_retry_token(token, secret, sizeof secret, hd->version,
                                                         to, tolen, &scid, &hd->dcid, wall_ns());
    if (tl < 0)
        return;
    size_t cap = inlen * 3 < sizeof buf ? inlen * 3 : sizeof buf;
    ngtcp2_ssize n = ngtcp2_crypto_write_retry(buf, cap, hd->version, &hd->scid, &scid, &hd->dcid,
                                               token, (size_t)tl);
    if (n > 0) {
        weir_debug("quic: Retry sent");
        send_one(qep, to, tolen, from, buf, (size_t)n);
    }
}

static void send_invalid_token(qep_t *qep, const ngtcp2_pkt_hd *hd, const struct sockaddr *to,
                               socklen_t tolen, const struct sockaddr *from)
{
    uint8_t buf[1500];
    ngtcp2_ssize n = ngtcp2_crypto_write_connection_close(buf, sizeof buf, hd->version, &hd->scid,
                                                          &hd->dcid, NGTCP2_INVALID_TOKEN, NULL, 0);
    if (n > 0)
        send_one(qep, to, tolen, from, buf, (size_t)n);
}

/* A short-header packet for a connection this process does not know (it
 * closed, or weir restarted within the secret's life): a stateless reset
 * tells the client at once. Smaller than what triggered it, and budgeted. */
static void send_stateless_reset(qep_t *qep, const uint8_t *dcid, size_t dcidlen, size_t inlen,
                                 const struct sockaddr *to, socklen_t tolen,
                                 const struct sockaddr *from)
{
    quic_worker_t *qw = qep->qw;
    if (dcidlen != SCIDLEN || inlen < 43)
        return;
    int64_t now = weir_loop_now(qw->w->loop);
    if (now - qw->reset_window_ms >= 1000) {
        qw->reset_window_ms = now;
        qw->resets = 0;
    }
    if (++qw->resets > RESETS_PER_SEC)
        return;
    ngtcp2_cid cid;
    cid.datalen = dcidlen;
    memcpy(cid.data, dcid, dcidlen);
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[64], buf[128];
    if (ngtcp2_crypto_generate_stateless_reset_token(token, secret, sizeof secret, &cid) != 0)
        return;
    size_t rlen = inlen - 1 - NGTCP2_STATELESS_RESET_TOKENLEN - 1;
    if (rlen > sizeof rnd)
        rlen = sizeof rnd;
    gnutls_rnd(GNUTLS_RND_NONCE, rnd, rlen);
    ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset(buf, sizeof buf, token, rnd, rlen);
    if (n > 0)
        send_one(qep, to, tolen, from, buf, (size_t)n);
}

/* WEIR_NGTCP2_LOG=1 in the environment prints ngtcp2's own log (every
 * packet and frame) to stderr: a debugging aid, far too verbose to run
 * with. */
static void ngtcp2_log(void *user_data, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static weir_quic_conn_t *conn_new(qep_t *qep, const ngtcp2_pkt_hd *hd, const ngtcp2_cid *ocid,
                                  const ngtcp2_vec *token, const struct sockaddr *remote,
                                  socklen_t rlen, const struct sockaddr *local, socklen_t llen)
{
    quic_worker_t *qw = qep->qw;
    weir_worker_t *w = qw->w;
    const weir_entrypoint_cfg_t *ep = &w->view->snap->cfg->entrypoints[qep->ep];
    weir_quic_conn_t *qc = calloc(1, sizeof *qc);
    if (!qc)
        return NULL;
    qc->qw = qw;
    qc->qep = qep;
    qc->c.worker = w;
    qc->c.ep = (uint16_t)qep->ep;
    qc->c.io.fd = qep->io.fd;
    qc->c.is_tls = 1;
    qc->c.keep_alive = 1;
    qc->c.state = CONN_H2; /* (multiplexed: the request model never reads it as HTTP/1) */
    memcpy(&qc->c.peer, remote, rlen < sizeof qc->c.peer ? rlen : sizeof qc->c.peer);
    memcpy(&qc->local, local, llen);
    qc->local_len = llen;
    qc->odcid = hd->dcid;

    ngtcp2_cid scid;
    new_scid(qw, &scid);
    ngtcp2_settings st;
    ngtcp2_settings_default(&st);
    st.initial_ts = now_ns();
    st.max_window = 16 * 1024 * 1024;
    st.max_stream_window = 4 * 1024 * 1024;
    st.handshake_timeout = 10 * NGTCP2_SECONDS;
    static int log_on = -1;
    if (log_on < 0)
        log_on = getenv("WEIR_NGTCP2_LOG") != NULL;
    if (log_on)
        st.log_printf = ngtcp2_log;
    if (token)
        st.token = *token;
    ngtcp2_transport_params p;
    ngtcp2_transport_params_default(&p);
    p.initial_max_stream_data_bidi_remote = STREAM_WINDOW;
    p.initial_max_stream_data_uni = STREAM_WINDOW;
    p.initial_max_data = CONN_WINDOW;
    p.initial_max_streams_bidi = MAX_STREAMS_BIDI;
    p.initial_max_streams_uni = 8;
    p.max_idle_timeout = (ep->idle_timeout_ms > 0 ? (uint64_t)ep->idle_timeout_ms : 180000) *
                         NGTCP2_MILLISECONDS;
    p.max_udp_payload_size = RX_SIZE;
    p.active_connection_id_limit = 7;
    p.stateless_reset_token_present = 1;
    ngtcp2_crypto_generate_stateless_reset_token(p.stateless_reset_token, secret, sizeof secret,
                                                 &scid);
    if (ocid) {
        p.original_dcid = *ocid;
        p.retry_scid = hd->dcid;
        p.retry_scid_present = 1;
    } else {
        p.original_dcid = hd->dcid;
    }
    ngtcp2_path path = {{(struct sockaddr *)&qc->local, llen}, {(struct sockaddr *)remote, rlen}, qep};
    if (ngtcp2_conn_server_new(&qc->q, &hd->scid, &scid, &path, hd->version, &callbacks, &st, &p,
                               NULL, qc) != 0) {
        free(qc);
        return NULL;
    }
    if (cid_put(qw, &hd->dcid, qc) < 0 || cid_put(qw, &scid, qc) < 0) {
        ngtcp2_conn_del(qc->q);
        cid_del(qw, &hd->dcid);
        free(qc);
        return NULL;
    }
    qc->next = qw->conns;
    if (qw->conns)
        qw->conns->prev = qc;
    qw->conns = qc;
    qc->half_open = 1;
    atomic_fetch_add(&half_open, 1);
    w->num_conns++;
    return qc;
}

static void conn_read(weir_quic_conn_t *qc, const struct sockaddr *remote, socklen_t rlen,
                      const struct sockaddr *local, socklen_t llen, const uint8_t *p, size_t len)
{
    if (qc->closing) {
        if (qc->closebuf)
            send_one(qc->qep, remote, rlen, local, qc->closebuf, qc->closelen);
        return;
    }
    if (qc->draining || qc->dead)
        return;
    ngtcp2_path path = {{(struct sockaddr *)local, llen}, {(struct sockaddr *)remote, rlen}, qc->qep};
    ngtcp2_pkt_info pi = {0};
    int rv = ngtcp2_conn_read_pkt(qc->q, &path, &pi, p, len, now_ns());
    if (rv != 0) {
        switch (rv) {
        case NGTCP2_ERR_DRAINING:
            start_draining(qc);
            return;
        case NGTCP2_ERR_DROP_CONN:
            conn_destroy(qc);
            return;
        default:
            conn_fail(qc, rv);
            return;
        }
    }
    weir_quic_schedule(qc);
}

/* Hands a datagram to the worker that owns its connection ID. */
static bool hand_off(quic_worker_t *qw, int to, int ep, const struct sockaddr *remote,
                     socklen_t rlen, const struct sockaddr *local, socklen_t llen, const uint8_t *p,
                     size_t len)
{
    if (to < 0 || to >= weir_server.num_workers || to == qw->w->id)
        return false;
    quic_worker_t *dst = weir_server.workers[to]->quic;
    if (!dst)
        return false;
    handoff_t *h = malloc(sizeof *h + len);
    if (!h)
        return true;
    h->ep = ep;
    memcpy(&h->remote, remote, rlen);
    h->rlen = rlen;
    memcpy(&h->local, local, llen);
    h->llen = llen;
    h->len = len;
    memcpy(h->data, p, len);
    pthread_mutex_lock(&dst->inbox_mu);
    bool ok = dst->inbox_len < INBOX_MAX;
    if (ok) {
        handoff_t **q = realloc(dst->inbox, (dst->inbox_len + 1) * sizeof *q);
        if (q) {
            dst->inbox = q;
            q[dst->inbox_len++] = h;
        } else {
            ok = false;
        }
    }
    pthread_mutex_unlock(&dst->inbox_mu);
    if (!ok) {
        free(h);
    } else {
        weir_debug("quic: worker %d handed a datagram to worker %d, its connection's owner",
                   qw->w->id, to);
        weir_loop_wake(dst->w->loop);
    }
    return true;
}

/* entryPoints.<name>.proxyProtocol on an HTTP/3 entry point: every
 * datagram from a trusted relay starts with a PROXY v2 header (DGRAM),
 * whose source is the client; a datagram from it without one, or a header
 * from anyone else, is dropped. Returns the header's length (0: none to
 * strip), or -1 to drop; *client gets the source when there is one. */
static long proxy_header(const qep_t *qep, const uint8_t *p, size_t len,
                         const struct sockaddr *remote, weir_addr_t *client, bool *has_client)
{
    static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
    const weir_entrypoint_cfg_t *ep = &qep->qw->w->view->snap->cfg->entrypoints[qep->ep];
    *has_client = false;
    if (!ep->pp_insecure && ep->num_pp_trusted == 0)
        return 0;
    bool trusted = ep->pp_insecure;
    for (size_t i = 0; !trusted && i < ep->num_pp_trusted; i++)
        trusted = weir_cidr_contains(&ep->pp_trusted[i], remote);
    if (!trusted)
        return len >= sizeof sig && memcmp(p, sig, sizeof sig) == 0 ? -1 : 0;
    weir_pp_header_t h;
    if (weir_pp_parse(p, len, &h) != WEIR_PP_OK || h.version != 2 || !h.dgram)
        return -1;
    if (!h.local) {
        memcpy(client, &h.src, h.src.ss_family == AF_INET6 ? sizeof client->in6
                                                           : sizeof client->in);
        *has_client = true;
    }
    return (long)h.len;
}

static void on_datagram(qep_t *qep, const uint8_t *p, size_t len, const struct sockaddr *remote,
                        socklen_t rlen, const struct sockaddr *local, socklen_t llen, bool handed)
{
    quic_worker_t *qw = qep->qw;
    const uint8_t *raw = p; /* handed to another worker as it came */
    size_t raw_len = len;
    weir_addr_t client;
    bool has_client;
    long strip = proxy_header(qep, p, len, remote, &client, &has_client);
    if (strip < 0) {
        weir_debug("quic: datagram with a PROXY header from an untrusted address, or without "
                   "one from a trusted relay: dropped");
        return;
    }
    p += strip;
    len -= (size_t)strip;
    if (len == 0)
        return; /* (ngtcp2 asserts on an empty datagram) */
    ngtcp2_version_cid vc;
    int rv = ngtcp2_pkt_decode_version_cid(&vc, p, len, SCIDLEN);
    if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
        if (len >= 1200)
            send_version_negotiation(qep, &vc, remote, rlen, local);
        return;
    }
    if (rv != 0)
        return;
    weir_quic_conn_t *qc = cid_find(qw, vc.dcid, vc.dcidlen);
    if (qc) {
        if (has_client) /* the relay says where the client is now */
            memcpy(&qc->c.peer, &client, sizeof client);
        conn_read(qc, remote, rlen, local, llen, p, len);
        return;
    }
    bool initial = vc.version && ((p[0] & 0x30) == 0); /* QUIC v1 long header, type Initial */
    if (!handed && !initial && vc.dcidlen == SCIDLEN &&
        hand_off(qw, vc.dcid[0], qep->ep, remote, rlen, local, llen, raw, raw_len))
        return;
    if (!vc.version) {
        send_stateless_reset(qep, vc.dcid, vc.dcidlen, len, remote, rlen, local);
        return;
    }
    if (!initial || qw->draining)
        return;
    ngtcp2_pkt_hd hd;
    if (ngtcp2_accept(&hd, p, len) != 0)
        return;
    const weir_entrypoint_cfg_t *ep = &qw->w->view->snap->cfg->entrypoints[qep->ep];
    bool want_retry = ep->h3_retry == WEIR_H3_RETRY_ALWAYS ||
                      (ep->h3_retry == WEIR_H3_RETRY_AUTO && atomic_load(&half_open) >= RETRY_HALF_OPEN);
    ngtcp2_cid ocid;
    const ngtcp2_cid *pocid = NULL;
    const ngtcp2_vec *token = NULL;
    if (hd.token.len) {
        if (hd.token.base[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
            if (ngtcp2_crypto_verify_retry_token(&ocid, hd.token.base, hd.token.len, secret,
                                                 sizeof secret, hd.version, remote, rlen, &hd.dcid,
                                                 RETRY_TOKEN_TTL, wall_ns()) != 0) {
                send_invalid_token(qep, &hd, remote, rlen, local);
                return;
            }
            pocid = &ocid;
            token = &hd.token;
        } else if (hd.token.base[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_REGULAR &&
                   ngtcp2_crypto_verify_regular_token(hd.token.base, hd.token.len, secret,
                                                      sizeof secret, remote, rlen,
                                                      REGULAR_TOKEN_TTL, wall_ns()) == 0) {
            token = &hd.token;
        }
    }
    if (!token && want_retry) {
        send_retry(qep, &hd, remote, rlen, local, len);
        return;
    }
    qc = conn_new(qep, &hd, pocid, token, remote, rlen, local, llen);
    if (qc && has_client) {
        memcpy(&qc->c.peer, &client, sizeof client);
        qc->pp_peer = 1;
    }
    if (qc)
        conn_read(qc, remote, rlen, local, llen, p, len);
}

/* The local address a datagram was sent to (IP_PKTINFO), with the
 * socket's port; the bound address when the socket is not a wildcard. */
static socklen_t local_of(const qep_t *qep, struct msghdr *m, struct sockaddr_storage *out)
{
    memcpy(out, &qep->addr, qep->addrlen);
    if (!qep->pktinfo)
        return qep->addrlen;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO &&
            out->ss_family == AF_INET) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof pi);
            ((struct sockaddr_in *)out)->sin_addr = pi.ipi_addr;
        } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
                   out->ss_family == AF_INET6) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof pi);
            ((struct sockaddr_in6 *)out)->sin6_addr = pi.ipi6_addr;
        }
    }
    return qep->addrlen;
}

static void on_socket(weir_io_t *io, unsigned events);

static void read_more(void *arg)
{
    on_socket(arg, WEIR_EV_READ);
}

static void on_socket(weir_io_t *io, unsigned events)
{
    qep_t *qep = (qep_t *)io;
    quic_worker_t *qw = qep->qw;
    if (events & WEIR_EV_WRITE) {
        while (qep->blocked) {
            weir_quic_conn_t *qc = qep->blocked;
            if (!flush_parked(qc))
                break;
            qep->blocked = qc->blocked_next;
            qc->blocked = 0;
            weir_quic_schedule(qc);
        }
    }
    if (!(events & (WEIR_EV_READ | WEIR_EV_ERR)))
        return;
    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];
    struct sockaddr_storage from[BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } ctl[BATCH];
    for (int round = 0; round < READ_ROUNDS; round++) {
        for (int i = 0; i < BATCH; i++) {
            iovs[i] = (struct iovec){qw->rx[i], RX_SIZE};
            msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i],
                                              .msg_iov = &iovs[i], .msg_iovlen = 1,
                                              .msg_control = ctl[i].buf,
                                              .msg_controllen = sizeof ctl[i].buf};
        }
        int n = recvmmsg(io->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return; /* EAGAIN: the edge is consumed */
        for (int i = 0; i < n; i++) {
            if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
                continue;
            struct sockaddr_storage local;
            socklen_t llen = local_of(qep, &msgs[i].msg_hdr, &local);
            on_datagram(qep, qw->rx[i], msgs[i].msg_len, (struct sockaddr *)&from[i],
                        msgs[i].msg_hdr.msg_namelen, (struct sockaddr *)&local, llen, false);
        }
        if (n < BATCH)
            return;
    }
    weir_loop_defer(qw->w->loop, read_more, io); /* more waiting: after the other work */
}

/* ---- worker interface ---- */

static quic_worker_t *worker_quic(weir_worker_t *w)
{
    if (w->quic)
        return w->quic;
    quic_worker_t *qw = calloc(1, sizeof *qw);
    if (!qw)
        return NULL;
    qw->w = w;
    pthread_mutex_init(&qw->inbox_mu, NULL);
    gnutls_rnd(GNUTLS_RND_NONCE, &qw->seed, sizeof qw->seed);
    w->quic = qw;
    return qw;
}

int weir_quic_listen(weir_worker_t *w, int ep)
{
    const weir_entrypoint_cfg_t *cfg = &weir_server.current->cfg->entrypoints[ep];
    quic_worker_t *qw = worker_quic(w);
    if (!qw)
        return -ENOMEM;
    qep_t **eps = realloc(qw->eps, (size_t)(qw->neps + 1) * sizeof *eps);
    if (!eps)
        return -ENOMEM;
    qw->eps = eps;
    qep_t *qep = calloc(1, sizeof *qep);
    if (!qep)
        return -ENOMEM;
    int fd = socket(cfg->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    int buf = 4 * 1024 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    bool wildcard;
    if (cfg->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)&cfg->addr;
        wildcard = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
        int v6only = !wildcard;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
        setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
        if (wildcard)
            setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    } else {
        wildcard = ((const struct sockaddr_in *)&cfg->addr)->sin_addr.s_addr == htonl(INADDR_ANY);
        setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    }
    /* Path MTU: never fragment; QUIC probes the size itself. */
    int pmtu = IP_PMTUDISC_DO;
    setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
    if (bind(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen) < 0) {
        int e = -errno;
        close(fd);
        free(qep);
        return e;
    }
    qw->eps[qw->neps++] = qep;
    qep->io.fd = fd;
    qep->io.cb = on_socket;
    qep->qw = qw;
    qep->ep = ep;
    qep->addrlen = sizeof qep->addr;
    getsockname(fd, (struct sockaddr *)&qep->addr, &qep->addrlen);
    qep->pktinfo = wildcard;
    int rc = weir_loop_add(w->loop, &qep->io);
    return rc < 0 ? rc : 0;
}

void weir_quic_on_wake(weir_worker_t *w)
{
    quic_worker_t *qw = w->quic;
    if (!qw)
        return;
    pthread_mutex_lock(&qw->inbox_mu);
    handoff_t **in = qw->inbox;
    size_t n = qw->inbox_len;
    qw->inbox = NULL;
    qw->inbox_len = 0;
    pthread_mutex_unlock(&qw->inbox_mu);
    for (size_t i = 0; i < n; i++) {
        handoff_t *h = in[i];
        for (int e = 0; e < qw->neps; e++)
            if (qw->eps[e]->ep == h->ep)
                on_datagram(qw->eps[e], h->data, h->len, (struct sockaddr *)&h->remote, h->rlen,
                            (struct sockaddr *)&h->local, h->llen, true);
        free(h);
    }
    free(in);
}

static void final_goaway(weir_timer_t *t)
{
    quic_worker_t *qw = (quic_worker_t *)((char *)t - offsetof(quic_worker_t, drain_timer));
    for (weir_quic_conn_t *qc = qw->conns, *next; qc; qc = next) {
        next = qc->next;
        if (!qc->goaway || qc->final_goaway)
            continue;
        qc->final_goaway = 1;
        if (qc->h3)
            weir_h3_goaway(qc->h3, true);
        else if (!qc->closing && !qc->draining) {
            ngtcp2_connection_close_error_set_application_error(&qc->err, NGHTTP3_H3_NO_ERROR, NULL,
                                                                0);
            conn_close(qc);
        }
    }
}

static int goaway_all(quic_worker_t *qw)
{
    int n = 0;
    for (weir_quic_conn_t *qc = qw->conns; qc; qc = qc->next) {
        if (qc->goaway || qc->closing || qc->draining)
            continue;
        qc->goaway = 1;
        n++;
        if (qc->h3)
            weir_h3_goaway(qc->h3, false);
    }
    /* The final GOAWAY (last stream id) follows after a round trip. */
    if (n)
        weir_timer_set(qw->w->loop, &qw->drain_timer, DRAIN_FINAL_MS, final_goaway);
    return n;
}

void weir_quic_reloaded(weir_worker_t *w)
{
    int n = w->quic ? goaway_all(w->quic) : 0;
    weir_debug("http3: worker %d reloaded: %d connections", w->id, n);
    if (n)
        weir_info("http3: new configuration: GOAWAY sent on %d connection%s of worker %d", n,
                  n == 1 ? "" : "s", w->id);
}

void weir_quic_drain(weir_worker_t *w)
{
    quic_worker_t *qw = w->quic;
    if (!qw)
        return;
    qw->draining = true;
    goaway_all(qw);
}

void weir_quic_close_all(weir_worker_t *w)
{
    quic_worker_t *qw = w->quic;
    if (!qw)
        return;
    while (qw->conns) {
        weir_quic_conn_t *qc = qw->conns;
        if (!qc->closing && !qc->draining && qc->q) {
            ngtcp2_connection_close_error_set_application_error(&qc->err, NGHTTP3_H3_NO_ERROR, NULL,
                                                                0);
            conn_close(qc);
        }
        conn_destroy(qc);
    }
}

void weir_quic_free(weir_worker_t *w)
{
    quic_worker_t *qw = w->quic;
    if (!qw)
        return;
    weir_quic_close_all(w);
    weir_timer_stop(&qw->drain_timer);
    for (int i = 0; i < qw->neps; i++) {
        weir_loop_del(w->loop, &qw->eps[i]->io);
        close(qw->eps[i]->io.fd);
        free(qw->eps[i]);
    }
    for (size_t i = 0; i < qw->inbox_len; i++)
        free(qw->inbox[i]);
    free(qw->inbox);
    free(qw->eps);
    free(qw->tab);
    pthread_mutex_destroy(&qw->inbox_mu);
    free(qw);
    w->quic = NULL;
}
