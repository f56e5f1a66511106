/* fetch_hosts.c: the downloader's pool keys (fetch_hosts.h). */
#include "fetch_hosts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define UNUSED_KEEP_MS 60000 /* an unused host keeps its parsed authority this long */
#define HOSTS_MAX 256        /* unused host entries beyond this are forgotten at once */

static void host_free(struct host *h)
{
    free(h->name);
    free(h->authority);
    url_clear(&h->url);
    free(h);
}

struct host *hosts_by_authority(const struct host_pool *pool, const char *url)
{
    for (struct host *h = pool->list; h; h = h->next)
        if (h->authority && strncmp(url, h->authority, h->authority_len) == 0 &&
            (url[h->authority_len] == '/' || url[h->authority_len] == '\0'))
            return h;
    return NULL;
}

void host_remember_authority(struct host *h, const char *url, struct wm_url *u)
{
    size_t len = strlen(url) - strlen(u->path);
    if (h->authority || !(h->authority = strndup(url, len))) {
        url_clear(u);
        return;
    }
    h->authority_len = len;
    free(u->path);
    u->path = NULL;
    h->url = *u;
    memset(u, 0, sizeof *u);
}

/* Forgets the hosts nothing has used for a while, or all unused ones when there are too many
 * (a hostile upstream could name a new host in every announcement). */
static void prune(struct host_pool *pool, int64_t now)
{
    bool crowded = pool->n >= HOSTS_MAX;
    for (struct host **pp = &pool->list; *pp;) {
        struct host *h = *pp;
        if (h->refs == 0 && h->nconns == 0 && (crowded || now - h->used_ms >= UNUSED_KEEP_MS)) {
            *pp = h->next;
            host_free(h);
            pool->n--;
        } else {
            pp = &h->next;
        }
    }
}

struct host *hosts_get(struct host_pool *pool, const char *name, int port, bool tls, int64_t now_ms)
{
    for (struct host *h = pool->list; h; h = h->next) {
        if (h->port == port && h->tls == tls && strcasecmp(h->name, name) == 0) {
            h->refs++;
            h->used_ms = now_ms;
            return h;
        }
    }
    prune(pool, now_ms);
    struct host *h = calloc(1, sizeof *h);
    if (!h || !(h->name = strdup(name))) {
        free(h);
        return NULL;
    }
    h->port = port;
    h->tls = tls;
    h->refs = 1;
    h->used_ms = now_ms;
    h->next = pool->list;
    pool->list = h;
    pool->n++;
    return h;
}

void hosts_free(struct host_pool *pool)
{
    while (pool->list) {
        struct host *h = pool->list;
        pool->list = h->next;
        host_free(h);
    }
    pool->n = 0;
}
