/* hasher.h: hashes large downloads on a thread of its own ("wmesh-hash"), reading each file back
 * from the page cache a little behind the loop that writes it. On the loop's one thread a large
 * download spends about half its time copying into the page cache and half hashing (SHA-512 runs
 * at ~500 MiB/s here); with the hashing on a second core the two overlap, and a file takes the
 * longer of the two instead of their sum. Small files are not worth the hand-over: their hash
 * takes microseconds. One task (one file) is hashed at a time, in rounds of what was written
 * since the last; the file is read in cache-sized chunks, never held whole. */
#ifndef WMESH_HASHER_H
#define WMESH_HASHER_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct loop;
struct hasher;
struct hasher_task;
struct integrity_ctx;

/* Runs on the loop once a task has ended (hasher_task_end): WM_OK, or WM_ERR_IO (errno-style
 * reason in the log) when the file could not be read back, so its digest is incomplete. */
typedef void (*hasher_done_fn)(void *arg, enum wm_err result);

/* Starts the thread and watches its completions on loop (which must outlive the hasher). The
 * caller owns the result (hasher_free). NULL with errno set on failure. */
WM_WARN_UNUSED struct hasher *hasher_new(struct loop *loop);

/* Waits for the round in progress, stops the thread and frees *h (tasks not ended too, without
 * their done calls: their fds and contexts are again the caller's alone), setting it to NULL. */
void hasher_free(struct hasher **h);

/* Goes on hashing, into ctx, the file that the loop writes at fd, from offset `from` (ctx has
 * had the bytes before it). Both are borrowed: the thread reads fd (pread, so its offset is
 * untouched) and updates ctx until the task's done call, and the caller must leave ctx alone
 * until then. NULL with errno set. */
WM_WARN_UNUSED struct hasher_task *hasher_task_new(struct hasher *h, int fd,
                                                   struct integrity_ctx *ctx, uint64_t from);

/* Tells the task that the file now holds end bytes (never fewer than before). */
void hasher_task_grow(struct hasher_task *t, uint64_t end);

/* Ends the task and frees it: done(arg, result) follows once every byte grown so far has been
 * hashed (rest) or, without rest, as soon as no round on it is in progress (its digest is then
 * incomplete: for a transfer that failed). done may be called from inside this call. */
void hasher_task_end(struct hasher_task *t, bool rest, hasher_done_fn done, void *arg);

#endif
