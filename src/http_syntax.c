/* http_syntax.c: HTTP/1.1 tokens, field lines, lists and status lines, read one way for the
 * response parser (http_wire.c), the WebSocket handshake (ws_wire.c) and the server (httpd). */
#include "http_syntax.h"

#include <string.h>
#include <strings.h>

/* A table rather than comparisons: every byte of every field name goes through it. */
static const unsigned char tchar[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* controls */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* controls */
    0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, /*  !"#$%&'()*+,-./ */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, /* 0-9 :;<=>? */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* @A-O */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, /* P-Z [\]^_ */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* `a-o */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0, /* p-z {|}~ DEL; the rest: 0 */
};

bool http_is_tchar(char c)
{
    return tchar[(unsigned char)c];
}

size_t http_token_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && tchar[(unsigned char)s[i]])
        i++;
    return i;
}

bool http_token_eq(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

bool http_has_no_cr_nul(const char *s, size_t n)
{
    return n == 0 || (!memchr(s, '\r', n) && !memchr(s, '\0', n));
}

static void trim_ows(const char **s, size_t *n)
{
    while (*n > 0 && http_is_ows((*s)[0])) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && http_is_ows((*s)[*n - 1]))
        (*n)--;
}

bool http_list_next(const char *v, size_t n, size_t *pos, const char **elem, size_t *elem_len)
{
    if (*pos > n) return false;
    size_t start = *pos, end = start;
    while (end < n && v[end] != ',')
        end++;
    /* Past the comma; past the end after the last element, which a trailing comma leaves empty. */
    *pos = end + 1;
    *elem = v + start;
    *elem_len = end - start;
    trim_ows(elem, elem_len);
    return true;
}

bool http_list_has(const char *v, size_t n, const char *word)
{
    size_t pos = 0, len = 0;
    const char *elem = NULL;
    while (http_list_next(v, n, &pos, &elem, &len))
        if (http_token_eq(elem, len, word)) return true;
    return false;
}

enum http_field_result http_field_split(const char *line, size_t n, struct http_field *out)
{
    if (n == 0) return HTTP_FIELD_MALFORMED;
    if (http_is_ows(line[0])) return HTTP_FIELD_FOLDED;
    const char *colon = memchr(line, ':', n);
    if (!colon || colon == line) return HTTP_FIELD_MALFORMED;
    size_t name_len = (size_t)(colon - line);
    /* Every name is checked, not only those a caller knows: "Content-Length :" must not pass for
     * another field, to be read as that one by someone else on the path. */
    if (http_token_len(line, name_len) != name_len) return HTTP_FIELD_BAD_NAME;
    out->name = line;
    out->name_len = name_len;
    out->value = colon + 1;
    out->value_len = n - name_len - 1;
    trim_ows(&out->value, &out->value_len);
    return HTTP_FIELD_OK;
}

const char *http_field_problem(enum http_field_result got)
{
    switch (got) {
    case HTTP_FIELD_OK:
        return NULL;
    case HTTP_FIELD_FOLDED:
        return "folded header field";
    case HTTP_FIELD_BAD_NAME:
        return "malformed header field name";
    case HTTP_FIELD_MALFORMED:
    default:
        return "malformed header field";
    }
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool http_status_line(const char *s, size_t n, int *minor, int *status)
{
    /* A missing reason phrase is accepted with or without the space before it. */
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !is_digit(s[7]) || s[8] != ' ' ||
        !is_digit(s[9]) || !is_digit(s[10]) || !is_digit(s[11]) || (n > 12 && s[12] != ' '))
        return false;
    if (minor) *minor = s[7] - '0';
    if (status) *status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    return true;
}
