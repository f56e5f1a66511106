/* text.c: the UTF-8 check of text.h. */
#include "text.h"

bool text_utf8_valid(const void *s, size_t n, unsigned flags)
{
    if (!s) return n == 0;
    const unsigned char *p = s, *end = p + n;
    bool nul_ok = !(flags & TEXT_UTF8_NO_NUL);
    while (p < end) {
        if (*p < 0x80) {
            if (*p == 0 && !nul_ok) return false;
            p++;
            continue;
        }
        size_t k = text_utf8_seq(p, end);
        if (k == 0) return false;
        p += k;
    }
    return true;
}
