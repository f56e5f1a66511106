/* wnm_check.h: the format checks a WIS2 Global Broker applies to a WIS2 Notification Message:
 * the WNM 1.x JSON schema (wis2-notification-message-bundled.json) written out in C, plus the
 * checks that schema leaves to the format keywords and to the standard's text. */
#ifndef WMESH_WNM_CHECK_H
#define WMESH_WNM_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct wm_json;

#define WNM_MESSAGE_MAX 8192 /* bytes (REQ_message_size) */
#define WNM_ID_LEN 36        /* a UUID as text */

/* Checks msg, a parsed message of len bytes, against:
 *  - the schema: id, type "Feature", geometry (null, Point or Polygon), properties and links
 *    required; conformsTo (an array holding "http://wis.wmo.int/spec/wnm/1/conf/core") or
 *    version ("v04"), not both; properties.pubtime and data_id strings; datetime (string or
 *    null) or start_datetime and end_datetime, not both forms; cache a boolean; integrity with
 *    a method of sha256, sha384, sha512, sha3-256, sha3-384, sha3-512 and a string value;
 *    content with encoding utf-8|base64|gzip, an integer size of at most 4096 and a value of
 *    at most 4096 characters; at least one link, each an object with string rel and href and
 *    an integer length if any;
 *  - the formats and rules the schema does not enforce: id a UUID; pubtime, datetime,
 *    start_datetime and end_datetime RFC 3339 date-times in UTC (Z, z or +00:00); a link with
 *    rel canonical, update or deletion, whose href is http(s), ftp or sftp; len at most
 *    WNM_MESSAGE_MAX.
 * WM_OK and the id (NUL-terminated) in id, or WM_ERR_FORMAT (WM_ERR_TOOBIG for the size) and
 * one line in why. Allocates nothing; msg stays the caller's. */
WM_WARN_UNUSED enum wm_err wnm_check(const struct wm_json *msg, size_t len, char id[WNM_ID_LEN + 1],
                                     char *why, size_t whylen);

/* Whether text (len bytes) is an RFC 3339 date-time ("2024-07-20T19:12:29Z", fractions of a
 * second allowed, 't' and 'z' too), and with utc_only in UTC. */
bool wnm_rfc3339(const char *text, size_t len, bool utc_only);
/* Whether text (len bytes) is a UUID in the 8-4-4-4-12 hexadecimal form. */
bool wnm_uuid(const char *text, size_t len);

#endif
