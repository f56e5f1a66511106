/* hasher.c: rounds of hashing on a syncer thread. The loop owns every field below; the thread
 * touches only the round's task (its fd and ctx) and the buffer, between syncer_start and the
 * round's done call. */
#include "hasher.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integrity.h"
#include "list.h"
#include "log.h"
#include "syncer.h"

/* Read and hashed at a time: small enough to stay in the L2 cache between the copy out of the
 * page cache and the digest reading it. */
#define HASHER_CHUNK (128 * 1024)
/* A round starts once this much is waiting (or the task is ending): each round costs two
 * wake-ups, worth it only for a good stretch of file. */
#define HASHER_ROUND_MIN (1024 * 1024)

struct hasher_task {
    struct hasher *owner;
    int fd;
    struct integrity_ctx *ctx;
    uint64_t hashed, end;
    bool ending, rest;
    enum wm_err result;
    hasher_done_fn done;
    void *done_arg;
    struct hasher_task *prev, *next;
};

struct hasher {
    struct syncer *thread;
    struct hasher_task *head, *tail;
    struct hasher_task *current; /* the round in progress, if any */
    uint64_t round_end;          /* where it stops */
    unsigned char *buf;          /* HASHER_CHUNK bytes, the thread's */
    bool stopping;
};

/* On the thread: hashes [current->hashed, round_end). */
static enum wm_err hash_round(void *arg)
{
    struct hasher *h = arg;
    struct hasher_task *t = h->current;
    uint64_t at = t->hashed;
    while (at < h->round_end) {
        uint64_t left = h->round_end - at;
        size_t want = left < HASHER_CHUNK ? (size_t)left : HASHER_CHUNK;
        ssize_t n = pread(t->fd, h->buf, want, (off_t)at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            log_error("hasher: cannot read back a file being stored at %llu: %s",
                      (unsigned long long)at, n < 0 ? strerror(errno) : "it is shorter");
            return WM_ERR_IO;
        }
        integrity_update(t->ctx, h->buf, (size_t)n);
        at += (uint64_t)n;
    }
    return WM_OK;
}

static bool settled(const struct hasher_task *t)
{
    return t->ending && (!t->rest || t->hashed >= t->end || t->result != WM_OK);
}

static bool wants_round(const struct hasher_task *t)
{
    if (t->result != WM_OK || (t->ending && !t->rest)) return false;
    uint64_t waiting = t->end - t->hashed;
    return waiting >= HASHER_ROUND_MIN || (t->ending && waiting > 0);
}

static void unlink_task(struct hasher *h, struct hasher_task *t)
{
    DLIST_REMOVE_TAILED(h->head, h->tail, t, next, prev);
}

static void finish_task(struct hasher_task *t)
{
    unlink_task(t->owner, t);
    hasher_done_fn done = t->done;
    void *arg = t->done_arg;
    enum wm_err result = t->result;
    free(t);
    done(arg, result);
}

static void round_done(void *arg, enum wm_err result);

/* Starts a round on the first task that wants one after `after` (round robin), if the thread is
 * free. */
static void start_round(struct hasher *h, struct hasher_task *after)
{
    if (h->stopping || h->current) return;
    struct hasher_task *t = after && after->next ? after->next : h->head;
    for (struct hasher_task *first = t; t;) {
        if (wants_round(t)) break;
        t = t->next ? t->next : h->head;
        if (t == first) t = NULL;
    }
    if (!t) return;
    h->current = t;
    h->round_end = t->end;
    if (syncer_start(h->thread, hash_round, round_done, h) != WM_OK) h->current = NULL;
}

static void round_done(void *arg, enum wm_err result)
{
    struct hasher *h = arg;
    struct hasher_task *t = h->current;
    h->current = NULL;
    if (result == WM_OK)
        t->hashed = h->round_end;
    else
        t->result = result;
    if (h->stopping) return;
    if (settled(t)) {
        finish_task(t); /* its done call may end or start other tasks: start from the head */
        start_round(h, NULL);
        return;
    }
    start_round(h, t);
}

struct hasher *hasher_new(struct loop *loop)
{
    struct hasher *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    if (!(h->buf = malloc(HASHER_CHUNK)) || !(h->thread = syncer_new(loop, "wmesh-hash"))) {
        int saved = errno;
        free(h->buf);
        free(h);
        errno = saved;
        return NULL;
    }
    return h;
}

void hasher_free(struct hasher **hp)
{
    if (!hp || !*hp) return;
    struct hasher *h = *hp;
    h->stopping = true;
    syncer_free(&h->thread);
    while (h->head) {
        struct hasher_task *t = h->head;
        unlink_task(h, t);
        free(t);
    }
    free(h->buf);
    free(h);
    *hp = NULL;
}

struct hasher_task *hasher_task_new(struct hasher *h, int fd, struct integrity_ctx *ctx,
                                    uint64_t from)
{
    struct hasher_task *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->owner = h;
    t->fd = fd;
    t->ctx = ctx;
    t->hashed = t->end = from;
    DLIST_APPEND(h->head, h->tail, t, next, prev);
    return t;
}

void hasher_task_grow(struct hasher_task *t, uint64_t end)
{
    if (end > t->end) t->end = end;
    start_round(t->owner, t);
}

void hasher_task_end(struct hasher_task *t, bool rest, hasher_done_fn done, void *arg)
{
    struct hasher *h = t->owner;
    t->ending = true;
    t->rest = rest;
    t->done = done;
    t->done_arg = arg;
    if (h->current == t) return; /* round_done decides */
    if (settled(t)) {
        finish_task(t);
        start_round(h, NULL);
        return;
    }
    start_round(h, t);
}
