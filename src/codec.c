/* codec.c: format sniffing and dispatch, pubTime (compact and RFC 3339), topics, the xattr
 * checksum form, shared helpers. */
#include "codec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec_internal.h"
#include "json.h"

#define NS_PER_S 1000000000LL
#define YEAR_MIN 1970
#define YEAR_MAX 2261 /* int64 nanoseconds since the epoch run out in April 2262 */

/* ---- shared helpers ---- */

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

/* ---- decode and encode ---- */

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

/* ---- topics ---- */

/* Appends part to out, one level per non-empty '/'-separated piece, escaping the MQTT
 * wildcards '+' and '#' (not allowed in a published topic) as %2B and %23. */
static enum wm_err topic_append(char *out, size_t outlen, size_t *used, const char *part,
                                size_t partlen)
{
    size_t i = 0;
    while (i < partlen) {
        while (i < partlen && part[i] == '/')
            i++;
        if (i == partlen) break;
        if (*used > 0) {
            if (*used + 1 >= outlen) return WM_ERR_TOOBIG;
            out[(*used)++] = '/';
        }
        for (; i < partlen && part[i] != '/'; i++) {
            const char *piece = part[i] == '+' ? "%2B" : part[i] == '#' ? "%23" : NULL;
            size_t n = piece ? 3 : 1;
            if (*used + n >= outlen) return WM_ERR_TOOBIG;
            if (piece)
                memcpy(out + *used, piece, n);
            else
                out[*used] = part[i];
            *used += n;
        }
    }
    out[*used] = '\0';
    return WM_OK;
}

enum wm_err codec_topic(const char *exchange, const char *prefix, const char *rel_path, char *out,
                        size_t outlen)
{
    if (!exchange || !rel_path || !out || outlen == 0) return WM_ERR_INVAL;
    if (!prefix) prefix = "";
    size_t used = 0;
    out[0] = '\0';
    const char *slash = strrchr(rel_path, '/');
    size_t dirlen = slash ? (size_t)(slash - rel_path) : 0;
    enum wm_err err = topic_append(out, outlen, &used, exchange, strlen(exchange));
    if (err == WM_OK) err = topic_append(out, outlen, &used, prefix, strlen(prefix));
    if (err == WM_OK) err = topic_append(out, outlen, &used, rel_path, dirlen);
    if (err != WM_OK) {
        out[0] = '\0';
        return err;
    }
    return used > 0 ? WM_OK : WM_ERR_INVAL;
}

/* Moves *t past the levels of pattern at its start, compared one by one (a level "+" of
 * pattern matches any one level): *t then points at the '/' after them or at the end. */
static enum wm_err skip_levels(const char *pattern, const char **t)
{
    const char *p = pattern, *at = *t;
    for (;;) {
        size_t plen = strcspn(p, "/"), tlen = strcspn(at, "/");
        bool plus = plen == 1 && p[0] == '+';
        if (memchr(p, '#', plen) || (!plus && (plen != tlen || memcmp(p, at, plen) != 0)))
            return WM_ERR_NOTFOUND;
        at += tlen;
        if (!p[plen]) break;
        if (*at != '/') return WM_ERR_NOTFOUND; /* the topic has fewer levels */
        p += plen + 1;
        at++;
    }
    *t = at;
    return WM_OK;
}

/* True when every level of levels (not empty) is non-empty and free of wildcards. */
static bool publishable_levels(const char *levels)
{
    if (!levels[0] || levels[0] == '/') return false;
    for (const char *c = levels; *c; c++) {
        if (*c == '+' || *c == '#') return false;
        if (*c == '/' && (c[1] == '/' || c[1] == '\0')) return false;
    }
    return true;
}

enum wm_err codec_topic_copy(const char *exchange, const char *prefix, const char *topic,
                             const char *post_exchange, const char *post_prefix, char *out,
                             size_t outlen)
{
    if (!exchange || !topic || !post_exchange || !out || outlen == 0) return WM_ERR_INVAL;
    if (!prefix) prefix = "";
    if (!post_prefix) post_prefix = "";
    out[0] = '\0';
    /* The levels subscribed to are "<exchange>/<prefix>/<subtopic>" (peer.c): exchange and
     * prefix are the fixed part, whatever the subtopic matched is copied. */
    const char *t = topic;
    enum wm_err err = skip_levels(exchange, &t);
    if (err == WM_OK && prefix[0]) {
        if (*t != '/') return WM_ERR_NOTFOUND;
        t++;
        err = skip_levels(prefix, &t);
    }
    if (err != WM_OK) return err;
    const char *rest = t;
    if (*rest == '/' && !publishable_levels(++rest)) return WM_ERR_INVAL;
    size_t used = 0;
    err = topic_append(out, outlen, &used, post_exchange, strlen(post_exchange));
    if (err == WM_OK) err = topic_append(out, outlen, &used, post_prefix, strlen(post_prefix));
    if (err == WM_OK) err = topic_append(out, outlen, &used, rest, strlen(rest));
    if (err != WM_OK) {
        out[0] = '\0';
        return err;
    }
    return used > 0 ? WM_OK : WM_ERR_INVAL;
}

/* ---- pubTime ---- */

/* Reads exactly n decimal digits at *p into *v and advances *p. */
static bool take_digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return false;
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return true;
}

/* Skips the separator c at *p; false when *p holds something else. */
static bool take_sep(const char **p, char c)
{
    if (**p != c) return false;
    (*p)++;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (y >= 1970). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = y / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil, for days >= 0: the same 400-year eras, with years starting
 * on March 1st so that the leap day falls last. */
static void civil_from_days(int64_t days, int *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* A broken-down UTC time (1970-2261, no leap second) to seconds since the epoch. */
struct civil {
    int y, mo, d, h, mi, s;
};

static bool civil_seconds(const struct civil *c, int64_t *secs)
{
    if (c->y < YEAR_MIN || c->y > YEAR_MAX || c->mo < 1 || c->mo > 12 || c->d < 1 ||
        c->d > days_in_month(c->y, c->mo) || c->h > 23 || c->mi > 59 || c->s > 59)
        return false;
    *secs = days_from_civil(c->y, c->mo, c->d) * 86400 + c->h * 3600 + c->mi * 60 + c->s;
    return true;
}

/* The fraction after '.', keeping at most 9 digits; *p ends on the first non-digit. */
static void take_fraction(const char **p, int64_t *ns, int *digits)
{
    int64_t frac = 0;
    int n = 0;
    for (; **p >= '0' && **p <= '9'; (*p)++) {
        if (n == 9) continue; /* beyond nanoseconds: truncated */
        frac = frac * 10 + (**p - '0');
        n++;
    }
    *digits = n;
    for (int k = n; k < 9; k++)
        frac *= 10;
    *ns = frac;
}

enum wm_err codec_pubtime_parse(const char *text, int64_t *ns, int *digits)
{
    if (!text || !ns) return WM_ERR_INVAL;
    const char *p = text;
    struct civil c;
    if (!take_digits(&p, 4, &c.y) || !take_digits(&p, 2, &c.mo) || !take_digits(&p, 2, &c.d))
        return WM_ERR_INVAL;
    if (*p == 'T' || *p == 't') p++;
    if (!take_digits(&p, 2, &c.h) || !take_digits(&p, 2, &c.mi) || !take_digits(&p, 2, &c.s))
        return WM_ERR_INVAL;
    int64_t frac = 0;
    int nd = 0;
    if (*p == '.') {
        p++;
        take_fraction(&p, &frac, &nd);
    }
    if (*p == 'Z' || *p == 'z') p++;
    int64_t secs;
    if (*p || !civil_seconds(&c, &secs)) return WM_ERR_INVAL;
    *ns = secs * NS_PER_S + frac;
    if (digits) *digits = nd;
    return WM_OK;
}

/* The "Z" or "+HH:MM" / "-HH:MM" ending an RFC 3339 time, as signed minutes east of UTC. */
static bool take_offset(const char **p, int *minutes)
{
    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        *minutes = 0;
        return true;
    }
    if (**p != '+' && **p != '-') return false;
    int sign = **p == '-' ? -1 : 1, h, m;
    (*p)++;
    if (!take_digits(p, 2, &h) || !take_sep(p, ':') || !take_digits(p, 2, &m) || h > 23 || m > 59)
        return false;
    *minutes = sign * (h * 60 + m);
    return true;
}

enum wm_err codec_rfc3339_parse(const char *text, int64_t *ns, int *digits, int *offset_min)
{
    if (!text || !ns) return WM_ERR_INVAL;
    const char *p = text;
    struct civil c;
    if (!take_digits(&p, 4, &c.y) || !take_sep(&p, '-') || !take_digits(&p, 2, &c.mo) ||
        !take_sep(&p, '-') || !take_digits(&p, 2, &c.d))
        return WM_ERR_INVAL;
    if (!take_sep(&p, 'T') && !take_sep(&p, 't')) return WM_ERR_INVAL;
    if (!take_digits(&p, 2, &c.h) || !take_sep(&p, ':') || !take_digits(&p, 2, &c.mi) ||
        !take_sep(&p, ':') || !take_digits(&p, 2, &c.s))
        return WM_ERR_INVAL;
    int64_t frac = 0, secs;
    int nd = 0, offset = 0;
    if (take_sep(&p, '.')) {
        if (*p < '0' || *p > '9') return WM_ERR_INVAL; /* RFC 3339 wants a digit after '.' */
        take_fraction(&p, &frac, &nd);
    }
    if (!take_offset(&p, &offset) || *p || !civil_seconds(&c, &secs)) return WM_ERR_INVAL;
    secs -= (int64_t)offset * 60;
    /* The offset may move a time just inside the range out of it. */
    if (secs < 0 || secs >= days_from_civil(YEAR_MAX + 1, 1, 1) * 86400) return WM_ERR_INVAL;
    *ns = secs * NS_PER_S + frac;
    if (digits) *digits = nd;
    if (offset_min) *offset_min = offset;
    return WM_OK;
}

enum time_style { STYLE_COMPACT, STYLE_COMPACT_T, STYLE_RFC3339 };

/* Writes v as exactly width decimal digits (v < 10^width) and returns the end. */
static char *put_digits(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* ns as text in style with `digits` fraction digits (truncated, as they were on input). Written
 * by hand: two of these per relayed file cost 3 600 instructions through gmtime_r and snprintf. */
static enum wm_err format_time(int64_t ns, int digits, enum time_style style, char *out,
                               size_t outlen)
{
    if (!out || outlen == 0 || ns < 0 || digits < 0 || digits > 9) return WM_ERR_INVAL;
    int64_t days = ns / NS_PER_S / 86400, secs = ns / NS_PER_S % 86400;
    unsigned frac = (unsigned)(ns % NS_PER_S);
    int y, mo, d;
    civil_from_days(days, &y, &mo, &d);
    if (y > 9999) return WM_ERR_INVAL;
    char text[40], *p = text;
    bool rfc = style == STYLE_RFC3339;
    p = put_digits(p, (unsigned)y, 4);
    if (rfc) *p++ = '-';
    p = put_digits(p, (unsigned)mo, 2);
    if (rfc) *p++ = '-';
    p = put_digits(p, (unsigned)d, 2);
    if (style != STYLE_COMPACT) *p++ = 'T';
    p = put_digits(p, (unsigned)(secs / 3600), 2);
    if (rfc) *p++ = ':';
    p = put_digits(p, (unsigned)(secs / 60 % 60), 2);
    if (rfc) *p++ = ':';
    p = put_digits(p, (unsigned)(secs % 60), 2);
    if (digits > 0) {
        for (int k = digits; k < 9; k++)
            frac /= 10;
        *p++ = '.';
        p = put_digits(p, frac, digits);
    }
    if (rfc) *p++ = 'Z';
    size_t used = (size_t)(p - text);
    if (used >= outlen) return WM_ERR_TOOBIG;
    memcpy(out, text, used);
    out[used] = '\0';
    return WM_OK;
}

enum wm_err codec_pubtime_format(int64_t ns, int digits, bool with_t, char *out, size_t outlen)
{
    return format_time(ns, digits, with_t ? STYLE_COMPACT_T : STYLE_COMPACT, out, outlen);
}

enum wm_err codec_rfc3339_format(int64_t ns, int digits, char *out, size_t outlen)
{
    return format_time(ns, digits, STYLE_RFC3339, out, outlen);
}

/* ---- the xattr form of a checksum ---- */

enum wm_err codec_sum_to_json(const struct wm_checksum *sum, char *out, size_t outlen)
{
    if (!sum || !out || outlen == 0) return WM_ERR_INVAL;
    char value[2 * WM_SUM_MAX_LEN + 8];
    enum wm_err err = integrity_value_format(sum, value, sizeof value);
    if (err != WM_OK) return err;
    if (integrity_is_digest(sum->method)) {
        /* A method name and base64 never need escaping: no JSON object built per stored file. */
        int n = snprintf(out, outlen, "{\"method\":\"%s\",\"value\":\"%s\"}",
                         integrity_method_name(sum->method), value);
        return n < 0 || (size_t)n >= outlen ? WM_ERR_TOOBIG : WM_OK;
    }
    struct wm_json *obj = wm_json_object_new();
    char *text = NULL;
    size_t n = 0;
    if (!obj) return WM_ERR_NOMEM;
    err = codec_set_string(obj, "method", integrity_method_name(sum->method));
    if (err == WM_OK) err = codec_set_string(obj, "value", value);
    if (err == WM_OK) err = wm_json_dump(obj, &text, &n);
    if (err == WM_OK && n >= outlen) err = WM_ERR_TOOBIG;
    if (err == WM_OK) memcpy(out, text, n + 1);
    free(text);
    wm_json_free(&obj);
    return err;
}

enum wm_err codec_sum_from_json(const char *text, size_t len, struct wm_checksum *out)
{
    if (!text || !out) return WM_ERR_INVAL;
    if (len > CODEC_MAX_FIELD) return WM_ERR_TOOBIG;
    struct wm_json *obj = NULL;
    enum wm_err err = wm_json_parse(text, len, &obj, NULL, 0);
    if (err != WM_OK) return err == WM_ERR_NOMEM ? err : WM_ERR_INVAL;
    const char *method = NULL, *value = NULL;
    err = codec_check_string(wm_json_object_get(obj, "method"), "method", &method, NULL, NULL, 0);
    if (err == WM_OK) {
        /* random and arbitrary values may be empty strings: only require a string here. */
        size_t vlen = 0;
        value = wm_json_string(wm_json_object_get(obj, "value"), &vlen);
        if (!value || strlen(value) != vlen) err = WM_ERR_INVAL;
    }
    if (err == WM_OK) {
        enum wm_sum m = integrity_method_from_name(method);
        err = m == WM_SUM_NONE ? WM_ERR_METHOD : integrity_value_parse(m, value, out);
    }
    wm_json_free(&obj);
    return err;
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
