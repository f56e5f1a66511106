/* tree_spares.h: temporary files created ahead of need, on a thread of their own, so that the
 * event loop does not wait for the filesystem to allocate an inode when it starts to store a
 * file. That allocation is the costliest step of storing a small file: 15-40 us on tmpfs, 40 to
 * over 300 us on ext4, where it grows with the number of files deleted in the last minutes. */
#ifndef WMESH_TREE_SPARES_H
#define WMESH_TREE_SPARES_H

#include <stddef.h>

#include "error.h"
#include "tree.h"

struct tree_spares;

/* Starts the thread that keeps up to keep (1 to 1024) empty temporary files of t open and
 * ready. t must outlive the result, which the caller owns (tree_spares_stop). NULL with errno
 * set when the thread cannot start. */
WM_WARN_UNUSED struct tree_spares *tree_spares_start(struct tree *t, size_t keep);

/* Fills *tmp with a ready temporary file of t, or, when none is ready (or s is NULL), creates
 * one now with tree_tmp_create (whose errors it returns). The caller owns *tmp as if
 * tree_tmp_create had made it. Called from one thread at a time. */
WM_WARN_UNUSED enum wm_err tree_spares_take(struct tree_spares *s, struct tree *t,
                                            struct tree_tmp *tmp);

/* How many files are ready now (for tests and metrics). */
size_t tree_spares_ready(struct tree_spares *s);

/* Stops the thread, removes the files nobody took, frees *s and sets it to NULL. */
void tree_spares_stop(struct tree_spares **s);

#endif
