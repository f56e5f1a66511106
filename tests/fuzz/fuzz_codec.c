/* fuzz_codec.c: libFuzzer harness: any payload decodes or fails cleanly; what decodes survives
 * re-encoding in every format, and encoding what we decoded again gives the same bytes (for WIS2:
 * all but the id, which is new at each encoding). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "tree.h"

/* Content shorter than this (in bytes) always fits in a WIS2 message, even as base64. */
#define WNM_CONTENT_KEPT 3070

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_content(const struct announce *a, const struct announce *b)
{
    if (a->content_encoding != b->content_encoding || a->content_len != b->content_len)
        return false;
    return a->content_len == 0 || memcmp(a->content, b->content, a->content_len) == 0;
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
    return same_content(a, b);
}

/* The data_id a WIS2 message built from a carries. */
static const char *data_id(const struct announce *a)
{
    if (a->format == WM_FORMAT_WNM) return a->rel_path;
    const char *s = a->rel_path + strspn(a->rel_path, "/");
    return *s ? s : a->rel_path;
}

/* What a WIS2 message carries: the file version, its link (kept while a names its source) and
 * inline content unless it is too big for WIS2. */
static bool same_wnm(const struct announce *a, const struct announce *b)
{
    if (a->pubtime_ns != b->pubtime_ns || a->pubtime_digits != b->pubtime_digits) return false;
    if (!same_text(data_id(a), b->rel_path) || !integrity_equal(&a->sum, &b->sum)) return false;
    if (b->format != WM_FORMAT_WNM || a->size != b->size || !b->download_url) return false;
    if (a->download_url && !same_text(a->download_url, b->download_url)) return false;
    if (b->content_encoding == WM_CONTENT_NONE && a->content_encoding != WM_CONTENT_NONE)
        return a->content_len >= WNM_CONTENT_KEPT;
    return same_content(a, b);
}

/* Two encodings of one announcement: identical but for one id of WM_UUID_LEN characters. */
static bool same_but_id(const char *x, size_t xlen, const char *y, size_t ylen)
{
    if (xlen != ylen) return false;
    size_t first = 0, last = xlen;
    while (first < xlen && x[first] == y[first])
        first++;
    while (last > first && x[last - 1] == y[last - 1])
        last--;
    return last - first <= WM_UUID_LEN;
}

static void round_trip(const struct announce *a, enum wm_format fmt)
{
    char *first = NULL, *second = NULL, why[256];
    size_t len1 = 0, len2 = 0;
    struct announce *b = NULL;
    enum wm_err err = codec_encode(a, fmt, &first, &len1);
    /* No place for the checksum method, or a result our own decoder would refuse. */
    if (err == WM_ERR_METHOD || err == WM_ERR_TOOBIG) return;
    if (err != WM_OK) abort();
    if (codec_decode(first, len1, &b, why, sizeof why) != WM_OK) abort();
    if (fmt == WM_FORMAT_WNM ? !same_wnm(a, b) : !same(a, b, fmt)) abort();
    if (codec_encode(b, fmt, &second, &len2) != WM_OK) abort();
    if (fmt == WM_FORMAT_WNM ? !same_but_id(first, len1, second, len2)
                             : len1 != len2 || memcmp(first, second, len1) != 0)
        abort();
    free(first);
    free(second);
    announce_free(&b);
}

/* A cache re-publishing in WIS2: the link now points at its own base URL. */
static void republish(const struct announce *a)
{
    static const char base[] = "https://cache.example/wmesh";
    struct announce *c = announce_clone(a), *b = NULL;
    char *text = NULL, why[256];
    size_t len = 0;
    if (!c) abort();
    free(c->base_url);
    free(c->download_url);
    c->download_url = NULL;
    if (!(c->base_url = strdup(base))) abort();
    enum wm_err err = codec_encode(c, WM_FORMAT_WNM, &text, &len);
    if (err != WM_OK && err != WM_ERR_METHOD && err != WM_ERR_TOOBIG) abort();
    if (err == WM_OK) {
        if (codec_decode(text, len, &b, why, sizeof why) != WM_OK || !same_wnm(c, b)) abort();
        if (strncmp(b->download_url, base, sizeof base - 1) != 0) abort();
        if (!strstr(text, "\"global-cache\":\"cache.example\"") != (a->format != WM_FORMAT_WNM))
            abort(); /* only a re-published WIS2 message names the cache */
    }
    free(text);
    announce_free(&b);
    announce_free(&c);
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
        round_trip(a, WM_FORMAT_WNM);
        republish(a);
        announce_free(&a);
    }
    struct wm_checksum sum;
    /* Any input parses or not; what parses must fit. */
    if (tree_sum_parse((const char *)data, size, &sum) == WM_OK && sum.len > sizeof sum.value)
        abort();
    return 0;
}
