/* loop.c: one epoll loop, fd watchers, one-shot timers, pre-wait hooks and signals. */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "list.h"
#include "log.h"

struct watch {
    loop_io_fn fn;
    void *arg;
    unsigned events;
    bool active;
};

struct hook {
    loop_fn fn;
    void *arg;
};

struct sig {
    int signo;
    loop_fn fn;
    void *arg;
};

struct loop {
    int epfd;
    struct watch *watches; /* indexed by fd */
    size_t nwatches;
    struct loop_timer *timers; /* started ones, by due_ms, then by start */
    uint64_t timer_starts;     /* numbers each start: a turn runs only timers older than it */
    struct hook *hooks;
    size_t nhooks;
    struct sig *sigs;
    size_t nsigs;
    int sigfd;
    sigset_t sigmask;
    bool stopping;
    int64_t now_ms;
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t loop_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t loop_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    l->sigfd = -1;
    sigemptyset(&l->sigmask);
    l->now_ms = monotonic_ms();
    return l;
}

void loop_free(struct loop **lp)
{
    if (!lp || !*lp) return;
    struct loop *l = *lp;
    while (l->timers) /* they belong to their users: only unlinked */
        loop_timer_stop(l, l->timers);
    if (l->sigfd >= 0) close(l->sigfd);
    close(l->epfd);
    free(l->watches);
    free(l->hooks);
    free(l->sigs);
    free(l);
    *lp = NULL;
}

static enum wm_err grow_watches(struct loop *l, int fd)
{
    if ((size_t)fd < l->nwatches) return WM_OK;
    size_t n = l->nwatches ? l->nwatches : 64;
    while (n <= (size_t)fd)
        n *= 2;
    struct watch *w = realloc(l->watches, n * sizeof *w);
    if (!w) return WM_ERR_NOMEM;
    memset(w + l->nwatches, 0, (n - l->nwatches) * sizeof *w);
    l->watches = w;
    l->nwatches = n;
    return WM_OK;
}

static uint32_t epoll_events(unsigned events)
{
    uint32_t e = 0;
    if (events & LOOP_READ) e |= EPOLLIN;
    if (events & LOOP_WRITE) e |= EPOLLOUT;
    return e;
}

enum wm_err loop_watch(struct loop *l, int fd, unsigned events, loop_io_fn fn, void *arg)
{
    if (!l || fd < 0 || !fn) return WM_ERR_INVAL;
    if (grow_watches(l, fd) != WM_OK) return WM_ERR_NOMEM;
    struct watch *w = &l->watches[fd];
    struct epoll_event ev = {.events = epoll_events(events), .data.fd = fd};
    int op = w->active ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->epfd, op, fd, &ev) < 0) {
        /* The fd may have been closed and reused behind our back: start afresh. */
        if (op == EPOLL_CTL_MOD && errno == ENOENT)
            op = EPOLL_CTL_ADD;
        else if (op == EPOLL_CTL_ADD && errno == EEXIST)
            op = EPOLL_CTL_MOD;
        else
            return WM_ERR_IO;
        if (epoll_ctl(l->epfd, op, fd, &ev) < 0) return WM_ERR_IO;
    }
    w->fn = fn;
    w->arg = arg;
    w->events = events;
    w->active = true;
    return WM_OK;
}

void loop_unwatch(struct loop *l, int fd)
{
    if (!l || fd < 0 || (size_t)fd >= l->nwatches) return;
    struct watch *w = &l->watches[fd];
    if (!w->active) return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL); /* EBADF when already closed: fine */
    memset(w, 0, sizeof *w);
}

void loop_timer_start(struct loop *l, struct loop_timer *t, int64_t delay_ms, loop_fn fn, void *arg)
{
    if (!l || !t || !fn) return;
    loop_timer_stop(l, t);
    t->due_ms = monotonic_ms() + (delay_ms > 0 ? delay_ms : 0);
    t->fn = fn;
    t->arg = arg;
    t->start = ++l->timer_starts;
    t->active = true;
    /* After every timer due at the same time or earlier: equal times fire in start order. */
    struct loop_timer *after = NULL;
    for (struct loop_timer *n = l->timers; n && n->due_ms <= t->due_ms; n = n->next)
        after = n;
    DLIST_INSERT_AFTER(l->timers, after, t, next, prev);
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
    if (!l || !t || !t->active) return;
    DLIST_REMOVE(l->timers, t, next, prev);
    t->active = false;
}

enum wm_err loop_add_hook(struct loop *l, loop_fn fn, void *arg)
{
    if (!l || !fn) return WM_ERR_INVAL;
    struct hook *h = realloc(l->hooks, (l->nhooks + 1) * sizeof *h);
    if (!h) return WM_ERR_NOMEM;
    l->hooks = h;
    l->hooks[l->nhooks++] = (struct hook){fn, arg};
    return WM_OK;
}

void loop_remove_hook(struct loop *l, loop_fn fn, void *arg)
{
    if (!l) return;
    for (size_t i = 0; i < l->nhooks; i++) {
        if (l->hooks[i].fn == fn && l->hooks[i].arg == arg) {
            memmove(&l->hooks[i], &l->hooks[i + 1], (l->nhooks - i - 1) * sizeof *l->hooks);
            l->nhooks--;
            return;
        }
    }
}

static void on_signalfd(void *arg, int fd, unsigned events)
{
    struct loop *l = arg;
    (void)events;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        for (size_t i = 0; i < l->nsigs; i++)
            if (l->sigs[i].signo == (int)si.ssi_signo) l->sigs[i].fn(l->sigs[i].arg);
    }
}

enum wm_err loop_on_signal(struct loop *l, int signo, loop_fn fn, void *arg)
{
    if (!l || !fn) return WM_ERR_INVAL;
    struct sig *s = realloc(l->sigs, (l->nsigs + 1) * sizeof *s);
    if (!s) return WM_ERR_NOMEM;
    l->sigs = s;
    l->sigs[l->nsigs++] = (struct sig){signo, fn, arg};
    sigaddset(&l->sigmask, signo);
    if (sigprocmask(SIG_BLOCK, &l->sigmask, NULL) < 0) return WM_ERR_IO;
    int fd = signalfd(l->sigfd, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) return WM_ERR_IO;
    if (l->sigfd < 0) {
        l->sigfd = fd;
        return loop_watch(l, fd, LOOP_READ, on_signalfd, l);
    }
    return WM_OK;
}

static void run_due_timers(struct loop *l)
{
    /* Only timers due now and started before this turn run: a timer that re-arms itself at
     * 0 ms waits for the next turn, so it cannot starve I/O. One at a time off the list, so a
     * callback may stop (or free) any other timer, due or not. */
    int64_t now = monotonic_ms();
    uint64_t turn = l->timer_starts;
    struct loop_timer *t;
    while ((t = l->timers) && t->due_ms <= now && t->start <= turn) {
        loop_timer_stop(l, t);
        t->fn(t->arg);
    }
}

static int wait_timeout_ms(const struct loop *l)
{
    if (!l->timers) return 1000;
    int64_t wait = l->timers->due_ms - monotonic_ms();
    if (wait < 0) return 0;
    return wait > 1000 ? 1000 : (int)wait;
}

static void dispatch(struct loop *l, const struct epoll_event *ev)
{
    int fd = ev->data.fd;
    if ((size_t)fd >= l->nwatches || !l->watches[fd].active) return;
    struct watch *w = &l->watches[fd];
    unsigned events = 0;
    if (ev->events & EPOLLIN) events |= LOOP_READ;
    if (ev->events & EPOLLOUT) events |= LOOP_WRITE;
    if (ev->events & (EPOLLERR | EPOLLHUP)) events |= LOOP_ERROR;
    w->fn(w->arg, fd, events);
}

enum wm_err loop_run(struct loop *l)
{
    if (!l) return WM_ERR_INVAL;
    struct epoll_event evs[64];
    enum wm_err err = WM_OK;
    l->stopping = false;
    /* The turn's info lines go out in one write, before the loop sleeps (log.h). */
    log_batch(true);
    while (!l->stopping) {
        for (size_t i = 0; i < l->nhooks; i++)
            l->hooks[i].fn(l->hooks[i].arg);
        log_flush();
        int n = epoll_wait(l->epfd, evs, 64, wait_timeout_ms(l));
        if (n < 0 && errno != EINTR) {
            err = WM_ERR_IO;
            break;
        }
        l->now_ms = monotonic_ms();
        for (int i = 0; i < n; i++)
            dispatch(l, &evs[i]);
        run_due_timers(l);
    }
    log_batch(false);
    return err;
}

void loop_stop(struct loop *l)
{
    if (l) l->stopping = true;
}

int64_t loop_now_ms(const struct loop *l)
{
    return l ? l->now_ms : monotonic_ms();
}
