/* options.c: table-driven long-option parsing shared by every subcommand. */
#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct value {
    const struct option_spec *spec;
    const char *text;
    bool from_file;
};

struct options {
    const struct option_spec *specs;
    struct value *values;
    size_t nvalues;
    const char **positional;
    size_t npositional;
    char **file_texts; /* lines of the --config file, owned */
    size_t nfile_texts;
};

static const struct option_spec *find_spec(const struct option_spec *specs, const char *name,
                                           size_t len)
{
    for (const struct option_spec *s = specs; s->name; s++)
        if (strlen(s->name) == len && strncmp(s->name, name, len) == 0) return s;
    return NULL;
}

void options_usage(const char *usage, const struct option_spec *specs)
{
    fprintf(stderr, "usage: %s\n\noptions:\n", usage);
    for (const struct option_spec *s = specs; s->name; s++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", s->name, s->metavar ? " " : "",
                 s->metavar ? s->metavar : "");
        fprintf(stderr, "  %-28s %s%s%s%s%s\n", left, s->help, s->repeatable ? " (repeatable)" : "",
                s->def ? " [default: " : "", s->def ? s->def : "", s->def ? "]" : "");
    }
}

static enum wm_err push_value(struct options *o, const struct option_spec *s, const char *text)
{
    struct value *v = realloc(o->values, (o->nvalues + 1) * sizeof *v);
    if (!v) return WM_ERR_NOMEM;
    o->values = v;
    o->values[o->nvalues++] = (struct value){s, text, false};
    return WM_OK;
}

static enum wm_err push_positional(struct options *o, const char *text)
{
    const char **p = realloc(o->positional, (o->npositional + 1) * sizeof *p);
    if (!p) return WM_ERR_NOMEM;
    o->positional = p;
    o->positional[o->npositional++] = text;
    return WM_OK;
}

static bool valid_number(const char *text)
{
    char *end;
    errno = 0;
    double d = strtod(text, &end);
    return errno == 0 && end != text && *end == '\0' && isfinite(d);
}

static bool has_range(const struct option_spec *s)
{
    return s->min != 0 || s->max != 0;
}

/* A number within the range of s. */
static bool valid_value(const struct option_spec *s, const char *text)
{
    if (!valid_number(text)) return false;
    double d = strtod(text, NULL);
    return !has_range(s) || (d >= s->min && d <= s->max);
}

/* What s wants, for messages: "a number from 1 to 64". */
static void wanted(const struct option_spec *s, char *out, size_t outlen)
{
    if (!has_range(s))
        snprintf(out, outlen, "a number");
    else if (isinf(s->max))
        snprintf(out, outlen, "a number of at least %.15g", s->min);
    else
        snprintf(out, outlen, "a number from %.15g to %.15g", s->min, s->max);
}

/* Handles argv[*i], an option; advances *i past its value. Returns non-zero on error. */
static int parse_one(struct options *o, int argc, char **argv, int *i)
{
    const char *arg = argv[*i] + 2;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const struct option_spec *s = find_spec(o->specs, arg, len);
    if (!s) {
        fprintf(stderr, "wmesh %s: unknown option --%.*s (see --help)\n", argv[0], (int)len, arg);
        return -1;
    }
    const char *text = "1";
    if (s->kind != OPT_FLAG) {
        if (eq)
            text = eq + 1;
        else if (*i + 1 < argc)
            text = argv[++*i];
        else {
            fprintf(stderr, "wmesh %s: --%s needs a value\n", argv[0], s->name);
            return -1;
        }
    } else if (eq) {
        fprintf(stderr, "wmesh %s: --%s takes no value\n", argv[0], s->name);
        return -1;
    }
    if (s->kind == OPT_NUMBER && !valid_value(s, text)) {
        char want[96];
        wanted(s, want, sizeof want);
        fprintf(stderr, "wmesh %s: --%s wants %s, not %s\n", argv[0], s->name, want, text);
        return -1;
    }
    return push_value(o, s, text) == WM_OK ? 0 : -1;
}

static const char *short_alias(const struct option_spec *specs, const char *arg)
{
    const char *name = strcmp(arg, "-v") == 0 ? "verbose" : strcmp(arg, "-q") == 0 ? "quiet" : NULL;
    return name && find_spec(specs, name, strlen(name)) ? name : NULL;
}

static enum wm_err keep_text(struct options *o, const char *text, const char **kept)
{
    char **t = realloc(o->file_texts, (o->nfile_texts + 1) * sizeof *t);
    if (!t) return WM_ERR_NOMEM;
    o->file_texts = t;
    if (!(o->file_texts[o->nfile_texts] = strdup(text))) return WM_ERR_NOMEM;
    *kept = o->file_texts[o->nfile_texts++];
    return WM_OK;
}

/* Inserts a value read from the configuration file before every command-line value, so that
 * the command line overrides the file. */
static enum wm_err insert_file_value(struct options *o, const struct option_spec *s,
                                     const char *text, size_t *nfile)
{
    const char *kept;
    if (keep_text(o, text, &kept) != WM_OK || push_value(o, s, kept) != WM_OK) return WM_ERR_NOMEM;
    struct value v = o->values[o->nvalues - 1];
    memmove(&o->values[*nfile + 1], &o->values[*nfile],
            (o->nvalues - 1 - *nfile) * sizeof *o->values);
    v.from_file = true;
    o->values[(*nfile)++] = v;
    return WM_OK;
}

/* Checks one "name value" line of a configuration file and adds it. */
static int config_line(struct options *o, const char *cmd, const char *path, int lineno, char *line,
                       size_t *nfile)
{
    char *name = line;
    while (*name == ' ' || *name == '\t')
        name++;
    size_t n = strlen(name);
    while (n > 0 && strchr(" \t\r\n", name[n - 1]))
        name[--n] = '\0';
    if (!*name || *name == '#') return 0;
    char *value = name + strcspn(name, " \t");
    if (*value) *value++ = '\0';
    while (*value == ' ' || *value == '\t')
        value++;
    const struct option_spec *s = find_spec(o->specs, name, strlen(name));
    const char *why = NULL;
    if (!s || strcmp(name, "config") == 0)
        why = "unknown option";
    else if (s->kind == OPT_FLAG && *value && strcmp(value, "true") && strcmp(value, "1") &&
             strcmp(value, "yes") && strcmp(value, "on"))
        why = "a flag takes no value but true/yes/on/1";
    else if (s->kind != OPT_FLAG && !*value)
        why = "needs a value";
    if (why) {
        fprintf(stderr, "wmesh %s: %s:%d: %s: %s\n", cmd, path, lineno, why, name);
        return -1;
    }
    if (s->kind == OPT_NUMBER && !valid_value(s, value)) {
        char want[96];
        wanted(s, want, sizeof want);
        fprintf(stderr, "wmesh %s: %s:%d: %s wants %s, not %s\n", cmd, path, lineno, name, want,
                value);
        return -1;
    }
    return insert_file_value(o, s, s->kind == OPT_FLAG ? "1" : value, nfile) == WM_OK ? 0 : -1;
}

static int load_config(struct options *o, const char *cmd, const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        fprintf(stderr, "wmesh %s: %s: %s\n", cmd, path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    size_t nfile = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            fprintf(stderr, "wmesh %s: %s:%d: line too long\n", cmd, path, lineno);
            rc = -1;
        } else {
            rc = config_line(o, cmd, path, lineno, line, &nfile);
        }
    }
    fclose(f);
    return rc;
}

/* A number default outside its range is a mistake in the table: said at once, on every run. */
static int check_defaults(const struct option_spec *specs, const char *cmd)
{
    for (const struct option_spec *s = specs; s->name; s++) {
        if (s->kind != OPT_NUMBER || !s->def || valid_value(s, s->def)) continue;
        char want[96];
        wanted(s, want, sizeof want);
        fprintf(stderr, "wmesh %s: the default of --%s wants %s, not %s\n", cmd, s->name, want,
                s->def);
        return -1;
    }
    return 0;
}

struct options *options_parse(const char *usage, const struct option_spec *specs, int argc,
                              char **argv, bool *help)
{
    *help = false;
    if (check_defaults(specs, argv[0]) != 0) return NULL;
    struct options *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->specs = specs;
    bool only_positionals = false;
    for (int i = 1; i < argc; i++) {
        /* -v and -q: the only short options, as every daemon has them. */
        const char *alias = short_alias(specs, argv[i]);
        if (alias && !only_positionals) {
            if (push_value(o, find_spec(specs, alias, strlen(alias)), "1") != WM_OK) goto fail;
            continue;
        }
        if (only_positionals || strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') {
            if (!only_positionals && strcmp(argv[i], "--") == 0) {
                only_positionals = true;
                continue;
            }
            if (push_positional(o, argv[i]) != WM_OK) goto fail;
            continue;
        }
        if (strcmp(argv[i], "--help") == 0) {
            options_usage(usage, specs);
            *help = true;
            goto fail;
        }
        if (parse_one(o, argc, argv, &i) != 0) goto fail;
    }
    if (find_spec(specs, "config", 6) && options_get(o, "config") &&
        load_config(o, argv[0], options_get(o, "config")) != 0)
        goto fail;
    return o;
fail:
    options_free(&o);
    return NULL;
}

void options_free(struct options **op)
{
    if (!op || !*op) return;
    for (size_t i = 0; i < (*op)->nfile_texts; i++)
        free((*op)->file_texts[i]);
    free((*op)->file_texts);
    free((*op)->values);
    free((*op)->positional);
    free(*op);
    *op = NULL;
}

const char *options_get(const struct options *o, const char *name)
{
    for (size_t i = o->nvalues; i-- > 0;)
        if (strcmp(o->values[i].spec->name, name) == 0) return o->values[i].text;
    const struct option_spec *s = find_spec(o->specs, name, strlen(name));
    return s ? s->def : NULL;
}

const char **options_get_all(const struct options *o, const char *name, size_t *n)
{
    const char **all = calloc(o->nvalues + 1, sizeof *all);
    *n = 0;
    if (!all) return NULL;
    /* Values from the command line replace those of the configuration file. */
    bool cli = false;
    for (size_t i = 0; i < o->nvalues; i++)
        if (!o->values[i].from_file && strcmp(o->values[i].spec->name, name) == 0) cli = true;
    for (size_t i = 0; i < o->nvalues; i++)
        if (strcmp(o->values[i].spec->name, name) == 0 && (!cli || !o->values[i].from_file))
            all[(*n)++] = o->values[i].text;
    if (*n == 0) {
        const struct option_spec *s = find_spec(o->specs, name, strlen(name));
        if (s && s->def) all[(*n)++] = s->def;
    }
    return all;
}

bool options_flag(const struct options *o, const char *name)
{
    const char *v = options_get(o, name);
    return v && strcmp(v, "1") == 0;
}

enum wm_err options_number(const struct options *o, const char *name, double *out)
{
    const char *v = options_get(o, name);
    if (!v) return WM_ERR_NOTFOUND;
    const struct option_spec *s = find_spec(o->specs, name, strlen(name));
    if (!s || !valid_value(s, v)) return WM_ERR_INVAL;
    *out = strtod(v, NULL);
    return WM_OK;
}

const char *const *options_positionals(const struct options *o, size_t *n)
{
    *n = o->npositional;
    return o->positional;
}

const char *options_nth(const struct options *o, size_t i, const char **name, bool *from_file)
{
    if (i >= o->nvalues) return NULL;
    if (name) *name = o->values[i].spec->name;
    if (from_file) *from_file = o->values[i].from_file;
    return o->values[i].text;
}
