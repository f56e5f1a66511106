/* fetch.c: HTTP/1.1 downloads on the event loop: keep-alive connections pooled per scheme, host
 * and port (fetch_hosts.c keeps the keys and their addresses), a queue per host beyond the
 * pool's limits, pipelining, redirects, size and stall limits, https through tls.c; http_wire.c
 * reads and writes the bytes; fetch_get.c is the blocking GET of tools.
 *
 * Scheduling (section "scheduling" below): each host has at most max_per_host connections and
 * the fetcher max_total in all. A transfer goes behind the requests on a busy connection of its
 * host (pipelining, small files), else on an idle one of its host, else on a new one; an idle
 * connection of another host is closed for it only at the total cap, and then one whose host
 * has nothing waiting. What cannot start waits in its host's queue; the hosts with transfers
 * waiting are served in turn, one transfer each, so a host with a long queue or a slow server
 * never holds up the others. Over a long round trip, a file on a kept-alive connection costs
 * one round trip, on a new one two (three with TLS): connections are kept, not traded.
 *
 * What a small file costs on a kept-alive connection: one send(2) of the request, one recv(2)
 * of the response (the connection stays watched for reading, so no epoll_ctl), a few thousand
 * instructions, and no allocation but url_parse's. Every connection reads into one receive
 * buffer per fetcher: the data callback consumes what it is given before the next read, so
 * one suffices, and a large one means few reads and callbacks for large files.
 *
 * Pipelining (HTTP/1.1, RFC 9112 9.3.2): a transfer expected to be small may be sent on a busy
 * connection, behind the requests already there, rather than on an idle or a new one. The
 * requests queued on a connection during a loop turn go out in one sendmsg(2) before the loop
 * waits, the server reads them in one go, and one recv(2) often brings several responses: for
 * 1 KiB files, nginx spends about half the CPU per request at a depth of 4. Only connections
 * that have already kept alive are used, never behind a large or unknown size (head-of-line
 * blocking), and a request whose connection ends before its answer is queued again, to go
 * alone: a server that closes after each response costs a resend, never a failure. */
#include "fetch.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fetch_hosts.h"
#include "list.h"
#include "http_wire.h"
#include "loop.h"
#include "net.h"
#include "proxy.h"
#include "resolver.h"
#include "tls.h"
#include "url.h"

#define RECV_BUFFER (512 * 1024) /* shared by the connections of a fetcher */
#define IDLE_MAX_MS 118000       /* an idle connection older than this is closed */
#define MAX_REDIRECTS 5
#define DRAIN_MAX (64 * 1024)   /* an error page or redirect body read to keep the connection */
#define SPARE_MAX 64            /* finished transfers kept for reuse */
#define REQUEST_MAX (16 * 1024) /* longer URLs are refused */
#define PIPELINE_SIZE_MAX (256 * 1024) /* larger transfers never share a connection */
#define PIPELINE_IOV 16                /* requests written by one sendmsg */

enum conn_state {
    CONN_CONNECTING, /* net.c connects: resolving, TCP, proxy, TLS */
    CONN_BUSY,       /* requests out (or going out), responses awaited */
    CONN_IDLE,       /* kept alive between transfers, watched for reading */
};

struct conn {
    struct fetcher *f;
    struct host *h;
    struct transfer *t; /* the transfer whose response comes next; NULL when idle */
    struct transfer *behind, *behind_tail; /* pipelined after t, in the order of the requests */
    int depth;                             /* t and those behind it */
    bool flush_queued; /* requests behind wait for the pre-wait flush (flush_pipelines) */
    enum conn_state state;
    struct net_conn *net;
    int fd;              /* net's socket once connected; -1 before */
    unsigned watched;    /* LOOP_READ | LOOP_WRITE as registered with the loop */
    int64_t progress_ms; /* last byte sent or received (or the start of the request) */
    int64_t idle_ms;     /* since when it is idle */
    unsigned uses;       /* responses it carried to their end */
    bool got_byte;       /* a byte of the current response arrived */
    struct http_response resp;
    char *carry; /* HTTP_WIRE_MAX_LINE bytes: the partial line of the last read, or NULL */
    size_t carry_len;
    struct conn *next, *prev;           /* every connection of the fetcher */
    struct conn *idle_next, *idle_prev; /* the host's idle list */
};

struct transfer {
    struct fetcher *f;
    fetch_data_fn data;
    fetch_done_fn done;
    void *arg;
    struct host *h;
    struct conn *c; /* NULL while queued or failing */
    char *url;      /* the URL being fetched, the last redirect's target after one */
    size_t url_cap;
    char *req; /* the request for url */
    size_t req_cap, req_len, req_sent;
    char *location; /* of the redirect being read */
    int redirects;
    bool retried;      /* the keep-alive race was met once */
    bool fresh;        /* must go on a new connection */
    bool solo;         /* its connection ended before its answer: it goes alone, never pipelined */
    int64_t size_hint; /* as given to fetch_start; -1 unknown */
    struct transfer *pipe_next; /* behind it on its connection */
    bool discard; /* the body is an error page or a redirect's: read only to keep the connection */
    long status;
    int64_t bytes, drained;
    enum wm_err err; /* a failure waiting for the defer timer */
    char why[256];
    struct transfer *next, *prev;     /* the active list, or the spare list */
    struct transfer *q_next, *q_prev; /* the queue, or the failing list (q_next only) */
};

struct fetcher {
    struct loop *loop;
    struct fetch_options opts;
    char *buf; /* RECV_BUFFER bytes */
    struct host_pool hosts;
    struct conn *conns;
    int nconns, nidle;
    struct transfer *active_list; /* started and not done, wherever they are */
    size_t active;
    struct host *waiting; /* ring of the hosts with transfers queued: the next one to serve */
    size_t nwaiting;      /* hosts in that ring */
    struct transfer *failing, **failing_tail;
    struct transfer *spare;
    size_t nspare;
    struct loop_timer sweep; /* timeouts: one timer for every connection (see arm_sweep) */
    int64_t sweep_due;
    struct loop_timer defer; /* ends the failing transfers */
    int defer_depth;         /* > 0: a transfer that fails now ends at the defer timer */
    bool dispatching, dispatch_again;
    int nflush;             /* connections with flush_queued */
    struct tls_config *tls; /* trust for https, set up at the first https connection */
    struct resolver *resolver;
};

static void receive(struct conn *c);
static bool send_pending(struct conn *c);
static void queue_insert_after(struct fetcher *f, struct transfer *prev, struct transfer *t);
static void submit(struct transfer *t);
static void dispatch_queue(struct fetcher *f);

static int64_t now_ms(const struct fetcher *f)
{
    return loop_now_ms(f->loop);
}

/* ---- timers ---- */

static void on_sweep(void *arg);

/* Timeouts cost no system call: one loop timer, due at the earliest deadline it was told of.
 * Deadlines that move later as bytes arrive (stall) are not told: the sweep finds them not yet
 * due, and arms itself for the earliest real one. */
static void arm_sweep(struct fetcher *f, int64_t due)
{
    if (loop_timer_active(&f->sweep) && f->sweep_due <= due) return;
    loop_timer_stop(f->loop, &f->sweep);
    int64_t delay = due - now_ms(f);
    loop_timer_start(f->loop, &f->sweep, delay > 0 ? delay : 0, on_sweep, f);
    f->sweep_due = due;
}

static int64_t stall_ms(const struct fetcher *f)
{
    return (int64_t)f->opts.low_speed_time_s * 1000;
}

/* ---- lists ---- */

static void idle_push(struct conn *c)
{
    DLIST_PUSH(c->h->idle, c, idle_next, idle_prev);
    c->f->nidle++;
}

static void idle_remove(struct conn *c)
{
    DLIST_REMOVE(c->h->idle, c, idle_next, idle_prev);
    c->f->nidle--;
}

/* ---- connections ---- */

static void on_conn_event(void *arg, int fd, unsigned events);

static bool watch(struct conn *c, unsigned events)
{
    if (c->watched == events) return true;
    if (loop_watch(c->f->loop, c->fd, events, on_conn_event, c) != WM_OK) return false;
    c->watched = events;
    return true;
}

static void close_socket(struct conn *c)
{
    if (c->watched) loop_unwatch(c->f->loop, c->fd);
    c->watched = 0;
    net_close(&c->net);
    c->fd = -1;
}

/* Closes c and frees it; its transfer, if any, must have been detached. */
static void conn_close(struct conn *c)
{
    struct fetcher *f = c->f;
    close_socket(c);
    if (c->state == CONN_IDLE) idle_remove(c);
    if (c->flush_queued) f->nflush--;
    DLIST_REMOVE(f->conns, c, next, prev);
    c->h->nconns--;
    f->nconns--;
    free(c->carry);
    free(c);
}

/* Closes the idle connection of h unused the longest; when h is NULL, that of any host, one
 * whose host has no transfer waiting if there is such (the others will soon be used). False
 * when there is none. */
static bool close_oldest_idle(struct fetcher *f, struct host *h)
{
    struct conn *oldest = NULL;
    for (struct conn *c = f->conns; c; c = c->next) {
        if (c->state != CONN_IDLE || (h && c->h != h)) continue;
        bool unwanted = !c->h->queue_head, oldest_unwanted = oldest && !oldest->h->queue_head;
        if (!oldest || (unwanted && !oldest_unwanted) ||
            (unwanted == oldest_unwanted && c->idle_ms < oldest->idle_ms))
            oldest = c;
    }
    if (!oldest) return false;
    conn_close(oldest);
    return true;
}

static bool has_capacity(const struct fetcher *f, const struct transfer *t);
static void start(struct transfer *t);

/* The transfers behind c's current one, sent but unanswered when c closes, go to the head of the
 * queue in their order (or straight onto a connection), alone this time. */
static void requeue(struct fetcher *f, struct transfer *list)
{
    struct transfer *prev = NULL;
    f->defer_depth++;
    while (list) {
        struct transfer *t = list;
        list = t->pipe_next;
        t->pipe_next = NULL;
        t->c = NULL;
        t->solo = true;
        if (has_capacity(f, t)) {
            start(t);
        } else {
            queue_insert_after(f, prev, t);
            prev = t;
        }
    }
    f->defer_depth--;
}

/* The next transfer behind becomes c's current one: its response is the next to come. */
static void next_response(struct conn *c)
{
    struct transfer *t = c->behind;
    c->behind = t->pipe_next;
    if (!c->behind) c->behind_tail = NULL;
    t->pipe_next = NULL;
    c->t = t;
    c->depth--;
    http_wire_begin(&c->resp);
    c->got_byte = false;
    c->carry_len = 0;
    c->progress_ms = now_ms(c->f);
}

/* Detaches t, the current transfer of its connection, which goes on with the next one behind,
 * becomes idle (keep), or is closed. */
static void release(struct transfer *t, bool keep)
{
    struct conn *c = t->c;
    if (!c) return;
    t->c = NULL;
    c->t = NULL;
    if (!keep) {
        struct fetcher *f = c->f;
        struct transfer *behind = c->behind;
        c->behind = c->behind_tail = NULL;
        conn_close(c);
        requeue(f, behind);
        return;
    }
    c->uses++;
    if (c->behind) {
        next_response(c);
        return;
    }
    c->state = CONN_IDLE;
    c->depth = 0;
    c->idle_ms = now_ms(c->f);
    idle_push(c);
    arm_sweep(c->f, c->idle_ms + IDLE_MAX_MS);
}

/* ---- the end of a transfer ---- */

static void recycle(struct fetcher *f, struct transfer *t)
{
    free(t->location);
    if (f->nspare >= SPARE_MAX) {
        free(t->url);
        free(t->req);
        free(t);
        return;
    }
    char *url = t->url, *req = t->req;
    size_t url_cap = t->url_cap, req_cap = t->req_cap;
    memset(t, 0, sizeof *t);
    t->url = url;
    t->url_cap = url_cap;
    t->req = req;
    t->req_cap = req_cap;
    t->next = f->spare;
    f->spare = t;
    f->nspare++;
}

static void on_defer(void *arg);

/* Ends t, whose connection was released: its done callback runs now, or from the defer timer
 * when failures are deferred (inside fetch_start and wherever callbacks must not run). The
 * queue is served before the callback, so transfers waiting keep their turn. */
static void end_transfer(struct transfer *t, enum wm_err err, long status, const char *why)
{
    struct fetcher *f = t->f;
    if (f->defer_depth > 0) {
        t->err = err;
        t->status = status;
        if (why != t->why) snprintf(t->why, sizeof t->why, "%s", why);
        t->q_next = NULL;
        *f->failing_tail = t;
        f->failing_tail = &t->q_next;
        if (!loop_timer_active(&f->defer)) loop_timer_start(f->loop, &f->defer, 0, on_defer, f);
        return;
    }
    fetch_done_fn done = t->done;
    void *arg = t->arg;
    char text[sizeof t->why];
    if (why == t->why) { /* t is recycled below */
        memcpy(text, t->why, sizeof text);
        why = text;
    }
    DLIST_REMOVE(f->active_list, t, next, prev);
    f->active--;
    if (t->h) t->h->refs--;
    recycle(f, t);
    dispatch_queue(f);
    done(arg, err, status, why);
}

static void on_defer(void *arg)
{
    struct fetcher *f = arg;
    /* Those that fail while these end wait for the next turn. */
    struct transfer *list = f->failing;
    f->failing = NULL;
    f->failing_tail = &f->failing;
    while (list) {
        struct transfer *t = list;
        list = t->q_next;
        t->q_next = NULL;
        end_transfer(t, t->err, t->status, t->why);
    }
}

/* Ends the transfer of c and closes c. */
static void conn_fail(struct conn *c, enum wm_err err, const char *why)
{
    struct transfer *t = c->t;
    release(t, false);
    end_transfer(t, err, t->status, why);
}

/* ---- connecting ---- */

static void start_request(struct conn *c, struct transfer *t);

/* net.c ended the connect: the request goes out, or the transfer fails. */
static void on_ready(void *arg, struct net_conn *net, enum wm_err err, const char *why)
{
    struct conn *c = arg;
    (void)net;
    if (err != WM_OK) {
        conn_fail(c, err, why);
        return;
    }
    c->fd = net_fd(c->net);
    start_request(c, c->t);
}

/* Opens a connection for t (capacity was checked). */
static void open_conn(struct transfer *t)
{
    struct fetcher *f = t->f;
    char why[256];
    struct tls_settings ts = {
        .cafile = f->opts.cafile, .certfile = f->opts.certfile, .keyfile = f->opts.keyfile};
    if (t->h->tls && !f->tls && tls_config_new(&ts, &f->tls, why, sizeof why) != WM_OK) {
        end_transfer(t, WM_ERR_LIB, 0, why);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        end_transfer(t, WM_ERR_NOMEM, 0, "out of memory");
        return;
    }
    struct net_target target = {.host = t->h->name,
                                .port = t->h->port,
                                .tls = t->h->tls,
                                .tls_config = f->tls,
                                .proxy = t->h->proxy,
                                .tunnel = t->h->tls,
                                .timeout_ms = f->opts.connect_timeout_ms};
    if (net_connect(f->loop, f->resolver, &target, on_ready, c, &c->net) != WM_OK) {
        free(c);
        end_transfer(t, WM_ERR_NOMEM, 0, "out of memory");
        return;
    }
    c->f = f;
    c->h = t->h;
    c->fd = -1;
    c->t = t;
    c->state = CONN_CONNECTING;
    t->c = c;
    DLIST_PUSH(f->conns, c, next, prev);
    c->h->nconns++;
    f->nconns++;
}

/* ---- requests and responses ---- */

/* Puts t on c, idle or just connected, and sends its request. */
static void start_request(struct conn *c, struct transfer *t)
{
    struct fetcher *f = c->f;
    c->t = t;
    t->c = c;
    t->req_sent = 0;
    c->depth = 1;
    http_wire_begin(&c->resp);
    c->got_byte = false;
    c->carry_len = 0;
    c->state = CONN_BUSY;
    c->progress_ms = now_ms(f);
    arm_sweep(f, c->progress_ms + stall_ms(f));
    send_pending(c);
}

/* Puts t behind the transfers of c, busy: its request goes out with the others queued in this
 * loop turn, from flush_pipelines. */
static void pipeline_onto(struct conn *c, struct transfer *t)
{
    t->c = c;
    t->req_sent = 0;
    t->pipe_next = NULL;
    if (c->behind_tail)
        c->behind_tail->pipe_next = t;
    else
        c->behind = t;
    c->behind_tail = t;
    c->depth++;
    if (!c->flush_queued) {
        c->flush_queued = true;
        c->f->nflush++;
    }
}

static const char *io_error(const struct conn *c, int err)
{
    return net_error(c->net, err);
}

static void finish_at_eof(struct conn *c);

/* The connection failed (err) or ended (eof) while t was using it. A kept-alive connection may
 * have been closed by its server just as the request went out, the race every client meets:
 * such a request is sent again, once, on a new connection. */
static void io_failed(struct conn *c, int err, bool eof)
{
    struct transfer *t = c->t;
    if (c->uses > 0 && !c->got_byte && !t->retried && (eof || err == ECONNRESET || err == EPIPE)) {
        release(t, false);
        t->retried = true;
        t->fresh = true;
        submit(t);
        return;
    }
    if (eof) {
        finish_at_eof(c);
        return;
    }
    char why[320];
    if (err == ECONNRESET || err == EPIPE)
        snprintf(why, sizeof why, "connection reset by %s", net_addr(c->net));
    else
        snprintf(why, sizeof why, "connection to %s failed: %s", net_addr(c->net),
                 io_error(c, err));
    conn_fail(c, WM_ERR_CONN, why);
}

/* The unsent parts of the requests on c, in order, into iov (PIPELINE_IOV at most). */
static size_t unsent(const struct conn *c, struct iovec *iov)
{
    size_t n = 0;
    for (struct transfer *t = c->t; t && n < PIPELINE_IOV; t = t == c->t ? c->behind : t->pipe_next)
        if (t->req_sent < t->req_len)
            iov[n++] = (struct iovec){t->req + t->req_sent, t->req_len - t->req_sent};
    return n;
}

/* Counts n bytes written against the requests on c, in order. */
static void mark_sent(struct conn *c, size_t n)
{
    for (struct transfer *t = c->t; t && n > 0; t = t == c->t ? c->behind : t->pipe_next) {
        size_t left = t->req_len - t->req_sent;
        size_t k = n < left ? n : left;
        t->req_sent += k;
        n -= k;
    }
}

/* Sends what is not yet sent of the requests on c. False when that ended c. */
static bool send_pending(struct conn *c)
{
    struct iovec iov[PIPELINE_IOV];
    size_t n;
    while ((n = unsent(c, iov)) > 0) {
        ssize_t w = net_writev(c->net, iov, n);
        if (w > 0) {
            mark_sent(c, (size_t)w);
            c->progress_ms = now_ms(c->f);
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* Reading too: a server may answer (or close) before it has read everything. */
            if (watch(c, LOOP_READ | LOOP_WRITE)) return true;
            conn_fail(c, WM_ERR_IO, "cannot watch a socket");
            return false;
        }
        io_failed(c, w < 0 ? errno : EPIPE, false);
        return false;
    }
    if (watch(c, LOOP_READ)) return true;
    conn_fail(c, WM_ERR_IO, "cannot watch a socket");
    return false;
}

/* Loop hook: the requests pipelined during the turn go out, a connection's in one write. What
 * fails here ends at the defer timer, as no callback may run while the list is walked. */
static void flush_pipelines(void *arg)
{
    struct fetcher *f = arg;
    if (f->nflush == 0) return;
    f->defer_depth++;
    while (f->nflush > 0) {
        struct conn *c = f->conns;
        while (c && !c->flush_queued)
            c = c->next;
        if (!c) break;
        c->flush_queued = false;
        f->nflush--;
        send_pending(c);
    }
    f->defer_depth--;
}

static bool is_redirect(long status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* Makes *buf (capacity *cap) hold at least need bytes; false, with why set, when out of memory. */
static bool reserve(char **buf, size_t *cap, size_t need, char *why, size_t wl)
{
    if (need <= *cap) return true;
    char *grown = realloc(*buf, need);
    if (!grown) {
        snprintf(why, wl, "out of memory");
        return false;
    }
    *buf = grown;
    *cap = need;
    return true;
}

/* Writes t's request for u into t->req. */
static size_t request_for(const struct host *h, const struct wm_url *u, char *out, size_t outlen)
{
    if (h->proxy && !h->tls) return http_wire_proxy_request(u, &h->proxy->url, out, outlen);
    return http_wire_request(u, out, outlen);
}

/* Writes t's request for u, from host h, into t->req: through h's proxy, if any. */
static enum wm_err write_request(struct transfer *t, const struct host *h, const struct wm_url *u,
                                 char *why, size_t wl)
{
    if (h->proxy_error[0]) {
        snprintf(why, wl, "%s", h->proxy_error);
        return WM_ERR_CONN;
    }
    size_t need = request_for(h, u, t->req, t->req_cap);
    if (need >= t->req_cap && need > 0 && need < REQUEST_MAX) {
        if (!reserve(&t->req, &t->req_cap, need + 1, why, wl)) return WM_ERR_NOMEM;
        need = request_for(h, u, t->req, t->req_cap);
    }
    if (need == 0 || need >= t->req_cap) {
        snprintf(why, wl, "URL not fit for a request");
        return WM_ERR_INVAL;
    }
    t->req_len = need;
    return WM_OK;
}

static void set_host(struct transfer *t, struct host *h)
{
    if (t->h) t->h->refs--;
    t->h = h; /* hosts_get counted the reference */
}

/* Chooses the proxy of a new host, once: the setting cannot change while the fetcher lives. */
static void choose_proxy(const struct fetcher *f, struct host *h, const char *scheme)
{
    h->proxy_known = true;
    if (!f->opts.proxies) return;
    if (proxy_for(f->opts.proxies, scheme, h->name, &h->proxy, h->proxy_error,
                  sizeof h->proxy_error) != WM_OK) {
        h->proxy = NULL;
        if (!h->proxy_error[0]) snprintf(h->proxy_error, sizeof h->proxy_error, "bad proxy");
        return;
    }
    h->proxy_error[0] = '\0';
}

/* Makes t ready to fetch url: the request written, the host found. */
static enum wm_err prepare(struct transfer *t, const char *url, char *why, size_t wl)
{
    size_t n = strlen(url);
    if (n >= REQUEST_MAX) {
        snprintf(why, wl, "URL longer than %d bytes", REQUEST_MAX);
        return WM_ERR_INVAL;
    }
    if (!reserve(&t->url, &t->url_cap, n + 1, why, wl)) return WM_ERR_NOMEM;
    memmove(t->url, url, n + 1);
    struct host *h = hosts_by_authority(&t->f->hosts, t->url);
    if (h) { /* the usual case: a host fetched from before */
        struct wm_url u = h->url;
        u.path = t->url + h->authority_len;
        enum wm_err e = write_request(t, h, &u, why, wl);
        if (e == WM_OK) {
            h->refs++;
            set_host(t, h);
        }
        return e;
    }
    struct wm_url u;
    if (url_parse(t->url, &u) != WM_OK) {
        snprintf(why, wl, "malformed URL");
        return WM_ERR_INVAL;
    }
    bool tls = strcmp(u.scheme, "https") == 0;
    if (!tls && strcmp(u.scheme, "http") != 0) {
        snprintf(why, wl, "unsupported scheme %.20s", u.scheme);
        url_clear(&u);
        return WM_ERR_INVAL;
    }
    if (!(h = hosts_get(&t->f->hosts, u.host, u.port, tls, now_ms(t->f)))) {
        snprintf(why, wl, "out of memory");
        url_clear(&u);
        return WM_ERR_NOMEM;
    }
    if (!h->proxy_known) choose_proxy(t->f, h, u.scheme);
    enum wm_err e = write_request(t, h, &u, why, wl);
    if (e != WM_OK) {
        h->refs--;
        url_clear(&u);
        return e;
    }
    set_host(t, h);
    host_remember_authority(h, t->url, &u);
    return WM_OK;
}

/* A redirect's response was read: on to its target, on a connection of the target's host. */
static void follow(struct transfer *t)
{
    char why[300];
    long status = t->status;
    if (t->redirects >= MAX_REDIRECTS) {
        end_transfer(t, WM_ERR_PROTOCOL, status, "more than 5 redirects");
        return;
    }
    t->redirects++;
    char *target = url_resolve(t->url, t->location);
    free(t->location);
    t->location = NULL;
    enum wm_err e = target ? prepare(t, target, why, sizeof why) : WM_ERR_NOMEM;
    free(target);
    if (e != WM_OK) {
        if (e == WM_ERR_NOMEM) snprintf(why, sizeof why, "out of memory");
        end_transfer(t, e, status, why);
        return;
    }
    t->status = 0;
    t->bytes = t->drained = 0;
    t->discard = t->retried = t->fresh = false;
    submit(t);
}

/* The response ended, or was abandoned (reusable false): the transfer's outcome. True when c
 * goes on with the response of a transfer behind (it then outlives the callbacks run here: a
 * busy connection is closed only by its own events).  */
static bool response_done(struct conn *c, bool reusable)
{
    struct transfer *t = c->t;
    /* Bytes TLS decrypted past the response would be taken for the next one's, unless a
     * request behind asked for them. */
    bool keep =
        reusable && c->resp.keep_alive && !net_ended(c->net) && (c->behind || !net_pending(c->net));
    bool goes_on = keep && c->behind;
    release(t, keep);
    if (t->status == 200) {
        end_transfer(t, WM_OK, 200, "");
    } else if (is_redirect(t->status) && t->location) {
        follow(t);
    } else {
        char why[32];
        snprintf(why, sizeof why, "HTTP %ld", t->status);
        end_transfer(t, WM_ERR_PROTOCOL, t->status, why);
    }
    return goes_on;
}

static void finish_at_eof(struct conn *c)
{
    struct transfer *t = c->t;
    if (t->discard) { /* only the status mattered */
        response_done(c, false);
        return;
    }
    if (http_wire_eof(&c->resp) == HTTP_WIRE_END) {
        response_done(c, false);
        return;
    }
    char why[160];
    if (!c->got_byte)
        snprintf(why, sizeof why, "connection closed by %s without a response", net_addr(c->net));
    else if (c->resp.framing == HTTP_WIRE_LENGTH && t->status)
        snprintf(why, sizeof why, "short body: %lld of %lld bytes", (long long)c->resp.body_bytes,
                 (long long)c->resp.length);
    else
        snprintf(why, sizeof why, "%s", c->resp.why);
    conn_fail(c, WM_ERR_CONN, why);
}

/* The head of the final response came. False when that ended the transfer. */
static bool on_head(struct conn *c)
{
    struct transfer *t = c->t;
    const struct http_response *r = &c->resp;
    t->status = r->status;
    if (r->status == 200) {
        if (c->f->opts.max_size > 0 && r->length > c->f->opts.max_size) {
            conn_fail(c, WM_ERR_TOOBIG, "larger than the size limit");
            return false;
        }
        return true;
    }
    /* Not the file: its body is read only to keep the connection, and only when small. */
    t->discard = true;
    if (r->framing == HTTP_WIRE_UNTIL_CLOSE || r->length > DRAIN_MAX) {
        response_done(c, false);
        return false;
    }
    return true;
}

static bool on_body(struct conn *c, const char *data, size_t len)
{
    struct transfer *t = c->t;
    if (t->discard) {
        t->drained += (int64_t)len;
        if (t->drained <= DRAIN_MAX) return true;
        response_done(c, false);
        return false;
    }
    int64_t max = c->f->opts.max_size;
    if (max > 0 && (int64_t)len > max - t->bytes) {
        conn_fail(c, WM_ERR_TOOBIG, "larger than the size limit");
        return false;
    }
    t->bytes += (int64_t)len;
    if (t->data && t->data(t->arg, data, len) != 0) {
        conn_fail(c, WM_ERR_IO, "aborted by receiver");
        return false;
    }
    return true;
}

static bool on_location(struct conn *c, const char *data, size_t len)
{
    struct transfer *t = c->t;
    if (!is_redirect(c->resp.status) || t->location) return true;
    t->location = strndup(data, len);
    if (t->location) return true;
    conn_fail(c, WM_ERR_NOMEM, "out of memory");
    return false;
}

/* Keeps the partial line the parser left for the next read. */
static bool keep_carry(struct conn *c, const char *rest, size_t len)
{
    if (len == 0) return true;
    if (len > HTTP_WIRE_MAX_LINE) { /* the parser's caps make this impossible */
        conn_fail(c, WM_ERR_PROTOCOL, "line too long");
        return false;
    }
    if (!c->carry && !(c->carry = malloc(HTTP_WIRE_MAX_LINE))) {
        conn_fail(c, WM_ERR_NOMEM, "out of memory");
        return false;
    }
    memcpy(c->carry, rest, len);
    c->carry_len = len;
    return true;
}

/* Parses what was read. True when the transfer goes on (more is needed). */
static bool parse(struct conn *c, const char *buf, size_t len)
{
    for (;;) {
        size_t used = 0, dlen = 0;
        const char *data = NULL;
        enum http_wire_event ev = http_wire_parse(&c->resp, buf, len, &used, &data, &dlen);
        buf += used;
        len -= used;
        switch (ev) {
        case HTTP_WIRE_MORE:
            return keep_carry(c, buf, len);
        case HTTP_WIRE_LOCATION:
            if (!on_location(c, data, dlen)) return false;
            break;
        case HTTP_WIRE_HEAD:
            if (!on_head(c)) return false;
            break;
        case HTTP_WIRE_BODY:
            if (!on_body(c, data, dlen)) return false;
            break;
        case HTTP_WIRE_END:
            /* Bytes after the response with no request behind: the server is confused. */
            if (!c->behind) {
                response_done(c, len == 0);
                return false;
            }
            if (!response_done(c, true)) return false;
            break; /* on with the next response, from what is left */
        case HTTP_WIRE_ERROR:
        default:
            conn_fail(c, WM_ERR_PROTOCOL, c->resp.why ? c->resp.why : "malformed response");
            return false;
        }
    }
}

/* One read per readiness event (the loop's epoll is level-triggered: what is left wakes it
 * again), and for TLS as long as decrypted bytes wait, which epoll cannot see. */
static void receive(struct conn *c)
{
    struct fetcher *f = c->f;
    for (;;) {
        size_t have = c->carry_len;
        ssize_t n = net_read(c->net, f->buf + have, RECV_BUFFER - have);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            io_failed(c, n < 0 ? errno : 0, n == 0);
            return;
        }
        if (have) memcpy(f->buf, c->carry, have);
        c->carry_len = 0;
        c->got_byte = true;
        c->progress_ms = now_ms(f);
        if (!parse(c, f->buf, have + (size_t)n)) return;
        if (!net_pending(c->net)) return;
    }
}

/* An idle connection became readable: its server closed it, or sent what no request asked
 * for; either way it is done. (With TLS it may only be a session ticket: kept then.) */
static void idle_event(struct conn *c, unsigned events)
{
    struct fetcher *f = c->f;
    if (!(events & LOOP_ERROR) && net_read(c->net, f->buf, RECV_BUFFER) < 0 && errno == EAGAIN &&
        !net_pending(c->net))
        return;
    conn_close(c);
    dispatch_queue(f);
}

static void on_conn_event(void *arg, int fd, unsigned events)
{
    struct conn *c = arg;
    (void)fd;
    switch (c->state) {
    case CONN_CONNECTING: /* net.c watches the socket until then */
        break;
    case CONN_BUSY:
        if ((events & LOOP_WRITE) && !send_pending(c)) break;
        if (events & (LOOP_READ | LOOP_ERROR)) receive(c);
        break;
    case CONN_IDLE:
        idle_event(c, events);
        break;
    }
}

/* ---- scheduling ---- */

/* The host's queue: its transfers waiting for a connection, first come first served. */
static void wait_ring_add(struct fetcher *f, struct host *h)
{
    if (f->waiting) {
        /* Last in the ring: just before the next one to serve. */
        h->wait_next = f->waiting;
        h->wait_prev = f->waiting->wait_prev;
        h->wait_prev->wait_next = h;
        f->waiting->wait_prev = h;
    } else {
        h->wait_next = h->wait_prev = h;
        f->waiting = h;
    }
    f->nwaiting++;
}

static void wait_ring_remove(struct fetcher *f, struct host *h)
{
    if (h->wait_next == h) {
        f->waiting = NULL;
    } else {
        h->wait_prev->wait_next = h->wait_next;
        h->wait_next->wait_prev = h->wait_prev;
        if (f->waiting == h) f->waiting = h->wait_next;
    }
    h->wait_next = h->wait_prev = NULL;
    f->nwaiting--;
}

static void queue_push(struct fetcher *f, struct transfer *t)
{
    struct host *h = t->h;
    DLIST_APPEND(h->queue_head, h->queue_tail, t, q_next, q_prev);
    if (!h->wait_next) wait_ring_add(f, h);
}

/* Puts t in its host's queue right after prev (at its head when prev is NULL), prev being one of
 * the same host. */
static void queue_insert_after(struct fetcher *f, struct transfer *prev, struct transfer *t)
{
    struct host *h = t->h;
    DLIST_INSERT_AFTER_TAILED(h->queue_head, h->queue_tail, prev, t, q_next, q_prev);
    if (!h->wait_next) wait_ring_add(f, h);
}

static void queue_remove(struct fetcher *f, struct transfer *t)
{
    struct host *h = t->h;
    DLIST_REMOVE_TAILED(h->queue_head, h->queue_tail, t, q_next, q_prev);
    if (!h->queue_head) wait_ring_remove(f, h);
}

static bool small(const struct transfer *t)
{
    return t->size_hint >= 0 && t->size_hint <= PIPELINE_SIZE_MAX;
}

/* The busy connection t can be pipelined on, the least deep of them; NULL when none. One that
 * has not yet kept alive may be a server's that closes after each response. */
static struct conn *pipeline_target(const struct fetcher *f, const struct transfer *t)
{
    if (f->opts.pipeline < 2 || t->fresh || t->solo || !small(t)) return NULL;
    struct conn *best = NULL;
    for (struct conn *c = f->conns; c; c = c->next)
        if (c->h == t->h && c->state == CONN_BUSY && c->uses > 0 && c->depth < f->opts.pipeline &&
            small(c->t) && (!best || c->depth < best->depth))
            best = c;
    return best;
}

/* Whether t can go on a connection now: one of its host's, or a new one within both caps (at
 * the total cap, an idle connection of another host can make room). */
static bool has_capacity(const struct fetcher *f, const struct transfer *t)
{
    const struct host *h = t->h;
    if (!t->fresh && h->idle) return true;
    if (h->nconns < f->opts.max_per_host && (f->nconns < f->opts.max_total || f->nidle > 0))
        return true;
    if (pipeline_target(f, t)) return true;
    return h->nconns >= f->opts.max_per_host && h->idle != NULL; /* one of them can go */
}

/* Puts t on a connection (has_capacity said it can): behind the requests on a busy one of its
 * host (fewer connections, fewer system calls on both sides, and no wait for a connect), an
 * idle one, or a new one, closing an idle connection to make room if need be. */
static void start(struct transfer *t)
{
    struct fetcher *f = t->f;
    struct host *h = t->h;
    struct conn *busy = pipeline_target(f, t);
    if (busy) {
        pipeline_onto(busy, t);
        return;
    }
    if (!t->fresh && h->idle) {
        struct conn *c = h->idle;
        idle_remove(c);
        start_request(c, t);
        return;
    }
    if (h->nconns >= f->opts.max_per_host) close_oldest_idle(f, h);
    if (f->nconns >= f->opts.max_total) close_oldest_idle(f, NULL);
    open_conn(t);
}

/* Starts t or queues it. Whatever fails meanwhile ends at the defer timer: no callback runs
 * inside fetch_start, and the queue is never changed under dispatch_queue's feet. */
static void submit(struct transfer *t)
{
    struct fetcher *f = t->f;
    f->defer_depth++;
    if (has_capacity(f, t))
        start(t);
    else
        queue_push(f, t);
    f->defer_depth--;
}

/* Starts the queued transfers that can start: the hosts with transfers waiting in turn, the
 * oldest transfer of each, until a whole round of them starts nothing. The turn carries over
 * from call to call, so no host is always served first. */
static void dispatch_queue(struct fetcher *f)
{
    if (f->dispatching) {
        f->dispatch_again = true;
        return;
    }
    f->dispatching = true;
    do {
        f->dispatch_again = false;
        size_t fruitless = 0; /* hosts visited in a row that could start nothing */
        while (f->waiting && fruitless < f->nwaiting) {
            struct host *h = f->waiting;
            f->waiting = h->wait_next;
            struct transfer *t = h->queue_head;
            if (!has_capacity(f, t)) {
                fruitless++;
                continue;
            }
            queue_remove(f, t);
            submit(t);
            fruitless = 0;
        }
    } while (f->dispatch_again);
    f->dispatching = false;
}

/* What c waits for, and until when. */
static int64_t conn_due(const struct fetcher *f, const struct conn *c)
{
    switch (c->state) {
    case CONN_CONNECTING: /* net.c's own deadline */
        return INT64_MAX;
    case CONN_IDLE:
        return c->idle_ms + IDLE_MAX_MS;
    default:
        return c->progress_ms + stall_ms(f);
    }
}

static void expire(struct fetcher *f, struct conn *c)
{
    char why[160];
    switch (c->state) {
    case CONN_CONNECTING:
        return;
    case CONN_IDLE:
        conn_close(c);
        return;
    default:
        snprintf(why, sizeof why, "no byte for %ld s", f->opts.low_speed_time_s);
        conn_fail(c, WM_ERR_CONN, why);
        return;
    }
}

static void on_sweep(void *arg)
{
    struct fetcher *f = arg;
    int64_t now = now_ms(f);
    /* Failures found here end at the defer timer: no callback runs while the list is walked. */
    f->defer_depth++;
    for (struct conn *c = f->conns, *next; c; c = next) {
        next = c->next;
        if (now >= conn_due(f, c)) expire(f, c);
    }
    f->defer_depth--;
    dispatch_queue(f);
    int64_t due = INT64_MAX;
    for (struct conn *c = f->conns; c; c = c->next) {
        int64_t d = conn_due(f, c);
        if (d < due) due = d;
    }
    if (due != INT64_MAX) arm_sweep(f, due);
}

/* ---- the interface ---- */

struct fetcher *fetch_new(struct loop *loop, const struct fetch_options *opts)
{
    if (!loop) return NULL;
    struct fetcher *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->loop = loop;
    if (opts) f->opts = *opts;
    if (f->opts.connect_timeout_ms <= 0) f->opts.connect_timeout_ms = 10000;
    if (f->opts.low_speed_time_s <= 0) f->opts.low_speed_time_s = 30;
    if (f->opts.max_per_host <= 0) f->opts.max_per_host = 4;
    if (f->opts.max_total <= 0) f->opts.max_total = 256;
    f->failing_tail = &f->failing;
    if (!(f->resolver = resolver_new(loop))) {
        free(f);
        return NULL;
    }
    if (loop_add_hook(loop, flush_pipelines, f) != WM_OK) {
        resolver_free(&f->resolver);
        free(f);
        return NULL;
    }
    /* Allocated once: its pages are only touched as far as the largest read went. */
    f->buf = malloc(RECV_BUFFER);
    if (!f->buf) {
        loop_remove_hook(loop, flush_pipelines, f);
        resolver_free(&f->resolver);
        free(f);
        return NULL;
    }
    return f;
}

static void free_transfer(struct transfer *t)
{
    free(t->url);
    free(t->req);
    free(t->location);
    free(t);
}

void fetch_free(struct fetcher **fp)
{
    if (!fp || !*fp) return;
    struct fetcher *f = *fp;
    loop_timer_stop(f->loop, &f->sweep);
    loop_timer_stop(f->loop, &f->defer);
    loop_remove_hook(f->loop, flush_pipelines, f);
    while (f->conns)
        conn_close(f->conns);
    /* Transfers still running are abandoned without their done callbacks. */
    while (f->active_list) {
        struct transfer *t = f->active_list;
        f->active_list = t->next;
        free_transfer(t);
    }
    while (f->spare) {
        struct transfer *t = f->spare;
        f->spare = t->next;
        free_transfer(t);
    }
    hosts_free(&f->hosts);
    resolver_free(&f->resolver);
    tls_config_free(&f->tls);
    free(f->buf);
    free(f);
    *fp = NULL;
}

static struct transfer *take_transfer(struct fetcher *f)
{
    struct transfer *t = f->spare;
    if (t) {
        f->spare = t->next;
        f->nspare--;
        t->next = NULL;
        return t;
    }
    return calloc(1, sizeof *t);
}

enum wm_err fetch_start(struct fetcher *f, const char *url, int64_t size_hint, fetch_data_fn data,
                        fetch_done_fn done, void *arg)
{
    if (!f || !url || !done) return WM_ERR_INVAL;
    struct transfer *t = take_transfer(f);
    if (!t) return WM_ERR_NOMEM;
    t->f = f;
    t->data = data;
    t->done = done;
    t->arg = arg;
    t->size_hint = size_hint;
    DLIST_PUSH(f->active_list, t, next, prev);
    f->active++;
    char why[300];
    enum wm_err e = prepare(t, url, why, sizeof why);
    if (e == WM_OK) {
        submit(t);
        return WM_OK;
    }
    /* A URL that cannot be fetched fails like a download, through done. */
    f->defer_depth++;
    end_transfer(t, e, 0, why);
    f->defer_depth--;
    return WM_OK;
}

bool fetch_host_busy(const struct fetcher *f, const char *url)
{
    if (!f || !url) return false;
    const struct host *h = hosts_by_authority(&f->hosts, url);
    int depth = f->opts.pipeline > 1 ? f->opts.pipeline : 1;
    return h && h->refs >= f->opts.max_per_host * depth * 2;
}

size_t fetch_active(const struct fetcher *f)
{
    return f ? f->active : 0;
}
