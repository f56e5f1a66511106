/* test_deadletter.c: the file of set-aside announcements: round trip, torn lines, refusals. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deadletter.h"
#include "test.h"

static char dir[64];
static char path[128];

struct got {
    size_t n;
    char topic[4][128];
    char message[4][256];
    size_t len[4];
    int attempts[4];
    char reason[4][128];
    int64_t time_ns[4];
};

static void collect(void *arg, const struct deadletter *d)
{
    struct got *g = arg;
    if (g->n == 4) abort();
    snprintf(g->topic[g->n], sizeof g->topic[0], "%s", d->topic);
    snprintf(g->message[g->n], sizeof g->message[0], "%.*s", (int)d->len, d->message);
    snprintf(g->reason[g->n], sizeof g->reason[0], "%s", d->reason);
    g->len[g->n] = d->len;
    g->attempts[g->n] = d->attempts;
    g->time_ns[g->n++] = d->time_ns;
}

static void append_raw(const char *text)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) abort();
    close(fd);
}

static void test_round_trip(void)
{
    unlink(path);
    struct got g = {0};
    ASSERT_EQ_INT(deadletter_each(path, collect, &g, NULL), WM_ERR_NOTFOUND);
    const char *msg = "{\"relPath\":\"a.b/x y\",\"note\":\"quote \\\" and \\n\"}";
    struct deadletter d = {.time_ns = INT64_C(1767225600123000000),
                           .topic = "xpublic/v03/post/a.b/x y",
                           .message = msg,
                           .len = strlen(msg),
                           .attempts = 4,
                           .reason = "not authorized"};
    ASSERT_EQ_INT(deadletter_append(path, &d), WM_OK);
    struct stat st;
    ASSERT_EQ_INT(stat(path, &st), 0);
    ASSERT_EQ_INT(st.st_mode & 0777, 0600);
    /* A line torn by a crash, then a line of something else: skipped and counted. */
    append_raw("{\"time\":\"2026-01-01T00:00:00Z\",\"topic\":\"t\",\"si");
    append_raw("\n[1,2]\n");
    d.topic = "xpublic/v03/post/big";
    d.attempts = 1;
    d.reason = "packet too large: 900 bytes, the broker's maximum is 256";
    ASSERT_EQ_INT(deadletter_append(path, &d), WM_OK);
    size_t bad = 0;
    ASSERT_EQ_INT(deadletter_each(path, collect, &g, &bad), WM_OK);
    ASSERT_EQ_INT(g.n, 2);
    ASSERT_EQ_INT(bad, 2);
    ASSERT_EQ_STR(g.topic[0], "xpublic/v03/post/a.b/x y");
    ASSERT_EQ_STR(g.message[0], msg);
    ASSERT_EQ_INT(g.len[0], strlen(msg));
    ASSERT_EQ_INT(g.attempts[0], 4);
    ASSERT_EQ_STR(g.reason[0], "not authorized");
    ASSERT_EQ_INT(g.time_ns[0], INT64_C(1767225600123000000));
    ASSERT_EQ_STR(g.topic[1], "xpublic/v03/post/big");
    ASSERT_EQ_INT(g.attempts[1], 1);
}

static void test_refusals(void)
{
    struct deadletter d = {.topic = "t", .message = "\xff\xfe", .len = 2, .reason = "r"};
    ASSERT_EQ_INT(deadletter_append(path, &d), WM_ERR_FORMAT); /* not UTF-8 */
    d.message = "{}";
    d.reason = NULL;
    ASSERT_EQ_INT(deadletter_append(path, &d), WM_ERR_INVAL);
    d.reason = "r";
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/no/such/file", dir);
    ASSERT_EQ_INT(deadletter_append(nodir, &d), WM_ERR_IO);
    ASSERT_EQ_INT(errno, ENOENT);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/wm-deadletter-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/outbox-set-aside", dir);
    test_round_trip();
    test_refusals();
    unlink(path);
    rmdir(dir);
    return TEST_REPORT();
}
