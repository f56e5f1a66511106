/* codec.h: announcements to and from their wire formats (array, v03, WIS2), topics and pubTime.
 * Layering, each file calling only those before it: codec_time.c (pubTime, RFC 3339), then
 * codec_util.c (helpers the formats share, codec_util.h), then the formats codec_array.c,
 * codec_v03.c and codec_wnm.c (codec_formats.h), then codec.c (sniffing and dispatch); nothing
 * calls back into codec.c. Topics (codec_topic.c) stand apart. */
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
 * (Implementation notes: an object is taken for WIS2 when it has no relPath and has "type":
 * "Feature" or "properties"; see codec_wnm.c for how its fields map onto the announcement: the
 * link's href becomes download_url, data_id rel_path, and extra a copy of the whole message. A
 * WIS2 deletion link is refused ("deletion links not supported ..."). Errors: WM_ERR_FORMAT not
 * JSON or not a known format, WM_ERR_INVAL a field missing or malformed, WM_ERR_METHOD unknown
 * (for WIS2: non-digest) checksum method, WM_ERR_TOOBIG over WM_CODEC_MAX_PAYLOAD, too deep, or
 * WIS2 inline content of 4096 encoded bytes or more, WM_ERR_NOTSUP a WIS2 deletion link.)
 * WM_ERR_NOMEM when an allocation failed, and only then: the message may be good, so a caller
 * tries it again rather than drop it (tests/torture/torture_codec.c fails each one in turn). */
WM_WARN_UNUSED enum wm_err codec_decode(const char *payload, size_t len, struct announce **out,
                                        char *why, size_t whylen);

/* Encodes a in format fmt. *out is a new NUL-terminated string the caller frees with free();
 * *outlen its length. Fields of a->extra are emitted unchanged after the interpreted ones.
 * (Implementation notes: extra members named like an interpreted field of fmt are skipped; the
 * array format has no place for retrieve_path, size or content and leaves them out, and gives
 * WM_ERR_METHOD for a checksum method without a sum letter; WM_ERR_TOOBIG when the result would
 * be refused by codec_decode. An announcement decoded from WIS2 forwards nothing of its extra
 * (the original message) into v03 or array; WM_FORMAT_WNM gives WM_ERR_METHOD for a checksum
 * that is not a digest, and re-publishes the original WIS2 message, or builds a minimal one: see
 * codec_wnm.c.) WM_ERR_NOMEM when an allocation failed, and only then: never a message missing
 * a part for want of memory. */
WM_WARN_UNUSED enum wm_err codec_encode(const struct announce *a, enum wm_format fmt, char **out,
                                        size_t *outlen);

/* The largest announcement peers accept unless told otherwise (their default --max-message). */
#define WM_MESSAGE_MAX_DEFAULT 8192
/* The largest --inline: its base64 (5 464 bytes) and the rest of an announcement stay within
 * WM_MESSAGE_MAX_DEFAULT. */
#define WM_INLINE_MAX 4096

/* The largest content (bytes) that fmt carries inline whatever the bytes are, as base64 if need
 * be: 0 for array (no place for it), 3 069 for WIS2 (its encoded value must stay under 4096
 * characters; codec_encode leaves larger content out), SIZE_MAX for v03. */
size_t codec_inline_capacity(enum wm_format fmt);

/* codec_encode, but when the result is longer than max bytes and a has inline content, the
 * content is freed and left out (a->content_encoding WM_CONTENT_NONE) and a encoded again: the
 * link still serves the file, and no subscriber that accepts max bytes refuses the message. */
WM_WARN_UNUSED enum wm_err codec_encode_within(struct announce *a, enum wm_format fmt, size_t max,
                                               char **out, size_t *outlen);

/* True when a was decoded from a WIS2 message whose link is rel "update" (a newer version of
 * the same data_id) rather than "canonical". */
bool codec_wnm_is_update(const struct announce *a);

/* True when a is a WIS2 message whose properties.cache is the JSON boolean false: a Global
 * Cache passes it on without downloading (WIS2 Guide; docs/OPERATIONS.md, GC-4). */
bool codec_wnm_cache_false(const struct announce *a);
/* properties.global-cache of a WIS2 message (borrowed from a), or NULL. */
const char *codec_wnm_global_cache(const struct announce *a);
/* The WIS2 message a came as, with a new id and nothing else changed: *out is a new string
 * the caller frees, *outlen its length. WM_ERR_INVAL when a did not come as WIS2, WM_ERR_NOMEM,
 * WM_ERR_IO when no random id can be made. */
WM_WARN_UNUSED enum wm_err codec_wnm_passthrough(const struct announce *a, char **out,
                                                 size_t *outlen);

#define WM_UUID_LEN 36 /* characters of "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */

/* Writes a new random (version 4) UUID in lower-case hex, 8-4-4-4-12, NUL-terminated, into out
 * (outlen > WM_UUID_LEN). WM_ERR_IO when the system has no randomness to give. */
WM_WARN_UNUSED enum wm_err codec_uuid4(char *out, size_t outlen);

/* The MQTT topic of an announcement: "<exchange>/<prefix>/<directory of rel_path>", exactly one
 * '/' between non-empty parts, no leading or trailing '/'. A file at the top of the tree gives
 * "<exchange>/<prefix>". The MQTT wildcards '+' and '#', which a published topic may not contain,
 * become "%2B" and "%23". WM_ERR_INVAL when the topic would be empty, WM_ERR_TOOBIG when it does
 * not fit in outlen bytes. */
WM_WARN_UNUSED enum wm_err codec_topic(const char *exchange, const char *prefix,
                                       const char *rel_path, char *out, size_t outlen);

/* The topic of a re-announcement that keeps the levels its original came on (--post-topic
 * copy): "<post_exchange>/<post_prefix>/<the levels of topic below the subscription's fixed
 * part>". That fixed part is "<exchange>/<prefix>", as a peer subscribes to
 * "<exchange>/<prefix>/<subtopic>"; it is matched level by level, a level "+" in it matching any
 * one level. E.g. exchange "origin", prefix "a/wis2", topic
 * "origin/a/wis2/ca-eccc-msc/data/core/weather", post_exchange "cache", post_prefix "a/wis2":
 * "cache/a/wis2/ca-eccc-msc/data/core/weather". prefix and post_prefix may be NULL or "";
 * post_exchange and post_prefix are written as codec_topic writes them. Errors, after which
 * callers fall back to codec_topic: WM_ERR_NOTFOUND when topic does not begin with the fixed
 * part (a '#' in it matches nothing here), WM_ERR_INVAL when a level below it is empty or holds
 * a wildcard (it could not be published) or the result would be empty, WM_ERR_TOOBIG when it
 * does not fit in outlen bytes. */
WM_WARN_UNUSED enum wm_err codec_topic_copy(const char *exchange, const char *prefix,
                                            const char *topic, const char *post_exchange,
                                            const char *post_prefix, char *out, size_t outlen);

/* pubTime text "YYYYMMDDHHMMSS[.fraction]" or "YYYYMMDDTHHMMSS[.fraction][Z]" (UTC) to
 * nanoseconds since the epoch; *digits gets the number of fraction digits (capped at 9). */
WM_WARN_UNUSED enum wm_err codec_pubtime_parse(const char *text, int64_t *ns, int *digits);
/* Formats ns with `digits` fraction digits (0 = no fraction), with or without the 'T'. */
WM_WARN_UNUSED enum wm_err codec_pubtime_format(int64_t ns, int digits, bool with_t, char *out,
                                                size_t outlen);

/* RFC 3339 "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" (WIS2 pubtime, datetime) to UTC
 * nanoseconds since the epoch; *digits (may be NULL) gets the fraction digits (capped at 9,
 * further digits truncated), *offset_min (may be NULL) the offset in minutes east of UTC (0 for
 * "Z"). WM_ERR_INVAL for anything else or a time outside 1970-2261 UTC. */
WM_WARN_UNUSED enum wm_err codec_rfc3339_parse(const char *text, int64_t *ns, int *digits,
                                               int *offset_min);
/* Formats ns as "YYYY-MM-DDTHH:MM:SS[.fraction]Z" with `digits` fraction digits (0..9). */
WM_WARN_UNUSED enum wm_err codec_rfc3339_format(int64_t ns, int digits, char *out, size_t outlen);

#endif
