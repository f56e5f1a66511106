/* wis2_topic.c: WIS2 topic validation (wis2_topic.h): a sorted table of earth-system-discipline
 * paths searched by bisection, each with a leaf flag worked out once, when the table is made. */
#include "wis2_topic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define PATH_MAX_LEN 512 /* bytes of one earth-system-discipline path in a loaded file */

struct wis2_topics {
    const char **paths; /* sorted, unique */
    bool *leaf;
    size_t n;
    char *text; /* a loaded file's paths, NUL-separated; NULL for the built-in table */
};

/* strcmp of NUL-terminated s against key (len bytes, no NUL). */
static int compare(const char *s, const char *key, size_t len)
{
    int c = strncmp(s, key, len);
    if (c != 0) return c;
    return s[len] != '\0' ? 1 : 0;
}

/* The first index whose path is >= key. */
static size_t lower_bound(const struct wis2_topics *t, const char *key, size_t len)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (compare(t->paths[mid], key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The index of key, or -1. */
static long find(const struct wis2_topics *t, const char *key, size_t len)
{
    size_t i = lower_bound(t, key, len);
    return i < t->n && compare(t->paths[i], key, len) == 0 ? (long)i : -1;
}

static int sort_paths(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts, drops duplicates and marks leaves: a path is a leaf when no path starts with it and a
 * '/'. */
static enum wm_err finish(struct wis2_topics *t)
{
    qsort(t->paths, t->n, sizeof *t->paths, sort_paths);
    size_t out = 0;
    for (size_t i = 0; i < t->n; i++)
        if (out == 0 || strcmp(t->paths[out - 1], t->paths[i]) != 0) t->paths[out++] = t->paths[i];
    t->n = out;
    if (!(t->leaf = calloc(t->n ? t->n : 1, sizeof *t->leaf))) return WM_ERR_NOMEM;
    for (size_t i = 0; i < t->n; i++) {
        char prefix[PATH_MAX_LEN + 2];
        int len = snprintf(prefix, sizeof prefix, "%s/", t->paths[i]);
        if (len < 0 || (size_t)len >= sizeof prefix) return WM_ERR_TOOBIG;
        size_t j = lower_bound(t, prefix, (size_t)len);
        t->leaf[i] = !(j < t->n && strncmp(t->paths[j], prefix, (size_t)len) == 0);
    }
    return WM_OK;
}

struct wis2_topics *wis2_topics_builtin(void)
{
    struct wis2_topics *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n = wis2_topic_builtin_count;
    if (!(t->paths = malloc(t->n * sizeof *t->paths))) goto fail;
    memcpy(t->paths, wis2_topic_builtin, t->n * sizeof *t->paths);
    if (finish(t) != WM_OK) goto fail;
    return t;
fail:
    wis2_topics_free(&t);
    errno = ENOMEM;
    return NULL;
}

static bool path_ok(const char *p, size_t len)
{
    if (len == 0 || len > PATH_MAX_LEN || p[0] == '/' || p[len - 1] == '/') return false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  c == '.' || (c == '/' && p[i + 1] != '/');
        if (!ok) return false;
    }
    return true;
}

struct wis2_topics *wis2_topics_load(const char *path, enum wm_err *err, char *why, size_t whylen)
{
    enum wm_err ignored;
    char scratch[1];
    if (!err) err = &ignored;
    if (!why) why = scratch, whylen = sizeof scratch;
    *err = WM_ERR_NOMEM;
    snprintf(why, whylen, "out of memory");
    struct wis2_topics *t = calloc(1, sizeof *t);
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, have = 0, lineno = 0;
    struct buf text = {0}; /* the paths, each followed by NUL */
    if (!t) goto fail;
    if (!f) {
        *err = WM_ERR_IO;
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    ssize_t got;
    while ((got = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)got;
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
            len--;
        if (len == 0 || line[0] == '#' || (lineno == 1 && len == 4 && !memcmp(line, "Name", 4)))
            continue;
        if (!path_ok(line, len)) {
            *err = WM_ERR_FORMAT;
            snprintf(why, whylen, "%s:%zu: not a topic path: %.*s", path, lineno,
                     (int)(len > 80 ? 80 : len), line);
            goto fail;
        }
        if (buf_append(&text, line, len) != WM_OK || buf_append(&text, "", 1) != WM_OK) goto fail;
        have++;
    }
    if (ferror(f)) {
        *err = WM_ERR_IO;
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (have == 0) {
        *err = WM_ERR_FORMAT;
        snprintf(why, whylen, "%s: no topic path in it", path);
        goto fail;
    }
    t->text = (char *)text.data;
    text.data = NULL; /* t owns it */
    if (!(t->paths = malloc(have * sizeof *t->paths))) goto fail;
    for (size_t off = 0; t->n < have; off += strlen(t->text + off) + 1)
        t->paths[t->n++] = t->text + off;
    if (finish(t) != WM_OK) goto fail;
    free(line);
    fclose(f);
    *err = WM_OK;
    why[0] = '\0';
    return t;
fail:
    buf_free(&text);
    free(line);
    if (f) fclose(f);
    wis2_topics_free(&t);
    return NULL;
}

void wis2_topics_free(struct wis2_topics **t)
{
    if (!t || !*t) return;
    free((*t)->paths);
    free((*t)->leaf);
    free((*t)->text);
    free(*t);
    *t = NULL;
}

size_t wis2_topics_count(const struct wis2_topics *t)
{
    return t ? t->n : 0;
}

const char *wis2_topic_level(const char *topic, size_t len, int n, size_t *level_len)
{
    size_t start = 0;
    for (int i = 1; i < n; i++) {
        const char *slash = memchr(topic + start, '/', len - start);
        if (!slash) return NULL;
        start = (size_t)(slash - topic) + 1;
    }
    const char *end = memchr(topic + start, '/', len - start);
    *level_len = end ? (size_t)(end - (topic + start)) : len - start;
    return topic + start;
}

static bool is(const char *level, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(level, want, len) == 0;
}

enum wis2_topic_verdict wis2_topic_check(const struct wis2_topics *t, const char *topic, size_t len,
                                         bool leaf_only)
{
    const char *lv[WIS2_TOPIC_LEVELS_MAX];
    size_t ll[WIS2_TOPIC_LEVELS_MAX];
    int n = 0;
    if (!topic || len == 0) return WIS2_TOPIC_SYNTAX;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && topic[i] != '/') {
            unsigned char c = (unsigned char)topic[i];
            if (c == '+' || c == '#' || c < 0x21 || c == 0x7f || (c >= 'A' && c <= 'Z'))
                return WIS2_TOPIC_SYNTAX;
            continue;
        }
        if (i == start || n == WIS2_TOPIC_LEVELS_MAX) return WIS2_TOPIC_SYNTAX;
        lv[n] = topic + start;
        ll[n++] = i - start;
        start = i + 1;
    }
    if (n < 4 || !(is(lv[0], ll[0], "origin") || is(lv[0], ll[0], "cache")) ||
        !is(lv[1], ll[1], "a") || !is(lv[2], ll[2], "wis2"))
        return WIS2_TOPIC_ROOT;
    if (n < 5) return WIS2_TOPIC_TYPE;
    bool metadata = is(lv[4], ll[4], "metadata");
    if (metadata && n == 5) return WIS2_TOPIC_OK;
    if (!metadata && !is(lv[4], ll[4], "data")) return WIS2_TOPIC_TYPE;
    if (n < 6 || !(is(lv[5], ll[5], "core") || is(lv[5], ll[5], "recommended")))
        return WIS2_TOPIC_POLICY;
    /* Levels 7.. as one path; a publisher must name at least level 8. */
    if (n < 8) return WIS2_TOPIC_DISCIPLINE;
    const char *rest = lv[6];
    size_t rest_len = (size_t)(topic + len - rest);
    /* "<discipline>/experimental" takes any levels below it. */
    if (is(lv[7], ll[7], "experimental")) {
        size_t exp_len = (size_t)(lv[7] + ll[7] - rest);
        return find(t, rest, exp_len) >= 0 ? WIS2_TOPIC_OK : WIS2_TOPIC_DISCIPLINE;
    }
    long i = find(t, rest, rest_len);
    if (i < 0) return WIS2_TOPIC_DISCIPLINE;
    return leaf_only && !t->leaf[i] ? WIS2_TOPIC_NOT_LEAF : WIS2_TOPIC_OK;
}

const char *wis2_topic_verdict_name(enum wis2_topic_verdict v)
{
    switch (v) {
    case WIS2_TOPIC_OK:
        return "valid";
    case WIS2_TOPIC_SYNTAX:
        return "empty level, wildcard, upper case or too many levels";
    case WIS2_TOPIC_ROOT:
        return "not origin/a/wis2 or cache/a/wis2";
    case WIS2_TOPIC_TYPE:
        return "level 5 is neither data nor metadata";
    case WIS2_TOPIC_POLICY:
        return "level 6 is neither core nor recommended";
    case WIS2_TOPIC_DISCIPLINE:
        return "not an earth-system-discipline path of the topic hierarchy";
    case WIS2_TOPIC_NOT_LEAF:
        return "not a leaf of the topic hierarchy";
    }
    return "?";
}
