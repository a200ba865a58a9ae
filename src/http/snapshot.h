/* Configuration snapshots: the immutable, reference-counted runtime form of
 * a loaded configuration (router tables per entry point, services resolved
 * to servers). Built on the control thread beside the serving one; workers
 * switch to a new snapshot between loop iterations and keep the old one
 * alive while their requests that started on it are in flight.
 */
#ifndef WEIR_HTTP_SNAPSHOT_H
#define WEIR_HTTP_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config/config.h"
#include "rules/rules.h"
#include "tls/tls.h"

typedef struct weir_snapshot weir_snapshot_t;
typedef struct weir_service_rt weir_service_rt_t;

typedef enum { WEIR_INTERNAL_NONE, WEIR_INTERNAL_WHOAMI, WEIR_INTERNAL_NOOP } weir_internal_kind_t;

typedef struct {
    const weir_router_cfg_t *cfg;
    char *full_name; /* "<name>@file" as Traefik logs it */
    weir_service_rt_t *service;
} weir_route_t;

struct weir_service_rt {
    const weir_service_cfg_t *cfg;
    char *full_name;            /* "<name>@file" or "whoami@internal" */
    weir_internal_kind_t internal;
    const weir_servers_transport_cfg_t *transport;
    /* loadBalancer: servers are snapshot-wide server ids server_base..+n */
    int server_base;
    int num_servers;
    /* weighted: children */
    weir_service_rt_t **children;
    int *child_weights;
    int num_children;
    /* index of this service's weighted-round-robin state in a worker view */
    int wrr_base;
    int wrr_len;
};

/* TCP (src/l4): services balance connections over addresses; routes are
 * matched on the ClientHello's SNI and ALPN and the client address. */
typedef struct weir_tcp_service_rt weir_tcp_service_rt_t;
struct weir_tcp_service_rt {
    const weir_tcp_service_cfg_t *cfg;
    const weir_tcp_transport_cfg_t *transport;
    int proxy_protocol;           /* 0, 1 or 2: the transport's, else the older service key */
    int64_t termination_delay_ms; /* the service's older key, else the transport's */
    weir_tcp_service_rt_t **children; /* weighted */
    int *child_weights;
    int total_weight;
    atomic_uint next; /* round robin position, shared by the workers */
};

/* A TCP middleware; inFlightConn counts open connections per client
 * address for the whole process (a mutex-protected table). */
typedef struct {
    const weir_tcp_middleware_cfg_t *cfg;
    pthread_mutex_t mu;
    struct weir_inflight_slot *slots; /* open addressing; count 0 = free */
    size_t mask, used;
} weir_tcp_mw_rt_t;

typedef struct {
    const weir_router_cfg_t *cfg;
    char *full_name;
    weir_tcp_service_rt_t *service;
    weir_tcp_mw_rt_t **mws; /* in the router's order */
    size_t num_mws;
    bool catch_all; /* no HostSNI other than `*`: tried after the HTTPS routers */
} weir_tcp_route_t;

/* Per entry point: the TCP routers and what the HTTPS routers claim. */
typedef struct {
    weir_router_table_t *tls;   /* TCP routers with tls (passthrough) */
    weir_router_table_t *plain; /* TCP routers without tls */
    weir_slice_t *https_hosts;  /* hosts of the HTTP routers with TLS (owned by their rules) */
    size_t num_https_hosts;
    bool https_any;       /* an HTTP router with TLS and no Host: every SNI is HTTPS's */
    bool https;           /* any HTTP router with TLS */
    bool http_plain;      /* any HTTP router without TLS */
} weir_tcp_ep_t;

struct weir_snapshot {
    atomic_int refs;
    uint64_t generation;
    weir_config_t *cfg;
    weir_router_table_t **tables; /* plain connections: one per entry point (cfg order) */
    weir_router_table_t **tls_tables; /* TLS connections: routers with tls */
    weir_tls_ctx_t *tls;          /* certificates and TLS options (owned reference) */
    weir_route_t *routes;
    size_t num_routes;
    weir_service_rt_t *services;
    size_t num_services;
    const weir_server_cfg_t **servers; /* every server of every service */
    const weir_service_rt_t **server_service; /* owner of each server */
    int num_servers;
    int wrr_total;
    weir_tcp_service_rt_t *tcp_services;
    weir_tcp_route_t *tcp_routes;
    weir_tcp_ep_t *tcp_eps; /* one per entry point */
    weir_tcp_mw_rt_t *tcp_mws;
    weir_tcp_service_rt_t *udp_services;
    weir_tcp_service_rt_t **udp_ep_service; /* per entry point: its catch-all UDP router's
                                             * service (no rule, or HostSNI(`*`)) */
    weir_tcp_route_t *udp_routes;           /* one per UDP router (cfg order) */
    weir_router_table_t **udp_tables;       /* per entry point: UDP routers with rules (QUIC
                                             * by SNI, ALPN, client address); NULL: none */
};

/* Builds a snapshot that takes ownership of cfg and of the reference tls.
 * Returns NULL on ENOMEM (cfg and tls are released then). */
weir_snapshot_t *weir_snapshot_build(weir_config_t *cfg, weir_tls_ctx_t *tls, uint64_t generation);

void weir_snapshot_ref(weir_snapshot_t *s);
void weir_snapshot_unref(weir_snapshot_t *s);

#endif
