/* cmd_peer.c: `wmesh peer`: options to a peer_config, then the daemon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "filter.h"
#include "log.h"
#include "options.h"
#include "peer.h"

static const struct option_spec specs[] = {
    {"dir", OPT_STRING, false, "DIR", NULL, "tree to fill and serve (required)"},
    {"broker", OPT_STRING, true, "URL", NULL, "upstream broker, mqtt://USER:PASS@HOST:PORT"},
    {"post-broker", OPT_STRING, false, "URL|none", NULL, "broker to announce on (required)"},
    {"post-base-url", OPT_STRING, false, "URL", NULL, "baseUrl of this peer's announcements"},
    {"http-listen", OPT_STRING, false, "HOST:PORT|none", "none", "embedded HTTP server"},
    {"client-id", OPT_STRING, false, "ID", NULL, "MQTT client id (default: from host and tree)"},
    {"state-dir", OPT_STRING, false, "DIR", NULL, "where the peer keeps its state"},
    {"exchange", OPT_STRING, false, "X", "xpublic", "first topic level"},
    {"topic-prefix", OPT_STRING, false, "P", "v03/post", "topic levels after the exchange"},
    {"subtopic", OPT_STRING, true, "S", "#", "subscribe to <exchange>/<prefix>/S"},
    {"post-format", OPT_STRING, false, "v03|array", "v03", "format of re-announcements"},
    {"accept", OPT_STRING, true, "RE", NULL, "download URLs matching RE (first match wins)"},
    {"reject", OPT_STRING, true, "RE", NULL, "refuse URLs matching RE (first match wins)"},
    {"lag-warn", OPT_NUMBER, false, "S", "120", "warn about announcements older than S seconds"},
    {"lag-drop", OPT_NUMBER, false, "S", "7200", "drop announcements older than S seconds"},
    {"max-message", OPT_NUMBER, false, "BYTES", "8192", "largest announcement accepted"},
    {"max-downloads", OPT_NUMBER, false, "N", "16", "concurrent downloads"},
    {"name", OPT_STRING, false, "NAME", NULL, "name shown in log lines"},
    {"verbose", OPT_FLAG, false, NULL, NULL, "log debug messages"},
    {NULL, 0, false, NULL, NULL, NULL},
};

#define USAGE "wmesh peer --dir DIR --broker URL [--broker URL ...] --post-broker URL|none [options]"

/* Adds --accept and --reject rules in the order they were given on the command line. */
static int build_filter(int argc, char **argv, struct filter *f)
{
    for (int i = 1; i < argc; i++) {
        bool accept = strcmp(argv[i], "--accept") == 0;
        bool rej = strcmp(argv[i], "--reject") == 0;
        const char *pattern = NULL;
        if ((accept || rej) && i + 1 < argc) pattern = argv[++i];
        else if (strncmp(argv[i], "--accept=", 9) == 0) accept = true, pattern = argv[i] + 9;
        else if (strncmp(argv[i], "--reject=", 9) == 0) pattern = argv[i] + 9;
        if (!pattern) continue;
        char why[200];
        if (filter_add(f, accept, pattern, why, sizeof why) != WM_OK) {
            fprintf(stderr, "wmesh peer: bad regular expression %s: %s\n", pattern, why);
            return -1;
        }
    }
    return 0;
}

static int configure(struct options *o, struct peer_config *c)
{
    double max_message, max_downloads;
    c->dir = options_get(o, "dir");
    c->post_broker = cli_none_to_null(options_get(o, "post-broker"));
    c->post_base_url = options_get(o, "post-base-url");
    c->http_listen = cli_none_to_null(options_get(o, "http-listen"));
    c->client_id = options_get(o, "client-id");
    c->state_dir = options_get(o, "state-dir");
    c->exchange = options_get(o, "exchange");
    c->topic_prefix = options_get(o, "topic-prefix");
    c->name = options_get(o, "name");
    if (!c->dir || !options_get(o, "post-broker")) {
        fprintf(stderr, "wmesh peer: --dir and --post-broker are required (see --help)\n");
        return -1;
    }
    if ((c->post_broker || c->http_listen) && !c->post_base_url) {
        fprintf(stderr, "wmesh peer: --post-base-url is required to announce or serve\n");
        return -1;
    }
    if (cli_parse_format(options_get(o, "post-format"), &c->post_format) != 0) return -1;
    if (options_number(o, "lag-warn", 120, &c->lag_warn_s) ||
        options_number(o, "lag-drop", 7200, &c->lag_drop_s) ||
        options_number(o, "max-message", 8192, &max_message) ||
        options_number(o, "max-downloads", 16, &max_downloads) || max_message < 64 ||
        max_downloads < 1) {
        fprintf(stderr, "wmesh peer: a numeric option is out of range\n");
        return -1;
    }
    c->max_message = (size_t)max_message;
    c->max_downloads = (int)max_downloads;
    return 0;
}

int cmd_peer(int argc, char **argv)
{
    bool help;
    struct options *o = options_parse(USAGE, specs, argc, argv, &help);
    if (!o) return help ? 0 : 2;
    struct peer_config c = {0};
    struct filter *f = filter_new();
    const char **brokers = NULL, **subtopics = NULL;
    int rc = 2;
    if (!f || configure(o, &c) != 0 || build_filter(argc, argv, f) != 0) goto done;
    brokers = options_get_all(o, "broker", &c.nbrokers);
    subtopics = options_get_all(o, "subtopic", &c.nsubtopics);
    if (!brokers || !subtopics) goto done;
    c.brokers = brokers;
    c.subtopics = subtopics;
    c.filter = f;
    if (options_flag(o, "verbose")) log_set_level(WM_LOG_DEBUG);
    rc = peer_run(&c);
done:
    free(brokers);
    free(subtopics);
    filter_free(&f);
    options_free(&o);
    return rc;
}
