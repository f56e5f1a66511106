/* test_filter.c: --accept/--reject ordering and defaults. */
#include "filter.h"
#include "test.h"

int main(void)
{
    struct filter *f = filter_new();
    char why[100];
    ASSERT_TRUE(filter_accepts(f, "http://h/a/UANT01", NULL)); /* empty: everything */
    ASSERT_EQ_INT(filter_add(f, true, "/IU[A-Z]{2}[0-9]{2}", why, sizeof why), WM_OK);
    ASSERT_EQ_INT(filter_add(f, false, "\\.tmp$", why, sizeof why), WM_OK);
    ASSERT_EQ_INT(filter_add(f, false, ".*", why, sizeof why), WM_OK);
    const char *rule;
    ASSERT_TRUE(filter_accepts(f, "http://h/x/IUKN01_EGRR.bufr", &rule));
    ASSERT_EQ_STR(rule, "/IU[A-Z]{2}[0-9]{2}");
    ASSERT_TRUE(!filter_accepts(f, "http://h/x/a.tmp", &rule));
    ASSERT_EQ_STR(rule, "\\.tmp$");
    ASSERT_TRUE(!filter_accepts(f, "http://h/x/SACN31", &rule));
    ASSERT_EQ_STR(rule, ".*");
    ASSERT_EQ_INT(filter_add(f, true, "(unclosed", why, sizeof why), WM_ERR_INVAL);
    ASSERT_TRUE(why[0] != '\0');
    filter_free(&f);
    ASSERT_TRUE(f == NULL);
    return TEST_REPORT();
}
