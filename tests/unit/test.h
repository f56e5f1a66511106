/* test.h: a tiny unit-test harness; failures print both values, the run ends with a tally. */
#ifndef WMESH_TEST_H
#define WMESH_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int test_passed, test_failed;

#define TEST_FAIL_AT(...)                                                                          \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        test_failed++;                                                                             \
    } while (0)

#define ASSERT_TRUE(c)                                                                             \
    do {                                                                                           \
        if (c)                                                                                     \
            test_passed++;                                                                         \
        else                                                                                       \
            TEST_FAIL_AT("expected true: %s", #c);                                                 \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                                        \
    do {                                                                                           \
        intmax_t va_ = (intmax_t)(a), vb_ = (intmax_t)(b);                                         \
        if (va_ == vb_)                                                                            \
            test_passed++;                                                                         \
        else                                                                                       \
            TEST_FAIL_AT("%s == %s: %jd != %jd", #a, #b, va_, vb_);                                \
    } while (0)

#define ASSERT_EQ_STR(a, b)                                                                        \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (sa_ && sb_ && strcmp(sa_, sb_) == 0)                                                   \
            test_passed++;                                                                         \
        else                                                                                       \
            TEST_FAIL_AT("%s == %s: \"%s\" != \"%s\"", #a, #b, sa_ ? sa_ : "(null)",               \
                         sb_ ? sb_ : "(null)");                                                    \
    } while (0)

#define ASSERT_EQ_MEM(a, b, n)                                                                     \
    do {                                                                                           \
        if (memcmp((a), (b), (n)) == 0)                                                            \
            test_passed++;                                                                         \
        else                                                                                       \
            TEST_FAIL_AT("%s and %s differ in their first %zu bytes", #a, #b, (size_t)(n));        \
    } while (0)

/* Prints the tally; use as the value of main(). */
#define TEST_REPORT()                                                                              \
    (printf("%d passed, %d failed\n", test_passed, test_failed), test_failed ? 1 : 0)

#endif
