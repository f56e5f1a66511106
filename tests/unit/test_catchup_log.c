/* test_catchup_log.c: the catch-up log: seqs across clean and unclean restarts, torn tails,
 * segments, pruning and reads. */
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catchup_log.h"
#include "mqtt_wire.h"
#include "test.h"

#define SEC 1000000000LL
#define T0 (1796601600LL * SEC) /* 2026-12-07T00:00:00Z */

static char base[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static struct catchup_log *open_log(const char *dir, uint64_t segment_bytes)
{
    struct catchup_log_options o = {.dir = dir, .segment_bytes = segment_bytes};
    enum wm_err err = WM_ERR_LIB;
    struct catchup_log *l = catchup_log_open(&o, &err);
    ASSERT_EQ_INT(err, WM_OK);
    return l;
}

/* Takes a seq and appends a record on topic "a/<n % 3>" at T0 + n s. */
static uint64_t add(struct catchup_log *l, int n)
{
    char topic[32], msg[64];
    snprintf(topic, sizeof topic, "a/%d", n % 3);
    snprintf(msg, sizeof msg, "{\"n\":%d}", n);
    uint64_t seq = catchup_log_take_seq(l);
    ASSERT_TRUE(seq != 0);
    ASSERT_EQ_INT(catchup_log_append(l, seq, topic, msg, strlen(msg), T0 + n * SEC), WM_OK);
    return seq;
}

/* A new log in base/name (dir and epoch filled) holding records 1 .. n. */
static struct catchup_log *fresh_log(const char *name, uint64_t segment_bytes, int n, char *dir,
                                     char *epoch)
{
    snprintf(dir, 128, "%s/%s", base, name);
    struct catchup_log *l = open_log(dir, segment_bytes);
    if (!l) return NULL;
    snprintf(epoch, CATCHUP_EPOCH_LEN + 1, "%s", catchup_log_epoch(l));
    for (int i = 1; i <= n; i++)
        add(l, i);
    return l;
}

static void segment_path(const char *dir, const char *epoch, uint64_t first, char *out,
                         size_t outlen)
{
    snprintf(out, outlen, "%s/%s/%020" PRIu64 ".jsonl", dir, epoch, first);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_append_and_reopen(void)
{
    char dir[128], path[256], epoch[CATCHUP_EPOCH_LEN + 1];
    snprintf(dir, sizeof dir, "%s/basic", base);
    struct catchup_log *l = open_log(dir, 0);
    if (!l) return;
    ASSERT_EQ_INT(strlen(catchup_log_epoch(l)), CATCHUP_EPOCH_LEN);
    ASSERT_EQ_INT(catchup_log_epoch(l)[15], 'Z');
    snprintf(epoch, sizeof epoch, "%s", catchup_log_epoch(l));
    uint64_t first = 9, last = 9;
    catchup_log_bounds(l, &first, &last);
    ASSERT_EQ_INT(first, 0);
    ASSERT_EQ_INT(last, 0);
    ASSERT_EQ_INT(add(l, 1), 1);
    ASSERT_EQ_INT(add(l, 2), 2);
    ASSERT_EQ_INT(catchup_log_append(l, 2, "t", "{}", 2, T0), WM_ERR_INVAL); /* not above */
    ASSERT_EQ_INT(catchup_log_append(l, 9, "t", "{x}", 3, T0), WM_ERR_INVAL);
    ASSERT_EQ_INT(catchup_log_append(l, 9, "t", "{\n}", 3, T0), WM_ERR_INVAL);
    ASSERT_EQ_INT(catchup_log_append(l, 9, "\xff", "{}", 2, T0), WM_ERR_INVAL);
    ASSERT_EQ_INT(catchup_log_append(l, 9, "t", "{}", 0, T0), WM_ERR_INVAL);
    ASSERT_EQ_INT(catchup_log_flush(l), WM_OK);
    segment_path(dir, epoch, 1, path, sizeof path);
    FILE *f = fopen(path, "r");
    char line[256] = "";
    ASSERT_TRUE(f && fgets(line, sizeof line, f));
    ASSERT_EQ_STR(line, "{\"seq\":1,\"time\":\"20261207T000001.000Z\",\"topic\":\"a/1\","
                        "\"message\":{\"n\":1}}\n");
    if (f) fclose(f);
    catchup_log_bounds(l, &first, &last);
    ASSERT_EQ_INT(first, 1);
    ASSERT_EQ_INT(last, 2);
    uint64_t taken = catchup_log_take_seq(l); /* given, never appended: a hole */
    ASSERT_EQ_INT(taken, 3);
    catchup_log_close(&l);
    ASSERT_TRUE(l == NULL);

    /* A clean restart goes on after the last seq handed out, in the same epoch. */
    l = open_log(dir, 0);
    if (!l) return;
    ASSERT_EQ_STR(catchup_log_epoch(l), epoch);
    catchup_log_bounds(l, &first, &last);
    ASSERT_EQ_INT(first, 1);
    ASSERT_EQ_INT(last, 2);
    ASSERT_EQ_INT(add(l, 4), 4);
    ASSERT_EQ_INT(catchup_log_flush(l), WM_OK);

    /* A crash: the reservation is not written back; the next seq is above it. */
    char copy[256];
    snprintf(path, sizeof path, "%s/%s/reserved", dir, epoch);
    f = fopen(path, "r");
    ASSERT_TRUE(f && fgets(copy, sizeof copy, f));
    if (f) fclose(f);
    ASSERT_EQ_STR(copy, "65539\n");
    catchup_log_close(&l);
    f = fopen(path, "w");
    if (f) {
        fputs(copy, f);
        fclose(f);
    }
    l = open_log(dir, 0);
    if (!l) return;
    ASSERT_EQ_INT(add(l, 5), 65540);
    catchup_log_close(&l);

    /* An unreadable epoch file starts a new log. */
    snprintf(path, sizeof path, "%s/epoch", dir);
    f = fopen(path, "w");
    if (f) {
        fputs("garbage\n", f);
        fclose(f);
    }
    l = open_log(dir, 0);
    if (!l) return;
    ASSERT_TRUE(strcmp(catchup_log_epoch(l), epoch) != 0);
    catchup_log_bounds(l, &first, &last);
    ASSERT_EQ_INT(last, 0);
    ASSERT_EQ_INT(catchup_log_take_seq(l), 1);
    catchup_log_close(&l);
}

static void test_torn_tail(void)
{
    char dir[128], path[256], epoch[CATCHUP_EPOCH_LEN + 1];
    struct catchup_log *l = fresh_log("torn", 0, 3, dir, epoch);
    catchup_log_close(&l);
    segment_path(dir, epoch, 1, path, sizeof path);
    off_t good = file_size(path);
    int fd = open(path, O_WRONLY | O_APPEND);
    ASSERT_TRUE(fd >= 0 && write(fd, "{\"seq\":4,\"time\":\"2026", 22) == 22);
    if (fd >= 0) close(fd);
    l = open_log(dir, 0);
    if (!l) return;
    ASSERT_EQ_INT(file_size(path), good);
    uint64_t first = 0, last = 0;
    catchup_log_bounds(l, &first, &last);
    ASSERT_EQ_INT(last, 3);
    ASSERT_EQ_INT(add(l, 4), 4);
    catchup_log_close(&l);
    /* A garbled line (seq out of order) is cut as well. */
    fd = open(path, O_WRONLY | O_APPEND);
    const char *bad =
        "{\"seq\":2,\"time\":\"20261207T000001.000Z\",\"topic\":\"a\",\"message\":1}\n";
    ASSERT_TRUE(fd >= 0 && write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad));
    if (fd >= 0) close(fd);
    l = open_log(dir, 0);
    if (!l) return;
    catchup_log_bounds(l, &first, &last);
    ASSERT_EQ_INT(last, 4);
    ASSERT_EQ_INT(add(l, 5), 5);
    catchup_log_close(&l);
}

/* Reads with q and checks the count and trailer fields. */
static struct mqtt_buf out;
static struct catchup_read_result rr;

static enum wm_err read_q(struct catchup_log *l, struct catchup_read *q)
{
    out.len = 0;
    if (!q->limit) q->limit = 1000;
    if (!q->max_bytes) q->max_bytes = 4 << 20;
    return catchup_log_read(l, q, &out, &rr);
}

static bool topic_is_a1(void *arg, const char *topic)
{
    (void)arg;
    return strcmp(topic, "a/1") == 0;
}

static void test_segments_and_reads(void)
{
    char dir[128], path[256], epoch[CATCHUP_EPOCH_LEN + 1];
    /* About 72 bytes a record: a segment closes after 4. */
    struct catchup_log *l = fresh_log("segs", 250, 10, dir, epoch);
    if (!l) return;
    ASSERT_EQ_INT(catchup_log_flush(l), WM_OK);
    segment_path(dir, epoch, 5, path, sizeof path);
    ASSERT_TRUE(file_size(path) > 0);
    segment_path(dir, epoch, 9, path, sizeof path);
    ASSERT_TRUE(file_size(path) > 0);

    struct catchup_read q = {.after = 2, .until = 7};
    ASSERT_EQ_INT(read_q(l, &q), WM_OK);
    ASSERT_EQ_INT(rr.count, 5);
    ASSERT_EQ_INT(rr.next, 7);
    ASSERT_EQ_INT(rr.last, 10);
    ASSERT_EQ_INT(rr.first, 1);
    ASSERT_TRUE(!rr.more);
    ASSERT_TRUE(out.len > 0 && memcmp(out.data, "{\"seq\":3,", 9) == 0);
    ASSERT_TRUE(memmem(out.data, out.len, "{\"seq\":7,", 9) != NULL);
    ASSERT_TRUE(memmem(out.data, out.len, "{\"seq\":8,", 9) == NULL);

    q = (struct catchup_read){.after = 0, .limit = 3};
    ASSERT_EQ_INT(read_q(l, &q), WM_OK);
    ASSERT_EQ_INT(rr.count, 3);
    ASSERT_EQ_INT(rr.next, 3);
    ASSERT_TRUE(rr.more);

    /* Filtered: next moves past the records that did not match. */
    q = (struct catchup_read){.after = 4, .match = topic_is_a1, .limit = 1};
    ASSERT_EQ_INT(read_q(l, &q), WM_OK);
    ASSERT_EQ_INT(rr.count, 1);
    ASSERT_EQ_INT(rr.next, 7); /* 5, 6 examined, 7 taken */
    ASSERT_TRUE(rr.more);
    q = (struct catchup_read){.after = 7, .match = topic_is_a1};
    ASSERT_EQ_INT(read_q(l, &q), WM_OK);
    ASSERT_EQ_INT(rr.count, 1);
    ASSERT_EQ_INT(rr.next, 10);
    ASSERT_TRUE(!rr.more);
    q = (struct catchup_read){.after = 10};
    ASSERT_EQ_INT(read_q(l, &q), WM_OK);
    ASSERT_EQ_INT(rr.count, 0);
    ASSERT_EQ_INT(rr.next, 10);
    ASSERT_TRUE(!rr.more);

    /* since: the first record at or after T. */
    q = (struct catchup_read){.use_since = true, .since_ns = T0 + 6 * SEC, .limit = 2};
    ASSERT_EQ_INT(read_q(l, &q), WM_OK);
    ASSERT_EQ_INT(rr.count, 2);
    ASSERT_TRUE(memcmp(out.data, "{\"seq\":6,", 9) == 0);
    ASSERT_EQ_INT(rr.next, 7);
    ASSERT_TRUE(rr.more);
    q = (struct catchup_read){.use_since = true, .since_ns = T0 + 60 * SEC};
    ASSERT_EQ_INT(read_q(l, &q), WM_OK);
    ASSERT_EQ_INT(rr.count, 0);
    ASSERT_EQ_INT(rr.next, 10);
    ASSERT_TRUE(!rr.more);

    /* Byte cap: stops after the record that passes it. */
    q = (struct catchup_read){.after = 0, .max_bytes = 100};
    ASSERT_EQ_INT(read_q(l, &q), WM_OK);
    ASSERT_EQ_INT(rr.count, 2);
    ASSERT_TRUE(rr.more);

    /* Reopen: the index is rebuilt from three segments. */
    catchup_log_close(&l);
    l = open_log(dir, 250);
    if (!l) return;
    q = (struct catchup_read){.after = 3, .until = 9};
    ASSERT_EQ_INT(read_q(l, &q), WM_OK);
    ASSERT_EQ_INT(rr.count, 6);
    ASSERT_EQ_INT(rr.next, 9);
    ASSERT_TRUE(rr.more == false);
    ASSERT_EQ_INT(add(l, 11), 11);

    /* Prune by keep: segments whose newest record is older than now - 24 h. Records 1-4 are
     * at T0 + 1..4 s, 5-8 at T0 + 5..8 s. */
    catchup_log_prune(l, T0 + 86400 * SEC + 4500000000LL);
    uint64_t first = 0, last = 0;
    catchup_log_bounds(l, &first, &last);
    ASSERT_EQ_INT(first, 5);
    ASSERT_EQ_INT(last, 11);
    segment_path(dir, epoch, 1, path, sizeof path);
    ASSERT_EQ_INT(file_size(path), -1);
    q = (struct catchup_read){.after = 2, .check_gone = true};
    ASSERT_EQ_INT(read_q(l, &q), WM_ERR_NOTFOUND);
    q = (struct catchup_read){.after = 4, .check_gone = true};
    ASSERT_EQ_INT(read_q(l, &q), WM_OK);
    ASSERT_EQ_INT(rr.count, 7);
    /* Never the segment being written, however old. */
    catchup_log_prune(l, T0 + 1000 * 86400 * SEC);
    catchup_log_bounds(l, &first, &last);
    ASSERT_EQ_INT(first, 9);
    ASSERT_EQ_INT(last, 11);
    catchup_log_close(&l);

    /* Prune by size: oldest segments go until the log fits. */
    struct catchup_log_options o = {.dir = dir, .segment_bytes = 250, .max_bytes = 1};
    enum wm_err err = WM_ERR_LIB;
    l = catchup_log_open(&o, &err);
    ASSERT_EQ_INT(err, WM_OK);
    if (!l) return;
    for (int i = 12; i <= 20; i++)
        add(l, i);
    catchup_log_prune(l, T0);
    catchup_log_bounds(l, &first, &last);
    ASSERT_EQ_INT(first, 17);
    ASSERT_EQ_INT(last, 20);
    catchup_log_close(&l);
}

int main(void)
{
    snprintf(base, sizeof base, "/tmp/wmesh-catchup-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    test_append_and_reopen();
    test_torn_tail();
    test_segments_and_reads();
    mqtt_buf_free(&out);
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return TEST_REPORT();
}
