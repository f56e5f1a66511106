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
};

struct options {
    const struct option_spec *specs;
    struct value *values;
    size_t nvalues;
    const char **positional;
    size_t npositional;
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
    o->values[o->nvalues++] = (struct value){s, text};
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

/* Handles argv[*i], an option; advances *i past its value. Returns non-zero on error. */
static int parse_one(struct options *o, int argc, char **argv, int *i)
{
    const char *arg = argv[*i] + 2;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const struct option_spec *s = find_spec(o->specs, arg, len);
    if (!s) {
        fprintf(stderr, "%s: unknown option --%.*s (see --help)\n", argv[0], (int)len, arg);
        return -1;
    }
    const char *text = "1";
    if (s->kind != OPT_FLAG) {
        if (eq) text = eq + 1;
        else if (*i + 1 < argc) text = argv[++*i];
        else {
            fprintf(stderr, "%s: --%s needs a value\n", argv[0], s->name);
            return -1;
        }
    } else if (eq) {
        fprintf(stderr, "%s: --%s takes no value\n", argv[0], s->name);
        return -1;
    }
    if (s->kind == OPT_NUMBER && !valid_number(text)) {
        fprintf(stderr, "%s: --%s wants a number, not \"%s\"\n", argv[0], s->name, text);
        return -1;
    }
    return push_value(o, s, text) == WM_OK ? 0 : -1;
}

struct options *options_parse(const char *usage, const struct option_spec *specs, int argc,
                              char **argv, bool *help)
{
    *help = false;
    struct options *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->specs = specs;
    bool only_positionals = false;
    for (int i = 1; i < argc; i++) {
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
    return o;
fail:
    options_free(&o);
    return NULL;
}

void options_free(struct options **op)
{
    if (!op || !*op) return;
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
    for (size_t i = 0; i < o->nvalues; i++)
        if (strcmp(o->values[i].spec->name, name) == 0) all[(*n)++] = o->values[i].text;
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

enum wm_err options_number(const struct options *o, const char *name, double def, double *out)
{
    const char *v = options_get(o, name);
    if (!v) {
        *out = def;
        return WM_OK;
    }
    if (!valid_number(v)) return WM_ERR_INVAL;
    *out = strtod(v, NULL);
    return WM_OK;
}

const char *const *options_positionals(const struct options *o, size_t *n)
{
    *n = o->npositional;
    return o->positional;
}
