/* UDP routers: per-client flows toward the servers (see l4.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "l4/l4.h"

#define BUCKETS 4096      /* flow hash buckets per entry point socket */
#define MAX_DGRAM 65536
#define READS_PER_EVENT 64

typedef struct udp_ep udp_ep_t;

typedef struct flow {
    weir_io_t io; /* connected socket toward the server */
    udp_ep_t *uep;
    weir_timer_t timer;
    weir_addr_t client;
    socklen_t clen;
    struct flow *next; /* bucket chain */
} flow_t;

struct udp_ep {
    weir_io_t io;
    weir_worker_t *w;
    int ep;
    flow_t *buckets[BUCKETS];
    size_t nflows;
};

struct weir_udp_worker {
    udp_ep_t **eps;
    int neps;
};

static __thread uint8_t tbuf[MAX_DGRAM]; /* one datagram at a time per worker thread */

static size_t bucket_of(const weir_addr_t *a)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const uint8_t *p = (const uint8_t *)a;
    size_t n = a->sa.sa_family == AF_INET6 ? sizeof a->in6 : sizeof a->in;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return (size_t)(h % BUCKETS);
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

static void flow_free(flow_t *f)
{
    udp_ep_t *u = f->uep;
    flow_t **pp = &u->buckets[bucket_of(&f->client)];
    while (*pp && *pp != f)
        pp = &(*pp)->next;
    if (*pp)
        *pp = f->next;
    u->nflows--;
    weir_timer_stop(&f->timer);
    weir_loop_del(u->w->loop, &f->io);
    close(f->io.fd);
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
    const weir_entrypoint_cfg_t *ep = &u->w->view->snap->cfg->entrypoints[u->ep];
    int64_t ms = ep->udp_timeout_ms > 0 ? ep->udp_timeout_ms : 3000;
    weir_timer_set(u->w->loop, &f->timer, ms, flow_expired);
}

/* Replies from the server go back to the client from the entry point's
 * socket. */
static void on_flow_io(weir_io_t *io, unsigned events)
{
    flow_t *f = (flow_t *)io;
    bool got = false;
    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = recv(f->io.fd, tbuf, sizeof tbuf, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            /* ICMP unreachable from the server: nothing to relay now */
            break;
        }
        sendto(f->uep->io.fd, tbuf, (size_t)n, MSG_DONTWAIT, &f->client.sa, f->clen);
        got = true;
    }
    if (got)
        touch(f);
}

static flow_t *flow_new(udp_ep_t *u, const weir_addr_t *client, socklen_t clen)
{
    weir_tcp_service_rt_t *svc = u->w->view->snap->udp_ep_service[u->ep];
    const weir_tcp_service_rt_t *owner = NULL;
    const weir_tcp_server_cfg_t *srv = svc ? weir_l4_pick(svc, &owner) : NULL;
    if (!srv || !srv->addrlen)
        return NULL;
    const struct sockaddr *to = (const struct sockaddr *)&srv->addr;
    int fd = socket(to->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (connect(fd, to, to->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                  : sizeof(struct sockaddr_in)) < 0) {
        close(fd);
        return NULL;
    }
    flow_t *f = calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        return NULL;
    }
    f->io.fd = fd;
    f->io.cb = on_flow_io;
    f->uep = u;
    memcpy(&f->client, client, clen);
    f->clen = clen;
    if (weir_loop_add(u->w->loop, &f->io) < 0) {
        close(fd);
        free(f);
        return NULL;
    }
    size_t b = bucket_of(client);
    f->next = u->buckets[b];
    u->buckets[b] = f;
    u->nflows++;
    weir_debug("udp: new flow to %s", srv->address);
    return f;
}

static void on_ep_io(weir_io_t *io, unsigned events);

static void read_again(void *arg)
{
    on_ep_io(arg, WEIR_EV_READ);
}

static void on_ep_io(weir_io_t *io, unsigned events)
{
    udp_ep_t *u = (udp_ep_t *)io;
    for (int i = 0; i < READS_PER_EVENT; i++) {
        weir_addr_t client;
        socklen_t clen = sizeof client;
        ssize_t n = recvfrom(u->io.fd, tbuf, sizeof tbuf, 0, &client.sa, &clen);
        if (n < 0)
            return; /* EAGAIN: the edge is consumed */
        flow_t *f = u->buckets[bucket_of(&client)];
        while (f && !same_client(&f->client, &client))
            f = f->next;
        if (!f && !(f = flow_new(u, &client, clen)))
            continue; /* no router, or no server: dropped */
        send(f->io.fd, tbuf, (size_t)n, MSG_DONTWAIT);
        touch(f);
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
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
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
        for (size_t b = 0; b < BUCKETS; b++)
            while (u->buckets[b])
                flow_free(u->buckets[b]);
        weir_loop_del(w->loop, &u->io);
        close(u->io.fd);
        free(u);
    }
    free(uw->eps);
    free(uw);
    w->udp = NULL;
}
