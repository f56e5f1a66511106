/* test_http_wire.c: the HTTP/1.1 response parser fed every response whole, byte by byte and cut
 * in two at every place (each piece in a buffer of its own, the unconsumed rest first, as
 * fetch.c does): the same outcome every way; framing, 1xx, keep-alive, the caps, and malformed
 * input refused; then the request writer. */
#include <stdbool.h>
#include <stdlib.h>

#include "http_wire.h"
#include "test.h"
#include "version.h"
#include "url.h"

#define BODY_MAX (64 * 1024)

/* What parsing one response gave. */
struct outcome {
    int heads;
    int status;
    enum http_wire_framing framing;
    bool keep_alive;
    int64_t length;
    char body[BODY_MAX];
    size_t body_len;
    char location[256];
    enum http_wire_event last; /* END, ERROR, or MORE when the input ran out first */
    const char *why;
    size_t leftover; /* bytes after the end of the response, those not fed yet included */
    bool outside;    /* a body pointer outside the buffer given */
};

/* Parses one buffer (the rest of the previous one first); returns false once it ended. unfed:
 * the bytes of the input that come after this buffer. */
static bool parse_piece(struct http_response *r, const char *buf, size_t len, size_t unfed,
                        struct outcome *o, char *rest, size_t *rest_len)
{
    for (;;) {
        size_t used = 0, dlen = 0;
        const char *data = NULL;
        enum http_wire_event ev = http_wire_parse(r, buf, len, &used, &data, &dlen);
        if (used > len) o->outside = true;
        if (data && (data < buf || data + dlen > buf + len)) o->outside = true;
        buf += used;
        len -= used;
        switch (ev) {
        case HTTP_WIRE_MORE:
            if (len > HTTP_WIRE_MAX_LINE) o->outside = true;
            memcpy(rest, buf, len);
            *rest_len = len;
            o->last = ev;
            return true;
        case HTTP_WIRE_LOCATION:
            snprintf(o->location, sizeof o->location, "%.*s", (int)dlen, data);
            break;
        case HTTP_WIRE_HEAD:
            o->heads++;
            o->status = r->status;
            o->framing = r->framing;
            o->keep_alive = r->keep_alive;
            o->length = r->length;
            break;
        case HTTP_WIRE_BODY:
            if (o->body_len + dlen <= BODY_MAX) memcpy(o->body + o->body_len, data, dlen);
            o->body_len += dlen;
            break;
        case HTTP_WIRE_END:
        case HTTP_WIRE_ERROR:
            o->last = ev;
            o->why = ev == HTTP_WIRE_ERROR ? r->why : NULL;
            o->leftover = ev == HTTP_WIRE_END ? len + unfed : 0;
            return false;
        }
    }
}

/* Feeds text: a first piece of first bytes, then pieces of piece bytes; then EOF when eof. */
static void feed(const char *text, size_t len, size_t first, size_t piece, bool eof,
                 struct outcome *o)
{
    static char rest[HTTP_WIRE_MAX_LINE + 1];
    struct http_response r;
    size_t rest_len = 0, off = 0;
    memset(o, 0, sizeof *o);
    http_wire_begin(&r);
    bool going = true;
    while (going && off < len) {
        size_t n = off == 0 ? first : piece;
        if (n > len - off) n = len - off;
        char *work = malloc(rest_len + n + 1); /* of its own, so ASan sees stale pointers */
        memcpy(work, rest, rest_len);
        memcpy(work + rest_len, text + off, n);
        off += n;
        going = parse_piece(&r, work, rest_len + n, len - off, o, rest, &rest_len);
        free(work);
    }
    if (going && eof) {
        o->last = http_wire_eof(&r);
        o->why = o->last == HTTP_WIRE_ERROR ? r.why : NULL;
    }
}

static bool same(const struct outcome *a, const struct outcome *b)
{
    return a->heads == b->heads && a->status == b->status && a->framing == b->framing &&
           a->keep_alive == b->keep_alive && a->length == b->length && a->body_len == b->body_len &&
           memcmp(a->body, b->body, a->body_len) == 0 && strcmp(a->location, b->location) == 0 &&
           a->last == b->last &&
           (a->why == b->why || (a->why && b->why && strcmp(a->why, b->why) == 0)) &&
           a->leftover == b->leftover && !a->outside && !b->outside;
}

static void show(const char *label, const struct outcome *o)
{
    fprintf(stderr,
            "  %s: heads=%d status=%d framing=%d keep=%d length=%jd body=%zu loc=\"%s\" "
            "last=%d why=\"%s\" leftover=%zu outside=%d\n",
            label, o->heads, o->status, o->framing, o->keep_alive, (intmax_t)o->length, o->body_len,
            o->location, o->last, o->why ? o->why : "", o->leftover, o->outside);
}

static struct outcome whole, other;

/* Parses text whole, then byte by byte and cut in two everywhere (sampled when long): every
 * way must give what the whole gave, which is left in `whole` for the caller to check. */
#define PARSE(text, eof) parse_every_way(__LINE__, text, sizeof(text) - 1, eof)

static void parse_every_way(int line, const char *text, size_t len, bool eof)
{
    feed(text, len, len ? len : 1, len ? len : 1, eof, &whole);
    size_t stride = len > 4096 ? len / 61 + 1 : 1;
    for (size_t cut = 0; cut <= len; cut += cut == 0 ? 1 : stride) {
        if (cut == 0)
            feed(text, len, 1, 1, eof, &other); /* byte by byte */
        else
            feed(text, len, cut, len, eof, &other);
        if (same(&whole, &other)) continue;
        fprintf(stderr, "%s:%d: split %s %zu differs from whole:\n", __FILE__, line,
                cut ? "at" : "byte by byte", cut);
        show("whole", &whole);
        show("split", &other);
        test_failed++;
        return;
    }
    test_passed++;
}

static void framing(void)
{
    PARSE("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.heads, 1);
    ASSERT_EQ_INT(whole.status, 200);
    ASSERT_EQ_INT(whole.framing, HTTP_WIRE_LENGTH);
    ASSERT_EQ_INT(whole.length, 5);
    ASSERT_TRUE(whole.keep_alive);
    ASSERT_EQ_INT(whole.body_len, 5);
    ASSERT_EQ_MEM(whole.body, "hello", 5);

    /* Bare LF line ends, no reason phrase, names in any case. */
    PARSE("HTTP/1.1 200\ncontent-LENGTH: 3\n\nabc", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.body_len, 3);

    /* Content-Length 0: the end comes without a body byte. */
    PARSE("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.body_len, 0);

    /* Neither length nor chunked: the body ends with the connection, which is not reused. */
    PARSE("HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\nall of it", true);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.framing, HTTP_WIRE_UNTIL_CLOSE);
    ASSERT_TRUE(!whole.keep_alive);
    ASSERT_EQ_INT(whole.body_len, 9);
    ASSERT_EQ_MEM(whole.body, "all of it", 9);

    /* HTTP/1.0 persists only when asked to; HTTP/1.1 unless told not to. */
    PARSE("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", false);
    ASSERT_TRUE(whole.keep_alive);
    PARSE("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false);
    ASSERT_TRUE(!whole.keep_alive);
    PARSE("HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 1\r\n\r\nx", false);
    ASSERT_TRUE(!whole.keep_alive);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);

    /* 204 and 304 have no body, whatever their fields say. */
    PARSE("HTTP/1.1 204 No Content\r\n\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.framing, HTTP_WIRE_NO_BODY);
    PARSE("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.body_len, 0);

    /* Bytes after the end are not part of the response. */
    PARSE("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.leftover, 17);

    /* The Location of a redirect. */
    PARSE("HTTP/1.1 302 Found\r\nLocation:  /other/place \r\nContent-Length: 0\r\n\r\n", false);
    ASSERT_EQ_INT(whole.status, 302);
    ASSERT_EQ_STR(whole.location, "/other/place");

    /* Folded fields are ignored after a field that means nothing to us. */
    PARSE("HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nContent-Length: 1\r\n\r\nz", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.body_len, 1);

    /* Equal lengths twice are one length. */
    PARSE("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    PARSE("HTTP/1.1 200 OK\r\nContent-Length: 2 , 2\r\n\r\nab", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.length, 2);

    /* Transfer-Encoding: identity is no coding at all. */
    PARSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nab", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.framing, HTTP_WIRE_LENGTH);
}

static void chunked(void)
{
    PARSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "4\r\nWiki\r\n5;name=value;q=\"x y\"\r\npedia\r\nE \r\n in\r\n\r\nchunks.\r\n"
          "0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n",
          false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.framing, HTTP_WIRE_CHUNKED);
    ASSERT_TRUE(whole.keep_alive);
    ASSERT_EQ_INT(whole.length, -1);
    ASSERT_EQ_INT(whole.body_len, 23);
    ASSERT_EQ_MEM(whole.body, "Wikipedia in\r\n\r\nchunks.", 23);

    /* Upper-case hex, leading zeros, LF alone, and the next response after it. */
    PARSE("HTTP/1.1 200 OK\r\ntransfer-encoding: CHUNKED\r\n\r\n00A\nabcdefghij\n0\n\nX", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.body_len, 10);
    ASSERT_EQ_INT(whole.leftover, 1);

    /* Chunked wins over Content-Length, and the connection is not used again (RFC 9112). */
    PARSE("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\nhello\r\n0\r\n\r\n",
          false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.body_len, 5);
    ASSERT_EQ_INT(whole.length, -1);
    ASSERT_TRUE(!whole.keep_alive);

    /* Malformed chunking. */
    PARSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    ASSERT_EQ_STR(whole.why, "bad chunk size");
    PARSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    PARSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    PARSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    ASSERT_EQ_STR(whole.why, "bad chunk size");
    PARSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\nab", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_MORE); /* the largest size is fine */
    PARSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    ASSERT_EQ_STR(whole.why, "no line end after chunk data");
    PARSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    PARSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    ASSERT_EQ_STR(whole.why, "unsupported transfer coding");
    PARSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);

    /* The connection ends inside the body. */
    PARSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", true);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    ASSERT_EQ_INT(whole.body_len, 2);
    ASSERT_EQ_STR(whole.why, "connection closed inside the chunked body");
}

static void interim(void)
{
    PARSE("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
          false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.heads, 1);
    ASSERT_EQ_INT(whole.status, 200);
    ASSERT_EQ_INT(whole.body_len, 2);
    PARSE("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
}

static void malformed(void)
{
    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 Odd\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\n: 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n  6\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\n folded first\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nConnection: close\rX\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 302 Found\r\nLocation: /a\r\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX\r: a\r\nContent-Length: 0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        parse_every_way(__LINE__, bad[i], strlen(bad[i]), false);
        if (whole.last != HTTP_WIRE_ERROR) fprintf(stderr, "  accepted: %s\n", bad[i]);
        ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
        ASSERT_TRUE(whole.why && whole.why[0]);
    }
    /* A NUL in a field we interpret (sizeof, not strlen). */
    PARSE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\0\r\n\r\n0\r\n\r\n", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    ASSERT_EQ_STR(whole.why, "control character in the response head");
    /* In a field we ignore, a bare CR or a NUL is as good as a space (RFC 9110, 5.5). */
    PARSE("HTTP/1.1 200 OK\r\nX: a\0b\rc\r\r\nContent-Length: 1\r\n\r\nz", false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.body_len, 1);

    /* The connection ends early. */
    PARSE("", true);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    ASSERT_EQ_STR(whole.why, "connection closed before any response");
    PARSE("HTTP/1.1 200 OK\r\nContent-Le", true);
    ASSERT_EQ_STR(whole.why, "connection closed inside the response head");
    PARSE("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    ASSERT_EQ_STR(whole.why, "short body");
    ASSERT_EQ_INT(whole.body_len, 3);
}

/* A response with fields of n bytes in all (about). */
static char *big_head(size_t n, size_t line)
{
    char *s = malloc(n + 256);
    size_t len = (size_t)snprintf(s, 64, "HTTP/1.1 200 OK\r\n");
    while (len + line + 2 <= n) {
        len += (size_t)snprintf(s + len, 16, "X-%05zu: ", len % 100000);
        size_t fill = line - 11;
        memset(s + len, 'v', fill);
        len += fill;
        memcpy(s + len, "\r\n", 2);
        len += 2;
    }
    len += (size_t)snprintf(s + len, 64, "Content-Length: 2\r\n\r\nok");
    s[len] = '\0';
    return s;
}

static void caps(void)
{
    /* Under 32 KiB of head in lines under 8 KiB: fine. */
    char *s = big_head(HTTP_WIRE_MAX_HEAD - 100, 4000);
    parse_every_way(__LINE__, s, strlen(s), false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    free(s);
    /* More than 32 KiB of head. */
    s = big_head(HTTP_WIRE_MAX_HEAD + 4100, 4000);
    parse_every_way(__LINE__, s, strlen(s), false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    ASSERT_EQ_STR(whole.why, "response head over 32 KiB");
    free(s);
    /* 1xx responses count toward it. */
    size_t n = 0;
    s = malloc(HTTP_WIRE_MAX_HEAD * 2);
    while (n < HTTP_WIRE_MAX_HEAD + 100)
        n += (size_t)snprintf(s + n, 64, "HTTP/1.1 100 Continue\r\n\r\n");
    parse_every_way(__LINE__, s, n, false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    free(s);
    /* One line over 8 KiB. */
    s = big_head(20000, HTTP_WIRE_MAX_LINE + 1);
    parse_every_way(__LINE__, s, strlen(s), false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    ASSERT_EQ_STR(whole.why, "line over 8 KiB in the response head");
    free(s);
    /* A line of exactly 8 KiB with its CRLF is fine. */
    s = big_head(HTTP_WIRE_MAX_LINE + 100, HTTP_WIRE_MAX_LINE);
    parse_every_way(__LINE__, s, strlen(s), false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    free(s);
    /* A chunk-size line over 1 KiB. */
    s = malloc(4096);
    n = (size_t)snprintf(s, 4096, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;");
    memset(s + n, 'e', 1100);
    n += 1100;
    n += (size_t)snprintf(s + n, 64, "\r\nx\r\n0\r\n\r\n");
    parse_every_way(__LINE__, s, n, false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_ERROR);
    ASSERT_EQ_STR(whole.why, "chunk-size line over 1 KiB");
    free(s);
}

/* A large body in pieces comes out whole, without a copy. */
static void large_body(void)
{
    size_t n = 60000;
    char *s = malloc(n + 100);
    size_t h = (size_t)snprintf(s, 100, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
    for (size_t i = 0; i < n; i++)
        s[h + i] = (char)('a' + i % 26);
    parse_every_way(__LINE__, s, h + n, false);
    ASSERT_EQ_INT(whole.last, HTTP_WIRE_END);
    ASSERT_EQ_INT(whole.body_len, n);
    ASSERT_EQ_MEM(whole.body, s + h, n);
    free(s);
}

static void request_for(const char *url, char *out, size_t outlen, size_t *len)
{
    struct wm_url u;
    *len = 0;
    out[0] = '\0';
    if (url_parse(url, &u) != WM_OK) return;
    *len = http_wire_request(&u, out, outlen);
    url_clear(&u);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void requests(void)
{
    char out[1024];
    size_t len;
    request_for("http://example.org/a/b.txt", out, sizeof out, &len);
    ASSERT_EQ_STR(out, "GET /a/b.txt HTTP/1.1\r\nHost: example.org\r\nUser-Agent: " WMESH_USER_AGENT
                       "\r\n"
                       "Accept: */*\r\n\r\n");
    ASSERT_EQ_INT(len, strlen(out));
    request_for("http://127.0.0.1:8080", out, sizeof out, &len);
    ASSERT_EQ_STR(out,
                  "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: " WMESH_USER_AGENT "\r\n"
                  "Accept: */*\r\n\r\n");
    request_for("https://h:443/x?y=1#frag", out, sizeof out, &len);
    ASSERT_TRUE(starts_with(out, "GET /x?y=1 HTTP/1.1\r\nHost: h\r\n"));
    request_for("https://h:8443/x", out, sizeof out, &len);
    ASSERT_TRUE(strstr(out, "\r\nHost: h:8443\r\n") != NULL);
    request_for("http://h:443/x", out, sizeof out, &len);
    ASSERT_TRUE(strstr(out, "\r\nHost: h:443\r\n") != NULL);
    request_for("http://[::1]:8080/x", out, sizeof out, &len);
    ASSERT_TRUE(strstr(out, "\r\nHost: [::1]:8080\r\n") != NULL);
    request_for("http://[::1]/x", out, sizeof out, &len);
    ASSERT_TRUE(strstr(out, "\r\nHost: [::1]\r\n") != NULL);
    /* Credentials, percent-decoded by url_parse: "user:p@ss" in base64. */
    request_for("http://user:p%40ss@h/x", out, sizeof out, &len);
    ASSERT_TRUE(strstr(out, "\r\nAuthorization: Basic dXNlcjpwQHNz\r\n") != NULL);
    request_for("http://user@h/x", out, sizeof out, &len);
    ASSERT_TRUE(strstr(out, "\r\nAuthorization: Basic dXNlcjo=\r\n") != NULL);
    /* Spaces and non-ASCII bytes are encoded; control characters refused. */
    request_for("http://h/a b/\xc3\xa9", out, sizeof out, &len);
    ASSERT_TRUE(starts_with(out, "GET /a%20b/%C3%A9 HTTP/1.1\r\n"));
    request_for("http://h/a\r\nX: y", out, sizeof out, &len);
    ASSERT_EQ_INT(len, 0);
    request_for("http://h\r\nX: y/a", out, sizeof out, &len);
    ASSERT_EQ_INT(len, 0);
    request_for("ftp://h/a", out, sizeof out, &len);
    ASSERT_EQ_INT(len, 0);
    /* Too small a buffer: the length needed comes back; with it + 1, the request. */
    char small[16];
    request_for("http://example.org/a/b.txt", small, sizeof small, &len);
    ASSERT_EQ_INT(len, strlen("GET /a/b.txt HTTP/1.1\r\nHost: example.org\r\n"
                              "User-Agent: " WMESH_USER_AGENT "\r\nAccept: */*\r\n\r\n"));
    char *fit = malloc(len + 1);
    size_t again = 0;
    request_for("http://example.org/a/b.txt", fit, len + 1, &again);
    ASSERT_EQ_INT(again, len);
    ASSERT_EQ_INT(strlen(fit), len);
    free(fit);
    request_for("http://example.org/a/b.txt", fit = malloc(len), len, &again);
    ASSERT_EQ_INT(again, len); /* still says how much it needs */
    free(fit);
}

int main(void)
{
    framing();
    chunked();
    interim();
    malformed();
    caps();
    large_body();
    requests();
    return TEST_REPORT();
}
