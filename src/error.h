/* error.h: the one error enum of wmesh and its messages. */
#ifndef WMESH_ERROR_H
#define WMESH_ERROR_H

enum wm_err {
    WM_OK = 0,
    WM_ERR_INVAL,    /* bad argument or malformed input */
    WM_ERR_NOMEM,    /* allocation failed */
    WM_ERR_IO,       /* system call failed; errno tells more */
    WM_ERR_NOTFOUND, /* no such file, key or entry */
    WM_ERR_TOOBIG,   /* input over a configured or built-in limit */
    WM_ERR_FORMAT,   /* message not in any known format */
    WM_ERR_UNSAFE,   /* a path that would leave the tree, or a forbidden name */
    WM_ERR_CHECKSUM, /* content does not match its announced checksum */
    WM_ERR_METHOD,   /* unknown or unsupported checksum method */
    WM_ERR_PROTOCOL, /* HTTP or MQTT peer misbehaved */
    WM_ERR_CONN,     /* connection refused, lost or timed out */
    WM_ERR_AUTH,     /* credentials refused */
    WM_ERR_NOSUM,    /* file present but its checksum is not cached */
    WM_ERR_EXISTS,   /* already there */
    WM_ERR_LIB,      /* a third-party library failed in a way not listed above */
    WM_ERR_NOTSUP,   /* valid, but asks for an operation wmesh does not carry out */
};

/* How a constructor (foo_new, foo_open) that fails says why; its header says which it follows.
 * - It returns the object, or NULL with errno set when its failures are the system's: out of
 *   memory (ENOMEM), descriptors or a refused argument (EINVAL), as malloc and open do
 *   (loop_new, tree_open, seen_new, gb_core_new).
 * - When the caller must tell wmesh's own reasons apart (a malformed URL, a corrupt file), it
 *   takes a last `enum wm_err *err` (may be NULL), set on every return (mqtt_link_new,
 *   journal_open, catchup_log_open, outbox_new).
 * - Only the wrappers of a third-party library whose reason is a text return an enum wm_err,
 *   the object in *out and the text in a why buffer (tls_config_new, tls_new).
 * Callers print what they got (strerror(errno), wm_strerror(*err), why), never a code of their
 * own choosing. */

/* Returns a static, human-readable description of err. */
const char *wm_strerror(enum wm_err err);

/* Marks a function whose result must not be ignored: an error that changes what the caller must
 * do next, or an allocation the caller owns (curl's WARN_UNUSED_RESULT). GCC warns even when the
 * call is cast to void: a caller with nothing to do about a failure says so in an if. */
#if defined(__GNUC__) || defined(__clang__)
#define WM_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define WM_WARN_UNUSED
#endif

#endif
