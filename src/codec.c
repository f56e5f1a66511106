/* codec.c: format sniffing and dispatch to the per-format codecs. */
#include "codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec_formats.h"
#include "codec_util.h"
#include "integrity.h"
#include "json.h"

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A WIS2 notification is a GeoJSON Feature; a v03 message always has relPath. */
static bool looks_like_wnm(const struct wm_json *root)
{
    if (wm_json_object_get(root, "relPath")) return false;
    const char *type = wm_json_string(wm_json_object_get(root, "type"), NULL);
    if (type && strcmp(type, "Feature") == 0) return true;
    return wm_json_object_get(root, "properties") != NULL;
}

static enum wm_err decode_root(const struct wm_json *root, struct announce *a, char *why,
                               size_t whylen)
{
    if (wm_json_is_array(root)) {
        a->format = WM_FORMAT_ARRAY;
        return codec_array_decode(root, a, why, whylen);
    }
    if (!wm_json_is_object(root)) {
        codec_why(why, whylen, "neither a JSON array nor a JSON object");
        return WM_ERR_FORMAT;
    }
    if (looks_like_wnm(root)) {
        a->format = WM_FORMAT_WNM;
        return codec_wnm_decode(root, a, why, whylen);
    }
    a->format = WM_FORMAT_V03;
    return codec_v03_decode(root, a, why, whylen);
}

enum wm_err codec_decode(const char *payload, size_t len, struct announce **out, char *why,
                         size_t whylen)
{
    codec_why(why, whylen, "%s", "");
    if (!out) return WM_ERR_INVAL;
    *out = NULL;
    if (!payload) {
        codec_why(why, whylen, "no payload");
        return WM_ERR_INVAL;
    }
    if (len > WM_CODEC_MAX_PAYLOAD) {
        codec_why(why, whylen, "message larger than %d bytes", WM_CODEC_MAX_PAYLOAD);
        return WM_ERR_TOOBIG;
    }
    size_t i = 0;
    while (i < len && is_blank(payload[i]))
        i++;
    if (i == len || (payload[i] != '[' && payload[i] != '{')) {
        codec_why(why, whylen, "neither a JSON array nor a JSON object");
        return WM_ERR_FORMAT;
    }
    struct wm_json *root = NULL;
    struct announce *a = NULL;
    enum wm_err err = wm_json_parse(payload + i, len - i, &root, why, whylen);
    if (err != WM_OK) goto fail;
    a = announce_new();
    if (!a) {
        err = WM_ERR_NOMEM;
        goto fail;
    }
    err = decode_root(root, a, why, whylen);
    if (err != WM_OK) goto fail;
    wm_json_free(&root);
    *out = a;
    return WM_OK;
fail:
    if (why && whylen && !why[0]) codec_why(why, whylen, "%s", wm_strerror(err));
    announce_free(&a);
    wm_json_free(&root);
    return err;
}

/* What codec_check_string accepts on the way in. */
static bool field_ok(const char *s)
{
    return s && s[0] && strnlen(s, CODEC_MAX_FIELD + 1) <= CODEC_MAX_FIELD;
}

/* A WIS2 announcement keeps its whole original message in extra, for the WIS2 encoder only:
 * none of it is forwarded into v03 or array messages, which get the interpreted fields. */
static const struct announce *without_wnm_extra(const struct announce *a, struct announce *view)
{
    if (a->format != WM_FORMAT_WNM) return a;
    *view = *a;
    view->extra = NULL;
    return view;
}

enum wm_err codec_encode_within(struct announce *a, enum wm_format fmt, size_t max, char **out,
                                size_t *outlen)
{
    enum wm_err err = codec_encode(a, fmt, out, outlen);
    if (err != WM_OK || *outlen <= max || a->content_encoding == WM_CONTENT_NONE) return err;
    free(*out);
    *out = NULL;
    free(a->content);
    a->content = NULL;
    a->content_len = 0;
    a->content_encoding = WM_CONTENT_NONE;
    return codec_encode(a, fmt, out, outlen);
}

size_t codec_inline_capacity(enum wm_format fmt)
{
    switch (fmt) {
    case WM_FORMAT_V03:
        return SIZE_MAX;
    case WM_FORMAT_WNM:
        return (WNM_CONTENT_MAX - 1) / 4 * 3; /* 4 base64 characters per 3 bytes, under the max */
    default:
        return 0;
    }
}

enum wm_err codec_encode(const struct announce *a, enum wm_format fmt, char **out, size_t *outlen)
{
    if (!out) return WM_ERR_INVAL;
    *out = NULL;
    if (!a || !field_ok(a->base_url) || !field_ok(a->rel_path)) return WM_ERR_INVAL;
    if (a->retrieve_path && !field_ok(a->retrieve_path)) return WM_ERR_INVAL;
    if (a->extra && !wm_json_is_object(a->extra)) return WM_ERR_INVAL;
    /* A digest that did not decode (a WIS2 message's, refused only after its download) has no
     * form in the formats that carry the value itself. */
    bool partial =
        integrity_is_digest(a->sum.method) && a->sum.len != integrity_digest_len(a->sum.method);
    if (partial && fmt != WM_FORMAT_WNM) return WM_ERR_METHOD;
    struct wm_json *root = NULL;
    struct announce view;
    enum wm_err err;
    switch (fmt) {
    case WM_FORMAT_ARRAY:
        err = codec_array_encode(without_wnm_extra(a, &view), &root);
        break;
    case WM_FORMAT_V03:
        err = codec_v03_encode(without_wnm_extra(a, &view), &root);
        break;
    case WM_FORMAT_WNM:
        err = codec_wnm_encode(a, &root);
        break;
    default:
        return WM_ERR_FORMAT;
    }
    if (err != WM_OK) goto done;
    /* Never send what no decoder (ours included) would accept. */
    if (wm_json_depth(root) > WM_JSON_MAX_DEPTH) {
        err = WM_ERR_TOOBIG;
        goto done;
    }
    size_t n = 0;
    err = wm_json_dump(root, out, &n);
    if (err == WM_OK && n > WM_CODEC_MAX_PAYLOAD) {
        free(*out);
        *out = NULL;
        err = WM_ERR_TOOBIG;
    }
    if (err == WM_OK && outlen) *outlen = n;
done:
    wm_json_free(&root);
    return err;
}
