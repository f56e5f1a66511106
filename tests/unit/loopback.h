/* loopback.h: a listening socket on 127.0.0.1 for the unit tests that run their own servers
 * (test_fetch.c, test_net.c, fake_broker.h). Header-only, as each test binary is one file. */
#ifndef WMESH_LOOPBACK_H
#define WMESH_LOOPBACK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A socket listening on 127.0.0.1 on a port the kernel picks, returned in *port, with the given
 * backlog; -1 with errno set on failure. The caller closes it. */
static inline int listen_loopback(int backlog, unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

#endif
