/* test_options.c: long options, repeats, defaults, positionals and errors. */
#include <stdlib.h>

#include "options.h"
#include "test.h"

static const struct option_spec specs[] = {
    {"dir", OPT_STRING, false, "DIR", NULL, "tree"},
    {"broker", OPT_STRING, true, "URL", NULL, "broker"},
    {"subtopic", OPT_STRING, true, "S", "#", "subtopic"},
    {"lag-warn", OPT_NUMBER, false, "S", "120", "warn"},
    {"verbose", OPT_FLAG, false, NULL, NULL, "debug"},
    {NULL, 0, false, NULL, NULL, NULL},
};

int main(void)
{
    char *argv[] = {"peer", "--dir", "/tmp/t", "--broker=mqtt://a", "--broker", "mqtt://b",
                    "--verbose", "file1", "--lag-warn", "2.5", "--", "--notanoption"};
    bool help;
    struct options *o = options_parse("u", specs, 12, argv, &help);
    ASSERT_TRUE(o != NULL);
    ASSERT_EQ_STR(options_get(o, "dir"), "/tmp/t");
    size_t n;
    const char **b = options_get_all(o, "broker", &n);
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_STR(b[0], "mqtt://a");
    ASSERT_EQ_STR(b[1], "mqtt://b");
    free(b);
    const char **s = options_get_all(o, "subtopic", &n);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_STR(s[0], "#");
    free(s);
    ASSERT_TRUE(options_flag(o, "verbose"));
    double d;
    ASSERT_EQ_INT(options_number(o, "lag-warn", 0, &d), WM_OK);
    ASSERT_TRUE(d == 2.5);
    const char *const *pos = options_positionals(o, &n);
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_STR(pos[0], "file1");
    ASSERT_EQ_STR(pos[1], "--notanoption");
    options_free(&o);

    char *bad1[] = {"peer", "--nope"};
    ASSERT_TRUE(options_parse("u", specs, 2, bad1, &help) == NULL);
    char *bad2[] = {"peer", "--dir"};
    ASSERT_TRUE(options_parse("u", specs, 2, bad2, &help) == NULL);
    char *bad3[] = {"peer", "--lag-warn", "soon"};
    ASSERT_TRUE(options_parse("u", specs, 3, bad3, &help) == NULL);
    char *bad4[] = {"peer", "--verbose=yes"};
    ASSERT_TRUE(options_parse("u", specs, 2, bad4, &help) == NULL);
    ASSERT_TRUE(!help);
    return TEST_REPORT();
}
