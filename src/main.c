/* weir: command line, signals, configuration reload, workers.
 *
 * The main thread is the control thread: it loads configuration, starts
 * the workers, then waits on a signalfd and an inotify descriptor. SIGHUP
 * and file changes (debounced) reload; SIGTERM/SIGINT drain and exit;
 * SIGUSR1 reopens log files. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "http/snapshot.h"
#include "http/worker.h"
#include "quic/quic.h"

#ifndef WEIR_VERSION
#define WEIR_VERSION "0.0.0"
#endif

#define RELOAD_DEBOUNCE_MS 200

static void usage(FILE *f)
{
    fprintf(f, "usage: weir --configFile PATH      serve\n"
               "       weir --check --configFile PATH   validate the configuration\n"
               "       weir --version\n"
               "  -c PATH is short for --configFile PATH\n");
}

static void print_errors(const weir_config_errors_t *errs, int to_log)
{
    for (size_t i = 0; i < errs->count; i++) {
        char *line = weir_config_error_format(&errs->items[i]);
        if (!line)
            continue;
        if (to_log)
            weir_error("%s", line);
        else
            fprintf(stderr, "%s\n", line);
        free(line);
    }
}

static int log_level_of(weir_log_level_t l)
{
    switch (l) {
    case WEIR_LOG_DEBUG: return WEIR_LOG_LVL_DEBUG;
    case WEIR_LOG_INFO: return WEIR_LOG_LVL_INFO;
    case WEIR_LOG_WARN: return WEIR_LOG_LVL_WARN;
    default: return WEIR_LOG_LVL_ERROR;
    }
}

static int64_t grace_of(const weir_config_t *cfg)
{
    int64_t g = 0;
    for (size_t i = 0; i < cfg->num_entrypoints; i++)
        if (cfg->entrypoints[i].grace_timeout_ms > g)
            g = cfg->entrypoints[i].grace_timeout_ms;
    return cfg->num_entrypoints ? g : 10000;
}

static int setup_access_log(const weir_config_t *cfg)
{
    if (!cfg->access_log.enabled)
        return 0;
    int fd = STDOUT_FILENO;
    if (cfg->access_log.file_path) {
        fd = weir_open_append(cfg->access_log.file_path);
        if (fd < 0) {
            fprintf(stderr, "weir: accessLog.filePath %s: %s\n", cfg->access_log.file_path,
                    strerror(-fd));
            return -1;
        }
    }
    weir_server.access_fd = fd;
    weir_server.access_json = cfg->access_log.json;
    weir_server.access_buffering = cfg->access_log.buffering_size;
    return 0;
}

static void reopen_logs(const weir_config_t *cfg)
{
    weir_log_reopen();
    if (cfg->access_log.enabled && cfg->access_log.file_path) {
        int fd = weir_open_append(cfg->access_log.file_path);
        if (fd >= 0) {
            /* dup2 swaps the file under the same descriptor number, so
             * workers writing concurrently never see a closed fd. */
            dup2(fd, weir_server.access_fd);
            close(fd);
        }
    }
}

/* What a browser will make of each entry point's HTTP/3 advertisement. */
static void check_http3_ports(const weir_config_t *cfg)
{
    for (size_t i = 0; i < cfg->num_entrypoints; i++) {
        const weir_entrypoint_cfg_t *ep = &cfg->entrypoints[i];
        if (!ep->http3)
            continue;
        int port = ntohs(((const struct sockaddr_in *)&ep->addr)->sin_port);
        int adv = ep->h3_advertised_port ? ep->h3_advertised_port : port;
        if (adv >= 1024 && port < 1024)
            weir_warn("entry point %s: http3.advertisedPort %d is 1024 or above while the TCP port "
                      "%d is below 1024: Chromium ignores such an Alt-Svc (Firefox follows it)",
                      ep->name, adv, port);
        if (adv != port)
            weir_info("entry point %s: HTTP/3 is advertised on port %d and served on UDP port %d: "
                      "a forward from %d to %d is expected",
                      ep->name, adv, port, adv, port);
    }
}

/* ---- file watching ---- */

typedef struct {
    int fd;
    char names[8][PATH_MAX]; /* files whose changes matter ("" = any in dir) */
    int wds[8];
    int count;
} watch_t;

static void watch_add(watch_t *w, const char *path, int is_dir)
{
    if (w->count >= 8 || !path)
        return;
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    const char *dir = is_dir ? buf : dirname(buf);
    int wd = inotify_add_watch(w->fd, dir,
                               IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MODIFY);
    if (wd < 0) {
        weir_warn("cannot watch %s: %s", dir, strerror(errno));
        return;
    }
    w->wds[w->count] = wd;
    if (is_dir) {
        w->names[w->count][0] = 0;
    } else {
        snprintf(buf, sizeof buf, "%s", path);
        snprintf(w->names[w->count], PATH_MAX, "%s", basename(buf));
    }
    w->count++;
}

/* True when an event in the buffer concerns a watched file. */
static int watch_relevant(watch_t *w, const char *buf, ssize_t len)
{
    int hit = 0;
    for (const char *p = buf; p < buf + len;) {
        const struct inotify_event *ev = (const void *)p;
        for (int i = 0; i < w->count; i++) {
            if (ev->wd != w->wds[i])
                continue;
            if (!w->names[i][0] || (ev->len && strcmp(ev->name, w->names[i]) == 0))
                hit = 1;
        }
        p += sizeof *ev + ev->len;
    }
    return hit;
}

/* ---- serving ---- */

typedef struct {
    const char *path;
    weir_snapshot_t *snap; /* the control thread's reference to the current one */
    uint64_t generation;
} control_t;

static void reload(control_t *ctl, const char *why)
{
    weir_config_t *cfg = NULL;
    weir_config_errors_t errs = {0};
    if (weir_config_reload_dynamic(ctl->snap->cfg, ctl->path, &cfg, &errs) < 0) {
        weir_error("configuration reload (%s) failed; the previous configuration keeps serving",
                   why);
        print_errors(&errs, 1);
        weir_config_errors_free(&errs);
        return;
    }
    weir_tls_ctx_t *tls = weir_tls_ctx_build(cfg, ctl->snap->tls, &errs);
    if (!tls) {
        weir_error("configuration reload (%s) failed; the previous configuration keeps serving",
                   why);
        print_errors(&errs, 1);
        weir_config_errors_free(&errs);
        weir_config_free(cfg);
        return;
    }
    weir_config_errors_free(&errs);
    weir_snapshot_t *snap = weir_snapshot_build(cfg, tls, ++ctl->generation);
    if (!snap) {
        weir_error("configuration reload (%s): out of memory", why);
        return;
    }
    weir_snapshot_ref(snap);
    weir_workers_publish(snap);
    weir_snapshot_unref(ctl->snap);
    ctl->snap = snap;
    const weir_config_t *c = snap->cfg;
    weir_info("configuration reloaded (%s): %zu routers, %zu services", why,
              c->num_routers + c->num_tcp_routers + c->num_udp_routers,
              c->num_services + c->num_tcp_services + c->num_udp_services);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* True when path changed after t (a load that raced with an edit). */
static int modified_since(const char *path, const struct timespec *t)
{
    struct stat st;
    if (!path || stat(path, &st) < 0)
        return 0;
    return st.st_mtim.tv_sec > t->tv_sec ||
           (st.st_mtim.tv_sec == t->tv_sec && st.st_mtim.tv_nsec >= t->tv_nsec);
}

static struct timespec load_started;

static int serve(const char *path, weir_config_t *cfg, weir_tls_ctx_t *tls)
{
    control_t ctl = {.path = path, .generation = 1};
    weir_log_configure(log_level_of(cfg->log.level), cfg->log.file_path, cfg->log.json);
    if (setup_access_log(cfg) < 0)
        return 1;
    gethostname(weir_server.hostname, sizeof weir_server.hostname - 1);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Watch before serving: an edit made while the workers start must
     * not slip between the load and the watch. */
    watch_t watch = {.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)};
    if (cfg->provider_watch) {
        watch_add(&watch, path, 0);
        if (cfg->provider_filename)
            watch_add(&watch, cfg->provider_filename, 0);
        if (cfg->provider_directory)
            watch_add(&watch, cfg->provider_directory, 1);
    }

    check_http3_ports(cfg);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nworkers = cfg->workers > 0 ? cfg->workers : (ncpu > 0 ? (int)ncpu : 1);
    weir_snapshot_t *snap = weir_snapshot_build(cfg, tls, ctl.generation);
    if (!snap)
        return 1;
    weir_snapshot_ref(snap);
    ctl.snap = snap;
    if (weir_workers_start(snap, nworkers) < 0)
        return 1;
    const weir_config_t *c = snap->cfg;
    for (size_t i = 0; i < c->num_entrypoints; i++)
        weir_info("entry point %s listening on %s", c->entrypoints[i].name,
                  c->entrypoints[i].address);
    weir_info("weir %s started with %d workers", WEIR_VERSION, nworkers);

    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = sfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    ev.data.fd = watch.fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, watch.fd, &ev);

    int64_t reload_at = -1;
    if (c->provider_watch &&
        (modified_since(path, &load_started) || modified_since(c->provider_filename, &load_started) ||
         modified_since(c->provider_directory, &load_started)))
        reload_at = mono_ms(); /* edited while we were loading: read it again */
    for (;;) {
        int timeout = -1;
        if (reload_at >= 0) {
            int64_t left = reload_at - mono_ms();
            timeout = left < 0 ? 0 : (int)left;
        }
        struct epoll_event evs[4];
        int n = epoll_wait(ep, evs, 4, timeout);
        if (reload_at >= 0 && mono_ms() >= reload_at) {
            reload_at = -1;
            reload(&ctl, "file change");
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == watch.fd) {
                char buf[8192] __attribute__((aligned(8)));
                ssize_t len;
                int hit = 0;
                while ((len = read(watch.fd, buf, sizeof buf)) > 0)
                    hit |= watch_relevant(&watch, buf, len);
                if (hit)
                    reload_at = mono_ms() + RELOAD_DEBOUNCE_MS;
                continue;
            }
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) != sizeof si)
                continue;
            if (si.ssi_signo == SIGHUP) {
                reload(&ctl, "SIGHUP");
            } else if (si.ssi_signo == SIGUSR1) {
                reopen_logs(ctl.snap->cfg);
            } else {
                int64_t grace = grace_of(ctl.snap->cfg);
                weir_info("received %s, draining for up to %lld ms",
                          si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM", (long long)grace);
                weir_workers_drain_and_join(grace);
                weir_info("stopped");
                return 0;
            }
        }
    }
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int check = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--version") == 0 || strcmp(a, "version") == 0) {
            printf("weir %s\n", WEIR_VERSION);
            return 0;
        } else if (strcmp(a, "--check") == 0) {
            check = 1;
        } else if (strcasecmp(a, "--configFile") == 0 || strcmp(a, "-c") == 0) {
            if (i + 1 >= argc) {
                usage(stderr);
                return 2;
            }
            path = argv[++i];
        } else if (strncasecmp(a, "--configFile=", 13) == 0) {
            path = a + 13;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "weir: unknown argument %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    weir_config_t *cfg = NULL;
    weir_config_errors_t errs = {0};
    clock_gettime(CLOCK_REALTIME_COARSE, &load_started); /* the clock file times use */
    if (weir_config_load(path, &cfg, &errs) < 0) {
        print_errors(&errs, 0);
        fprintf(stderr, "weir: %zu configuration error%s in %s\n", errs.count,
                errs.count == 1 ? "" : "s", path);
        weir_config_errors_free(&errs);
        return 1;
    }
    if (weir_tls_global_init() < 0 || weir_quic_global_init() < 0) {
        fprintf(stderr, "weir: cannot initialise GnuTLS\n");
        return 1;
    }
    weir_tls_ctx_t *tls = weir_tls_ctx_build(cfg, NULL, &errs);
    if (!tls) {
        print_errors(&errs, 0);
        fprintf(stderr, "weir: %zu configuration error%s in %s\n", errs.count,
                errs.count == 1 ? "" : "s", path);
        weir_config_errors_free(&errs);
        weir_config_free(cfg);
        return 1;
    }
    weir_config_errors_free(&errs);
    if (check) {
        weir_tls_ctx_unref(tls);
        printf("%s: configuration OK (%zu entry points, %zu routers, %zu services)\n", path,
               cfg->num_entrypoints, cfg->num_routers + cfg->num_tcp_routers + cfg->num_udp_routers,
               cfg->num_services + cfg->num_tcp_services + cfg->num_udp_services);
        weir_config_free(cfg);
        return 0;
    }
    return serve(path, cfg, tls);
}
