/* mkinline.c: v03 announcements with inline content, by the hundred thousand, for tests. */
/*
 * Usage: mkinline [--dir DIR] [--dirs N] [--size BYTES] [--base-url URL] [--age S]
 *                 TAG COUNT MSGS LIST
 *
 * Writes COUNT v03 announcements to the file MSGS, one a line (for mosquitto_pub -l), and their
 * relPaths to the file LIST, one a line, in the same order. Each file is inline: its content
 * ("content": {"encoding": "utf-8", ...}) is BYTES (default 32) of text that starts with its
 * own relPath, so no two files have the same bytes, and the SHA-512 of those bytes is its
 * integrity. No file is written: a peer stores what the announcement carries, and needs no
 * HTTP server to do it.
 *   relPath   DIR/TAG-NNNNNNN.txt, or with --dirs N, DIR/dNN/TAG-NNNNNNN.txt round robin;
 *             DIR defaults to TAG and may hold '/', '.' or ' ' (no '"' nor '\\')
 *   pubTime   now, less --age S seconds
 *   baseUrl   URL (default http://127.0.0.1:9/data)
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USAGE                                                                                      \
    "usage: mkinline [--dir DIR] [--dirs N] [--size BYTES] [--base-url URL] [--age S]\n"           \
    "                TAG COUNT MSGS LIST\n"
#define MAX_SIZE (1024 * 1024)

/* ---- SHA-512 (FIPS 180-4): the tools link nothing but libc ---- */

struct sha512 {
    uint64_t h[8];
    unsigned char block[128];
    size_t fill;
    uint64_t total;
};

static const uint64_t k512[80] = {
    0x428a2f98d728ae22ull, 0x7137449123ef65cdull, 0xb5c0fbcfec4d3b2full, 0xe9b5dba58189dbbcull,
    0x3956c25bf348b538ull, 0x59f111f1b605d019ull, 0x923f82a4af194f9bull, 0xab1c5ed5da6d8118ull,
    0xd807aa98a3030242ull, 0x12835b0145706fbeull, 0x243185be4ee4b28cull, 0x550c7dc3d5ffb4e2ull,
    0x72be5d74f27b896full, 0x80deb1fe3b1696b1ull, 0x9bdc06a725c71235ull, 0xc19bf174cf692694ull,
    0xe49b69c19ef14ad2ull, 0xefbe4786384f25e3ull, 0x0fc19dc68b8cd5b5ull, 0x240ca1cc77ac9c65ull,
    0x2de92c6f592b0275ull, 0x4a7484aa6ea6e483ull, 0x5cb0a9dcbd41fbd4ull, 0x76f988da831153b5ull,
    0x983e5152ee66dfabull, 0xa831c66d2db43210ull, 0xb00327c898fb213full, 0xbf597fc7beef0ee4ull,
    0xc6e00bf33da88fc2ull, 0xd5a79147930aa725ull, 0x06ca6351e003826full, 0x142929670a0e6e70ull,
    0x27b70a8546d22ffcull, 0x2e1b21385c26c926ull, 0x4d2c6dfc5ac42aedull, 0x53380d139d95b3dfull,
    0x650a73548baf63deull, 0x766a0abb3c77b2a8ull, 0x81c2c92e47edaee6ull, 0x92722c851482353bull,
    0xa2bfe8a14cf10364ull, 0xa81a664bbc423001ull, 0xc24b8b70d0f89791ull, 0xc76c51a30654be30ull,
    0xd192e819d6ef5218ull, 0xd69906245565a910ull, 0xf40e35855771202aull, 0x106aa07032bbd1b8ull,
    0x19a4c116b8d2d0c8ull, 0x1e376c085141ab53ull, 0x2748774cdf8eeb99ull, 0x34b0bcb5e19b48a8ull,
    0x391c0cb3c5c95a63ull, 0x4ed8aa4ae3418acbull, 0x5b9cca4f7763e373ull, 0x682e6ff3d6b2b8a3ull,
    0x748f82ee5defb2fcull, 0x78a5636f43172f60ull, 0x84c87814a1f0ab72ull, 0x8cc702081a6439ecull,
    0x90befffa23631e28ull, 0xa4506cebde82bde9ull, 0xbef9a3f7b2c67915ull, 0xc67178f2e372532bull,
    0xca273eceea26619cull, 0xd186b8c721c0c207ull, 0xeada7dd6cde0eb1eull, 0xf57d4f7fee6ed178ull,
    0x06f067aa72176fbaull, 0x0a637dc5a2c898a6ull, 0x113f9804bef90daeull, 0x1b710b35131c471bull,
    0x28db77f523047d84ull, 0x32caab7b40c72493ull, 0x3c9ebe0a15c9bebcull, 0x431d67c49c100d4cull,
    0x4cc5d4becb3e42b6ull, 0x597f299cfc657e2aull, 0x5fcb6fab3ad6faecull, 0x6c44198c4a475817ull,
};

static uint64_t ror(uint64_t x, unsigned n)
{
    return (x >> n) | (x << (64 - n));
}

static void sha512_init(struct sha512 *s)
{
    static const uint64_t iv[8] = {
        0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull, 0x3c6ef372fe94f82bull, 0xa54ff53a5f1d36f1ull,
        0x510e527fade682d1ull, 0x9b05688c2b3e6c1full, 0x1f83d9abfb41bd6bull, 0x5be0cd19137e2179ull};
    memcpy(s->h, iv, sizeof iv);
    s->fill = 0;
    s->total = 0;
}

static void sha512_block(struct sha512 *s, const unsigned char *p)
{
    uint64_t w[80], v[8];
    for (int i = 0; i < 16; i++) {
        w[i] = 0;
        for (int b = 0; b < 8; b++)
            w[i] = w[i] << 8 | p[i * 8 + b];
    }
    for (int i = 16; i < 80; i++) {
        uint64_t s0 = ror(w[i - 15], 1) ^ ror(w[i - 15], 8) ^ (w[i - 15] >> 7);
        uint64_t s1 = ror(w[i - 2], 19) ^ ror(w[i - 2], 61) ^ (w[i - 2] >> 6);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, s->h, sizeof v);
    for (int i = 0; i < 80; i++) {
        uint64_t t1 = v[7] + (ror(v[4], 14) ^ ror(v[4], 18) ^ ror(v[4], 41)) +
                      ((v[4] & v[5]) ^ (~v[4] & v[6])) + k512[i] + w[i];
        uint64_t t2 = (ror(v[0], 28) ^ ror(v[0], 34) ^ ror(v[0], 39)) +
                      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof *v);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        s->h[i] += v[i];
}

static void sha512_update(struct sha512 *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    s->total += len;
    while (len > 0) {
        size_t n = 128 - s->fill < len ? 128 - s->fill : len;
        memcpy(s->block + s->fill, p, n);
        s->fill += n;
        p += n;
        len -= n;
        if (s->fill == 128) {
            sha512_block(s, s->block);
            s->fill = 0;
        }
    }
}

static void sha512_final(struct sha512 *s, unsigned char out[64])
{
    uint64_t bits = s->total * 8;
    unsigned char pad[144] = {0x80};
    size_t padlen = (s->fill < 112 ? 112 : 240) - s->fill;
    unsigned char len[16] = {0};
    for (int i = 0; i < 8; i++)
        len[15 - i] = (unsigned char)(bits >> (8 * i));
    sha512_update(s, pad, padlen);
    sha512_update(s, len, sizeof len);
    for (int i = 0; i < 64; i++)
        out[i] = (unsigned char)(s->h[i / 8] >> (56 - 8 * (i % 8)));
}

static void base64(const unsigned char *in, size_t len, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = i + 1 < len ? abc[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? abc[v & 63] : '=';
    }
    out[o] = '\0';
}

/* ---- the announcements ---- */

static int number(const char *text, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* The content of file i: its relPath, then filler that never needs escaping in JSON. */
static void fill_content(char *buf, size_t size, const char *rel, long long i)
{
    static const char filler[] =
        "abcdefghijklmnopqrstuvwxyz0123456789-_.ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    int n = snprintf(buf, size + 1, "%s ", rel);
    size_t at = n < 0 ? 0 : (size_t)n > size ? size : (size_t)n;
    for (size_t k = at; k < size; k++)
        buf[k] = filler[(k * 7 + (size_t)i) % (sizeof filler - 1)];
    buf[size] = '\0';
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *base_url = "http://127.0.0.1:9/data";
    long long dirs = 0, size = 32, age = 0, count;
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--base-url") == 0)
            base_url = argv[i + 1];
        else if (strcmp(argv[i], "--dirs") == 0 && number(argv[i + 1], 1, 100, &dirs) == 0)
            continue;
        else if (strcmp(argv[i], "--size") == 0 && number(argv[i + 1], 0, MAX_SIZE, &size) == 0)
            continue;
        else if (strcmp(argv[i], "--age") == 0 &&
                 number(argv[i + 1], -86400 * 365, 86400 * 365, &age) == 0)
            continue;
        else
            break;
    }
    if (argc - i != 4 || number(argv[i + 1], 1, 100000000, &count) != 0) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *tag = argv[i];
    if (!dir) dir = tag;
    if (strpbrk(dir, "\"\\") || strpbrk(tag, "\"\\/")) {
        fputs("mkinline: no '\"' or '\\' in DIR or TAG, no '/' in TAG\n", stderr);
        return 2;
    }
    FILE *msgs = fopen(argv[i + 2], "w"), *list = fopen(argv[i + 3], "w");
    char *content = malloc((size_t)size + PATH_MAX + 2);
    if (!msgs || !list || !content) {
        fprintf(stderr, "mkinline: %s\n", strerror(errno));
        return 1;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    time_t when = now.tv_sec - (time_t)age;
    struct tm tm;
    gmtime_r(&when, &tm);
    char pubtime[64];
    snprintf(pubtime, sizeof pubtime, "%04d%02d%02dT%02d%02d%02d.%06ld", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000);
    for (long long n = 0; n < count; n++) {
        char rel[PATH_MAX], sum64[90];
        unsigned char digest[64];
        int len;
        if (dirs)
            len = snprintf(rel, sizeof rel, "%s/d%02lld/%s-%07lld.txt", dir, n % dirs, tag, n);
        else
            len = snprintf(rel, sizeof rel, "%s/%s-%07lld.txt", dir, tag, n);
        if (len < 0 || (size_t)len >= sizeof rel) {
            fputs("mkinline: relPath too long\n", stderr);
            return 1;
        }
        fill_content(content, (size_t)size, rel, n);
        struct sha512 s;
        sha512_init(&s);
        sha512_update(&s, content, (size_t)size);
        sha512_final(&s, digest);
        base64(digest, sizeof digest, sum64);
        fprintf(msgs,
                "{\"pubTime\": \"%s\", \"baseUrl\": \"%s\", \"relPath\": \"%s\", "
                "\"integrity\": {\"method\": \"sha512\", \"value\": \"%s\"}, \"size\": %lld, "
                "\"content\": {\"encoding\": \"utf-8\", \"value\": \"%s\"}}\n",
                pubtime, base_url, rel, sum64, size, content);
        fprintf(list, "%s\n", rel);
    }
    free(content);
    if (fclose(msgs) != 0 || fclose(list) != 0) {
        fprintf(stderr, "mkinline: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
