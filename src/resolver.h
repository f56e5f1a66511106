/* resolver.h: host names resolved off the event loop. getaddrinfo blocks: with a name server
 * that does not answer it holds its caller for the resolv.conf timeout times its attempts (10 s
 * by default), and on the loop that stalled every download and let the brokers drop the peer
 * for missed keep-alives. Each lookup here runs getaddrinfo on a detached thread of its own (so
 * /etc/hosts, nsswitch and systemd-resolved are honoured as everywhere else on the machine),
 * and the answer comes back to the loop through an eventfd.
 *
 * Answers are kept RESOLVER_TTL_MS (getaddrinfo does not give the records' TTL), failures
 * RESOLVER_FAIL_TTL_MS; a stale answer is used while a new lookup runs. Addresses and IP
 * literals need no thread. At most RESOLVER_THREADS lookups run at once per resolver; more
 * wait their turn, so names that never resolve hold up only other new names, and only once
 * that many are stuck. */
#ifndef WMESH_RESOLVER_H
#define WMESH_RESOLVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "error.h"

#define RESOLVER_TTL_MS 60000
#define RESOLVER_FAIL_TTL_MS 5000
#define RESOLVER_THREADS 8
#define RESOLVER_MAX_ADDRS 8 /* addresses kept per name, in getaddrinfo's order (RFC 6724) */

struct loop;
struct resolver;
struct resolver_lookup;

/* One answer: the addresses of a name with the port set, or none and why. */
struct resolver_answer {
    int n;
    struct sockaddr_storage addr[RESOLVER_MAX_ADDRS];
    socklen_t len[RESOLVER_MAX_ADDRS];
    char why[160]; /* when n is 0: "cannot resolve NAME: REASON" */
};

/* Called in the loop thread with the answer, valid during the call. */
typedef void (*resolver_fn)(void *arg, const struct resolver_answer *answer);

/* A pending query. It belongs to its user, who embeds it in a struct of theirs, zeroed; it
 * must stay put until its callback runs or it is cancelled. Fields are the resolver's. */
struct resolver_query {
    struct resolver_query *next, *prev; /* the waiters of one lookup */
    struct resolver_lookup *lookup;     /* NULL: not pending */
    int port;
    resolver_fn fn;
    void *arg;
};

/* A resolver whose answers arrive on loop. The caller owns it and frees it before the loop.
 * NULL, errno set, when out of memory or out of descriptors. */
WM_WARN_UNUSED struct resolver *resolver_new(struct loop *loop);
/* Cancels every query without its callback; lookups still running end on their own threads. */
void resolver_free(struct resolver **r);

/* Resolves host for port. When the answer is known now (an IP literal, a fresh cache entry)
 * it is written to *now and true is returned: no callback follows. Else q is pending, false
 * is returned, and fn(arg, answer) runs later from the loop, exactly once, unless
 * resolver_cancel comes first. Out of memory is an answer without addresses. */
bool resolver_resolve(struct resolver *r, struct resolver_query *q, const char *host, int port,
                      resolver_fn fn, void *arg, struct resolver_answer *now);
/* Cancels q if pending; fine if not. */
void resolver_cancel(struct resolver *r, struct resolver_query *q);
/* Lookups running or waiting for a thread, for tests and metrics. */
int resolver_running(const struct resolver *r);

/* "1.2.3.4:80" or "[::1]:80". */
void resolver_describe(const struct sockaddr *a, char *out, size_t outlen);

#endif
