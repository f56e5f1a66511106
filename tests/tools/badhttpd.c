/* badhttpd.c: a small HTTP/1.1 file server for tests that misbehaves on request, per path. */
/*
 * Usage: badhttpd --dir DIR --listen HOST:PORT [--faults FILE] [--prefix /PATH]
 *
 * Serves the regular files of DIR (GET and HEAD; URL path = PREFIX + "/" + path in DIR), one
 * thread per connection, keep-alive when the client asks for it. Before each request it re-reads
 * FILE (absent: no faults): lines "PATTERN MODE", '#' starts a comment, the first line whose
 * fnmatch(3) PATTERN matches the path relative to DIR (no leading '/'; '*' also matches '/')
 * decides. MODE:
 *   ok        the file, as it is
 *   500, 404  that status and a short body
 *   truncate  the right Content-Length, half of the body, then the connection is closed
 *   stall     the right Content-Length, half of the body, then nothing, and no close either
 *   wrong     the right length, every byte of the body inverted
 *   slow      the file at 1 KiB/s
 * Prints nothing on success; logs one line per request on stderr, ending with the client's
 * User-Agent ("-" when it sent none):
 *   badhttpd: GET /data/a/b.txt mode=truncate status=200 bytes=512 agent=wmesh/0.9.0
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 16384 /* bytes of request line and headers */
#define CHUNK 16384
#define SLOW_STEP 256    /* bytes per step in slow mode */
#define SLOW_STEP_MS 250 /* so 1 KiB/s */
#define IDLE_TIMEOUT_MS 60000

enum mode { M_OK, M_500, M_404, M_TRUNCATE, M_STALL, M_WRONG, M_SLOW };

static const char *mode_names[] = {"ok", "500", "404", "truncate", "stall", "wrong", "slow"};

static int dirfd_root = -1;
static const char *faults_path;
static const char *prefix = "";
static size_t prefix_len;

/* One line on stderr in a single write, so threads never interleave. */
static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "badhttpd: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Sends all of buf; false when the peer went away. */
static bool send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* The mode for rel, from the fault file as it is now. */
static enum mode fault_for(const char *rel)
{
    if (!faults_path) return M_OK;
    FILE *f = fopen(faults_path, "re");
    if (!f) return M_OK;
    enum mode found = M_OK;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *save = NULL;
        char *pattern = strtok_r(line, " \t\r\n", &save);
        char *mode = pattern ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        if (!pattern || !mode) continue;
        if (fnmatch(pattern, rel, 0) != 0) continue;
        for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++)
            if (strcmp(mode, mode_names[i]) == 0) found = (enum mode)i;
        break;
    }
    fclose(f);
    return found;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes %XX in place; false on a bad escape or an encoded NUL. */
static bool url_decode(char *s)
{
    char *out = s;
    for (char *in = s; *in; in++) {
        if (*in == '%') {
            int hi = hexval(in[1]), lo = hi >= 0 ? hexval(in[2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
            *out++ = (char)(hi * 16 + lo);
            in += 2;
        } else {
            *out++ = *in;
        }
    }
    *out = '\0';
    return true;
}

/* True when no component of rel is "." or "..", or empty. */
static bool safe_rel(const char *rel)
{
    const char *p = rel;
    if (!*p) return false;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (!slash) return true;
        p = slash + 1;
    }
}

static bool send_status(int fd, int status, const char *reason, bool keep)
{
    char buf[512];
    char body[128];
    int bl = snprintf(body, sizeof body, "%d %s\n", status, reason);
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     "Connection: %s\r\n\r\n%s",
                     status, reason, bl, keep ? "keep-alive" : "close", body);
    if (n < 0 || (size_t)n >= sizeof buf) return false;
    return send_all(fd, buf, (size_t)n);
}

/* Waits without ever closing until the client goes away: what a hung server looks like. */
static void stall_forever(int fd)
{
    char sink[4096];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 1000);
        if (r < 0 && errno != EINTR) return;
        if (r > 0) {
            ssize_t n = recv(fd, sink, sizeof sink, 0);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;
        }
    }
}

/* Sends the body of the open file ffd (size bytes) as mode says. False: close the connection. */
static bool send_body(int fd, int ffd, off_t size, enum mode m, off_t *sent)
{
    char buf[CHUNK];
    off_t limit = (m == M_TRUNCATE || m == M_STALL) ? size / 2 : size;
    *sent = 0;
    while (*sent < limit) {
        size_t want = sizeof buf;
        if (m == M_SLOW) want = SLOW_STEP;
        if ((off_t)want > limit - *sent) want = (size_t)(limit - *sent);
        ssize_t n = pread(ffd, buf, want, *sent);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false; /* the file shrank: the length we sent is a lie now */
        if (m == M_WRONG)
            for (ssize_t i = 0; i < n; i++)
                buf[i] = (char)~buf[i];
        if (!send_all(fd, buf, (size_t)n)) return false;
        *sent += n;
        if (m == M_SLOW && *sent < limit) sleep_ms(SLOW_STEP_MS);
    }
    if (m == M_STALL) {
        logf_("stalling after %lld of %lld bytes", (long long)*sent, (long long)size);
        stall_forever(fd);
        return false;
    }
    return m != M_TRUNCATE;
}

/* Answers one parsed request. False: close the connection. */
static bool answer(int fd, const char *method, char *target, const char *agent, bool keep)
{
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        logf_("%s %s status=405 agent=%s", method, target, agent);
        send_status(fd, 405, "Method Not Allowed", false);
        return false;
    }
    char *q = strpbrk(target, "?#");
    if (q) *q = '\0';
    if (!url_decode(target)) {
        logf_("%s %s status=400 agent=%s", method, target, agent);
        return send_status(fd, 400, "Bad Request", keep) && keep;
    }
    const char *rel = target;
    if (prefix_len) {
        if (strncmp(rel, prefix, prefix_len) != 0 || rel[prefix_len] != '/')
            rel = NULL;
        else
            rel += prefix_len;
    }
    while (rel && *rel == '/')
        rel++;
    if (!rel || !safe_rel(rel)) {
        logf_("%s %s status=404 agent=%s", method, target, agent);
        return send_status(fd, 404, "Not Found", keep) && keep;
    }
    enum mode m = fault_for(rel);
    if (m == M_500 || m == M_404) {
        logf_("%s %s mode=%s status=%s agent=%s", method, target, mode_names[m], mode_names[m],
              agent);
        return m == M_500 ? send_status(fd, 500, "Internal Server Error", keep) && keep
                          : send_status(fd, 404, "Not Found", keep) && keep;
    }
    int ffd = openat(dirfd_root, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (ffd < 0 || fstat(ffd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (ffd >= 0) close(ffd);
        logf_("%s %s mode=%s status=404 agent=%s", method, target, mode_names[m], agent);
        return send_status(fd, 404, "Not Found", keep) && keep;
    }
    /* truncate and stall close (or hang) this connection: never promise to keep it. */
    if (m == M_TRUNCATE || m == M_STALL) keep = false;
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %lld\r\nConnection: %s\r\n\r\n",
                     (long long)st.st_size, keep ? "keep-alive" : "close");
    bool ok = n > 0 && (size_t)n < sizeof hdr && send_all(fd, hdr, (size_t)n);
    off_t sent = 0;
    if (ok && !head) ok = send_body(fd, ffd, st.st_size, m, &sent);
    close(ffd);
    logf_("%s %s mode=%s status=200 bytes=%lld/%lld agent=%s", method, target, mode_names[m],
          (long long)sent, (long long)st.st_size, agent);
    return ok && keep;
}

/* Reads one request head into buf (NUL-terminated); returns its length, 0 at EOF or error.
 * *have holds bytes already buffered; leftovers after the head are kept for the next call. */
static size_t read_head(int fd, char *buf, size_t *have)
{
    for (;;) {
        buf[*have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end) return (size_t)(end - buf) + 4;
        if (*have >= HEAD_MAX) return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, IDLE_TIMEOUT_MS);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        ssize_t n = recv(fd, buf + *have, HEAD_MAX - *have, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        *have += (size_t)n;
    }
}

static bool header_says(const char *head, const char *name, const char *value)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            const char *v = h + nl + 1;
            const char *eol = strstr(v, "\r\n");
            size_t vl = strlen(value);
            for (; v + vl <= eol; v++)
                if (strncasecmp(v, value, vl) == 0) return true;
        }
    }
    return false;
}

/* Copies the value of header name (first occurrence, spaces trimmed) into out; "-" if absent. */
static void header_value(const char *head, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    snprintf(out, outlen, "-");
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, nl) != 0 || h[nl] != ':') continue;
        const char *v = h + nl + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        const char *eol = strstr(v, "\r\n");
        int n = eol ? (int)(eol - v) : (int)strlen(v);
        if (n > 0) snprintf(out, outlen, "%.*s", n, v);
        return;
    }
}

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(HEAD_MAX + 1);
    size_t have = 0;
    while (buf) {
        size_t len = read_head(fd, buf, &have);
        if (len == 0) break;
        char head[HEAD_MAX + 1];
        memcpy(head, buf, len);
        head[len] = '\0';
        memmove(buf, buf + len, have - len);
        have -= len;
        /* Request line: METHOD SP TARGET SP VERSION. */
        char method[16], target[4096], version[16];
        char *sp1 = strchr(head, ' ');
        char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
        char *eol = strstr(head, "\r\n");
        if (!sp1 || !sp2 || !eol || sp2 > eol || (size_t)(sp1 - head) >= sizeof method ||
            (size_t)(sp2 - sp1 - 1) >= sizeof target || (size_t)(eol - sp2 - 1) >= sizeof version) {
            logf_("bad request line");
            send_status(fd, 400, "Bad Request", false);
            break;
        }
        memcpy(method, head, (size_t)(sp1 - head));
        method[sp1 - head] = '\0';
        memcpy(target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
        target[sp2 - sp1 - 1] = '\0';
        memcpy(version, sp2 + 1, (size_t)(eol - sp2 - 1));
        version[eol - sp2 - 1] = '\0';
        bool keep = strcmp(version, "HTTP/1.1") == 0
                        ? !header_says(head, "Connection", "close")
                        : header_says(head, "Connection", "keep-alive");
        /* Request bodies are not expected: refuse them rather than misparse the stream. */
        if (header_says(head, "Content-Length", "") && !header_says(head, "Content-Length", " 0"))
            keep = false;
        char agent[256];
        header_value(head, "User-Agent", agent, sizeof agent);
        if (!answer(fd, method, target, agent, keep)) break;
    }
    free(buf);
    close(fd);
    return NULL;
}

static int listen_on(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host) return -1;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res) != 0) return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: badhttpd --dir DIR --listen HOST:PORT [--faults FILE] [--prefix /PATH]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *listen_addr = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) usage();
        if (strcmp(argv[i], "--dir") == 0)
            dir = argv[++i];
        else if (strcmp(argv[i], "--listen") == 0)
            listen_addr = argv[++i];
        else if (strcmp(argv[i], "--faults") == 0)
            faults_path = argv[++i];
        else if (strcmp(argv[i], "--prefix") == 0)
            prefix = argv[++i];
        else
            usage();
    }
    if (!dir || !listen_addr) usage();
    prefix_len = strlen(prefix);
    while (prefix_len > 0 && prefix[prefix_len - 1] == '/')
        prefix_len--;
    signal(SIGPIPE, SIG_IGN);
    dirfd_root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd_root < 0) {
        fprintf(stderr, "badhttpd: cannot open %s: %s\n", dir, strerror(errno));
        return 1;
    }
    int lfd = listen_on(listen_addr);
    if (lfd < 0) {
        fprintf(stderr, "badhttpd: cannot listen on %s: %s\n", listen_addr, strerror(errno));
        return 1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) sleep_ms(100);
            continue;
        }
        pthread_t t;
        if (pthread_create(&t, &attr, serve_conn, (void *)(intptr_t)fd) != 0) close(fd);
    }
}
