/* fuzz_proxy.c: libFuzzer harness: any bytes from a proxy, as the answer to a CONNECT, give the
 * same outcome whole or in pieces, the head consumed and never a byte past it; the same bytes
 * cut in two (at the first newline) as a no_proxy list and a host, as a --proxy URL whose
 * descriptions never show its password, and as a CONNECT target whose request is one head. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_wire.h"
#include "proxy.h"

/* Aborts, naming the line of the check that failed. */
static void check_at(bool ok, int line)
{
    if (ok) return;
    fprintf(stderr, "fuzz_proxy.c:%d: check failed\n", line);
    abort();
}
#define check(ok) check_at((ok), __LINE__)

struct outcome {
    enum http_wire_tunnel result;
    int status;
    size_t after;
};

/* Feeds data in pieces of pseudo-random sizes (whole when seed is 0). */
static struct outcome feed(const uint8_t *data, size_t size, uint32_t seed)
{
    struct outcome o = {HTTP_WIRE_TUNNEL_MORE, 0, 0};
    struct http_response r;
    char *buf = malloc(size + 1);
    check(buf != NULL);
    size_t have = 0, off = 0;
    http_wire_begin_connect(&r);
    while (off < size) {
        size_t n = size - off;
        if (seed) {
            n = 1 + (seed >> 16) % 29;
            seed = seed * 1103515245u + 12345u;
            if (n > size - off) n = size - off;
        }
        memcpy(buf + have, data + off, n);
        have += n;
        off += n;
        size_t used = 12345;
        o.result = http_wire_tunnel_parse(&r, buf, have, &used);
        check(used <= have);
        if (o.result == HTTP_WIRE_TUNNEL_MORE) {
            check(have - used <= HTTP_WIRE_MAX_LINE);
            memmove(buf, buf + used, have - used);
            have -= used;
            continue;
        }
        o.status = r.status;
        if (o.result == HTTP_WIRE_TUNNEL_ERROR) {
            check(r.why && r.why[0]);
        } else {
            check(used >= 1 && buf[used - 1] == '\n');
            check((o.result == HTTP_WIRE_TUNNEL_UP) == (r.status >= 200 && r.status < 300));
            o.after = have - used + (size - off);
        }
        break;
    }
    free(buf);
    return o;
}

/* Whether text shows the password: a marker that a and b do not hold. */
#define MARKER "pw-5d1e4bb0"

static void no_password(const char *text, const char *a, const char *b)
{
    if (!strstr(a, MARKER) && !strstr(b, MARKER)) check(!strstr(text, MARKER));
}

static void words(const char *a, const char *b)
{
    (void)proxy_bypassed(a, b);
    struct proxy_config c;
    char why[256], text[2048];
    /* a as --proxy (b as --no-proxy), and a behind a user with the marker as password. */
    for (int round = 0; round < 2; round++) {
        char url[1024];
        snprintf(url, sizeof url, "%s%s", round ? "http://u:" MARKER "@" : "", a);
        why[0] = '\0';
        enum wm_err e = proxy_config_from_env(url, b, NULL, &c, why, sizeof why);
        no_password(why, a, b);
        if (e != WM_OK) continue;
        const struct proxy_server *p = &c.slot[PROXY_HTTPS];
        proxy_config_describe(&c, text, sizeof text);
        no_password(text, a, b);
        proxy_refusal(p, 407, b, 443, text, sizeof text);
        no_password(text, a, b);
        proxy_refusal(p, 403, b, 443, text, sizeof text);
        no_password(text, a, b);
        char req[4096];
        size_t len = http_wire_connect_request(b, 443, &p->url, req, sizeof req);
        if (len > 0 && len < sizeof req) {
            check(strlen(req) == len && strncmp(req, "CONNECT ", 8) == 0);
            check(memcmp(req + len - 4, "\r\n\r\n", 4) == 0);
            for (size_t i = 0; i < len; i++)
                if (req[i] == '\n') check(i > 0 && req[i - 1] == '\r');
        }
        proxy_config_clear(&c);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome a = feed(data, size, 0);
    struct outcome b = feed(data, size, (uint32_t)size * 2654435761u + 1u);
    check(a.result == b.result && a.status == b.status && a.after == b.after);

    char *text = malloc(size + 1);
    check(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    char *nl = strchr(text, '\n');
    if (nl) {
        *nl = '\0';
        words(text, nl + 1);
    } else {
        words(text, "h.example");
    }
    free(text);
    return 0;
}
