/* wmesh.c: the wmesh program: sets up what every command shares, then dispatches to it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "version.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *what;
} commands[] = {
    {"peer", cmd_peer, "run a mesh peer: subscribe, download, store, re-announce, serve"},
    {"post", cmd_post, "announce files already in a tree"},
    {"serve", cmd_serve, "serve a tree read-only over HTTP"},
    {"sub", cmd_sub, "print the announcements of a broker"},
    {"status", cmd_status, "show a running peer's brokers, counters, rates and lag"},
    {"clean", cmd_clean, "remove files older than a retention time from a tree"},
    {"outbox", cmd_outbox, "list a peer's set-aside announcements, or send them again"},
    {"gb", cmd_gb, "run a WIS2 Global Broker: check and relay notifications, once each"},
    {"broker-config", cmd_broker_config, "print the mosquitto.conf (or ACL) of a peer's broker"},
    {"demo", cmd_demo, "run a three-peer mesh on this machine and check it"},
};

static void usage(void)
{
    fprintf(stderr, "usage: wmesh COMMAND [OPTIONS]   (wmesh COMMAND --help for its options)\n"
                    "       wmesh --version\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(stderr, "  %-13s %s\n", commands[i].name, commands[i].what);
}

/* random() draws the jitter of retries and reconnections: unseeded, every process drew the same
 * numbers, and peers that lost a broker together retried together, to the millisecond. */
static void seed_random(void)
{
    unsigned seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        seed = (unsigned)now.tv_nsec ^ (unsigned)now.tv_sec ^ ((unsigned)getpid() << 16);
    }
    srandom(seed);
}

/* A peer holds a descriptor per connection, download in flight and spare temporary file: the
 * usual soft limit of 1 024 is low for a cache serving a thousand downloads at once. Raised to
 * the hard limit (at most 65 536), as a systemd unit's LimitNOFILE would; failing changes
 * nothing else. */
static void raise_fd_limit(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) return;
    rlim_t want = r.rlim_max == RLIM_INFINITY || r.rlim_max > 65536 ? 65536 : r.rlim_max;
    if (r.rlim_cur >= want) return;
    r.rlim_cur = want;
    (void)setrlimit(RLIMIT_NOFILE, &r);
}

int main(int argc, char **argv)
{
    seed_random();
    raise_fd_limit();
    /* Socket writes say MSG_NOSIGNAL (TLS ones too, tls.c), but sendfile(2) cannot, nor can a
     * write to a closed pipe: each fails with EPIPE, which the command reports, instead of
     * killing it without a word (status 141). Children get the default back (cmd_demo.c). */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("wmesh %s\n", WMESH_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "wmesh: unknown command \"%s\"\n", argv[1]);
    usage();
    return 2;
}
