/* fetch_hosts.c: the downloader's pool keys and their resolution cache (fetch_hosts.h). */
#include "fetch_hosts.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define RESOLVE_TTL_MS 60000     /* getaddrinfo blocks the loop: its answers are kept */
#define RESOLVE_FAIL_TTL_MS 5000 /* and its failures, a little */
#define HOSTS_MAX 256            /* unused host entries beyond this are forgotten at once */

static void host_free(struct host *h)
{
    if (h->addrs) freeaddrinfo(h->addrs);
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

/* Forgets the hosts nothing uses whose resolution is stale, or all unused ones when there are
 * too many (a hostile upstream could name a new host in every announcement). */
static void prune(struct host_pool *pool, int64_t now)
{
    bool crowded = pool->n >= HOSTS_MAX;
    for (struct host **pp = &pool->list; *pp;) {
        struct host *h = *pp;
        if (h->refs == 0 && h->nconns == 0 && (crowded || now - h->resolved_ms >= RESOLVE_TTL_MS)) {
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
    h->next = pool->list;
    pool->list = h;
    pool->n++;
    return h;
}

bool host_resolve(struct host *h, int64_t now, char *why, size_t wl)
{
    int64_t ttl = h->addrs ? RESOLVE_TTL_MS : RESOLVE_FAIL_TTL_MS;
    if ((h->addrs || h->resolve_error) && now - h->resolved_ms < ttl) goto done;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", h->port);
    int rc = getaddrinfo(h->name, port, &hints, &res);
    h->resolved_ms = now;
    if (rc == 0) {
        if (h->addrs) freeaddrinfo(h->addrs);
        h->addrs = res;
        h->resolve_error = 0;
    } else if (!h->addrs) {
        h->resolve_error = rc;
    } /* else the stale answer is kept for another while: better than none */
done:
    if (h->addrs) return true;
    snprintf(why, wl, "cannot resolve %s: %s", h->name, gai_strerror(h->resolve_error));
    return false;
}

struct addrinfo *host_addr(const struct host *h, int n)
{
    struct addrinfo *a = h->addrs;
    while (a && n-- > 0)
        a = a->ai_next;
    return a;
}

void addr_describe(const struct addrinfo *a, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (a->ai_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a->ai_addr;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        port = ntohs(s->sin6_port);
        snprintf(out, outlen, "[%s]:%d", ip, port);
        return;
    }
    const struct sockaddr_in *s = (const struct sockaddr_in *)a->ai_addr;
    inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
    port = ntohs(s->sin_port);
    snprintf(out, outlen, "%s:%d", ip, port);
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
