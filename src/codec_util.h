/* codec_util.h: helpers (codec_util.c) that the per-format codecs share; for the codec files only.
 */
#ifndef WMESH_CODEC_UTIL_H
#define WMESH_CODEC_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "announce.h"
#include "codec.h"
#include "error.h"
#include "json.h"

#define CODEC_MAX_FIELD 4096 /* bytes in baseUrl, relPath or retrievePath */
#define WNM_CONTENT_MAX 4096 /* encoded WIS2 inline content stays under this (docs/PROTOCOL.md) */

/* Writes a printf-style reason into why (whylen bytes); accepts why == NULL. */
void codec_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks that v is a non-empty string without NUL bytes and at most CODEC_MAX_FIELD bytes,
 * named name in error reasons. On success *s is the borrowed text and *len its length. */
WM_WARN_UNUSED enum wm_err codec_check_string(const struct wm_json *v, const char *name,
                                              const char **s, size_t *len, char *why,
                                              size_t whylen);
/* The same, then *out gets a malloc'd copy the caller owns. */
WM_WARN_UNUSED enum wm_err codec_take_string(const struct wm_json *v, const char *name, char **out,
                                             char *why, size_t whylen);
/* Parses v (a pubTime string) into a->pubtime_ns and a->pubtime_digits. */
WM_WARN_UNUSED enum wm_err codec_take_pubtime(const struct wm_json *v, const char *name,
                                              struct announce *a, char *why, size_t whylen);
/* Sets obj[key] to a new string of text; fails with WM_ERR_INVAL when text is not UTF-8. */
WM_WARN_UNUSED enum wm_err codec_set_string(struct wm_json *obj, const char *key, const char *text);
/* Sets parent[key] to the checksum object {"method": name of method, "value": value}. */
WM_WARN_UNUSED enum wm_err codec_set_sum(struct wm_json *parent, const char *key,
                                         enum wm_sum method, const char *value);
/* Sets obj[key] to a's pubTime formatted with or without the 'T'. */
WM_WARN_UNUSED enum wm_err codec_set_pubtime(struct wm_json *obj, const char *key,
                                             const struct announce *a, bool with_t);
/* Copies into dst every member of src (an object, or NULL) whose key is not in skip (a
 * NULL-terminated list), in order. */
WM_WARN_UNUSED enum wm_err codec_copy_members(const struct wm_json *src, struct wm_json *dst,
                                              const char *const *skip);
/* True when key is one of the NULL-terminated list. */
bool codec_key_in(const char *key, const char *const *list);

#endif
