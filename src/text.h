/* text.h: bytes as text: hexadecimal digits, whitespace, well-formed UTF-8, base64 and hex. */
#ifndef WMESH_TEXT_H
#define WMESH_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* The value of hexadecimal digit c (either case), or -1 when c is not one. */
static inline int text_hex_digit(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20; /* lower case; no other character becomes a-f */
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* True for the ASCII whitespace that isspace() knows in the C locale. */
static inline bool text_is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), or 0 when there is none before end. s < end. Inline: the JSON parser
 * calls it for each non-ASCII character. */
static inline size_t text_utf8_seq(const unsigned char *s, const unsigned char *end)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0; /* a continuation byte, or an overlong two-byte form */
    if (c < 0xE0) {
        n = 2;
    } else if (c < 0xF0) {
        n = 3;
        if (c == 0xE0) lo = 0xA0; /* overlong */
        if (c == 0xED) hi = 0x9F; /* U+D800..U+DFFF */
    } else if (c < 0xF5) {
        n = 4;
        if (c == 0xF0) lo = 0x90; /* overlong */
        if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

/* text_utf8_valid flags. */
#define TEXT_UTF8_NO_NUL 1u /* refuse U+0000 too (MQTT strings; JSON text that avoids \u0000) */

/* True when the n bytes at s are well-formed UTF-8 as text_utf8_seq checks it, within the
 * limits that flags add. s may be NULL when n is 0. */
bool text_utf8_valid(const void *s, size_t n, unsigned flags);

/* Encoders write a NUL-terminated string into out (outlen bytes) and return WM_ERR_TOOBIG when
 * it does not fit; WM_ERR_INVAL when in is NULL with len > 0 or out is NULL. */
/* Standard base64 (RFC 4648 section 4) with '=' padding. */
WM_WARN_UNUSED enum wm_err text_base64_encode(const unsigned char *in, size_t len, char *out,
                                              size_t outlen);
/* Lower-case hex, two digits per byte. */
WM_WARN_UNUSED enum wm_err text_hex_encode(const unsigned char *in, size_t len, char *out,
                                           size_t outlen);
/* Decoders read inlen bytes of in, skipping whitespace (text_is_space); *outlen is the capacity
 * of out on entry and the decoded length on return. WM_ERR_INVAL for a character outside the
 * alphabet or a truncated group, WM_ERR_TOOBIG when out is too small. */
/* Standard base64; padding optional, nothing after it. */
WM_WARN_UNUSED enum wm_err text_base64_decode(const char *in, size_t inlen, unsigned char *out,
                                              size_t *outlen);
/* Hex digits of either case, an even number of them. */
WM_WARN_UNUSED enum wm_err text_hex_decode(const char *in, size_t inlen, unsigned char *out,
                                           size_t *outlen);

#endif
