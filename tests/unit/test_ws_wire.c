/* test_ws_wire.c: the WebSocket client wire format: the RFC 6455 examples, the handshake request
 * byte for byte, responses fed whole and a byte at a time, every refusal, masked frames at each
 * length boundary, and server frames decoded whole, a byte at a time and cut in two everywhere,
 * with the same outcome every way. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "bytes.h"
#include "test.h"
#include "ws_wire.h"

#define EXPECT_BYTES(got, n, want) expect_bytes(__LINE__, got, n, want)
static void expect_bytes(int line, const unsigned char *got, size_t n, struct bytes want)
{
    if (n == want.n && memcmp(got, want.p, n) == 0) {
        test_passed++;
        return;
    }
    fprintf(stderr, "%s:%d: bytes differ\n", __FILE__, line);
    hexdump("got ", got, n);
    hexdump("want", want.p, want.n);
    test_failed++;
}

/* ---- handshake ---- */

/* RFC 6455, 1.3 and 4.1: this nonce is the key "dGhlIHNhbXBsZSBub25jZQ==". */
static const char sample_nonce[] = "the sample nonce";
#define SAMPLE_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static struct ws_request sample_request(void)
{
    struct ws_request rq = {.host = "broker.example", .port = 80};
    memcpy(rq.nonce, sample_nonce, WS_NONCE_BYTES);
    return rq;
}

static void accept_value(void)
{
    char out[29];
    ASSERT_EQ_INT(ws_wire_accept(SAMPLE_KEY, out, sizeof out), WM_OK);
    ASSERT_EQ_STR(out, SAMPLE_ACCEPT);
    ASSERT_EQ_INT(ws_wire_accept(SAMPLE_KEY, out, 28), WM_ERR_TOOBIG);
}

static void requests(void)
{
    struct ws_handshake h;
    char out[1024];
    struct ws_request rq = sample_request();
    size_t n = ws_wire_request(&h, &rq, out, sizeof out);
    ASSERT_EQ_STR(out, "GET /mqtt HTTP/1.1\r\n"
                       "Host: broker.example\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Key: " SAMPLE_KEY "\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Protocol: mqtt\r\n"
                       "\r\n");
    ASSERT_EQ_INT(n, strlen(out));
    ASSERT_EQ_STR(h.key, SAMPLE_KEY);

    /* wss on its default port, then on another; a path; credentials; a user agent. */
    rq.tls = true;
    rq.port = 443;
    rq.path = "/ws?x=1";
    rq.user = "Aladdin";
    rq.password = "open sesame";
    rq.user_agent = "wmesh/0.1";
    n = ws_wire_request(&h, &rq, out, sizeof out);
    ASSERT_EQ_STR(out, "GET /ws?x=1 HTTP/1.1\r\n"
                       "Host: broker.example\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Key: " SAMPLE_KEY "\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Protocol: mqtt\r\n"
                       "User-Agent: wmesh/0.1\r\n"
                       "Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"
                       "\r\n");
    rq.port = 80; /* not wss's default */
    rq.user = NULL;
    rq.user_agent = NULL;
    rq.path = "";
    n = ws_wire_request(&h, &rq, out, sizeof out);
    ASSERT_TRUE(strstr(out, "GET /mqtt HTTP/1.1\r\nHost: broker.example:80\r\n") == out);
    rq.tls = false;
    rq.port = 9001;
    rq.host = "2001:db8::1";
    n = ws_wire_request(&h, &rq, out, sizeof out);
    ASSERT_TRUE(strstr(out, "\r\nHost: [2001:db8::1]:9001\r\n") != NULL);

    /* Too small a buffer: the length needed, and a second call with it works. */
    char small[16];
    size_t want = ws_wire_request(&h, &rq, small, sizeof small);
    ASSERT_EQ_INT(want, n);
    ASSERT_EQ_INT(ws_wire_request(&h, &rq, NULL, 0), n);
    ASSERT_EQ_INT(ws_wire_request(&h, &rq, out, n + 1), n);

    /* What cannot be sent. */
    static const char *bad_hosts[] = {"", "a b", "a/b", "a\r\nX: y", "u@h", "[::1]"};
    for (size_t i = 0; i < sizeof bad_hosts / sizeof bad_hosts[0]; i++) {
        struct ws_request r = sample_request();
        r.host = bad_hosts[i];
        ASSERT_EQ_INT(ws_wire_request(&h, &r, out, sizeof out), 0);
    }
    static const char *bad_paths[] = {"mqtt", "/a b", "/a\r\n", "/a#b", "/\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
        struct ws_request r = sample_request();
        r.path = bad_paths[i];
        ASSERT_EQ_INT(ws_wire_request(&h, &r, out, sizeof out), 0);
    }
    struct ws_request r = sample_request();
    r.port = 0;
    ASSERT_EQ_INT(ws_wire_request(&h, &r, out, sizeof out), 0);
    r = sample_request();
    r.user_agent = "x\r\nEvil: 1";
    ASSERT_EQ_INT(ws_wire_request(&h, &r, out, sizeof out), 0);
    r = sample_request();
    char long_user[1100];
    memset(long_user, 'u', sizeof long_user - 1);
    long_user[sizeof long_user - 1] = '\0';
    r.user = long_user;
    ASSERT_EQ_INT(ws_wire_request(&h, &r, out, sizeof out), 0);
    ASSERT_EQ_INT(ws_wire_request(NULL, &r, out, sizeof out), 0);
}

/* What feeding one response gave. */
struct hs_outcome {
    enum ws_hs_result result;
    size_t used;
    int status;
    bool no_subprotocol;
    char why[WS_WHY_LEN];
};

/* Feeds resp as arriving `step` bytes at a time (0: whole), each call with all bytes so far. */
static struct hs_outcome handshake(const char *resp, size_t len, size_t step)
{
    struct ws_handshake h;
    struct ws_request rq = sample_request();
    char req[512];
    struct hs_outcome o = {0};
    if (ws_wire_request(&h, &rq, req, sizeof req) >= sizeof req) return o;
    size_t have = step ? 0 : len;
    for (;;) {
        if (step) have = have + step < len ? have + step : len;
        o.result = ws_wire_handshake(&h, resp, have, &o.used);
        if (o.result != WS_HS_MORE || have == len) break;
        if (o.used != 0) o.result = WS_HS_ERROR; /* MORE must use nothing */
    }
    o.status = h.status;
    o.no_subprotocol = h.no_subprotocol;
    memcpy(o.why, h.why, sizeof o.why);
    return o;
}

/* The same outcome whole and a byte at a time. */
#define EXPECT_HS(resp, result, why) expect_hs(__LINE__, resp, strlen(resp), result, why)
static struct hs_outcome expect_hs(int line, const char *resp, size_t len, enum ws_hs_result result,
                                   const char *why)
{
    struct hs_outcome whole = handshake(resp, len, 0);
    struct hs_outcome bytewise = handshake(resp, len, 1);
    bool ok = whole.result == result && bytewise.result == result && whole.used == bytewise.used &&
              strcmp(whole.why, bytewise.why) == 0 &&
              (result != WS_HS_ERROR || strcmp(whole.why, why) == 0);
    if (ok) {
        test_passed++;
    } else {
        fprintf(
            stderr, "%s:%d: handshake: want %d \"%s\", got %d \"%s\" whole, %d \"%s\" bytewise\n",
            __FILE__, line, result, why, whole.result, whole.why, bytewise.result, bytewise.why);
        test_failed++;
    }
    return whole;
}

#define GOOD_HEAD                                                                                  \
    "HTTP/1.1 101 Switching Protocols\r\n"                                                         \
    "Upgrade: websocket\r\n"                                                                       \
    "Connection: Upgrade\r\n"                                                                      \
    "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n"                                                  \
    "Sec-WebSocket-Protocol: mqtt\r\n"                                                             \
    "\r\n"

static void responses(void)
{
    /* What mosquitto answers, with the first frame (a CONNACK) in the same read. */
    const char resp[] = GOOD_HEAD "\x82\x04\x20\x02\x00\x00";
    struct hs_outcome o = expect_hs(__LINE__, resp, sizeof resp - 1, WS_HS_DONE, "");
    ASSERT_EQ_INT(o.used, strlen(GOOD_HEAD));
    ASSERT_EQ_INT(o.status, 101);
    ASSERT_TRUE(!o.no_subprotocol);
    /* Every place the head may stop in: MORE until its last byte. */
    for (size_t k = 0; k < strlen(GOOD_HEAD); k++) {
        o = handshake(GOOD_HEAD, k, 0);
        ASSERT_EQ_INT(o.result, WS_HS_MORE);
    }

    /* Case, list and whitespace variants, bare LF, other fields: fine. */
    EXPECT_HS("HTTP/1.1 101\n"
              "UPGRADE:   WebSocket  \n"
              "Server: nginx\n"
              " folded continuation of a field we ignore\n"
              "connection: keep-alive, upgrade\n"
              "sec-websocket-accept:" SAMPLE_ACCEPT "\n"
              "Sec-WebSocket-Extensions:\n"
              "Sec-WebSocket-Protocol: mqtt\n"
              "\n",
              WS_HS_DONE, "");
    /* No subprotocol named: accepted, and said. */
    o = EXPECT_HS(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n\r\n",
        WS_HS_DONE, "");
    ASSERT_TRUE(o.no_subprotocol);

    /* Refusals. */
    o = EXPECT_HS("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", WS_HS_ERROR,
                  "HTTP 404 from the WebSocket endpoint");
    ASSERT_EQ_INT(o.status, 404);
    EXPECT_HS("HTTP/1.1 401 Unauthorized\r\n\r\n", WS_HS_ERROR,
              "HTTP 401 from the WebSocket endpoint (credentials refused)");
    EXPECT_HS("HTTP/1.1 301 Moved\r\n\r\n", WS_HS_ERROR,
              "HTTP 301 from the WebSocket endpoint (redirects are not followed)");
    EXPECT_HS("HTTP/1.1 200 OK\r\n", WS_HS_ERROR, "HTTP 200 from the WebSocket endpoint");
    EXPECT_HS("SSH-2.0-OpenSSH_9.2\r\n", WS_HS_ERROR,
              "malformed status line from the WebSocket endpoint");
    EXPECT_HS("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n\r\n",
              WS_HS_ERROR, "no Upgrade: websocket in the handshake");
    EXPECT_HS("HTTP/1.1 101 OK\r\nUpgrade: h2c\r\n", WS_HS_ERROR, "Upgrade is not websocket");
    EXPECT_HS("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
              "Sec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n\r\n",
              WS_HS_ERROR, "no Connection: Upgrade in the handshake");
    EXPECT_HS("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", WS_HS_ERROR,
              "no Sec-WebSocket-Accept in the handshake");
    EXPECT_HS("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOA=\r\n",
              WS_HS_ERROR, "bad Sec-WebSocket-Accept");
    EXPECT_HS("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: " SAMPLE_ACCEPT "x\r\n", WS_HS_ERROR,
              "bad Sec-WebSocket-Accept");
    EXPECT_HS("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: " SAMPLE_ACCEPT
              "\r\nSec-WebSocket-Accept: " SAMPLE_ACCEPT "\r\n",
              WS_HS_ERROR, "repeated Sec-WebSocket-Accept");
    EXPECT_HS("HTTP/1.1 101 OK\r\nSec-WebSocket-Protocol: mqttv3.1\r\n", WS_HS_ERROR,
              "server chose a subprotocol other than mqtt");
    EXPECT_HS("HTTP/1.1 101 OK\r\nSec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Protocol: mqtt\r\n",
              WS_HS_ERROR, "repeated Sec-WebSocket-Protocol");
    EXPECT_HS("HTTP/1.1 101 OK\r\nSec-WebSocket-Extensions: permessage-deflate\r\n", WS_HS_ERROR,
              "server chose a WebSocket extension we did not offer");
    EXPECT_HS("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n  x\r\n", WS_HS_ERROR,
              "folded header field in the handshake");
    EXPECT_HS("HTTP/1.1 101 OK\r\nNo colon\r\n", WS_HS_ERROR,
              "malformed header field in the handshake");
    EXPECT_HS("HTTP/1.1 101 OK\r\nBad name: x\r\n", WS_HS_ERROR,
              "malformed header field name in the handshake");
    EXPECT_HS("HTTP/1.1 101 OK\r\nUpgrade: web\rsocket\r\n", WS_HS_ERROR,
              "control character in the handshake response");
    static const char nul[] = "HTTP/1.1 101 OK\r\nX: a\0b\r\n";
    expect_hs(__LINE__, nul, sizeof nul - 1, WS_HS_ERROR,
              "control character in the handshake response");

    /* The head's cap: a long field is fine until the head passes 8 KiB. */
    static char big[WS_MAX_HEAD + 64];
    size_t fill = WS_MAX_HEAD - strlen(GOOD_HEAD) - strlen("X-Pad: \r\n");
    int n = snprintf(big, sizeof big, "%.*s", (int)(strlen(GOOD_HEAD) - 2), GOOD_HEAD);
    n += snprintf(big + n, sizeof big - (size_t)n, "X-Pad: %*s\r\n\r\n", (int)fill, "");
    ASSERT_EQ_INT(n, WS_MAX_HEAD);
    o = expect_hs(__LINE__, big, (size_t)n, WS_HS_DONE, "");
    ASSERT_EQ_INT(o.used, WS_MAX_HEAD);
    n = snprintf(big, sizeof big, "%.*s", (int)(strlen(GOOD_HEAD) - 2), GOOD_HEAD);
    n += snprintf(big + n, sizeof big - (size_t)n, "X-Pad: %*s\r\n\r\n", (int)fill + 1, "");
    expect_hs(__LINE__, big, (size_t)n, WS_HS_ERROR, "handshake response over 8 KiB");

    /* Once done or refused, it stays so. */
    struct ws_handshake h;
    struct ws_request rq = sample_request();
    char req[512];
    size_t used = 99;
    ASSERT_TRUE(ws_wire_request(&h, &rq, req, sizeof req) < sizeof req);
    ASSERT_EQ_INT(ws_wire_handshake(&h, resp, sizeof resp - 1, &used), WS_HS_DONE);
    ASSERT_EQ_INT(ws_wire_handshake(&h, resp, sizeof resp - 1, &used), WS_HS_DONE);
    ASSERT_EQ_INT(used, strlen(GOOD_HEAD));
    ASSERT_EQ_INT(ws_wire_request(&h, &rq, req, sizeof req) < sizeof req, 1);
    ASSERT_EQ_INT(ws_wire_handshake(&h, "HTTP/1.1 500 x\r\n", 16, &used), WS_HS_ERROR);
    ASSERT_EQ_INT(ws_wire_handshake(&h, resp, sizeof resp - 1, &used), WS_HS_ERROR);
    ASSERT_EQ_INT(used, 0);
}

/* ---- frames from the client ---- */

/* The payload of the masked frame at f, unmasked into out; its length, or SIZE_MAX when the
 * frame is not final, masked and whole. */
static size_t unmask_frame(const unsigned char *f, size_t n, unsigned *opcode, unsigned char *out)
{
    if (n < 6 || !(f[0] & 0x80) || !(f[1] & 0x80)) return SIZE_MAX;
    *opcode = f[0] & 0x0F;
    uint64_t len = f[1] & 0x7F;
    size_t i = 2;
    if (len >= 126) {
        size_t ext = len == 126 ? 2 : 8;
        len = 0;
        for (size_t k = 0; k < ext; k++)
            len = len << 8 | f[i++];
    }
    const unsigned char *key = f + i;
    i += 4;
    if (n - i != len) return SIZE_MAX;
    for (size_t k = 0; k < len; k++)
        out[k] = f[i + k] ^ key[k & 3];
    return (size_t)len;
}

static void rfc_examples(void)
{
    /* RFC 6455, 5.7: "Hello" masked with 37 fa 21 3d, as a ping here and as a pong. */
    struct buf b = {0};
    ASSERT_EQ_INT(ws_wire_control(&b, WS_OP_PING, "Hello", 5, 0x37fa213d), WM_OK);
    EXPECT_BYTES(b.data, b.len,
                 B(0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58));
    b.len = 0;
    ASSERT_EQ_INT(ws_wire_control(&b, WS_OP_PONG, "Hello", 5, 0x37fa213d), WM_OK);
    EXPECT_BYTES(b.data, b.len,
                 B(0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58));
    b.len = 0;
    ASSERT_EQ_INT(ws_wire_binary(&b, "Hello", 5, 0x37fa213d), WM_OK);
    EXPECT_BYTES(b.data, b.len,
                 B(0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58));
    buf_free(&b);
}

static void lengths(void)
{
    static const size_t sizes[] = {0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70001};
    static const size_t header[] = {6, 6, 6, 6, 6, 6, 8, 8, 8, 14, 14};
    unsigned char *data = malloc(70001), *back = malloc(70001);
    ASSERT_TRUE(data && back);
    if (!data || !back) return;
    for (size_t i = 0; i < 70001; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    struct ws_keys keys = {42};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        uint32_t key = ws_wire_next_key(&keys);
        struct buf b = {0};
        ASSERT_EQ_INT(ws_wire_binary(&b, data, n, key), WM_OK);
        ASSERT_EQ_INT(b.len, header[s] + n);
        unsigned op = 99;
        ASSERT_EQ_INT(unmask_frame(b.data, b.len, &op, back), n);
        ASSERT_EQ_INT(op, WS_OP_BINARY);
        ASSERT_TRUE(n == 0 || memcmp(back, data, n) == 0);

        /* The same frame made in place after bytes already queued. */
        struct buf w = {0};
        ASSERT_EQ_INT(buf_reserve(&w, 3 + n), WM_OK);
        memcpy(w.data, "abc", 3);
        if (n) memcpy(w.data + 3, data, n);
        w.len = 3 + n;
        ASSERT_EQ_INT(ws_wire_wrap(&w, 3, key), WM_OK);
        ASSERT_EQ_INT(w.len, n ? b.len + 3 : 3); /* nothing to wrap, nothing added */
        if (n) ASSERT_TRUE(memcmp(w.data, "abc", 3) == 0 && memcmp(w.data + 3, b.data, b.len) == 0);
        buf_free(&w);
        buf_free(&b);
    }
    unsigned char head[WS_MAX_FRAME_HEADER];
    ASSERT_EQ_INT(ws_wire_header(head, WS_OP_BINARY, 125, 0x01020304), 6);
    EXPECT_BYTES(head, 6, B(0x82, 0xfd, 1, 2, 3, 4));
    ASSERT_EQ_INT(ws_wire_header(head, WS_OP_BINARY, 126, 0x01020304), 8);
    EXPECT_BYTES(head, 8, B(0x82, 0xfe, 0x00, 0x7e, 1, 2, 3, 4));
    ASSERT_EQ_INT(ws_wire_header(head, WS_OP_BINARY, 65535, 0x01020304), 8);
    EXPECT_BYTES(head, 8, B(0x82, 0xfe, 0xff, 0xff, 1, 2, 3, 4));
    ASSERT_EQ_INT(ws_wire_header(head, WS_OP_BINARY, 65536, 0x01020304), 14);
    EXPECT_BYTES(head, 14, B(0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4));

    /* Masking in pieces at any offset equals masking whole; twice unmasks. */
    for (size_t n = 0; n <= 40; n++) {
        unsigned char whole[40], pieces[40];
        memcpy(whole, data, n);
        memcpy(pieces, data, n);
        ws_wire_mask(whole, n, 0xa1b2c3d4, 0);
        bool naive = true;
        for (size_t i = 0; i < n; i++)
            naive &= whole[i] == (data[i] ^ (unsigned char)(0xa1b2c3d4u >> (24 - 8 * (i & 3))));
        ASSERT_TRUE(naive);
        for (size_t cut = 0; cut <= n; cut += 3) {
            memcpy(pieces, data, n);
            ws_wire_mask(pieces, cut, 0xa1b2c3d4, 0);
            ws_wire_mask(pieces + cut, n - cut, 0xa1b2c3d4, cut);
            ASSERT_TRUE(memcmp(pieces, whole, n) == 0);
        }
        ws_wire_mask(whole, n, 0xa1b2c3d4, 0);
        ASSERT_TRUE(memcmp(whole, data, n) == 0);
    }
    free(data);
    free(back);
}

static void control_frames(void)
{
    struct buf b = {0};
    unsigned char back[WS_MAX_CONTROL];
    unsigned op = 0;
    ASSERT_EQ_INT(ws_wire_close(&b, WS_CLOSE_NORMAL, "bye", 0x11223344), WM_OK);
    ASSERT_EQ_INT(unmask_frame(b.data, b.len, &op, back), 5);
    ASSERT_EQ_INT(op, WS_OP_CLOSE);
    EXPECT_BYTES(back, 5, B(0x03, 0xe8, 'b', 'y', 'e'));
    b.len = 0;
    ASSERT_EQ_INT(ws_wire_close(&b, 0, NULL, 0x11223344), WM_OK);
    EXPECT_BYTES(b.data, b.len, B(0x88, 0x80, 0x11, 0x22, 0x33, 0x44));
    b.len = 0;
    ASSERT_EQ_INT(ws_wire_close(&b, 0, "why", 1), WM_ERR_INVAL);
    ASSERT_EQ_INT(ws_wire_close(&b, WS_CLOSE_NO_STATUS, NULL, 1), WM_ERR_INVAL);
    ASSERT_EQ_INT(ws_wire_close(&b, 999, NULL, 1), WM_ERR_INVAL);
    ASSERT_EQ_INT(ws_wire_close(&b, 5000, NULL, 1), WM_ERR_INVAL);
    char reason[125];
    memset(reason, 'r', sizeof reason);
    reason[123] = '\0';
    ASSERT_EQ_INT(ws_wire_close(&b, 4000, reason, 1), WM_OK);
    ASSERT_EQ_INT(b.len, 2 + 4 + 125);
    reason[123] = 'r';
    reason[124] = '\0';
    ASSERT_EQ_INT(ws_wire_close(&b, 4000, reason, 1), WM_ERR_TOOBIG);
    ASSERT_EQ_INT(b.len, 2 + 4 + 125); /* unchanged */
    b.len = 0;
    ASSERT_EQ_INT(ws_wire_control(&b, WS_OP_PONG, reason, 125, 1), WM_OK);
    ASSERT_EQ_INT(ws_wire_control(&b, WS_OP_PONG, reason, 126, 1), WM_ERR_TOOBIG);
    ASSERT_EQ_INT(ws_wire_control(&b, WS_OP_BINARY, reason, 1, 1), WM_ERR_INVAL);
    ASSERT_EQ_INT(ws_wire_binary(&b, NULL, 1, 1), WM_ERR_INVAL);
    ASSERT_EQ_INT(ws_wire_wrap(&b, b.len + 1, 1), WM_ERR_INVAL);
    buf_free(&b);

    /* Keys: the same seed, the same keys; successive keys differ. */
    struct ws_keys a = {7}, c = {7};
    uint32_t k1 = ws_wire_next_key(&a);
    ASSERT_EQ_INT(k1, ws_wire_next_key(&c));
    ASSERT_TRUE(ws_wire_next_key(&a) != k1);
}

/* ---- frames from the server ---- */

/* What decoding a stream gave: data bytes, events in a line of text, the end. */
struct outcome {
    unsigned char *data;
    size_t data_len;
    char events[512];
    enum ws_event last;
    unsigned close_code;
    char why[WS_WHY_LEN];
    size_t consumed;
    bool outside; /* data pointing outside the piece fed */
};

static void note(struct outcome *o, const char *what, const unsigned char *p, size_t n)
{
    size_t len = strlen(o->events);
    snprintf(o->events + len, sizeof o->events - len, "%s(%.*s) ", what, (int)n, (const char *)p);
}

/* Feeds one piece; false once the stream ended (close or error). */
static bool decode_piece(struct ws_decoder *d, const unsigned char *buf, size_t len,
                         struct outcome *o)
{
    while (len > 0) {
        size_t used = 0, dlen = 0;
        const unsigned char *data = NULL;
        enum ws_event ev = ws_wire_decode(d, buf, len, &used, &data, &dlen);
        if (used > len) o->outside = true;
        o->consumed += used;
        if (ev == WS_DATA && (data < buf || data + dlen > buf + used || dlen == 0))
            o->outside = true;
        switch (ev) {
        case WS_MORE:
            if (used != len) o->outside = true;
            break;
        case WS_DATA:
            memcpy(o->data + o->data_len, data, dlen);
            o->data_len += dlen;
            break;
        case WS_PING:
            note(o, "ping", data, dlen);
            break;
        case WS_PONG:
            note(o, "pong", data, dlen);
            break;
        case WS_CLOSE:
            note(o, "close", data, dlen);
            /* fallthrough */
        case WS_ERROR:
            o->last = ev;
            o->close_code = d->close_code;
            memcpy(o->why, ev == WS_ERROR ? d->why : "", ev == WS_ERROR ? sizeof o->why : 1);
            return false;
        }
        buf += used;
        len -= used;
    }
    o->last = WS_MORE;
    return true;
}

/* Decodes s cut at the places in cuts (ascending), each piece in a buffer of its own. */
static void decode_cut(const unsigned char *s, size_t n, uint64_t cap, const size_t *cuts,
                       size_t ncuts, struct outcome *o)
{
    struct ws_decoder d;
    ws_wire_decoder_init(&d, cap);
    size_t from = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        unsigned char *piece = malloc(to - from + 1);
        memcpy(piece, s + from, to - from);
        bool more = decode_piece(&d, piece, to - from, o);
        free(piece);
        if (!more) return;
        from = to;
    }
}

static bool same(const struct outcome *a, const struct outcome *b)
{
    return a->data_len == b->data_len && memcmp(a->data, b->data, a->data_len) == 0 &&
           strcmp(a->events, b->events) == 0 && a->last == b->last &&
           a->close_code == b->close_code && strcmp(a->why, b->why) == 0 &&
           a->consumed == b->consumed && !a->outside && !b->outside;
}

static void outcome_init(struct outcome *o, size_t n)
{
    memset(o, 0, sizeof *o);
    o->data = malloc(n + 1);
}

/* Decodes s whole, a byte at a time and (when every_cut) cut in two at each place: the same
 * outcome every way, returned in *out (the caller frees out->data). */
#define DECODE(s, n, cap, every_cut, out) decode_all(__LINE__, s, n, cap, every_cut, out)
static void decode_all(int line, const unsigned char *s, size_t n, uint64_t cap, bool every_cut,
                       struct outcome *out)
{
    outcome_init(out, n);
    decode_cut(s, n, cap, NULL, 0, out);
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    struct outcome o;
    outcome_init(&o, n);
    decode_cut(s, n, cap, cuts, n ? n - 1 : 0, &o);
    bool ok = same(out, &o);
    for (size_t k = 1; every_cut && ok && k < n; k++) {
        free(o.data);
        outcome_init(&o, n);
        decode_cut(s, n, cap, &k, 1, &o);
        ok = same(out, &o);
    }
    if (ok) {
        test_passed++;
    } else {
        fprintf(stderr, "%s:%d: decoding in pieces differs: \"%s\" %d \"%s\" vs \"%s\" %d \"%s\"\n",
                __FILE__, line, out->events, out->last, out->why, o.events, o.last, o.why);
        test_failed++;
    }
    free(o.data);
    free(cuts);
}

static void decode_stream(void)
{
    /* RFC 6455, 5.7, as binary: a fragmented message with a ping between its fragments, a pong,
     * an empty frame, the 256-byte length form, then a close. */
    static const unsigned char s[] = {
        0x02, 0x03, 'H',  'e',  'l',                                 /* first fragment */
        0x89, 0x05, 'H',  'e',  'l', 'l', 'o',                       /* ping */
        0x00, 0x01, 'l',                                             /* continuation */
        0x80, 0x01, 'o',                                             /* last fragment */
        0x8a, 0x02, 'h',  'i',                                       /* pong */
        0x82, 0x00,                                                  /* empty */
        0x89, 0x00,                                                  /* empty ping */
        0x82, 0x7e, 0x00, 0x03, '1', '2', '3',                       /* 16-bit length */
        0x82, 0x7f, 0,    0,    0,   0,   0,   0, 0, 0x02, '4', '5', /* 64-bit length */
        0x88, 0x05, 0x03, 0xe8, 'b', 'y', 'e',                       /* close */
        0x82, 0x01, 'x',                                             /* never read */
    };
    struct outcome o;
    DECODE(s, sizeof s, 0, true, &o);
    EXPECT_BYTES(o.data, o.data_len, B('H', 'e', 'l', 'l', 'o', '1', '2', '3', '4', '5'));
    ASSERT_EQ_STR(o.events, "ping(Hello) pong(hi) ping() close(bye) ");
    ASSERT_EQ_INT(o.last, WS_CLOSE);
    ASSERT_EQ_INT(o.close_code, 1000);
    ASSERT_EQ_INT(o.consumed, sizeof s - 3);
    free(o.data);

    /* Payloads gathered at the front of the very buffer they came in, as the header allows. */
    unsigned char copy[sizeof s];
    memcpy(copy, s, sizeof s);
    struct ws_decoder g;
    ws_wire_decoder_init(&g, 0);
    size_t at = 0, w = 0;
    bool behind = true;
    for (enum ws_event ev = WS_DATA; ev != WS_CLOSE && ev != WS_ERROR && ev != WS_MORE;) {
        size_t used = 0, dlen = 0;
        const unsigned char *data = NULL;
        ev = ws_wire_decode(&g, copy + at, sizeof copy - at, &used, &data, &dlen);
        if (ev == WS_DATA) {
            behind &= data >= copy + w;
            memmove(copy + w, data, dlen);
            w += dlen;
        }
        at += used;
    }
    ASSERT_TRUE(behind);
    EXPECT_BYTES(copy, w, B('H', 'e', 'l', 'l', 'o', '1', '2', '3', '4', '5'));

    /* A close without a code. */
    DECODE(B(0x88, 0x00).p, 2, 0, true, &o);
    ASSERT_EQ_INT(o.last, WS_CLOSE);
    ASSERT_EQ_INT(o.close_code, WS_CLOSE_NO_STATUS);
    free(o.data);

    /* After a close the decoder stays closed and consumes nothing. */
    struct ws_decoder d;
    ws_wire_decoder_init(&d, 0);
    size_t used = 0, dlen = 0;
    const unsigned char *data = NULL;
    at = sizeof s - 10; /* the close frame */
    ASSERT_EQ_INT(ws_wire_decode(&d, s + at, 7, &used, &data, &dlen), WS_CLOSE);
    ASSERT_EQ_INT(used, 7);
    ASSERT_EQ_INT(ws_wire_decode(&d, s + at + 7, 3, &used, &data, &dlen), WS_CLOSE);
    ASSERT_EQ_INT(used, 0);
    ASSERT_EQ_INT(dlen, 3);
    ASSERT_TRUE(dlen == 3 && memcmp(data, "bye", 3) == 0);
}

/* Frames of 125, 126, 65535 and 65536 bytes, fed whole and a byte at a time. */
static void decode_lengths(void)
{
    static const size_t sizes[] = {125, 126, 65535, 65536};
    size_t total = 0;
    for (size_t i = 0; i < 4; i++)
        total += 10 + sizes[i];
    unsigned char *s = malloc(total), *want = malloc(total);
    size_t n = 0, w = 0;
    for (size_t i = 0; i < 4; i++) {
        size_t len = sizes[i];
        s[n++] = 0x82;
        if (len < 126) {
            s[n++] = (unsigned char)len;
        } else if (len <= 0xFFFF) {
            s[n++] = 126, s[n++] = (unsigned char)(len >> 8), s[n++] = (unsigned char)len;
        } else {
            s[n++] = 127;
            for (int shift = 56; shift >= 0; shift -= 8)
                s[n++] = (unsigned char)((uint64_t)len >> shift);
        }
        for (size_t k = 0; k < len; k++)
            s[n++] = want[w++] = (unsigned char)(k * 31 + i);
    }
    struct outcome o;
    DECODE(s, n, 65536, false, &o);
    ASSERT_EQ_INT(o.last, WS_MORE);
    ASSERT_EQ_INT(o.consumed, n);
    ASSERT_EQ_INT(o.data_len, w);
    ASSERT_TRUE(o.data_len == w && memcmp(o.data, want, w) == 0);
    free(o.data);
    /* One byte under the last frame's length is over the cap. */
    DECODE(s, n, 65535, false, &o);
    ASSERT_EQ_INT(o.last, WS_ERROR);
    ASSERT_EQ_INT(o.close_code, WS_CLOSE_TOO_BIG);
    ASSERT_EQ_STR(o.why, "frame of 65536 bytes over the cap of 65535");
    ASSERT_EQ_INT(o.consumed, n - 65536); /* refused at its header */
    free(o.data);
    free(s);
    free(want);
}

#define REFUSED(code, why, ...) refused(__LINE__, B(__VA_ARGS__), code, why)
static void refused(int line, struct bytes s, unsigned code, const char *why)
{
    struct outcome o;
    decode_all(line, s.p, s.n, 100, true, &o);
    if (o.last == WS_ERROR && o.close_code == code && strcmp(o.why, why) == 0) {
        test_passed++;
    } else {
        fprintf(stderr, "%s:%d: want error %u \"%s\", got event %d, %u \"%s\"\n", __FILE__, line,
                code, why, o.last, o.close_code, o.why);
        test_failed++;
    }
    free(o.data);
}

static void decode_refusals(void)
{
    REFUSED(1002, "masked frame from the server", 0x82, 0x81, 1, 2, 3, 4, 'x');
    /* Refused from its first two bytes: what follows never matters. */
    REFUSED(1002, "masked frame from the server", 0x82, 0xfe);
    REFUSED(1002, "reserved bits set in a WebSocket frame", 0xc2, 0x01, 'x');
    REFUSED(1002, "reserved bits set in a WebSocket frame", 0x92, 0x01, 'x');
    REFUSED(1002, "reserved bits set in a WebSocket frame", 0xa2, 0x01, 'x');
    REFUSED(1002, "unknown WebSocket opcode 3", 0x83, 0x00);
    REFUSED(1002, "unknown WebSocket opcode 11", 0x8b, 0x00);
    REFUSED(1003, "text frame: MQTT over WebSocket is binary", 0x81, 0x05, 'H', 'e', 'l', 'l', 'o');
    REFUSED(1002, "control frame over 125 bytes", 0x89, 0x7e, 0x00, 0x7e);
    REFUSED(1002, "fragmented control frame", 0x09, 0x00);
    REFUSED(1002, "continuation frame with no message to continue", 0x80, 0x01, 'x');
    REFUSED(1002, "new message inside a fragmented one", 0x02, 0x01, 'a', 0x82, 0x01, 'b');
    REFUSED(1009, "frame of 101 bytes over the cap of 100", 0x82, 0x65);
    REFUSED(1002, "frame length with its top bit set", 0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0);
    REFUSED(1002, "close frame of one byte", 0x88, 0x01, 0x03);
    REFUSED(1002, "close frame with code 1005", 0x88, 0x02, 0x03, 0xed);
    REFUSED(1002, "close frame with code 999", 0x88, 0x02, 0x03, 0xe7);
    REFUSED(1002, "close frame with code 5000", 0x88, 0x02, 0x13, 0x88);

    /* A frame of exactly the cap is fine; after an error the decoder stays failed. */
    unsigned char ok[102] = {0x82, 100};
    struct outcome o;
    DECODE(ok, sizeof ok, 100, false, &o);
    ASSERT_EQ_INT(o.last, WS_MORE);
    ASSERT_EQ_INT(o.data_len, 100);
    free(o.data);
    struct ws_decoder d;
    ws_wire_decoder_init(&d, 100);
    size_t used = 9, dlen = 9;
    const unsigned char *data = NULL;
    ASSERT_EQ_INT(ws_wire_decode(&d, (const unsigned char *)"\x81\x00", 2, &used, &data, &dlen),
                  WS_ERROR);
    ASSERT_EQ_INT(ws_wire_decode(&d, ok, sizeof ok, &used, &data, &dlen), WS_ERROR);
    ASSERT_EQ_INT(used, 0);
    ASSERT_EQ_INT(ws_wire_decode(NULL, ok, sizeof ok, &used, &data, &dlen), WS_ERROR);
    ws_wire_decoder_init(&d, 100);
    ASSERT_EQ_INT(ws_wire_decode(&d, NULL, 0, &used, &data, &dlen), WS_MORE);
    ASSERT_EQ_INT(used, 0);
}

int main(void)
{
    accept_value();
    requests();
    responses();
    rfc_examples();
    lengths();
    control_frames();
    decode_stream();
    decode_lengths();
    decode_refusals();
    return TEST_REPORT();
}
