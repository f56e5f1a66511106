/* test_options.c: long options, repeats, defaults, positionals and errors. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "options.h"
#include "test.h"

static const struct option_spec specs[] = {
    {"dir", OPT_STRING, false, "DIR", NULL, "tree"},
    {"broker", OPT_STRING, true, "URL", NULL, "broker"},
    {"subtopic", OPT_STRING, true, "S", "#", "subtopic"},
    {"lag-warn", OPT_NUMBER, false, "S", "120", "warn"},
    {"verbose", OPT_FLAG, false, NULL, NULL, "debug"},
    {"accept", OPT_STRING, true, "RE", NULL, "accept"},
    {"config", OPT_STRING, false, "FILE", NULL, "config"},
    {NULL, 0, false, NULL, NULL, NULL},
};

static char cfg[64];

static void write_cfg(const char *text)
{
    FILE *f = fopen(cfg, "w");
    fputs(text, f);
    fclose(f);
}

/* Values from --config come first; the command line overrides them or replaces repeats. */
static void test_config(void)
{
    bool help;
    snprintf(cfg, sizeof cfg, "/tmp/wmesh-opt-XXXXXX");
    close(mkstemp(cfg));
    write_cfg("# a peer\n\ndir /srv/tree\nbroker mqtt://a\n  broker   mqtt://b  \n"
              "lag-warn 30\nverbose yes\naccept x\n");
    char *argv[] = {"peer", "--config", cfg, "--lag-warn", "5", "--accept", "y"};
    struct options *o = options_parse("u", specs, 7, argv, &help);
    ASSERT_TRUE(o != NULL);
    ASSERT_EQ_STR(options_get(o, "dir"), "/srv/tree");
    size_t n;
    const char **b = options_get_all(o, "broker", &n);
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_STR(b[1], "mqtt://b");
    free(b);
    double d = 0;
    ASSERT_EQ_INT(options_number(o, "lag-warn", 0, &d), WM_OK);
    ASSERT_TRUE(d == 5);
    ASSERT_TRUE(options_flag(o, "verbose"));
    const char **acc = options_get_all(o, "accept", &n);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_STR(acc[0], "y");
    free(acc);
    const char *name;
    bool from_file;
    ASSERT_EQ_STR(options_nth(o, 0, &name, &from_file), "/srv/tree");
    ASSERT_TRUE(from_file);
    options_free(&o);

    write_cfg("dir /x\nnosuch 1\n");
    char *argv2[] = {"peer", "--config", cfg};
    ASSERT_TRUE(options_parse("u", specs, 3, argv2, &help) == NULL);
    write_cfg("lag-warn soon\n");
    ASSERT_TRUE(options_parse("u", specs, 3, argv2, &help) == NULL);
    unlink(cfg);
    ASSERT_TRUE(options_parse("u", specs, 3, argv2, &help) == NULL);
}

int main(void)
{
    char *argv[] = {"peer",       "--dir",    "/tmp/t",    "--broker=mqtt://a",
                    "--broker",   "mqtt://b", "--verbose", "file1",
                    "--lag-warn", "2.5",      "--",        "--notanoption"};
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
    test_config();
    return TEST_REPORT();
}
