/* status_page.h: the self-contained HTML status page served at "/", which polls /metrics. */
#ifndef WMESH_STATUS_PAGE_H
#define WMESH_STATUS_PAGE_H

#include <stddef.h>

#include "error.h"

/* An httpd_page_fn: returns a malloc'd copy of the page (arg is unused), "text/html". */
WM_WARN_UNUSED char *status_page_render(void *arg, size_t *len, const char **content_type);

#endif
