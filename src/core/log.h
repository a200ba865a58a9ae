/* Logging: one line per call, written with a single write(2) so lines from
 * different threads never interleave. Goes to stdout unless a file is set.
 * Levels and the two formats (common, json) follow Traefik's log section. */
#ifndef WEIR_CORE_LOG_H
#define WEIR_CORE_LOG_H

enum { WEIR_LOG_LVL_DEBUG, WEIR_LOG_LVL_INFO, WEIR_LOG_LVL_WARN, WEIR_LOG_LVL_ERROR, WEIR_LOG_LVL_OFF };

/* Configures the logger. path NULL = stdout. Returns 0 or -errno when the
 * file cannot be opened (the previous destination is kept). */
int weir_log_configure(int level, const char *path, int json);

/* Reopens the log file (SIGUSR1, after rotation). */
void weir_log_reopen(void);

int weir_log_enabled(int level);

void weir_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define weir_debug(...) (weir_log_enabled(WEIR_LOG_LVL_DEBUG) ? weir_log(WEIR_LOG_LVL_DEBUG, __VA_ARGS__) : (void)0)
#define weir_info(...) weir_log(WEIR_LOG_LVL_INFO, __VA_ARGS__)
#define weir_warn(...) weir_log(WEIR_LOG_LVL_WARN, __VA_ARGS__)
#define weir_error(...) weir_log(WEIR_LOG_LVL_ERROR, __VA_ARGS__)

/* Opens path for appending (creating it 0644). Returns fd or -errno. */
int weir_open_append(const char *path);

#endif
