/* test_strmap.c: the string hash map behind the in-flight table. */
#include <stdio.h>

#include "strmap.h"
#include "test.h"

int main(void)
{
    struct strmap *m = strmap_new();
    ASSERT_TRUE(m != NULL);
    static int values[5000];
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "dir/%d/file", i);
        ASSERT_EQ_INT(strmap_put(m, key, &values[i]), WM_OK);
    }
    ASSERT_EQ_INT(strmap_count(m), 5000);
    int wrong = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "dir/%d/file", i);
        if (strmap_get(m, key) != &values[i]) wrong++;
    }
    ASSERT_EQ_INT(wrong, 0);
    ASSERT_TRUE(strmap_get(m, "absent") == NULL);
    ASSERT_EQ_INT(strmap_put(m, "dir/7/file", &values[0]), WM_OK); /* replace */
    ASSERT_TRUE(strmap_get(m, "dir/7/file") == &values[0]);
    ASSERT_EQ_INT(strmap_count(m), 5000);
    ASSERT_TRUE(strmap_remove(m, "dir/7/file") == &values[0]);
    ASSERT_TRUE(strmap_remove(m, "dir/7/file") == NULL);
    ASSERT_EQ_INT(strmap_count(m), 4999);
    strmap_free(&m);
    ASSERT_TRUE(m == NULL);
    return TEST_REPORT();
}
