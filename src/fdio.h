/* fdio.h: whole writes to a file descriptor, past short writes and signals. */
#ifndef WMESH_FDIO_H
#define WMESH_FDIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes all len bytes to fd, going on after short writes and EINTR. Returns len, or -1 with
 * errno set (EIO when a write wrote nothing); what came before a failure may have been written. */
ssize_t fdio_write_all(int fd, const void *data, size_t len);

/* The same with pwrite(2), at offset off of fd; the file offset does not move. */
ssize_t fdio_pwrite_all(int fd, const void *data, size_t len, uint64_t off);

#endif
