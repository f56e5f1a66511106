/* json.h: a thin wrapper over the JSON library (jansson); no other file includes jansson.h. */
#ifndef WMESH_JSON_H
#define WMESH_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Ownership, as in jansson: wm_json_parse, wm_json_copy and the *_new constructors return a new
 * reference the caller releases with wm_json_free(). Getters (object_get, object_next,
 * array_get, string) return borrowed references, valid while the container holds them. Setters
 * and appenders steal the reference to the value they are given, even when they fail. */
struct wm_json;

#define WM_JSON_MAX_DEPTH 32 /* deepest nesting of arrays and objects wm_json_parse accepts */

enum wm_json_type {
    WM_JSON_NULL = 0,
    WM_JSON_TRUE,
    WM_JSON_FALSE,
    WM_JSON_INTEGER,
    WM_JSON_REAL,
    WM_JSON_STRING,
    WM_JSON_ARRAY,
    WM_JSON_OBJECT,
};

/* Parses len bytes (need not be NUL-terminated) holding exactly one JSON value of any type.
 * Refuses invalid UTF-8, duplicate object keys, "\u0000" in strings, integers beyond int64 and
 * nesting deeper than WM_JSON_MAX_DEPTH. On success *out is a new reference; on failure *out is
 * NULL, why (whylen bytes, may be NULL) gets a printable one-line reason and the result is
 * WM_ERR_FORMAT (syntax), WM_ERR_TOOBIG (too deep) or WM_ERR_NOMEM. */
enum wm_err wm_json_parse(const char *buf, size_t len, struct wm_json **out, char *why,
                          size_t whylen);
/* Releases the caller's reference to *j and sets *j to NULL. Accepts NULL and *j == NULL. */
void wm_json_free(struct wm_json **j);
/* A deep copy (a new reference), or NULL on allocation failure. */
struct wm_json *wm_json_copy(const struct wm_json *j);
/* Compact text with object keys in insertion order, non-ASCII kept as UTF-8, quotes, backslashes
 * and control characters escaped. *out is a new NUL-terminated string the caller frees with
 * free(); *len (may be NULL) its length. */
enum wm_err wm_json_dump(const struct wm_json *j, char **out, size_t *len);

/* Nesting depth of arrays and objects: 0 for a scalar, 1 for [] or {}, 2 for [[]], ... */
int wm_json_depth(const struct wm_json *j);

enum wm_json_type wm_json_type(const struct wm_json *j);
bool wm_json_is_object(const struct wm_json *j);
bool wm_json_is_array(const struct wm_json *j);
bool wm_json_is_string(const struct wm_json *j);

/* Constructors; NULL on allocation failure. wm_json_string_new also refuses (NULL, errno
 * EILSEQ) text that is not valid UTF-8; the text may contain NUL bytes only if the caller wants
 * them emitted as \u0000. */
struct wm_json *wm_json_object_new(void);
struct wm_json *wm_json_array_new(void);
struct wm_json *wm_json_string_new(const char *s, size_t len);
struct wm_json *wm_json_integer_new(int64_t v);

/* Borrowed value of key, NULL when absent or obj is not an object. */
struct wm_json *wm_json_object_get(const struct wm_json *obj, const char *key);
/* Sets key (UTF-8) to value, stealing value; an existing key keeps its place in the order. */
enum wm_err wm_json_object_set(struct wm_json *obj, const char *key, struct wm_json *value);
/* WM_ERR_NOTFOUND when key is absent. */
enum wm_err wm_json_object_del(struct wm_json *obj, const char *key);
size_t wm_json_object_size(const struct wm_json *obj);
/* Iterates in insertion order. Start with *iter = NULL; each call that returns true sets *key
 * and *value (borrowed). Do not change obj while iterating. */
bool wm_json_object_next(const struct wm_json *obj, void **iter, const char **key,
                         struct wm_json **value);

/* 0 when arr is not an array. */
size_t wm_json_array_size(const struct wm_json *arr);
/* Borrowed element i, NULL when out of range or arr is not an array. */
struct wm_json *wm_json_array_get(const struct wm_json *arr, size_t i);
/* Appends value, stealing it. */
enum wm_err wm_json_array_append(struct wm_json *arr, struct wm_json *value);

/* The UTF-8 bytes of a string (borrowed, NUL-terminated) and their count in *len (may be NULL);
 * NULL when j is not a string. */
const char *wm_json_string(const struct wm_json *j, size_t *len);
/* False when j is not an integer. */
bool wm_json_integer(const struct wm_json *j, int64_t *v);
/* Any number (integer or real) as a double; false when j is not a number. */
bool wm_json_number(const struct wm_json *j, double *v);

#endif
