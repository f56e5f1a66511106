/* strmap.c: chained string hash map (FNV-1a), enough for in-flight tables. */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

struct entry {
    char *key;
    void *value;
    uint64_t hash;
    struct entry *next;
};

struct strmap {
    struct entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = HASH_FNV1A_INIT;
    for (; *s; s++)
        h = hash_fnv1a_byte(h, (unsigned char)*s);
    return h;
}

struct strmap *strmap_new(void)
{
    struct strmap *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->nbuckets = 64;
    m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    return m;
}

void strmap_free(struct strmap **mp)
{
    if (!mp || !*mp) return;
    struct strmap *m = *mp;
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct entry *e = m->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e->key);
            free(e);
        }
    }
    free(m->buckets);
    free(m);
    *mp = NULL;
}

static struct entry **find(const struct strmap *m, const char *key, uint64_t h)
{
    struct entry **pos = &m->buckets[h & (m->nbuckets - 1)];
    while (*pos && ((*pos)->hash != h || strcmp((*pos)->key, key) != 0))
        pos = &(*pos)->next;
    return pos;
}

void *strmap_get(const struct strmap *m, const char *key)
{
    struct entry *e = *find(m, key, fnv1a(key));
    return e ? e->value : NULL;
}

static void grow(struct strmap *m)
{
    size_t n = m->nbuckets * 2;
    struct entry **b = calloc(n, sizeof *b);
    if (!b) return; /* stay at this size: slower, still correct */
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct entry *e = m->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

enum wm_err strmap_put(struct strmap *m, const char *key, void *value)
{
    uint64_t h = fnv1a(key);
    struct entry **pos = find(m, key, h);
    if (*pos) {
        (*pos)->value = value;
        return WM_OK;
    }
    struct entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return WM_ERR_NOMEM;
    }
    e->value = value;
    e->hash = h;
    *pos = e;
    if (++m->count > m->nbuckets) grow(m);
    return WM_OK;
}

void *strmap_remove(struct strmap *m, const char *key)
{
    struct entry **pos = find(m, key, fnv1a(key));
    struct entry *e = *pos;
    if (!e) return NULL;
    *pos = e->next;
    void *v = e->value;
    free(e->key);
    free(e);
    m->count--;
    return v;
}

size_t strmap_count(const struct strmap *m)
{
    return m->count;
}

void *strmap_any(const struct strmap *m)
{
    if (m->count == 0) return NULL;
    for (size_t i = 0; i < m->nbuckets; i++)
        if (m->buckets[i]) return m->buckets[i]->value;
    return NULL;
}
