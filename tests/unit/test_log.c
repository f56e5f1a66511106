/* test_log.c: log lines, whole and in order, written at once or batched until log_flush(), from
 * several threads, and flushed at a clean exit. */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "test.h"

static int pipe_rd = -1; /* stderr goes into this pipe's write end */

/* Everything in the pipe now (it never blocks), as a string. */
static size_t drain(char *out, size_t cap)
{
    size_t used = 0;
    for (;;) {
        ssize_t n = read(pipe_rd, out + used, cap - 1 - used);
        if (n <= 0) break;
        used += (size_t)n;
    }
    out[used] = '\0';
    return used;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (*s == '\n') n++;
    return n;
}

/* True when the messages appear in s in this order. */
static bool in_order(const char *s, const char *a, const char *b)
{
    const char *pa = strstr(s, a), *pb = strstr(s, b);
    return pa && pb && pa < pb;
}

static char text[1 << 16];

static void test_unbatched(void)
{
    log_info("plain one");
    ASSERT_TRUE(drain(text, sizeof text) > 0);
    ASSERT_TRUE(strstr(text, " info plain one\n") != NULL);
    /* The whole line: UTC time to the millisecond, level, message. */
    regex_t re;
    ASSERT_EQ_INT(regcomp(&re,
                          "^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
                          "\\.[0-9]{3}Z info plain one\n$",
                          REG_EXTENDED | REG_NOSUB),
                  0);
    ASSERT_EQ_INT(regexec(&re, text, 0, NULL, 0), 0);
    regfree(&re);
    log_debug("not shown");
    ASSERT_EQ_INT(drain(text, sizeof text), 0);
}

static void test_batched(void)
{
    log_batch(true);
    log_info("first");
    log_info("second");
    ASSERT_EQ_INT(drain(text, sizeof text), 0); /* held until the flush */
    log_flush();
    drain(text, sizeof text);
    ASSERT_EQ_INT(count_lines(text), 2);
    ASSERT_TRUE(in_order(text, "first\n", "second\n"));
    log_flush(); /* nothing waiting: nothing written */
    ASSERT_EQ_INT(drain(text, sizeof text), 0);

    /* A warning goes out at once, after the lines waiting before it. */
    log_info("before the warning");
    log_warn("the warning");
    drain(text, sizeof text);
    ASSERT_EQ_INT(count_lines(text), 2);
    ASSERT_TRUE(in_order(text, "before the warning\n", " warn the warning\n"));
    log_info("before the error");
    log_error("the error");
    drain(text, sizeof text);
    ASSERT_TRUE(in_order(text, "before the error\n", " error the error\n"));

    /* Turning batching off flushes. */
    log_info("pending at the end");
    log_batch(false);
    drain(text, sizeof text);
    ASSERT_TRUE(strstr(text, "pending at the end\n") != NULL);
    log_info("unbatched again");
    ASSERT_TRUE(drain(text, sizeof text) > 0);
}

/* A full batch is written without waiting for the flush, in whole lines of at most
 * PIPE_BUF bytes per write. */
static void test_full_batch(void)
{
    char filler[200];
    memset(filler, 'x', sizeof filler - 1);
    filler[sizeof filler - 1] = '\0';
    log_batch(true);
    for (int i = 0; i < 100; i++)
        log_info("line %03d %s", i, filler);
    size_t early = drain(text, sizeof text);
    ASSERT_TRUE(early > 0);
    ASSERT_TRUE(early > (size_t)PIPE_BUF - 300);
    ASSERT_TRUE(early > 0 && text[early - 1] == '\n');
    size_t first = count_lines(text);
    ASSERT_TRUE(first < 100); /* the last lines wait for the flush */
    log_flush();
    drain(text, sizeof text);
    ASSERT_EQ_INT(first + count_lines(text), 100);
    ASSERT_TRUE(strstr(text, "line 099 ") != NULL);
    log_batch(false);

    /* A line as long as a record can be still fits. */
    char big[3000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_batch(true);
    log_info("short");
    log_info("%s", big);
    log_info("%s", big);
    log_batch(false);
    drain(text, sizeof text);
    ASSERT_EQ_INT(count_lines(text), 3);
}

static void *other_thread(void *arg)
{
    (void)arg;
    log_info("from another thread");
    return NULL;
}

/* Lines of other threads are written at once, after those the batching thread holds. */
static void test_threads(void)
{
    log_batch(true);
    log_info("held by the loop thread");
    pthread_t th;
    ASSERT_EQ_INT(pthread_create(&th, NULL, other_thread, NULL), 0);
    pthread_join(th, NULL);
    drain(text, sizeof text);
    ASSERT_EQ_INT(count_lines(text), 2);
    ASSERT_TRUE(in_order(text, "held by the loop thread\n", "from another thread\n"));
    log_batch(false);
}

/* A clean exit writes what waits; _exit (as after SIGKILL) loses it. */
static void test_exit(bool clean)
{
    pid_t pid = fork();
    if (pid == 0) {
        log_batch(true);
        log_info("last words");
        if (clean) exit(0);
        _exit(0);
    }
    int status = 0;
    ASSERT_TRUE(pid > 0 && waitpid(pid, &status, 0) == pid);
    drain(text, sizeof text);
    ASSERT_EQ_INT(strstr(text, "last words\n") != NULL, clean);
}

int main(void)
{
    int fds[2];
    if (pipe(fds) < 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0 ||
        fcntl(fds[1], F_SETPIPE_SZ, 1 << 20) < 0) {
        perror("pipe");
        return 1;
    }
    /* The log writes to descriptor 2, the pipe; the harness to the stream stderr, the terminal
     * (glibc lets a program point stderr elsewhere). */
    int saved = dup(STDERR_FILENO);
    FILE *terminal = saved >= 0 ? fdopen(saved, "w") : NULL;
    if (!terminal || dup2(fds[1], STDERR_FILENO) < 0) {
        perror("dup");
        return 1;
    }
    setvbuf(terminal, NULL, _IONBF, 0);
    stderr = terminal;
    close(fds[1]);
    pipe_rd = fds[0];

    test_unbatched();
    test_batched();
    test_full_batch();
    test_threads();
    test_exit(true);
    test_exit(false);

    dup2(saved, STDERR_FILENO);
    return TEST_REPORT();
}
