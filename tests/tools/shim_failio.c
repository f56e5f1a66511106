/* shim_failio.c: LD_PRELOAD shim that makes writes and syncs under one directory fail on demand. */
/*
 * Environment:
 *   WMESH_FAILIO_DIR     the directory whose files (and itself) fail; unset: the shim does nothing
 *   WMESH_FAILIO_SWITCH  a path: faults are on only while it exists (unset: always on)
 *   WMESH_FAILIO_ERRNO   ENOSPC (default) or EIO
 *   WMESH_FAILIO_LOG     optional file that gets one line per failure injected
 * Wrapped: write, pwrite, pwrite64, writev, pwritev, fsync, fdatasync, syncfs. Only regular files
 * and directories are considered (fstat), never sockets, pipes or descriptor 2. The path is read
 * from /proc/self/fd/N on every call while the switch is on: no cache, so a reused descriptor
 * number can never be mistaken for the file it used to name.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef int (*sync_fn)(int);

/* dlsym returns void *; converting it to a function pointer is what POSIX guarantees works. */
#define NEXT(type, name)                                                                           \
    static type next_fn;                                                                           \
    if (!next_fn) {                                                                                \
        void *sym = dlsym(RTLD_NEXT, name);                                                        \
        memcpy(&next_fn, &sym, sizeof next_fn);                                                    \
    }

static int fault_errno(void)
{
    const char *e = getenv("WMESH_FAILIO_ERRNO");
    return e && strcmp(e, "EIO") == 0 ? EIO : ENOSPC;
}

static void note_failure(const char *call, int fd, const char *path)
{
    const char *log = getenv("WMESH_FAILIO_LOG");
    if (!log) return;
    char line[PATH_MAX + 100];
    int n = snprintf(line, sizeof line, "%ld %s fd=%d %s -> %s\n", (long)getpid(), call, fd, path,
                     fault_errno() == EIO ? "EIO" : "ENOSPC");
    if (n <= 0) return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    int lfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0) return;
    NEXT(write_fn, "write")
    if (next_fn) {
        ssize_t w = next_fn(lfd, line, len);
        (void)w;
    }
    close(lfd);
}

/* True when the call on fd must fail now; sets nothing. Keeps errno as it was. */
static bool should_fail(const char *call, int fd)
{
    const char *dir = getenv("WMESH_FAILIO_DIR");
    if (!dir || !*dir || fd < 0 || fd == STDERR_FILENO) return false;
    int saved = errno;
    bool fail = false;
    const char *sw = getenv("WMESH_FAILIO_SWITCH");
    struct stat st;
    if (sw && *sw && stat(sw, &st) != 0) goto out;
    if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) goto out;
    char link[64], path[PATH_MAX], root[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) goto out;
    path[n] = '\0';
    if (!realpath(dir, root)) goto out;
    size_t rl = strlen(root);
    while (rl > 1 && root[rl - 1] == '/')
        rl--;
    fail = strncmp(path, root, rl) == 0 && (path[rl] == '/' || path[rl] == '\0' || rl == 1);
    if (fail) note_failure(call, fd, path);
out:
    errno = saved;
    return fail;
}

ssize_t write(int fd, const void *buf, size_t count)
{
    NEXT(write_fn, "write")
    if (should_fail("write", fd)) {
        errno = fault_errno();
        return -1;
    }
    return next_fn(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
{
    NEXT(pwrite_fn, "pwrite")
    if (should_fail("pwrite", fd)) {
        errno = fault_errno();
        return -1;
    }
    return next_fn(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset)
{
    NEXT(pwrite_fn, "pwrite64")
    if (should_fail("pwrite64", fd)) {
        errno = fault_errno();
        return -1;
    }
    return next_fn(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    NEXT(writev_fn, "writev")
    if (should_fail("writev", fd)) {
        errno = fault_errno();
        return -1;
    }
    return next_fn(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
    NEXT(pwritev_fn, "pwritev")
    if (should_fail("pwritev", fd)) {
        errno = fault_errno();
        return -1;
    }
    return next_fn(fd, iov, iovcnt, offset);
}

int fsync(int fd)
{
    NEXT(sync_fn, "fsync")
    if (should_fail("fsync", fd)) {
        errno = fault_errno();
        return -1;
    }
    return next_fn(fd);
}

int fdatasync(int fd)
{
    NEXT(sync_fn, "fdatasync")
    if (should_fail("fdatasync", fd)) {
        errno = fault_errno();
        return -1;
    }
    return next_fn(fd);
}

int syncfs(int fd)
{
    NEXT(sync_fn, "syncfs")
    if (should_fail("syncfs", fd)) {
        errno = fault_errno();
        return -1;
    }
    return next_fn(fd);
}
