/* udpload: a UDP echo server and load generator, for
 * bench/quic-passthrough.sh (datagrams per second and round-trip latency
 * through a UDP relay: weir's QUIC passthrough, socat, or none).
 *
 *   udpload echo [-t SECONDS] PORT
 *   udpload load [-f FLOWS] [-w WINDOW] [-t SECONDS] [-s SIZE] [-i FILE] PORT
 *   udpload ping [-n COUNT] [-t SECONDS] [-s SIZE] [-i FILE] PORT
 *
 * Only 127.0.0.1 is used; PORT is where the datagrams go (the echo server's
 * port, or a relay's).
 *
 * echo: answers every datagram on 127.0.0.1:PORT with the same bytes, to
 * its sender, recvmmsg/sendmmsg 64 at a time; exits after SECONDS (default
 * 3600) or on SIGTERM/SIGINT, printing the datagrams it echoed.
 *
 * load: FLOWS (default 8) connected client sockets, each with at most
 * WINDOW (default 8) datagrams of SIZE (default 1200) bytes outstanding,
 * for SECONDS (default 5). Each datagram starts like a QUIC short header
 * (0x40 and 8 bytes of a per-run tag), then its flow number, sequence
 * number and send time; an echo must come back on the flow that sent it
 * with the run's tag ("bad" counts those that do not). Outstanding
 * datagrams with no echo for 100 ms are written off as lost (the window
 * opens again). After SECONDS, 200 ms more for late echoes. Prints one
 * line of key=value: rate (echoes received per second during SECONDS),
 * sent, echoed, lost (sent minus every echo received), bad, and the
 * median and 99th percentile round trip under load (µs).
 *
 * ping: one datagram of SIZE at a time, COUNT times (default 2000, after
 * 100 unrecorded warm-up ones), waiting up to 200 ms for each echo, within
 * SECONDS (default 30) in all. Prints n, lost, min, median, p99 and max of
 * the round trips (µs).
 *
 * -i FILE: QUIC Initials (records of a 2-byte big-endian length and the
 * packet), one per flow (ping uses the first): before the measured part,
 * each flow sends its Initial alone and waits for it to come back (three
 * tries, 300 ms each), so that a relay routing QUIC by SNI admits the flow
 * the way it admits a real client; a flow whose Initial never returns is
 * an error (exit 1). `ping -n 0 -i FILE` only does that: exit 0 when the
 * Initial came back ("admitted"), 1 when not.
 *
 * One thread, nonblocking sockets, epoll; every loop is bounded in time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_SIZE 65507
#define MAX_FLOWS 4096
#define HDR 29 /* 0x40, tag[8], flow u32, seq u64, sent ns u64 */
#define LOST_NS 100000000ull
#define HIST_US 200000 /* round-trip histogram: 1 µs buckets up to 200 ms */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void bufsize(int fd, int bytes)
{
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

/* A nonblocking UDP socket connected to 127.0.0.1:port, or -1. */
static int client_socket(int port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = loopback(port);
    if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof to) < 0) {
        perror("udpload: socket");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    bufsize(fd, 1 << 20);
    return fd;
}

/* ---- options ---- */

static struct {
    int flows, window, size, count, port;
    double seconds;
    const char *initials;
} opt = {.flows = 8, .window = 8, .size = 1200, .count = 2000};

static void usage(void)
{
    fprintf(stderr,
            "usage: udpload echo [-t SECONDS] PORT\n"
            "       udpload load [-f FLOWS] [-w WINDOW] [-t SECONDS] [-s SIZE] [-i FILE] PORT\n"
            "       udpload ping [-n COUNT] [-t SECONDS] [-s SIZE] [-i FILE] PORT\n");
    exit(2);
}

static long num(const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, "udpload: %s: expected a number in %ld..%ld\n", s, lo, hi);
        exit(2);
    }
    return v;
}

static void parse(int argc, char **argv, double default_seconds)
{
    opt.seconds = default_seconds;
    int i = 2;
    for (; i + 1 < argc && argv[i][0] == '-' && argv[i][1] && !argv[i][2]; i += 2) {
        const char *v = argv[i + 1];
        switch (argv[i][1]) {
        case 'f': opt.flows = (int)num(v, 1, MAX_FLOWS); break;
        case 'w': opt.window = (int)num(v, 1, 4096); break;
        case 's': opt.size = (int)num(v, HDR, MAX_SIZE); break;
        case 'n': opt.count = (int)num(v, 0, 10000000); break;
        case 't': opt.seconds = (double)num(v, 1, 86400); break;
        case 'i': opt.initials = v; break;
        default: usage();
        }
    }
    if (i + 1 != argc)
        usage();
    opt.port = (int)num(argv[i], 1, 65535);
}

/* ---- Initials ---- */

typedef struct {
    uint8_t *data;
    size_t len;
} pkt_t;

static pkt_t *initials;
static size_t ninitials;

static void load_initials(size_t need)
{
    if (!opt.initials)
        return;
    FILE *f = fopen(opt.initials, "rb");
    if (!f) {
        perror(opt.initials);
        exit(1);
    }
    uint8_t lb[2];
    while (fread(lb, 1, 2, f) == 2) {
        size_t len = (size_t)lb[0] << 8 | lb[1];
        pkt_t *p = realloc(initials, (ninitials + 1) * sizeof *p);
        uint8_t *d = malloc(len ? len : 1);
        if (!p || !d || fread(d, 1, len, f) != len) {
            fprintf(stderr, "udpload: %s: truncated\n", opt.initials);
            exit(1);
        }
        initials = p;
        initials[ninitials++] = (pkt_t){d, len};
    }
    fclose(f);
    if (ninitials < need) {
        fprintf(stderr, "udpload: %s: %zu Initials for %zu flows\n", opt.initials, ninitials, need);
        exit(1);
    }
}

static void free_initials(void)
{
    for (size_t i = 0; i < ninitials; i++)
        free(initials[i].data);
    free(initials);
    initials = NULL;
    ninitials = 0;
}

/* Sends Initial k on fd until it comes back whole (3 tries of 300 ms). */
static bool admit(int fd, size_t k)
{
    static uint8_t buf[MAX_SIZE + 1];
    const pkt_t *p = &initials[k];
    for (int attempt = 0; attempt < 3; attempt++) {
        if (send(fd, p->data, p->len, 0) < 0)
            continue;
        uint64_t deadline = now_ns() + 300000000ull;
        for (uint64_t t = now_ns(); t < deadline; t = now_ns()) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (poll(&pfd, 1, (int)((deadline - t) / 1000000 + 1)) <= 0)
                continue;
            ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n == (ssize_t)p->len && memcmp(buf, p->data, p->len) == 0)
                return true;
        }
    }
    return false;
}

/* ---- echo ---- */

static int run_echo(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = loopback(opt.port);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("udpload echo: bind");
        return 1;
    }
    bufsize(fd, 4 << 20);
    static uint8_t bufs[BATCH][MAX_SIZE];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in from[BATCH];
    uint64_t echoed = 0, end = now_ns() + (uint64_t)(opt.seconds * 1e9);
    while (!stop && now_ns() < end) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 500) <= 0)
            continue;
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){bufs[i], MAX_SIZE};
            msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &from[i],
                                                   .msg_namelen = sizeof from[i],
                                                   .msg_iov = &iov[i],
                                                   .msg_iovlen = 1}};
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            continue;
        for (int i = 0; i < n; i++)
            iov[i].iov_len = msgs[i].msg_len;
        for (int done = 0, tries = 0; done < n && tries < 100; tries++) {
            int k = sendmmsg(fd, msgs + done, (unsigned)(n - done), MSG_DONTWAIT);
            if (k > 0)
                done += k;
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                done++; /* e.g. the sender is gone (ICMP): skip that datagram */
        }
        echoed += (uint64_t)n;
    }
    printf("echo: echoed=%llu\n", (unsigned long long)echoed);
    return 0;
}

/* ---- load ---- */

typedef struct {
    int fd;
    uint64_t seq, echoed, last_progress;
    int64_t inflight;
} lflow_t;

static uint32_t hist[HIST_US + 1];

static void hist_add(uint64_t ns)
{
    uint64_t us = ns / 1000;
    hist[us > HIST_US ? HIST_US : us]++;
}

static double hist_pct(double q)
{
    uint64_t total = 0, acc = 0;
    for (int i = 0; i <= HIST_US; i++)
        total += hist[i];
    if (!total)
        return 0;
    uint64_t want = (uint64_t)(q * (double)total);
    if (want >= total)
        want = total - 1;
    for (int i = 0; i <= HIST_US; i++) {
        acc += hist[i];
        if (acc > want)
            return i;
    }
    return HIST_US;
}

static int run_load(void)
{
    load_initials((size_t)opt.flows);
    lflow_t *fl = calloc((size_t)opt.flows, sizeof *fl);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!fl || ep < 0) {
        perror("udpload load");
        return 1;
    }
    uint8_t tag[8];
    uint64_t seed = now_ns() ^ (uint64_t)getpid() << 32;
    for (int i = 0; i < 8; i++, seed = seed * 6364136223846793005ull + 1442695040888963407ull)
        tag[i] = (uint8_t)(seed >> 56);
    for (int i = 0; i < opt.flows; i++) {
        if ((fl[i].fd = client_socket(opt.port)) < 0)
            return 1;
        if (initials && !admit(fl[i].fd, (size_t)i)) {
            fprintf(stderr, "udpload load: flow %d: its Initial did not come back\n", i);
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fl[i].fd, &ev);
    }
    static uint8_t out[BATCH][MAX_SIZE], in[BATCH][MAX_SIZE];
    for (int b = 0; b < BATCH; b++) {
        memset(out[b], 0x5a, (size_t)opt.size);
        out[b][0] = 0x40;
        memcpy(out[b] + 1, tag, 8);
    }
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct epoll_event evs[256];
    uint64_t sent = 0, echoed = 0, in_time = 0, bad = 0, written_off = 0;
    uint64_t start = now_ns(), end = start + (uint64_t)(opt.seconds * 1e9);
    uint64_t drain_end = end + 200000000ull, next_check = start + 10000000ull;
    for (int i = 0; i < opt.flows; i++)
        fl[i].last_progress = start;
    for (uint64_t t = start; t < drain_end && !stop; t = now_ns()) {
        bool sending = t < end;
        for (int i = 0; sending && i < opt.flows; i++) {
            lflow_t *f = &fl[i];
            int want = opt.window - (int)f->inflight;
            if (want <= 0)
                continue;
            if (want > BATCH)
                want = BATCH;
            uint64_t ts = now_ns();
            for (int b = 0; b < want; b++) {
                put32(out[b] + 9, (uint32_t)i);
                put64(out[b] + 13, f->seq + (uint64_t)b);
                put64(out[b] + 21, ts);
                iov[b] = (struct iovec){out[b], (size_t)opt.size};
                msgs[b] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[b], .msg_iovlen = 1}};
            }
            int k = sendmmsg(f->fd, msgs, (unsigned)want, MSG_DONTWAIT);
            if (k > 0) {
                f->seq += (uint64_t)k;
                f->inflight += k;
                sent += (uint64_t)k;
            }
        }
        int nev = epoll_wait(ep, evs, 256, 1);
        for (int e = 0; e < nev; e++) {
            lflow_t *f = &fl[evs[e].data.u32];
            for (int round = 0; round < 64; round++) {
                for (int b = 0; b < BATCH; b++) {
                    iov[b] = (struct iovec){in[b], MAX_SIZE};
                    msgs[b] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[b], .msg_iovlen = 1}};
                }
                int n = recvmmsg(f->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
                if (n <= 0)
                    break;
                uint64_t rt = now_ns();
                for (int b = 0; b < n; b++) {
                    const uint8_t *d = in[b];
                    if (msgs[b].msg_len != (unsigned)opt.size || d[0] != 0x40 ||
                        memcmp(d + 1, tag, 8) != 0 || get32(d + 9) != evs[e].data.u32 ||
                        get64(d + 13) >= f->seq) {
                        bad++;
                        continue;
                    }
                    echoed++;
                    f->echoed++;
                    if (rt < end)
                        in_time++;
                    if (f->inflight > 0)
                        f->inflight--;
                    hist_add(rt - get64(d + 21));
                }
                f->last_progress = rt;
                if (n < BATCH)
                    break;
            }
        }
        uint64_t tc = now_ns(); /* not t: the echoes just read may be newer than t */
        if (tc >= next_check) {
            next_check = tc + 10000000ull;
            for (int i = 0; i < opt.flows; i++)
                if (fl[i].inflight > 0 && tc > fl[i].last_progress + LOST_NS) {
                    written_off += (uint64_t)fl[i].inflight;
                    fl[i].inflight = 0;
                    fl[i].last_progress = tc;
                }
        }
    }
    double secs = (double)(end - start) / 1e9;
    printf("load: flows=%d window=%d size=%d secs=%.2f rate=%.0f sent=%llu echoed=%llu lost=%llu "
           "bad=%llu written_off=%llu rtt_p50_us=%.0f rtt_p99_us=%.0f\n",
           opt.flows, opt.window, opt.size, secs, (double)in_time / secs,
           (unsigned long long)sent, (unsigned long long)echoed,
           (unsigned long long)(sent > echoed ? sent - echoed : 0), (unsigned long long)bad,
           (unsigned long long)written_off, hist_pct(0.5), hist_pct(0.99));
    for (int i = 0; i < opt.flows; i++)
        close(fl[i].fd);
    close(ep);
    free(fl);
    free_initials();
    return echoed ? 0 : 1;
}

/* ---- ping ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int run_ping(void)
{
    load_initials(1);
    int fd = client_socket(opt.port);
    if (fd < 0)
        return 1;
    if (initials) {
        bool ok = admit(fd, 0);
        free_initials();
        if (opt.count == 0) {
            printf("%s\n", ok ? "admitted" : "no reply");
            close(fd);
            return ok ? 0 : 1;
        }
        if (!ok) {
            fprintf(stderr, "udpload ping: the Initial did not come back\n");
            return 1;
        }
    }
    static uint8_t out[MAX_SIZE], in[MAX_SIZE + 1];
    memset(out, 0x5a, (size_t)opt.size);
    out[0] = 0x40;
    uint64_t *rtt = malloc(((size_t)opt.count + 1) * sizeof *rtt);
    if (!rtt)
        return 1;
    size_t n = 0, lost = 0;
    const int warm = 100;
    uint64_t deadline = now_ns() + (uint64_t)(opt.seconds * 1e9);
    for (long seq = 0; seq < (long)opt.count + warm && !stop && now_ns() < deadline; seq++) {
        put64(out + 13, (uint64_t)seq);
        uint64_t t0 = now_ns();
        if (send(fd, out, (size_t)opt.size, 0) < 0) {
            lost++;
            continue;
        }
        bool got = false;
        for (uint64_t limit = t0 + 200000000ull, t = t0; !got && t < limit; t = now_ns()) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (poll(&pfd, 1, (int)((limit - t) / 1000000 + 1)) <= 0)
                continue;
            ssize_t k = recv(fd, in, sizeof in, MSG_DONTWAIT);
            uint64_t t1 = now_ns();
            if (k == opt.size && get64(in + 13) == (uint64_t)seq) {
                got = true;
                if (seq >= warm)
                    rtt[n++] = t1 - t0;
            }
        }
        if (!got && seq >= warm)
            lost++;
    }
    if (!n) {
        printf("ping: n=0 lost=%zu\n", lost);
        free(rtt);
        close(fd);
        return 1;
    }
    qsort(rtt, n, sizeof *rtt, cmp_u64);
    size_t p99 = (size_t)(0.99 * (double)n);
    printf("ping: n=%zu lost=%zu min_us=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f\n", n, lost,
           (double)rtt[0] / 1e3, (double)rtt[n / 2] / 1e3, (double)rtt[p99 < n ? p99 : n - 1] / 1e3,
           (double)rtt[n - 1] / 1e3);
    free(rtt);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        usage();
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "echo") == 0) {
        parse(argc, argv, 3600);
        return run_echo();
    }
    if (strcmp(argv[1], "load") == 0) {
        parse(argc, argv, 5);
        if (opt.seconds > 600)
            opt.seconds = 600;
        return run_load();
    }
    if (strcmp(argv[1], "ping") == 0) {
        parse(argc, argv, 30);
        return run_ping();
    }
    usage();
}
