/* announce_file.h: the announcement of a file already in a tree, as `wmesh post` sends it. */
#ifndef WMESH_ANNOUNCE_FILE_H
#define WMESH_ANNOUNCE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "announce.h"
#include "error.h"

struct tree;

/* How to announce. The strings are borrowed for the duration of the call. */
struct announce_file_options {
    const char *base_url;     /* where the tree is served (required) */
    enum wm_format format;    /* message format */
    enum wm_sum method;       /* checksum method: a digest or md5name */
    size_t inline_max;        /* carry files up to this many bytes inside the message (0:
                                 never); capped at what the format carries */
    size_t max_message;       /* the largest message (0: WM_MESSAGE_MAX_DEFAULT): inline content
                                 is left out rather than go over it */
    const char *exchange;     /* topic: "<exchange>/<topic_prefix>/<relPath's directory>" */
    const char *topic_prefix; /* may be NULL or "" */
    int64_t pubtime_ns;       /* pubTime (0: now), written with microseconds */
};

/* The relPath of path inside the directory root (both absolute, without symlinks, as realpath
 * gives them): the part after "root/", with '%' written "%25" because a relPath is in URL form.
 * WM_ERR_INVAL when path is not below root, WM_ERR_TOOBIG when the result does not fit in
 * outlen bytes. */
WM_WARN_UNUSED enum wm_err announce_file_relpath(const char *root, const char *path, char *out,
                                                 size_t outlen);

/* Announces the regular file at rel_path (URL form, as announce_file_relpath gives it) in t.
 * Its checksum comes from its bytes, read now: a cached one may vouch for older bytes. With
 * inline_max, a file that small is read once and both carried and checksummed from those very
 * bytes, so that the two agree even if the file changes meanwhile.
 * On success *text is the encoded message (the caller frees it), *len its length, and topic
 * (topiclen bytes) its MQTT topic. On failure *text is NULL and *step (may be NULL) names what
 * failed: "path" (WM_ERR_UNSAFE, WM_ERR_TOOBIG ... from tree_clean_relpath), "checksum"
 * (WM_ERR_NOTFOUND when not a regular file of the tree, WM_ERR_IO, WM_ERR_METHOD), "encode" or
 * "topic" (WM_ERR_TOOBIG); WM_ERR_INVAL for missing arguments, WM_ERR_NOMEM. */
WM_WARN_UNUSED enum wm_err announce_file(struct tree *t, const char *rel_path,
                                         const struct announce_file_options *o, char **text,
                                         size_t *len, char *topic, size_t topiclen,
                                         const char **step);

#endif
