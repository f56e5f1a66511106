/* fuzz_wis2.c: libFuzzer harness for the Global Broker's checks, which read every notification
 * of hundreds of WIS2 nodes: whatever bytes come, the topic check gives one of its verdicts and
 * reads no byte past the topic; the message check, on what parses as JSON, says yes with a
 * UUID id or no with one line of reason, never past its buffers; the RFC 3339 and UUID
 * checks accept only what their own definitions allow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "wis2_topic.h"
#include "wnm_check.h"

static struct wis2_topics *topics;

static void check_topic(const uint8_t *data, size_t size)
{
    /* Exactly size bytes, not NUL-terminated: ASan sees any read past them. */
    char *topic = malloc(size ? size : 1);
    if (!topic) return;
    memcpy(topic, data, size);
    for (int leaf = 0; leaf < 2; leaf++) {
        enum wis2_topic_verdict v = wis2_topic_check(topics, topic, size, leaf);
        if (v < WIS2_TOPIC_OK || v > WIS2_TOPIC_NOT_LEAF || !wis2_topic_verdict_name(v)) abort();
        if (v == WIS2_TOPIC_OK &&
            (size < 13 || memchr(topic, '+', size) || memchr(topic, '#', size)))
            abort();
    }
    size_t level_len = 0;
    const char *level = wis2_topic_level(topic, size, 4, &level_len);
    if (level && (level < topic || level + level_len > topic + size)) abort();
    free(topic);
}

static void check_message(const uint8_t *data, size_t size)
{
    struct wm_json *msg = NULL;
    if (wm_json_parse((const char *)data, size, &msg, NULL, 0) != WM_OK) return;
    char id[WNM_ID_LEN + 1], why[128];
    memset(id, 'x', sizeof id);
    memset(why, 'x', sizeof why);
    enum wm_err e = wnm_check(msg, size, id, why, sizeof why);
    if (e == WM_OK && (strlen(id) != WNM_ID_LEN || !wnm_uuid(id, strlen(id)))) abort();
    if (e != WM_OK && (e != WM_ERR_FORMAT && e != WM_ERR_TOOBIG)) abort();
    if (e != WM_OK && !memchr(why, '\0', sizeof why)) abort();
    wm_json_free(&msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!topics && !(topics = wis2_topics_builtin())) abort();
    check_topic(data, size);
    check_message(data, size);
    /* A date-time is at most a few dozen characters: check the input as one, as it is. */
    if (size < 64) {
        (void)wnm_rfc3339((const char *)data, size, true);
        (void)wnm_uuid((const char *)data, size);
    }
    return 0;
}
