/* test_wnm.c: WIS2 notification messages: decoding, re-publishing, conversions, UUIDs. */
#include <stdint.h>
#include <stdlib.h>

#include "announce.h"
#include "codec.h"
#include "json.h"
#include "test.h"
#include "codec_test.h"
#include "url.h"

#define MD5_EMPTY_B64 "1B2M2Y8AsgTpgAmY7PhCfg=="
#define PUBTIME_S 1647751818LL /* 2022-03-20T04:50:18Z */
#define DATA_ID "dataset/123/data-granule/UANT01_CWAO_200445___15103.bufr4"
#define HREF "https://example.org/data/UANT01_CWAO_200445___15103.bufr4"
#define CONTENT "BUFR bytes, as text for the test\n"

/* docs/PROTOCOL.md's example with a real checksum and content, and a second, unrelated link. */
#define EXAMPLE_FMT                                                                                \
    "{\"id\": \"31e9d66a-cd83-4174-9429-b932f1abe1be\",\n"                                         \
    " \"conformsTo\": [\"http://wis.wmo.int/spec/wnm/1/conf/core\"], \"type\": \"Feature\",\n"     \
    " \"geometry\": {\"type\": \"Point\", \"coordinates\": [6.1462, 46.2233]},\n"                  \
    " \"properties\": {\"pubtime\": \"2022-03-20T04:50:18Z\", \"datetime\": "                      \
    "\"2022-03-20T04:45:00Z\",\n"                                                                  \
    "   \"integrity\": {\"method\": \"sha512\", \"value\": \"%s\"},\n"                             \
    "   \"data_id\": \"" DATA_ID "\",\n"                                                           \
    "   \"metadata_id\": \"urn:wmo:md:ca-eccc-msc:observations.swob\",\n"                          \
    "   \"content\": {\"encoding\": \"utf-8\", \"value\": \"BUFR bytes, as text for the "          \
    "test\\n\", "                                                                                  \
    "\"size\": %zu}},\n"                                                                           \
    " \"links\": [{\"href\": \"" HREF "\",\n"                                                      \
    "            \"rel\": \"%s\", \"type\": \"application/bufr\", \"length\": %zu},\n"             \
    "           {\"href\": \"https://example.org/oapi/collections/x\", \"rel\": \"collection\"}]}"

static char example[4096];
static struct wm_checksum example_sum;

/* Fills example with rel as the relation of its data link. */
static void make_example(const char *rel)
{
    char value[200];
    size_t n = strlen(CONTENT);
    if (integrity_of_buffer(WM_SUM_SHA512, NULL, CONTENT, n, &example_sum) != WM_OK ||
        integrity_value_format(&example_sum, value, sizeof value) != WM_OK)
        TEST_FAIL_AT("cannot compute the example's sha512");
    snprintf(example, sizeof example, EXAMPLE_FMT, value, n, rel, n);
}

static struct wm_json *parse(const char *text)
{
    struct wm_json *j = NULL;
    if (!text || wm_json_parse(text, strlen(text), &j, NULL, 0) != WM_OK)
        TEST_FAIL_AT("not JSON: %s", text ? text : "(null)");
    return j;
}

/* The string at a path of object keys (or array indexes given as "0".."9"), or NULL. */
static const char *str_at(const struct wm_json *j, const char *k1, const char *k2, const char *k3)
{
    const char *keys[] = {k1, k2, k3};
    for (size_t i = 0; i < 3 && keys[i] && j; i++)
        j = wm_json_is_array(j) ? wm_json_array_get(j, (size_t)(keys[i][0] - '0'))
                                : wm_json_object_get(j, keys[i]);
    return wm_json_string(j, NULL);
}

/* Compact text of j[key], for comparing whole members; the caller frees it. */
static char *member_text(const struct wm_json *j, const char *key)
{
    char *out = NULL;
    const struct wm_json *m = wm_json_object_get(j, key);
    if (!m || wm_json_dump(m, &out, NULL) != WM_OK) return strdup("(none)");
    return out;
}

static void assert_same_member(const struct wm_json *x, const struct wm_json *y, const char *key)
{
    char *tx = member_text(x, key), *ty = member_text(y, key);
    ASSERT_EQ_STR(tx, ty);
    free(tx);
    free(ty);
}

static bool is_uuid4(const char *s)
{
    if (!s || strlen(s) != WM_UUID_LEN) return false;
    for (int i = 0; i < WM_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (s[i] == '-')) return false;
        if (!dash && !strchr("0123456789abcdef", s[i])) return false;
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void test_example(void)
{
    make_example("canonical");
    struct announce *a = decode(example);
    if (!a) return;
    ASSERT_EQ_INT(a->format, WM_FORMAT_WNM);
    ASSERT_EQ_STR(a->rel_path, DATA_ID);
    ASSERT_EQ_STR(a->download_url, HREF);
    ASSERT_EQ_STR(a->base_url, "https://example.org/data");
    ASSERT_EQ_STR(a->retrieve_path, "UANT01_CWAO_200445___15103.bufr4");
    ASSERT_EQ_INT(a->pubtime_ns, PUBTIME_S * 1000000000LL);
    ASSERT_EQ_INT(a->pubtime_digits, 0);
    ASSERT_EQ_INT(a->sum.method, WM_SUM_SHA512);
    ASSERT_TRUE(integrity_equal(&a->sum, &example_sum));
    ASSERT_EQ_INT(a->size, strlen(CONTENT));
    ASSERT_EQ_INT(a->content_encoding, WM_CONTENT_UTF8);
    ASSERT_EQ_INT(a->content_len, strlen(CONTENT));
    if (a->content) ASSERT_EQ_MEM(a->content, CONTENT, strlen(CONTENT));
    ASSERT_TRUE(a->extra && wm_json_object_get(a->extra, "geometry"));
    ASSERT_TRUE(!codec_wnm_is_update(a));
    /* The deep copy survives cloning, as the peer clones before re-announcing. */
    struct announce *c = announce_clone(a);
    ASSERT_TRUE(c && c->extra && c->format == WM_FORMAT_WNM);
    announce_free(&c);
    announce_free(&a);
}

/* The peer re-announcing: its own base URL, no download URL, the checksum of what it stored. */
static void republish(struct announce *a, const char *base)
{
    free(a->base_url);
    a->base_url = strdup(base);
    free(a->download_url);
    a->download_url = NULL;
    free(a->retrieve_path);
    a->retrieve_path = NULL;
}

static void test_republish(void)
{
    make_example("canonical");
    struct announce *a = decode(example);
    if (!a) return;
    republish(a, "https://cache.example.net:8080/wmesh/");
    char *out = encode(a, WM_FORMAT_WNM);
    struct wm_json *in = parse(example), *re = parse(out);
    if (!in || !re) goto done;
    const char *id = str_at(re, "id", NULL, NULL);
    ASSERT_TRUE(is_uuid4(id));
    ASSERT_TRUE(id && strcmp(id, str_at(in, "id", NULL, NULL)) != 0);
    ASSERT_EQ_STR(str_at(re, "links", "0", "href"),
                  "https://cache.example.net:8080/wmesh/" DATA_ID);
    ASSERT_EQ_STR(str_at(re, "links", "0", "rel"), "canonical");
    ASSERT_EQ_STR(str_at(re, "properties", "pubtime", NULL), "2022-03-20T04:50:18Z");
    ASSERT_EQ_STR(str_at(re, "properties", "data_id", NULL), DATA_ID);
    ASSERT_EQ_STR(str_at(re, "properties", "global-cache", NULL), "cache.example.net");
    ASSERT_EQ_STR(str_at(re, "properties", "metadata_id", NULL),
                  "urn:wmo:md:ca-eccc-msc:observations.swob");
    assert_same_member(in, re, "geometry");
    assert_same_member(in, re, "conformsTo");
    assert_same_member(in, re, "type");
    struct wm_json *pin = wm_json_object_get(in, "properties");
    struct wm_json *pre = wm_json_object_get(re, "properties");
    assert_same_member(pin, pre, "content");
    assert_same_member(pin, pre, "datetime");
    assert_same_member(wm_json_array_get(wm_json_object_get(in, "links"), 1),
                       wm_json_array_get(wm_json_object_get(re, "links"), 1), "href");
    /* It decodes again to the same file version, now fetched from the cache. */
    struct announce *b = decode(out);
    if (b) {
        ASSERT_EQ_STR(b->rel_path, DATA_ID);
        ASSERT_EQ_INT(b->pubtime_ns, a->pubtime_ns);
        ASSERT_TRUE(integrity_equal(&b->sum, &a->sum));
        ASSERT_EQ_STR(b->download_url, "https://cache.example.net:8080/wmesh/" DATA_ID);
        ASSERT_EQ_INT(b->size, a->size);
    }
    announce_free(&b);
done:
    wm_json_free(&in);
    wm_json_free(&re);
    free(out);
    announce_free(&a);
}

static void test_new_checksum_and_pubtime(void)
{
    make_example("canonical");
    struct announce *a = decode(example);
    if (!a) return;
    republish(a, "http://[::1]:8000");
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA256, NULL, "x", 1, &a->sum), WM_OK);
    a->pubtime_ns += 123000000;
    a->pubtime_digits = 3;
    a->size = -1;
    char *out = encode(a, WM_FORMAT_WNM);
    struct wm_json *re = parse(out);
    ASSERT_EQ_STR(str_at(re, "properties", "integrity", "method"), "sha256");
    ASSERT_EQ_STR(str_at(re, "properties", "integrity", "value"),
                  "LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE=");
    ASSERT_EQ_STR(str_at(re, "properties", "pubtime", NULL), "2022-03-20T04:50:18.123Z");
    ASSERT_EQ_STR(str_at(re, "properties", "global-cache", NULL), "::1");
    ASSERT_EQ_STR(str_at(re, "links", "0", "href"), "http://[::1]:8000/" DATA_ID);
    ASSERT_TRUE(
        !wm_json_object_get(wm_json_array_get(wm_json_object_get(re, "links"), 0), "length"));
    wm_json_free(&re);
    free(out);
    announce_free(&a);
}

static void test_pass_through(void)
{
    /* Encoded as decoded, the message still points at its source and names no cache. */
    make_example("canonical");
    struct announce *a = decode(example);
    char *out = encode(a, WM_FORMAT_WNM);
    struct wm_json *re = parse(out);
    ASSERT_EQ_STR(str_at(re, "links", "0", "href"), HREF);
    ASSERT_TRUE(!wm_json_object_get(wm_json_object_get(re, "properties"), "global-cache"));
    char *again = encode(a, WM_FORMAT_WNM);
    ASSERT_TRUE(out && again && strlen(out) == strlen(again) && strcmp(out, again) != 0);
    free(again);
    wm_json_free(&re);
    free(out);
    announce_free(&a);
}

static void test_v03_wnm_v03(void)
{
    const char *v03 =
        "{\"pubTime\":\"20190120T045018.314\",\"baseUrl\":\"https://example.org/data\","
        "\"relPath\":\"/a/b/c.txt\",\"integrity\":{\"method\":\"md5\",\"value\":\"" MD5_EMPTY_B64
        "\"},\"size\":0,\"mode\":\"644\"}";
    struct announce *a = decode(v03);
    char *wnm = encode(a, WM_FORMAT_WNM);
    struct wm_json *j = parse(wnm);
    if (!a || !j) goto done;
    ASSERT_TRUE(is_uuid4(str_at(j, "id", NULL, NULL)));
    ASSERT_EQ_STR(str_at(j, "conformsTo", "0", NULL), "http://wis.wmo.int/spec/wnm/1/conf/core");
    ASSERT_EQ_STR(str_at(j, "type", NULL, NULL), "Feature");
    ASSERT_EQ_INT(wm_json_type(wm_json_object_get(j, "geometry")), WM_JSON_NULL);
    ASSERT_EQ_STR(str_at(j, "properties", "pubtime", NULL), "2019-01-20T04:50:18.314Z");
    ASSERT_EQ_STR(str_at(j, "properties", "datetime", NULL), "2019-01-20T04:50:18.314Z");
    ASSERT_EQ_STR(str_at(j, "properties", "data_id", NULL), "a/b/c.txt");
    ASSERT_EQ_STR(str_at(j, "properties", "integrity", "value"), MD5_EMPTY_B64);
    ASSERT_EQ_STR(str_at(j, "links", "0", "href"), "https://example.org/data/a/b/c.txt");
    ASSERT_EQ_STR(str_at(j, "links", "0", "rel"), "canonical");
    ASSERT_EQ_STR(str_at(j, "links", "0", "type"), "application/octet-stream");
    ASSERT_TRUE(!strstr(wnm, "mode"));         /* v03 extras have no place in WIS2 */
    ASSERT_TRUE(!strstr(wnm, "global-cache")); /* a first publication, not a cache's */
    struct announce *b = decode(wnm);
    char *back = encode(b, WM_FORMAT_V03);
    if (b && back) {
        ASSERT_EQ_INT(b->pubtime_ns, a->pubtime_ns);
        ASSERT_EQ_INT(b->pubtime_digits, 3);
        ASSERT_EQ_INT(b->size, 0);
        /* baseUrl + retrievePath still name the file; no WIS2 member leaks into v03. */
        ASSERT_EQ_STR(back, "{\"pubTime\":\"20190120T045018.314\",\"baseUrl\":"
                            "\"https://example.org/data/a/b\",\"relPath\":\"a/b/c.txt\","
                            "\"integrity\":{\"method\":\"md5\",\"value\":\"" MD5_EMPTY_B64 "\"},"
                            "\"retrievePath\":\"c.txt\",\"size\":0}");
        char *arr = encode(b, WM_FORMAT_ARRAY);
        ASSERT_EQ_STR(arr, "[\"20190120045018.314\",\"https://example.org/data/a/b\","
                           "\"a/b/c.txt\",{\"sum\":\"d,d41d8cd98f00b204e9800998ecf8427e\"}]");
        free(arr);
    }
    free(back);
    announce_free(&b);
done:
    wm_json_free(&j);
    free(wnm);
    announce_free(&a);
}

static void test_wnm_to_v03(void)
{
    make_example("canonical");
    struct announce *a = decode(example);
    char *v03 = encode(a, WM_FORMAT_V03);
    ASSERT_TRUE(v03 && !strstr(v03, "geometry") && !strstr(v03, "conformsTo") &&
                !strstr(v03, "properties") && !strstr(v03, "links"));
    struct announce *b = v03 ? decode(v03) : NULL;
    if (a && b) {
        char *u1 = url_join(b->base_url, b->retrieve_path);
        ASSERT_EQ_STR(u1, HREF);
        free(u1);
        ASSERT_EQ_STR(b->rel_path, DATA_ID);
        ASSERT_TRUE(integrity_equal(&a->sum, &b->sum));
        ASSERT_EQ_INT(b->content_len, a->content_len);
        ASSERT_TRUE(b->extra == NULL);
    }
    announce_free(&b);
    free(v03);
    announce_free(&a);
}

static void test_update_and_deletion(void)
{
    make_example("update");
    struct announce *a = decode(example);
    ASSERT_TRUE(codec_wnm_is_update(a));
    if (a) republish(a, "https://cache.example.net");
    char *out = encode(a, WM_FORMAT_WNM);
    struct wm_json *j = parse(out);
    ASSERT_EQ_STR(str_at(j, "links", "0", "rel"), "update");
    ASSERT_EQ_STR(str_at(j, "links", "0", "href"), "https://cache.example.net/" DATA_ID);
    wm_json_free(&j);
    free(out);
    announce_free(&a);

    /* A valid message asking for what a peer does not do: not malformed, and the log line
     * names what would have been deleted. */
    make_example("deletion");
    char why[200] = "";
    ASSERT_EQ_INT(codec_decode(example, strlen(example), &a, why, sizeof why), WM_ERR_NOTSUP);
    ASSERT_EQ_STR(why, "deletion links not supported (data_id " DATA_ID " left as it is)");
    ASSERT_TRUE(a == NULL);
    /* A malformed deletion message is malformed first. */
    char *bad = strdup(example);
    char *pubtime = bad ? strstr(bad, "2022-03-20T04:50:18Z") : NULL;
    if (pubtime) memcpy(pubtime, "2022-13", 7);
    ASSERT_TRUE(pubtime != NULL);
    ASSERT_EQ_INT(codec_decode(bad, strlen(bad), &a, why, sizeof why), WM_ERR_INVAL);
    free(bad);
}

static void test_content_forms(void)
{
    /* Unpadded base64 goes out as it came, not re-encoded. */
    const char *msg =
        "{\"id\":\"x\",\"conformsTo\":[],\"type\":\"Feature\",\"geometry\":null,\"properties\":{"
        "\"pubtime\":\"2022-03-20T04:50:18.5Z\",\"start_datetime\":\"2022-03-20T00:00:00+01:00\","
        "\"end_datetime\":\"2022-03-20T01:00:00-02:30\",\"data_id\":\"d/f\",\"integrity\":{"
        "\"method\":\"md5\",\"value\":\"" MD5_EMPTY_B64 "\"},\"content\":{\"encoding\":\"base64\","
        "\"value\":\"aGk\",\"size\":2}},\"links\":[{\"href\":\"http://h\",\"rel\":\"canonical\"}]}";
    struct announce *a = decode(msg);
    if (!a) return;
    ASSERT_EQ_INT(a->content_encoding, WM_CONTENT_BASE64);
    ASSERT_EQ_INT(a->content_len, 2);
    ASSERT_EQ_STR(a->base_url, "http://h");
    ASSERT_TRUE(a->retrieve_path == NULL);
    ASSERT_EQ_INT(a->pubtime_digits, 1);
    char *out = encode(a, WM_FORMAT_WNM);
    ASSERT_TRUE(out && strstr(out, "\"value\":\"aGk\",\"size\":2"));
    ASSERT_TRUE(out && strstr(out, "\"pubtime\":\"2022-03-20T04:50:18.5Z\""));
    free(out);
    /* Changed content is re-encoded; content too big for WIS2 is left to the link. */
    free(a->content);
    a->content = (unsigned char *)strdup("hello");
    a->content_len = 5;
    out = encode(a, WM_FORMAT_WNM);
    ASSERT_TRUE(out && strstr(out, "\"content\":{\"encoding\":\"base64\",\"value\":\"aGVsbG8=\","
                                   "\"size\":5}"));
    free(out);
    free(a->content);
    a->content = calloc(1, 3100);
    a->content_len = 3100;
    out = encode(a, WM_FORMAT_WNM);
    ASSERT_TRUE(out && !strstr(out, "content"));
    free(out);
    announce_free(&a);
}

/* codec_inline_capacity is what each format carries of bytes that are not text (the worst
 * case, base64): WIS2 exactly that many and not one more; v03 anything; array nothing. */
static void test_inline_capacity(void)
{
    size_t cap = codec_inline_capacity(WM_FORMAT_WNM);
    ASSERT_EQ_INT(cap, 3069);
    ASSERT_EQ_INT(codec_inline_capacity(WM_FORMAT_ARRAY), 0);
    ASSERT_TRUE(codec_inline_capacity(WM_FORMAT_V03) == SIZE_MAX);
    struct announce *a = decode(
        "{\"pubTime\":\"20190120T045018.314\",\"baseUrl\":\"https://example.org/data\","
        "\"relPath\":\"a/b.bin\",\"integrity\":{\"method\":\"md5\",\"value\":\"" MD5_EMPTY_B64
        "\"}}");
    if (!a) return;
    a->content_encoding = WM_CONTENT_UTF8; /* as the peer asks; 0xff is no UTF-8: base64 */
    for (size_t len = cap; len <= cap + 1; len++) {
        free(a->content);
        a->content = malloc(len);
        if (!a->content) break;
        memset(a->content, 0xff, len);
        a->content_len = len;
        char *out = encode(a, WM_FORMAT_WNM);
        ASSERT_TRUE(out && (strstr(out, "\"encoding\":\"base64\"") != NULL) == (len == cap));
        free(out);
        out = encode(a, WM_FORMAT_V03);
        ASSERT_TRUE(out && strstr(out, "\"encoding\":\"base64\""));
        free(out);
    }
    announce_free(&a);
}

static void test_methods(void)
{
    static const char *const names[] = {"sha256",   "sha384",   "sha512", "sha3-256",
                                        "sha3-384", "sha3-512", "md5"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        enum wm_sum m = integrity_method_from_name(names[i]);
        struct wm_checksum sum;
        char value[200], msg[1024];
        ASSERT_EQ_INT(integrity_of_buffer(m, NULL, "abc", 3, &sum), WM_OK);
        ASSERT_EQ_INT(integrity_value_format(&sum, value, sizeof value), WM_OK);
        snprintf(msg, sizeof msg,
                 "{\"id\":\"x\",\"conformsTo\":[],\"type\":\"Feature\",\"geometry\":null,"
                 "\"properties\":{\"pubtime\":\"2022-03-20T04:50:18Z\",\"datetime\":"
                 "\"2022-03-20T04:50:18Z\",\"data_id\":\"d/f\",\"integrity\":{\"method\":\"%s\","
                 "\"value\":\"%s\"}},\"links\":[{\"href\":\"http://h/f\",\"rel\":\"canonical\"}]}",
                 names[i], value);
        struct announce *a = decode(msg);
        if (a) ASSERT_TRUE(integrity_equal(&a->sum, &sum));
        char *out = encode(a, WM_FORMAT_WNM);
        struct announce *b = out ? decode(out) : NULL;
        if (b) ASSERT_TRUE(integrity_equal(&b->sum, &sum));
        announce_free(&b);
        free(out);
        announce_free(&a);
    }
}

static void test_times(void)
{
    int64_t ns;
    int digits, offset;
    char text[64];
    ASSERT_EQ_INT(codec_rfc3339_parse("2022-03-20T04:50:18.25Z", &ns, &digits, &offset), WM_OK);
    ASSERT_EQ_INT(ns, PUBTIME_S * 1000000000LL + 250000000);
    ASSERT_EQ_INT(digits, 2);
    ASSERT_EQ_INT(codec_rfc3339_format(ns, digits, text, sizeof text), WM_OK);
    ASSERT_EQ_STR(text, "2022-03-20T04:50:18.25Z");
    ASSERT_EQ_INT(codec_rfc3339_parse("2022-03-20T06:20:18+01:30", &ns, NULL, &offset), WM_OK);
    ASSERT_EQ_INT(ns, PUBTIME_S * 1000000000LL);
    ASSERT_EQ_INT(offset, 90);
    static const char *const bad[] = {"2022-03-20 04:50:18Z",      "2022-03-20T04:50:18",
                                      "2022-03-20T04:50:18.Z",     "20220320T045018Z",
                                      "1970-01-01T00:00:00+00:01", "2022-13-01T00:00:00Z",
                                      "2022-03-20T04:50:18+0100",  "2262-01-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (codec_rfc3339_parse(bad[i], &ns, NULL, NULL) == WM_OK)
            TEST_FAIL_AT("accepted %s", bad[i]);
        else
            test_passed++;
    ASSERT_EQ_INT(codec_rfc3339_format(0, 0, text, 20), WM_ERR_TOOBIG);
}

/* ---- malformed messages ---- */

#define HEAD_ID "\"id\":\"31e9d66a-cd83-4174-9429-b932f1abe1be\","
#define HEAD_CONF "\"conformsTo\":[\"http://wis.wmo.int/spec/wnm/1/conf/core\"],"
#define HEAD_TYPE "\"type\":\"Feature\","
#define HEAD_GEOM "\"geometry\":{\"type\":\"Point\",\"coordinates\":[6.1,46.2]},"
#define P_PUB "\"pubtime\":\"2022-03-20T04:50:18Z\","
#define P_DT "\"datetime\":\"2022-03-20T04:45:00Z\","
#define P_ID "\"data_id\":\"" DATA_ID "\","
#define P_SUM "\"integrity\":{\"method\":\"md5\",\"value\":\"" MD5_EMPTY_B64 "\"}"
#define LINK(rel) "{\"href\":\"" HREF "\",\"rel\":\"" rel "\",\"length\":0}"
#define LINKS(l) "\"links\":[" l "]"
#define MSG(head, props, links) "{" head "\"properties\":{" props "}," links "}"
#define HEAD HEAD_ID HEAD_CONF HEAD_TYPE HEAD_GEOM
#define PROPS P_PUB P_DT P_ID P_SUM
#define GOOD_LINKS LINKS(LINK("canonical"))
#define WITH_CONTENT(c) MSG(HEAD, PROPS ",\"content\":" c, GOOD_LINKS)

struct bad_case {
    const char *name, *msg;
    enum wm_err err;
};

static void check_bad(const char *name, const char *msg, enum wm_err want)
{
    struct announce *a = (struct announce *)1;
    char why[200];
    memset(why, 'x', sizeof why);
    enum wm_err err = codec_decode(msg, strlen(msg), &a, why, sizeof why);
    if (err == WM_OK || a != NULL || why[0] == '\0' || strnlen(why, sizeof why) == sizeof why)
        TEST_FAIL_AT("%s: err %d, out %p, why \"%.*s\"", name, err, (void *)a, 100, why);
    else if (err != want)
        TEST_FAIL_AT("%s: %s (%s), wanted %s", name, wm_strerror(err), why, wm_strerror(want));
    else
        test_passed++;
    announce_free(&a);
}

static const struct bad_case bad_cases[] = {
    {"id missing", MSG(HEAD_CONF HEAD_TYPE HEAD_GEOM, PROPS, GOOD_LINKS), WM_ERR_INVAL},
    {"id number", MSG("\"id\":7," HEAD_CONF HEAD_TYPE HEAD_GEOM, PROPS, GOOD_LINKS), WM_ERR_INVAL},
    {"conformsTo missing", MSG(HEAD_ID HEAD_TYPE HEAD_GEOM, PROPS, GOOD_LINKS), WM_ERR_INVAL},
    {"conformsTo string",
     MSG(HEAD_ID "\"conformsTo\":\"x\"," HEAD_TYPE HEAD_GEOM, PROPS, GOOD_LINKS), WM_ERR_INVAL},
    {"type not Feature",
     MSG(HEAD_ID HEAD_CONF "\"type\":\"FeatureCollection\"," HEAD_GEOM, PROPS, GOOD_LINKS),
     WM_ERR_INVAL},
    {"type missing", MSG(HEAD_ID HEAD_CONF HEAD_GEOM, PROPS, GOOD_LINKS), WM_ERR_INVAL},
    {"geometry missing", MSG(HEAD_ID HEAD_CONF HEAD_TYPE, PROPS, GOOD_LINKS), WM_ERR_INVAL},
    {"geometry string",
     MSG(HEAD_ID HEAD_CONF HEAD_TYPE "\"geometry\":\"here\",", PROPS, GOOD_LINKS), WM_ERR_INVAL},
    {"properties not object", "{" HEAD "\"properties\":[]," GOOD_LINKS "}", WM_ERR_INVAL},
    {"pubtime missing", MSG(HEAD, P_DT P_ID P_SUM, GOOD_LINKS), WM_ERR_INVAL},
    {"pubtime compact", MSG(HEAD, "\"pubtime\":\"20220320T045018Z\"," P_DT P_ID P_SUM, GOOD_LINKS),
     WM_ERR_INVAL},
    {"pubtime no such day",
     MSG(HEAD, "\"pubtime\":\"2022-02-30T04:50:18Z\"," P_DT P_ID P_SUM, GOOD_LINKS), WM_ERR_INVAL},
    {"pubtime not UTC",
     MSG(HEAD, "\"pubtime\":\"2022-03-20T04:50:18+01:00\"," P_DT P_ID P_SUM, GOOD_LINKS),
     WM_ERR_INVAL},
    {"pubtime no zone",
     MSG(HEAD, "\"pubtime\":\"2022-03-20T04:50:18\"," P_DT P_ID P_SUM, GOOD_LINKS), WM_ERR_INVAL},
    {"datetime missing", MSG(HEAD, P_PUB P_ID P_SUM, GOOD_LINKS), WM_ERR_INVAL},
    {"datetime bad", MSG(HEAD, P_PUB "\"datetime\":\"yesterday\"," P_ID P_SUM, GOOD_LINKS),
     WM_ERR_INVAL},
    {"start_datetime alone",
     MSG(HEAD, P_PUB "\"start_datetime\":\"2022-03-20T04:45:00Z\"," P_ID P_SUM, GOOD_LINKS),
     WM_ERR_INVAL},
    {"datetime and a range",
     MSG(HEAD,
         P_PUB P_DT "\"start_datetime\":\"2022-03-20T04:45:00Z\","
                    "\"end_datetime\":\"2022-03-20T04:46:00Z\"," P_ID P_SUM,
         GOOD_LINKS),
     WM_ERR_INVAL},
    {"datetime number", MSG(HEAD, P_PUB "\"datetime\":7," P_ID P_SUM, GOOD_LINKS), WM_ERR_INVAL},
    {"data_id missing", MSG(HEAD, P_PUB P_DT P_SUM, GOOD_LINKS), WM_ERR_INVAL},
    {"data_id empty", MSG(HEAD, P_PUB P_DT "\"data_id\":\"\"," P_SUM, GOOD_LINKS), WM_ERR_INVAL},
    {"integrity string", MSG(HEAD, P_PUB P_DT P_ID "\"integrity\":\"md5\"", GOOD_LINKS),
     WM_ERR_INVAL},
    {"integrity method unknown",
     MSG(HEAD, P_PUB P_DT P_ID "\"integrity\":{\"method\":\"crc32\",\"value\":\"AAAA\"}",
         GOOD_LINKS),
     WM_ERR_METHOD},
    {"integrity method not a digest",
     MSG(HEAD, P_PUB P_DT P_ID "\"integrity\":{\"method\":\"random\",\"value\":\"AAAA\"}",
         GOOD_LINKS),
     WM_ERR_METHOD},
    {"integrity value missing",
     MSG(HEAD, P_PUB P_DT P_ID "\"integrity\":{\"method\":\"md5\"}", GOOD_LINKS), WM_ERR_INVAL},
    {"links missing", "{" HEAD "\"properties\":{" PROPS "}}", WM_ERR_INVAL},
    {"links not an array", MSG(HEAD, PROPS, "\"links\":" LINK("canonical")), WM_ERR_INVAL},
    {"links empty", MSG(HEAD, PROPS, LINKS("")), WM_ERR_INVAL},
    {"no data link", MSG(HEAD, PROPS, LINKS("{\"href\":\"http://h/x\",\"rel\":\"via\"}")),
     WM_ERR_INVAL},
    {"link not an object", MSG(HEAD, PROPS, LINKS(LINK("canonical") ",\"http://h/x\"")),
     WM_ERR_INVAL},
    {"two canonical links", MSG(HEAD, PROPS, LINKS(LINK("canonical") "," LINK("canonical"))),
     WM_ERR_INVAL},
    {"canonical and update", MSG(HEAD, PROPS, LINKS(LINK("update") "," LINK("canonical"))),
     WM_ERR_INVAL},
    {"canonical and deletion", MSG(HEAD, PROPS, LINKS(LINK("canonical") "," LINK("deletion"))),
     WM_ERR_INVAL},
    {"href missing", MSG(HEAD, PROPS, LINKS("{\"rel\":\"canonical\"}")), WM_ERR_INVAL},
    {"href number", MSG(HEAD, PROPS, LINKS("{\"href\":1,\"rel\":\"canonical\"}")), WM_ERR_INVAL},
    {"length negative",
     MSG(HEAD, PROPS, LINKS("{\"href\":\"" HREF "\",\"rel\":\"canonical\",\"length\":-1}")),
     WM_ERR_INVAL},
    {"length string",
     MSG(HEAD, PROPS, LINKS("{\"href\":\"" HREF "\",\"rel\":\"canonical\",\"length\":\"3\"}")),
     WM_ERR_INVAL},
    {"content not an object", WITH_CONTENT("\"hi\""), WM_ERR_INVAL},
    {"content size mismatch", WITH_CONTENT("{\"encoding\":\"utf-8\",\"value\":\"hi\",\"size\":3}"),
     WM_ERR_INVAL},
    {"content size missing", WITH_CONTENT("{\"encoding\":\"utf-8\",\"value\":\"hi\"}"),
     WM_ERR_INVAL},
    {"content base64 size mismatch",
     WITH_CONTENT("{\"encoding\":\"base64\",\"value\":\"aGk=\",\"size\":3}"), WM_ERR_INVAL},
    {"content encoding gzip", WITH_CONTENT("{\"encoding\":\"gzip\",\"value\":\"hi\",\"size\":2}"),
     WM_ERR_INVAL},
    {"content bad base64", WITH_CONTENT("{\"encoding\":\"base64\",\"value\":\"@@\",\"size\":1}"),
     WM_ERR_INVAL},
};

static void test_malformed(void)
{
    size_t n = sizeof bad_cases / sizeof bad_cases[0];
    for (size_t i = 0; i < n; i++)
        check_bad(bad_cases[i].name, bad_cases[i].msg, bad_cases[i].err);
    ASSERT_TRUE(n >= 20);
    /* Inline content of 4096 encoded bytes is refused; 4095 is fine. */
    const char *head = MSG(HEAD, PROPS ",\"content\":{\"encoding\":\"utf-8\",\"value\":\"", "");
    size_t hlen = strlen(head) - strlen("},}"), cap = hlen + 4400;
    char *msg = malloc(cap);
    if (!msg) return;
    for (size_t len = 4095; len <= 4096; len++) {
        memcpy(msg, head, hlen);
        memset(msg + hlen, 'a', len);
        snprintf(msg + hlen + len, cap - hlen - len, "\",\"size\":%zu}}," GOOD_LINKS "}", len);
        struct announce *a = NULL;
        char why[200] = "";
        enum wm_err err = codec_decode(msg, strlen(msg), &a, why, sizeof why);
        ASSERT_EQ_INT(err, len < 4096 ? WM_OK : WM_ERR_TOOBIG);
        if (len == 4096) ASSERT_TRUE(strstr(why, "4096") != NULL);
        announce_free(&a);
    }
    free(msg);
}

/* ---- what a Global Cache must accept (docs/OPERATIONS.md, GC rules) ---- */

static struct announce *decode_ok(const char *name, const char *msg)
{
    struct announce *a = NULL;
    char why[200] = "";
    enum wm_err err = codec_decode(msg, strlen(msg), &a, why, sizeof why);
    if (err != WM_OK)
        TEST_FAIL_AT("%s refused: %s (%s)", name, wm_strerror(err), why);
    else
        test_passed++;
    return a;
}

static void test_gc_inputs(void)
{
    /* No integrity: computed on download as SHA-512; re-encoded, none is invented. */
    struct announce *a =
        decode_ok("no integrity", MSG(HEAD, P_PUB P_DT "\"data_id\":\"x\"", GOOD_LINKS));
    if (a) {
        ASSERT_EQ_INT(a->sum.method, WM_SUM_COD);
        ASSERT_EQ_INT(a->sum.cod_method, WM_SUM_SHA512);
        char *out = encode(a, WM_FORMAT_WNM);
        struct wm_json *re = parse(out);
        ASSERT_TRUE(re && !wm_json_object_get(wm_json_object_get(re, "properties"), "integrity"));
        wm_json_free(&re);
        free(out);
        /* Once computed, it goes out. */
        ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA512, NULL, "", 0, &a->sum), WM_OK);
        out = encode(a, WM_FORMAT_WNM);
        ASSERT_EQ_STR(str_at(re = parse(out), "properties", "integrity", "method"), "sha512");
        wm_json_free(&re);
        free(out);
    }
    announce_free(&a);
    /* A value that does not decode is an empty digest: the download will not match it. */
    static const char *const bad_values[] = {
        MSG(HEAD,
            P_PUB P_DT P_ID "\"integrity\":{\"method\":\"sha512\",\"value\":\"invalid hash\"}",
            GOOD_LINKS),
        MSG(HEAD,
            P_PUB P_DT P_ID "\"integrity\":{\"method\":\"sha512\",\"value\":\"" MD5_EMPTY_B64 "\"}",
            GOOD_LINKS)};
    for (size_t i = 0; i < 2; i++) {
        a = decode_ok("undecodable integrity value", bad_values[i]);
        if (!a) continue;
        ASSERT_EQ_INT(a->sum.method, WM_SUM_SHA512);
        ASSERT_EQ_INT(a->sum.len, 0);
        struct wm_checksum empty;
        ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA512, NULL, "", 0, &empty), WM_OK);
        ASSERT_TRUE(!integrity_equal(&empty, &a->sum));
        char *out = encode(a, WM_FORMAT_WNM); /* the journal's copy keeps it as it came */
        struct wm_json *re = parse(out);
        ASSERT_EQ_STR(str_at(re, "properties", "integrity", "method"), "sha512");
        wm_json_free(&re);
        free(out);
        announce_free(&a);
    }
    /* datetime null; a range; unknown members kept; cache false. */
    a = decode_ok("datetime null", MSG(HEAD,
                                       P_PUB "\"datetime\":null," P_ID P_SUM ",\"cache\":false,"
                                             "\"x-extra\":{\"k\":[1,2]}",
                                       GOOD_LINKS ",\"x-top\":true"));
    if (a) {
        ASSERT_TRUE(codec_wnm_cache_false(a));
        ASSERT_TRUE(codec_wnm_global_cache(a) == NULL);
        char *out = NULL;
        size_t len = 0;
        ASSERT_EQ_INT(codec_wnm_passthrough(a, &out, &len), WM_OK);
        struct wm_json *in = a->extra, *re = parse(out);
        if (re) {
            ASSERT_TRUE(is_uuid4(str_at(re, "id", NULL, NULL)));
            ASSERT_TRUE(strcmp(str_at(re, "id", NULL, NULL), str_at(in, "id", NULL, NULL)) != 0);
            static const char *const same[] = {"conformsTo", "type",  "geometry",
                                               "properties", "links", "x-top"};
            for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
                assert_same_member(in, re, same[i]);
        }
        wm_json_free(&re);
        free(out);
    }
    announce_free(&a);
    a = decode_ok("range", MSG(HEAD,
                               P_PUB "\"start_datetime\":\"2022-03-20T04:45:00Z\","
                                     "\"end_datetime\":\"2022-03-20T04:46:00Z\"," P_ID P_SUM
                                     ",\"cache\":\"false\",\"global-cache\":\"xx-gc\"",
                               GOOD_LINKS));
    if (a) {
        ASSERT_TRUE(!codec_wnm_cache_false(a)); /* only the boolean says it */
        ASSERT_EQ_STR(codec_wnm_global_cache(a), "xx-gc");
        /* A cache names itself by its centre-id; the link's length is what it stored. */
        republish(a, "https://cache.example.net/data/");
        a->global_cache = strdup("yy-global-cache");
        a->size = 1234;
        char *out = encode(a, WM_FORMAT_WNM);
        struct wm_json *re = parse(out);
        ASSERT_EQ_STR(str_at(re, "properties", "global-cache", NULL), "yy-global-cache");
        const struct wm_json *l = wm_json_array_get(wm_json_object_get(re, "links"), 0);
        int64_t n = 0;
        ASSERT_TRUE(wm_json_integer(wm_json_object_get(l, "length"), &n) && n == 1234);
        ASSERT_TRUE(!wm_json_object_get(re, "version"));
        wm_json_free(&re);
        free(out);
    }
    announce_free(&a);
}

/* ---- UUIDs ---- */

static int cmp_str(const void *x, const void *y)
{
    return strcmp((const char *)x, (const char *)y);
}

static void test_uuid(void)
{
    enum { N = 1000 };
    static char ids[N][WM_UUID_LEN + 1];
    size_t bad = 0;
    for (size_t i = 0; i < N; i++)
        if (codec_uuid4(ids[i], sizeof ids[i]) != WM_OK || !is_uuid4(ids[i])) bad++;
    ASSERT_EQ_INT(bad, 0);
    qsort(ids, N, sizeof ids[0], cmp_str);
    size_t dups = 0;
    for (size_t i = 1; i < N; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0) dups++;
    ASSERT_EQ_INT(dups, 0);
    char small[WM_UUID_LEN];
    ASSERT_EQ_INT(codec_uuid4(small, sizeof small), WM_ERR_INVAL);
}

int main(void)
{
    test_example();
    test_republish();
    test_new_checksum_and_pubtime();
    test_pass_through();
    test_v03_wnm_v03();
    test_wnm_to_v03();
    test_update_and_deletion();
    test_content_forms();
    test_inline_capacity();
    test_methods();
    test_times();
    test_malformed();
    test_gc_inputs();
    test_uuid();
    return TEST_REPORT();
}
