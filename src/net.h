/* net.h: the client connections of the broker links (mqtt.c) and the downloader (fetch.c),
 * which keep only their protocols: name resolution off the loop (resolver.h), every address of
 * the name in turn within one deadline, non-blocking connect, TCP keepalive, a tunnel through
 * an HTTP proxy (CONNECT), TLS (tls.h: SNI, verification, client certificate) and, for MQTT
 * over WebSockets, the upgrade and the framing. Once the connection is up its owner watches
 * the socket and moves bytes with net_read and net_writev, which never raise SIGPIPE.
 *
 * The stages, each under the connect deadline: resolve (the proxy's name when there is one),
 * connect, CONNECT, TLS handshake, WebSocket upgrade. */
#ifndef WMESH_NET_H
#define WMESH_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "error.h"

struct loop;
struct resolver;
struct tls_config;
struct proxy_server;
struct net_conn;

/* Where to connect and how. Strings are copied by net_connect. */
struct net_target {
    const char *host; /* the server's name or address */
    int port;
    bool tls;                      /* TLS with host (inside the tunnel when there is a proxy) */
    struct tls_config *tls_config; /* required with tls; not owned, must outlive the conn */
    /* An HTTP proxy (proxy.h; not owned, must outlive the conn), or NULL. With tunnel, a
     * CONNECT to host:port makes a tunnel through it; without, the connection ends at the
     * proxy and the owner speaks to it (an HTTP client's absolute-form requests). */
    const struct proxy_server *proxy;
    bool tunnel;
    /* MQTT over WebSockets: the upgrade's path (such as "/mqtt"), or NULL for none. */
    const char *ws_path;
    int64_t timeout_ms; /* for all the stages together; 0: 10 s */
};

/* How a connect ended: err WM_OK with the connection up, or an error with why (one line,
 * valid during the call). Either way the owner frees c with net_close, never inside this
 * callback's caller's stack but from its own code (the callback may do it). */
typedef void (*net_ready_fn)(void *arg, struct net_conn *c, enum wm_err err, const char *why);

/* Starts connecting to t; ready follows from the loop, never from inside this call. *out is
 * the caller's from then on. WM_ERR_NOMEM or WM_ERR_INVAL with nothing started. */
WM_WARN_UNUSED enum wm_err net_connect(struct loop *loop, struct resolver *resolver,
                                       const struct net_target *t, net_ready_fn ready, void *arg,
                                       struct net_conn **out);
/* Closes the connection at whatever stage (no callback follows) and frees it. */
void net_close(struct net_conn **c);

/* The socket, for the owner to watch once the connection is up. */
int net_fd(const struct net_conn *c);
/* The address connected to (or last tried), "1.2.3.4:80", for messages. */
const char *net_addr(const struct net_conn *c);

/* Bytes read: > 0; 0 at the end of the stream; -1 with errno EAGAIN (nothing now),
 * ECONNRESET (the peer is gone) or EPROTO (TLS or WebSocket failed: net_error says why). With
 * TLS, reads records until buf is full or the socket has no more. */
ssize_t net_read(struct net_conn *c, void *buf, size_t n);
/* Bytes taken of the n pieces of iov: >= 0, or -1 with errno EAGAIN, EPIPE or EPROTO. TLS and
 * WebSocket write from the first piece only. */
ssize_t net_writev(struct net_conn *c, const struct iovec *iov, size_t n);
/* net_read has something without the socket (epoll cannot see it): bytes decrypted already,
 * or the end of the stream, which came with the last bytes read. */
bool net_pending(const struct net_conn *c);
/* The end of the stream came with the last bytes read: the next net_read says so. */
bool net_ended(const struct net_conn *c);
/* The owner must also watch for writing: bytes of its own wait to leave (WebSocket), or a TLS
 * write waits for the socket to be readable (net_write_wants_read). */
bool net_wants_write(const struct net_conn *c);
bool net_write_wants_read(const struct net_conn *c);
/* Sends what net_writev left waiting (net_wants_write): false with errno when the connection
 * failed. */
bool net_flush(struct net_conn *c);
/* Words for err from net_read or net_writev. */
const char *net_error(const struct net_conn *c, int err);

#endif
