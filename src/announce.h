/* announce.h: one announcement of a file version, independent of its wire format. */
#ifndef WMESH_ANNOUNCE_H
#define WMESH_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "integrity.h"

enum wm_format {
    WM_FORMAT_V03 = 0, /* JSON object: pubTime, baseUrl, relPath, integrity|identity, ... */
    WM_FORMAT_ARRAY,   /* the WMO mesh demo's array: [pubTime, baseUrl, relPath, {headers}] */
    WM_FORMAT_WNM,     /* WIS2 notification message (GeoJSON feature) */
};

enum wm_content_encoding { WM_CONTENT_NONE = 0, WM_CONTENT_UTF8, WM_CONTENT_BASE64 };

struct wm_json; /* see json.h */

/* Everything an announcement says that wmesh acts on. Strings and buffers are owned by the
 * announcement and freed by announce_free(). */
struct announce {
    int64_t pubtime_ns;     /* UTC, nanoseconds since the epoch */
    int pubtime_digits;     /* fraction digits as received (0..9), kept when re-encoding */
    char *base_url;         /* as received; may end in '/' */
    char *rel_path;         /* as received; may start with '/'; see tree_clean_relpath() */
    char *retrieve_path;    /* optional (v03 retrievePath/retPath): overrides rel_path in the URL */
    char *download_url;     /* optional absolute URL (WIS2 canonical/update link href): when set,
                               the file is fetched from it rather than base_url + path */
    char *topic;            /* the MQTT topic it arrived on, when known (set by the receiver) */
    char *global_cache;     /* WIS2 output: the centre-id put in properties.global-cache; NULL:
                               the host of base_url, when the link points at it */
    struct wm_checksum sum; /* the announced checksum */
    bool sum_is_identity;   /* the v03 key was "identity" (sr3) rather than "integrity" */
    int64_t size;           /* announced size in bytes, -1 when unknown */
    enum wm_content_encoding content_encoding; /* WM_CONTENT_NONE: no inline content */
    unsigned char *content; /* decoded inline bytes (content_len of them), NULL when none */
    size_t content_len;
    enum wm_format format; /* the format it arrived in */
    struct wm_json *extra; /* a JSON object of every field (array: header) not interpreted,
                              forwarded unchanged when re-encoding; may be NULL */
};

/* Returns a new zeroed announcement (size -1), or NULL with errno set. */
WM_WARN_UNUSED struct announce *announce_new(void);
/* Frees *a and everything it owns, then sets *a to NULL. Accepts NULL and *a == NULL. */
void announce_free(struct announce **a);
/* Deep copy; NULL on allocation failure. */
WM_WARN_UNUSED struct announce *announce_clone(const struct announce *a);
/* Sets a's inline content from the len bytes of value, text written in encoding ("utf-8",
 * "utf8" or "base64", any case), with a spare NUL byte after the decoded bytes. field names the
 * content object in the reason written to why (whylen bytes, may be NULL): WM_ERR_INVAL for
 * another encoding or bad base64, WM_ERR_NOMEM. a owns what it gets, also on error. */
WM_WARN_UNUSED enum wm_err announce_set_content(struct announce *a, const char *encoding,
                                                const char *value, size_t len, const char *field,
                                                char *why, size_t whylen);

#endif
