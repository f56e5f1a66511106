/* catchup_log.h: the log of a peer's own announcements that catch-up serves (docs/CATCHUP.md):
 * an epoch, seqs handed out from a durable reservation, and records in segment files. */
#ifndef WMESH_CATCHUP_LOG_H
#define WMESH_CATCHUP_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "mqtt_wire.h"

/* Thread-safe: one mutex inside. The peer's loop thread takes seqs, appends and flushes; the
 * HTTP server's thread reads.
 *
 * On disk, under dir: "epoch" (the current epoch's name) and "<epoch>/", which holds
 * "reserved" (the highest seq that may have been handed out, written durably before any seq
 * above the previous reservation is given) and segments "<first seq, 20 digits>.jsonl" of one
 * record a line:
 *   {"seq":N,"time":"YYYYMMDDTHHMMSS.mmmZ","topic":"<topic>","message":<the message>}
 * Opening rebuilds an index of every record (seq, offset, time) by scanning the segments; a
 * torn or garbled tail of the last segment is truncated away, a segment that cannot be read is
 * left out, each with one log line. */

#define CATCHUP_EPOCH_LEN 25 /* "YYYYMMDDTHHMMSSZ.<8 hex>" */

struct catchup_log;

struct catchup_log_options {
    const char *dir;        /* e.g. <state-dir>/catchup; created if missing (mode 0700) */
    bool sync;              /* fdatasync segments on flush (--durability power) */
    uint64_t segment_bytes; /* 0: 64 MiB; a segment is closed once it reaches this */
    uint64_t max_bytes;     /* 0: 1 GiB; oldest whole segments are removed beyond it */
    int64_t keep_s;         /* 0: 24 h; segments whose newest record is older are removed */
};

/* Opens (creating when needed) the log under o->dir. Returns NULL with *err (may be NULL) set:
 * WM_ERR_INVAL, WM_ERR_IO, WM_ERR_NOMEM. The caller owns the result (catchup_log_close). */
WM_WARN_UNUSED struct catchup_log *catchup_log_open(const struct catchup_log_options *o,
                                                    enum wm_err *err);
/* Flushes, writes the reservation back down to the last seq handed out (so that a clean
 * restart continues without a hole), frees *l and sets it to NULL. Accepts NULL. */
void catchup_log_close(struct catchup_log **l);

/* The epoch's name, CATCHUP_EPOCH_LEN characters; borrowed, valid until close. */
const char *catchup_log_epoch(const struct catchup_log *l);

/* The next seq: 1, 2, 3 ... never handed out twice, even across crashes. 0 when the
 * reservation that must cover it cannot be written (or seqs would pass 2^53). */
WM_WARN_UNUSED uint64_t catchup_log_take_seq(struct catchup_log *l);

/* Appends one record (buffered until catchup_log_flush). message (len bytes) must be one JSON
 * object or array, as an encoder made it, without a newline byte (only its outline is checked:
 * a parse would double the cost of an append); topic valid UTF-8; seq above every seq appended
 * before; time_ns the record's time (UTC ns since 1970). WM_ERR_INVAL for any of those,
 * WM_ERR_NOMEM, WM_ERR_IO when a new segment cannot be created. Nothing is changed on failure. */
WM_WARN_UNUSED enum wm_err catchup_log_append(struct catchup_log *l, uint64_t seq,
                                              const char *topic, const char *message, size_t len,
                                              int64_t time_ns);
/* Writes the buffered records (fdatasync with o->sync). WM_ERR_IO leaves them buffered for the
 * next call. The loop calls it each turn; reads and close call it too. */
WM_WARN_UNUSED enum wm_err catchup_log_flush(struct catchup_log *l);

/* The lowest and highest seq of a record held; both 0 when the log holds none. */
void catchup_log_bounds(struct catchup_log *l, uint64_t *first, uint64_t *last);

/* Removes whole segments, oldest first, never the one being written: those whose newest record
 * is older than now_ns - keep, then more while the log is over max_bytes. */
void catchup_log_prune(struct catchup_log *l, int64_t now_ns);

/* A query over the records, in seq order. */
struct catchup_read {
    uint64_t after;   /* records with seq > after ... */
    uint64_t until;   /* ... and <= until (0: the last) */
    bool check_gone;  /* fail with WM_ERR_NOTFOUND when after < first - 1 (records removed) */
    bool use_since;   /* start at the first record (seq > after) whose time >= since_ns */
    int64_t since_ns; /* UTC ns since 1970 */
    /* Whether to return a record by its topic (NUL-terminated); NULL returns every one. */
    bool (*match)(void *arg, const char *topic);
    void *match_arg;
    size_t limit;     /* records returned at most (>= 1) */
    size_t max_bytes; /* stop after the record that takes the output over this */
};

struct catchup_read_result {
    uint64_t next;  /* the last seq examined; the starting point when none was */
    uint64_t first; /* the log's bounds when it was read */
    uint64_t last;
    bool more;    /* records after next exist within the query's bounds */
    size_t count; /* records returned */
};

/* Appends to out the record lines (each with its '\n', as stored) that q selects. WM_ERR_INVAL
 * for a bad query, WM_ERR_NOTFOUND for check_gone, WM_ERR_IO when a segment cannot be read or
 * the buffered records written, WM_ERR_NOMEM. out may hold part of the answer on failure. */
WM_WARN_UNUSED enum wm_err catchup_log_read(struct catchup_log *l, const struct catchup_read *q,
                                            struct buf *out, struct catchup_read_result *res);

#endif
