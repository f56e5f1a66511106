/* syncer.h: one piece of blocking work at a time (fdatasync, syncfs; the hasher's rounds) on a
 * thread of its own, so that the event loop goes on receiving, downloading and storing while the
 * disk flushes or a large file is hashed. */
#ifndef WMESH_SYNCER_H
#define WMESH_SYNCER_H

#include <stdbool.h>

#include "error.h"

struct loop;
struct syncer;

/* Runs on the syncer's thread: must only touch what the loop leaves alone until done. */
typedef enum wm_err (*syncer_work_fn)(void *arg);
/* Runs on the loop's thread once the work returned, with its result. */
typedef void (*syncer_done_fn)(void *arg, enum wm_err result);

/* Starts the thread, named name (thread.h), and watches its completions on loop (which must
 * outlive the syncer). The caller owns the result (syncer_free). NULL with errno set on failure. */
WM_WARN_UNUSED struct syncer *syncer_new(struct loop *loop, const char *name);

/* Hands work(arg) to the thread; done(arg, result) follows on the loop, never from inside this
 * call. WM_ERR_INVAL while earlier work has not had its done call yet. */
WM_WARN_UNUSED enum wm_err syncer_start(struct syncer *s, syncer_work_fn work, syncer_done_fn done,
                                        void *arg);

/* True from syncer_start until its done call has returned. */
bool syncer_busy(const struct syncer *s);

/* Waits for work in progress and makes its done call from here (the loop need not run), then
 * stops the thread and frees *s, setting it to NULL. */
void syncer_free(struct syncer **s);

#endif
