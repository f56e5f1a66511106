/* credentials.h: passwords kept out of command lines and logs, in a file of URLs (mode 0600),
 * one per line, as Sarracenia's credentials.conf: "mqtt://user:password@host:port". */
#ifndef WMESH_CREDENTIALS_H
#define WMESH_CREDENTIALS_H

#include <stddef.h>

#include "error.h"

struct credentials;

/* Loads path. Refuses (WM_ERR_UNSAFE) a file that group or others may read, and names the line
 * of any URL it cannot parse (WM_ERR_INVAL); why gets the reason. The caller owns the result. */
WM_WARN_UNUSED struct credentials *credentials_load(const char *path, enum wm_err *err, char *why,
                                                    size_t whylen);
void credentials_free(struct credentials **c);

/* A new string (caller frees): url with the password of the first line of c that has the same
 * scheme, user, host and port, when url has no password of its own; else a copy of url.
 * NULL on no memory. c may be NULL. */
WM_WARN_UNUSED char *credentials_apply(const struct credentials *c, const char *url);

#endif
