/* test_options.c: long options, repeats, defaults, positionals and errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "options.h"
#include "test.h"

static const struct option_spec specs[] = {
    {"dir", OPT_STRING, false, "DIR", NULL, "tree", 0, 0},
    {"broker", OPT_STRING, true, "URL", NULL, "broker", 0, 0},
    {"subtopic", OPT_STRING, true, "S", "#", "subtopic", 0, 0},
    {"lag-warn", OPT_NUMBER, false, "S", "120", "warn", 0, 0},
    {"verbose", OPT_FLAG, false, NULL, NULL, "debug", 0, 0},
    {"accept", OPT_STRING, true, "RE", NULL, "accept", 0, 0},
    {"config", OPT_STRING, false, "FILE", NULL, "config", 0, 0},
    {"pipeline", OPT_NUMBER, false, "N", "4", "per connection", 1, 64},
    {"timeout", OPT_NUMBER, false, "S", "10", "timeout", 0.001, INFINITY},
    {"count", OPT_NUMBER, false, "N", NULL, "count", 0, 1e15},
    {NULL, 0, false, NULL, NULL, NULL, 0, 0},
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
    ASSERT_EQ_INT(options_number(o, "lag-warn", &d), WM_OK);
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

/* What options_parse said on stderr when parsing argv failed: the first line, into out. */
static void parse_error(const struct option_spec *sp, int argc, char **argv, char *out,
                        size_t outlen)
{
    char path[] = "/tmp/wmesh-opt-err-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    bool help;
    fflush(stderr);
    dup2(fd, 2);
    struct options *o = options_parse("u", sp, argc, argv, &help);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ASSERT_TRUE(o == NULL);
    options_free(&o);
    out[0] = '\0';
    ssize_t n = pread(fd, out, outlen - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    close(fd);
    unlink(path);
}

/* A number out of range is refused with the option, the value and the range named; defaults
 * come from the spec alone. */
static void test_ranges(void)
{
    static const struct {
        int argc;
        char *argv[3];
        const char *said;
    } cases[] = {
        {3,
         {"peer", "--pipeline", "100"},
         "wmesh peer: --pipeline wants a number from 1 to 64, not 100"},
        {2,
         {"peer", "--timeout=0"},
         "wmesh peer: --timeout wants a number of at least 0.001, not 0"},
        {3,
         {"peer", "--count", "-1"},
         "wmesh peer: --count wants a number from 0 to 1e+15, not -1"},
        {3, {"peer", "--lag-warn", "soon"}, "wmesh peer: --lag-warn wants a number, not soon"},
        {2, {"post", "--nope"}, "wmesh post: unknown option --nope (see --help)"},
    };
    char msg[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[3];
        memcpy(argv, cases[i].argv, sizeof argv);
        parse_error(specs, cases[i].argc, argv, msg, sizeof msg);
        ASSERT_EQ_STR(msg, cases[i].said);
    }

    /* In a configuration file: the file, the line, the option and the range. */
    snprintf(cfg, sizeof cfg, "/tmp/wmesh-opt-XXXXXX");
    close(mkstemp(cfg));
    write_cfg("dir /x\npipeline 0\n");
    char *a6[] = {"peer", "--config", cfg};
    parse_error(specs, 3, a6, msg, sizeof msg);
    char want[256];
    snprintf(want, sizeof want, "wmesh peer: %s:2: pipeline wants a number from 1 to 64, not 0",
             cfg);
    ASSERT_EQ_STR(msg, want);
    unlink(cfg);

    /* Bounds are allowed; absent options take the spec's default, or report NOTFOUND. */
    bool help;
    char *ok[] = {"peer", "--pipeline", "64", "--timeout", "0.001"};
    struct options *o = options_parse("u", specs, 5, ok, &help);
    ASSERT_TRUE(o != NULL);
    double d = 0;
    ASSERT_EQ_INT(options_number(o, "pipeline", &d), WM_OK);
    ASSERT_TRUE(d == 64);
    ASSERT_EQ_INT(options_number(o, "lag-warn", &d), WM_OK);
    ASSERT_TRUE(d == 120);
    d = -5;
    ASSERT_EQ_INT(options_number(o, "count", &d), WM_ERR_NOTFOUND);
    ASSERT_TRUE(d == -5);
    options_free(&o);

    /* A default outside its own range is a mistake in the table, said on every run. */
    static const struct option_spec bad[] = {
        {"pipeline", OPT_NUMBER, false, "N", "0", "per connection", 1, 64},
        {NULL, 0, false, NULL, NULL, NULL, 0, 0},
    };
    char *a7[] = {"peer"};
    parse_error(bad, 1, a7, msg, sizeof msg);
    ASSERT_EQ_STR(msg, "wmesh peer: the default of --pipeline wants a number from 1 to 64, not 0");
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
    ASSERT_EQ_INT(options_number(o, "lag-warn", &d), WM_OK);
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
    test_ranges();
    return TEST_REPORT();
}
