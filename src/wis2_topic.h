/* wis2_topic.h: validation of WIS2 topics against the WIS2 topic hierarchy (WMO-No. 1060,
 * wmo-im/wis2-topic-hierarchy): channel/version/system/centre-id/notification-type/data-policy
 * and the earth-system-discipline levels, from a built-in table or a newer list loaded from a
 * file. */
#ifndef WMESH_WIS2_TOPIC_H
#define WMESH_WIS2_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define WIS2_TOPIC_LEVELS_MAX 32

/* The built-in table (wis2_topic_table.c, generated): sorted, without duplicates, levels 7 and
 * beyond such as "weather/surface-based-observations/synop". */
extern const char *const wis2_topic_builtin[];
extern const size_t wis2_topic_builtin_count;

/* A set of earth-system-discipline paths, each marked leaf or not. Read-only once made: any
 * thread may check topics against it. */
struct wis2_topics;

/* The built-in table. NULL when out of memory. The caller owns the result. */
WM_WARN_UNUSED struct wis2_topics *wis2_topics_builtin(void);
/* The paths of a file: one a line, as the bundle's earth-system-discipline.csv (a first line
 * "Name" is skipped, CRLF and blank lines are fine, a '#' line is a comment). Refuses a path
 * with an empty level, '+', '#' or a character other than [a-z0-9._-]: NULL with *err set
 * (WM_ERR_IO, WM_ERR_FORMAT, WM_ERR_NOMEM) and why naming the line. The caller owns it. */
WM_WARN_UNUSED struct wis2_topics *wis2_topics_load(const char *path, enum wm_err *err, char *why,
                                                    size_t whylen);
void wis2_topics_free(struct wis2_topics **t);
size_t wis2_topics_count(const struct wis2_topics *t);

enum wis2_topic_verdict {
    WIS2_TOPIC_OK = 0,
    WIS2_TOPIC_SYNTAX,     /* an empty level, a wildcard, upper case, too many levels */
    WIS2_TOPIC_ROOT,       /* not origin|cache/a/wis2 */
    WIS2_TOPIC_TYPE,       /* level 5 is neither data nor metadata */
    WIS2_TOPIC_POLICY,     /* level 6 is neither core nor recommended */
    WIS2_TOPIC_DISCIPLINE, /* levels 7 and beyond are not a path of the table */
    WIS2_TOPIC_NOT_LEAF,   /* a path of the table with children, with leaf_only */
};

/* Checks topic (len bytes, need not be NUL-terminated) per the hierarchy: levels 1-3
 * origin|cache/a/wis2; level 4 any centre-id (the caller checks it against its links); then
 * "metadata" alone, or "data" (or, as the WMO test suite accepts, "metadata") followed by
 * core|recommended and an earth-system-discipline path: "<discipline>/experimental[/...]" for
 * anything, else a path of t, and with leaf_only a path without children. The level 7 alone is
 * never enough. Allocates nothing. */
enum wis2_topic_verdict wis2_topic_check(const struct wis2_topics *t, const char *topic, size_t len,
                                         bool leaf_only);
/* One line naming a verdict, for logs. */
const char *wis2_topic_verdict_name(enum wis2_topic_verdict v);

/* Level n (1 for the first) of topic: its start, its length in *level_len. NULL when the topic
 * has fewer levels. */
const char *wis2_topic_level(const char *topic, size_t len, int n, size_t *level_len);

#endif
