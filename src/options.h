/* options.h: long options ("--name value" or "--name=value") described by a table, so every
 * subcommand parses, validates and documents its options the same way. */
#ifndef WMESH_OPTIONS_H
#define WMESH_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

enum option_kind { OPT_STRING, OPT_NUMBER, OPT_FLAG };

struct option_spec {
    const char *name; /* without the leading "--" */
    enum option_kind kind;
    bool repeatable;
    const char *metavar; /* e.g. "URL"; NULL for flags */
    const char *def;     /* default shown in --help and returned by options_get; may be NULL */
    const char *help;
    /* OPT_NUMBER: the values allowed, bounds included (max INFINITY: no upper bound); both 0:
     * any number. Values outside are refused with both bounds named, defaults included. */
    double min, max;
};

struct options;

/* Parses argv (argv[0] is the subcommand name, which error messages name as "wmesh NAME:") against
 * specs (ended by a {NULL} entry). When specs has a "config" option and it is given, that file is
 * read too: one "name value" per line ('#' comments, blank lines), the long options' names; its
 * values come before the command line's, so the command line overrides single values and replaces
 * repeated ones. Errors in it name the file and line. Arguments that are not options are kept as
 * positionals. On error returns NULL and prints a one-line reason on stderr (a number default
 * outside its range is one). "--help" prints the usage and sets *help. The caller owns the result;
 * argv and specs must outlive it. */
WM_WARN_UNUSED struct options *options_parse(const char *usage, const struct option_spec *specs,
                                             int argc, char **argv, bool *help);
void options_free(struct options **o);

/* The last value given for name, else its default, else NULL. */
const char *options_get(const struct options *o, const char *name);
/* Every value given for a repeatable option (else its default); *n gets the count. The array
 * is new and the caller frees it with free(); the strings stay owned by argv and specs. */
const char **options_get_all(const struct options *o, const char *name, size_t *n);
bool options_flag(const struct options *o, const char *name);
/* The value of a number option (seconds, counts), else its default: options_parse has checked
 * the values given against the spec's range, so the default in the spec is the only one. Returns
 * WM_ERR_NOTFOUND when there is neither (*out untouched), WM_ERR_INVAL when the default is not a
 * number within the range (a mistake in the spec). */
WM_WARN_UNUSED enum wm_err options_number(const struct options *o, const char *name, double *out);
/* The i-th value in order (the file's first), its option's name and origin; NULL past the end.
 * For options whose relative order matters, such as --accept and --reject. */
const char *options_nth(const struct options *o, size_t i, const char **name, bool *from_file);
const char *const *options_positionals(const struct options *o, size_t *n);

/* Prints usage and every option with its default. */
void options_usage(const char *usage, const struct option_spec *specs);

#endif
