/* failalloc.c: allocation-failure injection for `make torture`, linked into build/torture/wmesh. */
/*
 * The torture build links wmesh with -Wl,--wrap=SYMBOL for every allocating function our code
 * calls directly (malloc, calloc, realloc, strdup, strndup, getline, fopen, fdopendir,
 * EVP_MD_CTX_new, SSL_CTX_new, SSL_new): each call from our objects comes here instead, and
 * goes on to __real_SYMBOL (under ASan, its interceptor). Calls made inside libc or OpenSSL are
 * not redirected: only what our code must handle can fail.
 *
 * A *site* is the return address of the call, as an offset from __executable_start: stable
 * across runs of one binary whatever the load address (PIE, ASLR), and what addr2line takes
 * (the call is at offset - 1). The build keeps frame pointers and no sibling calls, so the
 * return address is in the function that made the call.
 *
 * Environment (read at the first call):
 *   WMESH_FAILALLOC_RECORD=FILE  appends "site 0xOFFSET" to FILE the first time each site calls,
 *                                and "calls 0xOFFSET N" for every site when the process exits
 *   WMESH_FAILALLOC_SITE=0xOFF   fails one call from that site: the WMESH_FAILALLOC_NTH-th
 *                                (default 1st); the call returns NULL (getline -1) with errno
 *                                ENOMEM, and one line "failalloc: failing ..." goes to stderr
 *   WMESH_FAILALLOC_STACK=1      follows that line with the stack (when built with a sanitizer)
 *   WMESH_FAILALLOC_COUNT=N      fails the N-th wrapped call of the process, whatever its site
 *                                (curl's torture way; counted across threads)
 * Unset, the wrapper only counts. A program that tortures one module in-process uses
 * failalloc.h instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "failalloc.h"

struct __dirstream; /* DIR, without <dirent.h>'s declarations of what is wrapped here */
struct evp_md_ctx_st;
struct ssl_ctx_st;
struct ssl_st;
struct ssl_method_st;

/* The real functions (the linker's names for what --wrap redirected). */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
ssize_t __real_getline(char **line, size_t *cap, FILE *f);
FILE *__real_fopen(const char *path, const char *mode);
struct __dirstream *__real_fdopendir(int fd);
struct evp_md_ctx_st *__real_EVP_MD_CTX_new(void);
struct ssl_ctx_st *__real_SSL_CTX_new(const struct ssl_method_st *method);
struct ssl_st *__real_SSL_new(struct ssl_ctx_st *ctx);

/* Ours, declared for -Wmissing-prototypes. */
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
ssize_t __wrap_getline(char **line, size_t *cap, FILE *f);
FILE *__wrap_fopen(const char *path, const char *mode);
struct __dirstream *__wrap_fdopendir(int fd);
struct evp_md_ctx_st *__wrap_EVP_MD_CTX_new(void);
struct ssl_ctx_st *__wrap_SSL_CTX_new(const struct ssl_method_st *method);
struct ssl_st *__wrap_SSL_new(struct ssl_ctx_st *ctx);

/* Prints the calling thread's stack; present when built with ASan or UBSan. */
void __sanitizer_print_stack_trace(void) __attribute__((weak));

extern char __executable_start[];

#define SITES 8192 /* open addressing; a few hundred sites exist */

struct site {
    _Atomic uintptr_t off; /* 0: free */
    atomic_uint_fast64_t calls;
};

static struct site sites[SITES];
static pthread_mutex_t sites_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int record_fd = -1;
static uintptr_t fail_site; /* 0: fail nothing */
static uint64_t fail_nth = 1;
static bool print_stack;
static atomic_uint_fast64_t fail_calls; /* calls from fail_site so far */
static atomic_uint_fast64_t countdown;  /* nonzero: the call that brings it to 0 fails */
static atomic_bool fired;
static bool counted_loudly; /* say when the armed call fails (WMESH_FAILALLOC_COUNT, trace) */

void failalloc_trace(bool on)
{
    counted_loudly = on;
    print_stack = on;
}

void failalloc_arm(uint64_t n)
{
    if (n) atomic_store(&fired, false);
    atomic_store(&countdown, n);
}

bool failalloc_fired(void)
{
    return atomic_load(&fired);
}

static void put(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

/* At exit (not after a kill or _exit): how often each site called. */
__attribute__((destructor)) static void write_counts(void)
{
    if (record_fd < 0) return;
    for (size_t i = 0; i < SITES; i++) {
        uintptr_t off = atomic_load(&sites[i].off);
        if (!off) continue;
        char line[64];
        int n = snprintf(line, sizeof line, "calls 0x%jx %ju\n", (uintmax_t)off,
                         (uintmax_t)atomic_load(&sites[i].calls));
        if (n > 0 && (size_t)n < sizeof line) put(record_fd, line, (size_t)n);
    }
}

static void init(void)
{
    const char *record = getenv("WMESH_FAILALLOC_RECORD");
    if (record && *record) {
        record_fd = open(record, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    }
    const char *site = getenv("WMESH_FAILALLOC_SITE");
    if (site && *site) fail_site = (uintptr_t)strtoull(site, NULL, 16);
    const char *nth = getenv("WMESH_FAILALLOC_NTH");
    if (nth && *nth) fail_nth = strtoull(nth, NULL, 10);
    if (fail_nth == 0) fail_nth = 1;
    const char *stack = getenv("WMESH_FAILALLOC_STACK");
    print_stack = stack && *stack == '1';
    const char *nth_call = getenv("WMESH_FAILALLOC_COUNT");
    if (nth_call && *nth_call) {
        failalloc_arm(strtoull(nth_call, NULL, 10));
        counted_loudly = true;
    }
}

/* Counts the call down when armed; true when it is the one to fail. */
static bool counted_down(void)
{
    uint_fast64_t n = atomic_load(&countdown);
    while (n != 0) {
        if (atomic_compare_exchange_weak(&countdown, &n, n - 1)) {
            if (n != 1) return false;
            atomic_store(&fired, true);
            return true;
        }
    }
    return false;
}

/* Counts a call from site off (first seen: recorded). */
static void count(uintptr_t off)
{
    size_t h = (size_t)((off * 0x9e3779b97f4a7c15u) >> 51) % SITES;
    for (size_t i = 0; i < SITES; i++) {
        struct site *s = &sites[(h + i) % SITES];
        uintptr_t cur = atomic_load(&s->off);
        if (cur == off) {
            atomic_fetch_add(&s->calls, 1);
            return;
        }
        if (cur != 0) continue;
        pthread_mutex_lock(&sites_lock);
        cur = atomic_load(&s->off);
        if (cur == 0) {
            atomic_store(&s->off, off);
            if (record_fd >= 0) {
                char line[40];
                int n = snprintf(line, sizeof line, "site 0x%jx\n", (uintmax_t)off);
                if (n > 0 && (size_t)n < sizeof line) put(record_fd, line, (size_t)n);
            }
        }
        pthread_mutex_unlock(&sites_lock);
        if (cur == 0 || cur == off) {
            atomic_fetch_add(&s->calls, 1);
            return;
        }
    }
}

/* Whether the call from return address ra, to fn for n bytes, is the one to fail. */
static bool fail_here(void *ra, const char *fn, size_t n)
{
    pthread_once(&once, init);
    uintptr_t off = (uintptr_t)ra - (uintptr_t)__executable_start;
    count(off);
    char line[160];
    int len;
    if (counted_down()) {
        if (!counted_loudly) goto fail;
        len = snprintf(line, sizeof line, "failalloc: failing %s(%zu) at site 0x%jx, as armed\n",
                       fn, n, (uintmax_t)off);
    } else {
        if (off != fail_site) return false;
        uint64_t call = atomic_fetch_add(&fail_calls, 1) + 1;
        if (call != fail_nth) return false;
        len = snprintf(line, sizeof line,
                       "failalloc: failing %s(%zu) at site 0x%jx, call %ju from there\n", fn, n,
                       (uintmax_t)off, (uintmax_t)call);
    }
    if (len > 0 && (size_t)len < sizeof line) put(2, line, (size_t)len);
    if (print_stack && __sanitizer_print_stack_trace) __sanitizer_print_stack_trace();
fail:
    errno = ENOMEM;
    return true;
}

#define RA __builtin_return_address(0)

void *__wrap_malloc(size_t n)
{
    return fail_here(RA, "malloc", n) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_here(RA, "calloc", n * size) ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_here(RA, "realloc", n) ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fail_here(RA, "strdup", s ? strlen(s) + 1 : 0) ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fail_here(RA, "strndup", n) ? NULL : __real_strndup(s, n);
}

ssize_t __wrap_getline(char **line, size_t *cap, FILE *f)
{
    return fail_here(RA, "getline", cap ? *cap : 0) ? -1 : __real_getline(line, cap, f);
}

FILE *__wrap_fopen(const char *path, const char *mode)
{
    return fail_here(RA, "fopen", 0) ? NULL : __real_fopen(path, mode);
}

struct __dirstream *__wrap_fdopendir(int fd)
{
    return fail_here(RA, "fdopendir", 0) ? NULL : __real_fdopendir(fd);
}

struct evp_md_ctx_st *__wrap_EVP_MD_CTX_new(void)
{
    return fail_here(RA, "EVP_MD_CTX_new", 0) ? NULL : __real_EVP_MD_CTX_new();
}

struct ssl_ctx_st *__wrap_SSL_CTX_new(const struct ssl_method_st *method)
{
    return fail_here(RA, "SSL_CTX_new", 0) ? NULL : __real_SSL_CTX_new(method);
}

struct ssl_st *__wrap_SSL_new(struct ssl_ctx_st *ctx)
{
    return fail_here(RA, "SSL_new", 0) ? NULL : __real_SSL_new(ctx);
}
