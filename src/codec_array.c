/* codec_array.c: the WMO mesh demo's array [pubTime, baseUrl, relPath, {headers}] and announce. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec_formats.h"
#include "codec_util.h"
#include "integrity.h"
#include "json.h"
#include "text.h"

#define ARRAY_LEN 4
#define SUM_TEXT_MAX (2 * WM_SUM_MAX_LEN + 8) /* "<letter>,<hex of the longest digest>" */

static const char *const header_keys[] = {"sum", NULL};

/* headers.sum is "<letter>,<value>": hex for digests, an algorithm letter after "z", opaque
 * text after "0" (random) and "a" (arbitrary). */
static enum wm_err parse_sum(const char *s, size_t len, struct wm_checksum *sum, char *why,
                             size_t whylen)
{
    if (len < 2 || s[1] != ',') {
        codec_why(why, whylen, "headers.sum must look like \"<letter>,<value>\"");
        return WM_ERR_INVAL;
    }
    enum wm_sum m = integrity_method_from_letter(s[0]);
    if (m == WM_SUM_NONE) {
        codec_why(why, whylen, "unknown checksum method letter in headers.sum");
        return WM_ERR_METHOD;
    }
    const char *reason = "";
    enum wm_err err = integrity_value_parse_why(m, s + 2, sum, &reason);
    if (err != WM_OK) codec_why(why, whylen, "bad headers.sum: %s", reason);
    return err;
}

static enum wm_err take_headers(const struct wm_json *headers, struct announce *a, char *why,
                                size_t whylen)
{
    if (!wm_json_is_object(headers)) {
        codec_why(why, whylen, "headers (element 4) must be an object");
        return WM_ERR_INVAL;
    }
    const char *s;
    size_t len;
    enum wm_err err = codec_check_string(wm_json_object_get(headers, "sum"), "headers.sum", &s,
                                         &len, why, whylen);
    if (err == WM_OK) err = parse_sum(s, len, &a->sum, why, whylen);
    if (err != WM_OK) return err;
    struct wm_json *extra = wm_json_object_new();
    if (!extra) return WM_ERR_NOMEM;
    err = codec_copy_members(headers, extra, header_keys);
    if (err != WM_OK || wm_json_object_size(extra) == 0) wm_json_free(&extra);
    a->extra = extra;
    return err;
}

enum wm_err codec_array_decode(const struct wm_json *root, struct announce *a, char *why,
                               size_t whylen)
{
    size_t n = wm_json_array_size(root);
    if (n != ARRAY_LEN) {
        codec_why(why, whylen, "array format needs 4 elements, got %zu", n);
        return WM_ERR_INVAL;
    }
    enum wm_err err =
        codec_take_pubtime(wm_json_array_get(root, 0), "pubTime (element 1)", a, why, whylen);
    if (err == WM_OK)
        err = codec_take_string(wm_json_array_get(root, 1), "baseUrl (element 2)", &a->base_url,
                                why, whylen);
    if (err == WM_OK)
        err = codec_take_string(wm_json_array_get(root, 2), "relPath (element 3)", &a->rel_path,
                                why, whylen);
    if (err == WM_OK) err = take_headers(wm_json_array_get(root, 3), a, why, whylen);
    return err;
}

/* The sum header of a; WM_ERR_METHOD when the method has no letter in this format. */
static enum wm_err format_sum(const struct wm_checksum *sum, char *out, size_t outlen)
{
    char letter = integrity_method_letter(sum->method);
    if (!letter) return WM_ERR_METHOD;
    int n = snprintf(out, outlen, "%c,", letter);
    if (n < 0 || (size_t)n >= outlen) return WM_ERR_TOOBIG;
    char *value = out + n;
    size_t room = outlen - (size_t)n;
    switch (sum->method) {
    case WM_SUM_COD: {
        char cod = integrity_method_letter(sum->cod_method);
        if (!cod || !integrity_is_digest(sum->cod_method)) return WM_ERR_METHOD;
        return snprintf(value, room, "%c", cod) == 1 ? WM_OK : WM_ERR_TOOBIG;
    }
    case WM_SUM_RANDOM:
    case WM_SUM_ARBITRARY:
        return integrity_value_format(sum, value, room);
    default:
        if (sum->len != integrity_digest_len(sum->method)) return WM_ERR_INVAL;
        return text_hex_encode(sum->value, sum->len, value, room);
    }
}

static enum wm_err put_headers(struct wm_json *root, const struct announce *a)
{
    char sum[SUM_TEXT_MAX];
    enum wm_err err = format_sum(&a->sum, sum, sizeof sum);
    if (err != WM_OK) return err;
    struct wm_json *headers = wm_json_object_new();
    if (!headers) return WM_ERR_NOMEM;
    err = codec_set_string(headers, "sum", sum);
    if (err == WM_OK) err = codec_copy_members(a->extra, headers, header_keys);
    if (err != WM_OK) {
        wm_json_free(&headers);
        return err;
    }
    return wm_json_array_append(root, headers);
}

static enum wm_err append_string(struct wm_json *arr, const char *text)
{
    struct wm_json *s = wm_json_string_new(text, strlen(text));
    if (!s) return errno == ENOMEM ? WM_ERR_NOMEM : WM_ERR_INVAL; /* or not UTF-8 */
    return wm_json_array_append(arr, s);
}

enum wm_err codec_array_encode(const struct announce *a, struct wm_json **out)
{
    char pubtime[48];
    enum wm_err err =
        codec_pubtime_format(a->pubtime_ns, a->pubtime_digits, false, pubtime, sizeof pubtime);
    if (err != WM_OK) return err;
    struct wm_json *root = wm_json_array_new();
    if (!root) return WM_ERR_NOMEM;
    err = append_string(root, pubtime);
    if (err == WM_OK) err = append_string(root, a->base_url);
    if (err == WM_OK) err = append_string(root, a->rel_path);
    if (err == WM_OK) err = put_headers(root, a);
    if (err != WM_OK) {
        wm_json_free(&root);
        return err;
    }
    *out = root;
    return WM_OK;
}
