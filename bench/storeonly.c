/* storeonly.c: the filesystem's ceiling for a relay: stores files the way a peer does (an
 * unnamed temporary file, its bytes, the checksum xattr, the mtime, linked into place under the
 * commit lock once the version held is found older or absent), with no network and no broker,
 * one after the other on one thread, and says how fast that went. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "integrity.h"
#include "tree.h"

#define USAGE                                                                                      \
    "usage: storeonly TREE COUNT SIZE\n"                                                           \
    "  Stores COUNT files of SIZE bytes as TREE/s/NNNNNNN.bin through tree.c (what a peer does\n"  \
    "  once a download is verified) and prints \"SECONDS FILES_PER_S USER_S SYSTEM_S\".\n"

static double seconds(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int store_one(struct tree *t, long i, const char *data, size_t size)
{
    char rel[64];
    snprintf(rel, sizeof rel, "s/%07ld.bin", i);
    struct wm_checksum sum;
    struct tree_tmp tmp;
    if (integrity_of_buffer(WM_SUM_SHA512, rel, data, size, &sum) != WM_OK ||
        tree_tmp_create(t, &tmp) != WM_OK)
        return -1;
    if (write(tmp.fd, data, size) != (ssize_t)size ||
        tree_tmp_set_time(&tmp, 1700000000000000000LL + i) != WM_OK ||
        tree_tmp_set_sum(&tmp, &sum, (int64_t)size) != WM_OK) {
        tree_tmp_discard(t, &tmp);
        return -1;
    }
    enum tree_outcome got;
    enum wm_err e = tree_tmp_commit_version(t, &tmp, rel, 1700000000000000000LL + i, &sum, &got);
    if (e == WM_OK && got != WM_TREE_STORED) errno = EEXIST; /* a tree stored into before */
    return e == WM_OK && got == WM_TREE_STORED ? 0 : -1;
}

int main(int argc, char **argv)
{
    char *end1, *end2;
    long count = argc == 4 ? strtol(argv[2], &end1, 10) : -1;
    long size = argc == 4 ? strtol(argv[3], &end2, 10) : -1;
    if (argc != 4 || *end1 || *end2 || count <= 0 || size < 0 || size > (1 << 20)) {
        fputs(USAGE, stderr);
        return 2;
    }
    struct tree *t = tree_open(argv[1]);
    char *data = malloc((size_t)size + 1);
    if (!t || !data) {
        fprintf(stderr, "storeonly: cannot open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    tree_set_sync(t, false); /* as the peer: durability is a tree round's, not each file's */
    for (long i = 0; i < size; i++)
        data[i] = (char)('a' + i % 26);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = monotonic();
    for (long i = 0; i < count; i++) {
        data[0] = (char)i; /* every file's bytes, and so its checksum, differ */
        if (store_one(t, i, data, (size_t)size) != 0) {
            fprintf(stderr, "storeonly: file %ld: %s\n", i, strerror(errno));
            return 1;
        }
    }
    double elapsed = monotonic() - t0;
    getrusage(RUSAGE_SELF, &r1);
    printf("%.3f %.0f %.2f %.2f\n", elapsed, (double)count / elapsed,
           seconds(&r1.ru_utime) - seconds(&r0.ru_utime),
           seconds(&r1.ru_stime) - seconds(&r0.ru_stime));
    tree_close(&t);
    free(data);
    return 0;
}
