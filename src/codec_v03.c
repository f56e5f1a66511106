/* codec_v03.c: the v03 object format (wmo_mesh successor, Sarracenia sr3) to and from announce. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec_formats.h"
#include "codec_util.h"
#include "integrity.h"
#include "json.h"
#include "text.h"

/* Fields this codec interprets; everything else travels in announce->extra. */
static const char *const v03_keys[] = {
    "pubTime",      "baseUrl", "relPath", "integrity", "identity",
    "retrievePath", "retPath", "size",    "content",   NULL};

#define SUM_TEXT_MAX (2 * WM_SUM_MAX_LEN + 8) /* base64 of the longest digest, or opaque text */

/* ---- decoding ---- */

/* The value of a checksum object: opaque methods may carry an empty string. */
static enum wm_err sum_value_text(const struct wm_json *v, enum wm_sum m, const char *key,
                                  const char **text, char *why, size_t whylen)
{
    char name[32];
    codec_why(name, sizeof name, "%s.value", key);
    size_t n = 0;
    const char *s = wm_json_string(v, &n);
    if (s && n == 0 && (m == WM_SUM_RANDOM || m == WM_SUM_ARBITRARY)) {
        *text = s;
        return WM_OK;
    }
    return codec_check_string(v, name, text, NULL, why, whylen);
}

static enum wm_err take_sum(const struct wm_json *root, struct announce *a, char *why,
                            size_t whylen)
{
    /* sr3 (3.0.41 and later) says "identity"; older senders "integrity". */
    const char *key = "identity";
    const struct wm_json *obj = wm_json_object_get(root, key);
    a->sum_is_identity = obj != NULL;
    if (!obj) {
        key = "integrity";
        obj = wm_json_object_get(root, key);
    }
    if (!obj) {
        codec_why(why, whylen, "integrity (or identity) missing");
        return WM_ERR_INVAL;
    }
    if (!wm_json_is_object(obj)) {
        codec_why(why, whylen, "%s must be an object", key);
        return WM_ERR_INVAL;
    }
    char name[32];
    codec_why(name, sizeof name, "%s.method", key);
    const char *method, *value;
    enum wm_err err =
        codec_check_string(wm_json_object_get(obj, "method"), name, &method, NULL, why, whylen);
    if (err != WM_OK) return err;
    enum wm_sum m = integrity_method_from_name(method);
    if (m == WM_SUM_NONE) {
        codec_why(why, whylen, "unknown checksum method in %s.method", key);
        return WM_ERR_METHOD;
    }
    err = sum_value_text(wm_json_object_get(obj, "value"), m, key, &value, why, whylen);
    if (err != WM_OK) return err;
    const char *reason = "";
    err = integrity_value_parse_why(m, value, &a->sum, &reason);
    if (err != WM_OK) codec_why(why, whylen, "bad %s.value: %s", key, reason);
    return err;
}

static enum wm_err take_retrieve_path(const struct wm_json *root, struct announce *a, char *why,
                                      size_t whylen)
{
    const char *key = "retrievePath";
    const struct wm_json *v = wm_json_object_get(root, key);
    if (!v) {
        key = "retPath"; /* the older name */
        v = wm_json_object_get(root, key);
    }
    if (!v) return WM_OK;
    return codec_take_string(v, key, &a->retrieve_path, why, whylen);
}

/* Decimal digits only, as some senders write the size as a string. */
static bool parse_size_text(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 18) return false; /* 18 digits always fit in int64 */
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static enum wm_err take_size(const struct wm_json *root, struct announce *a, char *why,
                             size_t whylen)
{
    const struct wm_json *v = wm_json_object_get(root, "size");
    if (!v) return WM_OK;
    int64_t size = -1;
    size_t len = 0;
    const char *s = wm_json_string(v, &len);
    bool ok = s ? parse_size_text(s, len, &size) : wm_json_integer(v, &size);
    if (!ok || size < 0) {
        codec_why(why, whylen, "size must be a non-negative integer (at most 18 digits)");
        return WM_ERR_INVAL;
    }
    a->size = size;
    return WM_OK;
}

static enum wm_err take_content(const struct wm_json *root, struct announce *a, char *why,
                                size_t whylen)
{
    const struct wm_json *c = wm_json_object_get(root, "content");
    if (!c) return WM_OK;
    if (!wm_json_is_object(c)) {
        codec_why(why, whylen, "content must be an object");
        return WM_ERR_INVAL;
    }
    const char *enc;
    enum wm_err err = codec_check_string(wm_json_object_get(c, "encoding"), "content.encoding",
                                         &enc, NULL, why, whylen);
    if (err != WM_OK) return err;
    size_t len = 0;
    const char *s = wm_json_string(wm_json_object_get(c, "value"), &len);
    if (!s || strlen(s) != len) {
        codec_why(why, whylen, "content.value must be a string without NUL characters");
        return WM_ERR_INVAL;
    }
    return announce_set_content(a, enc, s, len, "content", why, whylen);
}

static enum wm_err take_extra(const struct wm_json *root, struct announce *a)
{
    struct wm_json *extra = wm_json_object_new();
    if (!extra) return WM_ERR_NOMEM;
    enum wm_err err = codec_copy_members(root, extra, v03_keys);
    if (err != WM_OK || wm_json_object_size(extra) == 0) wm_json_free(&extra);
    a->extra = extra;
    return err;
}

enum wm_err codec_v03_decode(const struct wm_json *root, struct announce *a, char *why,
                             size_t whylen)
{
    enum wm_err err =
        codec_take_pubtime(wm_json_object_get(root, "pubTime"), "pubTime", a, why, whylen);
    if (err == WM_OK)
        err = codec_take_string(wm_json_object_get(root, "baseUrl"), "baseUrl", &a->base_url, why,
                                whylen);
    if (err == WM_OK)
        err = codec_take_string(wm_json_object_get(root, "relPath"), "relPath", &a->rel_path, why,
                                whylen);
    if (err == WM_OK) err = take_sum(root, a, why, whylen);
    if (err == WM_OK) err = take_retrieve_path(root, a, why, whylen);
    if (err == WM_OK) err = take_size(root, a, why, whylen);
    if (err == WM_OK) err = take_content(root, a, why, whylen);
    if (err == WM_OK) err = take_extra(root, a);
    return err;
}

/* ---- encoding ---- */

static enum wm_err set_content_value(struct wm_json *c, const unsigned char *bytes, size_t len,
                                     bool as_utf8)
{
    if (as_utf8) {
        struct wm_json *s = wm_json_string_new((const char *)bytes, len);
        if (!s) return WM_ERR_NOMEM;
        return wm_json_object_set(c, "value", s);
    }
    if (len > (SIZE_MAX - 8) / 4 * 3) return WM_ERR_TOOBIG;
    size_t cap = (len + 2) / 3 * 4 + 1;
    char *text = malloc(cap);
    if (!text) return WM_ERR_NOMEM;
    enum wm_err err = text_base64_encode(bytes, len, text, cap);
    if (err == WM_OK) err = codec_set_string(c, "value", text);
    free(text);
    return err;
}

static enum wm_err put_content(struct wm_json *root, const struct announce *a)
{
    if (a->content_encoding == WM_CONTENT_NONE) return WM_OK;
    if (!a->content && a->content_len) return WM_ERR_INVAL;
    const unsigned char *bytes = a->content ? a->content : (const unsigned char *)"";
    /* Inline content goes back as it came; text that is not UTF-8 can only travel as base64. */
    /* Without NUL, which a JSON string would carry as the refused \u0000. */
    bool as_utf8 = a->content_encoding == WM_CONTENT_UTF8 &&
                   text_utf8_valid(bytes, a->content_len, TEXT_UTF8_NO_NUL);
    struct wm_json *c = wm_json_object_new();
    if (!c) return WM_ERR_NOMEM;
    enum wm_err err = codec_set_string(c, "encoding", as_utf8 ? "utf-8" : "base64");
    if (err == WM_OK) err = set_content_value(c, bytes, a->content_len, as_utf8);
    if (err != WM_OK) {
        wm_json_free(&c);
        return err;
    }
    return wm_json_object_set(root, "content", c);
}

static enum wm_err put_sum(struct wm_json *root, const struct announce *a)
{
    char value[SUM_TEXT_MAX];
    enum wm_err err = integrity_value_format(&a->sum, value, sizeof value);
    if (err != WM_OK) return err;
    return codec_set_sum(root, a->sum_is_identity ? "identity" : "integrity", a->sum.method, value);
}

static enum wm_err put_size(struct wm_json *root, const struct announce *a)
{
    if (a->size < 0) return WM_OK;
    struct wm_json *n = wm_json_integer_new(a->size);
    if (!n) return WM_ERR_NOMEM;
    return wm_json_object_set(root, "size", n);
}

enum wm_err codec_v03_encode(const struct announce *a, struct wm_json **out)
{
    struct wm_json *root = wm_json_object_new();
    if (!root) return WM_ERR_NOMEM;
    enum wm_err err = codec_set_pubtime(root, "pubTime", a, true);
    if (err == WM_OK) err = codec_set_string(root, "baseUrl", a->base_url);
    if (err == WM_OK) err = codec_set_string(root, "relPath", a->rel_path);
    if (err == WM_OK) err = put_sum(root, a);
    if (err == WM_OK && a->retrieve_path)
        err = codec_set_string(root, "retrievePath", a->retrieve_path);
    if (err == WM_OK) err = put_size(root, a);
    if (err == WM_OK) err = put_content(root, a);
    if (err == WM_OK) err = codec_copy_members(a->extra, root, v03_keys);
    if (err != WM_OK) {
        wm_json_free(&root);
        return err;
    }
    *out = root;
    return WM_OK;
}
