/* filter.h: ordered --accept/--reject regular expressions applied to download URLs. */
#ifndef WMESH_FILTER_H
#define WMESH_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct filter;

/* An empty filter accepts everything. The caller owns it. NULL on no memory. */
WM_WARN_UNUSED struct filter *filter_new(void);
void filter_free(struct filter **f);
/* Appends a rule (POSIX extended regex, unanchored). On a bad pattern returns WM_ERR_INVAL and
 * writes the reason into why. */
WM_WARN_UNUSED enum wm_err filter_add(struct filter *f, bool accept, const char *pattern, char *why,
                                      size_t whylen);
/* The first rule that matches decides; when none matches, the text is accepted, as Sarracenia's
 * accept_unmatch default does. *rule gets the deciding pattern (NULL when none). */
bool filter_accepts(const struct filter *f, const char *text, const char **rule);

#endif
