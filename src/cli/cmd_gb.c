/* cmd_gb.c: `wmesh gb`: options to a gb_config, then the WIS2 Global Broker daemon. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "credentials.h"
#include "gb.h"
#include "log.h"
#include "options.h"
#include "proxy.h"

static const struct option_spec specs[] = {
    {"config", OPT_STRING, false, "FILE", NULL, "read options from FILE: one 'name value' a line",
     0, 0},
    {"centre-id", OPT_STRING, false, "ID", NULL,
     "this Global Broker's centre-id, the report_by label of its metrics (required)", 0, 0},
    {"node", OPT_STRING, true, "ID[,ID...]=URL", NULL,
     "a WIS2 Node's broker and the centre-ids it publishes under: subscribes to "
     "origin/a/wis2/ID/# for each, and drops messages of other centre-ids",
     0, 0},
    {"nodes-file", OPT_STRING, false, "FILE", NULL,
     "more nodes, one a line: ID[,ID...]=URL or ID[,ID...] URL ('#' comments)", 0, 0},
    {"peer-broker", OPT_STRING, true, "ID=URL", NULL,
     "another Global Broker or a Global Cache, centre-id ID: subscribes to origin/a/wis2/# and "
     "cache/a/wis2/#, any centre",
     0, 0},
    {"post-broker", OPT_STRING, false, "URL", NULL,
     "the local broker messages are republished on (required)", 0, 0},
    {"client-id", OPT_STRING, false, "ID", NULL,
     "MQTT client id on the post broker (default: a random one)", 0, 0},
    {"http-listen", OPT_STRING, false, "HOST:PORT|none", "none", "serve /metrics here", 0, 0},
    {"topic-table", OPT_STRING, false, "FILE", NULL,
     "earth-system-discipline paths of the WIS2 topic hierarchy, one a line, as the bundle's "
     "earth-system-discipline.csv (default: built in)",
     0, 0},
    {"leaf-only", OPT_STRING, false, "yes|no", "yes",
     "refuse topics that stop above a leaf of the topic hierarchy (the WMO tests want yes)", 0, 0},
    {"dedup-window", OPT_NUMBER, false, "S", "900",
     "how long a message id is remembered: later copies are dropped", 1, 1e9},
    {"dedup-capacity", OPT_NUMBER, false, "N", "2000000",
     "message ids remembered at most, 15 bytes each (the oldest go first)", 1, 1e9},
    {"max-pending", OPT_NUMBER, false, "N", "20000",
     "republished messages not yet acknowledged by the post broker before reading pauses", 2, 1e8},
    {"credentials", OPT_STRING, false, "FILE", NULL,
     "passwords for URLs that lack one (default ~/.config/wmesh/credentials.conf if present)", 0,
     0},
    CLI_LINK_OPTIONS,
    {"name", OPT_STRING, false, "NAME", NULL, "name shown in log lines", 0, 0},
    {"verbose", OPT_FLAG, false, NULL, NULL, "log debug messages too, each dropped message (-v)", 0,
     0},
    {"quiet", OPT_FLAG, false, NULL, NULL, "log warnings and errors only (-q)", 0, 0},
    {"log-format", OPT_STRING, false, "text|json", "text", "format of log lines on stderr", 0, 0},
    {NULL, 0, false, NULL, NULL, NULL, 0, 0},
};

#define USAGE                                                                                      \
    "wmesh gb --centre-id ID --post-broker URL [--node ID=URL ...] [--nodes-file FILE] "           \
    "[--peer-broker ID=URL ...] [options]"

#define CENTRES_PER_LINK_MAX 64

/* Everything the links' configurations point to. */
struct links {
    struct gb_link_config *v;
    size_t n, cap;
    char **strings; /* every string made here, freed at the end */
    size_t nstrings, capstrings;
};

static char *keep(struct links *l, char *s)
{
    if (!s) return NULL;
    if (l->nstrings == l->capstrings) {
        size_t cap = l->capstrings ? l->capstrings * 2 : 64;
        char **grown = realloc(l->strings, cap * sizeof *grown);
        if (!grown) {
            free(s);
            return NULL;
        }
        l->strings = grown;
        l->capstrings = cap;
    }
    return l->strings[l->nstrings++] = s;
}

static void links_free(struct links *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((void *)l->v[i].centres);
    free(l->v);
    for (size_t i = 0; i < l->nstrings; i++)
        free(l->strings[i]);
    free(l->strings);
}

static bool centre_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 63) return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Adds the link "ID[,ID...]" at URL (with the credentials file's password); where names the
 * option or file line for messages. */
static int add_link(struct links *l, const struct credentials *cred, const char *ids, size_t idslen,
                    const char *url, bool node, const char *where)
{
    char *list = keep(l, strndup(ids, idslen));
    char *full = keep(l, credentials_apply(cred, url));
    const char **centres = calloc(CENTRES_PER_LINK_MAX, sizeof *centres);
    size_t n = 0;
    if (!list || !full || !centres) {
        free(centres);
        fprintf(stderr, "wmesh gb: out of memory\n");
        return -1;
    }
    for (char *p = list, *comma; p; p = comma) {
        if ((comma = strchr(p, ','))) *comma++ = '\0';
        if (!centre_ok(p) || n == CENTRES_PER_LINK_MAX || (!node && n == 1)) {
            free(centres);
            fprintf(stderr,
                    "wmesh gb: %s: want %s=URL, a centre-id of a-z, 0-9, '-' and '_' (not "
                    "\"%s\")\n",
                    where, node ? "ID[,ID...]" : "ID", p);
            return -1;
        }
        centres[n++] = p;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct gb_link_config *grown = realloc(l->v, cap * sizeof *grown);
        if (!grown) {
            free(centres);
            return -1;
        }
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n++] =
        (struct gb_link_config){.url = full, .centres = centres, .ncentres = n, .node = node};
    return 0;
}

/* "ID[,ID...]=URL", or with ws (a nodes file's line) "ID[,ID...] URL" too. */
static int parse_link(struct links *l, const struct credentials *cred, const char *text, bool node,
                      bool ws, const char *where)
{
    size_t idlen = strcspn(text, ws ? "= \t" : "=");
    const char *url = text + idlen;
    if (*url == '\0') {
        fprintf(stderr, "wmesh gb: %s: want ID=URL, not \"%s\"\n", where, text);
        return -1;
    }
    url += strspn(url, ws ? "= \t" : "=");
    return add_link(l, cred, text, idlen, url, node, where);
}

static int read_nodes_file(struct links *l, const struct credentials *cred, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "wmesh gb: --nodes-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL, where[600];
    size_t cap = 0, lineno = 0;
    ssize_t got;
    int rc = 0;
    while (rc == 0 && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *s = line + strspn(line, " \t");
        size_t n = strlen(s);
        while (n > 0 && strchr(" \t\r\n", s[n - 1]))
            s[--n] = '\0';
        if (n == 0 || s[0] == '#') continue;
        snprintf(where, sizeof where, "%.500s:%zu", path, lineno);
        rc = parse_link(l, cred, s, true, true, where);
    }
    free(line);
    fclose(f);
    return rc;
}

static int numbers(struct options *o, struct gb_config *c)
{
    double window, capacity, pending;
    /* options_parse has checked them against the ranges in specs. */
    if (options_number(o, "dedup-window", &window) ||
        options_number(o, "dedup-capacity", &capacity) ||
        options_number(o, "max-pending", &pending))
        return -1;
    c->dedup_window_s = (uint32_t)window;
    c->dedup_capacity = (size_t)capacity;
    c->max_pending = (size_t)pending;
    const char *leaf = options_get(o, "leaf-only");
    c->leaf_only = strcmp(leaf, "yes") == 0;
    if (!c->leaf_only && strcmp(leaf, "no") != 0) {
        fprintf(stderr, "wmesh gb: --leaf-only is yes or no\n");
        return -1;
    }
    return 0;
}

static int all_links(struct options *o, const struct credentials *cred, struct links *l)
{
    size_t n;
    int rc = 0;
    const char **v = options_get_all(o, "node", &n);
    for (size_t i = 0; rc == 0 && v && i < n; i++)
        rc = parse_link(l, cred, v[i], true, false, "--node");
    free(v);
    if (rc == 0 && options_get(o, "nodes-file"))
        rc = read_nodes_file(l, cred, options_get(o, "nodes-file"));
    v = options_get_all(o, "peer-broker", &n);
    for (size_t i = 0; rc == 0 && v && i < n; i++)
        rc = parse_link(l, cred, v[i], false, false, "--peer-broker");
    free(v);
    if (rc == 0 && l->n == 0) {
        fprintf(stderr, "wmesh gb: no link: give --node, --nodes-file or --peer-broker\n");
        rc = -1;
    }
    return rc;
}

int cmd_gb(int argc, char **argv)
{
    bool help;
    struct options *o = options_parse(USAGE, specs, argc, argv, &help);
    if (!o) return help ? 0 : 2;
    struct gb_config c = {0};
    struct links links = {0};
    struct credentials *cred = NULL;
    struct proxy_config proxies = {0};
    char *post = NULL;
    int rc = 2;
    c.centre_id = options_get(o, "centre-id");
    c.client_id = options_get(o, "client-id");
    c.http_listen = cli_none_to_null(options_get(o, "http-listen"));
    c.topic_table = options_get(o, "topic-table");
    if (!c.centre_id || !centre_ok(c.centre_id) || !options_get(o, "post-broker")) {
        fprintf(stderr, "wmesh gb: --centre-id (a-z, 0-9, '-', '_') and --post-broker are "
                        "required (see --help)\n");
        goto done;
    }
    struct mqtt_options mo = {0};
    if (numbers(o, &c) != 0 || cli_set_logging(o) != 0 || cli_link_options(o, "gb", &mo) != 0 ||
        cli_credentials(o, "gb", &cred) != 0 || cli_proxies(o, "gb", cred, &proxies) != 0 ||
        all_links(o, cred, &links) != 0)
        goto done;
    if (!(post = credentials_apply(cred, options_get(o, "post-broker")))) goto done;
    if (options_get(o, "name")) log_set_name(options_get(o, "name"));
    c.mqtt_version = mo.protocol;
    c.cafile = mo.cafile;
    c.certfile = mo.certfile;
    c.keyfile = mo.keyfile;
    c.proxies = &proxies;
    c.post_broker = post;
    c.links = links.v;
    c.nlinks = links.n;
    rc = gb_run(&c);
done:
    proxy_config_clear(&proxies);
    free(post);
    links_free(&links);
    credentials_free(&cred);
    options_free(&o);
    return rc;
}
