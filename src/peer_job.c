/* peer_job.c: obtaining one file version (inline content or download with retries), storing
 * it in the tree and re-announcing it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "fdio.h"
#include "journal.h"
#include "fetch.h"
#include "hasher.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "outbox.h"
#include "peer_catchup.h"
#include "peer_internal.h"
#include "seen.h"
#include "strmap.h"
#include "tree_spares.h"
#include "url.h"

#define RETRY_MAX_DELAY_MS 30000
/* Files announced this large, or found so as they come, are hashed on the hasher's thread,
 * behind the writes (hasher.h); below, the hand-over would cost more than it saves (4 MiB
 * take ~8 ms of SHA-512). */
#define HASH_BEHIND_MIN (4 * 1024 * 1024)

static const char *basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ---- life cycle ---- */

struct job *job_new(struct peer *p, const char *key, struct announce *a, const char *url)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->peer = p;
    j->a = a;
    j->tmp.fd = -1;
    j->key = strdup(key);
    j->urls = calloc(1, sizeof *j->urls);
    if (!j->key || !j->urls || !(j->urls[0] = strdup(url))) {
        free(j->key);
        free(j->urls);
        free(j);
        return NULL;
    }
    j->nurls = 1;
    j->first_try_ms = loop_now_ms(p->loop);
    j->admitted_ns = loop_mono_ns();
    return j;
}

static void enqueue(struct job *j);

void job_add_source(struct job *j, const char *url)
{
    for (size_t i = 0; i < j->nurls; i++)
        if (strcmp(j->urls[i], url) == 0) return;
    char **u = realloc(j->urls, (j->nurls + 1) * sizeof *u);
    if (!u) return;
    j->urls = u;
    if (!(j->urls[j->nurls] = strdup(url))) return;
    j->nurls++;
    /* A job waiting to retry gets its new source at once rather than after the backoff. */
    if (loop_timer_active(&j->retry_timer)) {
        loop_timer_stop(j->peer->loop, &j->retry_timer);
        j->next_url = j->nurls - 1;
        enqueue(j);
    }
}

enum wm_err job_defer(struct job *j, struct announce *a, uint64_t jid)
{
    struct deferred *d = realloc(j->deferred, (j->ndeferred + 1) * sizeof *d);
    if (!d) return WM_ERR_NOMEM;
    j->deferred = d;
    j->deferred[j->ndeferred++] = (struct deferred){a, jid};
    return WM_OK;
}

static void discard_tmp(struct job *j)
{
    integrity_abort(&j->hash);
    if (j->has_tmp) tree_tmp_discard(j->peer->tree, &j->tmp);
    j->has_tmp = false;
}

static void free_job(struct job *j)
{
    for (size_t i = 0; i < j->nurls; i++)
        free(j->urls[i]);
    free(j->urls);
    free(j->key);
    free(j->inline_copy);
    free(j->end_why);
    free(j->origin);
    announce_free(&j->a);
    free(j);
}

void job_free(struct job **j)
{
    if (!j || !*j) return;
    free_job(*j);
    *j = NULL;
}

enum wm_err job_keep_origin(struct job *j, const struct journal_entry *origin)
{
    free(j->origin);
    j->origin = NULL;
    j->origin_topic = NULL;
    j->origin_len = j->origin_topic_len = 0;
    if (!origin || !origin->payload) return WM_OK;
    size_t tlen = origin->topic ? origin->topic_len : 0;
    unsigned char *copy = malloc(origin->len + tlen + 1);
    if (!copy) return WM_ERR_NOMEM;
    memcpy(copy, origin->payload, origin->len);
    if (tlen) memcpy(copy + origin->len, origin->topic, tlen);
    j->origin = copy;
    j->origin_len = origin->len;
    j->origin_topic = tlen ? (char *)copy + origin->len : NULL;
    j->origin_topic_len = tlen;
    return WM_OK;
}

/* Ends a job: forgets it, then admits the versions of its file that arrived meanwhile. */
void job_finish(struct job *j)
{
    struct peer *p = j->peer;
    discard_tmp(j);
    loop_timer_stop(p->loop, &j->retry_timer);
    strmap_remove(p->inflight, j->key);
    atomic_fetch_sub(&p->metrics.queue_depth, 1);
    struct deferred *deferred = j->deferred;
    size_t ndeferred = j->ndeferred;
    free_job(j);
    for (size_t i = 0; i < ndeferred; i++)
        peer_admit(p, deferred[i].a, deferred[i].jid, ADMIT_REPLAYED, NULL);
    free(deferred);
}

/* ---- re-announcement ---- */

/* With --inline, gives out the downloaded bytes as its content when they are few enough for the
 * option and the format. They go as UTF-8 text when they are, else the encoders use base64. */
static bool attach_inline(struct job *j, struct announce *out)
{
    const struct peer_config *cfg = j->peer->cfg;
    size_t len = (size_t)j->bytes;
    /* No copy is right only for an empty file: no bytes came to copy. */
    if (cfg->inline_max == 0 || j->inline_overflow || (!j->inline_copy && len != 0) ||
        out->content_encoding != WM_CONTENT_NONE || len > codec_inline_capacity(cfg->post_format))
        return false;
    out->content = j->inline_copy;
    out->content_len = len;
    out->content_encoding = WM_CONTENT_UTF8;
    j->inline_copy = NULL;
    return true;
}

/* Encodes out; inline content that we attached is left out again when it would make the
 * message larger than peers accept by default, so that none of them refuses it. */
static enum wm_err encode_announcement(struct job *j, struct announce *out, bool attached,
                                       char **text, size_t *len)
{
    enum wm_format fmt = j->peer->cfg->post_format;
    if (!attached) return codec_encode(out, fmt, text, len);
    enum wm_err e = codec_encode_within(out, fmt, WM_MESSAGE_MAX_DEFAULT, text, len);
    if (e == WM_OK && out->content_encoding != WM_CONTENT_NONE)
        peer_count(&j->peer->metrics.published_inline, 1);
    return e;
}

/* The digests a WIS2 message's integrity may name (its schema's enum). */
static bool wis2_method(enum wm_sum m)
{
    return m == WM_SUM_SHA256 || m == WM_SUM_SHA384 || m == WM_SUM_SHA512 || m == WM_SUM_SHA3_256 ||
           m == WM_SUM_SHA3_384 || m == WM_SUM_SHA3_512;
}

/* A file stored under another method (md5 from a v03 upstream, say) goes out as WIS2 with the
 * SHA-512 of its stored bytes; *sum stays as it is when they cannot be read. */
static void rehash(struct job *j, struct wm_checksum *sum)
{
    int fd = -1;
    struct wm_checksum computed;
    if (tree_open_file(j->peer->tree, j->key, &fd, NULL, NULL) != WM_OK) return;
    if (integrity_of_fd(WM_SUM_SHA512, basename_of(j->key), fd, &computed) == WM_OK)
        *sum = computed;
    close(fd);
}

/* The topic to re-announce a on (--post-exchange, --post-topic-prefix, --post-topic). */
static enum wm_err post_topic(struct peer *p, const struct announce *a, char *out, size_t outlen)
{
    const struct peer_config *c = p->cfg;
    const char *exchange = c->post_exchange ? c->post_exchange : c->exchange;
    const char *prefix = c->post_topic_prefix ? c->post_topic_prefix : c->topic_prefix;
    if (c->post_topic_copy && a->topic) {
        enum wm_err e =
            codec_topic_copy(c->exchange, c->topic_prefix, a->topic, exchange, prefix, out, outlen);
        if (e == WM_OK) return WM_OK;
        /* Say it once: a broker that rewrites topics would make it happen to every message. */
        if (!p->warned_topic)
            log_warn("--post-topic copy: the topic %s is not under %s/%s or cannot be published "
                     "(%s): announcing %s on its relPath's topic (logged once)",
                     a->topic, c->exchange, c->topic_prefix, wm_strerror(e), a->rel_path);
        else
            log_debug("topic %s not copied (%s): announcing %s on its relPath's topic", a->topic,
                      wm_strerror(e), a->rel_path);
        p->warned_topic = true;
    }
    return codec_topic(exchange, prefix, a->rel_path, out, outlen);
}

/* The announcement of what was stored, in the post format, and its topic. */
static enum wm_err make_announcement(struct job *j, const struct wm_checksum *stored, uint64_t seq,
                                     char **text, size_t *len, char *topic, size_t topiclen)
{
    struct peer *p = j->peer;
    if (j->passthrough) {
        enum wm_err e = codec_wnm_passthrough(j->a, text, len);
        return e == WM_OK ? post_topic(p, j->a, topic, topiclen) : e;
    }
    struct announce *out = announce_clone(j->a);
    enum wm_err e = WM_ERR_NOMEM;
    if (!out) return e;
    /* The upstream's seq means nothing downstream: ours replaces it (docs/CATCHUP.md). */
    peer_catchup_unstamp(out);
    if (seq) (void)peer_catchup_stamp(p, out, seq);
    free(out->base_url);
    out->base_url = strdup(p->cfg->post_base_url);
    free(out->retrieve_path); /* we serve the file at its relPath */
    out->retrieve_path = NULL;
    free(out->download_url);
    out->download_url = NULL;
    out->sum = *stored;
    if (j->gc) {
        /* Each version at its own URL, so that an update leaves the previous one served; the
         * link's length is what is served there (both are checked by WIS2 subscribers). */
        out->download_url = url_join(p->cfg->post_base_url, j->key);
        out->global_cache = strdup(p->cfg->centre_id);
        if (j->bytes > 0 || !j->inline_overflow) out->size = j->bytes;
        if (!out->download_url || !out->global_cache) {
            free(out->base_url);
            out->base_url = NULL;
        }
    }
    if (p->cfg->post_format == WM_FORMAT_WNM && !wis2_method(out->sum.method)) rehash(j, &out->sum);
    if (out->base_url) {
        bool attached = attach_inline(j, out);
        if ((e = encode_announcement(j, out, attached, text, len)) == WM_OK)
            e = post_topic(p, out, topic, topiclen);
    }
    announce_free(&out);
    return e;
}

/* Puts the announcement of what was stored in the outbox, recorded in the journal first: the
 * outbox entry holds the message the job came as too, so it replaces the job's own entry,
 * which ends now. The entry ends when the post broker acknowledges it (or it is set aside). */
static void announce_stored(struct job *j, const struct wm_checksum *stored)
{
    struct peer *p = j->peer;
    uint64_t jid = j->jid, id = 0;
    j->jid = 0; /* from here on the outbox finishes it */
    if (j->passthrough) {
        static const struct wm_checksum no_sum; /* as peer_admit.c remembers passed versions */
        seen_add(p->handled, seen_key(j->key, &no_sum), peer_now_s());
        if (p->seen) seen_add(p->seen, seen_key(j->key, &no_sum), peer_now_s());
    } else {
        peer_handled(p, j->key, stored);
    }
    if (!p->outbox) {
        peer_journal_done(p, jid);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    char topic[1024];
    uint64_t seq = j->passthrough ? 0 : peer_catchup_take(p);
    enum wm_err e = make_announcement(j, stored, seq, &text, &len, topic, sizeof topic);
    if (e == WM_ERR_NOMEM) {
        /* The entry stays live: the sweep announces the file it finds held. */
        log_error("cannot announce %s now: out of memory", j->a->rel_path);
        peer_orphan(p, jid);
        free(text);
        return;
    }
    if (e != WM_OK) {
        /* Unannounceable (e.g. a method the array format cannot carry): nothing to wait for. */
        log_error("cannot announce %s: %s", j->a->rel_path, wm_strerror(e));
        peer_journal_done(p, jid);
        free(text);
        return;
    }
    struct journal_outbox rec = {.topic = topic,
                                 .topic_len = strlen(topic),
                                 .message = text,
                                 .len = len,
                                 /* no file to look for when it is replayed */
                                 .key = j->passthrough ? NULL : j->key,
                                 .key_len = j->passthrough ? 0 : strlen(j->key),
                                 .sum = *stored,
                                 .origin = {.topic = j->origin_topic,
                                            .topic_len = j->origin_topic_len,
                                            .payload = j->origin,
                                            .len = j->origin_len}};
    if (p->journal && journal_add_outbox(p->journal, &rec, &id) == WM_OK) {
        atomic_fetch_add(&p->metrics.journal_live, 1);
        peer_journal_superseded(p, jid);
    } else {
        id = jid; /* the job's entry stays until the broker has it: it covers the file too */
    }
    if (id) peer_catchup_logged(p, seq, topic, text, len);
    if (!id) {
        /* Only the journal's entry id ties the broker's acknowledgement to the entry. */
        log_error("cannot announce %s: the journal refused its entry", j->a->rel_path);
    } else if ((e = outbox_add(p->outbox, id, topic, text, len)) != WM_OK) {
        log_error("announcement of %s: %s, taken up again from the journal in a few seconds",
                  j->a->rel_path, wm_strerror(e));
        peer_orphan(p, id);
    }
    free(text);
    peer_backpressure(p);
}

void job_reannounce_held(struct job *j, const struct wm_checksum *held)
{
    /* No bytes came through this job: none go inline (attach_inline would take "no copy" for
     * an empty file, and announce a held file as empty under its real checksum). */
    j->inline_overflow = true;
    log_info("reannounced %s lag=%.3fs (held before a restart)", j->a->rel_path, peer_lag(j->a));
    peer_count(&j->peer->metrics.reannounced, 1);
    announce_stored(j, held);
    job_finish(j);
}

void job_pass(struct job *j)
{
    log_info("passed %s lag=%.3fs (%s): published again uncached", j->a->rel_path, peer_lag(j->a),
             j->gc_override ? "over --max-size" : "cache false");
    peer_gc_passed(j, j->gc_override);
    j->inline_overflow = true;
    announce_stored(j, &j->a->sum);
    job_finish(j);
}

/* ---- storing ---- */

/* The checksum to record for content that hashed to computed, or NULL if it must be refused. */
static const struct wm_checksum *verified_sum(const struct announce *a,
                                              const struct wm_checksum *computed)
{
    switch (a->sum.method) {
    case WM_SUM_RANDOM:
    case WM_SUM_ARBITRARY:
        return &a->sum; /* nothing to check against */
    case WM_SUM_COD:
    case WM_SUM_MD5NAME:
        return computed;
    default:
        return integrity_equal(computed, &a->sum) ? computed : NULL;
    }
}

static void retry_or_give_up(struct job *j, const char *why);

/* Gives the temporary file what the stored one carries besides its bytes: its checksum in the
 * xattr and the version's pubTime as its mtime (to tell newer from older later). */
static enum wm_err label_tmp(struct job *j)
{
    if (tree_tmp_set_time(&j->tmp, j->a->pubtime_ns) != WM_OK)
        log_debug("cannot set the time of %s: %s", j->a->rel_path, strerror(errno));
    return tree_tmp_set_sum(&j->tmp, &j->verified, j->bytes);
}

/* Another process sharing the tree (--share, --instance) may have stored this version, or a
 * newer one, since admission: the commit itself tells, and only what it stored is announced.
 * *stored says whether it was. */
static enum wm_err commit_and_announce(struct job *j, const struct wm_checksum *sum,
                                       const char *how, bool *stored)
{
    struct peer *p = j->peer;
    enum tree_outcome got;
    enum wm_err e = tree_tmp_commit_version(p->tree, &j->tmp, j->key, j->a->pubtime_ns, sum,
                                            &got); /* labelled by label_tmp */
    j->has_tmp = false;                            /* commit consumed it, whatever the outcome */
    *stored = e == WM_OK && got == WM_TREE_STORED;
    if (e != WM_OK) {
        log_error("cannot store %s: %s", j->a->rel_path, wm_strerror(e));
        return e;
    }
    if (got != WM_TREE_STORED) {
        if (got == WM_TREE_HELD_SAME) {
            peer_count(&p->metrics.duplicates, 1);
            log_info("duplicate %s lag=%.3fs (stored meanwhile)", j->a->rel_path, peer_lag(j->a));
            if (p->seen) seen_add(p->seen, seen_key(j->key, sum), peer_now_s());
        } else {
            peer_count(&p->metrics.rejected[WM_REJECT_STALE], 1);
            log_warn("rejected older than the version held %s lag=%.3fs (stored meanwhile)",
                     j->a->rel_path, peer_lag(j->a));
        }
        peer_journal_done(p, j->jid);
        j->jid = 0;
        return WM_OK;
    }
    double lag = peer_lag(j->a);
    double took = (double)(loop_mono_ns() - j->admitted_ns) / 1e9;
    metrics_observe(&p->metrics.lag, lag);
    metrics_observe(&p->metrics.relay, took);
    log_info("%s %s lag=%.3fs took=%.3fms size=%" PRId64, how, j->a->rel_path, lag, took * 1e3,
             j->bytes);
    if (p->seen) seen_add(p->seen, seen_key(j->key, sum), (uint64_t)(loop_wall_ns() / 1000000000));
    announce_stored(j, sum);
    return WM_OK;
}

/* ---- retries ---- */

static void retry_now(void *arg)
{
    struct job *j = arg;
    j->next_url = 0;
    enqueue(j);
}

/* After every source failed: try again later, or give up once --retry-for has passed. */
static void retry_or_give_up(struct job *j, const char *why)
{
    struct peer *p = j->peer;
    int64_t waited = loop_now_ms(p->loop) - j->first_try_ms;
    j->attempts++;
    if (j->gc && j->ndeferred > 0) {
        /* The same version came with another link meanwhile: that one is tried instead. */
        log_info("failed %s lag=%.3fs: %s; giving way to its other announcement", j->key,
                 peer_lag(j->a), why);
        peer_journal_done(p, j->jid);
        job_finish(j);
        return;
    }
    if (waited >= (int64_t)(p->cfg->retry_for_s * 1000)) {
        log_warn("failed %s lag=%.3fs: %s; gave up after %d attempt(s) in %.0f s", j->a->rel_path,
                 peer_lag(j->a), why, j->attempts, (double)waited / 1000);
        peer_journal_done(p, j->jid);
        job_finish(j);
        return;
    }
    int shift = j->attempts < 15 ? j->attempts - 1 : 14;
    int64_t delay = (int64_t)1000 << shift;
    if (delay > RETRY_MAX_DELAY_MS) delay = RETRY_MAX_DELAY_MS;
    delay = delay * 3 / 4 + (int64_t)(random() % (delay / 2 + 1)); /* +-25% jitter */
    peer_count(&p->metrics.retries, 1);
    log_info("retrying %s in %.1f s: %s", j->a->rel_path, (double)delay / 1000, why);
    loop_timer_start(p->loop, &j->retry_timer, delay, retry_now, j);
}

/* Commits the verified temporary file, announces it and ends the job. */
void job_store(struct job *j)
{
    struct peer *p = j->peer;
    bool inlined = j->a->content != NULL && (!j->gc || j->inline_tried), stored;
    if (commit_and_announce(j, &j->verified, inlined ? "inlined" : "downloaded", &stored) !=
        WM_OK) {
        retry_or_give_up(j, "cannot store");
        return;
    }
    if (stored && j->gc) peer_gc_cached(j, inlined ? NULL : j->urls[j->next_url - 1]);
    if (stored && inlined) {
        peer_count(&p->metrics.inlined, 1);
    } else if (stored) {
        peer_count(&p->metrics.downloads, 1);
        peer_count(&p->metrics.download_bytes, (uint64_t)j->bytes);
    }
    job_finish(j);
}

/* Stores verified content and announces it at once, without waiting for the announcement's
 * journal record to be durable (which takes an fdatasync, the largest part of a hop's time
 * under --durability power). Should the peer die before the record is durable, its PUBACK has
 * not left: the broker delivers the message again with the DUP flag to the next process of this
 * peer, which re-announces the file it finds held, stored before it started, instead of
 * dropping it (ADMIT_RESENT). */
static void store_verified(struct job *j, const struct wm_checksum *sum)
{
    j->verified = *sum;
    enum wm_err e = label_tmp(j);
    if (e != WM_OK) {
        log_error("cannot store %s: %s", j->a->rel_path, wm_strerror(e));
        discard_tmp(j);
        retry_or_give_up(j, "cannot store");
        return;
    }
    job_store(j);
}

/* ---- inline content ---- */

static void store_inline(struct job *j)
{
    struct peer *p = j->peer;
    struct announce *a = j->a;
    struct wm_checksum computed;
    enum wm_sum method = a->sum.method == WM_SUM_COD ? a->sum.cod_method : a->sum.method;
    enum wm_err e =
        integrity_of_buffer(method, basename_of(j->key), a->content, a->content_len, &computed);
    if (e == WM_ERR_NOMEM) { /* not the content's fault: taken up again from the journal */
        log_error("cannot check %s now: out of memory", a->rel_path);
        peer_orphan(p, j->jid);
        j->jid = 0;
        job_finish(j);
        return;
    }
    const struct wm_checksum *sum = e == WM_OK ? verified_sum(a, &computed) : NULL;
    if (!sum) {
        peer_count(&p->metrics.integrity_failures, 1);
        if (j->gc) peer_gc_failed(j, NULL, true, true);
        log_warn("failed %s lag=%.3fs: inline content does not match its checksum", a->rel_path,
                 peer_lag(a));
        peer_journal_done(p, j->jid);
        job_finish(j);
        return;
    }
    e = tree_spares_take(p->spares, p->tree, &j->tmp);
    if (e == WM_OK) {
        j->has_tmp = true;
        e = fdio_write_all(j->tmp.fd, a->content, a->content_len) < 0 ? WM_ERR_IO : WM_OK;
    }
    if (e != WM_OK) {
        discard_tmp(j);
        retry_or_give_up(j, "cannot write the tree");
        return;
    }
    j->bytes = (int64_t)a->content_len;
    store_verified(j, sum);
}

/* ---- downloads ---- */

/* With --inline, keeps a copy of a small file's bytes as they come, for its re-announcement:
 * reading the file back would cost a system call, and a large file is never held. */
static void copy_for_inline(struct job *j, const void *data, size_t len)
{
    size_t max = j->peer->cfg->inline_max;
    if (max == 0 || j->inline_overflow) return;
    if ((size_t)j->bytes + len > max) {
        j->inline_overflow = true;
        return;
    }
    if (!j->inline_copy && !(j->inline_copy = malloc(max))) {
        j->inline_overflow = true; /* it goes without: the link still serves it */
        return;
    }
    memcpy(j->inline_copy + j->bytes, data, len);
}

/* Hands a large file's hashing to the hasher's thread, if there is one, from its first bytes
 * when it was announced large, else from where it turns out to be (otherwise, or without
 * memory for the task, on_data goes on hashing). */
static void maybe_hash_behind(struct job *j)
{
    struct peer *p = j->peer;
    enum wm_sum method = j->a->sum.method;
    if (!p->hasher || (j->a->size < HASH_BEHIND_MIN && j->bytes < HASH_BEHIND_MIN) ||
        !(method == WM_SUM_COD || integrity_is_digest(method)))
        return;
    j->behind = hasher_task_new(p->hasher, j->tmp.fd, j->hash, (uint64_t)j->bytes);
}

static int on_data(void *arg, const void *data, size_t len)
{
    struct job *j = arg;
    if (!j->behind) maybe_hash_behind(j);
    if (fdio_write_all(j->tmp.fd, data, len) < 0) {
        j->write_errno = errno;
        return -1;
    }
    if (!j->behind) integrity_update(j->hash, data, len);
    copy_for_inline(j, data, len);
    j->bytes += (int64_t)len;
    if (j->behind) hasher_task_grow(j->behind, (uint64_t)j->bytes);
    return 0;
}

static void on_done(void *arg, enum wm_err err, long status, const char *why);

/* Starts fetching from the job's next source. Returns false when none is left. */
static bool try_next_source(struct job *j)
{
    struct peer *p = j->peer;
    while (j->next_url < j->nurls) {
        const char *url = j->urls[j->next_url++];
        discard_tmp(j);
        j->bytes = 0;
        j->inline_overflow = false;
        j->write_errno = 0;
        enum wm_err e = tree_spares_take(p->spares, p->tree, &j->tmp);
        if (e != WM_OK) {
            log_error("no temporary file for %s: %s", j->a->rel_path, strerror(errno));
            return false;
        }
        j->has_tmp = true;
        j->hash = integrity_begin(&j->a->sum, basename_of(j->key));
        if (!j->hash) {
            log_error("cannot hash %s with %s", j->a->rel_path,
                      integrity_method_name(j->a->sum.method));
            return false;
        }
        e = fetch_start(p->fetcher, url, j->a->size, on_data, on_done, j);
        if (e == WM_OK) return true;
        log_warn("cannot start download of %s: %s", url, wm_strerror(e));
    }
    return false;
}

static void start_waiting(struct peer *p);
#define WAIT_SCAN_MAX 256 /* waiting downloads passed over per start_waiting, for busy hosts */

static void stop_downloading(struct job *j)
{
    j->downloading = false;
    j->peer->active--;
}

/* Judges a completed transfer: the stored checksum, or NULL with why set. */
static const struct wm_checksum *check_transfer(struct job *j, enum wm_err err, long status,
                                                const char *why, struct wm_checksum *computed,
                                                char *reason, size_t rlen)
{
    struct peer *p = j->peer;
    const char *url = j->urls[j->next_url - 1];
    if (err != WM_OK) {
        peer_count(&p->metrics.download_errors, 1);
        if (j->write_errno)
            snprintf(reason, rlen, "cannot write the tree: %s", strerror(j->write_errno));
        else if (status && status != 200)
            snprintf(reason, rlen, "HTTP %ld from %s", status, url);
        else
            snprintf(reason, rlen, "%s from %s", why, url);
        log_warn("download of %s failed: %s", j->a->rel_path, reason);
        /* With inline content to fall back on, the notification has not failed yet. */
        if (j->gc) peer_gc_failed(j, url, false, !j->a->content && !j->write_errno);
        return NULL;
    }
    const struct wm_checksum *sum = NULL;
    if (integrity_finish(&j->hash, computed) == WM_OK) sum = verified_sum(j->a, computed);
    if (!sum) {
        peer_count(&p->metrics.integrity_failures, 1);
        snprintf(reason, rlen, "checksum mismatch from %s", url);
        log_warn("download of %s failed: %s", j->a->rel_path, reason);
        if (j->gc) peer_gc_failed(j, url, true, true);
    }
    return sum;
}

/* The source just tried sent more than --max-size (the fetcher cut it there). It is not asked
 * again for this version: the announced checksum fixes the file's size, so only a source that
 * sends something else could do better. When no other source is left, the version is refused
 * at once, in one line, without retries, and true is returned: the job has ended. */
static bool drop_too_big_source(struct job *j, char *reason, size_t rlen)
{
    struct peer *p = j->peer;
    size_t bad = j->next_url - 1;
    char *url = j->urls[bad];
    peer_count(&p->metrics.download_errors, 1);
    snprintf(reason, rlen, "more than --max-size %" PRId64 " bytes from %s", p->cfg->max_size, url);
    memmove(&j->urls[bad], &j->urls[bad + 1], (j->nurls - bad - 1) * sizeof *j->urls);
    j->nurls--;
    j->next_url--;
    free(url);
    if (j->nurls > 0) {
        log_warn("download of %s failed: %s; not asked again", j->a->rel_path, reason);
        return false;
    }
    peer_count(&p->metrics.rejected[WM_REJECT_TOO_BIG], 1);
    log_warn("rejected too big (%s) %s lag=%.3fs", reason, j->a->rel_path, peer_lag(j->a));
    discard_tmp(j);
    stop_downloading(j);
    peer_journal_done(p, j->jid);
    job_finish(j);
    start_waiting(p);
    return true;
}

/* A transfer's end, judged once its bytes are all hashed. */
static void judge_transfer(struct job *j, enum wm_err err, long status, const char *why)
{
    struct peer *p = j->peer;
    struct wm_checksum computed;
    char reason[512];
    const struct wm_checksum *sum = NULL;
    if (err == WM_ERR_TOOBIG) {
        if (drop_too_big_source(j, reason, sizeof reason)) return;
    } else {
        sum = check_transfer(j, err, status, why, &computed, reason, sizeof reason);
    }
    if (!sum) {
        if (try_next_source(j)) return;
        discard_tmp(j);
        stop_downloading(j);
        if (j->gc && j->a->content && !j->inline_tried) {
            /* The download was preferred so that the data server's metrics say how it does;
             * the message's own copy serves now. */
            j->inline_tried = true;
            store_inline(j);
            start_waiting(p);
            return;
        }
        retry_or_give_up(j, reason);
        start_waiting(p);
        return;
    }
    stop_downloading(j);
    store_verified(j, sum);
    start_waiting(p);
}

static void hashed_behind(void *arg, enum wm_err result)
{
    struct job *j = arg;
    j->behind = NULL;
    enum wm_err err = j->end_err;
    char *why = j->end_why;
    j->end_why = NULL;
    if (err == WM_OK && result != WM_OK) { /* the hasher logged why */
        err = WM_ERR_IO;
        j->write_errno = EIO;
    }
    judge_transfer(j, err, j->end_status, why ? why : "transfer failed");
    free(why);
}

static void on_done(void *arg, enum wm_err err, long status, const char *why)
{
    struct job *j = arg;
    if (!j->behind) {
        judge_transfer(j, err, status, why);
        return;
    }
    /* The hasher may still be reading the file: judge it once it is done with it. */
    j->end_err = err;
    j->end_status = status;
    j->end_why = why ? strdup(why) : NULL;
    hasher_task_end(j->behind, err == WM_OK, hashed_behind, j);
}

/* Whether j would only wait in the downloader's queue of its next source's host, which has as
 * many transfers as its connections can carry. */
static bool host_busy(const struct job *j)
{
    return j->next_url < j->nurls && fetch_host_busy(j->peer->fetcher, j->urls[j->next_url]);
}

/* Starts the waiting downloads while there is room, oldest first, passing over those whose host
 * is busy: they would hold room in the downloader that other hosts' files can use, and one slow
 * origin with a backlog would hold up every other. At most WAIT_SCAN_MAX are passed over per
 * call; they start when a transfer of their host ends. */
static void start_waiting(struct peer *p)
{
    int passed = 0;
    struct job **pp = &p->wait_head, *prev = NULL;
    while (*pp && p->active < p->cfg->max_downloads) {
        struct job *j = *pp;
        if (host_busy(j)) {
            if (++passed > WAIT_SCAN_MAX) break;
            prev = j;
            pp = &j->next_waiting;
            continue;
        }
        *pp = j->next_waiting;
        if (p->wait_tail == j) p->wait_tail = prev;
        j->next_waiting = NULL;
        /* What starting runs may change the list: on from its head. */
        pp = &p->wait_head;
        prev = NULL;
        p->nwaiting--;
        p->active++;
        j->downloading = true;
        if (!try_next_source(j)) {
            discard_tmp(j);
            stop_downloading(j);
            retry_or_give_up(j, "no source could be started");
        }
    }
}

static void enqueue(struct job *j)
{
    struct peer *p = j->peer;
    if (p->wait_tail)
        p->wait_tail->next_waiting = j;
    else
        p->wait_head = j;
    p->wait_tail = j;
    p->nwaiting++;
    start_waiting(p);
}

void job_start(struct job *j)
{
    /* A Global Cache downloads small files too (WIS2 test plan: the data server metrics move
     * for them), and falls back on the inline copy. */
    bool download_first = j->gc && url_is_http(j->urls[0]);
    if (j->a->content && !download_first) {
        j->inline_tried = true;
        store_inline(j);
    } else
        enqueue(j);
}

/* At shutdown: forget every job. Downloads in progress are abandoned; their temporary files go
 * at the next start, and the journal replays what they were for. */
void jobs_drop_all(struct peer *p)
{
    p->wait_head = p->wait_tail = NULL;
    p->nwaiting = 0;
    struct job *j;
    /* The in-flight table holds every job, waiting, downloading or between retries. */
    while ((j = strmap_any(p->inflight))) {
        strmap_remove(p->inflight, j->key);
        j->behind = NULL; /* freed by hasher_free, which came first */
        discard_tmp(j);
        loop_timer_stop(p->loop, &j->retry_timer);
        for (size_t i = 0; i < j->ndeferred; i++)
            announce_free(&j->deferred[i].a);
        free(j->deferred);
        free_job(j);
    }
}
