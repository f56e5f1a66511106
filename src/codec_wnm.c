/* codec_wnm.c: WIS2 notification messages (GeoJSON features, docs/PROTOCOL.md) and announce. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "codec_formats.h"
#include "codec_util.h"
#include "integrity.h"
#include "json.h"
#include "text.h"
#include "url.h"

/* Decoding maps:  properties.data_id -> rel_path; the canonical or update link's href ->
 * download_url; that href without its last path segment -> base_url (for display, and so that a
 * v03 form of the announcement still names the file: the segment goes to retrieve_path when it
 * carries no query or fragment); properties.pubtime -> pubtime_ns and pubtime_digits;
 * properties.integrity -> sum; properties.content -> content; the link's length -> size; the
 * whole message -> extra. Encoding re-publishes the message held in extra (or builds a minimal
 * one) with a new id, the link pointing at the copy and everything else unchanged. */

#define SUM_TEXT_MAX (2 * WM_SUM_MAX_LEN + 8)
#define TIME_TEXT_MAX 48

/* What a minimal message built from another format looks like before its values are set. */
static const char skeleton_text[] =
    "{\"id\":\"\",\"conformsTo\":[\"http://wis.wmo.int/spec/wnm/1/conf/core\"],"
    "\"type\":\"Feature\",\"geometry\":null,"
    "\"properties\":{\"pubtime\":\"\",\"datetime\":\"\",\"data_id\":\"\",\"integrity\":null},"
    "\"links\":[{\"href\":\"\",\"rel\":\"canonical\",\"type\":\"application/octet-stream\"}]}";

/* ---- the link that says where the data is ---- */

static bool is_main_rel(const char *rel)
{
    return rel && (strcmp(rel, "canonical") == 0 || strcmp(rel, "update") == 0 ||
                   strcmp(rel, "deletion") == 0);
}

/* The one link of rel canonical, update or deletion in links (borrowed), or NULL with why. */
static struct wm_json *main_link(const struct wm_json *links, char *why, size_t whylen)
{
    if (!wm_json_is_array(links)) {
        codec_why(why, whylen, links ? "links must be an array" : "links missing");
        return NULL;
    }
    struct wm_json *found = NULL;
    for (size_t i = 0; i < wm_json_array_size(links); i++) {
        struct wm_json *link = wm_json_array_get(links, i);
        if (!wm_json_is_object(link)) {
            codec_why(why, whylen, "links[%zu] must be an object", i);
            return NULL;
        }
        if (!is_main_rel(wm_json_string(wm_json_object_get(link, "rel"), NULL))) continue;
        if (found) {
            codec_why(why, whylen, "more than one canonical, update or deletion link");
            return NULL;
        }
        found = link;
    }
    if (!found) codec_why(why, whylen, "no canonical, update or deletion link");
    return found;
}

static const char *link_rel(const struct wm_json *link)
{
    return wm_json_string(wm_json_object_get(link, "rel"), NULL);
}

/* ---- decoding ---- */

static enum wm_err take_shape(const struct wm_json *root, char *why, size_t whylen)
{
    const char *s;
    enum wm_err err =
        codec_check_string(wm_json_object_get(root, "id"), "id", &s, NULL, why, whylen);
    if (err != WM_OK) return err;
    if (!wm_json_is_array(wm_json_object_get(root, "conformsTo"))) {
        codec_why(why, whylen, "conformsTo must be an array");
        return WM_ERR_INVAL;
    }
    s = wm_json_string(wm_json_object_get(root, "type"), NULL);
    if (!s || strcmp(s, "Feature") != 0) {
        codec_why(why, whylen, "type must be \"Feature\"");
        return WM_ERR_INVAL;
    }
    const struct wm_json *g = wm_json_object_get(root, "geometry");
    if (!g || (!wm_json_is_object(g) && wm_json_type(g) != WM_JSON_NULL)) {
        codec_why(why, whylen, "geometry must be an object or null");
        return WM_ERR_INVAL;
    }
    if (!wm_json_is_object(wm_json_object_get(root, "properties"))) {
        codec_why(why, whylen, "properties must be an object");
        return WM_ERR_INVAL;
    }
    return WM_OK;
}

/* props[key] must be an RFC 3339 time (in UTC when want_utc); *ns and *digits get its value. */
static enum wm_err check_time(const struct wm_json *props, const char *key, int64_t *ns,
                              int *digits, bool want_utc, char *why, size_t whylen)
{
    char name[40];
    codec_why(name, sizeof name, "properties.%s", key);
    const char *s;
    enum wm_err err =
        codec_check_string(wm_json_object_get(props, key), name, &s, NULL, why, whylen);
    if (err != WM_OK) return err;
    int offset = 0;
    if (codec_rfc3339_parse(s, ns, digits, &offset) != WM_OK || (want_utc && offset != 0)) {
        codec_why(why, whylen, "%s is not an RFC 3339 %stime (1970-2261)", name,
                  want_utc ? "UTC " : "");
        return WM_ERR_INVAL;
    }
    return WM_OK;
}

static enum wm_err take_times(const struct wm_json *props, struct announce *a, char *why,
                              size_t whylen)
{
    enum wm_err err =
        check_time(props, "pubtime", &a->pubtime_ns, &a->pubtime_digits, true, why, whylen);
    if (err != WM_OK) return err;
    int64_t ns;
    const struct wm_json *dt = wm_json_object_get(props, "datetime");
    bool range =
        wm_json_object_get(props, "start_datetime") || wm_json_object_get(props, "end_datetime");
    /* The schema's oneOf: an instant (null when none can be given) or a range, never both. */
    if (dt && range) {
        codec_why(why, whylen, "properties.datetime together with start_datetime/end_datetime");
        return WM_ERR_INVAL;
    }
    if (dt && wm_json_type(dt) == WM_JSON_NULL) return WM_OK;
    if (dt) return check_time(props, "datetime", &ns, NULL, false, why, whylen);
    if (!range) {
        codec_why(why, whylen, "properties.datetime (or start_datetime and end_datetime) missing");
        return WM_ERR_INVAL;
    }
    err = check_time(props, "start_datetime", &ns, NULL, false, why, whylen);
    if (err == WM_OK) err = check_time(props, "end_datetime", &ns, NULL, false, why, whylen);
    return err;
}

/* properties.integrity is optional (WNM REC_integrity): without it the digest is computed on
 * download (COD, SHA-512) and given out. A value that does not decode is the publisher's
 * mistake about the data, not about the message: it is kept as an empty digest, which no
 * content matches, so the data is fetched and refused as a mismatch. */
static enum wm_err take_integrity(const struct wm_json *props, struct announce *a, char *why,
                                  size_t whylen)
{
    const struct wm_json *obj = wm_json_object_get(props, "integrity");
    if (!obj) {
        a->sum = (struct wm_checksum){.method = WM_SUM_COD, .cod_method = WM_SUM_SHA512};
        return WM_OK;
    }
    if (!wm_json_is_object(obj)) {
        codec_why(why, whylen, "properties.integrity must be an object");
        return WM_ERR_INVAL;
    }
    const char *method, *value;
    enum wm_err err = codec_check_string(wm_json_object_get(obj, "method"),
                                         "properties.integrity.method", &method, NULL, why, whylen);
    if (err != WM_OK) return err;
    enum wm_sum m = integrity_method_from_name(method);
    if (!integrity_is_digest(m)) {
        codec_why(why, whylen, "properties.integrity.method must be a digest such as sha512");
        return WM_ERR_METHOD;
    }
    err = codec_check_string(wm_json_object_get(obj, "value"), "properties.integrity.value", &value,
                             NULL, why, whylen);
    if (err != WM_OK) return err;
    const char *reason = "";
    if (integrity_value_parse_why(m, value, &a->sum, &reason) != WM_OK)
        a->sum = (struct wm_checksum){.method = m, .len = 0};
    return WM_OK;
}

/* Fills a's content from a content object {encoding, value, size}. */
static enum wm_err content_from(const struct wm_json *c, struct announce *a, char *why,
                                size_t whylen)
{
    if (!wm_json_is_object(c)) {
        codec_why(why, whylen, "properties.content must be an object");
        return WM_ERR_INVAL;
    }
    const char *enc;
    enum wm_err err = codec_check_string(wm_json_object_get(c, "encoding"),
                                         "properties.content.encoding", &enc, NULL, why, whylen);
    if (err != WM_OK) return err;
    size_t len = 0;
    const char *s = wm_json_string(wm_json_object_get(c, "value"), &len);
    if (!s || strlen(s) != len) {
        codec_why(why, whylen, "properties.content.value must be a string without NUL characters");
        return WM_ERR_INVAL;
    }
    if (len >= WNM_CONTENT_MAX) {
        codec_why(why, whylen, "properties.content.value is %zu bytes, WIS2 allows under %d", len,
                  WNM_CONTENT_MAX);
        return WM_ERR_TOOBIG;
    }
    int64_t size;
    if (!wm_json_integer(wm_json_object_get(c, "size"), &size) || size < 0) {
        codec_why(why, whylen, "properties.content.size must be a non-negative integer");
        return WM_ERR_INVAL;
    }
    err = announce_set_content(a, enc, s, len, "properties.content", why, whylen);
    if (err == WM_OK && (uint64_t)size != a->content_len) {
        codec_why(why, whylen, "properties.content.size %lld but the value decodes to %zu bytes",
                  (long long)size, a->content_len);
        err = WM_ERR_INVAL;
    }
    return err;
}

/* base_url: href up to its last '/' within the path (for display; the whole href when it has
 * no path); retrieve_path: the last segment, when not empty and no query or fragment follows. */
static enum wm_err split_href(const char *href, struct announce *a)
{
    size_t len = strlen(href), end = strcspn(href, "?#"), start = 0, cut = 0;
    const char *scheme = strstr(href, "://");
    if (scheme && (size_t)(scheme - href) < end) start = (size_t)(scheme - href) + 3;
    start += strcspn(href + start, "/?#"); /* past the authority */
    for (size_t i = start; i < end; i++)
        if (href[i] == '/') cut = i;
    bool found = cut > 0 && href[cut] == '/';
    a->base_url = found ? strndup(href, cut) : strdup(href);
    if (!a->base_url) return WM_ERR_NOMEM;
    if (found && end == len && cut + 1 < len) {
        a->retrieve_path = strdup(href + cut + 1);
        if (!a->retrieve_path) return WM_ERR_NOMEM;
    }
    return WM_OK;
}

static enum wm_err take_link(const struct wm_json *root, struct announce *a, char *why,
                             size_t whylen)
{
    const struct wm_json *link = main_link(wm_json_object_get(root, "links"), why, whylen);
    if (!link) return WM_ERR_INVAL;
    if (strcmp(link_rel(link), "deletion") == 0) {
        /* Files are only ever added to a tree: a deletion is refused, and nothing is removed. */
        codec_why(why, whylen, "deletion links not supported (data_id %s left as it is)",
                  a->rel_path);
        return WM_ERR_NOTSUP;
    }
    enum wm_err err = codec_take_string(wm_json_object_get(link, "href"), "links[].href",
                                        &a->download_url, why, whylen);
    if (err != WM_OK) return err;
    const struct wm_json *length = wm_json_object_get(link, "length");
    if (length && (!wm_json_integer(length, &a->size) || a->size < 0)) {
        codec_why(why, whylen, "links[].length must be a non-negative integer");
        return WM_ERR_INVAL;
    }
    return split_href(a->download_url, a);
}

enum wm_err codec_wnm_decode(const struct wm_json *root, struct announce *a, char *why,
                             size_t whylen)
{
    enum wm_err err = take_shape(root, why, whylen);
    if (err != WM_OK) return err;
    const struct wm_json *props = wm_json_object_get(root, "properties");
    err = take_times(props, a, why, whylen);
    if (err == WM_OK)
        err = codec_take_string(wm_json_object_get(props, "data_id"), "properties.data_id",
                                &a->rel_path, why, whylen);
    if (err == WM_OK) err = take_integrity(props, a, why, whylen);
    const struct wm_json *content = wm_json_object_get(props, "content");
    if (err == WM_OK && content) err = content_from(content, a, why, whylen);
    if (err == WM_OK) err = take_link(root, a, why, whylen);
    if (err == WM_OK && !(a->extra = wm_json_copy(root))) err = WM_ERR_NOMEM;
    return err;
}

bool codec_wnm_is_update(const struct announce *a)
{
    if (!a || a->format != WM_FORMAT_WNM || !a->extra) return false;
    const struct wm_json *link = main_link(wm_json_object_get(a->extra, "links"), NULL, 0);
    return link && strcmp(link_rel(link), "update") == 0;
}

/* ---- UUIDs ---- */

static enum wm_err random_bytes(unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return WM_ERR_IO;
        got += (size_t)n;
    }
    return WM_OK;
}

enum wm_err codec_uuid4(char *out, size_t outlen)
{
    if (!out || outlen <= WM_UUID_LEN) return WM_ERR_INVAL;
    unsigned char b[16];
    if (random_bytes(b, sizeof b) != WM_OK) return WM_ERR_IO;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10xx (RFC 4122) */
    static const char hex[] = "0123456789abcdef";
    size_t j = 0;
    for (size_t i = 0; i < sizeof b; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[j++] = '-';
        out[j++] = hex[b[i] >> 4];
        out[j++] = hex[b[i] & 15];
    }
    out[j] = '\0';
    return WM_OK;
}

/* ---- encoding ---- */

/* The message held in a->extra when a came as WIS2 and it still has the shape we decoded. */
static const struct wm_json *original(const struct announce *a)
{
    if (a->format != WM_FORMAT_WNM || !wm_json_is_object(a->extra)) return NULL;
    if (!wm_json_is_object(wm_json_object_get(a->extra, "properties"))) return NULL;
    const struct wm_json *link = main_link(wm_json_object_get(a->extra, "links"), NULL, 0);
    return link && strcmp(link_rel(link), "deletion") != 0 ? a->extra : NULL;
}

/* A minimal valid message for a that came in another format. */
static enum wm_err skeleton(const struct announce *a, struct wm_json **out)
{
    enum wm_err err = wm_json_parse(skeleton_text, sizeof skeleton_text - 1, out, NULL, 0);
    if (err != WM_OK) return WM_ERR_NOMEM; /* the text is valid: only memory can fail */
    struct wm_json *props = wm_json_object_get(*out, "properties");
    char when[TIME_TEXT_MAX];
    const char *data_id = a->rel_path + strspn(a->rel_path, "/");
    err = codec_rfc3339_format(a->pubtime_ns, a->pubtime_digits, when, sizeof when);
    if (err == WM_OK) err = codec_set_string(props, "datetime", when);
    if (err == WM_OK) err = codec_set_string(props, "data_id", *data_id ? data_id : a->rel_path);
    if (err != WM_OK) wm_json_free(out);
    return err;
}

/* pubtime is never changed by intermediaries: the original text stays when it says the same. */
static enum wm_err put_pubtime(struct wm_json *props, const struct announce *a)
{
    const char *old = wm_json_string(wm_json_object_get(props, "pubtime"), NULL);
    int64_t ns;
    int digits, offset;
    if (old && codec_rfc3339_parse(old, &ns, &digits, &offset) == WM_OK && offset == 0 &&
        ns == a->pubtime_ns && digits == a->pubtime_digits)
        return WM_OK;
    char when[TIME_TEXT_MAX];
    enum wm_err err = codec_rfc3339_format(a->pubtime_ns, a->pubtime_digits, when, sizeof when);
    return err == WM_OK ? codec_set_string(props, "pubtime", when) : err;
}

/* A checksum not known yet (computed on download) or not decodable leaves the original's
 * integrity as it came: only the message a came as is encoded so (journal, outbox origin). */
static enum wm_err put_integrity(struct wm_json *props, const struct announce *a, bool orig)
{
    bool full =
        integrity_is_digest(a->sum.method) && a->sum.len == integrity_digest_len(a->sum.method);
    if (!full && orig && (a->sum.method == WM_SUM_COD || a->sum.len == 0)) return WM_OK;
    if (!full) return WM_ERR_METHOD;
    char value[SUM_TEXT_MAX];
    enum wm_err err = text_base64_encode(a->sum.value, a->sum.len, value, sizeof value);
    if (err != WM_OK) return err;
    return codec_set_sum(props, "integrity", a->sum.method, value);
}

/* True when the content object c says exactly what a holds, so it can go out as it came. */
static bool content_unchanged(const struct wm_json *c, const struct announce *a)
{
    struct announce seen = {.size = -1};
    bool same = c && content_from(c, &seen, NULL, 0) == WM_OK &&
                seen.content_encoding == a->content_encoding &&
                seen.content_len == a->content_len &&
                (a->content_len == 0 || memcmp(seen.content, a->content, a->content_len) == 0);
    free(seen.content);
    return same;
}

/* The value of a's content as text: UTF-8 kept when it came so and is valid, else base64.
 * *value is NULL when the text would be too big for WIS2. */
static enum wm_err content_value(const struct announce *a, const char **enc, struct wm_json **value)
{
    const unsigned char *bytes = a->content ? a->content : (const unsigned char *)"";
    size_t len = a->content_len;
    *value = NULL;
    if (a->content_encoding == WM_CONTENT_UTF8 && !memchr(bytes, 0, len)) {
        *enc = "utf-8";
        if (len >= WNM_CONTENT_MAX) return WM_OK;
        *value = wm_json_string_new((const char *)bytes, len);
        if (*value) return WM_OK;
        if (errno != EILSEQ) return WM_ERR_NOMEM;
    }
    *enc = "base64";
    if (len > WNM_CONTENT_MAX / 4 * 3) return WM_OK; /* its base64 would not fit */
    char text[WNM_CONTENT_MAX + 8];
    enum wm_err err = text_base64_encode(bytes, len, text, sizeof text);
    if (err != WM_OK) return err;
    size_t tlen = strlen(text);
    if (tlen >= WNM_CONTENT_MAX) return WM_OK;
    *value = wm_json_string_new(text, tlen);
    return *value ? WM_OK : WM_ERR_NOMEM;
}

static enum wm_err set_integer(struct wm_json *obj, const char *key, int64_t v)
{
    struct wm_json *n = wm_json_integer_new(v);
    return n ? wm_json_object_set(obj, key, n) : WM_ERR_NOMEM;
}

/* Inline content as it came; dropped (the link still serves the file) when too big for WIS2. */
static enum wm_err put_content(struct wm_json *props, const struct announce *a)
{
    struct wm_json *old = wm_json_object_get(props, "content");
    if (a->content_encoding != WM_CONTENT_NONE && content_unchanged(old, a)) return WM_OK;
    if (old) wm_json_object_del(props, "content");
    if (a->content_encoding == WM_CONTENT_NONE) return WM_OK;
    if (!a->content && a->content_len) return WM_ERR_INVAL;
    const char *enc = "";
    struct wm_json *value = NULL;
    enum wm_err err = content_value(a, &enc, &value);
    if (err != WM_OK || !value) return err;
    struct wm_json *c = wm_json_object_new();
    if (!c) {
        wm_json_free(&value);
        return WM_ERR_NOMEM;
    }
    err = codec_set_string(c, "encoding", enc);
    if (err == WM_OK)
        err = wm_json_object_set(c, "value", value);
    else
        wm_json_free(&value);
    if (err == WM_OK) err = set_integer(c, "size", (int64_t)a->content_len);
    if (err == WM_OK) return wm_json_object_set(props, "content", c);
    wm_json_free(&c);
    return err;
}

/* The link points at a->download_url while a still names its source, else at the copy served
 * from a->base_url; its length is a->size when known. */
static enum wm_err put_link(struct wm_json *root, const struct announce *a)
{
    struct wm_json *link = main_link(wm_json_object_get(root, "links"), NULL, 0);
    if (!link) return WM_ERR_INVAL;
    char *href = a->download_url ? strdup(a->download_url) : url_join(a->base_url, a->rel_path);
    if (!href) return WM_ERR_NOMEM;
    /* Escaping can make it longer than codec_decode accepts. */
    enum wm_err err =
        strlen(href) > CODEC_MAX_FIELD ? WM_ERR_TOOBIG : codec_set_string(link, "href", href);
    free(href);
    if (err != WM_OK) return err;
    if (a->size >= 0) return set_integer(link, "length", a->size);
    if (wm_json_object_get(link, "length")) return wm_json_object_del(link, "length");
    return WM_OK;
}

/* A cache re-publishing (its link now points at base_url) names itself in global-cache. */
static enum wm_err put_global_cache(struct wm_json *props, const struct announce *a)
{
    struct wm_url u = {0};
    enum wm_err err = url_parse(a->base_url, &u);
    if (err == WM_ERR_NOMEM) return err;
    if (err != WM_OK) return WM_OK; /* no host to name */
    err = u.host && u.host[0] ? codec_set_string(props, "global-cache", u.host) : WM_OK;
    url_clear(&u);
    return err;
}

static enum wm_err put_id(struct wm_json *root)
{
    char id[WM_UUID_LEN + 1];
    enum wm_err err = codec_uuid4(id, sizeof id);
    return err == WM_OK ? codec_set_string(root, "id", id) : err;
}

enum wm_err codec_wnm_encode(const struct announce *a, struct wm_json **out)
{
    const struct wm_json *orig = original(a);
    struct wm_json *root = NULL;
    enum wm_err err = WM_OK;
    if (orig && !(root = wm_json_copy(orig))) return WM_ERR_NOMEM;
    if (!orig && (err = skeleton(a, &root)) != WM_OK) return err;
    struct wm_json *props = wm_json_object_get(root, "properties");
    err = put_id(root);
    if (err == WM_OK && orig) err = codec_set_string(props, "data_id", a->rel_path);
    if (err == WM_OK) err = put_pubtime(props, a);
    if (err == WM_OK) err = put_integrity(props, a, orig != NULL);
    if (err == WM_OK) err = put_content(props, a);
    if (err == WM_OK) err = put_link(root, a);
    if (err == WM_OK && a->global_cache)
        err = codec_set_string(props, "global-cache", a->global_cache);
    else if (err == WM_OK && orig && !a->download_url)
        err = put_global_cache(props, a);
    if (err != WM_OK) {
        wm_json_free(&root);
        return err;
    }
    *out = root;
    return WM_OK;
}

/* ---- Global Cache ---- */

static const struct wm_json *wnm_props(const struct announce *a)
{
    if (!a || a->format != WM_FORMAT_WNM || !wm_json_is_object(a->extra)) return NULL;
    return wm_json_object_get(a->extra, "properties");
}

bool codec_wnm_cache_false(const struct announce *a)
{
    const struct wm_json *c = wm_json_object_get(wnm_props(a), "cache");
    return c && wm_json_type(c) == WM_JSON_FALSE;
}

const char *codec_wnm_global_cache(const struct announce *a)
{
    return wm_json_string(wm_json_object_get(wnm_props(a), "global-cache"), NULL);
}

enum wm_err codec_wnm_passthrough(const struct announce *a, char **out, size_t *outlen)
{
    if (!wnm_props(a) || !out || !outlen) return WM_ERR_INVAL;
    struct wm_json *root = wm_json_copy(a->extra);
    if (!root) return WM_ERR_NOMEM;
    enum wm_err err = put_id(root);
    if (err == WM_OK) err = wm_json_dump(root, out, outlen);
    wm_json_free(&root);
    return err;
}
