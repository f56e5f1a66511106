/* test_fetch.c: downloads on the event loop from the embedded server: many transfers over a few
 * keep-alive connections, idle connections closed by the server (the loop must not spin on
 * them), refused connections, and freeing a fetcher that holds idle connections. */
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"
#include "httpd.h"
#include "loop.h"
#include "test.h"
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
        if (fetch_start(r->f, url, on_data, on_done, j) != WM_OK) {
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
    if (r->running > 0) loop_run(r->loop);
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
    loop_add_hook(l, count_turn, &turns);
    loop_timer_add(l, ms, stop_loop, l);
    loop_run(l);
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
    return tree_tmp_commit(t, &tmp, rel, NULL);
}

int main(void)
{
    snprintf(base, sizeof base, "/tmp/wmesh-fetch-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    char root[128];
    snprintf(root, sizeof root, "%s/tree", base);
    struct tree *t = tree_open(root);
    ASSERT_TRUE(t != NULL);
    if (!t) return TEST_REPORT();
    tree_set_sync(t, false);
    for (int i = 0; i < NFILES; i++) {
        char rel[32];
        snprintf(rel, sizeof rel, "f/%d", i);
        ASSERT_EQ_INT(put(t, rel, size_of(i)), WM_OK);
    }
    enum wm_err err = WM_ERR_LIB;
    struct httpd *h = httpd_start("127.0.0.1:0", t, "/data", &err);
    ASSERT_TRUE(h != NULL);
    if (!h) return TEST_REPORT();
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
    return TEST_REPORT();
}
