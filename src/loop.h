/* loop.h: the single-threaded event loop (epoll) that drives broker links, downloads and timers. */
#ifndef WMESH_LOOP_H
#define WMESH_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

#define LOOP_READ 1u
#define LOOP_WRITE 2u
#define LOOP_ERROR 4u /* hang-up or error; delivered whatever was asked for */

struct loop;
struct loop_timer;

typedef void (*loop_io_fn)(void *arg, int fd, unsigned events);
typedef void (*loop_fn)(void *arg);

/* Creates a loop; the caller owns it. NULL with errno set on failure. */
WM_WARN_UNUSED struct loop *loop_new(void);
/* Frees *l (its timers too) and sets it to NULL. Watched fds are not closed. */
void loop_free(struct loop **l);

/* Watches fd for events (LOOP_READ | LOOP_WRITE); calling again with the same fd changes the
 * events and the callback. */
WM_WARN_UNUSED enum wm_err loop_watch(struct loop *l, int fd, unsigned events, loop_io_fn fn,
                                      void *arg);
/* Stops watching fd; safe if fd is not watched or already closed. */
void loop_unwatch(struct loop *l, int fd);

/* A one-shot timer. It belongs to its user, who embeds it in a struct of theirs: starting one
 * allocates nothing, so it cannot fail. Zeroed, it is stopped. Fields are the loop's. */
struct loop_timer {
    struct loop_timer *prev, *next; /* the loop's list of started timers */
    int64_t due_ms;
    uint64_t start;
    loop_fn fn;
    void *arg;
    bool active;
};

/* Calls fn(arg) once, delay_ms from now (0: at the next turn), unless stopped first. Starting
 * a timer that is already started moves it. The timer must stay put until it fires or is
 * stopped. */
void loop_timer_start(struct loop *l, struct loop_timer *t, int64_t delay_ms, loop_fn fn,
                      void *arg);
/* Stops t if it is started; fine if it is not. When it fires it is stopped before fn runs. */
void loop_timer_stop(struct loop *l, struct loop_timer *t);
/* Whether t is started and has not fired yet. */
static inline bool loop_timer_active(const struct loop_timer *t)
{
    return t->active;
}

/* Calls fn before every wait for events, in the order hooks were added: the place to flush
 * batched work (journal sync, then queued MQTT packets). */
WM_WARN_UNUSED enum wm_err loop_add_hook(struct loop *l, loop_fn fn, void *arg);

/* Removes the hook added with the same fn and arg, if any. */
void loop_remove_hook(struct loop *l, loop_fn fn, void *arg);

/* Delivers signo through the loop (signalfd) instead of a handler. */
WM_WARN_UNUSED enum wm_err loop_on_signal(struct loop *l, int signo, loop_fn fn, void *arg);

/* Runs until loop_stop(); returns WM_OK, or WM_ERR_IO if epoll fails. */
WM_WARN_UNUSED enum wm_err loop_run(struct loop *l);
/* Makes loop_run return after the current turn. */
void loop_stop(struct loop *l);

/* Monotonic milliseconds, cached once per turn. */
int64_t loop_now_ms(const struct loop *l);
/* Wall clock, nanoseconds since the epoch (not cached). */
int64_t loop_wall_ns(void);
/* Monotonic nanoseconds (not cached): for timing spans shorter than a turn. */
int64_t loop_mono_ns(void);

#endif
