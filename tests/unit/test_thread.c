/* test_thread.c: a thread from thread_start blocks every signal whatever its creator's mask (a
 * SIGTERM taken there would end the peer without its clean stop), carries its name (cut to 15
 * characters), and leaves its creator's mask as it was. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>

#include "test.h"
#include "thread.h"

struct seen_inside {
    bool term_blocked, int_blocked, hup_blocked;
    char name[16];
};

static void *look_inside(void *arg)
{
    struct seen_inside *s = arg;
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    s->term_blocked = sigismember(&now, SIGTERM) == 1;
    s->int_blocked = sigismember(&now, SIGINT) == 1;
    s->hup_blocked = sigismember(&now, SIGHUP) == 1;
    pthread_getname_np(pthread_self(), s->name, sizeof s->name);
    return NULL;
}

static void test_mask_and_name(const char *name, const char *expected)
{
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &term, &old);
    struct seen_inside s = {0};
    pthread_t t;
    ASSERT_EQ_INT(thread_start(&t, name, look_inside, &s), WM_OK);
    pthread_join(t, NULL);
    ASSERT_TRUE(s.term_blocked);
    ASSERT_TRUE(s.int_blocked);
    ASSERT_TRUE(s.hup_blocked);
    ASSERT_EQ_STR(s.name, expected);
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    ASSERT_TRUE(!sigismember(&now, SIGTERM));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int main(void)
{
    test_mask_and_name("wmesh-tree", "wmesh-tree");
    test_mask_and_name("wmesh-a-very-long-thread-name", "wmesh-a-very-lo");
    pthread_t t;
    ASSERT_EQ_INT(thread_start(&t, NULL, look_inside, NULL), WM_ERR_INVAL);
    return TEST_REPORT();
}
