/* fuzz_topic.c: libFuzzer harness: whatever topic a message came on, --post-topic copy gives a
 * topic one may publish on (no wildcard, no empty level, within its buffer) or fails leaving "";
 * and whatever a journal record holds, reading it as a peer's entry stays within its bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "journal.h"

static void check_topic(const char *out, size_t outlen)
{
    size_t len = strnlen(out, outlen);
    if (len == 0 || len >= outlen || out[0] == '/' || out[len - 1] == '/') abort();
    if (strpbrk(out, "+#") || strstr(out, "//")) abort();
}

static void copy(const char *exchange, const char *prefix, const char *topic, size_t outlen)
{
    char out[512];
    memset(out, 'x', sizeof out);
    enum wm_err err = codec_topic_copy(exchange, prefix, topic, "cache", "a/wis2", out, outlen);
    if (err == WM_OK)
        check_topic(out, outlen);
    else if (out[0] != '\0')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *topic = malloc(size + 1);
    if (!topic) return 0;
    memcpy(topic, data, size);
    topic[size] = '\0'; /* a topic is a C string: an embedded NUL ends it */
    copy("origin", "a/wis2", topic, 512);
    copy("+", "a/wis2", topic, 512);
    copy("xpublic", "v03/post", topic, 1 + size % 40); /* small buffers: TOOBIG, no overrun */
    free(topic);

    struct journal_entry e;
    if (journal_entry_read(data, size, &e) == WM_OK) {
        const uint8_t *p = e.payload, *t = (const uint8_t *)e.topic;
        if (p < data || p + e.len > data + size) abort();
        if (t && (t < data || t + e.topic_len > p)) abort();
        if (e.version == 1 && (e.topic || p != data || e.len != size)) abort();
        if (e.version != 1 && e.version != JOURNAL_ENTRY_VERSION) abort();
    }
    return 0;
}
