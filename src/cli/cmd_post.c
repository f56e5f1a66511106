/* cmd_post.c: `wmesh post`: announce files already in a tree (what the demo's mesh_pub.py did). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_common.h"
#include "codec.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "options.h"
#include "proxy.h"
#include "tree.h"

static const struct option_spec specs[] = {
    {"post-broker", OPT_STRING, false, "URL", NULL, "broker to announce on (required)", 0, 0},
    {"dir", OPT_STRING, false, "DIR", NULL, "the tree the files are in (required)", 0, 0},
    CLI_POST_OPTIONS,
    {"integrity", OPT_STRING, false, "METHOD", "sha512", "checksum: sha512, sha256, md5, ...", 0,
     0},
    {"timeout", OPT_NUMBER, false, "S", "30", "give up when the broker has not acknowledged", 0,
     1e9},
    CLI_LINK_OPTIONS,
    {NULL, 0, false, NULL, NULL, NULL, 0, 0},
};

#define USAGE "wmesh post --post-broker URL --post-base-url URL --dir DIR [options] FILE..."

struct post {
    struct loop *loop;
    struct mqtt_link *link;
    size_t refused; /* announcements the broker refused */
    struct loop_timer timeout;
    size_t inline_max; /* --inline, capped by what the format carries */
};

static void on_published(void *arg, struct mqtt_link *link, const struct mqtt_published *m)
{
    struct post *p = arg;
    if (m->why) {
        log_error("the broker refused the announcement on %s: %s", m->topic, m->why);
        p->refused++;
    }
    if (mqtt_pending(link) == 0) loop_stop(p->loop);
}

static void on_disconnect(void *arg, struct mqtt_link *link)
{
    (void)arg;
    (void)link;
}

static void on_timeout(void *arg)
{
    struct post *p = arg;
    loop_stop(p->loop);
}

/* relPath of path inside root: the part after root, with '%' escaped because relPath is in URL
 * form. Returns -1 when path is not inside root. */
static int relpath_of(const char *root, const char *path, char *out, size_t outlen)
{
    size_t rlen = strlen(root);
    if (strncmp(path, root, rlen) != 0 || path[rlen] != '/') return -1;
    size_t j = 0;
    for (const char *c = path + rlen + 1; *c; c++) {
        if (j + 4 > outlen) return -1;
        if (*c == '%') {
            memcpy(out + j, "%25", 3);
            j += 3;
        } else {
            out[j++] = *c;
        }
    }
    out[j] = '\0';
    return j ? 0 : -1;
}

/* With --inline: reads a small file into a's content and checksums those very bytes, so that the
 * two agree even if the file changes meanwhile. False when the file is (or grew) too big for
 * it, or cannot be read: the caller announces it without content. */
static bool take_inline(struct post *p, struct tree *t, const char *clean, enum wm_sum method,
                        struct announce *a)
{
    int fd = -1;
    if (a->size > (int64_t)p->inline_max || tree_open_file(t, clean, &fd, NULL, NULL) != WM_OK)
        return false;
    unsigned char *bytes = malloc(p->inline_max + 1);
    size_t len = 0;
    ssize_t n = -1;
    while (bytes && len <= p->inline_max &&
           (n = read(fd, bytes + len, p->inline_max + 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
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

/* Builds, encodes and queues the announcement of one file. */
static int post_file(struct post *p, struct options *o, struct tree *t, const char *root,
                     const char *file, enum wm_format fmt, enum wm_sum method)
{
    char real[PATH_MAX], rel[PATH_MAX], clean[PATH_MAX], topic[1024];
    if (!realpath(file, real) || relpath_of(root, real, rel, sizeof rel) != 0 ||
        tree_clean_relpath(rel, clean, sizeof clean) != WM_OK) {
        log_error("%s: not a file inside %s", file, root);
        return -1;
    }
    struct announce *a = announce_new();
    char *text = NULL;
    size_t len;
    enum wm_err e = WM_ERR_NOMEM;
    const char *step = "stat";
    struct stat st;
    if (!a || stat(real, &st) != 0) goto done;
    a->pubtime_ns = loop_wall_ns();
    a->pubtime_digits = 6;
    a->size = st.st_size;
    a->base_url = strdup(options_get(o, "post-base-url"));
    a->rel_path = strdup(rel);
    if (!a->base_url || !a->rel_path) goto done;
    step = "checksum";
    /* From the bytes: the file may have changed since a checksum was cached. */
    if (!(p->inline_max && take_inline(p, t, clean, method, a)) &&
        (e = tree_lookup(t, clean, method, true, &a->sum, NULL)))
        goto done;
    step = "encode";
    if ((e = codec_encode_within(a, fmt, WM_MESSAGE_MAX_DEFAULT, &text, &len))) goto done;
    step = "topic";
    if ((e = codec_topic(options_get(o, "exchange"), options_get(o, "topic-prefix"), rel, topic,
                         sizeof topic)))
        goto done;
    step = "publish";
    if ((e = mqtt_publish(p->link, topic, text, len, 0))) goto done;
    log_info("posted %s", rel);
done:
    if (e != WM_OK) log_error("%s: %s: %s", file, step, wm_strerror(e));
    free(text);
    announce_free(&a);
    return e == WM_OK ? 0 : -1;
}

static int post_all(struct post *p, struct options *o, const char *const *files, size_t nfiles)
{
    enum wm_format fmt;
    enum wm_sum method = integrity_method_from_name(options_get(o, "integrity"));
    if (cli_parse_format(options_get(o, "post-format"), &fmt) != 0) return 2;
    if (!integrity_is_digest(method) && method != WM_SUM_MD5NAME) {
        fprintf(stderr, "wmesh post: unknown --integrity %s\n", options_get(o, "integrity"));
        return 2;
    }
    if (cli_parse_inline(o, "post", fmt, &p->inline_max) != 0) return 2;
    if (p->inline_max > codec_inline_capacity(fmt)) p->inline_max = codec_inline_capacity(fmt);
    char root[PATH_MAX];
    struct tree *t = realpath(options_get(o, "dir"), root) ? tree_attach(root) : NULL;
    if (!t) {
        fprintf(stderr, "wmesh post: cannot open %s: %s\n", options_get(o, "dir"), strerror(errno));
        return 1;
    }
    int failed = 0;
    for (size_t i = 0; i < nfiles; i++)
        if (post_file(p, o, t, root, files[i], fmt, method) != 0) failed++;
    tree_close(&t);
    return failed ? 1 : 0;
}

int cmd_post(int argc, char **argv)
{
    bool help;
    struct options *o = options_parse(USAGE, specs, argc, argv, &help);
    if (!o) return help ? 0 : 2;
    size_t nfiles;
    const char *const *files = options_positionals(o, &nfiles);
    int rc = 2;
    struct post p = {0};
    struct proxy_config proxies = {0};
    double timeout;
    if (!options_get(o, "post-broker") || !options_get(o, "post-base-url") ||
        !options_get(o, "dir") || nfiles == 0 || options_number(o, "timeout", &timeout)) {
        options_usage(USAGE, specs);
        goto done;
    }
    struct mqtt_options mo = {.url = options_get(o, "post-broker")};
    if (cli_link_options(o, "post", &mo) != 0 || cli_proxies(o, "post", NULL, &proxies) != 0)
        goto done;
    mo.proxies = &proxies;
    p.loop = loop_new();
    struct mqtt_callbacks cb = {.on_published = on_published, .on_disconnect = on_disconnect};
    enum wm_err e = WM_ERR_NOMEM;
    if (!p.loop || !(p.link = mqtt_link_new(p.loop, &mo, &cb, &p, &e))) {
        fprintf(stderr, "wmesh post: cannot use broker: %s\n", wm_strerror(e));
        goto done;
    }
    rc = post_all(&p, o, files, nfiles);
    if (mqtt_pending(p.link) > 0) {
        loop_timer_start(p.loop, &p.timeout, (int64_t)(timeout * 1000), on_timeout, &p);
        if ((e = loop_run(p.loop)) != WM_OK) {
            log_error("event loop failed: %s", wm_strerror(e));
            rc = 1;
        }
        loop_timer_stop(p.loop, &p.timeout);
    }
    if (p.refused) rc = 1;
    if (mqtt_pending(p.link) > 0) {
        log_error("broker did not acknowledge %d announcement(s)", mqtt_pending(p.link));
        rc = 1;
    }
done:
    mqtt_link_free(&p.link);
    loop_free(&p.loop);
    proxy_config_clear(&proxies);
    options_free(&o);
    return rc;
}
