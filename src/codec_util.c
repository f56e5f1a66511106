/* codec_util.c: helpers the per-format codecs share (reasons, string fields, pubTime fields,
 * checksum objects, copying members). */
#include "codec_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integrity.h"

void codec_why(char *why, size_t whylen, const char *fmt, ...)
{
    if (!why || whylen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    if (n < 0) why[0] = '\0';
}

enum wm_err codec_check_string(const struct wm_json *v, const char *name, const char **s,
                               size_t *len, char *why, size_t whylen)
{
    if (!v) {
        codec_why(why, whylen, "%s missing", name);
        return WM_ERR_INVAL;
    }
    size_t n = 0;
    const char *text = wm_json_string(v, &n);
    if (!text) {
        codec_why(why, whylen, "%s must be a string", name);
        return WM_ERR_INVAL;
    }
    if (n == 0) {
        codec_why(why, whylen, "%s is empty", name);
        return WM_ERR_INVAL;
    }
    if (strlen(text) != n) {
        codec_why(why, whylen, "%s contains a NUL character", name);
        return WM_ERR_INVAL;
    }
    if (n > CODEC_MAX_FIELD) {
        codec_why(why, whylen, "%s longer than %d bytes", name, CODEC_MAX_FIELD);
        return WM_ERR_TOOBIG;
    }
    *s = text;
    if (len) *len = n;
    return WM_OK;
}

enum wm_err codec_take_string(const struct wm_json *v, const char *name, char **out, char *why,
                              size_t whylen)
{
    const char *s;
    size_t n;
    enum wm_err err = codec_check_string(v, name, &s, &n, why, whylen);
    if (err != WM_OK) return err;
    *out = strndup(s, n);
    if (!*out) {
        codec_why(why, whylen, "out of memory");
        return WM_ERR_NOMEM;
    }
    return WM_OK;
}

enum wm_err codec_take_pubtime(const struct wm_json *v, const char *name, struct announce *a,
                               char *why, size_t whylen)
{
    const char *s;
    enum wm_err err = codec_check_string(v, name, &s, NULL, why, whylen);
    if (err != WM_OK) return err;
    if (codec_pubtime_parse(s, &a->pubtime_ns, &a->pubtime_digits) != WM_OK) {
        codec_why(why, whylen, "%s is not a UTC time YYYYMMDD[T]HHMMSS[.fraction] (1970-2261)",
                  name);
        return WM_ERR_INVAL;
    }
    return WM_OK;
}

enum wm_err codec_set_string(struct wm_json *obj, const char *key, const char *text)
{
    if (!text) return WM_ERR_INVAL;
    struct wm_json *s = wm_json_string_new(text, strlen(text));
    /* Out of memory is no fault of the text: a caller retries, where it drops bad input. */
    if (!s) return errno == ENOMEM ? WM_ERR_NOMEM : WM_ERR_INVAL;
    return wm_json_object_set(obj, key, s);
}

enum wm_err codec_set_pubtime(struct wm_json *obj, const char *key, const struct announce *a,
                              bool with_t)
{
    char text[48];
    enum wm_err err =
        codec_pubtime_format(a->pubtime_ns, a->pubtime_digits, with_t, text, sizeof text);
    if (err != WM_OK) return err;
    return codec_set_string(obj, key, text);
}

bool codec_key_in(const char *key, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(key, *list) == 0) return true;
    return false;
}

enum wm_err codec_copy_members(const struct wm_json *src, struct wm_json *dst,
                               const char *const *skip)
{
    if (!src) return WM_OK;
    if (!wm_json_is_object(src)) return WM_ERR_INVAL;
    void *it = NULL;
    const char *key;
    struct wm_json *value;
    while (wm_json_object_next(src, &it, &key, &value)) {
        if (codec_key_in(key, skip)) continue;
        struct wm_json *copy = wm_json_copy(value);
        if (!copy) return WM_ERR_NOMEM;
        enum wm_err err = wm_json_object_set(dst, key, copy);
        if (err != WM_OK) return err;
    }
    return WM_OK;
}

enum wm_err codec_set_sum(struct wm_json *parent, const char *key, enum wm_sum method,
                          const char *value)
{
    struct wm_json *obj = wm_json_object_new();
    if (!obj) return WM_ERR_NOMEM;
    enum wm_err err = codec_set_string(obj, "method", integrity_method_name(method));
    if (err == WM_OK) err = codec_set_string(obj, "value", value);
    if (err != WM_OK) {
        wm_json_free(&obj);
        return err;
    }
    return wm_json_object_set(parent, key, obj);
}
