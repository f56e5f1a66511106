/* cmd_peer.c: `wmesh peer`: options to a peer_config, then the daemon. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "credentials.h"
#include "proxy.h"
#include "filter.h"
#include "log.h"
#include "options.h"
#include "peer.h"
#include "retention.h"

static const struct option_spec specs[] = {
    {"config", OPT_STRING, false, "FILE", NULL, "read options from FILE: one 'name value' a line",
     0, 0},
    {"dir", OPT_STRING, false, "DIR", NULL, "tree to fill and serve (required)", 0, 0},
    {"broker", OPT_STRING, true, "URL", NULL, "upstream broker, mqtt://USER:PASS@HOST:PORT", 0, 0},
    {"post-broker", OPT_STRING, false, "URL|none", NULL, "broker to announce on (required)", 0, 0},
    {"http-listen", OPT_STRING, false, "HOST:PORT|none", "none", "embedded HTTP server", 0, 0},
    {"share", OPT_STRING, false, "GROUP", NULL,
     "split the upstreams' announcements among the processes of GROUP (MQTT 5 $share)", 0, 0},
    {"instance", OPT_NUMBER, false, "N", "0",
     "which of several processes on one tree this is (client id, default state dir)", 0, 9999},
    {"client-id", OPT_STRING, false, "ID", NULL, "MQTT client id (default: from host and tree)", 0,
     0},
    {"state-dir", OPT_STRING, false, "DIR", NULL, "where the peer keeps its state", 0, 0},
    CLI_POST_OPTIONS,
    {"subtopic", OPT_STRING, true, "S", "#", "subscribe to <exchange>/<prefix>/S", 0, 0},
    {"centre-id", OPT_STRING, false, "ID", NULL,
     "act as the WIS2 Global Cache ID (e.g. xx-yyy-global-cache): WIS2 versions by data_id and "
     "pubtime, cache false passed on, wmo_wis2_gc_* metrics",
     0, 0},
    {"post-exchange", OPT_STRING, false, "X", NULL,
     "first topic level of re-announcements (default: --exchange)", 0, 0},
    {"post-topic-prefix", OPT_STRING, false, "P", NULL,
     "topic levels after it in re-announcements (default: --topic-prefix)", 0, 0},
    {"post-topic", OPT_STRING, false, "relpath|copy", NULL,
     "levels after <post-exchange>/<post-topic-prefix>: the relPath's directory, or a copy of "
     "the incoming topic's below <exchange>/<topic-prefix> (default: copy with --post-format "
     "wnm, else relpath)",
     0, 0},
    {"accept", OPT_STRING, true, "RE", NULL, "download URLs matching RE (first match wins)", 0, 0},
    {"reject", OPT_STRING, true, "RE", NULL, "refuse URLs matching RE (first match wins)", 0, 0},
    {"lag-warn", OPT_NUMBER, false, "S", "120", "warn about announcements older than S seconds", 0,
     0},
    {"lag-drop", OPT_NUMBER, false, "S", "7200", "drop announcements older than S seconds", 0, 0},
    {"max-message", OPT_NUMBER, false, "BYTES", "8192", "largest announcement accepted", 64, 65536},
    {"max-downloads", OPT_NUMBER, false, "N", "256",
     "concurrent downloads (pipelined or waiting for a connection of their server), and "
     "download connections in all",
     1, 100000},
    {"max-connections-per-host", OPT_NUMBER, false, "N", "4",
     "download connections kept to each server (scheme, host and port)", 1, 1000},
    {"pipeline", OPT_NUMBER, false, "N", "4",
     "requests in flight per connection for files up to 256 KiB (1: no HTTP pipelining)", 1, 64},
    {"max-size", OPT_NUMBER, false, "BYTES", "0", "largest file downloaded (0: no limit)", 0,
     INFINITY},
    {"connect-timeout", OPT_NUMBER, false, "S", "10", "download connection timeout", 0.001,
     INFINITY},
    {"stall-timeout", OPT_NUMBER, false, "S", "30", "cut a download that moves no byte this long",
     1, INFINITY},
    {"retention", OPT_STRING, false, "DURATION", NULL,
     "remove files older than this (e.g. 24h, 90m, 7d) and empty directories", 0, 0},
    {"durability", OPT_STRING, false, "power|process", "power",
     "power: sync journal and files to disk before acknowledging (survives power loss); "
     "process: write them only (survives crashes and kills of the peer, faster)",
     0, 0},
    {"retry-for", OPT_NUMBER, false, "S", "3600", "keep retrying a failed download this long", 0,
     INFINITY},
    {"max-queue", OPT_NUMBER, false, "N", "1000", "announcements in hand before reading pauses", 2,
     1e9},
    {"outbox-max", OPT_NUMBER, false, "N", "10000",
     "re-announcements not yet acknowledged by the post broker before reading pauses", 2, 1e9},
    {"outbox-max-bytes", OPT_NUMBER, false, "BYTES", "16777216",
     "their bytes (topics and messages) before reading pauses", 4096, 1e15},
    {"outbox-retries", OPT_NUMBER, false, "N", "3",
     "attempts after the post broker refused an announcement (1 s, 2 s, 4 s ... apart) before "
     "it is set aside (wmesh outbox lists and re-sends those)",
     0, 30},
    {"seen-capacity", OPT_NUMBER, false, "N", "100000",
     "seen-cache entries, 15 bytes each (0: none)", 0, 1e9},
    {"seen-ttl", OPT_NUMBER, false, "S", "86400", "how long the seen-cache remembers a version", 1,
     1e9},
    {"catchup", OPT_STRING, false, "yes|no|auto", "auto",
     "keep and serve a log of this peer's announcements, and fetch what it missed from its "
     "upstreams' logs (docs/CATCHUP.md); auto: yes, but no with --centre-id (WIS2 brokers "
     "carry WIS2 topics only)",
     0, 0},
    {"catchup-id", OPT_STRING, false, "ID", NULL,
     "this peer's name in catch-up ([A-Za-z0-9._-], at most 64; default: the client id)", 0, 0},
    {"catchup-window", OPT_NUMBER, false, "S", "0",
     "how far back a new upstream's log is read (0: --lag-drop, or 24 h without it)", 0, INFINITY},
    {"catchup-keep", OPT_STRING, false, "DURATION", NULL,
     "how long the log keeps records (default: --retention, or 24h)", 0, 0},
    {"catchup-seq", OPT_STRING, false, "yes|no", "yes",
     "put (peer, epoch, seq) in each re-announcement, so that subscribers see a gap at once", 0, 0},
    {"credentials", OPT_STRING, false, "FILE", NULL,
     "passwords for URLs that lack one (default ~/.config/wmesh/credentials.conf if present)", 0,
     0},
    CLI_LINK_OPTIONS,
    {"name", OPT_STRING, false, "NAME", NULL, "name shown in log lines", 0, 0},
    {"verbose", OPT_FLAG, false, NULL, NULL, "log debug messages too (-v)", 0, 0},
    {"quiet", OPT_FLAG, false, NULL, NULL, "log warnings and errors only (-q)", 0, 0},
    {"log-format", OPT_STRING, false, "text|json", "text", "format of log lines on stderr", 0, 0},
    {NULL, 0, false, NULL, NULL, NULL, 0, 0},
};

#define USAGE                                                                                      \
    "wmesh peer --dir DIR --broker URL [--broker URL ...] --post-broker URL|none [options]"

static void free_strings(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* Adds the --accept and --reject rules in the order given; rules on the command line replace
 * those of the configuration file. */
static int build_filter(struct options *o, struct filter *f)
{
    bool cli_rules = false;
    const char *name, *pattern;
    bool from_file;
    for (size_t i = 0; (pattern = options_nth(o, i, &name, &from_file)); i++)
        if (!from_file && (!strcmp(name, "accept") || !strcmp(name, "reject"))) cli_rules = true;
    for (size_t i = 0; (pattern = options_nth(o, i, &name, &from_file)); i++) {
        bool accept = strcmp(name, "accept") == 0;
        if ((!accept && strcmp(name, "reject") != 0) || (cli_rules && from_file)) continue;
        char why[200];
        if (filter_add(f, accept, pattern, why, sizeof why) != WM_OK) {
            fprintf(stderr, "wmesh peer: bad regular expression %s: %s\n", pattern, why);
            return -1;
        }
    }
    return 0;
}

/* yes or no; -1 (said) for anything else. */
static int yes_no(struct options *o, const char *name, bool *out)
{
    const char *v = options_get(o, name);
    *out = strcmp(v, "yes") == 0;
    if (*out || strcmp(v, "no") == 0) return 0;
    fprintf(stderr, "wmesh peer: --%s is yes or no, not %s\n", name, v);
    return -1;
}

static int catchup_options(struct options *o, struct peer_config *c)
{
    bool auto_on = strcmp(options_get(o, "catchup"), "auto") == 0;
    if ((!auto_on && yes_no(o, "catchup", &c->catchup)) ||
        yes_no(o, "catchup-seq", &c->catchup_seq))
        return -1;
    if (auto_on) c->catchup = c->centre_id == NULL;
    c->catchup_id = options_get(o, "catchup-id");
    if (c->catchup_id &&
        (!*c->catchup_id || strlen(c->catchup_id) > 64 ||
         strspn(c->catchup_id,
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
             strlen(c->catchup_id))) {
        fprintf(stderr, "wmesh peer: --catchup-id wants 1 to 64 of A-Z a-z 0-9 . _ -, not %s\n",
                c->catchup_id);
        return -1;
    }
    if (options_number(o, "catchup-window", &c->catchup_window_s)) return -1;
    const char *keep = options_get(o, "catchup-keep");
    if (keep && retention_parse_duration(keep, &c->catchup_keep_s) != WM_OK) {
        fprintf(stderr, "wmesh peer: --catchup-keep wants a duration such as 24h, not %s\n", keep);
        return -1;
    }
    if (!keep) c->catchup_keep_s = c->retention_s;
    return 0;
}

/* The number options; options_parse has checked each against the range in specs. */
static int numbers(struct options *o, struct peer_config *c)
{
    double max_message, max_downloads, host_connections, pipeline, max_size, max_queue;
    double seen_capacity;
    double outbox_max, outbox_max_bytes, outbox_retries;
    if (options_number(o, "outbox-max", &outbox_max) ||
        options_number(o, "outbox-max-bytes", &outbox_max_bytes) ||
        options_number(o, "outbox-retries", &outbox_retries) ||
        options_number(o, "lag-warn", &c->lag_warn_s) ||
        options_number(o, "lag-drop", &c->lag_drop_s) ||
        options_number(o, "max-message", &max_message) ||
        options_number(o, "max-downloads", &max_downloads) ||
        options_number(o, "max-connections-per-host", &host_connections) ||
        options_number(o, "pipeline", &pipeline) || options_number(o, "max-size", &max_size) ||
        options_number(o, "retry-for", &c->retry_for_s) ||
        options_number(o, "connect-timeout", &c->connect_timeout_s) ||
        options_number(o, "stall-timeout", &c->stall_timeout_s) ||
        options_number(o, "max-queue", &max_queue) ||
        options_number(o, "seen-capacity", &seen_capacity) ||
        options_number(o, "seen-ttl", &c->seen_ttl_s))
        return -1;
    c->max_message = (size_t)max_message;
    c->max_downloads = (int)max_downloads;
    c->max_host_connections = (int)host_connections;
    c->pipeline = (int)pipeline;
    c->max_size = (int64_t)max_size;
    c->max_queue = (size_t)max_queue;
    c->outbox_max = (size_t)outbox_max;
    c->outbox_max_bytes = (uint64_t)outbox_max_bytes;
    c->outbox_retries = (int)outbox_retries;
    c->seen_capacity = (size_t)seen_capacity;
    return 0;
}

/* --post-exchange, --post-topic-prefix and --post-topic; after --post-format. */
static int post_topics(struct options *o, struct peer_config *c)
{
    const char *mode = options_get(o, "post-topic");
    c->post_exchange = options_get(o, "post-exchange");
    c->post_topic_prefix = options_get(o, "post-topic-prefix");
    if (!c->post_exchange) c->post_exchange = c->exchange;
    if (!c->post_topic_prefix) c->post_topic_prefix = c->topic_prefix;
    /* WIS2 topics name the centre and the discipline, not the data_id: keep them. */
    if (!mode)
        c->post_topic_copy = c->post_format == WM_FORMAT_WNM;
    else if (strcmp(mode, "copy") == 0 || strcmp(mode, "relpath") == 0)
        c->post_topic_copy = strcmp(mode, "copy") == 0;
    else {
        fprintf(stderr, "wmesh peer: --post-topic is relpath or copy, not %s\n", mode);
        return -1;
    }
    if (c->post_broker &&
        (strpbrk(c->post_exchange, "+#") || strpbrk(c->post_topic_prefix, "+#"))) {
        fprintf(stderr,
                "wmesh peer: re-announcements cannot go to a topic with '+' or '#' "
                "(%s/%s): give --post-exchange and --post-topic-prefix\n",
                c->post_exchange, c->post_topic_prefix);
        return -1;
    }
    return 0;
}

static int configure(struct options *o, struct peer_config *c)
{
    c->dir = options_get(o, "dir");
    c->post_broker = cli_none_to_null(options_get(o, "post-broker"));
    c->post_base_url = options_get(o, "post-base-url");
    c->http_listen = cli_none_to_null(options_get(o, "http-listen"));
    c->client_id = options_get(o, "client-id");
    c->share_group = options_get(o, "share");
    double instance = 0;
    if (options_number(o, "instance", &instance)) return -1;
    c->instance = (int)instance;
    if (c->share_group && (!*c->share_group || strpbrk(c->share_group, "/+#"))) {
        fprintf(stderr, "wmesh peer: --share wants a group name without '/', '+' or '#'\n");
        return -1;
    }
    c->state_dir = options_get(o, "state-dir");
    c->exchange = options_get(o, "exchange");
    c->topic_prefix = options_get(o, "topic-prefix");
    c->name = options_get(o, "name");
    c->centre_id = options_get(o, "centre-id");
    if (c->centre_id && (!*c->centre_id || strpbrk(c->centre_id, "/+# \"\\"))) {
        fprintf(stderr, "wmesh peer: --centre-id wants a WIS2 centre-id such as "
                        "xx-yyy-global-cache\n");
        return -1;
    }
    if (!c->dir || !options_get(o, "post-broker")) {
        fprintf(stderr, "wmesh peer: --dir and --post-broker are required (see --help)\n");
        return -1;
    }
    if ((c->post_broker || c->http_listen) && !c->post_base_url) {
        fprintf(stderr, "wmesh peer: --post-base-url is required to announce or serve\n");
        return -1;
    }
    struct mqtt_options link = {0}; /* what every broker link of the peer shares */
    if (cli_link_options(o, "peer", &link) != 0) return -1;
    c->mqtt_version = link.protocol;
    c->cafile = link.cafile;
    c->certfile = link.certfile;
    c->keyfile = link.keyfile;
    const char *retention = options_get(o, "retention");
    if (retention && retention_parse_duration(retention, &c->retention_s) != WM_OK) {
        fprintf(stderr, "wmesh peer: --retention wants a duration such as 24h, not %s\n",
                retention);
        return -1;
    }
    if (catchup_options(o, c) != 0) return -1;
    const char *durability = options_get(o, "durability");
    c->survive_power_loss = strcmp(durability, "power") == 0;
    if (!c->survive_power_loss && strcmp(durability, "process") != 0) {
        fprintf(stderr, "wmesh peer: --durability is power or process\n");
        return -1;
    }
    if (cli_parse_format(options_get(o, "post-format"), &c->post_format) != 0) return -1;
    if (post_topics(o, c) != 0) return -1;
    if (cli_parse_inline(o, "peer", c->post_format, &c->inline_max) != 0) return -1;
    return numbers(o, c);
}

/* The broker URLs with the passwords the credentials file holds for them; the caller frees
 * each string and the array. */
static char **resolve_urls(const struct credentials *cred, const char **urls, size_t n)
{
    char **out = calloc(n + 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++) {
        if (!(out[i] = credentials_apply(cred, urls[i]))) {
            free_strings(out);
            return NULL;
        }
    }
    return out;
}

int cmd_peer(int argc, char **argv)
{
    bool help;
    struct options *o = options_parse(USAGE, specs, argc, argv, &help);
    if (!o) return help ? 0 : 2;
    struct peer_config c = {0};
    struct filter *f = filter_new();
    const char **brokers = NULL, **subtopics = NULL;
    char **resolved = NULL, *post = NULL;
    struct credentials *cred = NULL;
    struct proxy_config proxies = {0};
    int rc = 2;
    if (!f || configure(o, &c) != 0 || build_filter(o, f) != 0 ||
        cli_credentials(o, "peer", &cred) != 0)
        goto done;
    if (cli_set_logging(o) != 0 || cli_proxies(o, "peer", cred, &proxies) != 0) goto done;
    c.proxies = &proxies;
    brokers = options_get_all(o, "broker", &c.nbrokers);
    subtopics = options_get_all(o, "subtopic", &c.nsubtopics);
    if (!brokers || !subtopics || !(resolved = resolve_urls(cred, brokers, c.nbrokers))) goto done;
    if (c.post_broker && !(post = credentials_apply(cred, c.post_broker))) goto done;
    c.post_broker = post;
    c.brokers = (const char *const *)resolved;
    c.subtopics = subtopics;
    c.filter = f;
    rc = peer_run(&c);
done:
    proxy_config_clear(&proxies);
    free_strings(resolved);
    free(post);
    credentials_free(&cred);
    free(brokers);
    free(subtopics);
    filter_free(&f);
    options_free(&o);
    return rc;
}
