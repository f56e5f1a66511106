/* fetch.h: HTTP(S) downloads with libcurl: concurrent, event-driven transfers for the peer and a
 * blocking one-shot GET for tools. Only http and https are ever allowed. */
#ifndef WMESH_FETCH_H
#define WMESH_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct loop;
struct fetcher;

/* Receives each chunk of a transfer's body; return non-zero to abort the transfer. */
typedef int (*fetch_data_fn)(void *arg, const void *data, size_t len);
/* Called once per transfer when it ends: err WM_OK with http_status 200 means complete. */
typedef void (*fetch_done_fn)(void *arg, enum wm_err err, long http_status, const char *why);

struct fetch_options {
    long connect_timeout_ms; /* 0: 10 s */
    long low_speed_time_s;   /* abort when below 1 byte/s this long; 0: 30 s */
    int64_t max_size;        /* bytes; 0: unlimited */
    int max_per_host;        /* concurrent connections per host; 0: 8 */
    int max_total;           /* concurrent transfers; 0: 64 */
    const char *cafile;      /* https: CA certificates to trust; NULL: the system's store */
};

/* Creates a fetcher driven by loop. The caller owns it; the loop must outlive it. It adds a
 * pre-wait hook to the loop (fetch_free removes it). */
struct fetcher *fetch_new(struct loop *loop, const struct fetch_options *opts);
void fetch_free(struct fetcher **f);
/* Starts GET url. Exactly one done callback follows (never from inside fetch_start). */
enum wm_err fetch_start(struct fetcher *f, const char *url, fetch_data_fn data, fetch_done_fn done,
                        void *arg);
/* Transfers started and not yet done. */
size_t fetch_active(const struct fetcher *f);

/* Blocking GET of url into a new NUL-terminated buffer (caller frees), refusing bodies over
 * cap bytes. For tools and tests, not for the peer's hot path. */
enum wm_err fetch_get_buffer(const char *url, size_t cap, char **body, size_t *len,
                             long *http_status);

#endif
