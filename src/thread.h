/* thread.h: how wmesh starts its threads (HTTP server, durability syncers, retention): with
 * every signal blocked, because the main loop takes the process's signals through a signalfd and
 * a SIGTERM delivered to another thread would end the process without its clean stop; and with a
 * name, so that `top -H`, /proc/PID/task/TID/comm and the benchmarks tell them apart. */
#ifndef WMESH_THREAD_H
#define WMESH_THREAD_H

#include <pthread.h>

#include "error.h"

/* Starts fn(arg) on a new joinable thread named name (at most 15 characters are kept) before fn
 * runs and by the time this returns. WM_OK, or WM_ERR_IO (errno set) or WM_ERR_NOMEM with no thread
 * started. The caller joins *thread. */
WM_WARN_UNUSED enum wm_err thread_start(pthread_t *thread, const char *name, void *(*fn)(void *),
                                        void *arg);

/* The same for a thread nobody joins: it ends on its own, and its resources go with it. Ending
 * the process does not wait for it (a resolver thread stuck in getaddrinfo must not hold up a
 * stop). */
WM_WARN_UNUSED enum wm_err thread_start_detached(const char *name, void *(*fn)(void *), void *arg);

#endif
