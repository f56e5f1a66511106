/* seen.h: the seen-cache: file versions this peer already holds or handled, in bounded memory. */
#ifndef WMESH_SEEN_H
#define WMESH_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "integrity.h"

/* A fixed-size table of 64-bit keys with an expiry time each: 12-byte slots (key, and expiry in
 * seconds after a base time) grouped in buckets of SEEN_BUCKET, capacity * 5/4 slots in all,
 * so 15 bytes per entry including the slack. Nothing is allocated after seen_new.
 *
 * A key may live in either of two buckets chosen by its hash. To add one:
 *   1. its own slot (refreshed) if present; else
 *   2. an expired slot in either bucket (reused); else
 *   3. an empty slot in the emptier bucket, while fewer than capacity entries are held; else
 *   4. the entry of the two buckets that expires first is evicted and replaced.
 * So the cache never holds more than capacity entries, expired entries go first, and when it
 * is full the entry closest to its end goes; an eviction only costs a later tree lookup.
 * When the cache is full, seen_add first sweeps out every expired entry, at most once per
 * second of now_s. Early evictions (both buckets full while the table has room) are rare:
 * none in a million distinct keys filling a million-entry cache (tests/unit/test_seen.c).
 *
 * Times are seconds (e.g. since the Unix epoch) passed in by the caller; the cache never reads a
 * clock. Not thread-safe: one owner (the event loop). */

#define SEEN_BUCKET 16 /* slots: 192 bytes, three cache lines */
#define SEEN_CAPACITY_MAX (1u << 30)
#define SEEN_TTL_MAX (1u << 30) /* seconds, about 34 years */

struct seen;

/* The key of one file version: a 64-bit hash of clean_rel (from tree_clean_relpath), the
 * checksum method and the digest bytes. Stable across runs and machines (keys are saved).
 * For WM_SUM_COD the digest is not known yet, so such keys should not be used. */
uint64_t seen_key(const char *clean_rel, const struct wm_checksum *sum);

/* A cache for up to capacity entries (1 .. SEEN_CAPACITY_MAX) that each live ttl_s seconds
 * (1 .. SEEN_TTL_MAX) after their last seen_add. NULL with errno set (EINVAL, ENOMEM). The
 * caller owns the result (seen_free). */
WM_WARN_UNUSED struct seen *seen_new(size_t capacity, uint32_t ttl_s);
/* Frees *s and sets it to NULL. */
void seen_free(struct seen **s);

/* True when key was added and has not expired at now_s. An expired entry found on the way is
 * dropped. */
bool seen_contains(struct seen *s, uint64_t key, uint64_t now_s);
/* Adds key, or restarts its time to live, per the policy above. WM_OK, or WM_ERR_INVAL. */
enum wm_err seen_add(struct seen *s, uint64_t key, uint64_t now_s);
/* Removes key (e.g. when the file was replaced or deleted). WM_ERR_NOTFOUND when absent. */
enum wm_err seen_remove(struct seen *s, uint64_t key);
/* Drops every expired entry (a sweep over the table, for housekeeping); returns how many. */
size_t seen_expire(struct seen *s, uint64_t now_s);

/* Entries held; entries past their expiry count until something drops them. */
size_t seen_count(const struct seen *s);
size_t seen_capacity(const struct seen *s);
/* Entries evicted while unexpired since seen_new (a cache too small shows here). */
uint64_t seen_evictions(const struct seen *s);
/* Bytes allocated by the cache, the table included. */
size_t seen_memory_bytes(const struct seen *s);

/* Writes every entry to path atomically: a temporary file beside it ("<path>.tmp"), write,
 * fsync, rename, fsync of the directory. File: a 40-byte header (magic, version, entry size,
 * count, base time, a 64-bit hash of the header and the entries; little-endian), then 12 bytes
 * per entry (key, expiry after the base). Errors: WM_ERR_INVAL; WM_ERR_IO (errno set, one line
 * logged), with path untouched unless only the final directory fsync failed. */
enum wm_err seen_save(const struct seen *s, const char *path);
/* Replaces the cache's contents with the unexpired entries of path. WM_ERR_NOTFOUND when path
 * does not exist, WM_ERR_FORMAT when it is not a seen file or is truncated or corrupt,
 * WM_ERR_IO: on every error the cache is left empty. Loading more entries than the capacity
 * evicts as seen_add does. */
WM_WARN_UNUSED enum wm_err seen_load(struct seen *s, const char *path, uint64_t now_s);

#endif
