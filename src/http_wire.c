/* http_wire.c: HTTP/1.1 responses parsed line by line as their bytes arrive (RFC 9112), and GET
 * and CONNECT requests written; no I/O and no allocation, so the downloader, its tests and the
 * fuzzers share exactly this code. */
#include "http_wire.h"

#include <stdio.h>
#include <string.h>

#include "http_syntax.h"
#include "text.h"
#include "version.h"

enum state {
    ST_STATUS = 0,  /* a status line is next */
    ST_FIELDS,      /* header fields, until the empty line */
    ST_LENGTH,      /* body bytes counted by Content-Length */
    ST_CHUNK_SIZE,  /* a chunk-size line */
    ST_CHUNK_DATA,  /* chunk data */
    ST_CHUNK_END,   /* the line end after chunk data */
    ST_TRAILERS,    /* trailer fields after the last chunk, until the empty line */
    ST_UNTIL_CLOSE, /* every byte until the connection ends */
    ST_END,
    ST_ERROR,
};

/* Fields seen in the head being read. */
#define F_LENGTH 1u      /* Content-Length (its value in r->length) */
#define F_CHUNKED 2u     /* the chunked transfer coding */
#define F_OTHER 4u       /* a transfer coding we cannot undo (gzip, ...) */
#define F_CLOSE 8u       /* Connection: close */
#define F_KEEP_ALIVE 16u /* Connection: keep-alive (what makes HTTP/1.0 persistent) */
#define F_FOLDABLE 32u   /* the last line was a field we ignore: a continuation of it is harmless */

#define CONTINUE (-1) /* internal: no event yet, go on with the next line */

void http_wire_begin(struct http_response *r)
{
    memset(r, 0, sizeof *r);
    r->length = -1;
    r->state = ST_STATUS;
}

static int fail(struct http_response *r, const char *why)
{
    r->why = why;
    r->state = ST_ERROR;
    return HTTP_WIRE_ERROR;
}

enum line { LINE_OK, LINE_PARTIAL, LINE_TOO_LONG };

/* The next line of buf[0..len), ending with LF (a CR before it is dropped), at most cap bytes
 * with its end: *n is its length without the end, *adv with it. The search for LF goes on where
 * the previous call left it, so a long line arriving byte by byte costs linear time. */
static enum line take_line(struct http_response *r, const char *buf, size_t len, size_t cap,
                           size_t *n, size_t *adv)
{
    size_t from = r->scanned <= len ? r->scanned : 0;
    const char *lf = from < len ? memchr(buf + from, '\n', len - from) : NULL;
    if (!lf) {
        r->scanned = len;
        return len >= cap ? LINE_TOO_LONG : LINE_PARTIAL;
    }
    size_t total = (size_t)(lf - buf) + 1;
    if (total > cap) return LINE_TOO_LONG;
    r->scanned = 0;
    size_t k = total - 1;
    if (k > 0 && buf[k - 1] == '\r') k--;
    *n = k;
    *adv = total;
    return LINE_OK;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "HTTP/1.x NNN[ reason]" with NNN from 100 up: a 1xx, or the final response. */
static int status_line(struct http_response *r, const char *s, size_t n)
{
    int minor = 0;
    if (!http_has_no_cr_nul(s, n)) return fail(r, "control character in the response head");
    if (!http_status_line(s, n, &minor, &r->status) || r->status < 100)
        return fail(r, "malformed status line");
    r->minor = minor;
    r->fields = 0;
    r->codings = 0;
    r->length = -1;
    r->state = ST_FIELDS;
    return CONTINUE;
}

/* Calls fn on each element of a comma-separated list; stops at the first false. Empty elements
 * are skipped (RFC 9110, 5.6.1), or refused. */
static bool each_element(struct http_response *r, const char *v, size_t n, bool allow_empty,
                         bool (*fn)(struct http_response *, const char *, size_t))
{
    size_t pos = 0, len = 0;
    const char *elem = NULL;
    while (http_list_next(v, n, &pos, &elem, &len)) {
        if (len == 0 && !allow_empty) return false;
        if (len > 0 && !fn(r, elem, len)) return false;
    }
    return true;
}

/* One element of Content-Length: digits, the same as any value before it. */
static bool length_element(struct http_response *r, const char *s, size_t n)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i])) return false;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    /* "Content-Length: 5, 5" and two equal fields are the same length (RFC 9110, 8.6). */
    if ((r->fields & F_LENGTH) && v != r->length) return false;
    r->length = v;
    r->fields |= F_LENGTH;
    return true;
}

static bool coding_element(struct http_response *r, const char *s, size_t n)
{
    const char *semi = memchr(s, ';', n); /* a coding's parameters */
    if (semi) {
        n = (size_t)(semi - s);
        while (n > 0 && http_is_ows(s[n - 1]))
            n--;
    }
    if (http_token_eq(s, n, "chunked")) {
        if (r->fields & F_CHUNKED) return false; /* applied twice: RFC 9112, 7 forbids it */
        r->fields |= F_CHUNKED;
    } else if (!http_token_eq(s, n, "identity")) {
        r->fields |= F_OTHER;
    }
    r->codings++;
    return true;
}

/* The head ended: a 1xx is skipped, a final response decides how its body is delimited
 * (RFC 9112, 6.3). */
static int end_of_head(struct http_response *r)
{
    if (r->status < 200) {
        if (r->status == 101) return fail(r, "unexpected 101 Switching Protocols");
        r->state = ST_STATUS;
        return CONTINUE;
    }
    if (r->tunnel && r->status < 300) {
        /* The tunnel is up: any framing fields are meaningless (RFC 9110, 9.3.6). */
        r->framing = HTTP_WIRE_NO_BODY;
        r->length = 0;
        r->keep_alive = true;
        r->state = ST_END;
        return HTTP_WIRE_HEAD;
    }
    bool reuse = !(r->fields & F_CLOSE) && (r->minor >= 1 || (r->fields & F_KEEP_ALIVE));
    if (r->status == 204 || r->status == 304) {
        r->framing = HTTP_WIRE_NO_BODY;
        r->length = 0;
        r->state = ST_END;
    } else if (r->fields & F_OTHER) {
        return fail(r, "unsupported transfer coding");
    } else if (r->fields & F_CHUNKED) {
        /* Chunked wins over a Content-Length, but such a message may be a smuggling attempt
         * aimed at something on the path: the connection is not used again. */
        if (r->fields & F_LENGTH) reuse = false;
        r->framing = HTTP_WIRE_CHUNKED;
        r->length = -1;
        r->state = ST_CHUNK_SIZE;
    } else if (r->fields & F_LENGTH) {
        r->framing = HTTP_WIRE_LENGTH;
        r->left = r->length;
        r->state = r->left > 0 ? ST_LENGTH : ST_END;
    } else {
        r->framing = HTTP_WIRE_UNTIL_CLOSE;
        reuse = false;
        r->state = ST_UNTIL_CLOSE;
    }
    r->keep_alive = reuse;
    r->head_bytes = 0; /* from here on it counts the trailers */
    return HTTP_WIRE_HEAD;
}

enum field { FIELD_OTHER, FIELD_LENGTH, FIELD_CODING, FIELD_CONNECTION, FIELD_LOCATION };

/* The fields we interpret; their names differ in length, which spares most comparisons. */
static enum field field_of(const char *name, size_t n)
{
    switch (n) {
    case 14:
        return http_token_eq(name, n, "content-length") ? FIELD_LENGTH : FIELD_OTHER;
    case 17:
        return http_token_eq(name, n, "transfer-encoding") ? FIELD_CODING : FIELD_OTHER;
    case 10:
        return http_token_eq(name, n, "connection") ? FIELD_CONNECTION : FIELD_OTHER;
    case 8:
        return http_token_eq(name, n, "location") ? FIELD_LOCATION : FIELD_OTHER;
    default:
        return FIELD_OTHER;
    }
}

static int field_line(struct http_response *r, const char *s, size_t n, const char **data,
                      size_t *dlen)
{
    if (n == 0) return end_of_head(r);
    struct http_field f;
    enum http_field_result got = http_field_split(s, n, &f);
    /* obs-fold: harmless after a field we ignore, ambiguous after one we interpret. */
    if (got == HTTP_FIELD_FOLDED && (r->fields & F_FOLDABLE)) return CONTINUE;
    if (got != HTTP_FIELD_OK) return fail(r, http_field_problem(got));
    enum field kind = field_of(f.name, f.name_len);
    r->fields &= ~F_FOLDABLE;
    if (kind == FIELD_OTHER) {
        r->fields |= F_FOLDABLE;
        return CONTINUE;
    }
    const char *v = f.value;
    size_t vl = f.value_len;
    /* A CR or NUL is refused where we interpret: in the fields we ignore, they count as spaces
     * (RFC 9110, 5.5 allows either). */
    if (!http_has_no_cr_nul(v, vl)) return fail(r, "control character in the response head");
    switch (kind) {
    case FIELD_LENGTH:
        if (vl == 0 || (memchr(v, ',', vl) ? !each_element(r, v, vl, false, length_element)
                                           : !length_element(r, v, vl)))
            return fail(r, "bad or conflicting Content-Length");
        return CONTINUE;
    case FIELD_CODING:
        if (!each_element(r, v, vl, true, coding_element)) return fail(r, "chunked applied twice");
        return CONTINUE;
    case FIELD_CONNECTION:
        if (http_list_has(v, vl, "close")) r->fields |= F_CLOSE;
        if (http_list_has(v, vl, "keep-alive")) r->fields |= F_KEEP_ALIVE;
        return CONTINUE;
    default:
        *data = v;
        *dlen = vl;
        return HTTP_WIRE_LOCATION;
    }
}

/* The longest line the head (or the trailers) may still take: a line's cap, or what is left of
 * the head's. */
static size_t head_line_cap(const struct http_response *r)
{
    size_t room = HTTP_WIRE_MAX_HEAD - r->head_bytes;
    return room < HTTP_WIRE_MAX_LINE ? room : HTTP_WIRE_MAX_LINE;
}

static int head_line(struct http_response *r, const char *s, size_t len, size_t *off,
                     const char **data, size_t *dlen)
{
    size_t cap = head_line_cap(r);
    size_t n = 0, adv = 0;
    switch (take_line(r, s, len, cap, &n, &adv)) {
    case LINE_PARTIAL:
        return HTTP_WIRE_MORE;
    case LINE_TOO_LONG:
        return fail(r, cap < HTTP_WIRE_MAX_LINE ? "response head over 32 KiB"
                                                : "line over 8 KiB in the response head");
    case LINE_OK:
        break;
    }
    *off += adv;
    r->head_bytes += adv;
    if (r->state == ST_STATUS) return status_line(r, s, n);
    return field_line(r, s, n, data, dlen);
}

/* "HEX[ ][;extensions]": the extensions (which no one uses) are skipped, not interpreted. */
static bool parse_chunk_size(const char *s, size_t n, int64_t *size)
{
    size_t i = 0;
    int64_t v = 0;
    for (int d; i < n && (d = text_hex_digit(s[i])) >= 0; i++) {
        if (v > (INT64_MAX >> 4)) return false;
        v = v << 4 | d;
    }
    if (i == 0) return false;
    while (i < n && http_is_ows(s[i]))
        i++;
    if (i < n && s[i] != ';') return false;
    *size = v;
    return true;
}

static int chunk_line(struct http_response *r, const char *s, size_t len, size_t *off)
{
    size_t n = 0, adv = 0;
    int64_t size = 0;
    switch (take_line(r, s, len, HTTP_WIRE_MAX_CHUNK_LINE, &n, &adv)) {
    case LINE_PARTIAL:
        return HTTP_WIRE_MORE;
    case LINE_TOO_LONG:
        return fail(r, "chunk-size line over 1 KiB");
    case LINE_OK:
        break;
    }
    if (!http_has_no_cr_nul(s, n)) return fail(r, "control character in a chunk-size line");
    if (!parse_chunk_size(s, n, &size)) return fail(r, "bad chunk size");
    *off += adv;
    r->left = size;
    r->state = size > 0 ? ST_CHUNK_DATA : ST_TRAILERS;
    return CONTINUE;
}

/* The CRLF (or LF) that closes chunk data. */
static int chunk_end(struct http_response *r, const char *s, size_t len, size_t *off)
{
    size_t n = 0, adv = 0;
    enum line got = take_line(r, s, len, 2, &n, &adv);
    if (got == LINE_PARTIAL) return HTTP_WIRE_MORE;
    if (got != LINE_OK || n != 0) return fail(r, "no line end after chunk data");
    *off += adv;
    r->state = ST_CHUNK_SIZE;
    return CONTINUE;
}

/* Trailer fields are read and ignored: nothing we need comes there. */
static int trailer_line(struct http_response *r, const char *s, size_t len, size_t *off)
{
    size_t n = 0, adv = 0;
    switch (take_line(r, s, len, head_line_cap(r), &n, &adv)) {
    case LINE_PARTIAL:
        return HTTP_WIRE_MORE;
    case LINE_TOO_LONG:
        return fail(r, "trailers over 32 KiB");
    case LINE_OK:
        break;
    }
    *off += adv;
    r->head_bytes += adv;
    if (n > 0 && (http_is_ows(s[0]) || !memchr(s, ':', n)))
        return fail(r, "malformed trailer field");
    if (n == 0) r->state = ST_END;
    return CONTINUE;
}

static int body(struct http_response *r, const char *s, size_t len, size_t *off, const char **data,
                size_t *dlen)
{
    if (len == 0) return HTTP_WIRE_MORE;
    size_t n = len;
    if (r->state != ST_UNTIL_CLOSE && (uint64_t)r->left < (uint64_t)len) n = (size_t)r->left;
    *data = s;
    *dlen = n;
    *off += n;
    r->body_bytes += (int64_t)n;
    if (r->state != ST_UNTIL_CLOSE) {
        r->left -= (int64_t)n;
        if (r->left == 0) r->state = r->state == ST_LENGTH ? ST_END : ST_CHUNK_END;
    }
    return HTTP_WIRE_BODY;
}

/* One step from the current state over buf + *off: an event, or CONTINUE. */
static int step(struct http_response *r, const char *buf, size_t len, size_t *off,
                const char **data, size_t *dlen)
{
    const char *s = buf + *off;
    size_t left = len - *off;
    switch (r->state) {
    case ST_STATUS:
    case ST_FIELDS:
        return head_line(r, s, left, off, data, dlen);
    case ST_LENGTH:
    case ST_CHUNK_DATA:
    case ST_UNTIL_CLOSE:
        return body(r, s, left, off, data, dlen);
    case ST_CHUNK_SIZE:
        return chunk_line(r, s, left, off);
    case ST_CHUNK_END:
        return chunk_end(r, s, left, off);
    case ST_TRAILERS:
        return trailer_line(r, s, left, off);
    case ST_END:
        return HTTP_WIRE_END;
    default:
        return HTTP_WIRE_ERROR;
    }
}

enum http_wire_event http_wire_parse(struct http_response *r, const char *buf, size_t len,
                                     size_t *used, const char **data, size_t *dlen)
{
    size_t off = 0;
    int ev;
    *data = NULL;
    *dlen = 0;
    if (!buf) {
        buf = "";
        len = 0;
    }
    while ((ev = step(r, buf, len, &off, data, dlen)) == CONTINUE)
        ;
    *used = off;
    return (enum http_wire_event)ev;
}

enum http_wire_event http_wire_eof(struct http_response *r)
{
    switch (r->state) {
    case ST_UNTIL_CLOSE:
        r->state = ST_END;
        return HTTP_WIRE_END;
    case ST_END:
        return HTTP_WIRE_END;
    case ST_ERROR:
        return HTTP_WIRE_ERROR;
    case ST_STATUS:
        if (r->head_bytes == 0 && r->scanned == 0)
            return (enum http_wire_event)fail(r, "connection closed before any response");
        return (enum http_wire_event)fail(r, "connection closed inside the response head");
    case ST_FIELDS:
        return (enum http_wire_event)fail(r, "connection closed inside the response head");
    case ST_LENGTH:
        return (enum http_wire_event)fail(r, "short body");
    default:
        return (enum http_wire_event)fail(r, "connection closed inside the chunked body");
    }
}

/* ---- requests ---- */

/* Appends to a buffer that may turn out too small: len counts what was wanted. */
struct writer {
    char *out;
    size_t cap, len;
};

static void put(struct writer *w, const char *s, size_t n)
{
    if (w->len < w->cap && n < w->cap - w->len) memcpy(w->out + w->len, s, n);
    w->len += n;
}

static void put_str(struct writer *w, const char *s)
{
    put(w, s, strlen(s));
}

static bool put_path(struct writer *w, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!path[0]) path = "/";
    const unsigned char *p = (const unsigned char *)path, *run = p;
    for (; *p && *p != '#'; p++) {
        if (*p > 0x20 && *p < 0x7f) continue;
        if (*p < 0x20 || *p == 0x7f) return false; /* request splitting, or worse */
        put(w, (const char *)run, (size_t)(p - run));
        char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]}; /* a space, or not ASCII */
        put(w, esc, 3);
        run = p + 1;
    }
    put(w, (const char *)run, (size_t)(p - run));
    return true;
}

/* ":port" in decimal. */
static void put_port(struct writer *w, int port)
{
    char text[8];
    size_t i = sizeof text;
    unsigned v = (unsigned)port;
    do
        text[--i] = (char)('0' + v % 10);
    while ((v /= 10) && i > 1);
    text[--i] = ':';
    put(w, text + i, sizeof text - i);
}

/* host (brackets added to an IPv6 literal) and ":port", the port left out when it is
 * default_port (0: never left out). */
static bool put_authority(struct writer *w, const char *host, int port, int default_port)
{
    for (const unsigned char *p = (const unsigned char *)host; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f) return false;
        switch (*p) {
        case '/':
        case '?':
        case '#':
        case '@':
        case '\\':
        case '[':
        case ']':
            return false;
        }
    }
    bool v6 = strchr(host, ':') != NULL;
    if (v6) put(w, "[", 1);
    put_str(w, host);
    if (v6) put(w, "]", 1);
    if (port < 1 || port > 65535) return false;
    if (port != default_port) put_port(w, port);
    return true;
}

static bool put_host(struct writer *w, const struct wm_url *u, bool tls)
{
    return put_authority(w, u->host, u->port, tls ? 443 : 80);
}

size_t http_wire_basic(const char *user, const char *password, char *out, size_t outlen)
{
    char plain[1024 + 1];
    char coded[(sizeof plain + 2) / 3 * 4 + 1];
    if (!user || !out) return 0;
    int n = snprintf(plain, sizeof plain, "%s:%s", user, password ? password : "");
    if (n < 0 || (size_t)n >= sizeof plain) return 0;
    if (text_base64_encode((const unsigned char *)plain, (size_t)n, coded, sizeof coded) != WM_OK)
        return 0;
    n = snprintf(out, outlen, "Basic %s", coded);
    return n < 0 || (size_t)n >= outlen ? 0 : (size_t)n;
}

/* Basic credentials (RFC 7617) in field, "Authorization" or "Proxy-Authorization". */
static bool put_credentials(struct writer *w, const char *field, const struct wm_url *u)
{
    char value[HTTP_WIRE_MAX_BASIC];
    if (!http_wire_basic(u->user, u->password, value, sizeof value)) return false;
    put_str(w, field);
    put_str(w, ": ");
    put_str(w, value);
    put_str(w, "\r\n");
    return true;
}

/* A GET of u, directly or (proxy not NULL) through proxy in absolute form. */
static size_t write_get(const struct wm_url *u, const struct wm_url *proxy, char *out,
                        size_t outlen)
{
    if (!u || !u->scheme || !u->host || !u->path || (!out && outlen)) return 0;
    bool tls = strcmp(u->scheme, "https") == 0;
    if (!tls && strcmp(u->scheme, "http") != 0) return 0;
    if (proxy && tls) return 0;
    struct writer w = {out, outlen, 0};
    put_str(&w, "GET ");
    if (proxy) {
        put_str(&w, "http://");
        if (!put_host(&w, u, false)) return 0;
    }
    if (!put_path(&w, u->path)) return 0;
    put_str(&w, " HTTP/1.1\r\nHost: ");
    if (!put_host(&w, u, tls)) return 0;
    put_str(&w, "\r\nUser-Agent: " WMESH_USER_AGENT "\r\nAccept: */*\r\n");
    if (u->user && !put_credentials(&w, "Authorization", u)) return 0;
    if (proxy && proxy->user && !put_credentials(&w, "Proxy-Authorization", proxy)) return 0;
    put_str(&w, "\r\n");
    if (w.len < outlen) out[w.len] = '\0';
    return w.len;
}

size_t http_wire_request(const struct wm_url *u, char *out, size_t outlen)
{
    return write_get(u, NULL, out, outlen);
}

size_t http_wire_proxy_request(const struct wm_url *u, const struct wm_url *proxy, char *out,
                               size_t outlen)
{
    if (!proxy) return 0;
    return write_get(u, proxy, out, outlen);
}

size_t http_wire_connect_request(const char *host, int port, const struct wm_url *proxy, char *out,
                                 size_t outlen)
{
    if (!host || !host[0] || (!out && outlen)) return 0;
    struct writer w = {out, outlen, 0};
    put_str(&w, "CONNECT ");
    if (!put_authority(&w, host, port, 0)) return 0;
    put_str(&w, " HTTP/1.1\r\nHost: ");
    if (!put_authority(&w, host, port, 0)) return 0;
    put_str(&w, "\r\nUser-Agent: " WMESH_USER_AGENT "\r\n");
    if (proxy && proxy->user && !put_credentials(&w, "Proxy-Authorization", proxy)) return 0;
    put_str(&w, "\r\n");
    if (w.len < outlen) out[w.len] = '\0';
    return w.len;
}

/* ---- the answer to a CONNECT ---- */

void http_wire_begin_connect(struct http_response *r)
{
    http_wire_begin(r);
    r->tunnel = true;
}

enum http_wire_tunnel http_wire_tunnel_parse(struct http_response *r, const char *buf, size_t len,
                                             size_t *used)
{
    size_t off = 0;
    if (!buf) {
        buf = "";
        len = 0;
    }
    for (;;) {
        size_t n = 0, dlen = 0;
        const char *data = NULL;
        enum http_wire_event ev = http_wire_parse(r, buf + off, len - off, &n, &data, &dlen);
        off += n;
        *used = off;
        switch (ev) {
        case HTTP_WIRE_LOCATION:
            continue; /* a Location in a 1xx or in the final head: nothing to us */
        case HTTP_WIRE_HEAD:
            return r->status < 300 ? HTTP_WIRE_TUNNEL_UP : HTTP_WIRE_TUNNEL_REFUSED;
        case HTTP_WIRE_MORE:
            return HTTP_WIRE_TUNNEL_MORE;
        default: /* ERROR; BODY and END cannot come before HEAD */
            if (!r->why) r->why = "unexpected event in the answer to CONNECT";
            return HTTP_WIRE_TUNNEL_ERROR;
        }
    }
}
