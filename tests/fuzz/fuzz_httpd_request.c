/* fuzz_httpd_request.c: libFuzzer harness: whatever bytes arrive, the head's end is found the
 * same way fed at once or in pieces, parsing never reads past it, and an accepted request has a
 * path inside the head that starts with '/', and a query inside it too. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpd_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HTTPD_HEAD_MAX) size = HTTPD_HEAD_MAX;
    /* An exact-size copy, so that ASan catches any read past the bytes given. */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    size_t from = 0, end = httpd_request_end(buf, size, &from);
    size_t step = 1 + (size ? data[0] % 7 : 0), from2 = 0, end2 = 0;
    for (size_t have = step; !end2 && have < size + step; have += step)
        end2 = httpd_request_end(buf, have < size ? have : size, &from2);
    if (end != end2 || end > size || from > size) abort();
    if (end) {
        struct httpd_request req;
        if (httpd_request_parse(buf, end, &req)) {
            /* "http://host" has no path in the buffer: the parser points at a static "/". */
            bool inside = req.path >= buf && req.path + req.path_len <= buf + end;
            if (req.path && !inside && !(req.path_len == 1 && req.path[0] == '/')) abort();
            if (req.method != HTTPD_METHOD_OTHER && (!req.path || req.path[0] != '/')) abort();
            /* The query lies inside the head, after the path's '?', and holds no space. */
            if (req.query && (req.query < buf + 1 || req.query + req.query_len > buf + end ||
                              req.query[-1] != '?' || memchr(req.query, ' ', req.query_len)))
                abort();
            if (!req.query && req.query_len) abort();
        } else if (req.status != 400 && req.status != 501 && req.status != 505) {
            abort();
        }
    } else if (size) {
        int status = httpd_request_overflow_status(buf, size);
        if (status != 414 && status != 431) abort();
    }
    free(buf);
    return 0;
}
