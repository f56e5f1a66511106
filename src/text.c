/* text.c: the UTF-8 check, base64 and hex of text.h. */
#include "text.h"

#include <stdint.h>

bool text_utf8_valid(const void *s, size_t n, unsigned flags)
{
    if (!s) return n == 0;
    const unsigned char *p = s, *end = p + n;
    bool nul_ok = !(flags & TEXT_UTF8_NO_NUL);
    while (p < end) {
        if (*p < 0x80) {
            if (*p == 0 && !nul_ok) return false;
            p++;
            continue;
        }
        size_t k = text_utf8_seq(p, end);
        if (k == 0) return false;
        p += k;
    }
    return true;
}

/* ---- base64 and hex ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

enum wm_err text_base64_encode(const unsigned char *in, size_t len, char *out, size_t outlen)
{
    if ((!in && len) || !out) return WM_ERR_INVAL;
    if (len / 3 >= (SIZE_MAX - 5) / 4 || outlen < (len + 2) / 3 * 4 + 1) return WM_ERR_TOOBIG;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return WM_OK;
}

/* Appends the top n bytes of the 24-bit group v to out. */
static bool b64_emit(uint32_t v, int n, unsigned char *out, size_t cap, size_t *o)
{
    if (cap - *o < (size_t)n) return false;
    for (int k = 0; k < n; k++)
        out[(*o)++] = (unsigned char)(v >> (16 - 8 * k));
    return true;
}

enum wm_err text_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t *outlen)
{
    if (!in || !outlen || (!out && *outlen)) return WM_ERR_INVAL;
    size_t cap = *outlen, o = 0;
    uint32_t group = 0;
    int q = 0, pad = 0; /* sextets in the current group; '=' seen */
    for (size_t i = 0; i < inlen; i++) {
        char c = in[i];
        if (text_is_space(c)) continue;
        if (c == '=') {
            if (q < 2 || q + ++pad > 4) return WM_ERR_INVAL;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad) return WM_ERR_INVAL; /* bad character, or data after padding */
        group = group << 6 | (uint32_t)v;
        if (++q == 4) {
            if (!b64_emit(group, 3, out, cap, &o)) return WM_ERR_TOOBIG;
            q = 0;
            group = 0;
        }
    }
    if (q == 1) return WM_ERR_INVAL;
    if (q == 2 && !b64_emit(group << 12, 1, out, cap, &o)) return WM_ERR_TOOBIG;
    if (q == 3 && !b64_emit(group << 6, 2, out, cap, &o)) return WM_ERR_TOOBIG;
    *outlen = o;
    return WM_OK;
}

enum wm_err text_hex_encode(const unsigned char *in, size_t len, char *out, size_t outlen)
{
    static const char digits[] = "0123456789abcdef";
    if ((!in && len) || !out) return WM_ERR_INVAL;
    if (len >= SIZE_MAX / 2 || outlen < 2 * len + 1) return WM_ERR_TOOBIG;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
    return WM_OK;
}

enum wm_err text_hex_decode(const char *in, size_t inlen, unsigned char *out, size_t *outlen)
{
    if (!in || !outlen || (!out && *outlen)) return WM_ERR_INVAL;
    size_t cap = *outlen, o = 0;
    int hi = -1; /* pending high nibble */
    for (size_t i = 0; i < inlen; i++) {
        if (text_is_space(in[i])) continue;
        int v = text_hex_digit(in[i]);
        if (v < 0) return WM_ERR_INVAL;
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (o == cap) return WM_ERR_TOOBIG;
        out[o++] = (unsigned char)(hi << 4 | v);
        hi = -1;
    }
    if (hi >= 0) return WM_ERR_INVAL;
    *outlen = o;
    return WM_OK;
}
