/* integrity.h: checksum methods, streaming digests (OpenSSL) and checksum values as text. */
#ifndef WMESH_INTEGRITY_H
#define WMESH_INTEGRITY_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

enum wm_sum {
    WM_SUM_NONE = 0,
    WM_SUM_MD5,
    WM_SUM_SHA256,
    WM_SUM_SHA384,
    WM_SUM_SHA512,
    WM_SUM_SHA3_256,
    WM_SUM_SHA3_384,
    WM_SUM_SHA3_512,
    WM_SUM_MD5NAME,   /* MD5 of the file's basename, not its content */
    WM_SUM_COD,       /* "checksum on download": compute cod_method, announce the result */
    WM_SUM_RANDOM,    /* no checksum; value is an opaque token */
    WM_SUM_ARBITRARY, /* application tag; value is opaque text */
};

#define WM_SUM_MAX_LEN 64 /* bytes: SHA-512 digest, or the longest opaque value we keep */

/* One file version's checksum. For digest methods value holds the raw digest bytes; for
 * RANDOM and ARBITRARY it holds the opaque text as sent; for COD, cod_method names the
 * digest to compute and len is 0. */
struct wm_checksum {
    enum wm_sum method;
    enum wm_sum cod_method;
    size_t len;
    unsigned char value[WM_SUM_MAX_LEN];
};

/* v03 names: "md5", "sha512", "sha3-256", "md5name", "cod", "random", "arbitrary", ... */
const char *integrity_method_name(enum wm_sum method);
/* Returns WM_SUM_NONE for an unknown name. Case-insensitive. */
enum wm_sum integrity_method_from_name(const char *name);
/* Array-format sum letter (d, s, n, z, 0, a) or 0 when the method has none. */
char integrity_method_letter(enum wm_sum method);
enum wm_sum integrity_method_from_letter(char letter);
/* Digest length in bytes of a digest method (MD5NAME included: 16), 0 for the others. */
size_t integrity_digest_len(enum wm_sum method);
/* True for methods whose value is a digest that content can be checked against (false for
 * MD5NAME, COD, RANDOM, ARBITRARY). */
bool integrity_is_digest(enum wm_sum method);

/* Equal when both method and value bytes match (base64 and hex of one digest compare equal). */
bool integrity_equal(const struct wm_checksum *a, const struct wm_checksum *b);

/* Streaming digest of content. The context is owned by the caller until integrity_finish or
 * integrity_abort frees it. For WM_SUM_MD5NAME pass the basename in name (content is ignored);
 * for WM_SUM_COD the context computes cod_method. Returns NULL (errno set) on failure.
 * (Implementation notes: MD5NAME hashes what follows the last '/' of name; RANDOM keeps like's
 * token, or makes a fresh 16-hex-digit one when like has none; ARBITRARY keeps like's tag.) */
struct integrity_ctx;
WM_WARN_UNUSED struct integrity_ctx *integrity_begin(const struct wm_checksum *like,
                                                     const char *name);
void integrity_update(struct integrity_ctx *ctx, const void *data, size_t len);
/* Writes the result into *out (method = the digest computed) and frees *ctx. */
WM_WARN_UNUSED enum wm_err integrity_finish(struct integrity_ctx **ctx, struct wm_checksum *out);
void integrity_abort(struct integrity_ctx **ctx);

/* One-shot helpers. name is the basename (used by MD5NAME only). WM_ERR_METHOD for COD and
 * ARBITRARY (nothing to compute from content alone) and unknown methods. */
WM_WARN_UNUSED enum wm_err integrity_of_buffer(enum wm_sum method, const char *name,
                                               const void *data, size_t len,
                                               struct wm_checksum *out);
WM_WARN_UNUSED enum wm_err integrity_of_fd(enum wm_sum method, const char *name, int fd,
                                           struct wm_checksum *out);

/* SHA-1 of data into out, for the protocols that still ask for it (the WebSocket handshake's
 * Sec-WebSocket-Accept); not a checksum method, since it no longer resists collisions.
 * WM_ERR_LIB when OpenSSL fails. */
#define INTEGRITY_SHA1_LEN 20
WM_WARN_UNUSED enum wm_err integrity_sha1(const void *data, size_t len,
                                          unsigned char out[INTEGRITY_SHA1_LEN]);

/* Parses the value of a v03 integrity object for method: base64 (whitespace stripped), or hex
 * when its length is exactly twice the digest length. Opaque methods keep the text. */
WM_WARN_UNUSED enum wm_err integrity_value_parse(enum wm_sum method, const char *text,
                                                 struct wm_checksum *out);
/* The same, and *why (may be NULL) points to a static phrase saying what was wrong, such as
 * "value is neither base64 nor hex". Errors: WM_ERR_INVAL (bad text or length), WM_ERR_METHOD
 * (method, or the algorithm named by a cod value, unknown), WM_ERR_TOOBIG (opaque value over
 * WM_SUM_MAX_LEN bytes). COD accepts an algorithm name or its array-format letter. */
WM_WARN_UNUSED enum wm_err integrity_value_parse_why(enum wm_sum method, const char *text,
                                                     struct wm_checksum *out, const char **why);
/* Formats the value as v03 wants it (base64 for digests, the text for opaque methods,
 * the algorithm name for COD). */
WM_WARN_UNUSED enum wm_err integrity_value_format(const struct wm_checksum *sum, char *out,
                                                  size_t outlen);

#endif
