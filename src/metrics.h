/* metrics.h: the peer's counters, updated by the loop thread and read by the HTTP threads,
 * rendered in the Prometheus text format. */
#ifndef WMESH_METRICS_H
#define WMESH_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct series_table;

enum wm_reject {
    WM_REJECT_MALFORMED = 0, /* not a message we can decode */
    WM_REJECT_TOO_BIG,       /* over --max-message, or a file over --max-size */
    WM_REJECT_UNSAFE_PATH,   /* relPath would leave the tree or names a forbidden file */
    WM_REJECT_LAG,           /* older than --lag-drop */
    WM_REJECT_FILTER,        /* refused by --accept/--reject */
    WM_REJECT_URL,           /* download URL not http(s) */
    WM_REJECT_STALE,         /* older than the version held or in flight */
    WM_REJECT_UNSUPPORTED,   /* an operation we do not carry out (fileOp, WIS2 deletion) */
    WM_REJECT_COUNT
};

#define WM_HISTOGRAM_BOUNDS_MAX 16
#define WM_MAX_BROKERS 32

/* A Prometheus histogram of durations: counts per bucket (upper bounds in seconds, the last
 * bucket +Inf), their sum and the largest seen. */
struct metrics_histogram {
    const double *bounds; /* static, ascending */
    size_t nbounds;       /* at most WM_HISTOGRAM_BOUNDS_MAX */
    atomic_uint_fast64_t bucket[WM_HISTOGRAM_BOUNDS_MAX + 1];
    atomic_uint_fast64_t sum_us;
    atomic_uint_fast64_t max_us;
};

struct metrics_broker {
    char label[128];
    atomic_uint_fast64_t received;
    atomic_int connected;
};

struct metrics {
    atomic_uint_fast64_t downloads;
    atomic_uint_fast64_t download_bytes;
    atomic_uint_fast64_t inlined;
    atomic_uint_fast64_t published_inline; /* re-announcements that carried their file */
    atomic_uint_fast64_t duplicates;
    atomic_uint_fast64_t resent;      /* delivered again by a broker (MQTT DUP) */
    atomic_uint_fast64_t reannounced; /* held already, announced again (journal or resend) */
    atomic_uint_fast64_t download_errors;
    atomic_uint_fast64_t integrity_failures;
    atomic_uint_fast64_t published; /* acknowledged with success by the post broker */
    atomic_uint_fast64_t retries;
    atomic_uint_fast64_t retention_removed;
    atomic_int_fast64_t journal_live;      /* announcements journaled and not finished */
    atomic_int_fast64_t outbox_entries;    /* re-announcements not yet acknowledged */
    atomic_int_fast64_t outbox_bytes;      /* their topics' and messages' bytes */
    atomic_int outbox_full;                /* 1 while the outbox holds intake back */
    atomic_uint_fast64_t outbox_refusals;  /* attempts the post broker refused */
    atomic_uint_fast64_t outbox_set_aside; /* entries set aside after their retries */
    atomic_uint_fast64_t rejected[WM_REJECT_COUNT];
    /* Catch-up (peer_catchup.c). */
    atomic_uint_fast64_t catchup_logged;   /* records written to our log */
    atomic_uint_fast64_t catchup_requests; /* requests to upstreams' logs */
    atomic_uint_fast64_t catchup_records;  /* records fetched and admitted */
    atomic_uint_fast64_t catchup_gaps;     /* missed announcements found (gaps, lost sessions) */
    atomic_uint_fast64_t catchup_lost;     /* an upstream's log no longer held what we missed */
    atomic_uint_fast64_t catchup_bad;      /* statuses and records that could not be read */
    atomic_int_fast64_t queue_depth;       /* announcements admitted, not yet finished */
    atomic_int_fast64_t last_message_ns;   /* wall clock of the last message received */
    struct metrics_histogram lag;          /* pubTime to arrival */
    struct metrics_histogram relay; /* admission to re-announcement: this peer's part of a hop */
    /* Brokers are added by the loop while the HTTP server's thread may render them: a broker's
     * label is written before nbrokers (release) counts it, and read after (acquire). */
    atomic_size_t nbrokers;
    struct metrics_broker
        brokers[WM_MAX_BROKERS]; /* Series with run-time labels (the WIS2 metrics), rendered after
                                  * the others; NULL: none. Set before the HTTP server starts. */
    const struct series_table *series;
};

/* Zeroes m and sets the histograms' buckets. */
void metrics_init(struct metrics *m);
/* Registers a broker label (copied) and returns its index, or -1 when full. One thread adds;
 * any may render meanwhile. */
int metrics_add_broker(struct metrics *m, const char *label);
/* Counts one duration (negative ones as 0) in h. Safe from any thread. */
void metrics_observe(struct metrics_histogram *h, double seconds);
const char *metrics_reject_name(enum wm_reject r);
/* Renders the Prometheus text exposition; the caller frees the result. NULL on no memory. */
WM_WARN_UNUSED char *metrics_render(const struct metrics *m, size_t *len);

#endif
