/* filter.c: accept/reject rules over POSIX regular expressions, first match wins. */
#include "filter.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

struct rule {
    bool accept;
    char *pattern;
    regex_t re;
};

struct filter {
    struct rule *rules;
    size_t n;
};

struct filter *filter_new(void)
{
    return calloc(1, sizeof(struct filter));
}

void filter_free(struct filter **fp)
{
    if (!fp || !*fp) return;
    for (size_t i = 0; i < (*fp)->n; i++) {
        regfree(&(*fp)->rules[i].re);
        free((*fp)->rules[i].pattern);
    }
    free((*fp)->rules);
    free(*fp);
    *fp = NULL;
}

enum wm_err filter_add(struct filter *f, bool accept, const char *pattern, char *why, size_t whylen)
{
    if (!f || !pattern) return WM_ERR_INVAL;
    struct rule *r = realloc(f->rules, (f->n + 1) * sizeof *r);
    if (!r) return WM_ERR_NOMEM;
    f->rules = r;
    struct rule *nr = &f->rules[f->n];
    int rc = regcomp(&nr->re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        if (why && whylen) regerror(rc, &nr->re, why, whylen);
        return WM_ERR_INVAL;
    }
    nr->pattern = strdup(pattern);
    if (!nr->pattern) {
        regfree(&nr->re);
        return WM_ERR_NOMEM;
    }
    nr->accept = accept;
    f->n++;
    return WM_OK;
}

bool filter_accepts(const struct filter *f, const char *text, const char **rule)
{
    if (rule) *rule = NULL;
    if (!f) return true;
    for (size_t i = 0; i < f->n; i++) {
        if (regexec(&f->rules[i].re, text, 0, NULL, 0) == 0) {
            if (rule) *rule = f->rules[i].pattern;
            return f->rules[i].accept;
        }
    }
    return true;
}
