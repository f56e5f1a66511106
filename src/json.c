/* json.c: the jansson wrapper (parsing, values), with our own compact writer for output. */
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

/* ---- output: our own writer, several times faster than json_dumps for announcements ---- */

struct text {
    char *data;
    size_t len, cap;
    bool failed; /* an allocation failed: the text is incomplete */
};

static void text_put(struct text *t, const char *s, size_t n)
{
    if (t->failed) return;
    if (n > t->cap - t->len) {
        size_t cap = t->cap ? t->cap : 512;
        while (cap - t->len < n + 1) {
            if (cap > SIZE_MAX / 2) {
                t->failed = true;
                return;
            }
            cap *= 2;
        }
        char *d = realloc(t->data, cap);
        if (!d) {
            t->failed = true;
            return;
        }
        t->data = d;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
}

/* JSON string: quotes, backslashes and control characters escaped, everything else (UTF-8
 * included) copied in runs. */
static void put_string(struct text *t, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF"; /* as jansson wrote them */
    text_put(t, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        text_put(t, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        text_put(t, esc, elen);
    }
    text_put(t, s + run, n - run);
    text_put(t, "\"", 1);
}

/* The shortest decimal form that reads back as the same double, always with a '.' or an
 * exponent so that it stays a real. */
static void put_real(struct text *t, double v)
{
    char buf[40];
    if (v != v || v - v != 0) { /* NaN and infinities have no JSON form */
        t->failed = true;
        return;
    }
    int n = 0;
    for (int precision = 15; precision <= 17; precision++) {
        n = snprintf(buf, sizeof buf - 2, "%.*g", precision, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (n < 0 || (size_t)n >= sizeof buf - 2) {
        t->failed = true;
        return;
    }
    if (!strpbrk(buf, ".eEn")) memcpy(buf + n, ".0", 3), n += 2;
    text_put(t, buf, (size_t)n);
}

static void put_value(struct text *t, const json_t *j)
{
    char num[24];
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *value;
        bool first = true;
        text_put(t, "{", 1);
        /* jansson keeps object members in insertion order. */
        json_object_foreach((json_t *)j, key, value)
        {
            if (!first) text_put(t, ",", 1);
            first = false;
            put_string(t, key, strlen(key));
            text_put(t, ":", 1);
            put_value(t, value);
        }
        text_put(t, "}", 1);
        return;
    }
    case JSON_ARRAY:
        text_put(t, "[", 1);
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i) text_put(t, ",", 1);
            put_value(t, json_array_get(j, i));
        }
        text_put(t, "]", 1);
        return;
    case JSON_STRING:
        put_string(t, json_string_value(j), json_string_length(j));
        return;
    case JSON_INTEGER: {
        int n = snprintf(num, sizeof num, "%lld", (long long)json_integer_value(j));
        text_put(t, num, (size_t)n);
        return;
    }
    case JSON_REAL:
        put_real(t, json_real_value(j));
        return;
    case JSON_TRUE:
        text_put(t, "true", 4);
        return;
    case JSON_FALSE:
        text_put(t, "false", 5);
        return;
    case JSON_NULL:
        text_put(t, "null", 4);
        return;
    }
}

enum wm_err wm_json_dump(const struct wm_json *j, char **out, size_t *len)
{
    if (!out) return WM_ERR_INVAL;
    *out = NULL;
    if (!j) return WM_ERR_INVAL;
    struct text t = {0};
    put_value(&t, J(j));
    text_put(&t, "", 1); /* the terminating NUL, not counted */
    if (t.failed) {
        free(t.data);
        return WM_ERR_NOMEM;
    }
    *out = t.data;
    if (len) *len = t.len - 1;
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
