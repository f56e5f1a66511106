/* peer_sync.c: the peer's durability. Journal rounds make admitted announcements durable and
 * then release the PUBACKs that acknowledge them; tree rounds make stored files durable and
 * then let the journal record the entries they finish. Under --durability power each kind of
 * round runs on a thread of its own, so that the loop goes on receiving, downloading and
 * storing while the disk flushes; under process a journal round is a write(2), made inline.
 *
 * The rules (what a power loss must never leave behind):
 *  - a PUBACK leaves only once the add record of what it acknowledges is durable, or the
 *    broker would forget a message the peer never got to keep;
 *  - a file is stored and announced without waiting for a flush: its announcement is an
 *    outbox entry in the journal, which replaces the add record of the message it came as.
 *    Under --durability process the journal round, inline, writes it before the post link's
 *    hook sends the announcement, so a process killed with a file stored but its entry not
 *    written had not announced it: the broker, never acknowledged, delivers the message again
 *    with the DUP flag, and the next process re-announces the file held rather than drop it
 *    (peer_admit.c, ADMIT_RESENT). Under power the journal round's write is on its thread:
 *    such a file may have been announced already, and is announced once more (never lost);
 *  - an entry's done record is made durable only after a tree round that began after the
 *    entry's file was stored has succeeded, or the journal could forget a file the tree lost.
 * The journal is flushed every few milliseconds while syncfs(2) of a busy tree can take tens
 * or hundreds: keeping them apart keeps acknowledgements, and so the brokers' windows of
 * unacknowledged messages, moving. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "log.h"
#include "loop.h"
#include "peer_internal.h"
#include "syncer.h"

#define SYNC_RETRY_MS 200 /* after a failed round, before the next */
/* Tree rounds begin at most this often. They only let done records into the journal, which
 * nothing waits for, while each syncfs(2) writes out the whole filesystem and queues the journal
 * round's fdatasync, that every stored file waits for, behind its writes: at 200 files/s, a
 * round per file doubled the journal round's time. */
#define TREE_ROUND_EVERY_MS 100

/* ---- finished entries ---- */

static void record_done(struct peer *p, uint64_t jid)
{
    if (journal_done(p->journal, jid) == WM_OK) atomic_fetch_sub(&p->metrics.journal_live, 1);
}

void peer_journal_done(struct peer *p, uint64_t jid)
{
    if (!jid || !p->journal) return;
    if (p->tsync) {
        /* Every file stored so far is durable once tree round `need` has succeeded. */
        uint64_t need = p->tree_rounds_begun + (tree_has_unsynced(p->tree) ? 1 : 0);
        if (need > p->tree_rounds_done) {
            if (p->ndones == p->dones_cap) {
                size_t cap = p->dones_cap ? 2 * p->dones_cap : 256;
                struct pending_done *grown = realloc(p->dones, cap * sizeof *grown);
                if (!grown) {
                    /* The entry stays live and is replayed after a restart: nothing is lost. */
                    log_warn("out of memory: journal entry %llu stays unfinished",
                             (unsigned long long)jid);
                    return;
                }
                p->dones = grown;
                p->dones_cap = cap;
            }
            p->dones[p->ndones++] = (struct pending_done){.jid = jid, .need = need};
            return;
        }
    }
    record_done(p, jid);
}

void peer_journal_superseded(struct peer *p, uint64_t jid)
{
    if (jid && p->journal) record_done(p, jid);
}

/* Records the finished entries whose files the tree rounds done so far made durable. */
static void record_durable_dones(struct peer *p)
{
    size_t kept = 0;
    for (size_t i = 0; i < p->ndones; i++) {
        if (p->dones[i].need <= p->tree_rounds_done)
            record_done(p, p->dones[i].jid);
        else
            p->dones[kept++] = p->dones[i];
    }
    p->ndones = kept;
}

/* ---- failures ---- */

static void set_failing(bool *flag, bool failing, const char *what, int err)
{
    if (failing == *flag) return;
    if (failing)
        log_error("%s failed (%s): holding %s until it works", what, strerror(err),
                  strcmp(what, "tree sync") == 0 ? "finished entries" : "acknowledgements");
    else
        log_info("%s works again", what);
    *flag = failing;
}

/* The timers only wake the loop: the sync hook, at the end of the turn, starts the round once
 * they are no longer active. */
static void on_sync_timer(void *arg)
{
    (void)arg;
}

/* ---- journal rounds ---- */

/* On the journal syncer's thread (or inline): touches only the batch and the file. */
static enum wm_err journal_work(void *arg)
{
    struct peer *p = arg;
    enum wm_err e = journal_batch_write(p->batch);
    p->journal_errno = errno; /* errno is the thread's own: carried over for the log line */
    return e;
}

/* What the round marked may now be acknowledged. */
static void journal_round_done(struct peer *p, enum wm_err e)
{
    journal_sync_end(p->journal, &p->batch, e);
    set_failing(&p->journal_failing, e != WM_OK, "journal sync", p->journal_errno);
    if (e != WM_OK) {
        loop_timer_start(p->loop, &p->journal_retry, SYNC_RETRY_MS, on_sync_timer, p);
        return;
    }
    for (size_t i = 0; i < p->nup; i++)
        mqtt_release(p->up[i].link, p->up[i].mark);
}

static void on_journal_synced(void *arg, enum wm_err e)
{
    journal_round_done(arg, e);
}

/* Marks what the upstream links have queued so far: PUBACKs of messages whose records are all
 * buffered now. With nothing buffered they may leave at once; else a round makes the records
 * durable first. One round at a time: what is queued meanwhile waits for the next. */
static void start_journal_round(struct peer *p)
{
    if (syncer_busy(p->jsync) || loop_timer_active(&p->journal_retry)) return;
    for (size_t i = 0; i < p->nup; i++)
        p->up[i].mark = mqtt_mark(p->up[i].link);
    if (journal_sync_begin(p->journal, &p->batch) != WM_OK) p->batch = NULL;
    if (!p->batch) {
        for (size_t i = 0; i < p->nup; i++)
            mqtt_release(p->up[i].link, p->up[i].mark);
        return;
    }
    if (p->jsync && syncer_start(p->jsync, journal_work, on_journal_synced, p) == WM_OK) return;
    journal_round_done(p, journal_work(p));
}

/* ---- tree rounds ---- */

static enum wm_err tree_work(void *arg)
{
    struct peer *p = arg;
    enum wm_err e = tree_sync_fs(p->tree);
    p->tree_errno = errno;
    return e;
}

static void on_tree_synced(void *arg, enum wm_err e)
{
    struct peer *p = arg;
    set_failing(&p->tree_failing, e != WM_OK, "tree sync", p->tree_errno);
    if (e != WM_OK) {
        /* The next round covers these commits too; rounds_done stays where it was. */
        tree_sync_failed(p->tree);
        loop_timer_start(p->loop, &p->tree_retry, SYNC_RETRY_MS, on_sync_timer, p);
        return;
    }
    p->tree_rounds_done = p->tree_round;
    record_durable_dones(p); /* their done records go in the next journal round */
}

/* Whether a tree round may begin now; if not, a timer wakes the loop when it may. */
static bool tree_round_due(struct peer *p)
{
    if (loop_timer_active(&p->tree_pace)) return false;
    int64_t wait = p->tree_round_ms + TREE_ROUND_EVERY_MS - loop_now_ms(p->loop);
    if (wait <= 0) return true;
    loop_timer_start(p->loop, &p->tree_pace, wait, on_sync_timer, p);
    return false;
}

static void start_tree_round(struct peer *p)
{
    if (!p->tsync || syncer_busy(p->tsync) || loop_timer_active(&p->tree_retry) ||
        !tree_has_unsynced(p->tree) || !tree_round_due(p) || !tree_sync_begin(p->tree))
        return;
    p->tree_round_ms = loop_now_ms(p->loop);
    p->tree_round = ++p->tree_rounds_begun;
    if (syncer_start(p->tsync, tree_work, on_tree_synced, p) != WM_OK) {
        tree_sync_failed(p->tree); /* cannot happen while it is idle; tried again next turn */
        p->tree_rounds_begun--;
    }
}

/* ---- the peer's side ---- */

/* Runs at the end of every loop turn, before the post link's hook and the upstream links': a
 * journal round started inline has written the outbox entries the post link is about to send,
 * and released the upstream links' PUBACKs, by the time they write. */
static void sync_hook(void *arg)
{
    struct peer *p = arg;
    start_tree_round(p);
    start_journal_round(p);
}

enum wm_err peer_sync_start(struct peer *p)
{
    if (p->cfg->survive_power_loss) {
        /* Flushes take 0.3 - 500 ms: the loop goes on receiving and downloading meanwhile. */
        if (!(p->jsync = syncer_new(p->loop, "wmesh-journal")) ||
            !(p->tsync = syncer_new(p->loop, "wmesh-tree"))) {
            log_error("cannot start the sync threads: %s", strerror(errno));
            return WM_ERR_NOMEM;
        }
    }
    return loop_add_hook(p->loop, sync_hook, p);
}

bool peer_sync_stop(struct peer *p)
{
    /* Rounds in progress end first (their done calls run from here). */
    syncer_free(&p->tsync);
    syncer_free(&p->jsync);
    if (p->loop) {
        loop_timer_stop(p->loop, &p->journal_retry);
        loop_timer_stop(p->loop, &p->tree_retry);
        loop_timer_stop(p->loop, &p->tree_pace);
        loop_remove_hook(p->loop, sync_hook, p);
    }
    bool durable = !p->tree || !p->cfg->survive_power_loss || tree_sync(p->tree) == WM_OK;
    if (durable) {
        p->tree_rounds_done = UINT64_MAX; /* every file stored is durable */
        record_durable_dones(p);
    }
    free(p->dones);
    p->dones = NULL;
    p->ndones = p->dones_cap = 0;
    return durable && (!p->journal || journal_sync(p->journal) == WM_OK);
}
