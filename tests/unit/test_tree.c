/* test_tree.c: relPath cleaning, temporary files, commits (of versions too, by two processes at
 * once), xattr checksums and the refusal of symlinks, dot-files and temporary files, with
 * openat2 and with the component walk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "tree.h"
#include "tree_spares.h"

static char base[64];     /* the mkdtemp directory holding everything below */
static char root[128];    /* the tree */
static char outside[128]; /* a directory outside the tree that must stay empty */

/* ---- helpers ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void join(char *out, size_t outlen, const char *dir, const char *rel)
{
    int n = snprintf(out, outlen, "%s/%s", dir, rel);
    if (n < 0 || (size_t)n >= outlen) {
        fprintf(stderr, "path too long: %s/%s\n", dir, rel);
        exit(1);
    }
}

static int write_path(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Reads a whole small file into out; returns its length or -1. */
static ssize_t read_fd(int fd, char *out, size_t outlen)
{
    size_t used = 0;
    ssize_t n;
    while (used + 1 < outlen && (n = read(fd, out + used, outlen - 1 - used)) > 0)
        used += (size_t)n;
    out[used] = '\0';
    return (ssize_t)used;
}

static ssize_t read_path(const char *path, char *out, size_t outlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read_fd(fd, out, outlen);
    close(fd);
    return n;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static void md5_of_hello(struct wm_checksum *sum)
{
    static const unsigned char digest[16] = {0x5d, 0x41, 0x40, 0x2a, 0xbc, 0x4b, 0x2a, 0x76,
                                             0xb9, 0x71, 0x9d, 0x91, 0x10, 0x17, 0xc5, 0x92};
    memset(sum, 0, sizeof *sum);
    sum->method = WM_SUM_MD5;
    sum->len = sizeof digest;
    memcpy(sum->value, digest, sizeof digest);
}

static void assert_same_sum(const struct wm_checksum *a, const struct wm_checksum *b)
{
    ASSERT_EQ_INT(a->method, b->method);
    ASSERT_EQ_INT(a->len, b->len);
    ASSERT_EQ_MEM(a->value, b->value, a->len < sizeof a->value ? a->len : sizeof a->value);
}

/* Writes text into a new temporary file and commits it at rel. */
static enum wm_err put(struct tree *t, const char *rel, const char *text,
                       const struct wm_checksum *sum)
{
    struct tree_tmp tmp;
    enum wm_err err = tree_tmp_create(t, &tmp);
    if (err != WM_OK) return err;
    size_t len = strlen(text);
    if (write(tmp.fd, text, len) != (ssize_t)len ||
        (sum && tree_tmp_set_sum(&tmp, sum, (int64_t)len) != WM_OK)) {
        tree_tmp_discard(t, &tmp);
        return WM_ERR_IO;
    }
    return tree_tmp_commit(t, &tmp, rel);
}

/* text of len bytes (len < 64 KiB), every byte from seed: a file above
 * WM_TREE_SUM_CACHE_MIN. */
static const char *big_text(size_t len, char seed)
{
    static char text[64 * 1024];
    for (size_t i = 0; i < len; i++)
        text[i] = (char)('a' + (seed + i) % 26);
    text[len] = '\0';
    return text;
}

/* The xattr's text on path; "" when it has none. */
static const char *xattr_of(const char *path)
{
    static char text[512];
    ssize_t n = lgetxattr(path, WM_XATTR_SUM, text, sizeof text - 1);
    text[n > 0 ? n : 0] = '\0';
    return text;
}

/* ---- tree_clean_relpath ---- */

struct clean_case {
    const char *in;
    enum wm_err err;
    const char *out; /* expected on WM_OK */
};

static const struct clean_case clean_cases[] = {
    {"a/b.txt", WM_OK, "a/b.txt"},
    {"/a/b", WM_OK, "a/b"},
    {"//a//b", WM_OK, "a/b"},
    {"///a", WM_OK, "a"},
    {"./a/./b", WM_OK, "a/b"},
    {"%2e/a", WM_OK, "a"},
    {"/20190120/WIS/CA/CMC/UpperAir/04/UANT01_CWAO_200445___15103.txt", WM_OK,
     "20190120/WIS/CA/CMC/UpperAir/04/UANT01_CWAO_200445___15103.txt"},
    {"a%20b", WM_OK, "a b"},
    {"50%25off", WM_OK, "50%off"},
    {"100%", WM_OK, "100%"},
    {"a%zzb", WM_OK, "a%zzb"},
    {"a%4", WM_OK, "a%4"},
    {"a\\b", WM_OK, "a\\b"},
    {"a\\..\\b", WM_OK, "a\\..\\b"},
    {"a..b/c.", WM_OK, "a..b/c."},
    {"a b/c+d~e", WM_OK, "a b/c+d~e"},
    {"donn\303\251es/\303\251t\303\251.txt", WM_OK, "donn\303\251es/\303\251t\303\251.txt"},
    {"\xe6\x97\xa5\xe6\x9c\xac/%E5%A4%A9.bufr", WM_OK,
     "\xe6\x97\xa5\xe6\x9c\xac/\xe5\xa4\xa9.bufr"},
    {"..", WM_ERR_UNSAFE, NULL},
    {"../a", WM_ERR_UNSAFE, NULL},
    {"a/../b", WM_ERR_UNSAFE, NULL},
    {"a/b/..", WM_ERR_UNSAFE, NULL},
    {"/../../etc/passwd", WM_ERR_UNSAFE, NULL},
    {"%2e%2e", WM_ERR_UNSAFE, NULL},
    {"%2e%2e/x", WM_ERR_UNSAFE, NULL},
    {"%2E%2e/x", WM_ERR_UNSAFE, NULL},
    {"a/.%2E/b", WM_ERR_UNSAFE, NULL},
    {"..%2fx", WM_ERR_UNSAFE, NULL},
    {"..%2Fx", WM_ERR_UNSAFE, NULL},
    {"a%2F..%2Fb", WM_ERR_UNSAFE, NULL},
    {"a%2fb", WM_ERR_UNSAFE, NULL},
    {"a%00b", WM_ERR_UNSAFE, NULL},
    {"a\001b", WM_ERR_UNSAFE, NULL},
    {"a\tb", WM_ERR_UNSAFE, NULL},
    {"a\nb", WM_ERR_UNSAFE, NULL},
    {"a\x7f", WM_ERR_UNSAFE, NULL},
    {"a%0Ab", WM_ERR_UNSAFE, NULL},
    {"a%1fb", WM_ERR_UNSAFE, NULL},
    {".hidden", WM_ERR_UNSAFE, NULL},
    {"a/.hidden/b", WM_ERR_UNSAFE, NULL},
    {"%2ehidden", WM_ERR_UNSAFE, NULL},
    {"...", WM_ERR_UNSAFE, NULL},
    {".wmesh-tmp/x", WM_ERR_UNSAFE, NULL},
    {"/.wmesh-tmp/tmp.1.2.3", WM_ERR_UNSAFE, NULL},
    {"", WM_ERR_UNSAFE, NULL},
    {"/", WM_ERR_UNSAFE, NULL},
    {"//", WM_ERR_UNSAFE, NULL},
    {".", WM_ERR_UNSAFE, NULL},
    {"./.", WM_ERR_UNSAFE, NULL},
    {"a/", WM_ERR_UNSAFE, NULL},
    {"a/b/", WM_ERR_UNSAFE, NULL},
    {"a/.", WM_ERR_UNSAFE, NULL},
};

static void test_clean_table(void)
{
    char out[PATH_MAX];
    for (size_t i = 0; i < sizeof clean_cases / sizeof clean_cases[0]; i++) {
        const struct clean_case *c = &clean_cases[i];
        snprintf(out, sizeof out, "junk");
        enum wm_err err = tree_clean_relpath(c->in, out, sizeof out);
        if (err != c->err) fprintf(stderr, "case %zu: \"%s\"\n", i, c->in);
        ASSERT_EQ_INT(err, c->err);
        ASSERT_EQ_STR(out, c->out ? c->out : "");
    }
}

static void test_clean_lengths(void)
{
    char in[3 * 300 + 1], out[PATH_MAX];
    memset(in, 'x', NAME_MAX);
    in[NAME_MAX] = '\0';
    ASSERT_EQ_INT(tree_clean_relpath(in, out, sizeof out), WM_OK);
    ASSERT_EQ_INT(strlen(out), NAME_MAX);
    in[NAME_MAX] = 'x';
    in[NAME_MAX + 1] = '\0';
    ASSERT_EQ_INT(tree_clean_relpath(in, out, sizeof out), WM_ERR_TOOBIG);
    ASSERT_EQ_STR(out, "");

    /* The limit applies to the decoded name: 255 "%78" is 765 bytes of input but "x" * 255. */
    for (int i = 0; i < NAME_MAX; i++)
        memcpy(in + 3 * i, "%78", 3);
    in[3 * NAME_MAX] = '\0';
    ASSERT_EQ_INT(tree_clean_relpath(in, out, sizeof out), WM_OK);
    ASSERT_EQ_INT(strlen(out), NAME_MAX);

    /* Twenty-one components of 200 bytes make more than PATH_MAX. */
    static char long_path[21 * 201 + 1];
    for (int i = 0; i < 21; i++) {
        memset(long_path + 201 * i, 'y', 200);
        long_path[201 * i + 200] = '/';
    }
    long_path[21 * 201 - 1] = '\0';
    ASSERT_EQ_INT(tree_clean_relpath(long_path, out, sizeof out), WM_ERR_TOOBIG);

    ASSERT_EQ_INT(tree_clean_relpath("/abcdef", out, 7), WM_OK);
    ASSERT_EQ_STR(out, "abcdef");
    ASSERT_EQ_INT(tree_clean_relpath("/abcdef", out, 6), WM_ERR_TOOBIG);
    ASSERT_EQ_INT(tree_clean_relpath(NULL, out, sizeof out), WM_ERR_INVAL);
    ASSERT_EQ_INT(tree_clean_relpath("a", NULL, 0), WM_ERR_INVAL);
    ASSERT_EQ_INT(tree_clean_relpath("a", out, 0), WM_ERR_INVAL);
}

/* ---- the tree ---- */

static void test_open_empties_tmpdir(void)
{
    char path[PATH_MAX], sub[PATH_MAX];
    join(path, sizeof path, root, WM_TREE_TMPDIR);
    ASSERT_EQ_INT(mkdir(root, 0755), 0);
    ASSERT_EQ_INT(mkdir(path, 0755), 0);
    join(sub, sizeof sub, path, "tmp.leftover");
    ASSERT_EQ_INT(write_path(sub, "partial"), 0);
    join(sub, sizeof sub, path, "olddir");
    ASSERT_EQ_INT(mkdir(sub, 0755), 0);
    join(sub, sizeof sub, path, "olddir/f");
    ASSERT_EQ_INT(write_path(sub, "x"), 0);

    struct tree *t = tree_open(root);
    ASSERT_TRUE(t != NULL);
    ASSERT_EQ_INT(count_entries(path), 0);
    struct stat st;
    ASSERT_EQ_INT(lstat(path, &st), 0);
    ASSERT_EQ_INT(st.st_mode & 07777, 0700);
    ASSERT_TRUE(tree_dirfd(t) >= 0);
    ASSERT_EQ_STR(tree_path(t), root);
    tree_close(&t);
    ASSERT_TRUE(t == NULL);
    tree_close(&t);

    /* A missing root is created, parents included. */
    join(path, sizeof path, base, "new/deeper/tree");
    t = tree_open(path);
    ASSERT_TRUE(t != NULL);
    tree_close(&t);
    ASSERT_TRUE(tree_open("") == NULL);
}

/* Named temporary files have names of their own; unnamed ones (O_TMPFILE, where the filesystem
 * has it) leave no entry. Either way each is a file of its own. */
static void test_tmp_files_distinct(struct tree *t, bool named)
{
    struct tree_tmp tmps[50];
    int ok = 1;
    for (int i = 0; i < 50; i++) {
        ASSERT_EQ_INT(tree_tmp_create(t, &tmps[i]), WM_OK);
        ASSERT_EQ_INT(tmps[i].name[0] != '\0', named);
        for (int j = 0; j < i; j++)
            if (named && strcmp(tmps[i].name, tmps[j].name) == 0) ok = 0;
    }
    ASSERT_TRUE(ok);
    struct stat a, b;
    ASSERT_EQ_INT(fstat(tmps[0].fd, &a), 0);
    ASSERT_EQ_INT(fstat(tmps[49].fd, &b), 0);
    ASSERT_TRUE(a.st_ino != b.st_ino);
    char path[PATH_MAX];
    join(path, sizeof path, root, WM_TREE_TMPDIR);
    ASSERT_EQ_INT(count_entries(path), named ? 50 : 0);
    for (int i = 0; i < 50; i++)
        tree_tmp_discard(t, &tmps[i]);
    ASSERT_EQ_INT(count_entries(path), 0);
    ASSERT_EQ_INT(tmps[0].fd, -1);
}

static void assert_tmpdir_empty(void);

static int count_open_fds(void)
{
    return count_entries("/proc/self/fd") - 1; /* less the one opendir uses */
}

/* Temporary names carry the pid (read once per tree), and the temporary files of other live
 * processes sharing the tree survive a peer starting, while a dead one's are removed. */
static void test_tmp_names_across_processes(void)
{
    char prefix[64], path[PATH_MAX];
    snprintf(prefix, sizeof prefix, "tmp.%ld.", (long)getpid());
    struct tree *t = tree_attach(root);
    ASSERT_TRUE(t != NULL);
    if (!t) return;
    tree_name_tmp_files(t);
    struct tree_tmp mine;
    ASSERT_EQ_INT(tree_tmp_create(t, &mine), WM_OK);
    ASSERT_TRUE(strncmp(mine.name, prefix, strlen(prefix)) == 0);

    /* A child creates one and stays alive until told to go. */
    int to_child[2], from_child[2];
    ASSERT_EQ_INT(pipe(to_child), 0);
    ASSERT_EQ_INT(pipe(from_child), 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct tree *c = tree_attach(root);
        tree_name_tmp_files(c);
        struct tree_tmp tmp;
        char name[sizeof tmp.name] = "";
        if (c && tree_tmp_create(c, &tmp) == WM_OK) memcpy(name, tmp.name, sizeof name);
        ssize_t w = write(from_child[1], name, sizeof name);
        char go;
        ssize_t r = read(to_child[0], &go, 1);
        _exit(w == (ssize_t)sizeof name && r >= 0 ? 0 : 1);
    }
    char theirs[sizeof mine.name] = "";
    ASSERT_TRUE(pid > 0);
    ASSERT_EQ_INT(read(from_child[0], theirs, sizeof theirs), sizeof theirs);
    char child_prefix[64];
    snprintf(child_prefix, sizeof child_prefix, "tmp.%ld.", (long)pid);
    ASSERT_TRUE(strncmp(theirs, child_prefix, strlen(child_prefix)) == 0);
    ASSERT_TRUE(strcmp(theirs, mine.name) != 0);

    /* A peer starting on the tree keeps the live child's file. */
    join(path, sizeof path, root, WM_TREE_TMPDIR "/");
    strncat(path, theirs, sizeof path - strlen(path) - 1);
    struct tree *other = tree_open(root);
    ASSERT_TRUE(other != NULL);
    tree_close(&other);
    ASSERT_EQ_INT(access(path, F_OK), 0);

    /* Once the child is gone, the next start removes it. */
    ASSERT_EQ_INT(write(to_child[1], "x", 1), 1);
    int status = 0;
    ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    other = tree_open(root);
    ASSERT_TRUE(other != NULL);
    tree_close(&other);
    ASSERT_EQ_INT(access(path, F_OK), -1);
    close(to_child[0]);
    close(to_child[1]);
    close(from_child[0]);
    close(from_child[1]);
    tree_tmp_discard(t, &mine);
    tree_close(&t);
}

/* The directories commits rename into stay open, within a bound, and closed with the tree. */
static void test_dir_cache_bound(void)
{
    int before = count_open_fds();
    struct tree *t = tree_attach(root);
    ASSERT_TRUE(t != NULL);
    if (!t) return;
    int opened = count_open_fds() - before;
    char rel[64];
    bool all_ok = true;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 100; i++) {
            snprintf(rel, sizeof rel, "many/d%03d/f", i);
            if (put(t, rel, "x", NULL) != WM_OK) all_ok = false;
        }
    }
    ASSERT_TRUE(all_ok);
    int kept = count_open_fds() - before - opened;
    ASSERT_TRUE(kept > 0 && kept <= 64);
    tree_close(&t);
    ASSERT_EQ_INT(count_open_fds(), before);
}

/* A directory the commits hold open may be removed meanwhile (the retention thread prunes
 * empty ones, other processes share the tree): the next commit recreates it. One replaced by a
 * symlink is refused, as it always was. */
static void test_dir_cache_pruned(struct tree *t)
{
    char path[PATH_MAX], text[64];
    ASSERT_EQ_INT(put(t, "pr/a/f1", "one", NULL), WM_OK);
    join(path, sizeof path, root, "pr/a/f1");
    ASSERT_EQ_INT(unlink(path), 0);
    join(path, sizeof path, root, "pr/a");
    ASSERT_EQ_INT(rmdir(path), 0);
    join(path, sizeof path, root, "pr");
    ASSERT_EQ_INT(rmdir(path), 0);
    ASSERT_EQ_INT(put(t, "pr/a/f2", "two", NULL), WM_OK);
    join(path, sizeof path, root, "pr/a/f2");
    ASSERT_EQ_INT(read_path(path, text, sizeof text), 3);
    ASSERT_EQ_STR(text, "two");

    ASSERT_EQ_INT(put(t, "sw/f1", "one", NULL), WM_OK);
    join(path, sizeof path, root, "sw/f1");
    ASSERT_EQ_INT(unlink(path), 0);
    join(path, sizeof path, root, "sw");
    ASSERT_EQ_INT(rmdir(path), 0);
    ASSERT_EQ_INT(symlink(outside, path), 0);
    ASSERT_EQ_INT(put(t, "sw/f2", "evil", NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(count_entries(outside), 0);
    assert_tmpdir_empty();
}

/* A directory moved away by hand may receive files for up to a second (tree.h); then the path
 * is resolved again. */
static void test_dir_cache_expires(struct tree *t)
{
    char path[PATH_MAX], moved[PATH_MAX];
    ASSERT_EQ_INT(put(t, "mv/a/f1", "one", NULL), WM_OK);
    join(path, sizeof path, root, "mv/a");
    join(moved, sizeof moved, root, "mv/b");
    ASSERT_EQ_INT(rename(path, moved), 0);
    struct timespec pause = {.tv_sec = 1, .tv_nsec = 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    ASSERT_EQ_INT(put(t, "mv/a/f2", "two", NULL), WM_OK);
    join(path, sizeof path, root, "mv/a/f2");
    ASSERT_EQ_INT(access(path, F_OK), 0);
    join(path, sizeof path, root, "mv/b/f2");
    ASSERT_EQ_INT(access(path, F_OK), -1);
}

static void test_commit_and_lookup(struct tree *t)
{
    struct wm_checksum sum, got;
    md5_of_hello(&sum);
    ASSERT_EQ_INT(put(t, "x/y/z/hello.txt", "hello", &sum), WM_OK);

    char path[PATH_MAX], text[512];
    join(path, sizeof path, root, "x/y/z/hello.txt");
    ASSERT_EQ_INT(read_path(path, text, sizeof text), 5);
    ASSERT_EQ_STR(text, "hello");
    /* Small enough to hash again: no xattr, the lookup computes the checksum. */
    ASSERT_EQ_STR(xattr_of(path), "");
    join(path, sizeof path, root, "x/y");
    struct stat st;
    ASSERT_EQ_INT(lstat(path, &st), 0);
    ASSERT_TRUE(S_ISDIR(st.st_mode));
    ASSERT_EQ_INT(st.st_mode & 0777, 0755 & ~022);

    memset(&got, 0, sizeof got);
    ASSERT_EQ_INT(tree_lookup(t, "x/y/z/hello.txt", WM_SUM_MD5, false, &got, NULL), WM_OK);
    assert_same_sum(&got, &sum);
    ASSERT_EQ_INT(tree_lookup(t, "x/y/z/hello.txt", WM_SUM_NONE, false, &got, NULL), WM_ERR_NOSUM);
    ASSERT_EQ_INT(tree_lookup(t, "x/y/z/absent", WM_SUM_MD5, false, &got, NULL), WM_ERR_NOTFOUND);
    ASSERT_EQ_INT(tree_lookup(t, "x/y/z/hello.txt/below", WM_SUM_MD5, false, &got, NULL),
                  WM_ERR_NOTFOUND);
    ASSERT_EQ_INT(tree_lookup(t, "x/y", WM_SUM_MD5, false, &got, NULL), WM_ERR_NOTFOUND);

    /* A bigger file keeps its checksum in the xattr, and the lookup reads it from there. */
    const char *big = big_text(WM_TREE_SUM_CACHE_MIN + 1, 0);
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA512, "big", big, strlen(big), &sum), WM_OK);
    ASSERT_EQ_INT(put(t, "x/big", big, &sum), WM_OK);
    join(path, sizeof path, root, "x/big");
    ASSERT_TRUE(strstr(xattr_of(path), "\"sha512\"") != NULL);
    memset(&got, 0, sizeof got);
    ASSERT_EQ_INT(tree_lookup(t, "x/big", WM_SUM_NONE, false, &got, NULL), WM_OK);
    assert_same_sum(&got, &sum);

    /* Present without a checksum, or with a checksum that does not parse. */
    ASSERT_EQ_INT(put(t, "nosum.bin", "data", NULL), WM_OK);
    ASSERT_EQ_INT(tree_lookup(t, "nosum.bin", WM_SUM_NONE, false, &got, NULL), WM_ERR_NOSUM);
    join(path, sizeof path, root, "nosum.bin");
    ASSERT_EQ_INT(lsetxattr(path, WM_XATTR_SUM, "{not json", 9, 0), 0);
    ASSERT_EQ_INT(tree_lookup(t, "nosum.bin", WM_SUM_NONE, false, &got, NULL), WM_ERR_NOSUM);
}

static void test_commit_replaces(struct tree *t)
{
    struct wm_checksum sum, got;
    md5_of_hello(&sum);
    ASSERT_EQ_INT(put(t, "r/file", "old content", NULL), WM_OK);
    char path[PATH_MAX], text[64];
    join(path, sizeof path, root, "r/file");
    /* A reader that opened the old version keeps reading it whole: the rename is atomic. */
    int old = open(path, O_RDONLY | O_CLOEXEC);
    ASSERT_TRUE(old >= 0);
    ASSERT_EQ_INT(put(t, "r/file", "hello", &sum), WM_OK);
    ASSERT_EQ_INT(read_path(path, text, sizeof text), 5);
    ASSERT_EQ_STR(text, "hello");
    ASSERT_EQ_INT(read_fd(old, text, sizeof text), 11);
    ASSERT_EQ_STR(text, "old content");
    close(old);
    ASSERT_EQ_INT(tree_lookup(t, "r/file", WM_SUM_MD5, false, &got, NULL), WM_OK);
    assert_same_sum(&got, &sum);
    /* A top-level name works too. */
    ASSERT_EQ_INT(put(t, "top", "hello", &sum), WM_OK);
    ASSERT_EQ_INT(tree_lookup(t, "top", WM_SUM_MD5, false, &got, NULL), WM_OK);
}

static void assert_tmpdir_empty(void)
{
    char path[PATH_MAX];
    join(path, sizeof path, root, WM_TREE_TMPDIR);
    ASSERT_EQ_INT(count_entries(path), 0);
}

static void test_commit_refusals(struct tree *t)
{
    char path[PATH_MAX];
    /* tree/a -> outside: writing a/b must not land in outside. */
    join(path, sizeof path, root, "a");
    ASSERT_EQ_INT(symlink(outside, path), 0);
    ASSERT_EQ_INT(put(t, "a/b", "evil", NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(put(t, "a/c/d", "evil", NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(count_entries(outside), 0);
    assert_tmpdir_empty();

    /* A deeper symlink, below a real directory. */
    join(path, sizeof path, root, "deep");
    ASSERT_EQ_INT(mkdir(path, 0755), 0);
    join(path, sizeof path, root, "deep/link");
    ASSERT_EQ_INT(symlink(outside, path), 0);
    ASSERT_EQ_INT(put(t, "deep/link/x", "evil", NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(count_entries(outside), 0);

    /* A regular file where a directory is needed, and a directory at the destination. */
    ASSERT_EQ_INT(put(t, "plain", "f", NULL), WM_OK);
    ASSERT_EQ_INT(put(t, "plain/x", "f", NULL), WM_ERR_EXISTS);
    ASSERT_EQ_INT(put(t, "deep", "f", NULL), WM_ERR_EXISTS);
    join(path, sizeof path, root, "deep");
    struct stat st;
    ASSERT_EQ_INT(lstat(path, &st), 0);
    ASSERT_TRUE(S_ISDIR(st.st_mode));

    /* Paths that tree_clean_relpath would never give. */
    ASSERT_EQ_INT(put(t, "../escape", "f", NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(put(t, "/etc/x", "f", NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(put(t, ".wmesh-tmp/x", "f", NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(put(t, "a//b", "f", NULL), WM_ERR_UNSAFE);
    assert_tmpdir_empty();

    /* Replacing a symlink at the destination replaces the link, not its target. */
    char target[PATH_MAX];
    join(target, sizeof target, outside, "victim");
    join(path, sizeof path, root, "lastlink");
    ASSERT_EQ_INT(symlink(target, path), 0);
    ASSERT_EQ_INT(put(t, "lastlink", "mine", NULL), WM_OK);
    ASSERT_EQ_INT(count_entries(outside), 0);
    ASSERT_EQ_INT(lstat(path, &st), 0);
    ASSERT_TRUE(S_ISREG(st.st_mode));
}

static void test_lookup_and_open_refusals(struct tree *t)
{
    struct wm_checksum sum, got;
    md5_of_hello(&sum);
    ASSERT_EQ_INT(put(t, "real.txt", "hello", &sum), WM_OK);
    char path[PATH_MAX], target[PATH_MAX];
    join(path, sizeof path, root, "ln.txt");
    join(target, sizeof target, root, "real.txt");
    ASSERT_EQ_INT(symlink(target, path), 0);
    ASSERT_EQ_INT(tree_lookup(t, "ln.txt", WM_SUM_MD5, false, &got, NULL), WM_ERR_UNSAFE);
    join(path, sizeof path, root, "rel.txt");
    ASSERT_EQ_INT(symlink("real.txt", path), 0);
    ASSERT_EQ_INT(tree_lookup(t, "rel.txt", WM_SUM_MD5, false, &got, NULL), WM_ERR_UNSAFE);

    int fd = -1;
    off_t size = -1;
    ASSERT_EQ_INT(tree_open_file(t, "real.txt", &fd, &size, NULL), WM_OK);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ_INT(size, 5);
    if (fd >= 0) close(fd);
    ASSERT_EQ_INT(tree_open_file(t, "ln.txt", &fd, &size, NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(fd, -1);
    ASSERT_EQ_INT(tree_open_file(t, "a/b", &fd, &size, NULL), WM_ERR_UNSAFE); /* through a link */
    ASSERT_EQ_INT(tree_open_file(t, "deep", &fd, &size, NULL), WM_ERR_NOTFOUND);
    ASSERT_EQ_INT(tree_open_file(t, "missing", &fd, &size, NULL), WM_ERR_NOTFOUND);

    /* Dot-files and temporary files exist on disk but are never handed out. */
    join(path, sizeof path, root, ".secret");
    ASSERT_EQ_INT(write_path(path, "s"), 0);
    ASSERT_EQ_INT(tree_open_file(t, ".secret", &fd, &size, NULL), WM_ERR_UNSAFE);
    struct tree_tmp tmp;
    ASSERT_EQ_INT(tree_tmp_create(t, &tmp), WM_OK);
    char rel[PATH_MAX];
    join(rel, sizeof rel, WM_TREE_TMPDIR, tmp.name);
    ASSERT_EQ_INT(tree_open_file(t, rel, &fd, &size, NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(tree_lookup(t, rel, WM_SUM_MD5, false, &got, NULL), WM_ERR_UNSAFE);
    tree_tmp_discard(t, &tmp);

    /* A FIFO must be refused without blocking. */
    join(path, sizeof path, root, "fifo");
    ASSERT_EQ_INT(mkfifo(path, 0644), 0);
    ASSERT_EQ_INT(tree_open_file(t, "fifo", &fd, &size, NULL), WM_ERR_NOTFOUND);
    ASSERT_EQ_INT(tree_lookup(t, "fifo", WM_SUM_MD5, false, &got, NULL), WM_ERR_NOTFOUND);
}

#define MD5_EMPTY_HEX "d41d8cd98f00b204e9800998ecf8427e"
#define SHA512_ABC_B64                                                                             \
    "3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw=="

static void test_sum_xattr_form(void)
{
    struct wm_checksum s, back;
    char text[256];
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA512, NULL, "abc", 3, &s), WM_OK);
    ASSERT_EQ_INT(tree_sum_format(&s, text, sizeof text), WM_OK);
    ASSERT_EQ_STR(text, "{\"method\":\"sha512\",\"value\":\"" SHA512_ABC_B64 "\"}");
    ASSERT_EQ_INT(tree_sum_parse(text, strlen(text), &back), WM_OK);
    ASSERT_TRUE(integrity_equal(&s, &back));
    ASSERT_EQ_INT(tree_sum_format(&s, text, 50), WM_ERR_TOOBIG);
    const char *hex = "{\"method\": \"md5\", \"value\": \"" MD5_EMPTY_HEX "\"}";
    ASSERT_EQ_INT(tree_sum_parse(hex, strlen(hex), &back), WM_OK);
    ASSERT_EQ_INT(back.method, WM_SUM_MD5);
    struct wm_checksum tag = {.method = WM_SUM_ARBITRARY, .len = 4, .value = "a\"b\\"};
    ASSERT_EQ_INT(tree_sum_format(&tag, text, sizeof text), WM_OK);
    ASSERT_EQ_STR(text, "{\"method\":\"arbitrary\",\"value\":\"a\\\"b\\\\\"}");
    ASSERT_EQ_INT(tree_sum_parse(text, strlen(text), &back), WM_OK);
    ASSERT_TRUE(integrity_equal(&tag, &back));
    static const char *const bad[] = {"",
                                      "{",
                                      "[]",
                                      "{\"method\":\"md5\"}",
                                      "{\"method\":\"x\",\"value\":\"\"}",
                                      "{\"method\":\"md5\",\"value\":\"abc\"}",
                                      "{\"method\":1,\"value\":\"abc\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (tree_sum_parse(bad[i], strlen(bad[i]), &back) == WM_OK)
            TEST_FAIL_AT("sum json \"%s\" was accepted", bad[i]);
        else
            test_passed++;
    }
}

/* The xattr form of sum written on path by hand, as another tool (or a crash) could leave. */
static void write_xattr(const char *path, const struct wm_checksum *sum)
{
    char text[512];
    ASSERT_EQ_INT(tree_sum_format(sum, text, sizeof text), WM_OK);
    ASSERT_EQ_INT(lsetxattr(path, WM_XATTR_SUM, text, strlen(text), 0), 0);
}

static void test_checksum(struct tree *t)
{
    struct wm_checksum expect, got, wrong;
    char path[PATH_MAX];

    /* A small file is hashed at each lookup and its checksum never cached, even one another
     * tool left there. */
    md5_of_hello(&expect);
    ASSERT_EQ_INT(put(t, "sums/h.txt", "hello", NULL), WM_OK);
    join(path, sizeof path, root, "sums/h.txt");
    wrong = expect;
    wrong.value[0] ^= 1;
    write_xattr(path, &wrong);
    memset(&got, 0, sizeof got);
    ASSERT_EQ_INT(tree_lookup(t, "sums/h.txt", WM_SUM_MD5, false, &got, NULL), WM_OK);
    assert_same_sum(&got, &expect);
    ASSERT_EQ_INT(lremovexattr(path, WM_XATTR_SUM), 0);
    ASSERT_EQ_INT(tree_lookup(t, "sums/h.txt", WM_SUM_MD5, false, &got, NULL), WM_OK);
    ASSERT_EQ_STR(xattr_of(path), "");
    /* md5name is the name's: nothing is read, nothing cached. */
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_MD5NAME, "h.txt", "", 0, &expect), WM_OK);
    ASSERT_EQ_INT(tree_lookup(t, "sums/h.txt", WM_SUM_MD5NAME, false, &got, NULL), WM_OK);
    assert_same_sum(&got, &expect);
    ASSERT_EQ_STR(xattr_of(path), "");

    /* A bigger one is hashed once, then read from its xattr. */
    const char *big = big_text(3 * WM_TREE_SUM_CACHE_MIN, 1);
    size_t len = strlen(big);
    ASSERT_EQ_INT(put(t, "sums/big", big, NULL), WM_OK);
    join(path, sizeof path, root, "sums/big");
    ASSERT_EQ_INT(tree_lookup(t, "sums/big", WM_SUM_NONE, false, &got, NULL), WM_ERR_NOSUM);
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA512, "big", big, len, &expect), WM_OK);
    memset(&got, 0, sizeof got);
    ASSERT_EQ_INT(tree_lookup(t, "sums/big", WM_SUM_SHA512, false, &got, NULL), WM_OK);
    assert_same_sum(&got, &expect);
    ASSERT_EQ_INT(tree_lookup(t, "sums/big", WM_SUM_NONE, false, &got, NULL), WM_OK);
    assert_same_sum(&got, &expect);
    /* The cache is trusted unless the bytes themselves are asked for (fresh), which mends it. */
    wrong = expect;
    wrong.value[0] ^= 1;
    write_xattr(path, &wrong);
    ASSERT_EQ_INT(tree_lookup(t, "sums/big", WM_SUM_SHA512, false, &got, NULL), WM_OK);
    assert_same_sum(&got, &wrong);
    ASSERT_EQ_INT(tree_lookup(t, "sums/big", WM_SUM_SHA512, true, &got, NULL), WM_OK);
    assert_same_sum(&got, &expect);
    ASSERT_EQ_INT(tree_lookup(t, "sums/big", WM_SUM_SHA512, false, &got, NULL), WM_OK);
    assert_same_sum(&got, &expect);
    /* Cached under another method: hashed with the one asked for, which is cached instead. */
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_MD5, "big", big, len, &expect), WM_OK);
    ASSERT_EQ_INT(tree_lookup(t, "sums/big", WM_SUM_MD5, false, &got, NULL), WM_OK);
    assert_same_sum(&got, &expect);
    ASSERT_EQ_INT(tree_lookup(t, "sums/big", WM_SUM_NONE, false, &got, NULL), WM_OK);
    assert_same_sum(&got, &expect);

    /* An opaque value cannot be told again from the bytes: kept whatever the size. */
    struct wm_checksum tag = {.method = WM_SUM_ARBITRARY, .len = 3, .value = "tag"};
    ASSERT_EQ_INT(put(t, "sums/tagged", "hello", &tag), WM_OK);
    ASSERT_EQ_INT(tree_lookup(t, "sums/tagged", WM_SUM_ARBITRARY, false, &got, NULL), WM_OK);
    assert_same_sum(&got, &tag);

    ASSERT_EQ_INT(tree_lookup(t, "ln.txt", WM_SUM_MD5, false, &got, NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(tree_lookup(t, "sums/none", WM_SUM_MD5, false, &got, NULL), WM_ERR_NOTFOUND);
}

/* Makes openat2 fail with ENOSYS for the rest of the process, as old kernels and some
 * container filters do, so that the component walk is exercised too. */
/* For the rest of the process: openat2 says ENOSYS, as on kernels before 5.6, and linkat with
 * AT_EMPTY_PATH says ENOENT, as it does to processes without CAP_DAC_READ_SEARCH before 6.10. */
static int forbid_openat2_and_flink(void)
{
#ifdef SYS_openat2
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_linkat, 0, 3),
        /* linkat's flags, the low half of its fifth argument (x86-64 and arm64 are little-endian)
         */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[4])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, AT_EMPTY_PATH, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOENT),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
#else
    return -1;
#endif
}

/* The pubTime of a stored version is its modification time, read back by tree_lookup. */
static void test_version_time(struct tree *t)
{
    struct tree_tmp tmp;
    struct wm_checksum sum, got;
    int64_t when = 1548000000123456789;
    struct tree_times times;
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA512, "v", "v1", 2, &sum), WM_OK);
    ASSERT_EQ_INT(tree_tmp_create(t, &tmp), WM_OK);
    ASSERT_EQ_INT(write(tmp.fd, "v1", 2), 2);
    ASSERT_EQ_INT(tree_tmp_set_time(&tmp, when), WM_OK);
    ASSERT_EQ_INT(tree_tmp_set_sum(&tmp, &sum, 2), WM_OK);
    ASSERT_EQ_INT(tree_tmp_commit(t, &tmp, "times/v"), WM_OK);
    ASSERT_EQ_INT(tree_lookup(t, "times/v", WM_SUM_SHA512, false, &got, &times), WM_OK);
    ASSERT_EQ_INT(times.mtime_ns, when);

    /* Labelled ahead of the commit, as the peer does. */
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA512, "v", "v2", 2, &sum), WM_OK);
    ASSERT_EQ_INT(tree_tmp_create(t, &tmp), WM_OK);
    ASSERT_EQ_INT(write(tmp.fd, "v2", 2), 2);
    ASSERT_EQ_INT(tree_tmp_set_time(&tmp, when + 1), WM_OK);
    ASSERT_EQ_INT(tree_tmp_set_sum(&tmp, &sum, 2), WM_OK);
    /* The change time says when the file joined the tree, not when it was labelled: the peer
     * tells the files it stored itself from those an earlier process left by it. */
    usleep(100000);
    struct timespec before, after;
    clock_gettime(CLOCK_REALTIME, &before);
    ASSERT_EQ_INT(tree_tmp_commit(t, &tmp, "times/v"), WM_OK);
    clock_gettime(CLOCK_REALTIME, &after);
    memset(&got, 0, sizeof got);
    ASSERT_EQ_INT(tree_lookup(t, "times/v", WM_SUM_SHA512, false, &got, &times), WM_OK);
    assert_same_sum(&got, &sum);
    ASSERT_EQ_INT(times.mtime_ns, when + 1);
    int64_t coarse_ns = 20000000; /* file times come from the kernel's coarse clock */
    ASSERT_TRUE(times.ctime_ns >= before.tv_sec * 1000000000LL + before.tv_nsec - coarse_ns);
    ASSERT_TRUE(times.ctime_ns <= after.tv_sec * 1000000000LL + after.tv_nsec);
    ASSERT_EQ_INT(tree_tmp_set_sum(NULL, &sum, 2), WM_ERR_INVAL);
}

/* ---- commits of versions ---- */

/* Commits len bytes at rel as the version of pubTime when (ns), its SHA-512 labelled as the
 * peer labels it; *outcome gets what happened. */
static enum wm_err put_version(struct tree *t, const char *rel, const char *bytes, size_t len,
                               int64_t when, enum tree_outcome *outcome)
{
    struct tree_tmp tmp;
    struct wm_checksum sum;
    const char *slash = strrchr(rel, '/');
    enum wm_err err = integrity_of_buffer(WM_SUM_SHA512, slash ? slash + 1 : rel, bytes, len, &sum);
    if (err == WM_OK) err = tree_tmp_create(t, &tmp);
    if (err != WM_OK) return err;
    if (write(tmp.fd, bytes, len) != (ssize_t)len || tree_tmp_set_time(&tmp, when) != WM_OK ||
        tree_tmp_set_sum(&tmp, &sum, (int64_t)len) != WM_OK) {
        tree_tmp_discard(t, &tmp);
        return WM_ERR_IO;
    }
    return tree_tmp_commit_version(t, &tmp, rel, when, &sum, outcome);
}

static enum wm_err put_text_version(struct tree *t, const char *rel, const char *text, int64_t when,
                                    enum tree_outcome *outcome)
{
    return put_version(t, rel, text, strlen(text), when, outcome);
}

/* True when the directory dir of the tree can be locked at once: no commit left it locked. A
 * descriptor of our own is an open file description of our own, which flock(2) tells apart from
 * the tree's even within one process. */
static bool unlocked(const char *dir)
{
    char path[PATH_MAX];
    join(path, sizeof path, root, dir);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    bool free_now = flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd); /* releases it */
    return free_now;
}

/* The stored file's bytes and mtime. */
static void assert_holds(const char *rel, const char *text, int64_t when)
{
    char path[PATH_MAX], got[4 * WM_TREE_SUM_CACHE_MIN];
    join(path, sizeof path, root, rel);
    ASSERT_EQ_INT(read_path(path, got, sizeof got), strlen(text));
    ASSERT_TRUE(strcmp(got, text) == 0); /* not ASSERT_EQ_STR: kilobytes each */
    struct stat st;
    ASSERT_EQ_INT(stat(path, &st), 0);
    ASSERT_EQ_INT((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, when);
}

/* The three outcomes, for small files (checksum from the bytes), big ones (from the xattr) and
 * opaque checksums, and the lock free after each commit, the failed ones included. */
static void test_commit_version_outcomes(struct tree *t)
{
    const int64_t when = 1548000000123456789;
    enum tree_outcome out = WM_TREE_HELD_SAME;
    char path[PATH_MAX];

    ASSERT_EQ_INT(put_text_version(t, "ver/a", "v2", when, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_STORED);
    assert_holds("ver/a", "v2", when);
    ASSERT_TRUE(unlocked("ver"));
    /* An older version is refused; so is another one of the same pubTime. */
    ASSERT_EQ_INT(put_text_version(t, "ver/a", "v1", when - 1, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_HELD_NEWER);
    ASSERT_EQ_INT(put_text_version(t, "ver/a", "v2 again, other bytes", when, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_HELD_NEWER);
    assert_holds("ver/a", "v2", when);
    ASSERT_TRUE(unlocked("ver"));
    /* The same version: stored by someone else first. */
    ASSERT_EQ_INT(put_text_version(t, "ver/a", "v2", when, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_HELD_SAME);
    ASSERT_TRUE(unlocked("ver"));
    /* A later pubTime replaces, even with the same bytes. */
    ASSERT_EQ_INT(put_text_version(t, "ver/a", "v3", when + 1, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_STORED);
    assert_holds("ver/a", "v3", when + 1);
    ASSERT_EQ_INT(put_text_version(t, "ver/a", "v3", when + 2, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_STORED);
    assert_holds("ver/a", "v3", when + 2);
    assert_tmpdir_empty();

    /* Over WM_TREE_SUM_CACHE_MIN the held checksum comes from the xattr. */
    char big1[3 * WM_TREE_SUM_CACHE_MIN + 1], big2[3 * WM_TREE_SUM_CACHE_MIN + 1];
    memcpy(big1, big_text(3 * WM_TREE_SUM_CACHE_MIN, 1), sizeof big1);
    memcpy(big2, big_text(3 * WM_TREE_SUM_CACHE_MIN, 2), sizeof big2);
    ASSERT_EQ_INT(put_text_version(t, "ver/big", big1, when, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_STORED);
    ASSERT_EQ_INT(put_text_version(t, "ver/big", big1, when, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_HELD_SAME);
    ASSERT_EQ_INT(put_text_version(t, "ver/big", big2, when, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_HELD_NEWER);
    ASSERT_EQ_INT(put_text_version(t, "ver/big", big2, when - 5, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_HELD_NEWER);
    assert_holds("ver/big", big1, when);
    ASSERT_TRUE(unlocked("ver"));

    /* An opaque checksum is told from the xattr only; without one, holding the name at that
     * pubTime counts as the same version, as at admission. */
    struct wm_checksum tag = {.method = WM_SUM_ARBITRARY, .len = 3, .value = "tag"};
    struct wm_checksum other = {.method = WM_SUM_ARBITRARY, .len = 3, .value = "gat"};
    struct tree_tmp tmp;
    ASSERT_EQ_INT(tree_tmp_create(t, &tmp), WM_OK);
    ASSERT_EQ_INT(tree_tmp_set_time(&tmp, when), WM_OK);
    ASSERT_EQ_INT(tree_tmp_set_sum(&tmp, &tag, 0), WM_OK);
    ASSERT_EQ_INT(tree_tmp_commit_version(t, &tmp, "ver/tagged", when, &tag, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_STORED);
    ASSERT_EQ_INT(tree_tmp_create(t, &tmp), WM_OK);
    ASSERT_EQ_INT(tree_tmp_set_time(&tmp, when), WM_OK);
    ASSERT_EQ_INT(tree_tmp_commit_version(t, &tmp, "ver/tagged", when, &tag, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_HELD_SAME);
    ASSERT_EQ_INT(tree_tmp_create(t, &tmp), WM_OK);
    ASSERT_EQ_INT(tree_tmp_set_time(&tmp, when), WM_OK);
    ASSERT_EQ_INT(tree_tmp_commit_version(t, &tmp, "ver/tagged", when, &other, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_HELD_NEWER);
    join(path, sizeof path, root, "ver/tagged");
    ASSERT_EQ_INT(lremovexattr(path, WM_XATTR_SUM), 0);
    ASSERT_EQ_INT(tree_tmp_create(t, &tmp), WM_OK);
    ASSERT_EQ_INT(tree_tmp_set_time(&tmp, when), WM_OK);
    ASSERT_EQ_INT(tree_tmp_commit_version(t, &tmp, "ver/tagged", when, &other, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_HELD_SAME);

    /* A file put there by other means is judged by its mtime all the same. */
    join(path, sizeof path, root, "ver/by-hand");
    ASSERT_EQ_INT(write_path(path, "by hand"), 0);
    struct timespec times[2] = {{.tv_sec = 1548000010}, {.tv_sec = 1548000010}};
    ASSERT_EQ_INT(utimensat(AT_FDCWD, path, times, 0), 0);
    ASSERT_EQ_INT(put_text_version(t, "ver/by-hand", "older", when, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_HELD_NEWER);
    ASSERT_EQ_INT(put_text_version(t, "ver/by-hand", "newer", 1548000011000000000, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_STORED);

    /* Failures under the lock and before it leave it free, and the tmp directory empty. */
    join(path, sizeof path, root, "ver/adir");
    ASSERT_EQ_INT(mkdir(path, 0755), 0);
    ASSERT_EQ_INT(put_text_version(t, "ver/adir", "x", when, &out), WM_ERR_EXISTS);
    ASSERT_TRUE(unlocked("ver"));
    ASSERT_EQ_INT(put_text_version(t, "ver/adir/../x", "x", when, &out), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(put_text_version(t, "ver/a/x", "x", when, &out), WM_ERR_EXISTS);
    ASSERT_TRUE(unlocked("ver"));
    /* A symlink at the destination is replaced, never followed, as by tree_tmp_commit. */
    char target[PATH_MAX];
    join(target, sizeof target, outside, "victim");
    join(path, sizeof path, root, "ver/link");
    ASSERT_EQ_INT(symlink(target, path), 0);
    ASSERT_EQ_INT(put_text_version(t, "ver/link", "mine", when, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_STORED);
    ASSERT_EQ_INT(count_entries(outside), 0);
    /* A directory pruned while its descriptor was kept: resolved again, locked again. */
    ASSERT_EQ_INT(put_text_version(t, "ver/pruned/f1", "one", when, &out), WM_OK);
    join(path, sizeof path, root, "ver/pruned/f1");
    ASSERT_EQ_INT(unlink(path), 0);
    join(path, sizeof path, root, "ver/pruned");
    ASSERT_EQ_INT(rmdir(path), 0);
    ASSERT_EQ_INT(put_text_version(t, "ver/pruned/f2", "two", when, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_STORED);
    assert_holds("ver/pruned/f2", "two", when);
    ASSERT_TRUE(unlocked("ver/pruned"));
    /* A top-level name locks the root. */
    ASSERT_EQ_INT(put_text_version(t, "vtop", "top", when, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_STORED);
    ASSERT_EQ_INT(put_text_version(t, "vtop", "older", when - 1, &out), WM_OK);
    ASSERT_EQ_INT(out, WM_TREE_HELD_NEWER);
    ASSERT_TRUE(unlocked("."));
    /* Missing arguments: refused, and the temporary file does not linger. */
    ASSERT_EQ_INT(tree_tmp_create(t, &tmp), WM_OK);
    ASSERT_EQ_INT(tree_tmp_commit_version(t, &tmp, "ver/x", when, NULL, &out), WM_ERR_INVAL);
    ASSERT_EQ_INT(tmp.fd, -1);
    ASSERT_EQ_INT(tree_tmp_commit_version(NULL, &tmp, "ver/x", when, &tag, &out), WM_ERR_INVAL);
    assert_tmpdir_empty();
    ASSERT_TRUE(unlocked("ver"));
}

/* For the rest of the process: the system calls nrs (n of them, up to 8) fail with err. */
static int fail_syscalls(const long *nrs, size_t n, int err)
{
    struct sock_filter filter[2 + 2 * 8];
    size_t k = 0;
    if (n > 8) return -1;
    filter[k++] =
        (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (size_t i = 0; i < n; i++) {
        filter[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (__u32)nrs[i], 0, 1);
        filter[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (__u32)err);
    }
    filter[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {.len = (unsigned short)k, .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* A commit whose system calls nrs fail with EIO under the lock, in a child process of its own
 * (the filter stays with it), which keeps its tree, and so its descriptor of the directory, open
 * while we check that the directory is not left locked. held_text/held_when: the version held,
 * text/when: the one committed. Returns the commit's error. */
static enum wm_err commit_with_failing(const long *nrs, size_t n, const char *held_text,
                                       int64_t held_when, const char *text, int64_t when)
{
    int to_child[2], from_child[2];
    if (pipe(to_child) < 0 || pipe(from_child) < 0) return WM_ERR_LIB;
    pid_t pid = fork();
    if (pid == 0) {
        struct tree *c = tree_attach(root);
        enum tree_outcome out;
        int result = -1;
        /* The first commit opens (and keeps) the directory; the second is the one that fails. */
        if (c && put_text_version(c, "faults/f", held_text, held_when, &out) == WM_OK) {
            struct tree_tmp tmp;
            struct wm_checksum sum;
            size_t len = strlen(text);
            if (integrity_of_buffer(WM_SUM_SHA512, "f", text, len, &sum) == WM_OK &&
                tree_tmp_create(c, &tmp) == WM_OK && write(tmp.fd, text, len) == (ssize_t)len &&
                tree_tmp_set_time(&tmp, when) == WM_OK && fail_syscalls(nrs, n, EIO) == 0)
                result = (int)tree_tmp_commit_version(c, &tmp, "faults/f", when, &sum, &out);
        }
        char go;
        ssize_t w = write(from_child[1], &result, sizeof result);
        ssize_t r = read(to_child[0], &go, 1);
        _exit(w == (ssize_t)sizeof result && r >= 0 ? 0 : 1);
    }
    int result = -1;
    if (pid > 0) {
        ASSERT_EQ_INT(read(from_child[0], &result, sizeof result), sizeof result);
        ASSERT_TRUE(unlocked("faults"));
        ASSERT_EQ_INT(write(to_child[1], "x", 1), 1);
        int status = 0;
        ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    close(to_child[0]);
    close(to_child[1]);
    close(from_child[0]);
    close(from_child[1]);
    return (enum wm_err)result;
}

/* Each system call a commit makes while it holds the lock fails in turn: the lock is let go. */
static void test_commit_version_lock_on_errors(void)
{
    const int64_t when = 1548000000000000000;
    /* Reading the state of the file held. */
    long stat_calls[] = {
#ifdef SYS_newfstatat
        SYS_newfstatat,
#endif
#ifdef SYS_fstatat64
        SYS_fstatat64,
#endif
        SYS_statx,
    };
    ASSERT_EQ_INT(commit_with_failing(stat_calls, sizeof stat_calls / sizeof stat_calls[0], "v1",
                                      when, "v2", when + 1),
                  WM_ERR_IO);
    /* Opening the file held for its checksum (the same pubTime). */
    long open_calls[] = {SYS_openat};
    ASSERT_EQ_INT(commit_with_failing(open_calls, 1, "v1", when, "v1", when), WM_ERR_IO);
    /* Linking or renaming into place. */
    long place_calls[] = {SYS_linkat,
#ifdef SYS_renameat
                          SYS_renameat,
#endif
                          SYS_renameat2};
    ASSERT_EQ_INT(commit_with_failing(place_calls, sizeof place_calls / sizeof place_calls[0], "v1",
                                      when, "v2", when + 1),
                  WM_ERR_IO);
    assert_holds("faults/f", "v1", when);
}

#define RACE_FILES 2
#define RACE_VERSIONS 100
#define RACE_WINDOW (4 * RACE_FILES)
#define RACE_BASE_NS 1548000000000000000LL

/* Each run races on files of its own. */
static int race_run;

static void race_rel(int file, char *rel, size_t len)
{
    snprintf(rel, len, "race%d/d%d/f%d", race_run, file % 2, file);
}

/* Version v of a file: odd files over WM_TREE_SUM_CACHE_MIN, so that equal pubTimes are told
 * from the xattr for them and from the bytes for the others. */
static size_t race_bytes(int file, int v, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "file %d version %d\n", file, v);
    size_t len = (size_t)n;
    if (file % 2) {
        len = 2 * WM_TREE_SUM_CACHE_MIN;
        for (size_t i = (size_t)n; i < len; i++)
            out[i] = (char)('a' + (file + v + (int)i) % 26);
    }
    out[len] = '\0';
    return len;
}

/* One racer: commits every version of every file in an order of its own, and says what each
 * commit did ('s'tored, 'n'ewer held, 'd'uplicate) in order, as {file, version, outcome}. Few
 * files and many versions: the two racers are mostly at the same file at the same time. */
static void race_child(int named, int start_fd, int report_fd)
{
    struct tree *c = tree_attach(root);
    if (!c) _exit(2);
    tree_set_sync(c, false);
    if (named) tree_name_tmp_files(c);
    int order[RACE_FILES * RACE_VERSIONS];
    for (int i = 0; i < RACE_FILES * RACE_VERSIONS; i++)
        order[i] = i;
    /* Oldest first, shuffled within windows of a few versions: some commits come too late,
     * and most find the other racer about to commit a neighbouring version. */
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    for (int i = 0; i < RACE_FILES * RACE_VERSIONS; i++) {
        int room = RACE_FILES * RACE_VERSIONS - i;
        int k = i + (int)(random() % (room < RACE_WINDOW ? room : RACE_WINDOW));
        int x = order[i];
        order[i] = order[k];
        order[k] = x;
    }
    char go;
    if (read(start_fd, &go, 1) != 1) _exit(2);
    char rel[64], bytes[2 * WM_TREE_SUM_CACHE_MIN + 1];
    for (int i = 0; i < RACE_FILES * RACE_VERSIONS; i++) {
        int file = order[i] % RACE_FILES, v = order[i] / RACE_FILES;
        race_rel(file, rel, sizeof rel);
        size_t len = race_bytes(file, v, bytes, sizeof bytes);
        enum tree_outcome out;
        if (put_version(c, rel, bytes, len, RACE_BASE_NS + v, &out) != WM_OK) _exit(3);
        int line[3] = {file, v, out == WM_TREE_STORED ? 's' : out == WM_TREE_HELD_SAME ? 'd' : 'n'};
        if (write(report_fd, line, sizeof line) != (ssize_t)sizeof line) _exit(4);
    }
    tree_close(&c);
    _exit(0);
}

/* Two processes commit every version of the same files, each in a random order of its own,
 * one with named temporary files, one with unnamed ones: the newest version ends in place
 * everywhere, each version is stored at most once, by one of them, and neither ever stores a
 * version older than one it committed before (the tree's version never goes back). */
static void test_commit_version_race(void)
{
    int start[2], reports[2][2];
    pid_t pids[2];
    race_run++;
    ASSERT_EQ_INT(pipe(start), 0);
    for (int p = 0; p < 2; p++) {
        ASSERT_EQ_INT(pipe(reports[p]), 0);
        pids[p] = fork();
        if (pids[p] == 0) {
            close(start[1]);
            close(reports[p][0]);
            race_child(p, start[0], reports[p][1]);
        }
        close(reports[p][1]);
    }
    close(start[0]);
    ASSERT_EQ_INT(write(start[1], "gg", 2), 2); /* both at once */
    close(start[1]);
    int stored[RACE_FILES][RACE_VERSIONS] = {{0}}, same[RACE_FILES] = {0};
    int backwards = 0, records = 0;
    for (int p = 0; p < 2; p++) {
        int highest[RACE_FILES];
        for (int f = 0; f < RACE_FILES; f++)
            highest[f] = -1;
        int line[3];
        while (read(reports[p][0], line, sizeof line) == (ssize_t)sizeof line) {
            int f = line[0], v = line[1];
            records++;
            if (f < 0 || f >= RACE_FILES || v < 0 || v >= RACE_VERSIONS) continue;
            if (line[2] == 's') {
                stored[f][v]++;
                if (v < highest[f]) backwards++;
            }
            if (line[2] == 'd' && v == RACE_VERSIONS - 1) same[f]++;
            if (v > highest[f]) highest[f] = v;
        }
        close(reports[p][0]);
        int status = 0;
        ASSERT_EQ_INT(waitpid(pids[p], &status, 0), pids[p]);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    ASSERT_EQ_INT(records, 2 * RACE_FILES * RACE_VERSIONS);
    ASSERT_EQ_INT(backwards, 0);
    int twice = 0, stores = 0;
    for (int f = 0; f < RACE_FILES; f++) {
        char rel[64], bytes[2 * WM_TREE_SUM_CACHE_MIN + 1];
        race_rel(f, rel, sizeof rel);
        race_bytes(f, RACE_VERSIONS - 1, bytes, sizeof bytes);
        assert_holds(rel, bytes, RACE_BASE_NS + RACE_VERSIONS - 1);
        ASSERT_EQ_INT(stored[f][RACE_VERSIONS - 1], 1);
        ASSERT_EQ_INT(same[f], 1); /* the other process found it there */
        for (int v = 0; v < RACE_VERSIONS; v++) {
            if (stored[f][v] > 1) twice++;
            stores += stored[f][v];
        }
    }
    ASSERT_EQ_INT(twice, 0);
    fprintf(stderr, "race: %d commits by 2 processes, %d of them stored\n", records, stores);
    assert_tmpdir_empty();
    char dir[32];
    for (int d = 0; d < 2; d++) {
        snprintf(dir, sizeof dir, "race%d/d%d", race_run, d);
        ASSERT_TRUE(unlocked(dir));
    }
}

/* Paths walked component by component, and unnamed temporary files linked through
 * /proc/self/fd: what older kernels, or a peer without privileges, get. */
static void test_without_openat2_and_flink(struct tree *t)
{
    if (forbid_openat2_and_flink() < 0) {
        fprintf(stderr, "seccomp unavailable (%s): component walk not tested\n", strerror(errno));
        return;
    }
    struct wm_checksum sum, got;
    md5_of_hello(&sum);
    ASSERT_EQ_INT(put(t, "walk/one/two.txt", "hello", &sum), WM_OK);
    ASSERT_EQ_INT(put(t, "walk/one/three.txt", "hello", &sum), WM_OK);
    ASSERT_EQ_INT(put(t, "walk/one/three.txt", "hello", &sum), WM_OK); /* replaces */
    ASSERT_EQ_INT(tree_lookup(t, "walk/one/two.txt", WM_SUM_MD5, false, &got, NULL), WM_OK);
    assert_same_sum(&got, &sum);
    ASSERT_EQ_INT(put(t, "a/b", "evil", NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(put(t, "deep/link/x", "evil", NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(count_entries(outside), 0);
    ASSERT_EQ_INT(tree_lookup(t, "ln.txt", WM_SUM_MD5, false, &got, NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(tree_lookup(t, "a/x", WM_SUM_MD5, false, &got, NULL), WM_ERR_UNSAFE);
    int fd = -1;
    off_t size = 0;
    ASSERT_EQ_INT(tree_open_file(t, "walk/one/two.txt", &fd, &size, NULL), WM_OK);
    if (fd >= 0) close(fd);
    ASSERT_EQ_INT(tree_open_file(t, "deep/link/victim", &fd, &size, NULL), WM_ERR_UNSAFE);
    ASSERT_EQ_INT(tree_open_file(t, "walk/one", &fd, &size, NULL), WM_ERR_NOTFOUND);
    assert_tmpdir_empty();
}

/* Where each thread of this process waits, for a failure that a loaded machine produced once. */
static void print_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[64] = "", wchan[64] = "", sys[128] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        read_path(path, comm, sizeof comm);
        snprintf(path, sizeof path, "/proc/self/task/%s/wchan", e->d_name);
        read_path(path, wchan, sizeof wchan);
        snprintf(path, sizeof path, "/proc/self/task/%s/syscall", e->d_name);
        read_path(path, sys, sizeof sys);
        comm[strcspn(comm, "\n")] = sys[strcspn(sys, "\n")] = '\0';
        fprintf(stderr, "thread %s (%s): wchan %s, syscall %s\n", e->d_name, comm, wchan, sys);
    }
    closedir(d);
}

static size_t ready_spares;
static bool spares_ready(struct tree_spares *s, size_t want)
{
    for (int i = 0; i < 2000; i++) { /* polls for up to 10 s: the thread may be slow to run */
        if ((ready_spares = tree_spares_ready(s)) == want) return true;
        usleep(5000);
    }
    print_threads();
    return false;
}

/* Spares: made ahead up to the number kept, each a usable temporary file that commits like one
 * from tree_tmp_create; refilled once taken below half; without a ring (or once it is empty) a
 * file is made on the spot; stopping removes the ones nobody took and closes their files. */
static void test_spares(struct tree *t)
{
    struct tree_spares *s = tree_spares_start(t, 8);
    ASSERT_TRUE(s != NULL);
    if (!s) return;
    ASSERT_TRUE(spares_ready(s, 8));
    char path[PATH_MAX];
    join(path, sizeof path, root, WM_TREE_TMPDIR);
    struct tree_tmp probe;
    ASSERT_EQ_INT(tree_tmp_create(t, &probe), WM_OK);
    ASSERT_EQ_INT(count_entries(path), probe.name[0] ? 9 : 0); /* unnamed ones leave none */
    tree_tmp_discard(t, &probe);
    struct tree_tmp taken[10];
    for (int i = 0; i < 5; i++)
        ASSERT_EQ_INT(tree_spares_take(s, t, &taken[i]), WM_OK);
    ASSERT_TRUE(spares_ready(s, 8)); /* 3 left, under half: refilled */
    ASSERT_EQ_INT((int)ready_spares, 8);
    struct wm_checksum sum;
    md5_of_hello(&sum);
    ASSERT_EQ_INT(write(taken[0].fd, "hello\n", 6), 6);
    ASSERT_EQ_INT(tree_tmp_commit(t, &taken[0], "spares/hello.txt"), WM_OK);
    char text[16] = "";
    join(path, sizeof path, root, "spares/hello.txt");
    ASSERT_EQ_INT((int)read_path(path, text, sizeof text), 6);
    ASSERT_EQ_STR(text, "hello\n");
    for (int i = 1; i < 5; i++)
        tree_tmp_discard(t, &taken[i]);
    ASSERT_TRUE(spares_ready(s, 8));
    int fds_with_spares = count_open_fds();
    tree_spares_stop(&s);
    ASSERT_TRUE(s == NULL);
    assert_tmpdir_empty();
    ASSERT_EQ_INT(count_open_fds(), fds_with_spares - 8);
    /* No ring: made on the spot. */
    ASSERT_EQ_INT(tree_spares_take(NULL, t, &taken[5]), WM_OK);
    ASSERT_TRUE(taken[5].fd >= 0);
    tree_tmp_discard(t, &taken[5]);
    ASSERT_TRUE(tree_spares_start(t, 0) == NULL);
    ASSERT_TRUE(tree_spares_start(NULL, 4) == NULL);
}

int main(void)
{
    umask(022);
    snprintf(base, sizeof base, "/tmp/wmesh-tree-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    join(root, sizeof root, base, "tree");
    join(outside, sizeof outside, base, "outside");
    mkdir(outside, 0755);

    test_clean_table();
    test_sum_xattr_form();
    test_clean_lengths();
    test_open_empties_tmpdir();
    struct tree *t = tree_open(root);
    ASSERT_TRUE(t != NULL);
    if (t) {
        tree_set_sync(t, true);
        test_tmp_files_distinct(t, false);
        test_commit_and_lookup(t);
        test_commit_replaces(t);
        test_commit_refusals(t);
        test_lookup_and_open_refusals(t);
        test_checksum(t);
        test_version_time(t);
        test_commit_version_outcomes(t);
        test_commit_version_lock_on_errors();
        test_commit_version_race();
        test_dir_cache_pruned(t);
        test_dir_cache_expires(t);
        test_tmp_names_across_processes();
        test_dir_cache_bound();
        test_without_openat2_and_flink(t);
        test_spares(t);
        tree_close(&t);
    }
    /* Named temporary files, as on a filesystem without O_TMPFILE. */
    t = tree_attach(root);
    ASSERT_TRUE(t != NULL);
    if (t) {
        tree_name_tmp_files(t);
        test_tmp_files_distinct(t, true);
        test_commit_replaces(t);
        test_commit_version_race();
        test_spares(t);
        tree_close(&t);
    }
    rm_rf(base);
    return TEST_REPORT();
}
