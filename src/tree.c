/* tree.c: the served file tree: relPath cleaning, symlink-free resolution beneath the tree's
 * directory descriptor, temporary files, atomic commits and the checksum cached in an xattr. */
#include "tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<linux/openat2.h>) && defined(SYS_openat2)
#include <linux/openat2.h>
#define HAVE_OPENAT2 1
#endif
#endif

#include "hash.h"
#include "json.h"
#include "log.h"
#include "text.h"

/* Room for {"method": "sha3-512", "value": <88 base64 characters>} or an opaque value of
 * WM_SUM_MAX_LEN bytes escaped as JSON, with plenty to spare. */
#define SUM_TEXT_MAX 512
/* Longest xattr text tree_sum_parse reads: far more than any it writes. */
#define SUM_JSON_MAX 4096
/* Leftovers in the temporary directory are ours, so they are shallow; the cap only stops a
 * planted deep hierarchy from exhausting descriptors. */
#define EMPTY_MAX_DEPTH 16
/* Commits keep the directories they rename into open: files usually arrive in a few
 * directories, and opening and closing the destination for each file costs two system calls. */
#define DIR_CACHE_SLOTS 64
/* A descriptor follows its directory wherever it goes: one moved or replaced by hand while the
 * peer runs would go on receiving files under its new name. Resolving each entry afresh after
 * this long bounds that to a second, for one openat2 per directory and second. */
#define DIR_CACHE_TTL_NS 1000000000LL

/* An open directory of the tree, found by its path relative to the root. */
struct dir_slot {
    char *dir;         /* its clean relative path (owned); NULL: the slot is free */
    size_t len;        /* strlen(dir) */
    uint64_t hash;     /* of dir */
    int fd;            /* opened beneath the root like every other path */
    uint64_t used;     /* tick of the last use, for least-recently-used eviction */
    int64_t opened_ns; /* CLOCK_MONOTONIC_COARSE when it was resolved */
};

struct tree {
    int dirfd;            /* the tree's root, opened once; every path is resolved beneath it */
    int tmpfd;            /* WM_TREE_TMPDIR */
    char *path;           /* as given to tree_open */
    bool sync;            /* fsync files and directories on commit */
    bool unsynced;        /* commits made without sync since the last tree_sync */
    atomic_ulong counter; /* makes temporary names unique within the process */
    /* Read once at open: wmesh never forks after opening a tree (the demo forks only to exec
     * other programs), so this stays our pid, and the temporary names need no getpid(2). */
    long pid;
    uint64_t name_key; /* random, drawn once; hides the counter in temporary names */
    uint64_t dir_tick; /* use counter of the directory cache */
    struct dir_slot dirs[DIR_CACHE_SLOTS];
    atomic_bool no_tmpfile;    /* the filesystem refused O_TMPFILE: temporary files are named */
    atomic_bool no_empty_path; /* linkat(AT_EMPTY_PATH) refused: link through /proc/self/fd */
};

/* Set once the kernel has said ENOSYS to openat2: later lookups walk components directly. */
static atomic_bool openat2_missing;
static atomic_bool xattr_unsupported_noted;
static atomic_bool flock_unsupported_noted;

static enum wm_err err_from_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return WM_ERR_NOTFOUND;
    case ELOOP:
    case EXDEV:
        return WM_ERR_UNSAFE; /* a symlink, or an escape attempt refused by the kernel */
    case ENOMEM:
        return WM_ERR_NOMEM;
    case ENAMETOOLONG:
        return WM_ERR_TOOBIG;
    case EEXIST:
        return WM_ERR_EXISTS;
    default:
        return WM_ERR_IO;
    }
}

static void close_keep_errno(int fd)
{
    int saved = errno;
    close(fd);
    errno = saved;
}

/* ---- relPath cleaning ---- */

/* Reads one component from *p, up to a literal '/' or the end, percent-decoding it into comp
 * (NAME_MAX + 1 bytes). Decoding comes before every check so that an encoded "..", NUL or
 * control character is judged by what it will be on disk. */
static enum wm_err next_component(const char **p, char *comp, size_t *len)
{
    const char *s = *p;
    size_t n = 0;
    while (*s && *s != '/') {
        unsigned char c = (unsigned char)*s++;
        int hi = c == '%' ? text_hex_digit(s[0]) : -1;
        int lo = hi >= 0 ? text_hex_digit(s[1]) : -1;
        if (lo >= 0) {
            c = (unsigned char)(hi * 16 + lo);
            s += 2;
            /* An encoded '/' has no faithful form on disk, and NUL would cut the name. */
            if (c == '\0' || c == '/') return WM_ERR_UNSAFE;
        }
        if (c < 0x20 || c == 0x7f) return WM_ERR_UNSAFE;
        if (n == NAME_MAX) return WM_ERR_TOOBIG;
        comp[n++] = (char)c;
    }
    comp[n] = '\0';
    *len = n;
    *p = s;
    return WM_OK;
}

static enum wm_err append_component(char *out, size_t outlen, size_t *used, const char *comp,
                                    size_t n)
{
    size_t sep = *used ? 1 : 0;
    size_t need = *used + sep + n; /* without the NUL */
    if (need >= outlen || need >= PATH_MAX) return WM_ERR_TOOBIG;
    if (sep) out[(*used)++] = '/';
    memcpy(out + *used, comp, n);
    *used += n;
    out[*used] = '\0';
    return WM_OK;
}

static enum wm_err clean_into(const char *rel_path, char *out, size_t outlen)
{
    size_t inlen = strlen(rel_path);
    /* A trailing '/' names a directory, never a file version. */
    if (inlen > 0 && rel_path[inlen - 1] == '/') return WM_ERR_UNSAFE;
    char comp[NAME_MAX + 1];
    size_t used = 0;
    bool last_is_dot = false;
    const char *p = rel_path;
    while (*p) {
        if (*p == '/') {
            p++;
            continue;
        }
        size_t n = 0;
        enum wm_err err = next_component(&p, comp, &n);
        if (err != WM_OK) return err;
        last_is_dot = strcmp(comp, ".") == 0;
        if (last_is_dot) continue;
        /* "..", dot-files and WM_TREE_TMPDIR all start with '.'. */
        if (comp[0] == '.') return WM_ERR_UNSAFE;
        err = append_component(out, outlen, &used, comp, n);
        if (err != WM_OK) return err;
    }
    /* A final "." names a directory, like a trailing '/'. */
    if (used == 0 || last_is_dot) return WM_ERR_UNSAFE;
    return WM_OK;
}

enum wm_err tree_clean_relpath(const char *rel_path, char *out, size_t outlen)
{
    if (!rel_path || !out || outlen == 0) return WM_ERR_INVAL;
    out[0] = '\0';
    enum wm_err err = clean_into(rel_path, out, outlen);
    if (err != WM_OK) out[0] = '\0';
    return err;
}

/* True when rel has the shape tree_clean_relpath() gives. Checked again at every entry point
 * so that what reaches the filesystem never depends on each caller having cleaned it. */
static bool rel_is_clean(const char *rel)
{
    if (!rel || !*rel || strnlen(rel, PATH_MAX) >= PATH_MAX) return false;
    size_t comp = 0;
    for (const char *p = rel;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '/' || c == '\0') {
            if (comp == 0 || comp > NAME_MAX) return false;
            if (c == '\0') return true;
            comp = 0;
            continue;
        }
        if (c < 0x20 || c == 0x7f) return false;
        if (comp == 0 && c == '.') return false;
        comp++;
    }
}

/* ---- resolution beneath the root ---- */

/* O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR; make it ELOOP, as openat2 says,
 * so that callers can tell a planted link from a file in the way. */
static void note_symlink(int fd, const char *name)
{
    struct stat st;
    if (errno != ENOTDIR) return;
    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        errno = ELOOP;
    else
        errno = ENOTDIR;
}

/* The portable way: one openat per component, none of them following a symlink. Safe only
 * because rel has no ".." component (rel_is_clean). */
static int walk_open(int dirfd, const char *rel, int flags)
{
    char comp[NAME_MAX + 1];
    int fd = dirfd;
    const char *p = rel;
    for (const char *slash; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
        size_t n = (size_t)(slash - p);
        if (n == 0 || n > NAME_MAX) {
            if (fd != dirfd) close(fd);
            errno = EINVAL;
            return -1;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) note_symlink(fd, comp);
        if (fd != dirfd) close_keep_errno(fd);
        if (next < 0) return -1;
        fd = next;
    }
    int out = openat(fd, p, flags | O_NOFOLLOW | O_CLOEXEC);
    if (fd != dirfd) close_keep_errno(fd);
    return out;
}

/* Opens rel beneath dirfd without following any symlink (ELOOP when one is in the way).
 * flags must not include O_CREAT. Returns the descriptor or -1 with errno set. */
static int open_beneath(int dirfd, const char *rel, int flags)
{
#ifdef HAVE_OPENAT2
    if (!atomic_load(&openat2_missing)) {
        struct open_how how = {
            .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        for (int tries = 0; tries < 4; tries++) {
            long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
            if (fd >= 0) return (int)fd;
            /* EAGAIN: a concurrent rename made the kernel unsure; asking again is the fix. */
            if (errno != EAGAIN) break;
        }
        if (errno != ENOSYS) return -1;
        atomic_store(&openat2_missing, true);
        log_debug("tree: openat2 unavailable, resolving paths component by component");
    }
#endif
    return walk_open(dirfd, rel, flags);
}

/* Why name in fd could not be entered as a directory. */
static enum wm_err in_the_way(int fd, const char *name)
{
    int saved = errno;
    struct stat st;
    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
        errno = saved;
        return S_ISREG(st.st_mode) ? WM_ERR_EXISTS : WM_ERR_UNSAFE;
    }
    errno = saved;
    return saved == ELOOP ? WM_ERR_UNSAFE : WM_ERR_IO;
}

/* Opens directory name inside fd, creating it (0755) when absent. */
static enum wm_err enter_dir(int fd, const char *name, int *out)
{
    /* A few rounds because another process may create or remove it between our calls. */
    for (int tries = 0; tries < 3; tries++) {
        int d = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d >= 0) {
            *out = d;
            return WM_OK;
        }
        if (errno != ENOENT) return in_the_way(fd, name);
        if (mkdirat(fd, name, 0755) < 0 && errno != EEXIST) return err_from_errno(errno);
    }
    return WM_ERR_IO;
}

/* Opens (creating as needed) the directory path dir, relative to dirfd, one component at a
 * time. dir is modified in place. *out is a new descriptor. */
static enum wm_err make_dirs(int dirfd, char *dir, int *out)
{
    int fd = dirfd;
    char *p = dir;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash) *slash = '\0';
        int next = -1;
        enum wm_err err = enter_dir(fd, p, &next);
        if (fd != dirfd) close_keep_errno(fd);
        if (err != WM_OK) return err;
        fd = next;
        if (!slash) break;
        p = slash + 1;
    }
    *out = fd;
    return WM_OK;
}

/* ---- the cache of destination directories ---- */

/* FNV-1a: paths are short and the cache small; this only spares most string comparisons. */
static uint64_t hash_path(const char *s, size_t n)
{
    return hash_fnv1a(HASH_FNV1A_INIT, s, n);
}

/* No system call: the vDSO answers, and a tick or so of imprecision does not matter here. */
static int64_t coarse_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static void slot_clear(struct dir_slot *s)
{
    if (s->dir) {
        close_keep_errno(s->fd);
        free(s->dir);
    }
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* The cached descriptor of the directory dir (n bytes), or -1. An entry older than
 * DIR_CACHE_TTL_NS is closed instead, so that the caller resolves the path again. */
static int cache_get(struct tree *t, const char *dir, size_t n, uint64_t hash, int64_t now)
{
    for (size_t i = 0; i < DIR_CACHE_SLOTS; i++) {
        struct dir_slot *s = &t->dirs[i];
        if (!s->dir || s->hash != hash || s->len != n || memcmp(s->dir, dir, n) != 0) continue;
        if (now - s->opened_ns > DIR_CACHE_TTL_NS) {
            slot_clear(s);
            return -1;
        }
        s->used = ++t->dir_tick;
        return s->fd;
    }
    return -1;
}

/* Keeps fd, just opened for the directory dir (n bytes), in a free slot or in place of the
 * least recently used one. False when out of memory: fd then stays the caller's. */
static bool cache_put(struct tree *t, const char *dir, size_t n, uint64_t hash, int fd, int64_t now)
{
    struct dir_slot *victim = &t->dirs[0];
    for (size_t i = 0; i < DIR_CACHE_SLOTS; i++) {
        struct dir_slot *s = &t->dirs[i];
        if (!s->dir) {
            victim = s;
            break;
        }
        if (s->used < victim->used) victim = s;
    }
    char *copy = malloc(n + 1);
    if (!copy) return false;
    memcpy(copy, dir, n);
    copy[n] = '\0';
    slot_clear(victim);
    *victim = (struct dir_slot){
        .dir = copy, .len = n, .hash = hash, .fd = fd, .used = ++t->dir_tick, .opened_ns = now};
    return true;
}

/* Closes the cache entry holding fd, if any. */
static void cache_drop(struct tree *t, int fd)
{
    for (size_t i = 0; i < DIR_CACHE_SLOTS; i++)
        if (t->dirs[i].dir && t->dirs[i].fd == fd) slot_clear(&t->dirs[i]);
}

static void cache_init(struct tree *t)
{
    for (size_t i = 0; i < DIR_CACHE_SLOTS; i++)
        t->dirs[i].fd = -1;
}

static void cache_free(struct tree *t)
{
    for (size_t i = 0; i < DIR_CACHE_SLOTS; i++)
        slot_clear(&t->dirs[i]);
}

/* The directory that holds rel's last component, as a descriptor: t->dirfd for a top-level
 * name, else from the cache, else resolved beneath the root (creating missing parents) and
 * cached. *owned is true when the caller must close *pfd (the cache could not keep it);
 * *last points into rel. */
static enum wm_err open_parent(struct tree *t, const char *rel, int *pfd, bool *owned,
                               const char **last)
{
    const char *slash = strrchr(rel, '/');
    *pfd = t->dirfd;
    *owned = false;
    *last = slash ? slash + 1 : rel;
    if (!slash) return WM_OK;
    size_t n = (size_t)(slash - rel);
    uint64_t hash = hash_path(rel, n);
    int64_t now = coarse_now_ns();
    int fd = cache_get(t, rel, n, hash, now);
    if (fd >= 0) {
        *pfd = fd;
        return WM_OK;
    }
    char dir[PATH_MAX];
    memcpy(dir, rel, n);
    dir[n] = '\0';
    /* The common case, parents already there, costs one system call. */
    fd = open_beneath(t->dirfd, dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        if (errno == EXDEV) return WM_ERR_UNSAFE;
        /* Missing parts or something in the way: the walk creates the former, names the
         * latter. */
        enum wm_err err = make_dirs(t->dirfd, dir, &fd);
        if (err != WM_OK) return err;
    }
    *pfd = fd;
    *owned = !cache_put(t, rel, n, hash, fd, now);
    return WM_OK;
}

/* Opens a clean rel as a regular file for reading; *st gets its status. Non-blocking so that a
 * FIFO planted in the tree cannot hang the caller. */
static enum wm_err open_regular(struct tree *t, const char *rel, int *out, struct stat *st)
{
    if (!rel_is_clean(rel)) return WM_ERR_UNSAFE;
    int fd = open_beneath(t->dirfd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return err_from_errno(errno);
    if (fstat(fd, st) < 0) {
        close_keep_errno(fd);
        return WM_ERR_IO;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return WM_ERR_NOTFOUND;
    }
    *out = fd;
    return WM_OK;
}

/* ---- the checksum xattr ---- */

static void note_no_xattr(void)
{
    if (!atomic_exchange(&xattr_unsupported_noted, true))
        log_debug("tree: extended attributes unsupported here; checksums are not cached");
}

/* Whether a file's checksum by method is worth an xattr (see WM_TREE_SUM_CACHE_MIN): an opaque
 * one (arbitrary, random) always is, since nothing else can tell it again. */
static bool worth_caching(enum wm_sum method, int64_t size)
{
    if (method == WM_SUM_MD5NAME) return false; /* the name's, never the bytes' */
    return !integrity_is_digest(method) || size > WM_TREE_SUM_CACHE_MIN;
}

/* Sets obj[key] to the string text: WM_ERR_INVAL when text is not UTF-8. */
static enum wm_err set_text(struct wm_json *obj, const char *key, const char *text)
{
    struct wm_json *s = wm_json_string_new(text, strlen(text));
    if (!s) return errno == ENOMEM ? WM_ERR_NOMEM : WM_ERR_INVAL;
    return wm_json_object_set(obj, key, s);
}

enum wm_err tree_sum_format(const struct wm_checksum *sum, char *out, size_t outlen)
{
    if (!sum || !out || outlen == 0) return WM_ERR_INVAL;
    char value[2 * WM_SUM_MAX_LEN + 8];
    enum wm_err err = integrity_value_format(sum, value, sizeof value);
    if (err != WM_OK) return err;
    const char *method = integrity_method_name(sum->method);
    if (integrity_is_digest(sum->method)) {
        /* A method name and base64 never need escaping: no JSON object built per stored file. */
        int n = snprintf(out, outlen, "{\"method\":\"%s\",\"value\":\"%s\"}", method, value);
        return n < 0 || (size_t)n >= outlen ? WM_ERR_TOOBIG : WM_OK;
    }
    struct wm_json *obj = wm_json_object_new();
    char *text = NULL;
    size_t n = 0;
    if (!obj) return WM_ERR_NOMEM;
    err = set_text(obj, "method", method);
    if (err == WM_OK) err = set_text(obj, "value", value);
    if (err == WM_OK) err = wm_json_dump(obj, &text, &n);
    if (err == WM_OK && n >= outlen) err = WM_ERR_TOOBIG;
    if (err == WM_OK) memcpy(out, text, n + 1);
    free(text);
    wm_json_free(&obj);
    return err;
}

enum wm_err tree_sum_parse(const char *text, size_t len, struct wm_checksum *out)
{
    if (!text || !out) return WM_ERR_INVAL;
    if (len > SUM_JSON_MAX) return WM_ERR_TOOBIG;
    struct wm_json *obj = NULL;
    enum wm_err err = wm_json_parse(text, len, &obj, NULL, 0);
    if (err != WM_OK) return err == WM_ERR_NOMEM ? err : WM_ERR_INVAL;
    size_t mlen = 0, vlen = 0;
    const char *method = wm_json_string(wm_json_object_get(obj, "method"), &mlen);
    const char *value = wm_json_string(wm_json_object_get(obj, "value"), &vlen);
    /* random and arbitrary values may be empty strings: only the method may not be. */
    if (!method || mlen == 0 || strlen(method) != mlen || !value || strlen(value) != vlen) {
        err = WM_ERR_INVAL;
    } else {
        enum wm_sum m = integrity_method_from_name(method);
        err = m == WM_SUM_NONE ? WM_ERR_METHOD : integrity_value_parse(m, value, out);
    }
    wm_json_free(&obj);
    return err;
}

static enum wm_err store_sum(int fd, const struct wm_checksum *sum)
{
    char text[SUM_TEXT_MAX];
    enum wm_err err = tree_sum_format(sum, text, sizeof text);
    if (err != WM_OK) return err;
    if (fsetxattr(fd, WM_XATTR_SUM, text, strlen(text), 0) == 0) return WM_OK;
    if (errno == ENOTSUP) {
        note_no_xattr();
        return WM_OK;
    }
    return WM_ERR_IO;
}

static enum wm_err load_sum(int fd, struct wm_checksum *out)
{
    char text[SUM_TEXT_MAX];
    ssize_t n = fgetxattr(fd, WM_XATTR_SUM, text, sizeof text - 1);
    if (n < 0) {
        if (errno == ENOTSUP) note_no_xattr();
        /* Absent, unsupported or oversized (ERANGE): the file is there, its checksum is not. */
        if (errno == ENODATA || errno == ENOTSUP || errno == ERANGE) return WM_ERR_NOSUM;
        return WM_ERR_IO;
    }
    text[n] = '\0';
    /* Never trust what is on disk: unparsable text is the same as none. */
    struct wm_checksum sum;
    if (tree_sum_parse(text, (size_t)n, &sum) != WM_OK) return WM_ERR_NOSUM;
    *out = sum;
    return WM_OK;
}

/* ---- opening and closing ---- */

/* The key of a tree's temporary names, drawn once per open. Uniqueness comes from pid and
 * counter; the key only makes the names hard to guess. */
static uint64_t random64(void)
{
    uint64_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r) return r;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 30) ^ (uint64_t)getpid() << 48;
}

/* mkdir -p for the root, which comes from the configuration and is trusted. */
static int make_root(const char *dir)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);
    if (len >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(path, 0755) < 0 && errno != EEXIST) return -1;
    return 0;
}

static void empty_dir(int fd, int depth);

/* Removes name inside fd whatever it is, descending into directories up to a depth. */
static void remove_entry(int fd, const char *name, int depth)
{
    if (unlinkat(fd, name, 0) == 0) return;
    if (errno != EISDIR || depth >= EMPTY_MAX_DEPTH) goto fail;
    int sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) goto fail;
    empty_dir(sub, depth + 1);
    close(sub);
    if (unlinkat(fd, name, AT_REMOVEDIR) == 0) return;
fail:
    log_warn("tree: cannot remove leftover %s/%s: %s", WM_TREE_TMPDIR, name, strerror(errno));
}

/* True for a temporary file of another process that is still running: several peers may share
 * one tree (--share), and one starting must not pull files from under the others. */
static bool owned_by_live_process(const char *name)
{
    long pid = 0;
    if (sscanf(name, "tmp.%ld.", &pid) != 1 || pid <= 0 || pid == (long)getpid()) return false;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Removes everything inside the directory fd (which stays open and owned by the caller). */
static void empty_dir(int fd, int depth)
{
    /* fdopendir takes over its descriptor, so give it one of its own. */
    int copy = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (copy < 0) return;
    DIR *d = fdopendir(copy);
    if (!d) {
        close(copy);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (depth == 0 && owned_by_live_process(e->d_name)) continue;
        remove_entry(fd, e->d_name, depth);
    }
    closedir(d);
}

static int open_tmpdir(struct tree *t)
{
    if (mkdirat(t->dirfd, WM_TREE_TMPDIR, 0700) < 0 && errno != EEXIST) return -1;
    /* O_NOFOLLOW: a symlink planted in its place makes the open fail rather than send our
     * temporary files elsewhere. */
    t->tmpfd = openat(t->dirfd, WM_TREE_TMPDIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (t->tmpfd < 0) return -1;
    if (fchmod(t->tmpfd, 0700) < 0)
        log_warn("tree: cannot set mode 0700 on %s/%s: %s", t->path, WM_TREE_TMPDIR,
                 strerror(errno));
    return 0;
}

static int close_half_open(struct tree **t, int saved_errno)
{
    tree_close(t);
    return saved_errno;
}

static struct tree *open_tree(const char *dir, bool empty_tmp)
{
    if (!dir || !*dir) {
        errno = EINVAL;
        return NULL;
    }
    struct tree *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->dirfd = -1;
    t->tmpfd = -1;
    t->sync = true;
    atomic_init(&t->counter, 0);
    t->pid = (long)getpid();
    t->name_key = random64();
    cache_init(t);
    t->path = strdup(dir);
    if (!t->path) goto fail;
    if (make_root(dir) < 0) goto fail;
    t->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (t->dirfd < 0) goto fail;
    if (open_tmpdir(t) < 0) goto fail;
    if (empty_tmp) empty_dir(t->tmpfd, 0);
    return t;
fail:
    /* The caller wants the errno of what failed, not of the clean-up. */
    errno = close_half_open(&t, errno);
    return NULL;
}

struct tree *tree_open(const char *dir)
{
    return open_tree(dir, true);
}

struct tree *tree_attach(const char *dir)
{
    return open_tree(dir, false);
}

void tree_close(struct tree **t)
{
    if (!t || !*t) return;
    cache_free(*t);
    if ((*t)->tmpfd >= 0) close((*t)->tmpfd);
    if ((*t)->dirfd >= 0) close((*t)->dirfd);
    free((*t)->path);
    free(*t);
    *t = NULL;
}

int tree_dirfd(const struct tree *t)
{
    return t ? t->dirfd : -1;
}

const char *tree_path(const struct tree *t)
{
    return t ? t->path : NULL;
}

void tree_set_sync(struct tree *t, bool sync)
{
    if (t) t->sync = sync;
}

enum wm_err tree_sync(struct tree *t)
{
    if (!t) return WM_ERR_INVAL;
    if (!tree_sync_begin(t)) return WM_OK;
    enum wm_err e = tree_sync_fs(t);
    if (e != WM_OK) tree_sync_failed(t);
    return e;
}

bool tree_sync_begin(struct tree *t)
{
    if (!t || !t->unsynced) return false;
    t->unsynced = false;
    return true;
}

bool tree_has_unsynced(const struct tree *t)
{
    return t && t->unsynced;
}

enum wm_err tree_sync_fs(const struct tree *t)
{
    if (!t) return WM_ERR_INVAL;
    return syncfs(t->dirfd) == 0 ? WM_OK : WM_ERR_IO;
}

void tree_sync_failed(struct tree *t)
{
    if (t) t->unsynced = true;
}

/* ---- temporary files and commits ---- */

/* splitmix64's finaliser: a bijection that scrambles every bit of its input. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* "tmp.<pid>.": the open of a tree keeps the files of other live processes (see
 * owned_by_live_process). */
static void next_tmp_name(struct tree *t, char name[64])
{
    unsigned long n = atomic_fetch_add(&t->counter, 1);
    snprintf(name, 64, "tmp.%ld.%lu.%08" PRIx32, t->pid, n, (uint32_t)mix64(t->name_key ^ n));
}

/* An unnamed file in the temporary directory's filesystem (O_TMPFILE): nothing to clean up
 * after a crash, no directory entry made and removed per file, and no lock on the temporary
 * directory, which the commits' renames out of it would contend for. -1 when the filesystem
 * cannot (remembered: named files from then on) or on another error (errno set). */
static int open_anonymous(struct tree *t)
{
    if (atomic_load(&t->no_tmpfile)) {
        errno = EOPNOTSUPP;
        return -1;
    }
    int fd = openat(t->tmpfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
    if (fd >= 0) return fd;
    if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
        atomic_store(&t->no_tmpfile, true);
        log_debug("tree: %s has no O_TMPFILE: temporary files are named", t->path);
        errno = EOPNOTSUPP;
    }
    return -1;
}

void tree_name_tmp_files(struct tree *t)
{
    if (t) atomic_store(&t->no_tmpfile, true);
}

enum wm_err tree_tmp_create(struct tree *t, struct tree_tmp *tmp)
{
    if (!tmp) return WM_ERR_INVAL;
    tmp->fd = -1;
    tmp->name[0] = '\0';
    if (!t) return WM_ERR_INVAL;
    if ((tmp->fd = open_anonymous(t)) >= 0) return WM_OK;
    if (errno != EOPNOTSUPP)
        return err_from_errno(errno) == WM_ERR_NOMEM ? WM_ERR_NOMEM : WM_ERR_IO;
    for (int tries = 0; tries < 8; tries++) {
        next_tmp_name(t, tmp->name);
        int fd =
            openat(t->tmpfd, tmp->name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0) {
            tmp->fd = fd;
            return WM_OK;
        }
        if (errno != EEXIST) break;
    }
    int saved = errno;
    tmp->name[0] = '\0';
    errno = saved;
    return err_from_errno(saved) == WM_ERR_NOMEM ? WM_ERR_NOMEM : WM_ERR_IO;
}

void tree_tmp_discard(struct tree *t, struct tree_tmp *tmp)
{
    if (!tmp) return;
    int saved = errno;
    if (tmp->fd >= 0) close(tmp->fd);
    tmp->fd = -1;
    /* The name must stay inside the temporary directory whatever the caller did to it. */
    bool sane = memchr(tmp->name, '\0', sizeof tmp->name) && !strchr(tmp->name, '/');
    if (t && sane && tmp->name[0] && tmp->name[0] != '.') unlinkat(t->tmpfd, tmp->name, 0);
    tmp->name[0] = '\0';
    errno = saved;
}

/* Makes the renamed entry durable. The file is already visible by then, so a failure is only
 * logged: a rename lost in a crash costs one download again, never a wrong file. */
static void sync_dir(const struct tree *t, int pfd, const char *rel)
{
    if (!t->sync || fsync(pfd) == 0) return;
    /* Some filesystems cannot sync a directory descriptor. */
    if (errno == EINVAL || errno == EROFS) return;
    log_warn("tree: cannot sync the directory of %s: %s", rel, strerror(errno));
}

enum wm_err tree_tmp_set_time(struct tree_tmp *tmp, int64_t ns)
{
    if (!tmp || tmp->fd < 0 || ns < 0) return WM_ERR_INVAL;
    struct timespec times[2] = {{.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000},
                                {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000}};
    return futimens(tmp->fd, times) == 0 ? WM_OK : WM_ERR_IO;
}

enum wm_err tree_tmp_set_sum(struct tree_tmp *tmp, const struct wm_checksum *sum, int64_t size)
{
    if (!tmp || tmp->fd < 0 || !sum) return WM_ERR_INVAL;
    if (sum->method == WM_SUM_NONE || !worth_caching(sum->method, size)) return WM_OK;
    return store_sum(tmp->fd, sum);
}

/* Names the unnamed file fd last in directory dirfd; -1 with errno as linkat(2) sets it. */
static int link_anonymous(struct tree *t, int fd, int dirfd, const char *last)
{
    if (!atomic_load(&t->no_empty_path)) {
        if (linkat(fd, "", dirfd, last, AT_EMPTY_PATH) == 0) return 0;
        /* Without CAP_DAC_READ_SEARCH, kernels before 6.10 say ENOENT. */
        if (errno != ENOENT && errno != EPERM) return -1;
    }
    char proc[40];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, dirfd, last, AT_SYMLINK_FOLLOW) != 0) return -1;
    atomic_store(&t->no_empty_path, true);
    return 0;
}

/* Puts tmp at last in directory pfd, atomically replacing a file there; -1 with errno set. An
 * unnamed file is linked in place; over an existing entry (which a link cannot replace) it is
 * given a name in the temporary directory first, then renamed like a named one. occupied says
 * that an entry is known to be there: the link that would fail is not tried. */
static int place(struct tree *t, struct tree_tmp *tmp, int pfd, const char *last, bool occupied)
{
    if (tmp->name[0]) return renameat(t->tmpfd, tmp->name, pfd, last);
    if (!occupied) {
        if (link_anonymous(t, tmp->fd, pfd, last) == 0) return 0;
        if (errno != EEXIST) return -1;
    }
    for (int tries = 0; tries < 8; tries++) {
        next_tmp_name(t, tmp->name);
        if (link_anonymous(t, tmp->fd, t->tmpfd, tmp->name) == 0)
            return renameat(t->tmpfd, tmp->name, pfd, last); /* on failure, discard unlinks it */
        if (errno != EEXIST) break;
    }
    int saved = errno;
    tmp->name[0] = '\0';
    errno = saved;
    return -1;
}

/* ---- commits ---- */

/* A version to commit only over an older one (tree_tmp_commit_version). */
struct version {
    int64_t pubtime_ns;
    const struct wm_checksum *sum;
};

/* The lock that orders the commits of versions among the processes sharing a tree (--share, or
 * several --instance on one --dir) is flock(2) on the destination directory, exclusive, around
 * the check of the file held and the link or rename. Each process checks versions at admission
 * too, but only the commit can see what another process stored meanwhile: without the lock, an
 * old version that took long to download replaced a newer one stored during its download.
 * - The directory is open already (the commits keep it, see open_parent), so the lock costs one
 *   flock(2) each way and nothing to open; no lock file to create, keep out of the served tree or
 *   clean up after a crash: a process's locks go with it.
 * - flock locks belong to the open file description: each process has its own open of the
 *   directory, so they exclude one another; within a process commits come from one thread at a
 *   time, so it never waits for itself.
 * - Commits into one directory are serialised among the processes, each for one fstatat(2) and
 *   one link or rename (and a checksum when the pubTimes are equal, which is rare): a few
 *   microseconds. Per-file locks would take a lock file per name; fcntl(2) write locks need a
 *   descriptor open for writing, which a directory cannot have.
 * - The fsyncs stay outside: the file's before the lock, the directory's after.
 * The lock is advisory: what replaces files by other means (cp, rsync, tree_tmp_commit) is not
 * held back, nor judged other than by the mtime it leaves. */
static bool lock_dir(const struct tree *t, int fd)
{
    while (flock(fd, LOCK_EX) < 0) {
        if (errno == EINTR) continue;
        /* Some filesystems (NFS without local locks, some FUSE ones) refuse: committing
         * unlocked, as before the lock existed, beats storing nothing. */
        if (!atomic_exchange(&flock_unsupported_noted, true))
            log_warn("tree: cannot lock directories of %s (%s): the commits of processes sharing "
                     "it are not ordered",
                     t->path, strerror(errno));
        return false;
    }
    return true;
}

static void unlock_dir(int fd)
{
    int saved = errno;
    flock(fd, LOCK_UN);
    errno = saved;
}

static enum wm_err sum_of_open(const char *clean_rel, int fd, const struct stat *st,
                               enum wm_sum method, bool fresh, struct wm_checksum *held);

/* The checksum by method of the regular file last in directory pfd. */
static enum wm_err held_sum(int pfd, const char *last, const char *clean_rel, enum wm_sum method,
                            struct wm_checksum *held)
{
    int fd = openat(pfd, last, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return err_from_errno(errno);
    struct stat st;
    enum wm_err err = WM_ERR_IO;
    if (fstat(fd, &st) == 0)
        err = S_ISREG(st.st_mode) ? sum_of_open(clean_rel, fd, &st, method, false, held)
                                  : WM_ERR_NOTFOUND;
    close_keep_errno(fd);
    return err;
}

/* Decides, under the lock, whether v may go at last in directory pfd: *out is WM_TREE_STORED
 * when it may (nothing there, an older regular file, or something that is no regular file,
 * which place() replaces or refuses as it always did). *occupied says whether an entry is
 * there. */
static enum wm_err judge(int pfd, const char *last, const char *clean_rel, const struct version *v,
                         enum tree_outcome *out, bool *occupied)
{
    struct stat st;
    *out = WM_TREE_STORED;
    *occupied = false;
    if (fstatat(pfd, last, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? WM_OK : err_from_errno(errno);
    *occupied = true;
    if (!S_ISREG(st.st_mode)) return WM_OK;
    int64_t held_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (held_ns != v->pubtime_ns) {
        if (held_ns > v->pubtime_ns) *out = WM_TREE_HELD_NEWER;
        return WM_OK;
    }
    /* The same pubTime: the same version when the checksums agree; otherwise the one held stays,
     * as at admission, so that two versions crossing in the mesh cannot chase each other. The
     * xattr is trusted as tree_lookup trusts it for a live announcement. */
    struct wm_checksum held;
    enum wm_err err = held_sum(pfd, last, clean_rel, v->sum->method, &held);
    if (err == WM_ERR_NOTFOUND) { /* removed meanwhile by something that does not lock */
        *occupied = false;
        return WM_OK;
    }
    /* An opaque checksum that the file does not carry: holding the name is all one can know,
     * and admission takes that for the same version too. */
    if (err == WM_ERR_NOSUM) {
        *out = WM_TREE_HELD_SAME;
        return WM_OK;
    }
    if (err != WM_OK) return err;
    *out = integrity_equal(&held, v->sum) ? WM_TREE_HELD_SAME : WM_TREE_HELD_NEWER;
    return WM_OK;
}

/* tree_tmp_commit (v NULL: whatever is held is replaced, no lock) and tree_tmp_commit_version. */
static enum wm_err commit(struct tree *t, struct tree_tmp *tmp, const char *clean_rel,
                          const struct version *v, enum tree_outcome *outcome)
{
    if (!t || !tmp || tmp->fd < 0) return WM_ERR_INVAL;
    enum wm_err err = WM_ERR_UNSAFE;
    enum tree_outcome judged = WM_TREE_STORED;
    int pfd = -1;
    bool owned = false, locked = false, occupied = false;
    const char *last = NULL;
    if (!rel_is_clean(clean_rel)) goto done;
    /* Content before name: after a crash the xattr must never vouch for missing bytes. */
    if (t->sync && fsync(tmp->fd) < 0) {
        err = WM_ERR_IO;
        goto done;
    }
    for (int attempt = 0;; attempt++) {
        err = open_parent(t, clean_rel, &pfd, &owned, &last);
        if (err != WM_OK) goto done;
        if (v) {
            locked = lock_dir(t, pfd);
            err = judge(pfd, last, clean_rel, v, &judged, &occupied);
            if (err != WM_OK) goto done;
            if (judged != WM_TREE_STORED) goto done; /* tmp is discarded */
        }
        if (place(t, tmp, pfd, last, occupied) == 0) break;
        if (locked) unlock_dir(pfd);
        locked = false;
        /* Linux refuses new entries in a removed directory (ENOENT): the retention thread or
         * another process may have pruned it since it was opened, and a cached descriptor
         * lives long. Resolve it afresh, creating it again, once. */
        if (errno == ENOENT && pfd != t->dirfd && attempt == 0) {
            if (owned)
                close(pfd);
            else
                cache_drop(t, pfd);
            pfd = -1;
            continue;
        }
        /* A directory at the destination is never replaced by a file. */
        bool dir = errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST;
        err = dir ? WM_ERR_EXISTS : err_from_errno(errno);
        goto done;
    }
    if (locked) unlock_dir(pfd);
    locked = false;
    close(tmp->fd);
    tmp->fd = -1;
    tmp->name[0] = '\0';
    if (!t->sync) t->unsynced = true;
    sync_dir(t, pfd, clean_rel);
done:
    if (locked) unlock_dir(pfd);
    if (owned) close_keep_errno(pfd);
    tree_tmp_discard(t, tmp); /* a no-op once committed */
    if (outcome) *outcome = judged;
    return err;
}

enum wm_err tree_tmp_commit(struct tree *t, struct tree_tmp *tmp, const char *clean_rel)
{
    return commit(t, tmp, clean_rel, NULL, NULL);
}

enum wm_err tree_tmp_commit_version(struct tree *t, struct tree_tmp *tmp, const char *clean_rel,
                                    int64_t pubtime_ns, const struct wm_checksum *sum,
                                    enum tree_outcome *outcome)
{
    if (outcome) *outcome = WM_TREE_STORED;
    if (!t || !sum || !outcome) {
        tree_tmp_discard(t, tmp);
        return WM_ERR_INVAL;
    }
    struct version v = {.pubtime_ns = pubtime_ns, .sum = sum};
    return commit(t, tmp, clean_rel, &v, outcome);
}

/* ---- lookups ---- */

/* The checksum by method of the open regular file fd (its stat in st), from its bytes; cached
 * in its xattr when worth it. The xattr lands on the inode just read, even if the name was
 * replaced meanwhile. */
static enum wm_err compute_sum(const char *clean_rel, int fd, const struct stat *st,
                               enum wm_sum method, struct wm_checksum *out)
{
    const char *slash = strrchr(clean_rel, '/');
    const char *name = slash ? slash + 1 : clean_rel;
    enum wm_err err = WM_ERR_IO;
    if (st->st_size <= WM_TREE_SUM_CACHE_MIN) {
        /* One read; a file that changed length since the fstat is read the long way. */
        unsigned char bytes[WM_TREE_SUM_CACHE_MIN + 1];
        ssize_t n = pread(fd, bytes, sizeof bytes, 0);
        if (n == st->st_size) err = integrity_of_buffer(method, name, bytes, (size_t)n, out);
    }
    if (err != WM_OK) err = integrity_of_fd(method, name, fd, out);
    /* Failing to cache costs a rehash later, not a wrong answer now. */
    if (err == WM_OK && worth_caching(method, st->st_size) && store_sum(fd, out) != WM_OK)
        log_debug("tree: cannot cache the checksum of %s: %s", clean_rel, strerror(errno));
    return err;
}

static bool computable(enum wm_sum method)
{
    return integrity_is_digest(method) || method == WM_SUM_MD5NAME;
}

/* The checksum by method of the open regular file fd (st: its stat), as tree_lookup tells it. */
static enum wm_err sum_of_open(const char *clean_rel, int fd, const struct stat *st,
                               enum wm_sum method, bool fresh, struct wm_checksum *held)
{
    if (!computable(method)) return load_sum(fd, held);
    if (fresh || !worth_caching(method, st->st_size) || load_sum(fd, held) != WM_OK ||
        held->method != method)
        return compute_sum(clean_rel, fd, st, method, held);
    return WM_OK;
}

enum wm_err tree_lookup(struct tree *t, const char *clean_rel, enum wm_sum method, bool fresh,
                        struct wm_checksum *held, struct tree_times *times)
{
    if (!t || !clean_rel || !held) return WM_ERR_INVAL;
    int fd = -1;
    struct stat st;
    enum wm_err err = open_regular(t, clean_rel, &fd, &st);
    if (err != WM_OK) return err;
    if (times) {
        times->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        times->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    }
    err = sum_of_open(clean_rel, fd, &st, method, fresh, held);
    close(fd);
    return err;
}

enum wm_err tree_open_file(struct tree *t, const char *clean_rel, int *fd, off_t *size,
                           int64_t *mtime_ns)
{
    if (!fd) return WM_ERR_INVAL;
    *fd = -1;
    if (!t || !clean_rel) return WM_ERR_INVAL;
    struct stat st;
    enum wm_err err = open_regular(t, clean_rel, fd, &st);
    if (err != WM_OK) return err;
    if (size) *size = st.st_size;
    if (mtime_ns) *mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return WM_OK;
}
