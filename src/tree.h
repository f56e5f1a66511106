/* tree.h: the file tree a peer serves: safe relPath mapping, temporary files, atomic commits
 * and the checksum cached in each file's xattr. Every path is resolved beneath the tree's
 * directory descriptor and no symlink is ever followed. */
#ifndef WMESH_TREE_H
#define WMESH_TREE_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "integrity.h"

#define WM_TREE_TMPDIR ".wmesh-tmp" /* at the tree's root; never served, emptied at open */
#define WM_XATTR_SUM "user.sr_integrity"

struct tree;

/* Opens (creating if needed) the tree at dir and empties its temporary directory.
 * Returns NULL with errno set on failure. The caller owns the result. */
struct tree *tree_open(const char *dir);
/* Closes *t and sets it to NULL. */
void tree_close(struct tree **t);
int tree_dirfd(const struct tree *t);
const char *tree_path(const struct tree *t);

/* Normalises an announced relPath into a path relative to the tree: leading '/' and repeated
 * '/' dropped, "." components dropped. Refuses (WM_ERR_UNSAFE) "..", components starting with
 * '.', NUL bytes, control characters, a trailing '/', empty result, or percent-encoded forms of
 * any of these ("%2e%2e", "%2f"); WM_ERR_TOOBIG when longer than outlen-1 or PATH_MAX. */
enum wm_err tree_clean_relpath(const char *rel_path, char *out, size_t outlen);

/* A file being written before it joins the tree. */
struct tree_tmp {
    int fd;         /* open for writing; owned by the tree_tmp until commit or discard */
    char name[64];  /* its name inside WM_TREE_TMPDIR */
};

/* Creates a fresh, uniquely named temporary file. */
enum wm_err tree_tmp_create(struct tree *t, struct tree_tmp *tmp);
/* Records sum in the file's xattr, creates the parent directories of clean_rel (refusing
 * symlinks), and renames the file over clean_rel atomically. Closes tmp->fd. On failure the
 * temporary file is removed. clean_rel must come from tree_clean_relpath(). */
enum wm_err tree_tmp_commit(struct tree *t, struct tree_tmp *tmp, const char *clean_rel,
                            const struct wm_checksum *sum);
/* Closes and removes the temporary file. */
void tree_tmp_discard(struct tree *t, struct tree_tmp *tmp);

/* Looks a regular file up: WM_ERR_NOTFOUND when absent; WM_ERR_NOSUM when present without a
 * readable cached checksum; WM_OK with *stored filled from its xattr otherwise. */
enum wm_err tree_lookup(struct tree *t, const char *clean_rel, struct wm_checksum *stored);
/* Computes the checksum of a stored file with method (reading it once) and caches it in the
 * xattr. */
enum wm_err tree_checksum(struct tree *t, const char *clean_rel, enum wm_sum method,
                          struct wm_checksum *out);
/* Opens a stored regular file read-only for serving; *size gets its length. Refuses
 * directories, symlinks, dot-files and anything in WM_TREE_TMPDIR. */
enum wm_err tree_open_file(struct tree *t, const char *clean_rel, int *fd, off_t *size);

#endif
