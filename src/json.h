/* json.h: JSON values, parsing and compact output for the codecs; our own code, no library. */
#ifndef WMESH_JSON_H
#define WMESH_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Ownership: every value has one owner, the caller or the container holding it (no reference
 * counts). wm_json_parse, wm_json_copy and the *_new constructors return a value the caller
 * owns and releases with wm_json_free(). Getters (object_get, object_next, array_get, string)
 * return borrowed pointers, valid while the container holds them (object_next's iterator only
 * while the object is unchanged). Setters and appenders take ownership of the value they are
 * given, even when they fail. */
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

/* Parses len bytes (need not be NUL-terminated) holding exactly one JSON value of any type
 * (RFC 8259), with whitespace around it and nothing else. Refuses invalid UTF-8 (overlong forms,
 * surrogates, above U+10FFFF), lone or unpaired \uD800-\uDFFF escapes, "\u0000" in strings,
 * duplicate object keys, integers beyond int64, reals beyond a double (an underflow reads as 0
 * or a subnormal), leading zeros, and nesting deeper than WM_JSON_MAX_DEPTH. A number with a
 * fraction or an exponent is a real, any other an integer. On success *out is the caller's; on
 * failure *out is NULL, why (whylen bytes, may be NULL) gets a printable one-line reason and the
 * result is WM_ERR_FORMAT (syntax), WM_ERR_TOOBIG (too deep) or WM_ERR_NOMEM. */
WM_WARN_UNUSED enum wm_err wm_json_parse(const char *buf, size_t len, struct wm_json **out,
                                         char *why, size_t whylen);
/* Frees *j with everything it holds and sets *j to NULL. Accepts NULL and *j == NULL. */
void wm_json_free(struct wm_json **j);
/* A deep copy the caller owns, or NULL (errno ENOMEM). */
WM_WARN_UNUSED struct wm_json *wm_json_copy(const struct wm_json *j);
/* Compact text with object keys in insertion order, non-ASCII kept as UTF-8, quotes, backslashes
 * and control characters escaped. *out is a new NUL-terminated string the caller frees with
 * free(); *len (may be NULL) its length. */
WM_WARN_UNUSED enum wm_err wm_json_dump(const struct wm_json *j, char **out, size_t *len);

/* Nesting depth of arrays and objects: 0 for a scalar, 1 for [] or {}, 2 for [[]], ... */
int wm_json_depth(const struct wm_json *j);

enum wm_json_type wm_json_type(const struct wm_json *j);
bool wm_json_is_object(const struct wm_json *j);
bool wm_json_is_array(const struct wm_json *j);
bool wm_json_is_string(const struct wm_json *j);

/* Constructors; NULL on allocation failure. wm_json_string_new also refuses (NULL, errno
 * EILSEQ) text that is not valid UTF-8; the text may contain NUL bytes only if the caller wants
 * them emitted as \u0000. */
WM_WARN_UNUSED struct wm_json *wm_json_object_new(void);
WM_WARN_UNUSED struct wm_json *wm_json_array_new(void);
WM_WARN_UNUSED struct wm_json *wm_json_string_new(const char *s, size_t len);
WM_WARN_UNUSED struct wm_json *wm_json_integer_new(int64_t v);

/* Borrowed value of key, NULL when absent or obj is not an object. */
struct wm_json *wm_json_object_get(const struct wm_json *obj, const char *key);
/* Sets key to value, taking value; an existing key keeps its place in the order and its old
 * value is freed. WM_ERR_INVAL when key is not UTF-8 or obj not an object. */
WM_WARN_UNUSED enum wm_err wm_json_object_set(struct wm_json *obj, const char *key,
                                              struct wm_json *value);
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
/* Appends value, taking it. */
WM_WARN_UNUSED enum wm_err wm_json_array_append(struct wm_json *arr, struct wm_json *value);

/* The UTF-8 bytes of a string (borrowed, NUL-terminated) and their count in *len (may be NULL);
 * NULL when j is not a string. */
const char *wm_json_string(const struct wm_json *j, size_t *len);
/* False when j is not an integer. */
bool wm_json_integer(const struct wm_json *j, int64_t *v);
/* Any number (integer or real) as a double; false when j is not a number. */
bool wm_json_number(const struct wm_json *j, double *v);

#endif
