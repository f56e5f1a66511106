/* json.c: the jansson wrapper; struct wm_json is jansson's json_t seen through an opaque name. */
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static json_t *J(const struct wm_json *j)
{
    return (json_t *)j;
}

static struct wm_json *W(json_t *j)
{
    return (struct wm_json *)j;
}

/* Counts bracket nesting outside strings, so that a hostile payload never makes the parser
 * build (and later free) a deep tree. Returns false when deeper than max. */
static bool depth_ok(const char *buf, size_t len, int max)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (c == '\\')
                i++; /* skip the escaped character, whatever it is */
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '[' || c == '{') {
            if (++depth > max) return false;
        } else if ((c == ']' || c == '}') && depth > 0)
            depth--;
    }
    return true;
}

/* Copies text into why, replacing anything but printable ASCII, so it is safe in a log line. */
static void set_why(char *why, size_t whylen, const char *prefix, const char *text)
{
    if (!why || whylen == 0) return;
    int n = snprintf(why, whylen, "%s%s", prefix, text);
    if (n < 0) {
        why[0] = '\0';
        return;
    }
    for (char *p = why; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) *p = '?';
}

enum wm_err wm_json_parse(const char *buf, size_t len, struct wm_json **out, char *why,
                          size_t whylen)
{
    if (!out) return WM_ERR_INVAL;
    *out = NULL;
    if (!buf) return WM_ERR_INVAL;
    if (!depth_ok(buf, len, WM_JSON_MAX_DEPTH)) {
        set_why(why, whylen, "JSON nested deeper than 32 levels", "");
        return WM_ERR_TOOBIG;
    }
    json_error_t err;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!j) {
        set_why(why, whylen, "bad JSON: ", err.text);
        return json_error_code(&err) == json_error_out_of_memory ? WM_ERR_NOMEM : WM_ERR_FORMAT;
    }
    *out = W(j);
    return WM_OK;
}

void wm_json_free(struct wm_json **j)
{
    if (!j || !*j) return;
    json_decref(J(*j));
    *j = NULL;
}

struct wm_json *wm_json_copy(const struct wm_json *j)
{
    if (!j) return NULL;
    json_t *c = json_deep_copy(J(j));
    if (!c) errno = ENOMEM;
    return W(c);
}

enum wm_err wm_json_dump(const struct wm_json *j, char **out, size_t *len)
{
    if (!out) return WM_ERR_INVAL;
    *out = NULL;
    if (!j) return WM_ERR_INVAL;
    char *s = json_dumps(J(j), JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!s) return WM_ERR_NOMEM;
    *out = s;
    if (len) *len = strlen(s);
    return WM_OK;
}

int wm_json_depth(const struct wm_json *j)
{
    if (!j) return 0;
    int deepest = 0;
    if (json_is_array(J(j))) {
        for (size_t i = 0; i < json_array_size(J(j)); i++) {
            int d = wm_json_depth(W(json_array_get(J(j), i)));
            if (d > deepest) deepest = d;
        }
        return deepest + 1;
    }
    if (!json_is_object(J(j))) return 0;
    const char *key;
    json_t *value;
    json_object_foreach(J(j), key, value)
    {
        int d = wm_json_depth(W(value));
        if (d > deepest) deepest = d;
    }
    return deepest + 1;
}

enum wm_json_type wm_json_type(const struct wm_json *j)
{
    if (!j) return WM_JSON_NULL;
    switch (json_typeof(J(j))) {
    case JSON_OBJECT:
        return WM_JSON_OBJECT;
    case JSON_ARRAY:
        return WM_JSON_ARRAY;
    case JSON_STRING:
        return WM_JSON_STRING;
    case JSON_INTEGER:
        return WM_JSON_INTEGER;
    case JSON_REAL:
        return WM_JSON_REAL;
    case JSON_TRUE:
        return WM_JSON_TRUE;
    case JSON_FALSE:
        return WM_JSON_FALSE;
    case JSON_NULL:
        return WM_JSON_NULL;
    }
    return WM_JSON_NULL;
}

bool wm_json_is_object(const struct wm_json *j)
{
    return j && json_is_object(J(j));
}

bool wm_json_is_array(const struct wm_json *j)
{
    return j && json_is_array(J(j));
}

bool wm_json_is_string(const struct wm_json *j)
{
    return j && json_is_string(J(j));
}

static struct wm_json *made(json_t *j, int err)
{
    if (!j) errno = err;
    return W(j);
}

struct wm_json *wm_json_object_new(void)
{
    return made(json_object(), ENOMEM);
}

struct wm_json *wm_json_array_new(void)
{
    return made(json_array(), ENOMEM);
}

struct wm_json *wm_json_string_new(const char *s, size_t len)
{
    if (!s) {
        errno = EINVAL;
        return NULL;
    }
    /* jansson validates UTF-8 here; allocation failure is the other way to get NULL. */
    return made(json_stringn(s, len), EILSEQ);
}

struct wm_json *wm_json_integer_new(int64_t v)
{
    return made(json_integer((json_int_t)v), ENOMEM);
}

struct wm_json *wm_json_object_get(const struct wm_json *obj, const char *key)
{
    if (!obj || !key || !json_is_object(J(obj))) return NULL;
    return W(json_object_get(J(obj), key));
}

enum wm_err wm_json_object_set(struct wm_json *obj, const char *key, struct wm_json *value)
{
    if (!obj || !key || !value || !json_is_object(J(obj))) {
        json_decref(J(value));
        return WM_ERR_INVAL;
    }
    /* json_object_set_new consumes value even when it fails. */
    return json_object_set_new(J(obj), key, J(value)) == 0 ? WM_OK : WM_ERR_NOMEM;
}

enum wm_err wm_json_object_del(struct wm_json *obj, const char *key)
{
    if (!obj || !key || !json_is_object(J(obj))) return WM_ERR_INVAL;
    return json_object_del(J(obj), key) == 0 ? WM_OK : WM_ERR_NOTFOUND;
}

size_t wm_json_object_size(const struct wm_json *obj)
{
    return obj ? json_object_size(J(obj)) : 0;
}

bool wm_json_object_next(const struct wm_json *obj, void **iter, const char **key,
                         struct wm_json **value)
{
    if (!obj || !iter || !json_is_object(J(obj))) return false;
    void *it = *iter ? json_object_iter_next(J(obj), *iter) : json_object_iter(J(obj));
    *iter = it;
    if (!it) return false;
    if (key) *key = json_object_iter_key(it);
    if (value) *value = W(json_object_iter_value(it));
    return true;
}

size_t wm_json_array_size(const struct wm_json *arr)
{
    return arr ? json_array_size(J(arr)) : 0;
}

struct wm_json *wm_json_array_get(const struct wm_json *arr, size_t i)
{
    return arr ? W(json_array_get(J(arr), i)) : NULL;
}

enum wm_err wm_json_array_append(struct wm_json *arr, struct wm_json *value)
{
    if (!arr || !value || !json_is_array(J(arr))) {
        json_decref(J(value));
        return WM_ERR_INVAL;
    }
    return json_array_append_new(J(arr), J(value)) == 0 ? WM_OK : WM_ERR_NOMEM;
}

const char *wm_json_string(const struct wm_json *j, size_t *len)
{
    if (!j || !json_is_string(J(j))) return NULL;
    if (len) *len = json_string_length(J(j));
    return json_string_value(J(j));
}

bool wm_json_integer(const struct wm_json *j, int64_t *v)
{
    if (!j || !json_is_integer(J(j))) return false;
    if (v) *v = (int64_t)json_integer_value(J(j));
    return true;
}

bool wm_json_number(const struct wm_json *j, double *v)
{
    if (!j || !json_is_number(J(j))) return false;
    if (v) *v = json_number_value(J(j));
    return true;
}
