/* syncer.c: a worker thread for blocking calls (durability, hashing), reporting back through an
 * eventfd watched by the event loop. */
#include "syncer.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "thread.h"

struct syncer {
    struct loop *loop;
    int efd; /* the thread writes 1 when work is finished; the loop reads it */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* work handed over, or stopping; and, back, work finished */
    /* Under lock: */
    syncer_work_fn work; /* non-NULL: to do */
    bool finished;       /* the work returned; result holds its outcome */
    enum wm_err result;
    bool stopping;
    /* Set by the loop thread before handing work over (under lock), read by the thread after: */
    void *arg;
    /* Loop thread only: */
    syncer_done_fn done;
    bool busy;
};

static void *run(void *arg)
{
    struct syncer *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->work && !s->stopping)
            pthread_cond_wait(&s->wake, &s->lock);
        if (!s->work) break; /* stopping, nothing left to do */
        syncer_work_fn work = s->work;
        void *warg = s->arg;
        pthread_mutex_unlock(&s->lock);
        enum wm_err result = work(warg);
        pthread_mutex_lock(&s->lock);
        s->work = NULL;
        s->result = result;
        s->finished = true;
        pthread_cond_broadcast(&s->wake);
        uint64_t one = 1;
        /* Cannot fail short of a bug: the counter never nears its limit. */
        if (write(s->efd, &one, sizeof one) != (ssize_t)sizeof one)
            log_error("syncer: cannot signal the loop: %s", strerror(errno));
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* On the loop: the work returned; its done call, with the syncer free for the next. */
static void deliver(struct syncer *s)
{
    pthread_mutex_lock(&s->lock);
    bool finished = s->finished;
    enum wm_err result = s->result;
    s->finished = false;
    pthread_mutex_unlock(&s->lock);
    if (!finished || !s->busy) return;
    s->busy = false;
    s->done(s->arg, result);
}

static void on_signal(void *arg, int fd, unsigned events)
{
    struct syncer *s = arg;
    (void)events;
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN) return;
    deliver(s);
}

struct syncer *syncer_new(struct loop *loop, const char *name)
{
    if (!loop || !name) {
        errno = EINVAL;
        return NULL;
    }
    struct syncer *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->loop = loop;
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) goto fail;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    if (loop_watch(loop, s->efd, LOOP_READ, on_signal, s) != WM_OK) goto fail_sync;
    if (thread_start(&s->thread, name, run, s) != WM_OK) {
        int saved = errno;
        loop_unwatch(loop, s->efd);
        errno = saved;
        goto fail_sync;
    }
    return s;
fail_sync:
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
fail:;
    int saved = errno;
    if (s->efd >= 0) close(s->efd);
    free(s);
    errno = saved;
    return NULL;
}

enum wm_err syncer_start(struct syncer *s, syncer_work_fn work, syncer_done_fn done, void *arg)
{
    if (!s || !work || !done || s->busy) return WM_ERR_INVAL;
    s->busy = true;
    s->done = done;
    s->arg = arg;
    pthread_mutex_lock(&s->lock);
    s->work = work;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    return WM_OK;
}

bool syncer_busy(const struct syncer *s)
{
    return s && s->busy;
}

void syncer_free(struct syncer **sp)
{
    if (!sp || !*sp) return;
    struct syncer *s = *sp;
    pthread_mutex_lock(&s->lock);
    while (s->busy && !s->finished)
        pthread_cond_wait(&s->wake, &s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    deliver(s);
    pthread_join(s->thread, NULL);
    loop_unwatch(s->loop, s->efd);
    close(s->efd);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
    *sp = NULL;
}
