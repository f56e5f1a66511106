/* test_text.c: hexadecimal digits, whitespace, the one UTF-8 check, base64 and hex. */
#include "test.h"
#include "text.h"

static bool valid(const char *s, size_t n, unsigned flags)
{
    return text_utf8_valid(s, n, flags);
}

static void test_hex(void)
{
    ASSERT_EQ_INT(text_hex_digit('0'), 0);
    ASSERT_EQ_INT(text_hex_digit('9'), 9);
    ASSERT_EQ_INT(text_hex_digit('a'), 10);
    ASSERT_EQ_INT(text_hex_digit('F'), 15);
    int bad = 0;
    for (int c = -1; c < 256; c++) {
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if ((text_hex_digit(c) >= 0) != hex) bad++;
    }
    ASSERT_EQ_INT(bad, 0); /* '@', 'G', '`', 'g', 0xC1 ... are not digits */
}

static void test_space(void)
{
    int bad = 0;
    for (int c = -1; c < 256; c++) {
        bool space = c == ' ' || (c >= '\t' && c <= '\r');
        if (text_is_space(c) != space) bad++;
    }
    ASSERT_EQ_INT(bad, 0);
}

static void test_utf8(void)
{
    ASSERT_TRUE(valid("", 0, 0));
    ASSERT_TRUE(text_utf8_valid(NULL, 0, TEXT_UTF8_NO_NUL));
    ASSERT_TRUE(!text_utf8_valid(NULL, 1, 0));
    ASSERT_TRUE(valid("plain ascii", 11, TEXT_UTF8_NO_NUL));
    ASSERT_TRUE(valid("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 14, TEXT_UTF8_NO_NUL));
    /* U+0000: well-formed, refused only with the flag. */
    ASSERT_TRUE(valid("a\0b", 3, 0));
    ASSERT_TRUE(!valid("a\0b", 3, TEXT_UTF8_NO_NUL));
    /* Overlong forms of '/', U+07FF and U+FFFF. */
    ASSERT_TRUE(!valid("\xC0\xAF", 2, 0));
    ASSERT_TRUE(!valid("\xC1\xBF", 2, 0));
    ASSERT_TRUE(!valid("\xE0\x9F\xBF", 3, 0));
    ASSERT_TRUE(!valid("\xF0\x8F\xBF\xBF", 4, 0));
    ASSERT_TRUE(!valid("\xC0\x80", 2, 0)); /* the "modified UTF-8" NUL */
    /* The smallest of each length is fine. */
    ASSERT_TRUE(valid("\xC2\x80", 2, 0));
    ASSERT_TRUE(valid("\xE0\xA0\x80", 3, 0));
    ASSERT_TRUE(valid("\xF0\x90\x80\x80", 4, 0));
    /* Surrogates U+D800 and U+DFFF; their neighbours pass. */
    ASSERT_TRUE(!valid("\xED\xA0\x80", 3, 0));
    ASSERT_TRUE(!valid("\xED\xBF\xBF", 3, 0));
    ASSERT_TRUE(valid("\xED\x9F\xBF", 3, 0));
    ASSERT_TRUE(valid("\xEE\x80\x80", 3, 0));
    /* U+10FFFF is the last; past it, and lead bytes 0xF5.. and 0xFF, are refused. */
    ASSERT_TRUE(valid("\xF4\x8F\xBF\xBF", 4, 0));
    ASSERT_TRUE(!valid("\xF4\x90\x80\x80", 4, 0));
    ASSERT_TRUE(!valid("\xF5\x80\x80\x80", 4, 0));
    ASSERT_TRUE(!valid("\xFF", 1, 0));
    /* Truncated sequences, at the end and before another character. */
    ASSERT_TRUE(!valid("\xC3", 1, 0));
    ASSERT_TRUE(!valid("\xE2\x82", 2, 0));
    ASSERT_TRUE(!valid("\xF0\x9F\x98", 3, 0));
    ASSERT_TRUE(!valid("\xE2\x82x", 3, 0));
    ASSERT_TRUE(!valid("\xF0\x9F\x98\x80\xF0\x9F", 6, 0));
    /* A lone continuation byte. */
    ASSERT_TRUE(!valid("a\x80", 2, 0));
    const unsigned char euro[] = {0xE2, 0x82, 0xAC};
    ASSERT_EQ_INT(text_utf8_seq(euro, euro + 3), 3);
    ASSERT_EQ_INT(text_utf8_seq(euro, euro + 2), 0);
}

#define MD5_EMPTY_HEX "d41d8cd98f00b204e9800998ecf8427e"
#define MD5_EMPTY_B64 "1B2M2Y8AsgTpgAmY7PhCfg=="

static void test_base64(void)
{
    unsigned char out[64];
    size_t n = sizeof out;
    const char *wrapped = "1B2M2Y8A\nsgTpgAmY\r\n 7PhCfg==\n";
    ASSERT_EQ_INT(text_base64_decode(wrapped, strlen(wrapped), out, &n), WM_OK);
    ASSERT_EQ_INT(n, 16);
    char hex[33];
    ASSERT_EQ_INT(text_hex_encode(out, n, hex, sizeof hex), WM_OK);
    ASSERT_EQ_STR(hex, MD5_EMPTY_HEX);

    n = sizeof out; /* padding is optional */
    ASSERT_EQ_INT(text_base64_decode("1B2M2Y8AsgTpgAmY7PhCfg", 22, out, &n), WM_OK);
    ASSERT_EQ_INT(n, 16);
    n = sizeof out;
    ASSERT_EQ_INT(text_base64_decode("", 0, out, &n), WM_OK);
    ASSERT_EQ_INT(n, 0);

    static const char *const bad[] = {"1B2M2Y8AsgTpgAmY7PhC!g==",
                                      "1B2M==2Y",
                                      "A",
                                      "AB=C",
                                      "=AAA",
                                      "AAAA=",
                                      "AB===",
                                      "1B2M-Y8A",
                                      "ab\001c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = sizeof out;
        enum wm_err err = text_base64_decode(bad[i], strlen(bad[i]), out, &n);
        if (err == WM_OK)
            TEST_FAIL_AT("base64 \"%s\" was accepted", bad[i]);
        else
            test_passed++;
    }
    n = 3; /* capacity too small */
    ASSERT_EQ_INT(text_base64_decode(MD5_EMPTY_B64, 24, out, &n), WM_ERR_TOOBIG);
    char small[16];
    ASSERT_EQ_INT(text_base64_encode((const unsigned char *)"abcdef", 6, small, 8), WM_ERR_TOOBIG);
    ASSERT_EQ_INT(text_base64_encode((const unsigned char *)"abcde", 5, small, 9), WM_OK);
    ASSERT_EQ_STR(small, "YWJjZGU=");
}

static void test_base64_hex_round_trip(void)
{
    unsigned char in[70], back[70];
    char text[200];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 151 + 7); /* every residue of 3, many byte values */
    int bad = 0;
    for (size_t len = 0; len <= sizeof in; len++) {
        size_t n = sizeof back;
        if (text_base64_encode(in, len, text, sizeof text) != WM_OK ||
            text_base64_decode(text, strlen(text), back, &n) != WM_OK || n != len ||
            memcmp(in, back, len) != 0)
            bad++;
        n = sizeof back;
        if (text_hex_encode(in, len, text, sizeof text) != WM_OK ||
            text_hex_decode(text, strlen(text), back, &n) != WM_OK || n != len ||
            memcmp(in, back, len) != 0)
            bad++;
    }
    ASSERT_EQ_INT(bad, 0);
    size_t n = sizeof back;
    ASSERT_EQ_INT(text_hex_decode("abc", 3, back, &n), WM_ERR_INVAL);
    n = sizeof back;
    ASSERT_EQ_INT(text_hex_decode("zz", 2, back, &n), WM_ERR_INVAL);
    n = sizeof back;
    ASSERT_EQ_INT(text_hex_decode("D41D", 4, back, &n), WM_OK);
    ASSERT_EQ_INT(back[0], 0xd4);
}

int main(void)
{
    test_hex();
    test_space();
    test_utf8();
    test_base64();
    test_base64_hex_round_trip();
    return TEST_REPORT();
}
