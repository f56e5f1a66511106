/* test_httpd.c: the embedded HTTP server over a temporary tree, probed with raw HTTP/1.1. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <strings.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "httpd.h"
#include "test.h"
#include "tree.h"

#define BODY_MAX (4 * 1024 * 1024)
#define BLOB_LEN 300000                  /* several sendfile rounds */
#define LARGE_LEN (3 * 1024 * 1024 + 17) /* over the server's per-turn send budget */
#define HUGE_LEN (8 * LARGE_LEN)         /* more than socket buffers hold */

static char base[64];
static char root[128];
static char outside[128];
static unsigned char blob[BLOB_LEN];
static unsigned char *large; /* LARGE_LEN bytes */

struct reply {
    int status;
    char head[8192]; /* status line and headers */
    char *body;      /* BODY_MAX bytes, NUL-terminated */
    size_t body_len;
};

/* ---- a tiny HTTP/1.1 client ---- */

static int connect_to(int family, uint16_t port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int rc;
    if (family == AF_INET6) {
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
        sa.sin6_addr = in6addr_loopback;
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    } else {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    }
    if (rc < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_text(int fd, const char *text)
{
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = send(fd, text + done, len - done, MSG_NOSIGNAL);
        if (n <= 0) return -1;
        done += (size_t)n;
    }
    return 0;
}

/* Finds header name in r->head; returns its value (up to CR) in out, or false. */
static bool header(const struct reply *r, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line && line[2];
         line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, nlen) != 0 || l[nlen] != ':') continue;
        const char *v = l + nlen + 1;
        while (*v == ' ')
            v++;
        size_t vlen = strcspn(v, "\r");
        if (vlen >= outlen) vlen = outlen - 1;
        memcpy(out, v, vlen);
        out[vlen] = '\0';
        return true;
    }
    return false;
}

/* Reads one response. Byte by byte up to the blank line, so a second pipelined or keep-alive
 * response is never swallowed with the first. */
static int read_reply(int fd, bool head_only, struct reply *r)
{
    size_t used = 0;
    r->status = 0;
    r->body_len = 0;
    r->body[0] = '\0';
    while (used + 1 < sizeof r->head) {
        if (recv(fd, r->head + used, 1, 0) != 1) return -1;
        used++;
        r->head[used] = '\0';
        if (used >= 4 && memcmp(r->head + used - 4, "\r\n\r\n", 4) == 0) break;
    }
    if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1) return -1;
    char value[64];
    if (head_only || !header(r, "Content-Length", value, sizeof value)) return 0;
    size_t want = strtoul(value, NULL, 10);
    if (want >= BODY_MAX) return -1;
    while (r->body_len < want) {
        ssize_t n = recv(fd, r->body + r->body_len, want - r->body_len, 0);
        if (n <= 0) return -1;
        r->body_len += (size_t)n;
    }
    r->body[r->body_len] = '\0';
    return 0;
}

/* One request on a fresh connection that the server is asked to close. */
static int request(uint16_t port, const char *method, const char *target, struct reply *r)
{
    char text[2048];
    int fd = connect_to(AF_INET, port);
    if (fd < 0) return -1;
    snprintf(text, sizeof text,
             "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
             method, target);
    int rc = send_text(fd, text);
    if (rc == 0) rc = read_reply(fd, strcmp(method, "HEAD") == 0, r);
    close(fd);
    return rc;
}

static int get_status(uint16_t port, const char *target, struct reply *r)
{
    if (request(port, "GET", target, r) < 0) return -1;
    return r->status;
}

/* ---- fixtures ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static enum wm_err put(struct tree *t, const char *rel, const void *data, size_t len)
{
    struct tree_tmp tmp;
    char clean[PATH_MAX];
    enum wm_err err = tree_clean_relpath(rel, clean, sizeof clean);
    if (err != WM_OK) return err;
    if ((err = tree_tmp_create(t, &tmp)) != WM_OK) return err;
    if (write(tmp.fd, data, len) != (ssize_t)len) {
        tree_tmp_discard(t, &tmp);
        return WM_ERR_IO;
    }
    return tree_tmp_commit(t, &tmp, clean);
}

static void build_tree(struct tree *t)
{
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (unsigned char)(i * 7 + i / 251);
    ASSERT_EQ_INT(put(t, "a/hello.txt", "hello world\n", 12), WM_OK);
    ASSERT_EQ_INT(put(t, "bin/blob", blob, sizeof blob), WM_OK);
    ASSERT_EQ_INT(put(t, "a%20b.txt", "spaced", 6), WM_OK);
    ASSERT_EQ_INT(put(t, "50%252e", "percent", 7), WM_OK); /* on disk: "50%2e" */
    ASSERT_EQ_INT(put(t, "empty", "", 0), WM_OK);
    for (size_t i = 0; i < LARGE_LEN; i++)
        large[i] = (unsigned char)(i * 13 + i / 4099);
    ASSERT_EQ_INT(put(t, "bin/large", large, LARGE_LEN), WM_OK);

    char path[PATH_MAX], target[PATH_MAX];
    snprintf(path, sizeof path, "%s/link.txt", root);
    snprintf(target, sizeof target, "%s/a/hello.txt", root);
    ASSERT_EQ_INT(symlink(target, path), 0);
    snprintf(path, sizeof path, "%s/out", root);
    ASSERT_EQ_INT(symlink(outside, path), 0);
    snprintf(path, sizeof path, "%s/secret", outside);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_TRUE(fd >= 0 && write(fd, "s", 1) == 1);
    if (fd >= 0) close(fd);
    snprintf(path, sizeof path, "%s/.hidden", root);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_TRUE(fd >= 0 && write(fd, "h", 1) == 1);
    if (fd >= 0) close(fd);
}

/* ---- pages ---- */

static char *metrics_page(void *arg, size_t *len, const char **content_type)
{
    const char *text = arg;
    *len = strlen(text);
    *content_type = "text/plain; version=0.0.4";
    return strdup(text);
}

static char *failing_page(void *arg, size_t *len, const char **content_type)
{
    (void)arg;
    (void)len;
    (void)content_type;
    return NULL;
}

/* Echoes what it was given: "rest=<rest> query=<query or (none)>"; "gone" answers 410 with a
 * header, "empty" a 204-like 200 without a body. */
static void echo_handler(void *arg, const char *rest, size_t rest_len, const char *query,
                         size_t query_len, struct httpd_reply *reply)
{
    int *calls = arg;
    (*calls)++;
    if (rest_len == 4 && memcmp(rest, "gone", 4) == 0) {
        reply->status = 410;
        snprintf(reply->extra, sizeof reply->extra, "Cache-Control: no-cache\r\n");
    }
    if (rest_len == 5 && memcmp(rest, "empty", 5) == 0) return;
    char text[512];
    int n = snprintf(text, sizeof text, "rest=%.*s query=%.*s", (int)rest_len, rest,
                     query ? (int)query_len : 6, query ? query : "(none)");
    reply->content_type = "application/x-ndjson; charset=utf-8";
    reply->body = strdup(text);
    reply->body_len = reply->body ? (size_t)n : 0;
}

/* ---- tests ---- */

static void test_files(uint16_t port, struct reply *r)
{
    char value[128];
    ASSERT_EQ_INT(get_status(port, "/data/a/hello.txt", r), 200);
    ASSERT_EQ_INT(r->body_len, 12);
    ASSERT_EQ_STR(r->body, "hello world\n");
    ASSERT_TRUE(header(r, "Content-Type", value, sizeof value) && strcmp(value, "text/plain") == 0);
    ASSERT_TRUE(header(r, "Last-Modified", value, sizeof value) && strstr(value, " GMT"));

    ASSERT_EQ_INT(get_status(port, "/data/bin/blob", r), 200);
    ASSERT_EQ_INT(r->body_len, BLOB_LEN);
    ASSERT_EQ_MEM(r->body, blob, BLOB_LEN);
    ASSERT_TRUE(header(r, "Content-Type", value, sizeof value) &&
                strcmp(value, "application/octet-stream") == 0);

    ASSERT_EQ_INT(request(port, "HEAD", "/data/a/hello.txt", r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_TRUE(header(r, "Content-Length", value, sizeof value) && strcmp(value, "12") == 0);

    ASSERT_EQ_INT(get_status(port, "/data/empty", r), 200);
    ASSERT_EQ_INT(r->body_len, 0);
    ASSERT_EQ_INT(get_status(port, "/data/a/hello.txt?x=1&y=%2e%2e", r), 200);
    ASSERT_EQ_INT(get_status(port, "/data//a/./hello.txt", r), 200);
    /* The URL path is decoded once, exactly as the relPath was when the file was stored. */
    ASSERT_EQ_INT(get_status(port, "/data/a%20b.txt", r), 200);
    ASSERT_EQ_STR(r->body, "spaced");
    ASSERT_EQ_INT(get_status(port, "/data/50%252e", r), 200);
    ASSERT_EQ_STR(r->body, "percent");
}

static void test_refusals(uint16_t port, struct reply *r)
{
    static const char *const targets[] = {
        "/data/missing",
        "/data/../etc/passwd",
        "/data/%2e%2e/x",
        "/data/%2E%2E/%2e%2e/etc/passwd",
        "/data/a/..%2f..%2fetc/passwd",
        "/data/a%2Fhello.txt",
        "/data/a/hello.txt%00.png",
        "/data/link.txt",
        "/data/out/secret",
        "/data/.hidden",
        "/data/.wmesh-tmp",
        "/data/.wmesh-tmp/",
        "/data/a",
        "/data/a/",
        "/data/",
        "/data",
        "/dataa/hello.txt",
        "/other",
        "/a/hello.txt",
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        int status = get_status(port, targets[i], r);
        if (status != 404) fprintf(stderr, "target %s\n", targets[i]);
        ASSERT_EQ_INT(status, 404);
        ASSERT_TRUE(strstr(r->body, "secret") == NULL && strstr(r->body, "root:") == NULL);
    }
}

static void test_tmp_not_served(struct tree *t, uint16_t port, struct reply *r)
{
    struct tree_tmp tmp;
    char target[256];
    ASSERT_EQ_INT(tree_tmp_create(t, &tmp), WM_OK);
    ASSERT_TRUE(write(tmp.fd, "partial", 7) == 7);
    snprintf(target, sizeof target, "/data/%s/%s", WM_TREE_TMPDIR, tmp.name);
    ASSERT_EQ_INT(get_status(port, target, r), 404);
    snprintf(target, sizeof target, "/data/%%2e%s/%s", &WM_TREE_TMPDIR[1], tmp.name);
    ASSERT_EQ_INT(get_status(port, target, r), 404);
    tree_tmp_discard(t, &tmp);
}

static void test_methods_and_pages(struct httpd *h, uint16_t port, struct reply *r)
{
    char value[128];
    ASSERT_EQ_INT(request(port, "POST", "/data/a/hello.txt", r), 0);
    ASSERT_EQ_INT(r->status, 405);
    ASSERT_TRUE(header(r, "Allow", value, sizeof value) && strstr(value, "GET") &&
                strstr(value, "HEAD"));
    ASSERT_EQ_INT(request(port, "DELETE", "/data/a/hello.txt", r), 0);
    ASSERT_EQ_INT(r->status, 405);
    ASSERT_EQ_INT(request(port, "PUT", "/metrics", r), 0);
    ASSERT_EQ_INT(r->status, 405);

    ASSERT_EQ_INT(httpd_add_page(h, "/metrics", metrics_page, "wmesh_up 1\n"), WM_OK);
    ASSERT_EQ_INT(httpd_add_page(h, "/broken", failing_page, NULL), WM_OK);
    ASSERT_EQ_INT(httpd_add_page(h, NULL, failing_page, NULL), WM_ERR_INVAL);
    ASSERT_EQ_INT(get_status(port, "/metrics", r), 200);
    ASSERT_EQ_STR(r->body, "wmesh_up 1\n");
    ASSERT_TRUE(header(r, "Content-Type", value, sizeof value) &&
                strcmp(value, "text/plain; version=0.0.4") == 0);
    ASSERT_EQ_INT(get_status(port, "/metrics?x", r), 200);
    ASSERT_EQ_INT(get_status(port, "/metrics/", r), 404);
    ASSERT_EQ_INT(get_status(port, "/broken", r), 500);
    ASSERT_EQ_INT(get_status(port, "/", r), 200);
    ASSERT_EQ_STR(r->body, "wmesh\n");
}

static void test_handlers(struct httpd *h, uint16_t port, struct reply *r)
{
    char value[128];
    int calls = 0;
    ASSERT_EQ_INT(httpd_add_handler(h, "data/.dyn/", echo_handler, &calls), WM_ERR_INVAL);
    ASSERT_EQ_INT(httpd_add_handler(h, NULL, echo_handler, &calls), WM_ERR_INVAL);
    ASSERT_EQ_INT(httpd_add_handler(h, "/data/.dyn/", echo_handler, &calls), WM_OK);
    ASSERT_EQ_INT(get_status(port, "/data/.dyn/log?epoch=E&topic=a%2F%2B", r), 200);
    ASSERT_EQ_STR(r->body, "rest=log query=epoch=E&topic=a%2F%2B");
    ASSERT_TRUE(header(r, "Content-Type", value, sizeof value) &&
                strcmp(value, "application/x-ndjson; charset=utf-8") == 0);
    ASSERT_EQ_INT(get_status(port, "/data/.dyn/status", r), 200);
    ASSERT_EQ_STR(r->body, "rest=status query=(none)");
    ASSERT_EQ_INT(get_status(port, "/data/.dyn/", r), 200);
    ASSERT_EQ_STR(r->body, "rest= query=(none)");
    ASSERT_EQ_INT(get_status(port, "/data/.dyn/gone?", r), 410);
    ASSERT_EQ_STR(r->body, "rest=gone query=");
    ASSERT_TRUE(header(r, "Cache-Control", value, sizeof value) && strcmp(value, "no-cache") == 0);
    ASSERT_EQ_INT(get_status(port, "/data/.dyn/empty", r), 200);
    ASSERT_EQ_INT(r->body_len, 0);
    ASSERT_TRUE(header(r, "Content-Length", value, sizeof value) && strcmp(value, "0") == 0);
    /* HEAD: the same head, no body. */
    ASSERT_EQ_INT(request(port, "HEAD", "/data/.dyn/status", r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_TRUE(header(r, "Content-Length", value, sizeof value) && strcmp(value, "24") == 0);
    ASSERT_EQ_INT(r->body_len, 0);
    ASSERT_EQ_INT(request(port, "POST", "/data/.dyn/status", r), 0);
    ASSERT_EQ_INT(r->status, 405);
    /* Not under the prefix: the tree, which serves no dot-names. */
    ASSERT_EQ_INT(get_status(port, "/data/.dyn", r), 404);
    ASSERT_EQ_INT(get_status(port, "/data/a/hello.txt", r), 200);
    ASSERT_EQ_INT(calls, 6);
    /* Keep-alive goes on after a handler's answer. */
    int fd = connect_to(AF_INET, port);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ_INT(send_text(fd, "GET /data/.dyn/a?b HTTP/1.1\r\nHost: h\r\n\r\n"
                                "GET /data/.dyn/c HTTP/1.1\r\nHost: h\r\n\r\n"),
                  0);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_STR(r->body, "rest=a query=b");
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_STR(r->body, "rest=c query=(none)");
    close(fd);
}

static void test_keep_alive(uint16_t port, struct reply *r)
{
    int fd = connect_to(AF_INET, port);
    ASSERT_TRUE(fd >= 0);
    if (fd < 0) return;
    ASSERT_EQ_INT(send_text(fd, "GET /data/a/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_EQ_STR(r->body, "hello world\n");
    ASSERT_EQ_INT(send_text(fd, "GET /data/bin/blob HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_EQ_INT(r->body_len, BLOB_LEN);
    /* A refusal keeps the connection too. */
    ASSERT_EQ_INT(send_text(fd, "GET /data/missing HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 404);
    ASSERT_EQ_INT(send_text(fd, "GET /data/a/hello.txt HTTP/1.1\r\nHost: x\r\n"
                                "Connection: close\r\n\r\n"),
                  0);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    char byte;
    ASSERT_EQ_INT(recv(fd, &byte, 1, 0), 0); /* closed as asked */
    close(fd);
}

/* ---- helpers for the connection tests ---- */

/* True when the server closes fd within ms (EOF or reset), whatever it sends first. */
static bool closed_within(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0) return true;
        if (n < 0) return errno == ECONNRESET;
    }
}

static int connect_send(uint16_t port, const char *text)
{
    int fd = connect_to(AF_INET, port);
    if (fd >= 0 && send_text(fd, text) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends text on a fresh connection and reads one reply; returns its status (-1 on failure).
 * *fdp (may be NULL) keeps the connection open for the caller. */
static int exchange(uint16_t port, const char *text, bool head_only, struct reply *r, int *fdp)
{
    int fd = connect_send(port, text);
    if (fd < 0) return -1;
    int status = read_reply(fd, head_only, r) == 0 ? r->status : -1;
    if (fdp)
        *fdp = fd;
    else
        close(fd);
    return status;
}

/* ---- pipelining, versions, bodies ---- */

static void test_pipelining(uint16_t port, struct reply *r)
{
    char value[64];
    int fd = connect_send(port, "GET /data/a/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                                "HEAD /data/bin/blob HTTP/1.1\r\nHost: x\r\n\r\n"
                                "GET /data/missing HTTP/1.1\r\nHost: x\r\n\r\n"
                                "GET /data/bin/blob HTTP/1.1\r\nHost: x\r\n\r\n"
                                "\r\nGET /data/a%20b.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(fd >= 0);
    if (fd < 0) return;
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_EQ_STR(r->body, "hello world\n");
    ASSERT_EQ_INT(read_reply(fd, true, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_TRUE(header(r, "Content-Length", value, sizeof value) && atol(value) == BLOB_LEN);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 404);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_EQ_INT(r->body_len, BLOB_LEN);
    ASSERT_EQ_MEM(r->body, blob, BLOB_LEN);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_EQ_STR(r->body, "spaced");
    /* Still open: one more, sent byte by byte. */
    const char *req = "GET /metrics HTTP/1.1\nHost: x\n\n"; /* bare LF line ends */
    for (const char *p = req; *p; p++)
        ASSERT_TRUE(send(fd, p, 1, MSG_NOSIGNAL) == 1);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_EQ_STR(r->body, "wmesh_up 1\n");
    close(fd);
}

static void test_http10(uint16_t port, struct reply *r)
{
    char value[64];
    int fd = -1;
    ASSERT_EQ_INT(exchange(port, "GET /data/a/hello.txt HTTP/1.0\r\n\r\n", false, r, &fd), 200);
    ASSERT_EQ_STR(r->body, "hello world\n");
    ASSERT_TRUE(fd >= 0 && closed_within(fd, 2000)); /* 1.0 closes unless asked otherwise */
    if (fd >= 0) close(fd);
    fd = -1;
    ASSERT_EQ_INT(exchange(port, "GET /data/a/hello.txt HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                           false, r, &fd),
                  200);
    ASSERT_TRUE(header(r, "Connection", value, sizeof value) &&
                strcasecmp(value, "keep-alive") == 0);
    ASSERT_EQ_INT(send_text(fd, "GET /data/empty HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_EQ_INT(r->body_len, 0);
    ASSERT_EQ_INT(send_text(fd, "GET /data/empty HTTP/1.0\r\n\r\n"), 0);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_TRUE(closed_within(fd, 2000));
    close(fd);
    /* Later 1.x minors are 1.1 to us; the absolute form names the same file. */
    ASSERT_EQ_INT(exchange(port,
                           "GET http://localhost:1/data/a/hello.txt?q HTTP/1.9\r\nHost: x\r\n\r\n",
                           false, r, NULL),
                  200);
    ASSERT_EQ_STR(r->body, "hello world\n");
}

static void test_heads_and_bodies(uint16_t port, struct reply *r)
{
    char value[64];
    int fd = -1;
    /* HEAD of a page and of "/" carry the length a GET would, and no body: the GET that
     * follows on the same connection must parse. */
    ASSERT_EQ_INT(exchange(port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", true, r, &fd), 200);
    ASSERT_TRUE(header(r, "Content-Length", value, sizeof value) && strcmp(value, "11") == 0);
    ASSERT_EQ_INT(send_text(fd, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                                "HEAD /data/nothing HTTP/1.1\r\nHost: x\r\n\r\n"
                                "GET /data/a/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"),
                  0);
    ASSERT_EQ_INT(read_reply(fd, true, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_EQ_INT(read_reply(fd, true, r), 0);
    ASSERT_EQ_INT(r->status, 404);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_EQ_STR(r->body, "hello world\n");
    /* A body on a GET is read and dropped; the next request is found after it. */
    ASSERT_EQ_INT(send_text(fd, "GET /data/a/hello.txt HTTP/1.1\r\nHost: x\r\n"
                                "Content-Length: 26\r\n\r\nGET /data/empty HTTP/1.1\r\n"
                                "GET /data/a%20b.txt HTTP/1.1\r\nHost: x\r\n\r\n"),
                  0);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_EQ_STR(r->body, "spaced");
    /* Other methods: 405, and the connection (its body dropped) goes on. */
    ASSERT_EQ_INT(send_text(fd, "POST /data/a/hello.txt HTTP/1.1\r\nHost: x\r\n"
                                "Content-Length: 5\r\n\r\nhello"
                                "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"
                                "GET /data/empty HTTP/1.1\r\nHost: x\r\n\r\n"),
                  0);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 405);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 405);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    close(fd);
    /* A body over the cap is refused, and the connection closed. */
    fd = -1;
    ASSERT_EQ_INT(exchange(port,
                           "GET /data/empty HTTP/1.1\r\nHost: x\r\n"
                           "Content-Length: 10000000\r\n\r\nxxxx",
                           false, r, &fd),
                  413);
    ASSERT_TRUE(fd >= 0 && closed_within(fd, 4000));
    if (fd >= 0) close(fd);
}

/* Each of these gets its status and a closed connection. */
static void test_malformed(uint16_t port, struct reply *r)
{
    static const struct {
        const char *text;
        int status;
    } cases[] = {
        {"GET /data/empty HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"GET /data/empty HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
        {"POST /data/empty HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
        {"GET /data/empty HTTP/1.1\r\n\r\n", 400}, /* no Host */
        {"GET /data/empty HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
        {"GET  /data/empty HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET /data/empty HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
        {"GET /data/empty\r\n\r\n", 400}, /* HTTP/0.9 */
        {"GET /data/empty HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n", 400},
        {"GET /data/empty HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        {"GET /data/empty HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         400},
        {"GET /data/empty HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
        {"GET /data/empty HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
         400},
        {"GET data/empty HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET /data/em\001pty HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET /data/empty HTTP/1.1\r\nHost: x\r\nX: a\001b\r\n\r\n", 400},
        {"G@T /data/empty HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = -1;
        int status = exchange(port, cases[i].text, false, r, &fd);
        if (status != cases[i].status) fprintf(stderr, "case %zu\n", i);
        ASSERT_EQ_INT(status, cases[i].status);
        ASSERT_TRUE(fd >= 0 && closed_within(fd, 4000));
        if (fd >= 0) close(fd);
    }
}

static void test_oversized(uint16_t port, struct reply *r)
{
    char *text = malloc(20000);
    ASSERT_TRUE(text != NULL);
    if (!text) return;
    /* A request line that never ends: 414. */
    memcpy(text, "GET /", 5);
    memset(text + 5, 'a', 9000);
    text[9005] = '\0';
    int fd = -1;
    ASSERT_EQ_INT(exchange(port, text, false, r, &fd), 414);
    ASSERT_TRUE(fd >= 0 && closed_within(fd, 4000));
    if (fd >= 0) close(fd);
    /* Headers over 8 KiB: 431, though more keeps coming. */
    int n = snprintf(text, 20000, "GET /data/empty HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; n < 12000; i++)
        n += snprintf(text + n, 20000 - (size_t)n, "X-Filler-%d: %0100d\r\n", i, 0);
    snprintf(text + n, 20000 - (size_t)n, "\r\n");
    fd = -1;
    ASSERT_EQ_INT(exchange(port, text, false, r, &fd), 431);
    ASSERT_TRUE(fd >= 0 && closed_within(fd, 4000));
    if (fd >= 0) close(fd);
    /* Just under the cap is fine. */
    n = snprintf(text, 20000, "GET /data/empty HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; n < 7900; i++)
        n += snprintf(text + n, 20000 - (size_t)n, "X-Filler-%d: %0100d\r\n", i, 0);
    snprintf(text + n, 20000 - (size_t)n, "\r\n");
    ASSERT_EQ_INT(exchange(port, text, false, r, NULL), 200);
    free(text);
}

/* ---- files and connections ---- */

static void test_large_file(uint16_t port, struct reply *r)
{
    int fd = connect_to(AF_INET, port);
    ASSERT_TRUE(fd >= 0);
    if (fd < 0) return;
    for (int round = 0; round < 2; round++) {
        ASSERT_EQ_INT(send_text(fd, "GET /data/bin/large HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
        ASSERT_EQ_INT(read_reply(fd, false, r), 0);
        ASSERT_EQ_INT(r->status, 200);
        ASSERT_EQ_INT(r->body_len, LARGE_LEN);
        ASSERT_EQ_MEM(r->body, large, LARGE_LEN);
    }
    close(fd);
}

/* Clients that go away in the middle of an answer leave the server serving. */
static void test_disconnects(uint16_t port, struct reply *r)
{
    for (int i = 0; i < 20; i++) {
        int fd = connect_send(port, "GET /data/bin/large HTTP/1.1\r\nHost: x\r\n\r\n"
                                    "GET /data/bin/large HTTP/1.1\r\nHost: x\r\n\r\n");
        ASSERT_TRUE(fd >= 0);
        if (fd < 0) continue;
        char buf[4096];
        if (i % 2) ASSERT_TRUE(recv(fd, buf, sizeof buf, 0) > 0);
        if (i % 3 == 0) {
            /* A reset rather than an orderly close. */
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(fd);
    }
    ASSERT_EQ_INT(get_status(port, "/data/a/hello.txt", r), 200);
    ASSERT_EQ_STR(r->body, "hello world\n");
}

/* Writes HUGE_LEN bytes at root/rel (in place, not through the tree); returns the descriptor. */
static int write_huge(const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    for (size_t done = 0; fd >= 0 && done < HUGE_LEN; done += LARGE_LEN)
        if (write(fd, large, LARGE_LEN) != LARGE_LEN) {
            close(fd);
            return -1;
        }
    return fd;
}

/* Reads until EOF or reset (within ms of silence); returns the bytes read, -1 on a timeout. */
static long read_to_end(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    static char buf[65536];
    long total = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) return total;
        if (n < 0) return -1;
        total += n;
    }
}

/* A connection whose window stays small, so that the server cannot push a huge file into the
 * socket buffers at once. */
static int connect_small_window(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int size = 65536;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A file cut short while it is being sent: the connection ends, it does not hang. */
static void test_shrinking_file(uint16_t port, struct reply *r)
{
    int wfd = write_huge("bin/shrinks");
    ASSERT_TRUE(wfd >= 0);
    if (wfd < 0) return;
    int fd = connect_small_window(port);
    ASSERT_TRUE(fd >= 0);
    if (fd >= 0) {
        ASSERT_EQ_INT(send_text(fd, "GET /data/bin/shrinks HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
        char buf[4096];
        ASSERT_TRUE(recv(fd, buf, sizeof buf, 0) > 0);
        usleep(100 * 1000);
        ASSERT_EQ_INT(ftruncate(wfd, 100000), 0);
        long got = read_to_end(fd, 5000);
        ASSERT_TRUE(got >= 0 && got < HUGE_LEN);
        close(fd);
    }
    close(wfd);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/bin/shrinks", root);
    unlink(path);
    ASSERT_EQ_INT(get_status(port, "/data/a/hello.txt", r), 200);
}

#define MANY 300

static void test_many_connections(uint16_t port, struct reply *r)
{
    static int fds[MANY];
    int open_ok = 0, served = 0;
    for (int i = 0; i < MANY; i++) {
        fds[i] = connect_to(AF_INET, port);
        if (fds[i] >= 0) open_ok++;
    }
    for (int i = 0; i < MANY; i++)
        if (fds[i] >= 0)
            send_text(fds[i], i % 2 ? "GET /data/a/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                                    : "GET /data/bin/blob HTTP/1.1\r\nHost: x\r\n\r\n");
    for (int i = 0; i < MANY; i++) {
        if (fds[i] < 0) continue;
        if (read_reply(fds[i], false, r) == 0 && r->status == 200 &&
            r->body_len == (i % 2 ? 12 : BLOB_LEN))
            served++;
        close(fds[i]);
    }
    ASSERT_EQ_INT(open_ok, MANY);
    ASSERT_EQ_INT(served, MANY);
}

/* Over the connection limit, clients wait in the backlog and are served as others close. */
static void test_connection_limit(struct httpd *h, uint16_t port, struct reply *r)
{
    httpd_set_limits(h, &(struct httpd_limits){.max_conns = 4});
    int fds[12], served = 0;
    for (int i = 0; i < 12; i++)
        fds[i] = connect_send(port, "GET /data/a/hello.txt HTTP/1.1\r\nHost: x\r\n"
                                    "Connection: close\r\n\r\n");
    for (int i = 0; i < 12; i++) {
        if (fds[i] < 0) continue;
        if (read_reply(fds[i], false, r) == 0 && r->status == 200) served++;
        close(fds[i]);
    }
    ASSERT_EQ_INT(served, 12);
    httpd_set_limits(h, &(struct httpd_limits){.max_conns = 1024});
}

/* The highest descriptor open in this process. */
static int highest_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    int max = 2;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        long v = strtol(e->d_name, NULL, 10);
        if (v > max) max = (int)v;
    }
    if (d) closedir(d);
    return max;
}

/* Out of descriptors, the server stops accepting for a while instead of spinning, and serves the
 * waiting clients once descriptors are back. */
static void test_out_of_descriptors(uint16_t port, struct reply *r)
{
    struct rlimit old, low;
    ASSERT_EQ_INT(getrlimit(RLIMIT_NOFILE, &old), 0);
    int fds[4];
    low = old;
    low.rlim_cur = (rlim_t)highest_fd() + 1 + 4; /* room for the clients, none for accept */
    ASSERT_EQ_INT(setrlimit(RLIMIT_NOFILE, &low), 0);
    static int fillers[4096];
    int nfill = 0;
    for (int i = 0; i < 4; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_TRUE(fds[i] >= 0);
    }
    /* Every free number under the limit taken, so that the server's accept gets EMFILE. */
    while (nfill < 4096 && (fillers[nfill] = dup(0)) >= 0)
        nfill++;
    ASSERT_TRUE(nfill < 4096);
    for (int i = 0; i < 4; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fds[i] >= 0 && connect(fds[i], (struct sockaddr *)&sa, sizeof sa) == 0)
            send_text(fds[i], "GET /data/a/hello.txt HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n");
    }
    usleep(300 * 1000);
    while (nfill > 0)
        close(fillers[--nfill]);
    ASSERT_EQ_INT(setrlimit(RLIMIT_NOFILE, &old), 0);
    struct timeval tv = {.tv_sec = 5};
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0) setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int served = 0;
    for (int i = 0; i < 4; i++) {
        if (fds[i] < 0) continue;
        if (read_reply(fds[i], false, r) == 0 && r->status == 200) served++;
        close(fds[i]);
    }
    ASSERT_EQ_INT(served, 4);
}

static void test_timeouts(struct httpd *h, uint16_t port, struct reply *r)
{
    httpd_set_limits(h, &(struct httpd_limits){.idle_ms = 600, .head_ms = 300});
    /* A head trickling in (slowloris) is cut at head_ms though bytes keep coming: a byte every
     * 50 ms keeps the idle deadline away, so only the head's can close it while it trickles.
     * (The new limits apply from the server's next sweep, up to a second away: hence 4 s.) */
    int fd = connect_send(port, "GET /data/a/hel");
    ASSERT_TRUE(fd >= 0);
    bool closed = false;
    for (int i = 0; i < 80 && fd >= 0 && !closed; i++) {
        usleep(50 * 1000);
        closed = send(fd, "l", 1, MSG_NOSIGNAL) < 0;
    }
    ASSERT_TRUE(closed);
    if (fd >= 0) close(fd);
    /* A connection that says nothing at all, and an idle keep-alive one. */
    fd = connect_to(AF_INET, port);
    ASSERT_TRUE(fd >= 0 && closed_within(fd, 2000));
    if (fd >= 0) close(fd);
    fd = -1;
    ASSERT_EQ_INT(exchange(port, "GET /data/empty HTTP/1.1\r\nHost: x\r\n\r\n", false, r, &fd),
                  200);
    usleep(300 * 1000); /* under idle_ms: still open */
    ASSERT_EQ_INT(send_text(fd, "GET /data/empty HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    ASSERT_EQ_INT(read_reply(fd, false, r), 0);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_TRUE(closed_within(fd, 3000));
    close(fd);
    /* A client that stops reading a huge answer is dropped after idle_ms. */
    int wfd = write_huge("bin/huge");
    ASSERT_TRUE(wfd >= 0);
    if (wfd >= 0) close(wfd);
    fd = connect_small_window(port);
    if (fd >= 0) {
        ASSERT_EQ_INT(send_text(fd, "GET /data/bin/huge HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
        usleep(2000 * 1000);
        long got = read_to_end(fd, 3000); /* what was in flight, then the end */
        ASSERT_TRUE(got >= 0 && got < HUGE_LEN);
        close(fd);
    }
    httpd_set_limits(h, &(struct httpd_limits){.idle_ms = 60000, .head_ms = 10000});
}

/* Stopping with connections open (idle, mid-head, mid-answer) closes them and returns. */
static void test_stop_with_open_connections(struct httpd **h, uint16_t port)
{
    int fds[3];
    fds[0] = connect_to(AF_INET, port);
    fds[1] = connect_send(port, "GET /data/a");
    fds[2] = connect_send(port, "GET /data/bin/large HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0);
    usleep(100 * 1000);
    httpd_stop(h);
    ASSERT_TRUE(*h == NULL);
    for (int i = 0; i < 3; i++) {
        if (fds[i] < 0) continue;
        ASSERT_TRUE(closed_within(fds[i], 2000));
        close(fds[i]);
    }
}

static void test_listen_errors(struct tree *t, uint16_t port)
{
    enum wm_err err = WM_OK;
    char listen[64];
    ASSERT_TRUE(httpd_start("nonsense", t, "/data", &err) == NULL);
    ASSERT_EQ_INT(err, WM_ERR_INVAL);
    ASSERT_TRUE(httpd_start("127.0.0.1:99999", t, "/data", &err) == NULL);
    ASSERT_EQ_INT(err, WM_ERR_INVAL);
    ASSERT_TRUE(httpd_start("127.0.0.1:8x", t, "/data", &err) == NULL);
    ASSERT_TRUE(httpd_start("::1:80", t, "/data", &err) == NULL);
    ASSERT_EQ_INT(err, WM_ERR_INVAL);
    ASSERT_TRUE(httpd_start("127.0.0.1:0", NULL, "/data", &err) == NULL);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)port);
    ASSERT_TRUE(httpd_start(listen, t, "/data", &err) == NULL); /* port taken */
    ASSERT_EQ_INT(err, WM_ERR_IO);
}

static void test_ipv6_and_root_prefix(struct tree *t, struct reply *r)
{
    enum wm_err err = WM_OK;
    struct httpd *h = httpd_start("[::1]:0", t, "/", &err);
    if (!h) {
        fprintf(stderr, "no IPv6 loopback here (%s): IPv6 not tested\n", wm_strerror(err));
        return;
    }
    ASSERT_TRUE(httpd_port(h) != 0);
    int fd = connect_to(AF_INET6, httpd_port(h));
    ASSERT_TRUE(fd >= 0);
    if (fd >= 0) {
        ASSERT_EQ_INT(send_text(fd, "GET /a/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
        ASSERT_EQ_INT(read_reply(fd, false, r), 0);
        ASSERT_EQ_INT(r->status, 200);
        ASSERT_EQ_STR(r->body, "hello world\n");
        ASSERT_EQ_INT(send_text(fd, "GET /../a/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
        ASSERT_EQ_INT(read_reply(fd, false, r), 0);
        ASSERT_EQ_INT(r->status, 404);
        close(fd);
    }
    httpd_stop(&h);
    ASSERT_TRUE(h == NULL);
}

int main(void)
{
    snprintf(base, sizeof base, "/tmp/wmesh-httpd-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(root, sizeof root, "%s/tree", base);
    snprintf(outside, sizeof outside, "%s/outside", base);
    mkdir(outside, 0755);
    struct reply r;
    r.body = malloc(BODY_MAX);
    large = malloc(LARGE_LEN);
    ASSERT_TRUE(large != NULL);
    if (!large) return TEST_REPORT();
    struct tree *t = tree_open(root);
    ASSERT_TRUE(t != NULL && r.body != NULL);
    if (!t || !r.body) return TEST_REPORT();
    tree_set_sync(t, false);
    build_tree(t);

    enum wm_err err = WM_ERR_LIB;
    struct httpd *h = httpd_start("127.0.0.1:0", t, "/data/", &err);
    ASSERT_TRUE(h != NULL);
    ASSERT_EQ_INT(err, WM_OK);
    if (h) {
        uint16_t port = httpd_port(h);
        ASSERT_TRUE(port != 0);
        test_files(port, &r);
        test_refusals(port, &r);
        test_tmp_not_served(t, port, &r);
        test_methods_and_pages(h, port, &r);
        test_handlers(h, port, &r);
        test_keep_alive(port, &r);
        test_pipelining(port, &r);
        test_http10(port, &r);
        test_heads_and_bodies(port, &r);
        test_malformed(port, &r);
        test_oversized(port, &r);
        test_large_file(port, &r);
        test_disconnects(port, &r);
        test_shrinking_file(port, &r);
        test_many_connections(port, &r);
        test_connection_limit(h, port, &r);
        test_out_of_descriptors(port, &r);
        test_timeouts(h, port, &r);
        test_listen_errors(t, port);
        test_stop_with_open_connections(&h, port);
        httpd_stop(&h);
        ASSERT_TRUE(h == NULL);
        httpd_stop(&h);
    }
    test_ipv6_and_root_prefix(t, &r);
    tree_close(&t);
    free(r.body);
    free(large);
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return TEST_REPORT();
}
