/* httpd.h: the embedded read-only HTTP/1.1 server over a tree, plus dynamic pages. */
#ifndef WMESH_HTTPD_H
#define WMESH_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct tree;
struct httpd;

/* Renders a dynamic page: returns a malloc'd body (caller of the callback frees it) and sets
 * *len and *content_type (a static string). NULL means 500. Called from the server thread. */
typedef char *(*httpd_page_fn)(void *arg, size_t *len, const char **content_type);

/* What a handler answers. The server sets status 200, content_type "text/plain" and the rest
 * empty before the call. */
struct httpd_reply {
    int status;               /* 200, 400, 404, 409, 410, 500, 503 ... */
    const char *content_type; /* a static string */
    char extra[256];          /* "" or whole header lines, each ending in "\r\n" */
    char *body;               /* malloc'd or NULL; the server frees it */
    size_t body_len;
};

/* Answers a GET or HEAD whose path begins with the handler's prefix. rest (rest_len bytes, not
 * NUL-terminated, not percent-decoded) is the path after the prefix; query (query_len bytes) is
 * the raw query after '?', NULL when there is none. A HEAD is answered with the head only.
 * Called from the server thread. */
typedef void (*httpd_handler_fn)(void *arg, const char *rest, size_t rest_len, const char *query,
                                 size_t query_len, struct httpd_reply *reply);

/* Starts serving t read-only under url_prefix (e.g. "/data": GET /data/a/b.txt serves a/b.txt)
 * on listen ("HOST:PORT" or "[IPv6]:PORT", port 0 picks a free one). The tree must outlive the
 * server. Returns NULL on failure with *err set (WM_ERR_INVAL for a bad address, WM_ERR_IO when
 * it cannot listen). Serves from one thread of its own, which blocks every signal. */
WM_WARN_UNUSED struct httpd *httpd_start(const char *listen, struct tree *t, const char *url_prefix,
                                         enum wm_err *err);
/* Adds an exact-path dynamic page (e.g. "/metrics"); call before requests arrive. */
WM_WARN_UNUSED enum wm_err httpd_add_page(struct httpd *h, const char *path, httpd_page_fn fn,
                                          void *arg);
/* Adds a handler for every GET and HEAD whose path begins with prefix (e.g. "/data/.wmesh/",
 * copied), checked after the exact pages and before the tree, in the order added; call before
 * requests arrive. arg must outlive the server. WM_ERR_INVAL when prefix does not begin with
 * '/', WM_ERR_TOOBIG when the table is full, WM_ERR_NOMEM. */
WM_WARN_UNUSED enum wm_err httpd_add_handler(struct httpd *h, const char *prefix,
                                             httpd_handler_fn fn, void *arg);
/* The port actually bound. */
uint16_t httpd_port(const struct httpd *h);

/* Limits of a running server; a field left 0 keeps its value. */
struct httpd_limits {
    unsigned max_conns; /* connections served at once (1024); further ones wait to be accepted */
    unsigned idle_ms;   /* an idle keep-alive connection, or a client that stops reading, is
                         * closed after this (60 s) */
    unsigned head_ms;   /* a request head must arrive whole within this of its first byte, the
                         * first one within this of connecting (10 s) */
};
/* Changes the limits; safe while serving (the server thread applies them within a second). */
void httpd_set_limits(struct httpd *h, const struct httpd_limits *lim);

/* Stops the server (open connections are closed at once) and frees *h, setting it to NULL. */
void httpd_stop(struct httpd **h);

#endif
