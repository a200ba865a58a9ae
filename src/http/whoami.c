/* whoami@internal: answers with what it saw, like Traefik's whoami: the
 * host name, the addresses, then the request line and header fields. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "http/conn.h"

static void put_addr(weir_buf_t *b, const char *label, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        port = ntohs(s6->sin6_port);
        char line[128];
        int n = snprintf(line, sizeof line, "%s[%s]:%u\n", label, ip, port);
        weir_buf_append(b, line, (size_t)n);
        return;
    }
    const struct sockaddr_in *s4 = (const void *)sa;
    inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
    port = ntohs(s4->sin_port);
    char line[128];
    int n = snprintf(line, sizeof line, "%s%s:%u\n", label, ip, port);
    weir_buf_append(b, line, (size_t)n);
}

void weir_whoami_respond(weir_req_t *r)
{
    weir_conn_t *c = r->conn;
    const weir_h1_request_t *h = &r->h1;
    weir_buf_t body = {0};
    char line[512];
    int n = snprintf(line, sizeof line, "Hostname: %s\n", weir_server.hostname);
    weir_buf_append(&body, line, (size_t)n);
    weir_addr_t local;
    socklen_t llen = sizeof local;
    if (getsockname(c->io.fd, &local.sa, &llen) == 0) {
        char ip[INET6_ADDRSTRLEN];
        const void *a = local.sa.sa_family == AF_INET6 ? (const void *)&local.in6.sin6_addr
                                                       : (const void *)&local.in.sin_addr;
        inet_ntop(local.sa.sa_family, a, ip, sizeof ip);
        n = snprintf(line, sizeof line, "IP: %s\n", ip);
        weir_buf_append(&body, line, (size_t)n);
    }
    put_addr(&body, "RemoteAddr: ", &c->peer.sa);
    weir_buf_append(&body, h->method.ptr, h->method.len);
    weir_buf_append(&body, " ", 1);
    weir_buf_append(&body, h->target.ptr, h->target.len);
    n = r->h3s   ? snprintf(line, sizeof line, " HTTP/3.0\n")
        : r->h2s ? snprintf(line, sizeof line, " HTTP/2.0\n")
                 : snprintf(line, sizeof line, " HTTP/1.%d\n", h->minor);
    weir_buf_append(&body, line, (size_t)n);
    if (h->host.len) {
        weir_buf_append(&body, "Host: ", 6);
        weir_buf_append(&body, h->host.ptr, h->host.len);
        weir_buf_append(&body, "\n", 1);
    }
    for (size_t i = 0; i < h->num_headers; i++) {
        if (weir_slice_ieq_cstr(h->headers[i].name, "host"))
            continue;
        weir_buf_append(&body, h->headers[i].name.ptr, h->headers[i].name.len);
        weir_buf_append(&body, ": ", 2);
        weir_buf_append(&body, h->headers[i].value.ptr, h->headers[i].value.len);
        weir_buf_append(&body, "\n", 1);
    }
    /* The request body is not read: a request that has one ends the
     * connection after the answer, so its bytes are never taken as a head. */
    if (!weir_body_done(&r->reqbody))
        r->close_after = 1;
    int keep = !r->close_after && c->keep_alive && h->keep_alive && !c->worker->draining;
    n = snprintf(line, sizeof line,
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Length: %zu\r\n%s",
                 weir_buf_len(&body), keep ? (h->minor == 0 ? "Connection: keep-alive\r\n" : "")
                                           : "Connection: close\r\n");
    if (!keep)
        r->close_after = 1;
    weir_buf_append(&r->out, line, (size_t)n);
    weir_put_alt_svc(r, &r->out);
    weir_buf_append(&r->out, "\r\n", 2);
    if (!r->head_method)
        weir_buf_append(&r->out, weir_buf_head(&body), weir_buf_len(&body));
    r->status = 200;
    r->resp_bytes = r->head_method ? 0 : weir_buf_len(&body);
    weir_buf_release(&body);
    weir_req_keep_meta(r);
    r->internal_done = 1;
    /* conn_on_io/finish_generated write r->out and finish the request. */
    weir_conn_flush_generated(r);
}
