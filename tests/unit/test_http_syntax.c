/* test_http_syntax.c: the HTTP/1.1 syntax the three parsers share: which bytes make tokens,
 * lists with empty elements and OWS, field lines that fold, lack a name or carry a bad byte in
 * it, and status lines cut short or of another version. */
#include <stdbool.h>

#include "http_syntax.h"
#include "test.h"

/* Asserts that the n bytes at p are the string want, printing both when they are not. */
#define ASSERT_SPAN(p, n, want) assert_span(__LINE__, p, n, want)
static void assert_span(int line, const char *p, size_t n, const char *want)
{
    if (p && n == strlen(want) && memcmp(p, want, n) == 0) {
        test_passed++;
        return;
    }
    fprintf(stderr, "%s:%d: \"%.*s\" (%zu bytes) != \"%s\"\n", __FILE__, line, p ? (int)n : 0,
            p ? p : "", n, want);
    test_failed++;
}

static void test_tchar(void)
{
    /* RFC 9110, 5.6.2: 26 + 26 letters, 10 digits and 15 marks; nothing else of the 256. */
    int count = 0;
    for (int c = 0; c < 256; c++)
        count += http_is_tchar((char)c);
    ASSERT_EQ_INT(count, 77);
    const char *marks = "!#$%&'*+-.^_`|~";
    for (const char *m = marks; *m; m++)
        ASSERT_TRUE(http_is_tchar(*m));
    ASSERT_TRUE(http_is_tchar('a') && http_is_tchar('Z') && http_is_tchar('0'));
    const char *separators = "\"(),/:;<=>?@[\\]{} \t";
    for (const char *s = separators; *s; s++)
        ASSERT_TRUE(!http_is_tchar(*s));
    ASSERT_TRUE(!http_is_tchar('\0') && !http_is_tchar('\r') && !http_is_tchar(0x7f));
    ASSERT_TRUE(!http_is_tchar((char)0x80) && !http_is_tchar((char)0xe9));
    ASSERT_TRUE(!http_is_tchar((char)0xff));
}

static void test_ows(void)
{
    ASSERT_TRUE(http_is_ows(' ') && http_is_ows('\t'));
    ASSERT_TRUE(!http_is_ows('\r') && !http_is_ows('\n') && !http_is_ows('\v'));
    ASSERT_TRUE(!http_is_ows('\0') && !http_is_ows('x') && !http_is_ows((char)0xa0));
}

static void test_token_len(void)
{
    ASSERT_EQ_INT(http_token_len("Host: x", 7), 4);
    ASSERT_EQ_INT(http_token_len("GET / HTTP/1.1", 14), 3);
    ASSERT_EQ_INT(http_token_len("", 0), 0);
    ASSERT_EQ_INT(http_token_len(" x", 2), 0);
    ASSERT_EQ_INT(http_token_len("a\x80z", 3), 1);
    ASSERT_EQ_INT(http_token_len("keep-alive", 10), 10);
    ASSERT_EQ_INT(http_token_len("abcdef", 2), 2); /* never past n */
}

static void test_token_eq(void)
{
    ASSERT_TRUE(http_token_eq("Content-Length", 14, "content-length"));
    ASSERT_TRUE(http_token_eq("KEEP-ALIVE", 10, "keep-alive"));
    ASSERT_TRUE(http_token_eq("close!", 5, "close"));
    ASSERT_TRUE(http_token_eq("", 0, ""));
    ASSERT_TRUE(!http_token_eq("clos", 4, "close"));
    ASSERT_TRUE(!http_token_eq("closed", 6, "close"));
    ASSERT_TRUE(!http_token_eq("close ", 6, "close"));
    ASSERT_TRUE(!http_token_eq("clo\0e", 5, "close"));
    ASSERT_TRUE(!http_token_eq("", 0, "close"));
}

static void test_no_cr_nul(void)
{
    ASSERT_TRUE(http_has_no_cr_nul("", 0));
    ASSERT_TRUE(http_has_no_cr_nul("Host: x\t y", 10));
    ASSERT_TRUE(http_has_no_cr_nul("a\nb\x7f\x80", 5)); /* only CR and NUL are looked for */
    ASSERT_TRUE(http_has_no_cr_nul("ab\r", 2));         /* nor past n */
    ASSERT_TRUE(!http_has_no_cr_nul("a\rb", 3));
    ASSERT_TRUE(!http_has_no_cr_nul("a\0b", 3));
    ASSERT_TRUE(!http_has_no_cr_nul("\r", 1));
}

/* Collects the elements of list as "[a][b]", for one comparison per list. */
static void elements(const char *list, char *out, size_t outlen)
{
    size_t pos = 0, n = 0, len = 0;
    const char *elem = NULL;
    out[0] = '\0';
    while (http_list_next(list, strlen(list), &pos, &elem, &n))
        len += (size_t)snprintf(out + len, outlen - len, "[%.*s]", (int)n, elem);
    /* Once done, it stays done. */
    ASSERT_TRUE(!http_list_next(list, strlen(list), &pos, &elem, &n));
}

static void test_list_next(void)
{
    static const struct {
        const char *list, *want;
    } cases[] = {
        {"a, b ,,\tc,", "[a][b][][c][]"},
        {"", "[]"},
        {" \t ", "[]"},
        {",", "[][]"},
        {"gzip;q=1 , chunked", "[gzip;q=1][chunked]"},
        {"a b", "[a b]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[128];
        elements(cases[i].list, got, sizeof got);
        ASSERT_EQ_STR(got, cases[i].want);
    }
}

static void test_list_has(void)
{
    const char *v = "keep-alive, Upgrade";
    ASSERT_TRUE(http_list_has(v, strlen(v), "upgrade"));
    ASSERT_TRUE(http_list_has(v, strlen(v), "keep-alive"));
    ASSERT_TRUE(!http_list_has(v, strlen(v), "close"));
    ASSERT_TRUE(!http_list_has(v, 10, "upgrade")); /* only n bytes count */
    v = ",, \tupgrade\t ,";
    ASSERT_TRUE(http_list_has(v, strlen(v), "upgrade"));
    ASSERT_TRUE(!http_list_has("", 0, "upgrade"));
    ASSERT_TRUE(!http_list_has("upgrade2", 8, "upgrade"));
    ASSERT_TRUE(!http_list_has("up grade", 8, "upgrade"));
    ASSERT_TRUE(!http_list_has("upgrade;x", 9, "upgrade"));
    ASSERT_TRUE(!http_list_has("\"upgrade\"", 9, "upgrade"));
}

/* Splits the NUL-terminated line; out starts as a marker that only a split overwrites. */
static enum http_field_result split(const char *line, struct http_field *out)
{
    static const char marker[] = "untouched";
    *out = (struct http_field){marker, 0, marker, 0};
    return http_field_split(line, strlen(line), out);
}

static void test_field_split(void)
{
    struct http_field f;
    ASSERT_EQ_INT(split("Host: example.org", &f), HTTP_FIELD_OK);
    ASSERT_SPAN(f.name, f.name_len, "Host");
    ASSERT_SPAN(f.value, f.value_len, "example.org");
    ASSERT_EQ_INT(split("content-length:12", &f), HTTP_FIELD_OK);
    ASSERT_SPAN(f.name, f.name_len, "content-length");
    ASSERT_SPAN(f.value, f.value_len, "12");
    ASSERT_EQ_INT(split("X-A: \t a  b \t ", &f), HTTP_FIELD_OK);
    ASSERT_SPAN(f.value, f.value_len, "a  b");
    ASSERT_EQ_INT(split("Location:\t/x\t", &f), HTTP_FIELD_OK);
    ASSERT_SPAN(f.value, f.value_len, "/x");
    ASSERT_EQ_INT(split("Empty:", &f), HTTP_FIELD_OK);
    ASSERT_SPAN(f.value, f.value_len, "");
    ASSERT_EQ_INT(split("Blank: \t ", &f), HTTP_FIELD_OK);
    ASSERT_SPAN(f.value, f.value_len, "");
    ASSERT_EQ_INT(split("Host: [::1]:80", &f), HTTP_FIELD_OK); /* cut at the first colon */
    ASSERT_SPAN(f.name, f.name_len, "Host");
    ASSERT_SPAN(f.value, f.value_len, "[::1]:80");
    ASSERT_EQ_INT(split("X: a\rb", &f), HTTP_FIELD_OK); /* a value's bytes are the caller's */
    ASSERT_SPAN(f.value, f.value_len, "a\rb");

    ASSERT_EQ_INT(split(" continued", &f), HTTP_FIELD_FOLDED);
    ASSERT_EQ_INT(split("\tcontinued: x", &f), HTTP_FIELD_FOLDED);
    ASSERT_EQ_INT(split(": no name", &f), HTTP_FIELD_MALFORMED);
    ASSERT_EQ_INT(split(":", &f), HTTP_FIELD_MALFORMED);
    ASSERT_EQ_INT(split("no colon", &f), HTTP_FIELD_MALFORMED);
    ASSERT_EQ_INT(split("", &f), HTTP_FIELD_MALFORMED);
    ASSERT_EQ_INT(split("Content-Length : 5", &f), HTTP_FIELD_BAD_NAME);
    ASSERT_EQ_INT(split("Na\x80me: v", &f), HTTP_FIELD_BAD_NAME);
    ASSERT_EQ_INT(split("\xc3\xa9t\xc3\xa9: v", &f), HTTP_FIELD_BAD_NAME);
    ASSERT_EQ_INT(split("X(y): v", &f), HTTP_FIELD_BAD_NAME);
    ASSERT_EQ_INT(split("X\rY: v", &f), HTTP_FIELD_BAD_NAME);
    ASSERT_SPAN(f.name, 9, "untouched"); /* a refused line leaves out alone */

    /* Only n bytes are split: the colon after them does not count. */
    ASSERT_EQ_INT(http_field_split("Host: x", 4, &f), HTTP_FIELD_MALFORMED);

    /* The words the parsers put in their errors, one per result. */
    ASSERT_TRUE(http_field_problem(HTTP_FIELD_OK) == NULL);
    ASSERT_EQ_STR(http_field_problem(HTTP_FIELD_FOLDED), "folded header field");
    ASSERT_EQ_STR(http_field_problem(HTTP_FIELD_BAD_NAME), "malformed header field name");
    ASSERT_EQ_STR(http_field_problem(HTTP_FIELD_MALFORMED), "malformed header field");
}

static void test_status_line(void)
{
    int minor = -1, status = -1;
    ASSERT_TRUE(http_status_line("HTTP/1.1 200", 12, &minor, &status));
    ASSERT_EQ_INT(minor, 1);
    ASSERT_EQ_INT(status, 200);
    const char *s = "HTTP/1.0 404 Not Found";
    ASSERT_TRUE(http_status_line(s, strlen(s), &minor, &status));
    ASSERT_EQ_INT(minor, 0);
    ASSERT_EQ_INT(status, 404);
    ASSERT_TRUE(http_status_line("HTTP/1.1 200 OK", 15, NULL, &status));
    ASSERT_TRUE(http_status_line("HTTP/1.1 101 ", 13, &minor, NULL));
    ASSERT_EQ_INT(minor, 1);
    ASSERT_TRUE(http_status_line("HTTP/1.9 099", 12, &minor, &status)); /* the code: callers' */
    ASSERT_EQ_INT(minor, 9);
    ASSERT_EQ_INT(status, 99);

    minor = status = -1;
    ASSERT_TRUE(!http_status_line("HTTP/1.1 20", 11, &minor, &status));
    ASSERT_TRUE(!http_status_line("HTTP/2.0 200", 12, &minor, &status));
    ASSERT_TRUE(!http_status_line("HTTP/1.1 200OK", 14, &minor, &status));
    ASSERT_TRUE(!http_status_line("HTTP/1.1 2000", 13, &minor, &status));
    ASSERT_TRUE(!http_status_line("HTTP/1.1  200", 13, &minor, &status));
    ASSERT_TRUE(!http_status_line("HTTP/1.1\t200", 12, &minor, &status));
    ASSERT_TRUE(!http_status_line("HTTP/1.x 200", 12, &minor, &status));
    ASSERT_TRUE(!http_status_line("HTTP/1.1 2x0", 12, &minor, &status));
    ASSERT_TRUE(!http_status_line("http/1.1 200", 12, &minor, &status));
    ASSERT_TRUE(!http_status_line("HTTP/1.1 200", 11, &minor, &status)); /* only n bytes */
    ASSERT_TRUE(!http_status_line("", 0, &minor, &status));
    ASSERT_EQ_INT(minor, -1); /* nothing written on false */
    ASSERT_EQ_INT(status, -1);
}

int main(void)
{
    test_tchar();
    test_ows();
    test_token_len();
    test_token_eq();
    test_no_cr_nul();
    test_list_next();
    test_list_has();
    test_field_split();
    test_status_line();
    return TEST_REPORT();
}
