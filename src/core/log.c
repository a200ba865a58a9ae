/* Logger. */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_level = WEIR_LOG_LVL_INFO;
static int log_fd = STDOUT_FILENO;
static int log_json;
static char *log_path;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

int weir_open_append(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

int weir_log_configure(int level, const char *path, int json)
{
    int fd = STDOUT_FILENO;
    if (path) {
        fd = weir_open_append(path);
        if (fd < 0)
            return fd;
    }
    pthread_mutex_lock(&log_mu);
    if (log_fd != STDOUT_FILENO)
        close(log_fd);
    log_fd = fd;
    free(log_path);
    log_path = path ? strdup(path) : NULL;
    log_level = level;
    log_json = json;
    pthread_mutex_unlock(&log_mu);
    return 0;
}

void weir_log_reopen(void)
{
    pthread_mutex_lock(&log_mu);
    if (log_path) {
        int fd = weir_open_append(log_path);
        if (fd >= 0) {
            close(log_fd);
            log_fd = fd;
        }
    }
    pthread_mutex_unlock(&log_mu);
}

int weir_log_enabled(int level)
{
    return level >= log_level;
}

static const char *const short_names[] = {"DBG", "INF", "WRN", "ERR"};
static const char *const long_names[] = {"debug", "info", "warn", "error"};

/* Escapes a message for a JSON string value. */
static size_t json_escape(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (; *in && o + 7 < cap; in++) {
        unsigned char c = (unsigned char)*in;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = 0;
    return o;
}

void weir_log(int level, const char *fmt, ...)
{
    if (level < log_level)
        return;
    char msg[2048], line[4600], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n;
    if (log_json) {
        char esc[4200];
        json_escape(esc, sizeof esc, msg);
        n = snprintf(line, sizeof line, "{\"level\":\"%s\",\"time\":\"%s\",\"message\":\"%s\"}\n",
                     long_names[level], ts, esc);
    } else {
        n = snprintf(line, sizeof line, "%s %s %s\n", ts, short_names[level], msg);
    }
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    ssize_t w = write(log_fd, line, (size_t)n);
    (void)w;
}
