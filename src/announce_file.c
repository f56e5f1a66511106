/* announce_file.c: the announcement of a file already in a tree (stat, checksum, inline content,
 * encoding and topic), for `wmesh post` and anything else that announces stored files. */
#include "announce_file.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "loop.h"
#include "tree.h"

enum wm_err announce_file_relpath(const char *root, const char *path, char *out, size_t outlen)
{
    if (!root || !path || !out || outlen == 0) return WM_ERR_INVAL;
    out[0] = '\0';
    size_t rlen = strlen(root);
    while (rlen > 0 && root[rlen - 1] == '/') /* "/" is the root of everything */
        rlen--;
    if (strncmp(path, root, rlen) != 0 || path[rlen] != '/' || path[rlen + 1] == '\0')
        return WM_ERR_INVAL;
    size_t j = 0;
    for (const char *c = path + rlen + 1; *c; c++) {
        size_t need = *c == '%' ? 3 : 1;
        if (j + need >= outlen) {
            out[0] = '\0';
            return WM_ERR_TOOBIG;
        }
        memcpy(out + j, *c == '%' ? "%25" : c, need);
        j += need;
    }
    out[j] = '\0';
    return WM_OK;
}

/* Reads the file of fd, of size bytes by its fstat, into a's content when it has at most max
 * bytes, and checksums those very bytes. False when it is (or grew) too big, cannot be read, or
 * memory is short: the caller announces it without content. */
static bool take_inline(int fd, int64_t size, size_t max, const char *clean, enum wm_sum method,
                        struct announce *a)
{
    if (size > (int64_t)max) return false;
    unsigned char *bytes = malloc(max + 1);
    size_t len = 0;
    ssize_t n = -1;
    while (bytes && len <= max && (n = read(fd, bytes + len, max + 1 - len)) > 0)
        len += (size_t)n;
    /* n is 0 at the end of the file; else the file is bigger, unreadable, or no memory. */
    const char *base = strrchr(clean, '/');
    if (n != 0 ||
        integrity_of_buffer(method, base ? base + 1 : clean, bytes, len, &a->sum) != WM_OK) {
        free(bytes);
        return false;
    }
    a->content = bytes;
    a->content_len = len;
    a->content_encoding = WM_CONTENT_UTF8; /* the encoders use base64 for other bytes */
    a->size = (int64_t)len;
    return true;
}

/* Size and checksum of the file, and its content when small enough for o->inline_max. */
static enum wm_err fill_file(struct tree *t, const char *clean,
                             const struct announce_file_options *o, struct announce *a)
{
    int fd = -1;
    off_t size = 0;
    enum wm_err e = tree_open_file(t, clean, &fd, &size, NULL);
    if (e != WM_OK) return e;
    a->size = (int64_t)size;
    size_t max = o->inline_max;
    if (max > codec_inline_capacity(o->format)) max = codec_inline_capacity(o->format);
    bool inlined = max > 0 && take_inline(fd, a->size, max, clean, o->method, a);
    close(fd);
    return inlined ? WM_OK : tree_lookup(t, clean, o->method, true, &a->sum, NULL);
}

enum wm_err announce_file(struct tree *t, const char *rel_path,
                          const struct announce_file_options *o, char **text, size_t *len,
                          char *topic, size_t topiclen, const char **step)
{
    const char *unused;
    if (!step) step = &unused;
    *step = "path";
    if (text) *text = NULL;
    if (!t || !rel_path || !o || !o->base_url || !text || !len || !topic || topiclen == 0)
        return WM_ERR_INVAL;
    char clean[PATH_MAX];
    enum wm_err e = tree_clean_relpath(rel_path, clean, sizeof clean);
    if (e != WM_OK) return e;
    struct announce *a = announce_new();
    if (!a) return WM_ERR_NOMEM;
    a->pubtime_ns = o->pubtime_ns ? o->pubtime_ns : loop_wall_ns();
    a->pubtime_digits = 6;
    e = WM_ERR_NOMEM;
    if (!(a->base_url = strdup(o->base_url)) || !(a->rel_path = strdup(rel_path))) goto done;
    *step = "checksum";
    if ((e = fill_file(t, clean, o, a)) != WM_OK) goto done;
    *step = "encode";
    size_t max = o->max_message ? o->max_message : WM_MESSAGE_MAX_DEFAULT;
    if ((e = codec_encode_within(a, o->format, max, text, len)) != WM_OK) goto done;
    *step = "topic";
    if ((e = codec_topic(o->exchange, o->topic_prefix, rel_path, topic, topiclen)) != WM_OK) {
        free(*text);
        *text = NULL;
    }
done:
    announce_free(&a);
    return e;
}
