/* test_loop.c: timers fire in order, stopped timers do not (even when due in the same turn),
 * fds and hooks are served. */
#include <unistd.h>

#include "loop.h"
#include "test.h"

static int order[8], norder;
static struct loop *L;

static void mark(void *arg)
{
    order[norder++] = (int)(long)arg;
    if (norder == 3) loop_stop(L);
}

static int hook_calls, reads;

static void hook(void *arg)
{
    (void)arg;
    hook_calls++;
}

static void on_read(void *arg, int fd, unsigned events)
{
    char c;
    (void)arg;
    if ((events & LOOP_READ) && read(fd, &c, 1) == 1) reads++;
    loop_unwatch(L, fd);
}

/* ---- timers stopped and started from callbacks ---- */

static struct loop_timer first, second, rearm;
static int second_fired, rearms, turns;

static void stops_second(void *arg)
{
    (void)arg;
    loop_timer_stop(L, &second); /* due in the same turn: it must not run */
}

static void fires(void *arg)
{
    (void)arg;
    second_fired++;
}

static void rearms_at_once(void *arg)
{
    (void)arg;
    if (++rearms < 3) loop_timer_start(L, &rearm, 0, rearms_at_once, NULL);
}

static void count_turn(void *arg)
{
    (void)arg;
    if (++turns == 10) loop_stop(L);
}

static void test_callbacks(void)
{
    L = loop_new();
    ASSERT_TRUE(L != NULL);
    loop_timer_start(L, &first, 0, stops_second, NULL);
    loop_timer_start(L, &second, 0, fires, NULL);
    ASSERT_TRUE(loop_timer_active(&second));
    /* Started again: moved, not doubled. */
    loop_timer_start(L, &rearm, 50, rearms_at_once, NULL);
    loop_timer_start(L, &rearm, 0, rearms_at_once, NULL);
    ASSERT_EQ_INT(loop_add_hook(L, count_turn, NULL), WM_OK);
    ASSERT_EQ_INT(loop_run(L), WM_OK);
    ASSERT_EQ_INT(second_fired, 0);
    ASSERT_TRUE(!loop_timer_active(&second) && !loop_timer_active(&first));
    /* A timer re-armed at 0 ms from its own callback runs once per turn, not in a loop. */
    ASSERT_EQ_INT(rearms, 3);
    ASSERT_TRUE(turns >= 3);
    loop_timer_stop(L, &second); /* stopping a stopped timer is fine */
    loop_remove_hook(L, count_turn, NULL);
    loop_free(&L);
}

int main(void)
{
    L = loop_new();
    ASSERT_TRUE(L != NULL);
    struct loop_timer t3 = {0}, t1 = {0}, never = {0}, t2 = {0};
    ASSERT_TRUE(!loop_timer_active(&never));
    loop_timer_start(L, &t3, 30, mark, (void *)3L);
    loop_timer_start(L, &t1, 0, mark, (void *)1L);
    loop_timer_start(L, &never, 5, mark, (void *)99L);
    loop_timer_start(L, &t2, 10, mark, (void *)2L);
    ASSERT_TRUE(loop_timer_active(&never));
    loop_timer_stop(L, &never);
    ASSERT_TRUE(!loop_timer_active(&never));
    ASSERT_EQ_INT(loop_add_hook(L, hook, NULL), WM_OK);
    int fds[2];
    ASSERT_EQ_INT(pipe(fds), 0);
    ASSERT_EQ_INT(write(fds[1], "x", 1), 1);
    ASSERT_EQ_INT(loop_watch(L, fds[0], LOOP_READ, on_read, NULL), WM_OK);
    ASSERT_EQ_INT(loop_run(L), WM_OK);
    ASSERT_EQ_INT(norder, 3);
    ASSERT_EQ_INT(order[0], 1);
    ASSERT_EQ_INT(order[1], 2);
    ASSERT_EQ_INT(order[2], 3);
    ASSERT_EQ_INT(reads, 1);
    ASSERT_TRUE(hook_calls >= 1);
    loop_remove_hook(L, hook, NULL);
    close(fds[0]);
    close(fds[1]);
    loop_free(&L);
    test_callbacks();
    return TEST_REPORT();
}
