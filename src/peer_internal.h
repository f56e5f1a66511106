/* peer_internal.h: the peer's state, shared by peer.c (set-up, intake, journal), peer_admit.c
 * (admission) and peer_job.c (obtaining, storing and re-announcing one file version). */
#ifndef WMESH_PEER_INTERNAL_H
#define WMESH_PEER_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "announce.h"
#include "loop.h"
#include "metrics.h"
#include "peer.h"
#include "tree.h"

struct loop;
struct loop_timer;
struct fetcher;
struct httpd;
struct mqtt_link;
struct strmap;
struct journal;
struct journal_entry;
struct seen;
struct retention;

/* An announcement waiting behind the job for another version of the same file. */
struct deferred {
    struct announce *a;
    uint64_t jid;
};

/* One file version being obtained: created at admission, freed by job_finish(). */
struct job {
    struct peer *peer;
    char *key;          /* the clean relPath: the in-flight table's key */
    struct announce *a; /* the announcement acted on */
    uint64_t jid;       /* its journal id (0: not journaled) */
    bool replayed;      /* from the journal: may be held already, and then only re-announced */
    char **urls;        /* sources: the first announcer, then others that announced it too */
    size_t nurls, next_url;
    struct tree_tmp tmp;
    bool has_tmp;
    struct integrity_ctx *hash;
    int64_t bytes;
    int write_errno; /* set when writing the temporary file failed */
    int attempts;    /* rounds over every source that failed */
    int64_t first_try_ms;
    struct loop_timer *retry_timer;
    bool downloading;
    struct deferred *deferred;
    size_t ndeferred;
    struct wm_checksum verified; /* what the content hashed to, once verified */
    struct job *next_waiting;
    struct job *next_parked;
};

struct upstream {
    struct peer *peer;
    struct mqtt_link *link;
    int metric;
};

#define PEER_ACK_SLOTS 65536 /* MQTT message ids are 16-bit */

struct peer {
    const struct peer_config *cfg;
    struct loop *loop;
    struct tree *tree;
    struct fetcher *fetcher;
    struct httpd *httpd;
    struct upstream *up;
    size_t nup;
    struct mqtt_link *post;
    struct strmap *inflight;               /* clean relPath -> struct job */
    struct job *parked_head, *parked_tail; /* verified; stored once their record is durable */
    struct job *wait_head, *wait_tail;
    size_t nwaiting;
    int active; /* downloads running */
    struct journal *journal;
    struct seen *seen;
    char seen_path[PATH_MAX + 16];
    unsigned housekeeping_rounds;
    uint64_t *ack_jid; /* journal id of each re-announcement awaiting its PUBACK, by mid */
    bool reading;      /* upstream links are being read (not pushed back) */
    bool journal_failing;
    bool warned_topic; /* --post-topic copy fell back to the relPath's topic once: logged */
    struct loop_timer *housekeeping;
    struct retention *retention;
    int exit_code;
    struct metrics metrics;
};

/* peer.c */
/* peer_admit.c: decides what to do with one announcement; consumes a. jid is its journal id
 * when it was journaled already (replayed at start-up, or deferred behind another version);
 * raw is the message as it came (NULL when it is not at hand), which the journal keeps. */
void peer_admit(struct peer *p, struct announce *a, uint64_t jid, bool replayed,
                const struct journal_entry *raw);
void peer_journal_done(struct peer *p, uint64_t jid);
double peer_lag(const struct announce *a);
/* The topic to re-announce a on (--post-exchange, --post-topic-prefix, --post-topic). */
enum wm_err peer_post_topic(struct peer *p, const struct announce *a, char *out, size_t outlen);

/* peer_job.c */
struct job *job_new(struct peer *p, const char *key, struct announce *a, const char *url);
void job_add_source(struct job *j, const char *url);
void job_defer(struct job *j, struct announce *a, uint64_t jid);
void job_start(struct job *j);
/* Re-announces what the tree already holds for a replayed job, then finishes it. */
void job_reannounce_held(struct job *j, const struct wm_checksum *held);
void job_finish(struct job *j);
/* Commits a verified job's file, announces it and ends the job. */
void job_store(struct job *j);
void jobs_drop_all(struct peer *p);

/* Counters are read by the metrics page's thread. */
static inline void peer_count(atomic_uint_fast64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* Seconds since the epoch, for the seen-cache. */
static inline uint64_t peer_now_s(void)
{
    return (uint64_t)(loop_wall_ns() / 1000000000);
}

#endif
