/* tls.h: TLS client sessions over non-blocking sockets (the only file that includes OpenSSL's
 * libssl headers), for mqtts:// broker links and https:// downloads. Servers' certificates are
 * always verified, host name included; a client certificate is shown to servers that ask. */
#ifndef WMESH_TLS_H
#define WMESH_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

struct tls_conn;
/* What the sessions of one owner (a downloader, a broker link) share: the trusted CAs and the
 * client certificate, read once, and the protocol settings; OpenSSL's SSL_CTX. */
struct tls_config;

/* The outcome of a TLS step on a non-blocking socket. */
enum tls_io {
    TLS_DONE = 0,   /* the step completed (for read and write: some bytes moved) */
    TLS_WANT_READ,  /* retry when the socket is readable */
    TLS_WANT_WRITE, /* retry when the socket is writable */
    TLS_CLOSED,     /* the peer closed the session */
    TLS_FAILED,     /* error; tls_error() says what */
};

/* What the sessions of one tls_config trust and present. Strings are borrowed: tls_config_new
 * reads the files and keeps none of them. */
struct tls_settings {
    const char *cafile;   /* CA certificates to trust (PEM); NULL: the system's store */
    const char *certfile; /* client certificate, then its chain (PEM), shown to servers that
                           * ask for one; NULL: none */
    const char *keyfile;  /* its private key (PEM); NULL: in certfile too */
};

/* Sets up the trust and client certificate of s (NULL: the system's store, no certificate) for
 * sessions made with tls_new: the files are read once, not per connection. *out is owned by
 * the caller (tls_config_free), and may be freed while sessions made with it live on (they hold
 * a reference). WM_ERR_INVAL for a keyfile without a certfile; WM_ERR_IO when a file cannot be
 * read or used: why then names the file and the cause ("cannot load client certificate /x: No
 * such file or directory", "client key /k does not match certificate /c"); WM_ERR_LIB (with
 * why) when OpenSSL cannot set up. */
WM_WARN_UNUSED enum wm_err tls_config_new(const struct tls_settings *s, struct tls_config **out,
                                          char *why, size_t whylen);
void tls_config_free(struct tls_config **c);

/* Starts a client session on the connected socket fd (not owned: the caller closes it after
 * tls_free) for host (checked against the certificate: a name, or an address against its IP
 * entries; sent in SNI unless an address) under cfg. *out is owned by the caller. WM_ERR_LIB
 * (with why) when OpenSSL cannot set up. */
WM_WARN_UNUSED enum wm_err tls_new(int fd, const char *host, struct tls_config *cfg,
                                   struct tls_conn **out, char *why, size_t whylen);
void tls_free(struct tls_conn **c);

/* Advances the handshake. */
enum tls_io tls_handshake(struct tls_conn *c);
/* Reads up to n bytes: TLS_DONE with *got > 0, or another outcome with *got = 0. */
enum tls_io tls_read(struct tls_conn *c, void *buf, size_t n, size_t *got);
/* Writes up to n bytes: TLS_DONE with *put > 0, or another outcome with *put = 0. Never raises
 * SIGPIPE: on a connection the peer has closed it is TLS_FAILED ("Broken pipe"). */
enum tls_io tls_write(struct tls_conn *c, const void *buf, size_t n, size_t *put);
/* Plaintext bytes already decrypted and waiting to be read (readable without the socket). */
size_t tls_pending(const struct tls_conn *c);
/* The reason of the last TLS_FAILED, such as "certificate verify failed"; "" when none. */
const char *tls_error(const struct tls_conn *c);
/* Whether the last TLS_FAILED was an alert the peer sent (a refused client certificate...). */
bool tls_alert(const struct tls_conn *c);

#endif
