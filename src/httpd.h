/* httpd.h: the embedded read-only HTTP server (libmicrohttpd) over a tree, plus dynamic pages. */
#ifndef WMESH_HTTPD_H
#define WMESH_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct tree;
struct httpd;

/* Renders a dynamic page: returns a malloc'd body (caller of the callback frees it) and sets
 * *len and *content_type (a static string). NULL means 500. Called from server threads. */
typedef char *(*httpd_page_fn)(void *arg, size_t *len, const char **content_type);

/* Starts serving t read-only under url_prefix (e.g. "/data": GET /data/a/b.txt serves a/b.txt)
 * on listen ("HOST:PORT", port 0 picks a free one). The tree must outlive the server.
 * Returns NULL on failure with *err set. Runs in its own threads. */
struct httpd *httpd_start(const char *listen, struct tree *t, const char *url_prefix,
                          enum wm_err *err);
/* Adds an exact-path dynamic page (e.g. "/metrics"); call before requests arrive. */
enum wm_err httpd_add_page(struct httpd *h, const char *path, httpd_page_fn fn, void *arg);
/* The port actually bound. */
uint16_t httpd_port(const struct httpd *h);
/* Stops the server and frees *h, setting it to NULL. */
void httpd_stop(struct httpd **h);

#endif
