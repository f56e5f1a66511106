/* ws_wire.c: the client side of WebSocket (RFC 6455): the opening handshake, masked frames out,
 * server frames decoded as a stream; no I/O and no allocation but the caller's buffer, so the
 * network layer, its tests and the fuzzer share exactly this code. */
#include "ws_wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http_syntax.h"
#include "integrity.h"
#include "text.h"

/* The GUID every server appends to the key before hashing (RFC 6455, 1.3; its example key
 * and accept value in the unit test pin it down). */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define ACCEPT_TEXT 28                   /* base64 of a SHA-1 */
#define MAX_KEY_TEXT 64                  /* longer keys are no key of ours */
#define MAX_CREDENTIALS 1024             /* user ":" password, as http_wire allows */
#define MAX_CLOSE_REASON 123             /* a control payload less the two bytes of the code */
#define RFC_MAX_LENGTH (UINT64_MAX >> 1) /* a 64-bit length's top bit must be clear */

/* ---- opening handshake: the request ---- */

enum { HS_STATUS = 0, HS_FIELDS, HS_DONE, HS_ERROR };

/* Fields of the response seen so far, and found right. */
#define SEEN_UPGRADE 1u
#define SEEN_CONNECTION 2u
#define SEEN_ACCEPT 4u
#define SEEN_PROTOCOL 8u
#define LAST_IGNORED                                                                               \
    16u /* the last line was a field we ignore: a folded continuation is harmless */

/* A request written into a buffer that may turn out too small: len counts what was wanted. */
struct text {
    char *p;
    size_t cap, len;
};

__attribute__((format(printf, 2, 3))) static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool room = t->len < t->cap;
    int n = vsnprintf(room ? t->p + t->len : NULL, room ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) t->len += (size_t)n;
}

/* Visible ASCII, the only bytes a request line or a field may carry unescaped. */
static bool visible(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* A name or an address: anything else could end the field or smuggle a path into it. */
static bool host_ok(const char *host)
{
    if (!host || !host[0]) return false;
    for (const unsigned char *p = (const unsigned char *)host; *p; p++)
        if (!visible(*p) || strchr("/?#@\\[]", *p)) return false;
    return true;
}

static bool path_ok(const char *path)
{
    if (path[0] != '/') return false;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (!visible(*p) || *p == '#') return false;
    return true;
}

static bool agent_ok(const char *agent)
{
    for (const unsigned char *p = (const unsigned char *)agent; *p; p++)
        if (!visible(*p) && *p != ' ') return false;
    return true;
}

/* "Basic " and base64 of user ":" password (RFC 7617); false when over the cap. */
static bool basic_credentials(const struct ws_request *rq, char *out, size_t outlen)
{
    char plain[MAX_CREDENTIALS + 1];
    int n = snprintf(plain, sizeof plain, "%s:%s", rq->user, rq->password ? rq->password : "");
    if (n < 0 || (size_t)n >= sizeof plain) return false;
    return text_base64_encode((const unsigned char *)plain, (size_t)n, out, outlen) == WM_OK;
}

size_t ws_wire_request(struct ws_handshake *h, const struct ws_request *rq, char *out,
                       size_t outlen)
{
    if (!h || !rq || (!out && outlen)) return 0;
    memset(h, 0, sizeof *h);
    h->state = HS_ERROR; /* until the request is written */
    snprintf(h->why, sizeof h->why, "no WebSocket request was written");
    const char *path = rq->path && rq->path[0] ? rq->path : WS_DEFAULT_PATH;
    if (!host_ok(rq->host) || rq->port < 1 || rq->port > 65535 || !path_ok(path)) return 0;
    if (rq->user_agent && !agent_ok(rq->user_agent)) return 0;
    char auth[(MAX_CREDENTIALS + 2) / 3 * 4 + 1];
    if (rq->user && !basic_credentials(rq, auth, sizeof auth)) return 0;
    if (text_base64_encode(rq->nonce, sizeof rq->nonce, h->key, sizeof h->key) != WM_OK) return 0;

    struct text t = {out, outlen, 0};
    bool v6 = strchr(rq->host, ':') != NULL;
    add(&t, "GET %s HTTP/1.1\r\nHost: %s%s%s", path, v6 ? "[" : "", rq->host, v6 ? "]" : "");
    if (rq->port != (rq->tls ? 443 : 80)) add(&t, ":%d", rq->port);
    add(&t,
        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " WS_SUBPROTOCOL "\r\n",
        h->key);
    if (rq->user_agent) add(&t, "User-Agent: %s\r\n", rq->user_agent);
    if (rq->user) add(&t, "Authorization: Basic %s\r\n", auth);
    add(&t, "\r\n");
    h->why[0] = '\0';
    h->state = HS_STATUS;
    return t.len;
}

enum wm_err ws_wire_accept(const char *key, char *out, size_t outlen)
{
    if (!key || !out) return WM_ERR_INVAL;
    size_t n = strlen(key);
    if (n > MAX_KEY_TEXT) return WM_ERR_INVAL;
    if (outlen < ACCEPT_TEXT + 1) return WM_ERR_TOOBIG;
    char joined[MAX_KEY_TEXT + sizeof WS_GUID];
    memcpy(joined, key, n);
    memcpy(joined + n, WS_GUID, sizeof WS_GUID);
    unsigned char digest[INTEGRITY_SHA1_LEN];
    enum wm_err err = integrity_sha1(joined, n + sizeof WS_GUID - 1, digest);
    if (err != WM_OK) return err;
    return text_base64_encode(digest, sizeof digest, out, outlen);
}

/* ---- opening handshake: the response ---- */

__attribute__((format(printf, 2, 3))) static enum ws_hs_result refuse(struct ws_handshake *h,
                                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->why, sizeof h->why, fmt, ap);
    va_end(ap);
    h->state = HS_ERROR;
    return WS_HS_ERROR;
}

#define CONTINUE (-1) /* internal: the line was fine, read the next */

static int status_line(struct ws_handshake *h, const char *s, size_t n)
{
    if (!http_status_line(s, n, NULL, &h->status))
        return refuse(h, "malformed status line from the WebSocket endpoint");
    if (h->status != 101) {
        /* The codes a person can act on get a hint; the rest speak for themselves. */
        const char *hint = h->status == 401 || h->status == 403  ? " (credentials refused)"
                           : h->status >= 300 && h->status < 400 ? " (redirects are not followed)"
                                                                 : "";
        return refuse(h, "HTTP %d from the WebSocket endpoint%s", h->status, hint);
    }
    h->state = HS_FIELDS;
    return CONTINUE;
}

static int accept_field(struct ws_handshake *h, const char *v, size_t n)
{
    if (h->seen & SEEN_ACCEPT) return refuse(h, "repeated Sec-WebSocket-Accept");
    char want[ACCEPT_TEXT + 1];
    if (ws_wire_accept(h->key, want, sizeof want) != WM_OK)
        return refuse(h, "SHA-1 failed for the Sec-WebSocket-Accept check");
    if (n != ACCEPT_TEXT || memcmp(v, want, ACCEPT_TEXT) != 0)
        return refuse(h, "bad Sec-WebSocket-Accept");
    h->seen |= SEEN_ACCEPT;
    return CONTINUE;
}

/* RFC 6455, 4.1, steps 2 to 6 of what a client checks, one field at a time. */
static int field_line(struct ws_handshake *h, const char *s, size_t n)
{
    struct http_field f;
    enum http_field_result got = http_field_split(s, n, &f);
    /* obs-fold: harmless after a field we ignore, ambiguous after one we check. */
    if (got == HTTP_FIELD_FOLDED && (h->seen & LAST_IGNORED)) return CONTINUE;
    if (got != HTTP_FIELD_OK) return refuse(h, "%s in the handshake", http_field_problem(got));
    const char *name = f.name, *v = f.value;
    size_t nl = f.name_len, vl = f.value_len;
    h->seen &= ~LAST_IGNORED;
    if (http_token_eq(name, nl, "upgrade")) {
        if (!http_token_eq(v, vl, "websocket")) return refuse(h, "Upgrade is not websocket");
        h->seen |= SEEN_UPGRADE;
    } else if (http_token_eq(name, nl, "connection")) {
        if (http_list_has(v, vl, "upgrade")) h->seen |= SEEN_CONNECTION;
    } else if (http_token_eq(name, nl, "sec-websocket-accept")) {
        return accept_field(h, v, vl);
    } else if (http_token_eq(name, nl, "sec-websocket-protocol")) {
        if (h->seen & SEEN_PROTOCOL) return refuse(h, "repeated Sec-WebSocket-Protocol");
        if (vl != strlen(WS_SUBPROTOCOL) || memcmp(v, WS_SUBPROTOCOL, vl) != 0)
            return refuse(h, "server chose a subprotocol other than " WS_SUBPROTOCOL);
        h->seen |= SEEN_PROTOCOL;
    } else if (http_token_eq(name, nl, "sec-websocket-extensions")) {
        /* We offered none, so none can be in use (a compressed frame would be garbage). */
        if (vl > 0) return refuse(h, "server chose a WebSocket extension we did not offer");
    } else {
        h->seen |= LAST_IGNORED;
    }
    return CONTINUE;
}

static int end_of_head(struct ws_handshake *h)
{
    if (!(h->seen & SEEN_UPGRADE)) return refuse(h, "no Upgrade: websocket in the handshake");
    if (!(h->seen & SEEN_CONNECTION)) return refuse(h, "no Connection: Upgrade in the handshake");
    if (!(h->seen & SEEN_ACCEPT)) return refuse(h, "no Sec-WebSocket-Accept in the handshake");
    h->no_subprotocol = !(h->seen & SEEN_PROTOCOL);
    h->state = HS_DONE;
    return WS_HS_DONE;
}

enum ws_hs_result ws_wire_handshake(struct ws_handshake *h, const char *buf, size_t len,
                                    size_t *used)
{
    if (used) *used = 0;
    if (!h || !used) return WS_HS_ERROR;
    if (h->state == HS_ERROR) return WS_HS_ERROR;
    if (h->state == HS_DONE) {
        *used = h->off;
        return WS_HS_DONE;
    }
    if (!buf) {
        buf = "";
        len = 0;
    }
    if (len < h->off) return refuse(h, "handshake bytes went missing between calls");
    for (;;) {
        /* A partial line is searched again on the next call; the cap bounds that work. */
        const char *line = buf + h->off;
        size_t avail = len - h->off, room = WS_MAX_HEAD - h->off;
        const char *lf = memchr(line, '\n', avail < room ? avail : room);
        if (!lf) {
            if (avail >= room) return refuse(h, "handshake response over 8 KiB");
            return WS_HS_MORE;
        }
        size_t n = (size_t)(lf - line);
        h->off += n + 1;
        if (n > 0 && line[n - 1] == '\r') n--;
        /* A CR or NUL inside a line could make something else on the path read other fields. */
        if (!http_has_no_cr_nul(line, n))
            return refuse(h, "control character in the handshake response");
        int r = h->state == HS_STATUS ? status_line(h, line, n)
                : n == 0              ? end_of_head(h)
                                      : field_line(h, line, n);
        if (r == WS_HS_DONE) *used = h->off;
        if (r != CONTINUE) return (enum ws_hs_result)r;
    }
}

/* ---- frames from the client ---- */

uint32_t ws_wire_next_key(struct ws_keys *k)
{
    /* splitmix64: every seed, zero included, gives a full-period sequence. */
    uint64_t z = (k->state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

size_t ws_wire_header(unsigned char out[WS_MAX_FRAME_HEADER], unsigned opcode, uint64_t n,
                      uint32_t key)
{
    size_t i = 2;
    out[0] = (unsigned char)(0x80 | (opcode & 0x0F)); /* FIN: every frame we send is whole */
    if (n < 126) {
        out[1] = (unsigned char)(0x80 | n);
    } else if (n <= 0xFFFF) {
        out[1] = 0x80 | 126;
        out[i++] = (unsigned char)(n >> 8);
        out[i++] = (unsigned char)n;
    } else {
        out[1] = 0x80 | 127;
        for (int shift = 56; shift >= 0; shift -= 8)
            out[i++] = (unsigned char)(n >> shift);
    }
    out[i++] = (unsigned char)(key >> 24);
    out[i++] = (unsigned char)(key >> 16);
    out[i++] = (unsigned char)(key >> 8);
    out[i++] = (unsigned char)key;
    return i;
}

/* dst[i] = src[i] ^ key byte (offset + i) % 4; dst may be src. Whole 8-byte words first: the
 * pattern repeats every 4 bytes, so one word of it serves every word of the payload. */
static void mask_copy(unsigned char *dst, const unsigned char *src, size_t n, uint32_t key,
                      uint64_t offset)
{
    unsigned char k[4] = {(unsigned char)(key >> 24), (unsigned char)(key >> 16),
                          (unsigned char)(key >> 8), (unsigned char)key};
    unsigned char pattern[8];
    for (size_t j = 0; j < 8; j++)
        pattern[j] = k[(offset + j) & 3];
    uint64_t word;
    memcpy(&word, pattern, 8); /* native order on both sides, so no byte swapping */
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= word;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ pattern[i & 7];
}

void ws_wire_mask(unsigned char *p, size_t n, uint32_t key, uint64_t offset)
{
    if (p) mask_copy(p, p, n, key, offset);
}

static enum wm_err append_frame(struct buf *out, unsigned opcode, const void *data, size_t n,
                                uint32_t key)
{
    if (!out || (!data && n)) return WM_ERR_INVAL;
    if (n > SIZE_MAX - WS_MAX_FRAME_HEADER) return WM_ERR_TOOBIG;
    unsigned char head[WS_MAX_FRAME_HEADER];
    size_t hn = ws_wire_header(head, opcode, n, key);
    if (buf_reserve(out, hn + n) != WM_OK) return WM_ERR_NOMEM;
    unsigned char *w = out->data + out->len;
    memcpy(w, head, hn);
    if (n) mask_copy(w + hn, data, n, key, 0);
    out->len += hn + n;
    return WM_OK;
}

enum wm_err ws_wire_binary(struct buf *out, const void *data, size_t n, uint32_t key)
{
    return append_frame(out, WS_OP_BINARY, data, n, key);
}

enum wm_err ws_wire_wrap(struct buf *b, size_t from, uint32_t key)
{
    if (!b || from > b->len) return WM_ERR_INVAL;
    size_t n = b->len - from;
    if (n == 0) return WM_OK;
    unsigned char head[WS_MAX_FRAME_HEADER];
    size_t hn = ws_wire_header(head, WS_OP_BINARY, n, key);
    if (buf_reserve(b, hn) != WM_OK) return WM_ERR_NOMEM;
    unsigned char *p = b->data + from;
    memmove(p + hn, p, n);
    memcpy(p, head, hn);
    mask_copy(p + hn, p + hn, n, key, 0);
    b->len += hn;
    return WM_OK;
}

enum wm_err ws_wire_control(struct buf *out, unsigned opcode, const void *data, size_t n,
                            uint32_t key)
{
    if (opcode != WS_OP_PING && opcode != WS_OP_PONG) return WM_ERR_INVAL;
    if (n > WS_MAX_CONTROL) return WM_ERR_TOOBIG;
    return append_frame(out, opcode, data, n, key);
}

/* Codes an endpoint may put in a close frame (RFC 6455, 7.4; 1012 to 1014 registered since):
 * 1004 is reserved, 1005, 1006 and 1015 only ever stand for what the wire did not say. */
static bool close_code_ok(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

enum wm_err ws_wire_close(struct buf *out, unsigned code, const char *reason, uint32_t key)
{
    size_t rn = reason ? strlen(reason) : 0;
    if (code == 0 && rn) return WM_ERR_INVAL; /* a reason goes after a code or not at all */
    if (code != 0 && !close_code_ok(code)) return WM_ERR_INVAL;
    if (rn > MAX_CLOSE_REASON) return WM_ERR_TOOBIG;
    unsigned char payload[WS_MAX_CONTROL];
    size_t n = 0;
    if (code) {
        payload[0] = (unsigned char)(code >> 8);
        payload[1] = (unsigned char)code;
        if (rn) memcpy(payload + 2, reason, rn);
        n = 2 + rn;
    }
    return append_frame(out, WS_OP_CLOSE, payload, n, key);
}

/* ---- frames from the server ---- */

enum { D_HEAD = 0, D_DATA, D_CONTROL, D_CLOSED, D_FAILED };

void ws_wire_decoder_init(struct ws_decoder *d, uint64_t max_frame)
{
    if (!d) return;
    memset(d, 0, sizeof *d);
    d->max_frame = max_frame ? max_frame : RFC_MAX_LENGTH;
    d->state = D_HEAD;
}

__attribute__((format(printf, 3, 4))) static enum ws_event
broke(struct ws_decoder *d, unsigned code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->why, sizeof d->why, fmt, ap);
    va_end(ap);
    d->close_code = code;
    d->state = D_FAILED;
    return WS_ERROR;
}

static bool is_control(unsigned opcode)
{
    return opcode & 0x8;
}

/* The header's size, known once its first two bytes are. Server frames carry no masking key. */
static size_t head_size(const unsigned char *head)
{
    unsigned len7 = head[1] & 0x7F;
    return len7 == 127 ? 10 : len7 == 126 ? 4 : 2;
}

/* What the first two bytes alone tell; the decoder refuses as soon as it can. */
static int check_start(struct ws_decoder *d)
{
    unsigned b0 = d->head[0], b1 = d->head[1];
    unsigned op = b0 & 0x0F;
    bool fin = b0 & 0x80;
    if (b0 & 0x70) return broke(d, WS_CLOSE_PROTOCOL, "reserved bits set in a WebSocket frame");
    if (b1 & 0x80) return broke(d, WS_CLOSE_PROTOCOL, "masked frame from the server");
    switch (op) {
    case WS_OP_CONTINUATION:
        if (!d->in_message)
            return broke(d, WS_CLOSE_PROTOCOL, "continuation frame with no message to continue");
        break;
    case WS_OP_BINARY:
        if (d->in_message)
            return broke(d, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
        break;
    case WS_OP_TEXT:
        return broke(d, WS_CLOSE_UNSUPPORTED, "text frame: MQTT over WebSocket is binary");
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (!fin) return broke(d, WS_CLOSE_PROTOCOL, "fragmented control frame");
        if ((b1 & 0x7F) > WS_MAX_CONTROL)
            return broke(d, WS_CLOSE_PROTOCOL, "control frame over 125 bytes");
        break;
    default:
        return broke(d, WS_CLOSE_PROTOCOL, "unknown WebSocket opcode %u", op);
    }
    return CONTINUE;
}

/* The whole header is in: the payload comes next. */
static int begin_payload(struct ws_decoder *d)
{
    unsigned op = d->head[0] & 0x0F;
    uint64_t n = d->head[1] & 0x7F;
    if (d->head_len > 2) {
        n = 0;
        for (size_t i = 2; i < d->head_len; i++)
            n = n << 8 | d->head[i];
    }
    if (n > RFC_MAX_LENGTH) return broke(d, WS_CLOSE_PROTOCOL, "frame length with its top bit set");
    d->opcode = op;
    d->final = d->head[0] & 0x80;
    d->left = n;
    d->head_len = 0;
    if (is_control(op)) {
        d->control_len = 0;
        d->state = D_CONTROL;
        return CONTINUE;
    }
    if (n > d->max_frame)
        return broke(d, WS_CLOSE_TOO_BIG, "frame of %llu bytes over the cap of %llu",
                     (unsigned long long)n, (unsigned long long)d->max_frame);
    d->in_message = !d->final;
    d->state = n ? D_DATA : D_HEAD;
    return CONTINUE;
}

/* A control frame's payload is whole. */
static enum ws_event control_done(struct ws_decoder *d, const unsigned char **data, size_t *dlen)
{
    d->state = D_HEAD;
    *data = d->control;
    *dlen = d->control_len;
    if (d->opcode == WS_OP_PING) return WS_PING;
    if (d->opcode == WS_OP_PONG) return WS_PONG;
    if (d->control_len == 1) return broke(d, WS_CLOSE_PROTOCOL, "close frame of one byte");
    d->close_code = WS_CLOSE_NO_STATUS;
    if (d->control_len >= 2) {
        unsigned code = (unsigned)d->control[0] << 8 | d->control[1];
        if (!close_code_ok(code))
            return broke(d, WS_CLOSE_PROTOCOL, "close frame with code %u", code);
        d->close_code = code;
        *data = d->control + 2;
        *dlen = d->control_len - 2;
    }
    d->state = D_CLOSED;
    return WS_CLOSE;
}

static size_t min_size(size_t a, uint64_t b)
{
    return (uint64_t)a < b ? a : (size_t)b;
}

enum ws_event ws_wire_decode(struct ws_decoder *d, const unsigned char *buf, size_t len,
                             size_t *used, const unsigned char **data, size_t *dlen)
{
    if (!d || !used || !data || !dlen) return WS_ERROR;
    *used = 0;
    *data = NULL;
    *dlen = 0;
    if (d->state == D_FAILED) return WS_ERROR;
    if (d->state == D_CLOSED) {
        *data = d->control_len >= 2 ? d->control + 2 : d->control;
        *dlen = d->control_len >= 2 ? d->control_len - 2 : 0;
        return WS_CLOSE;
    }
    if (!buf) {
        buf = (const unsigned char *)"";
        len = 0;
    }
    size_t off = 0;
    int ev = CONTINUE;
    while (ev == CONTINUE) {
        size_t avail = len - off;
        if (d->state == D_DATA) {
            if (!avail) break;
            size_t n = min_size(avail, d->left);
            *data = buf + off;
            *dlen = n;
            off += n;
            d->left -= n;
            if (d->left == 0) d->state = D_HEAD;
            ev = WS_DATA;
        } else if (d->state == D_CONTROL) {
            size_t n = min_size(avail, d->left);
            if (n) memcpy(d->control + d->control_len, buf + off, n);
            d->control_len += n;
            off += n;
            d->left -= n;
            if (d->left > 0) break;
            ev = control_done(d, data, dlen);
        } else {
            if (!avail) break;
            size_t need = d->head_len < 2 ? 2 : head_size(d->head);
            size_t n = min_size(avail, need - d->head_len);
            memcpy(d->head + d->head_len, buf + off, n);
            bool had_start = d->head_len >= 2;
            d->head_len += n;
            off += n;
            if (d->head_len < 2) continue;
            if (!had_start && (ev = check_start(d)) != CONTINUE) break;
            if (d->head_len == head_size(d->head)) ev = begin_payload(d);
        }
    }
    *used = off;
    return ev == CONTINUE ? WS_MORE : (enum ws_event)ev;
}
