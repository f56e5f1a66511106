/* test_seen.c: the seen-cache: keys, TTLs, eviction within a fixed capacity, save and load,
 * refusal of damaged files, and the bytes one entry costs. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "seen.h"
#include "test.h"

static char dir[64];
static char path[128];

#define T0 1700000000ull /* a plausible "now" in seconds since the epoch */

/* Keys as a peer makes them: distinct relPaths with one digest each. */
static uint64_t key_of(uint64_t i)
{
    struct wm_checksum sum = {.method = WM_SUM_SHA256, .len = 32};
    memcpy(sum.value, &i, sizeof i);
    char rel[64];
    snprintf(rel, sizeof rel, "obs/%" PRIu64 "/file.bufr", i / 100);
    return seen_key(rel, &sum);
}

static int cmp(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static void test_key(void)
{
    struct wm_checksum a = {.method = WM_SUM_SHA256, .len = 32};
    memset(a.value, 0xab, 32);
    struct wm_checksum b = a;
    uint64_t k = seen_key("a/b.txt", &a);
    ASSERT_TRUE(k == seen_key("a/b.txt", &b)); /* deterministic */
    /* Pinned: saved caches depend on it, so a change here needs a new file version. */
    ASSERT_TRUE(k == 0xa388da471dffcc1dull);
    if (k != 0xa388da471dffcc1dull) printf("seen_key = 0x%016" PRIx64 "\n", k);
    ASSERT_TRUE(k != seen_key("a/b.txT", &a));
    ASSERT_TRUE(k != seen_key("a/b.tx", &a));
    b.value[31] ^= 1;
    ASSERT_TRUE(k != seen_key("a/b.txt", &b));
    b = a;
    b.method = WM_SUM_SHA3_256;
    ASSERT_TRUE(k != seen_key("a/b.txt", &b));
    b = a;
    b.len = 31;
    ASSERT_TRUE(k != seen_key("a/b.txt", &b));
    /* Every split of the same bytes into relPath and digest gives a different key. */
    struct wm_checksum c = {.method = WM_SUM_MD5, .len = 16};
    memcpy(c.value, "0123456789abcdef", 16);
    struct wm_checksum d = {.method = WM_SUM_MD5, .len = 16};
    memcpy(d.value, "123456789abcdefg", 16);
    ASSERT_TRUE(seen_key("x", &c) != seen_key("x0", &d));

    /* No collisions among a million peer-like keys, and the low bits are well spread. */
    size_t n = 1000000, collisions = 0;
    uint64_t *keys = malloc(n * sizeof *keys);
    unsigned buckets[256] = {0};
    for (size_t i = 0; i < n; i++) {
        keys[i] = key_of(i);
        buckets[keys[i] & 0xff]++;
    }
    qsort(keys, n, sizeof *keys, cmp);
    for (size_t i = 1; i < n; i++)
        collisions += keys[i] == keys[i - 1];
    ASSERT_EQ_INT(collisions, 0);
    unsigned lo = UINT32_MAX, hi = 0;
    for (int i = 0; i < 256; i++) {
        if (buckets[i] < lo) lo = buckets[i];
        if (buckets[i] > hi) hi = buckets[i];
    }
    ASSERT_TRUE(lo > 3600 && hi < 4200); /* 3906 expected, sd about 62 */
    free(keys);
}

static void test_add_contains(void)
{
    ASSERT_TRUE(seen_new(0, 60) == NULL);
    ASSERT_TRUE(seen_new(10, 0) == NULL);
    struct seen *s = seen_new(100, 60);
    ASSERT_TRUE(s != NULL);
    ASSERT_TRUE(!seen_contains(s, key_of(1), T0));
    ASSERT_EQ_INT(seen_add(s, key_of(1), T0), WM_OK);
    ASSERT_EQ_INT(seen_add(s, key_of(2), T0), WM_OK);
    ASSERT_EQ_INT(seen_add(s, key_of(2), T0), WM_OK); /* again: no second entry */
    ASSERT_EQ_INT(seen_count(s), 2);
    ASSERT_TRUE(seen_contains(s, key_of(1), T0));
    ASSERT_TRUE(seen_contains(s, key_of(2), T0 + 1));
    ASSERT_TRUE(!seen_contains(s, key_of(3), T0));
    ASSERT_EQ_INT(seen_remove(s, key_of(1)), WM_OK);
    ASSERT_EQ_INT(seen_remove(s, key_of(1)), WM_ERR_NOTFOUND);
    ASSERT_TRUE(!seen_contains(s, key_of(1), T0));
    ASSERT_EQ_INT(seen_count(s), 1);
    /* Key 0 and all-ones are ordinary keys. */
    ASSERT_EQ_INT(seen_add(s, 0, T0), WM_OK);
    ASSERT_EQ_INT(seen_add(s, UINT64_MAX, T0), WM_OK);
    ASSERT_TRUE(seen_contains(s, 0, T0) && seen_contains(s, UINT64_MAX, T0));
    seen_free(&s);
    ASSERT_TRUE(s == NULL);
}

static void test_ttl(void)
{
    struct seen *s = seen_new(100, 60);
    seen_add(s, key_of(1), T0);
    seen_add(s, key_of(2), T0);
    ASSERT_TRUE(seen_contains(s, key_of(1), T0 + 59));
    ASSERT_TRUE(!seen_contains(s, key_of(1), T0 + 60)); /* expired: dropped on the way */
    ASSERT_EQ_INT(seen_count(s), 1);
    seen_add(s, key_of(2), T0 + 30); /* a fresh add restarts the time to live */
    ASSERT_TRUE(seen_contains(s, key_of(2), T0 + 89));
    ASSERT_TRUE(!seen_contains(s, key_of(2), T0 + 90));
    /* A clock that steps back keeps entries, it does not lose them. */
    seen_add(s, key_of(3), T0 + 100);
    ASSERT_TRUE(seen_contains(s, key_of(3), T0 - 1000));
    for (uint64_t i = 10; i < 60; i++)
        seen_add(s, key_of(i), T0 + 100 + i);
    /* Key i expires at T0 + 160 + i: key 3 (at T0 + 160) and keys 10..40 are gone. */
    ASSERT_EQ_INT(seen_expire(s, T0 + 200), 32);
    ASSERT_EQ_INT(seen_count(s), 19);
    seen_free(&s);
}

static void test_eviction(void)
{
    struct seen *s = seen_new(1000, 100000);
    size_t mem = seen_memory_bytes(s);
    int over = 0;
    /* Ten times the capacity, one new key a second: the oldest go first. */
    for (uint64_t i = 0; i < 10000; i++) {
        seen_add(s, key_of(i), T0 + i);
        if (seen_count(s) > 1000) over++;
    }
    ASSERT_EQ_INT(over, 0);
    ASSERT_EQ_INT(seen_count(s), 1000);
    ASSERT_EQ_INT(seen_memory_bytes(s), mem);
    ASSERT_TRUE(seen_evictions(s) >= 9000);
    size_t recent = 0, old = 0;
    for (uint64_t i = 9500; i < 10000; i++)
        recent += seen_contains(s, key_of(i), T0 + 10000);
    for (uint64_t i = 0; i < 5000; i++)
        old += seen_contains(s, key_of(i), T0 + 10000);
    printf("seen: full cache of 1000 after 10000 adds holds %zu of the last 500, %zu of the "
           "first 5000\n",
           recent, old);
    ASSERT_TRUE(recent >= 475);
    ASSERT_TRUE(old <= 25);
    seen_free(&s);

    /* Expired entries make room before anything live is evicted. */
    s = seen_new(100, 10);
    for (uint64_t i = 0; i < 100; i++)
        seen_add(s, key_of(i), T0);
    ASSERT_EQ_INT(seen_count(s), 100);
    for (uint64_t i = 100; i < 200; i++)
        seen_add(s, key_of(i), T0 + 20);
    ASSERT_EQ_INT(seen_evictions(s), 0);
    ASSERT_TRUE(seen_count(s) <= 100);
    size_t present = 0;
    for (uint64_t i = 100; i < 200; i++)
        present += seen_contains(s, key_of(i), T0 + 20);
    ASSERT_EQ_INT(present, 100);
    seen_free(&s);

    /* The smallest cache. */
    s = seen_new(1, 10);
    for (uint64_t i = 0; i < 50; i++)
        seen_add(s, key_of(i), T0 + i);
    ASSERT_EQ_INT(seen_count(s), 1);
    ASSERT_TRUE(seen_contains(s, key_of(49), T0 + 49));
    seen_free(&s);
}

/* A million entries: what one costs, and how many a full cache keeps. */
static void test_million(void)
{
    size_t n = 1000000;
    struct seen *s = seen_new(n, 86400);
    size_t mem = seen_memory_bytes(s);
    for (uint64_t i = 0; i < n; i++)
        seen_add(s, key_of(i), T0 + i / 1000);
    size_t present = 0;
    for (uint64_t i = 0; i < n; i++)
        present += seen_contains(s, key_of(i), T0 + 1000);
    printf("seen: %zu entries in %zu bytes: %.2f bytes per entry (%.1f MiB); %zu held, %zu "
           "present, %" PRIu64 " evicted\n",
           n, mem, (double)mem / (double)n, (double)mem / (1024.0 * 1024.0), seen_count(s), present,
           seen_evictions(s));
    ASSERT_TRUE(mem <= 64u << 20);
    ASSERT_TRUE(mem <= 20 * n);
    ASSERT_TRUE(seen_count(s) <= n);
    ASSERT_TRUE(present >= n - n / 1000); /* a full bucket pair is rare at 80% load */
    /* A full cache survives a save and load whole. */
    ASSERT_EQ_INT(seen_save(s, path), WM_OK);
    seen_free(&s);
    s = seen_new(n, 86400);
    ASSERT_EQ_INT(seen_load(s, path, T0 + 1000), WM_OK);
    ASSERT_TRUE(seen_count(s) >= n - n / 1000);
    printf("seen: reloaded %zu of %zu, %" PRIu64 " evicted\n", seen_count(s), n, seen_evictions(s));
    seen_free(&s);
    unlink(path);
}

static off_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

static void test_save_load(void)
{
    struct seen *s = seen_new(20000, 3600);
    for (uint64_t i = 0; i < 10000; i++)
        seen_add(s, key_of(i), T0 + i / 10); /* T0 .. T0+999 */
    ASSERT_EQ_INT(seen_save(s, path), WM_OK);
    ASSERT_EQ_INT(file_size(path), 40 + 10000 * 12);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ASSERT_TRUE(access(tmp, F_OK) != 0);

    /* Loaded at T0 + 4100: key i expires at T0 + i / 10 + 3600, so keys 0..5009 are gone. */
    struct seen *t = seen_new(20000, 3600);
    seen_add(t, key_of(123456), T0); /* replaced by the load */
    ASSERT_EQ_INT(seen_load(t, path, T0 + 4100), WM_OK);
    ASSERT_EQ_INT(seen_count(t), 4990);
    ASSERT_TRUE(!seen_contains(t, key_of(123456), T0 + 4100));
    size_t wrong = 0;
    for (uint64_t i = 0; i < 10000; i++)
        wrong += seen_contains(t, key_of(i), T0 + 4100) != (i >= 5010);
    ASSERT_EQ_INT(wrong, 0);
    /* Times survive exactly: the entry added at T0 + 999 lasts until T0 + 4599. */
    ASSERT_TRUE(seen_contains(t, key_of(9999), T0 + 4598));
    ASSERT_TRUE(!seen_contains(t, key_of(9999), T0 + 4599));
    seen_free(&t);

    /* A smaller TTL here caps what the file promised. */
    t = seen_new(20000, 60);
    ASSERT_EQ_INT(seen_load(t, path, T0 + 1000), WM_OK);
    ASSERT_TRUE(seen_contains(t, key_of(9999), T0 + 1059));
    ASSERT_TRUE(!seen_contains(t, key_of(9999), T0 + 1060));
    seen_free(&t);

    /* Into a smaller cache: bounded, the latest kept. */
    t = seen_new(1000, 3600);
    ASSERT_EQ_INT(seen_load(t, path, T0 + 1000), WM_OK);
    ASSERT_EQ_INT(seen_count(t), 1000);
    seen_free(&t);

    /* An empty cache saves and loads. */
    t = seen_new(10, 60);
    ASSERT_EQ_INT(seen_save(t, path), WM_OK);
    ASSERT_EQ_INT(seen_load(t, path, T0), WM_OK);
    ASSERT_EQ_INT(seen_count(t), 0);
    seen_free(&t);
    seen_free(&s);
    unlink(path);
}

static unsigned char *slurp(const char *p, size_t *len)
{
    int fd = open(p, O_RDONLY);
    off_t size = file_size(p);
    unsigned char *buf = malloc((size_t)size);
    if (fd < 0 || !buf || read(fd, buf, (size_t)size) != (ssize_t)size) abort();
    close(fd);
    *len = (size_t)size;
    return buf;
}

static void spill(const char *p, const unsigned char *data, size_t len)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) abort();
    close(fd);
}

/* Every flipped byte and every truncation is refused, and leaves the cache empty. */
static void test_damaged(void)
{
    struct seen *s = seen_new(100, 3600);
    for (uint64_t i = 0; i < 8; i++)
        seen_add(s, key_of(i), T0);
    ASSERT_EQ_INT(seen_save(s, path), WM_OK);
    size_t len = 0;
    unsigned char *good = slurp(path, &len);
    log_set_level(WM_LOG_ERROR); /* each refusal logs a warning */
    int accepted = 0, not_empty = 0;
    for (size_t at = 0; at < len; at++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            good[at] ^= (unsigned char)(1u << bit);
            spill(path, good, len);
            good[at] ^= (unsigned char)(1u << bit);
            seen_add(s, key_of(99), T0);
            if (seen_load(s, path, T0) != WM_ERR_FORMAT) accepted++;
            if (seen_count(s) != 0) not_empty++;
        }
    }
    for (size_t cut = 0; cut < len; cut++) {
        spill(path, good, cut);
        seen_add(s, key_of(99), T0);
        if (seen_load(s, path, T0) != WM_ERR_FORMAT) accepted++;
        if (seen_count(s) != 0) not_empty++;
    }
    spill(path, good, len);
    spill(path, good, len); /* and one byte too many */
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd >= 0) {
        ASSERT_EQ_INT(write(fd, "x", 1), 1);
        close(fd);
    }
    if (seen_load(s, path, T0) != WM_ERR_FORMAT) accepted++;
    ASSERT_EQ_INT(accepted, 0);
    ASSERT_EQ_INT(not_empty, 0);

    unlink(path);
    ASSERT_EQ_INT(seen_load(s, path, T0), WM_ERR_NOTFOUND);
    char p[192];
    snprintf(p, sizeof p, "%s/no/such/dir/seen", dir);
    ASSERT_EQ_INT(seen_save(s, p), WM_ERR_IO);
    ASSERT_EQ_INT(seen_save(s, ""), WM_ERR_INVAL);
    log_set_level(WM_LOG_INFO);

    spill(path, good, len); /* the undamaged file still loads */
    ASSERT_EQ_INT(seen_load(s, path, T0), WM_OK);
    ASSERT_EQ_INT(seen_count(s), 8);
    free(good);
    seen_free(&s);
    unlink(path);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/wm-seen-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/seen", dir);
    test_key();
    test_add_contains();
    test_ttl();
    test_eviction();
    test_million();
    test_save_load();
    test_damaged();
    rmdir(dir);
    return TEST_REPORT();
}
