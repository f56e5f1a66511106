/* log.c: timestamped one-line log records, written atomically to stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum wm_log_level max_level = WM_LOG_INFO;
static char log_name[32];
static enum wm_log_format log_format = WM_LOG_TEXT;

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

void log_msg(enum wm_log_level level, const char *fmt, ...)
{
    if (level > max_level) return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);

    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) return;

    /* Announcements are hostile input: a relPath with a newline must not forge a log line. */
    if (log_format == WM_LOG_TEXT) escape_controls(msg, sizeof msg);

    char line[4096];
    size_t used;
    if (log_format == WM_LOG_JSON) {
        used = format_json(line, sizeof line - 1, when, level_name(level), msg);
    } else {
        n = snprintf(line, sizeof line - 1, "%s %s %s%s%s", when, level_name(level), log_name,
                     log_name[0] ? " " : "", msg);
        if (n < 0) return;
        used = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2; /* truncated */
    }
    line[used++] = '\n';
    /* One write per record so lines from several processes sharing stderr never interleave. */
    ssize_t w = write(STDERR_FILENO, line, used);
    (void)w;
}
