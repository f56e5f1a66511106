/* test_loop.c: timers fire in order, cancelled timers do not, fds and hooks are served. */
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

int main(void)
{
    L = loop_new();
    ASSERT_TRUE(L != NULL);
    loop_timer_add(L, 30, mark, (void *)3L);
    loop_timer_add(L, 0, mark, (void *)1L);
    struct loop_timer *never = loop_timer_add(L, 5, mark, (void *)99L);
    loop_timer_add(L, 10, mark, (void *)2L);
    loop_timer_cancel(L, &never);
    ASSERT_TRUE(never == NULL);
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
    return TEST_REPORT();
}
