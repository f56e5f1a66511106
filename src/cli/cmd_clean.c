/* cmd_clean.c: `wmesh clean`: one retention sweep of a tree, as the peer's --retention does. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "retention.h"

static const struct option_spec specs[] = {
    {"dir", OPT_STRING, false, "DIR", NULL, "the tree (required)", 0, 0},
    {"retention", OPT_STRING, false, "DURATION", NULL,
     "remove files older than this, e.g. 24h, 90m, 7d (required)", 0, 0},
    {NULL, 0, false, NULL, NULL, NULL, 0, 0},
};

#define USAGE "wmesh clean --dir DIR --retention DURATION"

int cmd_clean(int argc, char **argv)
{
    bool help;
    struct options *o = options_parse(USAGE, specs, argc, argv, &help);
    if (!o) return help ? 0 : 2;
    double keep;
    int rc = 2;
    const char *dir = options_get(o, "dir");
    if (!dir || !options_get(o, "retention") ||
        retention_parse_duration(options_get(o, "retention"), &keep) != WM_OK) {
        options_usage(USAGE, specs);
        goto done;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "wmesh clean: %s: %s\n", dir, strerror(errno));
        rc = 1;
        goto done;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t cutoff = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - (int64_t)(keep * 1e9);
    struct retention_stats stats = {0};
    retention_sweep(fd, cutoff, &stats);
    close(fd);
    printf("removed %llu file(s), %llu bytes, %llu empty directory(ies)\n",
           (unsigned long long)stats.files, (unsigned long long)stats.bytes,
           (unsigned long long)stats.directories);
    rc = 0;
done:
    options_free(&o);
    return rc;
}
