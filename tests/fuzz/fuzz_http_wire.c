/* fuzz_http_wire.c: libFuzzer harness: any bytes from a server parse as one response or fail
 * cleanly, with the same outcome whether they come whole or in pieces (the unconsumed rest
 * presented again, as fetch.c does); body bytes are handed out in place and add up; the caps
 * hold. Then the same bytes, as a URL, give a request that is one well-formed head, or none. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_wire.h"
#include "url.h"

static void check(bool ok)
{
    if (!ok) abort();
}

struct outcome {
    int status, heads;
    bool keep_alive;
    enum http_wire_framing framing;
    int64_t length;
    unsigned char *body;
    size_t body_len;
    enum http_wire_event last;
    const char *why;
    size_t leftover;
};

/* Parses buf; false once the response ended. Keeps the unconsumed rest in rest. */
static bool piece(struct http_response *r, const char *buf, size_t len, size_t unfed,
                  struct outcome *o, char *rest, size_t *rest_len)
{
    for (;;) {
        size_t used = 12345, dlen = 0;
        const char *data = NULL;
        enum http_wire_event ev = http_wire_parse(r, buf, len, &used, &data, &dlen);
        check(used <= len);
        if (ev == HTTP_WIRE_BODY || ev == HTTP_WIRE_LOCATION)
            check(data >= buf && dlen <= len && data + dlen <= buf + used);
        buf += used;
        len -= used;
        switch (ev) {
        case HTTP_WIRE_MORE:
            check(len <= HTTP_WIRE_MAX_LINE);
            memcpy(rest, buf, len);
            *rest_len = len;
            o->last = ev;
            return true;
        case HTTP_WIRE_LOCATION:
            break;
        case HTTP_WIRE_HEAD:
            check(o->heads++ == 0 && r->status >= 200 && r->status <= 999);
            check(r->framing != HTTP_WIRE_UNTIL_CLOSE || !r->keep_alive);
            check((r->framing == HTTP_WIRE_LENGTH) ==
                      (r->length >= 0 && r->status != 204 && r->status != 304) ||
                  r->framing == HTTP_WIRE_NO_BODY);
            o->status = r->status;
            o->keep_alive = r->keep_alive;
            o->framing = r->framing;
            o->length = r->length;
            break;
        case HTTP_WIRE_BODY:
            check(o->heads == 1 && dlen > 0);
            memcpy(o->body + o->body_len, data, dlen);
            o->body_len += dlen;
            check(r->body_bytes == (int64_t)o->body_len);
            break;
        case HTTP_WIRE_END:
        case HTTP_WIRE_ERROR:
            o->last = ev;
            o->why = ev == HTTP_WIRE_ERROR ? r->why : NULL;
            check(ev == HTTP_WIRE_END || (o->why && o->why[0]));
            if (ev == HTTP_WIRE_END && o->framing == HTTP_WIRE_LENGTH)
                check((int64_t)o->body_len == o->length);
            o->leftover = ev == HTTP_WIRE_END ? len + unfed : 0;
            return false;
        }
    }
}

/* Feeds data in pieces of pseudo-random sizes (whole when seed is 0), then the end of stream. */
static void feed(const uint8_t *data, size_t size, uint32_t seed, struct outcome *o)
{
    static char rest[HTTP_WIRE_MAX_LINE];
    struct http_response r;
    size_t rest_len = 0, off = 0;
    http_wire_begin(&r);
    bool going = true;
    while (going && off < size) {
        size_t n = size - off;
        if (seed) {
            n = 1 + (seed >> 16) % 37;
            seed = seed * 1103515245u + 12345u;
            if (n > size - off) n = size - off;
        }
        char *work = malloc(rest_len + n + 1);
        check(work != NULL);
        memcpy(work, rest, rest_len);
        memcpy(work + rest_len, data + off, n);
        off += n;
        going = piece(&r, work, rest_len + n, size - off, o, rest, &rest_len);
        free(work);
    }
    if (going) {
        o->last = http_wire_eof(&r);
        o->why = o->last == HTTP_WIRE_ERROR ? r.why : NULL;
        check(o->last == HTTP_WIRE_END || o->last == HTTP_WIRE_ERROR);
        check(o->last == HTTP_WIRE_ERROR || o->framing == HTTP_WIRE_UNTIL_CLOSE || o->heads == 1);
    }
}

/* The same bytes as a URL: a request comes out as one head, lines ending in CRLF, or none. */
static void request(const uint8_t *data, size_t size)
{
    char text[512];
    size_t n = size < sizeof text - 8 ? size : sizeof text - 8;
    memcpy(text, "http://", 7);
    memcpy(text + 7, data, n);
    text[7 + n] = '\0';
    struct wm_url u;
    if (url_parse(text, &u) != WM_OK) return;
    char out[4096];
    size_t len = http_wire_request(&u, out, sizeof out);
    url_clear(&u);
    if (len == 0 || len >= sizeof out) return;
    check(strlen(out) == len && strncmp(out, "GET /", 5) == 0);
    check(len >= 4 && memcmp(out + len - 4, "\r\n\r\n", 4) == 0);
    for (size_t i = 0; i < len; i++) {
        if (out[i] == '\n') check(i > 0 && out[i - 1] == '\r');
        if (out[i] == '\r') check(i + 1 < len && out[i + 1] == '\n');
    }
    const char *eol = strstr(out, "\r\n");
    const char *sp = memchr(out + 4, ' ', (size_t)(eol - out - 4));
    check(sp && strncmp(sp, " HTTP/1.1\r\n", 11) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome a = {0}, b = {0};
    a.body = malloc(size + 1);
    b.body = malloc(size + 1);
    check(a.body && b.body);
    feed(data, size, 0, &a);
    feed(data, size, (uint32_t)size * 2654435761u + 1u, &b);
    check(a.status == b.status && a.heads == b.heads && a.keep_alive == b.keep_alive);
    check(a.framing == b.framing && a.length == b.length && a.last == b.last);
    check(a.body_len == b.body_len && memcmp(a.body, b.body, a.body_len) == 0);
    check(a.leftover == b.leftover);
    check(a.why == b.why || (a.why && b.why && strcmp(a.why, b.why) == 0));
    free(a.body);
    free(b.body);
    request(data, size);
    return 0;
}
