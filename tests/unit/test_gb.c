/* test_gb.c: the Global Broker's decision per message: centre-id of a node's link, received
 * before anything else, invalid JSON and formats, invalid topics, the anti-loop window on
 * message ids (dedup), and the wmo_wis2_gb_* series each verdict moves. */
#include <stdio.h>
#include <stdlib.h>

#include "../../src/gb.h"
#include "../../src/series.h"
#include "../../src/wis2_topic.h"
#include "test.h"

#define TOPIC12                                                                                    \
    "origin/a/wis2/io-wis2dev-12-test/data/core/weather/surface-based-observations/synop"
#define TOPIC14 "origin/a/wis2/io-wis2dev-14-test/data/core/weather/surface-based-observations/ship"

static char msg[1024];

static const char *wnm(const char *id)
{
    snprintf(msg, sizeof msg,
             "{\"id\":\"%s\",\"conformsTo\":[\"http://wis.wmo.int/spec/wnm/1/conf/core\"],"
             "\"type\":\"Feature\",\"geometry\":null,\"properties\":{\"data_id\":\"d\","
             "\"pubtime\":\"2024-09-23T11:37:12Z\",\"datetime\":\"2024-09-23T11:37:12Z\"},"
             "\"links\":[{\"href\":\"https://h/x\",\"rel\":\"canonical\"}]}",
             id);
    return msg;
}

static enum gb_verdict admit(struct gb_core *core, const struct gb_source *src, const char *topic,
                             const char *payload, uint64_t now)
{
    struct gb_centre *c = NULL;
    char why[200];
    return gb_core_admit(core, src, topic, strlen(topic), payload, strlen(payload), now, &c, why,
                         sizeof why);
}

#define ID1 "31e9d66a-cd83-4174-9429-b932f1abe1be"
#define ID2 "41e9d66a-cd83-4174-9429-b932f1abe1be"

int main(void)
{
    struct wis2_topics *topics = wis2_topics_builtin();
    struct gb_core_config cfg = {.report_by = "io-wis2dev-gb",
                                 .topics = topics,
                                 .leaf_only = true,
                                 .dedup_window_s = 900,
                                 .dedup_capacity = 1000};
    struct gb_core *core = gb_core_new(&cfg);
    ASSERT_TRUE(core != NULL);
    if (!core) return TEST_REPORT();
    struct gb_centre *c12 = gb_core_centre(core, "io-wis2dev-12-test", 18);
    struct gb_source node12 = {&c12, 1}, any = {NULL, 0};

    /* A node publishing under another centre-id: nothing counted. */
    ASSERT_EQ_INT(admit(core, &node12, TOPIC14, wnm(ID1), 1000), GB_UNAUTHORISED);
    ASSERT_EQ_INT(gb_core_metric(core, "messages_received_total", "io-wis2dev-14-test"), -1);

    /* Published once; the same id again within the window, from any link, is a duplicate. */
    ASSERT_EQ_INT(admit(core, &node12, TOPIC12, wnm(ID1), 1000), GB_PUBLISH);
    ASSERT_EQ_INT(admit(core, &any, TOPIC14, wnm(ID1), 1500), GB_DUPLICATE);
    /* Case does not make another id. */
    ASSERT_EQ_INT(admit(core, &any, TOPIC14, wnm("31E9D66A-CD83-4174-9429-B932F1ABE1BE"), 1500),
                  GB_DUPLICATE);
    ASSERT_EQ_INT(admit(core, &any, TOPIC12, wnm(ID1), 1899), GB_DUPLICATE);
    /* The window runs from the publication: past it the id is new again. */
    ASSERT_EQ_INT(admit(core, &any, TOPIC12, wnm(ID1), 1901), GB_PUBLISH);
    ASSERT_EQ_INT(admit(core, &any, TOPIC12, wnm(ID2), 1901), GB_PUBLISH);

    /* Invalid ones, and an invalid copy of an id does not take the id. */
    ASSERT_EQ_INT(admit(core, &any, TOPIC12, "{not json", 2000), GB_INVALID_FORMAT);
    ASSERT_EQ_INT(admit(core, &any, TOPIC12, "{\"id\":\"" ID2 "\"}", 2000), GB_INVALID_FORMAT);
    const char *bad_topic = "origin/a/wis2/io-wis2dev-12-test/data/core/weather";
    ASSERT_EQ_INT(admit(core, &any, bad_topic, wnm("51e9d66a-cd83-4174-9429-b932f1abe1be"), 2000),
                  GB_INVALID_TOPIC);
    ASSERT_EQ_INT(admit(core, &any, TOPIC12, wnm("51e9d66a-cd83-4174-9429-b932f1abe1be"), 2000),
                  GB_PUBLISH);

    /* Metrics: received counts every message the centre check let through. */
    ASSERT_EQ_INT(gb_core_metric(core, "messages_received_total", "io-wis2dev-12-test"), 8);
    ASSERT_EQ_INT(gb_core_metric(core, "messages_received_total", "io-wis2dev-14-test"), 2);
    ASSERT_EQ_INT(gb_core_metric(core, "messages_invalid_format_total", "io-wis2dev-12-test"), 2);
    ASSERT_EQ_INT(gb_core_metric(core, "messages_invalid_topic_total", "io-wis2dev-12-test"), 1);
    ASSERT_EQ_INT(gb_core_metric(core, "messages_published_total", "io-wis2dev-12-test"), 0);
    gb_core_published(core, c12);
    ASSERT_EQ_INT(gb_core_metric(core, "messages_published_total", "io-wis2dev-12-test"), 1);
    ASSERT_EQ_INT(gb_core_metric(core, "last_message_timestamp_seconds", "io-wis2dev-12-test"),
                  2000);
    gb_core_connected(core, c12, true);
    ASSERT_EQ_INT(gb_core_metric(core, "connected_flag", "io-wis2dev-12-test"), 1);
    struct gb_counts n;
    gb_core_counts(core, &n);
    ASSERT_EQ_INT(n.received, 10);
    ASSERT_EQ_INT(n.duplicates, 3);
    ASSERT_EQ_INT(n.unauthorised, 1);
    ASSERT_EQ_INT(n.published, 1);

    struct buf page = {0};
    ASSERT_TRUE(series_render(gb_core_series(core), &page));
    char *text = buf_detach(&page, NULL);
    ASSERT_TRUE(text && strstr(text, "wmo_wis2_gb_messages_received_total{centre_id=\""
                                     "io-wis2dev-12-test\",report_by=\"io-wis2dev-gb\"} 8\n"));
    free(text);
    gb_core_free(&core);

    /* A bounded set: a full one forgets the ids closest to the end of their window. */
    cfg.dedup_capacity = 16;
    core = gb_core_new(&cfg);
    ASSERT_TRUE(core != NULL);
    char id[64];
    for (int i = 0; core && i < 100; i++) {
        snprintf(id, sizeof id, "%08x-cd83-4174-9429-b932f1abe1be", i);
        ASSERT_EQ_INT(admit(core, &any, TOPIC12, wnm(id), 1000 + (uint64_t)i), GB_PUBLISH);
    }
    ASSERT_TRUE(core && gb_core_dedup_count(core) <= 16);
    ASSERT_TRUE(core && gb_core_dedup_evictions(core) >= 84);
    /* The newest ids are still there. */
    ASSERT_EQ_INT(admit(core, &any, TOPIC12, wnm(id), 1100), GB_DUPLICATE);
    gb_core_free(&core);
    cfg.dedup_window_s = 0;
    ASSERT_TRUE(gb_core_new(&cfg) == NULL);
    wis2_topics_free(&topics);
    return TEST_REPORT();
}
