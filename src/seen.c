/* seen.c: the seen-cache: a fixed table of 12-byte slots in buckets, two candidate buckets per
 * key, with TTLs, eviction when full, and an atomic save/load. */
#include "seen.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byteorder.h"
#include "fdio.h"
#include "hash.h"
#include "log.h"

#define MAGIC "WMSEEN\r\n"
#define VERSION 1u
#define HEADER_SIZE 40u  /* magic[8] version[4] entry_size[4] count[8] base[8] checksum[8] */
#define ENTRY_SIZE 12u   /* key[8] expiry[4], expiry in seconds after base */
#define IO_ENTRIES 5461u /* entries per read or write: just under 64 KiB */
#define TMP_SUFFIX ".tmp"
#define HASH_SEED 0x776d657368ull /* "wmesh" */
/* Expiries are 32-bit offsets from the base; past this many seconds (about a century) the
 * clock is treated as standing still rather than wrapping. */
#define REL_MAX (UINT32_MAX - SEEN_TTL_MAX - 1u)

/* Split in halves so that a slot is 12 bytes, not 16 with a 64-bit member's alignment. */
struct slot {
    uint32_t key_lo, key_hi;
    uint32_t expiry; /* 0: empty; else seconds after base at which the entry expires */
};
_Static_assert(sizeof(struct slot) == 12, "a seen slot is 12 bytes");

struct seen {
    struct slot *slot;
    size_t nbuckets; /* of SEEN_BUCKET slots each */
    size_t nslots;   /* nbuckets * SEEN_BUCKET */
    size_t capacity;
    size_t count; /* occupied slots, expired or not */
    uint32_t ttl;
    bool based;
    uint64_t base; /* the time of the first call that gave one */
    uint64_t last_sweep;
    uint64_t evictions;
};

/* ---- a 64-bit hash: MurmurHash3's 64-bit mixing, one lane, streaming, little-endian ---- */

#define C1 0x87c37b91114253d5ull
#define C2 0x4cf5ad432745937full

struct hasher {
    uint64_t h, total;
    unsigned char tail[8];
    size_t ntail;
};

static uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static void hasher_init(struct hasher *hs, uint64_t seed)
{
    *hs = (struct hasher){.h = seed};
}

static void hash_word(struct hasher *hs, uint64_t k)
{
    k *= C1;
    k = rotl(k, 31);
    k *= C2;
    hs->h ^= k;
    hs->h = rotl(hs->h, 27) * 5 + 0x52dce729;
}

static void hasher_update(struct hasher *hs, const void *data, size_t len)
{
    const unsigned char *p = data;
    hs->total += len;
    while (len && hs->ntail) { /* complete a word begun by an earlier call */
        hs->tail[hs->ntail++] = *p++;
        len--;
        if (hs->ntail == 8) {
            hash_word(hs, le64_read(hs->tail));
            hs->ntail = 0;
        }
    }
    for (; len >= 8; p += 8, len -= 8)
        hash_word(hs, le64_read(p));
    memcpy(hs->tail, p, len);
    hs->ntail = len;
}

static uint64_t hasher_final(struct hasher *hs)
{
    if (hs->ntail) {
        memset(hs->tail + hs->ntail, 0, 8 - hs->ntail);
        uint64_t k = le64_read(hs->tail) * C1;
        hs->h ^= rotl(k, 31) * C2;
    }
    return hash_mix64(hs->h ^ hs->total);
}

uint64_t seen_key(const char *clean_rel, const struct wm_checksum *sum)
{
    struct hasher hs;
    hasher_init(&hs, HASH_SEED);
    /* Each text piece ends with its NUL, so no two different tuples hash the same bytes. The
     * method goes in by name: names are stable, enum values need not be. */
    const char *rel = clean_rel ? clean_rel : "";
    hasher_update(&hs, rel, strlen(rel) + 1);
    const char *method = sum ? integrity_method_name(sum->method) : NULL;
    if (!method) method = "";
    hasher_update(&hs, method, strlen(method) + 1);
    size_t len = sum && sum->len <= WM_SUM_MAX_LEN ? sum->len : 0;
    unsigned char n = (unsigned char)len;
    hasher_update(&hs, &n, 1);
    if (len) hasher_update(&hs, sum->value, len);
    return hasher_final(&hs);
}

/* ---- the table ---- */

/* The key's two candidate buckets (one when the table has a single bucket); returns how many.
 * Two choices keep buckets evenly filled, so a full bucket pair is rare even at 80% load. */
static size_t buckets(const struct seen *s, uint64_t key, struct slot *b[2])
{
    /* Keys from seen_key are hashes already; mixing again keeps tests' sequential keys and
     * any other caller's from clustering. Each half, multiplied, maps onto [0, nbuckets). */
    uint64_t m = hash_mix64(key), nb = s->nbuckets;
    size_t b0 = (size_t)(((m >> 32) * nb) >> 32), b1 = (size_t)(((m & 0xffffffffu) * nb) >> 32);
    if (b1 == b0) b1 = (b0 + 1) % s->nbuckets;
    b[0] = s->slot + b0 * SEEN_BUCKET;
    b[1] = s->slot + b1 * SEEN_BUCKET;
    return b0 == b1 ? 1 : 2;
}

static bool slot_is(const struct slot *e, uint64_t key)
{
    return e->key_lo == (uint32_t)key && e->key_hi == (uint32_t)(key >> 32);
}

static void slot_set(struct slot *e, uint64_t key, uint32_t expiry)
{
    e->key_lo = (uint32_t)key;
    e->key_hi = (uint32_t)(key >> 32);
    e->expiry = expiry;
}

static uint64_t slot_key(const struct slot *e)
{
    return (uint64_t)e->key_hi << 32 | e->key_lo;
}

/* now_s as an offset from the base, which the first caller fixes. A clock that goes back
 * before the base reads as the base: entries then live a little longer, never shorter. */
static uint32_t rel_time(struct seen *s, uint64_t now_s)
{
    if (!s->based) {
        s->base = now_s;
        s->based = true;
    }
    if (now_s <= s->base) return 0;
    return now_s - s->base > REL_MAX ? REL_MAX : (uint32_t)(now_s - s->base);
}

struct seen *seen_new(size_t capacity, uint32_t ttl_s)
{
    if (capacity == 0 || capacity > SEEN_CAPACITY_MAX || ttl_s == 0 || ttl_s > SEEN_TTL_MAX) {
        errno = EINVAL;
        return NULL;
    }
    struct seen *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->capacity = capacity;
    s->ttl = ttl_s;
    size_t slots = capacity + capacity / 4; /* 80% full at capacity */
    s->nbuckets = (slots + SEEN_BUCKET - 1) / SEEN_BUCKET;
    s->nslots = s->nbuckets * SEEN_BUCKET;
    /* calloc: the kernel hands out zero pages lazily, so an idle cache costs little RSS. */
    s->slot = calloc(s->nslots, sizeof *s->slot);
    if (!s->slot) {
        free(s);
        return NULL;
    }
    return s;
}

void seen_free(struct seen **sp)
{
    if (!sp || !*sp) return;
    free((*sp)->slot);
    free(*sp);
    *sp = NULL;
}

static void slot_clear(struct seen *s, struct slot *e)
{
    e->expiry = 0;
    s->count--;
}

/* Empties the first occupied slot after the bucket at b (wrapping): the rare way to stay within
 * capacity when both buckets of a key are empty but the table holds capacity entries. */
static void evict_elsewhere(struct seen *s, const struct slot *b, uint32_t now_rel)
{
    size_t start = (size_t)(b - s->slot) + SEEN_BUCKET;
    for (size_t i = 0; i < s->nslots; i++) {
        struct slot *e = &s->slot[(start + i) % s->nslots];
        if (e->expiry == 0) continue;
        if (e->expiry > now_rel) s->evictions++;
        slot_clear(s, e);
        return;
    }
}

/* What one bucket offers a new key. */
struct offer {
    struct slot *empty, *expired, *victim; /* first empty, first expired, soonest to expire */
    size_t nempty;
};

/* Returns the key's slot when the bucket has it; otherwise fills *o. */
static struct slot *survey(struct slot *b, uint64_t key, uint32_t now_rel, struct offer *o)
{
    for (size_t i = 0; i < SEEN_BUCKET; i++) {
        struct slot *e = &b[i];
        if (e->expiry == 0) {
            if (!o->empty) o->empty = e;
            o->nempty++;
        } else if (slot_is(e, key)) {
            return e;
        } else if (e->expiry <= now_rel) {
            if (!o->expired) o->expired = e;
        } else if (!o->victim || e->expiry < o->victim->expiry) {
            o->victim = e;
        }
    }
    return NULL;
}

/* The slot a new key takes, following the policy in seen.h; counts and evicts as it goes. */
static struct slot *choose(struct seen *s, struct offer *o, const struct slot *b0, uint32_t now_rel)
{
    if (o[0].expired || o[1].expired) return o[0].expired ? o[0].expired : o[1].expired;
    struct slot *empty = o[1].nempty > o[0].nempty ? o[1].empty : o[0].empty;
    if (empty && s->count < s->capacity) {
        s->count++;
        return empty;
    }
    struct slot *victim = o[0].victim;
    if (o[1].victim && (!victim || o[1].victim->expiry < victim->expiry)) victim = o[1].victim;
    if (victim) {
        s->evictions++;
        return victim;
    }
    /* Both buckets are empty and the table is full elsewhere. */
    evict_elsewhere(s, b0, now_rel);
    s->count++;
    return empty;
}

/* Stores key with expiry (both relative to the base). */
static void put(struct seen *s, uint64_t key, uint32_t now_rel, uint32_t expiry)
{
    struct slot *b[2];
    struct offer o[2] = {{0}, {0}};
    size_t nb = buckets(s, key, b);
    for (size_t i = 0; i < nb; i++) {
        struct slot *e = survey(b[i], key, now_rel, &o[i]);
        if (e) {
            e->expiry = expiry;
            return;
        }
    }
    slot_set(choose(s, o, b[0], now_rel), key, expiry);
}

enum wm_err seen_add(struct seen *s, uint64_t key, uint64_t now_s)
{
    if (!s) return WM_ERR_INVAL;
    uint32_t now_rel = rel_time(s, now_s);
    /* Full: expired entries may be spread anywhere, so sweep them before evicting live ones,
     * but at most once a second (a sweep touches every slot). */
    if (s->count >= s->capacity && now_s != s->last_sweep) {
        s->last_sweep = now_s;
        (void)seen_expire(s, now_s);
    }
    put(s, key, now_rel, now_rel + s->ttl);
    return WM_OK;
}

static struct slot *find(const struct seen *s, uint64_t key)
{
    struct slot *b[2];
    size_t nb = buckets(s, key, b);
    for (size_t k = 0; k < nb; k++)
        for (size_t i = 0; i < SEEN_BUCKET; i++)
            if (b[k][i].expiry != 0 && slot_is(&b[k][i], key)) return &b[k][i];
    return NULL;
}

bool seen_contains(struct seen *s, uint64_t key, uint64_t now_s)
{
    if (!s || s->count == 0) return false;
    struct slot *e = find(s, key);
    if (!e) return false;
    if (e->expiry > rel_time(s, now_s)) return true;
    slot_clear(s, e);
    return false;
}

enum wm_err seen_remove(struct seen *s, uint64_t key)
{
    if (!s) return WM_ERR_INVAL;
    struct slot *e = find(s, key);
    if (!e) return WM_ERR_NOTFOUND;
    slot_clear(s, e);
    return WM_OK;
}

size_t seen_expire(struct seen *s, uint64_t now_s)
{
    if (!s || s->count == 0) return 0;
    uint32_t now_rel = rel_time(s, now_s);
    size_t dropped = 0;
    for (size_t i = 0; i < s->nslots; i++) {
        if (s->slot[i].expiry == 0 || s->slot[i].expiry > now_rel) continue;
        slot_clear(s, &s->slot[i]);
        dropped++;
    }
    return dropped;
}

size_t seen_count(const struct seen *s)
{
    return s ? s->count : 0;
}

size_t seen_capacity(const struct seen *s)
{
    return s ? s->capacity : 0;
}

uint64_t seen_evictions(const struct seen *s)
{
    return s ? s->evictions : 0;
}

size_t seen_memory_bytes(const struct seen *s)
{
    return s ? sizeof *s + s->nslots * sizeof *s->slot : 0;
}

/* ---- persistence ---- */

/* "<path><suffix>" and the directory holding path, both NUL-terminated in PATH_MAX buffers. */
static enum wm_err derive_paths(const char *path, char *tmp, char *dir)
{
    size_t len = strlen(path);
    if (len == 0 || path[len - 1] == '/' || len + sizeof TMP_SUFFIX > PATH_MAX) return WM_ERR_INVAL;
    memcpy(tmp, path, len);
    memcpy(tmp + len, TMP_SUFFIX, sizeof TMP_SUFFIX);
    const char *slash = strrchr(path, '/');
    if (!slash) {
        memcpy(dir, ".", 2);
        return WM_OK;
    }
    size_t dlen = slash == path ? 1 : (size_t)(slash - path); /* "/seen" is in "/" */
    memcpy(dir, path, dlen);
    dir[dlen] = '\0';
    return WM_OK;
}

/* Reads up to len bytes; returns how many (fewer only at the end of the file), -1 on error. */
static ssize_t read_full(int fd, void *data, size_t len)
{
    unsigned char *p = data;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static void header_encode(unsigned char *h, uint64_t count, uint64_t base)
{
    memcpy(h, MAGIC, 8);
    le32_write(h + 8, VERSION);
    le32_write(h + 12, ENTRY_SIZE);
    le64_write(h + 16, count);
    le64_write(h + 24, base);
    memset(h + 32, 0, 8);
}

static size_t gcd(size_t a, size_t b)
{
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* A step that visits every slot once, far from 1. Saved in that scattered order, entries are
 * loaded in an order unrelated to where they sat, as the original adds were; in table order a
 * full cache reloads with a few hundred early evictions per million (two-choice placement is
 * greedy, and sorted input is its worst case). */
static size_t coprime_step(size_t n)
{
    size_t step = n / 2 + n / 8 + 1; /* about n / phi */
    while (gcd(step, n) != 1)
        step++;
    return step % n ? step : 1;
}

/* Streams the entries after the header, then writes the header with the checksum. */
static bool write_entries(const struct seen *s, int fd)
{
    unsigned char h[HEADER_SIZE], buf[IO_ENTRIES * ENTRY_SIZE];
    header_encode(h, s->count, s->base);
    struct hasher hs;
    hasher_init(&hs, HASH_SEED);
    hasher_update(&hs, h, HEADER_SIZE - 8);
    if (lseek(fd, HEADER_SIZE, SEEK_SET) < 0) return false;
    size_t n = 0, step = coprime_step(s->nslots);
    for (size_t k = 0, i = 0; k < s->nslots; k++, i = (i + step) % s->nslots) {
        const struct slot *e = &s->slot[i];
        if (e->expiry == 0) continue;
        le64_write(buf + n * ENTRY_SIZE, slot_key(e));
        le32_write(buf + n * ENTRY_SIZE + 8, e->expiry);
        if (++n < IO_ENTRIES) continue;
        hasher_update(&hs, buf, n * ENTRY_SIZE);
        if (fdio_write_all(fd, buf, n * ENTRY_SIZE) < 0) return false;
        n = 0;
    }
    hasher_update(&hs, buf, n * ENTRY_SIZE);
    if (fdio_write_all(fd, buf, n * ENTRY_SIZE) < 0) return false;
    le64_write(h + 32, hasher_final(&hs));
    return pwrite(fd, h, HEADER_SIZE, 0) == (ssize_t)HEADER_SIZE;
}

static enum wm_err save_failed(const char *path, const char *what)
{
    int e = errno;
    log_error("seen: cannot %s %s: %s", what, path, strerror(e));
    errno = e;
    return WM_ERR_IO;
}

/* Writes the temporary file completely and durably; false with errno set. */
static bool write_tmp(const struct seen *s, const char *tmp)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return false;
    bool ok = write_entries(s, fd) && fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0 && ok) return false;
    errno = e;
    return ok;
}

enum wm_err seen_save(const struct seen *s, const char *path)
{
    if (!s || !path) return WM_ERR_INVAL;
    char tmp[PATH_MAX], dir[PATH_MAX];
    enum wm_err err = derive_paths(path, tmp, dir);
    if (err != WM_OK) return err;
    if (!write_tmp(s, tmp) || rename(tmp, path) != 0) {
        int e = errno;
        (void)unlink(tmp);
        errno = e;
        return save_failed(path, "save");
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return save_failed(path, "sync the directory of");
    if (fsync(dfd) != 0) {
        err = save_failed(path, "sync the directory of");
        close(dfd);
        return err;
    }
    close(dfd);
    return WM_OK;
}

static void seen_clear(struct seen *s)
{
    /* An empty table is left alone: writing zeros would make every lazily mapped page
     * resident (15 MB for a million entries) in a peer that has seen nothing yet. */
    if (s->count == 0) return;
    memset(s->slot, 0, s->nslots * sizeof *s->slot);
    s->count = 0;
}

/* Inserts a loaded entry unless it has expired; never longer than this cache's TTL. */
static void put_loaded(struct seen *s, uint64_t key, uint64_t expires_at, uint64_t now_s)
{
    if (expires_at <= now_s) return;
    uint32_t now_rel = rel_time(s, now_s);
    uint64_t rel = expires_at - s->base; /* expires_at > now_s >= base, or the clock went back */
    if (expires_at <= s->base) rel = 1;
    if (rel > (uint64_t)now_rel + s->ttl) rel = (uint64_t)now_rel + s->ttl;
    put(s, key, now_rel, (uint32_t)rel);
}

/* Reads and checks the header: how many entries must follow, their base time and the stored
 * checksum; hs is left holding the hash of the header's checked part. */
static enum wm_err read_header(int fd, struct hasher *hs, uint64_t *count, uint64_t *base,
                               uint64_t *sum)
{
    unsigned char h[HEADER_SIZE];
    struct stat st;
    if (fstat(fd, &st) != 0) return WM_ERR_IO;
    if (!S_ISREG(st.st_mode) || st.st_size < (off_t)HEADER_SIZE) return WM_ERR_FORMAT;
    ssize_t n = read_full(fd, h, HEADER_SIZE);
    if (n < 0) return WM_ERR_IO;
    if (n != (ssize_t)HEADER_SIZE || memcmp(h, MAGIC, 8) != 0) return WM_ERR_FORMAT;
    if (le32_read(h + 8) != VERSION || le32_read(h + 12) != ENTRY_SIZE) return WM_ERR_FORMAT;
    *count = le64_read(h + 16);
    *base = le64_read(h + 24);
    *sum = le64_read(h + 32);
    uint64_t body = (uint64_t)st.st_size - HEADER_SIZE;
    if (*count > body / ENTRY_SIZE || *count * ENTRY_SIZE != body) return WM_ERR_FORMAT;
    hasher_init(hs, HASH_SEED);
    hasher_update(hs, h, HEADER_SIZE - 8);
    return WM_OK;
}

/* Inserts the entries as they stream in; the caller empties the cache if the checksum then
 * fails, so nothing from a corrupt file survives. */
static enum wm_err read_entries(struct seen *s, int fd, uint64_t count, uint64_t file_base,
                                uint64_t sum, struct hasher *hs, uint64_t now_s)
{
    unsigned char buf[IO_ENTRIES * ENTRY_SIZE];
    while (count) {
        size_t want = count < IO_ENTRIES ? (size_t)count : IO_ENTRIES;
        ssize_t n = read_full(fd, buf, want * ENTRY_SIZE);
        if (n < 0) return WM_ERR_IO;
        if (n != (ssize_t)(want * ENTRY_SIZE)) return WM_ERR_FORMAT; /* shrank under us */
        hasher_update(hs, buf, (size_t)n);
        for (size_t i = 0; i < want; i++) {
            const unsigned char *p = buf + i * ENTRY_SIZE;
            uint32_t rel = le32_read(p + 8);
            if (rel == 0) return WM_ERR_FORMAT;
            put_loaded(s, le64_read(p), file_base + rel, now_s);
        }
        count -= want;
    }
    return hasher_final(hs) == sum ? WM_OK : WM_ERR_FORMAT;
}

enum wm_err seen_load(struct seen *s, const char *path, uint64_t now_s)
{
    if (!s || !path) return WM_ERR_INVAL;
    seen_clear(s);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno == ENOENT ? WM_ERR_NOTFOUND : WM_ERR_IO;
    struct hasher hs;
    uint64_t count = 0, base = 0, sum = 0;
    enum wm_err err = read_header(fd, &hs, &count, &base, &sum);
    if (err == WM_OK) err = read_entries(s, fd, count, base, sum, &hs, now_s);
    int e = errno;
    close(fd);
    if (err == WM_OK) return WM_OK;
    seen_clear(s);
    if (err == WM_ERR_FORMAT)
        log_warn("seen: %s is truncated or corrupt, starting empty", path);
    else
        log_warn("seen: cannot read %s: %s", path, strerror(e));
    errno = e;
    return err;
}
