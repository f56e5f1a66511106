/* series.h: metric series whose label values are known only at run time, such as the WIS2
 * metrics by centre_id and dataserver. One thread (the loop) makes and updates series; any
 * thread may render them meanwhile (the HTTP server's /metrics). The table has a fixed
 * capacity, because the label values come from the network: a series that does not fit is not
 * made, and the table counts it (series_dropped). */
#ifndef WMESH_SERIES_H
#define WMESH_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

#define SERIES_LABELS_MAX 3
#define SERIES_VALUE_MAX 96 /* bytes of a label value, NUL included; longer ones are cut */

/* A metric family: static, shared by all its series. */
struct series_family {
    const char *name; /* full series name, such as "wmo_wis2_gc_downloaded_total" */
    const char *help;
    bool counter;                          /* else a gauge */
    const char *labels[SERIES_LABELS_MAX]; /* label names, NULL after the last */
};

struct series;
struct series_table;

/* A table for up to capacity series. NULL when out of memory. */
WM_WARN_UNUSED struct series_table *series_table_new(size_t capacity);
void series_table_free(struct series_table **t);

/* The series of family f with the given label values (one per label name of f), made at 0 if
 * need be. NULL when the table is full or out of memory. Only the updating thread calls it. */
struct series *series_get(struct series_table *t, const struct series_family *f,
                          const char *const *values);
/* Adds n to a counter, or sets a gauge; NULL s is ignored, so that a series that could not be
 * made costs its callers no test. Safe while others render. */
void series_add(struct series *s, uint64_t n);
void series_set(struct series *s, double v);
/* A series' value (a counter's as a double), for tests. */
double series_value(const struct series *s);
/* Series not made because the table was full. */
uint64_t series_dropped(const struct series_table *t);

/* Appends s to out as a Prometheus label value: backslash, double quote and newline escaped.
 * Errors as buf_append(). */
WM_WARN_UNUSED enum wm_err series_escape_label(struct buf *out, const char *s);

/* Appends the Prometheus text of every series, grouped by family in the order the families
 * were first used, to out (NUL-terminated after out->len). False when out of memory or past
 * out's cap (out is still the caller's to free). Safe from any thread. */
bool series_render(const struct series_table *t, struct buf *out);

#endif
