/* buf.c: the growable byte buffer of buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define BUF_MIN 256 /* the first allocation: most packets and lines fit */

enum wm_err buf_reserve(struct buf *b, size_t more)
{
    if (!b) return WM_ERR_INVAL;
    if (b->cap - b->len >= more) return WM_OK;
    size_t max = b->max ? b->max : BUF_MAX_DEFAULT;
    if (more > max || b->len > max - more) return WM_ERR_TOOBIG;
    size_t need = b->len + more;
    size_t cap = b->cap <= max / 2 ? b->cap * 2 : max;
    if (cap < BUF_MIN) cap = BUF_MIN < max ? BUF_MIN : max;
    if (cap < need) cap = need;
    unsigned char *data = realloc(b->data, cap);
    if (!data) return WM_ERR_NOMEM;
    b->data = data;
    b->cap = cap;
    return WM_OK;
}

enum wm_err buf_append_grow(struct buf *b, const void *p, size_t n)
{
    if (!b || (n && !p)) return WM_ERR_INVAL;
    if (n == 0) return WM_OK;
    enum wm_err err = buf_reserve(b, n);
    if (err != WM_OK) return err;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return WM_OK;
}

enum wm_err buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    if (!b || !fmt) return WM_ERR_INVAL;
    for (int pass = 0; pass < 2; pass++) {
        size_t room = b->cap - b->len;
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(room ? (char *)b->data + b->len : NULL, room, fmt, aq);
        va_end(aq);
        if (n < 0) return WM_ERR_INVAL;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return WM_OK;
        }
        /* Too long for the room left: grow once to fit, then format again. */
        enum wm_err err = buf_reserve(b, (size_t)n + 1);
        if (err != WM_OK) return err;
    }
    return WM_ERR_INVAL; /* the text changed length between two passes */
}

enum wm_err buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum wm_err err = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return err;
}

void buf_consume(struct buf *b, size_t n)
{
    if (!b) return;
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

char *buf_detach(struct buf *b, size_t *len)
{
    if (!b) return NULL;
    if (buf_reserve(b, 1) != WM_OK) return NULL;
    char *s = (char *)b->data;
    s[b->len] = '\0';
    if (len) *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return s;
}

void buf_free(struct buf *b)
{
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
