/* json.c: JSON values, a strict single-pass parser and the compact writer (no JSON library). */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "text.h"

/* Memory. Every value is a node; a string's bytes (NUL-terminated) follow its node. The parser
 * (and wm_json_copy) gives each array or object a single allocation, its block: the node, its
 * slots (element pointers, or members), its scalar children and its keys. Nested arrays and
 * objects have blocks of their own. So decoding an announcement costs one malloc per container
 * instead of one per value. A node flagged IN_BLOCK lives inside its parent's block and is never
 * freed alone; a value removed from a parsed container keeps its room there until the parent
 * goes. Slots flagged OWN_SLOTS are an allocation apart: containers made by the *_new
 * constructors, and parsed ones that grew. Members' keys are in the block or, own_key, apart. */
#define IN_BLOCK 1u
#define OWN_SLOTS 2u

struct member {
    struct wm_json *value;
    char *key; /* NUL-terminated UTF-8 without NUL inside */
    size_t keylen;
    bool own_key;
};

struct wm_json {
    unsigned char type; /* enum wm_json_type */
    unsigned char flags;
    union {
        int64_t integer;
        double real;
        size_t len; /* a string's byte count; the bytes follow the node */
        struct {
            void *slots; /* struct wm_json ** (array) or struct member * (object) */
            size_t n, cap;
        } c;
    } u;
};

#define NODE_ALIGN _Alignof(struct wm_json)
/* Past this many members, duplicate keys are found by sorting, not by comparing each new key
 * with those before it, so that a hostile object cannot make parsing quadratic. */
#define DUP_LINEAR 32
/* Pending children the builder holds without allocating: enough for any announcement. */
#define LOCAL_ITEMS 32
/* Every byte of input makes at most a few dozen bytes of values: far from overflowing size_t. */
#define MAX_INPUT (SIZE_MAX / 64)

static char *str_bytes(const struct wm_json *j)
{
    return (char *)(j + 1);
}

static struct wm_json **elements(const struct wm_json *j)
{
    return j->u.c.slots;
}

static struct member *members(const struct wm_json *j)
{
    return j->u.c.slots;
}

static bool is_container(const struct wm_json *j)
{
    return j->type == WM_JSON_ARRAY || j->type == WM_JSON_OBJECT;
}

/* Whether releasing j would free anything: not for a scalar in its parent's block. */
static bool owns_memory(const struct wm_json *j)
{
    return is_container(j) || !(j->flags & IN_BLOCK);
}

/* Frees j and everything it holds; what lives in a block goes with the block. */
static void release(struct wm_json *j)
{
    if (!j) return;
    if (j->type == WM_JSON_ARRAY) {
        for (size_t i = 0; i < j->u.c.n; i++)
            if (owns_memory(elements(j)[i])) release(elements(j)[i]);
    } else if (j->type == WM_JSON_OBJECT) {
        for (size_t i = 0; i < j->u.c.n; i++) {
            if (owns_memory(members(j)[i].value)) release(members(j)[i].value);
            if (members(j)[i].own_key) free(members(j)[i].key);
        }
    }
    if (is_container(j) && (j->flags & OWN_SLOTS)) free(j->u.c.slots);
    if (!(j->flags & IN_BLOCK)) free(j);
}

/* ---- UTF-8 ---- */

/* Writes code point cp (a scalar value, not a surrogate) as UTF-8; returns the byte count. */
static size_t utf8_put(char *dst, uint32_t cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xE0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- building containers in one block ---- */

struct span {
    const char *s;
    size_t len;
};

/* A child of a container under construction. */
struct item {
    struct span key;      /* object members only */
    struct wm_json *node; /* a finished array or object, or NULL for the scalar below */
    unsigned char type;
    union {
        int64_t integer;
        double real;
        struct span str; /* valid until the container is built */
    } v;
};

/* Children of the containers being built, innermost last: a container's children are the top
 * of the stack while it is open, so every level shares one buffer. */
struct builder {
    struct item *items;
    size_t n, cap;
    struct item local[LOCAL_ITEMS];
};

static void builder_init(struct builder *b)
{
    b->items = b->local;
    b->n = 0;
    b->cap = LOCAL_ITEMS;
}

/* Frees what is still pending (after a failure) and the buffer. */
static void builder_done(struct builder *b)
{
    for (size_t i = 0; i < b->n; i++)
        release(b->items[i].node);
    if (b->items != b->local) free(b->items);
}

static bool builder_grow(struct builder *b)
{
    if (b->cap > SIZE_MAX / 2 / sizeof *b->items) return false;
    size_t cap = b->cap * 2;
    struct item *items;
    if (b->items == b->local) {
        items = malloc(cap * sizeof *items);
        if (items) memcpy(items, b->local, sizeof b->local);
    } else {
        items = realloc(b->items, cap * sizeof *items);
    }
    if (!items) return false;
    b->items = items;
    b->cap = cap;
    return true;
}

static bool builder_push(struct builder *b, const struct item *it)
{
    if (b->n == b->cap && !builder_grow(b)) return false;
    b->items[b->n++] = *it;
    return true;
}

/* Room for a scalar node, its string bytes included, rounded so the next node is aligned. */
static size_t scalar_size(const struct item *it)
{
    size_t n = sizeof(struct wm_json);
    if (it->type == WM_JSON_STRING) n += it->v.str.len + 1;
    return (n + NODE_ALIGN - 1) & ~(NODE_ALIGN - 1);
}

static void scalar_init(struct wm_json *j, const struct item *it, unsigned char flags)
{
    j->type = it->type;
    j->flags = flags;
    if (it->type == WM_JSON_INTEGER) {
        j->u.integer = it->v.integer;
    } else if (it->type == WM_JSON_REAL) {
        j->u.real = it->v.real;
    } else if (it->type == WM_JSON_STRING) {
        j->u.len = it->v.str.len;
        memcpy(str_bytes(j), it->v.str.s, it->v.str.len);
        str_bytes(j)[it->v.str.len] = '\0';
    }
}

static struct wm_json *scalar_new(const struct item *it)
{
    struct wm_json *j = malloc(scalar_size(it));
    if (j) scalar_init(j, it, 0);
    return j;
}

/* Builds the container of type from the items above first and pops them. NULL when out of
 * memory, the items staying for builder_done. */
static struct wm_json *build(struct builder *b, unsigned char type, size_t first)
{
    size_t n = b->n - first;
    struct item *it = b->items + first;
    bool object = type == WM_JSON_OBJECT;
    size_t slots = object ? sizeof(struct member) : sizeof(struct wm_json *);
    size_t size = sizeof(struct wm_json) + n * slots, keys = 0;
    for (size_t i = 0; i < n; i++) {
        if (!it[i].node) size += scalar_size(&it[i]);
        if (object) keys += it[i].key.len + 1;
    }
    char *block = malloc(size + keys);
    if (!block) return NULL;
    struct wm_json *j = (struct wm_json *)block;
    j->type = type;
    j->flags = 0;
    j->u.c.slots = block + sizeof *j;
    j->u.c.n = j->u.c.cap = n;
    char *scalar = block + sizeof *j + n * slots, *key = block + size;
    for (size_t i = 0; i < n; i++) {
        struct wm_json *child = it[i].node;
        if (!child) {
            child = (struct wm_json *)scalar;
            scalar_init(child, &it[i], IN_BLOCK);
            scalar += scalar_size(&it[i]);
        }
        if (!object) {
            elements(j)[i] = child;
            continue;
        }
        memcpy(key, it[i].key.s, it[i].key.len);
        key[it[i].key.len] = '\0';
        members(j)[i] = (struct member){child, key, it[i].key.len, false};
        key += it[i].key.len + 1;
    }
    b->n = first;
    return j;
}

/* ---- parsing ---- */

/* Each parse_* function takes the cursor s and returns it moved past what it read, or NULL
 * after fail() has recorded why and where. */
struct parser {
    const unsigned char *start, *end; /* the input */
    /* Strings that had escapes, decoded. Sized for the whole input at the first escape (decoding
     * never lengthens a string) so that spans into it stay valid; a container gives back its
     * part when it is built. */
    char *text;
    size_t text_used; /* bytes of text in use */
    struct builder b;
    enum wm_err err;
    const char *what;            /* why parsing stopped */
    const unsigned char *failed; /* and where */
};

static const unsigned char *fail(struct parser *p, const unsigned char *at, enum wm_err err,
                                 const char *what)
{
    p->err = err;
    p->what = what;
    p->failed = at;
    return NULL;
}

/* Compact JSON has no whitespace: one comparison finds that out. */
static inline const unsigned char *skip_space(const unsigned char *s, const unsigned char *end)
{
    while (s < end && *s <= ' ' && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t'))
        s++;
    return s;
}

static bool is_digit(unsigned char c)
{
    return (unsigned)(c - '0') < 10;
}

static bool is_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Skips string bytes that need no attention: printable ASCII but '"' and '\\'. Eight at a time
 * while it can: a byte has its top bit set in v (non-ASCII), in v - 0x20 (a control
 * character), or in (v ^ c) - 1 (equal to c). Borrows only carry upward from such a byte, so a
 * clean word is never flagged and, little-endian, the lowest flag is the first byte to see. */
static inline const unsigned char *skip_plain(const unsigned char *s, const unsigned char *end)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    while (end - s >= 8) {
        uint64_t v;
        memcpy(&v, s, sizeof v);
        uint64_t t =
            (v | (v - ones * 0x20) | ((v ^ (ones * '"')) - ones) | ((v ^ (ones * '\\')) - ones)) &
            high;
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (t) return s + __builtin_ctzll(t) / 8;
#else
        if (t) break;
#endif
        s += 8;
    }
    while (s < end && is_plain(*s))
        s++;
    return s;
}

/* The four hex digits at s as a number, or -1. */
static int32_t hex4(const unsigned char *s, const unsigned char *end)
{
    if (end - s < 4) return -1;
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = text_hex_digit(s[i]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decodes the escape at s (a backslash) into *dst, moving *dst past what it wrote. */
static const unsigned char *unescape(struct parser *p, const unsigned char *s, char **dst)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const unsigned char *end = p->end;
    if (end - s < 2) return fail(p, s, WM_ERR_FORMAT, "unterminated string");
    const char *e = s[1] ? strchr(from, s[1]) : NULL;
    if (e) {
        *(*dst)++ = to[e - from];
        return s + 2;
    }
    if (s[1] != 'u') return fail(p, s, WM_ERR_FORMAT, "invalid escape in string");
    int32_t cp = hex4(s + 2, end);
    if (cp < 0) return fail(p, s, WM_ERR_FORMAT, "invalid \\u escape");
    if (cp == 0) return fail(p, s, WM_ERR_FORMAT, "\\u0000 in a string");
    if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(p, s, WM_ERR_FORMAT, "lone low surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        const unsigned char *t = s + 6;
        int32_t low = end - t >= 2 && t[0] == '\\' && t[1] == 'u' ? hex4(t + 2, end) : -1;
        if (low < 0xDC00 || low > 0xDFFF)
            return fail(p, s, WM_ERR_FORMAT, "high surrogate without a low surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        s += 6;
    }
    *dst += utf8_put(*dst, (uint32_t)cp);
    return s + 6;
}

/* The rest of a string that needs care, from s: escapes (decoded into p->text), non-ASCII
 * (validated) or errors. run is where the string's bytes started. */
static const unsigned char *parse_string_slow(struct parser *p, const unsigned char *s,
                                              const unsigned char *run, struct span *out)
{
    char *dst = NULL; /* where decoded bytes go, once an escape needs it */
    for (;;) {
        s = skip_plain(s, p->end);
        if (s == p->end) return fail(p, s, WM_ERR_FORMAT, "unterminated string");
        if (*s == '"') break;
        if (*s >= 0x80) {
            size_t n = text_utf8_seq(s, p->end);
            if (n == 0) return fail(p, s, WM_ERR_FORMAT, "invalid UTF-8 in string");
            s += n;
            continue;
        }
        if (*s != '\\') return fail(p, s, WM_ERR_FORMAT, "control character in string");
        if (!p->text && !(p->text = malloc((size_t)(p->end - p->start))))
            return fail(p, s, WM_ERR_NOMEM, "out of memory");
        if (!dst) dst = p->text + p->text_used;
        memcpy(dst, run, (size_t)(s - run));
        dst += s - run;
        if (!(s = unescape(p, s, &dst))) return NULL;
        run = s;
    }
    if (dst) {
        memcpy(dst, run, (size_t)(s - run));
        dst += s - run;
        char *begin = p->text + p->text_used;
        *out = (struct span){begin, (size_t)(dst - begin)};
        p->text_used = (size_t)(dst - p->text);
    } else {
        *out = (struct span){(const char *)run, (size_t)(s - run)};
    }
    return s + 1;
}

/* The string whose opening quote is at s. *out points into the input when the string had no
 * escapes, else into p->text. Plain ASCII, the usual case, takes the short way. */
static inline const unsigned char *parse_string(struct parser *p, const unsigned char *s,
                                                struct span *out)
{
    const unsigned char *run = s + 1;
    s = skip_plain(run, p->end);
    if (s < p->end && *s == '"') {
        *out = (struct span){(const char *)run, (size_t)(s - run)};
        return s + 1;
    }
    return parse_string_slow(p, s, run, out);
}

/* The fraction and exponent of the number at start; s is after its integer part. strtod reads
 * a bounded copy: the input is not NUL-terminated. */
static const unsigned char *parse_real(struct parser *p, const unsigned char *start,
                                       const unsigned char *s, struct item *out)
{
    const unsigned char *end = p->end;
    if (s < end && *s == '.') {
        if (++s == end || !is_digit(*s))
            return fail(p, s, WM_ERR_FORMAT, "digit expected after '.'");
        while (s < end && is_digit(*s))
            s++;
    }
    if (s < end && (*s == 'e' || *s == 'E')) {
        if (++s < end && (*s == '+' || *s == '-')) s++;
        if (s == end || !is_digit(*s))
            return fail(p, s, WM_ERR_FORMAT, "digit expected in exponent");
        while (s < end && is_digit(*s))
            s++;
    }
    size_t n = (size_t)(s - start);
    char local[64];
    char *copy = n < sizeof local ? local : malloc(n + 1);
    if (!copy) return fail(p, start, WM_ERR_NOMEM, "out of memory");
    memcpy(copy, start, n);
    copy[n] = '\0';
    /* Like jansson, refuse what overflows a double but take underflow (0 or subnormal). The
     * program never calls setlocale, so the decimal point is '.'. */
    errno = 0;
    double v = strtod(copy, NULL);
    bool overflow = errno == ERANGE && isinf(v);
    if (copy != local) free(copy);
    if (overflow) return fail(p, start, WM_ERR_FORMAT, "real number out of range");
    out->type = WM_JSON_REAL;
    out->v.real = v;
    return s;
}

static const unsigned char *parse_number(struct parser *p, const unsigned char *s, struct item *out)
{
    const unsigned char *start = s, *end = p->end;
    bool negative = *s == '-';
    s += negative;
    if (s == end || !is_digit(*s)) return fail(p, start, WM_ERR_FORMAT, "invalid value");
    uint64_t magnitude = 0;
    int digits = 0; /* 19 always fit in 64 bits; 20 are beyond int64 */
    if (*s == '0') {
        if (++s < end && is_digit(*s))
            return fail(p, start, WM_ERR_FORMAT, "leading zero in a number");
    } else {
        for (; s < end && is_digit(*s); s++, digits++)
            if (digits < 19) magnitude = magnitude * 10 + (uint64_t)(*s - '0');
    }
    if (s < end && (*s == '.' || *s == 'e' || *s == 'E')) return parse_real(p, start, s, out);
    if (digits > 19 || magnitude > (uint64_t)INT64_MAX + negative)
        return fail(p, start, WM_ERR_FORMAT, "integer out of the 64-bit range");
    out->type = WM_JSON_INTEGER;
    if (!negative)
        out->v.integer = (int64_t)magnitude;
    else
        out->v.integer = magnitude > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)magnitude;
    return s;
}

static const unsigned char *parse_word(struct parser *p, const unsigned char *s, const char *word,
                                       unsigned char type, struct item *out)
{
    size_t n = strlen(word);
    if ((size_t)(p->end - s) < n || memcmp(s, word, n) != 0)
        return fail(p, s, WM_ERR_FORMAT, "invalid value");
    out->type = type;
    return s + n;
}

static const unsigned char *parse_value(struct parser *p, const unsigned char *s, int depth,
                                        struct item *out);

/* A member or element: strings, most of them, without the call to parse_value. */
static inline const unsigned char *parse_child(struct parser *p, const unsigned char *s, int depth,
                                               struct item *out)
{
    if (s == p->end || *s != '"') return parse_value(p, s, depth, out);
    out->node = NULL;
    out->type = WM_JSON_STRING;
    return parse_string(p, s, &out->v.str);
}

/* Builds the container (at s, after its closing bracket) that holds the items above first,
 * gives back its decoded text and returns s. */
static const unsigned char *finish(struct parser *p, const unsigned char *s, unsigned char type,
                                   size_t first, size_t text, struct item *out)
{
    out->type = type;
    out->node = build(&p->b, type, first);
    if (!out->node) return fail(p, s, WM_ERR_NOMEM, "out of memory");
    p->text_used = text;
    return s;
}

/* Keeps a parsed child for its container, or frees it. The usual case is spelt out here so
 * that it costs no call. */
static inline bool push(struct parser *p, struct item *it)
{
    if (p->b.n < p->b.cap) {
        p->b.items[p->b.n++] = *it;
        return true;
    }
    if (builder_push(&p->b, it)) return true;
    release(it->node);
    return false;
}

static const unsigned char *parse_array(struct parser *p, const unsigned char *s, int depth,
                                        struct item *out)
{
    const unsigned char *end = p->end;
    size_t first = p->b.n;
    size_t text = p->text_used;
    s = skip_space(s + 1, end);
    if (s < end && *s == ']') return finish(p, s + 1, WM_JSON_ARRAY, first, text, out);
    for (;;) {
        struct item it;
        if (!(s = parse_child(p, s, depth, &it))) return NULL;
        if (!push(p, &it)) return fail(p, s, WM_ERR_NOMEM, "out of memory");
        s = skip_space(s, end);
        if (s < end && *s == ',') {
            s = skip_space(s + 1, end);
            continue;
        }
        if (s < end && *s == ']') return finish(p, s + 1, WM_JSON_ARRAY, first, text, out);
        return fail(p, s, WM_ERR_FORMAT, "',' or ']' expected");
    }
}

static bool same_span(const struct span *a, const struct span *b)
{
    return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
}

/* False when key repeats one of the members above first. *seen is a 64-bit filter of the keys
 * so far, so that most keys are never compared. */
static bool key_unique(const struct parser *p, size_t first, const struct span *key, uint64_t *seen)
{
    if (p->b.n - first >= DUP_LINEAR) return true; /* left to has_duplicates */
    const unsigned char *k = (const unsigned char *)key->s;
    size_t h = key->len * 7 + (key->len ? k[0] + k[key->len - 1] : 0u);
    uint64_t bit = (uint64_t)1 << (h & 63);
    if (!(*seen & bit)) {
        *seen |= bit;
        return true;
    }
    for (size_t i = first; i < p->b.n; i++)
        if (same_span(&p->b.items[i].key, key)) return false;
    return true;
}

static int compare_keys(const void *a, const void *b)
{
    const struct span *x = *(const struct span *const *)a, *y = *(const struct span *const *)b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return memcmp(x->s, y->s, x->len);
}

/* Whether two of the n members at items share a key, found by sorting: O(n log n). Out of
 * memory also counts as a failure, recorded at s. */
static bool has_duplicates(struct parser *p, const unsigned char *s, const struct item *items,
                           size_t n)
{
    const struct span **keys = malloc(n * sizeof *keys);
    if (!keys) return !fail(p, s, WM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        keys[i] = &items[i].key;
    qsort(keys, n, sizeof *keys, compare_keys);
    bool dup = false;
    for (size_t i = 1; i < n && !dup; i++)
        dup = same_span(keys[i - 1], keys[i]);
    free(keys);
    if (dup) fail(p, s, WM_ERR_FORMAT, "duplicate object key");
    return dup;
}

static const unsigned char *parse_object(struct parser *p, const unsigned char *s, int depth,
                                         struct item *out)
{
    const unsigned char *end = p->end;
    size_t first = p->b.n;
    size_t text = p->text_used;
    uint64_t seen = 0;
    s = skip_space(s + 1, end);
    if (s < end && *s == '}') return finish(p, s + 1, WM_JSON_OBJECT, first, text, out);
    for (;;) {
        struct item it;
        const unsigned char *at = s;
        if (s == end || *s != '"') return fail(p, s, WM_ERR_FORMAT, "string expected as key");
        if (!(s = parse_string(p, s, &it.key))) return NULL;
        if (!key_unique(p, first, &it.key, &seen))
            return fail(p, at, WM_ERR_FORMAT, "duplicate object key");
        s = skip_space(s, end);
        if (s == end || *s != ':') return fail(p, s, WM_ERR_FORMAT, "':' expected");
        s = skip_space(s + 1, end);
        if (!(s = parse_child(p, s, depth, &it))) return NULL;
        if (!push(p, &it)) return fail(p, s, WM_ERR_NOMEM, "out of memory");
        s = skip_space(s, end);
        if (s < end && *s == ',') {
            s = skip_space(s + 1, end);
            continue;
        }
        if (s < end && *s == '}') break;
        return fail(p, s, WM_ERR_FORMAT, "',' or '}' expected");
    }
    size_t n = p->b.n - first;
    if (n > DUP_LINEAR && has_duplicates(p, s, p->b.items + first, n)) return NULL;
    return finish(p, s + 1, WM_JSON_OBJECT, first, text, out);
}

/* One value at s into *out (its key, if any, left alone); depth counts the arrays and objects
 * around it, so recursion stops at WM_JSON_MAX_DEPTH. */
static const unsigned char *parse_value(struct parser *p, const unsigned char *s, int depth,
                                        struct item *out)
{
    out->node = NULL;
    if (s == p->end) return fail(p, s, WM_ERR_FORMAT, "unexpected end of input");
    switch (*s) {
    case '"':
        out->type = WM_JSON_STRING;
        return parse_string(p, s, &out->v.str);
    case '{':
        if (depth >= WM_JSON_MAX_DEPTH) break;
        return parse_object(p, s, depth + 1, out);
    case '[':
        if (depth >= WM_JSON_MAX_DEPTH) break;
        return parse_array(p, s, depth + 1, out);
    case 't':
        return parse_word(p, s, "true", WM_JSON_TRUE, out);
    case 'f':
        return parse_word(p, s, "false", WM_JSON_FALSE, out);
    case 'n':
        return parse_word(p, s, "null", WM_JSON_NULL, out);
    default:
        return parse_number(p, s, out);
    }
    return fail(p, s, WM_ERR_TOOBIG, "JSON nested deeper than 32 levels");
}

/* Writes the reason parsing stopped: printable ASCII only, safe in a log line. */
static void parse_why(const struct parser *p, char *why, size_t whylen)
{
    if (!why || whylen == 0) return;
    int n;
    if (p->err == WM_ERR_FORMAT)
        n = snprintf(why, whylen, "bad JSON: %s at byte %zu", p->what,
                     (size_t)(p->failed - p->start));
    else
        n = snprintf(why, whylen, "%s", p->what);
    if (n < 0) why[0] = '\0';
}

enum wm_err wm_json_parse(const char *buf, size_t len, struct wm_json **out, char *why,
                          size_t whylen)
{
    if (!out) return WM_ERR_INVAL;
    *out = NULL;
    if (!buf) return WM_ERR_INVAL;
    struct parser p; /* not zeroed: p.b.local is large and written before it is read */
    p.start = (const unsigned char *)buf;
    p.end = p.start + len;
    p.text = NULL;
    p.text_used = 0;
    builder_init(&p.b);
    struct item root = {.node = NULL};
    const unsigned char *s = p.start;
    if (len > MAX_INPUT) {
        s = fail(&p, s, WM_ERR_TOOBIG, "JSON text too large");
    } else {
        s = parse_value(&p, skip_space(s, p.end), 0, &root);
        if (s && (s = skip_space(s, p.end)) != p.end)
            s = fail(&p, s, WM_ERR_FORMAT, "end of input expected");
    }
    if (s && !root.node && !(root.node = scalar_new(&root)))
        s = fail(&p, p.start, WM_ERR_NOMEM, "out of memory");
    free(p.text);
    builder_done(&p.b);
    if (!s) {
        release(root.node);
        parse_why(&p, why, whylen);
        return p.err;
    }
    *out = root.node;
    return WM_OK;
}

void wm_json_free(struct wm_json **j)
{
    if (!j || !*j) return;
    release(*j);
    *j = NULL;
}

/* ---- copies ---- */

/* A scalar as an item whose string points into j. */
static void item_of(const struct wm_json *j, struct item *it)
{
    *it = (struct item){.type = j->type};
    if (j->type == WM_JSON_INTEGER) it->v.integer = j->u.integer;
    if (j->type == WM_JSON_REAL) it->v.real = j->u.real;
    if (j->type == WM_JSON_STRING) it->v.str = (struct span){str_bytes(j), j->u.len};
}

/* Copies j in blocks, as the parser lays values out; NULL when out of memory. */
static struct wm_json *copy_tree(struct builder *b, const struct wm_json *j)
{
    struct item it;
    if (!is_container(j)) {
        item_of(j, &it);
        return scalar_new(&it);
    }
    size_t first = b->n;
    for (size_t i = 0; i < j->u.c.n; i++) {
        bool object = j->type == WM_JSON_OBJECT;
        const struct wm_json *child = object ? members(j)[i].value : elements(j)[i];
        if (is_container(child)) {
            it = (struct item){.type = child->type, .node = copy_tree(b, child)};
            if (!it.node) return NULL;
        } else {
            item_of(child, &it);
        }
        if (object) it.key = (struct span){members(j)[i].key, members(j)[i].keylen};
        if (!builder_push(b, &it)) {
            release(it.node);
            return NULL;
        }
    }
    return build(b, j->type, first);
}

struct wm_json *wm_json_copy(const struct wm_json *j)
{
    if (!j) return NULL;
    struct builder b;
    builder_init(&b);
    struct wm_json *c = copy_tree(&b, j);
    builder_done(&b);
    if (!c) errno = ENOMEM;
    return c;
}

/* ---- output: compact text ---- */

struct text {
    struct buf out;
    bool failed; /* an append failed: the text is incomplete */
};

static void text_put(struct text *t, const char *s, size_t n)
{
    if (!t->failed && buf_append(&t->out, s, n) != WM_OK) t->failed = true;
}

/* JSON string: quotes, backslashes and control characters escaped, everything else (UTF-8
 * included) copied in runs. */
static void put_string(struct text *t, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF"; /* upper case, as jansson wrote them */
    text_put(t, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        text_put(t, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        text_put(t, esc, elen);
    }
    text_put(t, s + run, n - run);
    text_put(t, "\"", 1);
}

/* The shortest decimal form that reads back as the same double, always with a '.' or an
 * exponent so that it stays a real. */
static void put_real(struct text *t, double v)
{
    char buf[40];
    if (v != v || v - v != 0) { /* NaN and infinities have no JSON form */
        t->failed = true;
        return;
    }
    int n = 0;
    for (int precision = 15; precision <= 17; precision++) {
        n = snprintf(buf, sizeof buf - 2, "%.*g", precision, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (n < 0 || (size_t)n >= sizeof buf - 2) {
        t->failed = true;
        return;
    }
    if (!strpbrk(buf, ".eEn")) memcpy(buf + n, ".0", 3), n += 2;
    text_put(t, buf, (size_t)n);
}

static void put_value(struct text *t, const struct wm_json *j)
{
    char num[24];
    switch (j->type) {
    case WM_JSON_OBJECT:
        text_put(t, "{", 1);
        for (size_t i = 0; i < j->u.c.n; i++) {
            const struct member *m = &members(j)[i];
            if (i) text_put(t, ",", 1);
            put_string(t, m->key, m->keylen);
            text_put(t, ":", 1);
            put_value(t, m->value);
        }
        text_put(t, "}", 1);
        return;
    case WM_JSON_ARRAY:
        text_put(t, "[", 1);
        for (size_t i = 0; i < j->u.c.n; i++) {
            if (i) text_put(t, ",", 1);
            put_value(t, elements(j)[i]);
        }
        text_put(t, "]", 1);
        return;
    case WM_JSON_STRING:
        put_string(t, str_bytes(j), j->u.len);
        return;
    case WM_JSON_INTEGER: {
        int n = snprintf(num, sizeof num, "%lld", (long long)j->u.integer);
        text_put(t, num, (size_t)n);
        return;
    }
    case WM_JSON_REAL:
        put_real(t, j->u.real);
        return;
    case WM_JSON_TRUE:
        text_put(t, "true", 4);
        return;
    case WM_JSON_FALSE:
        text_put(t, "false", 5);
        return;
    default:
        text_put(t, "null", 4);
        return;
    }
}

enum wm_err wm_json_dump(const struct wm_json *j, char **out, size_t *len)
{
    if (!out) return WM_ERR_INVAL;
    *out = NULL;
    if (!j) return WM_ERR_INVAL;
    struct text t = {0};
    put_value(&t, j);
    text_put(&t, "", 1); /* the terminating NUL, not counted */
    if (t.failed) {
        buf_free(&t.out);
        return WM_ERR_NOMEM;
    }
    *out = (char *)t.out.data;
    if (len) *len = t.out.len - 1;
    return WM_OK;
}

/* ---- inspection ---- */

int wm_json_depth(const struct wm_json *j)
{
    if (!j || !is_container(j)) return 0;
    int deepest = 0;
    for (size_t i = 0; i < j->u.c.n; i++) {
        const struct wm_json *child =
            j->type == WM_JSON_OBJECT ? members(j)[i].value : elements(j)[i];
        int d = wm_json_depth(child);
        if (d > deepest) deepest = d;
    }
    return deepest + 1;
}

enum wm_json_type wm_json_type(const struct wm_json *j)
{
    return j ? (enum wm_json_type)j->type : WM_JSON_NULL;
}

bool wm_json_is_object(const struct wm_json *j)
{
    return j && j->type == WM_JSON_OBJECT;
}

bool wm_json_is_array(const struct wm_json *j)
{
    return j && j->type == WM_JSON_ARRAY;
}

bool wm_json_is_string(const struct wm_json *j)
{
    return j && j->type == WM_JSON_STRING;
}

/* ---- construction ---- */

static struct wm_json *container_new(unsigned char type)
{
    struct wm_json *j = calloc(1, sizeof *j);
    if (!j) {
        errno = ENOMEM;
        return NULL;
    }
    j->type = type;
    return j;
}

struct wm_json *wm_json_object_new(void)
{
    return container_new(WM_JSON_OBJECT);
}

struct wm_json *wm_json_array_new(void)
{
    return container_new(WM_JSON_ARRAY);
}

struct wm_json *wm_json_string_new(const char *s, size_t len)
{
    if (!s) {
        errno = EINVAL;
        return NULL;
    }
    if (!text_utf8_valid(s, len, 0)) {
        errno = EILSEQ;
        return NULL;
    }
    if (len > MAX_INPUT) {
        errno = ENOMEM;
        return NULL;
    }
    struct item it = {.type = WM_JSON_STRING, .v.str = {s, len}};
    struct wm_json *j = scalar_new(&it);
    if (!j) errno = ENOMEM;
    return j;
}

struct wm_json *wm_json_integer_new(int64_t v)
{
    struct item it = {.type = WM_JSON_INTEGER, .v.integer = v};
    struct wm_json *j = scalar_new(&it);
    if (!j) errno = ENOMEM;
    return j;
}

/* Makes room for one more slot of size bytes, moving parsed slots out of their block. */
static bool reserve(struct wm_json *j, size_t size)
{
    if (j->u.c.n < j->u.c.cap) return true;
    size_t cap = j->u.c.cap ? j->u.c.cap * 2 : 4;
    if (cap > SIZE_MAX / size) return false;
    void *slots;
    if (j->flags & OWN_SLOTS) {
        slots = realloc(j->u.c.slots, cap * size);
    } else {
        slots = malloc(cap * size);
        if (slots && j->u.c.n) memcpy(slots, j->u.c.slots, j->u.c.n * size);
    }
    if (!slots) return false;
    j->u.c.slots = slots;
    j->u.c.cap = cap;
    j->flags |= OWN_SLOTS;
    return true;
}

static struct member *find(const struct wm_json *obj, const char *key, size_t len)
{
    struct member *m = members(obj);
    for (size_t i = 0; i < obj->u.c.n; i++)
        if (m[i].keylen == len && memcmp(m[i].key, key, len) == 0) return &m[i];
    return NULL;
}

struct wm_json *wm_json_object_get(const struct wm_json *obj, const char *key)
{
    if (!obj || !key || obj->type != WM_JSON_OBJECT) return NULL;
    struct member *m = find(obj, key, strlen(key));
    return m ? m->value : NULL;
}

enum wm_err wm_json_object_set(struct wm_json *obj, const char *key, struct wm_json *value)
{
    if (!obj || !key || !value || obj->type != WM_JSON_OBJECT) {
        release(value);
        return WM_ERR_INVAL;
    }
    size_t len = strlen(key);
    if (!text_utf8_valid(key, len, 0)) {
        release(value);
        return WM_ERR_INVAL;
    }
    struct member *m = find(obj, key, len);
    if (m) {
        struct wm_json *old = m->value;
        m->value = value;
        release(old);
        return WM_OK;
    }
    char *copy = malloc(len + 1);
    if (!copy || !reserve(obj, sizeof *m)) {
        free(copy);
        release(value);
        return WM_ERR_NOMEM;
    }
    memcpy(copy, key, len + 1);
    members(obj)[obj->u.c.n++] = (struct member){value, copy, len, true};
    return WM_OK;
}

enum wm_err wm_json_object_del(struct wm_json *obj, const char *key)
{
    if (!obj || !key || obj->type != WM_JSON_OBJECT) return WM_ERR_INVAL;
    struct member *m = find(obj, key, strlen(key));
    if (!m) return WM_ERR_NOTFOUND;
    /* key may point into the member: it is not read after this. */
    struct member gone = *m;
    size_t after = obj->u.c.n - (size_t)(m - members(obj)) - 1;
    memmove(m, m + 1, after * sizeof *m);
    obj->u.c.n--;
    if (gone.own_key) free(gone.key);
    release(gone.value);
    return WM_OK;
}

size_t wm_json_object_size(const struct wm_json *obj)
{
    return obj && obj->type == WM_JSON_OBJECT ? obj->u.c.n : 0;
}

bool wm_json_object_next(const struct wm_json *obj, void **iter, const char **key,
                         struct wm_json **value)
{
    if (!obj || !iter || obj->type != WM_JSON_OBJECT) return false;
    size_t i = *iter ? (size_t)((struct member *)*iter - members(obj)) + 1 : 0;
    if (i >= obj->u.c.n) {
        *iter = NULL;
        return false;
    }
    struct member *m = &members(obj)[i];
    *iter = m;
    if (key) *key = m->key;
    if (value) *value = m->value;
    return true;
}

size_t wm_json_array_size(const struct wm_json *arr)
{
    return arr && arr->type == WM_JSON_ARRAY ? arr->u.c.n : 0;
}

struct wm_json *wm_json_array_get(const struct wm_json *arr, size_t i)
{
    if (!arr || arr->type != WM_JSON_ARRAY || i >= arr->u.c.n) return NULL;
    return elements(arr)[i];
}

enum wm_err wm_json_array_append(struct wm_json *arr, struct wm_json *value)
{
    if (!arr || !value || arr->type != WM_JSON_ARRAY) {
        release(value);
        return WM_ERR_INVAL;
    }
    if (!reserve(arr, sizeof value)) {
        release(value);
        return WM_ERR_NOMEM;
    }
    elements(arr)[arr->u.c.n++] = value;
    return WM_OK;
}

const char *wm_json_string(const struct wm_json *j, size_t *len)
{
    if (!j || j->type != WM_JSON_STRING) return NULL;
    if (len) *len = j->u.len;
    return str_bytes(j);
}

bool wm_json_integer(const struct wm_json *j, int64_t *v)
{
    if (!j || j->type != WM_JSON_INTEGER) return false;
    if (v) *v = j->u.integer;
    return true;
}

bool wm_json_number(const struct wm_json *j, double *v)
{
    if (!j || (j->type != WM_JSON_INTEGER && j->type != WM_JSON_REAL)) return false;
    if (v) *v = j->type == WM_JSON_INTEGER ? (double)j->u.integer : j->u.real;
    return true;
}
