/* Per-worker upstream pools and load balancing. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "upstream/upstream.h"

static int swrr(int *cur, const int *weights, int n, int stride_is_servers,
                const weir_server_cfg_t *const *servers)
{
    int total = 0, best = -1;
    for (int i = 0; i < n; i++) {
        int wgt = stride_is_servers ? servers[i]->weight : weights[i];
        if (wgt <= 0)
            continue;
        cur[i] += wgt;
        total += wgt;
        if (best < 0 || cur[i] > cur[best])
            best = i;
    }
    if (best >= 0)
        cur[best] -= total;
    return best;
}

int weir_lb_pick(weir_view_t *v, const weir_service_rt_t *s)
{
    for (int depth = 0; depth < 32 && s; depth++) {
        int *cur = v->wrr + s->wrr_base;
        if (s->num_children) {
            int i = swrr(cur, s->child_weights, s->num_children, 0, NULL);
            if (i < 0)
                return -1;
            s = s->children[i];
            continue;
        }
        if (s->num_servers == 0)
            return -1;
        int i = swrr(cur, NULL, s->num_servers, 1, v->snap->servers + s->server_base);
        return i < 0 ? -1 : s->server_base + i;
    }
    return -1;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static int pool_tab_grow(weir_worker_t *w)
{
    size_t cap = w->pool_cap ? w->pool_cap * 2 : 64;
    weir_pool_t **tab = calloc(cap, sizeof *tab);
    if (!tab)
        return -1;
    for (size_t i = 0; i < w->pool_cap; i++) {
        weir_pool_t *p = w->pool_tab[i];
        if (!p)
            continue;
        size_t j = hash_str(p->key) & (cap - 1);
        while (tab[j])
            j = (j + 1) & (cap - 1);
        tab[j] = p;
    }
    free(w->pool_tab);
    w->pool_tab = tab;
    w->pool_cap = cap;
    return 0;
}

/* What a transport's connections were made with: a reload that changes
 * them (serverName, rootCAs, client certificate, insecureSkipVerify,
 * disableHTTP2) gets a new pool, so no connection verified under the old
 * settings serves the new ones. */
static uint64_t transport_tls_hash(const weir_servers_transport_cfg_t *t)
{
    if (!t)
        return 0;
    uint64_t h = 1469598103934665603ULL;
    const char *parts[] = {t->server_name, t->client_cert_file, t->client_key_file};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        h = (h ^ hash_str(parts[i] ? parts[i] : "")) * 1099511628211ULL;
    for (size_t i = 0; i < t->num_root_cas; i++)
        h = (h ^ hash_str(t->root_cas[i])) * 1099511628211ULL;
    return (h ^ (uint64_t)(t->insecure_skip_verify * 2 + t->disable_http2)) * 1099511628211ULL;
}

weir_pool_t *weir_pool_of(weir_view_t *v, int server)
{
    if (v->pools[server])
        return v->pools[server];
    weir_worker_t *w = v->worker;
    const weir_server_cfg_t *srv = v->snap->servers[server];
    const weir_service_rt_t *svc = v->snap->server_service[server];
    char key[1024];
    snprintf(key, sizeof key, "%s|%s|%016llx", srv->url,
             svc->transport ? svc->transport->name : "",
             (unsigned long long)transport_tls_hash(svc->transport));
    if ((w->pool_count + 1) * 2 > w->pool_cap && pool_tab_grow(w) < 0)
        return NULL;
    size_t j = hash_str(key) & (w->pool_cap - 1);
    while (w->pool_tab[j]) {
        if (strcmp(w->pool_tab[j]->key, key) == 0)
            return v->pools[server] = w->pool_tab[j];
        j = (j + 1) & (w->pool_cap - 1);
    }
    weir_pool_t *p = calloc(1, sizeof *p);
    if (!p || !(p->key = strdup(key))) {
        free(p);
        return NULL;
    }
    p->worker = w;
    w->pool_tab[j] = p;
    w->pool_count++;
    return v->pools[server] = p;
}

void weir_pools_free(weir_worker_t *w)
{
    for (size_t i = 0; i < w->pool_cap; i++) {
        weir_pool_t *p = w->pool_tab[i];
        if (!p)
            continue;
        while (p->idle) {
            weir_upconn_t *u = p->idle;
            p->idle = u->next;
            weir_timer_stop(&u->timer);
            close(u->io.fd);
            weir_buf_release(&u->in);
            free(u);
        }
        weir_h2up_pool_free(p);
        free(p->key);
        free(p);
    }
    free(w->pool_tab);
    w->pool_tab = NULL;
    w->pool_cap = w->pool_count = 0;
}

/* Counts of backend connections closed for a missing PING ACK, per server
 * URL, for the whole process (rare events: a list under a mutex). */
struct ping_count {
    struct ping_count *next;
    unsigned long n;
    char url[];
};
static struct ping_count *ping_counts;
static pthread_mutex_t ping_lock = PTHREAD_MUTEX_INITIALIZER;

unsigned long weir_up_count_ping_close(const char *url)
{
    pthread_mutex_lock(&ping_lock);
    struct ping_count *pc = ping_counts;
    while (pc && strcmp(pc->url, url) != 0)
        pc = pc->next;
    if (!pc && (pc = calloc(1, sizeof *pc + strlen(url) + 1))) {
        strcpy(pc->url, url);
        pc->next = ping_counts;
        ping_counts = pc;
    }
    unsigned long n = pc ? ++pc->n : 0;
    pthread_mutex_unlock(&ping_lock);
    return n;
}
