/* torture_codec.c: every allocation of decoding and encoding announcements fails in turn. */
/*
 * As curl's torture tests: each operation runs once per allocation it makes, the n-th one
 * failing (failalloc_arm), until a run makes fewer than n. A run whose allocation failed must
 * say WM_ERR_NOMEM (or give NULL with errno ENOMEM), never another error that a caller would
 * take for bad input and drop the announcement for; or, when it did without, give the same as
 * the unarmed run (its output of the same length: a message missing a part for want of memory
 * is a bug). It must free what it made (ASan's leak check at exit). Built and run by
 * `make torture` (build/torture/tests/torture/torture_codec), linked like build/torture/wmesh.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "announce.h"
#include "codec.h"
#include "failalloc.h"
#include "integrity.h"
#include "text.h"
#include "json.h"
#include "test.h"
#include "tree.h"
#include "url.h"

#define CONTENT "bytes \"quoted\", accented \303\240, a tab\t and a newline\n"

static char v03_b64[8192], v03_utf8[4096];
static const char *payload; /* the message the ops below work on */
static struct announce *decoded;
static size_t out_len; /* the length of what an op made, to compare with the unarmed run's */

/* Every op returns what it gave; it frees what it made. */
static enum wm_err op_decode(void)
{
    struct announce *a = NULL;
    char why[200] = "";
    enum wm_err e = codec_decode(payload, strlen(payload), &a, why, sizeof why);
    failalloc_arm(0); /* what follows only measures */
    if ((e == WM_OK) != (a != NULL)) TEST_FAIL_AT("codec_decode: %s with an announcement", why);
    if (e != WM_OK && !why[0]) TEST_FAIL_AT("codec_decode failed without saying why");
    char *text = NULL;
    out_len = 0;
    if (a && codec_encode(a, WM_FORMAT_V03, &text, &out_len) != WM_OK)
        TEST_FAIL_AT("a decoded message does not encode");
    free(text);
    announce_free(&a);
    return e;
}

static enum wm_err encode_as(enum wm_format fmt)
{
    char *out = NULL;
    out_len = 0;
    enum wm_err e = codec_encode(decoded, fmt, &out, &out_len);
    if (e != WM_OK && out) TEST_FAIL_AT("codec_encode failed and gave a message");
    free(out);
    return e;
}

static enum wm_err op_encode_v03(void)
{
    return encode_as(WM_FORMAT_V03);
}

static enum wm_err op_encode_array(void)
{
    return encode_as(WM_FORMAT_ARRAY);
}

static enum wm_err op_encode_wnm(void)
{
    return encode_as(WM_FORMAT_WNM);
}

/* What a peer does to re-announce a stored file (peer_job.c, make_announcement): a clone
 * pointing at its own copy, encoded in the post format, its inline content left out when it
 * makes the message too long. */
static enum wm_err reannounce(enum wm_format fmt, size_t max)
{
    struct announce *c = announce_clone(decoded);
    if (!c) return errno == ENOMEM ? WM_ERR_NOMEM : WM_ERR_INVAL;
    enum wm_err e = WM_ERR_NOMEM;
    free(c->base_url);
    free(c->retrieve_path);
    free(c->download_url);
    c->retrieve_path = c->download_url = NULL;
    char *out = NULL;
    out_len = 0;
    if ((c->base_url = strdup("http://cache.example.org:8080/data")))
        e = codec_encode_within(c, fmt, max, &out, &out_len);
    free(out);
    announce_free(&c);
    return e;
}

static enum wm_err op_reannounce_v03(void)
{
    return reannounce(WM_FORMAT_V03, WM_MESSAGE_MAX_DEFAULT);
}

static enum wm_err op_reannounce_wnm_within(void)
{
    return reannounce(WM_FORMAT_WNM, 600);
}

static enum wm_err op_json(void)
{
    struct wm_json *j = NULL, *copy = NULL;
    char *text = NULL;
    size_t n = 0;
    enum wm_err e = wm_json_parse(payload, strlen(payload), &j, NULL, 0);
    if (e == WM_OK && !(copy = wm_json_copy(j))) e = errno == ENOMEM ? WM_ERR_NOMEM : WM_ERR_INVAL;
    if (e == WM_OK) e = wm_json_dump(copy, &text, &n);
    out_len = n;
    free(text);
    wm_json_free(&copy);
    wm_json_free(&j);
    return e;
}

static enum wm_err op_sum_xattr(void)
{
    struct wm_checksum sum = {.method = WM_SUM_ARBITRARY, .len = 5};
    memcpy(sum.value, "a\"b\\c", 5);
    char text[256];
    enum wm_err e = tree_sum_format(&sum, text, sizeof text);
    if (e == WM_OK) e = tree_sum_parse(text, strlen(text), &sum);
    out_len = e == WM_OK ? strlen(text) + sum.len : 0;
    return e;
}

static enum wm_err op_urls(void)
{
    char *joined = url_join("http://u%20ser:p%40ss@example.org:8080/data/", "a b/c%2Fd.txt");
    if (!joined) return errno == ENOMEM ? WM_ERR_NOMEM : WM_ERR_INVAL;
    char *resolved = url_resolve(joined, "../other/x?y=1");
    struct wm_url u;
    enum wm_err e = resolved          ? url_parse(resolved, &u)
                    : errno == ENOMEM ? WM_ERR_NOMEM
                                      : WM_ERR_INVAL;
    out_len = e == WM_OK ? strlen(resolved) + strlen(u.host) + strlen(u.user) : 0;
    if (e == WM_OK) url_clear(&u);
    free(resolved);
    free(joined);
    return e;
}

/* Runs op with its 1st, 2nd, ... allocation failing until it makes no more. */
static void torture(const char *what, enum wm_err (*op)(void))
{
    enum wm_err want = op();
    size_t want_len = out_len;
    uint64_t n = 1, recovered = 0;
    for (;; n++) {
        failalloc_arm(n);
        enum wm_err e = op();
        failalloc_arm(0);
        if (!failalloc_fired()) {
            ASSERT_EQ_INT(e, want);
            ASSERT_EQ_INT(out_len, want_len);
            break;
        }
        if (e == WM_ERR_NOMEM || (e == want && out_len == want_len)) {
            recovered += e != WM_ERR_NOMEM;
            test_passed++;
            continue;
        }
        if (e == want)
            TEST_FAIL_AT("%s: with its allocation %ju failing: %zu bytes, not %zu", what,
                         (uintmax_t)n, out_len, want_len);
        else
            TEST_FAIL_AT("%s: with its allocation %ju failing: %s, not \"%s\"", what, (uintmax_t)n,
                         wm_strerror(e), wm_strerror(WM_ERR_NOMEM));
        if (getenv("TORTURE_TRACE")) { /* again, saying where */
            failalloc_trace(true);
            failalloc_arm(n);
            op();
            failalloc_arm(0);
            failalloc_trace(false);
        }
    }
    printf("%-36s %s, %3ju allocation(s) failed in turn, %ju done without\n", what,
           wm_strerror(want), (uintmax_t)(n - 1), (uintmax_t)recovered);
}

/* The operations on one message, given in format fmt. */
static void torture_message(const char *name, const char *text)
{
    char what[64];
    payload = text;
    snprintf(what, sizeof what, "%s: decode", name);
    torture(what, op_decode);
    snprintf(what, sizeof what, "%s: JSON parse, copy, dump", name);
    torture(what, op_json);
    char why[200];
    if (codec_decode(text, strlen(text), &decoded, why, sizeof why) != WM_OK) {
        TEST_FAIL_AT("%s does not decode: %s", name, why);
        return;
    }
    static const struct {
        const char *name;
        enum wm_err (*op)(void);
    } ops[] = {{"encode v03", op_encode_v03},
               {"encode array", op_encode_array},
               {"encode wnm", op_encode_wnm},
               {"re-announce v03", op_reannounce_v03},
               {"re-announce wnm within 600", op_reannounce_wnm_within}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        snprintf(what, sizeof what, "%s: %s", name, ops[i].name);
        torture(what, ops[i].op);
    }
    announce_free(&decoded);
}

/* A v03 message with content, many members of every JSON kind, escapes and a long number. */
static void make_v03(char *out, size_t outlen, enum wm_sum method, bool base64)
{
    struct wm_checksum sum;
    char value[200], content[512];
    if (integrity_of_buffer(method, NULL, CONTENT, strlen(CONTENT), &sum) != WM_OK ||
        integrity_value_format(&sum, value, sizeof value) != WM_OK ||
        text_base64_encode((const unsigned char *)CONTENT, strlen(CONTENT), content,
                           sizeof content) != WM_OK) {
        TEST_FAIL_AT("cannot make the test message");
        return;
    }
    snprintf(
        out, outlen,
        "{\"pubTime\": \"20250102T030405.123456\", \"baseUrl\": \"http://example.org/data\", "
        "\"relPath\": \"20250102/WIS/CA/CMC/Surface/03/SACN31_CWAO_020304___00001.txt\", "
        "\"integrity\": {\"method\": \"%s\", \"value\": \"%s\"}, \"size\": %zu, "
        "\"content\": {\"encoding\": \"%s\", \"value\": \"%s\"}, "
        "\"escapes\": \"\\u00e0 \\\"q\\\" \\n\\t\\u20ac\", "
        "\"number\": 12345678901234567890123456789012345678901234567890123456789012345678.5, "
        "\"nested\": [[[[[[[[[[[[[[[[[[[[{\"a\": [1, 2.5, true, false, null]}]]]]]]]]]]]]]]]]]]]], "
        "\"m01\": 1, \"m02\": 2, \"m03\": 3, \"m04\": 4, \"m05\": 5, \"m06\": 6, \"m07\": 7, "
        "\"m08\": 8, \"m09\": 9, \"m10\": 10, \"m11\": 11, \"m12\": 12, \"m13\": 13, "
        "\"m14\": \"fourteen\", \"m15\": {\"x\": \"y\"}, \"m16\": [\"a\", \"b\"]}",
        integrity_method_name(method), value, strlen(CONTENT), base64 ? "base64" : "utf-8",
        base64 ? content : "bytes \\\"quoted\\\", accented \\u00e0, a tab\\t and a newline\\n");
}

/* The same message in another format, as codec_encode makes it. */
static char *reencoded(const char *text, enum wm_format fmt)
{
    struct announce *a = NULL;
    char *out = NULL;
    size_t n;
    char why[200];
    if (codec_decode(text, strlen(text), &a, why, sizeof why) != WM_OK ||
        codec_encode(a, fmt, &out, &n) != WM_OK)
        TEST_FAIL_AT("cannot re-encode the test message: %s", why);
    announce_free(&a);
    return out;
}

int main(void)
{
    make_v03(v03_b64, sizeof v03_b64, WM_SUM_SHA512, true);
    make_v03(v03_utf8, sizeof v03_utf8, WM_SUM_MD5, false);
    torture_message("v03 base64", v03_b64);
    torture_message("v03 utf-8", v03_utf8);
    char *wnm = reencoded(v03_utf8, WM_FORMAT_WNM);
    char *array = reencoded(v03_utf8, WM_FORMAT_ARRAY);
    if (wnm) torture_message("wnm", wnm);
    if (array) torture_message("array", array);
    free(wnm);
    free(array);
    torture("checksum to its xattr form and back", op_sum_xattr);
    torture("URL join, resolve, parse", op_urls);
    return TEST_REPORT();
}
