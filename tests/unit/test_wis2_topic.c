/* test_wis2_topic.c: WIS2 topic validation reproduces the WMO Global Broker test suite's lists
 * (wis2-global-services-testing tests/global_broker/gb_functional_tests.py, 21 valid and 22
 * invalid topics), leaf-only as a switch, and tables loaded from a file. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../src/wis2_topic.h"
#include "test.h"

static const char *const valid[] = {
    "origin/a/wis2/io-wis2dev-12-test/metadata",
    "origin/a/wis2/io-wis2dev-12-test/metadata/core/weather/surface-based-observations/synop",
    "origin/a/wis2/io-wis2dev-13-test/data/core/weather/aviation/metar",
    "origin/a/wis2/io-wis2dev-13-test/data/core/weather/surface-based-observations/synop",
    "origin/a/wis2/io-wis2dev-14-test/data/core/weather/surface-based-observations/ship",
    "origin/a/wis2/io-wis2dev-14-test/data/core/weather/space-based-observations/sentinel-2b/msi",
    "origin/a/wis2/io-wis2dev-15-test/data/core/weather/space-based-observations/swot/poseidon-3c",
    "origin/a/wis2/io-wis2dev-15-test/data/core/space-weather/space-based-observations/"
    "xmm-newton/epic",
    "origin/a/wis2/io-wis2dev-11-test/data/core/space-weather/space-based-observations/themis-a/"
    "scm",
    "origin/a/wis2/io-wis2dev-11-test/data/core/weather/prediction/analysis/nowcasting/"
    "deterministic/global",
    "origin/a/wis2/io-wis2dev-12-test/data/core/weather/prediction/analysis/seasonal/"
    "deterministic/global",
    "origin/a/wis2/io-wis2dev-12-test/data/core/climate/surface-based-observations/monthly",
    "origin/a/wis2/io-wis2dev-13-test/data/core/climate/surface-based-observations/daily",
    "origin/a/wis2/io-wis2dev-13-test/data/core/cryosphere/experimental",
    "origin/a/wis2/io-wis2dev-14-test/data/core/cryosphere/experimental/graviton/lambda",
    "origin/a/wis2/io-wis2dev-14-test/data/core/hydrology/experimental",
    "origin/a/wis2/io-wis2dev-15-test/data/core/hydrology/experimental/turbulent/laminar/flows",
    "origin/a/wis2/io-wis2dev-15-test/data/core/atmospheric-composition/experimental",
    "origin/a/wis2/io-wis2dev-13-test/data/core/atmospheric-composition/experimental/smog/tests",
    "origin/a/wis2/io-wis2dev-15-test/data/core/ocean/surface-based-observations/drifting-buoys",
    "origin/a/wis2/io-wis2dev-14-test/data/core/ocean/surface-based-observations/sea-ice",
};

static const char *const invalid[] = {
    "origin/a/wis2/io-wis2dev-12-test/data",
    "origin/a/wis2/io-wis2dev-12-test/data/core",
    "origin/a/wis2/io-wis2dev-14-test/data/core/weather/surface-based-observations",
    "origin/a/wis3/io-wis2dev-15-test/data/core/weather/surface-based-observations/synop",
    "origin/a/wis2/io-wis2dev-15-test/data/core/weather/surface-sed-observations/synop",
    "origin/a/wis3/io-wis2dev-11-test/data/core/weather/surface-based-observations/synop",
    "origin/a/wis2/io-wis2dev-11-test/database/core/weather/surface-based-observations/synop",
    "origin/a/wis2/io-wis2dev-12-test/data/core/weather/surface-based-observations/synop/"
    "prediction",
    "origin/a/wis2/io-wis2dev-12-test/data/core/weather/space-based-observations/smm-newton/epic",
    "origin/a/wis2/io-wis2dev-13-test/data/core/weather/space-based-observations/themis-a/scm",
    "origin/a/wis2/io-wis2dev-13-test/data/core/space-weather/space-based-observations/"
    "sentinel-2b/msi",
    "origin/a/wis2/io-wis2dev-14-test/data/core/space-weather/space-based-observations/swot/"
    "poseidon-3c",
    "origin/a/wis2/io-wis2dev-14-test/data/core/geospatial/surface-based-observations/synop",
    "origin/a/wis2/io-wis2dev-15-test/data/core/ibweather/surface-based-observations/dynop",
    "origin/a/wis2/io-wis2dev-15-test/data/core/atmospheric-composition/satellite",
    "origin/a/wis2/io-wis2dev-12-test/data/core/atmospheric-composition",
    "origin/a/wis2/io-wis2dev-12-test/data/core/weather/prediction",
    "origin/a/wis2/io-wis2dev-13-test/data/core/weather/prediction/analysis",
    "origin/a/wis2/io-wis2dev-13-test/data/core/weather/prediction/analysis/nowcasting",
    "origin/a/wis2/io-wis2dev-14-test/data/core/weather/prediction/hindcast",
    "origin/a/wis2/io-wis2dev-14-test/data/core/weather/prediction/hindcast/short-range",
    "origin/a/wis2/io-wis2dev-15-test/data/core/weather/prediction/hindcast/nowcasting",
};

#define N(a) (sizeof a / sizeof a[0])

static enum wis2_topic_verdict check(const struct wis2_topics *t, const char *topic, bool leaf)
{
    return wis2_topic_check(t, topic, strlen(topic), leaf);
}

static void test_lists(const struct wis2_topics *t)
{
    ASSERT_EQ_INT(N(valid), 21);
    ASSERT_EQ_INT(N(invalid), 22);
    for (size_t i = 0; i < N(valid); i++)
        if (check(t, valid[i], true) != WIS2_TOPIC_OK)
            TEST_FAIL_AT("valid topic refused (%s): %s",
                         wis2_topic_verdict_name(check(t, valid[i], true)), valid[i]);
        else
            test_passed++;
    for (size_t i = 0; i < N(invalid); i++)
        if (check(t, invalid[i], true) == WIS2_TOPIC_OK)
            TEST_FAIL_AT("invalid topic accepted: %s", invalid[i]);
        else
            test_passed++;
}

static void test_details(const struct wis2_topics *t)
{
    /* The three non-leaf topics of the invalid list are valid once leaf-only is off (the topic
     * hierarchy permits them since FT2025-2); the others stay invalid. */
    ASSERT_EQ_INT(check(t, invalid[2], true), WIS2_TOPIC_NOT_LEAF);
    ASSERT_EQ_INT(check(t, invalid[2], false), WIS2_TOPIC_OK);
    ASSERT_EQ_INT(check(t, invalid[18], false), WIS2_TOPIC_OK);
    ASSERT_EQ_INT(check(t, invalid[20], false), WIS2_TOPIC_OK);
    ASSERT_EQ_INT(check(t, invalid[15], false), WIS2_TOPIC_DISCIPLINE); /* level 7 alone */
    ASSERT_EQ_INT(check(t, invalid[3], false), WIS2_TOPIC_ROOT);
    ASSERT_EQ_INT(check(t, invalid[6], false), WIS2_TOPIC_TYPE);
    ASSERT_EQ_INT(check(t, invalid[1], false), WIS2_TOPIC_DISCIPLINE);
    ASSERT_EQ_INT(check(t, "origin/a/wis2/x/data/open/weather/aviation/metar", true),
                  WIS2_TOPIC_POLICY);
    ASSERT_EQ_INT(check(t, "cache/a/wis2/x/data/recommended/weather/aviation/metar", true),
                  WIS2_TOPIC_OK);
    ASSERT_EQ_INT(check(t, "cache/a/wis2/x/metadata", true), WIS2_TOPIC_OK);
    ASSERT_EQ_INT(check(t, "monitor/a/wis2/x/metadata", true), WIS2_TOPIC_ROOT);
    ASSERT_EQ_INT(check(t, "origin/a/wis2/x", true), WIS2_TOPIC_TYPE);
    ASSERT_EQ_INT(check(t, "origin/a/wis2//metadata", true), WIS2_TOPIC_SYNTAX);
    ASSERT_EQ_INT(check(t, "origin/a/wis2/x/metadata/", true), WIS2_TOPIC_SYNTAX);
    ASSERT_EQ_INT(check(t, "origin/a/wis2/+/metadata", true), WIS2_TOPIC_SYNTAX);
    ASSERT_EQ_INT(check(t, "origin/a/wis2/X/metadata", true), WIS2_TOPIC_SYNTAX);
    ASSERT_EQ_INT(check(t, "", true), WIS2_TOPIC_SYNTAX);
    /* An unknown discipline with experimental below it is no discipline. */
    ASSERT_EQ_INT(check(t, "origin/a/wis2/x/data/core/geospatial/experimental", true),
                  WIS2_TOPIC_DISCIPLINE);
    /* The ocean has no space-based observations (the test generator's second topic). */
    ASSERT_EQ_INT(
        check(t, "origin/a/wis2/x/data/core/ocean/space-based-observations/experimental", true),
        WIS2_TOPIC_DISCIPLINE);
    /* Topics need no NUL: a prefix of a longer string is checked as its own topic. */
    const char *longer = "origin/a/wis2/x/data/core/weather/aviation/metar/extra";
    ASSERT_EQ_INT(wis2_topic_check(t, longer, strlen(longer) - 6, true), WIS2_TOPIC_OK);
    size_t len = 0;
    const char *l4 = wis2_topic_level(valid[0], strlen(valid[0]), 4, &len);
    ASSERT_TRUE(l4 && len == strlen("io-wis2dev-12-test") &&
                !memcmp(l4, "io-wis2dev-12-test", len));
    ASSERT_TRUE(wis2_topic_level("a/b", 3, 3, &len) == NULL);
}

static void test_load(void)
{
    char path[] = "/tmp/test_wis2_topic.XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    if (fd < 0) return;
    const char text[] = "Name\r\nweather/new-thing/sub\r\n\r\n# a comment\nweather/new-thing\r\n"
                        "weather/new-thing/sub\n";
    ASSERT_EQ_INT(write(fd, text, sizeof text - 1), sizeof text - 1);
    close(fd);
    enum wm_err e;
    char why[200];
    struct wis2_topics *t = wis2_topics_load(path, &e, why, sizeof why);
    ASSERT_TRUE(t != NULL);
    ASSERT_EQ_INT(wis2_topics_count(t), 2);
    ASSERT_EQ_INT(check(t, "origin/a/wis2/x/data/core/weather/new-thing/sub", true), WIS2_TOPIC_OK);
    ASSERT_EQ_INT(check(t, "origin/a/wis2/x/data/core/weather/new-thing", true),
                  WIS2_TOPIC_NOT_LEAF);
    ASSERT_EQ_INT(check(t, valid[2], true), WIS2_TOPIC_DISCIPLINE);
    wis2_topics_free(&t);
    FILE *f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    if (f) {
        fputs("weather/ok\nweather//bad\n", f);
        fclose(f);
    }
    t = wis2_topics_load(path, &e, why, sizeof why);
    ASSERT_TRUE(t == NULL);
    ASSERT_EQ_INT(e, WM_ERR_FORMAT);
    ASSERT_TRUE(strstr(why, ":2:") != NULL);
    unlink(path);
    t = wis2_topics_load(path, &e, why, sizeof why);
    ASSERT_TRUE(t == NULL);
    ASSERT_EQ_INT(e, WM_ERR_IO);
}

int main(void)
{
    struct wis2_topics *t = wis2_topics_builtin();
    ASSERT_TRUE(t != NULL);
    if (!t) return TEST_REPORT();
    /* 1309 paths in the WMO bundle, one of them twice. */
    ASSERT_EQ_INT(wis2_topics_count(t), 1308);
    test_lists(t);
    test_details(t);
    wis2_topics_free(&t);
    test_load();
    return TEST_REPORT();
}
