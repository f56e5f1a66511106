/* test_fetch.c: downloads on the event loop from the embedded server: many transfers over a few
 * keep-alive connections, idle connections closed by the server (the loop must not spin on
 * them), refused connections, and freeing a fetcher that holds idle connections. Then from a
 * small server of this file that writes canned bytes per path, on loopback: chunked bodies,
 * Connection: close, bodies read until close, the keep-alive race, stalls, connect timeouts,
 * redirects, error statuses, size limits, truncated and malformed responses, credentials, the
 * queue beyond the connection limits, and the blocking GET. Last, https from `openssl s_server`
 * (when the openssl program is there) with a CA of our own: verified with it, refused without. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"
#include "httpd.h"
#include "loop.h"
#include "loopback.h"
#include "test.h"
#include "version.h"
#include "tree.h"

#define NFILES 10

struct run {
    struct loop *loop;
    struct fetcher *f;
    char url[128]; /* prefix: the file number follows */
    int to_start, running, done, ok, failed, wrong;
    enum wm_err last_err;
};

struct job {
    struct run *r;
    int n;
    size_t bytes;
};

static char base[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static size_t size_of(int n)
{
    return (size_t)(100 + n * 1000);
}

static int on_data(void *arg, const void *data, size_t len)
{
    struct job *j = arg;
    (void)data;
    j->bytes += len;
    return 0;
}

static void start_next(struct run *r);

static void on_done(void *arg, enum wm_err err, long status, const char *why)
{
    struct job *j = arg;
    struct run *r = j->r;
    (void)why;
    r->running--;
    r->done++;
    r->last_err = err;
    if (err == WM_OK && status == 200)
        r->ok++;
    else
        r->failed++;
    if (err == WM_OK && j->bytes != size_of(j->n)) r->wrong++;
    free(j);
    start_next(r);
    if (r->running == 0 && r->to_start == 0) loop_stop(r->loop);
}

static void start_next(struct run *r)
{
    while (r->to_start > 0 && r->running < 8) {
        struct job *j = calloc(1, sizeof *j);
        if (!j) return;
        j->r = r;
        j->n = r->to_start % NFILES;
        char url[160];
        snprintf(url, sizeof url, "%s%d", r->url, j->n);
        r->to_start--;
        if (fetch_start(r->f, url, (int64_t)size_of(j->n), on_data, on_done, j) != WM_OK) {
            free(j);
            r->failed++;
            continue;
        }
        r->running++;
    }
}

/* Runs count transfers, at most 8 at a time, until all are done. */
static void run_transfers(struct run *r, int count)
{
    r->to_start = count;
    r->done = r->ok = r->failed = r->wrong = 0;
    start_next(r);
    if (r->running > 0) ASSERT_EQ_INT(loop_run(r->loop), WM_OK);
}

static void count_turn(void *arg)
{
    (*(int *)arg)++;
}

static void stop_loop(void *arg)
{
    loop_stop(arg);
}

/* Loop turns during ms milliseconds with nothing to do. */
static int idle_turns(struct loop *l, int ms)
{
    int turns = 0;
    struct loop_timer stop = {0};
    ASSERT_EQ_INT(loop_add_hook(l, count_turn, &turns), WM_OK);
    loop_timer_start(l, &stop, ms, stop_loop, l);
    ASSERT_EQ_INT(loop_run(l), WM_OK);
    loop_timer_stop(l, &stop);
    loop_remove_hook(l, count_turn, &turns);
    return turns;
}

static enum wm_err put(struct tree *t, const char *rel, size_t size)
{
    struct tree_tmp tmp;
    enum wm_err err = tree_tmp_create(t, &tmp);
    if (err != WM_OK) return err;
    char *data = malloc(size);
    if (!data) {
        tree_tmp_discard(t, &tmp);
        return WM_ERR_NOMEM;
    }
    memset(data, 'a', size);
    ssize_t w = write(tmp.fd, data, size);
    free(data);
    if (w != (ssize_t)size) {
        tree_tmp_discard(t, &tmp);
        return WM_ERR_IO;
    }
    return tree_tmp_commit(t, &tmp, rel);
}

static void test_embedded_server(void)
{
    snprintf(base, sizeof base, "/tmp/wmesh-fetch-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        test_failed++;
        return;
    }
    char root[128];
    snprintf(root, sizeof root, "%s/tree", base);
    struct tree *t = tree_open(root);
    ASSERT_TRUE(t != NULL);
    if (!t) return;
    tree_set_sync(t, false);
    for (int i = 0; i < NFILES; i++) {
        char rel[32];
        snprintf(rel, sizeof rel, "f/%d", i);
        ASSERT_EQ_INT(put(t, rel, size_of(i)), WM_OK);
    }
    enum wm_err err = WM_ERR_LIB;
    struct httpd *h = httpd_start("127.0.0.1:0", t, "/data", &err);
    ASSERT_TRUE(h != NULL);
    if (!h) return;
    uint16_t port = httpd_port(h);

    struct run r = {.loop = loop_new()};
    ASSERT_TRUE(r.loop != NULL);
    snprintf(r.url, sizeof r.url, "http://127.0.0.1:%u/data/f/", port);
    struct fetch_options opts = {.max_per_host = 4};

    /* Many transfers over at most 4 connections, then a free while the connections are idle
     * (parked, as the loop stopped before its next turn). */
    r.f = fetch_new(r.loop, &opts);
    ASSERT_TRUE(r.f != NULL);
    run_transfers(&r, 200);
    ASSERT_EQ_INT(r.ok, 200);
    ASSERT_EQ_INT(r.failed, 0);
    ASSERT_EQ_INT(r.wrong, 0);
    ASSERT_EQ_INT(fetch_active(r.f), 0);
    fetch_free(&r.f);
    ASSERT_TRUE(r.f == NULL);
    ASSERT_TRUE(idle_turns(r.loop, 200) < 20);
    /* The same over 2 connections, up to 4 requests deep on each. */
    struct fetch_options piped = {.max_per_host = 2, .pipeline = 4};
    r.f = fetch_new(r.loop, &piped);
    ASSERT_TRUE(r.f != NULL);
    run_transfers(&r, 200);
    ASSERT_EQ_INT(r.ok, 200);
    ASSERT_EQ_INT(r.wrong, 0);
    fetch_free(&r.f);

    /* Idle connections the server closes must not wake the loop. */
    r.f = fetch_new(r.loop, &opts);
    ASSERT_TRUE(r.f != NULL);
    run_transfers(&r, 50);
    ASSERT_EQ_INT(r.ok, 50);
    ASSERT_TRUE(idle_turns(r.loop, 100) < 10);
    httpd_stop(&h);
    ASSERT_TRUE(idle_turns(r.loop, 300) < 20);

    /* The dead connections are found and dropped; new ones are refused. */
    run_transfers(&r, 12);
    ASSERT_EQ_INT(r.failed, 12);
    ASSERT_EQ_INT(r.last_err, WM_ERR_CONN);
    ASSERT_TRUE(idle_turns(r.loop, 100) < 10);

    /* A new server on another port: transfers work again. */
    h = httpd_start("127.0.0.1:0", t, "/data", &err);
    ASSERT_TRUE(h != NULL);
    if (h) {
        snprintf(r.url, sizeof r.url, "http://127.0.0.1:%u/data/f/", httpd_port(h));
        run_transfers(&r, 30);
        ASSERT_EQ_INT(r.ok, 30);
        ASSERT_EQ_INT(r.wrong, 0);
        httpd_stop(&h);
    }
    fetch_free(&r.f);
    loop_free(&r.loop);
    tree_close(&t);
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- a server of canned bytes ---- */

#define CANNED_CONNS 256
#define LARGE_SIZE (3 * 1024 * 1024)

struct canned {
    int lfd;
    unsigned port;
    pthread_t acceptor;
    pthread_mutex_t lock;
    int conns, requests; /* accepted and read so far */
    int pipelined;       /* requests that came before the answer to the one ahead */
    char last_request[2048];
    int fds[CANNED_CONNS];
    pthread_t threads[CANNED_CONNS];
    int nthreads;
    bool stopping;
};

struct canned_conn {
    struct canned *s;
    int fd;
};

static bool send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Waits until the client closes (or the server stops), at most ms. */
static void wait_for_close(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c[256];
    int64_t waited = 0;
    while (waited < ms && poll(&p, 1, 50) >= 0) {
        if ((p.revents & POLLIN) && recv(fd, c, sizeof c, MSG_DONTWAIT) <= 0) return;
        if (p.revents & (POLLHUP | POLLERR)) return;
        waited += 50;
    }
}

static char large_byte(size_t i)
{
    return (char)('A' + (i * 7 + i / 1000) % 53);
}

static void send_large(int fd)
{
    char head[128];
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", LARGE_SIZE);
    if (!send_str(fd, head)) return;
    char block[64 * 1024]; /* not static: connections have threads of their own */
    for (size_t off = 0; off < LARGE_SIZE; off += sizeof block) {
        for (size_t i = 0; i < sizeof block; i++)
            block[i] = large_byte(off + i);
        if (!send_all(fd, block, sizeof block)) return;
    }
}

/* Answers one request for path, the n-th on its connection; false closes the connection. */
static bool respond(struct canned *s, int fd, const char *path, int n)
{
    char text[512];
    if (strcmp(path, "/ok") == 0 || strcmp(path, "/auth") == 0)
        return send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    if (strcmp(path, "/chunked") == 0)
        return send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n"
                            "5;name=value\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n"
                            "Expires: never\r\n\r\n");
    if (strcmp(path, "/split") == 0) { /* the head and the body cut across reads */
        send_str(fd, "HTTP/1.1 200 OK\r\nConte");
        sleep_ms(20);
        send_str(fd, "nt-Length: 6\r\n\r\nab");
        sleep_ms(20);
        return send_str(fd, "cdef");
    }
    if (strcmp(path, "/split-chunks") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=");
        sleep_ms(20);
        send_str(fd, "y\r\nabc\r");
        sleep_ms(20);
        send_str(fd, "\n3\r\ndef\r\n0\r\nTrail");
        sleep_ms(20);
        return send_str(fd, "er: 1\r\n\r\n");
    }
    if (strcmp(path, "/100") == 0)
        return send_str(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                            "\r\nyes");
    if (strcmp(path, "/close") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close");
        return false;
    }
    if (strcmp(path, "/http10") == 0) {
        send_str(fd, "HTTP/1.0 200 OK\r\n\r\nold style");
        return false;
    }
    if (strcmp(path, "/both") == 0)
        return send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
                            "\r\n5\r\nhello\r\n0\r\n\r\n");
    if (strcmp(path, "/idle-close") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        sleep_ms(50);
        return false;
    }
    if (strcmp(path, "/race") == 0) /* kept alive once, then closed as the next request comes */
        return n == 1 && send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nrace");
    if (strcmp(path, "/drop") == 0) return false;
    if (strcmp(path, "/every3") == 0) { /* the third response of a connection is its last */
        if (n % 3 == 0) {
            send_str(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
            return false;
        }
        return send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
    if (strcmp(path, "/reset") == 0) {
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        return false;
    }
    if (strcmp(path, "/stall") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
        wait_for_close(fd, 10000);
        return false;
    }
    if (strcmp(path, "/stall-head") == 0) {
        wait_for_close(fd, 10000);
        return false;
    }
    if (strncmp(path, "/redirect/", 10) == 0) {
        int left = (int)strtol(path + 10, NULL, 10);
        if (left == 0) return send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\narrived");
        static const int codes[] = {301, 302, 303, 307, 308};
        snprintf(text, sizeof text,
                 "HTTP/1.1 %d Moved\r\nLocation: /redirect/%d\r\nContent-Length: 4\r\n\r\nmove",
                 codes[left % 5], left - 1);
        return send_str(fd, text);
    }
    if (strcmp(path, "/rel/a/b") == 0)
        return send_str(fd, "HTTP/1.1 301 Moved\r\nLocation: c?x=1\r\nContent-Length: 0\r\n\r\n");
    if (strcmp(path, "/rel/a/c?x=1") == 0)
        return send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nrelative");
    if (strcmp(path, "/abs") == 0) {
        snprintf(text, sizeof text,
                 "HTTP/1.1 307 Moved\r\nLocation: http://localhost:%u/ok\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n4\r\nmove\r\n0\r\n\r\n",
                 s->port);
        return send_str(fd, text);
    }
    if (strcmp(path, "/q") == 0)
        return send_str(fd,
                        "HTTP/1.1 303 See Other\r\nLocation: ?v=2\r\nContent-Length: 0\r\n\r\n");
    if (strcmp(path, "/q?v=2") == 0)
        return send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nquery");
    if (strcmp(path, "/scheme-relative") == 0) {
        snprintf(text, sizeof text,
                 "HTTP/1.1 308 Moved\r\nLocation: //127.0.0.1:%u/ok#frag\r\n"
                 "Content-Length: 0\r\n\r\n",
                 s->port);
        return send_str(fd, text);
    }
    if (strcmp(path, "/ftp") == 0)
        return send_str(fd, "HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/x\r\n"
                            "Content-Length: 0\r\n\r\n");
    if (strcmp(path, "/loop") == 0)
        return send_str(fd, "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n");
    if (strcmp(path, "/500-close") == 0) {
        send_str(fd, "HTTP/1.1 500 Oops\r\n\r\nbroken");
        return false;
    }
    if (strcmp(path, "/big-length") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\nxxxx");
        wait_for_close(fd, 5000);
        return false;
    }
    if (strcmp(path, "/big-chunked") == 0) {
        char chunk[16 * 1024 + 16];
        send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        int h = snprintf(chunk, sizeof chunk, "4000\r\n");
        memset(chunk + h, 'c', 16 * 1024);
        memcpy(chunk + h + 16 * 1024, "\r\n", 2);
        for (int i = 0; i < 200; i++) /* 3.2 MB, or until the client hangs up */
            if (!send_all(fd, chunk, (size_t)h + 16 * 1024 + 2)) break;
        return false;
    }
    if (strcmp(path, "/large") == 0) {
        send_large(fd);
        return true;
    }
    if (strcmp(path, "/truncated") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n0123456789ab");
        return false;
    }
    if (strcmp(path, "/garbage") == 0) {
        send_str(fd, "HELLO WORLD\r\n\r\n");
        return false;
    }
    return send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
}

static void *serve_conn(void *arg)
{
    struct canned_conn *cc = arg;
    struct canned *s = cc->s;
    int fd = cc->fd;
    free(cc);
    char buf[4096];
    size_t have = 0;
    for (int n = 1;; n++) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            ssize_t r = recv(fd, buf + have, sizeof buf - have - 1, 0);
            if (r <= 0 || have + (size_t)r >= sizeof buf - 1) return NULL;
            have += (size_t)r;
        }
        size_t len = (size_t)(end + 4 - buf);
        char path[1024] = "";
        sscanf(buf, "GET %1023s HTTP/1.1", path);
        pthread_mutex_lock(&s->lock);
        s->requests++;
        snprintf(s->last_request, sizeof s->last_request, "%.*s", (int)len, buf);
        pthread_mutex_unlock(&s->lock);
        memmove(buf, buf + len, have - len);
        have -= len;
        if (memmem(buf, have, "\r\n\r\n", 4)) {
            pthread_mutex_lock(&s->lock);
            s->pipelined++;
            pthread_mutex_unlock(&s->lock);
        }
        if (!respond(s, fd, path, n)) break;
    }
    shutdown(fd, SHUT_WR);
    return NULL;
}

static void *accept_loop(void *arg)
{
    struct canned *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return NULL;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_mutex_lock(&s->lock);
        struct canned_conn *cc = malloc(sizeof *cc);
        if (s->stopping || s->nthreads == CANNED_CONNS || !cc) {
            pthread_mutex_unlock(&s->lock);
            free(cc);
            close(fd);
            continue;
        }
        *cc = (struct canned_conn){s, fd};
        s->fds[s->nthreads] = fd;
        if (pthread_create(&s->threads[s->nthreads], NULL, serve_conn, cc) == 0) {
            s->nthreads++;
            s->conns++;
        } else {
            free(cc);
            close(fd);
        }
        pthread_mutex_unlock(&s->lock);
    }
}

static bool canned_start(struct canned *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->lfd = listen_loopback(64, &s->port);
    return s->lfd >= 0 && pthread_create(&s->acceptor, NULL, accept_loop, s) == 0;
}

static void canned_stop(struct canned *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_mutex_unlock(&s->lock);
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->acceptor, NULL);
    close(s->lfd);
    for (int i = 0; i < s->nthreads; i++)
        shutdown(s->fds[i], SHUT_RDWR);
    for (int i = 0; i < s->nthreads; i++) {
        pthread_join(s->threads[i], NULL);
        close(s->fds[i]);
    }
    pthread_mutex_destroy(&s->lock);
}

static int counter(struct canned *s, int *which)
{
    pthread_mutex_lock(&s->lock);
    int v = *which;
    pthread_mutex_unlock(&s->lock);
    return v;
}

/* ---- one transfer at a time ---- */

struct result {
    struct loop *loop;
    int calls;
    bool inside_start; /* done was called from inside fetch_start */
    enum wm_err err;
    long status;
    char why[256];
    size_t bytes;
    char body[64];
    bool large_ok; /* the bytes are send_large's */
    size_t abort_after;
    int64_t size_hint;          /* given to fetch_start, kept by start_one */
    int index, *order, *norder; /* for the queue: the order of the done callbacks */
};

static bool in_start;

static int result_data(void *arg, const void *data, size_t len)
{
    struct result *r = arg;
    const char *d = data;
    for (size_t i = 0; i < len; i++) {
        if (r->bytes + i < sizeof r->body - 1) r->body[r->bytes + i] = d[i];
        if (d[i] != large_byte(r->bytes + i)) r->large_ok = false;
    }
    r->bytes += len;
    return r->abort_after && r->bytes >= r->abort_after ? -1 : 0;
}

static void result_done(void *arg, enum wm_err err, long status, const char *why)
{
    struct result *r = arg;
    r->calls++;
    r->inside_start = in_start;
    r->err = err;
    r->status = status;
    snprintf(r->why, sizeof r->why, "%s", why ? why : "(null)");
    if (r->order) r->order[(*r->norder)++] = r->index;
    loop_stop(r->loop);
}

static void start_one(struct fetcher *f, struct loop *l, const char *url, struct result *r)
{
    size_t abort_after = r->abort_after;
    int64_t size_hint = r->size_hint;
    memset(r, 0, sizeof *r);
    r->abort_after = abort_after;
    r->size_hint = size_hint;
    r->loop = l;
    r->large_ok = true;
    in_start = true;
    enum wm_err e = fetch_start(f, url, r->size_hint, result_data, result_done, r);
    in_start = false;
    ASSERT_EQ_INT(e, WM_OK);
    ASSERT_EQ_INT(r->calls, 0);
}

/* Stops a loop that runs too long: a test that hangs fails instead. */
struct guard {
    struct loop *loop;
    struct loop_timer timer;
    bool fired;
};

static void guard_fire(void *arg)
{
    struct guard *g = arg;
    g->fired = true;
    fprintf(stderr, "guard: the loop ran 20 s\n");
    loop_stop(g->loop);
}

static void guard_set(struct guard *g, struct loop *l)
{
    *g = (struct guard){.loop = l};
    loop_timer_start(l, &g->timer, 20000, guard_fire, g);
}

/* Fetches url on f and runs the loop until it is done (20 s at most). */
static void get(struct fetcher *f, struct loop *l, const char *url, struct result *r)
{
    start_one(f, l, url, r);
    struct guard g;
    guard_set(&g, l);
    if (r->calls == 0) ASSERT_EQ_INT(loop_run(l), WM_OK);
    loop_timer_stop(l, &g.timer);
    if (r->calls != 1) fprintf(stderr, "%s: %d done calls\n", url, r->calls);
    ASSERT_EQ_INT(r->calls, 1);
    ASSERT_TRUE(!r->inside_start);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static char *url_of(struct canned *s, const char *path)
{
    static char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", s->port, path);
    return url;
}

#define GET_OK(f, l, s, path, want)                                                                \
    do {                                                                                           \
        get(f, l, url_of(s, path), &res);                                                          \
        ASSERT_EQ_INT(res.err, WM_OK);                                                             \
        ASSERT_EQ_INT(res.status, 200);                                                            \
        ASSERT_EQ_STR(res.body, want);                                                             \
        ASSERT_EQ_INT(res.bytes, strlen(want));                                                    \
    } while (0)

static struct result res;

/* Framing, keep-alive and its reuse. */
static void test_framing(struct canned *s, struct loop *l)
{
    struct fetcher *f = fetch_new(l, NULL);
    int c0 = counter(s, &s->conns);
    GET_OK(f, l, s, "/ok", "hello");
    GET_OK(f, l, s, "/chunked", "Wikipedia in\r\n\r\nchunks.");
    GET_OK(f, l, s, "/split", "abcdef");
    GET_OK(f, l, s, "/split-chunks", "abcdef");
    GET_OK(f, l, s, "/100", "yes");
    ASSERT_EQ_INT(counter(s, &s->conns) - c0, 1); /* all of them on one connection */
    GET_OK(f, l, s, "/close", "until close");
    GET_OK(f, l, s, "/ok", "hello");
    GET_OK(f, l, s, "/http10", "old style");
    GET_OK(f, l, s, "/ok", "hello");
    ASSERT_EQ_INT(counter(s, &s->conns) - c0, 3); /* one per read-until-close body */
    GET_OK(f, l, s, "/both", "hello");            /* chunked wins, */
    GET_OK(f, l, s, "/ok", "hello");              /* but that connection is not used again */
    ASSERT_EQ_INT(counter(s, &s->conns) - c0, 4);

    /* An error status ends the transfer, its body unseen, and keeps the connection. */
    get(f, l, url_of(s, "/404"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_PROTOCOL);
    ASSERT_EQ_INT(res.status, 404);
    ASSERT_EQ_INT(res.bytes, 0);
    GET_OK(f, l, s, "/ok", "hello");
    ASSERT_EQ_INT(counter(s, &s->conns) - c0, 4);
    get(f, l, url_of(s, "/500-close"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_PROTOCOL);
    ASSERT_EQ_INT(res.status, 500);

    /* A server closing an idle connection: noticed, not spun on, not failed on. */
    GET_OK(f, l, s, "/idle-close", "ok");
    ASSERT_TRUE(idle_turns(l, 300) < 20);
    GET_OK(f, l, s, "/ok", "hello");
    ASSERT_EQ_INT(fetch_active(f), 0);
    fetch_free(&f);
}

/* Connections that fail: the keep-alive race is retried once, the rest fail with a reason. */
static void test_failures(struct canned *s, struct loop *l)
{
    struct fetcher *f = fetch_new(l, NULL);
    int c0 = counter(s, &s->conns), r0 = counter(s, &s->requests);
    GET_OK(f, l, s, "/race", "race");
    GET_OK(f, l, s, "/race", "race"); /* closed as it came, sent again on a new connection */
    ASSERT_EQ_INT(counter(s, &s->conns) - c0, 2);
    ASSERT_EQ_INT(counter(s, &s->requests) - r0, 3);
    fetch_free(&f);

    /* On a new connection, a close without a response is no race: it fails at once. */
    f = fetch_new(l, NULL);
    r0 = counter(s, &s->requests);
    get(f, l, url_of(s, "/drop"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_CONN);
    ASSERT_TRUE(strstr(res.why, "without a response") != NULL);
    ASSERT_EQ_INT(counter(s, &s->requests) - r0, 1);
    /* On a kept-alive one, it is sent again once. */
    GET_OK(f, l, s, "/ok", "hello");
    r0 = counter(s, &s->requests);
    get(f, l, url_of(s, "/drop"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_CONN);
    ASSERT_EQ_INT(counter(s, &s->requests) - r0, 2);
    get(f, l, url_of(s, "/reset"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_CONN);
    ASSERT_TRUE(strstr(res.why, "reset") != NULL || strstr(res.why, "without") != NULL);

    get(f, l, url_of(s, "/truncated"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_CONN);
    ASSERT_EQ_STR(res.why, "short body: 12 of 1024 bytes");
    ASSERT_EQ_INT(res.status, 200);
    get(f, l, url_of(s, "/garbage"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_PROTOCOL);
    ASSERT_EQ_STR(res.why, "malformed status line");

    /* Refused, and the reason names the address. */
    unsigned closed_port = 0;
    int fd = listen_loopback(1, &closed_port);
    close(fd);
    char url[128], want[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", closed_port);
    snprintf(want, sizeof want, "connection refused to 127.0.0.1:%u", closed_port);
    get(f, l, url, &res);
    ASSERT_EQ_INT(res.err, WM_ERR_CONN);
    ASSERT_EQ_STR(res.why, want);

    /* URLs that cannot be fetched fail through done, not from inside fetch_start. */
    get(f, l, "ftp://127.0.0.1/x", &res);
    ASSERT_EQ_INT(res.err, WM_ERR_INVAL);
    get(f, l, "http://", &res);
    ASSERT_EQ_INT(res.err, WM_ERR_INVAL);
    get(f, l, "http://no-such-host.invalid/x", &res);
    ASSERT_EQ_INT(res.err, WM_ERR_CONN);
    ASSERT_TRUE(strncmp(res.why, "cannot resolve no-such-host.invalid", 35) == 0);
    fetch_free(&f);
}

/* Stalls and connect timeouts. Lower bounds check that no timeout fires early; upper bounds are
 * loose (the machine is shared and noisy) but far below what a timeout that never fired would
 * take: the canned server stalls for good and the full backlog drops SYNs for minutes. */
static void test_timeouts(struct canned *s, struct loop *l)
{
    struct fetch_options o = {.low_speed_time_s = 1, .connect_timeout_ms = 300};
    struct fetcher *f = fetch_new(l, &o);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    get(f, l, url_of(s, "/stall"), &res);
    double took = seconds_since(&t0);
    ASSERT_EQ_INT(res.err, WM_ERR_CONN);
    ASSERT_EQ_STR(res.why, "no byte for 1 s");
    ASSERT_TRUE(took >= 0.9 && took < 10);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    get(f, l, url_of(s, "/stall-head"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_CONN);
    ASSERT_TRUE(seconds_since(&t0) < 10);

    /* A listener whose backlog is full drops SYNs: the connect hangs until it times out. */
    unsigned port = 0;
    int lfd = listen_loopback(0, &port);
    int fillers[3];
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < 3; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&a, sizeof a);
    }
    char url[128], want[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", port);
    snprintf(want, sizeof want, "timed out connecting to 127.0.0.1:%u", port);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    get(f, l, url, &res);
    took = seconds_since(&t0);
    ASSERT_EQ_INT(res.err, WM_ERR_CONN);
    ASSERT_EQ_STR(res.why, want);
    ASSERT_TRUE(took >= 0.25 && took < 10);
    for (int i = 0; i < 3; i++)
        close(fillers[i]);
    close(lfd);
    /* No timer is left running for nothing. */
    ASSERT_TRUE(idle_turns(l, 300) < 20);
    fetch_free(&f);
}

static void test_redirects(struct canned *s, struct loop *l)
{
    struct fetcher *f = fetch_new(l, NULL);
    GET_OK(f, l, s, "/redirect/3", "arrived");
    GET_OK(f, l, s, "/redirect/5", "arrived");
    get(f, l, url_of(s, "/redirect/6"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_PROTOCOL);
    ASSERT_EQ_STR(res.why, "more than 5 redirects");
    ASSERT_EQ_INT(res.bytes, 0);
    GET_OK(f, l, s, "/rel/a/b", "relative");
    GET_OK(f, l, s, "/abs", "hello"); /* to another host key: localhost */
    GET_OK(f, l, s, "/q", "query");
    GET_OK(f, l, s, "/scheme-relative", "hello");
    get(f, l, url_of(s, "/ftp"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_INVAL);
    get(f, l, url_of(s, "/loop"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_PROTOCOL);
    fetch_free(&f);
}

/* max_size, large bodies, aborts, credentials. */
static void test_sizes(struct canned *s, struct loop *l)
{
    struct fetch_options o = {.max_size = 1024 * 1024};
    struct fetcher *f = fetch_new(l, &o);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    get(f, l, url_of(s, "/big-length"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_TOOBIG);
    ASSERT_EQ_STR(res.why, "larger than the size limit");
    ASSERT_EQ_INT(res.bytes, 0);
    ASSERT_TRUE(seconds_since(&t0) < 4); /* refused at the head; the server holds on for 5 s */
    get(f, l, url_of(s, "/big-chunked"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_TOOBIG);
    ASSERT_TRUE(res.bytes <= 1024 * 1024);
    get(f, l, url_of(s, "/large"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_TOOBIG);
    GET_OK(f, l, s, "/ok", "hello");
    fetch_free(&f);

    f = fetch_new(l, NULL);
    get(f, l, url_of(s, "/large"), &res);
    ASSERT_EQ_INT(res.err, WM_OK);
    ASSERT_EQ_INT(res.bytes, LARGE_SIZE);
    ASSERT_TRUE(res.large_ok);
    GET_OK(f, l, s, "/ok", "hello"); /* after a large body on the same connection */
    res.abort_after = 100000;
    get(f, l, url_of(s, "/large"), &res);
    ASSERT_EQ_INT(res.err, WM_ERR_IO);
    ASSERT_EQ_STR(res.why, "aborted by receiver");
    res.abort_after = 0;

    char url[256];
    snprintf(url, sizeof url, "http://user:p%%40ss@127.0.0.1:%u/auth", s->port);
    get(f, l, url, &res);
    ASSERT_EQ_INT(res.err, WM_OK);
    char want[128];
    snprintf(want, sizeof want, "GET /auth HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n", s->port);
    pthread_mutex_lock(&s->lock);
    ASSERT_TRUE(strncmp(s->last_request, want, strlen(want)) == 0);
    ASSERT_TRUE(strstr(s->last_request, "\r\nAuthorization: Basic dXNlcjpwQHNz\r\n") != NULL);
    ASSERT_TRUE(strstr(s->last_request, "\r\nUser-Agent: " WMESH_USER_AGENT "\r\n") != NULL);
    pthread_mutex_unlock(&s->lock);
    /* The same host without credentials, then with, again: each request carries its own. */
    GET_OK(f, l, s, "/ok", "hello");
    pthread_mutex_lock(&s->lock);
    ASSERT_TRUE(strstr(s->last_request, "Authorization") == NULL);
    pthread_mutex_unlock(&s->lock);
    get(f, l, url, &res);
    pthread_mutex_lock(&s->lock);
    ASSERT_TRUE(strstr(s->last_request, "\r\nAuthorization: Basic dXNlcjpwQHNz\r\n") != NULL);
    pthread_mutex_unlock(&s->lock);
    snprintf(url, sizeof url, "http://127.0.0.1:%u", s->port); /* no path: "/" */
    get(f, l, url, &res);
    ASSERT_EQ_INT(res.status, 404);
    pthread_mutex_lock(&s->lock);
    ASSERT_TRUE(strncmp(s->last_request, "GET / HTTP/1.1\r\n", 16) == 0);
    pthread_mutex_unlock(&s->lock);
    fetch_free(&f);
}

/* Beyond the limits, transfers wait their turn: first come first served within a host, the
 * hosts in turn. */
static void test_queue(struct canned *s, struct loop *l)
{
    struct fetch_options o = {.max_per_host = 1, .max_total = 1};
    struct fetcher *f = fetch_new(l, &o);
    static struct result rs[12];
    int order[12], norder = 0;
    int c0 = counter(s, &s->conns);
    char url_local[128];
    snprintf(url_local, sizeof url_local, "http://localhost:%u/ok", s->port);
    for (int i = 0; i < 12; i++) {
        start_one(f, l, i % 4 == 3 ? url_local : url_of(s, "/ok"), &rs[i]);
        rs[i].index = i;
        rs[i].order = order;
        rs[i].norder = &norder;
    }
    ASSERT_EQ_INT(fetch_active(f), 12);
    /* Each done stops the loop: run it until all are. */
    struct guard g;
    guard_set(&g, l);
    while (norder < 12 && !g.fired)
        ASSERT_EQ_INT(loop_run(l), WM_OK);
    loop_timer_stop(l, &g.timer);
    ASSERT_EQ_INT(norder, 12);
    int at[12] = {0};
    for (int i = 0; i < norder; i++) {
        at[order[i]] = i;
        ASSERT_EQ_INT(rs[i].err, WM_OK);
        ASSERT_EQ_INT(rs[i].calls, 1);
    }
    /* Each host's transfers in the order they came; localhost's (3, 7, 11) served in turn with
     * the others, not after all of them: its last is done before 127.0.0.1's last three. */
    for (int i = 0; i + 4 < 12; i++)
        ASSERT_TRUE(at[i] < at[i + 4]);
    for (int i = 0; i < 3; i++)
        ASSERT_TRUE(at[i * 4] < at[i * 4 + 1] && at[i * 4 + 1] < at[i * 4 + 2]);
    ASSERT_TRUE(at[11] < at[9] && at[11] < at[10]);
    /* One connection at a time: a new one whenever the host changes. */
    ASSERT_TRUE(counter(s, &s->conns) - c0 >= 6 && counter(s, &s->conns) - c0 <= 7);
    ASSERT_EQ_INT(fetch_active(f), 0);

    /* Freed with transfers running and waiting: no callback, nothing leaked. */
    start_one(f, l, url_of(s, "/stall-head"), &rs[0]);
    start_one(f, l, url_of(s, "/ok"), &rs[1]);
    start_one(f, l, "ftp://x/", &rs[2]); /* failing, not yet told */
    ASSERT_EQ_INT(fetch_active(f), 3);
    fetch_free(&f);
    ASSERT_TRUE(f == NULL);
    ASSERT_TRUE(idle_turns(l, 100) < 10);
    ASSERT_EQ_INT(rs[0].calls + rs[1].calls + rs[2].calls, 0);
}

/* Runs the loop until norder reaches n (20 s at most). */
static void run_until(struct loop *l, const int *norder, int n)
{
    struct guard g;
    guard_set(&g, l);
    while (*norder < n && !g.fired)
        ASSERT_EQ_INT(loop_run(l), WM_OK);
    loop_timer_stop(l, &g.timer);
    ASSERT_EQ_INT(*norder, n);
}

/* The connection caps: per host, in all, and what is closed to make room. */
static void test_caps(struct canned *s, struct loop *l)
{
    static struct result rs[16];
    int order[16], norder = 0;
    char local_ok[128];
    snprintf(local_ok, sizeof local_ok, "http://localhost:%u/ok", s->port);

    /* Under the total cap, a transfer for another host never closes an idle connection: after
     * 127.0.0.1, then localhost, 127.0.0.1 again reuses its own. */
    struct fetch_options o = {.max_per_host = 2, .max_total = 2};
    struct fetcher *f = fetch_new(l, &o);
    int c0 = counter(s, &s->conns);
    GET_OK(f, l, s, "/ok", "hello");
    get(f, l, local_ok, &res);
    ASSERT_EQ_INT(res.err, WM_OK);
    GET_OK(f, l, s, "/ok", "hello");
    get(f, l, local_ok, &res);
    ASSERT_EQ_INT(res.err, WM_OK);
    ASSERT_EQ_INT(counter(s, &s->conns) - c0, 2);
    fetch_free(&f);

    /* At the total cap, the idle connection of another host makes room. */
    struct fetch_options one = {.max_per_host = 2, .max_total = 1};
    f = fetch_new(l, &one);
    c0 = counter(s, &s->conns);
    GET_OK(f, l, s, "/ok", "hello");
    get(f, l, local_ok, &res);
    ASSERT_EQ_INT(res.err, WM_OK);
    GET_OK(f, l, s, "/ok", "hello");
    ASSERT_EQ_INT(counter(s, &s->conns) - c0, 3);
    fetch_free(&f);

    /* The per-host cap holds however many transfers wait (no pipelining: each needs a
     * connection of its own), and a host with a queue of slow transfers (/split takes 40 ms)
     * does not hold up another's: localhost's, started last, is done long before them. */
    struct fetch_options capped = {.max_per_host = 2, .max_total = 64};
    f = fetch_new(l, &capped);
    c0 = counter(s, &s->conns);
    for (int i = 0; i < 12; i++) {
        start_one(f, l, i == 11 ? local_ok : url_of(s, "/split"), &rs[i]);
        rs[i].index = i;
        rs[i].order = order;
        rs[i].norder = &norder;
    }
    run_until(l, &norder, 12);
    ASSERT_EQ_INT(counter(s, &s->conns) - c0, 3); /* 2 for 127.0.0.1, 1 for localhost */
    ASSERT_TRUE(order[0] == 11 || order[1] == 11 || order[2] == 11);
    for (int i = 0; i < 11; i++) {
        ASSERT_EQ_INT(rs[i].err, WM_OK);
        ASSERT_EQ_STR(rs[i].body, "abcdef");
    }
    ASSERT_EQ_INT(rs[11].err, WM_OK);
    fetch_free(&f);
}

/* Starts n transfers of paths[i % npaths] with size hint hint at once, and runs the loop until
 * all are done; each must have the body wanted for its path. */
static void run_batch(struct fetcher *f, struct loop *l, struct canned *s, int n,
                      const char *const *paths, const char *const *bodies, int npaths, int64_t hint)
{
    static struct result rs[64];
    int order[64], norder = 0;
    ASSERT_TRUE(n <= 64);
    for (int i = 0; i < n && i < 64; i++) {
        rs[i].size_hint = hint;
        start_one(f, l, url_of(s, paths[i % npaths]), &rs[i]);
        rs[i].index = i;
        rs[i].order = order;
        rs[i].norder = &norder;
    }
    struct guard g;
    guard_set(&g, l);
    while (norder < n && !g.fired)
        ASSERT_EQ_INT(loop_run(l), WM_OK);
    loop_timer_stop(l, &g.timer);
    ASSERT_EQ_INT(norder, n);
    for (int i = 0; i < n && i < 64; i++) {
        if (rs[i].err != WM_OK) fprintf(stderr, "%s: %s\n", paths[i % npaths], rs[i].why);
        ASSERT_EQ_INT(rs[i].err, WM_OK);
        ASSERT_EQ_INT(rs[i].calls, 1);
        ASSERT_EQ_STR(rs[i].body, bodies[i % npaths]);
    }
    ASSERT_EQ_INT(fetch_active(f), 0);
}

/* Pipelining: small transfers share the connections that have kept alive; responses cut
 * anywhere across reads, servers that close with requests unanswered. */
static void test_pipelining(struct canned *s, struct loop *l)
{
    struct fetch_options o = {.max_per_host = 2, .pipeline = 4};
    struct fetcher *f = fetch_new(l, &o);
    ASSERT_TRUE(f != NULL);
    if (!f) return;
    static const char *const mixed[] = {"/ok", "/chunked", "/split", "/ok", "/split-chunks"};
    static const char *const mixed_bodies[] = {"hello", "Wikipedia in\r\n\r\nchunks.", "abcdef",
                                               "hello", "abcdef"};
    int c0 = counter(s, &s->conns), p0 = counter(s, &s->pipelined);
    run_batch(f, l, s, 40, mixed, mixed_bodies, 5, 5);
    ASSERT_TRUE(counter(s, &s->conns) - c0 <= 2);
    ASSERT_TRUE(counter(s, &s->pipelined) - p0 >= 10);

    /* Unknown or large sizes go one at a time. */
    p0 = counter(s, &s->pipelined);
    run_batch(f, l, s, 20, mixed, mixed_bodies, 5, -1);
    run_batch(f, l, s, 20, mixed, mixed_bodies, 5, 10 * 1024 * 1024);
    ASSERT_EQ_INT(counter(s, &s->pipelined) - p0, 0);

    /* A server that closes after the third response of each connection, and one that closes as
     * the second request comes: what was behind goes again, alone, and nothing fails. */
    static const char *const every3[] = {"/every3"}, *const ok2[] = {"ok"};
    p0 = counter(s, &s->pipelined);
    run_batch(f, l, s, 60, every3, ok2, 1, 2);
    ASSERT_TRUE(counter(s, &s->pipelined) - p0 > 0);
    static const char *const race[] = {"/race"}, *const race_body[] = {"race"};
    run_batch(f, l, s, 30, race, race_body, 1, 4);
    fetch_free(&f);
}

static void test_get_buffer(struct canned *s)
{
    char *body = NULL;
    size_t len = 0;
    long status = 0;
    ASSERT_EQ_INT(fetch_get_buffer(url_of(s, "/chunked"), 1024, &body, &len, &status), WM_OK);
    ASSERT_EQ_INT(status, 200);
    ASSERT_EQ_INT(len, 23);
    ASSERT_EQ_STR(body, "Wikipedia in\r\n\r\nchunks.");
    free(body);
    body = NULL;
    ASSERT_EQ_INT(fetch_get_buffer(url_of(s, "/404"), 1024, &body, &len, &status), WM_OK);
    ASSERT_EQ_INT(status, 404);
    ASSERT_EQ_STR(body, "");
    free(body);
    body = NULL;
    ASSERT_EQ_INT(fetch_get_buffer(url_of(s, "/ok"), 3, &body, &len, &status), WM_ERR_TOOBIG);
    ASSERT_TRUE(body == NULL);
    ASSERT_EQ_INT(fetch_get_buffer(url_of(s, "/chunked"), 10, &body, &len, &status), WM_ERR_TOOBIG);
    ASSERT_EQ_INT(fetch_get_buffer("http://127.0.0.1:1/x", 10, &body, &len, &status), WM_ERR_CONN);
    ASSERT_EQ_INT(fetch_get_buffer("gopher://127.0.0.1/x", 10, &body, &len, &status), WM_ERR_INVAL);
}

extern char **environ;

/* https from openssl s_server -WWW (HTTP/1.0, one connection at a time, a close_notify then
 * silence rather than a close) with a throwaway CA: fetched with cafile, refused without. */
static void test_https(struct loop *l)
{
    char dir[64] = "/tmp/wmesh-fetch-tls-XXXXXX", cmd[2048];
    if (!mkdtemp(dir)) return;
    snprintf(cmd, sizeof cmd,
             "(cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
             "-nodes -days 2 -subj /CN=ca -keyout ca.key -out ca.pem "
             "-addext basicConstraints=critical,CA:TRUE "
             "-addext keyUsage=critical,keyCertSign,cRLSign && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-subj /CN=127.0.0.1 -keyout server.key -out server.csr && "
             "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' >ext && "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-days 2 -extfile ext -out server.pem && mkdir www && printf 'secret bytes' "
             ">www/f.txt) >/dev/null 2>&1",
             dir);
    if (system("command -v openssl >/dev/null 2>&1") != 0 ||
        system(cmd) != 0) { /* the openssl program is a dependency, but not of every build */
        fprintf(stderr, "test_https: skipped (no openssl program, or it failed)\n");
        return;
    }
    unsigned port = 0;
    int probe = listen_loopback(1, &port);
    close(probe);
    char portarg[16], cert[128], key[128], www[128];
    snprintf(portarg, sizeof portarg, "%u", port);
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    snprintf(www, sizeof www, "%s/www", dir);
    char *argv[] = {"openssl", "s_server", "-accept", portarg,    "-cert", cert, "-key",
                    key,       "-WWW",     "-quiet",  "-naccept", "100",   NULL};
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *cwd = getcwd(NULL, 0);
    if (chdir(www) != 0 || posix_spawnp(&pid, "openssl", &fa, NULL, argv, environ) != 0) pid = 0;
    if (cwd && chdir(cwd) != 0) perror("chdir");
    free(cwd);
    posix_spawn_file_actions_destroy(&fa);
    ASSERT_TRUE(pid > 0);
    if (pid <= 0) return;
    char url[128], ca[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%u/f.txt", port);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    for (int i = 0; i < 50; i++) { /* until it listens */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok) break;
        sleep_ms(100);
    }
    struct fetch_options o = {.cafile = ca, .connect_timeout_ms = 5000, .low_speed_time_s = 5};
    struct fetcher *f = fetch_new(l, &o);
    char moved[160];
    snprintf(moved, sizeof moved, "%s.moved", ca);
    for (int i = 0; i < 3; i++) {
        get(f, l, url, &res);
        ASSERT_EQ_INT(res.err, WM_OK);
        ASSERT_EQ_STR(res.body, "secret bytes");
        /* s_server closes each connection: the next two are new ones, verified with what the
         * fetcher read from the CA file once. */
        if (i == 0) ASSERT_EQ_INT(rename(ca, moved), 0);
    }
    ASSERT_EQ_INT(rename(moved, ca), 0);
    fetch_free(&f);
    f = fetch_new(l, NULL); /* the system's CAs do not know ours */
    get(f, l, url, &res);
    ASSERT_EQ_INT(res.err, WM_ERR_PROTOCOL);
    ASSERT_TRUE(strstr(res.why, "certificate verify failed") != NULL);
    fetch_free(&f);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* TLS writes go through write(2) */
    test_embedded_server();
    struct canned s;
    ASSERT_TRUE(canned_start(&s));
    struct loop *l = loop_new();
    ASSERT_TRUE(l != NULL);
    test_framing(&s, l);
    test_failures(&s, l);
    test_timeouts(&s, l);
    test_redirects(&s, l);
    test_sizes(&s, l);
    test_queue(&s, l);
    test_caps(&s, l);
    test_pipelining(&s, l);
    test_get_buffer(&s);
    test_https(l);
    loop_free(&l);
    canned_stop(&s);
    return TEST_REPORT();
}
