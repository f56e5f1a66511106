/* test_mqtt_wire.c: MQTT 3.1.1 and 5 packet encoding and parsing, byte for byte. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "bytes.h"
#include "mqtt_wire.h"
#include "test.h"

#define M 'M', 'Q', 'T', 'T'

static struct buf out;

/* The encoder output must be exactly want; the buffer is emptied afterwards. */
#define EXPECT_OUT(...) expect_out(__LINE__, B(__VA_ARGS__))
static void expect_out(int line, struct bytes want)
{
    if (out.len == want.n && memcmp(out.data, want.p, want.n) == 0) {
        test_passed++;
    } else {
        fprintf(stderr, "%s:%d: encoding differs\n", __FILE__, line);
        hexdump("got ", out.data, out.len);
        hexdump("want", want.p, want.n);
        test_failed++;
    }
    out.len = 0;
}

/* The input of the last parse, copied to the heap at its exact size so that the sanitizer sees
 * any read past its end; kept until the next parse since the packet borrows from it. */
static unsigned char *held;

static enum wm_err parse_exact(const unsigned char *p, size_t n, int version, size_t max_len,
                               struct mqtt_packet *pk, size_t *used, char *why, size_t whylen)
{
    free(held);
    held = malloc(n ? n : 1);
    if (!held) abort();
    if (n) memcpy(held, p, n);
    return mqtt_wire_parse(held, n, version, max_len, pk, used, why, whylen);
}

/* Parses a packet that must be accepted whole. */
#define PARSE_OK(version, pk, ...) parse_ok(__LINE__, version, pk, B(__VA_ARGS__))
static bool parse_ok(int line, int version, struct mqtt_packet *pk, struct bytes in)
{
    size_t used = 12345;
    char why[256] = "unset";
    memset(pk, 0xA5, sizeof *pk);
    enum wm_err err = parse_exact(in.p, in.n, version, SIZE_MAX, pk, &used, why, sizeof why);
    if (err != WM_OK || used != in.n) {
        fprintf(stderr, "%s:%d: MQTT %d parse: %s (%s), used %zu of %zu\n", __FILE__, line, version,
                wm_strerror(err), why, used, in.n);
        hexdump("input", in.p, in.n);
        test_failed++;
        memset(pk, 0, sizeof *pk);
        return false;
    }
    test_passed++;
    return true;
}

/* Parses a packet that must be refused as malformed, with a reason containing want (if given). */
#define PARSE_BAD(version, want, ...) parse_bad(__LINE__, version, want, B(__VA_ARGS__))
static void parse_bad(int line, int version, const char *want, struct bytes in)
{
    struct mqtt_packet pk, before;
    size_t used = 12345;
    char why[256] = "unset";
    memset(&pk, 0x5A, sizeof pk);
    before = pk;
    enum wm_err err = parse_exact(in.p, in.n, version, SIZE_MAX, &pk, &used, why, sizeof why);
    bool ok = err == WM_ERR_PROTOCOL && used == 0 && why[0] && strcmp(why, "unset") != 0 &&
              (!want || strstr(why, want)) && memcmp(&pk, &before, sizeof pk) == 0;
    if (ok) {
        test_passed++;
        if (getenv("TEST_VERBOSE")) printf("  MQTT %d refused: %s\n", version, why);
        return;
    }
    fprintf(stderr, "%s:%d: MQTT %d parse gave %s (\"%s\", used %zu), want a protocol error%s%s\n",
            __FILE__, line, version, wm_strerror(err), why, used, want ? " saying " : "",
            want ? want : "");
    hexdump("input", in.p, in.n);
    test_failed++;
}

/* Every proper prefix of a valid packet asks for more bytes, telling the total once the fixed
 * header is complete, and fills nothing. */
#define PREFIXES(version, ...) prefixes(__LINE__, version, B(__VA_ARGS__))
static void prefixes(int line, int version, struct bytes in)
{
    size_t header = 2;
    while (header < in.n && (in.p[header - 1] & 0x80))
        header++;
    for (size_t k = 0; k < in.n; k++) {
        struct mqtt_packet pk, before;
        size_t used = 12345;
        char why[64];
        memset(&pk, 0x5A, sizeof pk);
        before = pk;
        enum wm_err err = parse_exact(in.p, k, version, SIZE_MAX, &pk, &used, why, sizeof why);
        size_t want_used = k >= header ? in.n : 0;
        if (err == WM_ERR_NOTFOUND && used == want_used && memcmp(&pk, &before, sizeof pk) == 0) {
            test_passed++;
            continue;
        }
        fprintf(stderr, "%s:%d: MQTT %d prefix of %zu bytes: %s, used %zu (want %zu)\n", __FILE__,
                line, version, k, wm_strerror(err), used, want_used);
        test_failed++;
    }
    struct mqtt_packet pk;
    size_t used = 0;
    ASSERT_EQ_INT(parse_exact(in.p, in.n, version, SIZE_MAX, &pk, &used, NULL, 0), WM_OK);
    ASSERT_EQ_INT(used, in.n);
}

static bool same_text(const char *s, size_t n, const char *want)
{
    return s && n == strlen(want) && memcmp(s, want, n) == 0;
}

/* ---- buffer ---- */

static void test_buf(void)
{
    struct buf b = {0};
    ASSERT_EQ_INT(buf_reserve(&b, 1), WM_OK);
    ASSERT_EQ_INT(b.cap, 256);
    ASSERT_EQ_INT(b.len, 0);
    memcpy(b.data, "abcdef", 6);
    b.len = 6;
    ASSERT_EQ_INT(buf_reserve(&b, 250), WM_OK);
    ASSERT_EQ_INT(b.cap, 256);
    ASSERT_EQ_INT(buf_reserve(&b, 251), WM_OK);
    ASSERT_EQ_INT(b.cap, 512); /* doubled */
    ASSERT_EQ_INT(buf_reserve(&b, 5000), WM_OK);
    ASSERT_EQ_INT(b.cap, 5006); /* more than double: just what is needed */
    ASSERT_EQ_MEM(b.data, "abcdef", 6);
    buf_consume(&b, 2);
    ASSERT_EQ_INT(b.len, 4);
    ASSERT_EQ_MEM(b.data, "cdef", 4);
    buf_consume(&b, 4);
    ASSERT_EQ_INT(b.len, 0);
    /* A request past the cap (or whose total would wrap around) fails and leaves the buffer as it
     * was. */
    unsigned char *data = b.data;
    b.len = 10;
    ASSERT_EQ_INT(buf_reserve(&b, SIZE_MAX - 5), WM_ERR_TOOBIG);
    ASSERT_TRUE(b.data == data && b.len == 10 && b.cap == 5006);
    buf_free(&b);
    ASSERT_TRUE(b.data == NULL && b.len == 0 && b.cap == 0);
    buf_free(&b); /* twice is harmless */
}

/* ---- encoding ---- */

static void test_connect(void)
{
    /* 3.1.1, the smallest: client id, clean session, keep-alive 60 (3.1.1 figure 3.6 layout). */
    struct mqtt_connect c = {
        .version = MQTT_LEVEL_311, .client_id = "wm", .clean_start = true, .keepalive_s = 60};
    ASSERT_EQ_INT(mqtt_wire_connect(&out, &c), WM_OK);
    EXPECT_OUT(0x10, 14, 0, 4, M, 4, 0x02, 0, 60, 0, 2, 'w', 'm');

    /* User name and password: flags 0xC2; the password is binary data with a 2-byte length. */
    c = (struct mqtt_connect){.version = MQTT_LEVEL_311,
                              .client_id = "c",
                              .clean_start = true,
                              .keepalive_s = 10,
                              .username = "u",
                              .password = "pw"};
    ASSERT_EQ_INT(mqtt_wire_connect(&out, &c), WM_OK);
    EXPECT_OUT(0x10, 20, 0, 4, M, 4, 0xC2, 0, 10, 0, 1, 'c', 0, 1, 'u', 0, 2, 'p', 'w');

    /* A user name alone; a password alone is not sent; a persistent session. */
    c = (struct mqtt_connect){.version = MQTT_LEVEL_311, .client_id = "c", .username = "u"};
    ASSERT_EQ_INT(mqtt_wire_connect(&out, &c), WM_OK);
    EXPECT_OUT(0x10, 16, 0, 4, M, 4, 0x80, 0, 0, 0, 1, 'c', 0, 1, 'u');
    c = (struct mqtt_connect){.version = MQTT_LEVEL_311, .client_id = "c", .password = "pw"};
    ASSERT_EQ_INT(mqtt_wire_connect(&out, &c), WM_OK);
    EXPECT_OUT(0x10, 13, 0, 4, M, 4, 0x00, 0, 0, 0, 1, 'c');

    /* An empty user name and password are sent as such. */
    c = (struct mqtt_connect){.version = MQTT_LEVEL_311,
                              .client_id = "",
                              .clean_start = true,
                              .username = "",
                              .password = ""};
    ASSERT_EQ_INT(mqtt_wire_connect(&out, &c), WM_OK);
    EXPECT_OUT(0x10, 16, 0, 4, M, 4, 0xC2, 0, 0, 0, 0, 0, 0, 0, 0);

    /* MQTT 5 without properties: a property length of 0 after the keep-alive. */
    c = (struct mqtt_connect){
        .version = MQTT_LEVEL_5, .client_id = "wm", .clean_start = true, .keepalive_s = 60};
    ASSERT_EQ_INT(mqtt_wire_connect(&out, &c), WM_OK);
    EXPECT_OUT(0x10, 15, 0, 4, M, 5, 0x02, 0, 60, 0, 0, 2, 'w', 'm');

    /* MQTT 5 with every property we send (MQTT 5 figure 3-8 has the Session Expiry of 10), user
     * name and password. */
    c = (struct mqtt_connect){.version = MQTT_LEVEL_5,
                              .client_id = "c",
                              .clean_start = true,
                              .keepalive_s = 10,
                              .username = "u",
                              .password = "pw",
                              .session_expiry_s = 10,
                              .receive_maximum = 20,
                              .maximum_packet_size = 1048576};
    ASSERT_EQ_INT(mqtt_wire_connect(&out, &c), WM_OK);
    EXPECT_OUT(0x10, 34, 0, 4, M, 5, 0xC2, 0, 10, 13, 0x11, 0, 0, 0, 10, 0x21, 0, 20, 0x27, 0, 0x10,
               0, 0, 0, 1, 'c', 0, 1, 'u', 0, 2, 'p', 'w');

    /* One property alone. */
    c = (struct mqtt_connect){
        .version = MQTT_LEVEL_5, .client_id = "c", .session_expiry_s = 0x01020304};
    ASSERT_EQ_INT(mqtt_wire_connect(&out, &c), WM_OK);
    EXPECT_OUT(0x10, 19, 0, 4, M, 5, 0x00, 0, 0, 5, 0x11, 1, 2, 3, 4, 0, 1, 'c');

    /* A long client id: the remaining length takes two bytes. */
    char id[201];
    memset(id, 'x', 200);
    id[200] = '\0';
    c = (struct mqtt_connect){.version = MQTT_LEVEL_311, .client_id = id, .clean_start = true};
    ASSERT_EQ_INT(mqtt_wire_connect(&out, &c), WM_OK);
    ASSERT_EQ_INT(out.len, 1 + 2 + 212);
    ASSERT_TRUE(out.data[1] == ((212 & 0x7F) | 0x80) && out.data[2] == 1);
    ASSERT_TRUE(out.data[13] == 0 && out.data[14] == 200 && out.data[15] == 'x');
    out.len = 0;

    /* Refused, the buffer untouched. */
    out.len = 3;
    char *big = malloc(65537);
    if (!big) abort();
    memset(big, 'a', 65536);
    big[65536] = '\0';
    struct mqtt_connect bad[] = {
        {.version = 3, .client_id = "c", .clean_start = true},
        {.version = 6, .client_id = "c", .clean_start = true},
        {.version = MQTT_LEVEL_5, .client_id = NULL, .clean_start = true},
        {.version = MQTT_LEVEL_5, .client_id = "", .clean_start = false},
        {.version = MQTT_LEVEL_311, .client_id = big, .clean_start = true},
        {.version = MQTT_LEVEL_311, .client_id = "c", .username = big},
        {.version = MQTT_LEVEL_311, .client_id = "c", .username = "u", .password = big},
        {.version = MQTT_LEVEL_311, .client_id = "c", .username = "\xff"},
        {.version = MQTT_LEVEL_311, .client_id = "\xc0\x80"}, /* overlong NUL */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_EQ_INT(mqtt_wire_connect(&out, &bad[i]), WM_ERR_INVAL);
    ASSERT_EQ_INT(out.len, 3);
    ASSERT_EQ_INT(mqtt_wire_connect(NULL, &c), WM_ERR_INVAL);
    ASSERT_EQ_INT(mqtt_wire_connect(&out, NULL), WM_ERR_INVAL);
    /* 65535 bytes is the most a string can hold. */
    big[65535] = '\0';
    c = (struct mqtt_connect){.version = MQTT_LEVEL_311, .client_id = big};
    ASSERT_EQ_INT(mqtt_wire_connect(&out, &c), WM_OK);
    ASSERT_EQ_INT(out.len, 3 + 1 + 3 + 10 + 2 + 65535);
    ASSERT_TRUE(out.data[3 + 1 + 3 + 10] == 0xFF && out.data[3 + 1 + 3 + 11] == 0xFF);
    free(big);
    out.len = 0;
}

static void test_publish(void)
{
    struct mqtt_publish p = {.topic = "a/b", .payload = "hi", .len = 2};
    ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_311, &p), WM_OK);
    EXPECT_OUT(0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i');
    ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_5, &p), WM_OK);
    EXPECT_OUT(0x30, 8, 0, 3, 'a', '/', 'b', 0, 'h', 'i');

    /* QoS 1 with retain: the packet id follows the topic. */
    p = (struct mqtt_publish){
        .topic = "a/b", .payload = "hi", .len = 2, .qos = 1, .retain = true, .packet_id = 10};
    ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_311, &p), WM_OK);
    EXPECT_OUT(0x33, 9, 0, 3, 'a', '/', 'b', 0, 10, 'h', 'i');
    ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_5, &p), WM_OK);
    EXPECT_OUT(0x33, 10, 0, 3, 'a', '/', 'b', 0, 10, 0, 'h', 'i');

    /* Content type: a property in MQTT 5, left out in 3.1.1. */
    p = (struct mqtt_publish){.topic = "a/b",
                              .payload = "hi",
                              .len = 2,
                              .qos = 1,
                              .dup = true,
                              .packet_id = 0x1234,
                              .content_type = "text/plain"};
    ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_5, &p), WM_OK);
    EXPECT_OUT(0x3A, 23, 0, 3, 'a', '/', 'b', 0x12, 0x34, 13, 0x03, 0, 10, 't', 'e', 'x', 't', '/',
               'p', 'l', 'a', 'i', 'n', 'h', 'i');
    ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_311, &p), WM_OK);
    EXPECT_OUT(0x3A, 9, 0, 3, 'a', '/', 'b', 0x12, 0x34, 'h', 'i');
    p = (struct mqtt_publish){.topic = "t", .content_type = ""};
    ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_5, &p), WM_OK);
    EXPECT_OUT(0x30, 7, 0, 1, 't', 3, 0x03, 0, 0);

    /* Empty payload, NULL allowed then; UTF-8 topics. */
    p = (struct mqtt_publish){.topic = "caf\xc3\xa9/\xf0\x9f\x98\x80"};
    ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_311, &p), WM_OK);
    EXPECT_OUT(0x30, 12, 0, 10, 'c', 'a', 'f', 0xc3, 0xa9, '/', 0xf0, 0x9f, 0x98, 0x80);

    /* Refused, the buffer untouched. */
    out.len = 1;
    struct mqtt_publish bad[] = {
        {.topic = NULL},
        {.topic = ""},
        {.topic = "a/+"},
        {.topic = "#"},
        {.topic = "a\xff"},
        {.topic = "\xed\xa0\x80"},     /* a surrogate */
        {.topic = "\xf4\x90\x80\x80"}, /* past U+10FFFF */
        {.topic = "a", .qos = 2, .packet_id = 1},
        {.topic = "a", .qos = -1},
        {.topic = "a", .qos = 1, .packet_id = 0},
        {.topic = "a", .dup = true},
        {.topic = "a", .payload = NULL, .len = 1},
        {.topic = "a", .content_type = "\xc3"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_5, &bad[i]), WM_ERR_INVAL);
    p = (struct mqtt_publish){.topic = "a"};
    ASSERT_EQ_INT(mqtt_wire_publish(&out, 3, &p), WM_ERR_INVAL);
    ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_5, NULL), WM_ERR_INVAL);
    /* Over the largest remaining length (3 bytes of topic); the payload is not read. */
    p = (struct mqtt_publish){.topic = "a", .payload = "x", .len = MQTT_MAX_REMAINING - 2};
    ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_311, &p), WM_ERR_TOOBIG);
    p.len = SIZE_MAX;
    ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_311, &p), WM_ERR_TOOBIG);
    p.len = MQTT_MAX_REMAINING - 3;
    ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_5, &p), WM_ERR_TOOBIG); /* + property length */
    ASSERT_EQ_INT(out.len, 1);
    out.len = 0;
}

static void test_small_packets(void)
{
    ASSERT_EQ_INT(mqtt_wire_puback(&out, 0x1234), WM_OK);
    EXPECT_OUT(0x40, 2, 0x12, 0x34);
    ASSERT_EQ_INT(mqtt_wire_puback(&out, 0), WM_ERR_INVAL);
    ASSERT_EQ_INT(out.len, 0);
    ASSERT_EQ_INT(mqtt_wire_pingreq(&out), WM_OK);
    EXPECT_OUT(0xC0, 0);
    ASSERT_EQ_INT(mqtt_wire_disconnect(&out, MQTT_LEVEL_311), WM_OK);
    EXPECT_OUT(0xE0, 0);
    ASSERT_EQ_INT(mqtt_wire_disconnect(&out, MQTT_LEVEL_5), WM_OK);
    EXPECT_OUT(0xE0, 0);
    ASSERT_EQ_INT(mqtt_wire_disconnect(&out, 0), WM_ERR_INVAL);
    ASSERT_EQ_INT(out.len, 0);

    /* Packets append: a PUBACK after a PINGREQ. */
    ASSERT_EQ_INT(mqtt_wire_pingreq(&out), WM_OK);
    ASSERT_EQ_INT(mqtt_wire_puback(&out, 1), WM_OK);
    EXPECT_OUT(0xC0, 0, 0x40, 2, 0, 1);
}

static void test_subscribe(void)
{
    const char *filters[] = {"a/#", "+/b"};
    ASSERT_EQ_INT(mqtt_wire_subscribe(&out, MQTT_LEVEL_311, 1, filters, 2, 1), WM_OK);
    EXPECT_OUT(0x82, 14, 0, 1, 0, 3, 'a', '/', '#', 1, 0, 3, '+', '/', 'b', 1);
    ASSERT_EQ_INT(mqtt_wire_subscribe(&out, MQTT_LEVEL_5, 0x0102, filters, 2, 0), WM_OK);
    EXPECT_OUT(0x82, 15, 1, 2, 0, 0, 3, 'a', '/', '#', 0, 0, 3, '+', '/', 'b', 0);
    const char *good[] = {"#", "+", "/+/", "$share/g/a/#", "a//b", "+/+/#"};
    ASSERT_EQ_INT(mqtt_wire_subscribe(&out, MQTT_LEVEL_5, 7, good, 6, 2), WM_OK);
    ASSERT_EQ_INT(out.len, 2 + 3 + (3 * 6 + 1 + 1 + 3 + 12 + 4 + 5));
    ASSERT_EQ_INT(out.data[out.len - 1], 2);
    out.len = 0;

    const char *bad[] = {"", "a/#/b", "a#", "a+", "+a/b", "a/b+", "\xff", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *one[] = {"ok", bad[i]};
        ASSERT_EQ_INT(mqtt_wire_subscribe(&out, MQTT_LEVEL_311, 1, one, 2, 1), WM_ERR_INVAL);
    }
    ASSERT_EQ_INT(mqtt_wire_subscribe(&out, MQTT_LEVEL_311, 1, filters, 0, 1), WM_ERR_INVAL);
    ASSERT_EQ_INT(mqtt_wire_subscribe(&out, MQTT_LEVEL_311, 0, filters, 2, 1), WM_ERR_INVAL);
    ASSERT_EQ_INT(mqtt_wire_subscribe(&out, MQTT_LEVEL_311, 1, filters, 2, 3), WM_ERR_INVAL);
    ASSERT_EQ_INT(mqtt_wire_subscribe(&out, MQTT_LEVEL_311, 1, NULL, 2, 1), WM_ERR_INVAL);
    ASSERT_EQ_INT(mqtt_wire_subscribe(&out, 2, 1, filters, 2, 1), WM_ERR_INVAL);
    ASSERT_EQ_INT(out.len, 0);
}

/* Remaining lengths at each size boundary of the variable byte integer (MQTT 5 1.5.5). */
static void test_remaining_length(void)
{
    static const struct {
        size_t rem;
        unsigned char enc[4];
        size_t n;
    } cases[] = {
        {0, {0x00}, 1},
        {127, {0x7F}, 1},
        {128, {0x80, 0x01}, 2},
        {16383, {0xFF, 0x7F}, 2},
        {16384, {0x80, 0x80, 0x01}, 3},
        {2097151, {0xFF, 0xFF, 0x7F}, 3},
        {2097152, {0x80, 0x80, 0x80, 0x01}, 4},
        {268435455, {0xFF, 0xFF, 0xFF, 0x7F}, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* The header alone: the parser asks for the whole packet, or calls it too big. */
        unsigned char head[5] = {0x30};
        memcpy(head + 1, cases[i].enc, cases[i].n);
        size_t total = 1 + cases[i].n + cases[i].rem, used = 0;
        struct mqtt_packet pk;
        char why[128];
        enum wm_err err = parse_exact(head, 1 + cases[i].n, MQTT_LEVEL_311, SIZE_MAX, &pk, &used,
                                      why, sizeof why);
        ASSERT_EQ_INT(err, cases[i].rem == 0 ? WM_ERR_PROTOCOL : WM_ERR_NOTFOUND);
        if (cases[i].rem) ASSERT_EQ_INT(used, total);
        err = parse_exact(head, 1 + cases[i].n, MQTT_LEVEL_311, total - 1, &pk, &used, why,
                          sizeof why);
        ASSERT_EQ_INT(err, WM_ERR_TOOBIG);
        ASSERT_EQ_INT(used, total);
        if (cases[i].rem < 3 || cases[i].rem > 2097152) continue;

        /* Encoded: a PUBLISH on "t" whose payload makes the remaining length rem. */
        unsigned char *payload = calloc(1, cases[i].rem);
        if (!payload) abort();
        struct mqtt_publish p = {.topic = "t", .payload = payload, .len = cases[i].rem - 3};
        ASSERT_EQ_INT(mqtt_wire_publish(&out, MQTT_LEVEL_311, &p), WM_OK);
        ASSERT_EQ_INT(out.len, total);
        ASSERT_EQ_MEM(out.data + 1, cases[i].enc, cases[i].n);
        err = parse_exact(out.data, out.len, MQTT_LEVEL_311, total, &pk, &used, why, sizeof why);
        ASSERT_EQ_INT(err, WM_OK);
        ASSERT_EQ_INT(used, total);
        ASSERT_EQ_INT(pk.payload_len, cases[i].rem - 3);
        ASSERT_TRUE(same_text(pk.topic, pk.topic_len, "t"));
        free(payload);
        out.len = 0;
    }

    /* A fifth byte is malformed; so are four bytes that all say more follows. */
    PARSE_BAD(MQTT_LEVEL_311, "longer than 4 bytes", 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01);
    PARSE_BAD(MQTT_LEVEL_5, "longer than 4 bytes", 0x30, 0x80, 0x80, 0x80, 0x80);
    struct mqtt_packet pk;
    size_t used = 7;
    static const unsigned char partial[] = {0x30, 0xFF, 0xFF, 0xFF};
    ASSERT_EQ_INT(parse_exact(partial, 4, MQTT_LEVEL_311, SIZE_MAX, &pk, &used, NULL, 0),
                  WM_ERR_NOTFOUND);
    ASSERT_EQ_INT(used, 0);
    /* A longer form than needed is still understood (3.1.1 does not forbid it). */
    ASSERT_TRUE(PARSE_OK(MQTT_LEVEL_311, &pk, 0xD0, 0x80, 0x00));
    ASSERT_EQ_INT(pk.type, MQTT_PINGRESP);
}

/* ---- parsing ---- */

static void test_parse_connack(void)
{
    struct mqtt_packet pk;
    if (PARSE_OK(MQTT_LEVEL_311, &pk, 0x20, 2, 0, 0)) {
        ASSERT_EQ_INT(pk.type, MQTT_CONNACK);
        ASSERT_TRUE(!pk.session_present);
        ASSERT_EQ_INT(pk.reason, 0);
        ASSERT_EQ_INT(pk.receive_maximum, 65535);
        ASSERT_EQ_INT(pk.maximum_qos, 1);
        ASSERT_EQ_INT(pk.maximum_packet_size, 0);
        ASSERT_TRUE(!pk.server_keepalive_set && pk.reason_string == NULL && pk.topic == NULL);
        ASSERT_TRUE(pk.codes == NULL && pk.payload == NULL && pk.packet_id == 0);
    }
    if (PARSE_OK(MQTT_LEVEL_311, &pk, 0x20, 2, 1, 0)) ASSERT_TRUE(pk.session_present);
    if (PARSE_OK(MQTT_LEVEL_311, &pk, 0x20, 2, 0, 5)) ASSERT_EQ_INT(pk.reason, 5);
    PARSE_BAD(MQTT_LEVEL_311, "reserved", 0x20, 2, 2, 0);
    PARSE_BAD(MQTT_LEVEL_311, "remaining length 3", 0x20, 3, 0, 0, 0);
    PARSE_BAD(MQTT_LEVEL_311, "remaining length 1", 0x20, 1, 0);
    PARSE_BAD(MQTT_LEVEL_311, "flags", 0x21, 2, 0, 0);

    /* MQTT 5: flags, reason, properties. */
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0x20, 3, 0, 0, 0)) {
        ASSERT_EQ_INT(pk.reason, 0);
        ASSERT_EQ_INT(pk.receive_maximum, 65535);
        ASSERT_EQ_INT(pk.maximum_qos, 1);
        ASSERT_TRUE(!pk.server_keepalive_set);
    }
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0x20, 36, 1, 0, 33, /* */
                 0x21, 0, 10,                           /* Receive Maximum */
                 0x27, 0, 1, 0, 0,                      /* Maximum Packet Size */
                 0x24, 0,                               /* Maximum QoS */
                 0x1F, 0, 2, 'o', 'k',                  /* Reason String */
                 0x13, 0, 30,                           /* Server Keep Alive */
                 0x26, 0, 1, 'k', 0, 1, 'v',            /* User Property */
                 0x22, 0, 5,                            /* Topic Alias Maximum */
                 0x12, 0, 2, 'i', 'd')) {               /* Assigned Client Identifier */
        ASSERT_TRUE(pk.session_present);
        ASSERT_EQ_INT(pk.receive_maximum, 10);
        ASSERT_EQ_INT(pk.maximum_packet_size, 65536);
        ASSERT_EQ_INT(pk.maximum_qos, 0);
        ASSERT_TRUE(same_text(pk.reason_string, pk.reason_string_len, "ok"));
        ASSERT_TRUE(pk.server_keepalive_set);
        ASSERT_EQ_INT(pk.server_keepalive_s, 30);
    }
    /* Every other property a CONNACK may carry is skipped. */
    PARSE_OK(MQTT_LEVEL_5, &pk, 0x20, 32, 0, 0x87, 29, 0x11, 0, 0, 0, 9, 0x15, 0, 1, 'm', 0x16, 0,
             2, 0xff, 0, 0x1A, 0, 0, 0x1C, 0, 1, 's', 0x25, 1, 0x28, 0, 0x29, 1, 0x2A, 0);
    ASSERT_EQ_INT(pk.reason, 0x87);
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0x20, 6, 0, 0, 3, 0x13, 0, 0)) {
        ASSERT_TRUE(pk.server_keepalive_set); /* 0: keep-alive off, not absent */
        ASSERT_EQ_INT(pk.server_keepalive_s, 0);
    }

    /* The refusal of a broker that knows only 3.1.1, read on an MQTT 5 connection. */
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0x20, 0x02, 0x00, 0x01)) {
        ASSERT_EQ_INT(pk.reason, 1);
        ASSERT_TRUE(mqtt_wire_refuses_version(pk.reason));
        ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_5, pk.reason),
                      "unacceptable protocol version");
    }
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0x20, 3, 0, 0x84, 0))
        ASSERT_TRUE(mqtt_wire_refuses_version(0x84));
    PARSE_BAD(MQTT_LEVEL_5, "3.1.1 layout", 0x20, 2, 0, 0);

    /* Property lists that are wrong. */
    PARSE_BAD(MQTT_LEVEL_5, "undefined property identifier 0x04", 0x20, 5, 0, 0, 2, 0x04, 0);
    PARSE_BAD(MQTT_LEVEL_5, "undefined property identifier 0x00", 0x20, 5, 0, 0, 2, 0x00, 0);
    PARSE_BAD(MQTT_LEVEL_5, "undefined property identifier 0x80", 0x20, 6, 0, 0, 3, 0x80, 1, 0);
    PARSE_BAD(MQTT_LEVEL_5, "undefined property identifier 0x2B", 0x20, 5, 0, 0, 2, 0x2B, 0);
    PARSE_BAD(MQTT_LEVEL_5, "Topic Alias) is not allowed", 0x20, 6, 0, 0, 3, 0x23, 0, 1);
    PARSE_BAD(MQTT_LEVEL_5, "Request Problem", 0x20, 5, 0, 0, 2, 0x17, 1);
    PARSE_BAD(MQTT_LEVEL_5, "given twice", 0x20, 9, 0, 0, 6, 0x21, 0, 1, 0x21, 0, 1);
    PARSE_BAD(MQTT_LEVEL_5, "Receive Maximum is 0", 0x20, 6, 0, 0, 3, 0x21, 0, 0);
    PARSE_BAD(MQTT_LEVEL_5, "Maximum Packet Size is 0", 0x20, 8, 0, 0, 5, 0x27, 0, 0, 0, 0);
    PARSE_BAD(MQTT_LEVEL_5, "Maximum QoS is 2", 0x20, 5, 0, 0, 2, 0x24, 2);
    PARSE_BAD(MQTT_LEVEL_5, "Retain Available is 2", 0x20, 5, 0, 0, 2, 0x25, 2);
    PARSE_BAD(MQTT_LEVEL_5, "properties of 4 bytes but only 2 left", 0x20, 5, 0, 0, 4, 0x24, 1);
    PARSE_BAD(MQTT_LEVEL_5, "Receive Maximum truncated", 0x20, 5, 0, 0, 2, 0x21, 0);
    PARSE_BAD(MQTT_LEVEL_5, "Maximum Packet Size truncated", 0x20, 6, 0, 0, 3, 0x27, 0, 0);
    PARSE_BAD(MQTT_LEVEL_5, "Maximum QoS missing", 0x20, 4, 0, 0, 1, 0x24);
    PARSE_BAD(MQTT_LEVEL_5, "property length truncated", 0x20, 3, 0, 0, 0x80);
    PARSE_BAD(MQTT_LEVEL_5, "property length: variable byte integer longer", 0x20, 7, 0, 0, 0x80,
              0x80, 0x80, 0x80, 0);
    PARSE_BAD(MQTT_LEVEL_5, "trailing bytes", 0x20, 4, 0, 0, 0, 0);
    PARSE_BAD(MQTT_LEVEL_5, "reason code missing", 0x20, 1, 0);
    /* A string longer than the property list, even though the packet has the bytes. */
    PARSE_BAD(MQTT_LEVEL_5, "Reason String of 3 bytes but only 0 left", 0x20, 9, 0, 0, 3, 0x1F, 0,
              3, 'a', 'b', 'c');
    PARSE_BAD(MQTT_LEVEL_5, "Reason String of 5 bytes but only 2 left", 0x20, 8, 0, 0, 5, 0x1F, 0,
              5, 'a', 'b');
    PARSE_BAD(MQTT_LEVEL_5, "Reason String is not valid UTF-8", 0x20, 7, 0, 0, 4, 0x1F, 0, 1, 0);
    PARSE_BAD(MQTT_LEVEL_5, "User Property of 2 bytes", 0x20, 10, 0, 0, 6, 0x26, 0, 1, 'k', 0, 2,
              'v');
    PARSE_BAD(MQTT_LEVEL_5, "User Property is not valid UTF-8", 0x20, 10, 0, 0, 7, 0x26, 0, 1, 'k',
              0, 1, 0xC0);

    PREFIXES(MQTT_LEVEL_311, 0x20, 2, 0, 0);
    PREFIXES(MQTT_LEVEL_5, 0x20, 2, 0, 1);
    PREFIXES(MQTT_LEVEL_5, 0x20, 13, 0, 0, 10, 0x21, 0, 10, 0x1F, 0, 2, 'o', 'k', 0x24, 0);
}

static void test_parse_publish(void)
{
    struct mqtt_packet pk;
    if (PARSE_OK(MQTT_LEVEL_311, &pk, 0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i')) {
        ASSERT_EQ_INT(pk.type, MQTT_PUBLISH);
        ASSERT_TRUE(same_text(pk.topic, pk.topic_len, "a/b"));
        ASSERT_EQ_INT(pk.payload_len, 2);
        ASSERT_EQ_MEM(pk.payload, "hi", 2);
        ASSERT_TRUE(pk.qos == 0 && !pk.dup && !pk.retain && pk.packet_id == 0);
        ASSERT_EQ_INT(pk.topic_alias, 0);
    }
    if (PARSE_OK(MQTT_LEVEL_311, &pk, 0x3B, 9, 0, 3, 'a', '/', 'b', 0, 10, 'h', 'i')) {
        ASSERT_TRUE(pk.qos == 1 && pk.dup && pk.retain && pk.packet_id == 10);
        ASSERT_EQ_INT(pk.flags, 0x0B);
        ASSERT_EQ_INT(pk.payload_len, 2);
    }
    if (PARSE_OK(MQTT_LEVEL_311, &pk, 0x34, 5, 0, 1, 't', 0xFF, 0xFF)) {
        ASSERT_TRUE(pk.qos == 2 && pk.packet_id == 0xFFFF && pk.payload_len == 0);
    }
    if (PARSE_OK(MQTT_LEVEL_311, &pk, 0x31, 3, 0, 1, 't'))
        ASSERT_TRUE(pk.retain && !pk.payload_len);
    PARSE_BAD(MQTT_LEVEL_311, "QoS 3", 0x36, 5, 0, 1, 't', 0, 1);
    PARSE_BAD(MQTT_LEVEL_5, "QoS 3", 0x3E, 5, 0, 1, 't', 0, 1);
    PARSE_BAD(MQTT_LEVEL_311, "DUP set at QoS 0", 0x38, 3, 0, 1, 't');
    PARSE_BAD(MQTT_LEVEL_311, "packet identifier 0", 0x32, 5, 0, 1, 't', 0, 0);
    PARSE_BAD(MQTT_LEVEL_311, "packet identifier truncated", 0x32, 4, 0, 1, 't', 0);
    PARSE_BAD(MQTT_LEVEL_311, "U+0000", 0x30, 5, 0, 3, 'a', 0, 'b');
    PARSE_BAD(MQTT_LEVEL_311, "UTF-8", 0x30, 5, 0, 3, 'a', 0xC3, 'b');
    PARSE_BAD(MQTT_LEVEL_311, "wildcard", 0x30, 5, 0, 3, 'a', '/', '+');
    PARSE_BAD(MQTT_LEVEL_311, "wildcard", 0x30, 3, 0, 1, '#');
    PARSE_BAD(MQTT_LEVEL_311, "empty topic", 0x30, 4, 0, 0, 'h', 'i');
    PARSE_BAD(MQTT_LEVEL_311, "topic of 65535 bytes but only 3 left", 0x30, 5, 0xFF, 0xFF, 'a', 'b',
              'c');
    PARSE_BAD(MQTT_LEVEL_311, "topic truncated", 0x30, 1, 0);
    PARSE_BAD(MQTT_LEVEL_311, "topic truncated", 0x30, 0);

    /* MQTT 5: a property length after the packet id. */
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0x30, 8, 0, 3, 'a', '/', 'b', 0, 'h', 'i')) {
        ASSERT_TRUE(same_text(pk.topic, pk.topic_len, "a/b"));
        ASSERT_EQ_MEM(pk.payload, "hi", 2);
        ASSERT_EQ_INT(pk.payload_len, 2);
    }
    /* Every property a PUBLISH may carry; Subscription Identifier may repeat. */
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0x32, 44, 0, 1, 't', 0, 7, 37, /* */
                 0x01, 1,                                          /* Payload Format Indicator */
                 0x02, 0, 0, 0, 60,                                /* Message Expiry Interval */
                 0x03, 0, 4, 't', 'e', 'x', 't',                   /* Content Type */
                 0x08, 0, 1, 'r',                                  /* Response Topic */
                 0x09, 0, 2, 0, 0xFF,                              /* Correlation Data */
                 0x0B, 1, 0x0B, 0xFF, 0x7F,                        /* Subscription Identifier */
                 0x23, 0, 9,                                       /* Topic Alias */
                 0x26, 0, 1, 'k', 0, 0,                            /* User Property */
                 'x')) {
        ASSERT_EQ_INT(pk.packet_id, 7);
        ASSERT_EQ_INT(pk.topic_alias, 9);
        ASSERT_EQ_INT(pk.payload_len, 1);
        ASSERT_EQ_INT(pk.payload[0], 'x');
    }
    /* An empty topic stands for the one the Topic Alias was given earlier. */
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0x30, 7, 0, 0, 3, 0x23, 0, 5, 'h')) {
        ASSERT_EQ_INT(pk.topic_len, 0);
        ASSERT_EQ_INT(pk.topic_alias, 5);
        ASSERT_EQ_INT(pk.payload_len, 1);
    }
    PARSE_BAD(MQTT_LEVEL_5, "empty topic", 0x30, 4, 0, 0, 0, 'h');
    PARSE_BAD(MQTT_LEVEL_5, "Topic Alias is 0", 0x30, 7, 0, 1, 't', 3, 0x23, 0, 0);
    PARSE_BAD(MQTT_LEVEL_5, "Subscription Identifier is 0", 0x30, 6, 0, 1, 't', 2, 0x0B, 0);
    PARSE_BAD(MQTT_LEVEL_5, "Payload Format Indicator is 2", 0x30, 6, 0, 1, 't', 2, 0x01, 2);
    PARSE_BAD(MQTT_LEVEL_5, "Topic Alias) given twice", 0x30, 10, 0, 1, 't', 6, 0x23, 0, 1, 0x23, 0,
              1);
    PARSE_BAD(MQTT_LEVEL_5, "Reason String) is not allowed", 0x30, 8, 0, 1, 't', 4, 0x1F, 0, 1,
              'r');
    PARSE_BAD(MQTT_LEVEL_5, "Receive Maximum) is not allowed", 0x30, 7, 0, 1, 't', 3, 0x21, 0, 1);
    PARSE_BAD(MQTT_LEVEL_5, "property length truncated", 0x30, 3, 0, 1, 't');
    PARSE_BAD(MQTT_LEVEL_5, "properties of 9 bytes but only 1 left", 0x30, 5, 0, 1, 't', 9, 0);
    PARSE_BAD(MQTT_LEVEL_5, "Content Type of 2 bytes but only 1 left", 0x30, 10, 0, 1, 't', 4, 0x03,
              0, 2, 'a', 'b', 'c');

    PREFIXES(MQTT_LEVEL_311, 0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i');
    PREFIXES(MQTT_LEVEL_311, 0x32, 5, 0, 1, 't', 0, 1);
    PREFIXES(MQTT_LEVEL_5, 0x33, 14, 0, 1, 't', 0, 1, 7, 0x03, 0, 4, 't', 'e', 'x', 't', '!');
}

static void test_parse_acks(void)
{
    struct mqtt_packet pk;
    static const unsigned char types[] = {0x40, 0x50, 0x62, 0x70};
    for (size_t i = 0; i < sizeof types; i++) {
        unsigned char first = types[i];
        enum mqtt_type type = (enum mqtt_type)(first >> 4);
        if (PARSE_OK(MQTT_LEVEL_311, &pk, first, 2, 0x12, 0x34)) {
            ASSERT_EQ_INT(pk.type, type);
            ASSERT_EQ_INT(pk.packet_id, 0x1234);
            ASSERT_EQ_INT(pk.reason, 0);
        }
        if (PARSE_OK(MQTT_LEVEL_5, &pk, first, 2, 0, 1)) ASSERT_EQ_INT(pk.reason, 0);
        if (PARSE_OK(MQTT_LEVEL_5, &pk, first, 3, 0, 1, 0x10)) ASSERT_EQ_INT(pk.reason, 0x10);
        if (PARSE_OK(MQTT_LEVEL_5, &pk, first, 4, 0, 1, 0x87, 0)) ASSERT_EQ_INT(pk.reason, 0x87);
        if (PARSE_OK(MQTT_LEVEL_5, &pk, first, 9, 0, 1, 0x87, 5, 0x1F, 0, 2, 'n', 'o')) {
            ASSERT_EQ_INT(pk.reason, 0x87);
            ASSERT_TRUE(same_text(pk.reason_string, pk.reason_string_len, "no"));
        }
        PARSE_BAD(MQTT_LEVEL_311, "remaining length 3, not 2", first, 3, 0, 1, 0);
        PARSE_BAD(MQTT_LEVEL_311, "remaining length 1, not 2", first, 1, 0);
        PARSE_BAD(MQTT_LEVEL_5, "packet identifier truncated", first, 1, 0);
        PARSE_BAD(MQTT_LEVEL_5, "packet identifier 0", first, 2, 0, 0);
        PARSE_BAD(MQTT_LEVEL_5, "trailing bytes after the properties (1)", first, 5, 0, 1, 0x80, 0,
                  0);
        PARSE_BAD(MQTT_LEVEL_5, "Topic Alias) is not allowed", first, 7, 0, 1, 0x80, 3, 0x23, 0, 1);
        PARSE_BAD(MQTT_LEVEL_5, "flags", first ^ 0x02, 2, 0, 1);
        PARSE_BAD(MQTT_LEVEL_311, "flags", first | 0x08, 2, 0, 1);
        PREFIXES(MQTT_LEVEL_311, first, 2, 0, 1);
        PREFIXES(MQTT_LEVEL_5, first, 9, 0, 1, 0x87, 5, 0x1F, 0, 2, 'n', 'o');
    }
    PARSE_BAD(MQTT_LEVEL_5, "PUBREL: fixed header flags 0x0, not 0x2", 0x60, 2, 0, 1);
    PARSE_BAD(MQTT_LEVEL_5, "PUBACK: fixed header flags 0x2, not 0x0", 0x42, 2, 0, 1);
}

static void test_parse_suback(void)
{
    struct mqtt_packet pk;
    if (PARSE_OK(MQTT_LEVEL_311, &pk, 0x90, 4, 0, 1, 1, 0x80)) {
        ASSERT_EQ_INT(pk.type, MQTT_SUBACK);
        ASSERT_EQ_INT(pk.packet_id, 1);
        ASSERT_EQ_INT(pk.ncodes, 2);
        ASSERT_TRUE(pk.codes[0] == 1 && pk.codes[1] == 0x80);
    }
    PARSE_BAD(MQTT_LEVEL_311, "no reason codes", 0x90, 2, 0, 1);
    PARSE_BAD(MQTT_LEVEL_311, "packet identifier 0", 0x90, 3, 0, 0, 1);
    PARSE_BAD(MQTT_LEVEL_311, "flags", 0x92, 3, 0, 1, 1);
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0x90, 4, 0, 1, 0, 0x97)) {
        ASSERT_EQ_INT(pk.ncodes, 1);
        ASSERT_EQ_INT(pk.codes[0], 0x97);
    }
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0x90, 8, 0, 1, 4, 0x1F, 0, 1, 'x', 2)) {
        ASSERT_TRUE(same_text(pk.reason_string, pk.reason_string_len, "x"));
        ASSERT_EQ_INT(pk.ncodes, 1);
        ASSERT_EQ_INT(pk.codes[0], 2);
    }
    PARSE_BAD(MQTT_LEVEL_5, "no reason codes", 0x90, 3, 0, 1, 0);
    PARSE_BAD(MQTT_LEVEL_5, "property length truncated", 0x90, 2, 0, 1);
    PARSE_BAD(MQTT_LEVEL_5, "Maximum QoS) is not allowed", 0x90, 6, 0, 1, 2, 0x24, 1, 0);

    if (PARSE_OK(MQTT_LEVEL_311, &pk, 0xB0, 2, 0, 9)) {
        ASSERT_EQ_INT(pk.type, MQTT_UNSUBACK);
        ASSERT_EQ_INT(pk.packet_id, 9);
        ASSERT_TRUE(pk.ncodes == 0 && pk.codes == NULL);
    }
    PARSE_BAD(MQTT_LEVEL_311, "remaining length 3, not 2", 0xB0, 3, 0, 1, 0);
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0xB0, 5, 0, 9, 0, 0, 0x11)) {
        ASSERT_EQ_INT(pk.ncodes, 2);
        ASSERT_TRUE(pk.codes[0] == 0 && pk.codes[1] == 0x11);
    }
    PARSE_BAD(MQTT_LEVEL_5, "no reason codes", 0xB0, 3, 0, 1, 0);

    PREFIXES(MQTT_LEVEL_311, 0x90, 4, 0, 1, 1, 0x80);
    PREFIXES(MQTT_LEVEL_5, 0x90, 8, 0, 1, 4, 0x1F, 0, 1, 'x', 2);
    PREFIXES(MQTT_LEVEL_311, 0xB0, 2, 0, 9);
    PREFIXES(MQTT_LEVEL_5, 0xB0, 4, 0, 9, 0, 0);
}

static void test_parse_others(void)
{
    struct mqtt_packet pk;
    for (int v = MQTT_LEVEL_311; v <= MQTT_LEVEL_5; v++) {
        if (PARSE_OK(v, &pk, 0xD0, 0)) ASSERT_EQ_INT(pk.type, MQTT_PINGRESP);
        PARSE_BAD(v, "PINGRESP: remaining length 1, not 0", 0xD0, 1, 0);
        PARSE_BAD(v, "PINGRESP: fixed header flags", 0xD1, 0);
        PREFIXES(v, 0xD0, 0);
        if (PARSE_OK(v, &pk, 0xE0, 0)) {
            ASSERT_EQ_INT(pk.type, MQTT_DISCONNECT);
            ASSERT_EQ_INT(pk.reason, 0);
        }
        PARSE_BAD(v, "flags", 0xE2, 0);
        /* Packets only a client sends, and the reserved type 0. */
        PARSE_BAD(v, "CONNECT: not a packet a server sends", 0x10, 0);
        PARSE_BAD(v, "SUBSCRIBE: not a packet", 0x82, 0);
        PARSE_BAD(v, "UNSUBSCRIBE: not a packet", 0xA2, 0);
        PARSE_BAD(v, "PINGREQ: not a packet", 0xC0, 0);
        PARSE_BAD(v, "reserved type 0", 0x00, 0);
        PARSE_BAD(v, "reserved type 0", 0x00);
    }
    PARSE_BAD(MQTT_LEVEL_311, "remaining length 1, not 0", 0xE0, 1, 0);
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0xE0, 1, 0x8E)) ASSERT_EQ_INT(pk.reason, 0x8E);
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0xE0, 2, 0x8B, 0)) ASSERT_EQ_INT(pk.reason, 0x8B);
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0xE0, 15, 0x9C, 13, 0x1F, 0, 1, 'z', 0x1C, 0, 1, 's', 0x11, 0,
                 0, 0, 1)) {
        ASSERT_EQ_INT(pk.reason, 0x9C);
        ASSERT_TRUE(same_text(pk.reason_string, pk.reason_string_len, "z"));
    }
    PARSE_BAD(MQTT_LEVEL_5, "Topic Alias) is not allowed", 0xE0, 5, 0x80, 3, 0x23, 0, 1);
    PARSE_BAD(MQTT_LEVEL_5, "trailing bytes", 0xE0, 3, 0x80, 0, 0);
    PREFIXES(MQTT_LEVEL_5, 0xE0, 6, 0x8B, 4, 0x1F, 0, 1, 'z');

    /* AUTH exists only in MQTT 5. */
    PARSE_BAD(MQTT_LEVEL_311, "reserved in MQTT 3.1.1", 0xF0, 0);
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0xF0, 0)) ASSERT_EQ_INT(pk.type, MQTT_AUTH);
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0xF0, 2, 0x18, 0)) ASSERT_EQ_INT(pk.reason, 0x18);
    if (PARSE_OK(MQTT_LEVEL_5, &pk, 0xF0, 14, 0x18, 12, 0x15, 0, 5, 'S', 'C', 'R', 'A', 'M', 0x16,
                 0, 1, 0))
        ASSERT_EQ_INT(pk.reason, 0x18);
    PARSE_BAD(MQTT_LEVEL_5, "Receive Maximum) is not allowed", 0xF0, 5, 0x18, 3, 0x21, 0, 1);
    PARSE_BAD(MQTT_LEVEL_5, "flags", 0xF1, 0);
    PREFIXES(MQTT_LEVEL_5, 0xF0, 10, 0x18, 8, 0x15, 0, 5, 'S', 'C', 'R', 'A', 'M');
}

/* Arguments, limits, why and what is left alone. */
static void test_parse_contract(void)
{
    static const unsigned char pub[] = {0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i'};
    struct mqtt_packet pk;
    size_t used = 99;
    char why[128] = "x";
    ASSERT_EQ_INT(
        mqtt_wire_parse(pub, sizeof pub, MQTT_LEVEL_311, sizeof pub, &pk, &used, why, 128), WM_OK);
    ASSERT_EQ_INT(used, sizeof pub);
    ASSERT_EQ_STR(why, "");
    ASSERT_EQ_INT(
        mqtt_wire_parse(pub, sizeof pub, MQTT_LEVEL_311, sizeof pub - 1, &pk, &used, why, 128),
        WM_ERR_TOOBIG);
    ASSERT_EQ_INT(used, sizeof pub);
    ASSERT_TRUE(strstr(why, "over the limit") != NULL);
    /* Too big is told as soon as the header is there. */
    ASSERT_EQ_INT(mqtt_wire_parse(pub, 2, MQTT_LEVEL_311, 8, &pk, &used, why, 128), WM_ERR_TOOBIG);
    ASSERT_EQ_INT(mqtt_wire_parse(pub, 1, MQTT_LEVEL_311, 8, &pk, &used, why, 128),
                  WM_ERR_NOTFOUND);
    ASSERT_EQ_INT(used, 0);
    ASSERT_EQ_INT(mqtt_wire_parse(pub, 0, MQTT_LEVEL_311, 8, &pk, &used, why, 128),
                  WM_ERR_NOTFOUND);
    ASSERT_EQ_INT(mqtt_wire_parse(NULL, 0, MQTT_LEVEL_311, 8, &pk, &used, why, 128),
                  WM_ERR_NOTFOUND);
    /* Bad arguments. */
    ASSERT_EQ_INT(mqtt_wire_parse(pub, sizeof pub, 3, 100, &pk, &used, why, 128), WM_ERR_INVAL);
    ASSERT_EQ_INT(mqtt_wire_parse(pub, sizeof pub, 5, 100, NULL, &used, why, 128), WM_ERR_INVAL);
    ASSERT_EQ_INT(mqtt_wire_parse(pub, sizeof pub, 5, 100, &pk, NULL, why, 128), WM_ERR_INVAL);
    ASSERT_EQ_INT(mqtt_wire_parse(NULL, 5, 5, 100, &pk, &used, why, 128), WM_ERR_INVAL);
    /* why may be absent or tiny; it is truncated, never overrun. */
    static const unsigned char bad[] = {0x36, 0};
    ASSERT_EQ_INT(mqtt_wire_parse(bad, 2, MQTT_LEVEL_5, 100, &pk, &used, NULL, 0), WM_ERR_PROTOCOL);
    char tiny[4] = "abc";
    ASSERT_EQ_INT(mqtt_wire_parse(bad, 2, MQTT_LEVEL_5, 100, &pk, &used, tiny, 1), WM_ERR_PROTOCOL);
    ASSERT_EQ_STR(tiny, "");
    char small[8];
    static const unsigned char bad2[] = {0x40, 2, 0, 0};
    ASSERT_EQ_INT(mqtt_wire_parse(bad2, 4, MQTT_LEVEL_5, 100, &pk, &used, small, sizeof small),
                  WM_ERR_PROTOCOL);
    ASSERT_EQ_STR(small, "PUBACK:");
    ASSERT_EQ_INT(mqtt_wire_parse(bad2, 4, MQTT_LEVEL_5, 100, &pk, &used, small, 3),
                  WM_ERR_PROTOCOL);
    ASSERT_EQ_STR(small, "PU");
}

/* What we encode parses back; a stream of packets is consumed one by one. */
static void test_round_trip(void)
{
    for (int v = MQTT_LEVEL_311; v <= MQTT_LEVEL_5; v++) {
        struct mqtt_publish p = {.topic = "wis2/a/b",
                                 .payload = "\0\1\2",
                                 .len = 3,
                                 .qos = 1,
                                 .retain = true,
                                 .dup = true,
                                 .packet_id = 65535,
                                 .content_type = "application/json"};
        ASSERT_EQ_INT(mqtt_wire_publish(&out, v, &p), WM_OK);
        p = (struct mqtt_publish){.topic = "x", .payload = "y", .len = 1};
        ASSERT_EQ_INT(mqtt_wire_publish(&out, v, &p), WM_OK);
        ASSERT_EQ_INT(mqtt_wire_puback(&out, 77), WM_OK);
        ASSERT_EQ_INT(mqtt_wire_disconnect(&out, v), WM_OK);

        struct mqtt_packet pk;
        size_t used = 0;
        char why[128];
        enum wm_err err = mqtt_wire_parse(out.data, out.len, v, 1000, &pk, &used, why, sizeof why);
        ASSERT_EQ_INT(err, WM_OK);
        ASSERT_TRUE(pk.type == MQTT_PUBLISH && pk.qos == 1 && pk.retain && pk.dup);
        ASSERT_EQ_INT(pk.packet_id, 65535);
        ASSERT_TRUE(same_text(pk.topic, pk.topic_len, "wis2/a/b"));
        ASSERT_TRUE(pk.payload_len == 3 && memcmp(pk.payload, "\0\1\2", 3) == 0);
        buf_consume(&out, used);

        err = mqtt_wire_parse(out.data, out.len, v, 1000, &pk, &used, why, sizeof why);
        ASSERT_EQ_INT(err, WM_OK);
        ASSERT_TRUE(pk.type == MQTT_PUBLISH && pk.qos == 0 && !pk.retain && !pk.dup);
        ASSERT_TRUE(same_text(pk.topic, pk.topic_len, "x"));
        ASSERT_TRUE(pk.payload_len == 1 && pk.payload[0] == 'y');
        buf_consume(&out, used);

        err = mqtt_wire_parse(out.data, out.len, v, 1000, &pk, &used, why, sizeof why);
        ASSERT_EQ_INT(err, WM_OK);
        ASSERT_TRUE(pk.type == MQTT_PUBACK && pk.packet_id == 77 && used == 4);
        buf_consume(&out, used);

        err = mqtt_wire_parse(out.data, out.len, v, 1000, &pk, &used, why, sizeof why);
        ASSERT_EQ_INT(err, WM_OK);
        ASSERT_TRUE(pk.type == MQTT_DISCONNECT && used == 2);
        buf_consume(&out, used);
        ASSERT_EQ_INT(out.len, 0);
        ASSERT_EQ_INT(mqtt_wire_parse(out.data, out.len, v, 1000, &pk, &used, why, sizeof why),
                      WM_ERR_NOTFOUND);

        /* A PINGREQ is ours to send, never to receive. */
        ASSERT_EQ_INT(mqtt_wire_pingreq(&out), WM_OK);
        ASSERT_EQ_INT(mqtt_wire_parse(out.data, out.len, v, 1000, &pk, &used, why, sizeof why),
                      WM_ERR_PROTOCOL);
        out.len = 0;
    }
}

static void test_texts(void)
{
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_311, 0), "connection accepted");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_311, 1), "unacceptable protocol version");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_311, 2), "identifier rejected");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_311, 3), "server unavailable");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_311, 4), "bad user name or password");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_311, 5), "not authorized");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_311, 6), "unknown return code");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_311, 0x84), "unknown return code");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_5, 0), "success");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_5, 0x84), "unsupported protocol version");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_5, 0x86), "bad user name or password");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_5, 0x87), "not authorized");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_5, 0x9F), "connection rate exceeded");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_5, 0x8B), "server shutting down");
    ASSERT_EQ_STR(mqtt_wire_connack_text(MQTT_LEVEL_5, 0xFF), "unknown reason code");
    ASSERT_EQ_STR(mqtt_wire_reason_text(0x95), "packet too large");
    ASSERT_EQ_STR(mqtt_wire_reason_text(0x10), "no matching subscribers");
    /* Every reason code MQTT 5 defines for a failure has a text of its own. */
    static const unsigned char defined[] = {0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
                                            0x89, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x90, 0x91,
                                            0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A,
                                            0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
    int known = 0;
    for (unsigned c = 0x80; c <= 0xFF; c++)
        known += strcmp(mqtt_wire_reason_text((uint8_t)c), "unknown reason code") != 0;
    ASSERT_EQ_INT(known, sizeof defined);
    for (size_t i = 0; i < sizeof defined; i++)
        ASSERT_TRUE(strcmp(mqtt_wire_reason_text(defined[i]), "unknown reason code"));
    ASSERT_TRUE(mqtt_wire_refuses_version(1));
    ASSERT_TRUE(mqtt_wire_refuses_version(0x84));
    ASSERT_TRUE(!mqtt_wire_refuses_version(0));
    ASSERT_TRUE(!mqtt_wire_refuses_version(5));
    ASSERT_TRUE(!mqtt_wire_refuses_version(0x85));
}

static void test_topic_matches(void)
{
    ASSERT_TRUE(mqtt_topic_matches("#", "a/b"));
    ASSERT_TRUE(mqtt_topic_matches("a/#", "a"));
    ASSERT_TRUE(mqtt_topic_matches("a/#", "a/b/c"));
    ASSERT_TRUE(mqtt_topic_matches("a/+/c", "a/b/c"));
    ASSERT_TRUE(mqtt_topic_matches("a/+/c", "a//c"));
    ASSERT_TRUE(mqtt_topic_matches("+/+", "/x"));
    ASSERT_TRUE(mqtt_topic_matches("a/+", "a/"));
    ASSERT_TRUE(mqtt_topic_matches("a/b", "a/b"));
    ASSERT_TRUE(!mqtt_topic_matches("a/b", "a/bc"));
    ASSERT_TRUE(!mqtt_topic_matches("a/+", "a"));
    ASSERT_TRUE(!mqtt_topic_matches("a/+", "a/b/c"));
    ASSERT_TRUE(!mqtt_topic_matches("a/b/#", "a"));
    ASSERT_TRUE(!mqtt_topic_matches("a", "a/b"));
    ASSERT_TRUE(!mqtt_topic_matches("#", "$SYS/x"));
    ASSERT_TRUE(!mqtt_topic_matches("+/x", "$SYS/x"));
    ASSERT_TRUE(mqtt_topic_matches("$SYS/#", "$SYS/x"));
    /* Invalid filters match nothing. */
    ASSERT_TRUE(!mqtt_topic_matches("a/#/b", "a/x/b"));
    ASSERT_TRUE(!mqtt_topic_matches("a+", "a+"));
    ASSERT_TRUE(!mqtt_topic_matches("", ""));
    ASSERT_TRUE(mqtt_topic_filter_valid("a/+/#", 5));
    ASSERT_TRUE(!mqtt_topic_filter_valid("a/b#", 4));
}

int main(void)
{
    test_topic_matches();
    test_buf();
    test_connect();
    test_publish();
    test_small_packets();
    test_subscribe();
    test_remaining_length();
    test_parse_connack();
    test_parse_publish();
    test_parse_acks();
    test_parse_suback();
    test_parse_others();
    test_parse_contract();
    test_round_trip();
    test_texts();
    buf_free(&out);
    free(held);
    return TEST_REPORT();
}
