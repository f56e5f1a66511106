/* cli_common.h: small helpers shared by the subcommands' argument handling. */
#ifndef WMESH_CLI_COMMON_H
#define WMESH_CLI_COMMON_H

#include "announce.h"

struct options;

/* NULL for NULL or "none", else text. */
const char *cli_none_to_null(const char *text);
/* "v03" or "array" (and later "wnm"); prints a reason and returns -1 otherwise. */
int cli_parse_format(const char *text, enum wm_format *out);

/* --inline BYTES for a command announcing in fmt: 0 to WM_INLINE_MAX, and only with a format
 * that has a place for content. Prints a reason (naming cmd) and returns -1 otherwise. */
int cli_parse_inline(struct options *o, const char *cmd, enum wm_format fmt, size_t *out);

/* Applies --verbose/-v, --quiet/-q and --log-format when the command has them. */
int cli_set_logging(const struct options *o);

#endif
