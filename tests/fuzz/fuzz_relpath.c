/* fuzz_relpath.c: libFuzzer harness: whatever relPath arrives, a cleaned path that is accepted
 * stays inside the tree (no "." or ".." or dot-file component, no leading '/', no empty or
 * control-character component) and fits its buffer; a refused one leaves "". */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"

/* Checks one accepted result; aborts on anything that could leave the tree. */
static void check(const char *out, size_t outlen)
{
    size_t len = strnlen(out, outlen);
    if (len == 0 || len >= outlen || out[0] == '/') abort(); /* empty, unterminated, absolute */
    for (const char *c = out;;) {
        const char *end = strchr(c, '/');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        /* Empty components, ".", "..", dot-files and over-long names. */
        if (n == 0 || c[0] == '.' || n > NAME_MAX) abort();
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f) abort();
        if (!end) break;
        c = end + 1;
    }
}

static void clean(const char *in, size_t outlen)
{
    char out[4096 + 1];
    memset(out, 'x', sizeof out);
    enum wm_err err = tree_clean_relpath(in, out, outlen);
    if (err == WM_OK)
        check(out, outlen);
    else if (out[0] != '\0')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    if (!in) return 0;
    memcpy(in, data, size);
    in[size] = '\0'; /* an embedded NUL ends the relPath, as it would in a C string */
    clean(in, 4096 + 1);
    clean(in, 1 + size % 32); /* small buffers: WM_ERR_TOOBIG, never an overrun */
    free(in);
    return 0;
}
