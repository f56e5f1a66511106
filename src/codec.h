/* codec.h: announcements to and from their wire formats (array, v03), topics and pubTime. */
#ifndef WMESH_CODEC_H
#define WMESH_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "announce.h"
#include "error.h"

/* Decodes one MQTT payload in any supported format, sniffed from its first non-blank byte
 * ('[' array, '{' v03 or WIS2 by its keys). The payload need not be NUL-terminated. On success
 * *out is a new announcement the caller owns. On failure *out is NULL and why (whylen bytes)
 * holds a short reason fit for a log line, such as "relPath missing" or "bad base64 in
 * integrity.value". Invalid UTF-8 and nesting deeper than 32 levels are refused. */
enum wm_err codec_decode(const char *payload, size_t len, struct announce **out, char *why,
                         size_t whylen);

/* Encodes a in format fmt. *out is a new NUL-terminated string the caller frees with free();
 * *outlen its length. Fields of a->extra are emitted unchanged after the interpreted ones. */
enum wm_err codec_encode(const struct announce *a, enum wm_format fmt, char **out,
                         size_t *outlen);

/* The MQTT topic of an announcement: "<exchange>/<prefix>/<directory of rel_path>", exactly one
 * '/' between non-empty parts, no leading or trailing '/'. A file at the top of the tree gives
 * "<exchange>/<prefix>". */
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
