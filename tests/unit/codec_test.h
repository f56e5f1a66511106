/* codec_test.h: decode and encode with failures reported, for the codec tests (test_codec.c,
 * test_wnm.c). Include after test.h. */
#ifndef WMESH_TEST_CODEC_TEST_H
#define WMESH_TEST_CODEC_TEST_H

#include <string.h>

#include "codec.h"
#include "test.h"

/* The announcement msg decodes to (the caller frees it), or NULL after a reported failure. */
static inline struct announce *decode(const char *msg)
{
    struct announce *a = NULL;
    char why[256] = "";
    enum wm_err err = codec_decode(msg, strlen(msg), &a, why, sizeof why);
    if (err != WM_OK)
        TEST_FAIL_AT("decode failed (%s: %s) for %s", wm_strerror(err), why, msg);
    else
        test_passed++;
    return a;
}

/* Encoding of a in fmt (the caller frees it), or NULL after a reported failure. */
static inline char *encode(const struct announce *a, enum wm_format fmt)
{
    char *out = NULL;
    size_t len = 0;
    if (!a) return NULL;
    enum wm_err err = codec_encode(a, fmt, &out, &len);
    if (err != WM_OK) {
        TEST_FAIL_AT("encode failed: %s", wm_strerror(err));
        return NULL;
    }
    ASSERT_EQ_INT(len, strlen(out));
    return out;
}

#endif
