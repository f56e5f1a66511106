/* journal.h: the durable record of admitted announcements that are not finished yet. */
#ifndef WMESH_JOURNAL_H
#define WMESH_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "integrity.h"

/* How the peer uses it, all on the event-loop thread:
 *   journal_add_entry() in on_message (the link has only queued the PUBACK by then);
 *                     journal_add() for records of other shapes;
 *   journal_sync()    once per loop turn, before any socket write, so that one fdatasync covers
 *                     the whole batch. WM_ERR_IO means "do not acknowledge": the queued PUBACKs
 *                     must not leave this turn (skip the broker links' writes) and the sync is
 *                     tried again next turn; nothing journal_add accepted is dropped meanwhile;
 *   journal_done()    when an announcement is finished (re-announced and acknowledged, or
 *                     finally refused);
 *   journal_replay()  at start-up, to finish what a crash left;
 *   journal_maybe_compact() from a housekeeping timer.
 *
 * On disk: a 24-byte header (magic, version, first id, CRC32), then records of 16 bytes
 * (type, payload length, id; little-endian), the payload, and a CRC32 of all of that. A crash
 * can only tear the tail: journal_open keeps everything before the first record that is torn
 * or fails its CRC, truncates the rest and logs one warning. Ids start at 1 and keep
 * increasing across restarts and compactions (the header remembers where they stand); only
 * ids never made durable (a crash before their sync) may be handed out again.
 *
 * Not thread-safe: one owner, the event loop; only journal_batch_write may run elsewhere. */

/* Payload bytes in one record: an outbox entry (below) holding a message of --max-message's
 * largest size, 64 KiB, with its topic, and the re-announcement made of it, about as large.
 * Older versions allowed 64 and 128 KiB: the files they wrote still read. */
#define JOURNAL_RECORD_MAX (256u << 10)

struct journal;

/* Opens the journal at path, creating the file (mode 0600) when absent; its directory must
 * exist. Scans the file once to learn the live ids (payloads are not kept in memory) and
 * truncates a torn tail. Takes an exclusive lock: a second open of the same file, by this or
 * another process, fails with WM_ERR_EXISTS. Other errors in *err (may be NULL):
 * WM_ERR_FORMAT (not a journal: wrong magic, version or header CRC), WM_ERR_IO, WM_ERR_NOMEM,
 * WM_ERR_INVAL. Returns NULL on failure. The caller owns the result (journal_close). */
WM_WARN_UNUSED struct journal *journal_open(const char *path, enum wm_err *err);

/* Syncs what is buffered (logging an error if that fails: it is then lost), closes and frees
 * *j, and sets it to NULL. Never with a batch out (journal_sync_begin): end it first. */
void journal_close(struct journal **j);

/* Buffers an add record holding a copy of record (len <= JOURNAL_RECORD_MAX; record may be
 * NULL when len is 0) and writes its new id into *id. Not durable until journal_sync returns
 * WM_OK. Errors: WM_ERR_TOOBIG (len over the limit, or the unsynced buffer over 64 MiB because
 * syncs keep failing), WM_ERR_NOMEM, WM_ERR_INVAL. On error nothing is recorded. */
WM_WARN_UNUSED enum wm_err journal_add(struct journal *j, const void *record, size_t len,
                                       uint64_t *id);

/* The peer's entries: what one add record holds for an admitted announcement.
 *
 * Version 2 (now): byte 0 is 2, byte 1 flags (0 so far; readers ignore them), bytes 2-3 the
 * topic's length (little-endian; 0: unknown), then the topic the message came on, then the MQTT
 * payload exactly as received, to the end of the record. Replay decodes it as if it had just
 * arrived on that topic, so nothing of the message is lost (a WIS2 message keeps its geometry
 * and properties) and nothing is re-encoded on the way in.
 * Version 1 (wmesh before entry versions): the announcement re-encoded as v03 JSON text, so the
 * record begins with '{' (JSON's first byte: '{', '[' or a blank). Still read, without a topic.
 * Any other first byte is a version this wmesh does not know: journal_entry_read refuses it. */
#define JOURNAL_ENTRY_VERSION 2
#define JOURNAL_ENTRY_HEAD 4u /* bytes before the topic */

struct journal_entry {
    int version;         /* set by journal_entry_read: 1 or 2 (or the unknown version found) */
    const char *topic;   /* topic_len bytes, not NUL-terminated; NULL when unknown */
    size_t topic_len;    /* 0 when unknown */
    const void *payload; /* the message as received (version 1: as re-encoded) */
    size_t len;
};

/* Buffers an add record holding entry e (its version is ignored: the current one is written),
 * framed straight into the pending buffer, and writes its new id into *id; as journal_add
 * otherwise. The topic is left out (length 0) when it is longer than 65535 bytes or would take
 * the record over JOURNAL_RECORD_MAX: it only chooses a re-announcement's topic, which then
 * falls back to the relPath's. WM_ERR_TOOBIG when the payload alone does not fit. */
WM_WARN_UNUSED enum wm_err journal_add_entry(struct journal *j, const struct journal_entry *e,
                                             uint64_t *id);

/* Reads the entry held in record (len bytes, as journal_replay hands it) into *e, whose
 * pointers then point into record. WM_ERR_FORMAT when the record is empty, truncated, or of a
 * version this wmesh does not know (e->version then says which), WM_ERR_INVAL for bad
 * arguments. */
WM_WARN_UNUSED enum wm_err journal_entry_read(const void *record, size_t len,
                                              struct journal_entry *e);

/* The peer's outbox entries: a re-announcement on its way to the post broker, recorded before
 * it is sent and finished once the broker acknowledged it (or it was set aside).
 *
 * Version 3: byte 0 is 3, byte 1 flags (OUTBOX_HAS_FILE: key and sum are set; OUTBOX_HAS_ORIGIN:
 * the message it was made from follows), bytes 2-3 the key's length, 4-5 the topic's, 6-9 the
 * message's (all little-endian), 10-11 the checksum's method and cod method, 12 its length,
 * then its bytes, the key, the topic, the message, and to the end of the record the origin
 * framed as a version 2 entry without its version byte and flags (topic length, topic,
 * payload). The origin lets a replay fetch the file again when the tree lost it (a power cut)
 * or holds another version. */
#define JOURNAL_OUTBOX_VERSION 3
#define JOURNAL_OUTBOX_HAS_FILE 1u
#define JOURNAL_OUTBOX_HAS_ORIGIN 2u

struct journal_outbox {
    const char *topic; /* the topic to publish on; topic_len bytes, not NUL-terminated */
    size_t topic_len;
    const void *message; /* the announcement, exactly as it is published */
    size_t len;
    const char *key; /* the file's clean relPath; NULL when the entry names no file */
    size_t key_len;
    struct wm_checksum sum;      /* the version announced (with key) */
    struct journal_entry origin; /* payload NULL when absent */
};

/* Buffers an add record holding o, as journal_add. An origin that would take the record over
 * JOURNAL_RECORD_MAX is left out. WM_ERR_TOOBIG when the rest does not fit (topic or key
 * over 65535 bytes, or the message too large). */
WM_WARN_UNUSED enum wm_err journal_add_outbox(struct journal *j, const struct journal_outbox *o,
                                              uint64_t *id);

/* The version of the record journal_replay hands out (1, 2 or 3; 0 when empty or unknown):
 * an entry (1, 2) is read by journal_entry_read, an outbox entry (3) by journal_outbox_read. */
int journal_record_version(const void *record, size_t len);

/* Reads an outbox entry into *o, whose pointers then point into record. WM_ERR_FORMAT when the
 * record is not one, or is truncated. */
WM_WARN_UNUSED enum wm_err journal_outbox_read(const void *record, size_t len,
                                               struct journal_outbox *o);

/* Buffers a done record: id is finished and will not be replayed once this is synced.
 * WM_ERR_NOTFOUND when id is not live (never added, or already done). */
WM_WARN_UNUSED enum wm_err journal_done(struct journal *j, uint64_t id);

/* Writes what is buffered and fdatasyncs it. A no-op (no system call) when nothing is
 * buffered. WM_ERR_IO (errno set) when a write or the fdatasync fails: the caller must then
 * not acknowledge anything added since the last WM_OK. The buffer is kept, and the next call
 * rewrites every byte not yet known durable at the same offsets before syncing again (after a
 * failed fdatasync the kernel may have dropped the dirty pages, so a plain retry could lie). */
WM_WARN_UNUSED enum wm_err journal_sync(struct journal *j);

/* journal_sync in three steps, so that the write and the flush can run on another thread
 * while the loop goes on adding records:
 *   journal_sync_begin (loop thread) takes everything buffered into a batch, *out (NULL, with
 *     WM_OK, when nothing is buffered); records added from then on are buffered behind it.
 *     WM_ERR_INVAL when a batch is already out.
 *   journal_batch_write (any thread, one at a time) writes and flushes the batch; it touches
 *     only the batch and the file, never the journal.
 *   journal_sync_end (loop thread) takes the outcome and the batch back (setting *b to NULL):
 *     on WM_OK the batch's records are durable (journal_is_durable); on an error (logged once,
 *     as journal_sync does, when journal_batch_write failed; a caller may also fail a batch it
 *     never wrote) its bytes go back in front of the buffered ones, to be written again by the
 *     next sync.
 * Between begin and end: no journal_sync, journal_replay, journal_compact or journal_close
 * (they return WM_ERR_INVAL; journal_maybe_compact waits for a later call). The batch belongs
 * to the journal. */
struct journal_batch;
WM_WARN_UNUSED enum wm_err journal_sync_begin(struct journal *j, struct journal_batch **out);
WM_WARN_UNUSED enum wm_err journal_batch_write(struct journal_batch *b);
void journal_sync_end(struct journal *j, struct journal_batch **b, enum wm_err result);

/* True when journal_add or journal_done buffered something that is not durable yet (a batch
 * out is not counted: it is on its way). */
bool journal_dirty(const struct journal *j);

/* With on false, journal_sync writes records to the file without fdatasync: they then survive
 * a crash or kill of the process (the kernel keeps the pages) but not of the machine. */
void journal_set_fdatasync(struct journal *j, bool on);
/* True when the add record of id has been synced (or id was replayed from the file). */
bool journal_is_durable(const struct journal *j, uint64_t id);
/* Number of live ids: added and not done. */
size_t journal_live(const struct journal *j);

/* Calls fn(arg, id, record, len) for each live record, in the order they were added, reading
 * the file as it stands (pending records are synced first). record is valid during the call
 * only. fn may call journal_done and journal_add (records added then are not replayed), but not
 * journal_sync, journal_compact or journal_close. Meant for start-up. Errors: WM_ERR_IO, and
 * WM_ERR_FORMAT when the file changed under us and a record no longer checks. */
WM_WARN_UNUSED enum wm_err
journal_replay(struct journal *j,
               void (*fn)(void *arg, uint64_t id, const void *record, size_t len), void *arg);

/* Compacts when the file is at least JOURNAL_COMPACT_MIN bytes and at least three quarters of
 * its records are dead (done records and the adds they finish). Otherwise WM_OK at once. */
#define JOURNAL_COMPACT_MIN (4u << 20)
enum wm_err journal_maybe_compact(struct journal *j);

/* Rewrites the file with only the live records, in order: pending records are synced, the
 * old file is streamed record by record into a temporary file beside it (one record in memory
 * at a time), which is fsynced, renamed over the journal, and the directory fsynced. A crash
 * at any point leaves either the old or the new file, both complete. On failure the old file
 * stays in use. Errors: WM_ERR_IO, WM_ERR_FORMAT (a record in the old file no longer checks),
 * WM_ERR_NOMEM, WM_ERR_INVAL (called from inside journal_replay). */
WM_WARN_UNUSED enum wm_err journal_compact(struct journal *j);

/* Bytes in the file plus bytes buffered: for metrics and tests. */
uint64_t journal_size(const struct journal *j);

#endif
