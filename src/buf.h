/* buf.h: a growable byte buffer with a cap, for packets and text built in memory. */
#ifndef WMESH_BUF_H
#define WMESH_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include "error.h"

/* The most a buffer holds when its owner sets no max: nothing wmesh builds in memory comes near. */
#define BUF_MAX_DEFAULT ((size_t)1 << 30)

/* A growable byte buffer. The owner zero-initialises it (or sets max first) and releases its
 * memory with buf_free(); data belongs to the buffer until buf_detach() hands it over. */
struct buf {
    unsigned char *data;
    size_t len; /* bytes held, from data[0] */
    size_t cap; /* bytes allocated */
    size_t max; /* the most len may reach; 0: BUF_MAX_DEFAULT. buf_free() keeps it. */
};

/* Makes room for `more` bytes after len. WM_ERR_TOOBIG past max, WM_ERR_NOMEM when allocation
 * fails; on error the buffer is unchanged. */
WM_WARN_UNUSED enum wm_err buf_reserve(struct buf *b, size_t more);

/* Appends n bytes of p (the slow path of buf_append). Errors as buf_reserve(). */
WM_WARN_UNUSED enum wm_err buf_append_grow(struct buf *b, const void *p, size_t n);

/* Appends n bytes of p. Errors as buf_reserve(); on error the buffer is unchanged. */
WM_WARN_UNUSED static inline enum wm_err buf_append(struct buf *b, const void *p, size_t n)
{
    if (b && n <= b->cap - b->len) { /* the usual case, inline for encoders' many small runs */
        if (n) memcpy(b->data + b->len, p, n);
        b->len += n;
        return WM_OK;
    }
    return buf_append_grow(b, p, n);
}

/* Appends printf-formatted text and keeps a NUL byte after len (not counted in it). Errors as
 * buf_reserve(), or WM_ERR_INVAL for a format vsnprintf rejects; on error len is unchanged. */
WM_WARN_UNUSED enum wm_err buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* buf_printf with a va_list, which it leaves for the caller to va_end. */
WM_WARN_UNUSED enum wm_err buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Drops the first n bytes (all of them when n >= len), moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);

/* Hands the bytes over as a NUL-terminated string the caller frees, its length in *len (may be
 * NULL), and leaves b empty. NULL (b untouched) when the terminating byte cannot be added. */
WM_WARN_UNUSED char *buf_detach(struct buf *b, size_t *len);

/* Frees the memory and leaves b empty, with its max. */
void buf_free(struct buf *b);

#endif
