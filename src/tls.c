/* tls.c: TLS client sessions for broker links over OpenSSL's libssl, on non-blocking sockets. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tls_config {
    SSL_CTX *ctx;
};

struct tls_conn {
    SSL *ssl; /* holds a reference to its context */
    char error[256];
};

/* OpenSSL's error queue is per thread and outlives a failed call: take its first entry as the
 * reason and clear it, so a later failure does not report an old cause. */
static void take_error(struct tls_conn *c, const char *what)
{
    unsigned long e = ERR_get_error();
    char text[200] = "";
    if (e) ERR_error_string_n(e, text, sizeof text);
    long verify = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    if (verify != X509_V_OK)
        snprintf(c->error, sizeof c->error, "%s: certificate verify failed: %s", what,
                 X509_verify_cert_error_string(verify));
    else
        snprintf(c->error, sizeof c->error, "%s: %s", what,
                 text[0] ? text : (errno ? strerror(errno) : "connection reset"));
    ERR_clear_error();
}

static bool is_address(const char *host)
{
    unsigned char addr[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

enum wm_err tls_config_new(const char *cafile, struct tls_config **out, char *why, size_t wl)
{
    char dummy[8];
    if (!why) {
        why = dummy;
        wl = sizeof dummy;
    }
    why[0] = '\0';
    if (!out) return WM_ERR_INVAL;
    *out = NULL;
    struct tls_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) return WM_ERR_NOMEM;
    cfg->ctx = SSL_CTX_new(TLS_client_method());
    if (!cfg->ctx) {
        snprintf(why, wl, "cannot create a TLS context");
        ERR_clear_error();
        free(cfg);
        return WM_ERR_LIB;
    }
    SSL_CTX_set_min_proto_version(cfg->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(cfg->ctx, SSL_VERIFY_PEER, NULL);
    /* Partial writes let a large buffer go out as far as the socket takes it. */
    SSL_CTX_set_mode(cfg->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    int ok = cafile ? SSL_CTX_load_verify_locations(cfg->ctx, cafile, NULL)
                    : SSL_CTX_set_default_verify_paths(cfg->ctx);
    if (ok != 1) {
        snprintf(why, wl, "cannot load CA certificates from %s",
                 cafile ? cafile : "the system's store");
        ERR_clear_error();
        tls_config_free(&cfg);
        return WM_ERR_IO;
    }
    *out = cfg;
    return WM_OK;
}

void tls_config_free(struct tls_config **cp)
{
    if (!cp || !*cp) return;
    SSL_CTX_free((*cp)->ctx); /* sessions still open keep it until they are freed */
    free(*cp);
    *cp = NULL;
}

enum wm_err tls_new(int fd, const char *host, struct tls_config *cfg, struct tls_conn **out,
                    char *why, size_t whylen)
{
    char dummy[8];
    if (!why) {
        why = dummy;
        whylen = sizeof dummy;
    }
    why[0] = '\0';
    if (!out || fd < 0 || !host || !cfg) return WM_ERR_INVAL;
    *out = NULL;
    struct tls_conn *c = calloc(1, sizeof *c);
    if (!c) return WM_ERR_NOMEM;
    enum wm_err e = WM_ERR_LIB;
    c->ssl = SSL_new(cfg->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
        snprintf(why, whylen, "cannot create a TLS session");
        goto fail;
    }
    /* The name is checked against the certificate (an address against its IP entries), and
     * sent (SNI) unless it is an address, which RFC 6066 leaves out of SNI. */
    if ((!is_address(host) && SSL_set_tlsext_host_name(c->ssl, host) != 1) ||
        SSL_set1_host(c->ssl, host) != 1) {
        snprintf(why, whylen, "cannot set the TLS host name %s", host);
        goto fail;
    }
    SSL_set_connect_state(c->ssl);
    *out = c;
    return WM_OK;
fail:
    ERR_clear_error();
    tls_free(&c);
    return e;
}

void tls_free(struct tls_conn **cp)
{
    if (!cp || !*cp) return;
    struct tls_conn *c = *cp;
    if (c->ssl) SSL_free(c->ssl);
    free(c);
    *cp = NULL;
}

static enum tls_io outcome(struct tls_conn *c, int rc, const char *what)
{
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return TLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0 && errno == 0) return TLS_CLOSED; /* EOF without close_notify */
        take_error(c, what);
        return TLS_FAILED;
    default:
        take_error(c, what);
        return TLS_FAILED;
    }
}

enum tls_io tls_handshake(struct tls_conn *c)
{
    errno = 0;
    int rc = SSL_do_handshake(c->ssl);
    return rc == 1 ? TLS_DONE : outcome(c, rc, "TLS handshake");
}

enum tls_io tls_read(struct tls_conn *c, void *buf, size_t n, size_t *got)
{
    *got = 0;
    errno = 0;
    int rc = SSL_read_ex(c->ssl, buf, n, got);
    return rc == 1 ? TLS_DONE : outcome(c, rc, "TLS read");
}

enum tls_io tls_write(struct tls_conn *c, const void *buf, size_t n, size_t *put)
{
    *put = 0;
    errno = 0;
    int rc = SSL_write_ex(c->ssl, buf, n, put);
    return rc == 1 ? TLS_DONE : outcome(c, rc, "TLS write");
}

size_t tls_pending(const struct tls_conn *c)
{
    int n = c ? SSL_pending(c->ssl) : 0;
    return n > 0 ? (size_t)n : 0;
}

const char *tls_error(const struct tls_conn *c)
{
    return c ? c->error : "";
}
