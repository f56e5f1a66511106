/* http_syntax.h: the pieces of HTTP/1.1 syntax (RFC 9110, RFC 9112) that the response parser,
 * the WebSocket handshake and the server's request parser read alike: tokens, field lines,
 * comma-separated lists and the status line. Pure functions over (pointer, length) that neither
 * allocate nor keep anything; what they hand back points into the caller's bytes. */
#ifndef WMESH_HTTP_SYNTAX_H
#define WMESH_HTTP_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>

/* Optional whitespace (RFC 9110, 5.6.3): a space or a tab. Inline: trimming loops call it. */
static inline bool http_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether c may stand in a token (RFC 9110, 5.6.2): an ASCII letter or digit, or one of
 * !#$%&'*+-.^_`|~. A byte >= 0x80 never does. */
bool http_is_tchar(char c);

/* How many bytes at the start of s[0..n) are tchars: the length of the token there, 0 if none. */
size_t http_token_len(const char *s, size_t n);

/* Whether s[0..n) is the NUL-terminated word, ignoring ASCII case (names and tokens are
 * case-insensitive). */
bool http_token_eq(const char *s, size_t n, const char *word);

/* Whether s[0..n) holds neither a CR nor a NUL, either of which could make another parser on
 * the path see other lines or fields than we do. */
bool http_has_no_cr_nul(const char *s, size_t n);

/* Steps through the comma-separated list v[0..n) (RFC 9110, 5.6.1). *pos is 0 before the first
 * call. Returns true with the next element, trimmed of OWS, in *elem and *elem_len; an element
 * may be empty ("" is one empty element, "a,,b" has three). False once all have been given. */
bool http_list_next(const char *v, size_t n, size_t *pos, const char **elem, size_t *elem_len);

/* Whether the list v[0..n) has an element that is word (http_token_eq); word is not empty. */
bool http_list_has(const char *v, size_t n, const char *word);

/* A field line cut at its first colon; both parts point into the line. */
struct http_field {
    const char *name; /* a token, at least one byte */
    size_t name_len;
    const char *value; /* without leading or trailing OWS; may be empty */
    size_t value_len;
};

/* What http_field_split() made of a line, checked in this order. */
enum http_field_result {
    HTTP_FIELD_OK = 0,
    HTTP_FIELD_FOLDED,    /* it starts with OWS: an obs-fold continuation of the line before */
    HTTP_FIELD_MALFORMED, /* no colon, or nothing before it (an empty line too) */
    HTTP_FIELD_BAD_NAME,  /* a byte before the colon that is no tchar: a space, a byte >= 0x80 */
};

/* Splits the field line line[0..n), its line end left out, into *out, which is written only
 * on HTTP_FIELD_OK. Control characters in the value are the caller's to judge. */
enum http_field_result http_field_split(const char *line, size_t n, struct http_field *out);

/* What is wrong with a line of that result, for an error message: "folded header field",
 * "malformed header field name" or "malformed header field"; NULL for HTTP_FIELD_OK. A static
 * string. */
const char *http_field_problem(enum http_field_result got);

/* Whether s[0..n) is an HTTP/1.x status line: "HTTP/1.x NNN", then nothing, or a space and a
 * reason phrase of any bytes. On true, *minor gets x and *status NNN (0 to 999: which codes make
 * sense is the caller's call); either pointer may be NULL. On false neither is written. */
bool http_status_line(const char *s, size_t n, int *minor, int *status);

#endif
