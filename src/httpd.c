/* httpd.c: the embedded read-only HTTP server over a tree; the only user of libmicrohttpd. */
#include "httpd.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"
#include "tree.h"

/* Handlers return enum MHD_Result since 0.9.71; int before. */
#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_result;
#else
typedef int mhd_result;
#endif

/* epoll on Linux, chosen by the library where it can choose. */
#if MHD_VERSION >= 0x00095300
#define HTTPD_POLL_FLAG MHD_USE_AUTO
#else
#define HTTPD_POLL_FLAG MHD_USE_EPOLL
#endif

#define HTTPD_THREADS 2u
#define HTTPD_IDLE_TIMEOUT 60u /* seconds before an idle keep-alive connection is closed */
#define HTTPD_MAX_PAGES 16
#define HTTPD_LOG_URL_MAX 160 /* how much of a requested URL a log line repeats */

struct httpd_page {
    char *path; /* exact URL path, owned */
    httpd_page_fn fn;
    void *arg;
};

struct httpd {
    struct MHD_Daemon *daemon;
    struct tree *tree; /* not owned */
    char *prefix;      /* "/data": no trailing '/'; "" serves the tree from the root */
    size_t prefix_len;
    uint16_t port;
    /* A fixed array published through an atomic count, so that server threads read the pages
     * without a lock while httpd_add_page appends. */
    struct httpd_page pages[HTTPD_MAX_PAGES];
    atomic_size_t npages;
};

static const char NOT_FOUND[] = "not found\n";

/* ---- listen address ---- */

static enum wm_err parse_port(const char *text, uint16_t *port)
{
    if (!*text) return WM_ERR_INVAL;
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < 0 || v > 65535) return WM_ERR_INVAL;
    *port = (uint16_t)v;
    return WM_OK;
}

/* Resolves host ("" or "*" for any IPv4 address) into ss. */
static enum wm_err resolve_host(const char *host, bool v6_only, struct sockaddr_storage *ss,
                                socklen_t *sslen)
{
    if (!*host || strcmp(host, "*") == 0) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        *sslen = sizeof *sin;
        return WM_OK;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    hints.ai_family = v6_only ? AF_INET6 : AF_UNSPEC;
    if (v6_only) hints.ai_flags |= AI_NUMERICHOST;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        log_error("httpd: cannot resolve %s: %s", host, gai_strerror(rc));
        return WM_ERR_INVAL;
    }
    enum wm_err err = WM_ERR_INVAL;
    if (res->ai_addrlen <= sizeof *ss) {
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *sslen = res->ai_addrlen;
        err = WM_OK;
    }
    freeaddrinfo(res);
    return err;
}

/* "HOST:PORT", "[IPv6]:PORT" or ":PORT" into a socket address. */
static enum wm_err parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen)
{
    char host[256];
    const char *colon;
    bool bracketed = listen[0] == '[';
    if (bracketed) {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':') return WM_ERR_INVAL;
        colon = close + 1;
        listen++;
        if ((size_t)(close - listen) >= sizeof host) return WM_ERR_INVAL;
        memcpy(host, listen, (size_t)(close - listen));
        host[close - listen] = '\0';
    } else {
        colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof host) return WM_ERR_INVAL;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        /* An IPv6 address needs its brackets, or its last group would pass for the port. */
        if (strchr(host, ':')) return WM_ERR_INVAL;
    }
    uint16_t port = 0;
    memset(ss, 0, sizeof *ss);
    if (parse_port(colon + 1, &port) != WM_OK) return WM_ERR_INVAL;
    enum wm_err err = resolve_host(host, bracketed, ss, sslen);
    if (err != WM_OK) return err;
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    return WM_OK;
}

/* ---- responses ---- */

/* A URL made fit for one log line: control bytes replaced, length capped. */
static const char *printable(const char *url, char *out, size_t outlen)
{
    size_t i = 0;
    for (; url[i] && i + 1 < outlen; i++) {
        unsigned char c = (unsigned char)url[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[i] = '\0';
    return out;
}

static mhd_result queue(struct MHD_Connection *conn, unsigned int status, struct MHD_Response *r)
{
    if (!r) return MHD_NO; /* out of memory: MHD closes the connection */
    mhd_result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static mhd_result reply_text(struct MHD_Connection *conn, unsigned int status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (r) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    return queue(conn, status, r);
}

static mhd_result reply_not_allowed(struct MHD_Connection *conn)
{
    static const char body[] = "method not allowed\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (r) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    }
    return queue(conn, MHD_HTTP_METHOD_NOT_ALLOWED, r);
}

/* RFC 7231 IMF-fixdate, spelled out so that no locale can change it. */
static void http_date(time_t when, char *out, size_t outlen)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    if (!gmtime_r(&when, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
        tm.tm_mon > 11) {
        out[0] = '\0';
        return;
    }
    snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static const char *content_type(const char *rel)
{
    size_t len = strlen(rel);
    if (len >= 4 && strcmp(rel + len - 4, ".txt") == 0) return "text/plain";
    return "application/octet-stream";
}

static void add_file_headers(struct MHD_Response *r, int fd, const char *rel)
{
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type(rel));
    struct stat st;
    char date[64];
    if (fstat(fd, &st) < 0) return;
    http_date(st.st_mtime, date, sizeof date);
    if (date[0]) MHD_add_response_header(r, MHD_HTTP_HEADER_LAST_MODIFIED, date);
}

/* Serves rest (the URL path after the prefix and its '/') from the tree. Whatever is refused
 * gets a 404 that says nothing of why, so a prober learns nothing about the tree. */
static mhd_result reply_file(struct httpd *h, struct MHD_Connection *conn, const char *url,
                             const char *rest)
{
    char rel[PATH_MAX];
    int fd = -1;
    off_t size = 0;
    enum wm_err err = tree_clean_relpath(rest, rel, sizeof rel);
    if (err == WM_OK) err = tree_open_file(h->tree, rel, &fd, &size);
    if (err != WM_OK) {
        char shown[HTTPD_LOG_URL_MAX];
        log_debug("httpd: 404 for %s: %s", printable(url, shown, sizeof shown), wm_strerror(err));
        return reply_text(conn, MHD_HTTP_NOT_FOUND, NOT_FOUND);
    }
    /* The response owns fd from here and sends it with sendfile. Files are only ever replaced
     * by rename, so the open inode cannot change under it. */
    struct MHD_Response *r = MHD_create_response_from_fd64((uint64_t)size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    add_file_headers(r, fd, rel);
    return queue(conn, MHD_HTTP_OK, r);
}

static const struct httpd_page *find_page(struct httpd *h, const char *url)
{
    size_t n = atomic_load_explicit(&h->npages, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (strcmp(h->pages[i].path, url) == 0) return &h->pages[i];
    return NULL;
}

static mhd_result reply_page(struct MHD_Connection *conn, const struct httpd_page *page)
{
    size_t len = 0;
    const char *type = NULL;
    char *body = page->fn(page->arg, &len, &type);
    if (!body) return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type ? type : "text/plain");
    return queue(conn, MHD_HTTP_OK, r);
}

/* Returns the part of url after "<prefix>/", or NULL when url is not under the prefix. */
static const char *under_prefix(const struct httpd *h, const char *url)
{
    if (strncmp(url, h->prefix, h->prefix_len) != 0 || url[h->prefix_len] != '/') return NULL;
    return url + h->prefix_len + 1;
}

static mhd_result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **req_cls)
{
    struct httpd *h = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    /* Refused at once: MHD then closes the connection instead of reading a body we never want. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_not_allowed(conn);
    /* MHD keeps the connection alive only for an answer given after the first call, when it
     * knows the whole request has been read; the marker is any non-NULL pointer. */
    if (!*req_cls) {
        *req_cls = h;
        return MHD_YES;
    }
    const struct httpd_page *page = find_page(h, url);
    if (page) return reply_page(conn, page);
    const char *rest = under_prefix(h, url);
    if (rest) return reply_file(h, conn, url, rest);
    if (strcmp(url, "/") == 0) return reply_text(conn, MHD_HTTP_OK, "wmesh\n");
    return reply_text(conn, MHD_HTTP_NOT_FOUND, NOT_FOUND);
}

/* ---- daemon ---- */

/* The URL path is an announced relPath and must be decoded exactly once, by
 * tree_clean_relpath, as it was when the file was stored; MHD's own decoding would make it
 * twice ("50%252e" would then serve "50." instead of "50%2e"). */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *uri)
{
    (void)cls;
    (void)conn;
    return strlen(uri);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    if (vsnprintf(line, sizeof line, fmt, ap) < 0) return;
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    /* Mostly clients that went away; start-up failures are reported by httpd_start. */
    log_info("httpd: %s", line);
}

static enum wm_err set_prefix(struct httpd *h, const char *url_prefix)
{
    const char *p = url_prefix ? url_prefix : "";
    size_t len = strlen(p);
    while (len > 0 && p[len - 1] == '/')
        len--;
    bool slash = len > 0 && p[0] != '/';
    h->prefix = malloc(len + (slash ? 2 : 1));
    if (!h->prefix) return WM_ERR_NOMEM;
    if (slash) h->prefix[0] = '/';
    memcpy(h->prefix + (slash ? 1 : 0), p, len);
    h->prefix_len = len + (slash ? 1 : 0);
    h->prefix[h->prefix_len] = '\0';
    return WM_OK;
}

static struct MHD_Daemon *start_daemon(struct httpd *h, struct sockaddr_storage *ss)
{
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | HTTPD_POLL_FLAG | MHD_USE_ERROR_LOG;
    uint16_t port = ntohs(((struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
        port = ntohs(((struct sockaddr_in6 *)ss)->sin6_port);
    }
    /* The logger comes first so that errors in the options that follow reach it too. */
    /* The address comes from MHD_OPTION_SOCK_ADDR; the port argument only shows in messages. */
    return MHD_start_daemon(flags, port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
                            mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)ss,
                            MHD_OPTION_THREAD_POOL_SIZE, HTTPD_THREADS,
                            MHD_OPTION_CONNECTION_TIMEOUT, HTTPD_IDLE_TIMEOUT,
                            MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL, MHD_OPTION_END);
}

struct httpd *httpd_start(const char *listen, struct tree *t, const char *url_prefix,
                          enum wm_err *err)
{
    enum wm_err ignored;
    if (!err) err = &ignored;
    *err = WM_ERR_INVAL;
    if (!listen || !t) return NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (parse_listen(listen, &ss, &sslen) != WM_OK) {
        log_error("httpd: bad listen address \"%s\" (want HOST:PORT or [IPv6]:PORT)", listen);
        return NULL;
    }
    struct httpd *h = calloc(1, sizeof *h);
    if (!h) {
        *err = WM_ERR_NOMEM;
        return NULL;
    }
    h->tree = t;
    atomic_init(&h->npages, 0);
    if ((*err = set_prefix(h, url_prefix)) != WM_OK) goto fail;
    h->daemon = start_daemon(h, &ss);
    if (!h->daemon) {
        log_error("httpd: cannot listen on %s: %s", listen, strerror(errno));
        *err = WM_ERR_IO;
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    *err = WM_OK;
    return h;
fail:
    httpd_stop(&h);
    return NULL;
}

enum wm_err httpd_add_page(struct httpd *h, const char *path, httpd_page_fn fn, void *arg)
{
    if (!h || !path || !fn) return WM_ERR_INVAL;
    size_t n = atomic_load_explicit(&h->npages, memory_order_relaxed);
    if (n == HTTPD_MAX_PAGES) return WM_ERR_TOOBIG;
    h->pages[n].path = strdup(path);
    if (!h->pages[n].path) return WM_ERR_NOMEM;
    h->pages[n].fn = fn;
    h->pages[n].arg = arg;
    atomic_store_explicit(&h->npages, n + 1, memory_order_release);
    return WM_OK;
}

uint16_t httpd_port(const struct httpd *h)
{
    return h ? h->port : 0;
}

void httpd_stop(struct httpd **h)
{
    if (!h || !*h) return;
    if ((*h)->daemon) MHD_stop_daemon((*h)->daemon);
    size_t n = atomic_load(&(*h)->npages);
    for (size_t i = 0; i < n; i++)
        free((*h)->pages[i].path);
    free((*h)->prefix);
    free(*h);
    *h = NULL;
}
