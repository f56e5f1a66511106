/* series.c: series with run-time label values (series.h). The table is allocated once: a series
 * never moves, so renderers read it without a lock; a new one is written whole before the count
 * that makes it visible is stored (release), and renderers load the count first (acquire). */
#include "series.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

#define FAMILIES_MAX 64
#define KEY_MAX (128 + SERIES_LABELS_MAX * SERIES_VALUE_MAX)

struct series {
    const struct series_family *family;
    char values[SERIES_LABELS_MAX][SERIES_VALUE_MAX];
    atomic_uint_fast64_t bits; /* a counter's count, or a gauge's double */
};

struct series_table {
    struct series *all;
    size_t capacity;
    atomic_size_t count;
    const struct series_family *families[FAMILIES_MAX];
    atomic_size_t nfamilies;
    struct strmap *index; /* key (series_key) -> series; the updating thread's */
    atomic_uint_fast64_t dropped;
};

struct series_table *series_table_new(size_t capacity)
{
    struct series_table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->capacity = capacity;
    if (!(t->all = calloc(capacity ? capacity : 1, sizeof *t->all)) || !(t->index = strmap_new())) {
        series_table_free(&t);
        return NULL;
    }
    return t;
}

void series_table_free(struct series_table **tp)
{
    if (!tp || !*tp) return;
    strmap_free(&(*tp)->index);
    free((*tp)->all);
    free(*tp);
    *tp = NULL;
}

static size_t label_count(const struct series_family *f)
{
    size_t n = 0;
    while (n < SERIES_LABELS_MAX && f->labels[n])
        n++;
    return n;
}

/* "name\x1fvalue\x1fvalue": values are cut as they are stored, so equal keys mean equal series. */
static bool series_key(const struct series_family *f, const char *const *values, char *key)
{
    int n = snprintf(key, KEY_MAX, "%s", f->name);
    for (size_t i = 0; i < label_count(f) && n > 0 && n < KEY_MAX; i++)
        n += snprintf(key + n, (size_t)(KEY_MAX - n), "\x1f%.*s", SERIES_VALUE_MAX - 1,
                      values[i] ? values[i] : "");
    return n > 0 && n < KEY_MAX;
}

static bool family_known(struct series_table *t, const struct series_family *f)
{
    size_t n = atomic_load_explicit(&t->nfamilies, memory_order_relaxed);
    for (size_t i = 0; i < n; i++)
        if (t->families[i] == f) return true;
    if (n == FAMILIES_MAX) return false;
    t->families[n] = f;
    atomic_store_explicit(&t->nfamilies, n + 1, memory_order_release);
    return true;
}

struct series *series_get(struct series_table *t, const struct series_family *f,
                          const char *const *values)
{
    if (!t || !f || (label_count(f) && !values)) return NULL;
    char key[KEY_MAX];
    if (!series_key(f, values, key)) return NULL;
    struct series *s = strmap_get(t->index, key);
    if (s) return s;
    size_t n = atomic_load_explicit(&t->count, memory_order_relaxed);
    if (n == t->capacity || !family_known(t, f)) {
        atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
        return NULL;
    }
    s = &t->all[n];
    s->family = f;
    for (size_t i = 0; i < label_count(f); i++)
        snprintf(s->values[i], SERIES_VALUE_MAX, "%s", values[i] ? values[i] : "");
    if (strmap_put(t->index, key, s) != WM_OK) return NULL;
    atomic_store_explicit(&t->count, n + 1, memory_order_release);
    return s;
}

void series_add(struct series *s, uint64_t n)
{
    if (s) atomic_fetch_add_explicit(&s->bits, n, memory_order_relaxed);
}

void series_set(struct series *s, double v)
{
    if (!s) return;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    atomic_store_explicit(&s->bits, bits, memory_order_relaxed);
}

double series_value(const struct series *s)
{
    if (!s) return 0;
    uint64_t bits = atomic_load_explicit(&s->bits, memory_order_relaxed);
    if (s->family->counter) return (double)bits;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

uint64_t series_dropped(const struct series_table *t)
{
    return t ? atomic_load_explicit(&t->dropped, memory_order_relaxed) : 0;
}

/* ---- rendering ---- */

struct text {
    struct buf *out;
    bool failed; /* an append failed: the text is incomplete */
};

__attribute__((format(printf, 2, 3))) static void put(struct text *o, const char *fmt, ...)
{
    if (o->failed) return;
    va_list ap;
    va_start(ap, fmt);
    if (buf_vprintf(o->out, fmt, ap) != WM_OK) o->failed = true;
    va_end(ap);
}

enum wm_err series_escape_label(struct buf *out, const char *s)
{
    if (!out || !s) return WM_ERR_INVAL;
    enum wm_err err = WM_OK;
    const char *run = s;
    for (; *s && err == WM_OK; s++) {
        if (*s != '\\' && *s != '"' && *s != '\n') continue;
        char esc[2] = {'\\', *s == '\n' ? 'n' : *s};
        err = buf_append(out, run, (size_t)(s - run));
        if (err == WM_OK) err = buf_append(out, esc, 2);
        run = s + 1;
    }
    return err == WM_OK ? buf_append(out, run, strlen(run)) : err;
}

static void render_series(struct text *o, const struct series *s)
{
    const struct series_family *f = s->family;
    put(o, "%s", f->name);
    for (size_t i = 0; i < label_count(f); i++) {
        put(o, "%s%s=\"", i ? "," : "{", f->labels[i]);
        if (!o->failed && series_escape_label(o->out, s->values[i]) != WM_OK) o->failed = true;
        put(o, "\"");
    }
    if (label_count(f)) put(o, "}");
    if (f->counter)
        put(o, " %llu\n", (unsigned long long)series_value(s));
    else
        put(o, " %.17g\n", series_value(s));
}

bool series_render(const struct series_table *t, struct buf *out)
{
    struct text o = {.out = out};
    if (!t) return true;
    size_t nf = atomic_load_explicit(&t->nfamilies, memory_order_acquire);
    size_t n = atomic_load_explicit(&t->count, memory_order_acquire);
    for (size_t i = 0; i < nf; i++) {
        const struct series_family *f = t->families[i];
        put(&o, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
            f->counter ? "counter" : "gauge");
        for (size_t k = 0; k < n; k++)
            if (t->all[k].family == f) render_series(&o, &t->all[k]);
    }
    return !o.failed;
}
