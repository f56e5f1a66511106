/* test_url.c: broker URL parsing, redaction and download URL joining. */
#include <stdlib.h>

#include "test.h"
#include "url.h"

static void test_parse(void)
{
    struct wm_url u;
    ASSERT_EQ_INT(url_parse("mqtt://owner:s%40cret@127.0.0.1:18830", &u), WM_OK);
    ASSERT_EQ_STR(u.scheme, "mqtt");
    ASSERT_EQ_STR(u.user, "owner");
    ASSERT_EQ_STR(u.password, "s@cret");
    ASSERT_EQ_STR(u.host, "127.0.0.1");
    ASSERT_EQ_INT(u.port, 18830);
    url_clear(&u);

    ASSERT_EQ_INT(url_parse("MQTTS://broker.example.org", &u), WM_OK);
    ASSERT_EQ_STR(u.scheme, "mqtts");
    ASSERT_EQ_INT(u.port, 8883);
    ASSERT_TRUE(u.user == NULL);
    url_clear(&u);

    ASSERT_EQ_INT(url_parse("http://[::1]:8080/data", &u), WM_OK);
    ASSERT_EQ_STR(u.host, "::1");
    ASSERT_EQ_INT(u.port, 8080);
    ASSERT_EQ_STR(u.path, "/data");
    url_clear(&u);

    /* RabbitMQ picks the vhost from a user name "VHOST:USER": the ':' is %-encoded, the first
     * raw ':' ends the user name, and a password may hold ':' as it is. */
    ASSERT_EQ_INT(url_parse("mqtt://bC%3Aguest:gu:estpw@127.0.0.1:1883", &u), WM_OK);
    ASSERT_EQ_STR(u.user, "bC:guest");
    ASSERT_EQ_STR(u.password, "gu:estpw");
    url_clear(&u);

    /* A password with an unencoded '@': the last '@' ends the user info. */
    ASSERT_EQ_INT(url_parse("mqtt://u:p@ss@h:1", &u), WM_OK);
    ASSERT_EQ_STR(u.password, "p@ss");
    ASSERT_EQ_STR(u.host, "h");
    url_clear(&u);

    const char *bad[] = {"",
                         "localhost:1883",
                         "mqtt://",
                         "mqtt://h:0",
                         "mqtt://h:65536",
                         "mqtt://h:12x",
                         "mqtt://[::1",
                         "unknown://h",
                         "mqtt://u:p@:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = url_parse(bad[i], &u);
        if (rc == WM_OK) {
            TEST_FAIL_AT("accepted bad URL \"%s\"", bad[i]);
            url_clear(&u);
        } else {
            test_passed++;
        }
    }
}

static void test_redact(void)
{
    char out[128];
    url_redact("mqtt://owner:secret@127.0.0.1:1883", out, sizeof out);
    ASSERT_EQ_STR(out, "mqtt://owner@127.0.0.1:1883");
    ASSERT_TRUE(strstr(out, "secret") == NULL);
    url_redact("mqtt://[::1]:1883", out, sizeof out);
    ASSERT_EQ_STR(out, "mqtt://[::1]:1883");
}

static void test_join(void)
{
    struct {
        const char *base, *rel, *want;
    } cases[] = {
        {"http://h/data", "a/b.txt", "http://h/data/a/b.txt"},
        {"http://h/data/", "/a/b.txt", "http://h/data/a/b.txt"},
        {"http://h/data//", "//a", "http://h/data/a"},
        {"http://h", "a b#c?d", "http://h/a%20b%23c%3Fd"},
        {"http://h", "caf\xc3\xa9", "http://h/caf%C3%A9"},
        {"http://h", "a%2541", "http://h/a%2541"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = url_join(cases[i].base, cases[i].rel);
        ASSERT_EQ_STR(got, cases[i].want);
        free(got);
    }
    ASSERT_TRUE(url_is_http("HTTP://x"));
    ASSERT_TRUE(url_is_http("https://x"));
    ASSERT_TRUE(!url_is_http("file:///etc/passwd"));
    ASSERT_TRUE(!url_is_http("FILE:///etc/passwd"));
    ASSERT_TRUE(!url_is_http("ftp://x"));
}

/* Redirect targets, as servers write them in Location. */
static void test_resolve(void)
{
    struct {
        const char *base, *loc, *want;
    } cases[] = {
        {"http://h:1/rel/a/b", "c?x=1", "http://h:1/rel/a/c?x=1"},
        {"http://h/q", "?v=2", "http://h/q?v=2"},
        {"http://h/q?v=1#f", "?v=2", "http://h/q?v=2"},
        {"http://h/a/b", "//x:2/ok#frag", "http://x:2/ok"},
        {"https://h/a/b", "/abs", "https://h/abs"},
        {"http://h", "x", "http://h/x"},
        {"http://h/a/b/", "c", "http://h/a/b/c"},
        {"http://h/a", "ftp://y/z", "ftp://y/z"},
        {"http://h/a", "HTTPS://y/z", "HTTPS://y/z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = url_resolve(cases[i].base, cases[i].loc);
        ASSERT_EQ_STR(got, cases[i].want);
        free(got);
    }
    ASSERT_TRUE(url_resolve("no scheme", "x") == NULL);
}

static void test_decode(void)
{
    char out[32];
    size_t n = 99;
    ASSERT_TRUE(url_decode("a%2Fb+c%2b%23", 13, true, out, &n));
    ASSERT_EQ_STR(out, "a/b c+#");
    ASSERT_EQ_INT(n, 7);
    ASSERT_TRUE(url_decode("a+b", 3, false, out, &n));
    ASSERT_EQ_STR(out, "a+b");
    ASSERT_TRUE(url_decode("", 0, true, out, &n));
    ASSERT_EQ_INT(n, 0);
    ASSERT_TRUE(!url_decode("%2", 2, true, out, &n));
    ASSERT_TRUE(!url_decode("%zz", 3, true, out, &n));
    ASSERT_TRUE(!url_decode("a%00", 4, true, out, &n));
    ASSERT_TRUE(!url_decode("a\0b", 3, true, out, &n));
}

int main(void)
{
    test_decode();
    test_parse();
    test_redact();
    test_join();
    test_resolve();
    return TEST_REPORT();
}
