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
