/* fuzz_catchup_query.c: libFuzzer harness: any query string parses or is refused with a
 * reason, and what is accepted holds together (values inside the struct, valid filters). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catchup_serve.h"
#include "mqtt_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so that ASan catches any read past the bytes given. */
    char *buf = malloc(size ? size : 1);
    struct catchup_query *q = malloc(sizeof *q);
    if (!buf || !q) abort();
    memcpy(buf, data, size);
    char why[128] = "";
    enum wm_err err = catchup_query_parse(buf, size, q, why, sizeof why);
    if (err != WM_OK && !why[0]) abort();
    if (err == WM_OK) {
        if (q->limit < 1 || q->limit > CATCHUP_LIMIT_MAX || q->ntopics > CATCHUP_TOPICS_MAX)
            abort();
        if (!q->has_after && !q->has_since) abort();
        if (q->has_after && (!q->has_epoch || !q->epoch[0])) abort();
        for (size_t i = 0; i < q->ntopics; i++)
            if (q->topics[i] < q->text || q->topics[i] >= q->text + sizeof q->text ||
                !mqtt_topic_filter_valid(q->topics[i], strlen(q->topics[i])))
                abort();
    }
    free(q);
    free(buf);
    return 0;
}
