/* cmd_status.c: `wmesh status URL`: a compact table of a running peer, from its /metrics, as
 * `sr3 status` gives for Sarracenia. Two samples a second apart give the rates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "fetch.h"
#include "options.h"
#include "prom_text.h"

static const struct option_spec specs[] = {
    {"interval", OPT_NUMBER, false, "S", "1", "seconds between the two samples for rates", 0.001,
     60},
    {NULL, 0, false, NULL, NULL, NULL, 0, 0},
};

#define USAGE "wmesh status [--interval S] URL   (URL: the peer's http://HOST:PORT)"
#define MAX_METRICS_BYTES (1 << 20)

/* The value of the samples named name with the label pair label (NULL: any); NAN when none. */
static double value_of(const char *text, const char *name, const char *label)
{
    size_t n;
    double v = prom_sum(text, name, label, &n);
    return n ? v : NAN;
}

static char *sample(const char *url)
{
    char *body = NULL;
    size_t len;
    long status = 0;
    if (fetch_get_buffer(url, MAX_METRICS_BYTES, &body, &len, &status) != WM_OK || status != 200) {
        fprintf(stderr, "wmesh status: no metrics at %s (HTTP %ld)\n", url, status);
        free(body);
        return NULL;
    }
    return body;
}

static void print_brokers(const char *now)
{
    printf("%-40s %-9s %12s\n", "upstream broker", "state", "received");
    struct prom_sample smp;
    for (const char *p = now; prom_next(&p, &smp);) {
        char label[200], sel[260];
        if (!prom_match(&smp, "wmesh_broker_connected", NULL) ||
            !prom_label(&smp, "broker", label, sizeof label))
            continue;
        snprintf(sel, sizeof sel, "broker=\"%s\"", label);
        printf("%-40s %-9s %12.0f\n", label, smp.value > 0 ? "connected" : "down",
               value_of(now, "wmesh_messages_received_total", sel));
    }
}

static void print_counters(const char *before, const char *now, double seconds)
{
    static const struct {
        const char *metric, *title;
    } rows[] = {
        {"wmesh_downloads_total", "downloaded"},
        {"wmesh_inlined_total", "inlined"},
        {"wmesh_duplicates_total", "duplicates"},
        {"wmesh_published_total", "published"},
        {"wmesh_published_inline_total", "published inline"},
        {"wmesh_download_errors_total", "download errors"},
        {"wmesh_integrity_failures_total", "integrity failures"},
        {"wmesh_retries_total", "retries"},
        {"wmesh_outbox_refusals_total", "refused by post broker"},
        {"wmesh_outbox_set_aside_total", "set aside"},
    };
    printf("\n%-24s %12s %10s\n", "", "total", "per s");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        double a = value_of(before, rows[i].metric, NULL), b = value_of(now, rows[i].metric, NULL);
        printf("%-24s %12.0f %10.1f\n", rows[i].title, b, (b - a) / seconds);
    }
    printf("%-24s %12.0f\n", "rejected", prom_sum(now, "wmesh_rejected_total", NULL, NULL));
}

static void print_lag(const char *now)
{
    double count = value_of(now, "wmesh_lag_seconds_count", NULL);
    double sum = value_of(now, "wmesh_lag_seconds_sum", NULL);
    double last = value_of(now, "wmesh_last_message_timestamp_seconds", NULL);
    printf("\nin hand %.0f, journaled %.0f; lag mean %.3f s, max %.3f s",
           value_of(now, "wmesh_queue_depth", NULL), value_of(now, "wmesh_journal_live", NULL),
           count > 0 ? sum / count : 0.0, value_of(now, "wmesh_lag_max_seconds", NULL));
    if (last > 0) printf("; last message %.1f s ago", (double)time(NULL) - last);
    printf("\noutbox %.0f announcements, %.0f bytes not yet acknowledged%s\n",
           value_of(now, "wmesh_outbox_entries", NULL), value_of(now, "wmesh_outbox_bytes", NULL),
           value_of(now, "wmesh_outbox_full", NULL) > 0 ? " (full: upstreams paused)" : "");
}

int cmd_status(int argc, char **argv)
{
    bool help;
    struct options *o = options_parse(USAGE, specs, argc, argv, &help);
    if (!o) return help ? 0 : 2;
    size_t n;
    const char *const *pos = options_positionals(o, &n);
    double interval;
    char *before = NULL, *now = NULL;
    int rc = 2;
    if (n != 1 || options_number(o, "interval", &interval)) {
        options_usage(USAGE, specs);
        goto done;
    }
    char url[2048];
    size_t len = strlen(pos[0]);
    while (len > 0 && pos[0][len - 1] == '/')
        len--;
    snprintf(url, sizeof url, "%.*s%s", (int)len, pos[0],
             len >= 8 && strcmp(pos[0] + len - 8, "/metrics") == 0 ? "" : "/metrics");
    rc = 1;
    if (!(before = sample(url))) goto done;
    struct timespec pause = {(time_t)interval, (long)((interval - (time_t)interval) * 1e9)};
    nanosleep(&pause, NULL); /* the rate window, not a wait for readiness */
    if (!(now = sample(url))) goto done;
    print_brokers(now);
    print_counters(before, now, interval);
    print_lag(now);
    rc = 0;
done:
    free(before);
    free(now);
    options_free(&o);
    return rc;
}
