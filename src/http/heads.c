/* Generated message heads: the request head weir sends upstream (hop-by-hop
 * fields removed, forwarded headers set as Traefik sets them) and the
 * response head it sends to the client. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "http/conn.h"

static int put(weir_buf_t *b, const char *p, size_t n)
{
    return weir_buf_append(b, p, n);
}

static int puts_(weir_buf_t *b, const char *s)
{
    return put(b, s, strlen(s));
}

static int put_field(weir_buf_t *b, weir_slice_t name, weir_slice_t value)
{
    if (weir_buf_reserve(b, name.len + value.len + 4) < 0)
        return -1;
    char *p = weir_buf_tail(b);
    memcpy(p, name.ptr, name.len);
    p += name.len;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value.ptr, value.len);
    p += value.len;
    *p++ = '\r';
    *p++ = '\n';
    b->end = (uint32_t)(p - b->data);
    return 0;
}

/* The Connection field values of a message, gathered once so that each
 * field can be checked against their tokens (most messages have none). */
typedef struct {
    weir_slice_t lists[4];
    int n;
} conn_tokens_t;

static void gather_connection(const weir_header_t *h, size_t n, conn_tokens_t *ct)
{
    ct->n = 0;
    for (size_t i = 0; i < n && ct->n < 4; i++)
        if (h[i].name.len == 10 && weir_slice_ieq_cstr(h[i].name, "connection"))
            ct->lists[ct->n++] = h[i].value;
}

/* True when name is listed in a Connection field of the message. */
static bool connection_lists(const conn_tokens_t *ct, weir_slice_t name)
{
    for (int i = 0; i < ct->n; i++) {
        weir_slice_t list = ct->lists[i], tok;
        while (weir_h1_next_token(&list, &tok))
            if (weir_slice_ieq(tok, name))
                return true;
    }
    return false;
}

/* Dotted quad of 4 bytes (inet_ntop goes through sprintf: this runs for
 * every proxied request). */
static size_t format_ipv4(const uint8_t *b, char *out)
{
    char *p = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = '.';
    }
    p[-1] = '\0';
    return (size_t)(p - 1 - out);
}

/* Formats the client address without port ("1.2.3.4" or "::1"). */
static size_t client_ip(const weir_addr_t *a, char *out, size_t cap)
{
    if (a->sa.sa_family == AF_INET6) {
        const uint8_t *b = a->in6.sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, mapped, 12) == 0)
            return format_ipv4(b + 12, out);
        inet_ntop(AF_INET6, b, out, (socklen_t)cap);
        return strlen(out);
    }
    return format_ipv4((const uint8_t *)&a->in.sin_addr, out);
}

static bool peer_trusted(const weir_conn_t *c, const weir_entrypoint_cfg_t *ep)
{
    if (ep->fwd_insecure)
        return true;
    for (size_t i = 0; i < ep->num_fwd_trusted; i++)
        if (weir_cidr_contains(&ep->fwd_trusted[i], &c->peer.sa))
            return true;
    return false;
}

static bool is_forwarded_field(weir_slice_t n)
{
    static const char *const names[] = {
        "x-forwarded-for",  "x-forwarded-proto",  "x-forwarded-host",
        "x-forwarded-port", "x-forwarded-server", "x-real-ip",
        "x-forwarded-uri",  "x-forwarded-method", "x-forwarded-prefix",
        "x-forwarded-tls-client-cert", "x-forwarded-tls-client-cert-info"};
    if (n.len < 9 || (n.ptr[0] | 0x20) != 'x')
        return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (weir_slice_ieq_cstr(n, names[i]))
            return true;
    return false;
}

static weir_slice_t get(const weir_h1_request_t *h, const char *name)
{
    for (size_t i = 0; i < h->num_headers; i++)
        if (weir_slice_ieq_cstr(h->headers[i].name, name))
            return h->headers[i].value;
    return WEIR_SLICE_NULL;
}

/* Port of a Host value, or "" (IPv6 literals keep their colons inside []). */
static weir_slice_t host_port(weir_slice_t host)
{
    for (size_t i = host.len; i > 0; i--) {
        char ch = host.ptr[i - 1];
        if (ch == ':')
            return weir_slice(host.ptr + i, host.len - i);
        if (ch == ']' || ch < '0' || ch > '9')
            break;
    }
    return WEIR_SLICE_NULL;
}

int weir_build_upstream_head(weir_req_t *r, const weir_server_cfg_t *srv, int pass_host)
{
    weir_conn_t *c = r->conn;
    const weir_h1_request_t *h = &r->h1;
    const weir_entrypoint_cfg_t *ep = &r->view->snap->cfg->entrypoints[c->ep];
    weir_buf_t *b = &r->uphead;
    bool trusted = peer_trusted(c, ep);
    weir_slice_t host = h->authority.len ? h->authority : h->host;
    char ip[INET6_ADDRSTRLEN];
    size_t iplen = client_ip(&c->peer, ip, sizeof ip);

    if (weir_buf_reserve(b, h->head_len + 512) < 0)
        return -1;
    put(b, h->method.ptr, h->method.len);
    put(b, " ", 1);
    put(b, h->path.ptr, h->path.len);
    puts_(b, " HTTP/1.1\r\nHost: ");
    if (pass_host && host.len)
        put(b, host.ptr, host.len);
    else
        puts_(b, srv->authority);
    puts_(b, "\r\n");

    weir_slice_t xff = WEIR_SLICE_NULL, xproto = WEIR_SLICE_NULL, xhost = WEIR_SLICE_NULL,
                 xport = WEIR_SLICE_NULL, xreal = WEIR_SLICE_NULL;
    bool te_trailers = false;
    conn_tokens_t ct;
    gather_connection(h->headers, h->num_headers, &ct);
    for (size_t i = 0; i < h->num_headers; i++) {
        weir_slice_t n = h->headers[i].name, v = h->headers[i].value;
        if (weir_slice_ieq_cstr(n, "host") || weir_slice_ieq_cstr(n, "expect"))
            continue;
        if (weir_slice_ieq_cstr(n, "te")) {
            te_trailers = te_trailers || weir_h1_list_has(v, "trailers");
            continue;
        }
        if (weir_h1_is_hop_by_hop(n) || connection_lists(&ct, n))
            continue;
        if (is_forwarded_field(n)) {
            if (!trusted)
                continue; /* untrusted peers cannot set these */
            if (weir_slice_ieq_cstr(n, "x-forwarded-for")) {
                /* Joined below, every field in order (as Go's proxy does). */
                xff = v;
                continue;
            }
            if (weir_slice_ieq_cstr(n, "x-forwarded-proto"))
                xproto = v;
            else if (weir_slice_ieq_cstr(n, "x-forwarded-host"))
                xhost = v;
            else if (weir_slice_ieq_cstr(n, "x-forwarded-port"))
                xport = v;
            else if (weir_slice_ieq_cstr(n, "x-real-ip"))
                xreal = v;
            else if (weir_slice_ieq_cstr(n, "x-forwarded-server"))
                continue; /* always ours */
            if (v.len == 0)
                continue;
        }
        put_field(b, n, v);
    }
    if (te_trailers)
        puts_(b, "Te: trailers\r\n");
    if (r->upgrade) {
        puts_(b, "Connection: Upgrade\r\n");
        put_field(b, WEIR_SLICE_LIT("Upgrade"), get(h, "upgrade"));
    }
    if (r->reqbody.kind == WEIR_BODY_CHUNKED)
        puts_(b, "Transfer-Encoding: chunked\r\n");

    /* X-Forwarded-For: the trusted incoming list, then the client. */
    puts_(b, "X-Forwarded-For: ");
    for (size_t i = 0; xff.ptr && i < h->num_headers; i++) {
        weir_slice_t n = h->headers[i].name, v = h->headers[i].value;
        if (v.len && weir_slice_ieq_cstr(n, "x-forwarded-for") && !connection_lists(&ct, n)) {
            put(b, v.ptr, v.len);
            puts_(b, ", ");
        }
    }
    put(b, ip, iplen);
    puts_(b, "\r\n");
    if (!xproto.len) {
        bool ws = r->upgrade && weir_h1_list_has(get(h, "upgrade"), "websocket");
        put_field(b, WEIR_SLICE_LIT("X-Forwarded-Proto"),
                  c->is_tls ? (ws ? WEIR_SLICE_LIT("wss") : WEIR_SLICE_LIT("https"))
                            : (ws ? WEIR_SLICE_LIT("ws") : WEIR_SLICE_LIT("http")));
    }
    if (!xhost.len && host.len)
        put_field(b, WEIR_SLICE_LIT("X-Forwarded-Host"), host);
    if (!xport.len) {
        weir_slice_t p = host_port(host);
        put_field(b, WEIR_SLICE_LIT("X-Forwarded-Port"), p.len ? p : c->is_tls ? WEIR_SLICE_LIT("443") : WEIR_SLICE_LIT("80"));
    }
    put_field(b, WEIR_SLICE_LIT("X-Forwarded-Server"), weir_slice_cstr(weir_server.hostname));
    if (!xreal.len)
        put_field(b, WEIR_SLICE_LIT("X-Real-Ip"), weir_slice(ip, iplen));
    return puts_(b, "\r\n");
}

/* ---- Alt-Svc (HTTP/3 advertisement) ---- */

bool weir_alt_svc_wanted(const weir_req_t *r)
{
    const weir_conn_t *c = r->conn;
    if (!c->is_tls || r->h3s || !r->view)
        return false;
    const weir_entrypoint_cfg_t *ep = &r->view->snap->cfg->entrypoints[c->ep];
    if (!ep->http3)
        return false;
    return !r->route || r->route->cfg->advertise_http3;
}

static size_t alt_svc_own(const weir_req_t *r, char *buf, size_t cap)
{
    const weir_entrypoint_cfg_t *ep = &r->view->snap->cfg->entrypoints[r->conn->ep];
    int port = ep->h3_advertised_port;
    if (port == 0)
        port = ntohs(((const struct sockaddr_in *)&ep->addr)->sin_port); /* same offset in sin6 */
    int n = snprintf(buf, cap, "h3=\":%d\"; ma=%lld", port, (long long)ep->h3_alt_svc_max_age);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Whether one alternative of an Alt-Svc list is weir's to give: HTTP/3
 * ("h3", drafts "h3-NN"), or "clear" (which cannot stand beside ours). */
static bool alt_is_ours(weir_slice_t alt)
{
    size_t id = 0;
    while (id < alt.len && alt.ptr[id] != '=' && alt.ptr[id] != ';' && alt.ptr[id] != ' ')
        id++;
    weir_slice_t proto = weir_slice(alt.ptr, id);
    return weir_slice_eq(proto, WEIR_SLICE_LIT("h3")) ||
           (proto.len > 3 && memcmp(proto.ptr, "h3-", 3) == 0) ||
           weir_slice_ieq_cstr(proto, "clear");
}

size_t weir_alt_svc_keep(weir_slice_t v, char *buf, size_t at, size_t cap)
{
    size_t i = 0;
    while (i < v.len) {
        size_t start = i;
        bool quoted = false;
        for (; i < v.len && (quoted || v.ptr[i] != ','); i++) {
            if (v.ptr[i] == '"')
                quoted = !quoted;
            else if (quoted && v.ptr[i] == '\\' && i + 1 < v.len)
                i++;
        }
        weir_slice_t alt = weir_slice_trim(weir_slice(v.ptr + start, i - start));
        i++; /* the comma */
        if (!alt.len || alt_is_ours(alt) || at + alt.len + 2 >= cap)
            continue;
        memcpy(buf + at, ", ", 2);
        memcpy(buf + at + 2, alt.ptr, alt.len);
        at += alt.len + 2;
    }
    return at;
}

size_t weir_alt_svc_value(const weir_req_t *r, const weir_header_t *h, size_t n, char *buf,
                          size_t cap)
{
    if (!weir_alt_svc_wanted(r))
        return 0;
    size_t len = alt_svc_own(r, buf, cap);
    if (!len)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (weir_slice_ieq_cstr(h[i].name, "alt-svc"))
            len = weir_alt_svc_keep(h[i].value, buf, len, cap);
    return len;
}

int weir_put_alt_svc(const weir_req_t *r, weir_buf_t *b)
{
    char v[64];
    size_t n = weir_alt_svc_value(r, NULL, 0, v, sizeof v);
    return n ? put_field(b, WEIR_SLICE_LIT("Alt-Svc"), weir_slice(v, n)) : 0;
}

int weir_build_client_head(weir_req_t *r)
{
    weir_buf_t *b = &r->out;
    const weir_h1_response_t *resp = &r->resp;
    if (weir_buf_reserve(b, resp->head_len + 128) < 0)
        return -1;
    char line[13] = "HTTP/1.1 000 ";
    int st = resp->status;
    line[9] = (char)('0' + st / 100 % 10);
    line[10] = (char)('0' + st / 10 % 10);
    line[11] = (char)('0' + st % 10);
    put(b, line, sizeof line);
    put(b, resp->reason.ptr, resp->reason.len);
    puts_(b, "\r\n");
    conn_tokens_t ct;
    gather_connection(resp->headers, resp->num_headers, &ct);
    char alt[1024];
    size_t alt_len = weir_alt_svc_value(r, resp->headers, resp->num_headers, alt, sizeof alt);
    if (alt_len)
        put_field(b, WEIR_SLICE_LIT("Alt-Svc"), weir_slice(alt, alt_len));
    for (size_t i = 0; i < resp->num_headers; i++) {
        weir_slice_t name = resp->headers[i].name;
        if (weir_h1_is_hop_by_hop(name) || connection_lists(&ct, name))
            continue;
        if (r->respbody.decode && weir_slice_ieq_cstr(name, "content-length"))
            continue;
        if (alt_len && weir_slice_ieq_cstr(name, "alt-svc"))
            continue;
        put_field(b, name, resp->headers[i].value);
    }
    if (resp->status == 101) {
        puts_(b, "Connection: Upgrade\r\n");
        for (size_t i = 0; i < resp->num_headers; i++)
            if (weir_slice_ieq_cstr(resp->headers[i].name, "upgrade"))
                put_field(b, resp->headers[i].name, resp->headers[i].value);
        return puts_(b, "\r\n");
    }
    if (r->respbody.kind == WEIR_BODY_CHUNKED && !r->respbody.decode)
        puts_(b, "Transfer-Encoding: chunked\r\n");
    bool keep = !r->close_after && r->conn->keep_alive && r->h1.keep_alive &&
                !r->conn->worker->draining;
    if (!keep) {
        r->close_after = 1;
        puts_(b, "Connection: close\r\n");
    } else if (r->h1.minor == 0) {
        puts_(b, "Connection: keep-alive\r\n");
    }
    return puts_(b, "\r\n");
}
