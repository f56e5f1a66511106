/* codec.h: announcements to and from their wire formats (array, v03), topics and pubTime. */
#ifndef WMESH_CODEC_H
#define WMESH_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "announce.h"
#include "error.h"

#define WM_CODEC_MAX_PAYLOAD (1024 * 1024) /* bytes: longer messages are refused (TOOBIG) */

/* Decodes one MQTT payload in any supported format, sniffed from its first non-blank byte
 * ('[' array, '{' v03 or WIS2 by its keys). The payload need not be NUL-terminated. On success
 * *out is a new announcement the caller owns. On failure *out is NULL and why (whylen bytes)
 * holds a short reason fit for a log line, such as "relPath missing" or "bad base64 in
 * integrity.value". Invalid UTF-8 and nesting deeper than 32 levels are refused.
 * (Implementation notes: an object is taken for WIS2, refused for now as WM_ERR_FORMAT, when it
 * has no relPath and has "type": "Feature" or "properties". Errors: WM_ERR_FORMAT not JSON or
 * not a known format, WM_ERR_INVAL a field missing or malformed, WM_ERR_METHOD unknown checksum
 * method, WM_ERR_TOOBIG over WM_CODEC_MAX_PAYLOAD or too deep.) */
enum wm_err codec_decode(const char *payload, size_t len, struct announce **out, char *why,
                         size_t whylen);

/* Encodes a in format fmt. *out is a new NUL-terminated string the caller frees with free();
 * *outlen its length. Fields of a->extra are emitted unchanged after the interpreted ones.
 * (Implementation notes: extra members named like an interpreted field of fmt are skipped; the
 * array format has no place for retrieve_path, size or content and leaves them out, and gives
 * WM_ERR_METHOD for a checksum method without a sum letter; WM_ERR_TOOBIG when the result would
 * be refused by codec_decode; WM_ERR_FORMAT for WM_FORMAT_WNM, not supported yet.) */
enum wm_err codec_encode(const struct announce *a, enum wm_format fmt, char **out, size_t *outlen);

/* The MQTT topic of an announcement: "<exchange>/<prefix>/<directory of rel_path>", exactly one
 * '/' between non-empty parts, no leading or trailing '/'. A file at the top of the tree gives
 * "<exchange>/<prefix>". The MQTT wildcards '+' and '#', which a published topic may not contain,
 * become "%2B" and "%23". WM_ERR_INVAL when the topic would be empty, WM_ERR_TOOBIG when it does
 * not fit in outlen bytes. */
enum wm_err codec_topic(const char *exchange, const char *prefix, const char *rel_path, char *out,
                        size_t outlen);

/* pubTime text "YYYYMMDDHHMMSS[.fraction]" or "YYYYMMDDTHHMMSS[.fraction][Z]" (UTC) to
 * nanoseconds since the epoch; *digits gets the number of fraction digits (capped at 9). */
enum wm_err codec_pubtime_parse(const char *text, int64_t *ns, int *digits);
/* Formats ns with `digits` fraction digits (0 = no fraction), with or without the 'T'. */
enum wm_err codec_pubtime_format(int64_t ns, int digits, bool with_t, char *out, size_t outlen);

/* The xattr form of a stored file's checksum: {"method": "sha512", "value": "<base64>"}. */
enum wm_err codec_sum_to_json(const struct wm_checksum *sum, char *out, size_t outlen);
enum wm_err codec_sum_from_json(const char *text, size_t len, struct wm_checksum *out);

#endif
