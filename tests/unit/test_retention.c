/* test_retention.c: durations, and a sweep that removes old files and empty directories only
 * inside the tree, never through symlinks or into dot-directories. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "retention.h"
#include "test.h"

static char base[64];

static void make_file(const char *rel, int64_t age_s)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ_INT(write(fd, "0123456789", 10), 10);
    struct timespec t[2];
    clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec -= age_s;
    t[1] = t[0];
    futimens(fd, t);
    close(fd);
}

static void age_dir(const char *rel, int64_t age_s)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    struct timespec t[2];
    clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec -= age_s;
    t[1] = t[0];
    utimensat(AT_FDCWD, path, t, 0);
}

static bool exists(const char *rel)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", base, rel);
    return lstat(path, &st) == 0;
}

int main(void)
{
    double s;
    ASSERT_EQ_INT(retention_parse_duration("24h", &s), WM_OK);
    ASSERT_TRUE(s == 86400);
    ASSERT_EQ_INT(retention_parse_duration("90m", &s), WM_OK);
    ASSERT_TRUE(s == 5400);
    ASSERT_EQ_INT(retention_parse_duration("7d", &s), WM_OK);
    ASSERT_EQ_INT(retention_parse_duration("3600", &s), WM_OK);
    ASSERT_EQ_INT(retention_parse_duration("10s", &s), WM_OK);
    ASSERT_EQ_INT(retention_parse_duration("0", &s), WM_ERR_INVAL);
    ASSERT_EQ_INT(retention_parse_duration("-1h", &s), WM_ERR_INVAL);
    ASSERT_EQ_INT(retention_parse_duration("1w", &s), WM_ERR_INVAL);
    ASSERT_EQ_INT(retention_parse_duration("1hh", &s), WM_ERR_INVAL);
    ASSERT_EQ_INT(retention_parse_duration("", &s), WM_ERR_INVAL);

    snprintf(base, sizeof base, "/tmp/wmesh-ret-XXXXXX");
    ASSERT_TRUE(mkdtemp(base) != NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/tree/old/deep %s/tree/new %s/tree/.wmesh-state %s/outside %s/tree/empty",
             base, base, base, base, base);
    ASSERT_EQ_INT(system(cmd), 0);
    make_file("tree/old/deep/a", 7200);
    make_file("tree/old/b", 7200);
    make_file("tree/new/c", 10);
    make_file("tree/top", 7200);
    make_file("tree/.wmesh-state/journal", 7200);
    make_file("outside/precious", 7200);
    snprintf(cmd, sizeof cmd, "ln -s %s/outside %s/tree/link", base, base);
    ASSERT_EQ_INT(system(cmd), 0);
    age_dir("tree/old/deep", 7200);
    age_dir("tree/old", 7200);
    age_dir("tree/empty", 7200);

    char tree[128];
    snprintf(tree, sizeof tree, "%s/tree", base);
    int fd = open(tree, O_RDONLY | O_DIRECTORY);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t cutoff = ((int64_t)now.tv_sec - 3600) * 1000000000;
    struct retention_stats st = {0};
    ASSERT_EQ_INT(retention_sweep(fd, cutoff, &st), WM_OK);
    ASSERT_EQ_INT(st.files, 3);
    ASSERT_EQ_INT(st.bytes, 30);
    ASSERT_TRUE(!exists("tree/old/deep/a"));
    ASSERT_TRUE(!exists("tree/old/b"));
    ASSERT_TRUE(!exists("tree/top"));
    ASSERT_TRUE(exists("tree/new/c"));
    ASSERT_TRUE(exists("tree/.wmesh-state/journal"));
    ASSERT_TRUE(exists("outside/precious"));
    ASSERT_TRUE(exists("tree/link"));
    /* An idle empty directory goes; one this sweep emptied was just modified: next sweep. */
    ASSERT_TRUE(!exists("tree/empty"));
    ASSERT_TRUE(exists("tree/old/deep"));
    ASSERT_EQ_INT(st.directories, 1);
    ASSERT_TRUE(exists("tree/new"));

    /* The same descriptor swept again (the daemon's thread does): new old files go too. */
    make_file("tree/new/late", 7200);
    struct retention_stats again = {0};
    ASSERT_EQ_INT(retention_sweep(fd, cutoff, &again), WM_OK);
    ASSERT_EQ_INT(again.files, 1);
    ASSERT_TRUE(!exists("tree/new/late"));
    close(fd);
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    ASSERT_EQ_INT(system(cmd), 0);
    return TEST_REPORT();
}
