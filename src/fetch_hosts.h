/* fetch_hosts.h: the downloader's pool keys (scheme, host and port).
 * Internal to fetch.c: a host counts the transfers and connections that use it, and is
 * forgotten a while after nothing does (resolver.c keeps the addresses). */
#ifndef WMESH_FETCH_HOSTS_H
#define WMESH_FETCH_HOSTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "url.h"

struct conn;     /* fetch.c's */
struct transfer; /* fetch.c's */

/* One pool key: scheme, host and port. */
struct host {
    struct host *next;
    char *name;
    int port;
    bool tls;
    int refs;          /* transfers pointing here */
    int nconns;        /* connections open to it, idle ones included */
    struct conn *idle; /* its idle connections, the most recently used first */
    /* fetch.c's: its transfers waiting for a connection, first come first; while there are
     * some, the host is in the fetcher's ring of waiting hosts, served in turn. */
    struct transfer *queue_head, *queue_tail;
    struct host *wait_next, *wait_prev;
    int64_t used_ms; /* last taken by hosts_get */
    /* fetch.c's: the HTTP proxy its connections go through (proxy.h), chosen once; or why the
     * proxy setting that applies cannot be used (then nothing is fetched from it). */
    const struct proxy_server *proxy;
    bool proxy_known;
    char proxy_error[160]; /* "" when usable */
    /* The "scheme://[userinfo@]host[:port]" of the first URL that named it, and that URL parsed
     * (without its path): URLs that start the same way need no url_parse, and no allocation. */
    char *authority;
    size_t authority_len;
    struct wm_url url;
};

/* The hosts of one fetcher, which owns them. */
struct host_pool {
    struct host *list;
    size_t n;
};

/* The host whose authority url starts with, its path following; NULL when none. */
struct host *hosts_by_authority(const struct host_pool *pool, const char *url);
/* Keeps u (its path aside) as h's parsed authority, unless h has one. Consumes u. */
void host_remember_authority(struct host *h, const char *url, struct wm_url *u);
/* The entry for name:port over tls, with one more reference, made if need be (forgetting unused
 * ones first); NULL when out of memory. now_ms: the caller's monotonic clock. */
WM_WARN_UNUSED struct host *hosts_get(struct host_pool *pool, const char *name, int port, bool tls,
                                      int64_t now_ms);
/* Frees every host of the pool. */
void hosts_free(struct host_pool *pool);

#endif
