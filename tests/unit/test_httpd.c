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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "httpd.h"
#include "test.h"
#include "tree.h"

#define BODY_MAX (1024 * 1024)
#define BLOB_LEN 300000 /* several sendfile rounds */

static char base[64];
static char root[128];
static char outside[128];
static unsigned char blob[BLOB_LEN];

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
    return tree_tmp_commit(t, &tmp, clean, NULL);
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
        test_keep_alive(port, &r);
        test_listen_errors(t, port);
        httpd_stop(&h);
        ASSERT_TRUE(h == NULL);
        httpd_stop(&h);
    }
    test_ipv6_and_root_prefix(t, &r);
    tree_close(&t);
    free(r.body);
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return TEST_REPORT();
}
