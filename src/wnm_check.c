/* wnm_check.c: WIS2 Notification Message checks for the Global Broker (wnm_check.h). Each check
 * returns false after writing why; the first failure ends the walk. */
#include "wnm_check.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

#define WNM_CORE "http://wis.wmo.int/spec/wnm/1/conf/core"
#define CONTENT_MAX 4096

struct ctx {
    char *why;
    size_t whylen;
};

static bool bad(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool bad(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, c->whylen, fmt, ap);
    va_end(ap);
    return false;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static int days_in(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/* RFC 3339 section 5.6: full-date "T" full-time, T and Z in either case. */
bool wnm_rfc3339(const char *s, size_t len, bool utc_only)
{
    int year, month, day, hour, min, sec;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return false;
    if (!digits(s, 4, &year) || !digits(s + 5, 2, &month) || !digits(s + 8, 2, &day) ||
        !digits(s + 11, 2, &hour) || !digits(s + 14, 2, &min) || !digits(s + 17, 2, &sec))
        return false;
    if (month < 1 || month > 12 || day < 1 || day > days_in(year, month) || hour > 23 || min > 59 ||
        sec > 60)
        return false;
    size_t i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start) return false;
    }
    if (i == len) return false;
    if (s[i] == 'Z' || s[i] == 'z') return i + 1 == len;
    int oh, om;
    if (len - i != 6 || (s[i] != '+' && s[i] != '-') || s[i + 3] != ':' ||
        !digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
        return false;
    /* "-00:00" says the offset is unknown: not UTC. */
    return !utc_only || (s[i] == '+' && oh == 0 && om == 0);
}

bool wnm_uuid(const char *s, size_t len)
{
    if (len != WNM_ID_LEN) return false;
    for (size_t i = 0; i < len; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char ch = s[i];
        bool hex = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
        if (dash ? ch != '-' : !hex) return false;
    }
    return true;
}

/* Member key of obj, which must be a string when present (required or not). */
static bool string_member(struct ctx *c, const struct wm_json *obj, const char *where,
                          const char *key, bool required, const char **out, size_t *len)
{
    const struct wm_json *v = wm_json_object_get(obj, key);
    *out = NULL;
    if (!v) return required ? bad(c, "%s%s missing", where, key) : true;
    if (!(*out = wm_json_string(v, len))) return bad(c, "%s%s is not a string", where, key);
    return true;
}

static bool time_member(struct ctx *c, const struct wm_json *props, const char *key, bool required,
                        bool *present)
{
    const char *s;
    size_t len;
    if (!string_member(c, props, "properties.", key, required, &s, &len)) return false;
    *present = s != NULL;
    if (s && !wnm_rfc3339(s, len, true))
        return bad(c, "properties.%s is not an RFC 3339 date-time in UTC", key);
    return true;
}

static bool numbers(const struct wm_json *arr, size_t min)
{
    size_t n = wm_json_array_size(arr);
    double d;
    if (!wm_json_is_array(arr) || n < min) return false;
    for (size_t i = 0; i < n; i++)
        if (!wm_json_number(wm_json_array_get(arr, i), &d)) return false;
    return true;
}

static bool check_geometry(struct ctx *c, const struct wm_json *msg)
{
    const struct wm_json *g = wm_json_object_get(msg, "geometry");
    if (!g) return bad(c, "geometry missing");
    if (wm_json_type(g) == WM_JSON_NULL) return true;
    const char *type = wm_json_string(wm_json_object_get(g, "type"), NULL);
    const struct wm_json *coords = wm_json_object_get(g, "coordinates");
    if (!wm_json_is_object(g) || !type || !coords)
        return bad(c, "geometry is neither null nor a Point or Polygon");
    if (strcmp(type, "Point") == 0) {
        if (!numbers(coords, 2)) return bad(c, "geometry: a Point wants 2 or more numbers");
        return true;
    }
    if (strcmp(type, "Polygon") != 0 || !wm_json_is_array(coords))
        return bad(c, "geometry is neither null nor a Point or Polygon");
    for (size_t i = 0; i < wm_json_array_size(coords); i++) {
        const struct wm_json *ring = wm_json_array_get(coords, i);
        size_t n = wm_json_array_size(ring);
        if (!wm_json_is_array(ring) || n < 4)
            return bad(c, "geometry: a Polygon ring wants 4 or more positions");
        for (size_t j = 0; j < n; j++)
            if (!numbers(wm_json_array_get(ring, j), 2))
                return bad(c, "geometry: a position wants 2 or more numbers");
    }
    return true;
}

static bool check_header(struct ctx *c, const struct wm_json *msg, char id[WNM_ID_LEN + 1])
{
    const char *s;
    size_t len;
    if (!string_member(c, msg, "", "id", true, &s, &len)) return false;
    if (!wnm_uuid(s, len)) return bad(c, "id is not a UUID");
    memcpy(id, s, WNM_ID_LEN);
    id[WNM_ID_LEN] = '\0';
    const struct wm_json *conforms = wm_json_object_get(msg, "conformsTo");
    const struct wm_json *version = wm_json_object_get(msg, "version");
    if (conforms && version) return bad(c, "both conformsTo and version");
    if (!conforms && !version) return bad(c, "conformsTo missing");
    if (version) {
        s = wm_json_string(version, NULL);
        if (!s || strcmp(s, "v04") != 0) return bad(c, "version is not v04");
    } else {
        bool core = false;
        if (!wm_json_is_array(conforms)) return bad(c, "conformsTo is not an array");
        for (size_t i = 0; i < wm_json_array_size(conforms); i++) {
            s = wm_json_string(wm_json_array_get(conforms, i), &len);
            if (s && len == strlen(WNM_CORE) && memcmp(s, WNM_CORE, len) == 0) core = true;
        }
        if (!core) return bad(c, "conformsTo lacks " WNM_CORE);
    }
    if (!string_member(c, msg, "", "type", true, &s, &len)) return false;
    if (strcmp(s, "Feature") != 0) return bad(c, "type is not Feature");
    return check_geometry(c, msg);
}

static bool check_integrity(struct ctx *c, const struct wm_json *props)
{
    static const char *const methods[] = {"sha256",   "sha384",   "sha512",
                                          "sha3-256", "sha3-384", "sha3-512"};
    const struct wm_json *in = wm_json_object_get(props, "integrity");
    const char *s;
    size_t len;
    if (!in) return true;
    if (!wm_json_is_object(in)) return bad(c, "properties.integrity is not an object");
    if (!string_member(c, in, "properties.integrity.", "method", true, &s, &len) ||
        !string_member(c, in, "properties.integrity.", "value", true, &s, &len))
        return false;
    s = wm_json_string(wm_json_object_get(in, "method"), NULL);
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(s, methods[i]) == 0) return true;
    return bad(c, "properties.integrity.method is not a SHA-2 or SHA-3 method");
}

static bool check_content(struct ctx *c, const struct wm_json *props)
{
    const struct wm_json *in = wm_json_object_get(props, "content");
    const char *s;
    size_t len;
    int64_t size;
    if (!in) return true;
    if (!wm_json_is_object(in)) return bad(c, "properties.content is not an object");
    if (!string_member(c, in, "properties.content.", "encoding", true, &s, &len)) return false;
    if (strcmp(s, "utf-8") != 0 && strcmp(s, "base64") != 0 && strcmp(s, "gzip") != 0)
        return bad(c, "properties.content.encoding is not utf-8, base64 or gzip");
    if (!wm_json_integer(wm_json_object_get(in, "size"), &size))
        return bad(c, "properties.content.size is missing or not an integer");
    if (size > CONTENT_MAX) return bad(c, "properties.content.size over %d", CONTENT_MAX);
    if (!string_member(c, in, "properties.content.", "value", true, &s, &len)) return false;
    /* maxLength counts characters: UTF-8 lead bytes. */
    size_t chars = 0;
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)s[i] & 0xc0) != 0x80;
    if (chars > CONTENT_MAX) return bad(c, "properties.content.value over %d", CONTENT_MAX);
    return true;
}

static bool check_properties(struct ctx *c, const struct wm_json *msg)
{
    const struct wm_json *props = wm_json_object_get(msg, "properties");
    const char *s;
    size_t len;
    bool pubtime, start, end, datetime = false;
    if (!props) return bad(c, "properties missing");
    if (!wm_json_is_object(props)) return bad(c, "properties is not an object");
    if (!time_member(c, props, "pubtime", true, &pubtime) ||
        !string_member(c, props, "properties.", "data_id", true, &s, &len))
        return false;
    const struct wm_json *dt = wm_json_object_get(props, "datetime");
    if (dt && wm_json_type(dt) != WM_JSON_NULL) {
        if (!time_member(c, props, "datetime", true, &datetime)) return false;
    }
    datetime = dt != NULL;
    if (!time_member(c, props, "start_datetime", false, &start) ||
        !time_member(c, props, "end_datetime", false, &end))
        return false;
    /* The schema's oneOf: the datetime form or the start/end form, exactly one. */
    if (datetime && start && end) return bad(c, "both datetime and start/end_datetime");
    if (!datetime && !(start && end))
        return bad(c, "neither datetime nor start_datetime and end_datetime");
    const struct wm_json *cache = wm_json_object_get(props, "cache");
    if (cache && wm_json_type(cache) != WM_JSON_TRUE && wm_json_type(cache) != WM_JSON_FALSE)
        return bad(c, "properties.cache is not a boolean");
    if (!string_member(c, props, "properties.", "global-cache", false, &s, &len) ||
        !string_member(c, props, "properties.", "metadata_id", false, &s, &len) ||
        !string_member(c, props, "properties.", "producer", false, &s, &len))
        return false;
    return check_integrity(c, props) && check_content(c, props);
}

static bool href_scheme_ok(const char *href)
{
    return strncmp(href, "https://", 8) == 0 || strncmp(href, "http://", 7) == 0 ||
           strncmp(href, "ftp://", 6) == 0 || strncmp(href, "sftp://", 7) == 0;
}

static bool check_links(struct ctx *c, const struct wm_json *msg)
{
    static const char *const strings[] = {"type", "hreflang", "title"};
    const struct wm_json *links = wm_json_object_get(msg, "links");
    bool data_link = false;
    if (!links) return bad(c, "links missing");
    if (!wm_json_is_array(links) || wm_json_array_size(links) == 0)
        return bad(c, "links is not an array of at least one link");
    for (size_t i = 0; i < wm_json_array_size(links); i++) {
        const struct wm_json *l = wm_json_array_get(links, i);
        const char *rel, *href, *s;
        size_t len;
        int64_t length;
        if (!wm_json_is_object(l)) return bad(c, "links[%zu] is not an object", i);
        if (!string_member(c, l, "links[].", "href", true, &href, &len) ||
            !string_member(c, l, "links[].", "rel", true, &rel, &len))
            return false;
        for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++)
            if (!string_member(c, l, "links[].", strings[k], false, &s, &len)) return false;
        const struct wm_json *lv = wm_json_object_get(l, "length");
        if (lv && !wm_json_integer(lv, &length))
            return bad(c, "links[%zu].length not an integer", i);
        const struct wm_json *sec = wm_json_object_get(l, "security");
        if (sec && !wm_json_is_object(sec)) return bad(c, "links[%zu].security not an object", i);
        if (strcmp(rel, "canonical") == 0 || strcmp(rel, "update") == 0 ||
            strcmp(rel, "deletion") == 0) {
            if (!href_scheme_ok(href))
                return bad(c, "links[%zu].href is not http(s), ftp or sftp", i);
            data_link = true;
        }
    }
    if (!data_link) return bad(c, "no link with rel canonical, update or deletion");
    return true;
}

enum wm_err wnm_check(const struct wm_json *msg, size_t len, char id[WNM_ID_LEN + 1], char *why,
                      size_t whylen)
{
    char scratch[1];
    struct ctx c = {why ? why : scratch, why ? whylen : sizeof scratch};
    if (c.whylen) c.why[0] = '\0';
    if (len > WNM_MESSAGE_MAX) {
        bad(&c, "%zu bytes, over %d", len, WNM_MESSAGE_MAX);
        return WM_ERR_TOOBIG;
    }
    if (!wm_json_is_object(msg)) {
        bad(&c, "not a JSON object");
        return WM_ERR_FORMAT;
    }
    if (!check_header(&c, msg, id) || !check_properties(&c, msg) || !check_links(&c, msg))
        return WM_ERR_FORMAT;
    return WM_OK;
}
