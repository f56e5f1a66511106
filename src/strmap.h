/* strmap.h: a hash map from strings to pointers (chained, grows by doubling). */
#ifndef WMESH_STRMAP_H
#define WMESH_STRMAP_H

#include <stddef.h>

#include "error.h"

struct strmap;

/* NULL on no memory. Keys are copied; values are the caller's. */
WM_WARN_UNUSED struct strmap *strmap_new(void);
/* Frees the map and its key copies, not the values. */
void strmap_free(struct strmap **m);
void *strmap_get(const struct strmap *m, const char *key);
/* Inserts or replaces. */
WM_WARN_UNUSED enum wm_err strmap_put(struct strmap *m, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *strmap_remove(struct strmap *m, const char *key);
size_t strmap_count(const struct strmap *m);
/* Some value in the map, NULL when empty: for draining it. */
void *strmap_any(const struct strmap *m);

#endif
