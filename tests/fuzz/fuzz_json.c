/* fuzz_json.c: libFuzzer harness: any bytes parse or fail cleanly; what parses dumps to text that
 * parses again and dumps to the same bytes, within the depth limit, and so does its copy. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* The compact text of j; aborts when it cannot be written. */
static char *text_of(const struct wm_json *j, size_t *len)
{
    char *out = NULL;
    if (wm_json_dump(j, &out, len) != WM_OK || strlen(out) != *len) abort();
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wm_json *j = NULL, *again = NULL, *copy = NULL;
    char why[128] = "";
    enum wm_err err = wm_json_parse((const char *)data, size, &j, why, sizeof why);
    if (err != WM_OK) {
        if (j || !why[0] || (err != WM_ERR_FORMAT && err != WM_ERR_TOOBIG)) abort();
        return 0;
    }
    if (wm_json_depth(j) > WM_JSON_MAX_DEPTH) abort();
    size_t len1, len2, len3;
    char *first = text_of(j, &len1);
    if (wm_json_parse(first, len1, &again, NULL, 0) != WM_OK) abort();
    char *second = text_of(again, &len2);
    if (!(copy = wm_json_copy(j))) abort();
    wm_json_free(&j);
    char *third = text_of(copy, &len3);
    if (len1 != len2 || memcmp(first, second, len1) || len1 != len3 || memcmp(first, third, len1))
        abort();
    free(first);
    free(second);
    free(third);
    wm_json_free(&again);
    wm_json_free(&copy);
    return 0;
}
