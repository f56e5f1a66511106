/* test_httpd_request.c: the request-head parser alone: where heads end, what they say, and
 * which malformed ones get which status. */
#include <stdbool.h>
#include <stdlib.h>

#include "httpd_request.h"
#include "test.h"

/* Parses text (NUL-terminated) as one complete head. */
static bool parse(const char *text, struct httpd_request *req)
{
    size_t from = 0, len = strlen(text);
    size_t end = httpd_request_end(text, len, &from);
    if (end != len) {
        fprintf(stderr, "head end %zu, not %zu, in: %s\n", end, len, text);
        return false;
    }
    return httpd_request_parse(text, len, req);
}

static void test_end(void)
{
    const char *text = "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next";
    size_t len = strlen(text), from = 0;
    /* Fed a byte at a time, the end is found exactly once, at the right place. */
    size_t found = 0;
    for (size_t i = 1; i <= len && !found; i++)
        found = httpd_request_end(text, i, &from);
    ASSERT_EQ_INT(found, 27);
    from = 0;
    ASSERT_EQ_INT(httpd_request_end("GET / HTTP/1.0\n\nrest", 20, &from), 16);
    from = 0;
    ASSERT_EQ_INT(httpd_request_end("GET / HTTP/1.0\r\nA: b\r\n\r", 23, &from), 0);
    ASSERT_EQ_INT(httpd_request_end("GET / HTTP/1.0\r\nA: b\r\n\r\n", 24, &from), 24);
    from = 0;
    ASSERT_EQ_INT(httpd_request_end("GET / HTTP/1.0\r\nA: b\r\r\n", 23, &from), 0);
    ASSERT_EQ_INT(httpd_request_overflow_status("GET /aaaa", 9), 414);
    ASSERT_EQ_INT(httpd_request_overflow_status("GET / HTTP/1.1\r\nX: aaa", 22), 431);
}

static void test_good(void)
{
    struct httpd_request req;
    ASSERT_TRUE(parse("GET /data/a%20b.txt?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", &req));
    ASSERT_EQ_INT(req.method, HTTPD_METHOD_GET);
    ASSERT_EQ_INT(req.path_len, 15);
    ASSERT_TRUE(memcmp(req.path, "/data/a%20b.txt", 15) == 0);
    ASSERT_EQ_INT(req.query_len, 3);
    ASSERT_TRUE(req.query && memcmp(req.query, "x=1", 3) == 0);
    ASSERT_EQ_INT(req.minor, 1);
    ASSERT_TRUE(req.keep_alive);
    ASSERT_EQ_INT(req.content_length, 0);

    ASSERT_TRUE(parse("HEAD / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req));
    ASSERT_EQ_INT(req.method, HTTPD_METHOD_HEAD);
    ASSERT_EQ_INT(req.minor, 0);
    ASSERT_TRUE(req.keep_alive);
    ASSERT_TRUE(parse("GET / HTTP/1.0\r\n\r\n", &req));
    ASSERT_TRUE(!req.keep_alive);
    ASSERT_TRUE(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, close\r\n\r\n", &req));
    ASSERT_TRUE(!req.keep_alive);
    ASSERT_TRUE(parse("GET / HTTP/1.1\nhost:h\ncontent-length:  12 \n\n", &req));
    ASSERT_EQ_INT(req.content_length, 12);
    ASSERT_TRUE(
        parse("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", &req));
    ASSERT_EQ_INT(req.content_length, 3);
    ASSERT_TRUE(parse("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", &req));
    ASSERT_TRUE(req.keep_alive);
    ASSERT_TRUE(parse(
        "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n", &req));
    ASSERT_TRUE(!req.keep_alive);

    ASSERT_TRUE(parse("GET HTTPS://host:8/a/b?c HTTP/1.1\r\nHost: h\r\n\r\n", &req));
    ASSERT_EQ_INT(req.path_len, 4);
    ASSERT_TRUE(memcmp(req.path, "/a/b", 4) == 0);
    ASSERT_EQ_INT(req.query_len, 1);
    ASSERT_TRUE(req.query && req.query[0] == 'c');
    ASSERT_TRUE(parse("GET http://host?c=%2B&d HTTP/1.1\r\nHost: h\r\n\r\n", &req));
    ASSERT_EQ_INT(req.path_len, 1);
    ASSERT_EQ_INT(req.query_len, 7);
    ASSERT_TRUE(req.query && memcmp(req.query, "c=%2B&d", 7) == 0);
    ASSERT_TRUE(parse("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", &req));
    ASSERT_TRUE(req.query != NULL);
    ASSERT_EQ_INT(req.query_len, 0);
    ASSERT_TRUE(parse("GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n", &req));
    ASSERT_EQ_INT(req.path_len, 2);
    ASSERT_EQ_INT(req.query_len, 3);
    ASSERT_TRUE(parse("GET /a HTTP/1.1\r\nHost: h\r\n\r\n", &req));
    ASSERT_TRUE(req.query == NULL);
    ASSERT_EQ_INT(req.query_len, 0);
    ASSERT_TRUE(parse("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\nX: \xff\tv\r\n\r\n", &req));

    ASSERT_TRUE(parse("DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n", &req));
    ASSERT_EQ_INT(req.method, HTTPD_METHOD_OTHER);
    ASSERT_TRUE(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &req));
    ASSERT_EQ_INT(req.method, HTTPD_METHOD_OTHER);
    ASSERT_TRUE(parse("get / HTTP/1.1\r\nHost: h\r\n\r\n", &req)); /* methods are case-sensitive */
    ASSERT_EQ_INT(req.method, HTTPD_METHOD_OTHER);
}

static void test_bad(void)
{
    static const struct {
        const char *text;
        int status;
    } cases[] = {
        {"GET / HTTP/2.0\r\n\r\n", 505},
        {"GET / HTTP/0.9\r\n\r\n", 505},
        {"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
        {"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x\r\nContent-Length: 1\r\n\r\n", 501},
        {"GET / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"GET /\r\n\r\n", 400},
        {"GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400},
        {"GET / http/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/1.\r\nHost: h\r\n\r\n", 400},
        {" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n\tc\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400},
        {"GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct httpd_request req;
        bool ok = parse(cases[i].text, &req);
        if (ok || req.status != cases[i].status) fprintf(stderr, "case %zu\n", i);
        ASSERT_TRUE(!ok);
        ASSERT_EQ_INT(req.status, cases[i].status);
    }
    /* A NUL inside a header value. */
    const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
    struct httpd_request req;
    size_t from = 0;
    size_t end = httpd_request_end(nul, sizeof nul - 1, &from);
    ASSERT_EQ_INT(end, sizeof nul - 1);
    ASSERT_TRUE(!httpd_request_parse(nul, end, &req));
    ASSERT_EQ_INT(req.status, 400);
}

int main(void)
{
    test_end();
    test_good();
    test_bad();
    return TEST_REPORT();
}
