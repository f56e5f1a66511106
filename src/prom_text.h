/* prom_text.h: reading the Prometheus text format (what /metrics serves), for the commands that
 * show a peer's figures (status, demo). Pure: no I/O, nothing allocated. */
#ifndef WMESH_PROM_TEXT_H
#define WMESH_PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* One sample line. The pointers point into the text read. */
struct prom_sample {
    const char *name; /* metric name, name_len bytes */
    size_t name_len;
    const char *labels; /* between the braces, labels_len bytes; "" when none */
    size_t labels_len;
    double value;
};

/* Reads the next sample line at or after *pos, skipping comments, blank lines and lines that
 * are not samples, and advances *pos past it. False at the end of the text. */
bool prom_next(const char **pos, struct prom_sample *s);

/* Whether sample s is named name and, unless label is NULL, has the label pair label (as
 * `broker="mqtt://h:1"`, matched whole). */
bool prom_match(const struct prom_sample *s, const char *name, const char *label);

/* The value of label key of s, unescaped, into out (outlen bytes, truncated); false when s
 * has no such label. */
bool prom_label(const struct prom_sample *s, const char *key, char *out, size_t outlen);

/* The sum of the samples of text that prom_match name and label; *n (may be NULL) gets how many
 * there were (the sum is 0 when none). */
double prom_sum(const char *text, const char *name, const char *label, size_t *n);

#endif
