/* metrics.c: lock-free counters and their Prometheus text rendering. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"

static const double lag_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600};
/* A file's way through a peer takes well under a millisecond when all goes well: finer at the
 * low end, where the targets of a hop are (docs/PERFORMANCE.md). */
static const double relay_bounds[] = {0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05,
                                      0.1,    0.5,    1,     5,     30,    300};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(COUNT_OF(lag_bounds) <= WM_HISTOGRAM_BOUNDS_MAX, "too many lag buckets");
_Static_assert(COUNT_OF(relay_bounds) <= WM_HISTOGRAM_BOUNDS_MAX, "too many relay buckets");

void metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof *m);
    m->lag.bounds = lag_bounds;
    m->lag.nbounds = COUNT_OF(lag_bounds);
    m->relay.bounds = relay_bounds;
    m->relay.nbounds = COUNT_OF(relay_bounds);
}

int metrics_add_broker(struct metrics *m, const char *label)
{
    size_t n = atomic_load_explicit(&m->nbrokers, memory_order_relaxed); /* one writer */
    if (n >= WM_MAX_BROKERS) return -1;
    snprintf(m->brokers[n].label, sizeof m->brokers[n].label, "%s", label);
    atomic_store_explicit(&m->nbrokers, n + 1, memory_order_release);
    return (int)n;
}

void metrics_observe(struct metrics_histogram *h, double seconds)
{
    if (seconds < 0) seconds = 0;
    size_t i = 0;
    while (i < h->nbounds && seconds > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    uint64_t us = (uint64_t)(seconds * 1e6);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
    uint64_t max = atomic_load_explicit(&h->max_us, memory_order_relaxed);
    while (us > max && !atomic_compare_exchange_weak(&h->max_us, &max, us)) {
    }
}

const char *metrics_reject_name(enum wm_reject r)
{
    static const char *names[WM_REJECT_COUNT] = {
        "malformed", "too_big", "unsafe_path", "lag", "filter", "url", "stale", "unsupported"};
    return (unsigned)r < WM_REJECT_COUNT ? names[r] : "other";
}

struct out {
    struct buf text;
    bool failed; /* an append failed: the page is incomplete */
};

__attribute__((format(printf, 2, 3))) static void emit(struct out *o, const char *fmt, ...)
{
    if (o->failed) return;
    va_list ap;
    va_start(ap, fmt);
    if (buf_vprintf(&o->text, fmt, ap) != WM_OK) o->failed = true;
    va_end(ap);
}

static uint64_t get(const atomic_uint_fast64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void counter(struct out *o, const char *name, const char *help, uint64_t v)
{
    emit(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
         (unsigned long long)v);
}

static void gauge(struct out *o, const char *name, const char *help, double v)
{
    emit(o, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

/* Label values are broker labels we made ourselves, but escape them as the format asks. */
static void emit_label(struct out *o, const char *s)
{
    if (!o->failed && series_escape_label(&o->text, s) != WM_OK) o->failed = true;
}

static void render_brokers(struct out *o, const struct metrics *m)
{
    size_t n = atomic_load_explicit(&m->nbrokers, memory_order_acquire);
    emit(o, "# HELP wmesh_messages_received_total Announcements received, by upstream broker.\n"
            "# TYPE wmesh_messages_received_total counter\n");
    for (size_t i = 0; i < n; i++) {
        emit(o, "wmesh_messages_received_total{broker=\"");
        emit_label(o, m->brokers[i].label);
        emit(o, "\"} %llu\n", (unsigned long long)get(&m->brokers[i].received));
    }
    emit(o, "# HELP wmesh_broker_connected Whether the link to a broker is up (1) or not (0).\n"
            "# TYPE wmesh_broker_connected gauge\n");
    for (size_t i = 0; i < n; i++) {
        emit(o, "wmesh_broker_connected{broker=\"");
        emit_label(o, m->brokers[i].label);
        emit(o, "\"} %d\n", atomic_load(&m->brokers[i].connected));
    }
}

/* name's _bucket, _sum and _count lines, and name_max (without "_seconds") as a gauge. */
static void render_histogram(struct out *o, const char *name, const char *help,
                             const char *max_help, const struct metrics_histogram *h)
{
    emit(o, "# HELP %s_seconds %s\n# TYPE %s_seconds histogram\n", name, help, name);
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h->nbounds; i++) {
        cumulative += get(&h->bucket[i]);
        if (i < h->nbounds)
            emit(o, "%s_seconds_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
                 (unsigned long long)cumulative);
        else
            emit(o, "%s_seconds_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cumulative);
    }
    emit(o, "%s_seconds_sum %.6f\n%s_seconds_count %llu\n", name, (double)get(&h->sum_us) / 1e6,
         name, (unsigned long long)cumulative);
    char max_name[64];
    snprintf(max_name, sizeof max_name, "%s_max_seconds", name);
    gauge(o, max_name, max_help, (double)get(&h->max_us) / 1e6);
}

char *metrics_render(const struct metrics *m, size_t *len)
{
    struct out o = {0};
    if (buf_reserve(&o.text, 4096) != WM_OK) return NULL;
    render_brokers(&o, m);
    counter(&o, "wmesh_downloads_total", "Files downloaded, verified and stored.",
            get(&m->downloads));
    counter(&o, "wmesh_download_bytes_total", "Bytes of files downloaded and stored.",
            get(&m->download_bytes));
    counter(&o, "wmesh_inlined_total", "Files stored from inline content, without download.",
            get(&m->inlined));
    counter(&o, "wmesh_published_inline_total",
            "Re-announcements that carried their file inline (--inline).",
            get(&m->published_inline));
    counter(&o, "wmesh_duplicates_total", "Announcements of files already held (or in flight).",
            get(&m->duplicates));
    counter(&o, "wmesh_resent_total",
            "Announcements a broker delivered again (MQTT DUP): unacknowledged when this peer, "
            "or an earlier process of it, lost its connection.",
            get(&m->resent));
    counter(&o, "wmesh_reannounced_total",
            "Files held already and announced again: stored by an earlier process that may not "
            "have announced them (from the journal, or a broker's resend).",
            get(&m->reannounced));
    emit(&o, "# HELP wmesh_rejected_total Announcements refused, by reason.\n"
             "# TYPE wmesh_rejected_total counter\n");
    for (int r = 0; r < WM_REJECT_COUNT; r++)
        emit(&o, "wmesh_rejected_total{reason=\"%s\"} %llu\n", metrics_reject_name(r),
             (unsigned long long)get(&m->rejected[r]));
    counter(&o, "wmesh_download_errors_total", "Downloads that failed.", get(&m->download_errors));
    counter(&o, "wmesh_integrity_failures_total",
            "Files whose content did not match the announced checksum.",
            get(&m->integrity_failures));
    counter(&o, "wmesh_published_total", "Announcements the post broker acknowledged with success.",
            get(&m->published));
    counter(&o, "wmesh_outbox_refusals_total",
            "Attempts to publish an announcement that the post broker refused.",
            get(&m->outbox_refusals));
    counter(&o, "wmesh_outbox_set_aside_total",
            "Announcements set aside after their retries (wmesh outbox lists them).",
            get(&m->outbox_set_aside));
    gauge(&o, "wmesh_outbox_entries", "Announcements not yet acknowledged by the post broker.",
          (double)atomic_load(&m->outbox_entries));
    gauge(&o, "wmesh_outbox_bytes", "Bytes of the announcements in the outbox.",
          (double)atomic_load(&m->outbox_bytes));
    gauge(&o, "wmesh_outbox_full",
          "Whether the outbox is full (1), which pauses reading from upstream brokers.",
          (double)atomic_load(&m->outbox_full));
    counter(&o, "wmesh_catchup_logged_total", "Announcements recorded in this peer's catch-up log.",
            get(&m->catchup_logged));
    counter(&o, "wmesh_catchup_requests_total", "Requests to upstreams' catch-up logs.",
            get(&m->catchup_requests));
    counter(&o, "wmesh_catchup_records_total",
            "Announcements fetched from upstreams' catch-up logs and admitted.",
            get(&m->catchup_records));
    counter(&o, "wmesh_catchup_gaps_total",
            "Times announcements were found missed (a seq that never came, a lost session).",
            get(&m->catchup_gaps));
    counter(&o, "wmesh_catchup_lost_total",
            "Times an upstream's log no longer held records this peer had missed.",
            get(&m->catchup_lost));
    counter(&o, "wmesh_catchup_bad_total", "Catch-up statuses and records that could not be read.",
            get(&m->catchup_bad));
    counter(&o, "wmesh_retries_total", "Downloads scheduled again after every source failed.",
            get(&m->retries));
    counter(&o, "wmesh_retention_removed_total", "Files removed for being older than --retention.",
            get(&m->retention_removed));
    gauge(&o, "wmesh_journal_live", "Announcements journaled and not finished.",
          (double)atomic_load(&m->journal_live));
    gauge(&o, "wmesh_queue_depth", "Announcements admitted and not yet finished.",
          (double)atomic_load(&m->queue_depth));
    gauge(&o, "wmesh_last_message_timestamp_seconds", "When the last announcement arrived.",
          (double)atomic_load(&m->last_message_ns) / 1e9);
    render_histogram(&o, "wmesh_lag", "Time from pubTime to arrival of announcements.",
                     "Largest lag seen since start.", &m->lag);
    render_histogram(&o, "wmesh_relay",
                     "Time from the arrival of an announcement of a file this peer lacks to its "
                     "re-announcement: the download, check and store, this peer's part of a hop.",
                     "Longest relay since start.", &m->relay);
    if (!o.failed && !series_render(m->series, &o.text)) o.failed = true;
    char *page = o.failed ? NULL : buf_detach(&o.text, len);
    buf_free(&o.text);
    return page;
}
