/* test_wnm_check.c: the Global Broker's message checks: the 15 invalid messages of the WMO
 * Global Broker test 13 (gb_functional_tests.py pub_invalid_mesg, applied to the generator's
 * message) are refused, schema-valid edge shapes pass, and the date-time and UUID forms. */
#include <stdio.h>
#include <stdlib.h>

#include "../../src/json.h"
#include "../../src/wnm_check.h"
#include "test.h"

#define ID "\"id\":\"31e9d66a-cd83-4174-9429-b932f1abe1be\","
#define CONFORMS "\"conformsTo\":[\"http://wis.wmo.int/spec/wnm/1/conf/core\"],"
#define TYPE "\"type\":\"Feature\","
#define GEOMETRY "\"geometry\":{\"type\":\"Point\",\"coordinates\":[6.14,46.22]},"
#define PUBTIME "\"pubtime\":\"2024-09-23T11:37:12Z\","
#define DATETIME "\"datetime\":\"2024-09-23T11:37:12Z\","
#define DATA_ID "\"data_id\":\"wis2dev-12-test_0a1b2c\","
#define INTEGRITY "\"integrity\":{\"method\":\"sha512\",\"value\":\"A2KNxvks==\"}"
#define PROPS(inner) "\"properties\":{" inner INTEGRITY "},"
#define LINKS "\"links\":[{\"href\":\"https://test2.wis2dev.io/x\",\"rel\":\"canonical\"}]"
#define MSG(head, props, links) "{" head props links "}"
#define HEAD ID CONFORMS TYPE GEOMETRY
#define GOOD_PROPS PROPS(PUBTIME DATETIME DATA_ID)
#define START_END                                                                                  \
    "\"start_datetime\":\"2024-07-20t19:12:29z\",\"end_datetime\":\"2024-07-20t19:12:29z\","

/* Test 13's variants, in its order. */
static const char *const invalid[] = {
    MSG(CONFORMS TYPE GEOMETRY, GOOD_PROPS, LINKS), /* no id */
    MSG("\"id\":\"This is NOT a UUID\"," CONFORMS TYPE GEOMETRY, GOOD_PROPS, LINKS),
    MSG(ID CONFORMS GEOMETRY, GOOD_PROPS, LINKS), /* no type */
    MSG(ID CONFORMS "\"type\":\"Not Feature\"," GEOMETRY, GOOD_PROPS, LINKS),
    MSG(HEAD, GOOD_PROPS, "\"links\":[{\"rel\":\"canonical\"}]"),                   /* no href */
    MSG(HEAD, GOOD_PROPS, "\"links\":[{\"href\":\"https://test2.wis2dev.io/x\"}]"), /* no rel */
    MSG(ID "\"conformsTo\":[]," TYPE GEOMETRY, GOOD_PROPS, LINKS),
    MSG(ID "\"conformsTo\":[\"This is NOT correct\"]," TYPE GEOMETRY, GOOD_PROPS, LINKS),
    MSG(HEAD, PROPS(PUBTIME DATETIME), LINKS), /* no data_id */
    MSG(HEAD, PROPS(PUBTIME DATA_ID), LINKS),  /* no datetime */
    MSG(HEAD, PROPS(PUBTIME "\"datetime\":\"Not RFC3339 Compliant\"," DATA_ID), LINKS),
    MSG(HEAD, PROPS(PUBTIME DATA_ID "\"end_datetime\":\"2024-07-20t19:12:29z\","), LINKS),
    MSG(HEAD, PROPS(PUBTIME DATA_ID "\"start_datetime\":\"2024-07-20t19:12:29z\","), LINKS),
    MSG(HEAD, PROPS(DATETIME DATA_ID), LINKS), /* no pubtime */
    MSG(HEAD, PROPS(PUBTIME DATETIME DATA_ID START_END), LINKS),
};

/* Schema-valid shapes a broker must pass on. */
static const char *const valid[] = {
    MSG(HEAD, GOOD_PROPS, LINKS),
    /* The spec's minimal message: datetime null, no integrity, geometry null. */
    "{\"id\":\"31e9d66a-cd83-4174-9429-b932f1abe1be\","
    "\"conformsTo\":[\"http://wis.wmo.int/spec/wnm/1/conf/core\"],\"type\":\"Feature\","
    "\"geometry\":null,\"properties\":{\"pubtime\":\"2024-08-28T19:25:07Z\",\"datetime\":null,"
    "\"data_id\":\"x\"},\"links\":[{\"rel\":\"canonical\",\"href\":\"https://a/b\"}]}",
    MSG(HEAD, PROPS(PUBTIME DATA_ID START_END), LINKS),
    /* version instead of conformsTo, a polygon, extra links and properties, inline content. */
    "{\"id\":\"31E9D66A-CD83-4174-9429-B932F1ABE1BE\",\"version\":\"v04\",\"type\":\"Feature\","
    "\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[1,2],[3,4],[5,6.5],[1,2]]]},"
    "\"properties\":{\"pubtime\":\"2024-08-28T19:25:07.123456+00:00\","
    "\"datetime\":\"2024-08-28T19:35:00Z\",\"data_id\":\"a/b\",\"cache\":false,"
    "\"wigos_station_identifier\":\"0-840-0-KRID\",\"global-cache\":\"x-global-cache\","
    "\"content\":{\"encoding\":\"utf-8\",\"value\":\"h\xc3\xa9llo\",\"size\":6}},"
    "\"links\":[{\"rel\":\"via\",\"href\":\"mailto:someone\"},"
    "{\"rel\":\"update\",\"href\":\"sftp://h/p\",\"length\":12,\"type\":\"text/plain\"}]}",
    /* conformsTo with another class besides the core one. */
    MSG(ID "\"conformsTo\":[\"http://example.org/x\",\"http://wis.wmo.int/spec/wnm/1/conf/"
           "core\"]," TYPE GEOMETRY,
        GOOD_PROPS, "\"links\":[{\"rel\":\"deletion\",\"href\":\"http://h/p\"}]"),
};

/* Other invalid shapes (schema or the standard's text). */
static const char *const other_invalid[] = {
    MSG(ID CONFORMS "\"version\":\"v04\"," TYPE GEOMETRY, GOOD_PROPS, LINKS), /* both */
    MSG(ID TYPE GEOMETRY, GOOD_PROPS, LINKS),                                 /* neither */
    MSG(ID CONFORMS TYPE, GOOD_PROPS, LINKS),                                 /* no geometry */
    MSG(ID CONFORMS TYPE "\"geometry\":{\"type\":\"Point\",\"coordinates\":[1]},", GOOD_PROPS,
        LINKS),
    MSG(HEAD, PROPS(PUBTIME DATETIME DATA_ID "\"cache\":\"false\","), LINKS),
    MSG(HEAD,
        "\"properties\":{" PUBTIME DATETIME DATA_ID
        "\"integrity\":{\"method\":\"sha1\",\"value\":\"x\"}},",
        LINKS),
    MSG(HEAD, GOOD_PROPS, "\"links\":[]"),
    MSG(HEAD, GOOD_PROPS, "\"links\":[{\"rel\":\"via\",\"href\":\"https://h/\"}]"),
    MSG(HEAD, GOOD_PROPS, "\"links\":[{\"rel\":\"canonical\",\"href\":\"file:///etc/passwd\"}]"),
    MSG(HEAD, GOOD_PROPS,
        "\"links\":[{\"rel\":\"canonical\",\"href\":\"https://h/\",\"length\":1.5}]"),
    MSG(HEAD,
        "\"properties\":{" PUBTIME DATETIME DATA_ID
        "\"content\":{\"encoding\":\"base64\",\"value\":\"AA==\",\"size\":5000}},",
        LINKS),
    MSG(HEAD, PROPS("\"pubtime\":\"2024-09-23T11:37:12+02:00\"," DATETIME DATA_ID), LINKS),
    MSG(HEAD, PROPS(PUBTIME "\"datetime\":\"2024-02-30T11:37:12Z\"," DATA_ID), LINKS),
    "[1,2]",
};

#define N(a) (sizeof a / sizeof a[0])

static enum wm_err check(const char *text, char *id, char *why, size_t whylen)
{
    struct wm_json *j = NULL;
    char perr[100];
    if (wm_json_parse(text, strlen(text), &j, perr, sizeof perr) != WM_OK) {
        snprintf(why, whylen, "test message is not JSON: %s", perr);
        return WM_ERR_INVAL;
    }
    enum wm_err e = wnm_check(j, strlen(text), id, why, whylen);
    wm_json_free(&j);
    return e;
}

static void test_messages(void)
{
    char id[WNM_ID_LEN + 1], why[200];
    ASSERT_EQ_INT(N(invalid), 15);
    for (size_t i = 0; i < N(invalid); i++) {
        enum wm_err e = check(invalid[i], id, why, sizeof why);
        if (e != WM_ERR_FORMAT)
            TEST_FAIL_AT("test 13 message %zu: %s (%s)", i + 1, wm_strerror(e), why);
        else
            test_passed++;
    }
    for (size_t i = 0; i < N(other_invalid); i++) {
        enum wm_err e = check(other_invalid[i], id, why, sizeof why);
        if (e != WM_ERR_FORMAT)
            TEST_FAIL_AT("other invalid message %zu: %s (%s)", i, wm_strerror(e), why);
        else
            test_passed++;
    }
    for (size_t i = 0; i < N(valid); i++) {
        enum wm_err e = check(valid[i], id, why, sizeof why);
        if (e != WM_OK)
            TEST_FAIL_AT("valid message %zu: %s: %s", i, wm_strerror(e), why);
        else
            test_passed++;
    }
    ASSERT_EQ_INT(check(valid[0], id, why, sizeof why), WM_OK);
    ASSERT_EQ_STR(id, "31e9d66a-cd83-4174-9429-b932f1abe1be");
    ASSERT_EQ_INT(check(invalid[1], id, why, sizeof why), WM_ERR_FORMAT);
    ASSERT_EQ_STR(why, "id is not a UUID");
    ASSERT_EQ_INT(check(invalid[14], id, why, sizeof why), WM_ERR_FORMAT);
    ASSERT_EQ_STR(why, "both datetime and start/end_datetime");
}

static void test_size(void)
{
    /* A valid message padded past 8192 bytes with an extra property. */
    static char big[2 * WNM_MESSAGE_MAX];
    const char *head = "{" HEAD "\"properties\":{" PUBTIME DATETIME DATA_ID "\"pad\":\"";
    size_t n = strlen(head);
    memcpy(big, head, n);
    memset(big + n, 'x', WNM_MESSAGE_MAX);
    snprintf(big + n + WNM_MESSAGE_MAX - 100, 200, "\"}," LINKS "}");
    char id[WNM_ID_LEN + 1], why[200];
    ASSERT_EQ_INT(check(big, id, why, sizeof why), WM_ERR_TOOBIG);
}

static void test_forms(void)
{
    ASSERT_TRUE(wnm_rfc3339("2024-07-20T19:12:29Z", 20, true));
    ASSERT_TRUE(wnm_rfc3339("2024-07-20t19:12:29z", 20, true));
    ASSERT_TRUE(wnm_rfc3339("2024-02-29T23:59:60.5Z", 22, true));
    ASSERT_TRUE(wnm_rfc3339("2024-07-20T19:12:29+00:00", 25, true));
    ASSERT_TRUE(wnm_rfc3339("2024-07-20T19:12:29+02:00", 25, false));
    ASSERT_TRUE(!wnm_rfc3339("2024-07-20T19:12:29+02:00", 25, true));
    ASSERT_TRUE(!wnm_rfc3339("2024-07-20T19:12:29-00:00", 25, true));
    ASSERT_TRUE(!wnm_rfc3339("2023-02-29T00:00:00Z", 20, true));
    ASSERT_TRUE(!wnm_rfc3339("2024-07-20 19:12:29Z", 20, true));
    ASSERT_TRUE(!wnm_rfc3339("2024-07-20T19:12:29", 19, true));
    ASSERT_TRUE(!wnm_rfc3339("2024-07-20T19:12:29.Z", 21, true));
    ASSERT_TRUE(!wnm_rfc3339("2024-13-20T19:12:29Z", 20, true));
    ASSERT_TRUE(!wnm_rfc3339("2024-07-20T24:12:29Z", 20, true));
    ASSERT_TRUE(!wnm_rfc3339("2024-07-20T19:12:29Zx", 21, true));
    ASSERT_TRUE(wnm_uuid("31e9d66a-cd83-4174-9429-b932f1abe1be", 36));
    ASSERT_TRUE(!wnm_uuid("31e9d66a-cd83-4174-9429-b932f1abe1b", 35));
    ASSERT_TRUE(!wnm_uuid("31e9d66a-cd83-4174-9429_b932f1abe1be", 36));
    ASSERT_TRUE(!wnm_uuid("31e9d66g-cd83-4174-9429-b932f1abe1be", 36));
}

int main(void)
{
    test_messages();
    test_size();
    test_forms();
    return TEST_REPORT();
}
