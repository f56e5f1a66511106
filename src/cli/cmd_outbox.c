/* cmd_outbox.c: `wmesh outbox`: lists the announcements a peer set aside after its post broker
 * refused them, and hands them back to the peer for sending again. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "deadletter.h"
#include "options.h"

static const struct option_spec specs[] = {
    {"state-dir", OPT_STRING, false, "DIR", NULL, "the peer's state directory", 0, 0},
    {"dir", OPT_STRING, false, "DIR", NULL,
     "the peer's tree, when --state-dir is not given (DIR/.wmesh-state)", 0, 0},
    {"instance", OPT_NUMBER, false, "N", "0", "the peer's --instance, with --dir", 0, 9999},
    {"resend", OPT_FLAG, false, NULL, NULL,
     "hand the entries back to the peer, which sends them again (at once if it runs, else when "
     "it starts)",
     0, 0},
    {"wait", OPT_NUMBER, false, "S", "10", "with --resend: how long to wait for a running peer", 0,
     1e9},
    {NULL, 0, false, NULL, NULL, NULL, 0, 0},
};

#define USAGE "wmesh outbox --state-dir DIR | --dir DIR [--instance N] [--resend]"

static void print_entry(void *arg, const struct deadletter *d)
{
    size_t *n = arg;
    char when[40] = "-";
    if (d->time_ns && codec_rfc3339_format(d->time_ns, 0, when, sizeof when) != WM_OK)
        snprintf(when, sizeof when, "?");
    printf("%s %s %zu %s (%d refusal%s)\n", when, d->topic, d->len, d->reason, d->attempts,
           d->attempts == 1 ? "" : "s");
    (*n)++;
}

static void count_entry(void *arg, const struct deadletter *d)
{
    (void)d;
    (*(size_t *)arg)++;
}

static int list(const char *state)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", state, DEADLETTER_FILE);
    size_t n = 0, bad = 0;
    enum wm_err e = deadletter_each(path, print_entry, &n, &bad);
    if (e != WM_OK && e != WM_ERR_NOTFOUND) {
        fprintf(stderr, "wmesh outbox: %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(stderr, "%zu announcement(s) set aside in %s%s\n", n, path,
            bad ? " (and lines that are not entries)" : "");
    return 0;
}

/* Whether a peer holds the journal of state (its lock), so takes the entries at once. */
static bool peer_running(const char *state)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/journal", state);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool locked = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return locked;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static int resend(const char *state, double wait_s)
{
    char from[PATH_MAX + 32], to[PATH_MAX + 32], taken[PATH_MAX + 32];
    snprintf(from, sizeof from, "%s/%s", state, DEADLETTER_FILE);
    snprintf(to, sizeof to, "%s/%s", state, DEADLETTER_RESEND);
    snprintf(taken, sizeof taken, "%s/%s", state, DEADLETTER_TAKEN);
    if (exists(to) || exists(taken)) {
        fprintf(stderr, "wmesh outbox: a re-send is already waiting for the peer (%s)\n",
                exists(to) ? to : taken);
        return 1;
    }
    size_t n = 0;
    enum wm_err e = deadletter_each(from, count_entry, &n, NULL);
    if (e == WM_ERR_NOTFOUND || (e == WM_OK && n == 0)) {
        fprintf(stderr, "nothing set aside in %s\n", from);
        return 0;
    }
    /* A rename: a line the peer appends meanwhile goes with the rest, whole. */
    if (e != WM_OK || rename(from, to) != 0) {
        fprintf(stderr, "wmesh outbox: %s: %s\n", from, strerror(errno));
        return 1;
    }
    if (!peer_running(state)) {
        printf("%zu announcement(s) will be sent again when the peer starts\n", n);
        return 0;
    }
    struct timespec step = {0, 100 * 1000 * 1000};
    for (double waited = 0; waited < wait_s && (exists(to) || exists(taken)); waited += 0.1)
        nanosleep(&step, NULL);
    if (exists(to) || exists(taken)) {
        printf("%zu announcement(s) handed back; the peer has not taken them yet\n", n);
        return 0;
    }
    printf("%zu announcement(s) handed back to the peer, which sends them again\n", n);
    return 0;
}

int cmd_outbox(int argc, char **argv)
{
    bool help;
    struct options *o = options_parse(USAGE, specs, argc, argv, &help);
    if (!o) return help ? 0 : 2;
    int rc = 2;
    double instance, wait_s;
    char state[PATH_MAX];
    const char *dir = options_get(o, "dir");
    if (options_number(o, "instance", &instance) || options_number(o, "wait", &wait_s) ||
        (!options_get(o, "state-dir") && !dir)) {
        options_usage(USAGE, specs);
        goto done;
    }
    if (options_get(o, "state-dir"))
        snprintf(state, sizeof state, "%s", options_get(o, "state-dir"));
    else if (instance > 0)
        snprintf(state, sizeof state, "%s/.wmesh-state-%d", dir, (int)instance);
    else
        snprintf(state, sizeof state, "%s/.wmesh-state", dir);
    rc = options_flag(o, "resend") ? resend(state, wait_s) : list(state);
done:
    options_free(&o);
    return rc;
}
