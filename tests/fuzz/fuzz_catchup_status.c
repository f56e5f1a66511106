/* fuzz_catchup_status.c: libFuzzer harness: any bytes, as a status payload or as the array
 * format's catch-up header, are read or refused, and what is read holds together. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "announce.h"
#include "catchup_wire.h"
#include "json.h"
#include "url.h"

#define TOPIC "xpublic/_catchup/peer-017"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so that ASan catches any read past the bytes given. */
    char *buf = malloc(size ? size : 1);
    struct catchup_status *st = malloc(sizeof *st);
    if (!buf || !st) abort();
    memcpy(buf, data, size);
    char host[CATCHUP_HOST_MAX];
    if (catchup_status_read(buf, size, TOPIC, st) == WM_OK &&
        (strcmp(st->peer, "peer-017") != 0 || !catchup_epoch_ok(st->epoch, strlen(st->epoch)) ||
         !url_is_http(st->url) || !catchup_url_host(st->url, host, sizeof host) ||
         st->seq >= CATCHUP_SEQ_LIMIT || st->first >= CATCHUP_SEQ_LIMIT))
        abort();

    /* The same bytes as an array header: read alone, and inside an announcement (when they are
     * UTF-8), the two agree, and what is read is built back to the same text. */
    struct catchup_mark m, m2;
    bool ok = catchup_mark_parse(buf, size, &m);
    if (ok &&
        (!catchup_id_ok(m.peer, strlen(m.peer)) || !catchup_epoch_ok(m.epoch, strlen(m.epoch)) ||
         m.seq == 0 || m.seq >= CATCHUP_SEQ_LIMIT))
        abort();
    struct announce *a = announce_new();
    struct wm_json *text = wm_json_string_new(buf, size);
    if (!a) abort();
    a->format = WM_FORMAT_ARRAY;
    if (text && !(a->extra = wm_json_object_new())) wm_json_free(&text);
    if (text && wm_json_object_set(a->extra, "catchup", text) == WM_OK) {
        if (catchup_mark_read(a, &m2) != ok) abort();
        if (ok &&
            (strcmp(m.peer, m2.peer) != 0 || strcmp(m.epoch, m2.epoch) != 0 || m.seq != m2.seq))
            abort();
    }
    if (ok) {
        struct wm_json *back = catchup_mark_json(&m, WM_FORMAT_ARRAY);
        size_t len = 0;
        const char *s = wm_json_string(back, &len);
        if (!s || len != size || memcmp(s, buf, size) != 0) abort();
        wm_json_free(&back);
    }
    announce_free(&a);
    free(st);
    free(buf);
    return 0;
}
