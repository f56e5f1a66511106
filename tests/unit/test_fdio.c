/* test_fdio.c: whole writes, at the file offset and at a given one. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "fdio.h"
#include "test.h"

int main(void)
{
    char path[] = "/tmp/wm-fdio-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    if (fd < 0) return TEST_REPORT();
    unlink(path);
    static char big[1 << 20];
    memset(big, 'x', sizeof big);
    ASSERT_EQ_INT(fdio_write_all(fd, "hello ", 6), 6);
    ASSERT_EQ_INT(fdio_write_all(fd, big, sizeof big), (ssize_t)sizeof big);
    ASSERT_EQ_INT(fdio_write_all(fd, "", 0), 0);
    ASSERT_EQ_INT(lseek(fd, 0, SEEK_CUR), 6 + (off_t)sizeof big);
    /* pwrite_all leaves the offset where it was. */
    ASSERT_EQ_INT(fdio_pwrite_all(fd, "HE", 2, 0), 2);
    ASSERT_EQ_INT(lseek(fd, 0, SEEK_CUR), 6 + (off_t)sizeof big);
    char head[7] = {0};
    ASSERT_EQ_INT(pread(fd, head, 6, 0), 6);
    ASSERT_EQ_STR(head, "HEllo ");
    close(fd);
    errno = 0;
    ASSERT_EQ_INT(fdio_write_all(fd, "x", 1), -1); /* a closed descriptor */
    ASSERT_EQ_INT(errno, EBADF);
    ASSERT_EQ_INT(fdio_pwrite_all(-1, "x", 1, 0), -1);
    return TEST_REPORT();
}
