/* http_wire.h: HTTP/1.1 on the wire, without I/O: an incremental parser of responses that hands
 * body bytes out in place, and the writer of the GET requests the downloader sends, directly or
 * through an HTTP proxy (absolute-form GET, or CONNECT and the proxy's answer to it). */
#ifndef WMESH_HTTP_WIRE_H
#define WMESH_HTTP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "url.h"

/* Caps on what grows from network input. */
#define HTTP_WIRE_MAX_HEAD                                                                         \
    (32 * 1024) /* status lines and fields of a response, its 1xx included                         \
                 */
#define HTTP_WIRE_MAX_LINE                                                                         \
    (8 * 1024)                        /* one line of a head or of the trailers, line end included  \
                                       */
#define HTTP_WIRE_MAX_CHUNK_LINE 1024 /* one chunk-size line, extensions included */

/* What one call of http_wire_parse() found. */
enum http_wire_event {
    HTTP_WIRE_MORE = 0, /* every whole line was consumed: call again with the rest, then more */
    HTTP_WIRE_LOCATION, /* data, len: the value of a Location field of the head being read */
    HTTP_WIRE_HEAD,     /* the final (non-1xx) response's head is complete: see the fields */
    HTTP_WIRE_BODY,     /* data, len: body bytes (dechunked), pointing into buf */
    HTTP_WIRE_END,      /* the response is complete; bytes after it are not part of it */
    HTTP_WIRE_ERROR,    /* malformed, or over a cap: why says what; the connection is unusable */
};

/* How the body of the final response is delimited. */
enum http_wire_framing {
    HTTP_WIRE_NO_BODY = 0, /* 204 and 304 */
    HTTP_WIRE_LENGTH,      /* Content-Length */
    HTTP_WIRE_CHUNKED,     /* Transfer-Encoding: chunked (which wins over a Content-Length) */
    HTTP_WIRE_UNTIL_CLOSE, /* neither: the body ends when the connection does */
};

/* One response being parsed. Ready it with http_wire_begin(); it holds no pointer and owns
 * nothing, so it needs no freeing. Fields after the comment "private" are the parser's. */
struct http_response {
    int status;                     /* of the status line last read; final once HEAD came */
    int64_t length;                 /* Content-Length; -1 when absent or overridden by chunked */
    enum http_wire_framing framing; /* set with HEAD */
    bool keep_alive;                /* set with HEAD: the connection may carry another request */
    int64_t body_bytes;             /* body bytes handed out so far */
    const char *why;                /* with HTTP_WIRE_ERROR: a static, lower-case reason */
    /* private */
    int state;
    int minor;       /* HTTP/1.minor */
    unsigned fields; /* flags of the fields seen in the head being read (http_wire.c) */
    unsigned codings;
    size_t head_bytes; /* of every head line so far (1xx included), or of the trailers */
    size_t scanned;    /* bytes of the pending partial line already searched for LF */
    int64_t left;      /* body or chunk bytes still to come */
    bool tunnel;       /* the answer to a CONNECT: a 2xx has no body (http_wire_begin_connect) */
};

/* Readies r for a new response (the request has been sent). */
void http_wire_begin(struct http_response *r);

/* Parses buf[0..len): the bytes that came after those consumed so far, the unconsumed rest of
 * the previous call first. Sets *used to the bytes consumed (never more than len) and returns
 * one event; call again with the bytes after *used until HTTP_WIRE_MORE, HTTP_WIRE_END or
 * HTTP_WIRE_ERROR. On HTTP_WIRE_MORE, the len - *used bytes not consumed (an incomplete line,
 * never more than HTTP_WIRE_MAX_LINE) must come again at the start of the next call's buf.
 * *data and *dlen point into buf for LOCATION and BODY; nothing is copied or kept. */
enum http_wire_event http_wire_parse(struct http_response *r, const char *buf, size_t len,
                                     size_t *used, const char **data, size_t *dlen);

/* The connection ended (EOF) after everything was parsed: HTTP_WIRE_END when that completes
 * the response (a body read until close), else HTTP_WIRE_ERROR with why ("short body", ...). */
enum http_wire_event http_wire_eof(struct http_response *r);

/* Writes the GET request for u (http or https) into out, NUL-terminated: the request line with
 * u's path ("/" when empty; no fragment; spaces and non-ASCII bytes percent-encoded), Host
 * (with the port when it is not the scheme's default), User-Agent: wmesh/VERSION, an Accept of any
 * type, and Authorization: Basic when u has a user (its user and password are already decoded).
 * Returns the request's length; when that is outlen or more, out holds nothing usable and the
 * caller retries with a buffer of the length + 1. 0 when u cannot be requested: another
 * scheme, control characters in the path or host, or credentials over 1 KiB. */
size_t http_wire_request(const struct wm_url *u, char *out, size_t outlen);

/* ---- through an HTTP proxy ---- */

/* Longest value http_wire_basic() writes, NUL included: "Basic " and the base64 of 1 KiB. */
#define HTTP_WIRE_MAX_BASIC (6 + 1368 + 1)

/* Writes "Basic " and the base64 of "user:password" (RFC 7617; a NULL password is empty) into
 * out, NUL-terminated: the value of an Authorization or Proxy-Authorization field. Returns its
 * length, or 0 when user is NULL, user and password take over 1 KiB, or out (outlen bytes) is
 * too small. */
size_t http_wire_basic(const char *user, const char *password, char *out, size_t outlen);

/* As http_wire_request(), for u (http only) through the HTTP proxy proxy: the request line in
 * absolute form ("GET http://host[:port]/path HTTP/1.1", the port left out when it is 80), and
 * Proxy-Authorization: Basic when proxy has a user. The same return values; 0 also for an https
 * URL (those go through a CONNECT tunnel) or proxy credentials over 1 KiB. */
size_t http_wire_proxy_request(const struct wm_url *u, const struct wm_url *proxy, char *out,
                               size_t outlen);

/* Writes the CONNECT request asking proxy for a tunnel to host:port (an IPv6 literal without
 * brackets; they are added): "CONNECT host:port HTTP/1.1", Host with the same authority,
 * User-Agent, and Proxy-Authorization: Basic when proxy has a user (proxy may be NULL). Returns
 * the length as http_wire_request() does; 0 for a host with control characters, spaces or any of
 * /?#@\[], a port outside 1..65535, or proxy credentials over 1 KiB. */
size_t http_wire_connect_request(const char *host, int port, const struct wm_url *proxy, char *out,
                                 size_t outlen);

/* Readies r for the proxy's answer to a CONNECT. A 2xx ends with its head, whatever
 * Content-Length or Transfer-Encoding it claims (RFC 9110, 9.3.6): what follows is the tunnel's.
 * Another status frames its body as any response does. */
void http_wire_begin_connect(struct http_response *r);

/* What the answer to a CONNECT said so far. */
enum http_wire_tunnel {
    HTTP_WIRE_TUNNEL_MORE = 0, /* head not complete: keep the len - *used bytes, add more, call
                                  again */
    HTTP_WIRE_TUNNEL_UP,       /* 2xx: the head is consumed; the len - *used bytes after it are
                                  the first bytes from the far end of the tunnel */
    HTTP_WIRE_TUNNEL_REFUSED,  /* a final status other than 2xx (r->status): no tunnel; the
                                  connection is not used again */
    HTTP_WIRE_TUNNEL_ERROR,    /* malformed or over a cap: r->why */
};

/* Parses the answer to a CONNECT (after http_wire_begin_connect()) as http_wire_parse() does,
 * 1xx heads skipped: buf[0..len) holds the bytes not consumed yet, *used is set to those it
 * consumed (the whole head once it returns HTTP_WIRE_TUNNEL_UP, never a byte past it). */
enum http_wire_tunnel http_wire_tunnel_parse(struct http_response *r, const char *buf, size_t len,
                                             size_t *used);

#endif
