/* fdio.c: the whole writes of fdio.h. */
#include "fdio.h"

#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

/* One loop for both: pwrite(2) when at_offset, write(2) otherwise. */
static ssize_t write_all(int fd, const void *data, size_t len, bool at_offset, uint64_t off)
{
    const unsigned char *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t n = at_offset ? pwrite(fd, p + done, len - done, (off_t)(off + done))
                              : write(fd, p + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) { /* no progress and no error: do not spin */
            errno = EIO;
            return -1;
        }
        done += (size_t)n;
    }
    return (ssize_t)done;
}

ssize_t fdio_write_all(int fd, const void *data, size_t len)
{
    return write_all(fd, data, len, false, 0);
}

ssize_t fdio_pwrite_all(int fd, const void *data, size_t len, uint64_t off)
{
    return write_all(fd, data, len, true, off);
}
