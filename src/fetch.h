/* fetch.h: HTTP(S) downloads: concurrent, event-driven transfers over kept-alive HTTP/1.1
 * connections for the peer, and a blocking one-shot GET for tools. Only http and https are ever
 * allowed, also after redirects (up to 5). No write raises SIGPIPE, https ones included
 * (tls.h). */
#ifndef WMESH_FETCH_H
#define WMESH_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct loop;
struct fetcher;

/* Receives each chunk of a transfer's body; return non-zero to abort the transfer. */
typedef int (*fetch_data_fn)(void *arg, const void *data, size_t len);
/* Called once per transfer when it ends: err WM_OK with http_status 200 means complete. Other
 * outcomes: WM_ERR_PROTOCOL with the final status when it is not 200 (or 0 for a malformed
 * response), WM_ERR_TOOBIG past max_size, WM_ERR_IO when the data callback aborted,
 * WM_ERR_CONN when resolving, connecting, TLS reading or the server failed (refused, reset,
 * stalled, short body), WM_ERR_INVAL for a URL that cannot be fetched; why says it in words,
 * and is only valid during the call. */
typedef void (*fetch_done_fn)(void *arg, enum wm_err err, long http_status, const char *why);

struct fetch_options {
    long connect_timeout_ms; /* 0: 10 s */
    long low_speed_time_s;   /* abort when no byte came for this long; 0: 30 s */
    int64_t max_size;        /* bytes; 0: unlimited */
    int max_per_host;        /* connections per scheme, host and port; 0: 4 */
    int max_total;           /* connections in all, idle ones included; 0: 256 */
    int pipeline;            /* requests in flight per connection for small transfers; 0, 1: 1 */
    const char *cafile;      /* https: CA certificates to trust; NULL: the system's store */
    /* Proxies (proxy.h) by scheme: http through the proxy's absolute-form requests, https
     * through a CONNECT tunnel. NULL: none. Borrowed: must outlive the fetcher. */
    const struct proxy_config *proxies;
    const char *certfile; /* https: client certificate (PEM) for servers that ask; NULL: none */
    const char *keyfile;  /* its private key (PEM); NULL: in certfile */
};

/* Creates a fetcher driven by loop. The caller owns it; the loop must outlive it. It keeps up
 * to max_total connections open, idle ones for reuse; cafile, certfile and keyfile are copied
 * by pointer and must live as long. NULL when out of memory. */
WM_WARN_UNUSED struct fetcher *fetch_new(struct loop *loop, const struct fetch_options *opts);
/* Closes every connection and abandons the transfers not done, without their callbacks; not
 * from inside a callback. Sets *f to NULL. */
void fetch_free(struct fetcher **f);
/* Starts GET url; transfers beyond the connection limits wait in their host's queue, first come
 * first served, the hosts with transfers waiting served in turn (one slow host never holds up
 * the others); an idle connection of another host is closed to make room only at max_total.
 * Exactly one done callback follows, never from inside fetch_start, also for a URL that cannot
 * be fetched. The data callback receives the body of a 200 response only, in pieces that are
 * valid during the call. size_hint is the size the caller expects (-1: unknown): a small one
 * lets the request be pipelined (opts.pipeline), a wrong one costs only speed. Errors:
 * WM_ERR_INVAL (no url or done), WM_ERR_NOMEM. */
WM_WARN_UNUSED enum wm_err fetch_start(struct fetcher *f, const char *url, int64_t size_hint,
                                       fetch_data_fn data, fetch_done_fn done, void *arg);
/* Whether url's host (scheme, name and port) already has as many transfers as its connections
 * can carry, twice over (max_per_host x pipeline x 2): one more would only wait in its queue.
 * False for a host with no transfer, or a URL that cannot be parsed. */
bool fetch_host_busy(const struct fetcher *f, const char *url);
/* Transfers started and not yet done. */
size_t fetch_active(const struct fetcher *f);

/* Blocking GET of url into a new NUL-terminated buffer (caller frees), refusing bodies over
 * cap bytes (WM_ERR_TOOBIG), on a loop of its own. A final status other than 200 is WM_OK with
 * that *http_status and an empty body. For tools and tests, not for the peer's hot path nor
 * from inside a running loop (loop_run ends the thread's log batching). */
WM_WARN_UNUSED enum wm_err fetch_get_buffer(const char *url, size_t cap, char **body, size_t *len,
                                            long *http_status);

#endif
