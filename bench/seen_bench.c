/* seen_bench.c: memory per entry and time per operation of the seen-cache at a million entries. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "seen.h"

#define NOW_S 1700000000u /* a plausible "now" in seconds since the epoch */

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Keys as a peer makes them: distinct relPaths with one SHA-512 digest each. */
static uint64_t key_of(uint64_t i)
{
    struct wm_checksum sum = {.method = WM_SUM_SHA512, .len = 64};
    for (size_t j = 0; j < sizeof sum.value; j += sizeof i) {
        uint64_t v = i * 0x9e3779b97f4a7c15ull + j;
        memcpy(sum.value + j, &v, sizeof v);
    }
    char rel[96];
    snprintf(rel, sizeof rel, "20240101/WIS/CA/CMC/obs/%02" PRIu64 "/f%07" PRIu64 ".bufr", i % 24,
             i);
    return seen_key(rel, &sum);
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long n = argc > 1 ? strtol(argv[1], &end, 10) : 1000000;
    if (argc > 2 || (end && *end) || n < 1 || n > 100000000) {
        fputs("usage: seen_bench [ENTRIES]   (default 1000000)\n", stderr);
        return 2;
    }
    size_t entries = (size_t)n;
    uint64_t *keys = malloc(entries * sizeof *keys);
    struct seen *s = seen_new(entries, 86400);
    if (!keys || !s) {
        fprintf(stderr, "seen_bench: %s\n", strerror(errno));
        return 1;
    }
    double t0 = seconds();
    for (size_t i = 0; i < entries; i++)
        keys[i] = key_of(i);
    double t1 = seconds();
    for (size_t i = 0; i < entries; i++)
        if (seen_add(s, keys[i], NOW_S) != WM_OK) return 1;
    double t2 = seconds();
    size_t hits = 0;
    for (size_t i = 0; i < entries; i++)
        hits += seen_contains(s, keys[i], NOW_S + 1);
    double t3 = seconds();
    size_t misses = 0;
    for (size_t i = 0; i < entries; i++)
        misses += !seen_contains(s, ~keys[i], NOW_S + 1);
    double t4 = seconds();
    printf("seen: entries=%zu held=%zu evictions=%" PRIu64 " memory_bytes=%zu "
           "bytes_per_entry=%.2f key_ns=%.1f add_ns=%.1f hit_ns=%.1f miss_ns=%.1f "
           "hits=%zu misses=%zu\n",
           entries, seen_count(s), seen_evictions(s), seen_memory_bytes(s),
           (double)seen_memory_bytes(s) / (double)entries, (t1 - t0) * 1e9 / (double)entries,
           (t2 - t1) * 1e9 / (double)entries, (t3 - t2) * 1e9 / (double)entries,
           (t4 - t3) * 1e9 / (double)entries, hits, misses);
    seen_free(&s);
    free(keys);
    return 0;
}
