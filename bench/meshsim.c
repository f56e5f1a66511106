/* meshsim.c: a simulation of announcement flooding and catch-up in a wmesh mesh (issue 18). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The model (docs/CATCHUP.md, "The simulation"):
 * - peers are vertices, a link is a mutual subscription (each reads the other's broker), so a
 *   peer of degree d has d upstreams and d downstreams;
 * - a file enters at one peer (its origin, time 0); a peer that stores it announces it once on
 *   its broker, every live neighbour receives that announcement; a neighbour that neither holds
 *   it nor has it in flight downloads it from the announcer, which takes the link's hop time
 *   (broker delivery plus download), then stores and announces it in turn; the others drop it;
 * - hop times are 1 (so times are hops) or drawn per link from [hop_lo, hop_hi] seconds;
 * - failed peers neither receive nor relay; a returning peer catches up over HTTP from the
 *   logs of its upstreams, then re-announces what it stored, which reaches peers that a
 *   partition kept from the file.
 * Deterministic: every random choice comes from one generator seeded by --seed. */

#define INF 1e300

struct opts {
    uint64_t seed;
    int files;      /* files flooded per row */
    int trials;     /* failure draws per row */
    double hop_ms;  /* one hop on the testbed (loopback), to print hops as ms */
    double hop_lo;  /* WAN hop time, seconds: broker delivery plus download */
    double hop_hi;  /* ... */
    double rtt;     /* catch-up request round trip, seconds */
    double bw;      /* catch-up bytes per second from one upstream */
    double dl_rate; /* files per second a returning peer downloads */
    int page;       /* records per log page */
    int check_min;  /* filtered subscribers: minutes between count checks */
};

static uint64_t rng_state;

/* splitmix64: small, fast and good enough for drawing graphs and origins. */
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int rng_below(int n)
{
    return (int)(rng_next() % (uint64_t)n);
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0;
}

struct graph {
    int n, maxdeg;
    int *deg;
    int *adj;    /* n * maxdeg neighbours */
    double *hop; /* the hop time of each adjacency slot (symmetric) */
    const char *name;
    int d; /* nominal degree */
};

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fputs("meshsim: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

static bool linked(const struct graph *g, int u, int v)
{
    for (int i = 0; i < g->deg[u]; i++)
        if (g->adj[u * g->maxdeg + i] == v) return true;
    return false;
}

static void link_add(struct graph *g, int u, int v)
{
    g->adj[u * g->maxdeg + g->deg[u]++] = v;
    g->adj[v * g->maxdeg + g->deg[v]++] = u;
}

static struct graph *graph_new(int n, int maxdeg, const char *name, int d)
{
    struct graph *g = xcalloc(1, sizeof *g);
    g->n = n;
    g->maxdeg = maxdeg;
    g->deg = xcalloc((size_t)n, sizeof *g->deg);
    g->adj = xcalloc((size_t)n * (size_t)maxdeg, sizeof *g->adj);
    g->hop = xcalloc((size_t)n * (size_t)maxdeg, sizeof *g->hop);
    g->name = name;
    g->d = d;
    return g;
}

static void graph_free(struct graph **g)
{
    if (!*g) return;
    free((*g)->deg);
    free((*g)->adj);
    free((*g)->hop);
    free(*g);
    *g = NULL;
}

static void shuffle(int *a, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = rng_below(i + 1), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Adds a random Hamiltonian cycle (ring) or a random perfect matching that shares no link with
 * the graph; false when none was found in 1000 draws. */
static bool add_layer(struct graph *g, bool ring)
{
    int n = g->n, *p = xcalloc((size_t)n, sizeof *p);
    bool ok = false;
    for (int attempt = 0; attempt < 1000 && !ok; attempt++) {
        for (int i = 0; i < n; i++)
            p[i] = i;
        shuffle(p, n);
        ok = true;
        int step = ring ? 1 : 2, links = ring ? n : n / 2;
        for (int i = 0; i < links && ok; i++) {
            int u = p[(i * step) % n], v = p[(i * step + 1) % n];
            ok = u != v && !linked(g, u, v);
            /* A ring must not repeat a link within itself either: checked as we add. */
            for (int j = 0; j < i && ok; j++) {
                int a = p[(j * step) % n], b = p[(j * step + 1) % n];
                ok = !((a == u && b == v) || (a == v && b == u));
            }
        }
        if (ok)
            for (int i = 0; i < links; i++)
                link_add(g, p[(i * step) % n], p[(i * step + 1) % n]);
    }
    free(p);
    return ok;
}

/* Random, connected, regular for even n: one random ring (so it is connected), then further
 * rings and, for odd d, one perfect matching. d = 2 is a random ring. */
static struct graph *graph_random(int n, int d)
{
    struct graph *g = graph_new(n, d, "random", d);
    bool ok = add_layer(g, true);
    for (int k = 2; ok && k + 2 <= d; k += 2)
        ok = add_layer(g, true);
    if (ok && d % 2) ok = add_layer(g, false);
    if (!ok) {
        fprintf(stderr, "meshsim: no random %d-regular graph on %d peers\n", d, n);
        exit(1);
    }
    return g;
}

static struct graph *graph_line(int n, bool ring)
{
    struct graph *g = graph_new(n, 2, ring ? "ring" : "chain", 2);
    for (int i = 0; i + 1 < n; i++)
        link_add(g, i, i + 1);
    if (ring) link_add(g, n - 1, 0);
    return g;
}

static struct graph *graph_full(int n)
{
    struct graph *g = graph_new(n, n - 1, "full", n - 1);
    for (int u = 0; u < n; u++)
        for (int v = u + 1; v < n; v++)
            link_add(g, u, v);
    return g;
}

/* A graph read from a file of edges (--edges), as tests/mesh writes $T/edges: "A B" a line,
 * hosts numbered 1..N, N the largest number seen; a first line "# NAME" names it, else the
 * file's base name without its extension does. */
#define EDGES_MAX_FILES 8
#define EDGES_MAX_HOSTS 1000

struct edges_file {
    const char *path;
    char name[64];
    struct graph *g; /* owned: freed by edges_free() */
    int edges, dups; /* distinct edges; duplicates ignored */
    int mindeg;
    int parts;      /* connected components */
    char sizes[64]; /* their sizes, largest first, when more than one */
};

static void set_name(char *dst, size_t len, const char *src, size_t srclen)
{
    while (srclen && isspace((unsigned char)*src)) {
        src++;
        srclen--;
    }
    while (srclen && isspace((unsigned char)src[srclen - 1]))
        srclen--;
    if (srclen >= len) srclen = len - 1;
    for (size_t i = 0; i < srclen; i++)
        dst[i] = src[i] == '|' || iscntrl((unsigned char)src[i]) ? '_' : src[i]; /* a table cell */
    dst[srclen] = '\0';
}

/* A number at *p, moves *p past it; one too large to hold comes out as 0, out of range. */
static bool parse_host(char **p, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(*p, &end, 10);
    if (end == *p) return false;
    if (errno) v = 0;
    *p = end;
    *out = v;
    return true;
}

static int cmp_int_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

/* Counts the connected components of e->g and writes their sizes. */
static void edges_parts(struct edges_file *e)
{
    const struct graph *g = e->g;
    int *part = xcalloc((size_t)g->n, sizeof *part), *queue = xcalloc((size_t)g->n, sizeof *queue);
    int *size = xcalloc((size_t)g->n, sizeof *size);
    e->parts = 0;
    for (int s = 0; s < g->n; s++) {
        if (part[s]) continue;
        int head = 0, tail = 0;
        part[s] = ++e->parts;
        queue[tail++] = s;
        while (head < tail) {
            int v = queue[head++];
            for (int i = 0; i < g->deg[v]; i++) {
                int u = g->adj[v * g->maxdeg + i];
                if (!part[u]) {
                    part[u] = e->parts;
                    queue[tail++] = u;
                }
            }
        }
        size[e->parts - 1] = tail;
    }
    qsort(size, (size_t)e->parts, sizeof *size, cmp_int_desc);
    /* The eight largest: 8 * 6 characters at most. */
    size_t used = 0;
    e->sizes[0] = '\0';
    for (int i = 0; i < e->parts && i < 8 && e->parts > 1; i++)
        used += (size_t)snprintf(e->sizes + used, sizeof e->sizes - used, "%s%d", i ? ", " : "",
                                 size[i]);
    if (e->parts > 8) snprintf(e->sizes + used, sizeof e->sizes - used, ", ...");
    free(part);
    free(queue);
    free(size);
}

/* Reads the graph of `path` into e. On a bad file prints one line "meshsim: PATH:LINE: why" and
 * returns false; e then owns nothing. */
static bool edges_load(const char *path, struct edges_file *e)
{
    memset(e, 0, sizeof *e);
    e->path = path;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    set_name(e->name, sizeof e->name, base,
             dot && dot != base ? (size_t)(dot - base) : strlen(base));
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "meshsim: %s: %s\n", path, strerror(errno));
        return false;
    }
    /* Which pairs are linked, (a - 1) * EDGES_MAX_HOSTS + b - 1 with a < b: 1 MB. */
    unsigned char *have = xcalloc((size_t)EDGES_MAX_HOSTS * EDGES_MAX_HOSTS, 1);
    int *ev = NULL, n = 0, lineno = 0; /* the edges, two hosts each, from 0 */
    size_t cap = 0;
    const char *why = NULL;
    char line[256];
    while (!why && fgets(line, sizeof line, fp)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(fp)) {
            why = "line too long";
            break;
        }
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p) continue;
        if (*p == '#') {
            if (lineno == 1 && p[1]) {
                char name[64];
                set_name(name, sizeof name, p + 1, strlen(p + 1));
                if (name[0]) memcpy(e->name, name, sizeof name);
            }
            continue;
        }
        long a, b;
        if (!parse_host(&p, &a) || !isspace((unsigned char)*p) || !parse_host(&p, &b)) {
            why = "expected \"A B\", two host numbers";
            break;
        }
        while (isspace((unsigned char)*p))
            p++;
        if (*p) {
            why = "expected \"A B\", two host numbers, and nothing after them";
            break;
        }
        if (a < 1 || a > EDGES_MAX_HOSTS || b < 1 || b > EDGES_MAX_HOSTS) {
            why = "host number out of 1..1000";
            break;
        }
        if (a == b) {
            why = "self-loop";
            break;
        }
        if (a > b) {
            long t = a;
            a = b;
            b = t;
        }
        size_t key = (size_t)(a - 1) * EDGES_MAX_HOSTS + (size_t)(b - 1);
        if (have[key]) {
            e->dups++;
            continue;
        }
        have[key] = 1;
        if ((size_t)e->edges == cap) { /* at most 1000 * 999 / 2 distinct edges */
            cap = cap ? 2 * cap : 64;
            int *grown = realloc(ev, 2 * cap * sizeof *grown);
            if (!grown) {
                fputs("meshsim: out of memory\n", stderr);
                exit(1);
            }
            ev = grown;
        }
        ev[2 * e->edges] = (int)a - 1;
        ev[2 * e->edges++ + 1] = (int)b - 1;
        if (b > n) n = (int)b;
    }
    if (!why && ferror(fp)) why = strerror(errno);
    if (!why && !e->edges) why = "no edges";
    fclose(fp);
    free(have);
    if (why) {
        if (lineno && strcmp(why, "no edges"))
            fprintf(stderr, "meshsim: %s:%d: %s\n", path, lineno, why);
        else
            fprintf(stderr, "meshsim: %s: %s\n", path, why);
        free(ev);
        return false;
    }
    int *deg = xcalloc((size_t)n, sizeof *deg), maxdeg = 0;
    for (int i = 0; i < 2 * e->edges; i++)
        deg[ev[i]]++;
    e->mindeg = deg[0];
    for (int v = 0; v < n; v++) {
        if (deg[v] > maxdeg) maxdeg = deg[v];
        if (deg[v] < e->mindeg) e->mindeg = deg[v];
    }
    e->g = graph_new(n, maxdeg, e->name, maxdeg);
    for (int i = 0; i < e->edges; i++)
        link_add(e->g, ev[2 * i], ev[2 * i + 1]);
    free(deg);
    free(ev);
    edges_parts(e);
    return true;
}

/* Unit hops (times are hops) or a hop time per link drawn from [lo, hi], the same both ways. */
static void graph_hops(struct graph *g, bool unit, double lo, double hi)
{
    for (int u = 0; u < g->n; u++)
        for (int i = 0; i < g->deg[u]; i++) {
            int v = g->adj[u * g->maxdeg + i];
            if (v < u) continue;
            double h = unit ? 1.0 : lo + (hi - lo) * rng_unit();
            g->hop[u * g->maxdeg + i] = h;
            for (int j = 0; j < g->deg[v]; j++)
                if (g->adj[v * g->maxdeg + j] == u) g->hop[v * g->maxdeg + j] = h;
        }
}

/* A binary heap of (time, peer) for the flood's event order. */
struct heap {
    int n;
    double *t;
    int *v;
};

static void heap_push(struct heap *h, double t, int v)
{
    int i = h->n++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (h->t[parent] <= t) break;
        h->t[i] = h->t[parent];
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->t[i] = t;
    h->v[i] = v;
}

static int heap_pop(struct heap *h, double *t)
{
    int top = h->v[0];
    *t = h->t[0];
    double lt = h->t[--h->n];
    int lv = h->v[h->n], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->t[c + 1] < h->t[c]) c++;
        if (lt <= h->t[c]) break;
        h->t[i] = h->t[c];
        h->v[i] = h->v[c];
        i = c;
    }
    h->t[i] = lt;
    h->v[i] = lv;
    return top;
}

/* One file's flood. On entry t[v] is when v holds the file without the mesh's help (0 at the
 * origin, a catch-up time at a returning peer, INF elsewhere) and hops[v] its hop count then.
 * On return t[v] is when v stored it (INF: never), hops[v] how many hops it came over.
 * Peers with down[v] set take no part; peers with quiet[v] set (may be NULL) held the file
 * before time 0 and announced it then, so they announce nothing now. Each peer stores once: it
 * downloads at the first announcement, and the in-flight table joins the later ones, so
 * downloads are exact. */
static void flood(const struct graph *g, const unsigned char *down, const unsigned char *quiet,
                  double *t, int *hops, struct heap *h)
{
    h->n = 0;
    for (int v = 0; v < g->n; v++)
        if (t[v] < INF && !(down && down[v])) heap_push(h, t[v], v);
    while (h->n) {
        double tv;
        int v = heap_pop(h, &tv);
        if (tv > t[v]) continue; /* a stale entry: v got it sooner by another way */
        if (quiet && quiet[v]) continue;
        for (int i = 0; i < g->deg[v]; i++) {
            int u = g->adj[v * g->maxdeg + i];
            if (down && down[u]) continue;
            double tu = tv + g->hop[v * g->maxdeg + i];
            if (tu < t[u]) {
                t[u] = tu;
                hops[u] = hops[v] + 1;
                heap_push(h, tu, u);
            }
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *a, size_t n, double p)
{
    if (!n) return 0;
    qsort(a, n, sizeof *a, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return a[i < n ? i : n - 1];
}

struct flood_stats {
    double conv_p50, conv_max;           /* per file: until the last live peer holds it */
    double prop_p50, prop_p99, prop_max; /* per (file, peer other than the origin) */
    double hops_p50, hops_max;
    double recv, pub, dl; /* per file per live peer: announcements received, published; downloads
                           * per file per peer other than the origin */
    double missing;       /* live peers that never got a file, per file */
    double files_missed;  /* share of files some live peer never got */
};

/* Floods `files` files from random live origins. */
static void flood_stats(const struct graph *g, const unsigned char *down, int files,
                        struct flood_stats *s)
{
    int n = g->n, live = 0;
    for (int v = 0; v < n; v++)
        live += !(down && down[v]);
    double *t = xcalloc((size_t)n, sizeof *t), *conv = xcalloc((size_t)files, sizeof *conv);
    double *prop = xcalloc((size_t)files * (size_t)n, sizeof *prop);
    double *hp = xcalloc((size_t)files * (size_t)n, sizeof *hp);
    int *hops = xcalloc((size_t)n, sizeof *hops);
    struct heap h = {0, xcalloc((size_t)n * (size_t)g->maxdeg + (size_t)n, sizeof(double)),
                     xcalloc((size_t)n * (size_t)g->maxdeg + (size_t)n, sizeof(int))};
    size_t np = 0;
    double recv = 0, pub = 0, dl = 0, missing = 0, missed = 0;
    for (int f = 0; f < files; f++) {
        int origin;
        do
            origin = rng_below(n);
        while (down && down[origin]);
        for (int v = 0; v < n; v++) {
            t[v] = INF;
            hops[v] = 0;
        }
        t[origin] = 0;
        flood(g, down, NULL, t, hops, &h);
        double last = 0;
        int holders = 0;
        for (int v = 0; v < n; v++) {
            if (t[v] >= INF) {
                missing += !(down && down[v]);
                continue;
            }
            holders++;
            for (int i = 0; i < g->deg[v]; i++)
                recv += !(down && down[g->adj[v * g->maxdeg + i]]);
            if (v == origin) continue;
            prop[np] = t[v];
            hp[np++] = hops[v];
            if (t[v] > last) last = t[v];
        }
        pub += holders;
        dl += holders - 1;
        missed += holders < live;
        conv[f] = last;
    }
    s->conv_p50 = pct(conv, (size_t)files, 0.5);
    s->conv_max = pct(conv, (size_t)files, 1.0);
    s->prop_p50 = pct(prop, np, 0.5);
    s->prop_p99 = pct(prop, np, 0.99);
    s->prop_max = pct(prop, np, 1.0);
    s->hops_p50 = pct(hp, np, 0.5);
    s->hops_max = pct(hp, np, 1.0);
    s->recv = recv / files / live;
    s->pub = pub / files / live;
    s->dl = dl / files / (live - 1);
    s->missing = missing / files;
    s->files_missed = missed / files;
    free(t);
    free(conv);
    free(prop);
    free(hp);
    free(hops);
    free(h.t);
    free(h.v);
}

/* Sizes of what catch-up exchanges, measured on sample messages as docs/CATCHUP.md specifies
 * them (a v03 announcement of a WIS2-like relPath with a SHA-512, and its log line). */
struct sizes {
    double record;   /* one log line: the announcement as published, with seq, time, topic */
    double key_line; /* one line of the keys form */
    double status;   /* the retained status message with its topic and MQTT header */
    double http;     /* one request's head and its response's head */
    double digest;   /* one hour's line in a digest response */
};

static void sizes_measure(struct sizes *z)
{
    char sum[89];
    memset(sum, 'A', 86);
    memcpy(sum + 86, "==", 3);
    char msg[1024], line[1400];
    snprintf(msg, sizeof msg,
             "{\"pubTime\":\"20261207T034501.123456\",\"baseUrl\":\"https://peer-017."
             "example.org/data\",\"relPath\":\"20261207/WIS/de-dwd/data/core/weather/"
             "surface-based-observations/synop/03/ISMD01_EDZW_070345_1234.bufr4\","
             "\"integrity\":{\"method\":\"sha512\",\"value\":\"%s\"},\"size\":4711,"
             "\"catchup\":{\"peer\":\"peer-017\",\"epoch\":\"20261201T000000Z.3f9a7c21\","
             "\"seq\":12345678}}",
             sum);
    int l = snprintf(line, sizeof line,
                     "{\"seq\":12345678,\"time\":\"20261207T034501.337Z\",\"topic\":\"xpublic/v03/"
                     "20261207/WIS/de-dwd/data/core/weather/surface-based-observations/synop/03\","
                     "\"message\":%s}\n",
                     msg);
    z->record = l;
    int k = snprintf(line, sizeof line,
                     "{\"seq\":12345678,\"key\":\"20261207/WIS/de-dwd/data/core/weather/surface-"
                     "based-observations/synop/03/ISMD01_EDZW_070345_1234.bufr4\",\"sum\":"
                     "\"sha512:%s\",\"pubTime\":\"20261207T034501.123456\"}\n",
                     sum);
    z->key_line = k;
    int s = snprintf(line, sizeof line,
                     "{\"wmesh_catchup\":1,\"peer\":\"peer-017\",\"epoch\":\"20261201T000000Z."
                     "3f9a7c21\",\"seq\":12345678,\"first\":11000001,\"url\":\"https://peer-017."
                     "example.org/data/.wmesh/\",\"interval\":60,\"time\":\"20261207T034600Z\","
                     "\"state\":\"up\"}");
    z->status = s + (int)strlen("xpublic/_catchup/peer-017") + 2 + 5; /* topic length, header */
    z->http = 180 + 260; /* measured order of a GET with Host and User-Agent, and a 200's head */
    int d = snprintf(line, sizeof line,
                     "{\"hour\":\"2026120703\",\"count\":36000,\"hash\":\"%.24s\"}\n", sum);
    z->digest = d;
}

static const char *human(double bytes, char *buf, size_t len)
{
    if (bytes >= 1e9)
        snprintf(buf, len, "%.1f GB", bytes / 1e9);
    else if (bytes >= 1e6)
        snprintf(buf, len, "%.1f MB", bytes / 1e6);
    else if (bytes >= 1e3)
        snprintf(buf, len, "%.1f kB", bytes / 1e3);
    else
        snprintf(buf, len, "%.0f B", bytes);
    return buf;
}

/* Time for a returning peer to fetch `records` log lines in pages from one upstream while it
 * downloads the files they name at dl_rate: pages are asked one after the other, downloads
 * start as each page is admitted. Seconds until the last file is stored. */
static double catchup_seconds(const struct opts *o, const struct sizes *z, double records,
                              double detect)
{
    double fetched = detect, stored = detect;
    double page_s = o->rtt + o->page * z->record / o->bw;
    for (double left = records; left > 0; left -= o->page) {
        double in_page = left < o->page ? left : o->page;
        fetched += o->page == in_page ? page_s : o->rtt + in_page * z->record / o->bw;
        stored = (stored > fetched ? stored : fetched) + in_page / o->dl_rate;
    }
    return stored;
}

static void print_flood_header(bool ms)
{
    printf("| topology | N | d | conv p50 / max | prop p50 / p99 / max | hops p50 / max | "
           "ann recv | ann pub | dl |%s\n",
           ms ? " conv max, prop p50 / p99 / max (ms) |" : "");
    printf("|---|---|---|---|---|---|---|---|---|%s\n", ms ? "---|" : "");
}

static void print_flood_row(const struct graph *g, const struct flood_stats *s, double hop_ms)
{
    printf("| %s | %d | %d | %.0f / %.0f | %.0f / %.0f / %.0f | %.0f / %.0f | %.2f | %.2f | %.2f |",
           g->name, g->n, g->d, s->conv_p50, s->conv_max, s->prop_p50, s->prop_p99, s->prop_max,
           s->hops_p50, s->hops_max, s->recv, s->pub, s->dl);
    if (hop_ms > 0)
        printf(" %.1f, %.1f / %.1f / %.1f |", s->conv_max * hop_ms, s->prop_p50 * hop_ms,
               s->prop_p99 * hop_ms, s->prop_max * hop_ms);
    printf("\n");
}

static const int degrees[] = {2, 3, 4, 6};
#define NDEG (int)(sizeof degrees / sizeof degrees[0])

static void table_flood(const struct opts *o)
{
    printf("\n## Flooding, N = 1000 (times in hops; WAN: hop times %.2f - %.2f s per link)\n\n",
           o->hop_lo, o->hop_hi);
    printf("| topology | N | d | conv p50 / max | prop p50 / p99 / max | hops p50 / max | "
           "ann recv | ann pub | dl | WAN conv p50 / max (s) | WAN prop p99 (s) |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < NDEG; i++) {
        struct graph *g = graph_random(1000, degrees[i]);
        struct flood_stats s, w;
        graph_hops(g, true, 0, 0);
        flood_stats(g, NULL, o->files, &s);
        graph_hops(g, false, o->hop_lo, o->hop_hi);
        flood_stats(g, NULL, o->files, &w);
        printf("| %s | %d | %d | %.0f / %.0f | %.0f / %.0f / %.0f | %.0f / %.0f | %.2f | %.2f | "
               "%.2f | %.1f / %.1f | %.1f |\n",
               g->name, g->n, g->d, s.conv_p50, s.conv_max, s.prop_p50, s.prop_p99, s.prop_max,
               s.hops_p50, s.hops_max, s.recv, s.pub, s.dl, w.conv_p50, w.conv_max, w.prop_p99);
        graph_free(&g);
    }
}

/* The testbed's topologies, then one row per --edges file. A file's row draws its origins from
 * a generator seeded with --seed alone, so it does not depend on the other files and leaves the
 * rest of the run as it is without --edges. */
static void table_testbed(const struct opts *o, struct edges_file *ef, int nef)
{
    printf("\n## The testbed's topologies, N = 20 (hops; ms at %.2f ms a hop)\n\n", o->hop_ms);
    print_flood_header(true);
    struct graph *gs[4] = {graph_line(20, false), graph_line(20, true), graph_random(20, 3),
                           graph_full(20)};
    for (int i = 0; i < 4; i++) {
        struct flood_stats s;
        graph_hops(gs[i], true, 0, 0);
        flood_stats(gs[i], NULL, o->files, &s);
        print_flood_row(gs[i], &s, o->hop_ms);
        graph_free(&gs[i]);
    }
    if (!nef) return;
    double unreached[EDGES_MAX_FILES];
    uint64_t saved = rng_state;
    printf("\n### The graphs of --edges (origins drawn from --seed alone)\n\n");
    print_flood_header(true);
    for (int i = 0; i < nef; i++) {
        struct flood_stats s;
        rng_state = o->seed;
        graph_hops(ef[i].g, true, 0, 0);
        flood_stats(ef[i].g, NULL, o->files, &s);
        print_flood_row(ef[i].g, &s, o->hop_ms);
        unreached[i] = s.missing;
    }
    rng_state = saved;
    printf("\n");
    for (int i = 0; i < nef; i++) {
        const struct edges_file *e = &ef[i];
        printf("- %s: %s, %d hosts, %d edge%s, degree %d - %d (d: the largest)", e->name, e->path,
               e->g->n, e->edges, e->edges > 1 ? "s" : "", e->mindeg, e->g->d);
        if (e->dups) printf("; %d duplicate edge%s ignored", e->dups, e->dups > 1 ? "s" : "");
        if (e->parts > 1)
            printf("; DISCONNECTED: %d components (%s hosts), %.2f hosts unreachable from a "
                   "file's origin (mean): conv, prop and hops are over the hosts reached, ann "
                   "recv, ann pub and dl per host of all %d",
                   e->parts, e->sizes, unreached[i], e->g->n);
        printf(".\n");
    }
}

static void edges_free(struct edges_file *ef, int nef)
{
    for (int i = 0; i < nef; i++)
        graph_free(&ef[i].g);
}

static void pick_down(int n, int k, unsigned char *down, int *which)
{
    memset(down, 0, (size_t)n);
    for (int i = 0; i < k; i++) {
        int v;
        do
            v = rng_below(n);
        while (down[v]);
        down[v] = 1;
        if (which) which[i] = v;
    }
}

static void table_failures(const struct opts *o)
{
    static const int ks[] = {1, 2, 5, 10, 50};
    int files = o->files / 10 > 5 ? o->files / 10 : 5;
    printf("\n## k random peers down, N = 1000 (%d draws of %d files each; hops)\n\n", o->trials,
           files);
    printf("| d | k | files some live peer misses | live peers missing a file (mean) | "
           "draws with a partition | hops max | conv max |\n");
    printf("|---|---|---|---|---|---|---|\n");
    unsigned char *down = xcalloc(1000, 1);
    for (int i = 0; i < NDEG; i++) {
        struct graph *g = graph_random(1000, degrees[i]);
        graph_hops(g, true, 0, 0);
        for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
            double missed = 0, missing = 0, parts = 0, hmax = 0, cmax = 0;
            for (int t = 0; t < o->trials; t++) {
                struct flood_stats s;
                pick_down(1000, ks[j], down, NULL);
                flood_stats(g, down, files, &s);
                missed += s.files_missed;
                missing += s.missing;
                parts += s.missing > 0;
                if (s.hops_max > hmax) hmax = s.hops_max;
                if (s.conv_max > cmax) cmax = s.conv_max;
            }
            printf("| %d | %d | %.1f%% | %.2f | %.0f%% | %.0f | %.0f |\n", degrees[i], ks[j],
                   100 * missed / o->trials, missing / o->trials, 100 * parts / o->trials, hmax,
                   cmax);
        }
        graph_free(&g);
    }
    free(down);
}

/* One peer away for D minutes with R files/s entering the mesh meanwhile, its broker sessions
 * lost (or its queue capped): what it fetches from each upstream's log, and how long until it
 * holds every file again. Which upstream holds which files is found by flooding samples
 * without it. */
static void table_catchup(const struct opts *o, const struct sizes *z)
{
    static const double cases[][2] = {{1, 60}, {10, 60}, {100, 60}, {10, 1440}};
    printf("\n## One peer away D minutes at R files/s, N = 1000: what it fetches on return\n\n");
    printf("(detection at CONNACK: session not present; pages of %d records; %.0f ms a "
           "request; %.0f MB/s from an upstream; %.0f downloads/s; record %.0f B, key line "
           "%.0f B)\n\n",
           o->page, o->rtt * 1000, o->bw / 1e6, o->dl_rate, z->record, z->key_line);
    printf("| d | R | D (min) | files missed | upstreams holding them | records fetched (all) | "
           "bytes: every upstream in full | bytes: lead in full, others keys | requests (every "
           "upstream) | "
           "stored again after (s) | dup. ann. to its d downstreams |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    unsigned char *down = xcalloc(1000, 1);
    int *hops = xcalloc(1000, sizeof *hops);
    double *t = xcalloc(1000, sizeof *t);
    struct heap h = {0, xcalloc(1000 * 7, sizeof(double)), xcalloc(1000 * 7, sizeof(int))};
    char b1[32], b2[32];
    for (int i = 0; i < NDEG; i++) {
        struct graph *g = graph_random(1000, degrees[i]);
        graph_hops(g, true, 0, 0);
        int x = rng_below(1000);
        memset(down, 0, 1000);
        down[x] = 1;
        /* Share of the files each upstream of x got while x was away. */
        double held = 0;
        for (int f = 0; f < o->files; f++) {
            int origin;
            do
                origin = rng_below(1000);
            while (origin == x);
            for (int v = 0; v < 1000; v++)
                t[v] = INF;
            t[origin] = 0;
            flood(g, down, NULL, t, hops, &h);
            for (int j = 0; j < g->deg[x]; j++)
                held += t[g->adj[x * g->maxdeg + j]] < INF;
        }
        double per_up = held / o->files / g->deg[x]; /* 1 when the rest stays connected */
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            double r = cases[c][0], d = cases[c][1], f = r * 60 * d;
            double gap = f * per_up, all = gap * g->deg[x];
            double pages = 0;
            for (int j = 0; j < g->deg[x]; j++)
                pages += (double)(int64_t)((gap + o->page - 1) / o->page);
            double bytes_all = all * z->record + pages * z->http;
            double bytes_lead = gap * z->record + (all - gap) * z->key_line + pages * z->http;
            double secs = catchup_seconds(o, z, gap, 0);
            printf("| %d | %.0f | %.0f | %.0f | %d of %d | %.0f | %s | %s | %.0f | %.0f | %.0f "
                   "|\n",
                   degrees[i], r, d, f, (int)(per_up * g->deg[x] + 0.5), g->deg[x], all,
                   human(bytes_all, b1, sizeof b1), human(bytes_lead, b2, sizeof b2), pages, secs,
                   f * g->deg[x]);
        }
        graph_free(&g);
    }
    free(down);
    free(hops);
    free(t);
    free(h.t);
    free(h.v);
}

/* k peers down for D minutes (their sessions lost), files entering at R files/s at live peers
 * meanwhile; then they return. Without catch-up, what each peer never gets; with it, how long
 * until every peer holds every file: the returning peers fetch from their upstreams' logs (a
 * record at position p of the gap arrives after the pages before it), download, and
 * re-announce, which carries the files across partitions. */
static void table_outage(const struct opts *o, const struct sizes *z)
{
    static const int ks[] = {2, 10, 50};
    const double r = 10, dmin = 60, ftotal = r * 60 * dmin;
    int files = o->files;
    printf("\n## k peers down for %.0f min at %.0f files/s (%.0f files), N = 1000, then back; "
           "%d sample files, WAN hop times\n\n",
           dmin, r, ftotal, files);
    printf("| d | k | files a live peer missed | (file, peer) pairs never held without catch-up | "
           "with catch-up: converged after return p50 / max (s) | left missing | catch-up "
           "records fetched | bytes, all returning peers: every upstream in full | bytes: lead "
           "in full, others keys |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    unsigned char *down = xcalloc(1000, 1);
    int *which = xcalloc(1000, sizeof *which), *hops = xcalloc(1000, sizeof *hops);
    double *t = xcalloc(1000, sizeof *t);
    unsigned char *held = xcalloc(1000, 1);
    double *conv = xcalloc((size_t)files, sizeof *conv);
    struct heap h = {0, xcalloc(1000 * 7, sizeof(double)), xcalloc(1000 * 7, sizeof(int))};
    char b1[32], b2[32];
    for (int i = 0; i < NDEG; i++) {
        struct graph *g = graph_random(1000, degrees[i]);
        graph_hops(g, false, o->hop_lo, o->hop_hi);
        for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
            int k = ks[j];
            pick_down(1000, k, down, which);
            double missed = 0, never = 0, left = 0, recs = 0, lead_bytes = 0;
            for (int f = 0; f < files; f++) {
                int origin;
                do
                    origin = rng_below(1000);
                while (down[origin]);
                for (int v = 0; v < 1000; v++) {
                    t[v] = INF;
                    hops[v] = 0;
                }
                t[origin] = 0;
                flood(g, down, NULL, t, hops, &h);
                int lacking = 0;
                for (int v = 0; v < 1000; v++) {
                    held[v] = (unsigned char)(t[v] < INF);
                    lacking += !held[v];
                }
                int live_lacking = lacking - k;
                missed += live_lacking > 0;
                never += lacking;
                /* The file entered at a uniform time of the outage; its place in each
                 * upstream's gap follows, and so the page it comes in. */
                double pos = rng_unit() * ftotal;
                double fetched =
                    o->rtt * (1 + (double)(int64_t)(pos / o->page)) + (pos + 1) * z->record / o->bw;
                double queued = pos / o->dl_rate; /* the downloads of the records before it */
                double delay = fetched > queued ? fetched : queued;
                for (int v = 0; v < 1000; v++)
                    t[v] = held[v] ? 0 : INF;
                for (int q = 0; q < k; q++) {
                    int x = which[q], holders = 0, lead = -1;
                    for (int e = 0; e < g->deg[x]; e++) {
                        int u = g->adj[x * g->maxdeg + e];
                        if (lead < 0 && !down[u]) lead = u;
                        holders += held[u];
                    }
                    /* The lead upstream in full, the others in the keys form, and the record
                     * in full from one of them when the lead lacks it. */
                    if (holders)
                        lead_bytes +=
                            z->record + (holders - (lead >= 0 && held[lead])) * z->key_line;
                    for (int e = 0; e < g->deg[x]; e++) {
                        int u = g->adj[x * g->maxdeg + e];
                        if (!held[u]) continue;
                        recs += 1;
                        double tx = delay + g->hop[x * g->maxdeg + e];
                        if (tx < t[x]) t[x] = tx;
                    }
                }
                flood(g, NULL, held, t, hops, &h);
                double last = 0;
                for (int v = 0; v < 1000; v++) {
                    if (t[v] >= INF)
                        left++;
                    else if (t[v] > last)
                        last = t[v];
                }
                conv[f] = last;
            }
            double scale = ftotal / files;
            printf("| %d | %d | %.1f%% | %.0f | %.1f / %.1f | %.0f | %.0f | %s | %s |\n",
                   degrees[i], k, 100 * missed / files, never * scale,
                   pct(conv, (size_t)files, 0.5), pct(conv, (size_t)files, 1.0), left, recs * scale,
                   human(recs * scale * z->record, b1, sizeof b1),
                   human(lead_bytes * scale, b2, sizeof b2));
        }
        graph_free(&g);
    }
    free(down);
    free(which);
    free(hops);
    free(t);
    free(held);
    free(conv);
    free(h.t);
    free(h.v);
}

/* A peer that joins with an empty tree and asks its lead upstream for everything since the
 * start of the retention window; other upstreams answer in the keys form. */
static void table_joiner(const struct opts *o, const struct sizes *z)
{
    static const double cases[][2] = {{1, 6}, {1, 24}, {10, 6}, {10, 24}};
    printf("\n## A late joiner with an empty tree (since = now - window), d upstreams\n\n");
    printf("| R (files/s) | window (h) | files | bytes from the lead | bytes, each other "
           "upstream (keys) | requests to the lead | holds them all after (s) |\n");
    printf("|---|---|---|---|---|---|---|\n");
    char b1[32], b2[32];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double f = cases[c][0] * 3600 * cases[c][1];
        double pages = (double)(int64_t)((f + o->page - 1) / o->page);
        printf("| %.0f | %.0f | %.0f | %s | %s | %.0f | %.0f |\n", cases[c][0], cases[c][1], f,
               human(f * z->record + pages * z->http, b1, sizeof b1),
               human(f * z->key_line + pages * z->http, b2, sizeof b2), pages,
               catchup_seconds(o, z, f, 0));
    }
}

/* What an up-to-date peer spends per upstream: the status message each interval, the hourly
 * digest exchange and, for a subscriber with topic filters, a count check every check_min. */
static void table_idle(const struct opts *o, const struct sizes *z)
{
    double status = z->status;                         /* per minute (interval 60 s) */
    double digest = (z->http + 25 * z->digest) / 60.0; /* 24 hours and a trailer, hourly */
    double check = (z->http + 120) / o->check_min;
    printf("\n## An up-to-date peer, per upstream per minute\n\n");
    printf("| what | bytes/min |\n|---|---|\n");
    printf("| status message (retained, every 60 s) | %.0f |\n", status);
    printf("| digest exchange (hourly, 24 hours) | %.0f |\n", digest);
    printf("| count check, filtered subscriptions only (every %d min) | %.0f |\n", o->check_min,
           check);
    printf("| total, unfiltered / filtered | %.0f / %.0f |\n", status + digest,
           status + digest + check);
    printf("| mesh of 1000 peers at d = 3 (unfiltered), bytes/s | %.0f |\n",
           1000.0 * 3 * (status + digest) / 60);
}

static bool opt_num(const char *arg, double lo, double hi, double *out)
{
    char *end = NULL;
    double v = strtod(arg, &end);
    if (!end || end == arg || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

static void usage(FILE *out)
{
    fputs("usage: meshsim [--seed S] [--files F] [--trials T] [--hop-ms MS] [--hop S-S]\n"
          "               [--rtt S] [--bw BYTES/S] [--dl-rate FILES/S] [--page N]\n"
          "               [--edges FILE]...\n"
          "               [--only flood|testbed|failures|catchup|outage|joiner|idle]\n"
          "Prints Markdown tables (docs/CATCHUP.md). Deterministic for a given seed.\n"
          "--edges FILE (up to 8): a graph to flood, one edge \"A B\" a line, hosts 1..1000 (the\n"
          "  testbed's $T/edges, or $MESH_OUT/<topology>.edges of make meshtest); a first line\n"
          "  \"# NAME\" names it, else the file's name without its extension. Its row comes in\n"
          "  addition to the built-in chain, ring, random and full rows of the testbed table\n"
          "  (those unchanged), in a table of its own below them, with origins drawn from\n"
          "  --seed alone; d is its largest degree.\n"
          "  Duplicate edges are ignored; a disconnected graph is flagged under the table.\n",
          out);
}

int main(int argc, char **argv)
{
    struct opts o = {.seed = 18,
                     .files = 200,
                     .trials = 40,
                     .hop_ms = 0.4,
                     .hop_lo = 0.05,
                     .hop_hi = 0.25,
                     .rtt = 0.1,
                     .bw = 10e6,
                     .dl_rate = 1000,
                     .page = 1000,
                     .check_min = 5};
    const char *only = NULL;
    const char *edge_paths[EDGES_MAX_FILES];
    int nef = 0;
    for (int i = 1; i < argc; i++) {
        double v;
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = val != NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--seed") && ok && (ok = opt_num(val, 0, 1e18, &v)))
            o.seed = (uint64_t)v;
        else if (!strcmp(a, "--files") && ok && (ok = opt_num(val, 2, 1e6, &v)))
            o.files = (int)v;
        else if (!strcmp(a, "--trials") && ok && (ok = opt_num(val, 1, 1e6, &v)))
            o.trials = (int)v;
        else if (!strcmp(a, "--hop-ms") && ok)
            ok = opt_num(val, 0, 1e6, &o.hop_ms);
        else if (!strcmp(a, "--hop") && ok) {
            char lo[32];
            const char *dash = strchr(val, '-');
            ok = dash && (size_t)(dash - val) < sizeof lo;
            if (ok) {
                memcpy(lo, val, (size_t)(dash - val));
                lo[dash - val] = '\0';
                ok = opt_num(lo, 0, 1e3, &o.hop_lo) && opt_num(dash + 1, o.hop_lo, 1e3, &o.hop_hi);
            }
        } else if (!strcmp(a, "--rtt") && ok)
            ok = opt_num(val, 0, 100, &o.rtt);
        else if (!strcmp(a, "--bw") && ok)
            ok = opt_num(val, 1, 1e12, &o.bw);
        else if (!strcmp(a, "--dl-rate") && ok)
            ok = opt_num(val, 1e-3, 1e9, &o.dl_rate);
        else if (!strcmp(a, "--page") && ok && (ok = opt_num(val, 1, 1e6, &v)))
            o.page = (int)v;
        else if (!strcmp(a, "--only") && ok)
            only = val;
        else if (!strcmp(a, "--edges") && ok) {
            if (nef == EDGES_MAX_FILES) {
                fprintf(stderr, "meshsim: at most %d --edges files\n", EDGES_MAX_FILES);
                return 2;
            }
            edge_paths[nef++] = val;
        } else
            ok = false;
        if (!ok) {
            usage(stderr);
            return 2;
        }
        i++;
    }
    /* Every file is read before anything is printed: a bad one stops the run at once. */
    struct edges_file ef[EDGES_MAX_FILES];
    for (int i = 0; i < nef; i++)
        if (!edges_load(edge_paths[i], &ef[i])) {
            edges_free(ef, i);
            return 2;
        }
    rng_state = o.seed;
    struct sizes z;
    sizes_measure(&z);
    printf("# meshsim --seed %" PRIu64 " --files %d --trials %d --hop-ms %g --hop %g-%g --rtt %g "
           "--bw %g --dl-rate %g --page %d",
           o.seed, o.files, o.trials, o.hop_ms, o.hop_lo, o.hop_hi, o.rtt, o.bw, o.dl_rate, o.page);
    for (int i = 0; i < nef; i++)
        printf(" --edges %s", ef[i].path);
    printf("\n");
    printf("\nann recv / ann pub: announcements received / published per file per peer; dl: "
           "downloads per file per peer other than the origin (1 means exactly once).\n");
    if (!only || !strcmp(only, "testbed")) table_testbed(&o, ef, nef);
    if (!only || !strcmp(only, "flood")) table_flood(&o);
    if (!only || !strcmp(only, "failures")) table_failures(&o);
    if (!only || !strcmp(only, "catchup")) table_catchup(&o, &z);
    if (!only || !strcmp(only, "outage")) table_outage(&o, &z);
    if (!only || !strcmp(only, "joiner")) table_joiner(&o, &z);
    if (!only || !strcmp(only, "idle")) table_idle(&o, &z);
    edges_free(ef, nef);
    return 0;
}
