/* test_buf.c: the capped growable byte buffer. */
#include <stdint.h>
#include <stdlib.h>

#include "buf.h"
#include "test.h"

static void test_append_consume(void)
{
    struct buf b = {0};
    ASSERT_EQ_INT(buf_append(&b, "hello", 5), WM_OK);
    ASSERT_EQ_INT(buf_append(&b, " world", 6), WM_OK);
    ASSERT_EQ_INT(b.len, 11);
    ASSERT_TRUE(memcmp(b.data, "hello world", 11) == 0);
    buf_consume(&b, 6);
    ASSERT_EQ_INT(b.len, 5);
    ASSERT_TRUE(memcmp(b.data, "world", 5) == 0);
    buf_consume(&b, 99);
    ASSERT_EQ_INT(b.len, 0);
    ASSERT_EQ_INT(buf_append(&b, NULL, 0), WM_OK);
    ASSERT_EQ_INT(b.len, 0);
    buf_free(&b);
    ASSERT_TRUE(b.data == NULL);
    ASSERT_EQ_INT(b.cap, 0);
    ASSERT_EQ_INT(buf_append(NULL, "x", 1), WM_ERR_INVAL);
    ASSERT_EQ_INT(buf_reserve(NULL, 1), WM_ERR_INVAL);
}

static void test_cap(void)
{
    struct buf b = {.max = 10};
    ASSERT_EQ_INT(buf_append(&b, "0123456789", 10), WM_OK);
    ASSERT_EQ_INT(buf_append(&b, "x", 1), WM_ERR_TOOBIG);
    ASSERT_EQ_INT(b.len, 10); /* unchanged on error */
    ASSERT_TRUE(b.cap <= 10);
    buf_consume(&b, 5);
    ASSERT_EQ_INT(buf_reserve(&b, 5), WM_OK);
    ASSERT_EQ_INT(buf_reserve(&b, 6), WM_ERR_TOOBIG);
    ASSERT_EQ_INT(buf_reserve(&b, SIZE_MAX), WM_ERR_TOOBIG);
    buf_free(&b);
    ASSERT_EQ_INT(b.max, 10); /* the cap survives */
    struct buf d = {0};
    ASSERT_EQ_INT(buf_reserve(&d, BUF_MAX_DEFAULT + 1), WM_ERR_TOOBIG);
    ASSERT_EQ_INT(buf_reserve(&d, SIZE_MAX), WM_ERR_TOOBIG);
    ASSERT_TRUE(d.data == NULL);
}

static void test_printf_detach(void)
{
    struct buf b = {0};
    ASSERT_EQ_INT(buf_printf(&b, "%s=%d;", "a", 1), WM_OK);
    ASSERT_EQ_INT(b.len, 4);
    ASSERT_EQ_STR((char *)b.data, "a=1;"); /* NUL kept after len */
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ASSERT_EQ_INT(buf_printf(&b, "%s", big), WM_OK); /* grows past the first allocation */
    ASSERT_EQ_INT(b.len, 4 + 999);
    ASSERT_EQ_INT(buf_printf(&b, "%s", ""), WM_OK);
    ASSERT_EQ_INT(b.len, 1003);
    size_t n = 0;
    char *s = buf_detach(&b, &n);
    ASSERT_TRUE(s != NULL);
    ASSERT_EQ_INT(n, 1003);
    ASSERT_EQ_INT(strlen(s), 1003);
    ASSERT_TRUE(b.data == NULL && b.len == 0 && b.cap == 0);
    free(s);
    struct buf e = {0};
    s = buf_detach(&e, NULL); /* an empty buffer gives an empty string */
    ASSERT_EQ_STR(s, "");
    free(s);
    struct buf small = {.max = 4};
    ASSERT_EQ_INT(buf_printf(&small, "%s", "abcd"), WM_ERR_TOOBIG); /* no room for the NUL */
    ASSERT_EQ_INT(small.len, 0);
    ASSERT_EQ_INT(buf_printf(&small, "%s", "abc"), WM_OK);
    s = buf_detach(&small, NULL); /* "abc" and its NUL fit in 4 */
    ASSERT_EQ_STR(s, "abc");
    free(s);
    struct buf full = {.max = 3};
    ASSERT_EQ_INT(buf_append(&full, "abc", 3), WM_OK);
    ASSERT_TRUE(buf_detach(&full, NULL) == NULL); /* no room for the NUL: b untouched */
    ASSERT_EQ_INT(full.len, 3);
    buf_free(&full);
}

int main(void)
{
    test_append_consume();
    test_cap();
    test_printf_detach();
    return TEST_REPORT();
}
