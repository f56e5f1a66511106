/* peer_internal.h: the peer's state, shared by peer.c (set-up, intake, journal), peer_admit.c
 * (admission) and peer_job.c (obtaining, storing and re-announcing one file version). */
#ifndef WMESH_PEER_INTERNAL_H
#define WMESH_PEER_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "announce.h"
#include "loop.h"
#include "mqtt.h"
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
struct syncer;
struct journal_batch;
struct hasher;
struct hasher_task;
struct outbox;
struct peer_catchup;

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
    /* The message it came as (or, when that is not at hand, made of it), for the outbox
     * entry that re-announces it: a replay can then fetch the file again. One allocation:
     * origin_topic (may be NULL) points into it. */
    void *origin;
    size_t origin_len;
    char *origin_topic;
    size_t origin_topic_len;
    char **urls; /* sources: the first announcer, then others that announced it too */
    size_t nurls, next_url;
    struct tree_tmp tmp;
    bool has_tmp;
    struct integrity_ctx *hash;
    struct hasher_task *behind; /* non-NULL: the hasher's thread hashes what on_data writes */
    /* How the transfer ended, kept while the hasher catches up (end_why is owned). */
    enum wm_err end_err;
    long end_status;
    char *end_why;
    int64_t bytes;
    unsigned char *inline_copy; /* the bytes so far while they may still go inline (--inline) */
    bool inline_overflow;       /* more than cfg->inline_max bytes came: no inline copy */
    int write_errno;            /* set when writing the temporary file failed */
    int attempts;               /* rounds over every source that failed */
    int64_t first_try_ms;
    int64_t admitted_ns; /* loop_mono_ns() at admission: for wmesh_relay_seconds */
    struct loop_timer retry_timer;
    bool downloading;
    struct deferred *deferred;
    size_t ndeferred;
    struct wm_checksum verified; /* what the content hashed to, once verified */
    struct job *next_waiting;
    /* A WIS2 message under the Global Cache rules (peer_gc.c): its key is data_id/pubtime. */
    bool gc;
    bool passthrough;          /* published again unchanged but its id, no data (cache false) */
    bool gc_override;          /* passed on because the cache will not keep it (--max-size) */
    bool metadata;             /* came on a metadata topic */
    bool inline_tried;         /* its inline content was the fallback of a failed download */
    bool gc_error_counted;     /* wmo_wis2_gc_downloaded_errors_total counted it */
    bool gc_integrity_counted; /* wmo_wis2_gc_integrity_failed_total counted it */
    char centre[96];           /* the centre_id label (SERIES_VALUE_MAX) */
};

/* An entry finished (re-announced and acknowledged, or refused) whose done record waits until
 * tree round `need` has made every file stored before it durable. */
struct pending_done {
    uint64_t jid, need;
};

#define PEER_ORPHANS_MAX 1024

struct upstream {
    struct peer *peer;
    struct mqtt_link *link; /* gated: its PUBACKs leave once what they acknowledge is durable */
    struct mqtt_mark mark;  /* what the journal round in progress will release */
    int metric;
};

struct peer {
    const struct peer_config *cfg;
    struct loop *loop;
    struct tree *tree;
    struct tree_spares *spares; /* temporary files made ahead; NULL: made as needed */
    struct hasher *hasher;      /* hashes large downloads on a second core; NULL: on the loop */
    struct fetcher *fetcher;
    struct httpd *httpd;
    struct upstream *up;
    size_t nup;
    struct outbox *outbox;   /* NULL with --post-broker none */
    struct strmap *inflight; /* clean relPath -> struct job */
    struct job *wait_head, *wait_tail;
    size_t nwaiting;
    int active; /* downloads running */
    struct journal *journal;
    struct seen *seen;
    char seen_path[PATH_MAX + 16];
    char state_dir[PATH_MAX];
    /* Versions whose announcement this process has queued (or set aside): a broker's resend of
     * their message finds them handled. Never saved: after a restart, what the journal did not
     * keep was not announced (peer_admit.c, ADMIT_RESENT). */
    struct seen *handled;
    struct loop_timer resend_timer; /* looks for entries handed back by `wmesh outbox` */
    /* Entries live in the journal that nothing in memory stands for (peer_orphan); past
     * PEER_ORPHANS_MAX they wait for the next start. */
    uint64_t orphans[PEER_ORPHANS_MAX];
    size_t norphans;
    bool resend_unsynced; /* taken into the journal, not yet durable: the file stays */
    unsigned housekeeping_rounds;
    bool reading; /* upstream links are being read (not pushed back) */
    /* Durability (peer_sync.c). */
    struct syncer *jsync, *tsync; /* threads for journal and tree rounds; NULL: inline, none */
    struct journal_batch *batch;  /* the journal round's records */
    struct loop_timer journal_retry, tree_retry; /* after a failed round */
    struct loop_timer tree_pace;                 /* the next tree round, when it is due */
    int64_t tree_round_ms;                       /* when the last tree round began */
    bool journal_failing, tree_failing;
    int journal_errno, tree_errno;                /* set by the rounds' work, on their threads */
    uint64_t tree_round;                          /* the number of the tree round in progress */
    uint64_t tree_rounds_begun, tree_rounds_done; /* numbered from 1; done: the last success */
    struct pending_done *dones;                   /* finished entries waiting for a tree round */
    size_t ndones, dones_cap;
    bool warned_topic; /* --post-topic copy fell back to the relPath's topic once: logged */
    struct loop_timer housekeeping;
    struct retention *retention;
    int exit_code;
    struct series_table *series;  /* the wmo_wis2_gc_* metrics; NULL without --centre-id */
    struct peer_catchup *catchup; /* NULL with --catchup no (peer_catchup.c) */
    struct metrics metrics;
};

/* Where an announcement comes from: what the peer's own state can tell about it. */
enum admit_origin {
    ADMIT_FRESH, /* a broker's first delivery: a file held is a duplicate */
    /* Delivered again (DUP) after a reconnect: this process, or an earlier one with the same
     * client id, got it and did not acknowledge it. An earlier process may have stored the file
     * and died before its journal kept the entry, and so before announcing it (the journal is
     * written before announcements leave): a file held whose version this process has not
     * handled is re-announced, never dropped. */
    ADMIT_RESENT,
    /* From the journal (at start-up) or deferred behind another version: journaled, maybe
     * stored before a restart; a file held is re-announced. */
    ADMIT_REPLAYED,
};

/* peer_admit.c: decides what to do with one announcement; consumes a. jid is its journal id
 * when it was journaled already (ADMIT_REPLAYED), else 0; raw is the message as it came (NULL
 * when it is not at hand), which the journal keeps. Returns false when an announcement not
 * journaled yet (jid 0) could not be taken (no memory, a journal that refuses it): nothing of
 * it was kept, and it must not be acknowledged. Once journaled, it is never dropped for lack of
 * memory: its entry is left for peer_orphan's sweep. */
bool peer_admit(struct peer *p, struct announce *a, uint64_t jid, enum admit_origin origin,
                const struct journal_entry *raw);
/* peer.c: entry jid is live in the journal but nothing in memory stands for it any more (an
 * allocation failed): a sweep of the journal takes it up again within seconds. */
void peer_orphan(struct peer *p, uint64_t jid);
/* peer_sync.c: records that entry jid is finished, once that cannot outlive its file. */
void peer_journal_done(struct peer *p, uint64_t jid);
/* Records at once that entry jid is finished because a later record (an outbox entry) holds
 * everything it did. */
void peer_journal_superseded(struct peer *p, uint64_t jid);
/* Starts the sync threads (under --durability power) and adds the loop hook that runs the
 * rounds: before the post link's hook and the upstream links'. */
WM_WARN_UNUSED enum wm_err peer_sync_start(struct peer *p);
/* Ends the rounds in progress, then syncs the tree and the journal inline; true when all is
 * durable (the upstream links' last PUBACKs may then leave). */
bool peer_sync_stop(struct peer *p);

/* Whether the tree holds version sum of the file key (verify: from its bytes, not a cached
 * checksum). */
bool peer_holds(struct peer *p, const char *key, const struct wm_checksum *sum, bool verify);
/* Notes that this process has queued the announcement of key's version sum. */
void peer_handled(struct peer *p, const char *key, const struct wm_checksum *sum);

/* peer.c */
double peer_lag(const struct announce *a);
/* A message as it came, or as the journal or a catch-up log kept it, to an announcement that
 * knows its topic. */
WM_WARN_UNUSED enum wm_err peer_decode(const struct journal_entry *m, struct announce **a,
                                       char *why, size_t whylen);
/* Re-evaluates whether upstream brokers are read (jobs in hand, outbox room). */
void peer_backpressure(struct peer *p);

/* peer_job.c */
WM_WARN_UNUSED struct job *job_new(struct peer *p, const char *key, struct announce *a,
                                   const char *url);
void job_add_source(struct job *j, const char *url);
/* Keeps a (a newer version) until j ends; WM_ERR_NOMEM: a is still the caller's. */
enum wm_err job_defer(struct job *j, struct announce *a, uint64_t jid);
/* Keeps a copy of the message the job's announcement came as. WM_ERR_NOMEM. */
WM_WARN_UNUSED enum wm_err job_keep_origin(struct job *j, const struct journal_entry *origin);
void job_start(struct job *j);
/* Re-announces what the tree already holds for a replayed job, then finishes it. */
void job_reannounce_held(struct job *j, const struct wm_checksum *held);
void job_finish(struct job *j);
/* Frees a job that never joined the in-flight table (its announcement too), sets *j NULL. */
void job_free(struct job **j);
/* Commits a verified job's file, announces it and ends the job. */
void job_store(struct job *j);
void jobs_drop_all(struct peer *p);

/* peer_gc.c: the WIS2 Global Cache rules (--centre-id). */
WM_WARN_UNUSED enum wm_err peer_gc_start(struct peer *p);
void peer_gc_stop(struct peer *p);
/* Whether a is handled under the Global Cache rules: a WIS2 message, with --centre-id. */
bool peer_gc_wants(const struct peer *p, const struct announce *a);
/* True for what a Global Cache leaves alone: data/recommended topics. */
bool peer_gc_ignored(const struct announce *a);
bool peer_gc_metadata(const struct announce *a);
/* The centre_id label of a: topic level 4, or properties.global-cache when it came on cache/. */
void peer_gc_centre(const struct announce *a, char *out, size_t outlen);
/* "<clean data_id>/<pubtime YYYYMMDDTHHMMSS[.fraction]>": where the version is stored, and its
 * in-flight key. WM_ERR_UNSAFE (or another tree_clean_relpath error), WM_ERR_TOOBIG. */
WM_WARN_UNUSED enum wm_err peer_gc_version_key(const struct announce *a, char *out, size_t outlen);
/* The newest pubtime of the versions the tree holds beside key's. False when none. */
bool peer_gc_newest(struct peer *p, const char *key, int64_t *newest_ns);
/* Metrics: cached from url (NULL: taken inline); an attempt from url failed (count: the
 * notification has failed, counted once per job); passed on uncached. */
void peer_gc_cached(struct job *j, const char *url);
void peer_gc_failed(struct job *j, const char *url, bool mismatch, bool count);
void peer_gc_passed(struct job *j, bool override);
/* peer_job.c: re-publishes a passed-through job's message with a new id, then ends the job. */
void job_pass(struct job *j);

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
