/* log.c: timestamped one-line log records, written atomically to stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum wm_log_level max_level = WM_LOG_INFO;
static char log_name[32];

void log_set_level(enum wm_log_level level)
{
    max_level = level;
}

enum wm_log_level log_get_level(void)
{
    return max_level;
}

void log_set_name(const char *name)
{
    snprintf(log_name, sizeof log_name, "%s", name ? name : "");
}

static const char *level_name(enum wm_log_level level)
{
    switch (level) {
    case WM_LOG_ERROR: return "error";
    case WM_LOG_WARN: return "warn";
    case WM_LOG_INFO: return "info";
    case WM_LOG_DEBUG: return "debug";
    }
    return "?";
}

void log_msg(enum wm_log_level level, const char *fmt, ...)
{
    if (level > max_level) return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);

    char line[2048];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s%s", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     now.tv_nsec / 1000000, level_name(level), log_name, log_name[0] ? " " : "");
    if (n < 0) return;
    size_t used = (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(line + used, sizeof line - used - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    used += (size_t)n;
    if (used > sizeof line - 2) used = sizeof line - 2; /* truncated: still one line */
    line[used++] = '\n';
    /* One write per record so lines from several processes sharing stderr never interleave. */
    ssize_t w = write(STDERR_FILENO, line, used);
    (void)w;
}
