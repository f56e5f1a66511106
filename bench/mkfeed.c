/* mkfeed.c: makes the files of a benchmark and their v03 announcements, one message per line. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "announce.h"
#include "codec.h"
#include "fdio.h"
#include "integrity.h"
#include "loop.h"

#define USAGE                                                                                      \
    "usage: mkfeed TREE BASEURL TAG COUNT SIZE DIRS OUTDIR\n"                                      \
    "  Writes COUNT files of SIZE pseudo-random bytes as TREE/TAG/dNN/TAG-NNNNNNN.bin, spread\n"   \
    "  over DIRS directories, and for each directory dNN OUTDIR/TAG-dNN.msgs: one v03\n"           \
    "  announcement (sha512, baseUrl BASEURL, pubTime now) per line. OUTDIR/TAG.topics gets\n"     \
    "  one line per directory, \"TOPIC MSGFILE\"; OUTDIR/TAG.list the relPaths. SIZE may be\n"     \
    "  MIN-MAX: sizes drawn evenly from MIN to MAX bytes (the same ones at every run).\n"

#define CHUNK (1024 * 1024)

/* splitmix64: fast, and every seed gives a different stream. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int parse_size(const char *text, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < 0 || v > max) return -1;
    *out = v;
    return 0;
}

static int mkdirs(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof buf) return -1;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Writes size pseudo-random bytes to path, hashing them on the way; sum gets the SHA-512. */
static int write_file(const char *path, long long size, uint64_t seed, unsigned char *buf,
                      struct wm_checksum *sum)
{
    struct wm_checksum like = {.method = WM_SUM_SHA512};
    struct integrity_ctx *ctx = integrity_begin(&like, NULL);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!ctx || fd < 0) goto fail;
    uint64_t state = seed;
    for (long long done = 0; done < size;) {
        size_t n = size - done < CHUNK ? (size_t)(size - done) : CHUNK;
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = next_random(&state);
            memcpy(buf + i, &r, n - i < 8 ? n - i : 8);
        }
        integrity_update(ctx, buf, n);
        if (fdio_write_all(fd, buf, n) < 0) goto fail;
        done += (long long)n;
    }
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    return integrity_finish(&ctx, sum) == WM_OK ? 0 : -1;
fail:
    fprintf(stderr, "mkfeed: %s: %s\n", path, strerror(errno));
    if (fd >= 0) close(fd);
    integrity_abort(&ctx);
    return -1;
}

/* Encodes the announcement of one file as a single line on out. */
static int write_message(FILE *out, const char *base_url, const char *rel, long long size,
                         const struct wm_checksum *sum)
{
    struct announce *a = announce_new();
    char *text = NULL;
    size_t len = 0;
    int rc = -1;
    if (!a) goto done;
    a->pubtime_ns = loop_wall_ns();
    a->pubtime_digits = 6;
    a->size = size;
    a->sum = *sum;
    a->base_url = strdup(base_url);
    a->rel_path = strdup(rel);
    if (!a->base_url || !a->rel_path) goto done;
    if (codec_encode(a, WM_FORMAT_V03, &text, &len) != WM_OK) goto done;
    if (memchr(text, '\n', len)) goto done; /* mosquitto_pub -l sends one message per line */
    if (fwrite(text, 1, len, out) != len || fputc('\n', out) == EOF) goto done;
    rc = 0;
done:
    if (rc != 0) fprintf(stderr, "mkfeed: cannot encode the announcement of %s\n", rel);
    free(text);
    announce_free(&a);
    return rc;
}

static FILE *open_out(const char *outdir, const char *tag, const char *suffix)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s%s", outdir, tag, suffix);
    if (n < 0 || (size_t)n >= sizeof path) return NULL;
    FILE *f = fopen(path, "w");
    if (!f) fprintf(stderr, "mkfeed: %s: %s\n", path, strerror(errno));
    return f;
}

int main(int argc, char **argv)
{
    long long count, size, size_max, dirs;
    char size_text[64];
    char *dash = argc == 8 ? strchr(argv[5], '-') : NULL;
    snprintf(size_text, sizeof size_text, "%s", argc == 8 ? argv[5] : "");
    if (dash && (size_t)(dash - argv[5]) < sizeof size_text) size_text[dash - argv[5]] = '\0';
    if (argc != 8 || parse_size(argv[4], 100000000, &count) ||
        parse_size(size_text, LLONG_MAX, &size) ||
        parse_size(dash ? dash + 1 : size_text, LLONG_MAX, &size_max) || size_max < size ||
        parse_size(argv[6], 1000, &dirs) || dirs < 1 || count < 1) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *tree = argv[1], *base_url = argv[2], *tag = argv[3], *outdir = argv[7];
    unsigned char *buf = malloc(CHUNK);
    FILE *topics = open_out(outdir, tag, ".topics"), *list = open_out(outdir, tag, ".list");
    FILE *msgs = NULL;
    int rc = 1;
    if (!buf || !topics || !list) goto done;
    long long per_dir = (count + dirs - 1) / dirs;
    uint64_t sizes = 0x5eed; /* a fixed seed: every run draws the same sizes */
    for (long long i = 0; i < count; i++) {
        char dir[64], rel[128], path[PATH_MAX], topic[256];
        long long d = i / per_dir;
        snprintf(dir, sizeof dir, "%s/d%02lld", tag, d);
        snprintf(rel, sizeof rel, "%s/%s-%07lld.bin", dir, tag, i);
        int n = snprintf(path, sizeof path, "%s/%s", tree, rel);
        if (n < 0 || (size_t)n >= sizeof path) goto done;
        if (i % per_dir == 0) {
            char suffix[32];
            if (msgs && fclose(msgs) != 0) {
                msgs = NULL;
                goto done;
            }
            snprintf(suffix, sizeof suffix, "-d%02lld.msgs", d);
            if (!(msgs = open_out(outdir, tag, suffix))) goto done;
            if (codec_topic("xpublic", "v03/post", rel, topic, sizeof topic) != WM_OK) goto done;
            fprintf(topics, "%s %s/%s%s\n", topic, outdir, tag, suffix);
            snprintf(path, sizeof path, "%s/%s", tree, dir);
            if (mkdirs(path) != 0) {
                fprintf(stderr, "mkfeed: mkdir %s: %s\n", path, strerror(errno));
                goto done;
            }
            snprintf(path, sizeof path, "%s/%s", tree, rel);
        }
        struct wm_checksum sum;
        uint64_t seed = (uint64_t)i * 0x100000001b3ull ^ (uint64_t)loop_wall_ns();
        long long this_size = size;
        if (size_max > size)
            this_size += (long long)(next_random(&sizes) % (uint64_t)(size_max - size + 1));
        if (write_file(path, this_size, seed, buf, &sum) != 0) goto done;
        if (write_message(msgs, base_url, rel, this_size, &sum) != 0) goto done;
        fprintf(list, "%s\n", rel);
    }
    rc = 0;
done:
    if (msgs && fclose(msgs) != 0) rc = 1;
    if (topics && fclose(topics) != 0) rc = 1;
    if (list && fclose(list) != 0) rc = 1;
    free(buf);
    return rc;
}
