/* UDP routers: per-client flows toward the servers, QUIC routed by the SNI
 * of its Initial packets (see l4.h). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "l4/l4.h"
#include "l4/proxy_proto.h"
#include "quic/quic_initial.h"
#include "rules/rules.h"

#define BUCKETS 4096      /* flow and connection ID hash buckets per entry point */
#define MAX_DGRAM 65536
#define BATCH 32          /* datagrams per recvmmsg / sendmmsg */
#define ROUNDS 8          /* recvmmsg calls per readiness event before yielding */
#define MAX_FLOWS 16384   /* flows per entry point; the least recently used goes first */
#define MAX_PENDING 1024  /* flows still reading a ClientHello, per entry point */
#define HELD_MAX 16       /* datagrams held while the hello is incomplete */
#define HELD_BYTES 24576  /* ... and their bytes */
#define MAX_ALPNS 8
#define PP_ROOM 64        /* a PROXY v2 DGRAM header without TLVs: 16 + 36 */
#define GSO_MAX 64        /* datagrams per UDP_SEGMENT send (the kernel's limit) */
#define GSO_BYTES 65000   /* ... and their bytes */
#define EP_BUFFER (4 * 1024 * 1024)   /* SO_RCVBUF / SO_SNDBUF of an entry point socket */
#define FLOW_BUFFER (1024 * 1024)     /* ... of a flow's socket */

/* Cleared when the kernel refuses UDP_SEGMENT: one datagram per message. */
static atomic_bool gso_ok = true;

typedef struct udp_ep udp_ep_t;
typedef struct cid cid_t;

typedef struct held {
    struct held *next;
    unsigned flags; /* WEIR_QI_F_* */
    size_t len;
    uint8_t data[];
} held_t;

typedef struct flow {
    weir_io_t io; /* connected socket toward the server; fd -1 while pending */
    udp_ep_t *uep;
    weir_timer_t timer;
    weir_addr_t client;
    socklen_t clen;
    struct flow *next;               /* address bucket chain */
    struct flow *lru_prev, *lru_next; /* least recently used first */
    cid_t *cids;                     /* connection IDs that lead here */
    weir_quic_hello_t *hello;        /* pending: the ClientHello so far */
    held_t *held, **held_tail;       /* pending: datagrams to send once routed */
    size_t nheld, held_bytes;
    uint8_t pp;                      /* PROXY v2 header in front of each datagram */
} flow_t;

struct cid {
    cid_t *next;  /* bucket chain */
    cid_t *fnext; /* the flow's list */
    flow_t *flow;
    uint8_t len;
    uint8_t id[20];
};

struct udp_ep {
    weir_io_t io;
    weir_worker_t *w;
    int ep;
    flow_t *buckets[BUCKETS];
    cid_t *cid_buckets[BUCKETS];
    uint32_t cid_lens; /* bit n: some connection ID of n bytes is known */
    flow_t *lru_head, *lru_tail;
    size_t nflows, npending;
    struct sockaddr_storage local; /* the socket's address: the PROXY header's destination */
};

struct weir_udp_worker {
    udp_ep_t **eps;
    int neps;
};

/* one batch at a time per worker thread */
static __thread uint8_t bufs[BATCH][MAX_DGRAM];
static __thread uint8_t pp_hdrs[BATCH][PP_ROOM];
/* the datagrams of a batch once coalesced reads (UDP_GRO) are cut */
static __thread uint8_t *seg_data[BATCH * GSO_MAX];
static __thread size_t seg_lens[BATCH * GSO_MAX];
static __thread int seg_msg[BATCH * GSO_MAX]; /* which read each came in */

typedef union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
} gro_ctl_t;

/* UDP_GRO: the kernel may hand several datagrams of one sender in one
 * read (each gso_size bytes, the last maybe shorter), as a sender with
 * UDP_SEGMENT (QUIC stacks, weir itself) sent them; they go on the same
 * way. */
static void enable_gro(int fd)
{
    int one = 1;
    setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one);
}

/* Appends the datagrams of read m (buf[0..len)) to seg_*[*n..]. */
static void cut(struct msghdr *h, uint8_t *buf, size_t len, int m, size_t *n)
{
    size_t seg = len;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c))
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof v);
            if (v > 0)
                seg = (size_t)v;
        }
    size_t off = 0;
    do {
        size_t k = len - off < seg ? len - off : seg;
        seg_data[*n] = buf + off;
        seg_lens[*n] = k;
        seg_msg[*n] = m;
        (*n)++;
        off += k;
    } while (off < len && *n < BATCH * GSO_MAX);
}

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static size_t bucket_of(const weir_addr_t *a)
{
    size_t n = a->sa.sa_family == AF_INET6 ? sizeof a->in6 : sizeof a->in;
    return (size_t)(fnv(a, n, 0xcbf29ce484222325ull) % BUCKETS);
}

static size_t cid_bucket(const uint8_t *id, size_t len)
{
    return (size_t)(fnv(id, len, 0xcbf29ce484222325ull ^ len) % BUCKETS);
}

static bool same_client(const weir_addr_t *a, const weir_addr_t *b)
{
    if (a->sa.sa_family != b->sa.sa_family)
        return false;
    if (a->sa.sa_family == AF_INET)
        return a->in.sin_port == b->in.sin_port && a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
    return a->in6.sin6_port == b->in6.sin6_port &&
           memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
}

static const weir_entrypoint_cfg_t *ep_cfg(const udp_ep_t *u)
{
    return &u->w->view->snap->cfg->entrypoints[u->ep];
}

/* ---- the flow table ---- */

static void lru_unlink(udp_ep_t *u, flow_t *f)
{
    if (f->lru_prev)
        f->lru_prev->lru_next = f->lru_next;
    else
        u->lru_head = f->lru_next;
    if (f->lru_next)
        f->lru_next->lru_prev = f->lru_prev;
    else
        u->lru_tail = f->lru_prev;
    f->lru_prev = f->lru_next = NULL;
}

static void lru_append(udp_ep_t *u, flow_t *f)
{
    f->lru_prev = u->lru_tail;
    f->lru_next = NULL;
    if (u->lru_tail)
        u->lru_tail->lru_next = f;
    else
        u->lru_head = f;
    u->lru_tail = f;
}

static void unhash(udp_ep_t *u, flow_t *f)
{
    flow_t **pp = &u->buckets[bucket_of(&f->client)];
    while (*pp && *pp != f)
        pp = &(*pp)->next;
    if (*pp)
        *pp = f->next;
    f->next = NULL;
}

static void rehash(udp_ep_t *u, flow_t *f)
{
    size_t b = bucket_of(&f->client);
    f->next = u->buckets[b];
    u->buckets[b] = f;
}

static flow_t *find_flow(udp_ep_t *u, const weir_addr_t *client)
{
    flow_t *f = u->buckets[bucket_of(client)];
    while (f && !same_client(&f->client, client))
        f = f->next;
    return f;
}

static void drop_held(flow_t *f)
{
    while (f->held) {
        held_t *h = f->held;
        f->held = h->next;
        free(h);
    }
    f->held_tail = &f->held;
    f->nheld = f->held_bytes = 0;
}

static void end_pending(flow_t *f)
{
    if (!f->hello)
        return;
    weir_quic_hello_free(f->hello);
    free(f->hello);
    f->hello = NULL;
    f->uep->npending--;
}

static void flow_free(flow_t *f)
{
    udp_ep_t *u = f->uep;
    unhash(u, f);
    lru_unlink(u, f);
    while (f->cids) {
        cid_t *c = f->cids;
        f->cids = c->fnext;
        cid_t **pp = &u->cid_buckets[cid_bucket(c->id, c->len)];
        while (*pp && *pp != c)
            pp = &(*pp)->next;
        if (*pp)
            *pp = c->next;
        free(c);
    }
    end_pending(f);
    drop_held(f);
    u->nflows--;
    weir_timer_stop(&f->timer);
    if (f->io.fd >= 0) {
        weir_loop_del(u->w->loop, &f->io);
        close(f->io.fd);
    }
    free(f);
}

static void flow_expired(weir_timer_t *t)
{
    flow_t *f = (flow_t *)((char *)t - offsetof(flow_t, timer));
    weir_debug("udp: flow idle for the entry point's timeout: closed");
    flow_free(f);
}

static void touch(flow_t *f)
{
    udp_ep_t *u = f->uep;
    int64_t ms = ep_cfg(u)->udp_timeout_ms;
    weir_timer_set(u->w->loop, &f->timer, ms > 0 ? ms : 3000, flow_expired);
    if (u->lru_tail != f) {
        lru_unlink(u, f);
        lru_append(u, f);
    }
}

/* ---- connection IDs: a flow follows its client to a new address ---- */

static flow_t *cid_find(udp_ep_t *u, const uint8_t *id, size_t len)
{
    for (cid_t *c = u->cid_buckets[cid_bucket(id, len)]; c; c = c->next)
        if (c->len == len && memcmp(c->id, id, len) == 0)
            return c->flow;
    return NULL;
}

static void cid_add(udp_ep_t *u, flow_t *f, const uint8_t *id, size_t len)
{
    if (len == 0 || len > 20 || cid_find(u, id, len))
        return;
    cid_t *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->flow = f;
    c->len = (uint8_t)len;
    memcpy(c->id, id, len);
    size_t b = cid_bucket(id, len);
    c->next = u->cid_buckets[b];
    u->cid_buckets[b] = c;
    c->fnext = f->cids;
    f->cids = c;
    u->cid_lens |= 1u << len;
}

/* The flow a datagram from an unknown address belongs to, by its
 * Destination Connection ID: explicit in a long header, one of the known
 * lengths in a short one. */
static flow_t *flow_by_cid(udp_ep_t *u, const uint8_t *d, size_t len)
{
    if (!u->cid_lens || len < 2)
        return NULL;
    weir_quic_long_t lh;
    if (d[0] & 0x80)
        return weir_quic_long_header(d, len, &lh) ? cid_find(u, lh.dcid, lh.dcid_len) : NULL;
    for (size_t n = 1; n <= 20 && n < len; n++)
        if (u->cid_lens & (1u << n)) {
            flow_t *f = cid_find(u, d + 1, n);
            if (f)
                return f;
        }
    return NULL;
}

/* ---- to the server ---- */

/* How many of datagrams[0..n) can leave in one UDP_SEGMENT send: the same
 * size (hdr + len), the last one possibly shorter, within the kernel's
 * limits. */
static size_t gso_run(const size_t *lens, size_t n, size_t hl)
{
    if (!atomic_load_explicit(&gso_ok, memory_order_relaxed) || n < 2)
        return 1;
    size_t seg = hl + lens[0], total = seg, k = 1;
    while (k < n && k < GSO_MAX && lens[k] <= lens[0] && total + hl + lens[k] <= GSO_BYTES) {
        total += hl + lens[k];
        if (lens[k++] < lens[0])
            break; /* a shorter one ends the run */
    }
    return k;
}

/* Sends datagrams[0..n) on fd (to `to`, or the connected peer when NULL),
 * each after the hl bytes of hdr: runs of equal-sized datagrams in one
 * UDP_SEGMENT message each (the kernel cuts them), the rest one by one, in
 * sendmmsg batches. What the socket does not take is dropped, as UDP may. */
static void send_batch(int fd, const weir_addr_t *to, socklen_t tolen, const uint8_t *hdr,
                       size_t hl, uint8_t *const *data, const size_t *lens, size_t n)
{
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH * 2 + 2 * GSO_MAX];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl[BATCH];
    size_t done = 0;
    while (done < n) {
        size_t m = 0, v = 0, start = done;
        while (done < n && m < BATCH && v + 2 * GSO_MAX <= sizeof iov / sizeof iov[0]) {
            size_t k = gso_run(lens + done, n - done, hl);
            struct msghdr *h = &msgs[m].msg_hdr;
            *h = (struct msghdr){.msg_name = (void *)to, .msg_namelen = to ? tolen : 0,
                                 .msg_iov = &iov[v]};
            for (size_t i = 0; i < k; i++) {
                if (hl)
                    iov[v++] = (struct iovec){(void *)hdr, hl};
                iov[v++] = (struct iovec){data[done + i], lens[done + i]};
            }
            h->msg_iovlen = (size_t)(&iov[v] - h->msg_iov);
            if (k > 1) {
                h->msg_control = ctl[m].buf;
                h->msg_controllen = sizeof ctl[m].buf;
                struct cmsghdr *cm = CMSG_FIRSTHDR(h);
                cm->cmsg_level = SOL_UDP;
                cm->cmsg_type = UDP_SEGMENT;
                cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                uint16_t seg = (uint16_t)(hl + lens[done]);
                memcpy(CMSG_DATA(cm), &seg, sizeof seg);
            }
            done += k;
            m++;
        }
        int sent = sendmmsg(fd, msgs, (unsigned)m, MSG_DONTWAIT);
        if (sent < 0 && (errno == EIO || errno == EINVAL) &&
            atomic_exchange(&gso_ok, false)) {
            /* no GSO here: the batch again, one datagram per message */
            weir_debug("udp: the kernel refuses UDP_SEGMENT: one datagram per message");
            done = start;
            continue;
        }
        if (sent < (int)m)
            return; /* the socket is full, or the peer unreachable */
    }
}

/* Sends datagrams[0..n) of flow f to its server, each after a PROXY v2
 * header when the flow's transport asks for it. */
static void send_up(flow_t *f, uint8_t *const *data, const size_t *lens, size_t n)
{
    size_t hl = 0;
    if (f->pp) {
        ssize_t k = weir_pp_write_v2(pp_hdrs[0], PP_ROOM, &f->client.sa,
                                     (const struct sockaddr *)&f->uep->local, true,
                                     WEIR_SLICE_NULL, WEIR_SLICE_NULL);
        hl = k > 0 ? (size_t)k : 0;
    }
    send_batch(f->io.fd, NULL, 0, pp_hdrs[0], hl, data, lens, n);
}

/* Replies from the server go back to the client from the entry point's
 * socket; the connection IDs the server chooses (long headers) are learnt. */
static void on_flow_io(weir_io_t *io, unsigned events)
{
    flow_t *f = (flow_t *)io;
    udp_ep_t *u = f->uep;
    bool got = false;
    for (int round = 0; round < ROUNDS; round++) {
        struct mmsghdr msgs[BATCH];
        struct iovec iov[BATCH];
        gro_ctl_t ctl[BATCH];
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){bufs[i], MAX_DGRAM};
            msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i],
                                                   .msg_iovlen = 1,
                                                   .msg_control = ctl[i].buf,
                                                   .msg_controllen = sizeof ctl[i].buf}};
        }
        int n = recvmmsg(f->io.fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break; /* EAGAIN, or an ICMP error from the server: nothing to relay */
        size_t ns = 0;
        for (int i = 0; i < n; i++)
            cut(&msgs[i].msg_hdr, bufs[i], msgs[i].msg_len, i, &ns);
        for (size_t i = 0; i < ns; i++) {
            weir_quic_long_t lh;
            if (seg_lens[i] && (seg_data[i][0] & 0x80) &&
                weir_quic_long_header(seg_data[i], seg_lens[i], &lh))
                cid_add(u, f, lh.scid, lh.scid_len);
        }
        send_batch(u->io.fd, &f->client, f->clen, NULL, 0, seg_data, seg_lens, ns);
        got = true;
        if (n < BATCH)
            break;
    }
    if (got)
        touch(f);
}

/* Connects flow f to a server of service svc and sends what it held: the
 * datagram with the hello's first bytes first (a server may answer an
 * Initial that does not start the CRYPTO stream with a Retry), then the
 * rest in arrival order. Returns false when f was freed. */
static bool flow_route(flow_t *f, weir_tcp_service_rt_t *svc, const char *why)
{
    udp_ep_t *u = f->uep;
    const weir_tcp_service_rt_t *owner = NULL;
    const weir_tcp_server_cfg_t *srv = svc ? weir_l4_pick(svc, &owner) : NULL;
    if (!srv || !srv->addrlen) {
        weir_debug("udp: %s: no server: flow dropped", why);
        flow_free(f);
        return false;
    }
    const struct sockaddr *to = (const struct sockaddr *)&srv->addr;
    int fd = socket(to->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, to, to->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                            : sizeof(struct sockaddr_in)) < 0) {
        close(fd);
        fd = -1;
    }
    f->io.fd = fd;
    int size = FLOW_BUFFER;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        enable_gro(fd);
    }
    if (fd < 0 || weir_loop_add(u->w->loop, &f->io) < 0) {
        flow_free(f);
        return false;
    }
    f->pp = owner->transport->proxy_protocol == 2;
    weir_debug("udp: %s: new flow to %s", why, srv->address);
    uint8_t *data[HELD_MAX];
    size_t lens[HELD_MAX], n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (held_t *h = f->held; h && n < HELD_MAX; h = h->next)
            if (((h->flags & WEIR_QI_F_OFFSET0) != 0) == (pass == 0)) {
                data[n] = h->data;
                lens[n++] = h->len;
            }
    send_up(f, data, lens, n);
    drop_held(f);
    return true;
}

/* The hello is complete (or unreadable): the router whose rule matches,
 * else the catch-all. */
static void flow_decide(flow_t *f, bool readable)
{
    udp_ep_t *u = f->uep;
    const weir_snapshot_t *snap = u->w->view->snap;
    weir_client_hello_t ch;
    weir_slice_t alpns[MAX_ALPNS];
    size_t na = 0;
    const weir_tcp_route_t *r = NULL;
    if (readable && weir_quic_hello_get(f->hello, &ch) == WEIR_CH_OK) {
        while (na < MAX_ALPNS && weir_client_hello_alpn_at(&ch, na, &alpns[na]))
            na++;
        weir_rule_req_t req = {.sni = ch.has_sni ? ch.sni : WEIR_SLICE_NULL,
                               .alpns = alpns,
                               .num_alpns = na,
                               .client = &f->client.sa};
        r = snap->udp_tables[u->ep] ? weir_router_table_match(snap->udp_tables[u->ep], &req)
                                    : NULL;
        weir_debug("udp: QUIC connection for SNI \"%.*s\": %s", (int)req.sni.len, req.sni.ptr,
                   r ? r->full_name : "no router with a rule");
    }
    /* the client's first DCID also leads here (an Initial resent from a
     * new address before the server answered) */
    cid_add(u, f, f->hello->dcid, f->hello->dcid_len);
    end_pending(f);
    flow_route(f, r ? r->service : snap->udp_ep_service[u->ep],
               r ? r->full_name : "catch-all");
}

static void hold(flow_t *f, const uint8_t *d, size_t len, unsigned flags)
{
    if (f->nheld >= HELD_MAX || f->held_bytes + len > HELD_BYTES)
        return; /* bounded: the client resends */
    held_t *h = malloc(sizeof *h + len);
    if (!h)
        return;
    h->next = NULL;
    h->flags = flags;
    h->len = len;
    memcpy(h->data, d, len);
    *f->held_tail = h;
    f->held_tail = &h->next;
    f->nheld++;
    f->held_bytes += len;
}

static flow_t *flow_new(udp_ep_t *u, const weir_addr_t *client, socklen_t clen, bool pending)
{
    while (u->nflows >= MAX_FLOWS && u->lru_head)
        flow_free(u->lru_head); /* the table is full: the oldest goes */
    if (pending) {
        for (flow_t *o = u->lru_head; u->npending >= MAX_PENDING && o;) {
            flow_t *next = o->lru_next;
            if (o->hello)
                flow_free(o);
            o = next;
        }
    }
    flow_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->io.fd = -1;
    f->io.cb = on_flow_io;
    f->uep = u;
    memcpy(&f->client, client, clen);
    f->clen = clen;
    f->held_tail = &f->held;
    if (pending) {
        f->hello = malloc(sizeof *f->hello);
        if (!f->hello) {
            free(f);
            return NULL;
        }
        weir_quic_hello_init(f->hello);
        u->npending++;
    }
    rehash(u, f);
    lru_append(u, f);
    u->nflows++;
    return f;
}

/* A datagram from a client without a flow. Returns its flow (routed or
 * pending), or NULL when dropped. */
static flow_t *new_client(udp_ep_t *u, const weir_addr_t *client, socklen_t clen,
                          const uint8_t *d, size_t len)
{
    const weir_snapshot_t *snap = u->w->view->snap;
    flow_t *f = flow_by_cid(u, d, len);
    if (f) { /* the client's address changed (NAT rebinding, migration) */
        weir_debug("udp: a flow's client moved: following it");
        unhash(u, f);
        memcpy(&f->client, client, clen);
        f->clen = clen;
        rehash(u, f);
        return f;
    }
    weir_quic_long_t lh;
    bool initial = snap->udp_tables[u->ep] && weir_quic_long_header(d, len, &lh) &&
                   lh.type == WEIR_QUIC_INITIAL && weir_quic_version_known(lh.version);
    if (initial && len < WEIR_QI_MIN_DATAGRAM)
        return NULL; /* RFC 9000 §14.1 */
    if (!initial && !snap->udp_ep_service[u->ep])
        return NULL;
    f = flow_new(u, client, clen, initial);
    if (f && !initial && !flow_route(f, snap->udp_ep_service[u->ep], "catch-all"))
        return NULL;
    return f;
}

/* One datagram from a client. Returns the flow to send it to now, or NULL
 * (held, or dropped). */
static flow_t *from_client(udp_ep_t *u, const weir_addr_t *client, socklen_t clen,
                           const uint8_t *d, size_t len)
{
    flow_t *f = find_flow(u, client);
    if (!f && !(f = new_client(u, client, clen, d, len)))
        return NULL;
    touch(f);
    if (!f->hello)
        return f;
    unsigned flags = 0;
    int rc = weir_quic_hello_feed(f->hello, d, len, &flags);
    if (rc == WEIR_QI_NONE && !(flags & WEIR_QI_F_INITIAL) && f->nheld == 0) {
        flow_free(f); /* nothing a QUIC server would take either */
        return NULL;
    }
    hold(f, d, len, flags);
    if (rc == WEIR_QI_DONE || rc == WEIR_QI_BAD)
        flow_decide(f, rc == WEIR_QI_DONE);
    return NULL;
}

static void on_ep_io(weir_io_t *io, unsigned events);

static void read_again(void *arg)
{
    on_ep_io(arg, WEIR_EV_READ);
}

static void on_ep_io(weir_io_t *io, unsigned events)
{
    udp_ep_t *u = (udp_ep_t *)io;
    for (int round = 0; round < ROUNDS; round++) {
        struct mmsghdr msgs[BATCH];
        struct iovec iov[BATCH];
        weir_addr_t from[BATCH];
        gro_ctl_t ctl[BATCH];
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){bufs[i], MAX_DGRAM};
            msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &from[i],
                                                   .msg_namelen = sizeof from[i],
                                                   .msg_iov = &iov[i],
                                                   .msg_iovlen = 1,
                                                   .msg_control = ctl[i].buf,
                                                   .msg_controllen = sizeof ctl[i].buf}};
        }
        int n = recvmmsg(u->io.fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return; /* EAGAIN: the edge is consumed */
        size_t ns = 0;
        for (int i = 0; i < n; i++)
            cut(&msgs[i].msg_hdr, bufs[i], msgs[i].msg_len, i, &ns);
        /* consecutive datagrams of one flow (seg_*[start, start + nrun))
         * leave together */
        flow_t *run = NULL;
        size_t start = 0, nrun = 0;
        for (size_t i = 0; i < ns; i++) {
            const weir_addr_t *client = &from[seg_msg[i]];
            flow_t *f = run && !run->hello && same_client(&run->client, client) ? run : NULL;
            if (f) {
                touch(f);
            } else {
                /* a new flow may evict an old one: what is queued goes first */
                if (nrun)
                    send_up(run, seg_data + start, seg_lens + start, nrun);
                nrun = 0;
                start = i;
                run = f = from_client(u, client, msgs[seg_msg[i]].msg_hdr.msg_namelen,
                                      seg_data[i], seg_lens[i]);
            }
            if (f)
                nrun++;
            else
                start = i + 1;
        }
        if (run && nrun)
            send_up(run, seg_data + start, seg_lens + start, nrun);
        if (n < BATCH)
            return;
    }
    weir_loop_defer(u->w->loop, read_again, io); /* more may wait: after the other work */
}

int weir_udp_listen(weir_worker_t *w, int ep)
{
    const weir_entrypoint_cfg_t *cfg = &weir_server.current->cfg->entrypoints[ep];
    struct weir_udp_worker *uw = w->udp;
    if (!uw && !(uw = w->udp = calloc(1, sizeof *uw)))
        return -ENOMEM;
    udp_ep_t **eps = realloc(uw->eps, (size_t)(uw->neps + 1) * sizeof *eps);
    if (!eps)
        return -ENOMEM;
    uw->eps = eps;
    udp_ep_t *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    int fd = socket(cfg->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        free(u);
        return -errno;
    }
    int one = 1, size = EP_BUFFER;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    enable_gro(fd);
    if (cfg->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)&cfg->addr;
        int v6only = !IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
    if (bind(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen) < 0) {
        int e = -errno;
        close(fd);
        free(u);
        return e;
    }
    socklen_t ll = sizeof u->local;
    getsockname(fd, (struct sockaddr *)&u->local, &ll);
    u->io.fd = fd;
    u->io.cb = on_ep_io;
    u->w = w;
    u->ep = ep;
    uw->eps[uw->neps++] = u;
    int rc = weir_loop_add(w->loop, &u->io);
    return rc < 0 ? rc : 0;
}

void weir_udp_free(weir_worker_t *w)
{
    struct weir_udp_worker *uw = w->udp;
    if (!uw)
        return;
    for (int i = 0; i < uw->neps; i++) {
        udp_ep_t *u = uw->eps[i];
        while (u->lru_head)
            flow_free(u->lru_head);
        weir_loop_del(w->loop, &u->io);
        close(u->io.fd);
        free(u);
    }
    free(uw->eps);
    free(uw);
    w->udp = NULL;
}
