/* httpd_request.h: finding and parsing one HTTP/1.x request head, without sockets, so that the
 * parser can be tested and fuzzed alone. Nothing here allocates; results point into the
 * caller's buffer. */
#ifndef WMESH_HTTPD_REQUEST_H
#define WMESH_HTTPD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest request head accepted, request line and headers included. */
#define HTTPD_HEAD_MAX 8192

enum httpd_method { HTTPD_METHOD_GET, HTTPD_METHOD_HEAD, HTTPD_METHOD_OTHER };

struct httpd_request {
    enum httpd_method method;
    const char *path; /* the target's path, raw (not percent-decoded), without the query;
                       * path_len bytes inside the parsed buffer, not NUL-terminated */
    size_t path_len;
    const char *query; /* the target's query, raw, after the '?' (not percent-decoded); NULL
                        * when there is none; query_len bytes inside the parsed buffer */
    size_t query_len;
    unsigned minor;          /* 0 for HTTP/1.0, 1 for HTTP/1.1 (and later 1.x) */
    bool keep_alive;         /* what the client asked for, with its version's default */
    uint64_t content_length; /* 0 when absent */
    int status;              /* when parsing failed: 400, 414, 431, 501 or 505 to answer */
};

/* Looks for the blank line ending a request head in buf[0..len). from (0 at first) is how much
 * of buf an earlier call already searched and is updated for the next call. Returns the head's
 * length, blank line included, or 0 when it is not complete yet. Accepts CRLF and bare LF. */
size_t httpd_request_end(const char *buf, size_t len, size_t *from);

/* Why a head that cannot be completed (HTTPD_HEAD_MAX bytes and no blank line) is refused:
 * 414 while the request line itself is unfinished, 431 otherwise. */
int httpd_request_overflow_status(const char *buf, size_t len);

/* Parses the complete head buf[0..head_len) (as measured by httpd_request_end) into *req.
 * Returns true when the request can be answered; false with req->status set when it is
 * malformed (400), uses another HTTP major version (505) or sends a Transfer-Encoding (501).
 * Methods other than GET and HEAD parse successfully as HTTPD_METHOD_OTHER. */
bool httpd_request_parse(const char *buf, size_t head_len, struct httpd_request *req);

#endif
