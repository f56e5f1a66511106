/* catchup_serve.h: the publisher's catch-up endpoints (status and log queries) on the peer's
 * HTTP server, and the status object it also publishes over MQTT (docs/CATCHUP.md). */
#ifndef WMESH_CATCHUP_SERVE_H
#define WMESH_CATCHUP_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catchup_log.h"
#include "error.h"
#include "httpd.h"

#define CATCHUP_TOPICS_MAX 16
#define CATCHUP_LIMIT_DEFAULT 1000
#define CATCHUP_LIMIT_MAX 10000
#define CATCHUP_BODY_MAX ((size_t)4 << 20) /* a response stops after the record past this */
#define CATCHUP_QUERY_MAX 8192             /* bytes of query string read (a request head's) */

struct httpd;
struct catchup_serve;

struct catchup_serve_options {
    const char *peer_id; /* [A-Za-z0-9._-]{1,64} */
    const char *url;     /* "<baseUrl>/.wmesh/" */
    int interval_s;      /* seconds between statuses; 0: 60 */
};

/* A parsed log query: GET <prefix>/.wmesh/log?<query>. */
struct catchup_query {
    bool has_epoch, has_after, has_until, has_since;
    const char *epoch; /* NUL-terminated, inside text */
    uint64_t after, until;
    int64_t since_ns;
    const char *topics[CATCHUP_TOPICS_MAX]; /* valid MQTT topic filters, inside text */
    size_t ntopics;
    size_t limit;                     /* 1 .. CATCHUP_LIMIT_MAX (larger ones are lowered to it) */
    char text[CATCHUP_QUERY_MAX + 1]; /* the decoded values */
};

/* Parses the raw query q (len bytes, percent-encoded, '+' a space, parameters separated by
 * '&'). Pure. Unknown parameter names are ignored; of a repeated one other than topic, the
 * last counts. epoch is required with after. Returns WM_OK, WM_ERR_TOOBIG (over
 * CATCHUP_QUERY_MAX, or more than CATCHUP_TOPICS_MAX topics) or WM_ERR_INVAL, why (whylen
 * bytes, may be NULL) then saying which parameter is wrong. */
WM_WARN_UNUSED enum wm_err catchup_query_parse(const char *q, size_t len, struct catchup_query *out,
                                               char *why, size_t whylen);

/* Serves GET and HEAD <url_prefix>/.wmesh/status and .../log on h (url_prefix is the httpd's,
 * e.g. "/data" or ""). l must outlive the server; the options are copied. On success *out is
 * the caller's, freed with catchup_serve_free after httpd_stop. WM_ERR_INVAL, WM_ERR_NOMEM, or
 * an error of httpd_add_handler. */
WM_WARN_UNUSED enum wm_err catchup_serve_attach(struct httpd *h, const char *url_prefix,
                                                struct catchup_log *l,
                                                const struct catchup_serve_options *o,
                                                struct catchup_serve **out);
/* Frees *s (after the server has stopped) and sets it to NULL. Accepts NULL. */
void catchup_serve_free(struct catchup_serve **s);

/* The status object, e.g. {"wmesh_catchup":1,"peer":"p","epoch":"...","seq":12,"first":1,
 * "url":"...","interval":60,"time":"YYYYMMDDTHHMMSSZ","state":"up"}: *out a new NUL-terminated
 * string the caller frees, *len (may be NULL) its length. state is "up" or "down" (then without
 * seq and first). WM_ERR_INVAL, WM_ERR_NOMEM. */
WM_WARN_UNUSED enum wm_err catchup_status_json(struct catchup_log *l,
                                               const struct catchup_serve_options *o,
                                               const char *state, int64_t now_ns, char **out,
                                               size_t *len);

#endif
