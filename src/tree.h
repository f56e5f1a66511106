/* tree.h: the file tree a peer serves: safe relPath mapping, temporary files, atomic commits
 * and the checksum cached in each file's xattr. Every path is resolved beneath the tree's
 * directory descriptor and no symlink is ever followed. */
#ifndef WMESH_TREE_H
#define WMESH_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "integrity.h"

#define WM_TREE_TMPDIR ".wmesh-tmp" /* at the tree's root; never served, emptied at open */
#define WM_XATTR_SUM "user.sr_integrity"
/* A file of at most this many bytes gets no checksum xattr when its checksum is a digest
 * (or md5name): hashing one block again (about 5 us for SHA-512) costs less than recording
 * the xattr, which on ext4's default 256-byte inodes takes a 4 KiB block of its own (the
 * 117-byte SHA-512 xattr does not fit in the inode), doubling the disk a small file uses and
 * costing a block allocation per file stored. */
#define WM_TREE_SUM_CACHE_MIN 4096

/* The xattr form of a file's checksum, {"method":"sha512","value":"<base64>"}, the value as
 * integrity_value_format writes it (escaped as JSON for opaque values), NUL-terminated into out
 * (outlen bytes). WM_ERR_TOOBIG when it does not fit, WM_ERR_INVAL when an opaque value is not
 * UTF-8, WM_ERR_NOMEM. */
WM_WARN_UNUSED enum wm_err tree_sum_format(const struct wm_checksum *sum, char *out, size_t outlen);
/* Reads the xattr form back (len bytes of text, at most 4096; the value base64 or hex) into
 * *out. Errors: WM_ERR_INVAL not such an object or a bad value, WM_ERR_METHOD an unknown
 * method, WM_ERR_TOOBIG too long, WM_ERR_NOMEM. */
WM_WARN_UNUSED enum wm_err tree_sum_parse(const char *text, size_t len, struct wm_checksum *out);

struct tree;

/* Opens (creating if needed) the tree at dir and empties its temporary directory.
 * Returns NULL with errno set on failure. The caller owns the result. */
WM_WARN_UNUSED struct tree *tree_open(const char *dir);
/* Opens an existing tree without touching its temporary directory: for tools (post, serve)
 * that may run beside a peer working in the same tree. NULL with errno set on failure. */
WM_WARN_UNUSED struct tree *tree_attach(const char *dir);
/* Closes *t (the directories its commits kept open too) and sets it to NULL. */
void tree_close(struct tree **t);
int tree_dirfd(const struct tree *t);
const char *tree_path(const struct tree *t);
/* Whether tree_tmp_commit fsyncs the file before the rename and its directory after it
 * (default true). A caller that turns it off must call tree_sync() before relying on what it
 * committed (the peer does, once per event-loop turn, before its journal records it). */
void tree_set_sync(struct tree *t, bool sync);
/* Makes every commit since the last call durable with one syncfs(2) of the tree's filesystem;
 * a no-op when nothing was committed. WM_ERR_IO when it fails (the commits stay pending). */
WM_WARN_UNUSED enum wm_err tree_sync(struct tree *t);
/* tree_sync in steps, for syncing on another thread: tree_sync_begin (owner's thread) says
 * whether commits were made since the last sync and forgets them; tree_sync_fs (any thread)
 * makes them durable with one syncfs(2); after its failure tree_sync_failed (owner's thread)
 * remembers them again. */
bool tree_sync_begin(struct tree *t);
/* True when commits were made since the last tree_sync_begin (or failed sync). */
bool tree_has_unsynced(const struct tree *t);
WM_WARN_UNUSED enum wm_err tree_sync_fs(const struct tree *t);
void tree_sync_failed(struct tree *t);

/* Normalises an announced relPath into a path relative to the tree: leading '/' and repeated
 * '/' dropped, "." components dropped. Refuses (WM_ERR_UNSAFE) "..", components starting with
 * '.', NUL bytes, control characters, a trailing '/', empty result, or percent-encoded forms of
 * any of these ("%2e%2e", "%2f"); WM_ERR_TOOBIG when longer than outlen-1 or PATH_MAX.
 * The relPath is a URL path piece, so it is percent-decoded once, component by component,
 * before any check; out gets the DECODED form, i.e. the names as they are on disk ("a%20b" ->
 * "a b"). A '%' not followed by two hex digits is kept as is. An encoded '/' ("%2F") or NUL
 * ("%00") is always refused, as is a final "." component (it names a directory). Bytes >= 0x80
 * (UTF-8 names) and backslashes are kept. A component over NAME_MAX bytes is WM_ERR_TOOBIG.
 * On any failure out is set to "". */
WM_WARN_UNUSED enum wm_err tree_clean_relpath(const char *rel_path, char *out, size_t outlen);

/* A file being written before it joins the tree. */
struct tree_tmp {
    int fd;        /* open for writing; owned by the tree_tmp until commit or discard */
    char name[64]; /* its name inside WM_TREE_TMPDIR; "" while it has none (O_TMPFILE) */
};

/* Creates a fresh temporary file in WM_TREE_TMPDIR's filesystem: unnamed (O_TMPFILE) where the
 * filesystem allows, so that a crash leaves nothing behind; else named
 * "tmp.<pid>.<counter>.<8 hex digits>", unique among the processes sharing the tree, whose open
 * keeps the files of other live pids. Safe to call from several threads at once. */
WM_WARN_UNUSED enum wm_err tree_tmp_create(struct tree *t, struct tree_tmp *tmp);
/* From now on tree_tmp_create makes named files, as on a filesystem without O_TMPFILE: for the
 * tests of that way. */
void tree_name_tmp_files(struct tree *t);
/* Creates the parent directories of clean_rel (refusing symlinks) and renames the file over
 * clean_rel atomically. Closes tmp->fd. On failure the temporary file is removed. clean_rel
 * must come from tree_clean_relpath(). Errors: WM_ERR_UNSAFE for a symlink or special file in
 * the way, WM_ERR_EXISTS for a regular file where a directory is needed or a directory at
 * clean_rel.
 * The destination directory stays open (up to 64 of them, each resolved afresh after a second
 * or when found removed), so the usual commit opens nothing: a directory moved by hand while
 * the peer runs may receive files for up to a second after the move. Commits, tree_sync and
 * tree_close must come from one thread at a time.
 * It replaces whatever version the file holds, without a lock: for tools and tests. The peer
 * stores versions with tree_tmp_commit_version. */
WM_WARN_UNUSED enum wm_err tree_tmp_commit(struct tree *t, struct tree_tmp *tmp,
                                           const char *clean_rel);
/* What tree_tmp_commit_version did with a version. */
enum tree_outcome {
    WM_TREE_STORED,     /* the version is in place (it replaced an older one, or nothing) */
    WM_TREE_HELD_NEWER, /* refused: the file held has a later pubTime, or the same pubTime and
                           another checksum (only a later pubTime replaces, as at admission) */
    WM_TREE_HELD_SAME,  /* the same version (pubTime and checksum) is already there: another
                           process on the tree stored it first. Not to be announced again. */
};
/* tree_tmp_commit for a version of a file: stores tmp at clean_rel unless the file held there is
 * as new or newer, deciding under a lock that every process committing this way to the tree
 * honours, so that whatever the order of the commits of two processes, the version with the
 * latest pubTime ends in the tree and only the commits that stored something say so. pubtime_ns
 * is the version's pubTime, which tmp must carry as its mtime already (tree_tmp_set_time); sum
 * its checksum, compared only when the pubTimes are equal (the held file's by sum's method:
 * from its xattr, or its bytes as tree_lookup reads them). A regular file held is judged by its
 * mtime, whoever put it there; anything else in the way is dealt with as tree_tmp_commit does.
 * Returns WM_OK with *outcome set; tmp is consumed in every case (committed, or discarded when
 * refused or same). Errors as tree_tmp_commit's, and WM_ERR_IO when the held file cannot be
 * read for its checksum. The lock is released on every path before returning. */
WM_WARN_UNUSED enum wm_err tree_tmp_commit_version(struct tree *t, struct tree_tmp *tmp,
                                                   const char *clean_rel, int64_t pubtime_ns,
                                                   const struct wm_checksum *sum,
                                                   enum tree_outcome *outcome);
/* Sets the temporary file's modification time (nanoseconds since the epoch): the peer records
 * the pubTime of each version it stores there, so a later announcement can tell newer from
 * older. */
WM_WARN_UNUSED enum wm_err tree_tmp_set_time(struct tree_tmp *tmp, int64_t ns);
/* Records sum, the checksum of the size bytes written, in the temporary file's xattr, unless
 * the file is too small to be worth it (WM_TREE_SUM_CACHE_MIN) or sum is WM_SUM_NONE. Without
 * xattr support the sum is skipped (logged once at debug). */
WM_WARN_UNUSED enum wm_err tree_tmp_set_sum(struct tree_tmp *tmp, const struct wm_checksum *sum,
                                            int64_t size);
/* Closes and removes the temporary file. */
void tree_tmp_discard(struct tree *t, struct tree_tmp *tmp);

/* A stored file's times, nanoseconds since the epoch. */
struct tree_times {
    int64_t mtime_ns; /* for files a peer stored, the pubTime of the version held (see
                         tree_tmp_set_time) */
    int64_t ctime_ns; /* the inode's last change: for files a peer stored, when it was stored
                         (linked or renamed into place), unless its xattr was set again since */
};

/* Looks a regular file up and tells its checksum: WM_ERR_NOTFOUND when absent. *times (may be
 * NULL) gets the file's times whenever the file is present.
 * With a method that can be computed from the file (a digest, or md5name), *held gets the
 * file's checksum by that method: the one cached in its xattr when it is by that method and
 * fresh is false, otherwise computed from the bytes (read once) and cached for next time, small
 * files excepted (WM_TREE_SUM_CACHE_MIN). fresh asks for the bytes themselves: after a crash a
 * cached checksum may vouch for bytes that never reached the disk.
 * With any other method (WM_SUM_NONE, or opaque ones such as arbitrary) *held gets whatever the
 * xattr holds: WM_ERR_NOSUM when it holds nothing readable. */
WM_WARN_UNUSED enum wm_err tree_lookup(struct tree *t, const char *clean_rel, enum wm_sum method,
                                       bool fresh, struct wm_checksum *held,
                                       struct tree_times *times);
/* Opens a stored regular file read-only for serving; *size gets its length and *mtime_ns its
 * modification time (either may be NULL), from the one fstat made to check it. Refuses
 * directories, symlinks, dot-files and anything in WM_TREE_TMPDIR.
 * The caller owns *fd (close it). Symlinks and dot-files give WM_ERR_UNSAFE; absent names,
 * directories and other non-regular files WM_ERR_NOTFOUND. tree_lookup refuses the same
 * way. Safe to call from several threads at once. */
WM_WARN_UNUSED enum wm_err tree_open_file(struct tree *t, const char *clean_rel, int *fd,
                                          off_t *size, int64_t *mtime_ns);

#endif
