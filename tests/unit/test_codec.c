/* test_codec.c: array and v03 codecs, pubTime and topics. */
#include <stdlib.h>

#include "announce.h"
#include "codec.h"
#include "json.h"
#include "test.h"
#include "codec_test.h"

#define MD5_EMPTY_HEX "d41d8cd98f00b204e9800998ecf8427e"
#define MD5_EMPTY_B64 "1B2M2Y8AsgTpgAmY7PhCfg=="
#define SHA512_ABC_B64                                                                             \
    "3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw=="
#define SHA512_ABC_HEX                                                                             \
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"                             \
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
#define SEED_SECONDS 1547959818LL /* 2019-01-20T04:50:18Z */
#define SEED_NS (SEED_SECONDS * 1000000000LL + 314854383)

/* A valid v03 message up to (not including) its closing brace. */
#define V03_HEAD                                                                                   \
    "{\"pubTime\":\"20190120T045018.314854383\",\"baseUrl\":\"https://example.org/data\","         \
    "\"relPath\":\"a/b/c.txt\",\"integrity\":{\"method\":\"md5\",\"value\":\"" MD5_EMPTY_B64 "\"}"
#define ARRAY_HEAD "[\"20190120045018.314854383\",\"http://localhost/data\",\"a/b/c.txt\","

/* Decodes msg, encodes it in fmt and compares with want. */
static void check_reencode(const char *msg, enum wm_format fmt, const char *want)
{
    struct announce *a = decode(msg);
    char *out = encode(a, fmt);
    if (out) ASSERT_EQ_STR(out, want);
    free(out);
    announce_free(&a);
}

static void test_seed_example(void)
{
    const char *seed = "[\"20190120045018.314854383\", \"http://localhost/data\", "
                       "\"bulletins/alphanumeric/20190120/UA/CWAO/04/UANT01_CWAO_200445___15103\", "
                       "{\"sum\": \"d,d41d8cd98f00b204e9800998ecf8427e\"}]";
    struct announce *a = decode(seed);
    if (!a) return;
    ASSERT_EQ_INT(a->format, WM_FORMAT_ARRAY);
    ASSERT_EQ_INT(a->pubtime_ns, SEED_NS);
    ASSERT_EQ_INT(a->pubtime_digits, 9);
    ASSERT_EQ_STR(a->base_url, "http://localhost/data");
    ASSERT_EQ_STR(a->rel_path,
                  "bulletins/alphanumeric/20190120/UA/CWAO/04/UANT01_CWAO_200445___15103");
    ASSERT_EQ_INT(a->sum.method, WM_SUM_MD5);
    struct wm_checksum md5_empty;
    ASSERT_EQ_INT(integrity_value_parse(WM_SUM_MD5, MD5_EMPTY_HEX, &md5_empty), WM_OK);
    ASSERT_TRUE(integrity_equal(&a->sum, &md5_empty));
    ASSERT_EQ_INT(a->size, -1);
    ASSERT_TRUE(a->extra == NULL);
    ASSERT_EQ_INT(a->content_encoding, WM_CONTENT_NONE);
    char *out = encode(a, WM_FORMAT_ARRAY);
    ASSERT_EQ_STR(out, "[\"20190120045018.314854383\",\"http://localhost/data\","
                       "\"bulletins/alphanumeric/20190120/UA/CWAO/04/UANT01_CWAO_200445___15103\","
                       "{\"sum\":\"d," MD5_EMPTY_HEX "\"}]");
    free(out);
    out = encode(a, WM_FORMAT_V03);
    ASSERT_EQ_STR(out, "{\"pubTime\":\"20190120T045018.314854383\",\"baseUrl\":"
                       "\"http://localhost/data\",\"relPath\":"
                       "\"bulletins/alphanumeric/20190120/UA/CWAO/04/UANT01_CWAO_200445___15103\","
                       "\"integrity\":{\"method\":\"md5\",\"value\":\"" MD5_EMPTY_B64 "\"}}");
    free(out);
    announce_free(&a);
    ASSERT_TRUE(a == NULL);
}

static void test_v03_round_trip(void)
{
    /* Extras interleaved with interpreted fields come out after them, in their order. */
    const char *in =
        "{\"mtime\":\"20190120T045018.3\",\"pubTime\":\"20190120T045018.314854383\","
        "\"baseUrl\":\"https://example.org/data/\",\"zz\":{\"nested\":[1,2.5,true,null]},"
        "\"relPath\":\"/a/b/c.txt\",\"size\":\"457\",\"mode\":\"644\","
        "\"integrity\":{\"method\":\"sha512\",\"value\":\"" SHA512_ABC_B64 "\"},"
        "\"retPath\":\"x/y?id=3\",\"fileOp\":{\"link\":\"t\"},\"contentType\":\"text/plain\"}";
    struct announce *a = decode(in);
    if (!a) return;
    ASSERT_EQ_INT(a->format, WM_FORMAT_V03);
    ASSERT_EQ_INT(a->size, 457);
    ASSERT_EQ_STR(a->retrieve_path, "x/y?id=3");
    ASSERT_EQ_STR(a->base_url, "https://example.org/data/");
    ASSERT_EQ_STR(a->rel_path, "/a/b/c.txt");
    ASSERT_TRUE(!a->sum_is_identity);
    ASSERT_EQ_INT(wm_json_object_size(a->extra), 5);
    char *out = encode(a, WM_FORMAT_V03);
    ASSERT_EQ_STR(out,
                  "{\"pubTime\":\"20190120T045018.314854383\",\"baseUrl\":"
                  "\"https://example.org/data/\",\"relPath\":\"/a/b/c.txt\","
                  "\"integrity\":{\"method\":\"sha512\",\"value\":\"" SHA512_ABC_B64 "\"},"
                  "\"retrievePath\":\"x/y?id=3\",\"size\":457,"
                  "\"mtime\":\"20190120T045018.3\",\"zz\":{\"nested\":[1,2.5,true,null]},"
                  "\"mode\":\"644\",\"fileOp\":{\"link\":\"t\"},\"contentType\":\"text/plain\"}");
    /* Decoding what we sent gives the same message again. */
    struct announce *b = out ? decode(out) : NULL;
    char *again = encode(b, WM_FORMAT_V03);
    ASSERT_EQ_STR(again, out);
    free(again);
    free(out);
    /* v03 to array: sha512 has the letter s; extras become headers after sum. */
    out = encode(a, WM_FORMAT_ARRAY);
    ASSERT_EQ_STR(out, "[\"20190120045018.314854383\",\"https://example.org/data/\",\"/a/b/c.txt\","
                       "{\"sum\":\"s," SHA512_ABC_HEX "\",\"mtime\":\"20190120T045018.3\","
                       "\"zz\":{\"nested\":[1,2.5,true,null]},\"mode\":\"644\","
                       "\"fileOp\":{\"link\":\"t\"},\"contentType\":\"text/plain\"}]");
    free(out);
    announce_free(&b);
    announce_free(&a);
}

static void test_array_headers(void)
{
    /* Unknown headers are kept in their order; sum is emitted first. */
    check_reencode(ARRAY_HEAD "{\"parts\":\"1,0,1,0,0\",\"sum\":\"d," MD5_EMPTY_HEX
                              "\",\"atime\":\"20190120045018.1\",\"from_cluster\":\"x\","
                              "\"to_clusters\":[\"a\",\"b\"]}]",
                   WM_FORMAT_ARRAY,
                   ARRAY_HEAD "{\"sum\":\"d," MD5_EMPTY_HEX "\",\"parts\":\"1,0,1,0,0\","
                              "\"atime\":\"20190120045018.1\",\"from_cluster\":\"x\","
                              "\"to_clusters\":[\"a\",\"b\"]}]");
    /* Array to v03: headers become fields after the interpreted ones. */
    check_reencode(
        ARRAY_HEAD "{\"sum\":\"s," SHA512_ABC_HEX "\",\"source\":\"UCAR\"}]", WM_FORMAT_V03,
        "{\"pubTime\":\"20190120T045018.314854383\",\"baseUrl\":\"http://localhost/data\","
        "\"relPath\":\"a/b/c.txt\",\"integrity\":{\"method\":\"sha512\",\"value\":\"" SHA512_ABC_B64
        "\"},\"source\":\"UCAR\"}");
    /* Other sum letters: md5name, cod, random, arbitrary. */
    check_reencode(
        ARRAY_HEAD "{\"sum\":\"n," MD5_EMPTY_HEX "\"}]", WM_FORMAT_V03,
        "{\"pubTime\":\"20190120T045018.314854383\",\"baseUrl\":\"http://localhost/data\","
        "\"relPath\":\"a/b/c.txt\",\"integrity\":{\"method\":\"md5name\",\"value\":\"" MD5_EMPTY_B64
        "\"}}");
    check_reencode(ARRAY_HEAD "{\"sum\":\"z,s\"}]", WM_FORMAT_ARRAY,
                   ARRAY_HEAD "{\"sum\":\"z,s\"}]");
    check_reencode(
        ARRAY_HEAD "{\"sum\":\"z,d\"}]", WM_FORMAT_V03,
        "{\"pubTime\":\"20190120T045018.314854383\",\"baseUrl\":\"http://localhost/data\","
        "\"relPath\":\"a/b/c.txt\",\"integrity\":{\"method\":\"cod\",\"value\":\"md5\"}}");
    check_reencode(ARRAY_HEAD "{\"sum\":\"0,417\"}]", WM_FORMAT_ARRAY,
                   ARRAY_HEAD "{\"sum\":\"0,417\"}]");
    check_reencode(
        ARRAY_HEAD "{\"sum\":\"a,my tag\"}]", WM_FORMAT_V03,
        "{\"pubTime\":\"20190120T045018.314854383\",\"baseUrl\":\"http://localhost/data\","
        "\"relPath\":\"a/b/c.txt\",\"integrity\":{\"method\":\"arbitrary\",\"value\":\"my tag\"}}");
}

static void test_method_without_letter(void)
{
    struct announce *a = decode(V03_HEAD "}");
    if (!a) return;
    ASSERT_EQ_INT(integrity_value_parse(
                      WM_SUM_SHA256,
                      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &a->sum),
                  WM_OK);
    char *out = NULL;
    ASSERT_EQ_INT(codec_encode(a, WM_FORMAT_ARRAY, &out, NULL), WM_ERR_METHOD);
    ASSERT_TRUE(out == NULL);
    a->sum.method = WM_SUM_COD;
    a->sum.cod_method = WM_SUM_SHA3_512;
    ASSERT_EQ_INT(codec_encode(a, WM_FORMAT_ARRAY, &out, NULL), WM_ERR_METHOD);
    ASSERT_EQ_INT(codec_encode(a, WM_FORMAT_WNM, &out, NULL), WM_ERR_METHOD); /* not a digest */
    out = encode(a, WM_FORMAT_V03);
    ASSERT_TRUE(out && strstr(out, "{\"method\":\"cod\",\"value\":\"sha3-512\"}"));
    free(out);
    announce_free(&a);
}

static void test_identity(void)
{
    const char *in =
        "{\"pubTime\":\"20190120T045018.314\",\"baseUrl\":\"https://e.org/d\","
        "\"relPath\":\"x.txt\",\"identity\":{\"method\":\"md5\",\"value\":\"" MD5_EMPTY_HEX "\"}}";
    struct announce *a = decode(in);
    if (!a) return;
    ASSERT_TRUE(a->sum_is_identity);
    ASSERT_EQ_INT(a->pubtime_digits, 3);
    char *out = encode(a, WM_FORMAT_V03);
    ASSERT_EQ_STR(
        out,
        "{\"pubTime\":\"20190120T045018.314\",\"baseUrl\":\"https://e.org/d\","
        "\"relPath\":\"x.txt\",\"identity\":{\"method\":\"md5\",\"value\":\"" MD5_EMPTY_B64 "\"}}");
    free(out);
    a->sum_is_identity = false;
    out = encode(a, WM_FORMAT_V03);
    ASSERT_TRUE(out && strstr(out, "\"integrity\":{") && !strstr(out, "identity"));
    free(out);
    announce_free(&a);
}

static void test_escaping(void)
{
    /* Quotes, backslashes, control characters, a slash escape and non-ASCII (2, 3, 4 bytes). */
    const char *in =
        "[\"20190120045018\",\"http://h/d\",\"dir/\\\"q\\\"\\\\b\\\\\\\\c\\n\\t"
        "\\u0001\\u001f\\/\\u00e9\xe2\x82\xac\xf0\x9f\x98\x80.txt\",{\"sum\":\"d," MD5_EMPTY_HEX
        "\"}]";
    const char *want = "dir/\"q\"\\b\\\\c\n\t\x01\x1f/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80.txt";
    struct announce *a = decode(in);
    if (!a) return;
    ASSERT_EQ_STR(a->rel_path, want);
    for (int f = 0; f < 2; f++) {
        char *out = encode(a, f ? WM_FORMAT_V03 : WM_FORMAT_ARRAY);
        ASSERT_TRUE(out && strstr(out, "\\\"q\\\"\\\\b\\\\\\\\c\\n\\t\\u0001\\u001F/"
                                       "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80.txt"));
        struct announce *b = out ? decode(out) : NULL;
        if (b) ASSERT_EQ_STR(b->rel_path, want);
        announce_free(&b);
        free(out);
    }
    announce_free(&a);
}

struct pubtime_case {
    const char *text;
    int64_t ns;
    int digits;
};

static void test_pubtime(void)
{
    static const struct pubtime_case ok[] = {
        {"20190120T045018.314854383", SEED_NS, 9},
        {"20190120045018.314854383", SEED_NS, 9},
        {"20190120T045018.314854383Z", SEED_NS, 9},
        {"20190120045018", SEED_SECONDS * 1000000000LL, 0},
        {"20190120T045018Z", SEED_SECONDS * 1000000000LL, 0},
        {"20190120T045018.", SEED_SECONDS * 1000000000LL, 0},
        {"20190120T045018.314", SEED_SECONDS * 1000000000LL + 314000000, 3},
        {"20190120045018.314854", SEED_SECONDS * 1000000000LL + 314854000, 6},
        {"20190120T045018.314854383123", SEED_NS, 9},
        {"20190120T045018.000000001", SEED_SECONDS * 1000000000LL + 1, 9},
        {"20200229T000000", 1582934400LL * 1000000000LL, 0},
        {"19700101000000", 0, 0},
        {"22611231T235959.999999999", 9214646399LL * 1000000000LL + 999999999, 9},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ns = -1;
        int digits = -1;
        enum wm_err err = codec_pubtime_parse(ok[i].text, &ns, &digits);
        if (err != WM_OK || ns != ok[i].ns || digits != ok[i].digits)
            TEST_FAIL_AT("pubtime \"%s\": err %d ns %" PRId64 " digits %d", ok[i].text, err, ns,
                         digits);
        else
            test_passed++;
    }
    static const char *const bad[] = {
        "20191320T045018",      "20190132T045018",
        "20190229T000000",      "20190120T245018",
        "20190120T046018",      "20190120T045060",
        "2019012004501",        "20190120X045018",
        "19691231T235959",      "22620101T000000",
        "20190120T045018.3x",   "20190120T045018ZZ",
        "20190120 045018",      "",
        "2019-01-20T04:50:18Z", "20190120T045018.-1",
        "20190001T000000",      "20190100T000000",
        "20190120TT045018",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ns;
        if (codec_pubtime_parse(bad[i], &ns, NULL) == WM_OK)
            TEST_FAIL_AT("pubtime \"%s\" was accepted", bad[i]);
        else
            test_passed++;
    }
    char text[40];
    ASSERT_EQ_INT(codec_pubtime_format(SEED_NS, 9, false, text, sizeof text), WM_OK);
    ASSERT_EQ_STR(text, "20190120045018.314854383");
    ASSERT_EQ_INT(codec_pubtime_format(SEED_NS, 3, true, text, sizeof text), WM_OK);
    ASSERT_EQ_STR(text, "20190120T045018.314");
    ASSERT_EQ_INT(codec_pubtime_format(SEED_NS, 0, true, text, sizeof text), WM_OK);
    ASSERT_EQ_STR(text, "20190120T045018");
    ASSERT_EQ_INT(
        codec_pubtime_format(SEED_SECONDS * 1000000000LL + 45000000, 3, true, text, sizeof text),
        WM_OK);
    ASSERT_EQ_STR(text, "20190120T045018.045");
    ASSERT_EQ_INT(codec_pubtime_format(SEED_NS, 10, true, text, sizeof text), WM_ERR_INVAL);
    ASSERT_EQ_INT(codec_pubtime_format(-1, 3, true, text, sizeof text), WM_ERR_INVAL);
    ASSERT_EQ_INT(codec_pubtime_format(SEED_NS, 9, true, text, 20), WM_ERR_TOOBIG);

    /* In messages: the v03 form always carries the T, the array form never. */
    check_reencode("{\"pubTime\":\"20190120045018Z\",\"baseUrl\":\"h\",\"relPath\":\"r\","
                   "\"integrity\":{\"method\":\"md5\",\"value\":\"" MD5_EMPTY_B64 "\"}}",
                   WM_FORMAT_V03,
                   "{\"pubTime\":\"20190120T045018\",\"baseUrl\":\"h\",\"relPath\":\"r\","
                   "\"integrity\":{\"method\":\"md5\",\"value\":\"" MD5_EMPTY_B64 "\"}}");
    check_reencode("[\"20190120T045018.314854383123Z\",\"h\",\"r\",{\"sum\":\"d," MD5_EMPTY_HEX
                   "\"}]",
                   WM_FORMAT_ARRAY,
                   "[\"20190120045018.314854383\",\"h\",\"r\",{\"sum\":\"d," MD5_EMPTY_HEX "\"}]");
}

static void test_content(void)
{
    const char *utf8 =
        V03_HEAD ",\"content\":{\"encoding\":\"utf-8\",\"value\":\"h\\u00e9llo\\n\"}}";
    struct announce *a = decode(utf8);
    if (!a) return;
    ASSERT_EQ_INT(a->content_encoding, WM_CONTENT_UTF8);
    ASSERT_EQ_INT(a->content_len, 7);
    ASSERT_EQ_MEM(a->content, "h\xc3\xa9llo\n", 7);
    char *out = encode(a, WM_FORMAT_V03);
    ASSERT_TRUE(
        out && strstr(out, ",\"content\":{\"encoding\":\"utf-8\",\"value\":\"h\xc3\xa9llo\\n\"}}"));
    free(out);
    /* Bytes that are not UTF-8 can only go out as base64. */
    free(a->content);
    a->content = malloc(4);
    memcpy(a->content, "\xff\x00\x01", 4);
    a->content_len = 3;
    out = encode(a, WM_FORMAT_V03);
    ASSERT_TRUE(out && strstr(out, "\"content\":{\"encoding\":\"base64\",\"value\":\"/wAB\"}"));
    free(out);
    /* The array format has no place for content, size or retrievePath. */
    out = encode(a, WM_FORMAT_ARRAY);
    ASSERT_TRUE(out && !strstr(out, "content"));
    free(out);
    /* codec_encode_within keeps content that fits and drops what would pass the limit. */
    size_t len = 0;
    ASSERT_EQ_INT(codec_encode_within(a, WM_FORMAT_V03, 8192, &out, &len), WM_OK);
    ASSERT_TRUE(out && strstr(out, "\"value\":\"/wAB\""));
    free(out);
    size_t with_content = len;
    ASSERT_EQ_INT(codec_encode_within(a, WM_FORMAT_V03, with_content - 1, &out, &len), WM_OK);
    ASSERT_TRUE(out && !strstr(out, "content") && len < with_content && len == strlen(out));
    ASSERT_EQ_INT(a->content_encoding, WM_CONTENT_NONE);
    ASSERT_TRUE(a->content == NULL && a->content_len == 0);
    free(out);
    announce_free(&a);

    a = decode(V03_HEAD ",\"content\":{\"encoding\":\"base64\",\"value\":\"AAEC\\n/w==\"}}");
    if (!a) return;
    ASSERT_EQ_INT(a->content_encoding, WM_CONTENT_BASE64);
    ASSERT_EQ_INT(a->content_len, 4);
    ASSERT_EQ_MEM(a->content, "\x00\x01\x02\xff", 4);
    out = encode(a, WM_FORMAT_V03);
    ASSERT_TRUE(out && strstr(out, "\"content\":{\"encoding\":\"base64\",\"value\":\"AAEC/w==\"}"));
    free(out);
    announce_free(&a);

    a = decode(V03_HEAD ",\"content\":{\"encoding\":\"utf-8\",\"value\":\"\"}}");
    if (!a) return;
    ASSERT_EQ_INT(a->content_encoding, WM_CONTENT_UTF8);
    ASSERT_EQ_INT(a->content_len, 0);
    out = encode(a, WM_FORMAT_V03);
    ASSERT_TRUE(out && strstr(out, "\"content\":{\"encoding\":\"utf-8\",\"value\":\"\"}"));
    free(out);
    announce_free(&a);
}

struct bad_case {
    const char *name;
    const char *msg;
    enum wm_err err;
};

static char *nested(int depth)
{
    size_t len = strlen(V03_HEAD) + 8 + 2 * (size_t)depth + 2;
    char *s = malloc(len);
    if (!s) return NULL;
    size_t n = (size_t)snprintf(s, len, "%s,\"x\":", V03_HEAD);
    for (int i = 0; i < depth; i++)
        s[n++] = '[';
    for (int i = 0; i < depth; i++)
        s[n++] = ']';
    s[n++] = '}';
    s[n] = '\0';
    return s;
}

static void check_bad(const char *name, const char *msg, size_t len, enum wm_err want)
{
    struct announce *a = (struct announce *)1;
    char why[200];
    memset(why, 'x', sizeof why);
    enum wm_err err = codec_decode(msg, len, &a, why, sizeof why);
    if (err == WM_OK || a != NULL || why[0] == '\0' || strnlen(why, sizeof why) == sizeof why)
        TEST_FAIL_AT("%s: err %d, out %p, why \"%.*s\"", name, err, (void *)a, 100, why);
    else if (want != WM_OK && err != want)
        TEST_FAIL_AT("%s: %s (%s), wanted %s", name, wm_strerror(err), why, wm_strerror(want));
    else
        test_passed++;
    announce_free(&a);
}

static void test_malformed(void)
{
#define SUM_OBJ(m, v) "\"integrity\":{\"method\":\"" m "\",\"value\":\"" v "\"}"
#define V03(fields)                                                                                \
    "{\"pubTime\":\"20190120T045018.3\",\"baseUrl\":\"https://e/d\",\"relPath\":\"a/b\"," fields "}"
    static const struct bad_case cases[] = {
        {"empty", "", WM_ERR_FORMAT},
        {"blank", "  \n\t ", WM_ERR_FORMAT},
        {"bare word", "hello", WM_ERR_FORMAT},
        {"number", "42", WM_ERR_FORMAT},
        {"string", "\"[x]\"", WM_ERR_FORMAT},
        {"truncated array", "[\"20190120045018.3\",\"http://h/d\",\"a/b\",{\"sum\":\"d,",
         WM_ERR_FORMAT},
        {"truncated object", "{\"pubTime\":\"20190120T045018.3\",\"baseUrl\"", WM_ERR_FORMAT},
        {"lone bracket", "[", WM_ERR_FORMAT},
        {"trailing garbage", V03(SUM_OBJ("md5", MD5_EMPTY_B64)) " x", WM_ERR_FORMAT},
        {"empty array", "[]", WM_ERR_INVAL},
        {"array of 2", "[\"20190120045018.3\",\"http://h/d\"]", WM_ERR_INVAL},
        {"array of 5", ARRAY_HEAD "{\"sum\":\"d," MD5_EMPTY_HEX "\"},1]", WM_ERR_INVAL},
        {"array relPath number",
         "[\"20190120045018.3\",\"http://h/d\",7,{\"sum\":\"d," MD5_EMPTY_HEX "\"}]", WM_ERR_INVAL},
        {"array pubTime number",
         "[20190120045018.3,\"http://h/d\",\"a\",{\"sum\":\"d," MD5_EMPTY_HEX "\"}]", WM_ERR_INVAL},
        {"array headers not object", ARRAY_HEAD "[\"sum\"]]", WM_ERR_INVAL},
        {"array sum missing", ARRAY_HEAD "{\"parts\":\"1\"}]", WM_ERR_INVAL},
        {"array sum letter unknown", ARRAY_HEAD "{\"sum\":\"x,abc\"}]", WM_ERR_METHOD},
        {"array sum link event", ARRAY_HEAD "{\"sum\":\"L,abc\"}]", WM_ERR_METHOD},
        {"array sum no comma", ARRAY_HEAD "{\"sum\":\"d\"}]", WM_ERR_INVAL},
        {"array sum bad hex", ARRAY_HEAD "{\"sum\":\"d,zz1d8cd98f00b204e9800998ecf8427e\"}]",
         WM_ERR_INVAL},
        {"array sum short", ARRAY_HEAD "{\"sum\":\"d,d41d8cd98f00\"}]", WM_ERR_INVAL},
        {"array cod unknown", ARRAY_HEAD "{\"sum\":\"z,q\"}]", WM_ERR_METHOD},
        {"array pubTime month 13",
         "[\"20191320045018\",\"h\",\"r\",{\"sum\":\"d," MD5_EMPTY_HEX "\"}]", WM_ERR_INVAL},
        {"pubTime missing",
         "{\"baseUrl\":\"h\",\"relPath\":\"r\"," SUM_OBJ("md5", MD5_EMPTY_B64) "}", WM_ERR_INVAL},
        {"pubTime impossible",
         "{\"pubTime\":\"20190230T000000\",\"baseUrl\":\"h\",\"relPath\":\"r\"," SUM_OBJ(
             "md5", MD5_EMPTY_B64) "}",
         WM_ERR_INVAL},
        {"baseUrl missing",
         "{\"pubTime\":\"20190120T045018\",\"relPath\":\"r\"," SUM_OBJ("md5", MD5_EMPTY_B64) "}",
         WM_ERR_INVAL},
        {"baseUrl empty",
         "{\"pubTime\":\"20190120T045018\",\"baseUrl\":\"\",\"relPath\":\"r\"," SUM_OBJ(
             "md5", MD5_EMPTY_B64) "}",
         WM_ERR_INVAL},
        {"relPath missing",
         "{\"pubTime\":\"20190120T045018\",\"baseUrl\":\"h\"," SUM_OBJ("md5", MD5_EMPTY_B64) "}",
         WM_ERR_INVAL},
        {"relPath number",
         "{\"pubTime\":\"20190120T045018\",\"baseUrl\":\"h\",\"relPath\":3," SUM_OBJ(
             "md5", MD5_EMPTY_B64) "}",
         WM_ERR_INVAL},
        {"relPath empty",
         "{\"pubTime\":\"20190120T045018\",\"baseUrl\":\"h\",\"relPath\":\"\"," SUM_OBJ(
             "md5", MD5_EMPTY_B64) "}",
         WM_ERR_INVAL},
        {"relPath with NUL",
         "{\"pubTime\":\"20190120T045018\",\"baseUrl\":\"h\",\"relPath\":"
         "\"a\\u0000b\"," SUM_OBJ("md5", MD5_EMPTY_B64) "}",
         WM_ERR_FORMAT},
        {"relPath invalid UTF-8",
         "{\"pubTime\":\"20190120T045018\",\"baseUrl\":\"h\",\"relPath\":"
         "\"a\xff\xfe\"," SUM_OBJ("md5", MD5_EMPTY_B64) "}",
         WM_ERR_FORMAT},
        {"relPath overlong UTF-8",
         "{\"pubTime\":\"20190120T045018\",\"baseUrl\":\"h\",\"relPath\":"
         "\"a\xc0\xaf\"," SUM_OBJ("md5", MD5_EMPTY_B64) "}",
         WM_ERR_FORMAT},
        {"relPath surrogate escape",
         "{\"pubTime\":\"20190120T045018\",\"baseUrl\":\"h\",\"relPath\":"
         "\"a\\ud800\"," SUM_OBJ("md5", MD5_EMPTY_B64) "}",
         WM_ERR_FORMAT},
        {"duplicate relPath",
         "{\"pubTime\":\"20190120T045018\",\"baseUrl\":\"h\",\"relPath\":\"a\","
         "\"relPath\":\"b\"," SUM_OBJ("md5", MD5_EMPTY_B64) "}",
         WM_ERR_FORMAT},
        {"integrity missing", V03("\"size\":1"), WM_ERR_INVAL},
        {"integrity a string", V03("\"integrity\":\"md5," MD5_EMPTY_B64 "\""), WM_ERR_INVAL},
        {"method unknown", V03(SUM_OBJ("crc32", MD5_EMPTY_B64)), WM_ERR_METHOD},
        {"method a number", V03("\"integrity\":{\"method\":5,\"value\":\"x\"}"), WM_ERR_INVAL},
        {"value missing", V03("\"integrity\":{\"method\":\"md5\"}"), WM_ERR_INVAL},
        {"value bad base64", V03(SUM_OBJ("md5", "1B2M2Y8AsgTpgAmY7PhC!g==")), WM_ERR_INVAL},
        {"value wrong length", V03(SUM_OBJ("sha512", MD5_EMPTY_B64)), WM_ERR_INVAL},
        {"value hex wrong length", V03(SUM_OBJ("md5", "d41d8cd98f00b204e9800998ecf842")),
         WM_ERR_INVAL},
        {"cod unknown algorithm", V03(SUM_OBJ("cod", "crc32")), WM_ERR_METHOD},
        {"size too large number",
         V03(SUM_OBJ("md5", MD5_EMPTY_B64) ",\"size\":99999999999999999999"), WM_ERR_FORMAT},
        {"size too large string",
         V03(SUM_OBJ("md5", MD5_EMPTY_B64) ",\"size\":\"9999999999999999999\""), WM_ERR_INVAL},
        {"size negative", V03(SUM_OBJ("md5", MD5_EMPTY_B64) ",\"size\":-1"), WM_ERR_INVAL},
        {"size real", V03(SUM_OBJ("md5", MD5_EMPTY_B64) ",\"size\":1.5"), WM_ERR_INVAL},
        {"size not numeric", V03(SUM_OBJ("md5", MD5_EMPTY_B64) ",\"size\":\"12a\""), WM_ERR_INVAL},
        {"retrievePath number", V03(SUM_OBJ("md5", MD5_EMPTY_B64) ",\"retrievePath\":1"),
         WM_ERR_INVAL},
        {"content not object", V03(SUM_OBJ("md5", MD5_EMPTY_B64) ",\"content\":\"x\""),
         WM_ERR_INVAL},
        {"content encoding unknown",
         V03(SUM_OBJ("md5", MD5_EMPTY_B64) ",\"content\":{\"encoding\":\"gzip\",\"value\":\"x\"}"),
         WM_ERR_INVAL},
        {"content bad base64",
         V03(SUM_OBJ("md5",
                     MD5_EMPTY_B64) ",\"content\":{\"encoding\":\"base64\",\"value\":\"@@\"}"),
         WM_ERR_INVAL},
        {"content value missing",
         V03(SUM_OBJ("md5", MD5_EMPTY_B64) ",\"content\":{\"encoding\":\"utf-8\"}"), WM_ERR_INVAL},
        /* Taken for WIS2 notifications (see test_wnm.c), and incomplete. */
        {"WIS2 feature", "{\"id\":\"x\",\"type\":\"Feature\",\"properties\":{}}", WM_ERR_INVAL},
        {"WIS2 properties only", "{\"properties\":{\"pubtime\":\"2022-03-20T04:50:18Z\"}}",
         WM_ERR_INVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_bad(cases[i].name, cases[i].msg, strlen(cases[i].msg), cases[i].err);
    }
    char *deep = nested(100);
    if (deep) check_bad("nesting depth 100", deep, strlen(deep), WM_ERR_TOOBIG);
    free(deep);
    deep = malloc(201);
    if (deep) {
        memset(deep, '[', 100);
        memset(deep + 100, ']', 100);
        deep[200] = '\0';
        check_bad("brackets depth 100", deep, 200, WM_ERR_TOOBIG);
    }
    free(deep);
    size_t big = WM_CODEC_MAX_PAYLOAD + 1;
    char *huge = malloc(big);
    if (huge) {
        memset(huge, ' ', big);
        huge[0] = '[';
        huge[big - 1] = ']';
        check_bad("over 1 MiB", huge, big, WM_ERR_TOOBIG);
    }
    free(huge);
    /* A NUL byte inside the payload itself. */
    const char nul_msg[] = "[\"20190120045018\",\"h\",\"a\0b\",{\"sum\":\"d," MD5_EMPTY_HEX "\"}]";
    check_bad("raw NUL byte", nul_msg, sizeof nul_msg - 1, WM_OK);
    ASSERT_TRUE(sizeof cases / sizeof cases[0] >= 25);
#undef SUM_OBJ
#undef V03
}

static void test_depth_limit(void)
{
    /* 32 levels in total are accepted (the object is level 1). */
    char *msg = nested(31);
    struct announce *a = msg ? decode(msg) : NULL;
    free(msg);
    if (!a) return;
    char *out = encode(a, WM_FORMAT_V03);
    free(out);
    /* The array format nests extras one level deeper: refused rather than sent undecodable. */
    ASSERT_EQ_INT(codec_encode(a, WM_FORMAT_ARRAY, &out, NULL), WM_ERR_TOOBIG);
    announce_free(&a);
}

static void test_decode_details(void)
{
    /* Length is honoured: bytes after len are not read; leading blanks are fine. */
    const char *msg = "  \n" ARRAY_HEAD "{\"sum\":\"d," MD5_EMPTY_HEX "\"}]garbage";
    struct announce *a = NULL;
    char why[100];
    ASSERT_EQ_INT(codec_decode(msg, strlen(msg) - 7, &a, why, sizeof why), WM_OK);
    announce_free(&a);
    ASSERT_EQ_INT(codec_decode(NULL, 0, &a, why, sizeof why), WM_ERR_INVAL);
    ASSERT_EQ_INT(codec_decode("[]", 2, &a, NULL, 0), WM_ERR_INVAL);
    /* Both checksum keys: identity wins; hex values are accepted in v03. */
    a = decode(V03_HEAD ",\"identity\":{\"method\":\"sha512\",\"value\":\"" SHA512_ABC_HEX "\"}}");
    if (a) {
        ASSERT_TRUE(a->sum_is_identity);
        ASSERT_EQ_INT(a->sum.method, WM_SUM_SHA512);
        ASSERT_TRUE(a->extra == NULL);
    }
    announce_free(&a);
    /* A v03 message may carry a "type" field of its own. */
    a = decode(V03_HEAD ",\"type\":\"Feature\"}");
    announce_free(&a);
    /* Sizes: integer or decimal string; a base64 value split by newlines. */
    a = decode(
        "{\"pubTime\":\"20190120T045018\",\"baseUrl\":\"h\",\"relPath\":\"r\",\"size\":\"0\","
        "\"integrity\":{\"method\":\"md5\",\"value\":\"1B2M2Y8A\\nsgTpgAmY\\n7PhCfg==\"}}");
    if (a) ASSERT_EQ_INT(a->size, 0);
    announce_free(&a);
}

static void test_clone(void)
{
    struct announce *a =
        decode(V03_HEAD ",\"retrievePath\":\"r\",\"size\":3,\"content\":{\"encoding\":\"utf-8\","
                        "\"value\":\"abc\"},\"mode\":\"644\"}");
    if (!a) return;
    char *before = encode(a, WM_FORMAT_V03);
    struct announce *c = announce_clone(a);
    announce_free(&a);
    ASSERT_TRUE(c != NULL);
    char *after = encode(c, WM_FORMAT_V03);
    ASSERT_EQ_STR(after, before);
    free(before);
    free(after);
    announce_free(&c);
    struct announce *fresh = announce_new();
    ASSERT_TRUE(fresh && fresh->size == -1 && fresh->extra == NULL && fresh->content == NULL);
    char *out = NULL;
    ASSERT_EQ_INT(codec_encode(fresh, WM_FORMAT_V03, &out, NULL), WM_ERR_INVAL);
    announce_free(&fresh);
    announce_free(&fresh);
    announce_free(NULL);
}

struct topic_case {
    const char *exchange, *prefix, *rel_path, *want;
};

static void test_topic(void)
{
    static const struct topic_case cases[] = {
        {"xpublic", "v03/post", "/a/b/c.txt", "xpublic/v03/post/a/b"},
        {"xpublic", "v03/post", "a/b/c.txt", "xpublic/v03/post/a/b"},
        {"xpublic", "v03/post", "c.txt", "xpublic/v03/post"},
        {"xpublic", "v03/post", "/c.txt", "xpublic/v03/post"},
        {"xpublic", "", "/a/b/c.txt", "xpublic/a/b"},
        {"xpublic", NULL, "a/c.txt", "xpublic/a"},
        {"/xpublic/", "/v03/", "//a//b///c.txt", "xpublic/v03/a/b"},
        {"xpublic", "v03", "2019013003/GTS/AMMC/FT/x", "xpublic/v03/2019013003/GTS/AMMC/FT"},
        {"xpublic", "v03", "c++/#1/x", "xpublic/v03/c%2B%2B/%231"},
        {"xpublic", "v03", "a/b/", "xpublic/v03/a/b"},
    };
    char out[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum wm_err err =
            codec_topic(cases[i].exchange, cases[i].prefix, cases[i].rel_path, out, sizeof out);
        if (err != WM_OK || strcmp(out, cases[i].want) != 0)
            TEST_FAIL_AT("topic(%s, %s, %s): err %d \"%s\" != \"%s\"", cases[i].exchange,
                         cases[i].prefix ? cases[i].prefix : "NULL", cases[i].rel_path, err, out,
                         cases[i].want);
        else
            test_passed++;
    }
    ASSERT_EQ_INT(codec_topic("", "", "c.txt", out, sizeof out), WM_ERR_INVAL);
    ASSERT_EQ_INT(codec_topic("xpublic", "v03/post", "/a/b/c.txt", out, 10), WM_ERR_TOOBIG);
    ASSERT_EQ_INT(codec_topic("xpublic", "v03/post", "/a/b/c.txt", out, 21), WM_OK);
    ASSERT_EQ_INT(codec_topic("xpublic", "v03/post", "/a/b/c.txt", out, 20), WM_ERR_TOOBIG);
    ASSERT_EQ_INT(codec_topic(NULL, "v03", "a", out, sizeof out), WM_ERR_INVAL);
}

struct topic_copy_case {
    const char *exchange, *prefix, *topic, *post_exchange, *post_prefix;
    enum wm_err err;
    const char *want; /* when err is WM_OK */
};

/* --post-topic copy: the levels below the subscription's fixed part, under the post prefix. */
static void test_topic_copy(void)
{
    static const struct topic_copy_case cases[] = {
        /* A WIS2 Global Cache: origin/... in, cache/... out, every level below a/wis2 kept. */
        {"origin", "a/wis2", "origin/a/wis2/ca-eccc-msc/data/core/weather/surface-based-obs/synop",
         "cache", "a/wis2", WM_OK,
         "cache/a/wis2/ca-eccc-msc/data/core/weather/surface-based-obs/synop"},
        {"origin/a/wis2", "", "origin/a/wis2/fr-meteofrance/data/core/climate", "cache/a/wis2", "",
         WM_OK, "cache/a/wis2/fr-meteofrance/data/core/climate"},
        {"origin", NULL, "origin/a/wis2/x", "cache", NULL, WM_OK, "cache/a/wis2/x"},
        /* '+' in the fixed part: one subscription to both origin and cache. */
        {"+", "a/wis2", "cache/a/wis2/de-dwd/data/recommended", "cache", "a/wis2", WM_OK,
         "cache/a/wis2/de-dwd/data/recommended"},
        {"origin", "+/wis2", "origin/b/wis2/x/y", "cache", "a/wis2", WM_OK, "cache/a/wis2/x/y"},
        /* sr3 topics come out as the relPath's directory would. */
        {"xpublic", "v03", "xpublic/v03/20190130/GTS/AMMC", "xpublic", "v03", WM_OK,
         "xpublic/v03/20190130/GTS/AMMC"},
        {"xpublic", "v03/post", "xpublic/v03/post/a/b", "xpublic", "v03", WM_OK, "xpublic/v03/a/b"},
        /* Nothing below the fixed part. */
        {"origin", "a/wis2", "origin/a/wis2", "cache", "a/wis2", WM_OK, "cache/a/wis2"},
        /* The post levels are written as codec_topic writes them. */
        {"origin", "a/wis2", "origin/a/wis2/x", "/cache/", "//a/wis2/", WM_OK, "cache/a/wis2/x"},
        {"origin", "a/wis2", "origin/a/wis2/x", "", "", WM_OK, "x"},
        /* Not under the fixed part: the caller falls back to the relPath's topic. */
        {"origin", "a/wis2", "cache/a/wis2/x", "cache", "a/wis2", WM_ERR_NOTFOUND, NULL},
        {"origin", "a/wis2", "origin/a/wis3/x", "cache", "a/wis2", WM_ERR_NOTFOUND, NULL},
        {"origin", "a/wis2", "origin/a/wis2x/y", "cache", "a/wis2", WM_ERR_NOTFOUND, NULL},
        {"origin", "a/wis2", "origin/a", "cache", "a/wis2", WM_ERR_NOTFOUND, NULL},
        {"origin", "a/wis2", "origin", "cache", "a/wis2", WM_ERR_NOTFOUND, NULL},
        {"origin", "a/wis2", "", "cache", "a/wis2", WM_ERR_NOTFOUND, NULL},
        {"origin", "a/wis2", "originx/a/wis2/y", "cache", "a/wis2", WM_ERR_NOTFOUND, NULL},
        {"#", "", "origin/a/wis2/y", "cache", "a/wis2", WM_ERR_NOTFOUND, NULL},
        {"origin", "a/#", "origin/a/wis2/y", "cache", "a/wis2", WM_ERR_NOTFOUND, NULL},
        {"origin", "a/wis2", "/origin/a/wis2/y", "cache", "a/wis2", WM_ERR_NOTFOUND, NULL},
        /* Levels that cannot be published: empty, or holding a wildcard. */
        {"origin", "a/wis2", "origin/a/wis2/", "cache", "a/wis2", WM_ERR_INVAL, NULL},
        {"origin", "a/wis2", "origin/a/wis2//x", "cache", "a/wis2", WM_ERR_INVAL, NULL},
        {"origin", "a/wis2", "origin/a/wis2/x//y", "cache", "a/wis2", WM_ERR_INVAL, NULL},
        {"origin", "a/wis2", "origin/a/wis2/x/", "cache", "a/wis2", WM_ERR_INVAL, NULL},
        {"origin", "a/wis2", "origin/a/wis2/+/x", "cache", "a/wis2", WM_ERR_INVAL, NULL},
        {"origin", "a/wis2", "origin/a/wis2/x/#", "cache", "a/wis2", WM_ERR_INVAL, NULL},
        {"origin", "a/wis2", "origin/a/wis2/x+y", "cache", "a/wis2", WM_ERR_INVAL, NULL},
        {"origin", "a/wis2", "origin/a/wis2", "", "", WM_ERR_INVAL, NULL},
    };
    char out[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct topic_copy_case *c = &cases[i];
        snprintf(out, sizeof out, "unchanged");
        enum wm_err err = codec_topic_copy(c->exchange, c->prefix, c->topic, c->post_exchange,
                                           c->post_prefix, out, sizeof out);
        /* On failure out is empty, never a half-made topic. */
        bool ok = err == c->err && strcmp(out, err == WM_OK ? c->want : "") == 0;
        if (!ok)
            TEST_FAIL_AT("topic_copy(%s, %s, %s -> %s, %s): err %d \"%s\", want %d \"%s\"",
                         c->exchange, c->prefix ? c->prefix : "NULL", c->topic, c->post_exchange,
                         c->post_prefix ? c->post_prefix : "NULL", err, out, c->err,
                         c->want ? c->want : "");
        else
            test_passed++;
        /* Whatever comes out is a topic one may publish on. */
        if (err == WM_OK && (strpbrk(out, "+#") || strstr(out, "//") || out[0] == '/' ||
                             out[strlen(out) - 1] == '/'))
            TEST_FAIL_AT("topic_copy gave an unpublishable topic \"%s\"", out);
    }
    const char *t = "origin/a/wis2/ca/data/core";
    ASSERT_EQ_INT(codec_topic_copy("origin", "a/wis2", t, "cache", "a/wis2", out, 24),
                  WM_ERR_TOOBIG);
    ASSERT_EQ_INT(codec_topic_copy("origin", "a/wis2", t, "cache", "a/wis2", out, 26), WM_OK);
    ASSERT_EQ_STR(out, "cache/a/wis2/ca/data/core");
    ASSERT_EQ_INT(codec_topic_copy("origin", "a/wis2", t, "cache", "a/wis2", out, 25),
                  WM_ERR_TOOBIG);
    ASSERT_EQ_INT(codec_topic_copy(NULL, "a", t, "cache", "a", out, sizeof out), WM_ERR_INVAL);
    ASSERT_EQ_INT(codec_topic_copy("origin", "a", NULL, "cache", "a", out, sizeof out),
                  WM_ERR_INVAL);
    ASSERT_EQ_INT(codec_topic_copy("origin", "a", t, NULL, "a", out, sizeof out), WM_ERR_INVAL);
    ASSERT_EQ_INT(codec_topic_copy("origin", "a", t, "cache", "a", NULL, 10), WM_ERR_INVAL);
}

int main(void)
{
    test_seed_example();
    test_v03_round_trip();
    test_array_headers();
    test_method_without_letter();
    test_identity();
    test_escaping();
    test_pubtime();
    test_content();
    test_malformed();
    test_depth_limit();
    test_decode_details();
    test_clone();
    test_topic();
    test_topic_copy();
    return TEST_REPORT();
}
