/* metrics.c: lock-free counters and their Prometheus text rendering. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double lag_bounds[WM_LAG_BUCKETS] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
                                                  1,     5,     10,   60,   300, 3600};

void metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof *m);
}

int metrics_add_broker(struct metrics *m, const char *label)
{
    if (m->nbrokers >= WM_MAX_BROKERS) return -1;
    struct metrics_broker *b = &m->brokers[m->nbrokers];
    snprintf(b->label, sizeof b->label, "%s", label);
    return (int)m->nbrokers++;
}

void metrics_observe_lag(struct metrics *m, double seconds)
{
    if (seconds < 0) seconds = 0;
    size_t i = 0;
    while (i < WM_LAG_BUCKETS && seconds > lag_bounds[i])
        i++;
    atomic_fetch_add_explicit(&m->lag_bucket[i], 1, memory_order_relaxed);
    uint64_t us = (uint64_t)(seconds * 1e6);
    atomic_fetch_add_explicit(&m->lag_sum_us, us, memory_order_relaxed);
    uint64_t max = atomic_load_explicit(&m->lag_max_us, memory_order_relaxed);
    while (us > max && !atomic_compare_exchange_weak(&m->lag_max_us, &max, us)) {
    }
}

const char *metrics_reject_name(enum wm_reject r)
{
    static const char *names[WM_REJECT_COUNT] = {
        "malformed", "too_big", "unsafe_path", "lag", "filter", "url", "stale", "unsupported"};
    return (unsigned)r < WM_REJECT_COUNT ? names[r] : "other";
}

struct out {
    char *buf;
    size_t len, cap;
    int failed;
};

__attribute__((format(printf, 2, 3))) static void emit(struct out *o, const char *fmt, ...)
{
    if (o->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *b = realloc(o->buf, cap);
        if (!b) {
            o->failed = 1;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
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
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            emit(o, "\\%c", *s);
        else if (*s == '\n')
            emit(o, "\\n");
        else
            emit(o, "%c", *s);
    }
}

static void render_brokers(struct out *o, const struct metrics *m)
{
    emit(o, "# HELP wmesh_messages_received_total Announcements received, by upstream broker.\n"
            "# TYPE wmesh_messages_received_total counter\n");
    for (size_t i = 0; i < m->nbrokers; i++) {
        emit(o, "wmesh_messages_received_total{broker=\"");
        emit_label(o, m->brokers[i].label);
        emit(o, "\"} %llu\n", (unsigned long long)get(&m->brokers[i].received));
    }
    emit(o, "# HELP wmesh_broker_connected Whether the link to a broker is up (1) or not (0).\n"
            "# TYPE wmesh_broker_connected gauge\n");
    for (size_t i = 0; i < m->nbrokers; i++) {
        emit(o, "wmesh_broker_connected{broker=\"");
        emit_label(o, m->brokers[i].label);
        emit(o, "\"} %d\n", atomic_load(&m->brokers[i].connected));
    }
}

static void render_lag(struct out *o, const struct metrics *m)
{
    emit(o, "# HELP wmesh_lag_seconds Time from pubTime to arrival of announcements.\n"
            "# TYPE wmesh_lag_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= WM_LAG_BUCKETS; i++) {
        cumulative += get(&m->lag_bucket[i]);
        if (i < WM_LAG_BUCKETS)
            emit(o, "wmesh_lag_seconds_bucket{le=\"%g\"} %llu\n", lag_bounds[i],
                 (unsigned long long)cumulative);
        else
            emit(o, "wmesh_lag_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
    }
    emit(o, "wmesh_lag_seconds_sum %.6f\nwmesh_lag_seconds_count %llu\n",
         (double)get(&m->lag_sum_us) / 1e6, (unsigned long long)cumulative);
    gauge(o, "wmesh_lag_max_seconds", "Largest lag seen since start.",
          (double)get(&m->lag_max_us) / 1e6);
}

char *metrics_render(const struct metrics *m, size_t *len)
{
    struct out o = {.cap = 4096};
    o.buf = malloc(o.cap);
    if (!o.buf) return NULL;
    render_brokers(&o, m);
    counter(&o, "wmesh_downloads_total", "Files downloaded, verified and stored.",
            get(&m->downloads));
    counter(&o, "wmesh_download_bytes_total", "Bytes of files downloaded and stored.",
            get(&m->download_bytes));
    counter(&o, "wmesh_inlined_total", "Files stored from inline content, without download.",
            get(&m->inlined));
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
    counter(&o, "wmesh_published_total", "Announcements published on the local broker.",
            get(&m->published));
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
    render_lag(&o, m);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    if (len) *len = o.len;
    return o.buf;
}
