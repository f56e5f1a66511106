/* pace.c: passes v03 announcements on at a steady rate, each with the pubTime of its sending. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"

#define USAGE                                                                                      \
    "usage: pace RATE LOG [GOFILE] < MESSAGES > MESSAGES\n"                                        \
    "  Copies one announcement per line from stdin to stdout, line i at start + i/RATE seconds,\n" \
    "  its pubTime replaced by the time of sending. LOG gets \"relPath pubTime\" per line, the\n"  \
    "  pubTime in Unix seconds. With GOFILE, the first line is a warm-up: sent at once and not\n"  \
    "  logged; the paced lines start once GOFILE exists. Ends with a line on stderr: lines "       \
    "sent,\n"                                                                                      \
    "  worst lateness.\n"

#define LINE_MAX_LEN 65536

static int64_t ns_of(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The string value of "key" in the flat JSON object line: *len bytes from the result, or NULL. */
static const char *json_value(const char *line, const char *key, size_t *len)
{
    const char *p = strstr(line, key);
    if (!p) return NULL;
    p += strlen(key);
    while (*p == ' ' || *p == ':')
        p++;
    if (*p != '"') return NULL;
    const char *end = strchr(++p, '"');
    if (!end) return NULL;
    *len = (size_t)(end - p);
    return p;
}

/* Writes line with its pubTime (t, tlen bytes of it) replaced by now; returns now. */
static int64_t send_line(const char *line, const char *t, size_t tlen)
{
    int64_t now = ns_of(CLOCK_REALTIME);
    char stamp[64];
    if (codec_pubtime_format(now, 6, true, stamp, sizeof stamp) != WM_OK) return -1;
    fwrite(line, 1, (size_t)(t - line), stdout);
    fputs(stamp, stdout);
    fputs(t + tlen, stdout);
    if (fflush(stdout) == EOF) {
        fprintf(stderr, "pace: stdout: %s\n", strerror(errno));
        return -1;
    }
    return now;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    double rate = argc == 3 || argc == 4 ? strtod(argv[1], &end) : 0;
    if ((argc != 3 && argc != 4) || *end || !(rate > 0 && rate <= 1e6)) {
        fputs(USAGE, stderr);
        return 2;
    }
    FILE *log = fopen(argv[2], "w");
    char *line = malloc(LINE_MAX_LEN);
    if (!log || !line) {
        fprintf(stderr, "pace: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    const char *go = argc == 4 ? argv[3] : NULL;
    int64_t start = 0, worst = 0;
    long sent = 0, lineno = 0;
    while (fgets(line, LINE_MAX_LEN, stdin)) {
        lineno++;
        size_t tlen, rlen;
        const char *t = json_value(line, "\"pubTime\"", &tlen);
        const char *r = json_value(line, "\"relPath\"", &rlen);
        if (!t || !r || !strchr(line, '\n')) {
            fprintf(stderr, "pace: line %ld is not a one-line v03 announcement\n", lineno);
            return 1;
        }
        if (go) {
            if (send_line(line, t, tlen) < 0) return 1;
            while (access(go, F_OK) != 0) {
                struct timespec ms = {.tv_nsec = 1000000};
                nanosleep(&ms, NULL); /* polling interval */
            }
            go = NULL;
            continue;
        }
        if (sent == 0) start = ns_of(CLOCK_MONOTONIC);
        int64_t due = start + (int64_t)((double)sent * 1e9 / rate);
        struct timespec ts = {.tv_sec = due / 1000000000, .tv_nsec = due % 1000000000};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            continue;
        int64_t late = ns_of(CLOCK_MONOTONIC) - due;
        if (late > worst) worst = late;
        int64_t now = send_line(line, t, tlen);
        if (now < 0) return 1;
        fprintf(log, "%.*s %lld.%06lld\n", (int)rlen, r, (long long)(now / 1000000000),
                (long long)(now % 1000000000 / 1000));
        sent++;
    }
    if (fclose(log) != 0) return 1;
    fprintf(stderr, "pace: %ld lines at %g/s, worst lateness %.3f ms\n", sent, rate,
            (double)worst / 1e6);
    free(line);
    return 0;
}
