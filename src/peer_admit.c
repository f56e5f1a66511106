/* peer_admit.c: admission of an announcement: refused, a duplicate of what the tree holds or
 * of a download in flight, deferred behind another version, or a new job. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "filter.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "peer_internal.h"
#include "seen.h"
#include "strmap.h"
#include "url.h"

#define MAX_FUTURE_S 300.0 /* announcements further in the future are refused */

static void reject(struct peer *p, struct announce **a, uint64_t jid, enum wm_reject r,
                   const char *why)
{
    atomic_fetch_add_explicit(&p->metrics.rejected[r], 1, memory_order_relaxed);
    log_warn("rejected %s %s lag=%.3fs", why, (*a)->rel_path, peer_lag(*a));
    announce_free(a);
    peer_journal_done(p, jid);
}

static void duplicate(struct peer *p, struct announce **a, uint64_t jid, const char *why)
{
    peer_count(&p->metrics.duplicates, 1);
    log_info("duplicate %s lag=%.3fs%s", (*a)->rel_path, peer_lag(*a), why);
    announce_free(a);
    peer_journal_done(p, jid);
}

/* What the tree holds of an announced file. */
enum holding { HOLDS_NOTHING, HOLDS_SAME, HOLDS_OLDER, HOLDS_NEWER };

/* What the tree holds of a's file: *held gets its checksum. */
static enum holding holding_of(struct peer *p, const char *key, const struct announce *a,
                               bool verify, struct wm_checksum *held)
{
    struct tree_times times = {0};
    /* Without a digest to compare, holding the relPath is all we can know. */
    bool digest = integrity_is_digest(a->sum.method) || a->sum.method == WM_SUM_MD5NAME;
    /* After a crash the cached checksum may vouch for bytes that never reached the disk: a
     * replayed entry (verify) is checked against the bytes themselves. */
    enum wm_err e =
        tree_lookup(p->tree, key, digest ? a->sum.method : WM_SUM_NONE, verify, held, &times);
    if (!digest && (e == WM_OK || e == WM_ERR_NOSUM)) {
        if (e == WM_ERR_NOSUM) *held = a->sum;
        return HOLDS_SAME;
    }
    if (e != WM_OK) return HOLDS_NOTHING;
    if (integrity_equal(held, &a->sum)) return HOLDS_SAME;
    /* Another version: only a later pubTime replaces it, so that two versions crossing in the
     * mesh cannot chase each other round it forever. */
    return a->pubtime_ns > times.mtime_ns ? HOLDS_OLDER : HOLDS_NEWER;
}

bool peer_holds(struct peer *p, const char *key, const struct wm_checksum *sum, bool verify)
{
    struct announce a = {.sum = *sum, .pubtime_ns = INT64_MIN};
    struct wm_checksum held;
    return holding_of(p, key, &a, verify, &held) == HOLDS_SAME;
}

void peer_handled(struct peer *p, const char *key, const struct wm_checksum *sum)
{
    if (p->handled && sum->method != WM_SUM_COD)
        seen_add(p->handled, seen_key(key, sum), peer_now_s());
}

static bool has_file_op(const struct announce *a)
{
    return a->extra && wm_json_is_object(a->extra) && wm_json_object_get(a->extra, "fileOp");
}

/* Cheap checks that need neither the tree nor the in-flight table. */
static bool admissible(struct peer *p, struct announce **a, uint64_t jid, const char *url)
{
    double lag = peer_lag(*a);
    /* Versions are ordered by pubTime: one dated in the future would win over every real
     * version of its file until then. A few minutes of clock skew are tolerated. */
    if (lag < -MAX_FUTURE_S) {
        reject(p, a, jid, WM_REJECT_LAG, "pubTime in the future");
        return false;
    }
    if (p->cfg->lag_drop_s > 0 && lag > p->cfg->lag_drop_s) {
        reject(p, a, jid, WM_REJECT_LAG, "too late");
        return false;
    }
    if (p->cfg->lag_warn_s > 0 && lag > p->cfg->lag_warn_s)
        log_warn("late announcement %s lag=%.3fs: this peer may be falling behind", (*a)->rel_path,
                 lag);
    if (has_file_op(*a)) {
        reject(p, a, jid, WM_REJECT_UNSUPPORTED, "fileOp not supported");
        return false;
    }
    /* A size the announcement states (inline content, a WIS2 link's length, v03 size) is
     * trusted for refusing: no download is started for a file over --max-size. */
    int64_t size = (*a)->content ? (int64_t)(*a)->content_len : (*a)->size;
    if (p->cfg->max_size > 0 && size > p->cfg->max_size) {
        char why[100];
        snprintf(why, sizeof why, "too big (%" PRId64 " bytes, --max-size %" PRId64 ")", size,
                 p->cfg->max_size);
        reject(p, a, jid, WM_REJECT_TOO_BIG, why);
        return false;
    }
    if (!(*a)->content && !url_is_http(url)) {
        reject(p, a, jid, WM_REJECT_URL, "not an http(s) URL");
        return false;
    }
    const char *rule = NULL;
    if (!filter_accepts(p->cfg->filter, url, &rule)) {
        char why[300];
        snprintf(why, sizeof why, "by --reject %s", rule ? rule : "(default)");
        reject(p, a, jid, WM_REJECT_FILTER, why);
        return false;
    }
    return true;
}

/* The message a came as (raw), or when there is none, a re-encoded in the format that loses
 * least of it (WIS2 as WIS2, else v03), with the topic it came on: *made holds what the
 * caller then frees. */
static enum wm_err origin_of(const struct announce *a, const struct journal_entry *raw,
                             struct journal_entry *out, char **made)
{
    *made = NULL;
    if (raw) {
        *out = *raw;
        return WM_OK;
    }
    size_t len = 0;
    enum wm_err e =
        codec_encode(a, a->format == WM_FORMAT_WNM ? WM_FORMAT_WNM : WM_FORMAT_V03, made, &len);
    *out = (struct journal_entry){.topic = a->topic,
                                  .topic_len = a->topic ? strlen(a->topic) : 0,
                                  .payload = *made,
                                  .len = len};
    return e;
}

static bool journal_record(struct peer *p, const struct announce *a,
                           const struct journal_entry *raw, uint64_t *jid);

/* Gives the job a copy of the message its announcement came as, for its outbox entry. */
static enum wm_err keep_origin(struct job *j, const struct announce *a,
                               const struct journal_entry *raw)
{
    char *made = NULL;
    struct journal_entry from;
    enum wm_err e = origin_of(a, raw, &from, &made);
    if (e == WM_OK) e = job_keep_origin(j, &from);
    free(made);
    return e;
}

/* An announcement journaled (jid) that cannot be kept in memory now: its entry stays live for
 * the sweep. Without an entry yet, it is not taken (the caller does not acknowledge it). */
static bool not_kept(struct peer *p, struct announce **a, uint64_t jid)
{
    log_error("%s: out of memory, %s", (*a)->rel_path,
              jid ? "taken up again from the journal in a few seconds"
                  : "not acknowledged: its broker sends it again");
    announce_free(a);
    if (!jid) return false;
    peer_orphan(p, jid);
    return true;
}

/* Joins an announcement to the job in flight for its file. Returns false if there is none;
 * else *taken says whether it was taken (see peer_admit). */
static bool join_inflight(struct peer *p, struct announce **a, uint64_t jid, const char *key,
                          const char *url, const struct journal_entry *raw, bool *taken)
{
    struct job *j = strmap_get(p->inflight, key);
    if (!j) return false;
    *taken = true;
    if (integrity_equal(&j->a->sum, &(*a)->sum)) {
        job_add_source(j, url);
        duplicate(p, a, jid, " (in flight)");
    } else if ((*a)->pubtime_ns <= j->a->pubtime_ns) {
        reject(p, a, jid, WM_REJECT_STALE, "older than the version in flight");
    } else if (loop_timer_active(&j->retry_timer)) {
        /* A newer version supersedes one that is only waiting to be retried. */
        log_info("superseded %s: a newer version was announced", j->a->rel_path);
        peer_journal_done(p, j->jid);
        job_finish(j);
        return strmap_get(p->inflight, key) ? join_inflight(p, a, jid, key, url, raw, taken)
                                            : false;
    } else {
        /* Decided once the download in flight is settled, maybe after a restart: journaled
         * now, as its PUBACK leaves this turn. */
        if (!jid && p->journal && !journal_record(p, *a, raw, &jid)) {
            *taken = not_kept(p, a, 0);
            return true;
        }
        if (job_defer(j, *a, jid) != WM_OK) {
            *taken = not_kept(p, a, jid);
            return true;
        }
        *a = NULL;
    }
    return true;
}

/* Journals a: the message as it came (raw), or made of it (origin_of). */
static bool journal_record(struct peer *p, const struct announce *a,
                           const struct journal_entry *raw, uint64_t *jid)
{
    char *text = NULL;
    struct journal_entry origin;
    enum wm_err e = origin_of(a, raw, &origin, &text);
    if (e == WM_OK) e = journal_add_entry(p->journal, &origin, jid);
    free(text);
    if (e != WM_OK) {
        log_error("cannot journal %s: %s", a->rel_path, wm_strerror(e));
        return false;
    }
    atomic_fetch_add(&p->metrics.journal_live, 1);
    return true;
}

/* Journals a (when it is not yet) and makes its job, in the in-flight table under key. False
 * when it could not: *taken then says what peer_admit returns. */
static bool new_job(struct peer *p, struct announce **a, uint64_t jid, const char *key,
                    const char *url, const struct journal_entry *raw, struct job **out, bool *taken)
{
    if (!jid && p->journal && !journal_record(p, *a, raw, &jid)) {
        *taken = not_kept(p, a, 0);
        return false;
    }
    struct job *j = job_new(p, key, *a, url);
    if (!j || keep_origin(j, *a, raw) != WM_OK || strmap_put(p->inflight, key, j) != WM_OK) {
        if (j) j->a = NULL;
        job_free(&j);
        *taken = not_kept(p, a, jid);
        return false;
    }
    j->jid = jid;
    atomic_fetch_add(&p->metrics.queue_depth, 1);
    *a = NULL;
    *out = j;
    return true;
}

/* ---- WIS2 Global Cache (--centre-id; docs/OPERATIONS.md, "A WIS2 Global Cache") ---- */

/* What passed-through versions (no file in the tree) are remembered by. */
static const struct wm_checksum no_sum;

static bool gc_passed_before(struct peer *p, const char *key)
{
    uint64_t k = seen_key(key, &no_sum), now = peer_now_s();
    return (p->seen && seen_contains(p->seen, k, now)) || seen_contains(p->handled, k, now);
}

/* A version is new unless one of its data_id with this pubtime or a later one was cached or
 * passed on (GC-5); in flight, the same checksum is another source, another one waits for the
 * job's outcome, or replaces it when it is only waiting to retry (GC-7: a failure does not
 * take the key). Returns what peer_admit returns. */
static bool gc_admit(struct peer *p, struct announce *a, uint64_t jid, enum admit_origin origin,
                     const struct journal_entry *raw)
{
    char key[PATH_MAX];
    bool taken = true;
    const char *own = codec_wnm_global_cache(a);
    if (peer_gc_ignored(a)) {
        log_debug("ignored %s: recommended data is not cached (topic %s)", a->rel_path, a->topic);
        announce_free(&a);
        peer_journal_done(p, jid);
        return true;
    }
    if (own && strcmp(own, p->cfg->centre_id) == 0) {
        duplicate(p, &a, jid, " (our own message, come back)");
        return true;
    }
    if (peer_gc_version_key(a, key, sizeof key) != WM_OK) {
        reject(p, &a, jid, WM_REJECT_UNSAFE_PATH, "unsafe data_id");
        return true;
    }
    char *url = a->download_url ? strdup(a->download_url) : NULL;
    if (!url) return not_kept(p, &a, jid);
    int64_t newest = 0;
    bool held = peer_gc_newest(p, key, &newest) && newest >= a->pubtime_ns;
    if (held && newest > a->pubtime_ns) {
        reject(p, &a, jid, WM_REJECT_STALE, "older than the version held");
        goto done;
    }
    struct wm_checksum sum = {0};
    enum wm_sum method = a->sum.method == WM_SUM_COD ? a->sum.cod_method : a->sum.method;
    bool holds =
        held && tree_lookup(p->tree, key, method, origin != ADMIT_FRESH, &sum, NULL) == WM_OK;
    bool handled_here = holds && seen_contains(p->handled, seen_key(key, &sum), peer_now_s());
    if ((held && (origin == ADMIT_FRESH || handled_here)) || gc_passed_before(p, key)) {
        duplicate(p, &a, jid, "");
        goto done;
    }
    struct job *j = strmap_get(p->inflight, key);
    if (j && integrity_equal(&j->a->sum, &a->sum)) {
        job_add_source(j, url);
        duplicate(p, &a, jid, " (in flight)");
        goto done;
    }
    if (j && loop_timer_active(&j->retry_timer)) {
        log_info("superseded %s: its version announced again with another link", j->key);
        peer_journal_done(p, j->jid);
        job_finish(j);
        free(url);
        return gc_admit(p, a, jid, origin, raw);
    }
    if (j) {
        if (!jid && p->journal && !journal_record(p, a, raw, &jid)) {
            taken = not_kept(p, &a, 0);
        } else if (job_defer(j, a, jid) != WM_OK) {
            taken = not_kept(p, &a, jid);
        }
        goto done;
    }
    /* A size the message states over --max-size: the cache will not keep it (GC-15). */
    int64_t size = a->content ? (int64_t)a->content_len : a->size;
    bool override = p->cfg->max_size > 0 && size > p->cfg->max_size;
    bool pass = override || codec_wnm_cache_false(a);
    if (!pass && !holds && !admissible(p, &a, jid, url)) goto done;
    char centre[sizeof j->centre];
    bool metadata = peer_gc_metadata(a);
    peer_gc_centre(a, centre, sizeof centre);
    if (!new_job(p, &a, jid, key, url, raw, &j, &taken)) goto done;
    j->gc = true;
    j->metadata = metadata;
    j->passthrough = pass;
    j->gc_override = override;
    memcpy(j->centre, centre, sizeof centre);
    if (pass)
        job_pass(j);
    else if (holds)
        job_reannounce_held(j, &sum);
    else
        job_start(j);
done:
    free(url);
    return taken;
}

bool peer_admit(struct peer *p, struct announce *a, uint64_t jid, enum admit_origin origin,
                const struct journal_entry *raw)
{
    char key[PATH_MAX];
    char *url = NULL;
    bool taken = true;
    if (peer_gc_wants(p, a)) return gc_admit(p, a, jid, origin, raw);
    if (tree_clean_relpath(a->rel_path, key, sizeof key) != WM_OK) {
        reject(p, &a, jid, WM_REJECT_UNSAFE_PATH, "unsafe relPath");
        return true;
    }
    url = a->download_url
              ? strdup(a->download_url)
              : url_join(a->base_url, a->retrieve_path ? a->retrieve_path : a->rel_path);
    if (!url) return not_kept(p, &a, jid);
    if (!admissible(p, &a, jid, url)) goto done;
    bool seeable = a->sum.method != WM_SUM_COD;
    bool fresh = origin == ADMIT_FRESH;
    if (fresh && p->seen && seeable &&
        seen_contains(p->seen, seen_key(key, &a->sum), peer_now_s())) {
        duplicate(p, &a, jid, "");
        goto done;
    }
    if (join_inflight(p, &a, jid, key, url, raw, &taken)) goto done;
    struct wm_checksum held;
    enum holding h = holding_of(p, key, a, !fresh, &held);
    if (h == HOLDS_SAME && p->seen && seeable)
        seen_add(p->seen, seen_key(key, &held), peer_now_s());
    /* A resent announcement of a version this process handled is its own business: its
     * announcement went, or goes, through the outbox. Only an earlier process's may be
     * missing: one whose journal entry was not written, and so never announced. */
    bool handled_here = origin == ADMIT_RESENT && h == HOLDS_SAME && held.method != WM_SUM_COD &&
                        seen_contains(p->handled, seen_key(key, &held), peer_now_s());
    if (h == HOLDS_SAME && (fresh || handled_here)) {
        duplicate(p, &a, jid, "");
        goto done;
    }
    if (h == HOLDS_NEWER) {
        reject(p, &a, jid, WM_REJECT_STALE, "older than the version held");
        goto done;
    }
    struct job *j = NULL;
    if (!new_job(p, &a, jid, key, url, raw, &j, &taken)) goto done;
    /* A journaled or resent announcement whose file is already held was stored before a
     * restart, maybe without being announced: announce it (again) rather than fetch it again. */
    if (h == HOLDS_SAME)
        job_reannounce_held(j, &held);
    else
        job_start(j);
done:
    free(url);
    return taken;
}
