/* test_hasher.c: files written piece by piece while the hasher's thread reads them back hash to
 * what the same bytes hash to in one go, for several files at once, rounds large and small, one
 * of them handed over after the caller hashed its start; a
 * task ended without the rest ends as soon as no round runs on it; a file that cannot be read
 * back ends its task with WM_ERR_IO; hasher_free frees tasks never ended. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hasher.h"
#include "integrity.h"
#include "loop.h"
#include "test.h"

#define NFILES 3

struct file {
    int fd;
    size_t size, written;
    unsigned char *bytes;
    struct integrity_ctx *ctx;
    struct hasher_task *task;
    bool done;
    enum wm_err result;
    struct loop *stop; /* stopped by the done call, when set */
};

struct run {
    struct loop *loop;
    struct hasher *h;
    struct file f[NFILES];
    int dones;
    unsigned seed;
    struct loop_timer writer;
};

static int temp_file(void)
{
    char path[] = "/tmp/test_hasher.XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) unlink(path);
    return fd;
}

static void fill(unsigned char *b, size_t n, unsigned *seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(rand_r(seed) >> 7);
}

static void on_done(void *arg, enum wm_err result)
{
    struct file *f = arg;
    f->done = true;
    f->result = result;
    if (f->stop) loop_stop(f->stop);
}

static bool all_done(const struct run *r)
{
    for (int i = 0; i < NFILES; i++)
        if (!r->f[i].done) return false;
    return true;
}

/* A timer: writes the next piece of each file (from a few bytes to 2 MiB), as downloads do
 * between loop turns, and ends each file's task once it is whole. */
static void write_some(void *arg)
{
    struct run *r = arg;
    for (int i = 0; i < NFILES; i++) {
        struct file *f = &r->f[i];
        if (!f->task) continue;
        size_t left = f->size - f->written;
        size_t n = (size_t)rand_r(&r->seed) % (2u << 20);
        if (n > left) n = left;
        ASSERT_EQ_INT(pwrite(f->fd, f->bytes + f->written, n, (off_t)f->written), (ssize_t)n);
        f->written += n;
        hasher_task_grow(f->task, f->written);
        if (f->written == f->size) {
            struct hasher_task *t = f->task;
            f->task = NULL;
            hasher_task_end(t, true, on_done, f);
        }
    }
    if (all_done(r))
        loop_stop(r->loop);
    else
        loop_timer_start(r->loop, &r->writer, 0, write_some, r);
}

static void test_files_hash_as_in_one_go(void)
{
    static const size_t sizes[NFILES] = {9u << 20, (3u << 20) + 777, 0};
    struct run r = {.loop = loop_new(), .seed = 42};
    r.h = hasher_new(r.loop);
    ASSERT_TRUE(r.loop && r.h);
    if (!r.loop || !r.h) return;
    const struct wm_checksum sha512 = {.method = WM_SUM_SHA512};
    for (int i = 0; i < NFILES; i++) {
        struct file *f = &r.f[i];
        f->fd = temp_file();
        f->size = sizes[i];
        f->bytes = malloc(f->size + 1);
        fill(f->bytes, f->size, &r.seed);
        f->ctx = integrity_begin(&sha512, "x");
        if (i == 1) { /* the caller hashed the start itself: the task goes on from there */
            f->written = (1u << 20) + 11;
            ASSERT_EQ_INT(pwrite(f->fd, f->bytes, f->written, 0), (ssize_t)f->written);
            integrity_update(f->ctx, f->bytes, f->written);
        }
        f->task = hasher_task_new(r.h, f->fd, f->ctx, f->written);
        ASSERT_TRUE(f->fd >= 0 && f->ctx && f->task);
    }
    loop_timer_start(r.loop, &r.writer, 0, write_some, &r);
    ASSERT_EQ_INT(loop_run(r.loop), WM_OK);
    for (int i = 0; i < NFILES; i++) {
        struct file *f = &r.f[i];
        struct wm_checksum got, want;
        ASSERT_EQ_INT(f->result, WM_OK);
        ASSERT_EQ_INT(integrity_finish(&f->ctx, &got), WM_OK);
        ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA512, "x", f->bytes, f->size, &want), WM_OK);
        ASSERT_TRUE(integrity_equal(&got, &want));
        close(f->fd);
        free(f->bytes);
    }
    hasher_free(&r.h);
    ASSERT_TRUE(r.h == NULL);
    loop_free(&r.loop);
}

/* Without the rest, a task ends at once when no round runs on it, else when its round returns;
 * either way its done call comes on the loop and the hasher goes on with the others. */
static void test_end_without_rest(void)
{
    struct loop *loop = loop_new();
    struct hasher *h = hasher_new(loop);
    const struct wm_checksum md5 = {.method = WM_SUM_MD5};
    int fd = temp_file();
    size_t size = 6u << 20;
    unsigned char *bytes = calloc(1, size);
    ASSERT_EQ_INT(pwrite(fd, bytes, size, 0), (ssize_t)size);
    struct integrity_ctx *ctx = integrity_begin(&md5, "x");
    struct hasher_task *t = hasher_task_new(h, fd, ctx, 0);
    struct file f = {.stop = loop};
    hasher_task_grow(t, size); /* a round starts */
    hasher_task_end(t, false, on_done, &f);
    ASSERT_TRUE(!f.done); /* its round runs */
    ASSERT_EQ_INT(loop_run(loop), WM_OK);
    ASSERT_TRUE(f.done);
    ASSERT_EQ_INT(f.result, WM_OK);
    integrity_abort(&ctx);

    /* Nothing waiting: ended from inside the call. */
    ctx = integrity_begin(&md5, "x");
    t = hasher_task_new(h, fd, ctx, 0);
    struct file g = {0};
    hasher_task_end(t, false, on_done, &g);
    ASSERT_TRUE(g.done);
    integrity_abort(&ctx);
    close(fd);
    free(bytes);
    hasher_free(&h);
    loop_free(&loop);
}

/* A file that cannot be read back (here: open for writing only) ends its task with WM_ERR_IO. */
static void test_unreadable_file(void)
{
    struct loop *loop = loop_new();
    struct hasher *h = hasher_new(loop);
    const struct wm_checksum sha256 = {.method = WM_SUM_SHA256};
    char path[] = "/tmp/test_hasher.XXXXXX";
    int rw = mkstemp(path);
    int wo = open(path, O_WRONLY);
    unlink(path);
    ASSERT_TRUE(rw >= 0 && wo >= 0);
    static unsigned char zeros[2u << 20];
    ASSERT_EQ_INT(pwrite(rw, zeros, sizeof zeros, 0), (ssize_t)sizeof zeros);
    struct integrity_ctx *ctx = integrity_begin(&sha256, "x");
    struct hasher_task *t = hasher_task_new(h, wo, ctx, 0);
    struct file f = {.stop = loop};
    hasher_task_grow(t, sizeof zeros);
    hasher_task_end(t, true, on_done, &f);
    ASSERT_EQ_INT(loop_run(loop), WM_OK);
    ASSERT_TRUE(f.done);
    ASSERT_EQ_INT(f.result, WM_ERR_IO);
    integrity_abort(&ctx);

    /* Tasks never ended are freed with the hasher, without their done calls. */
    struct integrity_ctx *c2 = integrity_begin(&sha256, "x");
    struct file g = {0};
    t = hasher_task_new(h, rw, c2, 0);
    hasher_task_grow(t, sizeof zeros);
    struct hasher_task *t2 = hasher_task_new(h, rw, c2, 0);
    ASSERT_TRUE(t && t2);
    hasher_free(&h);
    ASSERT_TRUE(!g.done);
    integrity_abort(&c2);
    close(rw);
    close(wo);
    loop_free(&loop);
}

int main(void)
{
    test_files_hash_as_in_one_go();
    test_end_without_rest();
    test_unreadable_file();
    return TEST_REPORT();
}
