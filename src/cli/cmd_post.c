/* cmd_post.c: `wmesh post`: announce files already in a tree (what the demo's mesh_pub.py did). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "announce_file.h"
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

/* Announces one file: announce_file builds the message, this queues it. */
static int post_file(struct post *p, struct tree *t, const char *root, const char *file,
                     const struct announce_file_options *ao)
{
    char real[PATH_MAX], rel[PATH_MAX], topic[1024];
    enum wm_err e;
    if (!realpath(file, real) || (e = announce_file_relpath(root, real, rel, sizeof rel))) {
        log_error("%s: not a file inside %s", file, root);
        return -1;
    }
    char *text = NULL;
    size_t len;
    const char *step = "publish";
    if (!(e = announce_file(t, rel, ao, &text, &len, topic, sizeof topic, &step)))
        e = mqtt_publish(p->link, topic, text, len, 0);
    if (e == WM_OK)
        log_info("posted %s", rel);
    else
        log_error("%s: %s: %s", file, step, wm_strerror(e));
    free(text);
    return e == WM_OK ? 0 : -1;
}

static int post_all(struct post *p, struct options *o, const char *const *files, size_t nfiles)
{
    struct announce_file_options ao = {
        .base_url = options_get(o, "post-base-url"),
        .method = integrity_method_from_name(options_get(o, "integrity")),
        .exchange = options_get(o, "exchange"),
        .topic_prefix = options_get(o, "topic-prefix"),
    };
    if (cli_parse_format(options_get(o, "post-format"), &ao.format) != 0) return 2;
    if (!integrity_is_digest(ao.method) && ao.method != WM_SUM_MD5NAME) {
        fprintf(stderr, "wmesh post: unknown --integrity %s\n", options_get(o, "integrity"));
        return 2;
    }
    if (cli_parse_inline(o, "post", ao.format, &ao.inline_max) != 0) return 2;
    char root[PATH_MAX];
    struct tree *t = realpath(options_get(o, "dir"), root) ? tree_attach(root) : NULL;
    if (!t) {
        fprintf(stderr, "wmesh post: cannot open %s: %s\n", options_get(o, "dir"), strerror(errno));
        return 1;
    }
    int failed = 0;
    for (size_t i = 0; i < nfiles; i++)
        if (post_file(p, t, root, files[i], &ao) != 0) failed++;
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
    struct mqtt_callbacks cb = {.on_published = on_published, .on_disconnect = on_disconnect};
    if (cli_link_new("post", "post-broker", &mo, &cb, &p, &p.loop, &p.link) != 0) goto done;
    enum wm_err e;
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
