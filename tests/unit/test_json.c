/* test_json.c: JSON values, the parser's strictness, the object and array API, copies and the
 * compact writer. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "json.h"
#include "test.h"

/* Parses len bytes of text, reporting a failure; NULL then. */
static struct wm_json *parse_n(const char *text, size_t len)
{
    struct wm_json *j = NULL;
    char why[160] = "";
    enum wm_err err = wm_json_parse(text, len, &j, why, sizeof why);
    if (err != WM_OK)
        TEST_FAIL_AT("parse failed (%s: %s) for %.*s", wm_strerror(err), why, (int)len, text);
    else
        test_passed++;
    return j;
}

static struct wm_json *parse(const char *text)
{
    return parse_n(text, strlen(text));
}

/* The compact text of j (the caller frees it), or NULL after a reported failure. */
static char *dump(const struct wm_json *j)
{
    char *out = NULL;
    size_t len = 0;
    if (!j) return NULL;
    if (wm_json_dump(j, &out, &len) != WM_OK) {
        TEST_FAIL_AT("dump failed");
        return NULL;
    }
    if (strlen(out) != len) TEST_FAIL_AT("dump length %zu, text length %zu", len, strlen(out));
    return out;
}

/* text parses and dumps as want. */
static void check_dump_n(const char *text, size_t len, const char *want)
{
    struct wm_json *j = parse_n(text, len);
    char *out = dump(j);
    if (out) ASSERT_EQ_STR(out, want);
    free(out);
    wm_json_free(&j);
}

static void check_dump(const char *text, const char *want)
{
    check_dump_n(text, strlen(text), want);
}

/* len bytes of text are refused with err, *out NULL and a reason in why. */
static void check_refused_n(const char *text, size_t len, enum wm_err want)
{
    struct wm_json *j = (struct wm_json *)&j; /* must come back NULL */
    char why[160] = "";
    enum wm_err err = wm_json_parse(text, len, &j, why, sizeof why);
    if (err == WM_OK) {
        char *out = dump(j);
        TEST_FAIL_AT("accepted %.*s as %s", (int)len, text, out ? out : "?");
        free(out);
        wm_json_free(&j);
        return;
    }
    if (err != want)
        TEST_FAIL_AT("%.*s: %s != %s (%s)", (int)len, text, wm_strerror(err), wm_strerror(want),
                     why);
    else
        test_passed++;
    ASSERT_TRUE(j == NULL);
    ASSERT_TRUE(why[0] != '\0');
    for (const char *c = why; *c; c++)
        if (*c < 0x20 || *c > 0x7e) TEST_FAIL_AT("unprintable byte in why: %s", why);
}

static void check_refused(const char *text)
{
    check_refused_n(text, strlen(text), WM_ERR_FORMAT);
}

/* The bytes of the string text parses to are want (wantlen bytes). */
static void check_string(const char *text, const char *want, size_t wantlen)
{
    struct wm_json *j = parse(text);
    size_t len = 0;
    const char *s = wm_json_string(j, &len);
    if (j && !s) TEST_FAIL_AT("%s is not a string", text);
    if (s) {
        ASSERT_EQ_INT(len, wantlen);
        if (len == wantlen) ASSERT_EQ_MEM(s, want, len);
        ASSERT_EQ_INT(s[len], '\0');
    }
    wm_json_free(&j);
}

static void test_types(void)
{
    struct wm_json *j = parse("[null,true,false,42,-7,2.5,\"s\",[],{}]");
    enum wm_json_type want[] = {WM_JSON_NULL,    WM_JSON_TRUE,    WM_JSON_FALSE,
                                WM_JSON_INTEGER, WM_JSON_INTEGER, WM_JSON_REAL,
                                WM_JSON_STRING,  WM_JSON_ARRAY,   WM_JSON_OBJECT};
    ASSERT_EQ_INT(wm_json_type(j), WM_JSON_ARRAY);
    ASSERT_EQ_INT(wm_json_array_size(j), 9);
    for (size_t i = 0; i < 9; i++)
        ASSERT_EQ_INT(wm_json_type(wm_json_array_get(j, i)), want[i]);
    int64_t v = 0;
    double d = 0;
    ASSERT_TRUE(wm_json_integer(wm_json_array_get(j, 3), &v));
    ASSERT_EQ_INT(v, 42);
    ASSERT_TRUE(wm_json_integer(wm_json_array_get(j, 4), &v));
    ASSERT_EQ_INT(v, -7);
    ASSERT_TRUE(!wm_json_integer(wm_json_array_get(j, 5), &v)); /* a real is no integer */
    ASSERT_TRUE(wm_json_number(wm_json_array_get(j, 5), &d) && d == 2.5);
    ASSERT_TRUE(wm_json_number(wm_json_array_get(j, 3), &d) && d == 42.0);
    ASSERT_TRUE(!wm_json_number(wm_json_array_get(j, 6), &d));
    ASSERT_EQ_STR(wm_json_string(wm_json_array_get(j, 6), NULL), "s");
    ASSERT_TRUE(wm_json_string(wm_json_array_get(j, 3), NULL) == NULL);
    ASSERT_TRUE(wm_json_is_array(wm_json_array_get(j, 7)));
    ASSERT_TRUE(wm_json_is_object(wm_json_array_get(j, 8)));
    ASSERT_TRUE(wm_json_is_string(wm_json_array_get(j, 6)));
    ASSERT_TRUE(!wm_json_is_object(j) && !wm_json_is_string(j) && wm_json_is_array(j));
    ASSERT_TRUE(wm_json_array_get(j, 9) == NULL);
    ASSERT_EQ_INT(wm_json_object_size(j), 0);
    ASSERT_TRUE(wm_json_object_get(j, "x") == NULL);
    ASSERT_EQ_INT(wm_json_depth(j), 2);
    wm_json_free(&j);
    ASSERT_TRUE(j == NULL);

    /* Any value may stand alone. */
    check_dump("null", "null");
    check_dump("true", "true");
    check_dump("false", "false");
    check_dump("0", "0");
    check_dump("\"alone\"", "\"alone\"");
    check_dump("{}", "{}");
    check_dump("[]", "[]");
    ASSERT_EQ_INT(wm_json_type(NULL), WM_JSON_NULL);
    ASSERT_EQ_INT(wm_json_depth(NULL), 0);
}

static void test_nesting(void)
{
    struct wm_json *j = parse("{\"a\":[1,{\"b\":[[],{\"c\":\"deep\"}]}],\"d\":{}}");
    struct wm_json *a = wm_json_object_get(j, "a");
    struct wm_json *b = wm_json_object_get(wm_json_array_get(a, 1), "b");
    ASSERT_EQ_INT(wm_json_array_size(b), 2);
    ASSERT_EQ_STR(wm_json_string(wm_json_object_get(wm_json_array_get(b, 1), "c"), NULL), "deep");
    ASSERT_EQ_INT(wm_json_depth(j), 5);
    ASSERT_EQ_INT(wm_json_object_size(wm_json_object_get(j, "d")), 0);
    wm_json_free(&j);
}

static void test_escapes(void)
{
    check_string("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8);
    check_string("\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac", 6);
    check_string("\"x\\uD83D\\uDE00y\"", "x\xf0\x9f\x98\x80y", 6); /* a surrogate pair */
    check_string("\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4);     /* U+10FFFF */
    check_string("\"\\uD800\\uDC00\"", "\xf0\x90\x80\x80", 4);     /* U+10000 */
    check_string("\"\\uFFFF\\u0001\"", "\xef\xbf\xbf\x01", 4);
    check_string("\"a\x7f"
                 "b\"",
                 "a\x7f"
                 "b",
                 3); /* DEL needs no escape */
    check_string("\"\"", "", 0);
    check_refused("\"\\uD800\"");        /* lone high surrogate */
    check_refused("\"\\uD800x\"");       /* not followed by an escape */
    check_refused("\"\\uD800\\u0041\""); /* followed by something else */
    check_refused("\"\\uD800\\uD800\""); /* two high halves */
    check_refused("\"\\uDC00\"");        /* lone low surrogate */
    check_refused("\"\\uDE00\\uD83D\""); /* the halves swapped */
    check_refused("\"\\uD83D\\uDE0\"");  /* short low half */
    check_refused("\"\\u12\"");
    check_refused("\"\\u12G4\"");
    check_refused("\"\\x\"");
    check_refused("\"\\'\"");
    check_refused("\"\\");
    check_refused("\"\\u00");
    check_refused("\"\\u0000\"");      /* NUL: refused in values... */
    check_refused("{\"a\\u0000\":1}"); /* ...and in keys */
    check_refused("\"tab\there\"");    /* raw control characters */
    check_refused("\"new\nline\"");
    check_refused_n("\"nul\0\"", 6, WM_ERR_FORMAT);
    check_refused("\"unterminated");
    check_refused("\"");

    /* Escapes and bytes that need care at every position of a string longer than a word. */
    for (size_t at = 0; at < 20; at++) {
        char text[64], want[32];
        memset(want, 'a', 20);
        memcpy(text, "\"", 1);
        memcpy(text + 1, want, at);
        memcpy(text + 1 + at, "\\n", 2);
        memcpy(text + 3 + at, want, 20 - at);
        memcpy(text + 23, "\"", 2);
        want[at] = '\n';
        memset(want + at + 1, 'a', 20 - at);
        check_string(text, want, 21);
        text[1 + at] = '\t'; /* a raw control character instead */
        check_refused(text);
        text[1 + at] = '"'; /* an early end: trailing garbage */
        check_refused(text);
        memcpy(text + 1 + at, "\xc3\xa9", 2); /* é instead: valid, one byte longer */
        memcpy(want + at, "\xc3\xa9", 2);
        memset(want + at + 2, 'a', 20 - at);
        check_string(text, want, 22);
    }
}

static void test_utf8(void)
{
    check_string("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
                 9);
    check_string("\"\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf\"",
                 "\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf", 10); /* around the surrogates, top */
    const char *bad[] = {
        "\"\xc0\xaf\"",                 /* overlong '/' in two bytes */
        "\"\xc1\xbf\"",                 /* overlong */
        "\"\xe0\x80\xaf\"",             /* overlong in three */
        "\"\xe0\x9f\xbf\"",             /* overlong: U+07FF in three */
        "\"\xf0\x80\x80\xaf\"",         /* overlong in four */
        "\"\xf0\x8f\xbf\xbf\"",         /* overlong: U+FFFF in four */
        "\"\xed\xa0\x80\"",             /* U+D800 encoded */
        "\"\xed\xbf\xbf\"",             /* U+DFFF encoded */
        "\"\xed\xa0\xbd\xed\xb8\x80\"", /* a surrogate pair encoded (CESU-8) */
        "\"\xf4\x90\x80\x80\"",         /* U+110000 */
        "\"\xf5\x80\x80\x80\"",         /* beyond any plane */
        "\"\xff\"",
        "\"\x80\"", /* a lone continuation byte */
        "\"\xc3\"", /* truncated before the quote */
        "\"\xe2\x82\"",
        "\"\xf0\x9f\x98\"",
        "\"\xc3", /* truncated by the end of input */
        "\"\xf0\x9f\x98",
        "\"\xc3\x28\"", /* a continuation that is not one */
        "\"\xe2\x28\xa1\"",
        "\"\xf0\x9f\x28\x80\"",
        "{\"\xc0\x80\":1}", /* in a key */
        "\xc3\xa9",         /* outside a string */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_refused(bad[i]);

    /* Constructed strings are checked too; they may hold NUL, written as \u0000. */
    errno = 0;
    ASSERT_TRUE(wm_json_string_new("\xed\xa0\x80", 3) == NULL);
    ASSERT_EQ_INT(errno, EILSEQ);
    ASSERT_TRUE(wm_json_string_new("\xc3", 1) == NULL);
    struct wm_json *s = wm_json_string_new("a\0\x1f\xc3\xa9", 5);
    size_t len = 0;
    ASSERT_TRUE(s && wm_json_string(s, &len) && len == 5);
    char *out = dump(s);
    if (out) ASSERT_EQ_STR(out, "\"a\\u0000\\u001F\xc3\xa9\"");
    free(out);
    wm_json_free(&s);
}

static void test_duplicates(void)
{
    check_refused("{\"a\":1,\"a\":2}");
    check_refused("{\"a\":1,\"b\":2,\"a\":1}");
    check_refused("{\"a\":1,\"\\u0061\":2}"); /* the same key, spelt differently */
    check_refused("{\"\":1,\"\":2}");
    check_refused("[{\"x\":{\"k\":1,\"k\":2}}]");
    check_dump("{\"a\":1,\"b\":{\"a\":2},\"A\":3,\"a \":4,\"\":5}",
               "{\"a\":1,\"b\":{\"a\":2},\"A\":3,\"a \":4,\"\":5}");

    /* Large objects: sorted rather than compared pairwise, with the same verdict. */
    for (int dup = -1; dup < 300; dup += 37) {
        char *text = malloc(300 * 16 + 16);
        size_t n = 0;
        text[n++] = '{';
        for (int i = 0; i < 300; i++) {
            int key = i == 299 && dup >= 0 ? dup : i;
            n += (size_t)snprintf(text + n, 32, "%s\"k%d\":%d", i ? "," : "", key, i);
        }
        text[n++] = '}';
        if (dup < 0) {
            struct wm_json *j = parse_n(text, n);
            ASSERT_EQ_INT(wm_json_object_size(j), 300);
            int64_t v = 0;
            ASSERT_TRUE(wm_json_integer(wm_json_object_get(j, "k250"), &v) && v == 250);
            wm_json_free(&j);
        } else {
            check_refused_n(text, n, WM_ERR_FORMAT);
        }
        free(text);
    }
    /* A duplicate between the first members and a late one. */
    char text[64 * 12] = "{";
    size_t n = 1;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(text + n, 16, "\"%c%d\":0,", 'a' + i % 26, i);
    n += (size_t)snprintf(text + n, 16, "\"c2\":1}");
    check_refused_n(text, n, WM_ERR_FORMAT);
}

static void test_integers(void)
{
    check_dump("9223372036854775807", "9223372036854775807");
    check_dump("-9223372036854775808", "-9223372036854775808");
    check_dump("[0,-0,1,-1,1000000]", "[0,0,1,-1,1000000]");
    check_refused("9223372036854775808");
    check_refused("-9223372036854775809");
    check_refused("18446744073709551616");
    check_refused("123456789012345678901234567890");
    int64_t v = 0;
    struct wm_json *j = parse("-9223372036854775808");
    ASSERT_TRUE(wm_json_integer(j, &v) && v == INT64_MIN);
    wm_json_free(&j);
    j = parse("9223372036854775807");
    ASSERT_TRUE(wm_json_integer(j, &v) && v == INT64_MAX);
    wm_json_free(&j);
}

static void test_reals(void)
{
    /* A fraction or an exponent makes a real; the writer keeps it one. */
    check_dump("[1.0,1e2,1E2,1e+2,2.5e-3,-0.0,0.1,1.5]",
               "[1.0,100.0,100.0,100.0,0.0025,-0.0,0.1,1.5]");
    check_dump("1.7976931348623157e308", "1.7976931348623157e+308");
    check_dump("123456789012345678901234567890.0", "1.2345678901234568e+29");
    check_dump("0.30000000000000004", "0.30000000000000004");
    /* Overflow is refused, as jansson did; underflow reads as 0 (or a subnormal). */
    check_refused("1e400");
    check_refused("-1e400");
    check_refused("[1.8e308]");
    check_dump("1e-400", "0.0");
    check_dump("5e-324", "4.94065645841247e-324");
    struct wm_json *j = parse("2.5");
    ASSERT_EQ_INT(wm_json_type(j), WM_JSON_REAL);
    wm_json_free(&j);
    /* Long numbers go through strtod from a copy of their own. */
    char text[200] = "0.";
    memset(text + 2, '0', 150);
    memcpy(text + 152, "15", 3);
    check_dump(text, "1.5e-151");
}

static void test_syntax(void)
{
    const char *bad[] = {
        "01",
        "-01",
        "00",
        "-",
        "--1",
        "+1",
        "1.",
        ".5",
        "1e",
        "1e+",
        "1.e5",
        "0x10",
        "Infinity",
        "NaN",
        "[1,]",
        "[,1]",
        "[1 2]",
        "[",
        "[1",
        "]",
        "{",
        "{\"a\"",
        "{\"a\":",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{1:2}",
        "{a:1}",
        "{,}",
        "{\"a\":1 \"b\":2}",
        "tru",
        "nul",
        "fals",
        "truex",
        "True",
        "[] x",
        "1 2",
        "{}{}",
        "'a'",
        "\"a\" \"b\"",
        "[1]]",
        "}",
        "",
        " \t\r\n ",
        "\f1",
        "1\f",
        "/*c*/1",
        "\xef\xbb\xbf\x31", /* a byte order mark before 1 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_refused(bad[i]);
    check_refused_n("[1]\0", 4, WM_ERR_FORMAT);
    check_refused_n("[1\0]", 4, WM_ERR_FORMAT); /* jansson skipped this NUL; we do not */
    check_refused_n("\0", 1, WM_ERR_FORMAT);
    check_dump(" \t\r\n[ 1 , 2 ,\n{ \"a\" : [ ] , \"b\":{ } } ]\r\n ", "[1,2,{\"a\":[],\"b\":{}}]");
    check_dump("0", "0");
    check_dump("-0", "0");
    check_dump("[0.5,-0.5,0e0]", "[0.5,-0.5,0.0]");
    /* The length bounds the text: what follows is never read. */
    check_dump_n("[1,2]garbage", 5, "[1,2]");
    check_dump_n("\"abc\"def", 5, "\"abc\"");
    check_refused_n("\"abcdefghijkl\"", 13, WM_ERR_FORMAT);
    check_refused_n("123", 0, WM_ERR_FORMAT);

    struct wm_json *j = (struct wm_json *)&j;
    ASSERT_EQ_INT(wm_json_parse(NULL, 0, &j, NULL, 0), WM_ERR_INVAL);
    ASSERT_TRUE(j == NULL);
    ASSERT_EQ_INT(wm_json_parse("1", 1, NULL, NULL, 0), WM_ERR_INVAL);
    ASSERT_EQ_INT(wm_json_parse("x", 1, &j, NULL, 0), WM_ERR_FORMAT); /* why may be NULL */
    char why[8] = "";
    ASSERT_EQ_INT(wm_json_parse("x", 1, &j, why, sizeof why), WM_ERR_FORMAT);
    ASSERT_EQ_INT(strlen(why), sizeof why - 1); /* truncated, terminated */
}

/* n arrays, or objects with key "k", nested around 1. */
static char *nested(int n, bool objects)
{
    char *text = malloc((size_t)n * 6 + 2);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        memcpy(text + len, objects ? "{\"k\":" : "[", objects ? 5 : 1);
        len += objects ? 5 : 1;
    }
    text[len++] = '1';
    for (int i = 0; i < n; i++)
        text[len++] = objects ? '}' : ']';
    text[len] = '\0';
    return text;
}

static void test_depth(void)
{
    for (int objects = 0; objects < 2; objects++) {
        char *ok = nested(WM_JSON_MAX_DEPTH, objects);
        char *deep = nested(WM_JSON_MAX_DEPTH + 1, objects);
        char *deeper = nested(100000, objects);
        struct wm_json *j = parse(ok);
        ASSERT_EQ_INT(wm_json_depth(j), WM_JSON_MAX_DEPTH);
        char *out = dump(j);
        if (out) ASSERT_EQ_STR(out, ok);
        free(out);
        wm_json_free(&j);
        check_refused_n(deep, strlen(deep), WM_ERR_TOOBIG);
        check_refused_n(deeper, strlen(deeper), WM_ERR_TOOBIG);
        free(ok);
        free(deep);
        free(deeper);
    }
    char why[80] = "";
    struct wm_json *j = NULL;
    char *deep = nested(WM_JSON_MAX_DEPTH + 1, false);
    ASSERT_EQ_INT(wm_json_parse(deep, strlen(deep), &j, why, sizeof why), WM_ERR_TOOBIG);
    ASSERT_EQ_STR(why, "JSON nested deeper than 32 levels");
    free(deep);
}

/* Keys of obj in order, joined by commas. */
static void keys_of(const struct wm_json *obj, char *out, size_t cap)
{
    void *it = NULL;
    const char *key;
    struct wm_json *value;
    size_t n = 0;
    out[0] = '\0';
    while (wm_json_object_next(obj, &it, &key, &value) && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", key);
}

static void test_object_api(void)
{
    char keys[256];
    struct wm_json *o = wm_json_object_new();
    ASSERT_TRUE(o != NULL);
    void *it = NULL;
    ASSERT_TRUE(!wm_json_object_next(o, &it, NULL, NULL));
    ASSERT_EQ_INT(wm_json_object_set(o, "b", wm_json_integer_new(1)), WM_OK);
    ASSERT_EQ_INT(wm_json_object_set(o, "a", wm_json_string_new("x", 1)), WM_OK);
    ASSERT_EQ_INT(wm_json_object_set(o, "c", wm_json_array_new()), WM_OK);
    keys_of(o, keys, sizeof keys);
    ASSERT_EQ_STR(keys, "b,a,c");
    /* Setting an existing key keeps its place and frees the old value (ASan would tell). */
    ASSERT_EQ_INT(wm_json_object_set(o, "a", wm_json_integer_new(7)), WM_OK);
    keys_of(o, keys, sizeof keys);
    ASSERT_EQ_STR(keys, "b,a,c");
    ASSERT_EQ_INT(wm_json_object_size(o), 3);
    int64_t v = 0;
    ASSERT_TRUE(wm_json_integer(wm_json_object_get(o, "a"), &v) && v == 7);
    ASSERT_EQ_INT(wm_json_object_del(o, "b"), WM_OK);
    ASSERT_EQ_INT(wm_json_object_del(o, "b"), WM_ERR_NOTFOUND);
    ASSERT_EQ_INT(wm_json_object_set(o, "b", wm_json_integer_new(2)), WM_OK);
    keys_of(o, keys, sizeof keys);
    ASSERT_EQ_STR(keys, "a,c,b");
    ASSERT_TRUE(wm_json_object_get(o, "z") == NULL);
    ASSERT_TRUE(wm_json_object_get(o, NULL) == NULL);
    /* Bad calls still take the value. */
    ASSERT_EQ_INT(wm_json_object_set(o, "\xc3", wm_json_integer_new(1)), WM_ERR_INVAL);
    ASSERT_EQ_INT(wm_json_object_set(o, NULL, wm_json_integer_new(1)), WM_ERR_INVAL);
    ASSERT_EQ_INT(wm_json_object_set(o, "k", NULL), WM_ERR_INVAL);
    struct wm_json *arr = wm_json_array_new();
    ASSERT_EQ_INT(wm_json_object_set(arr, "k", wm_json_object_new()), WM_ERR_INVAL);
    ASSERT_EQ_INT(wm_json_object_del(arr, "k"), WM_ERR_INVAL);
    ASSERT_EQ_INT(wm_json_array_append(o, wm_json_integer_new(1)), WM_ERR_INVAL);
    ASSERT_EQ_INT(wm_json_array_append(arr, NULL), WM_ERR_INVAL);
    wm_json_free(&arr);
    /* A key taken from an iteration of the same object. */
    it = NULL;
    const char *key = NULL;
    ASSERT_TRUE(wm_json_object_next(o, &it, &key, NULL));
    ASSERT_EQ_INT(wm_json_object_set(o, key, wm_json_integer_new(8)), WM_OK);
    ASSERT_EQ_INT(wm_json_object_del(o, key), WM_OK);
    keys_of(o, keys, sizeof keys);
    ASSERT_EQ_STR(keys, "c,b");
    /* Many keys: the members grow. */
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof k, "key%d", i);
        ASSERT_EQ_INT(wm_json_object_set(o, k, wm_json_integer_new(i)), WM_OK);
    }
    ASSERT_EQ_INT(wm_json_object_size(o), 102);
    ASSERT_TRUE(wm_json_integer(wm_json_object_get(o, "key99"), &v) && v == 99);
    wm_json_free(&o);
    ASSERT_TRUE(o == NULL);
    wm_json_free(&o);
    wm_json_free(NULL);

    /* The same on a parsed object: its members move out of the parsed block when they grow,
     * values replaced or removed go with their old room. */
    o = parse("{\"x\":\"one\",\"y\":[1,2],\"z\":{\"q\":true},\"w\":1.5}");
    ASSERT_EQ_INT(wm_json_object_set(o, "y", wm_json_string_new("two", 3)), WM_OK);
    ASSERT_EQ_INT(wm_json_object_set(o, "x", wm_json_object_new()), WM_OK);
    ASSERT_EQ_INT(wm_json_object_del(o, "w"), WM_OK);
    ASSERT_EQ_INT(wm_json_object_set(o, "new", wm_json_integer_new(3)), WM_OK);
    ASSERT_EQ_INT(wm_json_object_set(o, "newer", wm_json_integer_new(4)), WM_OK);
    ASSERT_EQ_INT(wm_json_object_del(o, "z"), WM_OK);
    ASSERT_EQ_INT(wm_json_object_set(wm_json_object_get(o, "x"), "in", wm_json_integer_new(5)),
                  WM_OK);
    char *out = dump(o);
    if (out) ASSERT_EQ_STR(out, "{\"x\":{\"in\":5},\"y\":\"two\",\"new\":3,\"newer\":4}");
    free(out);
    wm_json_free(&o);

    /* Escaped keys are stored decoded, found by their bytes and written escaped. */
    o = parse("{\"a\\\"b\":1,\"\\u00e9\":2,\"t\\tab\":3}");
    ASSERT_TRUE(wm_json_object_get(o, "a\"b") != NULL);
    ASSERT_TRUE(wm_json_object_get(o, "\xc3\xa9") != NULL);
    out = dump(o);
    if (out) ASSERT_EQ_STR(out, "{\"a\\\"b\":1,\"\xc3\xa9\":2,\"t\\tab\":3}");
    free(out);
    wm_json_free(&o);
}

static void test_array_api(void)
{
    struct wm_json *a = parse("[\"p\",{\"k\":[]},3]");
    for (int i = 0; i < 50; i++)
        ASSERT_EQ_INT(wm_json_array_append(a, wm_json_integer_new(i)), WM_OK);
    ASSERT_EQ_INT(wm_json_array_size(a), 53);
    int64_t v = 0;
    ASSERT_TRUE(wm_json_integer(wm_json_array_get(a, 52), &v) && v == 49);
    ASSERT_EQ_STR(wm_json_string(wm_json_array_get(a, 0), NULL), "p");
    ASSERT_EQ_INT(wm_json_array_append(wm_json_object_get(wm_json_array_get(a, 1), "k"),
                                       wm_json_string_new("in", 2)),
                  WM_OK);
    struct wm_json *c = wm_json_copy(a);
    char *x = dump(a), *y = dump(c);
    if (x && y) ASSERT_EQ_STR(x, y);
    if (x) ASSERT_TRUE(strncmp(x, "[\"p\",{\"k\":[\"in\"]},3,0,1,2,", 25) == 0);
    free(x);
    free(y);
    wm_json_free(&a);
    wm_json_free(&c);
    ASSERT_EQ_INT(wm_json_array_size(NULL), 0);
    ASSERT_TRUE(wm_json_array_get(NULL, 0) == NULL);
}

static void test_copy(void)
{
    const char *text =
        "{\"a\":[1,2.5,\"s\\n\",null,true,false,{\"b\":{}}],\"\xc3\xa9\":\"\\u00e9\"}";
    struct wm_json *j = parse(text);
    struct wm_json *c = wm_json_copy(j);
    ASSERT_TRUE(c != NULL && c != j);
    char *x = dump(j), *y = dump(c);
    if (x && y) ASSERT_EQ_STR(x, y);
    free(y);
    /* The copy is independent of the original. */
    ASSERT_EQ_INT(wm_json_object_set(c, "a", wm_json_integer_new(0)), WM_OK);
    ASSERT_EQ_INT(wm_json_object_set(c, "new", wm_json_copy(j)), WM_OK);
    wm_json_free(&j);
    y = dump(c);
    if (x && y) {
        char want[512];
        snprintf(want, sizeof want, "{\"a\":0,\"\xc3\xa9\":\"\xc3\xa9\",\"new\":%s}", x);
        ASSERT_EQ_STR(y, want);
    }
    free(x);
    free(y);
    /* A copy of a copy, of scalars, of things built by hand. */
    struct wm_json *d = wm_json_copy(c);
    wm_json_free(&c);
    x = dump(d);
    wm_json_free(&d);
    free(x);
    struct wm_json *s = wm_json_string_new("str", 3), *sc = wm_json_copy(s);
    ASSERT_EQ_STR(wm_json_string(sc, NULL), "str");
    wm_json_free(&s);
    wm_json_free(&sc);
    ASSERT_TRUE(wm_json_copy(NULL) == NULL);
}

static void test_dump(void)
{
    /* Compact, keys in order, '/' and non-ASCII as they are, controls escaped in upper case. */
    const char *same[] = {
        ("{\"pubTime\":\"20240601T120000.123\",\"baseUrl\":\"https://x/y\",\"relPath\":\"/a/b\","
         "\"integrity\":{\"method\":\"sha512\",\"value\":\"ab+/==\"},\"size\":1024}"),
        "[\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001F\",\"\x7f\",\"\xf0\x9f\x98\x80\"]",
        "{\"z\":1,\"a\":2,\"m\":[[],{},[{}]]}",
        "[-9223372036854775808,9223372036854775807,0.5,-1.25e-10,1e+100]",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        check_dump(same[i], same[i]);
    check_dump("[\"\\/\",\"\\u001f\",\"\\u00E9\"]", "[\"/\",\"\\u001F\",\"\xc3\xa9\"]");
    /* What the writer gives reads back to the same text. */
    const char *texts[] = {" [ 1.5 , \"\\u00e9\\ud83d\\ude00\" , { \"k\" : -0.0 } ] ",
                           "{\"a\":1e-7,\"b\":123456.789,\"c\":\"\\u001fx\"}"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct wm_json *j = parse(texts[i]);
        char *once = dump(j);
        wm_json_free(&j);
        if (!once) continue;
        j = parse(once);
        char *twice = dump(j);
        if (twice) ASSERT_EQ_STR(twice, once);
        free(once);
        free(twice);
        wm_json_free(&j);
    }
    /* Reals and integers as the writer spells them. */
    struct wm_json *a = wm_json_array_new();
    ASSERT_EQ_INT(wm_json_array_append(a, wm_json_integer_new(INT64_MIN)), WM_OK);
    ASSERT_EQ_INT(wm_json_array_append(a, wm_json_object_new()), WM_OK);
    char *out = dump(a);
    if (out) ASSERT_EQ_STR(out, "[-9223372036854775808,{}]");
    free(out);
    wm_json_free(&a);
    ASSERT_EQ_INT(wm_json_dump(NULL, &out, NULL), WM_ERR_INVAL);
    ASSERT_TRUE(out == NULL);
}

int main(void)
{
    test_types();
    test_nesting();
    test_escapes();
    test_utf8();
    test_duplicates();
    test_integers();
    test_reals();
    test_syntax();
    test_depth();
    test_object_api();
    test_array_api();
    test_copy();
    test_dump();
    return TEST_REPORT();
}
