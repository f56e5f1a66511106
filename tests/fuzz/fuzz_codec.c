/* fuzz_codec.c: libFuzzer harness: any payload decodes or fails cleanly; what decodes survives
 * re-encoding in both formats, and encoding what we decoded again gives the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* What the format carries must come back unchanged. */
static bool same(const struct announce *a, const struct announce *b, enum wm_format fmt)
{
    if (a->pubtime_ns != b->pubtime_ns || a->pubtime_digits != b->pubtime_digits) return false;
    if (!same_text(a->base_url, b->base_url) || !same_text(a->rel_path, b->rel_path)) return false;
    if (!integrity_equal(&a->sum, &b->sum) || b->format != fmt) return false;
    if (fmt == WM_FORMAT_ARRAY) return true; /* carries nothing else that is interpreted */
    if (a->sum_is_identity != b->sum_is_identity || a->size != b->size) return false;
    if (!same_text(a->retrieve_path, b->retrieve_path)) return false;
    if (a->content_encoding != b->content_encoding || a->content_len != b->content_len)
        return false;
    return a->content_len == 0 || memcmp(a->content, b->content, a->content_len) == 0;
}

static void round_trip(const struct announce *a, enum wm_format fmt)
{
    char *first = NULL, *second = NULL, why[256];
    size_t len1 = 0, len2 = 0;
    struct announce *b = NULL;
    enum wm_err err = codec_encode(a, fmt, &first, &len1);
    /* No sum letter for the method, or a result our own decoder would refuse. */
    if (err == WM_ERR_METHOD || err == WM_ERR_TOOBIG) return;
    if (err != WM_OK) abort();
    if (codec_decode(first, len1, &b, why, sizeof why) != WM_OK) abort();
    if (!same(a, b, fmt)) abort();
    if (codec_encode(b, fmt, &second, &len2) != WM_OK) abort();
    if (len1 != len2 || memcmp(first, second, len1) != 0) abort();
    free(first);
    free(second);
    announce_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct announce *a = NULL;
    char why[256];
    enum wm_err err = codec_decode((const char *)data, size, &a, why, sizeof why);
    if (err != WM_OK) {
        if (a || why[0] == '\0') abort();
    } else {
        round_trip(a, WM_FORMAT_V03);
        round_trip(a, WM_FORMAT_ARRAY);
        announce_free(&a);
    }
    struct wm_checksum sum;
    (void)codec_sum_from_json((const char *)data, size, &sum);
    return 0;
}
