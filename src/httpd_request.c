/* httpd_request.c: the HTTP/1.x request-head parser of the embedded server (RFC 9112). Strict
 * where leniency would let two parsers disagree about where a request ends (obs-fold, space
 * before a colon, conflicting lengths, Transfer-Encoding), lenient where nothing is at stake
 * (bare LF line ends, bytes >= 0x80 in the target). */
#include "httpd_request.h"

#include <string.h>
#include <strings.h>

#include "http_syntax.h"

/* Over this, a Content-Length is refused as malformed rather than risk any overflow. */
#define CONTENT_LENGTH_MAX ((uint64_t)1 << 62)

struct line {
    const char *p;
    size_t len; /* without the line end */
};

size_t httpd_request_end(const char *buf, size_t len, size_t *from)
{
    size_t i = *from;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl) {
            i = len;
            break;
        }
        size_t p = (size_t)(nl - buf) + 1;
        if (p < len && buf[p] == '\n') return p + 1;
        if (p + 1 < len && buf[p] == '\r' && buf[p + 1] == '\n') return p + 2;
        if (p == len || (p + 1 == len && buf[p] == '\r')) {
            /* Undecided until more arrives: search again from this line end. */
            i = (size_t)(nl - buf);
            break;
        }
        i = p;
    }
    *from = i;
    return 0;
}

int httpd_request_overflow_status(const char *buf, size_t len)
{
    return memchr(buf, '\n', len) ? 431 : 414;
}

/* Takes the next line of buf[*pos..end) into *l; false when no line end is left. */
static bool next_line(const char *buf, size_t end, size_t *pos, struct line *l)
{
    if (*pos >= end) return false;
    const char *nl = memchr(buf + *pos, '\n', end - *pos);
    if (!nl) return false;
    l->p = buf + *pos;
    l->len = (size_t)(nl - l->p);
    if (l->len > 0 && l->p[l->len - 1] == '\r') l->len--;
    *pos = (size_t)(nl - buf) + 1;
    return true;
}

/* Finds the path and query of an origin-form ("/a/b?q") or absolute-form ("http://host/a/b?q")
 * target. Other forms ("*", "host:port") leave req->path NULL. */
static void target_path(const char *t, size_t len, struct httpd_request *req)
{
    req->path = NULL;
    req->path_len = 0;
    size_t skip = 0;
    if (len >= 7 && strncasecmp(t, "http://", 7) == 0)
        skip = 7;
    else if (len >= 8 && strncasecmp(t, "https://", 8) == 0)
        skip = 8;
    if (skip) {
        while (skip < len && t[skip] != '/' && t[skip] != '?')
            skip++;
    } else if (len == 0 || t[0] != '/') {
        return;
    }
    const char *q = memchr(t + skip, '?', len - skip);
    if (q) {
        req->query = q + 1;
        req->query_len = len - (size_t)(q + 1 - t);
    }
    if (skip && (skip == len || t[skip] == '?')) {
        req->path = "/"; /* "http://host" and "http://host?q" ask for the root */
        req->path_len = 1;
        return;
    }
    req->path = t + skip;
    req->path_len = q ? (size_t)(q - (t + skip)) : len - skip;
}

/* "METHOD SP target SP HTTP/1.x"; exactly one space between the parts. */
static bool parse_request_line(const struct line *l, struct httpd_request *req)
{
    size_t m = http_token_len(l->p, l->len);
    if (m == 0 || m >= l->len || l->p[m] != ' ') return false;
    if (m == 3 && memcmp(l->p, "GET", 3) == 0)
        req->method = HTTPD_METHOD_GET;
    else if (m == 4 && memcmp(l->p, "HEAD", 4) == 0)
        req->method = HTTPD_METHOD_HEAD;
    else
        req->method = HTTPD_METHOD_OTHER;
    const char *t = l->p + m + 1;
    size_t rest = l->len - m - 1, tlen = 0;
    /* Bytes >= 0x80 pass: the tree decides what UTF-8 names it has. */
    while (tlen < rest && (unsigned char)t[tlen] > 0x20 && t[tlen] != 0x7f)
        tlen++;
    if (tlen == 0 || tlen + 1 + 8 != rest || t[tlen] != ' ') return false;
    const char *v = t + tlen + 1;
    if (memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' ||
        v[7] > '9')
        return false;
    if (v[5] != '1') {
        req->status = 505;
        return false;
    }
    req->minor = (unsigned)(v[7] - '0');
    target_path(t, tlen, req);
    if (!req->path && req->method != HTTPD_METHOD_OTHER) return false;
    return true;
}

static bool parse_length(const char *v, size_t len, uint64_t *out)
{
    if (len == 0) return false;
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return false;
        n = n * 10 + (uint64_t)(v[i] - '0');
        if (n > CONTENT_LENGTH_MAX) return false;
    }
    *out = n;
    return true;
}

/* What the headers that matter here said. */
struct fields {
    bool has_length, chunked_or_other, close, keep_alive, expect_continue;
    unsigned hosts;
    uint64_t length;
};

/* The comma-separated options of a Connection header. Only the leading token of each element
 * is compared: an option with something after it ("close x") still counts. */
static void parse_connection(const char *v, size_t len, struct fields *f)
{
    size_t pos = 0, n = 0;
    const char *elem = NULL;
    while (http_list_next(v, len, &pos, &elem, &n)) {
        size_t option = http_token_len(elem, n);
        if (http_token_eq(elem, option, "close")) f->close = true;
        if (http_token_eq(elem, option, "keep-alive")) f->keep_alive = true;
    }
}

static bool field_value_ok(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    }
    return true;
}

/* "name: value": no space before the colon, no folded continuation lines; whatever
 * http_field_split() does not call a field is malformed here. */
static bool parse_field(const struct line *l, struct fields *f)
{
    struct http_field field;
    if (http_field_split(l->p, l->len, &field) != HTTP_FIELD_OK) return false;
    const char *name = field.name, *v = field.value;
    size_t n = field.name_len, vlen = field.value_len;
    if (!field_value_ok(v, vlen)) return false;
    if (http_token_eq(name, n, "content-length")) {
        uint64_t len = 0;
        if (!parse_length(v, vlen, &len)) return false;
        /* Two differing lengths: which one a proxy in front believed is anyone's guess. */
        if (f->has_length && len != f->length) return false;
        f->has_length = true;
        f->length = len;
    } else if (http_token_eq(name, n, "transfer-encoding")) {
        f->chunked_or_other = true;
    } else if (http_token_eq(name, n, "connection")) {
        parse_connection(v, vlen, f);
    } else if (http_token_eq(name, n, "host")) {
        f->hosts++;
    } else if (http_token_eq(name, n, "expect")) {
        f->expect_continue = http_token_eq(v, vlen, "100-continue");
    }
    return true;
}

bool httpd_request_parse(const char *buf, size_t head_len, struct httpd_request *req)
{
    memset(req, 0, sizeof *req);
    req->status = 400;
    size_t pos = 0;
    struct line l;
    if (!next_line(buf, head_len, &pos, &l) || !parse_request_line(&l, req)) return false;
    struct fields f = {0};
    for (;;) {
        if (!next_line(buf, head_len, &pos, &l)) return false;
        if (l.len == 0) break;
        if (!parse_field(&l, &f)) return false;
    }
    /* HTTP/1.1 requires exactly one Host; we serve one site, but a request without it is not
     * HTTP/1.1, and two of them is an attempt to confuse something. */
    if (f.hosts > 1 || (req->minor >= 1 && f.hosts == 0)) return false;
    if (f.chunked_or_other) {
        req->status = 501;
        return false;
    }
    req->content_length = f.length;
    req->keep_alive = !f.close && (req->minor >= 1 || f.keep_alive);
    /* A client waiting for "100 Continue" may never send the body once it has the answer:
     * what follows on the connection could be either, so it ends with this request. */
    if (f.expect_continue && f.length > 0) req->keep_alive = false;
    req->status = 0;
    return true;
}
