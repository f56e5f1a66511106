/* fuzz_ws_wire.c: libFuzzer harness: any bytes from a server decode as WebSocket frames or fail
 * cleanly, with the same outcome whole or in pieces, data pointing inside what was fed; the same
 * bytes as a handshake response give one verdict however they arrive, and the head ends where
 * it says. Then a masked frame of them unmasks back to them, built by copy or in place. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_wire.h"

#define MAX_FRAME 4096 /* small enough for the fuzzer to reach the cap */

static void check(bool ok)
{
    if (!ok) abort();
}

struct outcome {
    unsigned char *data; /* data bytes, then each control payload, in order */
    size_t len;
    unsigned events; /* a running hash of the control events seen */
    enum ws_event last;
    unsigned close_code;
    char why[WS_WHY_LEN];
    size_t consumed;
};

/* Decodes data in pieces of pseudo-random sizes (whole when seed is 0); each piece is a buffer
 * of its own, freed once decoded, since the decoder keeps nothing of it. */
static void decode(const uint8_t *data, size_t size, uint32_t seed, struct outcome *o)
{
    struct ws_decoder d;
    ws_wire_decoder_init(&d, MAX_FRAME);
    size_t off = 0;
    o->last = WS_MORE;
    while (off < size && o->last == WS_MORE) {
        size_t n = size - off;
        if (seed) {
            n = 1 + (seed >> 16) % 29;
            seed = seed * 1103515245u + 12345u;
            if (n > size - off) n = size - off;
        }
        unsigned char *piece = malloc(n);
        check(piece != NULL);
        memcpy(piece, data + off, n);
        off += n;
        size_t at = 0;
        while (at < n) {
            size_t used = 12345, dlen = 0;
            const unsigned char *p = NULL;
            enum ws_event ev = ws_wire_decode(&d, piece + at, n - at, &used, &p, &dlen);
            check(used <= n - at);
            o->consumed += used;
            if (ev == WS_DATA) check(dlen > 0 && p >= piece + at && p + dlen <= piece + at + used);
            if (ev == WS_PING || ev == WS_PONG || ev == WS_CLOSE) check(dlen <= WS_MAX_CONTROL);
            if (ev == WS_MORE) check(used == n - at);
            if (ev != WS_MORE && ev != WS_ERROR) {
                memcpy(o->data + o->len, p, dlen);
                o->len += dlen;
                if (ev != WS_DATA) o->events = o->events * 31 + (unsigned)ev; /* data: any split */
            }
            at += used;
            if (ev == WS_CLOSE || ev == WS_ERROR) {
                o->last = ev;
                o->close_code = d.close_code;
                if (ev == WS_ERROR) memcpy(o->why, d.why, sizeof o->why);
                check(ev == WS_CLOSE || (d.why[0] && d.close_code >= 1000));
                /* It stays there, consuming nothing. */
                check(ws_wire_decode(&d, piece, n, &used, &p, &dlen) == ev && used == 0);
                break;
            }
        }
        free(piece);
    }
}

/* The bytes as the answer to our request, arriving `step` bytes at a time (0: whole). */
static enum ws_hs_result handshake(const uint8_t *data, size_t size, size_t step, size_t *used,
                                   char *why)
{
    struct ws_request rq = {.host = "broker.example", .port = 443, .tls = true};
    memcpy(rq.nonce, "the sample nonce", WS_NONCE_BYTES); /* a key the seeds answer */
    struct ws_handshake h;
    char req[512];
    size_t n = ws_wire_request(&h, &rq, req, sizeof req);
    check(n > 0 && n < sizeof req && strlen(req) == n);
    size_t have = step ? 0 : size;
    enum ws_hs_result r;
    for (;;) {
        if (step) have = have + step < size ? have + step : size;
        r = ws_wire_handshake(&h, (const char *)data, have, used);
        if (r != WS_HS_MORE || have == size) break;
        check(*used == 0);
    }
    if (r == WS_HS_DONE) check(h.status == 101 && *used >= 4 && *used <= have);
    if (r == WS_HS_DONE) check(*used <= WS_MAX_HEAD && data[*used - 1] == '\n');
    check((r == WS_HS_ERROR) == (h.why[0] != '\0'));
    memcpy(why, h.why, WS_WHY_LEN);
    return r;
}

/* A frame of the bytes, by copy and in place: the same frame, and it unmasks to them. */
static void encode(const uint8_t *data, size_t size)
{
    uint32_t key = 0;
    for (size_t i = 0; i < 4 && i < size; i++)
        key = key << 8 | data[i];
    struct buf a = {0}, b = {0};
    check(ws_wire_binary(&a, data, size, key) == WM_OK);
    check(buf_reserve(&b, size + 1) == WM_OK);
    b.data[0] = '#';
    if (size) memcpy(b.data + 1, data, size);
    b.len = size + 1;
    check(ws_wire_wrap(&b, 1, key) == WM_OK);
    size_t hn = size < 126 ? 6 : size <= 0xFFFF ? 8 : 14;
    check(a.len == hn + size && b.len == (size ? a.len + 1 : 1));
    if (size) check(memcmp(a.data, b.data + 1, a.len) == 0);
    ws_wire_mask(a.data + hn, size, key, 0);
    check(size == 0 || memcmp(a.data + hn, data, size) == 0);
    buf_free(&a);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome a = {0}, b = {0};
    a.data = malloc(size + 1);
    b.data = malloc(size + 1);
    check(a.data && b.data);
    decode(data, size, 0, &a);
    decode(data, size, (uint32_t)size * 2654435761u + 1u, &b);
    check(a.len == b.len && memcmp(a.data, b.data, a.len) == 0 && a.events == b.events);
    check(a.last == b.last && a.close_code == b.close_code && a.consumed == b.consumed);
    check(strcmp(a.why, b.why) == 0);
    free(a.data);
    free(b.data);

    size_t used_whole = 0, used_steps = 0;
    char why_whole[WS_WHY_LEN], why_steps[WS_WHY_LEN];
    enum ws_hs_result whole = handshake(data, size, 0, &used_whole, why_whole);
    enum ws_hs_result steps = handshake(data, size, 1 + size % 7, &used_steps, why_steps);
    check(whole == steps && used_whole == used_steps && strcmp(why_whole, why_steps) == 0);

    encode(data, size);
    return 0;
}
