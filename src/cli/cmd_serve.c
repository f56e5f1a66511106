/* cmd_serve.c: `wmesh serve`: serve a tree read-only over HTTP until stopped. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"
#include "options.h"
#include "tree.h"

static const struct option_spec specs[] = {
    {"dir", OPT_STRING, false, "DIR", NULL, "tree to serve (required)", 0, 0},
    {"http-listen", OPT_STRING, false, "HOST:PORT", NULL, "address to listen on (required)", 0, 0},
    {"url-prefix", OPT_STRING, false, "PATH", "/data", "URL path the tree is served under", 0, 0},
    {NULL, 0, false, NULL, NULL, NULL, 0, 0},
};

#define USAGE "wmesh serve --dir DIR --http-listen HOST:PORT"

static void on_signal(void *arg)
{
    loop_stop(arg);
}

int cmd_serve(int argc, char **argv)
{
    bool help;
    struct options *o = options_parse(USAGE, specs, argc, argv, &help);
    if (!o) return help ? 0 : 2;
    int rc = 2;
    struct tree *t = NULL;
    struct httpd *h = NULL;
    struct loop *l = NULL;
    if (!options_get(o, "dir") || !options_get(o, "http-listen")) {
        options_usage(USAGE, specs);
        goto done;
    }
    rc = 1;
    t = tree_attach(options_get(o, "dir"));
    if (!t) {
        log_error("cannot open %s: %s", options_get(o, "dir"), strerror(errno));
        goto done;
    }
    enum wm_err e;
    const char *prefix = options_get(o, "url-prefix");
    h = httpd_start(options_get(o, "http-listen"), t, prefix, &e);
    if (!h) {
        log_error("cannot serve on %s: %s", options_get(o, "http-listen"), wm_strerror(e));
        goto done;
    }
    log_info("serving %s at http://%s%s/", tree_path(t), options_get(o, "http-listen"), prefix);
    l = loop_new();
    if (!l || loop_on_signal(l, SIGINT, on_signal, l) || loop_on_signal(l, SIGTERM, on_signal, l))
        goto done;
    rc = loop_run(l) == WM_OK ? 0 : 1;
done:
    httpd_stop(&h);
    tree_close(&t);
    loop_free(&l);
    options_free(&o);
    return rc;
}
