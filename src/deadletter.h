/* deadletter.h: announcements set aside because a broker refused them, kept in a file under
 * --state-dir until an operator has them sent again (`wmesh outbox --resend`). */
#ifndef WMESH_DEADLETTER_H
#define WMESH_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* In the state directory: the entries set aside, and those handed back for sending again. The
 * peer takes the second by renaming it to DEADLETTER_TAKEN, which it removes once every entry
 * is in its journal: a crash in between sends them again rather than losing them. */
#define DEADLETTER_FILE "outbox-set-aside"
#define DEADLETTER_RESEND "outbox-resend"
#define DEADLETTER_TAKEN "outbox-resend.taken"

/* One entry; on disk one JSON object per line: {"time": RFC 3339, "topic", "size" (the
 * message's bytes), "attempts", "reason", "message" (the announcement as a string)}. */
struct deadletter {
    int64_t time_ns; /* when it was set aside */
    const char *topic;
    const char *message; /* the announcement (JSON text, so valid UTF-8) */
    size_t len;
    int attempts; /* how many times the broker refused it */
    const char *reason;
};

/* Appends d to the file path (made with mode 0600 when absent) as one line, in one write,
 * then fdatasyncs: once WM_OK is back the entry survives a crash. WM_ERR_IO (errno set),
 * WM_ERR_NOMEM, WM_ERR_FORMAT (a message that is not UTF-8). */
WM_WARN_UNUSED enum wm_err deadletter_append(const char *path, const struct deadletter *d);

/* Calls fn for each entry of the file path, in order. The entry's strings are valid during the
 * call only. Lines that are not entries (a line torn by a crash) are skipped and counted in
 * *bad (may be NULL). WM_ERR_NOTFOUND when the file does not exist, WM_ERR_IO, WM_ERR_NOMEM. */
WM_WARN_UNUSED enum wm_err deadletter_each(const char *path,
                                           void (*fn)(void *arg, const struct deadletter *d),
                                           void *arg, size_t *bad);

#endif
