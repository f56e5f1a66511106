/* test_peer_admit.c: the admission decisions of peer_admit.c against a real tree, journal and
 * seen-caches in a temporary directory: refusals, duplicates of what is held or in flight,
 * versions ordered by pubTime, deferral, and which held files a resent or replayed message has
 * announced again (decided from what this process handled, never from clocks). */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"
#include "filter.h"
#include "journal.h"
#include "loop.h"
#include "peer_internal.h"
#include "seen.h"
#include "strmap.h"
#include "test.h"
#include "tree.h"

#define NOW_NS (loop_wall_ns())
#define SEC INT64_C(1000000000)

static char dir[64], tree_dir[128], journal_path[128];
static struct peer_config cfg;
static struct peer P;

static uint64_t counter(atomic_uint_fast64_t *c)
{
    return (uint64_t)atomic_load(c);
}

static uint64_t rejected(enum wm_reject r)
{
    return counter(&P.metrics.rejected[r]);
}

static void sha512_of(const char *text, struct wm_checksum *out)
{
    if (integrity_of_buffer(WM_SUM_SHA512, "x", text, strlen(text), out) != WM_OK) abort();
}

/* An announcement of rel with content's checksum, pubTime now + offset seconds. */
static struct announce *make(const char *rel, const char *content, int64_t offset_s)
{
    struct announce *a = announce_new();
    if (!a) abort();
    a->rel_path = strdup(rel);
    a->base_url = strdup("http://127.0.0.1:9/data");
    if (!a->rel_path || !a->base_url) abort();
    a->pubtime_ns = NOW_NS + offset_s * SEC;
    a->size = (int64_t)strlen(content);
    sha512_of(content, &a->sum);
    return a;
}

/* Puts content at rel in the tree, with mtime (the version's pubTime) now + offset seconds. */
static void hold(const char *rel, const char *content, int64_t offset_s)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tree_dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0755);
    *slash = '/';
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content)) abort();
    int64_t t = NOW_NS + offset_s * SEC;
    struct timespec ts[2] = {{t / SEC, t % SEC}, {t / SEC, t % SEC}};
    futimens(fd, ts);
    close(fd);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/wm-admit-XXXXXX");
    if (!mkdtemp(dir)) abort();
    snprintf(tree_dir, sizeof tree_dir, "%s/tree", dir);
    snprintf(journal_path, sizeof journal_path, "%s/journal", dir);
    cfg = (struct peer_config){.dir = tree_dir,
                               .post_base_url = "http://127.0.0.1:9/mine",
                               .lag_drop_s = 3600,
                               .max_size = 1000,
                               .max_queue = 1000,
                               .max_downloads = 4,
                               .retry_for_s = 3600,
                               .exchange = "xpublic",
                               .topic_prefix = "v03/post"};
    P = (struct peer){.cfg = &cfg, .reading = true};
    metrics_init(&P.metrics);
    P.loop = loop_new();
    P.tree = tree_open(tree_dir);
    P.inflight = strmap_new();
    P.journal = journal_open(journal_path, NULL);
    P.seen = seen_new(1000, 3600);
    P.handled = seen_new(1000, SEEN_TTL_MAX);
    struct fetch_options fo = {.max_per_host = 4, .max_total = 4};
    P.fetcher = fetch_new(P.loop, &fo);
    if (!P.loop || !P.tree || !P.inflight || !P.journal || !P.seen || !P.handled || !P.fetcher)
        abort();
}

static void teardown(void)
{
    jobs_drop_all(&P);
    fetch_free(&P.fetcher);
    seen_free(&P.seen);
    seen_free(&P.handled);
    journal_close(&P.journal);
    strmap_free(&P.inflight);
    tree_close(&P.tree);
    loop_free(&P.loop);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static struct job *in_flight(const char *key)
{
    return strmap_get(P.inflight, key);
}

static void test_refusals(void)
{
    struct announce *a = make("../etc/passwd", "x", 0);
    ASSERT_TRUE(peer_admit(&P, a, 0, ADMIT_FRESH, NULL));
    ASSERT_EQ_INT(rejected(WM_REJECT_UNSAFE_PATH), 1);
    ASSERT_TRUE(peer_admit(&P, make("a/future", "x", 3600), 0, ADMIT_FRESH, NULL));
    ASSERT_TRUE(peer_admit(&P, make("a/late", "x", -7200), 0, ADMIT_FRESH, NULL));
    ASSERT_EQ_INT(rejected(WM_REJECT_LAG), 2);
    a = make("a/big", "x", 0);
    a->size = 5000;
    ASSERT_TRUE(peer_admit(&P, a, 0, ADMIT_FRESH, NULL));
    ASSERT_EQ_INT(rejected(WM_REJECT_TOO_BIG), 1);
    a = make("a/ftp", "x", 0);
    a->download_url = strdup("ftp://127.0.0.1/a/ftp");
    ASSERT_TRUE(peer_admit(&P, a, 0, ADMIT_FRESH, NULL));
    ASSERT_EQ_INT(rejected(WM_REJECT_URL), 1);
    /* A refusal journals nothing, and one of a replayed entry finishes it. */
    ASSERT_EQ_INT(journal_live(P.journal), 0);
    struct journal_entry e = {.payload = "{}", .len = 2};
    uint64_t id;
    ASSERT_EQ_INT(journal_add_entry(P.journal, &e, &id), WM_OK);
    ASSERT_TRUE(peer_admit(&P, make("a/../../x", "x", 0), id, ADMIT_REPLAYED, NULL));
    ASSERT_EQ_INT(journal_live(P.journal), 0);
    ASSERT_EQ_INT(strmap_count(P.inflight), 0);
}

static void test_versions(void)
{
    /* Held, same bytes: a duplicate, remembered in the seen-cache. */
    hold("v/same", "same bytes", -10);
    ASSERT_TRUE(peer_admit(&P, make("v/same", "same bytes", 0), 0, ADMIT_FRESH, NULL));
    ASSERT_EQ_INT(counter(&P.metrics.duplicates), 1);
    struct wm_checksum s;
    sha512_of("same bytes", &s);
    ASSERT_TRUE(seen_contains(P.seen, seen_key("v/same", &s), peer_now_s()));
    /* Held newer (a later pubTime): the older version is refused as stale. */
    hold("v/newer", "version 2", 60);
    ASSERT_TRUE(peer_admit(&P, make("v/newer", "version 1", 0), 0, ADMIT_FRESH, NULL));
    ASSERT_EQ_INT(rejected(WM_REJECT_STALE), 1);
    ASSERT_TRUE(!in_flight("v/newer"));
    /* Held older: the new version is fetched (a job, journaled). */
    hold("v/older", "version 1", -60);
    ASSERT_TRUE(peer_admit(&P, make("v/older", "version 2", 0), 0, ADMIT_FRESH, NULL));
    struct job *j = in_flight("v/older");
    ASSERT_TRUE(j != NULL);
    ASSERT_TRUE(j && j->jid != 0);
    ASSERT_EQ_INT(journal_live(P.journal), 1);
    /* The same version again, while in flight: a duplicate, its URL a second source. */
    struct announce *a = make("v/older", "version 2", 0);
    free(a->base_url);
    a->base_url = strdup("http://127.0.0.2:9/data");
    ASSERT_TRUE(peer_admit(&P, a, 0, ADMIT_FRESH, NULL));
    ASSERT_EQ_INT(counter(&P.metrics.duplicates), 2);
    ASSERT_TRUE(j && j->nurls == 2);
    /* An older version than the one in flight: stale. */
    ASSERT_TRUE(peer_admit(&P, make("v/older", "version 1.5", -30), 0, ADMIT_FRESH, NULL));
    ASSERT_EQ_INT(rejected(WM_REJECT_STALE), 2);
    /* A newer one, while the download runs: journaled and deferred behind it. */
    ASSERT_TRUE(peer_admit(&P, make("v/older", "version 3", 10), 0, ADMIT_FRESH, NULL));
    ASSERT_TRUE(j && j->ndeferred == 1);
    ASSERT_EQ_INT(journal_live(P.journal), 2);
    /* Fresh and in the seen-cache: a duplicate without looking at the tree. */
    struct announce *b = make("v/gone", "seen before", 0);
    seen_add(P.seen, seen_key("v/gone", &b->sum), peer_now_s());
    ASSERT_TRUE(peer_admit(&P, b, 0, ADMIT_FRESH, NULL));
    ASSERT_EQ_INT(counter(&P.metrics.duplicates), 3);
}

/* A broker's resend (DUP) of a message whose file is held: announced again unless this process
 * handled that version. Neither the file's times nor the clock take part. */
static void test_resent_and_replayed(void)
{
    uint64_t before = counter(&P.metrics.reannounced);
    /* Stored by an earlier process, its change time in the future as after a clock step back:
     * this process never handled it, so it is announced. */
    hold("r/earlier", "earlier", 0);
    ASSERT_TRUE(peer_admit(&P, make("r/earlier", "earlier", 0), 0, ADMIT_RESENT, NULL));
    ASSERT_EQ_INT(counter(&P.metrics.reannounced), before + 1);
    ASSERT_EQ_INT(counter(&P.metrics.duplicates), 3);
    /* Handled here: its announcement went, or goes, through the outbox. */
    hold("r/here", "here", -3600);
    struct wm_checksum s;
    sha512_of("here", &s);
    peer_handled(&P, "r/here", &s);
    ASSERT_TRUE(peer_admit(&P, make("r/here", "here", 0), 0, ADMIT_RESENT, NULL));
    ASSERT_EQ_INT(counter(&P.metrics.reannounced), before + 1);
    ASSERT_EQ_INT(counter(&P.metrics.duplicates), 4);
    /* The reannouncement just made marked r/earlier handled: a second resend is a duplicate. */
    ASSERT_TRUE(peer_admit(&P, make("r/earlier", "earlier", 0), 0, ADMIT_RESENT, NULL));
    ASSERT_EQ_INT(counter(&P.metrics.reannounced), before + 1);
    /* A journal entry replayed for a file held: announced again (the entry shows it was not). */
    hold("r/replayed", "replayed", 0);
    struct journal_entry e = {.payload = "{}", .len = 2};
    uint64_t id;
    ASSERT_EQ_INT(journal_add_entry(P.journal, &e, &id), WM_OK);
    size_t live = journal_live(P.journal);
    ASSERT_TRUE(peer_admit(&P, make("r/replayed", "replayed", 0), id, ADMIT_REPLAYED, NULL));
    ASSERT_EQ_INT(counter(&P.metrics.reannounced), before + 2);
    ASSERT_EQ_INT(journal_live(P.journal), live - 1); /* no post broker: finished at once */
    ASSERT_TRUE(!in_flight("r/replayed"));
}

static void test_inline(void)
{
    struct announce *a = make("i/small", "inline bytes", 0);
    a->content = (unsigned char *)strdup("inline bytes");
    a->content_len = strlen("inline bytes");
    a->content_encoding = WM_CONTENT_UTF8;
    size_t live = journal_live(P.journal);
    ASSERT_TRUE(peer_admit(&P, a, 0, ADMIT_FRESH, NULL));
    ASSERT_EQ_INT(counter(&P.metrics.inlined), 1);
    ASSERT_TRUE(!in_flight("i/small"));
    ASSERT_EQ_INT(journal_live(P.journal), live); /* journaled, then finished */
    struct wm_checksum s;
    sha512_of("inline bytes", &s);
    ASSERT_TRUE(peer_holds(&P, "i/small", &s, true));
    /* Wrong inline bytes: not stored, counted. */
    a = make("i/wrong", "the announced bytes", 0);
    a->content = (unsigned char *)strdup("other bytes");
    a->content_len = strlen("other bytes");
    a->content_encoding = WM_CONTENT_UTF8;
    ASSERT_TRUE(peer_admit(&P, a, 0, ADMIT_FRESH, NULL));
    ASSERT_EQ_INT(counter(&P.metrics.integrity_failures), 1);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/i/wrong", tree_dir);
    ASSERT_TRUE(access(path, F_OK) != 0);
}

int main(void)
{
    setup();
    test_refusals();
    test_versions();
    test_resent_and_replayed();
    test_inline();
    teardown();
    return TEST_REPORT();
}
