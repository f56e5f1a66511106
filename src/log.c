/* log.c: timestamped one-line log records, written to stderr in whole lines, batched per event
 * loop turn. */
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"

/* A record never exceeds this, newline included, so that it always fits in the batch. */
#define LINE_MAX_LEN 4096

static enum wm_log_level max_level = WM_LOG_INFO;
static char log_name[32];
static enum wm_log_format log_format = WM_LOG_TEXT;

/* Whole lines waiting for one write(2). At most PIPE_BUF bytes: a write that size is atomic on
 * a pipe, so lines of other processes sharing our stderr never land inside ours. */
static char batch[PIPE_BUF];
static size_t batch_len;
static pthread_mutex_t batch_lock = PTHREAD_MUTEX_INITIALIZER;
static bool flush_registered;       /* atexit(log_flush) done; under batch_lock */
static _Thread_local bool batching; /* this thread's info and debug lines wait for log_flush */

_Static_assert(LINE_MAX_LEN <= PIPE_BUF, "a record must fit in one batch");

void log_set_format(enum wm_log_format format)
{
    log_format = format;
}

/* Appends s to line as the body of a JSON string. Returns the new length. */
static size_t json_escape(char *line, size_t used, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s && used + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            line[used++] = '\\';
            line[used++] = (char)c;
        } else if (c < 0x20) {
            memcpy(line + used, "\\u00", 4);
            line[used + 4] = hex[c >> 4];
            line[used + 5] = hex[c & 15];
            used += 6;
        } else {
            line[used++] = (char)c;
        }
    }
    return used;
}

static size_t format_json(char *line, size_t cap, const char *when, const char *level,
                          const char *msg)
{
    int n = snprintf(line, cap, "{\"time\":\"%s\",\"level\":\"%s\",", when, level);
    if (n < 0) return 0;
    size_t used = (size_t)n;
    if (log_name[0]) {
        used += (size_t)snprintf(line + used, cap - used, "\"name\":\"");
        used = json_escape(line, used, cap - 4, log_name);
        used += (size_t)snprintf(line + used, cap - used, "\",");
    }
    used += (size_t)snprintf(line + used, cap - used, "\"msg\":\"");
    used = json_escape(line, used, cap - 4, msg);
    memcpy(line + used, "\"}", 2);
    return used + 2;
}

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
    case WM_LOG_ERROR:
        return "error";
    case WM_LOG_WARN:
        return "warn";
    case WM_LOG_INFO:
        return "info";
    case WM_LOG_DEBUG:
        return "debug";
    }
    return "?";
}

/* Rewrites control characters in s as \xNN, in place, truncating what no longer fits. */
static void escape_controls(char *s, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    char out[1536 * 4];
    size_t j = 0;
    bool changed = false;
    for (const unsigned char *c = (const unsigned char *)s; *c && j + 5 < sizeof out; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            out[j++] = '\\';
            out[j++] = 'x';
            out[j++] = hex[*c >> 4];
            out[j++] = hex[*c & 15];
            changed = true;
        } else {
            out[j++] = (char)*c;
        }
    }
    if (!changed) return;
    if (j >= cap) j = cap - 1; /* truncated: still one line */
    memcpy(s, out, j);
    s[j] = '\0';
}

static void flush_locked(void)
{
    if (batch_len == 0) return;
    (void)fdio_write_all(STDERR_FILENO, batch, batch_len); /* a failing stderr loses lines */
    batch_len = 0;
}

void log_flush(void)
{
    pthread_mutex_lock(&batch_lock);
    flush_locked();
    pthread_mutex_unlock(&batch_lock);
}

void log_batch(bool on)
{
    pthread_mutex_lock(&batch_lock);
    /* A clean exit (return from main, exit()) flushes; a crash or SIGKILL loses the batch. */
    if (on && !flush_registered) flush_registered = atexit(log_flush) == 0;
    bool can_batch = flush_registered;
    if (!on) flush_locked();
    pthread_mutex_unlock(&batch_lock);
    batching = on && can_batch;
}

/* Queues or writes one finished line. The lock also keeps lines from threads whole and in
 * order: a line that is not held flushes those waiting before it, in the same write. */
static void emit(enum wm_log_level level, const char *line, size_t len)
{
    int saved = errno;
    bool hold = batching && level > WM_LOG_WARN;
    pthread_mutex_lock(&batch_lock);
    if (batch_len + len > sizeof batch) flush_locked();
    if (!hold && batch_len == 0) {
        (void)fdio_write_all(STDERR_FILENO, line, len);
    } else {
        memcpy(batch + batch_len, line, len);
        batch_len += len;
        if (!hold) flush_locked();
    }
    pthread_mutex_unlock(&batch_lock);
    errno = saved;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of now into when (at least 86 bytes). The part up to the seconds
 * is formatted once a second per thread: gmtime_r and snprintf cost more than the rest of a
 * line. */
static void format_now(char *when)
{
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[80]; /* 19 bytes but for impossible years */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = now.tv_sec;
    }
    size_t n = strlen(cached);
    unsigned ms = (unsigned)(now.tv_nsec / 1000000);
    memcpy(when, cached, n);
    when[n] = '.';
    when[n + 1] = (char)('0' + ms / 100);
    when[n + 2] = (char)('0' + ms / 10 % 10);
    when[n + 3] = (char)('0' + ms % 10);
    when[n + 4] = 'Z';
    when[n + 5] = '\0';
}

/* Appends the NUL-terminated s to line (capacity cap) and returns the new length. */
static size_t append(char *line, size_t used, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n > cap - used) n = cap - used; /* truncated */
    memcpy(line + used, s, n);
    return used + n;
}

void log_msg(enum wm_log_level level, const char *fmt, ...)
{
    if (level > max_level) return;
    char when[96];
    format_now(when);

    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) return;

    /* Announcements are hostile input: a relPath with a newline must not forge a log line. */
    if (log_format == WM_LOG_TEXT) escape_controls(msg, sizeof msg);

    char line[LINE_MAX_LEN];
    size_t used = 0, cap = sizeof line - 1; /* room for the newline */
    if (log_format == WM_LOG_JSON) {
        used = format_json(line, cap, when, level_name(level), msg);
    } else {
        used = append(line, used, cap, when);
        used = append(line, used, cap, " ");
        used = append(line, used, cap, level_name(level));
        used = append(line, used, cap, " ");
        if (log_name[0]) {
            used = append(line, used, cap, log_name);
            used = append(line, used, cap, " ");
        }
        used = append(line, used, cap, msg);
    }
    line[used++] = '\n';
    emit(level, line, used);
}
