/* codec_topic.c: the MQTT topics announcements are published on (codec_topic, codec_topic_copy). */
#include <stdbool.h>
#include <string.h>

#include "codec.h"

/* Appends part to out, one level per non-empty '/'-separated piece, escaping the MQTT
 * wildcards '+' and '#' (not allowed in a published topic) as %2B and %23. */
static enum wm_err topic_append(char *out, size_t outlen, size_t *used, const char *part,
                                size_t partlen)
{
    size_t i = 0;
    while (i < partlen) {
        while (i < partlen && part[i] == '/')
            i++;
        if (i == partlen) break;
        if (*used > 0) {
            if (*used + 1 >= outlen) return WM_ERR_TOOBIG;
            out[(*used)++] = '/';
        }
        for (; i < partlen && part[i] != '/'; i++) {
            const char *piece = part[i] == '+' ? "%2B" : part[i] == '#' ? "%23" : NULL;
            size_t n = piece ? 3 : 1;
            if (*used + n >= outlen) return WM_ERR_TOOBIG;
            if (piece)
                memcpy(out + *used, piece, n);
            else
                out[*used] = part[i];
            *used += n;
        }
    }
    out[*used] = '\0';
    return WM_OK;
}

enum wm_err codec_topic(const char *exchange, const char *prefix, const char *rel_path, char *out,
                        size_t outlen)
{
    if (!exchange || !rel_path || !out || outlen == 0) return WM_ERR_INVAL;
    if (!prefix) prefix = "";
    size_t used = 0;
    out[0] = '\0';
    const char *slash = strrchr(rel_path, '/');
    size_t dirlen = slash ? (size_t)(slash - rel_path) : 0;
    enum wm_err err = topic_append(out, outlen, &used, exchange, strlen(exchange));
    if (err == WM_OK) err = topic_append(out, outlen, &used, prefix, strlen(prefix));
    if (err == WM_OK) err = topic_append(out, outlen, &used, rel_path, dirlen);
    if (err != WM_OK) {
        out[0] = '\0';
        return err;
    }
    return used > 0 ? WM_OK : WM_ERR_INVAL;
}

/* Moves *t past the levels of pattern at its start, compared one by one (a level "+" of
 * pattern matches any one level): *t then points at the '/' after them or at the end. */
static enum wm_err skip_levels(const char *pattern, const char **t)
{
    const char *p = pattern, *at = *t;
    for (;;) {
        size_t plen = strcspn(p, "/"), tlen = strcspn(at, "/");
        bool plus = plen == 1 && p[0] == '+';
        if (memchr(p, '#', plen) || (!plus && (plen != tlen || memcmp(p, at, plen) != 0)))
            return WM_ERR_NOTFOUND;
        at += tlen;
        if (!p[plen]) break;
        if (*at != '/') return WM_ERR_NOTFOUND; /* the topic has fewer levels */
        p += plen + 1;
        at++;
    }
    *t = at;
    return WM_OK;
}

/* True when every level of levels (not empty) is non-empty and free of wildcards. */
static bool publishable_levels(const char *levels)
{
    if (!levels[0] || levels[0] == '/') return false;
    for (const char *c = levels; *c; c++) {
        if (*c == '+' || *c == '#') return false;
        if (*c == '/' && (c[1] == '/' || c[1] == '\0')) return false;
    }
    return true;
}

enum wm_err codec_topic_copy(const char *exchange, const char *prefix, const char *topic,
                             const char *post_exchange, const char *post_prefix, char *out,
                             size_t outlen)
{
    if (!exchange || !topic || !post_exchange || !out || outlen == 0) return WM_ERR_INVAL;
    if (!prefix) prefix = "";
    if (!post_prefix) post_prefix = "";
    out[0] = '\0';
    /* The levels subscribed to are "<exchange>/<prefix>/<subtopic>" (peer.c): exchange and
     * prefix are the fixed part, whatever the subtopic matched is copied. */
    const char *t = topic;
    enum wm_err err = skip_levels(exchange, &t);
    if (err == WM_OK && prefix[0]) {
        if (*t != '/') return WM_ERR_NOTFOUND;
        t++;
        err = skip_levels(prefix, &t);
    }
    if (err != WM_OK) return err;
    const char *rest = t;
    if (*rest == '/' && !publishable_levels(++rest)) return WM_ERR_INVAL;
    size_t used = 0;
    err = topic_append(out, outlen, &used, post_exchange, strlen(post_exchange));
    if (err == WM_OK) err = topic_append(out, outlen, &used, post_prefix, strlen(post_prefix));
    if (err == WM_OK) err = topic_append(out, outlen, &used, rest, strlen(rest));
    if (err != WM_OK) {
        out[0] = '\0';
        return err;
    }
    return used > 0 ? WM_OK : WM_ERR_INVAL;
}
