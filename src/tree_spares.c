/* tree_spares.c: a ring of ready temporary files, refilled by a thread when it runs low. */
#include "tree_spares.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "thread.h"

#define KEEP_MAX 1024
#define BACKOFF_MS 200 /* after a failed creation (disk full, no descriptors left) */
/* A full ring still looks again this often: should a wake-up ever be missed, the ring is
 * refilled within a second instead of never. */
#define IDLE_CHECK_MS 1000

struct tree_spares {
    struct tree *tree;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the ring ran low, or stopping */
    /* Under lock: */
    struct tree_tmp *ring;
    size_t keep, head, count;
    bool thread_waits; /* asleep until woken: a take below half wakes it */
    bool stopping;
};

static void wait_ms(struct tree_spares *s, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = until.tv_nsec + ms * 1000000;
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    pthread_cond_timedwait(&s->wake, &s->lock, &until);
}

static void *refill(void *arg)
{
    struct tree_spares *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        if (s->count >= s->keep) {
            s->thread_waits = true;
            wait_ms(s, IDLE_CHECK_MS);
            s->thread_waits = false;
            continue;
        }
        pthread_mutex_unlock(&s->lock);
        struct tree_tmp tmp;
        enum wm_err e = tree_tmp_create(s->tree, &tmp);
        pthread_mutex_lock(&s->lock);
        if (e != WM_OK) {
            /* The loop's own attempt, when it finds none ready, logs what is wrong. */
            log_debug("tree: cannot make a spare temporary file: %s", wm_strerror(e));
            wait_ms(s, BACKOFF_MS);
            continue;
        }
        s->ring[(s->head + s->count) % s->keep] = tmp;
        s->count++;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

struct tree_spares *tree_spares_start(struct tree *t, size_t keep)
{
    if (!t || keep == 0 || keep > KEEP_MAX) {
        errno = EINVAL;
        return NULL;
    }
    struct tree_spares *s = calloc(1, sizeof *s);
    if (!s || !(s->ring = calloc(keep, sizeof *s->ring))) {
        free(s);
        errno = ENOMEM;
        return NULL;
    }
    s->tree = t;
    s->keep = keep;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    if (thread_start(&s->thread, "wmesh-spares", refill, s) != WM_OK) {
        int saved = errno;
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        free(s->ring);
        free(s);
        errno = saved;
        return NULL;
    }
    return s;
}

enum wm_err tree_spares_take(struct tree_spares *s, struct tree *t, struct tree_tmp *tmp)
{
    if (!tmp) return WM_ERR_INVAL;
    if (s) {
        pthread_mutex_lock(&s->lock);
        bool got = s->count > 0;
        if (got) {
            *tmp = s->ring[s->head];
            s->head = (s->head + 1) % s->keep;
            s->count--;
        }
        /* Woken at half, the thread refills in one stretch: one wake-up per keep/2 takes. */
        if (s->thread_waits && s->count <= s->keep / 2) pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        if (got) return WM_OK;
    }
    return tree_tmp_create(t, tmp);
}

size_t tree_spares_ready(struct tree_spares *s)
{
    if (!s) return 0;
    pthread_mutex_lock(&s->lock);
    size_t n = s->count;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void tree_spares_stop(struct tree_spares **sp)
{
    struct tree_spares *s = sp ? *sp : NULL;
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    for (; s->count > 0; s->count--) {
        tree_tmp_discard(s->tree, &s->ring[s->head]);
        s->head = (s->head + 1) % s->keep;
    }
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s->ring);
    free(s);
    *sp = NULL;
}
