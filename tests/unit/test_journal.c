/* test_journal.c: the journal's round trip, torn and corrupt tails, compaction, failing writes,
 * the peer's entry format (current and legacy) and its throughput with batched syncs. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "test.h"

static char dir[64];
static char path[128];

/* ---- helpers ---- */

/* What a replay delivered. */
struct seen_recs {
    size_t n, cap;
    uint64_t *ids;
    size_t wrong;              /* payloads that are not payload_for(id) */
    struct journal *done_each; /* when set, each delivered record is finished at once */
};

/* The payload the tests give the record that gets id: its length varies with the id. */
static size_t payload_for(uint64_t id, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "announcement %" PRIu64 " %.*s", id, (int)(id % 37),
                     "abcdefghijklmnopqrstuvwxyz0123456789_");
    return n < 0 ? 0 : (size_t)n;
}

static void collect(void *arg, uint64_t id, const void *record, size_t len)
{
    struct seen_recs *c = arg;
    char want[128];
    size_t wlen = payload_for(id, want, sizeof want);
    if (len != wlen || memcmp(record, want, len) != 0) c->wrong++;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        uint64_t *p = realloc(c->ids, c->cap * sizeof *p);
        if (!p) abort();
        c->ids = p;
    }
    c->ids[c->n++] = id;
    if (c->done_each && journal_done(c->done_each, id) != WM_OK) c->wrong++;
}

static struct seen_recs replay(struct journal *j)
{
    struct seen_recs c = {0};
    ASSERT_EQ_INT(journal_replay(j, collect, &c), WM_OK);
    return c;
}

/* Adds one record whose payload is payload_for(expected id). */
static uint64_t add_expect(struct journal *j, uint64_t expect)
{
    char p[128];
    uint64_t id = 0;
    size_t len = payload_for(expect, p, sizeof p);
    if (journal_add(j, p, len, &id) != WM_OK) return 0;
    return id;
}

static struct journal *open_ok(void)
{
    enum wm_err err = WM_ERR_LIB;
    struct journal *j = journal_open(path, &err);
    ASSERT_EQ_INT(err, WM_OK);
    ASSERT_TRUE(j != NULL);
    if (!j) exit(1);
    return j;
}

static off_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

static unsigned char *read_file(const char *p, size_t *len)
{
    int fd = open(p, O_RDONLY);
    off_t size = file_size(p);
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (fd < 0 || size < 0 || !buf || read(fd, buf, (size_t)size) != (ssize_t)size) abort();
    close(fd);
    *len = (size_t)size;
    return buf;
}

static void write_file(const char *p, const unsigned char *data, size_t len)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) abort();
    close(fd);
}

static void reset(void)
{
    unlink(path);
}

/* The descriptor this process holds on the journal file (found through /proc), or -1. */
static int journal_fd(void)
{
    char want[PATH_MAX], link[64], got[PATH_MAX];
    if (!realpath(path, want)) return -1;
    for (int fd = 3; fd < 1024; fd++) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, got, sizeof got - 1);
        if (n < 0) continue;
        got[n] = '\0';
        if (strcmp(got, want) == 0) return fd;
    }
    return -1;
}

/* ---- tests ---- */

static void test_round_trip(void)
{
    reset();
    struct journal *j = open_ok();
    ASSERT_TRUE(!journal_dirty(j));
    ASSERT_EQ_INT(journal_sync(j), WM_OK); /* nothing to do */
    uint64_t a = add_expect(j, 1), b = add_expect(j, 2), c = add_expect(j, 3);
    ASSERT_EQ_INT(a, 1);
    ASSERT_EQ_INT(b, 2);
    ASSERT_EQ_INT(c, 3);
    ASSERT_TRUE(journal_dirty(j));
    ASSERT_EQ_INT(journal_done(j, b), WM_OK);
    ASSERT_EQ_INT(journal_done(j, b), WM_ERR_NOTFOUND);
    ASSERT_EQ_INT(journal_done(j, 99), WM_ERR_NOTFOUND);
    ASSERT_EQ_INT(journal_live(j), 2);
    ASSERT_EQ_INT(journal_sync(j), WM_OK);
    ASSERT_TRUE(!journal_dirty(j));

    /* A second opener, in this process or another, is refused while the journal is open. */
    enum wm_err err = WM_OK;
    ASSERT_TRUE(journal_open(path, &err) == NULL);
    ASSERT_EQ_INT(err, WM_ERR_EXISTS);

    static unsigned char big[JOURNAL_RECORD_MAX + 1];
    uint64_t id = 0;
    ASSERT_EQ_INT(journal_add(j, big, sizeof big, &id), WM_ERR_TOOBIG);
    ASSERT_EQ_INT(journal_add(j, big, JOURNAL_RECORD_MAX, &id), WM_OK);
    ASSERT_EQ_INT(id, 4);
    ASSERT_EQ_INT(journal_done(j, id), WM_OK);
    ASSERT_EQ_INT(journal_add(j, NULL, 1, &id), WM_ERR_INVAL);
    journal_close(&j);
    ASSERT_TRUE(j == NULL);

    j = open_ok();
    ASSERT_EQ_INT(journal_live(j), 2);
    struct seen_recs r = replay(j);
    ASSERT_EQ_INT(r.n, 2);
    ASSERT_EQ_INT(r.wrong, 0);
    if (r.n == 2) {
        ASSERT_EQ_INT(r.ids[0], a);
        ASSERT_EQ_INT(r.ids[1], c);
    }
    free(r.ids);
    ASSERT_EQ_INT(add_expect(j, 5), 5); /* ids go on after the largest ever used */
    journal_close(&j);

    /* Finishing records from inside the replay, as a peer does with what it finally refuses. */
    j = open_ok();
    r = (struct seen_recs){.done_each = j};
    ASSERT_EQ_INT(journal_replay(j, collect, &r), WM_OK);
    ASSERT_EQ_INT(r.n, 3);
    ASSERT_EQ_INT(r.wrong, 0);
    ASSERT_EQ_INT(journal_live(j), 0);
    free(r.ids);
    journal_close(&j);
    j = open_ok();
    ASSERT_EQ_INT(journal_live(j), 0);
    journal_close(&j);
}

static void test_ids_survive_compaction(void)
{
    reset();
    struct journal *j = open_ok();
    for (uint64_t i = 1; i <= 5; i++)
        ASSERT_EQ_INT(add_expect(j, i), i);
    for (uint64_t i = 1; i <= 5; i++)
        ASSERT_EQ_INT(journal_done(j, i), WM_OK);
    ASSERT_EQ_INT(journal_compact(j), WM_OK);
    ASSERT_EQ_INT(file_size(path), 24); /* only the header, which remembers the next id */
    journal_close(&j);
    j = open_ok();
    ASSERT_EQ_INT(journal_live(j), 0);
    ASSERT_EQ_INT(add_expect(j, 6), 6);
    journal_close(&j);
    j = open_ok();
    ASSERT_EQ_INT(add_expect(j, 7), 7);
    journal_close(&j);
}

/* Three records; the last one is cut at every length it can be cut at. */
static void test_torn_tail(void)
{
    reset();
    struct journal *j = open_ok();
    add_expect(j, 1);
    add_expect(j, 2);
    ASSERT_EQ_INT(journal_sync(j), WM_OK);
    off_t before = file_size(path);
    add_expect(j, 3);
    journal_close(&j);
    size_t len = 0;
    unsigned char *full = read_file(path, &len);
    ASSERT_TRUE((off_t)len > before);

    log_set_level(WM_LOG_ERROR); /* one warning per cut is expected */
    int bad_live = 0, bad_size = 0, bad_replay = 0, bad_next = 0;
    for (size_t cut = (size_t)before; cut < len; cut++) {
        write_file(path, full, cut);
        j = open_ok();
        if (journal_live(j) != 2) bad_live++;
        if (file_size(path) != before) bad_size++;
        struct seen_recs r = replay(j);
        if (r.n != 2 || r.wrong || r.ids[0] != 1 || r.ids[1] != 2) bad_replay++;
        free(r.ids);
        if (add_expect(j, 3) != 3) bad_next++; /* appends after the last good record */
        journal_close(&j);
        j = open_ok();
        if (journal_live(j) != 3) bad_next++;
        journal_close(&j);
    }
    ASSERT_EQ_INT(bad_live, 0);
    ASSERT_EQ_INT(bad_size, 0);
    ASSERT_EQ_INT(bad_replay, 0);
    ASSERT_EQ_INT(bad_next, 0);

    /* Cut inside the header: a crash while creating the file; it starts again, empty. */
    for (size_t cut = 0; cut < 24; cut++) {
        write_file(path, full, cut);
        j = open_ok();
        if (journal_live(j) != 0 || file_size(path) != 24) bad_size++;
        journal_close(&j);
    }
    ASSERT_EQ_INT(bad_size, 0);
    log_set_level(WM_LOG_INFO);
    free(full);
}

/* Every byte of the middle record flipped in turn: replay keeps the first record only. */
static void test_corrupt_record(void)
{
    reset();
    struct journal *j = open_ok();
    add_expect(j, 1);
    ASSERT_EQ_INT(journal_sync(j), WM_OK);
    off_t start = file_size(path);
    add_expect(j, 2);
    ASSERT_EQ_INT(journal_sync(j), WM_OK);
    off_t end = file_size(path);
    add_expect(j, 3);
    journal_close(&j);
    size_t len = 0;
    unsigned char *full = read_file(path, &len);

    log_set_level(WM_LOG_ERROR);
    int bad = 0;
    for (off_t at = start; at < end; at++) {
        full[at] ^= 0x20;
        write_file(path, full, len);
        full[at] ^= 0x20;
        j = open_ok();
        struct seen_recs r = replay(j);
        if (journal_live(j) != 1 || r.n != 1 || r.ids[0] != 1 || file_size(path) != start) bad++;
        free(r.ids);
        journal_close(&j);
    }
    ASSERT_EQ_INT(bad, 0);
    log_set_level(WM_LOG_INFO);

    /* A damaged header is not silently replaced: the operator must look. */
    full[3] ^= 1;
    write_file(path, full, len);
    enum wm_err err = WM_OK;
    log_set_level(WM_LOG_ERROR);
    ASSERT_TRUE(journal_open(path, &err) == NULL);
    ASSERT_EQ_INT(err, WM_ERR_FORMAT);
    log_set_level(WM_LOG_INFO);
    free(full);
}

static void test_compaction(void)
{
    reset();
    struct journal *j = open_ok();
    for (uint64_t i = 1; i <= 10; i++)
        add_expect(j, i);
    for (uint64_t i = 1; i <= 10; i += 2)
        ASSERT_EQ_INT(journal_done(j, i), WM_OK);
    off_t before = (off_t)journal_size(j);
    ASSERT_EQ_INT(journal_compact(j), WM_OK); /* syncs the pending records first */
    ASSERT_TRUE(!journal_dirty(j));
    ASSERT_TRUE(file_size(path) < before);
    ASSERT_EQ_INT(file_size(path), (off_t)journal_size(j));
    struct seen_recs r = replay(j);
    ASSERT_EQ_INT(r.n, 5);
    ASSERT_EQ_INT(r.wrong, 0);
    for (size_t i = 0; i < r.n; i++)
        ASSERT_EQ_INT(r.ids[i], 2 * i + 2);
    free(r.ids);
    /* A done for a record added before the compaction, and a new add after it. */
    ASSERT_EQ_INT(journal_done(j, 4), WM_OK);
    ASSERT_EQ_INT(add_expect(j, 11), 11);
    journal_close(&j);
    j = open_ok();
    r = replay(j);
    uint64_t want[] = {2, 6, 8, 10, 11};
    ASSERT_EQ_INT(r.n, 5);
    ASSERT_EQ_INT(r.wrong, 0);
    for (size_t i = 0; i < r.n && i < 5; i++)
        ASSERT_EQ_INT(r.ids[i], want[i]);
    free(r.ids);
    /* No leftover temporary file beside the journal. */
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.compact", path);
    ASSERT_TRUE(access(tmp, F_OK) != 0);
    journal_close(&j);

    /* A compaction cut short by a crash leaves its temporary file; the journal is intact and
     * the leftover goes at the next open. */
    write_file(tmp, (const unsigned char *)"half a compaction", 17);
    j = open_ok();
    ASSERT_TRUE(access(tmp, F_OK) != 0);
    ASSERT_EQ_INT(journal_live(j), 5);
    journal_close(&j);
}

static void test_many(void)
{
    reset();
    struct journal *j = open_ok();
    int bad = 0;
    for (uint64_t i = 1; i <= 10000; i++) {
        if (add_expect(j, i) != i) bad++;
        if (i % 2 == 0 && journal_done(j, i) != WM_OK) bad++;
        if (i % 100 == 0 && journal_sync(j) != WM_OK) bad++;
    }
    ASSERT_EQ_INT(bad, 0);
    ASSERT_EQ_INT(journal_live(j), 5000);
    off_t before = file_size(path);
    ASSERT_EQ_INT(journal_compact(j), WM_OK);
    ASSERT_TRUE(file_size(path) < before / 2);
    journal_close(&j);
    j = open_ok();
    ASSERT_EQ_INT(journal_live(j), 5000);
    struct seen_recs r = replay(j);
    ASSERT_EQ_INT(r.n, 5000);
    ASSERT_EQ_INT(r.wrong, 0);
    for (size_t i = 0; i < r.n; i++)
        if (r.ids[i] != 2 * i + 1) bad++;
    ASSERT_EQ_INT(bad, 0);
    free(r.ids);
    ASSERT_EQ_INT(add_expect(j, 10001), 10001);
    journal_close(&j);
}

/* The size and dead-share rule of journal_maybe_compact. */
static void test_maybe_compact(void)
{
    reset();
    struct journal *j = open_ok();
    static unsigned char blob[1000];
    uint64_t id = 0;
    int errors = 0;
    for (int i = 0; i < 2000; i++)
        errors += journal_add(j, blob, sizeof blob, &id) != WM_OK;
    ASSERT_EQ_INT(journal_maybe_compact(j), WM_OK);
    ASSERT_TRUE(journal_size(j) > 2000 * 1000); /* over the size, but everything is live */
    for (uint64_t i = 1; i <= 1000; i++)
        errors += journal_done(j, i) != WM_OK;
    ASSERT_EQ_INT(journal_maybe_compact(j), WM_OK);
    ASSERT_TRUE(journal_size(j) > 2000 * 1000); /* too few dead yet */
    for (int i = 0; i < 4000; i++) {
        errors += journal_add(j, blob, sizeof blob, &id) != WM_OK;
        errors += journal_done(j, id) != WM_OK;
    }
    ASSERT_EQ_INT(errors, 0);
    ASSERT_EQ_INT(journal_maybe_compact(j), WM_OK);
    ASSERT_TRUE(journal_size(j) < 1100 * 1024);
    ASSERT_EQ_INT(journal_live(j), 1000);
    journal_close(&j);
}

/* Reopens the journal and checks that replay hands over exactly the n ids of want, in order. */
static void expect_live(const uint64_t *want, size_t n)
{
    struct journal *j = open_ok();
    struct seen_recs r = replay(j);
    ASSERT_EQ_INT(r.n, n);
    ASSERT_EQ_INT(r.wrong, 0);
    for (size_t i = 0; i < r.n && i < n; i++)
        ASSERT_EQ_INT(r.ids[i], want[i]);
    free(r.ids);
    journal_close(&j);
}

/* Writes that fail (ENOSPC from /dev/full, EBADF from a read-only descriptor) are reported,
 * nothing is lost, and the next sync that can write makes it all durable. */
static void test_write_failure(void)
{
    reset();
    struct journal *j = open_ok();
    for (uint64_t i = 1; i <= 3; i++)
        add_expect(j, i);
    ASSERT_EQ_INT(journal_sync(j), WM_OK);
    int fd = journal_fd();
    ASSERT_TRUE(fd >= 0);
    int saved = dup(fd);
    int full = open("/dev/full", O_WRONLY);
    int ro = open(path, O_RDONLY);
    ASSERT_TRUE(saved >= 0 && full >= 0 && ro >= 0);
    for (uint64_t i = 4; i <= 6; i++)
        add_expect(j, i);
    ASSERT_EQ_INT(journal_done(j, 2), WM_OK);

    log_set_level(WM_LOG_ERROR);
    dup2(full, fd);
    errno = 0;
    ASSERT_EQ_INT(journal_sync(j), WM_ERR_IO);
    ASSERT_EQ_INT(errno, ENOSPC);
    ASSERT_TRUE(journal_dirty(j));
    add_expect(j, 7); /* adds still go to the buffer meanwhile */
    dup2(ro, fd);
    ASSERT_EQ_INT(journal_sync(j), WM_ERR_IO);
    ASSERT_TRUE(journal_dirty(j));
    ASSERT_EQ_INT(journal_compact(j), WM_ERR_IO); /* cannot sync first, so does nothing */
    dup2(saved, fd);
    ASSERT_EQ_INT(journal_sync(j), WM_OK);
    ASSERT_TRUE(!journal_dirty(j));
    close(saved);
    close(full);
    close(ro);
    journal_close(&j);

    static const uint64_t want[] = {1, 3, 4, 5, 6, 7};
    expect_live(want, 6);
    log_set_level(WM_LOG_INFO);
}

static void *write_batch(void *b)
{
    return (void *)(intptr_t)journal_batch_write(b);
}

/* journal_sync in three steps: the batch is written on another thread while adds go on; only
 * what it held becomes durable; a failed batch is rewritten by the next sync, ahead of what
 * was added after it; one batch at a time. */
static void test_batches(void)
{
    reset();
    struct journal *j = open_ok();
    struct journal_batch *b = (struct journal_batch *)&b; /* must become NULL */
    ASSERT_EQ_INT(journal_sync_begin(j, &b), WM_OK);
    ASSERT_TRUE(b == NULL); /* nothing buffered */
    add_expect(j, 1);
    add_expect(j, 2);
    ASSERT_EQ_INT(journal_sync_begin(j, &b), WM_OK);
    ASSERT_TRUE(b != NULL);
    struct journal_batch *again = NULL;
    ASSERT_EQ_INT(journal_sync_begin(j, &again), WM_ERR_INVAL);
    ASSERT_EQ_INT(journal_sync(j), WM_ERR_INVAL);
    ASSERT_EQ_INT(journal_compact(j), WM_ERR_INVAL);
    ASSERT_EQ_INT(journal_maybe_compact(j), WM_OK);
    ASSERT_TRUE(!journal_dirty(j)); /* all of it is in the batch */
    pthread_t t;
    ASSERT_EQ_INT(pthread_create(&t, NULL, write_batch, b), 0);
    add_expect(j, 3); /* meanwhile, on this thread */
    ASSERT_EQ_INT(journal_done(j, 1), WM_OK);
    ASSERT_TRUE(journal_dirty(j));
    void *result = NULL;
    pthread_join(t, &result);
    ASSERT_EQ_INT((enum wm_err)(intptr_t)result, WM_OK);
    ASSERT_TRUE(!journal_is_durable(j, 2)); /* not before journal_sync_end */
    journal_sync_end(j, &b, WM_OK);
    ASSERT_TRUE(b == NULL);
    ASSERT_TRUE(journal_is_durable(j, 1) && journal_is_durable(j, 2));
    ASSERT_TRUE(!journal_is_durable(j, 3));
    ASSERT_TRUE(journal_dirty(j));

    /* A batch that fails: its records stay undurable and go back ahead of later ones. */
    log_set_level(WM_LOG_ERROR);
    int fd = journal_fd();
    int saved = dup(fd), full = open("/dev/full", O_WRONLY);
    ASSERT_TRUE(fd >= 0 && saved >= 0 && full >= 0);
    ASSERT_EQ_INT(journal_sync_begin(j, &b), WM_OK);
    dup2(full, fd);
    enum wm_err e = journal_batch_write(b);
    ASSERT_EQ_INT(e, WM_ERR_IO);
    add_expect(j, 4);
    journal_sync_end(j, &b, e);
    ASSERT_TRUE(!journal_is_durable(j, 3) && !journal_is_durable(j, 4));
    ASSERT_TRUE(journal_dirty(j));
    dup2(saved, fd);
    close(saved);
    close(full);
    ASSERT_EQ_INT(journal_sync(j), WM_OK);
    ASSERT_TRUE(journal_is_durable(j, 3) && journal_is_durable(j, 4));
    log_set_level(WM_LOG_INFO);
    journal_close(&j);

    static const uint64_t want[] = {2, 3, 4};
    expect_live(want, 3);
}

static void test_bad_open(void)
{
    enum wm_err err = WM_OK;
    ASSERT_TRUE(journal_open(NULL, &err) == NULL);
    ASSERT_EQ_INT(err, WM_ERR_INVAL);
    log_set_level(WM_LOG_ERROR);
    char p[192];
    snprintf(p, sizeof p, "%s/no/such/dir/journal", dir);
    ASSERT_TRUE(journal_open(p, &err) == NULL);
    ASSERT_EQ_INT(err, WM_ERR_IO);
    snprintf(p, sizeof p, "%s/notajournal", dir);
    write_file(p, (const unsigned char *)"this is not a journal, not at all\n", 34);
    ASSERT_TRUE(journal_open(p, &err) == NULL);
    ASSERT_EQ_INT(err, WM_ERR_FORMAT);
    unlink(p);
    log_set_level(WM_LOG_INFO);
}

/* The records a replay delivered, copied. */
struct kept {
    size_t n;
    unsigned char *rec[8];
    size_t len[8];
};

static void keep(void *arg, uint64_t id, const void *record, size_t len)
{
    struct kept *k = arg;
    (void)id;
    if (k->n == 8) abort();
    k->rec[k->n] = malloc(len ? len : 1);
    if (!k->rec[k->n]) abort();
    if (len) memcpy(k->rec[k->n], record, len);
    k->len[k->n++] = len;
}

static void kept_free(struct kept *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->rec[i]);
    k->n = 0;
}

/* The peer's entries: the message as received and its topic, read back as written, after a
 * restart; entries written before entry versions (v03 JSON text) still read. */
static void test_entries(void)
{
    reset();
    struct journal *j = open_ok();
    const char *topic = "origin/a/wis2/ca-eccc-msc/data/core/weather";
    const char *msg = "{\"id\":\"x\",\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\"}}";
    const char *legacy = "{\"pubTime\":\"20250101T000000\",\"relPath\":\"a/b\"}";
    struct journal_entry e = {
        .topic = topic, .topic_len = strlen(topic), .payload = msg, .len = strlen(msg)};
    uint64_t id = 0;
    ASSERT_EQ_INT(journal_add_entry(j, &e, &id), WM_OK);
    ASSERT_EQ_INT(id, 1);
    struct journal_entry no_topic = {.payload = msg, .len = strlen(msg)};
    ASSERT_EQ_INT(journal_add_entry(j, &no_topic, &id), WM_OK);
    /* What wmesh wrote before entry versions: the announcement as v03 JSON, nothing else. */
    ASSERT_EQ_INT(journal_add(j, legacy, strlen(legacy), &id), WM_OK);
    /* A payload as large as --max-message allows, with its topic. */
    static unsigned char big[JOURNAL_RECORD_MAX];
    memset(big, 'b', sizeof big);
    struct journal_entry large = {
        .topic = topic, .topic_len = strlen(topic), .payload = big, .len = 65536};
    ASSERT_EQ_INT(journal_add_entry(j, &large, &id), WM_OK);
    /* A topic that does not fit is left out, not the message. */
    struct journal_entry full = {.topic = topic,
                                 .topic_len = strlen(topic),
                                 .payload = big,
                                 .len = JOURNAL_RECORD_MAX - JOURNAL_ENTRY_HEAD};
    ASSERT_EQ_INT(journal_add_entry(j, &full, &id), WM_OK);
    struct journal_entry long_topic = {
        .topic = (const char *)big, .topic_len = 70000, .payload = msg, .len = strlen(msg)};
    ASSERT_EQ_INT(journal_add_entry(j, &long_topic, &id), WM_OK);
    ASSERT_EQ_INT(id, 6);
    full.len++;
    ASSERT_EQ_INT(journal_add_entry(j, &full, &id), WM_ERR_TOOBIG);
    struct journal_entry bad = {.topic = NULL, .topic_len = 3, .payload = msg, .len = 1};
    ASSERT_EQ_INT(journal_add_entry(j, &bad, &id), WM_ERR_INVAL);
    bad = (struct journal_entry){.payload = NULL, .len = 1};
    ASSERT_EQ_INT(journal_add_entry(j, &bad, &id), WM_ERR_INVAL);
    ASSERT_EQ_INT(journal_add_entry(j, NULL, &id), WM_ERR_INVAL);
    ASSERT_EQ_INT(journal_add_entry(NULL, &e, &id), WM_ERR_INVAL);
    ASSERT_EQ_INT(id, 6);
    journal_close(&j);

    j = open_ok();
    struct kept k = {0};
    ASSERT_EQ_INT(journal_replay(j, keep, &k), WM_OK);
    ASSERT_EQ_INT(k.n, 6);
    if (k.n != 6) abort();
    /* The layout on disk: version 2, flags 0, the topic's length (little-endian), the topic,
     * the message. */
    size_t tlen = strlen(topic);
    ASSERT_EQ_INT(k.len[0], JOURNAL_ENTRY_HEAD + tlen + strlen(msg));
    ASSERT_EQ_INT(k.rec[0][0], 2);
    ASSERT_EQ_INT(k.rec[0][1], 0);
    ASSERT_EQ_INT(k.rec[0][2] | k.rec[0][3] << 8, tlen);
    ASSERT_EQ_MEM(k.rec[0] + JOURNAL_ENTRY_HEAD, topic, tlen);
    ASSERT_EQ_MEM(k.rec[0] + JOURNAL_ENTRY_HEAD + tlen, msg, strlen(msg));

    struct journal_entry r;
    ASSERT_EQ_INT(journal_entry_read(k.rec[0], k.len[0], &r), WM_OK);
    ASSERT_EQ_INT(r.version, 2);
    ASSERT_EQ_INT(r.topic_len, tlen);
    ASSERT_TRUE(r.topic && memcmp(r.topic, topic, tlen) == 0);
    ASSERT_EQ_INT(r.len, strlen(msg));
    ASSERT_TRUE(r.payload && memcmp(r.payload, msg, r.len) == 0);

    ASSERT_EQ_INT(journal_entry_read(k.rec[1], k.len[1], &r), WM_OK);
    ASSERT_EQ_INT(r.version, 2);
    ASSERT_TRUE(r.topic == NULL);
    ASSERT_EQ_INT(r.topic_len, 0);
    ASSERT_EQ_INT(r.len, strlen(msg));

    ASSERT_EQ_INT(journal_entry_read(k.rec[2], k.len[2], &r), WM_OK);
    ASSERT_EQ_INT(r.version, 1);
    ASSERT_TRUE(r.topic == NULL);
    ASSERT_EQ_INT(r.len, strlen(legacy));
    ASSERT_TRUE(r.payload == k.rec[2]);

    ASSERT_EQ_INT(journal_entry_read(k.rec[3], k.len[3], &r), WM_OK);
    ASSERT_EQ_INT(r.topic_len, tlen);
    ASSERT_EQ_INT(r.len, 65536);
    ASSERT_EQ_INT(journal_entry_read(k.rec[4], k.len[4], &r), WM_OK);
    ASSERT_TRUE(r.topic == NULL);
    ASSERT_EQ_INT(r.len, JOURNAL_RECORD_MAX - JOURNAL_ENTRY_HEAD);
    ASSERT_EQ_INT(journal_entry_read(k.rec[5], k.len[5], &r), WM_OK);
    ASSERT_TRUE(r.topic == NULL);
    ASSERT_EQ_INT(r.len, strlen(msg));
    kept_free(&k);
    journal_close(&j);

    /* Version 1 may begin with JSON's blanks or an array (the WMO mesh demo's format). */
    ASSERT_EQ_INT(journal_entry_read(" [1]", 4, &r), WM_OK);
    ASSERT_EQ_INT(r.version, 1);
    ASSERT_EQ_INT(journal_entry_read("\n{}", 3, &r), WM_OK);
    ASSERT_EQ_INT(r.version, 1);
    /* Unknown versions, truncation and nothing at all are refused, saying what was found. */
    static const unsigned char v3[] = {3, 0, 0, 0, '{', '}'};
    ASSERT_EQ_INT(journal_entry_read(v3, sizeof v3, &r), WM_ERR_FORMAT);
    ASSERT_EQ_INT(r.version, 3);
    static const unsigned char cut[] = {2, 0, 10, 0, 'o', 'r'};
    ASSERT_EQ_INT(journal_entry_read(cut, sizeof cut, &r), WM_ERR_FORMAT);
    ASSERT_EQ_INT(r.version, 2);
    ASSERT_EQ_INT(journal_entry_read(cut, 3, &r), WM_ERR_FORMAT);
    ASSERT_EQ_INT(journal_entry_read(cut, 0, &r), WM_ERR_FORMAT);
    ASSERT_EQ_INT(r.version, 0);
    static const unsigned char only_topic[] = {2, 0, 2, 0, 'a', 'b'};
    ASSERT_EQ_INT(journal_entry_read(only_topic, sizeof only_topic, &r), WM_OK);
    ASSERT_EQ_INT(r.topic_len, 2);
    ASSERT_EQ_INT(r.len, 0);
    ASSERT_EQ_INT(journal_entry_read(NULL, 1, &r), WM_ERR_INVAL);
    ASSERT_EQ_INT(journal_entry_read(v3, sizeof v3, NULL), WM_ERR_INVAL);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Batches of 100 one-kilobyte adds, one sync each, as a peer's busy event-loop turns do. */
static void bench(void)
{
    reset();
    struct journal *j = open_ok();
    static unsigned char rec[1024];
    uint64_t id = 0;
    int batches = 0, bad = 0;
    double t0 = seconds(), t = t0;
    while (batches < 50 || (t - t0 < 1.0 && batches < 2000)) {
        for (int i = 0; i < 100; i++)
            bad += journal_add(j, rec, sizeof rec, &id) != WM_OK;
        bad += journal_sync(j) != WM_OK;
        batches++;
        t = seconds();
    }
    ASSERT_EQ_INT(bad, 0);
    printf("journal: %d batches of 100 x 1 KiB adds + 1 fdatasync in %.3f s: %.0f adds/s, "
           "%.0f syncs/s\n",
           batches, t - t0, batches * 100 / (t - t0), batches / (t - t0));
    journal_close(&j);
}

/* Outbox entries (version 3): what a replay needs to announce again, or fetch again. */
static void test_outbox_entries(void)
{
    reset();
    struct journal *j = open_ok();
    const char *topic = "xpublic/v03/post/obs/a.b";
    const char *msg = "{\"relPath\":\"obs/a.b/x\"}";
    const char *otopic = "xpublic/v03/post/obs";
    const char *omsg = "{\"relPath\":\"obs/a.b/x\",\"baseUrl\":\"http://up\"}";
    struct wm_checksum sum = {.method = WM_SUM_SHA512, .len = 64};
    for (size_t i = 0; i < sum.len; i++)
        sum.value[i] = (unsigned char)(i * 7);
    struct journal_outbox o = {
        .topic = topic,
        .topic_len = strlen(topic),
        .message = msg,
        .len = strlen(msg),
        .key = "obs/a.b/x",
        .key_len = 9,
        .sum = sum,
        .origin = {
            .topic = otopic, .topic_len = strlen(otopic), .payload = omsg, .len = strlen(omsg)}};
    uint64_t id = 0;
    ASSERT_EQ_INT(journal_add_outbox(j, &o, &id), WM_OK);
    /* Handed back by `wmesh outbox --resend`: no file, no origin. */
    struct journal_outbox bare = {
        .topic = topic, .topic_len = strlen(topic), .message = msg, .len = strlen(msg)};
    ASSERT_EQ_INT(journal_add_outbox(j, &bare, &id), WM_OK);
    /* An origin that would not fit is left out; the announcement is not. */
    static unsigned char big[JOURNAL_RECORD_MAX];
    memset(big, '{', sizeof big);
    struct journal_outbox large = o;
    large.message = big;
    large.len = JOURNAL_RECORD_MAX - 200;
    large.origin.payload = big;
    large.origin.len = 65536;
    ASSERT_EQ_INT(journal_add_outbox(j, &large, &id), WM_OK);
    ASSERT_EQ_INT(id, 3);
    large.len = JOURNAL_RECORD_MAX;
    ASSERT_EQ_INT(journal_add_outbox(j, &large, &id), WM_ERR_TOOBIG);
    struct journal_outbox bad = bare;
    bad.topic = NULL;
    ASSERT_EQ_INT(journal_add_outbox(j, &bad, &id), WM_ERR_INVAL);
    ASSERT_EQ_INT(id, 3);
    journal_close(&j);

    j = open_ok();
    struct kept k = {0};
    ASSERT_EQ_INT(journal_replay(j, keep, &k), WM_OK);
    ASSERT_EQ_INT(k.n, 3);
    if (k.n != 3) abort();
    struct journal_outbox r;
    ASSERT_EQ_INT(journal_record_version(k.rec[0], k.len[0]), JOURNAL_OUTBOX_VERSION);
    ASSERT_EQ_INT(journal_outbox_read(k.rec[0], k.len[0], &r), WM_OK);
    ASSERT_EQ_INT(r.topic_len, strlen(topic));
    ASSERT_TRUE(r.topic && memcmp(r.topic, topic, r.topic_len) == 0);
    ASSERT_EQ_INT(r.len, strlen(msg));
    ASSERT_TRUE(r.message && memcmp(r.message, msg, r.len) == 0);
    ASSERT_EQ_INT(r.key_len, 9);
    ASSERT_TRUE(r.key && memcmp(r.key, "obs/a.b/x", 9) == 0);
    ASSERT_TRUE(integrity_equal(&r.sum, &sum));
    ASSERT_EQ_INT(r.origin.topic_len, strlen(otopic));
    ASSERT_TRUE(r.origin.topic && memcmp(r.origin.topic, otopic, r.origin.topic_len) == 0);
    ASSERT_EQ_INT(r.origin.len, strlen(omsg));
    ASSERT_TRUE(r.origin.payload && memcmp(r.origin.payload, omsg, r.origin.len) == 0);

    ASSERT_EQ_INT(journal_outbox_read(k.rec[1], k.len[1], &r), WM_OK);
    ASSERT_TRUE(r.key == NULL && r.key_len == 0 && r.origin.payload == NULL);
    ASSERT_EQ_INT(r.len, strlen(msg));

    ASSERT_EQ_INT(journal_outbox_read(k.rec[2], k.len[2], &r), WM_OK);
    ASSERT_EQ_INT(r.len, JOURNAL_RECORD_MAX - 200);
    ASSERT_TRUE(r.origin.payload == NULL);
    ASSERT_TRUE(r.key != NULL);

    /* Every truncation of a record is refused, never read past its end. */
    for (size_t cut = 0; cut < k.len[0]; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1);
        if (!copy) abort();
        memcpy(copy, k.rec[0], cut);
        enum wm_err e = journal_outbox_read(copy, cut, &r);
        /* Cutting the origin's payload only shortens it: that is not detectable. */
        bool origin_cut = cut >= k.len[0] - strlen(omsg);
        if (!origin_cut) ASSERT_EQ_INT(e, WM_ERR_FORMAT);
        free(copy);
    }
    /* Entries and outbox entries tell apart. */
    ASSERT_EQ_INT(journal_record_version("{}", 2), 1);
    ASSERT_EQ_INT(journal_record_version("\x02", 1), 2);
    ASSERT_EQ_INT(journal_record_version("\x07", 1), 0);
    ASSERT_EQ_INT(journal_record_version("", 0), 0);
    struct journal_entry e;
    ASSERT_EQ_INT(journal_entry_read(k.rec[0], k.len[0], &e), WM_ERR_FORMAT);
    kept_free(&k);
    journal_close(&j);
}

/* The CRC32 of each record is the IEEE one, bit by bit here: files of every wmesh version read. */
static uint32_t crc32_bitwise(const unsigned char *p, size_t len)
{
    uint32_t c = 0xffffffffu;
    while (len--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

static void test_crc_is_ieee(void)
{
    reset();
    struct journal *j = open_ok();
    static const char text[] = "123456789 of a record whose length is odd";
    uint64_t id;
    ASSERT_EQ_INT(crc32_bitwise((const unsigned char *)"123456789", 9), 0xcbf43926u);
    ASSERT_EQ_INT(journal_add(j, text, sizeof text - 1, &id), WM_OK);
    journal_close(&j);
    size_t len = 0;
    unsigned char *f = read_file(path, &len);
    size_t rec = 24, body = 16 + sizeof text - 1; /* the header, then type, length, id, text */
    ASSERT_TRUE(f && len >= rec + body + 4);
    if (f && len >= rec + body + 4) {
        uint32_t want = crc32_bitwise(f + rec, body);
        uint32_t got = (uint32_t)f[rec + body] | (uint32_t)f[rec + body + 1] << 8 |
                       (uint32_t)f[rec + body + 2] << 16 | (uint32_t)f[rec + body + 3] << 24;
        ASSERT_EQ_INT(got, want);
        ASSERT_EQ_INT((uint32_t)f[20] | (uint32_t)f[21] << 8 | (uint32_t)f[22] << 16 |
                          (uint32_t)f[23] << 24,
                      crc32_bitwise(f, 20));
    }
    free(f);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/wm-journal-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/journal", dir);
    test_round_trip();
    test_ids_survive_compaction();
    test_torn_tail();
    test_corrupt_record();
    test_compaction();
    test_many();
    test_maybe_compact();
    test_write_failure();
    test_batches();
    test_bad_open();
    test_entries();
    test_outbox_entries();
    test_crc_is_ieee();
    bench();
    reset();
    rmdir(dir);
    return TEST_REPORT();
}
