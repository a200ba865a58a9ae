/* TCP routing and the byte relay (see l4.h). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "l4/l4.h"
#include "l4/proxy_proto.h"
#include "rules/rules.h"
#include "tls/tls.h"

#define BUF_CAP WEIR_BUF_BLOCK /* bytes copied per read */
#define PIPE_SIZE (256 * 1024) /* asked of a splice pipe (F_SETPIPE_SZ) */
#define BULK_MIN 8192          /* a splice read below this: back to copying */
#define MAX_ALPNS 8
#define PICK_DEPTH 8         /* weighted services inside weighted services */

#define MAX_HELD 8 /* inFlightConn middlewares one connection counts in */

struct weir_inflight_slot {
    uint8_t ip[16];
    uint32_t count;
};

/* One direction of a relay. Bytes are copied through buf (one recv, one
 * send: cheapest for the small reads of request/response traffic) until a
 * read fills it; then the direction turns bulk and moves through a pipe
 * with splice() (no copy), and back to copying when a splice read comes
 * short. Only one of buf and the pipe holds bytes at a time, so order is
 * kept. Relays with a TLS end always copy. */
typedef struct {
    weir_buf_t buf;
    int pipe[2];     /* -1 until the direction first turns bulk */
    size_t in;       /* bytes sitting in the pipe */
    size_t pipe_cap; /* the pipe's capacity */
    uint8_t bulk : 1;
} l4_dir_t;

static bool dir_empty(const l4_dir_t *d)
{
    return !d->in && !weir_buf_len(&d->buf);
}

struct weir_l4 {
    weir_conn_t *c;
    weir_tcp_mw_rt_t *held[MAX_HELD]; /* inFlightConn counters to give back */
    size_t num_held;
    uint8_t ip[16];
    weir_io_t up;
    weir_timer_t timer; /* dial timeout, then the termination delay */
    weir_view_t *view;  /* keeps the route and service alive across reloads */
    const weir_tcp_route_t *route;
    int64_t termination_delay_ms;
    weir_buf_t head; /* to the server before anything else: the PROXY header, and
                      * (spliced relays) the client bytes already read */
    weir_tls_io_t *utls; /* TLS toward the server, NULL: none */
    l4_dir_t cu, uc;     /* client → server, server → client */
    uint8_t connecting : 1, u_rd : 1, u_wr : 1, c_eof : 1, u_eof : 1, c_shut : 1, u_shut : 1,
        lingering : 1;
    uint8_t buffered : 1, u_hup : 1, closed : 1;
    bool c_bye, u_bye; /* close_notify sent to the client / the server */
};

/* ---- routing ---- */

static const weir_tcp_ep_t *tcp_ep(const weir_conn_t *c)
{
    return &c->worker->view->snap->tcp_eps[c->ep];
}

static bool https_claims(const weir_tcp_ep_t *te, weir_slice_t sni)
{
    if (te->https_any)
        return true;
    char norm[WEIR_HOST_MAX];
    size_t n = 0;
    for (; n < sni.len && n < sizeof norm; n++) {
        char ch = sni.ptr[n];
        norm[n] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    if (n && norm[n - 1] == '.')
        n--;
    weir_slice_t name = weir_slice(norm, n);
    for (size_t i = 0; i < te->num_https_hosts; i++)
        if (weir_host_match(te->https_hosts[i], name))
            return true;
    return false;
}

static void start_relay(weir_conn_t *c, const weir_tcp_route_t *route,
                        const weir_client_hello_t *ch, weir_slice_t sni, weir_slice_t alpn);

int weir_l4_route_tls(weir_conn_t *c, const weir_client_hello_t *ch)
{
    const weir_tcp_ep_t *te = tcp_ep(c);
    if (!te->tls)
        return 0;
    weir_slice_t alpns[MAX_ALPNS];
    size_t na = 0;
    while (na < MAX_ALPNS && weir_client_hello_alpn_at(ch, na, &alpns[na]))
        na++;
    weir_rule_req_t req = {.sni = ch->has_sni ? ch->sni : WEIR_SLICE_NULL,
                           .alpns = alpns,
                           .num_alpns = na,
                           .client = &c->peer.sa};
    const weir_tcp_route_t *r = weir_router_table_match(te->tls, &req);
    if (r && r->catch_all && te->https && https_claims(te, req.sni))
        r = NULL; /* the HTTPS routers serve this name */
    if (!r) {
        if (te->https)
            return 0;
        weir_debug("tcp: no router for SNI \"%.*s\": connection closed", (int)req.sni.len,
                   req.sni.ptr);
        return -1;
    }
    start_relay(c, r, ch, req.sni, na ? alpns[0] : WEIR_SLICE_NULL);
    return 1;
}

int weir_l4_route_plain(weir_conn_t *c)
{
    const weir_tcp_ep_t *te = tcp_ep(c);
    if (!te->plain)
        return 0;
    weir_rule_req_t req = {.client = &c->peer.sa};
    const weir_tcp_route_t *r = weir_router_table_match(te->plain, &req);
    if (!r)
        return 0;
    start_relay(c, r, NULL, WEIR_SLICE_NULL, WEIR_SLICE_NULL);
    return 1;
}

bool weir_l4_immediate(const weir_conn_t *c)
{
    const weir_tcp_ep_t *te = tcp_ep(c);
    return te->plain && !te->tls && !te->https;
}

/* Round robin over a load balancer's servers, by weight over a weighted
 * service's children. */
static const weir_tcp_server_cfg_t *pick(weir_tcp_service_rt_t *s, int depth,
                                         const weir_tcp_service_rt_t **owner)
{
    if (!s || depth > PICK_DEPTH)
        return NULL;
    unsigned at = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed);
    if (s->cfg->kind != WEIR_SERVICE_WEIGHTED) {
        if (!s->cfg->num_servers)
            return NULL;
        *owner = s;
        return &s->cfg->servers[at % s->cfg->num_servers];
    }
    if (s->total_weight <= 0)
        return NULL;
    int pos = (int)(at % (unsigned)s->total_weight);
    for (size_t k = 0; k < s->cfg->num_children; k++) {
        if (pos < s->child_weights[k])
            return pick(s->children[k], depth + 1, owner);
        pos -= s->child_weights[k];
    }
    return NULL;
}

const weir_tcp_server_cfg_t *weir_l4_pick(weir_tcp_service_rt_t *s,
                                          const weir_tcp_service_rt_t **owner)
{
    return pick(s, 0, owner);
}

/* ---- middlewares ---- */

/* The client address as 16 bytes (IPv4 mapped into IPv6). */
static void ip_key(const weir_addr_t *a, uint8_t out[16])
{
    memset(out, 0, 16);
    if (a->sa.sa_family == AF_INET6) {
        memcpy(out, &a->in6.sin6_addr, 16);
    } else {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a->in.sin_addr, 4);
    }
}

static uint64_t ip_hash(const uint8_t ip[16])
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 16; i++)
        h = (h ^ ip[i]) * 0x100000001b3ull;
    return h;
}

/* Adds d (+1 or -1) to ip's count in m; returns the new count, or -1 when
 * the table cannot grow. Linear probing; a slot whose count fell to 0 keeps
 * its address until the next growth drops it, so a probe stops only at a
 * never-used slot (all-zero address: no client has it, IPv4 ones are
 * mapped). */
static long inflight_add(weir_tcp_mw_rt_t *m, const uint8_t ip[16], int d)
{
    static const uint8_t zero[16];
    pthread_mutex_lock(&m->mu);
    if (!m->slots || (m->used + 1) * 2 > m->mask + 1) {
        size_t cap = m->slots ? (m->mask + 1) * 2 : 64;
        struct weir_inflight_slot *t = calloc(cap, sizeof *t);
        if (!t) {
            pthread_mutex_unlock(&m->mu);
            return -1;
        }
        size_t used = 0;
        for (size_t i = 0; m->slots && i <= m->mask; i++) {
            if (!m->slots[i].count)
                continue; /* drop entries at zero while rehashing */
            size_t j = ip_hash(m->slots[i].ip) & (cap - 1);
            while (t[j].count)
                j = (j + 1) & (cap - 1);
            t[j] = m->slots[i];
            used++;
        }
        free(m->slots);
        m->slots = t;
        m->mask = cap - 1;
        m->used = used;
    }
    size_t j = ip_hash(ip) & m->mask;
    for (;; j = (j + 1) & m->mask) {
        struct weir_inflight_slot *sl = &m->slots[j];
        if (memcmp(sl->ip, ip, 16) == 0)
            break;
        if (!sl->count && memcmp(sl->ip, zero, 16) == 0) {
            memcpy(sl->ip, ip, 16);
            m->used++;
            break;
        }
    }
    long n = (long)m->slots[j].count + d;
    m->slots[j].count = n > 0 ? (uint32_t)n : 0;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* Applies the route's middlewares; false when the connection is refused. */
static bool middlewares_allow(weir_l4_t *l)
{
    const weir_tcp_route_t *r = l->route;
    ip_key(&l->c->peer, l->ip);
    for (size_t i = 0; i < r->num_mws; i++) {
        weir_tcp_mw_rt_t *m = r->mws[i];
        const weir_tcp_middleware_cfg_t *mc = m->cfg;
        if (mc->kind == WEIR_TCP_MW_ALLOWLIST) {
            bool in = false;
            for (size_t k = 0; k < mc->num_ranges && !in; k++)
                in = weir_cidr_contains(&mc->ranges[k], &l->c->peer.sa);
            if (!in) {
                weir_debug("tcp: %s: %s refuses the client address", r->full_name, mc->name);
                return false;
            }
        } else if (mc->kind == WEIR_TCP_MW_INFLIGHT && l->num_held < MAX_HELD) {
            long n = inflight_add(m, l->ip, +1);
            if (n < 0)
                return false;
            l->held[l->num_held++] = m;
            if (n > mc->amount) {
                weir_debug("tcp: %s: %s: %ld connections from one address", r->full_name,
                           mc->name, n);
                return false;
            }
        }
    }
    return true;
}

/* ---- the relay ---- */

static void l4_close(weir_l4_t *l)
{
    weir_conn_abort(l->c); /* calls weir_l4_close */
}

static void pump(weir_l4_t *l);

static void on_timer(weir_timer_t *t)
{
    weir_l4_t *l = (weir_l4_t *)((char *)t - offsetof(weir_l4_t, timer));
    if (l->connecting)
        weir_debug("tcp: %s: dial timeout", l->route->full_name);
    l4_close(l);
}

static bool connected(weir_l4_t *l)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(l->up.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
        weir_debug("tcp: %s: cannot reach the server: %s", l->route->full_name,
                   strerror(err ? err : errno));
        return false;
    }
    l->connecting = 0;
    weir_timer_stop(&l->timer);
    return true;
}

static void on_up_io(weir_io_t *io, unsigned events)
{
    weir_l4_t *l = (weir_l4_t *)((char *)io - offsetof(weir_l4_t, up));
    if (l->closed || l->c->closed)
        return;
    if (events & WEIR_EV_READ)
        l->u_rd = 1;
    if (events & WEIR_EV_WRITE)
        l->u_wr = 1;
    if (events & (WEIR_EV_HUP | WEIR_EV_ERR)) {
        l->u_rd = 1; /* read the rest, then the error or EOF */
        l->u_hup = 1;
    }
    if (l->connecting && (events & (WEIR_EV_WRITE | WEIR_EV_ERR | WEIR_EV_HUP)) && !connected(l)) {
        l4_close(l);
        return;
    }
    if (l->connecting)
        return;
    if (l->utls && (events & WEIR_EV_WRITE)) {
        int f = weir_tls_io_flush(l->utls);
        if (f < 0) {
            l4_close(l);
            return;
        }
        l->u_wr = f == 1;
    }
    pump(l);
}

static int dir_pipe(l4_dir_t *d)
{
    if (d->pipe[0] >= 0)
        return 0;
    if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        d->pipe[0] = d->pipe[1] = -1;
        return -1;
    }
    /* a bigger pipe moves more per call; refused past the user's pipe
     * budget (fs.pipe-user-pages-soft), then the default stays */
    int cap = fcntl(d->pipe[1], F_SETPIPE_SZ, PIPE_SIZE);
    if (cap < 0)
        cap = fcntl(d->pipe[1], F_GETPIPE_SZ);
    d->pipe_cap = cap > 0 ? (size_t)cap : 65536;
    return 0;
}

/* Moves bytes from src to dst in direction d (see l4_dir_t). A copying
 * read shorter than asked for has emptied the socket (edge-triggered
 * readiness brings an event for later bytes), so src is not read again
 * until then, unless src_hup (its FIN is queued: read to the end). A
 * splice read says nothing of that (a pipe also fills by its slots), so
 * bulk reads go on until EAGAIN. Returns -1 on an error. */
static int move_dir(int src, uint8_t *src_rd, uint8_t *src_eof, bool src_hup, l4_dir_t *d,
                    int dst, uint8_t *dst_wr)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        bool progress = false;
        /* what was read goes out first */
        while (weir_buf_len(&d->buf) && *dst_wr) {
            ssize_t n = send(dst, weir_buf_head(&d->buf), weir_buf_len(&d->buf), MSG_NOSIGNAL);
            if (n > 0) {
                weir_buf_consume(&d->buf, (size_t)n);
                progress = true;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                *dst_wr = 0;
            } else if (!(n < 0 && errno == EINTR)) {
                return -1;
            }
        }
        if (d->in && *dst_wr) {
            ssize_t n = splice(d->pipe[0], NULL, dst, NULL, d->in, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d->in -= (size_t)n;
                progress = true;
            } else if (n < 0 && errno == EAGAIN) {
                *dst_wr = 0;
            } else if (n < 0 && errno != EINTR) {
                return -1;
            }
        }
        if (!*src_rd || *src_eof)
            break;
        ssize_t n = -1;
        size_t want = 0;
        if (d->bulk && !weir_buf_len(&d->buf) && d->in < d->pipe_cap) {
            want = d->pipe_cap - d->in;
            n = splice(src, NULL, d->pipe[1], NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d->in += (size_t)n;
                if ((size_t)n < BULK_MIN)
                    d->bulk = 0;
            }
        } else if (!d->bulk && !d->in && !weir_buf_len(&d->buf)) {
            if (weir_buf_reserve(&d->buf, BUF_CAP) < 0)
                return -1;
            want = weir_buf_room(&d->buf);
            n = recv(src, weir_buf_tail(&d->buf), want, 0);
            if (n > 0) {
                d->buf.end += (uint32_t)n;
                if ((size_t)n == want)
                    d->bulk = dir_pipe(d) == 0; /* more may wait: splice the rest */
                else if (!src_hup)
                    *src_rd = 0;
            }
        } else if (!progress) {
            break; /* full: wait for the destination */
        } else {
            continue;
        }
        if (n > 0) {
            progress = true;
        } else if (n == 0) {
            *src_eof = 1;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *src_rd = 0;
        } else if (errno != EINTR) {
            return -1;
        }
        if (!progress)
            break;
    }
    if (!weir_buf_len(&d->buf))
        weir_buf_release(&d->buf);
    return 0;
}

/* One end of a relay where TLS is terminated or originated: the socket,
 * its TLS session (NULL: plain) and its readiness. */
typedef struct {
    int fd;
    weir_tls_io_t *tls;
    uint8_t *rd, *wr, *eof;
} end_t;

/* Moves bytes from src to dst through b (up to BUF_CAP held), decrypting
 * or encrypting where an end has TLS. Returns -1 on an error. */
static int move_buffered(end_t src, weir_buf_t *b, end_t dst)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        bool progress = false;
        if (*src.rd && !*src.eof && weir_buf_len(b) < BUF_CAP) {
            if (weir_buf_reserve(b, BUF_CAP - weir_buf_len(b)) < 0)
                return -1;
            size_t room = weir_buf_room(b);
            ssize_t n = src.tls ? weir_tls_io_read(src.tls, weir_buf_tail(b), room)
                                : recv(src.fd, weir_buf_tail(b), room, 0);
            if (n > 0) {
                b->end += (uint32_t)n;
                progress = true;
            } else if (n == 0) {
                *src.eof = 1;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                *src.rd = 0;
            } else if (errno != EINTR) {
                return -1;
            }
        }
        if (weir_buf_len(b) && *dst.wr) {
            ssize_t n;
            if (dst.tls) {
                struct iovec iov = {weir_buf_head(b), weir_buf_len(b)};
                n = weir_tls_io_writev(dst.tls, &iov, 1);
                if (n < 0)
                    return -1;
                if (n == 0 || dst.tls->wr_full)
                    *dst.wr = 0;
            } else {
                n = send(dst.fd, weir_buf_head(b), weir_buf_len(b), MSG_NOSIGNAL);
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    *dst.wr = 0;
                    n = 0;
                } else if (n < 0 && errno != EINTR) {
                    return -1;
                }
            }
            if (n > 0) {
                weir_buf_consume(b, (size_t)n);
                progress = true;
            }
        }
        if (!progress)
            break;
    }
    if (!weir_buf_len(b))
        weir_buf_release(b);
    return 0;
}

/* Tells the side on fd (with TLS session tls, or none) that no more bytes
 * come: close_notify first, then the TCP FIN once the records are out.
 * Returns true when the FIN went. */
static bool finish_side(int fd, weir_tls_io_t *tls, bool *bye_sent)
{
    if (tls && !*bye_sent) {
        weir_tls_io_bye(tls);
        *bye_sent = true;
    }
    if (tls && weir_buf_len(&tls->out))
        return false;
    shutdown(fd, SHUT_WR);
    return true;
}

/* The TLS handshakes of a terminating or originating relay: 1 when both
 * ends are ready, 0 when waiting, -1 on failure. */
static int handshakes(weir_l4_t *l)
{
    weir_conn_t *c = l->c;
    if (c->tls && !c->tls->handshaken) {
        int rc = weir_tls_io_handshake(c->tls);
        if (rc < 0) {
            weir_debug("tcp: %s: TLS handshake with the client failed", l->route->full_name);
            return -1;
        }
        c->wr_ready = !c->tls->wr_full;
        if (rc == 0)
            return 0;
        c->rd_ready = 1; /* application data may have come with the Finished */
        weir_timer_stop(&c->timer);
    }
    if (l->connecting)
        return 0;
    if (l->utls && !l->utls->handshaken) {
        if (weir_buf_len(&l->head))
            return 0; /* the PROXY header goes before the handshake */
        int rc = weir_tls_io_handshake(l->utls);
        if (rc < 0) {
            weir_debug("tcp: %s: TLS handshake with the server failed", l->route->full_name);
            return -1;
        }
        l->u_wr = !l->utls->wr_full;
        if (rc == 0)
            return 0;
        l->u_rd = 1;
    }
    return 1;
}

static void pump(weir_l4_t *l)
{
    weir_conn_t *c = l->c;
    if (!l->connecting) {
        while (weir_buf_len(&l->head) && l->u_wr) {
            ssize_t n =
                send(l->up.fd, weir_buf_head(&l->head), weir_buf_len(&l->head), MSG_NOSIGNAL);
            if (n > 0) {
                weir_buf_consume(&l->head, (size_t)n);
            } else if (n < 0 && errno == EAGAIN) {
                l->u_wr = 0;
            } else if (!(n < 0 && errno == EINTR)) {
                l4_close(l);
                return;
            }
        }
        if (!weir_buf_len(&l->head))
            weir_buf_release(&l->head);
    }
    int hs = handshakes(l);
    if (hs < 0) {
        l4_close(l);
        return;
    }
    if (hs == 0 || weir_buf_len(&l->head))
        return; /* the server takes the first bytes before anything else */
    uint8_t c_rd = c->rd_ready, c_wr = c->wr_ready;
    uint8_t u_rd = l->u_rd, u_wr = l->u_wr, c_eof = l->c_eof, u_eof = l->u_eof;
    int rc;
    if (l->buffered) {
        end_t ce = {c->io.fd, c->tls, &c_rd, &c_wr, &c_eof};
        end_t ue = {l->up.fd, l->utls, &u_rd, &u_wr, &u_eof};
        rc = move_buffered(ce, &l->cu.buf, ue);
        if (rc == 0)
            rc = move_buffered(ue, &l->uc.buf, ce);
    } else {
        rc = move_dir(c->io.fd, &c_rd, &c_eof, c->hup, &l->cu, l->up.fd, &u_wr);
        if (rc == 0)
            rc = move_dir(l->up.fd, &u_rd, &u_eof, l->u_hup, &l->uc, c->io.fd, &c_wr);
    }
    if (rc < 0) {
        l4_close(l);
        return;
    }
    c->rd_ready = c_rd;
    c->wr_ready = c_wr;
    l->u_rd = u_rd;
    l->u_wr = u_wr;
    l->c_eof = c_eof;
    l->u_eof = u_eof;
    /* Half-close: a side that finished sending is told on to the other. */
    if (l->c_eof && dir_empty(&l->cu) && !l->u_shut)
        l->u_shut = finish_side(l->up.fd, l->utls, &l->u_bye);
    if (l->u_eof && dir_empty(&l->uc) && !l->c_shut)
        l->c_shut = finish_side(c->io.fd, c->tls, &l->c_bye);
    if (l->u_shut && l->c_shut) {
        l4_close(l);
        return;
    }
    if ((l->u_shut || l->c_shut) && !l->lingering) {
        /* terminationDelay: how long the other direction may still run */
        l->lingering = 1;
        if (l->termination_delay_ms >= 0)
            weir_timer_set(c->worker->loop, &l->timer, l->termination_delay_ms, on_timer);
    }
}

void weir_l4_on_io(weir_conn_t *c)
{
    weir_l4_t *l = c->l4;
    if (l)
        pump(l);
}

static socklen_t sa_len(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* Terminates the client's TLS (the ClientHello is in c->in): the
 * certificate for its SNI from the store, the router's TLS options, no
 * ALPN (the relayed bytes are whatever the client speaks: negotiating h2
 * for a server that does not is Traefik's #9484). */
static int start_client_tls(weir_conn_t *c, const weir_tcp_route_t *route,
                            const weir_client_hello_t *ch)
{
    weir_tls_ctx_t *ctx = c->worker->view->snap->tls;
    if (!ctx || !ch)
        return -1;
    const weir_tls_cert_t *cert;
    weir_tls_pick(ctx, ch, &cert);
    int opt = route->cfg->tls_options_index;
    gnutls_session_t session;
    if (weir_tls_session_new(ctx, opt, cert, false, &session) < 0)
        return -1;
    c->tls = calloc(1, sizeof *c->tls);
    if (!c->tls) {
        gnutls_deinit(session);
        return -1;
    }
    weir_tls_io_init(c->tls, ctx, session, c->io.fd, &c->in);
    c->is_tls = 1;
    c->tls_opt = (int16_t)opt;
    return 0;
}

/* TLS toward the server (its tls key, or its transport's tls section). */
static int start_server_tls(weir_l4_t *l, const weir_tcp_service_rt_t *owner,
                            const weir_tcp_server_cfg_t *srv)
{
    weir_tls_ctx_t *ctx = l->view->snap->tls;
    gnutls_session_t session;
    if (!ctx || weir_tls_tcp_client_session_new(ctx, owner->cfg->transport_index,
                                                srv->host ? srv->host : "", &session) < 0)
        return -1;
    l->utls = calloc(1, sizeof *l->utls);
    if (!l->utls) {
        gnutls_deinit(session);
        return -1;
    }
    weir_tls_io_init(l->utls, ctx, session, l->up.fd, NULL);
    return 0;
}

static void start_relay(weir_conn_t *c, const weir_tcp_route_t *route,
                        const weir_client_hello_t *ch, weir_slice_t sni, weir_slice_t alpn)
{
    weir_worker_t *w = c->worker;
    weir_l4_t *l = calloc(1, sizeof *l);
    if (!l) {
        weir_conn_abort(c);
        return;
    }
    l->c = c;
    l->route = route;
    l->up.fd = l->cu.pipe[0] = l->cu.pipe[1] = l->uc.pipe[0] = l->uc.pipe[1] = -1;
    l->view = weir_worker_view_acquire(w);
    c->l4 = l;
    c->state = CONN_L4;
    bool terminate = ch && !route->cfg->passthrough;
    if (!terminate)
        weir_timer_stop(&c->timer); /* else it bounds the handshake */
    if (!middlewares_allow(l)) {
        weir_conn_abort(c);
        return;
    }
    const weir_tcp_service_rt_t *owner = NULL;
    const weir_tcp_server_cfg_t *srv = pick(route->service, 0, &owner);
    if (!srv || !srv->addrlen) {
        weir_debug("tcp: %s: no server to relay to", route->full_name);
        weir_conn_abort(c);
        return;
    }
    const weir_tcp_transport_cfg_t *tr = owner->transport;
    bool server_tls = weir_tcp_server_tls(srv, tr);
    l->buffered = terminate || server_tls;
    if (terminate) {
        alpn = WEIR_SLICE_NULL; /* none is negotiated */
        if (start_client_tls(c, route, ch) < 0) {
            weir_conn_abort(c);
            return;
        }
    }
    l->termination_delay_ms = owner->termination_delay_ms;
    /* the PROXY header first (before any TLS to the server), then what was
     * read from the client already */
    if (owner->proxy_protocol) {
        struct sockaddr_storage local;
        socklen_t llen = sizeof local;
        if (getsockname(c->io.fd, (struct sockaddr *)&local, &llen) < 0)
            memset(&local, 0, sizeof local);
        uint8_t hdr[WEIR_PP_V2_MAX];
        ssize_t n = owner->proxy_protocol == 1
                        ? weir_pp_write_v1((char *)hdr, sizeof hdr, &c->peer.sa,
                                           (struct sockaddr *)&local)
                        : weir_pp_write_v2(hdr, sizeof hdr, &c->peer.sa, (struct sockaddr *)&local,
                                           false, alpn, sni);
        if (n < 0 || weir_buf_append(&l->head, hdr, (size_t)n) < 0) {
            weir_conn_abort(c);
            return;
        }
    }
    weir_buf_t *early = l->buffered ? &l->cu.buf : &l->head;
    if (weir_buf_len(&c->in) &&
        weir_buf_append(early, weir_buf_head(&c->in), weir_buf_len(&c->in)) < 0) {
        weir_conn_abort(c);
        return;
    }
    weir_buf_consume(&c->in, weir_buf_len(&c->in));
    weir_buf_release(&c->in);

    const struct sockaddr *to = (const struct sockaddr *)&srv->addr;
    int fd = socket(to->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        weir_conn_abort(c);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (tr->dial_keep_alive_ms > 0) {
        int idle = (int)(tr->dial_keep_alive_ms / 1000) > 0 ? (int)(tr->dial_keep_alive_ms / 1000) : 1;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof idle);
    }
    l->up.fd = fd;
    l->up.cb = on_up_io;
    l->connecting = 1;
    if (server_tls && start_server_tls(l, owner, srv) < 0) {
        weir_debug("tcp: %s: cannot set up TLS toward %s", route->full_name, srv->address);
        weir_conn_abort(c);
        return;
    }
    weir_debug("tcp: %s: relaying %s to %s%s", route->full_name,
               terminate ? "decrypted TLS" : sni.len ? "TLS" : "TCP", srv->address,
               server_tls ? " over TLS" : "");
    if (connect(fd, to, sa_len(to)) < 0 && errno != EINPROGRESS) {
        weir_debug("tcp: %s: connect to %s: %s", route->full_name, srv->address, strerror(errno));
        weir_conn_abort(c);
        return;
    }
    if (weir_loop_add(w->loop, &l->up) < 0) {
        weir_conn_abort(c);
        return;
    }
    if (tr->dial_timeout_ms > 0)
        weir_timer_set(w->loop, &l->timer, tr->dial_timeout_ms, on_timer);
    if (terminate)
        pump(l); /* the ServerHello goes out while the server is dialled */
}

void weir_l4_close(weir_conn_t *c)
{
    weir_l4_t *l = c->l4;
    if (!l)
        return;
    c->l4 = NULL;
    weir_timer_stop(&l->timer);
    if (l->up.fd >= 0) {
        weir_loop_del(c->worker->loop, &l->up);
        close(l->up.fd);
    }
    for (int i = 0; i < 2; i++) {
        if (l->cu.pipe[i] >= 0)
            close(l->cu.pipe[i]);
        if (l->uc.pipe[i] >= 0)
            close(l->uc.pipe[i]);
    }
    if (l->utls) {
        weir_tls_io_free(l->utls);
        free(l->utls);
    }
    weir_buf_release(&l->head);
    weir_buf_release(&l->cu.buf);
    weir_buf_release(&l->uc.buf);
    for (size_t i = 0; i < l->num_held; i++)
        inflight_add(l->held[i], l->ip, -1);
    weir_worker_view_release(l->view);
    /* an event for the server socket may still wait in this loop pass */
    l->closed = 1;
    weir_loop_defer(c->worker->loop, free, l);
}
