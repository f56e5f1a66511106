/* prom_text.c: a reader of the Prometheus text exposition format, enough for wmesh's own
 * /metrics: sample lines "name{labels} value [timestamp]", comments skipped. */
#include "prom_text.h"

#include <stdlib.h>
#include <string.h>

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* The end of the label set that starts after '{' at p: its '}', or NULL (quotes honoured). */
static const char *labels_end(const char *p, const char *end)
{
    bool quoted = false;
    for (; p < end; p++) {
        if (quoted && *p == '\\' && p + 1 < end)
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (!quoted && *p == '}')
            return p;
    }
    return NULL;
}

/* Parses the line [p, end) into *s. */
static bool parse_line(const char *p, const char *end, struct prom_sample *s)
{
    const char *n = p;
    while (p < end && name_char(*p, p == n))
        p++;
    if (p == n) return false;
    s->name = n;
    s->name_len = (size_t)(p - n);
    s->labels = "";
    s->labels_len = 0;
    if (p < end && *p == '{') {
        const char *close = labels_end(p + 1, end);
        if (!close) return false;
        s->labels = p + 1;
        s->labels_len = (size_t)(close - p - 1);
        p = close + 1;
    }
    if (p >= end || (*p != ' ' && *p != '\t')) return false;
    char value[64];
    size_t len = 0;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (p < end && *p != ' ' && *p != '\t' && len + 1 < sizeof value)
        value[len++] = *p++;
    value[len] = '\0';
    char *stop;
    s->value = strtod(value, &stop);
    return len > 0 && *stop == '\0';
}

bool prom_next(const char **pos, struct prom_sample *s)
{
    const char *p = *pos;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        const char *end = nl ? nl : p + strlen(p);
        const char *next = nl ? nl + 1 : end;
        const char *line = p;
        p = next;
        while (line < end && (*line == ' ' || *line == '\t'))
            line++;
        if (line < end && *line != '#' && parse_line(line, end, s)) {
            *pos = p;
            return true;
        }
    }
    *pos = p;
    return false;
}

bool prom_match(const struct prom_sample *s, const char *name, const char *label)
{
    if (strlen(name) != s->name_len || memcmp(s->name, name, s->name_len) != 0) return false;
    if (!label) return true;
    size_t n = strlen(label);
    /* A whole pair: at the start or after a ',', ending the set or followed by a ','. */
    for (const char *l = s->labels; l + n <= s->labels + s->labels_len; l++) {
        bool starts = l == s->labels || l[-1] == ',';
        const char *after = l + n;
        bool ends = after == s->labels + s->labels_len || *after == ',';
        if (starts && ends && memcmp(l, label, n) == 0) return true;
    }
    return false;
}

bool prom_label(const struct prom_sample *s, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    const char *p = s->labels, *end = s->labels + s->labels_len;
    while (p < end) {
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq || eq + 1 >= end || eq[1] != '"') return false;
        bool found = (size_t)(eq - p) == klen && memcmp(p, key, klen) == 0;
        size_t j = 0;
        for (p = eq + 2; p < end && *p != '"'; p++) {
            char c = *p;
            if (c == '\\' && p + 1 < end) c = *++p == 'n' ? '\n' : *p;
            if (found && j + 1 < outlen) out[j++] = c;
        }
        if (found) {
            if (outlen) out[j] = '\0';
            return true;
        }
        p++; /* the closing quote */
        if (p < end && *p == ',') p++;
    }
    return false;
}

double prom_sum(const char *text, const char *name, const char *label, size_t *n)
{
    struct prom_sample s;
    double sum = 0;
    size_t count = 0;
    for (const char *p = text; prom_next(&p, &s);)
        if (prom_match(&s, name, label)) {
            sum += s.value;
            count++;
        }
    if (n) *n = count;
    return sum;
}
