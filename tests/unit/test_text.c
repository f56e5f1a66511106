/* test_text.c: hexadecimal digits and the one UTF-8 check. */
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

int main(void)
{
    test_hex();
    test_utf8();
    return TEST_REPORT();
}
