/* url.h: broker and download URLs: parsing, redaction for logs, and joining baseUrl + relPath. */
#ifndef WMESH_URL_H
#define WMESH_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* A parsed "scheme://[user[:password]@]host[:port][/path]". All strings owned by the struct
 * and freed by url_clear(); user and password are percent-decoded. */
struct wm_url {
    char *scheme; /* lower case: mqtt, mqtts, ws, http, https, ... */
    char *user;   /* NULL when absent */
    char *password;
    char *host; /* without brackets for IPv6 literals */
    int port;   /* the scheme's default when absent (mqtt 1883, mqtts 8883, http 80, https 443) */
    char *path; /* "" or starting with '/' */
};

WM_WARN_UNUSED enum wm_err url_parse(const char *text, struct wm_url *out);
void url_clear(struct wm_url *u);
/* Writes "scheme://user@host:port" (never the password) into out. */
void url_redact(const char *text, char *out, size_t outlen);

/* Download URL: base and rel joined by exactly one '/', characters not allowed in a URL path
 * (space, controls, '#', '?', '"', '<', '>', '\\', '^', '`', '{', '|', '}', non-ASCII bytes)
 * percent-encoded in rel. '%' is left alone: relPath is already in URL form. Returns a new string
 * (caller frees), or NULL with errno set: ENOMEM, or EINVAL for a NULL argument. */
WM_WARN_UNUSED char *url_join(const char *base, const char *rel);

/* A redirect's Location loc made absolute against base, the URL that answered it (RFC 3986
 * 5.2, without the removal of dot segments, which servers do; a fragment is dropped). A new
 * string (caller frees), or NULL with errno set: ENOMEM, or EINVAL when base has no "://". */
WM_WARN_UNUSED char *url_resolve(const char *base, const char *loc);

/* Percent-decodes s[0..n) into out, which has room for n + 1 bytes, and NUL-terminates it;
 * with plus_space a '+' becomes a space (a query string's form encoding). *outlen gets the
 * decoded length. False when a '%' is not followed by two hex digits, or for a NUL byte,
 * encoded or not. */
bool url_decode(const char *s, size_t n, bool plus_space, char *out, size_t *outlen);

/* True when text starts with http:// or https:// (case-insensitive). */
bool url_is_http(const char *text);

#endif
