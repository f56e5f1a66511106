/* test_net.c: the network layer's stages against scripted servers on loopback, each a thread of
 * this test that accepts one connection and plays its part: a direct connect and bytes both
 * ways, a refusal, a name through the resolver's thread, the connect deadline at every stage
 * (the loop ticking meanwhile), an HTTP proxy's tunnel and its refusals, the WebSocket upgrade
 * and framing (early bytes, split frames, pings, close, protocol errors), TLS handshakes that
 * fail (no certificate is needed for those: a handshake that succeeds is test_fetch's, with
 * certificates made at run time), net_close at every stage, and last, where this process may
 * have a hosts file of its own, every address of a name in turn within one deadline. Each
 * outcome is checked with its one-line why. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "net.h"
#include "proxy.h"
#include "resolver.h"
#include "loopback.h"
#include "test.h"
#include "tls.h"
#include "ws_wire.h"

#define WAIT_MS 10000 /* the most any step may take before the test calls it hung */

static struct loop *loop;
static struct resolver *resolver;

/* ---- scripted servers: one connection each, in a thread ---- */

struct server;
typedef void (*script_fn)(struct server *s, int fd);

struct server {
    int lfd;
    unsigned port;
    pthread_t thread;
    script_fn script;
    int variant;
    bool expect_auth;  /* proxy: a Proxy-Authorization for u:p must come */
    const char *host;  /* the Host the request must name ("" for the server's own address) */
    int note[2];       /* script to test: a step was reached (the loop may watch note[0]) */
    int go[2];         /* test to script: go on */
    char head[4096];   /* the last request head the client sent, or its first bytes */
    size_t got;        /* bytes read from the client while stalling */
    char failure[300]; /* the script's first complaint; "" when all was as expected */
    bool saw_eof;      /* the client closed its end */
};

/* Scripts never use ASSERT (its counters are not thread-safe): they complain here, and the test
 * asserts on it after the join. */
static void complain(struct server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void complain(struct server *s, const char *fmt, ...)
{
    if (s->failure[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->failure, sizeof s->failure, fmt, ap);
    va_end(ap);
}

static bool readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
        ;
    return r == 1;
}

static bool send_bytes(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0) return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

static bool send_text(struct server *s, int fd, const char *text)
{
    if (send_bytes(fd, text, strlen(text))) return true;
    complain(s, "cannot send: %s", strerror(errno));
    return false;
}

static bool read_exact(struct server *s, int fd, void *buf, size_t n)
{
    unsigned char *b = buf;
    while (n > 0) {
        if (!readable(fd, WAIT_MS)) {
            complain(s, "nothing came from the client");
            return false;
        }
        ssize_t r = recv(fd, b, n, 0);
        if (r <= 0) {
            complain(s, "the client closed (%s) while %zu bytes were awaited",
                     r < 0 ? strerror(errno) : "EOF", n);
            return false;
        }
        b += r;
        n -= (size_t)r;
    }
    return true;
}

/* Reads a request head, byte by byte so that nothing after it is taken, into s->head. */
static bool read_head(struct server *s, int fd)
{
    size_t n = 0;
    while (n < 4 || memcmp(s->head + n - 4, "\r\n\r\n", 4) != 0) {
        if (n + 1 >= sizeof s->head) {
            complain(s, "request head too long");
            return false;
        }
        if (!read_exact(s, fd, s->head + n, 1)) return false;
        n++;
    }
    s->head[n] = '\0';
    return true;
}

/* Whether the head has the line, whole. */
static bool has_line(const char *head, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = head; (p = strstr(p, line)); p++)
        if ((p == head || p[-1] == '\n') && memcmp(p + n, "\r\n", 2) == 0) return true;
    return false;
}

static void expect_line(struct server *s, const char *line)
{
    if (!has_line(s->head, line)) complain(s, "no line \"%s\" in:\n%s", line, s->head);
}

/* Reads what the client sends until it closes, its first bytes kept in s->head (for a
 * client that is not answered, whatever came before) and all of it sent back with echo_back. */
static void until_eof(struct server *s, int fd, bool echo_back)
{
    char buf[1024];
    while (readable(fd, WAIT_MS)) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0) {
            s->saw_eof = r == 0 || errno == ECONNRESET;
            return;
        }
        size_t keep = s->got < 64 ? 64 - s->got : 0;
        memcpy(s->head + s->got, buf, (size_t)r < keep ? (size_t)r : keep);
        s->got += (size_t)r;
        if (echo_back && !send_bytes(fd, buf, (size_t)r)) return;
    }
    complain(s, "the client never closed");
}

static void wait_eof(struct server *s, int fd)
{
    until_eof(s, fd, false);
}

static void notify(struct server *s)
{
    if (write(s->note[1], "n", 1) != 1) complain(s, "cannot notify: %s", strerror(errno));
}

static bool wait_go(struct server *s)
{
    char c;
    if (readable(s->go[0], WAIT_MS) && read(s->go[0], &c, 1) == 1) return true;
    complain(s, "the test never said go");
    return false;
}

static void say_go(struct server *s)
{
    ASSERT_EQ_INT(write(s->go[1], "g", 1), 1);
}

static void *serve(void *arg)
{
    struct server *s = arg;
    if (!readable(s->lfd, WAIT_MS)) {
        complain(s, "no connection came");
        return NULL;
    }
    int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        complain(s, "accept: %s", strerror(errno));
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->script(s, fd);
    close(fd);
    return NULL;
}

/* A port on 127.0.0.1 nothing listens on. */
static unsigned closed_port(void)
{
    unsigned port = 0;
    int fd = listen_loopback(1, &port);
    if (fd >= 0) close(fd);
    return port;
}

/* A listener on the loopback address of family, at *port (0: any, then set), whose backlog is
 * full: SYNs to it go unanswered and a connect hangs. (No address blackholes SYNs here: this
 * machine's network answers every connect at once.) fillers[3] fill the backlog. -1 when it
 * cannot be made. */
static int blackhole(int family, unsigned *port, int fillers[3])
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    socklen_t len = family == AF_INET6 ? sizeof *a6 : sizeof *a4;
    if (family == AF_INET6) {
        *a6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)*port)};
        a6->sin6_addr = in6addr_loopback;
    } else {
        *a4 = (struct sockaddr_in){.sin_family = AF_INET,
                                   .sin_port = htons((uint16_t)*port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 0) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    *port = ntohs(family == AF_INET6 ? a6->sin6_port : a4->sin_port);
    for (int i = 0; i < 3; i++) {
        fillers[i] = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        (void)connect(fillers[i], (struct sockaddr *)&ss, len);
    }
    return fd;
}

static void unblackhole(int fd, int fillers[3])
{
    if (fd < 0) return;
    for (int i = 0; i < 3; i++)
        close(fillers[i]);
    close(fd);
}

static bool server_start(struct server *s, script_fn script, int variant)
{
    memset(s, 0, sizeof *s);
    s->script = script;
    s->variant = variant;
    s->host = "";
    s->lfd = listen_loopback(4, &s->port);
    bool ok = s->lfd >= 0 && pipe2(s->note, O_CLOEXEC) == 0 && pipe2(s->go, O_CLOEXEC) == 0 &&
              pthread_create(&s->thread, NULL, serve, s) == 0;
    ASSERT_TRUE(ok);
    return ok;
}

/* Joins the script and checks it found everything as expected. */
static void server_finish(struct server *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
    close(s->note[0]);
    close(s->note[1]);
    close(s->go[0]);
    close(s->go[1]);
    ASSERT_EQ_STR(s->failure, "");
}

/* ---- the client's side ---- */

struct ready {
    int calls;
    enum wm_err err;
    bool why_null;
    char why[512];
    int64_t at_ns;
    bool close_inside; /* the callback closes conn itself */
    struct net_conn *conn;
};

static void on_ready(void *arg, struct net_conn *c, enum wm_err err, const char *why)
{
    struct ready *r = arg;
    r->calls++;
    r->err = err;
    r->why_null = why == NULL;
    snprintf(r->why, sizeof r->why, "%s", why ? why : "");
    r->at_ns = loop_mono_ns();
    if (r->close_inside) {
        ASSERT_TRUE(c == r->conn);
        net_close(&r->conn);
    }
    loop_stop(loop);
}

static void stop_loop(void *arg)
{
    loop_stop(arg);
}

/* Runs the loop until a callback stops it or ms pass. */
static void run_for(int64_t ms)
{
    struct loop_timer guard = {0};
    loop_timer_start(loop, &guard, ms, stop_loop, loop);
    ASSERT_EQ_INT(loop_run(loop), WM_OK);
    loop_timer_stop(loop, &guard);
}

/* Connects to t and runs the loop until ready has been called; the connection in r->conn. */
static void dial(const struct net_target *t, struct ready *r)
{
    ASSERT_EQ_INT(net_connect(loop, resolver, t, on_ready, r, &r->conn), WM_OK);
    ASSERT_EQ_INT(r->calls, 0); /* never from inside net_connect */
    run_for(WAIT_MS);
    ASSERT_EQ_INT(r->calls, 1);
}

static bool ends_with(const char *s, const char *end)
{
    size_t a = strlen(s), b = strlen(end);
    return a >= b && strcmp(s + a - b, end) == 0;
}

/* net_read, waiting for the socket while it says EAGAIN (bytes it holds come first). */
static ssize_t read_wait(struct net_conn *c, void *buf, size_t n)
{
    int64_t end = loop_mono_ns() + (int64_t)WAIT_MS * 1000000;
    for (;;) {
        ssize_t r = net_read(c, buf, n);
        if (r >= 0 || errno != EAGAIN) return r;
        if (loop_mono_ns() > end || !readable(net_fd(c), WAIT_MS)) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

/* Reads exactly strlen(want) bytes and checks them. */
static void read_expect(struct net_conn *c, const char *want)
{
    char got[512];
    size_t n = strlen(want), have = 0;
    while (have < n) {
        ssize_t r = read_wait(c, got + have, n - have);
        if (r <= 0) {
            TEST_FAIL_AT("net_read for \"%s\": %zd (%s)", want, r, r < 0 ? strerror(errno) : "EOF");
            return;
        }
        have += (size_t)r;
    }
    got[n] = '\0';
    ASSERT_EQ_STR(got, want);
}

/* Writes all of p, then whatever waits to leave. */
static void write_all(struct net_conn *c, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        struct iovec iov = {(void *)b, n};
        ssize_t w = net_writev(c, &iov, 1);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = net_fd(c), .events = POLLOUT};
            ASSERT_EQ_INT(poll(&pf, 1, WAIT_MS), 1);
            continue;
        }
        ASSERT_TRUE(w > 0);
        if (w <= 0) return;
        b += w;
        n -= (size_t)w;
    }
    while (net_wants_write(c))
        if (!net_flush(c)) {
            ASSERT_EQ_INT(errno, EAGAIN);
            struct pollfd pf = {.fd = net_fd(c), .events = POLLOUT};
            ASSERT_EQ_INT(poll(&pf, 1, WAIT_MS), 1);
        }
}

/* ---- echo: bytes back as they come, until the client closes ---- */

static void echo(struct server *s, int fd)
{
    until_eof(s, fd, true);
}

/* echo, but the server ends the stream after the first bytes. */
static void echo_once(struct server *s, int fd)
{
    char buf[1024];
    if (!readable(fd, WAIT_MS)) {
        complain(s, "nothing came");
        return;
    }
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r > 0) send_bytes(fd, buf, (size_t)r);
    shutdown(fd, SHUT_WR);
    wait_eof(s, fd);
}

/* The client waits for what the server does next: it reads and drops bytes until it closes. */
static void stall(struct server *s, int fd)
{
    wait_eof(s, fd);
}

/* 1. An IP literal, bytes both ways, the end of the stream; then invalid targets. */
static void test_direct(void)
{
    struct server s;
    if (!server_start(&s, echo_once, 0)) return;
    struct net_target t = {.host = "127.0.0.1", .port = (int)s.port, .timeout_ms = 5000};
    struct ready r = {0};
    dial(&t, &r);
    ASSERT_EQ_INT(r.err, WM_OK);
    ASSERT_TRUE(r.why_null);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", s.port);
    ASSERT_EQ_STR(net_addr(r.conn), addr);
    ASSERT_TRUE(net_fd(r.conn) >= 0);
    ASSERT_TRUE(!net_pending(r.conn));
    ASSERT_TRUE(!net_wants_write(r.conn));
    struct iovec iov[2] = {{"hello, ", 7}, {"world", 5}};
    ASSERT_EQ_INT(net_writev(r.conn, iov, 2), 12); /* plain TCP takes every piece */
    read_expect(r.conn, "hello, world");
    char b[16];
    ASSERT_EQ_INT(read_wait(r.conn, b, sizeof b), 0);
    net_close(&r.conn);
    ASSERT_TRUE(r.conn == NULL);
    net_close(&r.conn); /* NULL is fine */
    server_finish(&s);
    ASSERT_TRUE(s.saw_eof);

    struct net_conn *c = NULL;
    struct net_target none = {.port = 80};
    ASSERT_EQ_INT(net_connect(loop, resolver, &none, on_ready, &r, &c), WM_ERR_INVAL);
    struct net_target notls = {.host = "127.0.0.1", .port = 80, .tls = true};
    ASSERT_EQ_INT(net_connect(loop, resolver, &notls, on_ready, &r, &c), WM_ERR_INVAL);
    ASSERT_TRUE(c == NULL);
}

/* 2. Nothing listens: refused, and the why names the address; the owner may close inside. */
static void test_refused(void)
{
    unsigned port = closed_port();
    struct net_target t = {.host = "127.0.0.1", .port = (int)port};
    struct ready r = {0};
    dial(&t, &r);
    char want[128];
    snprintf(want, sizeof want, "connection refused to 127.0.0.1:%u", port);
    ASSERT_EQ_INT(r.err, WM_ERR_CONN);
    ASSERT_EQ_STR(r.why, want);
    snprintf(want, sizeof want, "127.0.0.1:%u", port);
    ASSERT_EQ_STR(net_addr(r.conn), want);
    ASSERT_EQ_INT(net_fd(r.conn), -1);
    net_close(&r.conn);

    struct ready inside = {.close_inside = true};
    dial(&t, &inside);
    ASSERT_EQ_INT(inside.err, WM_ERR_CONN);
    ASSERT_TRUE(inside.conn == NULL);
}

/* 3. A name through the resolver's thread; with several addresses, the next after a refusal. */
static void test_name(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int naddrs = 0;
    bool v6_first = false;
    if (getaddrinfo("localhost", "80", &hints, &res) == 0) {
        v6_first = res->ai_family == AF_INET6;
        for (struct addrinfo *a = res; a; a = a->ai_next)
            naddrs++;
        freeaddrinfo(res);
    }
    if (naddrs < 2)
        fprintf(stderr, "test_name: localhost has %d address here (test_iteration has two)\n",
                naddrs);
    struct server s;
    if (!server_start(&s, echo, 0)) return;
    struct net_target t = {.host = "localhost", .port = (int)s.port, .timeout_ms = 5000};
    struct ready r = {0};
    dial(&t, &r);
    ASSERT_EQ_INT(r.err, WM_OK);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", s.port);
    ASSERT_EQ_STR(net_addr(r.conn), addr); /* whatever was tried first, this one answered */
    if (naddrs >= 2 && v6_first)
        fprintf(stderr, "test_name: [::1] was refused first, then 127.0.0.1 answered\n");
    write_all(r.conn, "named", 5);
    read_expect(r.conn, "named");
    net_close(&r.conn);
    server_finish(&s);
    ASSERT_TRUE(s.saw_eof);
}

/* ---- 4. the deadline, at each stage, with the loop ticking meanwhile ---- */

struct ticker {
    struct loop_timer timer;
    int ticks;
    int64_t last_ns, max_gap_ns;
};

static void tick(void *arg)
{
    struct ticker *k = arg;
    int64_t now = loop_mono_ns();
    if (k->last_ns && now - k->last_ns > k->max_gap_ns) k->max_gap_ns = now - k->last_ns;
    k->last_ns = now;
    k->ticks++;
    loop_timer_start(loop, &k->timer, 50, tick, k);
}

/* Connects to t (timeout 300 ms) and checks it fails with want in time, the loop free. */
static void expect_deadline(struct net_target *t, const char *want)
{
    struct ticker k = {.last_ns = loop_mono_ns()};
    loop_timer_start(loop, &k.timer, 50, tick, &k);
    t->timeout_ms = 300;
    struct ready r = {0};
    int64_t t0 = loop_mono_ns();
    dial(t, &r);
    loop_timer_stop(loop, &k.timer);
    int64_t took_ms = (r.at_ns - t0) / 1000000;
    ASSERT_EQ_INT(r.err, WM_ERR_CONN);
    ASSERT_EQ_STR(r.why, want);
    if (took_ms < 250 || took_ms > 1500) TEST_FAIL_AT("%s: took %jd ms", want, (intmax_t)took_ms);
    ASSERT_TRUE(k.ticks >= 4);
    if (k.max_gap_ns > 280 * 1000000LL) /* a connect that blocked would take it all and more */
        TEST_FAIL_AT("the loop stood still for %jd ms", (intmax_t)(k.max_gap_ns / 1000000));
    net_close(&r.conn);
}

static struct tls_config *tls_cfg;

static void test_deadlines(void)
{
    /* SYNs unanswered. */
    unsigned port = 0;
    int fillers[3];
    int hole = blackhole(AF_INET, &port, fillers);
    ASSERT_TRUE(hole >= 0);
    char want[200];
    snprintf(want, sizeof want, "timed out connecting to 127.0.0.1:%u", port);
    struct net_target t = {.host = "127.0.0.1", .port = (int)port};
    expect_deadline(&t, want);
    unblackhole(hole, fillers);

    /* A server that takes the connection and never answers the ClientHello. */
    struct server s;
    if (!server_start(&s, stall, 0)) return;
    snprintf(want, sizeof want, "timed out in the TLS handshake with 127.0.0.1:%u", s.port);
    t = (struct net_target){
        .host = "127.0.0.1", .port = (int)s.port, .tls = true, .tls_config = tls_cfg};
    expect_deadline(&t, want);
    server_finish(&s);
    ASSERT_TRUE(s.saw_eof);
    ASSERT_TRUE(s.got > 5 && (unsigned char)s.head[0] == 0x16); /* a TLS handshake record */

    /* A server that never answers the WebSocket upgrade. */
    if (!server_start(&s, stall, 0)) return;
    snprintf(want, sizeof want, "timed out in the WebSocket upgrade with 127.0.0.1:%u", s.port);
    t = (struct net_target){.host = "127.0.0.1", .port = (int)s.port, .ws_path = "/mqtt"};
    expect_deadline(&t, want);
    server_finish(&s);
    ASSERT_TRUE(s.saw_eof);
    ASSERT_TRUE(s.got > 4 && memcmp(s.head, "GET ", 4) == 0);
}

/* ---- 3b. every address of a name in turn, from a hosts file of this process's own ---- */

/* This process alone sees a hosts file naming multi.test [::1] then 127.0.0.1. False when it
 * cannot (not root, no namespaces, or threads in the way). */
static bool use_private_hosts(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fprintf(f, "::1 multi.test\n127.0.0.1 multi.test\n");
    fclose(f);
    if (unshare(CLONE_NEWNS) != 0) return false;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return false;
    return mount(path, "/etc/hosts", NULL, MS_BIND, NULL) == 0;
}

struct answer {
    int calls;
    struct resolver_answer a;
};

static void on_answer(void *arg, const struct resolver_answer *a)
{
    struct answer *w = arg;
    w->calls++;
    w->a = *a;
    loop_stop(loop);
}

static void test_iteration(void)
{
    char dir[] = "/tmp/wm-net-XXXXXX", path[64];
    if (!mkdtemp(dir)) return;
    snprintf(path, sizeof path, "%s/hosts", dir);
    if (!use_private_hosts(path)) {
        fprintf(stderr, "test_iteration: no private hosts file (%s): not tested\n",
                strerror(errno));
        goto out;
    }
    /* The order getaddrinfo gives (RFC 6724): [::1] first is what makes the test. */
    struct answer w = {0};
    struct resolver_query q = {0};
    if (!resolver_resolve(resolver, &q, "multi.test", 80, on_answer, &w, &w.a)) run_for(WAIT_MS);
    char first[64] = "";
    if (w.a.n > 0) resolver_describe((const struct sockaddr *)&w.a.addr[0], first, sizeof first);
    if (w.a.n != 2 || strcmp(first, "[::1]:80") != 0) {
        fprintf(stderr, "test_iteration: multi.test has %d addresses, first %s: not tested\n",
                w.a.n, first);
        goto out_mount;
    }

    /* [::1] refuses, 127.0.0.1 answers. */
    struct server s;
    if (!server_start(&s, echo, 0)) goto out_mount;
    struct net_target t = {.host = "multi.test", .port = (int)s.port, .timeout_ms = 5000};
    struct ready r = {0};
    dial(&t, &r);
    ASSERT_EQ_INT(r.err, WM_OK);
    char want[128];
    snprintf(want, sizeof want, "127.0.0.1:%u", s.port);
    ASSERT_EQ_STR(net_addr(r.conn), want);
    if (r.err == WM_OK) {
        write_all(r.conn, "second", 6);
        read_expect(r.conn, "second");
    }
    net_close(&r.conn);
    server_finish(&s);

    /* Both refuse: the why names the last address tried. */
    unsigned port = closed_port();
    r = (struct ready){0};
    t.port = (int)port;
    dial(&t, &r);
    ASSERT_EQ_INT(r.err, WM_ERR_CONN);
    snprintf(want, sizeof want, "connection refused to 127.0.0.1:%u", port);
    ASSERT_EQ_STR(r.why, want);
    net_close(&r.conn);

    /* [::1] never answers the SYN: it has half the time, then 127.0.0.1 answers. */
    if (!server_start(&s, echo, 0)) goto out_mount;
    int fillers[3];
    unsigned port6 = s.port;
    int hole = blackhole(AF_INET6, &port6, fillers);
    ASSERT_TRUE(hole >= 0);
    r = (struct ready){0};
    t = (struct net_target){.host = "multi.test", .port = (int)s.port, .timeout_ms = 1000};
    int64_t t0 = loop_mono_ns();
    dial(&t, &r);
    int64_t took_ms = (r.at_ns - t0) / 1000000;
    ASSERT_EQ_INT(r.err, WM_OK);
    snprintf(want, sizeof want, "127.0.0.1:%u", s.port);
    ASSERT_EQ_STR(net_addr(r.conn), want);
    if (took_ms < 400 || took_ms > 1000)
        TEST_FAIL_AT("the second address after %jd ms", (intmax_t)took_ms);
    net_close(&r.conn);
    server_finish(&s);
    unblackhole(hole, fillers);

    /* Neither answers: one deadline for both. */
    unsigned port4 = 0;
    int fillers4[3];
    int hole4 = blackhole(AF_INET, &port4, fillers4);
    port6 = port4;
    hole = blackhole(AF_INET6, &port6, fillers);
    ASSERT_TRUE(hole4 >= 0 && hole >= 0);
    t = (struct net_target){.host = "multi.test", .port = (int)port4};
    snprintf(want, sizeof want, "timed out connecting to 127.0.0.1:%u", port4);
    expect_deadline(&t, want);
    unblackhole(hole, fillers);
    unblackhole(hole4, fillers4);

out_mount:
    umount("/etc/hosts");
out:
    unlink(path);
    rmdir(dir);
}

/* ---- 5. an HTTP proxy's tunnel ---- */

enum proxy_variant {
    P_OK,       /* 200, then echo */
    P_EARLY,    /* 200 and the server's first bytes in one write, then echo */
    P_PIECES,   /* 200 in 1-byte pieces, then echo */
    P_407,      /* asks for credentials */
    P_403,      /* refuses */
    P_CLOSE,    /* closes without answering */
    P_GARBAGE,  /* answers something not HTTP */
    P_NOTE,     /* tells the test the request came, then waits for the client to close */
    P_WS,       /* 200, then a WebSocket server (ws_server's W_VIA) */
    P_VARIANTS, /* none: the count */
};

enum ws_variant {
    W_FULL,       /* the whole conversation of test_ws_conversation */
    W_TEXT,       /* a text frame */
    W_MASKED,     /* a masked frame */
    W_EOF,        /* a frame, then the end of the stream without a close frame */
    W_404,        /* the upgrade refused */
    W_BAD_ACCEPT, /* a wrong Sec-WebSocket-Accept */
    W_CLOSE,      /* the connection closed before the answer */
    W_NOTE,       /* tells the test the request came, then waits for the client to close */
    W_VIA,        /* behind a proxy: a frame, then waits for the client to close */
    W_LAST,       /* a frame and a close frame in one write; the TCP connection kept open */
};

static void ws_server(struct server *s, int fd);

static void proxy(struct server *s, int fd)
{
    if (!read_head(s, fd)) return;
    char line[300];
    snprintf(line, sizeof line, "CONNECT %s HTTP/1.1", s->host);
    if (strncmp(s->head, line, strlen(line)) != 0) complain(s, "request line: %s", s->head);
    snprintf(line, sizeof line, "Host: %s", s->host);
    expect_line(s, line);
    if (s->expect_auth)
        expect_line(s, "Proxy-Authorization: Basic dTpw"); /* u:p */
    else if (strstr(s->head, "Proxy-Authorization"))
        complain(s, "credentials sent to a proxy without a user");
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    switch (s->variant) {
    case P_OK:
        if (send_text(s, fd, ok)) echo(s, fd);
        return;
    case P_EARLY:
        if (send_text(s, fd, "HTTP/1.1 200 Connection established\r\n\r\nearly")) echo(s, fd);
        return;
    case P_PIECES: {
        static const char pieces[] = "HTTP/1.1 200 Connection established\r\nVia: 1.1 test\r\n\r\n";
        for (size_t i = 0; i + 1 < sizeof pieces; i++) {
            if (!send_bytes(fd, pieces + i, 1)) return;
            /* Paces the pieces so that most come in reads of their own; nothing waits on it. */
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
        echo(s, fd);
        return;
    }
    case P_407:
        if (send_text(s, fd,
                      "HTTP/1.1 407 Proxy Authentication Required\r\n"
                      "Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n"))
            wait_eof(s, fd);
        return;
    case P_403:
        if (send_text(s, fd, "HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nno way"))
            wait_eof(s, fd);
        return;
    case P_CLOSE:
        return;
    case P_GARBAGE:
        if (send_text(s, fd, "SSH-2.0-OpenSSH_9.6\r\n\r\n")) wait_eof(s, fd);
        return;
    case P_NOTE:
        notify(s);
        wait_eof(s, fd);
        return;
    case P_WS:
        s->variant = W_VIA;
        if (send_text(s, fd, ok)) ws_server(s, fd);
        return;
    default:
        complain(s, "no such variant %d", s->variant);
    }
}

/* The proxy config of "http://[u:p@]127.0.0.1:port", and its server for mqtt://broker.example. */
static const struct proxy_server *proxy_at(struct proxy_config *cfg, unsigned port, bool user)
{
    char url[128], why[256] = "";
    snprintf(url, sizeof url, "http://%s127.0.0.1:%u", user ? "u:p@" : "", port);
    /* --no-proxy "": whatever no_proxy this machine has, the proxy is used. */
    ASSERT_EQ_INT(proxy_config_from_env(url, "", NULL, cfg, why, sizeof why), WM_OK);
    const struct proxy_server *p = NULL;
    ASSERT_EQ_INT(proxy_for(cfg, "mqtt", "broker.example", &p, why, sizeof why), WM_OK);
    ASSERT_TRUE(p != NULL);
    return p;
}

/* Runs one conversation through a scripted proxy; the connection is left in r->conn. */
static void via_proxy(struct server *s, struct proxy_config *cfg, enum proxy_variant v, bool user,
                      struct ready *r)
{
    if (!server_start(s, proxy, v)) return;
    s->expect_auth = user;
    s->host = "broker.example:1883";
    struct net_target t = {.host = "broker.example",
                           .port = 1883,
                           .proxy = proxy_at(cfg, s->port, user),
                           .tunnel = true,
                           .timeout_ms = 5000};
    if (v == P_WS) t.ws_path = "/mqtt";
    dial(&t, r);
}

static void test_proxy(void)
{
    struct server s;
    struct proxy_config cfg;
    char want[400];

    /* The tunnel up, with credentials; then echo through it. The name is the proxy's to
     * resolve: broker.example means nothing here. */
    for (int v = P_OK; v <= P_PIECES; v++) {
        struct ready r = {0};
        via_proxy(&s, &cfg, (enum proxy_variant)v, v != P_PIECES, &r);
        ASSERT_EQ_INT(r.err, WM_OK);
        snprintf(want, sizeof want, "127.0.0.1:%u", s.port);
        ASSERT_EQ_STR(net_addr(r.conn), want);
        if (v == P_EARLY) read_expect(r.conn, "early"); /* left in the socket for the owner */
        write_all(r.conn, "through the tunnel", 18);
        read_expect(r.conn, "through the tunnel");
        net_close(&r.conn);
        server_finish(&s);
        ASSERT_TRUE(s.saw_eof);
        proxy_config_clear(&cfg);
    }

    /* Refusals: the why is head, the proxy's port, tail. */
    static const struct {
        enum proxy_variant v;
        bool user;
        enum wm_err err;
        const char *head, *tail;
    } refusals[] = {
        {P_407, false, WM_ERR_CONN, "proxy http://127.0.0.1:",
         " (from --proxy) asks for credentials (407) for broker.example:1883: give a user in the "
         "proxy URL and its password there or in the credentials file"},
        {P_407, true, WM_ERR_CONN, "proxy http://u@127.0.0.1:", /* never the password */
         " (from --proxy) refused the credentials of u (407) for broker.example:1883"},
        {P_403, true, WM_ERR_CONN, "proxy http://u@127.0.0.1:",
         " (from --proxy) refused CONNECT to broker.example:1883: HTTP 403"},
        {P_CLOSE, true, WM_ERR_CONN,
         "proxy 127.0.0.1:", " closed the connection before answering CONNECT"},
        {P_GARBAGE, true, WM_ERR_PROTOCOL,
         "proxy 127.0.0.1:", " answered CONNECT with malformed status line"},
    };
    struct ready r;
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        r = (struct ready){0};
        via_proxy(&s, &cfg, refusals[i].v, refusals[i].user, &r);
        ASSERT_EQ_INT(r.err, refusals[i].err);
        snprintf(want, sizeof want, "%s%u%s", refusals[i].head, s.port, refusals[i].tail);
        ASSERT_EQ_STR(r.why, want);
        net_close(&r.conn);
        server_finish(&s);
        if (refusals[i].v != P_CLOSE) ASSERT_TRUE(s.saw_eof); /* the client closed its end */
        proxy_config_clear(&cfg);
    }

    /* A proxy that never answers: the deadline names it and the destination. */
    if (server_start(&s, proxy, P_NOTE)) {
        s.expect_auth = true;
        s.host = "broker.example:1883";
        struct net_target t = {.host = "broker.example",
                               .port = 1883,
                               .proxy = proxy_at(&cfg, s.port, true),
                               .tunnel = true};
        snprintf(want, sizeof want,
                 "timed out waiting for proxy 127.0.0.1:%u to open a tunnel to "
                 "broker.example:1883",
                 s.port);
        expect_deadline(&t, want);
        server_finish(&s);
        ASSERT_TRUE(s.saw_eof);
        proxy_config_clear(&cfg);
    }

    /* Nothing listens at the proxy's address. */
    unsigned port = closed_port();
    r = (struct ready){0};
    struct net_target t = {.host = "broker.example",
                           .port = 1883,
                           .proxy = proxy_at(&cfg, port, true),
                           .tunnel = true};
    dial(&t, &r);
    ASSERT_EQ_INT(r.err, WM_ERR_CONN);
    snprintf(want, sizeof want, "connection refused to proxy 127.0.0.1:%u", port);
    ASSERT_EQ_STR(r.why, want);
    net_close(&r.conn);
    proxy_config_clear(&cfg);

    /* Without tunnel the connection ends at the proxy: no CONNECT, the owner speaks. */
    if (!server_start(&s, echo, 0)) return;
    r = (struct ready){0};
    t = (struct net_target){
        .host = "broker.example", .port = 80, .proxy = proxy_at(&cfg, s.port, true)};
    dial(&t, &r);
    ASSERT_EQ_INT(r.err, WM_OK);
    write_all(r.conn, "GET http://broker.example/ HTTP/1.1\r\n\r\n", 39);
    read_expect(r.conn, "GET http://broker.example/ HTTP/1.1\r\n\r\n");
    net_close(&r.conn);
    server_finish(&s);
    ASSERT_TRUE(s.saw_eof);
    proxy_config_clear(&cfg);
}

/* ---- 6. WebSocket ---- */

/* Reads one frame from the client: it must be final and masked; *len bytes unmasked. */
static bool read_frame(struct server *s, int fd, unsigned *opcode, unsigned char *payload,
                       size_t cap, size_t *len)
{
    unsigned char h[8];
    if (!read_exact(s, fd, h, 2)) return false;
    if (!(h[0] & 0x80) || (h[0] & 0x70) || !(h[1] & 0x80)) {
        complain(s, "frame header %02x %02x: not final, reserved bits or not masked", h[0], h[1]);
        return false;
    }
    *opcode = h[0] & 0x0F;
    size_t n = h[1] & 0x7F;
    if (n == 126) {
        if (!read_exact(s, fd, h, 2)) return false;
        n = (size_t)h[0] << 8 | h[1];
    } else if (n == 127) {
        complain(s, "64-bit length from the client");
        return false;
    }
    unsigned char key[4];
    if (!read_exact(s, fd, key, 4)) return false;
    if (n > cap) {
        complain(s, "frame of %zu bytes", n);
        return false;
    }
    if (!read_exact(s, fd, payload, n)) return false;
    for (size_t i = 0; i < n; i++)
        payload[i] ^= key[i % 4];
    *len = n;
    return true;
}

/* Reads a frame and checks its opcode and payload. */
static void expect_frame(struct server *s, int fd, unsigned opcode, const void *want, size_t n)
{
    unsigned char p[1024];
    unsigned op = 0;
    size_t len = 0;
    if (!read_frame(s, fd, &op, p, sizeof p, &len)) return;
    if (op != opcode || len != n || memcmp(p, want, n) != 0)
        complain(s, "frame of opcode %u and %zu bytes, not %u and %zu", op, len, opcode, n);
}

/* An unmasked server frame of opcode with the payload text, appended at out. */
static size_t frame(unsigned char *out, unsigned opcode, const char *text)
{
    size_t n = strlen(text);
    out[0] = (unsigned char)(0x80 | opcode);
    out[1] = (unsigned char)n;
    memcpy(out + 2, text, n);
    return n + 2;
}

static void ws_conversation(struct server *s, int fd)
{
    unsigned char b[256];
    size_t n;
    /* Split: the header's first byte alone, then the rest with half the payload. */
    if (!wait_go(s) || !send_bytes(fd, "\x82", 1)) return;
    if (!wait_go(s) || !send_bytes(fd,
                                   "\x06"
                                   "abc",
                                   4))
        return;
    if (!wait_go(s) || !send_bytes(fd, "def", 3)) return;
    /* Two frames in one write. */
    n = frame(b, WS_OP_BINARY, "12");
    n += frame(b + n, WS_OP_BINARY, "345");
    if (!wait_go(s) || !send_bytes(fd, b, n)) return;
    /* A ping alone: a pong of the same payload comes back. */
    n = frame(b, WS_OP_PING, "hi!");
    if (!wait_go(s) || !send_bytes(fd, b, n)) return;
    expect_frame(s, fd, WS_OP_PONG, "hi!", 3);
    /* A ping and data in one write. */
    n = frame(b, WS_OP_PING, "x");
    n += frame(b + n, WS_OP_BINARY, "after ping");
    if (!wait_go(s) || !send_bytes(fd, b, n)) return;
    expect_frame(s, fd, WS_OP_PONG, "x", 1);
    /* The client's bytes come as masked binary frames, one per net_writev. */
    expect_frame(s, fd, WS_OP_BINARY, "client bytes", 12);
    unsigned char big[300];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 7);
    expect_frame(s, fd, WS_OP_BINARY, big, sizeof big); /* a 16-bit length */
    /* A close: the client echoes it. */
    if (!wait_go(s) || !send_bytes(fd, "\x88\x02\x03\xe8", 4)) return;
    expect_frame(s, fd, WS_OP_CLOSE, "\x03\xe8", 2);
    wait_eof(s, fd);
}

static void ws_server(struct server *s, int fd)
{
    if (!read_head(s, fd)) return;
    if (s->variant == W_CLOSE) return;
    if (s->variant == W_NOTE) {
        notify(s);
        wait_eof(s, fd);
        return;
    }
    char line[300], key[64] = "", accept[32] = "";
    if (strncmp(s->head, "GET /mqtt HTTP/1.1\r\n", 20) != 0)
        complain(s, "request line: %s", s->head);
    snprintf(line, sizeof line, "Host: %s", s->host[0] ? s->host : "127.0.0.1:");
    if (s->host[0])
        expect_line(s, line);
    else if (!strstr(s->head, "\r\nHost: 127.0.0.1:"))
        complain(s, "no Host: %s", s->head);
    expect_line(s, "Upgrade: websocket");
    expect_line(s, "Connection: Upgrade");
    expect_line(s, "Sec-WebSocket-Version: 13");
    expect_line(s, "Sec-WebSocket-Protocol: mqtt");
    const char *k = strstr(s->head, "\r\nSec-WebSocket-Key: ");
    if (k) sscanf(k + 21, "%63[A-Za-z0-9+/=]", key);
    if (strlen(key) != WS_KEY_TEXT) complain(s, "Sec-WebSocket-Key \"%s\"", key);
    if (ws_wire_accept(key, accept, sizeof accept) != WM_OK) complain(s, "no accept for %s", key);
    if (s->variant == W_BAD_ACCEPT) accept[3] ^= 1;
    if (s->variant == W_404) {
        send_text(s, fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        wait_eof(s, fd);
        return;
    }
    unsigned char b[512];
    int n = snprintf((char *)b, sizeof b,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                     "Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
                     accept);
    size_t len = (size_t)n;
    switch (s->variant) {
    case W_FULL: /* a frame with the head: early bytes */
        len += frame(b + len, WS_OP_BINARY, "early");
        break;
    case W_TEXT:
        len += frame(b + len, WS_OP_TEXT, "hi");
        break;
    case W_MASKED:
        memcpy(b + len, "\x82\x82\x01\x02\x03\x04", 6);
        b[len + 6] = 'h' ^ 1;
        b[len + 7] = 'i' ^ 2;
        len += 8;
        break;
    case W_EOF:
        len += frame(b + len, WS_OP_BINARY, "bye");
        break;
    case W_VIA:
        len += frame(b + len, WS_OP_BINARY, "via proxy");
        break;
    default:
        break;
    }
    if (!send_bytes(fd, b, len)) return;
    switch (s->variant) {
    case W_FULL:
        ws_conversation(s, fd);
        return;
    case W_TEXT:
        expect_frame(s, fd, WS_OP_CLOSE, "\x03\xeb", 2); /* 1003 */
        wait_eof(s, fd);
        return;
    case W_MASKED:
        expect_frame(s, fd, WS_OP_CLOSE, "\x03\xea", 2); /* 1002 */
        wait_eof(s, fd);
        return;
    case W_EOF:
        return;
    case W_LAST:
        n = (int)frame(b, WS_OP_BINARY, "last");
        memcpy(b + n, "\x88\x02\x03\xe8", 4);
        if (!wait_go(s) || !send_bytes(fd, b, (size_t)n + 4)) return;
        expect_frame(s, fd, WS_OP_CLOSE, "\x03\xe8", 2);
        wait_eof(s, fd); /* the client's to close, as RFC 6455 lets a server wait */
        return;
    default:
        wait_eof(s, fd);
    }
}

static void ws_dial(struct server *s, enum ws_variant v, struct ready *r)
{
    if (!server_start(s, ws_server, v)) return;
    struct net_target t = {
        .host = "127.0.0.1", .port = (int)s->port, .ws_path = "/mqtt", .timeout_ms = 5000};
    dial(&t, r);
}

/* Reads until net_read says EAGAIN after taking what the socket had, however it came. */
static void read_until_wants_write(struct net_conn *c)
{
    int64_t end = loop_mono_ns() + (int64_t)WAIT_MS * 1000000;
    char b[64];
    while (!net_wants_write(c) && loop_mono_ns() < end) {
        ASSERT_TRUE(readable(net_fd(c), WAIT_MS));
        ssize_t r = net_read(c, b, sizeof b);
        ASSERT_EQ_INT(r, -1);
        ASSERT_EQ_INT(errno, EAGAIN);
    }
    ASSERT_TRUE(net_wants_write(c));
}

static void test_ws_conversation(void)
{
    struct server s;
    struct ready r = {0};
    ws_dial(&s, W_FULL, &r);
    ASSERT_EQ_INT(r.err, WM_OK);
    ASSERT_TRUE(r.why_null);
    if (r.err != WM_OK) {
        net_close(&r.conn);
        server_finish(&s);
        return;
    }
    struct net_conn *c = r.conn;
    /* The frame that came with the 101 waits outside the socket. */
    ASSERT_TRUE(net_pending(c));
    read_expect(c, "early");
    ASSERT_TRUE(!net_pending(c));
    /* A header's first byte alone: nothing to hand out yet. */
    say_go(&s);
    ASSERT_TRUE(readable(net_fd(c), WAIT_MS));
    char b[64];
    ASSERT_EQ_INT(net_read(c, b, sizeof b), -1);
    ASSERT_EQ_INT(errno, EAGAIN);
    say_go(&s);
    read_expect(c, "abc");
    say_go(&s);
    read_expect(c, "def");
    say_go(&s);
    read_expect(c, "12345");
    /* A ping alone: net_read has nothing for the owner, but a pong to send. */
    ASSERT_TRUE(!net_wants_write(c));
    say_go(&s);
    read_until_wants_write(c);
    ASSERT_TRUE(net_flush(c));
    ASSERT_TRUE(!net_wants_write(c));
    say_go(&s);
    read_expect(c, "after ping");
    ASSERT_TRUE(net_wants_write(c));
    ASSERT_TRUE(net_flush(c));
    /* net_writev frames the first piece only. */
    struct iovec iov[2] = {{"client bytes", 12}, {"not taken", 9}};
    ASSERT_EQ_INT(net_writev(c, iov, 2), 12);
    unsigned char big[300];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 7);
    write_all(c, big, sizeof big);
    /* The server's close frame ends the stream, for good. */
    say_go(&s);
    ASSERT_EQ_INT(read_wait(c, b, sizeof b), 0);
    ASSERT_EQ_INT(net_read(c, b, sizeof b), 0);
    net_close(&r.conn);
    server_finish(&s);
    ASSERT_TRUE(s.saw_eof);
}

static void test_ws_errors(void)
{
    struct server s;
    char want[300], b[64];
    struct ready r;

    /* Frames the protocol forbids: EPROTO from then on, the server told why in a close frame
     * (its code checked by the script). */
    static const struct {
        enum ws_variant v;
        const char *error;
    } broken[] = {
        {W_TEXT, "WebSocket: text frame: MQTT over WebSocket is binary"},
        {W_MASKED, "WebSocket: masked frame from the server"},
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        r = (struct ready){0};
        ws_dial(&s, broken[i].v, &r);
        ASSERT_EQ_INT(r.err, WM_OK);
        if (r.conn && r.err == WM_OK) {
            ASSERT_EQ_INT(read_wait(r.conn, b, sizeof b), -1);
            ASSERT_EQ_INT(errno, EPROTO);
            ASSERT_EQ_STR(net_error(r.conn, EPROTO), broken[i].error);
            ASSERT_EQ_INT(net_read(r.conn, b, sizeof b), -1);
            ASSERT_EQ_INT(errno, EPROTO);
        }
        net_close(&r.conn);
        server_finish(&s);
        ASSERT_TRUE(s.saw_eof);
    }

    /* The end of the stream without a close frame is an end all the same. */
    r = (struct ready){0};
    ws_dial(&s, W_EOF, &r);
    ASSERT_EQ_INT(r.err, WM_OK);
    if (r.conn && r.err == WM_OK) {
        read_expect(r.conn, "bye");
        ASSERT_EQ_INT(read_wait(r.conn, b, sizeof b), 0);
    }
    net_close(&r.conn);
    server_finish(&s);

    /* A close frame with the last bytes: the next net_read says 0 without the socket, which
     * stays quiet (the server waits for the client to close), so net_pending and net_ended
     * must say so, as with TLS (net.h). */
    r = (struct ready){0};
    ws_dial(&s, W_LAST, &r);
    ASSERT_EQ_INT(r.err, WM_OK);
    if (r.conn && r.err == WM_OK) {
        say_go(&s);
        /* Both frames in the socket, then one read takes them. */
        char peek[16];
        int64_t end = loop_mono_ns() + (int64_t)WAIT_MS * 1000000;
        while (recv(net_fd(r.conn), peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT) < 10 &&
               loop_mono_ns() < end)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        ASSERT_EQ_INT(net_read(r.conn, b, sizeof b), 4);
        ASSERT_EQ_MEM(b, "last", 4);
        /* The close frame came with the data: an owner that waits for the socket (mqtt.c's
         * read_in) must hear of the end without it, as the server may keep TCP open. */
        ASSERT_TRUE(net_pending(r.conn));
        ASSERT_TRUE(net_ended(r.conn));
        ASSERT_EQ_INT(net_read(r.conn, b, sizeof b), 0);
    }
    net_close(&r.conn);
    server_finish(&s);
    ASSERT_TRUE(s.saw_eof);

    /* Upgrades that fail: the why is head, the server's port, tail. */
    static const struct {
        enum ws_variant v;
        enum wm_err err;
        const char *head, *tail;
    } refusals[] = {
        {W_404, WM_ERR_PROTOCOL,
         "WebSocket upgrade at 127.0.0.1:", "/mqtt refused: HTTP 404 from the WebSocket endpoint"},
        {W_BAD_ACCEPT, WM_ERR_PROTOCOL,
         "WebSocket upgrade at 127.0.0.1:", "/mqtt refused: bad Sec-WebSocket-Accept"},
        {W_CLOSE, WM_ERR_CONN, "WebSocket upgrade: 127.0.0.1:", " closed the connection"},
    };
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        r = (struct ready){0};
        ws_dial(&s, refusals[i].v, &r);
        ASSERT_EQ_INT(r.err, refusals[i].err);
        snprintf(want, sizeof want, "%s%u%s", refusals[i].head, s.port, refusals[i].tail);
        ASSERT_EQ_STR(r.why, want);
        net_close(&r.conn);
        server_finish(&s);
        if (refusals[i].v != W_CLOSE) ASSERT_TRUE(s.saw_eof);
    }
}

/* A WebSocket behind a proxy: CONNECT, then the upgrade naming the destination. */
static void test_ws_via_proxy(void)
{
    struct server s;
    struct proxy_config cfg;
    struct ready r = {0};
    via_proxy(&s, &cfg, P_WS, true, &r);
    ASSERT_EQ_INT(r.err, WM_OK);
    if (r.conn && r.err == WM_OK) read_expect(r.conn, "via proxy");
    net_close(&r.conn);
    server_finish(&s);
    ASSERT_TRUE(s.saw_eof);
    proxy_config_clear(&cfg);
}

/* ---- 7. TLS handshakes that fail (no certificate needed) ---- */

enum tls_variant { T_GARBAGE, T_CLOSE, T_NOTE };

static void tls_server(struct server *s, int fd)
{
    char b[2048];
    if (!readable(fd, WAIT_MS) || recv(fd, b, sizeof b, 0) <= 0 || (unsigned char)b[0] != 0x16) {
        complain(s, "no ClientHello");
        return;
    }
    switch (s->variant) {
    case T_GARBAGE:
        if (send_text(s, fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
            wait_eof(s, fd);
        return;
    case T_CLOSE:
        return;
    default:
        notify(s);
        wait_eof(s, fd);
    }
}

static void test_tls_failures(void)
{
    for (int v = T_GARBAGE; v <= T_CLOSE; v++) {
        struct server s;
        if (!server_start(&s, tls_server, v)) return;
        struct net_target t = {.host = "127.0.0.1",
                               .port = (int)s.port,
                               .tls = true,
                               .tls_config = tls_cfg,
                               .timeout_ms = 5000};
        struct ready r = {0};
        dial(&t, &r);
        ASSERT_EQ_INT(r.err, WM_ERR_PROTOCOL);
        char end[64];
        snprintf(end, sizeof end, " (127.0.0.1:%u)", s.port);
        ASSERT_TRUE(ends_with(r.why, end));
        ASSERT_TRUE(strlen(r.why) > strlen(end));
        if (!ends_with(r.why, end)) fprintf(stderr, "why: %s\n", r.why);
        net_close(&r.conn);
        server_finish(&s);
        if (v == T_GARBAGE) ASSERT_TRUE(s.saw_eof);
    }
}

/* ---- 8. net_close at every stage: no callback follows, nothing leaks ---- */

struct closer {
    struct net_conn *conn;
    struct resolver *resolver;
    int running; /* the resolver's lookups when the connection was closed */
    int fd;
};

static void close_now(void *arg)
{
    struct closer *k = arg;
    if (k->resolver) k->running = resolver_running(k->resolver);
    net_close(&k->conn);
    loop_stop(loop);
}

static void close_on_note(void *arg, int fd, unsigned events)
{
    struct closer *k = arg;
    char c;
    (void)events;
    if (read(fd, &c, 1) != 1) return;
    close_now(k);
}

/* Connects to t, closes when the script notifies, and checks the script saw the close and
 * nothing was called. */
static void close_at_note(struct server *s, const struct net_target *t)
{
    struct ready r = {0};
    struct closer k = {0};
    ASSERT_EQ_INT(net_connect(loop, resolver, t, on_ready, &r, &k.conn), WM_OK);
    ASSERT_EQ_INT(loop_watch(loop, s->note[0], LOOP_READ, close_on_note, &k), WM_OK);
    run_for(WAIT_MS);
    loop_unwatch(loop, s->note[0]);
    ASSERT_TRUE(k.conn == NULL);
    run_for(100); /* a callback would have come by now */
    ASSERT_EQ_INT(r.calls, 0);
    server_finish(s);
    ASSERT_TRUE(s->saw_eof);
}

static void test_close_stages(void)
{
    /* Before the first turn. */
    struct ready r = {0};
    struct net_target t = {.host = "127.0.0.1", .port = (int)closed_port()};
    ASSERT_EQ_INT(net_connect(loop, resolver, &t, on_ready, &r, &r.conn), WM_OK);
    net_close(&r.conn);
    run_for(100);
    ASSERT_EQ_INT(r.calls, 0);

    /* While the name is resolved, on a thread of a resolver that has not seen it yet. */
    struct closer k = {.resolver = resolver_new(loop)};
    ASSERT_TRUE(k.resolver != NULL);
    if (k.resolver) {
        r = (struct ready){0};
        t = (struct net_target){.host = "localhost", .port = (int)closed_port()};
        ASSERT_EQ_INT(net_connect(loop, k.resolver, &t, on_ready, &r, &k.conn), WM_OK);
        struct loop_timer after = {0};
        loop_timer_start(loop, &after, 0, close_now, &k); /* after the connection's first turn */
        run_for(WAIT_MS);
        ASSERT_EQ_INT(k.running, 1);
        ASSERT_TRUE(k.conn == NULL);
        for (int i = 0; i < 500 && resolver_running(k.resolver) > 0; i++)
            run_for(10); /* the lookup ends, and its answer goes nowhere */
        ASSERT_EQ_INT(resolver_running(k.resolver), 0);
        ASSERT_EQ_INT(r.calls, 0);
        resolver_free(&k.resolver);
    }

    /* While connecting: the SYN unanswered. */
    unsigned port = 0;
    int fillers[3];
    int hole = blackhole(AF_INET, &port, fillers);
    ASSERT_TRUE(hole >= 0);
    r = (struct ready){0};
    k = (struct closer){0};
    t = (struct net_target){.host = "127.0.0.1", .port = (int)port, .timeout_ms = 5000};
    ASSERT_EQ_INT(net_connect(loop, resolver, &t, on_ready, &r, &k.conn), WM_OK);
    struct loop_timer later = {0};
    loop_timer_start(loop, &later, 50, close_now, &k);
    run_for(WAIT_MS);
    ASSERT_TRUE(k.conn == NULL);
    run_for(100);
    ASSERT_EQ_INT(r.calls, 0);
    unblackhole(hole, fillers);

    /* While the proxy's answer is awaited. */
    struct server s;
    struct proxy_config cfg;
    if (server_start(&s, proxy, P_NOTE)) {
        s.host = "broker.example:1883";
        t = (struct net_target){.host = "broker.example",
                                .port = 1883,
                                .proxy = proxy_at(&cfg, s.port, false),
                                .tunnel = true,
                                .timeout_ms = 5000};
        close_at_note(&s, &t);
        proxy_config_clear(&cfg);
    }

    /* During the TLS handshake. */
    if (server_start(&s, tls_server, T_NOTE)) {
        t = (struct net_target){.host = "127.0.0.1",
                                .port = (int)s.port,
                                .tls = true,
                                .tls_config = tls_cfg,
                                .timeout_ms = 5000};
        close_at_note(&s, &t);
    }

    /* While the WebSocket upgrade's answer is awaited. */
    if (server_start(&s, ws_server, W_NOTE)) {
        t = (struct net_target){
            .host = "127.0.0.1", .port = (int)s.port, .ws_path = "/mqtt", .timeout_ms = 5000};
        close_at_note(&s, &t);
    }

    /* Up, with early WebSocket bytes not yet read. */
    r = (struct ready){0};
    ws_dial(&s, W_EOF, &r);
    ASSERT_EQ_INT(r.err, WM_OK);
    if (r.conn) ASSERT_TRUE(net_pending(r.conn));
    net_close(&r.conn);
    server_finish(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    loop = loop_new();
    resolver = loop ? resolver_new(loop) : NULL;
    struct tls_settings ts = {0};
    char why[256] = "";
    ASSERT_TRUE(resolver != NULL);
    ASSERT_EQ_INT(tls_config_new(&ts, &tls_cfg, why, sizeof why), WM_OK);
    if (!resolver || !tls_cfg) return TEST_REPORT();
    test_direct();
    test_refused();
    test_name();
    test_deadlines();
    test_proxy();
    test_ws_conversation();
    test_ws_errors();
    test_ws_via_proxy();
    test_tls_failures();
    test_close_stages();
    test_iteration(); /* last: it changes this process's mount namespace */
    tls_config_free(&tls_cfg);
    resolver_free(&resolver);
    loop_free(&loop);
    return TEST_REPORT();
}
