/* delayproxy.c: a TCP proxy for tests that makes a link slow: latency, a bandwidth cap, a pause. */
/*
 * Usage: delayproxy --listen HOST:PORT --connect HOST:PORT [--delay-ms MS] [--rate BYTES_PER_S]
 *                   [--pause FILE] [--handshake] [--count FILE]
 *
 * Accepts connections on --listen and connects each to --connect (this kernel has no netem, so
 * tests slow a broker link down in user space). Each direction of each connection, in a thread
 * of its own:
 *   --delay-ms MS  holds every byte MS milliseconds before passing it on (one-way latency)
 *   --rate B       passes on at most B bytes a second (0: no cap); it reads no faster than
 *                  that, so the sender's socket buffer fills and it feels the back-pressure
 *   --pause FILE   while FILE exists nothing is read or passed on, either way (connections are
 *                  still accepted and connected); everything resumes when FILE goes
 *   --handshake    the client's first bytes reach the server no sooner than three delays after
 *                  it connected, as if its connect had taken a round trip over the slow link
 *                  (the kernel completes the handshake with this proxy at once)
 *   --count FILE   FILE holds the number of connections accepted so far, rewritten at each one
 * A connection ends when either side closes it (what the other had sent is passed on first,
 * unless the pause holds it) or fails. One line per connection on stderr when it ends:
 *   delayproxy: connection 3 from 127.0.0.1:51234 closed after 12.3 s: 4096 bytes up, 512 down
 */
#include <errno.h>
#include <fcntl.h>
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 16384
#define QUEUE_MIN (64 * 1024) /* bytes held per direction, beyond what the latency needs */
#define PAUSE_CHECK_MS 50     /* how often the pause file is looked for while idle or paused */

static const char *connect_host, *connect_port, *pause_file;
static int64_t delay_ns;
static double rate;    /* bytes per second, 0: no cap */
static bool handshake; /* model the TCP handshake's round trip (--handshake) */
static int count_fd = -1;

/* One line on stderr in a single write, so threads never interleave. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "delayproxy: ");
    va_list ap;
    va_start(ap, fmt);
    if (n > 0) n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(2, line, (size_t)n);
    (void)w;
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static bool paused(void)
{
    return pause_file && access(pause_file, F_OK) == 0;
}

/* Bytes read from one side, waiting for their time to go to the other. */
struct chunk {
    struct chunk *next;
    int64_t due_ns;
    size_t len, off;
    char data[];
};

struct conn;

struct pump {
    struct conn *c;
    int from, to;
    uint64_t moved;        /* bytes passed on */
    int64_t not_before_ns; /* no byte goes out before this (--handshake) */
    const char *name;
};

struct conn {
    unsigned id;
    int client, server;
    char peer[128];
    struct pump up, down;
};

/* Ends both directions: the other thread's poll wakes with an error or end of file. */
static void cut(struct conn *c)
{
    shutdown(c->client, SHUT_RDWR);
    shutdown(c->server, SHUT_RDWR);
}

/* Writes what is due and the rate allows from the head of the queue. Returns -1 on a write
 * error, else how long to wait (ns) before more can go; INT64_MAX when the queue is empty. */
static int64_t send_due(struct pump *p, struct chunk **head, size_t *queued, double *tokens,
                        int64_t *refilled_ns)
{
    while (*head) {
        struct chunk *k = *head;
        int64_t now = now_ns();
        if (k->due_ns > now) return k->due_ns - now;
        size_t n = k->len - k->off;
        if (rate > 0) {
            *tokens += (double)(now - *refilled_ns) / 1e9 * rate;
            *refilled_ns = now;
            double burst = rate / 20 > READ_CHUNK ? rate / 20 : READ_CHUNK;
            if (*tokens > burst) *tokens = burst;
            /* Small writes are wasteful: wait for a hundredth of a second's worth. */
            double quantum = rate / 100 < 1 ? 1 : rate / 100;
            if (quantum > (double)n) quantum = (double)n;
            if (*tokens < quantum) return (int64_t)((quantum - *tokens) / rate * 1e9) + 1;
            if ((double)n > *tokens) n = (size_t)*tokens;
        }
        ssize_t w = send(p->to, k->data + k->off, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        if (rate > 0) *tokens -= (double)w;
        k->off += (size_t)w;
        p->moved += (uint64_t)w;
        *queued -= (size_t)w;
        if (k->off == k->len) {
            *head = k->next;
            free(k);
        }
    }
    return INT64_MAX;
}

static void *pump_run(void *arg)
{
    struct pump *p = arg;
    struct chunk *head = NULL, **tail = &head;
    size_t queued = 0;
    double tokens = 0;
    int64_t refilled_ns = now_ns();
    bool eof = false;
    /* Enough for the bytes the latency holds at the capped rate (or at a generous 64 MB/s). */
    size_t cap = QUEUE_MIN + (size_t)((rate > 0 ? rate : 64e6) * (double)delay_ns / 1e9);
    for (;;) {
        int64_t wait_ns = INT64_MAX;
        bool hold = paused();
        if (!hold) {
            wait_ns = send_due(p, &head, &queued, &tokens, &refilled_ns);
            if (wait_ns < 0) break;
            if (!head) tail = &head;
            if (eof && !head) {
                shutdown(p->to, SHUT_WR);
                p = NULL;
                break;
            }
        }
        struct pollfd fd = {.fd = p->from,
                            .events = (short)(!eof && !hold && queued < cap ? POLLIN : 0)};
        int64_t ms = wait_ns == INT64_MAX ? PAUSE_CHECK_MS : wait_ns / 1000000 + 1;
        if (ms > PAUSE_CHECK_MS) ms = PAUSE_CHECK_MS;
        int r = poll(&fd, fd.events ? 1 : 0, (int)ms);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0 || !(fd.revents & (POLLIN | POLLHUP | POLLERR))) continue;
        size_t room = cap - queued < READ_CHUNK ? cap - queued : READ_CHUNK;
        struct chunk *k = malloc(sizeof *k + room);
        if (!k) break;
        ssize_t n = recv(p->from, k->data, room, 0);
        if (n <= 0) {
            free(k);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) break;
            eof = true;
            continue;
        }
        k->next = NULL;
        k->len = (size_t)n;
        k->off = 0;
        k->due_ns = now_ns() + delay_ns;
        if (k->due_ns < p->not_before_ns) k->due_ns = p->not_before_ns;
        *tail = k;
        tail = &k->next;
        queued += (size_t)n;
    }
    /* p is NULL after an orderly end of this direction; else both directions end now. */
    if (p) cut(p->c);
    while (head) {
        struct chunk *k = head;
        head = k->next;
        free(k);
    }
    return NULL;
}

/* Rewrites the count file in one write of a fixed width, so a reader never sees half of it. */
static bool write_count(unsigned n)
{
    if (count_fd < 0) return true;
    char text[16];
    int len = snprintf(text, sizeof text, "%10u\n", n);
    return pwrite(count_fd, text, (size_t)len, 0) == len;
}

static int connect_server(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    if (getaddrinfo(connect_host, connect_port, &hints, &res) != 0) return -1;
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void *conn_run(void *arg)
{
    struct conn *c = arg;
    int64_t start = now_ns();
    c->server = connect_server();
    if (c->server < 0) {
        say("connection %u from %s: cannot connect to %s:%s: %s", c->id, c->peer, connect_host,
            connect_port, strerror(errno));
        close(c->client);
        free(c);
        return NULL;
    }
    c->up = (struct pump){.c = c, .from = c->client, .to = c->server, .name = "up"};
    if (handshake) c->up.not_before_ns = start + 3 * delay_ns;
    c->down = (struct pump){.c = c, .from = c->server, .to = c->client, .name = "down"};
    pthread_t down;
    if (pthread_create(&down, NULL, pump_run, &c->down) != 0) {
        say("connection %u from %s: no thread: dropped", c->id, c->peer);
    } else {
        pump_run(&c->up);
        pthread_join(down, NULL);
    }
    say("connection %u from %s closed after %.1f s: %llu bytes up, %llu down", c->id, c->peer,
        (double)(now_ns() - start) / 1e9, (unsigned long long)c->up.moved,
        (unsigned long long)c->down.moved);
    close(c->client);
    close(c->server);
    free(c);
    return NULL;
}

static int listen_on(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *res, *ai;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0) return -1;
    int fd = -1, one = 1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Splits "HOST:PORT" in place at its last ':'. */
static bool split_hostport(char *s, const char **host, const char **port)
{
    char *colon = strrchr(s, ':');
    if (!colon || !colon[1]) return false;
    *colon = '\0';
    *host = s;
    *port = colon + 1;
    return true;
}

static bool number(const char *text, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || v < 0 || v > max) return false;
    *out = v;
    return true;
}

static void usage(void)
{
    fputs("usage: delayproxy --listen HOST:PORT --connect HOST:PORT [--delay-ms MS]\n"
          "                  [--rate BYTES_PER_S] [--pause FILE] [--handshake] [--count FILE]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    char *listen_arg = NULL, *connect_arg = NULL;
    const char *listen_host, *listen_port;
    double delay_ms = 0;
    const char *count_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--handshake") == 0) {
            handshake = true;
            continue;
        }
        if (i + 1 >= argc) usage();
        if (strcmp(argv[i], "--listen") == 0)
            listen_arg = argv[++i];
        else if (strcmp(argv[i], "--connect") == 0)
            connect_arg = argv[++i];
        else if (strcmp(argv[i], "--pause") == 0)
            pause_file = argv[++i];
        else if (strcmp(argv[i], "--count") == 0)
            count_file = argv[++i];
        else if (strcmp(argv[i], "--delay-ms") == 0 && number(argv[i + 1], 600000, &delay_ms))
            i++;
        else if (strcmp(argv[i], "--rate") == 0 && number(argv[i + 1], 1e12, &rate))
            i++;
        else
            usage();
    }
    if (!listen_arg || !connect_arg || !split_hostport(listen_arg, &listen_host, &listen_port) ||
        !split_hostport(connect_arg, &connect_host, &connect_port))
        usage();
    delay_ns = (int64_t)(delay_ms * 1e6);
    signal(SIGPIPE, SIG_IGN);
    if (count_file &&
        ((count_fd = open(count_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 ||
         !write_count(0))) {
        fprintf(stderr, "delayproxy: %s: %s\n", count_file, strerror(errno));
        return 1;
    }
    int lfd = listen_on(listen_host, listen_port);
    if (lfd < 0) {
        fprintf(stderr, "delayproxy: cannot listen on %s:%s: %s\n", listen_host, listen_port,
                strerror(errno));
        return 1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (unsigned id = 1;; id++) {
        struct sockaddr_storage sa;
        socklen_t salen = sizeof sa;
        int fd = accept4(lfd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
            fprintf(stderr, "delayproxy: accept: %s\n", strerror(errno));
            return 1;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->id = id;
        c->client = fd;
        write_count(id);
        char host[64] = "?", port[16] = "?";
        getnameinfo((struct sockaddr *)&sa, salen, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(c->peer, sizeof c->peer, "%s:%s", host, port);
        pthread_t t;
        if (pthread_create(&t, &attr, conn_run, c) != 0) {
            say("connection %u from %s: no thread: dropped", id, c->peer);
            close(fd);
            free(c);
        }
    }
}
