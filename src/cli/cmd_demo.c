/* cmd_demo.c: `wmesh demo`: three brokers and three peers on this machine, files injected at two
 * of them, and a table showing that every peer ends up holding every file. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker_conf.h"
#include "cli.h"
#include "fdio.h"
#include "fetch.h"
#include "mqtt_wire.h"
#include "options.h"
#include "prom_text.h"

#define NODES 3
#define ORIGINS 2           /* files are injected at the first ORIGINS nodes */
#define DEADLINE_S 120      /* for every file to reach every peer */
#define START_DEADLINE_S 15 /* for a broker or a peer to answer */
#define POST_BATCH 50       /* files per `wmesh post` run */
#define MAX_FILE_SIZE 65536
#define METRICS_CAP (1024 * 1024)
#define OWNER_USER BROKER_CONF_OWNER
#define OWNER_PASS "ownerpw"
#define GUEST_USER BROKER_CONF_GUEST
#define GUEST_PASS "guestpw"
#define SELF "/proc/self/exe" /* this very program, for the peers and `wmesh post` */

/* One site of the mesh: a broker, a peer and the peer's tree. */
struct node {
    const char *name;
    char dir[PATH_MAX];  /* <root>/<name>: broker files, tree, state */
    char tree[PATH_MAX]; /* what the peer serves */
    uint16_t mqtt_port;
    uint16_t http_port;
    pid_t broker_pid; /* 0 when not running */
    pid_t peer_pid;
};

struct demo_file {
    char rel[160];
    int origin; /* index of the node it was injected at */
};

struct demo {
    char root[PATH_MAX];
    char mosquitto[PATH_MAX];
    char mosquitto_passwd[PATH_MAX];
    bool keep;
    size_t nfiles;
    struct demo_file *files;
    struct node nodes[NODES];
};

static const char *const node_names[NODES] = {"AWZZ", "BWAC", "CWAP"};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* SIGINT and SIGTERM only raise a flag (and interrupt sleeps), so that clean-up always runs. */
static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* snprintf that reports truncation (and errors) as failure. */
static bool bformat(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool bformat(char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < outlen;
}

static bool write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    bool written = fdio_write_all(fd, data, len) >= 0;
    return close(fd) == 0 && written;
}

/* mkdir -p for the parents of path (path itself excluded). */
static bool make_parents(const char *path)
{
    char buf[PATH_MAX];
    if (!bformat(buf, sizeof buf, "%s", path)) return false;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return false;
        *p = '/';
    }
    return true;
}

/* Finds an executable in $PATH, then in the sbin directories a normal user's PATH may lack. */
static bool find_program(const char *name, char *out, size_t outlen)
{
    const char *env = getenv("PATH");
    char dirs[4096];
    if (!bformat(dirs, sizeof dirs, "%s:/usr/sbin:/usr/local/sbin:/sbin", env ? env : "/usr/bin"))
        return false;
    for (const char *d = dirs; *d;) {
        size_t len = strcspn(d, ":");
        if (len > 0 && bformat(out, outlen, "%.*s/%s", (int)len, d, name) && access(out, X_OK) == 0)
            return true;
        d += len + (d[len] == ':');
    }
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Child processes */

/* Runs program path with argv, stdout and stderr appended to log, in its own process group (so a
 * Ctrl-C reaches only us and we stop the children in order), killed if we die. cwd may be NULL.
 * Returns the pid, or -1. */
static pid_t spawn(const char *path, char *const argv[], const char *log, const char *cwd)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;

    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL); /* ignored by wmesh (wmesh.c), not to be inherited through exec */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    int in = open("/dev/null", O_RDONLY);
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(127);
    if (cwd && chdir(cwd) != 0) _exit(127);
    execv(path, argv);
    dprintf(2, "demo: cannot run %s: %s\n", path, strerror(errno));
    _exit(127);
}

/* Runs path to completion; true when it exits with status 0. */
static bool run(const char *path, char *const argv[], const char *log, const char *cwd)
{
    pid_t pid = spawn(path, argv, log, cwd);
    if (pid < 0) return false;
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return false;
        if (stop_requested) kill(pid, SIGTERM);
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* True while pid runs; reaps it (and sets *pid to 0) once it has exited. */
static bool child_alive(pid_t *pid)
{
    if (*pid <= 0) return false;
    if (waitpid(*pid, NULL, WNOHANG) == 0) return true;
    *pid = 0;
    return false;
}

/* Sends SIGTERM to each child, waits up to 5 s for all of them, then kills the rest. */
static void stop_children(pid_t *pids[], size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (*pids[i] > 0) kill(*pids[i], SIGTERM);
    double deadline = now_s() + 5;
    for (;;) {
        bool any = false;
        for (size_t i = 0; i < n; i++)
            any |= child_alive(pids[i]);
        if (!any) return;
        if (now_s() > deadline) break;
        sleep_ms(50);
    }
    for (size_t i = 0; i < n; i++) {
        if (*pids[i] <= 0) continue;
        fprintf(stderr, "demo: pid %d ignored SIGTERM, killing it\n", (int)*pids[i]);
        kill(*pids[i], SIGKILL);
        waitpid(*pids[i], NULL, 0);
        *pids[i] = 0;
    }
}

/* Peers first, so that they never see their brokers vanish under them. */
static void stop_all(struct demo *d)
{
    pid_t *peers[NODES], *brokers[NODES];
    for (int i = 0; i < NODES; i++) {
        peers[i] = &d->nodes[i].peer_pid;
        brokers[i] = &d->nodes[i].broker_pid;
    }
    stop_children(peers, NODES);
    stop_children(brokers, NODES);
}

/* ------------------------------------------------------------------------------------------ */
/* Brokers */

/* Asks the kernel for a free TCP port on 127.0.0.1 (it may be taken again before we use it,
 * which start-up then reports). Returns 0 on failure. */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* Sends an MQTT 3.1.1 CONNECT with the owner's credentials and reads the CONNACK: true when the
 * broker is up and accepts them, which proves the password file too. */
static bool broker_accepts(uint16_t port)
{
    struct buf pkt = {0};
    struct mqtt_connect c = {.version = MQTT_LEVEL_311,
                             .client_id = "wmesh-demo-probe",
                             .clean_start = true,
                             .keepalive_s = 10,
                             .username = OWNER_USER,
                             .password = OWNER_PASS};
    if (mqtt_wire_connect(&pkt, &c) != WM_OK ||
        mqtt_wire_disconnect(&pkt, MQTT_LEVEL_311) != WM_OK) {
        buf_free(&pkt);
        return false;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = false;
    if (fd >= 0) {
        struct timeval tv = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        unsigned char ack[4];
        struct mqtt_packet p;
        size_t used = 0;
        /* CONNECT and DISCONNECT go together: the broker answers the first before the second. */
        ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
             send(fd, pkt.data, pkt.len, MSG_NOSIGNAL) == (ssize_t)pkt.len &&
             recv(fd, ack, sizeof ack, MSG_WAITALL) == 4 &&
             mqtt_wire_parse(ack, sizeof ack, MQTT_LEVEL_311, sizeof ack, &p, &used, NULL, 0) ==
                 WM_OK &&
             p.type == MQTT_CONNACK && p.reason == 0;
        close(fd);
    }
    buf_free(&pkt);
    return ok;
}

/* Writes what broker_conf renders for c (its ACL when acl) into path. */
static bool write_conf(const char *path, const struct broker_conf *c, bool acl)
{
    FILE *f = fopen(path, "we");
    if (!f) return false;
    enum wm_err e = acl ? broker_conf_write_acl(c, f) : broker_conf_write(c, f);
    return fclose(f) == 0 && e == WM_OK;
}

/* Writes the password file (owner publishes, guest reads), the ACL and mosquitto.conf. */
static bool write_broker_config(const struct demo *d, const struct node *nd)
{
    char passwd[PATH_MAX], acl[PATH_MAX], conf[PATH_MAX], db[PATH_MAX], log[PATH_MAX];
    if (!bformat(passwd, sizeof passwd, "%s/passwd", nd->dir) ||
        !bformat(acl, sizeof acl, "%s/acl", nd->dir) ||
        !bformat(conf, sizeof conf, "%s/mosquitto.conf", nd->dir) ||
        !bformat(db, sizeof db, "%s/db/", nd->dir) ||
        !bformat(log, sizeof log, "%s/setup.log", d->root))
        return false;
    if (mkdir(db, 0755) != 0 && errno != EEXIST) return false;

    char *owner[] = {"mosquitto_passwd", "-b", "-c", passwd, OWNER_USER, OWNER_PASS, NULL};
    char *guest[] = {"mosquitto_passwd", "-b", passwd, GUEST_USER, GUEST_PASS, NULL};
    if (!run(d->mosquitto_passwd, owner, log, NULL) || !run(d->mosquitto_passwd, guest, log, NULL))
        return false;

    /* If started as root, mosquitto would switch to the user "mosquitto", who cannot read our
     * files: ask it to stay who we are. Its log goes to stderr, which spawn sends to a file. */
    const struct passwd *pw = getpwuid(geteuid());
    struct broker_conf c;
    broker_conf_init(&c);
    c.host = "127.0.0.1";
    c.port = nd->mqtt_port;
    c.password_file = passwd;
    c.acl_file = acl;
    c.persistence_dir = db;
    c.log_file = "-";
    c.run_as = pw ? pw->pw_name : NULL;
    c.owner = OWNER_USER;
    c.guest = GUEST_USER;
    return write_conf(acl, &c, true) && write_conf(conf, &c, false);
}

/* Waits until check(port) holds while *pid lives, for START_DEADLINE_S at most. */
static bool wait_ready(pid_t *pid, uint16_t port, bool (*check)(uint16_t))
{
    double deadline = now_s() + START_DEADLINE_S;
    while (!stop_requested && now_s() < deadline) {
        if (!child_alive(pid)) return false;
        if (check(port)) return true;
        sleep_ms(100);
    }
    return false;
}

static bool start_broker(struct demo *d, struct node *nd)
{
    char conf[PATH_MAX], log[PATH_MAX];
    nd->mqtt_port = free_port();
    if (!nd->mqtt_port || !write_broker_config(d, nd) ||
        !bformat(conf, sizeof conf, "%s/mosquitto.conf", nd->dir) ||
        !bformat(log, sizeof log, "%s/%s-mosquitto.log", d->root, nd->name)) {
        fprintf(stderr, "demo: cannot configure the broker of %s\n", nd->name);
        return false;
    }
    char *argv[] = {"mosquitto", "-c", conf, NULL};
    nd->broker_pid = spawn(d->mosquitto, argv, log, NULL);
    if (nd->broker_pid < 0 || !wait_ready(&nd->broker_pid, nd->mqtt_port, broker_accepts)) {
        fprintf(stderr, "demo: the broker of %s did not start; see %s\n", nd->name, log);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Peers */

static bool broker_url(const struct node *nd, const char *user, const char *pass, char *out,
                       size_t outlen)
{
    return bformat(out, outlen, "mqtt://%s:%s@127.0.0.1:%u", user, pass, (unsigned)nd->mqtt_port);
}

static bool base_url(const struct node *nd, char *out, size_t outlen)
{
    return bformat(out, outlen, "http://127.0.0.1:%u/data", (unsigned)nd->http_port);
}

static bool metrics_answer(uint16_t port)
{
    char url[64];
    char *body = NULL;
    size_t len = 0;
    long status = 0;
    if (!bformat(url, sizeof url, "http://127.0.0.1:%u/metrics", (unsigned)port)) return false;
    enum wm_err err = fetch_get_buffer(url, METRICS_CAP, &body, &len, &status);
    free(body);
    return err == WM_OK && status == 200;
}

/* Starts peer i, subscribed as guest to the two other brokers, announcing on its own as owner. */
static bool start_peer(struct demo *d, int i)
{
    struct node *nd = &d->nodes[i];
    const struct node *up1 = &d->nodes[(i + 1) % NODES], *up2 = &d->nodes[(i + 2) % NODES];
    char state[PATH_MAX], log[PATH_MAX], b1[128], b2[128], post[128], base[64], listen[32], id[32];
    nd->http_port = free_port();
    if (!nd->http_port || !bformat(state, sizeof state, "%s/state", nd->dir) ||
        !bformat(log, sizeof log, "%s/%s.log", d->root, nd->name) ||
        !broker_url(up1, GUEST_USER, GUEST_PASS, b1, sizeof b1) ||
        !broker_url(up2, GUEST_USER, GUEST_PASS, b2, sizeof b2) ||
        !broker_url(nd, OWNER_USER, OWNER_PASS, post, sizeof post) ||
        !base_url(nd, base, sizeof base) ||
        !bformat(listen, sizeof listen, "127.0.0.1:%u", (unsigned)nd->http_port) ||
        !bformat(id, sizeof id, "wmesh-demo-%s", nd->name))
        return false;
    /* clang-format off */
    char *argv[] = {"wmesh", "peer", "--name", (char *)nd->name,
                    "--dir", nd->tree, "--state-dir", state,
                    "--broker", b1, "--broker", b2,
                    "--post-broker", post, "--post-base-url", base,
                    "--http-listen", listen, "--client-id", id, NULL};
    /* clang-format on */
    nd->peer_pid = spawn(SELF, argv, log, NULL);
    if (nd->peer_pid < 0 || !wait_ready(&nd->peer_pid, nd->http_port, metrics_answer)) {
        fprintf(stderr, "demo: peer %s did not start; see %s\n", nd->name, log);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Files */

/* WMO-like names: <date>/WIS/<country>/<centre>/<kind>/<hour>/<TTAAii>_<CCCC>_<DDHHMM>___<n>. */
static void file_name(struct demo_file *f, size_t n, const char *date)
{
    static const char *const kinds[][2] = {{"UpperAir", "UANT01"}, {"Surface", "SACN31"},
                                           {"Radar", "RADAR1"},    {"GRIB", "HRPA85"},
                                           {"Marine", "SMVD21"},   {"Aviation", "FTCN31"}};
    static const char *const centres[ORIGINS][3] = {{"CA", "CMC", "CWAO"}, {"US", "NCEP", "KWBC"}};
    const char *const *kind = kinds[n % (sizeof kinds / sizeof kinds[0])];
    const char *const *centre = centres[f->origin];
    unsigned hour = (unsigned)(n % 24), minute = (unsigned)((n * 7) % 60);
    bformat(f->rel, sizeof f->rel, "%s/WIS/%s/%s/%s/%02u/%s_%s_%.2s%02u%02u___%05zu.txt", date,
            centre[0], centre[1], kind[0], hour, kind[1], centre[2], date + 6, hour, minute, n);
}

/* Random bytes of a varied size: some empty, many small, the rest up to 64 KiB. */
static bool fill_file(const char *path, size_t n)
{
    static unsigned char buf[MAX_FILE_SIZE];
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r) return false;
    size_t size = n % 10 == 0 ? 0 : n % 10 < 4 ? 1 + r % 1024 : 1 + r % MAX_FILE_SIZE;
    for (size_t done = 0; done < size;) {
        ssize_t got = getrandom(buf + done, size - done, 0);
        if (got <= 0) return false;
        done += (size_t)got;
    }
    return make_parents(path) && write_file(path, buf, size);
}

static bool make_files(struct demo *d)
{
    char date[16], path[PATH_MAX];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y%m%d", &tm);
    d->files = calloc(d->nfiles, sizeof *d->files);
    if (!d->files) return false;
    for (size_t n = 0; n < d->nfiles; n++) {
        if (stop_requested) return false;
        struct demo_file *f = &d->files[n];
        f->origin = (int)(n % ORIGINS);
        file_name(f, n + 1, date);
        if (!bformat(path, sizeof path, "%s/%s", d->nodes[f->origin].tree, f->rel) ||
            !fill_file(path, n + 1)) {
            fprintf(stderr, "demo: cannot write %s: %s\n", path, strerror(errno));
            return false;
        }
    }
    return true;
}

/* False (and says which) when a peer has exited. */
static bool peers_alive(struct demo *d)
{
    for (int i = 0; i < NODES; i++) {
        if (!child_alive(&d->nodes[i].peer_pid)) {
            fprintf(stderr, "demo: peer %s exited; see %s/%s.log\n", d->nodes[i].name, d->root,
                    d->nodes[i].name);
            return false;
        }
    }
    return true;
}

/* Announces the files injected at node o with `wmesh post`, POST_BATCH at a time. It runs in
 * the tree, so relPaths are valid file names there. */
static bool post_files(struct demo *d, int o)
{
    struct node *nd = &d->nodes[o];
    char url[128], base[64], log[PATH_MAX];
    if (!broker_url(nd, OWNER_USER, OWNER_PASS, url, sizeof url) ||
        !base_url(nd, base, sizeof base) || !bformat(log, sizeof log, "%s/post.log", d->root))
        return false;
    enum { FIXED = 8 };
    char *argv[FIXED + POST_BATCH + 1] = {"wmesh",           "post", "--post-broker", url,
                                          "--post-base-url", base,   "--dir",         nd->tree};
    size_t n = 0;
    while (n < d->nfiles && !stop_requested) {
        int argc = FIXED;
        for (; n < d->nfiles && argc < FIXED + POST_BATCH; n++)
            if (d->files[n].origin == o) argv[argc++] = d->files[n].rel;
        if (argc == FIXED) break;
        argv[argc] = NULL;
        if (!peers_alive(d)) return false;
        if (!run(SELF, argv, log, nd->tree)) {
            fprintf(stderr, "demo: wmesh post failed at %s; see %s\n", nd->name, log);
            return false;
        }
    }
    return !stop_requested;
}

/* Files of the demo present in node i's tree. A file appears by rename, so present is whole. */
static size_t files_held(const struct demo *d, int i)
{
    char path[PATH_MAX];
    size_t held = 0;
    for (size_t n = 0; n < d->nfiles; n++)
        if (bformat(path, sizeof path, "%s/%s", d->nodes[i].tree, d->files[n].rel) &&
            access(path, F_OK) == 0)
            held++;
    return held;
}

/* Waits until every peer holds every file; prints progress every 2 s. */
static bool wait_for_mesh(struct demo *d)
{
    double start = now_s(), last_report = start;
    for (;;) {
        size_t held[NODES], total = 0;
        for (int i = 0; i < NODES; i++)
            total += held[i] = files_held(d, i);
        if (total == NODES * d->nfiles) {
            printf("demo: every peer holds all %zu files after %.1f s\n", d->nfiles,
                   now_s() - start);
            return true;
        }
        if (!peers_alive(d)) return false;
        if (stop_requested || now_s() - start > DEADLINE_S) {
            fprintf(stderr, "demo: %s after %.0f s\n", stop_requested ? "interrupted" : "gave up",
                    now_s() - start);
            return false;
        }
        if (now_s() - last_report >= 2) {
            printf("demo: waiting: %s %zu/%zu, %s %zu/%zu, %s %zu/%zu\n", d->nodes[0].name, held[0],
                   d->nfiles, d->nodes[1].name, held[1], d->nfiles, d->nodes[2].name, held[2],
                   d->nfiles);
            last_report = now_s();
        }
        sleep_ms(200);
    }
}

static bool same_bytes(const char *a, const char *b)
{
    static char ba[MAX_FILE_SIZE], bb[MAX_FILE_SIZE];
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    while (same) {
        size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
        same = na == nb && memcmp(ba, bb, na) == 0;
        if (na < sizeof ba) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* Compares every copy with the file injected at its origin; returns how many differ. */
static size_t count_differences(const struct demo *d)
{
    char origin[PATH_MAX], copy[PATH_MAX];
    size_t bad = 0;
    for (size_t n = 0; n < d->nfiles; n++) {
        const struct demo_file *f = &d->files[n];
        for (int i = 0; i < NODES; i++) {
            if (i == f->origin) continue;
            if (!bformat(origin, sizeof origin, "%s/%s", d->nodes[f->origin].tree, f->rel) ||
                !bformat(copy, sizeof copy, "%s/%s", d->nodes[i].tree, f->rel) ||
                !same_bytes(origin, copy)) {
                if (bad++ < 5)
                    fprintf(stderr, "demo: %s differs at %s\n", f->rel, d->nodes[i].name);
            }
        }
    }
    return bad;
}

/* ------------------------------------------------------------------------------------------ */
/* The table */

static void print_table(const struct demo *d)
{
    printf("\n%-6s %12s %10s %11s %12s %11s\n", "peer", "files held", "downloads", "duplicates",
           "mean lag ms", "max lag ms");
    for (int i = 0; i < NODES; i++) {
        const struct node *nd = &d->nodes[i];
        char url[64], held[32];
        char *body = NULL;
        size_t len = 0;
        long status = 0;
        bformat(held, sizeof held, "%zu/%zu", files_held(d, i), d->nfiles);
        bformat(url, sizeof url, "http://127.0.0.1:%u/metrics", (unsigned)nd->http_port);
        if (fetch_get_buffer(url, METRICS_CAP, &body, &len, &status) != WM_OK || status != 200) {
            printf("%-6s %12s   (metrics unavailable)\n", nd->name, held);
            free(body);
            continue;
        }
        double count = prom_sum(body, "wmesh_lag_seconds_count", NULL, NULL);
        double mean = count > 0 ? prom_sum(body, "wmesh_lag_seconds_sum", NULL, NULL) / count : 0;
        printf("%-6s %12s %10.0f %11.0f %12.1f %11.1f\n", nd->name, held,
               prom_sum(body, "wmesh_downloads_total", NULL, NULL),
               prom_sum(body, "wmesh_duplicates_total", NULL, NULL), mean * 1000,
               prom_sum(body, "wmesh_lag_max_seconds", NULL, NULL) * 1000);
        free(body);
    }
    printf("\n");
}

/* ------------------------------------------------------------------------------------------ */
/* Set-up and clean-up */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static bool setup(struct demo *d)
{
    if (!find_program("mosquitto", d->mosquitto, sizeof d->mosquitto) ||
        !find_program("mosquitto_passwd", d->mosquitto_passwd, sizeof d->mosquitto_passwd)) {
        fprintf(stderr, "demo: mosquitto and mosquitto_passwd are needed (sh scripts/deps.sh)\n");
        return false;
    }
    const char *tmp = getenv("TMPDIR");
    if (!bformat(d->root, sizeof d->root, "%s/wmesh-demo.XXXXXX", tmp && *tmp ? tmp : "/tmp") ||
        !mkdtemp(d->root)) {
        fprintf(stderr, "demo: cannot make a temporary directory: %s\n", strerror(errno));
        d->root[0] = '\0';
        return false;
    }
    for (int i = 0; i < NODES; i++) {
        struct node *nd = &d->nodes[i];
        nd->name = node_names[i];
        if (!bformat(nd->dir, sizeof nd->dir, "%s/%s", d->root, nd->name) ||
            !bformat(nd->tree, sizeof nd->tree, "%s/tree", nd->dir) || mkdir(nd->dir, 0755) != 0 ||
            mkdir(nd->tree, 0755) != 0)
            return false;
    }
    printf("demo: working in %s (logs: %s/*.log)\n", d->root, d->root);
    return true;
}

static void cleanup(struct demo *d, bool ok)
{
    stop_all(d);
    free(d->files);
    d->files = NULL;
    if (!d->root[0]) return;
    /* A failed run keeps its logs to read; an interrupted one leaves nothing behind. */
    if (d->keep || (!ok && !stop_requested)) {
        printf("demo: kept %s\n", d->root);
        return;
    }
    nftw(d->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const struct option_spec demo_specs[] = {
    {"files", OPT_NUMBER, false, "N", "300", "files to inject, split between AWZZ and BWAC", 1,
     100000},
    {"keep", OPT_FLAG, false, NULL, NULL,
     "keep the temporary directory (kept anyway after a failure)", 0, 0},
    {NULL, 0, false, NULL, NULL, NULL, 0, 0},
};

static bool parse_args(struct demo *d, int argc, char **argv, int *status)
{
    bool help = false;
    double files = 0;
    struct options *o =
        options_parse("wmesh demo [--files N] [--keep]", demo_specs, argc, argv, &help);
    *status = help ? 0 : 2;
    if (!o) return false;
    size_t npos;
    options_positionals(o, &npos);
    bool ok = !help && npos == 0 && options_number(o, "files", &files) == WM_OK;
    if (!help && npos > 0) fprintf(stderr, "demo: unexpected argument (see --help)\n");
    if (ok && files != (double)(size_t)files) {
        fprintf(stderr, "wmesh demo: --files wants a whole number, not %g\n", files);
        ok = false;
    }
    d->nfiles = (size_t)files;
    d->keep = options_flag(o, "keep");
    options_free(&o);
    return ok;
}

int cmd_demo(int argc, char **argv)
{
    struct demo demo, *d = &demo;
    int status;
    memset(d, 0, sizeof *d);
    if (!parse_args(d, argc, argv, &status)) return status;
    install_signal_handlers();
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows at once, even through a pipe */

    bool ok = setup(d);
    for (int i = 0; ok && i < NODES; i++)
        ok = start_broker(d, &d->nodes[i]);
    if (ok)
        printf("demo: brokers on ports %u, %u, %u (users owner and guest)\n",
               (unsigned)d->nodes[0].mqtt_port, (unsigned)d->nodes[1].mqtt_port,
               (unsigned)d->nodes[2].mqtt_port);
    for (int i = 0; ok && i < NODES; i++)
        ok = start_peer(d, i);
    if (ok)
        printf("demo: peers %s, %s, %s each subscribed to the two others\n", d->nodes[0].name,
               d->nodes[1].name, d->nodes[2].name);
    ok = ok && make_files(d);
    for (int o = 0; ok && o < ORIGINS; o++)
        ok = post_files(d, o);
    if (ok)
        printf("demo: injected %zu files at %s and %s\n", d->nfiles, d->nodes[0].name,
               d->nodes[1].name);
    ok = ok && wait_for_mesh(d);

    size_t bad = ok ? count_differences(d) : 0;
    if (d->files) print_table(d);
    ok = ok && bad == 0 && !stop_requested;
    if (ok)
        printf("demo: OK: every peer holds all %zu files with identical bytes\n", d->nfiles);
    else if (stop_requested)
        printf("demo: interrupted\n");
    else if (bad)
        printf("demo: FAILED: %zu copies differ from their original\n", bad);
    else
        printf("demo: FAILED\n");
    cleanup(d, ok);
    return ok ? 0 : 1;
}
