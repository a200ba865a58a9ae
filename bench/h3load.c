/* h3load: a small HTTP/3 load generator (ngtcp2 + nghttp3 + GnuTLS), for
 * bench/h3.sh; Debian's h2load has no HTTP/3.
 *
 *   h3load [-c CONNS] [-m STREAMS] [-n REQUESTS] [-D SECONDS] [--sni NAME] URL
 *
 * Opens CONNS QUIC connections to URL's host and port (an IPv4 address),
 * keeps STREAMS GET requests in flight on each, and stops after REQUESTS
 * responses or SECONDS, whichever comes first. A response counts as a
 * success when its status is 2xx and its stream ends cleanly. Prints the
 * requests done, errors, elapsed time, requests per second and latency
 * percentiles (first request byte sent to last response byte).
 * Certificates are not verified (a benchmark on loopback).
 *
 * One thread, one connected UDP socket per connection, epoll.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    ngtcp2_conn *q;
    nghttp3_conn *h;
    gnutls_session_t tls;
    ngtcp2_crypto_conn_ref ref;
    int fd;
    struct sockaddr_in local, remote;
    int inflight;
    bool dead, ready;
    ngtcp2_connection_close_error err;
} conn_t;

typedef struct {
    uint64_t start;
    int status;
    conn_t *c;
} req_t;

static struct {
    int conns, streams;
    long total;
    double seconds;
    const char *sni, *path, *authority;
    struct sockaddr_in addr;
} cfg = {.conns = 1, .streams = 1, .total = 1000, .seconds = 10};

static long started, done, errors;
static double *lat;
static long nlat;
static gnutls_certificate_credentials_t cred;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool want_more(void)
{
    return started < cfg.total;
}

/* ---- HTTP/3 ---- */

static int submit(conn_t *c);

static void finish(req_t *r, bool ok)
{
    conn_t *c = r->c;
    c->inflight--;
    done++;
    if (ok && r->status >= 200 && r->status < 300)
        lat[nlat++] = (double)(now_ns() - r->start) / 1e6;
    else
        errors++;
    free(r);
    while (!c->dead && c->inflight < cfg.streams && want_more() && submit(c) == 0)
        ;
}

static int h_recv_data(nghttp3_conn *h, int64_t sid, const uint8_t *d, size_t n, void *ud,
                       void *sud)
{
    conn_t *c = ud;
    ngtcp2_conn_extend_max_stream_offset(c->q, sid, n);
    ngtcp2_conn_extend_max_offset(c->q, n);
    return 0;
}

static int h_deferred(nghttp3_conn *h, int64_t sid, size_t n, void *ud, void *sud)
{
    return h_recv_data(h, sid, NULL, n, ud, sud);
}

static int h_header(nghttp3_conn *h, int64_t sid, int32_t token, nghttp3_rcbuf *name,
                    nghttp3_rcbuf *value, uint8_t flags, void *ud, void *sud)
{
    req_t *r = sud;
    if (r && token == NGHTTP3_QPACK_TOKEN__STATUS) {
        nghttp3_vec v = nghttp3_rcbuf_get_buf(value);
        r->status = v.len == 3 ? (v.base[0] - '0') * 100 + (v.base[1] - '0') * 10 + (v.base[2] - '0')
                               : 0;
    }
    return 0;
}

static int h_stream_close(nghttp3_conn *h, int64_t sid, uint64_t code, void *ud, void *sud)
{
    req_t *r = sud;
    if (r)
        finish(r, code == NGHTTP3_H3_NO_ERROR);
    return 0;
}

static int h_stop_sending(nghttp3_conn *h, int64_t sid, uint64_t code, void *ud, void *sud)
{
    conn_t *c = ud;
    ngtcp2_conn_shutdown_stream_read(c->q, sid, code);
    return 0;
}

static int h_reset(nghttp3_conn *h, int64_t sid, uint64_t code, void *ud, void *sud)
{
    conn_t *c = ud;
    ngtcp2_conn_shutdown_stream_write(c->q, sid, code);
    return 0;
}

static int submit(conn_t *c)
{
    int64_t sid;
    if (ngtcp2_conn_open_bidi_stream(c->q, &sid, NULL) != 0)
        return -1; /* stream limit: a MAX_STREAMS will come */
    req_t *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->c = c;
    r->start = now_ns();
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP3_NV_FLAG_NONE}
    nghttp3_nv nv[] = {NV(":method", "GET"), NV(":scheme", "https"),
                       NV(":authority", cfg.authority), NV(":path", cfg.path),
                       NV("user-agent", "h3load")};
    if (nghttp3_conn_submit_request(c->h, sid, nv, sizeof nv / sizeof nv[0], NULL, r) != 0) {
        free(r);
        return -1;
    }
    started++;
    c->inflight++;
    return 0;
}

static int setup_h3(conn_t *c)
{
    nghttp3_callbacks cb = {
        .stream_close = h_stream_close,
        .recv_data = h_recv_data,
        .deferred_consume = h_deferred,
        .recv_header = h_header,
        .stop_sending = h_stop_sending,
        .reset_stream = h_reset,
    };
    nghttp3_settings st;
    nghttp3_settings_default(&st);
    st.qpack_max_dtable_capacity = 4096;
    st.qpack_blocked_streams = 100;
    if (nghttp3_conn_client_new(&c->h, &cb, &st, NULL, c) != 0)
        return -1;
    int64_t ctrl, enc, dec;
    if (ngtcp2_conn_open_uni_stream(c->q, &ctrl, NULL) != 0 ||
        nghttp3_conn_bind_control_stream(c->h, ctrl) != 0 ||
        ngtcp2_conn_open_uni_stream(c->q, &enc, NULL) != 0 ||
        ngtcp2_conn_open_uni_stream(c->q, &dec, NULL) != 0 ||
        nghttp3_conn_bind_qpack_streams(c->h, enc, dec) != 0)
        return -1;
    c->ready = true;
    while (c->inflight < cfg.streams && want_more() && submit(c) == 0)
        ;
    return 0;
}

/* ---- QUIC ---- */

static int q_rx_key(ngtcp2_conn *q, ngtcp2_crypto_level level, void *ud)
{
    if (level != NGTCP2_CRYPTO_LEVEL_APPLICATION)
        return 0;
    return setup_h3(ud) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int q_stream_data(ngtcp2_conn *q, uint32_t flags, int64_t sid, uint64_t off,
                         const uint8_t *d, size_t n, void *ud, void *sud)
{
    conn_t *c = ud;
    if (!c->h)
        return 0;
    nghttp3_ssize used = nghttp3_conn_read_stream(c->h, sid, d, n, flags & NGTCP2_STREAM_DATA_FLAG_FIN);
    if (used < 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    ngtcp2_conn_extend_max_stream_offset(q, sid, (uint64_t)used);
    ngtcp2_conn_extend_max_offset(q, (uint64_t)used);
    return 0;
}

static int q_acked(ngtcp2_conn *q, int64_t sid, uint64_t off, uint64_t n, void *ud, void *sud)
{
    conn_t *c = ud;
    return c->h && nghttp3_conn_add_ack_offset(c->h, sid, n) != 0 ? NGTCP2_ERR_CALLBACK_FAILURE : 0;
}

static int q_stream_close(ngtcp2_conn *q, uint32_t flags, int64_t sid, uint64_t code, void *ud,
                          void *sud)
{
    conn_t *c = ud;
    if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET))
        code = NGHTTP3_H3_NO_ERROR;
    if (c->h) {
        int rv = nghttp3_conn_close_stream(c->h, sid, code);
        if (rv != 0 && rv != NGHTTP3_ERR_STREAM_NOT_FOUND)
            return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int q_stream_reset(ngtcp2_conn *q, int64_t sid, uint64_t fs, uint64_t code, void *ud,
                          void *sud)
{
    conn_t *c = ud;
    if (c->h)
        nghttp3_conn_shutdown_stream_read(c->h, sid);
    return 0;
}

static int q_max_streams(ngtcp2_conn *q, uint64_t max, void *ud)
{
    conn_t *c = ud;
    while (c->ready && c->inflight < cfg.streams && want_more() && submit(c) == 0)
        ;
    return 0;
}

static int q_max_stream_data(ngtcp2_conn *q, int64_t sid, uint64_t max, void *ud, void *sud)
{
    conn_t *c = ud;
    if (c->h)
        nghttp3_conn_unblock_stream(c->h, sid);
    return 0;
}

static void q_rand(uint8_t *d, size_t n, const ngtcp2_rand_ctx *ctx)
{
    gnutls_rnd(GNUTLS_RND_NONCE, d, n);
}

static int q_new_cid(ngtcp2_conn *q, ngtcp2_cid *cid, uint8_t *token, size_t len, void *ud)
{
    cid->datalen = len;
    gnutls_rnd(GNUTLS_RND_NONCE, cid->data, len);
    gnutls_rnd(GNUTLS_RND_NONCE, token, NGTCP2_STATELESS_RESET_TOKENLEN);
    return 0;
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((conn_t *)ref->user_data)->q;
}

static const ngtcp2_callbacks qcb = {
    .client_initial = ngtcp2_crypto_client_initial_cb,
    .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
    .encrypt = ngtcp2_crypto_encrypt_cb,
    .decrypt = ngtcp2_crypto_decrypt_cb,
    .hp_mask = ngtcp2_crypto_hp_mask_cb,
    .recv_stream_data = q_stream_data,
    .acked_stream_data_offset = q_acked,
    .stream_close = q_stream_close,
    .recv_retry = ngtcp2_crypto_recv_retry_cb,
    .extend_max_local_streams_bidi = q_max_streams,
    .rand = q_rand,
    .get_new_connection_id = q_new_cid,
    .update_key = ngtcp2_crypto_update_key_cb,
    .stream_reset = q_stream_reset,
    .extend_max_stream_data = q_max_stream_data,
    .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
    .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
    .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
    .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
    .recv_rx_key = q_rx_key,
};

static int conn_open(conn_t *c, int ep)
{
    c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&cfg.addr, sizeof cfg.addr) < 0)
        return -1;
    socklen_t len = sizeof c->local;
    getsockname(c->fd, (struct sockaddr *)&c->local, &len);
    c->remote = cfg.addr;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    ngtcp2_cid dcid = {.datalen = 18}, scid = {.datalen = 17};
    gnutls_rnd(GNUTLS_RND_NONCE, dcid.data, dcid.datalen);
    gnutls_rnd(GNUTLS_RND_NONCE, scid.data, scid.datalen);
    ngtcp2_settings st;
    ngtcp2_settings_default(&st);
    st.initial_ts = now_ns();
    st.max_window = 16 << 20;
    st.max_stream_window = 4 << 20;
    ngtcp2_transport_params p;
    ngtcp2_transport_params_default(&p);
    p.initial_max_stream_data_bidi_local = 1 << 20;
    p.initial_max_stream_data_uni = 1 << 20;
    p.initial_max_data = 16 << 20;
    p.initial_max_streams_uni = 8;
    p.max_idle_timeout = 30 * NGTCP2_SECONDS;
    ngtcp2_path path = {{(struct sockaddr *)&c->local, sizeof c->local},
                        {(struct sockaddr *)&c->remote, sizeof c->remote}, NULL};
    if (ngtcp2_conn_client_new(&c->q, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &qcb, &st, &p,
                               NULL, c) != 0)
        return -1;
    static const gnutls_datum_t h3 = {(unsigned char *)"h3", 2};
    if (gnutls_init(&c->tls, GNUTLS_CLIENT) < 0 ||
        gnutls_priority_set_direct(c->tls,
                                   "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:"
                                   "-CIPHER-ALL:+AES-128-GCM:-GROUP-ALL:+GROUP-X25519",
                                   NULL) < 0 ||
        ngtcp2_crypto_gnutls_configure_client_session(c->tls) != 0 ||
        gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, cred) < 0 ||
        gnutls_alpn_set_protocols(c->tls, &h3, 1, 0) < 0)
        return -1;
    if (cfg.sni)
        gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, cfg.sni, strlen(cfg.sni));
    c->ref.get_conn = get_conn;
    c->ref.user_data = c;
    gnutls_session_set_ptr(c->tls, &c->ref);
    ngtcp2_conn_set_tls_native_handle(c->q, c->tls);
    return 0;
}

static void conn_dead(conn_t *c, const char *why)
{
    if (c->dead)
        return;
    c->dead = true;
    fprintf(stderr, "h3load: connection failed: %s\n", why);
    errors += c->inflight; /* requests lost with it */
    done += c->inflight;
    c->inflight = 0;
}

static void conn_write(conn_t *c)
{
    if (c->dead)
        return;
    uint8_t buf[1500];
    uint64_t ts = now_ns();
    for (int guard = 0; guard < 10000; guard++) {
        int64_t sid = -1;
        int fin = 0;
        nghttp3_vec vec[16];
        nghttp3_ssize nvec = 0;
        if (c->h && ngtcp2_conn_get_max_data_left(c->q)) {
            nvec = nghttp3_conn_writev_stream(c->h, &sid, &fin, vec, 16);
            if (nvec < 0) {
                conn_dead(c, nghttp3_strerror((int)nvec));
                return;
            }
        }
        ngtcp2_ssize ndata = -1;
        ngtcp2_pkt_info pi;
        uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE | (fin ? NGTCP2_WRITE_STREAM_FLAG_FIN : 0);
        ngtcp2_ssize n = ngtcp2_conn_writev_stream(c->q, NULL, &pi, buf, sizeof buf, &ndata, flags,
                                                   sid, (ngtcp2_vec *)vec, (size_t)nvec, ts);
        if (n < 0) {
            if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
                nghttp3_conn_block_stream(c->h, sid);
                continue;
            }
            if (n == NGTCP2_ERR_STREAM_SHUT_WR) {
                nghttp3_conn_shutdown_stream_write(c->h, sid);
                continue;
            }
            if (n == NGTCP2_ERR_WRITE_MORE) {
                nghttp3_conn_add_write_offset(c->h, sid, (size_t)ndata);
                continue;
            }
            conn_dead(c, ngtcp2_strerror((int)n));
            return;
        }
        if (ndata >= 0)
            nghttp3_conn_add_write_offset(c->h, sid, (size_t)ndata);
        if (n == 0)
            break;
        if (send(c->fd, buf, (size_t)n, 0) < 0 && errno != EAGAIN)
            break;
    }
    ngtcp2_conn_update_pkt_tx_time(c->q, ts);
}

static void conn_read(conn_t *c)
{
    uint8_t buf[65536];
    for (int i = 0; i < 64 && !c->dead; i++) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        ngtcp2_path path = {{(struct sockaddr *)&c->local, sizeof c->local},
                            {(struct sockaddr *)&c->remote, sizeof c->remote}, NULL};
        ngtcp2_pkt_info pi = {0};
        int rv = ngtcp2_conn_read_pkt(c->q, &path, &pi, buf, (size_t)n, now_ns());
        if (rv != 0) {
            conn_dead(c, ngtcp2_strerror(rv));
            return;
        }
    }
}

static int parse_url(const char *url)
{
    static char host[256], auth[300], path[1024];
    int port = 443;
    if (strncmp(url, "https://", 8) != 0)
        return -1;
    const char *p = url + 8, *slash = strchr(p, '/'), *colon = strchr(p, ':');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    snprintf(auth, sizeof auth, "%.*s", (int)hl, p);
    if (colon && (!slash || colon < slash)) {
        hl = (size_t)(colon - p);
        port = atoi(colon + 1);
    }
    snprintf(host, sizeof host, "%.*s", (int)hl, p);
    snprintf(path, sizeof path, "%s", slash ? slash : "/");
    cfg.authority = auth;
    cfg.path = path;
    cfg.addr.sin_family = AF_INET;
    cfg.addr.sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &cfg.addr.sin_addr) == 1 ? 0 : -1;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (!nlat)
        return 0;
    long i = (long)(p / 100.0 * (double)(nlat - 1) + 0.5);
    return lat[i];
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc)
            cfg.conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc)
            cfg.streams = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            cfg.total = atol(argv[++i]);
        else if (!strcmp(argv[i], "-D") && i + 1 < argc)
            cfg.seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--sni") && i + 1 < argc)
            cfg.sni = argv[++i];
        else if (argv[i][0] != '-')
            url = argv[i];
        else {
            url = NULL;
            break;
        }
    }
    if (!url || parse_url(url) < 0 || cfg.conns < 1 || cfg.streams < 1 || cfg.total < 1) {
        fprintf(stderr, "usage: h3load [-c CONNS] [-m STREAMS] [-n REQUESTS] [-D SECONDS] "
                        "[--sni NAME] https://IPV4:PORT/PATH\n");
        return 2;
    }
    gnutls_global_init();
    gnutls_certificate_allocate_credentials(&cred);
    lat = malloc((size_t)cfg.total * sizeof *lat);
    conn_t *conns = calloc((size_t)cfg.conns, sizeof *conns);
    int ep = epoll_create1(0);
    if (!lat || !conns || ep < 0)
        return 1;
    for (int i = 0; i < cfg.conns; i++)
        if (conn_open(&conns[i], ep) < 0) {
            fprintf(stderr, "h3load: cannot open connection %d\n", i);
            return 1;
        }
    uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(cfg.seconds * 1e9);
    for (int i = 0; i < cfg.conns; i++)
        conn_write(&conns[i]);
    while (done < cfg.total || started < done) {
        uint64_t now = now_ns();
        if (now >= deadline)
            break;
        bool alive = false;
        uint64_t next = deadline;
        for (int i = 0; i < cfg.conns; i++) {
            if (conns[i].dead)
                continue;
            alive = true;
            uint64_t e = ngtcp2_conn_get_expiry(conns[i].q);
            if (e < next)
                next = e;
        }
        if (!alive || (done >= cfg.total && started <= done))
            break;
        int wait = next > now ? (int)((next - now) / 1000000) : 0;
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, wait > 100 ? 100 : wait);
        for (int i = 0; i < n; i++)
            conn_read(evs[i].data.ptr);
        now = now_ns();
        for (int i = 0; i < cfg.conns; i++) {
            conn_t *c = &conns[i];
            if (c->dead)
                continue;
            if (ngtcp2_conn_get_expiry(c->q) <= now) {
                int rv = ngtcp2_conn_handle_expiry(c->q, now);
                if (rv != 0) {
                    conn_dead(c, ngtcp2_strerror(rv));
                    continue;
                }
            }
            conn_write(c);
        }
    }
    double elapsed = (double)(now_ns() - t0) / 1e9;
    qsort(lat, (size_t)nlat, sizeof *lat, cmp);
    printf("requests: %ld started, %ld done, %ld succeeded, %ld errors\n", started, done, nlat,
           errors);
    printf("elapsed: %.3f s\n", elapsed);
    printf("req/s: %.1f\n", elapsed > 0 ? (double)nlat / elapsed : 0);
    printf("latency ms: p50 %.3f p90 %.3f p99 %.3f max %.3f\n", pct(50), pct(90), pct(99),
           nlat ? lat[nlat - 1] : 0);
    return errors || nlat == 0 ? 1 : 0;
}
