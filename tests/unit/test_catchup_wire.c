/* test_catchup_wire.c: the catch-up readers of untrusted input (identities, marks in
 * announcements, URLs, statuses) and the window of received seqs. */
#include <errno.h>
#include <stdlib.h>

#include "announce.h"
#include "catchup_wire.h"
#include "json.h"
#include "test.h"

#define EPOCH "20261201T000000Z.3f9a7c21"
#define TOPIC "xpublic/_catchup/peer-017"

/* ---- identities ---- */

static void test_id_epoch(void)
{
    ASSERT_TRUE(catchup_id_ok("peer-017", 8));
    ASSERT_TRUE(catchup_id_ok("A.b_c-9", 7));
    ASSERT_TRUE(!catchup_id_ok("", 0));
    ASSERT_TRUE(!catchup_id_ok("a b", 3));
    ASSERT_TRUE(!catchup_id_ok("a/b", 3));
    ASSERT_TRUE(!catchup_id_ok("a\0b", 3));
    ASSERT_TRUE(!catchup_id_ok("p\xc3\xa9", 3));
    char id[66];
    memset(id, 'x', sizeof id);
    ASSERT_TRUE(catchup_id_ok(id, 64));
    ASSERT_TRUE(!catchup_id_ok(id, 65));
    ASSERT_TRUE(!catchup_id_ok(NULL, 1));

    ASSERT_TRUE(catchup_epoch_ok(EPOCH, strlen(EPOCH)));
    ASSERT_TRUE(catchup_epoch_ok("!~", 2));
    ASSERT_TRUE(!catchup_epoch_ok("", 0));
    ASSERT_TRUE(!catchup_epoch_ok("a b", 3));
    ASSERT_TRUE(!catchup_epoch_ok("a\"b", 3));
    ASSERT_TRUE(!catchup_epoch_ok("a\\b", 3));
    ASSERT_TRUE(!catchup_epoch_ok("a\tb", 3));
    ASSERT_TRUE(!catchup_epoch_ok("a\x7f", 2));
    ASSERT_TRUE(!catchup_epoch_ok("\xc3\xa9", 2));
    ASSERT_TRUE(catchup_epoch_ok(id, 63));
    ASSERT_TRUE(!catchup_epoch_ok(id, 64));
}

static bool seq_is(const char *s, uint64_t want)
{
    uint64_t v = 12345;
    return catchup_seq_parse(s, strlen(s), &v) && v == want;
}

static void test_seq_parse(void)
{
    uint64_t v = 7;
    ASSERT_TRUE(seq_is("0", 0));
    ASSERT_TRUE(seq_is("1", 1));
    ASSERT_TRUE(seq_is("9007199254740991", 9007199254740991));
    ASSERT_TRUE(!catchup_seq_parse("9007199254740992", 16, &v)); /* 2^53 */
    ASSERT_TRUE(!catchup_seq_parse("12345678901234567", 17, &v));
    ASSERT_TRUE(!catchup_seq_parse("00", 2, &v));
    ASSERT_TRUE(!catchup_seq_parse("01", 2, &v));
    ASSERT_TRUE(!catchup_seq_parse("-1", 2, &v));
    ASSERT_TRUE(!catchup_seq_parse("+1", 2, &v));
    ASSERT_TRUE(!catchup_seq_parse(" 1", 2, &v));
    ASSERT_TRUE(!catchup_seq_parse("1 ", 2, &v));
    ASSERT_TRUE(!catchup_seq_parse("", 0, &v));
    ASSERT_EQ_INT(v, 7); /* untouched on failure */
    ASSERT_TRUE(catchup_seq_parse("42x", 2, &v) && v == 42);
}

/* ---- marks ---- */

/* An announcement of format fmt whose extra is the JSON text extra. */
static struct announce *with_extra(enum wm_format fmt, const char *extra)
{
    struct announce *a = announce_new();
    if (!a) abort();
    a->format = fmt;
    if (wm_json_parse(extra, strlen(extra), &a->extra, NULL, 0) != WM_OK) abort();
    return a;
}

/* Whether an announcement of format fmt with extra holds a mark; *out gets it. */
static bool read_mark(enum wm_format fmt, const char *extra, struct catchup_mark *out)
{
    struct announce *a = with_extra(fmt, extra);
    bool ok = catchup_mark_read(a, out);
    announce_free(&a);
    return ok;
}

static bool parse_text(const char *text)
{
    struct catchup_mark m;
    return catchup_mark_parse(text, strlen(text), &m);
}

static void test_mark_read(void)
{
    struct catchup_mark m;
    ASSERT_TRUE(read_mark(WM_FORMAT_V03,
                          "{\"catchup\":{\"peer\":\"peer-017\",\"epoch\":\"" EPOCH
                          "\",\"seq\":12345678,\"more\":1}}",
                          &m));
    ASSERT_EQ_STR(m.peer, "peer-017");
    ASSERT_EQ_STR(m.epoch, EPOCH);
    ASSERT_EQ_INT(m.seq, 12345678);

    ASSERT_TRUE(read_mark(WM_FORMAT_ARRAY, "{\"catchup\":\"p " EPOCH " 9\"}", &m));
    ASSERT_EQ_STR(m.peer, "p");
    ASSERT_EQ_STR(m.epoch, EPOCH);
    ASSERT_EQ_INT(m.seq, 9);

    ASSERT_TRUE(read_mark(WM_FORMAT_WNM,
                          "{\"properties\":{\"catchup\":{\"peer\":\"w\",\"epoch\":\"e\",\"seq\":"
                          "9007199254740991}}}",
                          &m));
    ASSERT_EQ_INT(m.seq, 9007199254740991);

    /* Each format in its own place only. */
    ASSERT_TRUE(!read_mark(WM_FORMAT_V03, "{\"catchup\":\"p e 9\"}", &m));
    ASSERT_TRUE(!read_mark(WM_FORMAT_ARRAY,
                           "{\"catchup\":{\"peer\":\"p\",\"epoch\":\"e\",\"seq\":9}}", &m));
    ASSERT_TRUE(
        !read_mark(WM_FORMAT_WNM, "{\"catchup\":{\"peer\":\"p\",\"epoch\":\"e\",\"seq\":9}}", &m));
    ASSERT_TRUE(!read_mark(WM_FORMAT_WNM, "{\"properties\":\"x\"}", &m));

    /* Missing fields, wrong types, seqs out of range. */
    ASSERT_TRUE(!read_mark(WM_FORMAT_V03, "{}", &m));
    ASSERT_TRUE(!read_mark(WM_FORMAT_V03, "{\"catchup\":{\"epoch\":\"e\",\"seq\":9}}", &m));
    ASSERT_TRUE(!read_mark(WM_FORMAT_V03, "{\"catchup\":{\"peer\":\"p\",\"seq\":9}}", &m));
    ASSERT_TRUE(!read_mark(WM_FORMAT_V03, "{\"catchup\":{\"peer\":\"p\",\"epoch\":\"e\"}}", &m));
    ASSERT_TRUE(!read_mark(WM_FORMAT_V03, "{\"catchup\":[\"p\",\"e\",9]}", &m));
    ASSERT_TRUE(
        !read_mark(WM_FORMAT_V03, "{\"catchup\":{\"peer\":1,\"epoch\":\"e\",\"seq\":9}}", &m));
    ASSERT_TRUE(!read_mark(WM_FORMAT_V03,
                           "{\"catchup\":{\"peer\":\"p\",\"epoch\":\"e\",\"seq\":\"9\"}}", &m));
    ASSERT_TRUE(!read_mark(WM_FORMAT_V03,
                           "{\"catchup\":{\"peer\":\"p\",\"epoch\":\"e\",\"seq\":9.0}}", &m));
    ASSERT_TRUE(
        !read_mark(WM_FORMAT_V03, "{\"catchup\":{\"peer\":\"p\",\"epoch\":\"e\",\"seq\":0}}", &m));
    ASSERT_TRUE(
        !read_mark(WM_FORMAT_V03, "{\"catchup\":{\"peer\":\"p\",\"epoch\":\"e\",\"seq\":-5}}", &m));
    ASSERT_TRUE(
        !read_mark(WM_FORMAT_V03,
                   "{\"catchup\":{\"peer\":\"p\",\"epoch\":\"e\",\"seq\":9007199254740992}}", &m));
    ASSERT_TRUE(!read_mark(
        WM_FORMAT_V03, "{\"catchup\":{\"peer\":\"p\",\"epoch\":\"e\",\"seq\":9223372036854775807}}",
        &m));
    ASSERT_TRUE(!read_mark(WM_FORMAT_V03,
                           "{\"catchup\":{\"peer\":\"a b\",\"epoch\":\"e\",\"seq\":9}}", &m));
    ASSERT_TRUE(!read_mark(WM_FORMAT_V03,
                           "{\"catchup\":{\"peer\":\"p\",\"epoch\":\"e f\",\"seq\":9}}", &m));
    ASSERT_TRUE(!read_mark(WM_FORMAT_ARRAY, "{\"catchup\":9}", &m));

    struct announce *a = announce_new();
    ASSERT_TRUE(a && !catchup_mark_read(a, &m)); /* no extra */
    announce_free(&a);
}

static void test_mark_parse(void)
{
    struct catchup_mark m;
    ASSERT_TRUE(catchup_mark_parse("peer-017 " EPOCH " 12345678", 9 + 25 + 9, &m));
    ASSERT_EQ_STR(m.peer, "peer-017");
    ASSERT_EQ_INT(m.seq, 12345678);
    /* Not NUL-terminated: only len bytes count. */
    ASSERT_TRUE(catchup_mark_parse("p e 12junk", 6, &m));
    ASSERT_EQ_INT(m.seq, 12);
    ASSERT_TRUE(parse_text("p e 9007199254740991"));

    ASSERT_TRUE(!parse_text(""));
    ASSERT_TRUE(!parse_text("p e"));
    ASSERT_TRUE(!parse_text("p e 9 x")); /* four fields */
    ASSERT_TRUE(!parse_text("p  e 9"));  /* two spaces */
    ASSERT_TRUE(!parse_text("p e  9"));
    ASSERT_TRUE(!parse_text(" p e 9"));                   /* leading space */
    ASSERT_TRUE(!parse_text("p e 9 "));                   /* trailing space */
    ASSERT_TRUE(!parse_text("p\te 9"));                   /* a tab is not the separator */
    ASSERT_TRUE(!parse_text("p e 0"));                    /* seqs start at 1 */
    ASSERT_TRUE(!parse_text("p e 09"));                   /* a leading zero */
    ASSERT_TRUE(!parse_text("p e -9"));                   /* negative */
    ASSERT_TRUE(!parse_text("p e +9"));                   /* a sign */
    ASSERT_TRUE(!parse_text("p e 9a"));                   /* digits only */
    ASSERT_TRUE(!parse_text("p e 0x10"));                 /* decimal only */
    ASSERT_TRUE(!parse_text("p e 9007199254740992"));     /* 2^53 */
    ASSERT_TRUE(!parse_text("p e 18446744073709551617")); /* past uint64 */
    ASSERT_TRUE(!parse_text("a/b e 9"));                  /* not an id */
    ASSERT_TRUE(!parse_text("p e\"x 9"));                 /* not an epoch */
    ASSERT_TRUE(!catchup_mark_parse("p e 9", 5, NULL));
}

static void test_mark_json(void)
{
    struct catchup_mark m = {.peer = "peer-017", .epoch = EPOCH, .seq = 42}, back;
    struct wm_json *j = catchup_mark_json(&m, WM_FORMAT_ARRAY);
    size_t len = 0;
    ASSERT_EQ_STR(wm_json_string(j, &len), "peer-017 " EPOCH " 42");
    ASSERT_TRUE(catchup_mark_parse(wm_json_string(j, NULL), len, &back) && back.seq == 42);
    wm_json_free(&j);

    j = catchup_mark_json(&m, WM_FORMAT_V03);
    char *text = NULL;
    ASSERT_TRUE(j && wm_json_dump(j, &text, NULL) == WM_OK);
    ASSERT_EQ_STR(text, "{\"peer\":\"peer-017\",\"epoch\":\"" EPOCH "\",\"seq\":42}");
    free(text);
    /* What the builder writes, the reader reads, in each format. */
    struct announce *a = with_extra(WM_FORMAT_WNM, "{\"properties\":{}}");
    ASSERT_TRUE(wm_json_object_set(wm_json_object_get(a->extra, "properties"), "catchup", j) ==
                WM_OK);
    ASSERT_TRUE(catchup_mark_read(a, &back));
    ASSERT_EQ_STR(back.peer, "peer-017");
    ASSERT_EQ_STR(back.epoch, EPOCH);
    ASSERT_EQ_INT(back.seq, 42);
    announce_free(&a);

    struct catchup_mark bad = m;
    bad.seq = 0;
    errno = 0;
    ASSERT_TRUE(catchup_mark_json(&bad, WM_FORMAT_V03) == NULL && errno == EINVAL);
    bad.seq = CATCHUP_SEQ_LIMIT;
    ASSERT_TRUE(catchup_mark_json(&bad, WM_FORMAT_ARRAY) == NULL);
    bad = m;
    memset(bad.peer, 'x', sizeof bad.peer); /* no NUL */
    ASSERT_TRUE(catchup_mark_json(&bad, WM_FORMAT_ARRAY) == NULL);
    bad = m;
    snprintf(bad.epoch, sizeof bad.epoch, "a b");
    ASSERT_TRUE(catchup_mark_json(&bad, WM_FORMAT_V03) == NULL);
    ASSERT_TRUE(catchup_mark_json(NULL, WM_FORMAT_V03) == NULL);
}

/* ---- URLs ---- */

static const char *host(const char *url)
{
    static char out[CATCHUP_HOST_MAX];
    return catchup_url_host(url, out, sizeof out) ? out : "(false)";
}

static void test_url_host(void)
{
    ASSERT_EQ_STR(host("http://Peer-017.Example.ORG/data/.wmesh/"), "peer-017.example.org");
    ASSERT_EQ_STR(host("https://h.example:8443"), "h.example");
    ASSERT_EQ_STR(host("mqtts://owner:s3cret@Broker.example:8883"), "broker.example");
    ASSERT_EQ_STR(host("http://user:pa@ss@h.example/x"), "h.example"); /* the last '@' */
    ASSERT_EQ_STR(host("http://[::1]:8080/x"), "[::1]");
    ASSERT_EQ_STR(host("http://[::1]/x"), "[::1]");
    ASSERT_EQ_STR(host("http://[::1]"), "[::1]");
    ASSERT_EQ_STR(host("http://u:p@[FE80::1]:80/"), "[fe80::1]");
    ASSERT_EQ_STR(host("http://127.0.0.1:80/"), "127.0.0.1");

    /* The host the fetcher would connect to, or none: never one it would not. Before, "?" and
     * "#" ended the host here while url_parse read them as part of the user info. */
    ASSERT_EQ_STR(host("http://trusted.example?@evil.example/"), "(false)");
    ASSERT_EQ_STR(host("http://trusted.example#@evil.example/"), "(false)");
    ASSERT_EQ_STR(host("http://trusted.example\\@evil.example/"), "(false)");
    ASSERT_EQ_STR(host("http://trusted.example @evil.example/"), "(false)");
    ASSERT_EQ_STR(host("http://h.example/?q=a@b#c"), "h.example"); /* after the '/': the path */
    ASSERT_EQ_STR(host("http://:80/"), "(false)");
    ASSERT_EQ_STR(host("http://u@/x"), "(false)");
    ASSERT_EQ_STR(host("http:///x"), "(false)");
    ASSERT_EQ_STR(host("http://[::1/x"), "(false)");
    ASSERT_EQ_STR(host("http://[::1]x/"), "(false)");
    ASSERT_EQ_STR(host("http://[]/"), "(false)");
    ASSERT_EQ_STR(host("http://h:99999/"), "(false)");
    ASSERT_EQ_STR(host("http://h:8a/"), "(false)");
    ASSERT_EQ_STR(host("h.example/x"), "(false)");
    ASSERT_EQ_STR(host("://h/"), "(false)");
    ASSERT_EQ_STR(host(""), "(false)");
    ASSERT_TRUE(!catchup_url_host(NULL, (char[8]){0}, 8));

    char small[6];
    ASSERT_TRUE(catchup_url_host("http://abcde/", small, sizeof small));
    ASSERT_EQ_STR(small, "abcde");
    ASSERT_TRUE(!catchup_url_host("http://abcdef/", small, sizeof small));
    ASSERT_EQ_STR(small, "");
    memcpy(small, "junk", 5);
    ASSERT_TRUE(!catchup_url_host("nothing", small, sizeof small));
    ASSERT_EQ_STR(small, "");
    ASSERT_TRUE(catchup_url_host("http://[::1]/", small, sizeof small));
    ASSERT_TRUE(!catchup_url_host("http://[::12]/", small, sizeof small));
    char big[400] = "http://";
    memset(big + 7, 'a', 300);
    ASSERT_TRUE(!catchup_url_host(big, small, sizeof small));
}

/* ---- statuses ---- */

static enum wm_err status(const char *json, const char *topic, struct catchup_status *out)
{
    return catchup_status_read(json, strlen(json), topic, out);
}

#define STATUS_HEAD "{\"wmesh_catchup\":1,\"peer\":\"peer-017\",\"epoch\":\"" EPOCH "\","
#define URL "\"url\":\"https://peer-017.example.org/data/.wmesh/\""

static void test_status_topic(void)
{
    ASSERT_TRUE(catchup_status_topic("xpublic/_catchup/peer-017"));
    ASSERT_TRUE(catchup_status_topic("a/_catchup/")); /* the peer level is checked by the read */
    ASSERT_TRUE(!catchup_status_topic("xpublic/_catchup"));
    ASSERT_TRUE(!catchup_status_topic("xpublic/_catchup/a/b"));
    ASSERT_TRUE(!catchup_status_topic("a/b/_catchup/p"));
    ASSERT_TRUE(!catchup_status_topic("xpublic/v03/_catchup"));
    ASSERT_TRUE(!catchup_status_topic("xpublic/_catchupx/p"));
    ASSERT_TRUE(!catchup_status_topic("_catchup/p"));
    ASSERT_TRUE(!catchup_status_topic(""));
    ASSERT_TRUE(!catchup_status_topic(NULL));
}

static void test_status_read(void)
{
    struct catchup_status st;
    ASSERT_EQ_INT(status(STATUS_HEAD "\"seq\":12345678,\"first\":11000001," URL
                                     ",\"interval\":5,\"time\":\"20261207T034600Z\","
                                     "\"state\":\"up\"}",
                         TOPIC, &st),
                  WM_OK);
    ASSERT_EQ_STR(st.peer, "peer-017");
    ASSERT_EQ_STR(st.epoch, EPOCH);
    ASSERT_EQ_STR(st.url, "https://peer-017.example.org/data/.wmesh/");
    ASSERT_EQ_INT(st.seq, 12345678);
    ASSERT_EQ_INT(st.first, 11000001);
    ASSERT_TRUE(!st.down);

    /* A "down" status carries neither seq nor first. */
    ASSERT_EQ_INT(status(STATUS_HEAD URL ",\"state\":\"down\"}", TOPIC, &st), WM_OK);
    ASSERT_TRUE(st.down);
    ASSERT_EQ_INT(st.seq, 0);
    ASSERT_EQ_INT(st.first, 0);
    ASSERT_EQ_INT(status(STATUS_HEAD URL "}", TOPIC, &st), WM_OK);
    ASSERT_TRUE(!st.down);
    ASSERT_EQ_INT(status(STATUS_HEAD URL ",\"seq\":9007199254740991}", TOPIC, &st), WM_OK);
    ASSERT_EQ_INT(st.seq, 9007199254740991);
    ASSERT_EQ_INT(status(STATUS_HEAD "\"url\":\"http://[::1]:8080/.wmesh/\"}", TOPIC, &st), WM_OK);

    /* The peer must be the topic's. */
    ASSERT_EQ_INT(status(STATUS_HEAD URL "}", "xpublic/_catchup/peer-018", &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD URL "}", "xpublic/_catchup/peer-01", &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD URL "}", "xpublic/_catchup/", &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status("{\"wmesh_catchup\":1,\"peer\":\"a b\",\"epoch\":\"e\"," URL "}",
                         "x/_catchup/a b", &st),
                  WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD URL "}", "xpublic/v03/peer-017", &st), WM_ERR_INVAL);

    /* Versions, types, missing fields. */
    ASSERT_EQ_INT(
        status("{\"wmesh_catchup\":2,\"peer\":\"peer-017\",\"epoch\":\"e\"," URL "}", TOPIC, &st),
        WM_ERR_FORMAT);
    ASSERT_EQ_INT(status("{\"wmesh_catchup\":\"1\",\"peer\":\"peer-017\",\"epoch\":\"e\"," URL "}",
                         TOPIC, &st),
                  WM_ERR_FORMAT);
    ASSERT_EQ_INT(status("{\"peer\":\"peer-017\",\"epoch\":\"e\"," URL "}", TOPIC, &st),
                  WM_ERR_FORMAT);
    ASSERT_EQ_INT(status("{\"wmesh_catchup\":1,\"epoch\":\"e\"," URL "}", TOPIC, &st),
                  WM_ERR_FORMAT);
    ASSERT_EQ_INT(status("{\"wmesh_catchup\":1,\"peer\":\"peer-017\"," URL "}", TOPIC, &st),
                  WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD "\"seq\":1}", TOPIC, &st), WM_ERR_FORMAT); /* no url */
    ASSERT_EQ_INT(status(STATUS_HEAD "\"url\":7}", TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD URL ",\"state\":1}", TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD URL ",\"seq\":\"5\"}", TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD URL ",\"seq\":5.5}", TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD URL ",\"seq\":-1}", TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD URL ",\"seq\":9007199254740992}", TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD URL ",\"seq\":9223372036854775807}", TOPIC, &st),
                  WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD URL ",\"seq\":99999999999999999999}", TOPIC, &st),
                  WM_ERR_FORMAT); /* beyond int64: not JSON this parser takes */
    ASSERT_EQ_INT(status(STATUS_HEAD URL ",\"first\":-3}", TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD URL ",\"epoch\":\"x\"}", TOPIC, &st), WM_ERR_FORMAT); /* dup */
    ASSERT_EQ_INT(
        status("{\"wmesh_catchup\":1,\"peer\":\"peer-017\",\"epoch\":\"a b\"," URL "}", TOPIC, &st),
        WM_ERR_FORMAT);
    ASSERT_EQ_INT(status("[1]", TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status("\"x\"", TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status("{", TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status("", TOPIC, &st), WM_ERR_FORMAT);

    /* URLs: http or https only, one host, no space or control byte. */
    ASSERT_EQ_INT(status(STATUS_HEAD "\"url\":\"ftp://h.example/\"}", TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD "\"url\":\"file:///etc/passwd\"}", TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD "\"url\":\"/data/.wmesh/\"}", TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD "\"url\":\"http://h.example/a b\"}", TOPIC, &st),
                  WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD "\"url\":\"http://h.example/\\r\\nX: y\"}", TOPIC, &st),
                  WM_ERR_FORMAT);
    ASSERT_EQ_INT(
        status(STATUS_HEAD "\"url\":\"http://trusted.example?@evil.example/\"}", TOPIC, &st),
        WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD "\"url\":\"http://\"}", TOPIC, &st), WM_ERR_FORMAT);
    /* Credentials are the publisher's business: kept as they are. */
    ASSERT_EQ_INT(status(STATUS_HEAD "\"url\":\"http://u:p@h.example/.wmesh/\"}", TOPIC, &st),
                  WM_OK);
    ASSERT_EQ_STR(st.url, "http://u:p@h.example/.wmesh/");

    /* A NUL in the payload, not in the JSON: refused by the parser. */
    char nul[] = STATUS_HEAD URL "}";
    ASSERT_EQ_INT(catchup_status_read(nul, sizeof nul, TOPIC, &st), WM_ERR_FORMAT);
    ASSERT_EQ_INT(status(STATUS_HEAD "\"url\":\"http://h/\\u0000\"}", TOPIC, &st), WM_ERR_FORMAT);

    /* Sizes: the payload, and a URL longer than the struct holds. */
    size_t n = CATCHUP_STATUS_MAX + 1;
    char *big = malloc(n);
    if (!big) abort();
    memset(big, ' ', n);
    ASSERT_EQ_INT(catchup_status_read(big, n, TOPIC, &st), WM_ERR_TOOBIG);
    ASSERT_EQ_INT(catchup_status_read(big, n - 1, TOPIC, &st), WM_ERR_FORMAT);
    int len = snprintf(big, n, STATUS_HEAD "\"url\":\"http://h/%0*d\"}", CATCHUP_URL_MAX, 0);
    ASSERT_EQ_INT(catchup_status_read(big, (size_t)len, TOPIC, &st), WM_ERR_FORMAT);
    len = snprintf(big, n, STATUS_HEAD "\"url\":\"http://h/%0*d\"}", CATCHUP_URL_MAX - 9, 0);
    ASSERT_EQ_INT(catchup_status_read(big, (size_t)len, TOPIC, &st), WM_OK);
    ASSERT_EQ_INT(strlen(st.url), CATCHUP_URL_MAX);
    free(big);

    ASSERT_EQ_INT(catchup_status_read(NULL, 0, TOPIC, &st), WM_ERR_INVAL);
    ASSERT_EQ_INT(catchup_status_read("{}", 2, NULL, &st), WM_ERR_INVAL);
    ASSERT_EQ_INT(catchup_status_read("{}", 2, TOPIC, NULL), WM_ERR_INVAL);
}

/* ---- the seqs ---- */

static void test_seqs_in_order(void)
{
    struct catchup_seqs s = {0};
    ASSERT_TRUE(!catchup_seqs_missing(&s));
    for (uint64_t q = 1; q <= 10000; q++)
        if (!catchup_seqs_note(&s, q)) TEST_FAIL_AT("seq %" PRIu64 " did not move done", q);
    ASSERT_EQ_INT(s.done, 10000);
    ASSERT_EQ_INT(s.max_seen, 10000);
    ASSERT_TRUE(!catchup_seqs_missing(&s));
    for (size_t i = 0; i < CATCHUP_WINDOW / 64; i++)
        ASSERT_EQ_INT(s.bits[i], 0);
}

static void test_seqs_out_of_order(void)
{
    struct catchup_seqs s = {0};
    ASSERT_TRUE(!catchup_seqs_note(&s, 3));
    ASSERT_TRUE(catchup_seqs_missing(&s));
    ASSERT_EQ_INT(s.done, 0);
    ASSERT_EQ_INT(s.max_seen, 3);
    ASSERT_TRUE(!catchup_seqs_note(&s, 2));
    ASSERT_TRUE(catchup_seqs_note(&s, 1)); /* 1, 2, 3 in a row */
    ASSERT_EQ_INT(s.done, 3);
    ASSERT_TRUE(!catchup_seqs_missing(&s));

    /* Duplicates: of a seq below done, and of one above it. */
    ASSERT_TRUE(!catchup_seqs_note(&s, 2));
    ASSERT_TRUE(!catchup_seqs_note(&s, 3));
    ASSERT_TRUE(!catchup_seqs_note(&s, 5));
    ASSERT_TRUE(!catchup_seqs_note(&s, 5));
    ASSERT_EQ_INT(s.done, 3);
    ASSERT_TRUE(catchup_seqs_note(&s, 4));
    ASSERT_EQ_INT(s.done, 5);
    ASSERT_TRUE(!catchup_seqs_note(&s, 0));
    ASSERT_EQ_INT(s.done, 5);
}

static void test_seqs_window(void)
{
    struct catchup_seqs s = {0};
    /* done + WINDOW is the last seq remembered; one more is not. */
    ASSERT_TRUE(!catchup_seqs_note(&s, CATCHUP_WINDOW));
    ASSERT_TRUE(!catchup_seqs_note(&s, CATCHUP_WINDOW + 2));
    ASSERT_EQ_INT(s.max_seen, CATCHUP_WINDOW + 2);
    for (uint64_t q = 1; q < CATCHUP_WINDOW; q++)
        (void)catchup_seqs_note(&s, q);
    ASSERT_EQ_INT(s.done, CATCHUP_WINDOW); /* WINDOW came; WINDOW + 1 did not */
    ASSERT_TRUE(catchup_seqs_missing(&s));
    ASSERT_TRUE(catchup_seqs_note(&s, CATCHUP_WINDOW + 1));
    /* WINDOW + 2 came beyond the window then: not remembered, still missing. */
    ASSERT_EQ_INT(s.done, CATCHUP_WINDOW + 1);
    ASSERT_TRUE(catchup_seqs_missing(&s));
    ASSERT_TRUE(catchup_seqs_note(&s, CATCHUP_WINDOW + 2));
    ASSERT_TRUE(!catchup_seqs_missing(&s));

    /* A jump far beyond: max_seen rises, nothing is remembered, no bit aliases. */
    catchup_seqs_reset(&s, 100);
    ASSERT_TRUE(!catchup_seqs_note(&s, 102 + 3 * CATCHUP_WINDOW));
    ASSERT_EQ_INT(s.max_seen, 102 + 3 * CATCHUP_WINDOW);
    ASSERT_TRUE(catchup_seqs_note(&s, 101));
    ASSERT_EQ_INT(s.done, 101); /* the jump's seq has the bit of 102: kept, it would count */
    ASSERT_TRUE(!catchup_seqs_note(&s, 103));
    ASSERT_EQ_INT(s.done, 101);

    /* Seqs near 2^53. */
    catchup_seqs_reset(&s, CATCHUP_SEQ_LIMIT - 3);
    ASSERT_TRUE(catchup_seqs_note(&s, CATCHUP_SEQ_LIMIT - 2));
    ASSERT_TRUE(catchup_seqs_note(&s, CATCHUP_SEQ_LIMIT - 1));
    ASSERT_TRUE(!catchup_seqs_missing(&s));
}

static void test_seqs_cover_expect(void)
{
    struct catchup_seqs s = {0};
    (void)catchup_seqs_note(&s, 5);
    (void)catchup_seqs_note(&s, 7);
    (void)catchup_seqs_note(&s, 12);
    /* A fetch covered up to 4: done moves there, then over 5. */
    ASSERT_TRUE(catchup_seqs_cover(&s, 4));
    ASSERT_EQ_INT(s.done, 5);
    ASSERT_TRUE(catchup_seqs_missing(&s));
    /* Up to 10: over 7 and what did not come; 12 still kept, 11 missing. */
    ASSERT_TRUE(catchup_seqs_cover(&s, 10));
    ASSERT_EQ_INT(s.done, 10);
    ASSERT_TRUE(catchup_seqs_missing(&s));
    ASSERT_TRUE(catchup_seqs_note(&s, 11));
    ASSERT_EQ_INT(s.done, 12);
    /* Never back; a cover beyond max_seen raises it. */
    ASSERT_TRUE(!catchup_seqs_cover(&s, 3));
    ASSERT_EQ_INT(s.done, 12);
    ASSERT_TRUE(catchup_seqs_cover(&s, 20));
    ASSERT_EQ_INT(s.max_seen, 20);
    ASSERT_TRUE(!catchup_seqs_missing(&s));

    /* Cover then note: a seq the fetch covered is a duplicate, a later one counts. */
    ASSERT_TRUE(!catchup_seqs_note(&s, 20));
    ASSERT_TRUE(catchup_seqs_note(&s, 21));
    ASSERT_EQ_INT(s.done, 21);

    /* A cover a window or more on forgets every bit: 23's would stand for 23 + a window. */
    (void)catchup_seqs_note(&s, 23);
    ASSERT_TRUE(catchup_seqs_cover(&s, 21 + CATCHUP_WINDOW));
    ASSERT_TRUE(!catchup_seqs_missing(&s));
    ASSERT_TRUE(!catchup_seqs_note(&s, 24 + CATCHUP_WINDOW));
    ASSERT_TRUE(catchup_seqs_note(&s, 22 + CATCHUP_WINDOW));
    ASSERT_EQ_INT(s.done, 22 + CATCHUP_WINDOW);
    ASSERT_TRUE(catchup_seqs_missing(&s));

    /* A status names a seq: it exists, it did not come. */
    catchup_seqs_reset(&s, 50);
    ASSERT_TRUE(catchup_seqs_expect(&s, 52));
    ASSERT_TRUE(!catchup_seqs_expect(&s, 51));
    ASSERT_TRUE(catchup_seqs_missing(&s));
    ASSERT_TRUE(catchup_seqs_note(&s, 51));
    ASSERT_EQ_INT(s.done, 51);
    ASSERT_TRUE(catchup_seqs_note(&s, 52));
    ASSERT_TRUE(!catchup_seqs_missing(&s));

    /* A reset forgets what came. */
    (void)catchup_seqs_note(&s, 54);
    catchup_seqs_reset(&s, 0);
    ASSERT_EQ_INT(s.max_seen, 0);
    ASSERT_TRUE(catchup_seqs_note(&s, 1));
    ASSERT_EQ_INT(s.done, 1);
}

int main(void)
{
    test_id_epoch();
    test_seq_parse();
    test_mark_read();
    test_mark_parse();
    test_mark_json();
    test_url_host();
    test_status_topic();
    test_status_read();
    test_seqs_in_order();
    test_seqs_out_of_order();
    test_seqs_window();
    test_seqs_cover_expect();
    return TEST_REPORT();
}
