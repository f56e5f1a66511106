/* cmd_sub.c: `wmesh sub`: print each announcement a broker delivers, decoded, with its lag. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "codec.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "options.h"
#include "proxy.h"

static const struct option_spec specs[] = {
    {"broker", OPT_STRING, false, "URL", NULL, "broker to listen to (required)", 0, 0},
    {"exchange", OPT_STRING, false, "X", "xpublic", "first topic level", 0, 0},
    {"topic-prefix", OPT_STRING, false, "P", "v03/post", "topic levels after the exchange", 0, 0},
    {"subtopic", OPT_STRING, true, "S", "#", "subscribe to <exchange>/<prefix>/S", 0, 0},
    {"count", OPT_NUMBER, false, "N", "0", "exit after N announcements (0: never)", 0, 1e18},
    CLI_LINK_OPTIONS,
    {NULL, 0, false, NULL, NULL, NULL, 0, 0},
};

#define USAGE "wmesh sub --broker URL [--subtopic S ...] [--count N]"

struct sub {
    struct loop *loop;
    long seen, count;
    int write_errno; /* printing failed: EPIPE when the reader of a pipe has gone */
};

static const char *format_name(enum wm_format f)
{
    switch (f) {
    case WM_FORMAT_V03:
        return "v03";
    case WM_FORMAT_ARRAY:
        return "array";
    case WM_FORMAT_WNM:
        return "wnm";
    }
    return "?";
}

static void print_announcement(const struct announce *a)
{
    char when[64], sum[128];
    if (codec_pubtime_format(a->pubtime_ns, a->pubtime_digits, true, when, sizeof when) != WM_OK)
        snprintf(when, sizeof when, "?");
    if (integrity_value_format(&a->sum, sum, sizeof sum) != WM_OK) snprintf(sum, sizeof sum, "?");
    double lag = (double)(loop_wall_ns() - a->pubtime_ns) / 1e9;
    const char *sep = a->base_url[0] && a->base_url[strlen(a->base_url) - 1] == '/' ? "" : "/";
    printf("%s lag=%.3fs %s %s%s%s %s=%s", when, lag, format_name(a->format), a->base_url, sep,
           a->rel_path[0] == '/' ? a->rel_path + 1 : a->rel_path,
           integrity_method_name(a->sum.method), sum);
    if (a->size >= 0) printf(" size=%lld", (long long)a->size);
    if (a->content) printf(" inline=%zu", a->content_len);
    putchar('\n');
}

static bool on_message(void *arg, struct mqtt_link *link, const struct mqtt_msg *msg)
{
    struct sub *s = arg;
    (void)link;
    struct announce *a = NULL;
    char why[200];
    if (codec_decode(msg->payload, msg->len, &a, why, sizeof why) == WM_OK) {
        print_announcement(a);
        announce_free(&a);
    } else {
        printf("undecodable message on %s: %s\n", msg->topic, why);
    }
    /* SIGPIPE is ignored (wmesh.c): once the output is gone, as when `| head` has had enough,
     * there is nobody left to print for. */
    if (fflush(stdout) != 0) {
        s->write_errno = errno;
        loop_stop(s->loop);
    }
    if (s->count > 0 && ++s->seen >= s->count) loop_stop(s->loop);
    return true;
}

static void on_signal(void *arg)
{
    loop_stop(arg);
}

int cmd_sub(int argc, char **argv)
{
    bool help;
    struct options *o = options_parse(USAGE, specs, argc, argv, &help);
    if (!o) return help ? 0 : 2;
    struct sub s = {0};
    struct mqtt_link *link = NULL;
    size_t nsub = 0;
    const char **subtopics = options_get_all(o, "subtopic", &nsub);
    char **topics = calloc(nsub ? nsub : 1, sizeof *topics);
    double count;
    struct proxy_config proxies = {0};
    int rc = 2;
    if (!options_get(o, "broker") || options_number(o, "count", &count) || !subtopics || !topics) {
        options_usage(USAGE, specs);
        goto done;
    }
    s.count = (long)count;
    for (size_t i = 0; i < nsub; i++) {
        const char *prefix = options_get(o, "topic-prefix");
        size_t n = strlen(options_get(o, "exchange")) + strlen(prefix) + strlen(subtopics[i]) + 3;
        if (!(topics[i] = malloc(n))) goto done;
        snprintf(topics[i], n, "%s/%s%s%s", options_get(o, "exchange"), prefix,
                 prefix[0] ? "/" : "", subtopics[i]);
    }
    struct mqtt_options mo = {.url = options_get(o, "broker"),
                              .subscriptions = (const char *const *)topics,
                              .nsubscriptions = nsub};
    if (cli_link_options(o, "sub", &mo) != 0 || cli_proxies(o, "sub", NULL, &proxies) != 0)
        goto done;
    mo.proxies = &proxies;
    struct mqtt_callbacks cb = {.on_message = on_message};
    if (cli_link_new("sub", "broker", &mo, &cb, &s, &s.loop, &link) != 0) goto done;
    enum wm_err e;
    if ((e = loop_on_signal(s.loop, SIGINT, on_signal, s.loop)) ||
        (e = loop_on_signal(s.loop, SIGTERM, on_signal, s.loop))) {
        fprintf(stderr, "wmesh sub: cannot watch signals: %s\n", wm_strerror(e));
        rc = 1;
        goto done;
    }
    rc = loop_run(s.loop) == WM_OK ? 0 : 1;
    if (s.write_errno && s.write_errno != EPIPE) {
        fprintf(stderr, "wmesh sub: cannot print: %s\n", strerror(s.write_errno));
        rc = 1;
    }
done:
    mqtt_link_free(&link);
    loop_free(&s.loop);
    proxy_config_clear(&proxies);
    for (size_t i = 0; topics && i < nsub; i++)
        free(topics[i]);
    free(topics);
    free(subtopics);
    options_free(&o);
    return rc;
}
