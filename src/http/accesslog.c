/* Access log in Traefik's common (CLF-like) and JSON formats. Each worker
 * formats into its own buffer and writes whole lines with one write(2),
 * either at once or every accessLog.bufferingSize lines. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/conn.h"

static int ensure(weir_worker_t *w, size_t n)
{
    if (w->alog_len + n <= w->alog_cap)
        return 0;
    size_t cap = w->alog_cap ? w->alog_cap : 4096;
    while (cap < w->alog_len + n)
        cap *= 2;
    char *p = realloc(w->alog, cap);
    if (!p)
        return -1;
    w->alog = p;
    w->alog_cap = cap;
    return 0;
}

static void add(weir_worker_t *w, const char *p, size_t n)
{
    if (ensure(w, n) == 0) {
        memcpy(w->alog + w->alog_len, p, n);
        w->alog_len += n;
    }
}

static void addf(weir_worker_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(weir_worker_t *w, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        add(w, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string (quotes included); control bytes and quotes escaped. */
static void add_json_str(weir_worker_t *w, weir_slice_t s)
{
    add(w, "\"", 1);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            add(w, e, 2);
        } else if (ch < 0x20 || ch == 0x7f) {
            addf(w, "\\u%04x", ch);
        } else {
            add(w, (const char *)&ch, 1);
        }
    }
    add(w, "\"", 1);
}

/* A value inside double quotes in the common format: quotes escaped. */
static void add_quoted(weir_worker_t *w, weir_slice_t s)
{
    add(w, "\"", 1);
    if (!s.len)
        add(w, "-", 1);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (ch == '"' || ch < 0x20 || ch == 0x7f)
            addf(w, "\\x%02x", ch);
        else
            add(w, (const char *)&ch, 1);
    }
    add(w, "\"", 1);
}

void weir_accesslog_flush(weir_worker_t *w)
{
    size_t off = 0;
    while (off < w->alog_len) {
        ssize_t n = write(weir_server.access_fd, w->alog + off, w->alog_len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    w->alog_len = 0;
    w->alog_lines = 0;
}

void weir_accesslog_write(weir_req_t *r)
{
    weir_worker_t *w = r->conn->worker;
    if (weir_server.access_fd < 0 || !r->view)
        return;
    bool meta = r->meta != NULL;
    weir_slice_t method = meta ? r->m_method : r->h1.method;
    weir_slice_t path = meta ? r->m_path : r->h1.path;
    weir_slice_t host = meta ? r->m_host : (r->h1.authority.len ? r->h1.authority : r->h1.host);
    weir_slice_t referer = meta ? r->m_referer : WEIR_SLICE_NULL;
    weir_slice_t ua = meta ? r->m_ua : WEIR_SLICE_NULL;
    if (!meta) {
        for (size_t i = 0; i < r->h1.num_headers; i++) {
            if (weir_slice_ieq_cstr(r->h1.headers[i].name, "referer"))
                referer = r->h1.headers[i].value;
            else if (weir_slice_ieq_cstr(r->h1.headers[i].name, "user-agent"))
                ua = r->h1.headers[i].value;
        }
    }
    char ip[INET6_ADDRSTRLEN] = "-";
    unsigned port = 0;
    const weir_addr_t *a = &r->conn->peer;
    if (a->sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof ip);
        port = ntohs(a->in6.sin6_port);
    } else {
        inet_ntop(AF_INET, &a->in.sin_addr, ip, sizeof ip);
        port = ntohs(a->in.sin_port);
    }
    int64_t now_us = weir_loop_wall_us(w->loop);
    int64_t start_us = r->start_us ? r->start_us : now_us;
    int64_t dur_us = now_us - start_us;
    time_t secs = (time_t)(start_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char proto[16];
    snprintf(proto, sizeof proto, "%s",
             r->h3s ? "HTTP/3.0" : r->h2s ? "HTTP/2.0" : r->h1.minor == 0 ? "HTTP/1.0" : "HTTP/1.1");
    const char *router = r->route ? r->route->full_name : "-";
    const char *service = r->service ? r->service->full_name : "-";
    const char *url = r->server >= 0 ? r->view->snap->servers[r->server]->url : "-";
    const weir_entrypoint_cfg_t *ep = &r->view->snap->cfg->entrypoints[r->conn->ep];

    if (weir_server.access_json) {
        char ts[40];
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        addf(w, "{\"ClientAddr\":\"%s:%u\",\"ClientHost\":\"%s\",\"ClientPort\":\"%u\","
                "\"ClientUsername\":\"-\",\"DownstreamContentSize\":%llu,\"DownstreamStatus\":%d,"
                "\"Duration\":%lld,\"OriginStatus\":%d,",
             ip, port, ip, port, (unsigned long long)r->resp_bytes, r->status,
             (long long)dur_us * 1000, r->origin_status);
        add(w, "\"RequestHost\":", 14);
        add_json_str(w, host);
        add(w, ",\"RequestMethod\":", 17);
        add_json_str(w, method);
        add(w, ",\"RequestPath\":", 15);
        add_json_str(w, path);
        addf(w, ",\"RequestProtocol\":\"%s\",\"RequestScheme\":\"%s\",\"RequestCount\":%u,"
                "\"RetryAttempts\":%d,\"RouterName\":\"%s\",\"ServiceName\":\"%s\","
                "\"ServiceURL\":\"%s\",\"entryPointName\":\"%s\",\"StartUTC\":\"%s.%06lldZ\","
                "\"level\":\"info\",\"msg\":\"\"}\n",
             proto, r->conn->is_tls ? "https" : "http", r->conn->requests + 1, r->retried, router, service, url, ep->name, ts,
             (long long)(start_us % 1000000));
    } else {
        char ts[40];
        strftime(ts, sizeof ts, "%d/%b/%Y:%H:%M:%S +0000", &tm);
        addf(w, "%s - - [%s] \"", ip, ts);
        add(w, method.ptr, method.len);
        add(w, " ", 1);
        add(w, path.ptr, path.len);
        addf(w, " %s\" %d %llu ", proto, r->status, (unsigned long long)r->resp_bytes);
        add_quoted(w, referer);
        add(w, " ", 1);
        add_quoted(w, ua);
        addf(w, " %u \"%s\" \"%s\" %lldms\n", r->conn->requests + 1, router, url,
             (long long)(dur_us / 1000));
    }
    if (++w->alog_lines >= weir_server.access_buffering || weir_server.access_buffering <= 1)
        weir_accesslog_flush(w);
}
