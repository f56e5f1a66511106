/* test_syncer.c: work runs on the syncer's thread and its done call on the loop, one at a time;
 * syncer_free waits for work in progress and makes its done call; the thread never takes a
 * signal meant for the loop (a SIGTERM there would kill the process without its clean stop). */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "syncer.h"
#include "test.h"

struct run {
    struct loop *loop;
    struct syncer *s;
    pthread_t loop_thread;
    pthread_t work_thread;
    int works, dones;
    bool done_on_loop_thread;
    bool busy_in_done;
    enum wm_err result;
    int sleep_ms;
};

static enum wm_err work(void *arg)
{
    struct run *r = arg;
    r->work_thread = pthread_self();
    if (r->sleep_ms) usleep((useconds_t)r->sleep_ms * 1000);
    r->works++;
    return r->works == 2 ? WM_ERR_IO : WM_OK;
}

static void done(void *arg, enum wm_err result)
{
    struct run *r = arg;
    r->dones++;
    r->result = result;
    r->done_on_loop_thread = pthread_equal(pthread_self(), r->loop_thread);
    r->busy_in_done = syncer_busy(r->s);
    if (r->loop) loop_stop(r->loop);
}

static void test_round_trips(void)
{
    struct run r = {.loop = loop_new(), .loop_thread = pthread_self()};
    ASSERT_TRUE(r.loop != NULL);
    r.s = syncer_new(r.loop, "test-syncer");
    ASSERT_TRUE(r.s != NULL);
    if (!r.loop || !r.s) return;
    ASSERT_TRUE(!syncer_busy(r.s));
    ASSERT_EQ_INT(syncer_start(r.s, work, done, &r), WM_OK);
    ASSERT_TRUE(syncer_busy(r.s));
    ASSERT_EQ_INT(syncer_start(r.s, work, done, &r), WM_ERR_INVAL); /* one at a time */
    ASSERT_EQ_INT(r.dones, 0);                                      /* never from inside start */
    ASSERT_EQ_INT(loop_run(r.loop), WM_OK);
    ASSERT_EQ_INT(r.works, 1);
    ASSERT_EQ_INT(r.dones, 1);
    ASSERT_EQ_INT(r.result, WM_OK);
    ASSERT_TRUE(r.done_on_loop_thread);
    ASSERT_TRUE(!r.busy_in_done); /* the next may start from the done call */
    ASSERT_TRUE(!pthread_equal(r.work_thread, r.loop_thread));

    /* The result travels; a second round reuses the thread. */
    ASSERT_EQ_INT(syncer_start(r.s, work, done, &r), WM_OK);
    ASSERT_EQ_INT(loop_run(r.loop), WM_OK);
    ASSERT_EQ_INT(r.dones, 2);
    ASSERT_EQ_INT(r.result, WM_ERR_IO);

    /* syncer_free while work runs: it waits and makes the done call itself. */
    r.sleep_ms = 100;
    ASSERT_EQ_INT(syncer_start(r.s, work, done, &r), WM_OK);
    syncer_free(&r.s);
    ASSERT_TRUE(r.s == NULL);
    ASSERT_EQ_INT(r.works, 3);
    ASSERT_EQ_INT(r.dones, 3);
    ASSERT_TRUE(r.done_on_loop_thread);
    loop_free(&r.loop);
    syncer_free(&r.s); /* NULL: a no-op */
}

/* How many threads of this process are named name, and how many of those block SIGTERM (by
 * name: a sanitizer's runtime may run threads of its own). */
static int named_threads_blocking_sigterm(const char *name, int *named)
{
    DIR *d = opendir("/proc/self/task");
    int blocking = 0;
    *named = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], line[256];
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        bool is_named = false;
        while (fgets(line, sizeof line, f)) {
            char comm[64];
            unsigned long long mask;
            if (sscanf(line, "Name: %63s", comm) == 1) is_named = strcmp(comm, name) == 0;
            if (is_named && sscanf(line, "SigBlk: %llx", &mask) == 1) {
                (*named)++;
                if (mask & (1ull << (SIGTERM - 1))) blocking++;
            }
        }
        fclose(f);
    }
    closedir(d);
    return blocking;
}

static void test_thread_blocks_signals(void)
{
    /* The caller's mask lets SIGTERM through, as the peer's does when its syncers start. */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &term, &old);
    struct loop *loop = loop_new();
    struct syncer *s = syncer_new(loop, "test-syncer");
    ASSERT_TRUE(s != NULL);
    /* thread_start names the thread before it returns; polled (up to 5 s) all the same, as the
     * thread also names itself as it starts. */
    int named = 0, blocking = 0;
    for (int i = 0; i < 500 && named == 0; i++) {
        blocking = named_threads_blocking_sigterm("test-syncer", &named);
        if (named == 0) usleep(10000);
    }
    ASSERT_EQ_INT(named, 1);
    ASSERT_EQ_INT(blocking, 1);
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    ASSERT_TRUE(!sigismember(&now, SIGTERM)); /* the caller's own mask is left alone */
    syncer_free(&s);
    loop_free(&loop);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int main(void)
{
    test_thread_blocks_signals();
    test_round_trips();
    return TEST_REPORT();
}
