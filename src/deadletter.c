/* deadletter.c: the file of announcements set aside, one JSON object per line. */
#include "deadletter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "json.h"

#define LINE_MAX_BYTES (1u << 20) /* a message of 256 KiB, escaped, and the rest */

static enum wm_err set_string(struct wm_json *o, const char *key, const char *s, size_t len)
{
    struct wm_json *v = wm_json_string_new(s, len);
    if (!v) return errno == EILSEQ ? WM_ERR_FORMAT : WM_ERR_NOMEM;
    return wm_json_object_set(o, key, v);
}

static enum wm_err set_integer(struct wm_json *o, const char *key, int64_t n)
{
    struct wm_json *v = wm_json_integer_new(n);
    return v ? wm_json_object_set(o, key, v) : WM_ERR_NOMEM;
}

/* The line for d, newline included; the caller frees it. */
static enum wm_err line_of(const struct deadletter *d, char **out, size_t *len)
{
    char when[40];
    struct wm_json *o = wm_json_object_new();
    enum wm_err e = o ? WM_OK : WM_ERR_NOMEM;
    if (e == WM_OK) e = codec_rfc3339_format(d->time_ns, 3, when, sizeof when);
    if (e == WM_OK) e = set_string(o, "time", when, strlen(when));
    if (e == WM_OK) e = set_string(o, "topic", d->topic, strlen(d->topic));
    if (e == WM_OK) e = set_integer(o, "size", (int64_t)d->len);
    if (e == WM_OK) e = set_integer(o, "attempts", d->attempts);
    if (e == WM_OK) e = set_string(o, "reason", d->reason, strlen(d->reason));
    if (e == WM_OK) e = set_string(o, "message", d->message, d->len);
    char *text = NULL;
    size_t n = 0;
    if (e == WM_OK) e = wm_json_dump(o, &text, &n);
    wm_json_free(&o);
    if (e != WM_OK) return e;
    char *grown = realloc(text, n + 2);
    if (!grown) {
        free(text);
        return WM_ERR_NOMEM;
    }
    grown[n] = '\n';
    grown[n + 1] = '\0';
    *out = grown;
    *len = n + 1;
    return WM_OK;
}

enum wm_err deadletter_append(const char *path, const struct deadletter *d)
{
    if (!path || !d || !d->topic || !d->reason || (!d->message && d->len)) return WM_ERR_INVAL;
    char *line = NULL;
    size_t len = 0;
    enum wm_err e = line_of(d, &line, &len);
    if (e != WM_OK) return e;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(line);
        return WM_ERR_IO;
    }
    /* One write of a whole line: O_APPEND keeps lines whole when two writers meet. */
    ssize_t n;
    do {
        n = write(fd, line, len);
    } while (n < 0 && errno == EINTR);
    int saved = errno;
    e = n == (ssize_t)len && fdatasync(fd) == 0 ? WM_OK : WM_ERR_IO;
    if (e != WM_OK && n >= 0 && n < (ssize_t)len) saved = ENOSPC;
    if (e != WM_OK && n == (ssize_t)len) saved = errno;
    close(fd);
    free(line);
    errno = saved;
    return e;
}

static const char *string_of(const struct wm_json *o, const char *key, size_t *len)
{
    const struct wm_json *v = wm_json_object_get(o, key);
    return v && wm_json_is_string(v) ? wm_json_string(v, len) : NULL;
}

/* One line to an entry: false when it is not one. */
static bool parse_line(const char *line, size_t len, struct wm_json **o, struct deadletter *d)
{
    if (wm_json_parse(line, len, o, NULL, 0) != WM_OK || !wm_json_is_object(*o)) return false;
    size_t n = 0;
    const char *when = string_of(*o, "time", &n);
    int64_t attempts = 0;
    const struct wm_json *a = wm_json_object_get(*o, "attempts");
    *d = (struct deadletter){0};
    d->topic = string_of(*o, "topic", &n);
    d->reason = string_of(*o, "reason", &n);
    d->message = string_of(*o, "message", &d->len);
    if (!d->topic || !d->reason || !d->message) return false;
    if (a && wm_json_integer(a, &attempts) && attempts >= 0 && attempts < 1000000)
        d->attempts = (int)attempts;
    int digits, offset;
    if (!when || codec_rfc3339_parse(when, &d->time_ns, &digits, &offset) != WM_OK) d->time_ns = 0;
    return true;
}

enum wm_err deadletter_each(const char *path, void (*fn)(void *arg, const struct deadletter *d),
                            void *arg, size_t *bad)
{
    if (!path || !fn) return WM_ERR_INVAL;
    if (bad) *bad = 0;
    FILE *f = fopen(path, "re");
    if (!f) return errno == ENOENT ? WM_ERR_NOTFOUND : WM_ERR_IO;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    enum wm_err e = WM_OK;
    errno = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        struct wm_json *o = NULL;
        struct deadletter d;
        size_t len = (size_t)n;
        if (line[len - 1] == '\n') len--;
        if (len <= LINE_MAX_BYTES && parse_line(line, len, &o, &d))
            fn(arg, &d);
        else if (bad)
            (*bad)++;
        wm_json_free(&o);
    }
    if (ferror(f)) e = errno == ENOMEM ? WM_ERR_NOMEM : WM_ERR_IO;
    free(line);
    fclose(f);
    return e;
}
