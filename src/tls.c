/* tls.c: TLS client sessions for broker links and downloads over OpenSSL's libssl, on
 * non-blocking sockets, whose writes never raise SIGPIPE. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct tls_config {
    SSL_CTX *ctx;
};

struct tls_conn {
    SSL *ssl; /* holds a reference to its context */
    char error[256];
    bool alert; /* the last failure was an alert the peer sent */
};

/* What a server's alert says about our client certificate, for error e: the raw alert names
 * ("tlsv13 alert certificate required") leave readers guessing. "" for other errors. */
static const char *client_cert_hint(const struct tls_conn *c, unsigned long e)
{
    bool have_cert = c->ssl && SSL_get_certificate(c->ssl) != NULL;
    if (ERR_GET_LIB(e) != ERR_LIB_SSL) return "";
    switch (ERR_GET_REASON(e)) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return " (the server requires a client certificate)";
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
        return have_cert ? "" : " (does the server require a client certificate?)";
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
        return have_cert ? " (the server refused our client certificate)"
                         : " (the server wants a client certificate)";
    default:
        return "";
    }
}

/* OpenSSL's error queue is per thread and outlives a failed call: take its first entry as the
 * reason and clear it, so a later failure does not report an old cause. */
static void take_error(struct tls_conn *c, const char *what)
{
    unsigned long e = ERR_get_error();
    /* OpenSSL reports an alert received as reason SSL_AD_REASON_OFFSET + its code. */
    c->alert = e && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET;
    char text[200] = "";
    if (e) ERR_error_string_n(e, text, sizeof text);
    long verify = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    if (verify != X509_V_OK)
        snprintf(c->error, sizeof c->error, "%s: certificate verify failed: %s", what,
                 X509_verify_cert_error_string(verify));
    else
        snprintf(c->error, sizeof c->error, "%s: %s%s", what,
                 text[0] ? text : (errno ? strerror(errno) : "connection reset"),
                 e ? client_cert_hint(c, e) : "");
    ERR_clear_error();
}

/* SSL_set_fd's socket BIO writes with write(2), which raises SIGPIPE on a connection the peer
 * has closed: a command that did not ignore the signal died without a word (status 141) when its
 * broker went away mid-burst. Sessions get this BIO instead: OpenSSL's socket BIO in every other
 * respect, but its writes go through send(2) with MSG_NOSIGNAL and fail with EPIPE. Made once
 * per process and never freed, since a session may outlive every tls_config. */
static BIO_METHOD *socket_method;
static pthread_once_t socket_method_once = PTHREAD_ONCE_INIT;

static int send_nosignal(BIO *b, const char *buf, int len)
{
    int fd = -1;
    BIO_get_fd(b, &fd);
    BIO_clear_retry_flags(b);
    if (fd < 0 || len < 0) return -1;
    errno = 0;
    ssize_t n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
    /* As the socket BIO does: EAGAIN and the like mean "write again later". */
    if (n <= 0 && BIO_sock_should_retry((int)n)) BIO_set_retry_write(b);
    return (int)n;
}

static void make_socket_method(void)
{
    const BIO_METHOD *sock = BIO_s_socket();
    int type = BIO_get_new_index();
    if (type < 0) return;
    /* A descriptor type, so that SSL_get_fd and the like still find the socket. */
    BIO_METHOD *m = BIO_meth_new(type | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "wmesh socket");
    if (!m) return;
    if (BIO_meth_set_write(m, send_nosignal) != 1 ||
        BIO_meth_set_read(m, BIO_meth_get_read(sock)) != 1 ||
        BIO_meth_set_puts(m, BIO_meth_get_puts(sock)) != 1 ||
        BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock)) != 1 ||
        BIO_meth_set_create(m, BIO_meth_get_create(sock)) != 1 ||
        BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock)) != 1) {
        BIO_meth_free(m);
        return;
    }
    socket_method = m;
}

/* A BIO on the socket fd (left open when the BIO goes) that never raises SIGPIPE; NULL when out
 * of memory. */
static BIO *socket_bio(int fd)
{
    pthread_once(&socket_method_once, make_socket_method);
    BIO *b = socket_method ? BIO_new(socket_method) : NULL;
    if (b) BIO_set_fd(b, fd, BIO_NOCLOSE);
    return b;
}

static bool is_address(const char *host)
{
    unsigned char addr[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/* The first reason on OpenSSL's error queue, in words ("No such file or directory", "no start
 * line"), and whether a key did not match its certificate (among any of the queue's entries);
 * the queue is cleared. */
static void queue_reason(char *buf, size_t n, bool *mismatch)
{
    unsigned long e = ERR_get_error(), next = e;
    const char *text = NULL;
    if (e && ERR_SYSTEM_ERROR(e))
        text = strerror(ERR_GET_REASON(e));
    else if (e)
        text = ERR_reason_error_string(e);
    snprintf(buf, n, "%s", text ? text : "unknown error");
    if (mismatch) *mismatch = false;
    for (; next; next = ERR_get_error())
        if (mismatch && ERR_GET_LIB(next) == ERR_LIB_X509 &&
            ERR_GET_REASON(next) == X509_R_KEY_VALUES_MISMATCH)
            *mismatch = true;
    ERR_clear_error();
}

/* Encrypted keys would make OpenSSL ask for a pass phrase on the terminal, which a daemon does
 * not have: it gets none, and the load fails, saying so. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    if (userdata) *(bool *)userdata = true;
    return 0;
}

/* Loads the client certificate chain and its key into ctx, checking that they match. */
static enum wm_err load_client_cert(SSL_CTX *ctx, const struct tls_settings *s, char *why,
                                    size_t wl)
{
    char reason[200];
    const char *keyfile = s->keyfile ? s->keyfile : s->certfile;
    if (SSL_CTX_use_certificate_chain_file(ctx, s->certfile) != 1) {
        queue_reason(reason, sizeof reason, NULL);
        snprintf(why, wl, "cannot load client certificate %s: %s", s->certfile, reason);
        return WM_ERR_IO;
    }
    bool asked = false;
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked);
    int ok = SSL_CTX_use_PrivateKey_file(ctx, keyfile, SSL_FILETYPE_PEM);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    bool mismatch = false;
    if (ok != 1) queue_reason(reason, sizeof reason, &mismatch);
    /* The key is checked against the certificate as it loads, and once more. */
    if (ok == 1 && SSL_CTX_check_private_key(ctx) != 1) {
        queue_reason(reason, sizeof reason, NULL);
        mismatch = true;
    }
    if (mismatch) {
        snprintf(why, wl, "client key %s does not match certificate %s (%s)", keyfile, s->certfile,
                 reason);
        return WM_ERR_IO;
    }
    if (ok != 1) {
        if (asked)
            snprintf(why, wl,
                     "cannot load client key %s: it is encrypted (only keys without a "
                     "pass phrase can be used)",
                     keyfile);
        else if (!s->keyfile)
            snprintf(why, wl,
                     "client certificate file %s holds no private key: give the key "
                     "file",
                     keyfile);
        else
            snprintf(why, wl, "cannot load client key %s: %s", keyfile, reason);
        return WM_ERR_IO;
    }
    return WM_OK;
}

enum wm_err tls_config_new(const struct tls_settings *s, struct tls_config **out, char *why,
                           size_t wl)
{
    static const struct tls_settings none = {NULL, NULL, NULL};
    char dummy[8];
    if (!why) {
        why = dummy;
        wl = sizeof dummy;
    }
    why[0] = '\0';
    if (!out) return WM_ERR_INVAL;
    *out = NULL;
    if (!s) s = &none;
    if (s->keyfile && !s->certfile) {
        snprintf(why, wl, "client key %s given without its certificate", s->keyfile);
        return WM_ERR_INVAL;
    }
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
    int ok = s->cafile ? SSL_CTX_load_verify_locations(cfg->ctx, s->cafile, NULL)
                       : SSL_CTX_set_default_verify_paths(cfg->ctx);
    if (ok != 1) {
        char reason[200];
        queue_reason(reason, sizeof reason, NULL);
        snprintf(why, wl, "cannot load CA certificates from %s: %s",
                 s->cafile ? s->cafile : "the system's store", reason);
        tls_config_free(&cfg);
        return WM_ERR_IO;
    }
    enum wm_err e = s->certfile ? load_client_cert(cfg->ctx, s, why, wl) : WM_OK;
    if (e != WM_OK) {
        tls_config_free(&cfg);
        return e;
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
    BIO *bio = c->ssl ? socket_bio(fd) : NULL;
    if (!bio) {
        snprintf(why, whylen, "cannot create a TLS session");
        goto fail;
    }
    SSL_set_bio(c->ssl, bio, bio); /* the session owns it now, for reading and writing */
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

bool tls_alert(const struct tls_conn *c)
{
    return c && c->alert;
}
