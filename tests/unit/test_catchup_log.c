/* test_catchup_log.c: the catch-up log (seqs across clean and unclean restarts, torn tails,
 * segments, pruning and reads), its query parser and status object, and its endpoints served
 * by a real httpd on 127.0.0.1. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "catchup_log.h"
#include "catchup_serve.h"
#include "fetch.h"
#include "httpd.h"
#include "json.h"
#include "mqtt_wire.h"
#include "test.h"
#include "tree.h"

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
    ASSERT_EQ_INT(catchup_log_append(l, 9, "t", "x}", 2, T0), WM_ERR_INVAL);
    ASSERT_EQ_INT(catchup_log_append(l, 9, "t", "{]", 2, T0), WM_ERR_INVAL);
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
static struct buf out;
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

static enum wm_err parse(const char *text, struct catchup_query *q)
{
    char why[128] = "";
    enum wm_err err = catchup_query_parse(text, strlen(text), q, why, sizeof why);
    if (err != WM_OK && !why[0]) TEST_FAIL_AT("no reason given for %s", text);
    return err;
}

static void test_query_parse(void)
{
    static struct catchup_query q;
    ASSERT_EQ_INT(parse("epoch=E&after=5", &q), WM_OK);
    ASSERT_TRUE(q.has_epoch && q.has_after && !q.has_until && !q.has_since);
    ASSERT_EQ_STR(q.epoch, "E");
    ASSERT_EQ_INT(q.after, 5);
    ASSERT_EQ_INT(q.limit, CATCHUP_LIMIT_DEFAULT);
    ASSERT_EQ_INT(q.ntopics, 0);
    ASSERT_EQ_INT(parse("epoch=E&after=0&until=9&limit=20000&x=1&y&&topic=a%2F%2B&topic=%23", &q),
                  WM_OK);
    ASSERT_EQ_INT(q.until, 9);
    ASSERT_EQ_INT(q.limit, CATCHUP_LIMIT_MAX);
    ASSERT_EQ_INT(q.ntopics, 2);
    ASSERT_EQ_STR(q.topics[0], "a/+");
    ASSERT_EQ_STR(q.topics[1], "#");
    ASSERT_EQ_INT(parse("since=20261207T000001.5Z", &q), WM_OK);
    ASSERT_TRUE(q.has_since && !q.has_after);
    ASSERT_EQ_INT(q.since_ns, T0 + SEC + SEC / 2);
    ASSERT_EQ_INT(parse("since=2026-12-07T01:00:00%2B01:00", &q), WM_OK);
    ASSERT_EQ_INT(q.since_ns, T0);
    ASSERT_EQ_INT(parse("since=20261207T000000", &q), WM_OK);
    ASSERT_EQ_INT(q.since_ns, T0);

    static const char *const bad[] = {
        "",
        "epoch=E",
        "after=1",
        "epoch=E&after=-1",
        "epoch=E&after=1x",
        "epoch=E&after=9007199254740992",
        "epoch=E&after",
        "epoch=E&after=1&limit=0",
        "epoch=E&after=1&until=",
        "epoch=E&after=1&topic=a%2Fb%23",
        "epoch=E&after=1&topic=",
        "epoch=E&after=1&topic=a%00",
        "epoch=E&after=1&topic=a%2",
        "epoch=E%zz&after=1",
        "since=yesterday",
        "since=2026-12-07",
        "epoch=&after=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum wm_err err = parse(bad[i], &q);
        if (err == WM_OK) TEST_FAIL_AT("accepted %s", bad[i]);
    }
    char many[512];
    size_t used = (size_t)snprintf(many, sizeof many, "epoch=E&after=1");
    for (int i = 0; i < 17; i++)
        used += (size_t)snprintf(many + used, sizeof many - used, "&topic=a");
    ASSERT_EQ_INT(parse(many, &q), WM_ERR_TOOBIG);
    char *huge = malloc(CATCHUP_QUERY_MAX + 2);
    if (huge) {
        memset(huge, 'x', CATCHUP_QUERY_MAX + 1);
        huge[CATCHUP_QUERY_MAX + 1] = '\0';
        ASSERT_EQ_INT(parse(huge, &q), WM_ERR_TOOBIG);
        free(huge);
    }
}

/* ---- over HTTP ---- */

struct answer {
    int status;
    char head[2048];
    char body[65536];
};

/* GET target over a fresh connection (HTTP/1.0: the server closes after answering). */
static int get(uint16_t port, const char *target, struct answer *a)
{
    a->status = 0;
    a->head[0] = a->body[0] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static char buf[sizeof a->head + sizeof a->body];
    size_t used = 0;
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", target);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    ssize_t got;
    while (used + 1 < sizeof buf && (got = recv(fd, buf + used, sizeof buf - 1 - used, 0)) > 0)
        used += (size_t)got;
    close(fd);
    buf[used] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (!end || sscanf(buf, "HTTP/1.1 %d", &a->status) != 1) return -1;
    snprintf(a->head, sizeof a->head, "%.*s", (int)(end + 2 - buf), buf);
    snprintf(a->body, sizeof a->body, "%s", end + 4);
    return a->status;
}

/* The last line of a body (the trailer). */
static const char *last_line(const char *body)
{
    size_t n = strlen(body);
    if (n == 0) return body;
    const char *p = body + n - 1;
    while (p > body && p[-1] != '\n')
        p--;
    return p;
}

static int count_lines(const char *body)
{
    int n = 0;
    for (; *body; body++)
        n += *body == '\n';
    return n;
}

static void test_http(struct catchup_log *l, uint16_t port)
{
    struct answer *a = malloc(sizeof *a);
    if (!a) return;
    const char *epoch = catchup_log_epoch(l);
    char target[512], want[512];

    ASSERT_EQ_INT(get(port, "/data/.wmesh/status", a), 200);
    ASSERT_TRUE(strstr(a->head, "Content-Type: application/json\r\n") != NULL);
    ASSERT_TRUE(strstr(a->head, "Cache-Control: no-cache\r\n") != NULL);
    snprintf(want, sizeof want,
             "{\"wmesh_catchup\":1,\"peer\":\"peer-1\",\"epoch\":\"%s\",\"seq\":10,\"first\":1,"
             "\"url\":\"http://h/data/.wmesh/\",\"interval\":60,\"time\":\"",
             epoch);
    ASSERT_TRUE(strncmp(a->body, want, strlen(want)) == 0);
    ASSERT_TRUE(strstr(a->body, "Z\",\"state\":\"up\"}") != NULL);

    snprintf(target, sizeof target, "/data/.wmesh/log?epoch=%s&after=2&until=5", epoch);
    ASSERT_EQ_INT(get(port, target, a), 200);
    ASSERT_TRUE(strstr(a->head, "Content-Type: application/x-ndjson; charset=utf-8\r\n"));
    ASSERT_EQ_INT(count_lines(a->body), 4);
    ASSERT_TRUE(strncmp(a->body, "{\"seq\":3,\"time\":\"20261207T000003.000Z\",", 39) == 0);
    snprintf(want, sizeof want,
             "{\"end\":true,\"epoch\":\"%s\",\"next\":5,\"last\":10,\"more\":false}\n", epoch);
    ASSERT_EQ_STR(last_line(a->body), want);

    /* Filtered and limited: next passes the records that did not match. */
    snprintf(target, sizeof target,
             "/data/.wmesh/log?epoch=%s&after=0&topic=x%%2F%%2B%%2F1&limit=2", epoch);
    ASSERT_EQ_INT(get(port, target, a), 200);
    ASSERT_EQ_INT(count_lines(a->body), 3);
    snprintf(want, sizeof want,
             "{\"end\":true,\"epoch\":\"%s\",\"next\":4,\"last\":10,\"more\":true}\n", epoch);
    ASSERT_EQ_STR(last_line(a->body), want);
    snprintf(target, sizeof target, "/data/.wmesh/log?epoch=%s&after=4&topic=x/%%2B/1&topic=none",
             epoch);
    ASSERT_EQ_INT(get(port, target, a), 200);
    ASSERT_EQ_INT(count_lines(a->body), 3); /* 7, 10 */
    snprintf(want, sizeof want,
             "{\"end\":true,\"epoch\":\"%s\",\"next\":10,\"last\":10,\"more\":false}\n", epoch);
    ASSERT_EQ_STR(last_line(a->body), want);

    /* since, without after. */
    ASSERT_EQ_INT(get(port, "/data/.wmesh/log?since=20261207T000009Z", a), 200);
    ASSERT_EQ_INT(count_lines(a->body), 3);
    ASSERT_TRUE(strncmp(a->body, "{\"seq\":9,", 9) == 0);

    /* Errors. */
    ASSERT_EQ_INT(get(port, "/data/.wmesh/log?epoch=20000101T000000Z.00000000&after=1", a), 409);
    ASSERT_TRUE(strstr(a->body, "\"wmesh_catchup\":1") && strstr(a->body, epoch));
    ASSERT_TRUE(strstr(a->head, "Content-Type: application/json\r\n") != NULL);
    ASSERT_EQ_INT(get(port, "/data/.wmesh/log?after=x", a), 400);
    ASSERT_TRUE(strncmp(a->body, "bad request: ", 13) == 0);
    ASSERT_EQ_INT(get(port, "/data/.wmesh/log", a), 400);
    ASSERT_EQ_INT(get(port, "/data/.wmesh/other", a), 404);
    ASSERT_EQ_INT(get(port, "/data/.wmesh/", a), 404);

    /* Records 1-4 pruned away: after=2 is gone, after=4 is not. */
    catchup_log_prune(l, T0 + 86400 * SEC + 4500000000LL);
    snprintf(target, sizeof target, "/data/.wmesh/log?epoch=%s&after=2", epoch);
    ASSERT_EQ_INT(get(port, target, a), 410);
    ASSERT_TRUE(strstr(a->body, "\"first\":5") != NULL);
    snprintf(target, sizeof target, "/data/.wmesh/log?epoch=%s&after=4", epoch);
    ASSERT_EQ_INT(get(port, target, a), 200);
    ASSERT_EQ_INT(count_lines(a->body), 7);

    /* Through the project's own client. */
    char url[256], *body = NULL;
    size_t len = 0;
    long status = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/data/.wmesh/status", port);
    ASSERT_EQ_INT(fetch_get_buffer(url, 4096, &body, &len, &status), WM_OK);
    ASSERT_EQ_INT(status, 200);
    struct wm_json *j = NULL;
    ASSERT_TRUE(body && wm_json_parse(body, len, &j, NULL, 0) == WM_OK);
    int64_t first = 0;
    ASSERT_TRUE(wm_json_integer(wm_json_object_get(j, "first"), &first));
    ASSERT_EQ_INT(first, 5);
    wm_json_free(&j);
    free(body);
    free(a);
}

static void test_status_down(struct catchup_log *l)
{
    struct catchup_serve_options o = {.peer_id = "p\"1", .url = "u", .interval_s = 30};
    char *text = NULL;
    size_t len = 0;
    ASSERT_EQ_INT(catchup_status_json(l, &o, "down", T0, &text, &len), WM_OK);
    char want[256];
    snprintf(want, sizeof want,
             "{\"wmesh_catchup\":1,\"peer\":\"p\\\"1\",\"epoch\":\"%s\",\"url\":\"u\","
             "\"interval\":30,\"time\":\"20261207T000000Z\",\"state\":\"down\"}",
             catchup_log_epoch(l));
    ASSERT_EQ_STR(text, want);
    ASSERT_EQ_INT(len, strlen(want));
    free(text);
    ASSERT_EQ_INT(catchup_status_json(NULL, &o, "up", T0, &text, &len), WM_ERR_INVAL);
}

/* Serves a log of 10 records under /data and queries it. */
static void test_serve(void)
{
    char dir[128], root[128];
    snprintf(dir, sizeof dir, "%s/served", base);
    snprintf(root, sizeof root, "%s/tree", base);
    struct catchup_log *l = open_log(dir, 250);
    struct tree *t = tree_open(root);
    ASSERT_TRUE(l && t);
    enum wm_err err = WM_ERR_LIB;
    struct httpd *h = t ? httpd_start("127.0.0.1:0", t, "/data", &err) : NULL;
    ASSERT_TRUE(h != NULL);
    struct catchup_serve *s = NULL;
    struct catchup_serve_options o = {.peer_id = "peer-1", .url = "http://h/data/.wmesh/"};
    if (l && h) {
        for (int i = 1; i <= 10; i++) {
            char topic[32], msg[32];
            snprintf(topic, sizeof topic, "x/%d/%d", i % 2, i % 3);
            snprintf(msg, sizeof msg, "{\"n\":%d}", i);
            uint64_t seq = catchup_log_take_seq(l);
            ASSERT_EQ_INT(catchup_log_append(l, seq, topic, msg, strlen(msg), T0 + i * SEC), WM_OK);
        }
        ASSERT_EQ_INT(catchup_serve_attach(h, "/data/", l, &o, &s), WM_OK);
        test_http(l, httpd_port(h));
        test_status_down(l);
    }
    httpd_stop(&h);
    catchup_serve_free(&s);
    catchup_log_close(&l);
    tree_close(&t);
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
    test_query_parse();
    test_serve();
    buf_free(&out);
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return TEST_REPORT();
}
