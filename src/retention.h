/* retention.h: removing files older than a retention time from a tree, and the empty
 * directories left behind, once (wmesh clean) or periodically in a thread of the peer. */
#ifndef WMESH_RETENTION_H
#define WMESH_RETENTION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct retention_stats {
    uint64_t files;       /* regular files removed */
    uint64_t bytes;       /* their sizes */
    uint64_t directories; /* empty directories removed */
};

/* Parses a duration: a number with an optional unit s, m, h or d ("24h", "90m", "3600").
 * WM_ERR_INVAL unless it is positive and finite. */
WM_WARN_UNUSED enum wm_err retention_parse_duration(const char *text, double *seconds);

/* Walks the tree under dirfd (borrowed) without following symlinks and without entering
 * names that start with '.' (temporary files, state), removing regular files modified before
 * cutoff_ns (a peer sets each stored file's mtime to its pubTime) and directories that are
 * empty and were last modified more than a minute before now (so a directory a commit is about
 * to use is left alone). Adds what it removed to *stats. */
enum wm_err retention_sweep(int dirfd, int64_t cutoff_ns, struct retention_stats *stats);

struct retention;

/* Starts a thread that sweeps the tree at dir every interval_s, removing files older than
 * keep_s. removed (may be NULL) is incremented per file removed. NULL with errno set on
 * failure. The caller owns the result. */
WM_WARN_UNUSED struct retention *retention_start(const char *dir, double keep_s, double interval_s,
                                                 atomic_uint_fast64_t *removed);
/* Stops the thread (waiting for a sweep in progress to end) and frees *r. */
void retention_stop(struct retention **r);

#endif
