/* httpd.c: the embedded read-only HTTP/1.1 server over a tree: one thread running its own event
 * loop, keep-alive and pipelined requests, files sent with sendfile(2) from descriptors the tree
 * opened beneath its root. Request heads are parsed by httpd_request.c. */
#include "httpd.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "httpd_request.h"
#include "list.h"
#include "log.h"
#include "loop.h"
#include "thread.h"
#include "tree.h"

#define HTTPD_MAX_ROUTES 24
#define HTTPD_LOG_URL_MAX 160 /* how much of a requested URL a log line repeats */
#define DEFAULT_MAX_CONNS 1024u
#define DEFAULT_IDLE_MS 60000u
#define DEFAULT_HEAD_MS 10000u
#define LINGER_MS 2000            /* how long a connection closed on an error drains its input */
#define DISCARD_MAX (64 * 1024)   /* request body bytes read and dropped to keep a connection */
#define SMALL_FILE_MAX 16384      /* files up to this leave with their headers in one write */
#define SEND_BUDGET (1024 * 1024) /* bytes one connection sends per loop turn, for fairness */
#define ACCEPT_BATCH 64           /* connections accepted per loop turn */
#define ACCEPT_PAUSE_MS 250       /* pause after accept(2) ran out of descriptors or memory */
#define NOTE_EVERY_MS 60000       /* at most one log line this often for a repeated condition */
#define RESP_HEAD_MAX 512
#define LISTEN_BACKLOG 511

/* A dynamic page (an exact path) or a handler (every path under a prefix). */
struct httpd_route {
    char *path; /* owned */
    size_t path_len;
    httpd_page_fn page;       /* for an exact path, else NULL */
    httpd_handler_fn handler; /* for a prefix, else NULL */
    void *arg;
};

enum conn_state {
    CONN_READ,   /* waiting for (more of) a request */
    CONN_WRITE,  /* a response waits for the socket to take more */
    CONN_LINGER, /* write side shut after an error; draining input until EOF or LINGER_MS */
};

/* What a step tells the event handler to do with the connection. */
enum next { NEXT_KEEP, NEXT_CLOSE, NEXT_LINGER };

enum sent { SENT_ALL, SENT_BLOCKED, SENT_FAILED };

struct conn {
    struct conn *prev, *next;
    struct httpd *h;
    int fd;
    enum conn_state state;
    unsigned watching; /* the loop events registered for fd */
    bool close_after;  /* close once the response is out */
    bool linger;       /* ... draining the client's input first: it may still be sending */
    bool head_only;    /* the request being answered is a HEAD */
    bool say_keep;     /* an HTTP/1.0 client asked for keep-alive: confirm it */
    char *in;          /* input kept between reads (HTTPD_HEAD_MAX bytes, owned) or NULL */
    size_t in_len;
    size_t scanned;    /* bytes of the pending head already searched for its end */
    uint64_t discard;  /* request body bytes still to be read and dropped */
    int64_t active_ms; /* last read or send progress */
    int64_t head_ms;   /* when the awaited head's deadline started; 0 when idle */
    /* The response in progress: head, then a body from memory or from a file. */
    char head[RESP_HEAD_MAX];
    size_t head_off, head_len;
    const char *mem; /* body bytes: static text, mem_owned, or the server's file buffer */
    char *mem_owned; /* a page body, freed with the response */
    size_t mem_off, mem_len;
    int file_fd; /* -1 when none; owned */
    off_t file_off, file_end;
};

struct httpd {
    struct tree *tree; /* not owned */
    char *prefix;      /* "/data": no trailing '/'; "" serves the tree from the root */
    size_t prefix_len;
    uint16_t port;
    /* A fixed array published through an atomic count, so that the server thread reads the
     * routes without a lock while httpd_add_page and httpd_add_handler append. */
    struct httpd_route routes[HTTPD_MAX_ROUTES];
    atomic_size_t nroutes;
    atomic_uint max_conns, idle_ms, head_ms;

    /* From here on, only the server thread touches these once it runs. */
    struct loop *loop;
    pthread_t thread;
    bool running;
    bool stopping; /* httpd_stop is tearing down: no more accepting */
    int lfd;
    int wakefd;               /* written by httpd_stop */
    bool accepting;           /* lfd is watched */
    int64_t accept_resume_ms; /* after an accept failure: when to try again; 0 when not */
    int64_t limit_noted_ms, accept_noted_ms;
    struct conn *conns;
    size_t nconns;
    struct loop_timer sweep;
    time_t date_sec;
    char date[40];
    char rbuf[HTTPD_HEAD_MAX]; /* reads land here; only leftovers are kept per connection */
    char fbuf[SMALL_FILE_MAX]; /* a small file's bytes on their way out */
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

/* A non-blocking listening socket on ss; -1 with errno set on failure. */
static int open_listener(const struct sockaddr_storage *ss, socklen_t sslen)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    /* A restarted peer must not wait for the old connections' TIME_WAIT to bind again. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss->ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)ss, sslen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return 0;
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* ---- response heads ---- */

/* A URL made fit for one log line: control bytes replaced, length capped. */
static const char *printable(const char *url, size_t len, char *out, size_t outlen)
{
    size_t i = 0;
    for (; i < len && i + 1 < outlen; i++) {
        unsigned char c = (unsigned char)url[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[i] = '\0';
    return out;
}

/* RFC 9110 IMF-fixdate, spelled out so that no locale can change it. */
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

/* The Date header's value, formatted at most once a second. */
static const char *date_now(struct httpd *h)
{
    time_t now = time(NULL);
    if (now != h->date_sec) {
        h->date_sec = now;
        http_date(now, h->date, sizeof h->date);
    }
    return h->date;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Internal Server Error";
    }
}

/* Writes the response head into c->head; extra is "" or whole header lines. Every response
 * carries a Content-Length, so that a keep-alive client always knows where it ends. */
static bool put_head(struct conn *c, int status, const char *type, uint64_t length,
                     const char *extra)
{
    const char *connection = "";
    if (c->close_after)
        connection = "Connection: close\r\n";
    else if (c->say_keep)
        connection = "Connection: keep-alive\r\n";
    int n = snprintf(c->head, sizeof c->head,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %" PRIu64
                     "\r\n%s%s\r\n",
                     status, reason(status), date_now(c->h), type, length, extra, connection);
    if (n < 0 || (size_t)n >= sizeof c->head) return false;
    c->head_off = 0;
    c->head_len = (size_t)n;
    return true;
}

/* ---- sending ---- */

static void response_clear(struct conn *c)
{
    if (c->file_fd >= 0) close(c->file_fd);
    c->file_fd = -1;
    c->file_off = c->file_end = 0;
    free(c->mem_owned);
    c->mem_owned = NULL;
    c->mem = NULL;
    c->mem_off = c->mem_len = 0;
    c->head_off = c->head_len = 0;
}

/* A small file's bytes sit in the server's buffer, which the next request reuses: when they
 * could not all go out, the rest is sent from the file instead (its descriptor is still open). */
static void leave_shared_buffer(struct conn *c)
{
    if (c->mem != c->h->fbuf) return;
    c->file_off = (off_t)c->mem_off;
    c->file_end = (off_t)c->mem_len;
    c->mem = NULL;
    c->mem_off = c->mem_len = 0;
}

/* Head and memory body together, in one system call when the socket takes them. */
static ssize_t send_head_and_mem(struct conn *c, bool more)
{
    struct iovec iov[2];
    int n = 0;
    if (c->head_off < c->head_len)
        iov[n++] = (struct iovec){c->head + c->head_off, c->head_len - c->head_off};
    if (c->mem_off < c->mem_len)
        iov[n++] = (struct iovec){(void *)(c->mem + c->mem_off), c->mem_len - c->mem_off};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    /* MSG_MORE keeps the head back until the file's first bytes join it in one segment. */
    ssize_t sent = sendmsg(c->fd, &msg, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    if (sent <= 0) return sent;
    size_t left = (size_t)sent, take = c->head_len - c->head_off;
    if (take > left) take = left;
    c->head_off += take;
    c->mem_off += left - take;
    return sent;
}

/* Sends what the socket takes, up to SEND_BUDGET of file bytes. */
static enum sent send_some(struct conn *c)
{
    size_t budget = SEND_BUDGET;
    for (;;) {
        ssize_t n;
        off_t file_left = c->file_end - c->file_off;
        if (c->head_off < c->head_len || c->mem_off < c->mem_len) {
            n = send_head_and_mem(c, file_left > 0);
        } else if (file_left > 0) {
            if (budget == 0) return SENT_BLOCKED; /* the loop comes back: EPOLLOUT holds */
            size_t chunk = (uint64_t)file_left < budget ? (size_t)file_left : budget;
            n = sendfile(c->fd, c->file_fd, &c->file_off, chunk);
            /* The file shrank since its fstat: the promised length cannot be kept. */
            if (n == 0) return SENT_FAILED;
            if (n > 0) budget -= (size_t)n;
        } else {
            return SENT_ALL;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return SENT_FAILED;
            leave_shared_buffer(c);
            return SENT_BLOCKED;
        }
        c->active_ms = loop_now_ms(c->h->loop);
    }
}

/* Sends the response just prepared, as far as the socket allows. */
static enum next respond(struct conn *c)
{
    switch (send_some(c)) {
    case SENT_ALL:
        response_clear(c);
        if (c->close_after) return c->linger ? NEXT_LINGER : NEXT_CLOSE;
        c->state = CONN_READ;
        return NEXT_KEEP;
    case SENT_BLOCKED:
        c->state = CONN_WRITE;
        return NEXT_KEEP;
    default:
        return NEXT_CLOSE;
    }
}

/* ---- answers ---- */

static enum next reply_text(struct conn *c, int status, const char *text, const char *extra)
{
    size_t len = strlen(text);
    if (!put_head(c, status, "text/plain", len, extra)) return NEXT_CLOSE;
    if (!c->head_only) {
        c->mem = text;
        c->mem_len = len;
    }
    return respond(c);
}

static const char *error_text(int status)
{
    switch (status) {
    case 400:
        return "bad request\n";
    case 413:
        return "request body too large\n";
    case 414:
        return "request line too long\n";
    case 431:
        return "request header too large\n";
    case 501:
        return "transfer codings not implemented\n";
    case 505:
        return "HTTP version not supported\n";
    default:
        return "error\n";
    }
}

/* Answers a request that cannot be trusted any further, then closes. The client may still be
 * sending (a body, more requests): closing at once would reset the connection and could
 * destroy the answer before it is read, so the input is drained for a while first. */
static enum next reply_error(struct conn *c, int status)
{
    log_debug("httpd: answered %d and closed a connection", status);
    c->close_after = true;
    c->linger = true;
    c->head_only = false;
    return reply_text(c, status, error_text(status), "");
}

static const char *content_type(const char *rel)
{
    size_t len = strlen(rel);
    if (len >= 4 && strcmp(rel + len - 4, ".txt") == 0) return "text/plain";
    return "application/octet-stream";
}

/* Serves rest (the URL path after the prefix and its '/') from the tree. Whatever is refused
 * gets a 404 that says nothing of why, so a prober learns nothing about the tree. */
static enum next reply_file(struct conn *c, const char *rest, size_t rest_len)
{
    char raw[PATH_MAX], rel[PATH_MAX];
    int fd = -1;
    off_t size = 0;
    int64_t mtime_ns = 0;
    enum wm_err err = WM_ERR_TOOBIG;
    if (rest_len < sizeof raw) {
        memcpy(raw, rest, rest_len);
        raw[rest_len] = '\0';
        err = tree_clean_relpath(raw, rel, sizeof rel);
    }
    if (err == WM_OK) err = tree_open_file(c->h->tree, rel, &fd, &size, &mtime_ns);
    if (err != WM_OK) {
        char shown[HTTPD_LOG_URL_MAX];
        log_debug("httpd: 404 for %s: %s", printable(rest, rest_len, shown, sizeof shown),
                  wm_strerror(err));
        return reply_text(c, 404, NOT_FOUND, "");
    }
    c->file_fd = fd; /* the response owns it from here */
    if (!c->head_only && size <= SMALL_FILE_MAX) {
        /* Read and sent with the head: as many system calls as sendfile would take, and one
         * segment on the wire. A file shorter than its fstat said is sent as read. */
        ssize_t n = pread(fd, c->h->fbuf, (size_t)size, 0);
        if (n < 0) return NEXT_CLOSE;
        c->mem = c->h->fbuf;
        c->mem_len = (size_t)n;
        size = n;
    } else if (!c->head_only) {
        c->file_end = size;
    }
    /* Peers set a stored file's mtime to its pubTime: Last-Modified says which version. */
    char date[40], extra[64];
    http_date((time_t)(mtime_ns / 1000000000), date, sizeof date);
    snprintf(extra, sizeof extra, "Last-Modified: %s\r\n", date);
    if (!put_head(c, 200, content_type(rel), (uint64_t)size, date[0] ? extra : ""))
        return NEXT_CLOSE;
    return respond(c);
}

/* The page whose path is exactly path, or else the first handler whose prefix begins it. */
static const struct httpd_route *find_route(struct httpd *h, const char *path, size_t len)
{
    size_t n = atomic_load_explicit(&h->nroutes, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (h->routes[i].page && h->routes[i].path_len == len &&
            memcmp(h->routes[i].path, path, len) == 0)
            return &h->routes[i];
    for (size_t i = 0; i < n; i++)
        if (h->routes[i].handler && h->routes[i].path_len <= len &&
            memcmp(h->routes[i].path, path, h->routes[i].path_len) == 0)
            return &h->routes[i];
    return NULL;
}

static enum next reply_page(struct conn *c, const struct httpd_route *page)
{
    size_t len = 0;
    const char *type = NULL;
    char *body = page->page(page->arg, &len, &type);
    if (!body) return reply_text(c, 500, "internal error\n", "");
    c->mem_owned = body;
    if (!c->head_only) {
        c->mem = body;
        c->mem_len = len;
    }
    if (!put_head(c, 200, type ? type : "text/plain", len, "")) return NEXT_CLOSE;
    return respond(c);
}

static enum next reply_handler(struct conn *c, const struct httpd_route *hd,
                               const struct httpd_request *req)
{
    struct httpd_reply r = {.status = 200, .content_type = "text/plain"};
    hd->handler(hd->arg, req->path + hd->path_len, req->path_len - hd->path_len, req->query,
                req->query_len, &r);
    c->mem_owned = r.body; /* freed with the response, whatever happens next */
    r.extra[sizeof r.extra - 1] = '\0';
    if (r.status < 100 || r.status > 599) r.status = 500;
    if (!c->head_only && r.body) {
        c->mem = r.body;
        c->mem_len = r.body_len;
    }
    if (!put_head(c, r.status, r.content_type ? r.content_type : "text/plain",
                  r.body ? r.body_len : 0, r.extra))
        return NEXT_CLOSE;
    return respond(c);
}

/* Routes one parsed request. The path stays percent-encoded: an exact page path matches only
 * as spelled, and the tree's relPath is decoded once, by tree_clean_relpath, as it was when
 * the file was stored ("50%252e" must serve "50%2e", not "50."). */
static enum next serve_request(struct conn *c, const char *head, size_t head_len)
{
    struct httpd_request req;
    if (!httpd_request_parse(head, head_len, &req)) return reply_error(c, req.status);
    /* A body we have no use for is read and dropped when small, refused otherwise. */
    if (req.content_length > DISCARD_MAX) return reply_error(c, 413);
    c->discard = req.content_length;
    c->close_after = !req.keep_alive;
    c->linger = false;
    c->say_keep = req.keep_alive && req.minor == 0;
    c->head_only = req.method == HTTPD_METHOD_HEAD;
    if (req.method == HTTPD_METHOD_OTHER)
        return reply_text(c, 405, "method not allowed\n", "Allow: GET, HEAD\r\n");
    struct httpd *h = c->h;
    const struct httpd_route *route = find_route(h, req.path, req.path_len);
    if (route && route->page) return reply_page(c, route);
    if (route) return reply_handler(c, route, &req);
    if (req.path_len > h->prefix_len && memcmp(req.path, h->prefix, h->prefix_len) == 0 &&
        req.path[h->prefix_len] == '/')
        return reply_file(c, req.path + h->prefix_len + 1, req.path_len - h->prefix_len - 1);
    if (req.path_len == 1 && req.path[0] == '/') return reply_text(c, 200, "wmesh\n", "");
    return reply_text(c, 404, NOT_FOUND, "");
}

/* ---- input ---- */

/* Serves the complete requests in buf[0..len) in order, each only once the previous answer is
 * out, and drops request bodies. *used gets how many bytes were consumed. */
static enum next serve_buffer(struct conn *c, const char *buf, size_t len, size_t *used)
{
    size_t off = 0;
    enum next next = NEXT_KEEP;
    while (next == NEXT_KEEP && c->state == CONN_READ && off < len) {
        if (c->discard > 0) {
            size_t take = len - off < c->discard ? len - off : (size_t)c->discard;
            off += take;
            c->discard -= take;
            continue;
        }
        /* Blank lines before a request are allowed (RFC 9112, 2.2). */
        if (c->scanned == 0) {
            while (off < len && (buf[off] == '\r' || buf[off] == '\n'))
                off++;
            if (off == len) break;
        }
        size_t head = httpd_request_end(buf + off, len - off, &c->scanned);
        if (head == 0) {
            if (len - off >= HTTPD_HEAD_MAX) {
                next = reply_error(c, httpd_request_overflow_status(buf + off, len - off));
                off = len;
            } else if (c->head_ms == 0) {
                c->head_ms = loop_now_ms(c->h->loop);
            }
            break;
        }
        c->scanned = 0;
        c->head_ms = 0;
        next = serve_request(c, buf + off, head);
        off += head;
    }
    *used = off;
    return next;
}

/* Keeps buf[used..len) in c->in for the next round (buf is c->in or the shared read buffer). */
static bool keep_rest(struct conn *c, const char *buf, size_t len, size_t used)
{
    size_t rest = len - used;
    if (rest == 0) {
        /* An idle connection holds no buffer. */
        free(c->in);
        c->in = NULL;
    } else if (buf == c->in) {
        if (used > 0) memmove(c->in, c->in + used, rest);
    } else {
        if (!c->in && !(c->in = malloc(HTTPD_HEAD_MAX))) return false;
        memcpy(c->in, buf + used, rest);
    }
    c->in_len = rest;
    return true;
}

static enum next on_readable(struct conn *c)
{
    char *buf = c->in ? c->in : c->h->rbuf;
    size_t have = c->in ? c->in_len : 0;
    if (have >= HTTPD_HEAD_MAX) return reply_error(c, 431); /* cannot happen: a guard */
    ssize_t n = recv(c->fd, buf + have, HTTPD_HEAD_MAX - have, 0);
    if (n == 0) return NEXT_CLOSE;
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? NEXT_KEEP : NEXT_CLOSE;
    c->active_ms = loop_now_ms(c->h->loop);
    size_t len = have + (size_t)n, used = 0;
    enum next next = serve_buffer(c, buf, len, &used);
    if (next == NEXT_KEEP && !keep_rest(c, buf, len, used)) return NEXT_CLOSE;
    return next;
}

static enum next on_writable(struct conn *c)
{
    enum next next = respond(c);
    if (next != NEXT_KEEP || c->state != CONN_READ || !c->in) return next;
    /* Requests that arrived while this answer was going out. */
    size_t used = 0;
    next = serve_buffer(c, c->in, c->in_len, &used);
    if (next == NEXT_KEEP && !keep_rest(c, c->in, c->in_len, used)) return NEXT_CLOSE;
    return next;
}

/* Reads and drops what a connection closed on an error still sends, until its EOF. */
static enum next drain(struct conn *c)
{
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(c->fd, c->h->rbuf, sizeof c->h->rbuf, 0);
        if (n == 0) return NEXT_CLOSE;
        if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? NEXT_KEEP : NEXT_CLOSE;
    }
    return NEXT_KEEP;
}

/* ---- connections ---- */

static void resume_accepting(struct httpd *h);

static void conn_free(struct conn *c)
{
    struct httpd *h = c->h;
    loop_unwatch(h->loop, c->fd);
    close(c->fd);
    response_clear(c);
    free(c->in);
    DLIST_REMOVE(h->conns, c, next, prev);
    free(c);
    h->nconns--;
    if (!h->accepting && h->accept_resume_ms == 0 && !h->stopping) resume_accepting(h);
}

static bool conn_linger(struct conn *c)
{
    response_clear(c);
    free(c->in);
    c->in = NULL;
    c->in_len = 0;
    if (shutdown(c->fd, SHUT_WR) < 0) return false;
    c->state = CONN_LINGER;
    c->active_ms = loop_now_ms(c->h->loop);
    return true;
}

static void on_conn(void *arg, int fd, unsigned events);

/* Carries out a step's verdict and watches for what the connection waits for next. */
static void conn_after(struct conn *c, enum next next)
{
    if (next == NEXT_CLOSE || (next == NEXT_LINGER && !conn_linger(c))) {
        conn_free(c);
        return;
    }
    unsigned want = c->state == CONN_WRITE ? LOOP_WRITE : LOOP_READ;
    if (want == c->watching) return;
    if (loop_watch(c->h->loop, c->fd, want, on_conn, c) != WM_OK) {
        conn_free(c);
        return;
    }
    c->watching = want;
}

static void on_conn(void *arg, int fd, unsigned events)
{
    struct conn *c = arg;
    (void)fd;
    enum next next = NEXT_KEEP;
    if (c->state == CONN_LINGER)
        next = drain(c);
    else if (events & LOOP_ERROR)
        next = NEXT_CLOSE;
    else if (c->state == CONN_WRITE && (events & LOOP_WRITE))
        next = on_writable(c);
    else if (c->state == CONN_READ && (events & LOOP_READ))
        next = on_readable(c);
    conn_after(c, next);
}

static void conn_new(struct httpd *h, int fd)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->h = h;
    c->fd = fd;
    c->file_fd = -1;
    c->state = CONN_READ;
    c->active_ms = c->head_ms = loop_now_ms(h->loop);
    /* Answers leave in one write or end with sendfile: no reason to let Nagle hold a tail. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (loop_watch(h->loop, fd, LOOP_READ, on_conn, c) != WM_OK) {
        close(fd);
        free(c);
        return;
    }
    c->watching = LOOP_READ;
    DLIST_PUSH(h->conns, c, next, prev);
    h->nconns++;
}

/* ---- accepting ---- */

static void on_accept(void *arg, int fd, unsigned events);

/* True (and the time noted) when a repeated condition may be logged again. */
static bool may_note(struct httpd *h, int64_t *last)
{
    int64_t now = loop_now_ms(h->loop);
    if (*last != 0 && now - *last < NOTE_EVERY_MS) return false;
    *last = now;
    return true;
}

static void pause_accepting(struct httpd *h, int64_t resume_ms)
{
    if (h->accepting) loop_unwatch(h->loop, h->lfd);
    h->accepting = false;
    h->accept_resume_ms = resume_ms;
}

static void resume_accepting(struct httpd *h)
{
    unsigned max = atomic_load_explicit(&h->max_conns, memory_order_relaxed);
    if (h->accepting || h->nconns >= max) return;
    if (loop_watch(h->loop, h->lfd, LOOP_READ, on_accept, h) != WM_OK) {
        h->accept_resume_ms = loop_now_ms(h->loop) + ACCEPT_PAUSE_MS;
        return;
    }
    h->accepting = true;
    h->accept_resume_ms = 0;
}

static void on_accept(void *arg, int fd, unsigned events)
{
    struct httpd *h = arg;
    (void)events;
    unsigned max = atomic_load_explicit(&h->max_conns, memory_order_relaxed);
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (h->nconns >= max) {
            /* Further clients wait in the listen backlog until a connection closes. */
            if (may_note(h, &h->limit_noted_ms))
                log_warn("httpd: %zu connections open, the limit: not accepting until one closes",
                         h->nconns);
            pause_accepting(h, 0);
            return;
        }
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
            conn_new(h, cfd);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
        /* Out of descriptors or memory: a busy loop would not help; try again shortly. */
        if (may_note(h, &h->accept_noted_ms))
            log_error("httpd: cannot accept connections: %s", strerror(errno));
        pause_accepting(h, loop_now_ms(h->loop) + ACCEPT_PAUSE_MS);
        return;
    }
}

/* ---- timeouts ---- */

static bool expired(const struct httpd *h, const struct conn *c, int64_t now)
{
    int64_t idle = atomic_load_explicit(&h->idle_ms, memory_order_relaxed);
    int64_t head = atomic_load_explicit(&h->head_ms, memory_order_relaxed);
    switch (c->state) {
    case CONN_LINGER:
        return now - c->active_ms >= LINGER_MS;
    case CONN_READ:
        /* A head trickling in byte by byte keeps a connection active but must still end. */
        if (c->head_ms != 0 && now - c->head_ms >= head) return true;
        return now - c->active_ms >= idle;
    default:
        return now - c->active_ms >= idle;
    }
}

static int64_t sweep_period(const struct httpd *h)
{
    unsigned idle = atomic_load_explicit(&h->idle_ms, memory_order_relaxed);
    unsigned head = atomic_load_explicit(&h->head_ms, memory_order_relaxed);
    int64_t p = (idle < head ? idle : head) / 4;
    return p < 20 ? 20 : p > 1000 ? 1000 : p;
}

/* Closes the connections past their deadlines; one pass over all of them, a few times a second
 * at most, costs less than a timer per request. */
static void sweep(void *arg)
{
    struct httpd *h = arg;
    int64_t now = loop_now_ms(h->loop);
    for (struct conn *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (expired(h, c, now)) conn_free(c);
    }
    if (!h->accepting && (h->accept_resume_ms == 0 || now >= h->accept_resume_ms))
        resume_accepting(h);
    loop_timer_start(h->loop, &h->sweep, sweep_period(h), sweep, h);
}

/* ---- the server thread ---- */

static void on_wake(void *arg, int fd, unsigned events)
{
    struct httpd *h = arg;
    uint64_t count;
    (void)events;
    if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN) log_debug("httpd: wake-up lost");
    loop_stop(h->loop);
}

static void *serve(void *arg)
{
    struct httpd *h = arg;
    if (loop_run(h->loop) != WM_OK) log_error("httpd: event loop failed: %s", strerror(errno));
    return NULL;
}

static enum wm_err start_thread(struct httpd *h)
{
    enum wm_err e = thread_start(&h->thread, "wmesh-httpd", serve, h);
    if (e == WM_OK) h->running = true;
    return e;
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

/* The loop, its watches and the sweep timer, all set before the thread starts. */
static enum wm_err setup_loop(struct httpd *h)
{
    h->loop = loop_new();
    if (!h->loop) return WM_ERR_NOMEM;
    h->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->wakefd < 0) return WM_ERR_IO;
    if (loop_watch(h->loop, h->wakefd, LOOP_READ, on_wake, h) != WM_OK) return WM_ERR_IO;
    if (loop_watch(h->loop, h->lfd, LOOP_READ, on_accept, h) != WM_OK) return WM_ERR_IO;
    h->accepting = true;
    loop_timer_start(h->loop, &h->sweep, sweep_period(h), sweep, h);
    return WM_OK;
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
    h->lfd = h->wakefd = -1;
    atomic_init(&h->nroutes, 0);
    atomic_init(&h->max_conns, DEFAULT_MAX_CONNS);
    atomic_init(&h->idle_ms, DEFAULT_IDLE_MS);
    atomic_init(&h->head_ms, DEFAULT_HEAD_MS);
    if ((*err = set_prefix(h, url_prefix)) != WM_OK) goto fail;
    h->lfd = open_listener(&ss, sslen);
    if (h->lfd < 0) {
        log_error("httpd: cannot listen on %s: %s", listen, strerror(errno));
        *err = WM_ERR_IO;
        goto fail;
    }
    h->port = bound_port(h->lfd);
    if ((*err = setup_loop(h)) != WM_OK || (*err = start_thread(h)) != WM_OK) {
        log_error("httpd: cannot start serving on %s: %s", listen, strerror(errno));
        goto fail;
    }
    return h;
fail:
    httpd_stop(&h);
    return NULL;
}

static enum wm_err add_route(struct httpd *h, const char *path, httpd_page_fn page,
                             httpd_handler_fn handler, void *arg)
{
    size_t n = atomic_load_explicit(&h->nroutes, memory_order_relaxed);
    if (n == HTTPD_MAX_ROUTES) return WM_ERR_TOOBIG;
    h->routes[n].path = strdup(path);
    if (!h->routes[n].path) return WM_ERR_NOMEM;
    h->routes[n].path_len = strlen(path);
    h->routes[n].page = page;
    h->routes[n].handler = handler;
    h->routes[n].arg = arg;
    atomic_store_explicit(&h->nroutes, n + 1, memory_order_release);
    return WM_OK;
}

enum wm_err httpd_add_page(struct httpd *h, const char *path, httpd_page_fn fn, void *arg)
{
    if (!h || !path || !fn) return WM_ERR_INVAL;
    return add_route(h, path, fn, NULL, arg);
}

enum wm_err httpd_add_handler(struct httpd *h, const char *prefix, httpd_handler_fn fn, void *arg)
{
    if (!h || !prefix || prefix[0] != '/' || !fn) return WM_ERR_INVAL;
    return add_route(h, prefix, NULL, fn, arg);
}

uint16_t httpd_port(const struct httpd *h)
{
    return h ? h->port : 0;
}

void httpd_set_limits(struct httpd *h, const struct httpd_limits *lim)
{
    if (!h || !lim) return;
    if (lim->max_conns) atomic_store(&h->max_conns, lim->max_conns);
    if (lim->idle_ms) atomic_store(&h->idle_ms, lim->idle_ms);
    if (lim->head_ms) atomic_store(&h->head_ms, lim->head_ms);
}

void httpd_stop(struct httpd **hp)
{
    if (!hp || !*hp) return;
    struct httpd *h = *hp;
    if (h->running) {
        uint64_t one = 1;
        if (write(h->wakefd, &one, sizeof one) < 0) log_error("httpd: cannot wake the server");
        pthread_join(h->thread, NULL);
    }
    h->stopping = true;
    while (h->conns)
        conn_free(h->conns);
    if (h->lfd >= 0) close(h->lfd);
    if (h->wakefd >= 0) close(h->wakefd);
    loop_free(&h->loop);
    size_t n = atomic_load(&h->nroutes);
    for (size_t i = 0; i < n; i++)
        free(h->routes[i].path);
    free(h->prefix);
    free(h);
    *hp = NULL;
}
