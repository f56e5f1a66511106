/* retention.c: age-based clean-up of a tree: a careful walk beneath a directory descriptor,
 * and the thread that repeats it so the peer's event loop never waits for it. */
#include "retention.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "thread.h"

#define MAX_DEPTH 64
#define DIR_GRACE_NS (60 * 1000000000LL)

enum wm_err retention_parse_duration(const char *text, double *seconds)
{
    if (!text || !seconds) return WM_ERR_INVAL;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || !isfinite(v) || v <= 0) return WM_ERR_INVAL;
    double unit = 1;
    if (*end == 'm')
        unit = 60;
    else if (*end == 'h')
        unit = 3600;
    else if (*end == 'd')
        unit = 86400;
    else if (*end != 's' && *end != '\0')
        return WM_ERR_INVAL;
    if (*end && end[1] != '\0') return WM_ERR_INVAL;
    *seconds = v * unit;
    return WM_OK;
}

static int64_t ns_of(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return ns_of(&t);
}

static void sweep_dir(int fd, int64_t cutoff_ns, int depth, struct retention_stats *stats);

static void sweep_entry(int fd, const char *name, int64_t cutoff_ns, int depth,
                        struct retention_stats *stats)
{
    struct stat st;
    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return;
    if (S_ISREG(st.st_mode)) {
        if (ns_of(&st.st_mtim) >= cutoff_ns) return;
        if (unlinkat(fd, name, 0) == 0) {
            stats->files++;
            stats->bytes += (uint64_t)st.st_size;
        }
        return;
    }
    if (!S_ISDIR(st.st_mode) || depth >= MAX_DEPTH) return; /* symlinks and others: left */
    int sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) return;
    sweep_dir(sub, cutoff_ns, depth + 1, stats);
    struct stat after;
    bool idle = fstat(sub, &after) == 0 && ns_of(&after.st_mtim) < now_ns() - DIR_GRACE_NS;
    close(sub);
    /* rmdir refuses a directory that is not empty: no need to look first. */
    if (idle && unlinkat(fd, name, AT_REMOVEDIR) == 0) stats->directories++;
}

static void sweep_dir(int fd, int64_t cutoff_ns, int depth, struct retention_stats *stats)
{
    int copy = dup(fd);
    DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
    if (!d) {
        if (copy >= 0) close(copy);
        return;
    }
    /* A dup shares the directory offset with fd, which an earlier sweep left at the end. */
    rewinddir(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ".", "..", temporary files, state: never ours */
        sweep_entry(fd, e->d_name, cutoff_ns, depth, stats);
    }
    closedir(d);
}

enum wm_err retention_sweep(int dirfd, int64_t cutoff_ns, struct retention_stats *stats)
{
    if (dirfd < 0 || !stats) return WM_ERR_INVAL;
    sweep_dir(dirfd, cutoff_ns, 0, stats);
    return WM_OK;
}

struct retention {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    int dirfd;
    double keep_s, interval_s;
    atomic_uint_fast64_t *removed;
};

static void *run(void *arg)
{
    struct retention *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        pthread_mutex_unlock(&r->lock);
        struct retention_stats stats = {0};
        retention_sweep(r->dirfd, now_ns() - (int64_t)(r->keep_s * 1e9), &stats);
        if (stats.files || stats.directories)
            log_info("retention: removed %llu file(s) (%llu bytes) and %llu directory(ies)",
                     (unsigned long long)stats.files, (unsigned long long)stats.bytes,
                     (unsigned long long)stats.directories);
        if (r->removed) atomic_fetch_add(r->removed, stats.files);
        pthread_mutex_lock(&r->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t at = ns_of(&until) + (int64_t)(r->interval_s * 1e9);
        until.tv_sec = (time_t)(at / 1000000000);
        until.tv_nsec = (long)(at % 1000000000);
        while (!r->stopping && pthread_cond_timedwait(&r->wake, &r->lock, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

struct retention *retention_start(const char *dir, double keep_s, double interval_s,
                                  atomic_uint_fast64_t *removed)
{
    struct retention *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    r->keep_s = keep_s;
    r->interval_s = interval_s;
    r->removed = removed;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    if (r->dirfd < 0 || thread_start(&r->thread, "wmesh-retention", run, r) != WM_OK) {
        int saved = errno;
        if (r->dirfd >= 0) close(r->dirfd);
        free(r);
        errno = saved;
        return NULL;
    }
    return r;
}

void retention_stop(struct retention **rp)
{
    if (!rp || !*rp) return;
    struct retention *r = *rp;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    close(r->dirfd);
    free(r);
    *rp = NULL;
}
