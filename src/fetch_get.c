/* fetch_get.c: fetch_get_buffer, the blocking GET of tools and tests, on a loop and a fetcher
 * of its own (fetch.h). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fetch.h"
#include "loop.h"

struct buffer {
    struct loop *loop;
    struct buf body; /* with room for a NUL byte past cap */
    size_t cap;
    bool overflow;
    enum wm_err err;
    long status;
};

static int buffer_data(void *arg, const void *data, size_t len)
{
    struct buffer *b = arg;
    if (len > b->cap - b->body.len) {
        b->overflow = true;
        return -1;
    }
    return buf_append(&b->body, data, len) == WM_OK ? 0 : -1;
}

static void buffer_done(void *arg, enum wm_err err, long status, const char *why)
{
    struct buffer *b = arg;
    (void)why;
    b->err = err;
    b->status = status;
    loop_stop(b->loop);
}

enum wm_err fetch_get_buffer(const char *url, size_t cap, char **body, size_t *len,
                             long *http_status)
{
    if (!url || !body) return WM_ERR_INVAL;
    struct buffer b = {.body.max = cap < SIZE_MAX ? cap + 1 : cap, .cap = cap, .err = WM_ERR_NOMEM};
    struct fetch_options o = {.connect_timeout_ms = 5000, .low_speed_time_s = 10};
    if (cap < INT64_MAX) o.max_size = (int64_t)cap;
    struct fetcher *f = NULL;
    if (!(b.loop = loop_new()) || !(f = fetch_new(b.loop, &o))) goto done;
    if ((b.err = fetch_start(f, url, -1, buffer_data, buffer_done, &b)) == WM_OK) {
        b.err = WM_ERR_NOMEM; /* until done says otherwise */
        if (loop_run(b.loop) != WM_OK) b.err = WM_ERR_IO;
    }
done:
    fetch_free(&f);
    loop_free(&b.loop);
    if (http_status) *http_status = b.status;
    if (b.overflow) b.err = WM_ERR_TOOBIG;
    /* A final status other than 200 is an answer, as it always was here: the caller looks. */
    if (b.err == WM_ERR_PROTOCOL && b.status >= 200 && b.status != 200) {
        b.err = WM_OK;
        b.body.len = 0;
    }
    if (b.err == WM_OK && !(*body = buf_detach(&b.body, len))) b.err = WM_ERR_NOMEM;
    buf_free(&b.body);
    return b.err;
}
