/* net.c: client connections, from a name to a socket ready for the owner's protocol (net.h). */
#include "net.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_wire.h"
#include "loop.h"
#include "mqtt_wire.h"
#include "proxy.h"
#include "resolver.h"
#include "tls.h"
#include "version.h"
#include "ws_wire.h"

#define DEFAULT_TIMEOUT_MS 10000
#define HEAD_MAX (WS_MAX_HEAD + 4096) /* a proxy's answer to CONNECT; a WebSocket upgrade's */
#define WS_FRAME_MAX (64 * 1024)      /* payload per frame sent */
#define WS_IN_MAX (64 * 1024 * 1024)  /* largest frame taken: MQTT caps its packets itself */
/* TCP keepalive: a connection whose other end vanished (a NAT or firewall that forgot it, a
 * host powered off) is found within about two minutes even when nothing is sent. */
#define KEEPALIVE_IDLE_S 60
#define KEEPALIVE_INTERVAL_S 10
#define KEEPALIVE_COUNT 6

enum stage {
    STAGE_START,     /* waiting for the first turn */
    STAGE_RESOLVING, /* the name's lookup is running */
    STAGE_CONNECTING,
    STAGE_PROXY,     /* CONNECT sent (or going out), the proxy's answer awaited */
    STAGE_HANDSHAKE, /* TLS */
    STAGE_UPGRADE,   /* the WebSocket upgrade sent (or going out), the server's answer awaited */
    STAGE_UP,
    STAGE_FAILED,
};

struct net_conn {
    struct loop *loop;
    struct resolver *resolver;
    net_ready_fn ready;
    void *arg;
    enum stage stage;
    int fd;
    unsigned watched;
    struct tls_conn *tls;
    struct tls_config *tls_config;
    char *host;
    int port;
    bool use_tls;
    const struct proxy_server *proxy;
    bool tunnel;
    struct http_response tunnel_answer;
    struct resolver_query query;
    struct resolver_answer addrs;
    int next_addr;
    int last_errno; /* of the last address that failed */
    char addr[64];
    int64_t timeout_ms;
    int64_t deadline_ms, attempt_ms;
    struct loop_timer timer;
    char *head; /* the CONNECT request going out, then the proxy's answer coming in */
    size_t head_len, head_sent;
    int tls_end; /* TLS ended after bytes were read: 0, or EOF (-1), or an errno */
    bool write_wants_read;
    /* WebSocket: */
    char *ws_path;
    struct ws_handshake ws_hs;
    struct ws_decoder ws_in;
    struct ws_keys ws_keys;
    struct buf ws_out;   /* frames (and control frames) not yet written */
    struct buf ws_early; /* bytes that came with the upgrade's answer, not yet read */
    bool ws_ended;       /* a close frame came, or the stream broke */
    char ws_why[WS_WHY_LEN + 32];
};

static void on_event(void *arg, int fd, unsigned events);
static void on_timer_cb(void *arg);
static void connect_next(struct net_conn *c);
static void secured(struct net_conn *c);
static ssize_t raw_read(struct net_conn *c, void *buf, size_t n);
static ssize_t raw_writev(struct net_conn *c, const struct iovec *iov, size_t n);

static int64_t now_ms(const struct net_conn *c)
{
    return loop_now_ms(c->loop);
}

static bool watch(struct net_conn *c, unsigned events)
{
    if (c->watched == events) return true;
    if (loop_watch(c->loop, c->fd, events, on_event, c) != WM_OK) return false;
    c->watched = events;
    return true;
}

static void close_socket(struct net_conn *c)
{
    if (c->fd >= 0) {
        if (c->watched) loop_unwatch(c->loop, c->fd);
        close(c->fd);
    }
    c->fd = -1;
    c->watched = 0;
}

/* Ends the connect with err: the owner hears of it and closes c. */
static void fail(struct net_conn *c, enum wm_err err, const char *why)
{
    c->stage = STAGE_FAILED;
    loop_timer_stop(c->loop, &c->timer);
    resolver_cancel(c->resolver, &c->query);
    tls_free(&c->tls);
    close_socket(c);
    c->ready(c->arg, c, err, why);
}

static void up(struct net_conn *c)
{
    c->stage = STAGE_UP;
    loop_timer_stop(c->loop, &c->timer);
    free(c->head);
    c->head = NULL;
    /* The owner watches the socket from now on, with its own callback. */
    if (c->watched) loop_unwatch(c->loop, c->fd);
    c->watched = 0;
    c->ready(c->arg, c, WM_OK, NULL);
}

/* ---- TLS ---- */

static void handshake(struct net_conn *c)
{
    switch (tls_handshake(c->tls)) {
    case TLS_DONE:
        secured(c);
        return;
    case TLS_WANT_READ:
        if (!watch(c, LOOP_READ)) fail(c, WM_ERR_IO, "cannot watch a socket");
        return;
    case TLS_WANT_WRITE:
        if (!watch(c, LOOP_WRITE)) fail(c, WM_ERR_IO, "cannot watch a socket");
        return;
    default: {
        char why[300];
        snprintf(why, sizeof why, "%s (%s)",
                 tls_error(c->tls)[0] ? tls_error(c->tls) : "TLS handshake: connection closed",
                 c->addr);
        fail(c, WM_ERR_PROTOCOL, why);
    }
    }
}

/* ---- a request head out, its answer in (the proxy's CONNECT, the WebSocket upgrade) ---- */

/* Sends what is left of c->head, then calls then, the reader of the answer; while the socket is
 * full, on_event comes back here. The stage names the failure. */
static void head_write(struct net_conn *c, void (*then)(struct net_conn *))
{
    while (c->head_sent < c->head_len) {
        struct iovec iov = {c->head + c->head_sent, c->head_len - c->head_sent};
        ssize_t n = raw_writev(c, &iov, 1);
        if (n < 0 && errno == EAGAIN) {
            unsigned want = c->write_wants_read ? LOOP_READ : LOOP_WRITE;
            if (!watch(c, want)) fail(c, WM_ERR_IO, "cannot watch a socket");
            return;
        }
        if (n < 0) {
            char why[300];
            snprintf(why, sizeof why, "%s %s: %s",
                     c->stage == STAGE_PROXY ? "proxy" : "WebSocket upgrade:", c->addr,
                     net_error(c, errno));
            fail(c, WM_ERR_CONN, why);
            return;
        }
        c->head_sent += (size_t)n;
    }
    c->head_len = 0;
    then(c);
}

/* ---- the WebSocket upgrade ---- */

static void upgrade_read(struct net_conn *c)
{
    for (;;) {
        if (c->head_len >= HEAD_MAX) {
            fail(c, WM_ERR_PROTOCOL, "WebSocket upgrade: answer too long");
            return;
        }
        ssize_t n = raw_read(c, c->head + c->head_len, HEAD_MAX - c->head_len);
        if (n < 0 && errno == EAGAIN) {
            if (!watch(c, LOOP_READ)) fail(c, WM_ERR_IO, "cannot watch a socket");
            return;
        }
        if (n <= 0) {
            char why[300];
            snprintf(why, sizeof why, "WebSocket upgrade: %s closed the connection%s%s", c->addr,
                     n < 0 ? ": " : "", n < 0 ? net_error(c, errno) : "");
            fail(c, WM_ERR_CONN, why);
            return;
        }
        c->head_len += (size_t)n;
        size_t used = 0;
        switch (ws_wire_handshake(&c->ws_hs, c->head, c->head_len, &used)) {
        case WS_HS_MORE:
            continue;
        case WS_HS_DONE:
            /* Frames may have come with the answer: net_read hands them out first. */
            if (c->head_len > used) {
                if (buf_reserve(&c->ws_early, c->head_len - used) != WM_OK) {
                    fail(c, WM_ERR_NOMEM, "out of memory");
                    return;
                }
                memcpy(c->ws_early.data, c->head + used, c->head_len - used);
                c->ws_early.len = c->head_len - used;
            }
            up(c);
            return;
        default: {
            char why[300];
            snprintf(why, sizeof why, "WebSocket upgrade at %s%s refused: %s", c->addr, c->ws_path,
                     c->ws_hs.why);
            fail(c, WM_ERR_PROTOCOL, why);
            return;
        }
        }
    }
}

static void start_upgrade(struct net_conn *c)
{
    struct ws_request rq = {.host = c->host,
                            .port = c->port,
                            .tls = c->use_tls,
                            .path = c->ws_path,
                            .user_agent = WMESH_USER_AGENT};
    uint64_t seed = 0;
    if (getrandom(rq.nonce, sizeof rq.nonce, 0) != (ssize_t)sizeof rq.nonce ||
        getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
        fail(c, WM_ERR_IO, "WebSocket upgrade: no random bytes");
        return;
    }
    c->ws_keys.state = seed;
    if (!c->head && !(c->head = malloc(HEAD_MAX))) {
        fail(c, WM_ERR_NOMEM, "out of memory");
        return;
    }
    size_t n = ws_wire_request(&c->ws_hs, &rq, c->head, HEAD_MAX);
    if (n == 0 || n >= HEAD_MAX) {
        fail(c, WM_ERR_INVAL, "WebSocket upgrade: host or path not fit for a request");
        return;
    }
    ws_wire_decoder_init(&c->ws_in, WS_IN_MAX);
    c->head_len = n;
    c->head_sent = 0;
    c->stage = STAGE_UPGRADE;
    head_write(c, upgrade_read);
}

/* TLS, if any, is up: the WebSocket upgrade next, if asked. */
static void secured(struct net_conn *c)
{
    if (c->ws_path)
        start_upgrade(c);
    else
        up(c);
}

/* The way to the server is open (a TCP connection, or a tunnel): TLS next, if asked. */
static void through(struct net_conn *c)
{
    if (!c->use_tls) {
        secured(c);
        return;
    }
    char why[256];
    enum wm_err e = tls_new(c->fd, c->host, c->tls_config, &c->tls, why, sizeof why);
    if (e != WM_OK) {
        fail(c, e, why);
        return;
    }
    c->stage = STAGE_HANDSHAKE;
    handshake(c);
}

/* ---- the proxy's tunnel ---- */

/* Reads the proxy's answer a byte at a time: the bytes after it are the server's (TLS) and
 * must stay in the socket for whoever reads next. Once per connection, and some 40 bytes. */
static void proxy_read(struct net_conn *c)
{
    for (;;) {
        if (c->head_len >= HEAD_MAX) {
            fail(c, WM_ERR_PROTOCOL, "proxy's answer to CONNECT too long");
            return;
        }
        ssize_t n = recv(c->fd, c->head + c->head_len, 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!watch(c, LOOP_READ)) fail(c, WM_ERR_IO, "cannot watch a socket");
            return;
        }
        char why[300];
        if (n <= 0) {
            snprintf(why, sizeof why, "proxy %s closed the connection before answering CONNECT",
                     c->addr);
            fail(c, WM_ERR_CONN, why);
            return;
        }
        c->head_len++;
        size_t used = 0;
        enum http_wire_tunnel t =
            http_wire_tunnel_parse(&c->tunnel_answer, c->head, c->head_len, &used);
        memmove(c->head, c->head + used, c->head_len - used);
        c->head_len -= used;
        switch (t) {
        case HTTP_WIRE_TUNNEL_MORE:
            continue;
        case HTTP_WIRE_TUNNEL_UP:
            through(c);
            return;
        case HTTP_WIRE_TUNNEL_REFUSED:
            proxy_refusal(c->proxy, (int)c->tunnel_answer.status, c->host, c->port, why,
                          sizeof why);
            fail(c, WM_ERR_CONN, why);
            return;
        default:
            snprintf(why, sizeof why, "proxy %s answered CONNECT with %s", c->addr,
                     c->tunnel_answer.why ? c->tunnel_answer.why : "something not HTTP");
            fail(c, WM_ERR_PROTOCOL, why);
            return;
        }
    }
}

static void start_tunnel(struct net_conn *c)
{
    if (!c->head && !(c->head = malloc(HEAD_MAX))) {
        fail(c, WM_ERR_NOMEM, "out of memory");
        return;
    }
    size_t n = http_wire_connect_request(c->host, c->port, &c->proxy->url, c->head, HEAD_MAX);
    if (n == 0 || n >= HEAD_MAX) {
        fail(c, WM_ERR_INVAL, "host or proxy credentials not fit for a CONNECT request");
        return;
    }
    c->head_len = n;
    c->head_sent = 0;
    c->stage = STAGE_PROXY;
    http_wire_begin_connect(&c->tunnel_answer);
    head_write(c, proxy_read);
}

/* ---- TCP ---- */

static void connected(struct net_conn *c)
{
    if (c->tunnel)
        start_tunnel(c);
    else
        through(c);
}

static void connect_failed(struct net_conn *c)
{
    char why[200];
    const char *via = c->proxy ? "proxy " : "";
    if (c->last_errno == ETIMEDOUT)
        snprintf(why, sizeof why, "timed out connecting to %s%s", via, c->addr);
    else if (c->last_errno == ECONNREFUSED)
        snprintf(why, sizeof why, "connection refused to %s%s", via, c->addr);
    else
        snprintf(why, sizeof why, "cannot connect to %s%s: %s", via, c->addr,
                 strerror(c->last_errno ? c->last_errno : EINVAL));
    fail(c, WM_ERR_CONN, why);
}

static void set_options(int fd)
{
    int one = 1, idle = KEEPALIVE_IDLE_S, interval = KEEPALIVE_INTERVAL_S, count = KEEPALIVE_COUNT;
    /* Each is an optimisation or a safety net: a socket without one still works. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

/* Tries the addresses from c->next_addr on, each with its share of the time left. */
static void connect_next(struct net_conn *c)
{
    int64_t now = now_ms(c);
    for (; c->next_addr < c->addrs.n; c->next_addr++) {
        if (now >= c->deadline_ms) {
            c->last_errno = ETIMEDOUT;
            break;
        }
        int i = c->next_addr;
        const struct sockaddr *a = (const struct sockaddr *)&c->addrs.addr[i];
        resolver_describe(a, c->addr, sizeof c->addr);
        c->fd = socket(a->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            c->last_errno = errno;
            continue;
        }
        set_options(c->fd);
        if (connect(c->fd, a, c->addrs.len[i]) == 0) {
            c->next_addr++;
            connected(c);
            return;
        }
        if (errno == EINPROGRESS) {
            int rest = c->addrs.n - i - 1;
            c->next_addr++;
            c->stage = STAGE_CONNECTING;
            c->attempt_ms = now + (c->deadline_ms - now) / (rest + 1);
            if (!watch(c, LOOP_WRITE)) {
                fail(c, WM_ERR_IO, "cannot watch a socket");
                return;
            }
            loop_timer_start(c->loop, &c->timer, c->attempt_ms - now, on_timer_cb, c);
            return;
        }
        c->last_errno = errno;
        close_socket(c);
    }
    connect_failed(c);
}

static void connect_done(struct net_conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) {
        loop_timer_start(c->loop, &c->timer, c->deadline_ms - now_ms(c), on_timer_cb, c);
        connected(c);
        return;
    }
    c->last_errno = err;
    close_socket(c);
    connect_next(c);
}

/* ---- resolving ---- */

static void resolved(void *arg, const struct resolver_answer *a)
{
    struct net_conn *c = arg;
    if (a->n == 0) {
        fail(c, WM_ERR_CONN, a->why);
        return;
    }
    c->addrs = *a;
    c->next_addr = 0;
    connect_next(c);
}

static void begin(void *arg)
{
    struct net_conn *c = arg;
    c->deadline_ms = now_ms(c) + c->timeout_ms;
    c->stage = STAGE_RESOLVING;
    loop_timer_start(c->loop, &c->timer, c->deadline_ms - now_ms(c), on_timer_cb, c);
    const char *name = c->proxy ? c->proxy->url.host : c->host;
    int port = c->proxy ? c->proxy->url.port : c->port;
    struct resolver_answer now;
    if (resolver_resolve(c->resolver, &c->query, name, port, resolved, c, &now)) resolved(c, &now);
}

static void on_timer(struct net_conn *c)
{
    int64_t now = now_ms(c);
    char why[200];
    switch (c->stage) {
    case STAGE_START:
        begin(c);
        return;
    case STAGE_RESOLVING:
        snprintf(why, sizeof why, "timed out resolving %s",
                 c->proxy ? c->proxy->url.host : c->host);
        fail(c, WM_ERR_CONN, why);
        return;
    case STAGE_CONNECTING:
        c->last_errno = ETIMEDOUT;
        close_socket(c);
        if (now < c->deadline_ms) {
            connect_next(c);
            return;
        }
        connect_failed(c);
        return;
    case STAGE_PROXY:
        snprintf(why, sizeof why, "timed out waiting for proxy %s to open a tunnel to %s:%d",
                 c->addr, c->host, c->port);
        fail(c, WM_ERR_CONN, why);
        return;
    case STAGE_HANDSHAKE:
        snprintf(why, sizeof why, "timed out in the TLS handshake with %s", c->addr);
        fail(c, WM_ERR_CONN, why);
        return;
    case STAGE_UPGRADE:
        snprintf(why, sizeof why, "timed out in the WebSocket upgrade with %s", c->addr);
        fail(c, WM_ERR_CONN, why);
        return;
    default:
        return;
    }
}

static void on_timer_cb(void *arg)
{
    on_timer(arg);
}

static void on_event(void *arg, int fd, unsigned events)
{
    struct net_conn *c = arg;
    (void)fd;
    (void)events;
    switch (c->stage) {
    case STAGE_CONNECTING:
        connect_done(c);
        return;
    case STAGE_HANDSHAKE:
        handshake(c);
        return;
    case STAGE_PROXY:
    case STAGE_UPGRADE: {
        void (*reader)(struct net_conn *) = c->stage == STAGE_PROXY ? proxy_read : upgrade_read;
        if (c->head_sent < c->head_len)
            head_write(c, reader);
        else
            reader(c);
        return;
    }
    default:
        return;
    }
}

/* ---- the interface ---- */

static char *copy(const char *s, bool *ok)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *ok = false;
    return d;
}

enum wm_err net_connect(struct loop *loop, struct resolver *resolver, const struct net_target *t,
                        net_ready_fn ready, void *arg, struct net_conn **out)
{
    if (!loop || !resolver || !t || !t->host || !ready || !out) return WM_ERR_INVAL;
    if (t->tls && !t->tls_config) return WM_ERR_INVAL;
    struct net_conn *c = calloc(1, sizeof *c);
    if (!c) return WM_ERR_NOMEM;
    bool ok = true;
    c->host = copy(t->host, &ok);
    c->ws_path = copy(t->ws_path, &ok);
    if (!ok) {
        net_close(&c);
        return WM_ERR_NOMEM;
    }
    c->loop = loop;
    c->resolver = resolver;
    c->ready = ready;
    c->arg = arg;
    c->fd = -1;
    c->port = t->port;
    c->use_tls = t->tls;
    c->tls_config = t->tls_config;
    c->proxy = t->proxy;
    c->tunnel = t->proxy && t->tunnel;
    c->timeout_ms = t->timeout_ms > 0 ? t->timeout_ms : DEFAULT_TIMEOUT_MS;
    snprintf(c->addr, sizeof c->addr, "%s:%d", c->proxy ? c->proxy->url.host : c->host,
             c->proxy ? c->proxy->url.port : c->port);
    c->stage = STAGE_START;
    loop_timer_start(loop, &c->timer, 0, on_timer_cb, c);
    *out = c;
    return WM_OK;
}

void net_close(struct net_conn **cp)
{
    if (!cp || !*cp) return;
    struct net_conn *c = *cp;
    if (c->loop) loop_timer_stop(c->loop, &c->timer);
    if (c->resolver) resolver_cancel(c->resolver, &c->query);
    tls_free(&c->tls);
    close_socket(c);
    free(c->host);
    free(c->ws_path);
    buf_free(&c->ws_out);
    buf_free(&c->ws_early);
    free(c->head);
    free(c);
    *cp = NULL;
}

int net_fd(const struct net_conn *c)
{
    return c ? c->fd : -1;
}

const char *net_addr(const struct net_conn *c)
{
    return c ? c->addr : "";
}

/* Bytes of the stream under WebSocket framing, as net_read says. */
static ssize_t raw_read(struct net_conn *c, void *buf, size_t n)
{
    if (!c->tls) {
        ssize_t r;
        while ((r = recv(c->fd, buf, n, 0)) < 0 && errno == EINTR)
            ;
        return r;
    }
    if (c->tls_end) {
        errno = c->tls_end > 0 ? c->tls_end : 0;
        return c->tls_end > 0 ? -1 : 0;
    }
    size_t total = 0;
    for (;;) {
        size_t got = 0;
        enum tls_io io = tls_read(c->tls, (char *)buf + total, n - total, &got);
        int e = errno;
        if (io == TLS_DONE) {
            total += got;
            if (total < n) continue;
            return (ssize_t)total;
        }
        if (io == TLS_WANT_READ || io == TLS_WANT_WRITE) {
            if (total > 0) return (ssize_t)total;
            errno = EAGAIN;
            return -1;
        }
        e = io == TLS_CLOSED ? -1 : e == ECONNRESET || e == EPIPE ? ECONNRESET : EPROTO;
        if (total > 0) {
            /* The end came with the last bytes, and the socket may never wake the owner again
             * (a server can keep it open after its close_notify): told at the next call. */
            c->tls_end = e;
            return (ssize_t)total;
        }
        errno = e > 0 ? e : 0;
        return e > 0 ? -1 : 0;
    }
}

static ssize_t raw_writev(struct net_conn *c, const struct iovec *iov, size_t n)
{
    if (!c->tls) {
        struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = n};
        ssize_t w;
        while ((w = sendmsg(c->fd, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
            ;
        return w;
    }
    if (n == 0) return 0;
    size_t put = 0;
    c->write_wants_read = false;
    enum tls_io io = tls_write(c->tls, iov[0].iov_base, iov[0].iov_len, &put);
    int e = errno;
    if (io == TLS_DONE) return (ssize_t)put;
    if (io == TLS_WANT_READ) c->write_wants_read = true;
    if (io == TLS_WANT_READ || io == TLS_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (io == TLS_CLOSED || e == ECONNRESET || e == EPIPE) {
        /* The server may have said why before it closed (under TLS 1.3 a refused client
         * certificate is an alert after the handshake): read it, so that the error names it
         * rather than a broken pipe. */
        char scratch[512];
        size_t got = 0;
        if (tls_read(c->tls, scratch, sizeof scratch, &got) == TLS_FAILED && tls_alert(c->tls)) {
            errno = EPROTO;
            return -1;
        }
        errno = EPIPE;
        return -1;
    }
    errno = EPROTO;
    return -1;
}

bool net_pending(const struct net_conn *c)
{
    if (c->ws_early.len > 0 || c->ws_ended) return true;
    return c->tls && (tls_pending(c->tls) > 0 || c->tls_end);
}

bool net_ended(const struct net_conn *c)
{
    return c->tls_end != 0 || c->ws_ended;
}

bool net_wants_write(const struct net_conn *c)
{
    return c->ws_out.len > 0;
}

bool net_write_wants_read(const struct net_conn *c)
{
    return c->write_wants_read;
}

const char *net_error(const struct net_conn *c, int err)
{
    if (err == EPROTO && c->ws_why[0]) return c->ws_why;
    if (c->tls && err == EPROTO && tls_error(c->tls)[0]) return tls_error(c->tls);
    return strerror(err);
}

/* ---- WebSocket framing ---- */

bool net_flush(struct net_conn *c)
{
    while (c->ws_out.len > 0) {
        struct iovec iov = {c->ws_out.data, c->ws_out.len};
        ssize_t n = raw_writev(c, &iov, 1);
        if (n < 0) return false;
        buf_consume(&c->ws_out, (size_t)n);
    }
    return true;
}

/* A frame error: the server hears why (best effort), the owner gets EPROTO. */
static ssize_t ws_broken(struct net_conn *c, const char *why, unsigned code)
{
    snprintf(c->ws_why, sizeof c->ws_why, "WebSocket: %s", why);
    if (!c->ws_ended && code &&
        ws_wire_close(&c->ws_out, code, NULL, ws_wire_next_key(&c->ws_keys)) == WM_OK)
        (void)net_flush(c);
    c->ws_ended = true;
    errno = EPROTO;
    return -1;
}

/* Decodes the frames in buf[0..n) in place: what is left at its front is the payload. Pings
 * are answered (queued in ws_out). Returns the payload's length, or -1 (EPROTO) on a broken
 * stream; *closed when the server sent its close frame. */
static ssize_t ws_unframe(struct net_conn *c, unsigned char *buf, size_t n, bool *closed)
{
    size_t off = 0, out = 0;
    while (off < n) {
        size_t used = 0, dlen = 0;
        const unsigned char *data = NULL;
        enum ws_event ev = ws_wire_decode(&c->ws_in, buf + off, n - off, &used, &data, &dlen);
        off += used;
        switch (ev) {
        case WS_MORE:
            break;
        case WS_DATA:
            memmove(buf + out, data, dlen);
            out += dlen;
            continue;
        case WS_PING:
            if (ws_wire_control(&c->ws_out, WS_OP_PONG, data, dlen,
                                ws_wire_next_key(&c->ws_keys)) != WM_OK)
                return ws_broken(c, "out of memory", 0);
            continue;
        case WS_PONG:
            continue;
        case WS_CLOSE:
            *closed = true;
            if (ws_wire_close(&c->ws_out, WS_CLOSE_NORMAL, NULL, ws_wire_next_key(&c->ws_keys)) ==
                WM_OK)
                (void)net_flush(c);
            c->ws_ended = true;
            return (ssize_t)out;
        default:
            return ws_broken(c, c->ws_in.why, c->ws_in.close_code);
        }
        break;
    }
    return (ssize_t)out;
}

ssize_t net_read(struct net_conn *c, void *buf, size_t n)
{
    if (!c->ws_path) return raw_read(c, buf, n);
    if (c->ws_ended) {
        if (!c->ws_why[0]) return 0;
        errno = EPROTO;
        return -1;
    }
    for (;;) {
        ssize_t got;
        if (c->ws_early.len > 0) {
            got = (ssize_t)(c->ws_early.len < n ? c->ws_early.len : n);
            memcpy(buf, c->ws_early.data, (size_t)got);
            buf_consume(&c->ws_early, (size_t)got);
        } else if ((got = raw_read(c, buf, n)) <= 0) {
            return got;
        }
        bool closed = false;
        ssize_t out = ws_unframe(c, buf, (size_t)got, &closed);
        if (out != 0) return out;
        if (closed) return 0;
        /* Only control frames, or a frame's first bytes: on with what the socket has. */
    }
}

ssize_t net_writev(struct net_conn *c, const struct iovec *iov, size_t n)
{
    if (!c->ws_path) return raw_writev(c, iov, n);
    /* Earlier frames leave first; new payload is taken only once they have. */
    if (!net_flush(c)) return -1;
    if (n == 0 || iov[0].iov_len == 0) return 0;
    size_t take = iov[0].iov_len < WS_FRAME_MAX ? iov[0].iov_len : WS_FRAME_MAX;
    if (ws_wire_binary(&c->ws_out, iov[0].iov_base, take, ws_wire_next_key(&c->ws_keys)) != WM_OK) {
        errno = ENOMEM;
        return -1;
    }
    if (!net_flush(c) && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    return (ssize_t)take;
}
