/* resolver.c: getaddrinfo on detached threads, answers to the loop through an eventfd, and a
 * cache of answers (resolver.h).
 *
 * A lookup's thread may outlive its resolver (a name server that never answers keeps it in
 * getaddrinfo for as long as resolv.conf says): the lookup then belongs to the thread, which
 * frees it. Whether it still has an owner, and the owner's eventfd, are read and written under
 * one process-wide lock, so a thread never writes to a descriptor closed (and maybe reused)
 * since. */
#include "resolver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "list.h"
#include "log.h"
#include "loop.h"
#include "thread.h"

#define CACHE_MAX 1024 /* names kept; a hostile upstream may name a new host in every message */

struct resolver_lookup {
    struct resolver_lookup *next; /* the owner's lookups */
    char *host;                   /* read by the thread: never changed once it runs */
    struct resolver_query *waiters;
    bool started;
    /* Under the lock: */
    struct resolver *owner; /* NULL once the resolver is gone: the thread frees the lookup */
    bool done;
    int rc, err; /* getaddrinfo's result, and errno for EAI_SYSTEM */
    struct addrinfo *res;
};

struct cached {
    struct cached *next;
    char *host;
    int64_t at_ms;
    struct resolver_answer answer; /* port 0 */
};

struct resolver {
    struct loop *loop;
    int efd;
    struct resolver_lookup *lookups;
    int running; /* lookups started and not handled yet */
    int count;   /* all lookups */
    struct cached *cache;
    int ncache;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void resolver_describe(const struct sockaddr *a, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)a;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        snprintf(out, outlen, "[%s]:%d", ip, ntohs(s->sin6_port));
        return;
    }
    const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)a;
    inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
    snprintf(out, outlen, "%s:%d", ip, ntohs(s->sin_port));
}

static void set_port(struct resolver_answer *a, int port)
{
    for (int i = 0; i < a->n; i++) {
        struct sockaddr_storage *s = &a->addr[i];
        if (s->ss_family == AF_INET6)
            ((struct sockaddr_in6 *)(void *)s)->sin6_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in *)(void *)s)->sin_port = htons((uint16_t)port);
    }
}

/* An IP literal needs no lookup. */
static bool literal(const char *host, struct resolver_answer *a)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)&a->addr[0];
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)(void *)&a->addr[0];
    memset(&a->addr[0], 0, sizeof a->addr[0]);
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        a->len[0] = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        a->len[0] = sizeof *v6;
    } else {
        return false;
    }
    a->n = 1;
    a->why[0] = '\0';
    return true;
}

static void answer_from(struct resolver_answer *a, const char *host, int rc, int err,
                        const struct addrinfo *res)
{
    a->n = 0;
    a->why[0] = '\0';
    for (const struct addrinfo *i = res; i && a->n < RESOLVER_MAX_ADDRS; i = i->ai_next) {
        if ((i->ai_family != AF_INET && i->ai_family != AF_INET6) ||
            i->ai_addrlen > sizeof a->addr[0])
            continue;
        memcpy(&a->addr[a->n], i->ai_addr, i->ai_addrlen);
        a->len[a->n++] = i->ai_addrlen;
    }
    if (a->n > 0) return;
    const char *reason = rc == EAI_SYSTEM ? strerror(err) : rc ? gai_strerror(rc) : "no address";
    snprintf(a->why, sizeof a->why, "cannot resolve %.80s: %s", host, reason);
}

/* ---- the cache ---- */

static struct cached *cache_find(struct resolver *r, const char *host)
{
    for (struct cached *c = r->cache; c; c = c->next)
        if (strcasecmp(c->host, host) == 0) return c;
    return NULL;
}

static bool fresh(const struct resolver *r, const struct cached *c)
{
    int64_t ttl = c->answer.n > 0 ? RESOLVER_TTL_MS : RESOLVER_FAIL_TTL_MS;
    return loop_now_ms(r->loop) - c->at_ms < ttl;
}

/* Makes room: stale entries go first, then the oldest. */
static void cache_trim(struct resolver *r)
{
    for (struct cached **pp = &r->cache; *pp && r->ncache >= CACHE_MAX;) {
        struct cached *c = *pp;
        if (!fresh(r, c)) {
            *pp = c->next;
            free(c->host);
            free(c);
            r->ncache--;
        } else {
            pp = &c->next;
        }
    }
    while (r->ncache >= CACHE_MAX) {
        struct cached **oldest = &r->cache;
        for (struct cached **pp = &r->cache; *pp; pp = &(*pp)->next)
            if ((*pp)->at_ms < (*oldest)->at_ms) oldest = pp;
        struct cached *c = *oldest;
        *oldest = c->next;
        free(c->host);
        free(c);
        r->ncache--;
    }
}

/* Keeps a; a failure does not replace an answer that worked (better a stale address than
 * none while a name server is away). */
static void cache_put(struct resolver *r, const char *host, const struct resolver_answer *a)
{
    struct cached *c = cache_find(r, host);
    if (c && a->n == 0 && c->answer.n > 0) return;
    if (!c) {
        cache_trim(r);
        if (!(c = calloc(1, sizeof *c)) || !(c->host = strdup(host))) {
            free(c);
            return; /* not kept: the next query looks it up again */
        }
        c->next = r->cache;
        r->cache = c;
        r->ncache++;
    }
    c->at_ms = loop_now_ms(r->loop);
    c->answer = *a;
}

/* ---- lookups ---- */

static void *lookup_thread(void *arg)
{
    struct resolver_lookup *lk = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(lk->host, NULL, &hints, &res);
    int err = errno;
    pthread_mutex_lock(&lock);
    struct resolver *owner = lk->owner;
    if (owner) {
        lk->rc = rc;
        lk->err = err;
        lk->res = rc == 0 ? res : NULL;
        lk->done = true;
        uint64_t one = 1;
        /* Cannot fail but by overflowing a counter nobody lets grow that far. */
        if (write(owner->efd, &one, sizeof one) < 0) log_debug("resolver: eventfd: %m");
    }
    pthread_mutex_unlock(&lock);
    if (!owner) {
        if (rc == 0) freeaddrinfo(res);
        free(lk->host);
        free(lk);
    }
    return NULL;
}

/* Starts the lookups waiting for a thread, oldest first, up to the limit. */
static void start_waiting(struct resolver *r)
{
    for (struct resolver_lookup *lk = r->lookups; lk && r->running < RESOLVER_THREADS;
         lk = lk->next) {
        if (lk->started) continue;
        lk->started = true;
        r->running++;
        if (thread_start_detached("wmesh-resolve", lookup_thread, lk) != WM_OK) {
            /* Answered as a failure at the next wake-up, like any other. */
            pthread_mutex_lock(&lock);
            lk->rc = EAI_SYSTEM;
            lk->err = errno ? errno : EAGAIN;
            lk->done = true;
            uint64_t one = 1;
            if (write(r->efd, &one, sizeof one) < 0) log_debug("resolver: eventfd: %m");
            pthread_mutex_unlock(&lock);
        }
    }
}

static void lookup_free(struct resolver_lookup *lk)
{
    if (lk->res) freeaddrinfo(lk->res);
    free(lk->host);
    free(lk);
}

/* Answers each waiter of lk (which is out of every list): a callback may resolve or cancel
 * other queries meanwhile. */
static void answer_waiters(struct resolver_lookup *lk, const struct resolver_answer *a)
{
    struct resolver_query *q;
    while ((q = lk->waiters)) {
        DLIST_REMOVE(lk->waiters, q, next, prev);
        q->lookup = NULL;
        struct resolver_answer mine = *a;
        set_port(&mine, q->port);
        q->fn(q->arg, &mine);
    }
}

static void on_wake(void *arg, int fd, unsigned events)
{
    struct resolver *r = arg;
    (void)events;
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN) log_debug("resolver: eventfd: %m");
    struct resolver_lookup *done = NULL;
    pthread_mutex_lock(&lock);
    for (struct resolver_lookup **pp = &r->lookups; *pp;) {
        struct resolver_lookup *lk = *pp;
        if (lk->done) {
            *pp = lk->next;
            lk->next = done;
            done = lk;
        } else {
            pp = &lk->next;
        }
    }
    pthread_mutex_unlock(&lock);
    /* Threads freed by the answers start the lookups waiting, before any callback runs. */
    for (struct resolver_lookup *lk = done; lk; lk = lk->next) {
        r->running--;
        r->count--;
    }
    start_waiting(r);
    while (done) {
        struct resolver_lookup *lk = done;
        done = lk->next;
        struct resolver_answer a;
        answer_from(&a, lk->host, lk->rc, lk->err, lk->res);
        if (a.n == 0) log_debug("resolver: %s", a.why);
        cache_put(r, lk->host, &a);
        answer_waiters(lk, &a);
        lookup_free(lk);
    }
}

static struct resolver_lookup *lookup_find(struct resolver *r, const char *host)
{
    for (struct resolver_lookup *lk = r->lookups; lk; lk = lk->next)
        if (strcasecmp(lk->host, host) == 0) return lk;
    return NULL;
}

/* The lookup of host, running or waiting, made if need be; NULL when out of memory. */
static struct resolver_lookup *lookup_get(struct resolver *r, const char *host)
{
    struct resolver_lookup *lk = lookup_find(r, host);
    if (lk) return lk;
    if (!(lk = calloc(1, sizeof *lk)) || !(lk->host = strdup(host))) {
        free(lk);
        return NULL;
    }
    lk->owner = r;
    /* At the end: waiting lookups start oldest first. */
    struct resolver_lookup **pp = &r->lookups;
    while (*pp)
        pp = &(*pp)->next;
    *pp = lk;
    r->count++;
    start_waiting(r);
    return lk;
}

bool resolver_resolve(struct resolver *r, struct resolver_query *q, const char *host, int port,
                      resolver_fn fn, void *arg, struct resolver_answer *now)
{
    resolver_cancel(r, q);
    if (literal(host, now)) {
        set_port(now, port);
        return true;
    }
    struct cached *c = cache_find(r, host);
    bool usable = c && (fresh(r, c) || c->answer.n > 0);
    if (usable && !fresh(r, c)) (void)lookup_get(r, host); /* refreshed meanwhile */
    if (usable) {
        *now = c->answer;
        set_port(now, port);
        return true;
    }
    struct resolver_lookup *lk = lookup_get(r, host);
    if (!lk) {
        now->n = 0;
        snprintf(now->why, sizeof now->why, "cannot resolve %.80s: out of memory", host);
        return true;
    }
    q->lookup = lk;
    q->port = port;
    q->fn = fn;
    q->arg = arg;
    DLIST_PUSH(lk->waiters, q, next, prev);
    return false;
}

void resolver_cancel(struct resolver *r, struct resolver_query *q)
{
    (void)r;
    if (!q || !q->lookup) return;
    DLIST_REMOVE(q->lookup->waiters, q, next, prev);
    q->lookup = NULL;
}

int resolver_running(const struct resolver *r)
{
    return r ? r->count : 0;
}

struct resolver *resolver_new(struct loop *loop)
{
    if (!loop) {
        errno = EINVAL;
        return NULL;
    }
    struct resolver *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->loop = loop;
    r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->efd < 0 || loop_watch(loop, r->efd, LOOP_READ, on_wake, r) != WM_OK) {
        int saved = errno;
        if (r->efd >= 0) close(r->efd);
        free(r);
        errno = saved ? saved : ENOMEM;
        return NULL;
    }
    return r;
}

void resolver_free(struct resolver **rp)
{
    if (!rp || !*rp) return;
    struct resolver *r = *rp;
    loop_unwatch(r->loop, r->efd);
    pthread_mutex_lock(&lock);
    struct resolver_lookup *lk = r->lookups;
    r->lookups = NULL;
    for (struct resolver_lookup *next; lk; lk = next) {
        next = lk->next;
        while (lk->waiters)
            resolver_cancel(r, lk->waiters);
        if (lk->started && !lk->done) {
            lk->owner = NULL; /* its thread frees it */
            continue;
        }
        lookup_free(lk);
    }
    close(r->efd);
    pthread_mutex_unlock(&lock);
    while (r->cache) {
        struct cached *c = r->cache;
        r->cache = c->next;
        free(c->host);
        free(c);
    }
    free(r);
    *rp = NULL;
}
