/* integrity.c: checksum methods, streaming digests over OpenSSL, checksum values as text. */
#include "integrity.h"

/* MD5 and the SHA-2 family go through OpenSSL's direct digest functions, deprecated in 3.0 but
 * the same assembly as EVP: the first EVP digest makes OpenSSL 3 load its default provider and
 * build its table of every algorithm's names, 1.3 MB of resident memory for a peer that only
 * ever hashes with one of four methods (and EVP costs ~10 000 more instructions per 1 KiB
 * file). SHA-3, which has no direct API, and builds without the deprecated calls use EVP. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/md5.h>
#include <openssl/sha.h>
#include <sys/random.h>

#include "text.h"

#if !defined(OPENSSL_NO_DEPRECATED_3_0) && !defined(OPENSSL_NO_MD5)
#define DIRECT_DIGESTS 1
#else
#define DIRECT_DIGESTS 0
#endif

#define READ_CHUNK (64 * 1024)
#define RANDOM_BYTES 8     /* a fresh "random" value is this many bytes, in hex */
#define VALUE_TEXT_MAX 256 /* longest digest text (whitespace removed) we try to decode */

struct method_info {
    enum wm_sum method;
    const char *name;
    char letter;
    size_t len;
};

static const struct method_info methods[] = {
    {WM_SUM_MD5, "md5", 'd', 16},
    {WM_SUM_SHA256, "sha256", 0, 32},
    {WM_SUM_SHA384, "sha384", 0, 48},
    {WM_SUM_SHA512, "sha512", 's', 64},
    {WM_SUM_SHA3_256, "sha3-256", 0, 32},
    {WM_SUM_SHA3_384, "sha3-384", 0, 48},
    {WM_SUM_SHA3_512, "sha3-512", 0, 64},
    {WM_SUM_MD5NAME, "md5name", 'n', 16},
    {WM_SUM_COD, "cod", 'z', 0},
    {WM_SUM_RANDOM, "random", '0', 0},
    {WM_SUM_ARBITRARY, "arbitrary", 'a', 0},
};

#define N_METHODS (sizeof methods / sizeof methods[0])

static const struct method_info *info_of(enum wm_sum method)
{
    for (size_t i = 0; i < N_METHODS; i++)
        if (methods[i].method == method) return &methods[i];
    return NULL;
}

const char *integrity_method_name(enum wm_sum method)
{
    const struct method_info *mi = info_of(method);
    return mi ? mi->name : "none";
}

enum wm_sum integrity_method_from_name(const char *name)
{
    if (!name) return WM_SUM_NONE;
    for (size_t i = 0; i < N_METHODS; i++)
        if (strcasecmp(methods[i].name, name) == 0) return methods[i].method;
    return WM_SUM_NONE;
}

char integrity_method_letter(enum wm_sum method)
{
    const struct method_info *mi = info_of(method);
    return mi ? mi->letter : 0;
}

enum wm_sum integrity_method_from_letter(char letter)
{
    if (letter == 0) return WM_SUM_NONE;
    for (size_t i = 0; i < N_METHODS; i++)
        if (methods[i].letter == letter) return methods[i].method;
    return WM_SUM_NONE;
}

size_t integrity_digest_len(enum wm_sum method)
{
    const struct method_info *mi = info_of(method);
    return mi ? mi->len : 0;
}

bool integrity_is_digest(enum wm_sum method)
{
    /* MD5NAME has a digest length but checks the name, never the content. */
    return method != WM_SUM_MD5NAME && integrity_digest_len(method) > 0;
}

bool integrity_equal(const struct wm_checksum *a, const struct wm_checksum *b)
{
    if (!a || !b || a->method != b->method) return false;
    if (a->method == WM_SUM_COD) return a->cod_method == b->cod_method;
    if (a->len != b->len || a->len > WM_SUM_MAX_LEN) return false;
    return memcmp(a->value, b->value, a->len) == 0;
}

/* ---- streaming digests ---- */

struct integrity_ctx {
    EVP_MD_CTX *md; /* SHA-3 (or every digest without DIRECT_DIGESTS); else NULL */
    bool direct;    /* a direct digest runs in the union below */
#if DIRECT_DIGESTS
    union {
        MD5_CTX md5;
        SHA256_CTX sha256;
        SHA512_CTX sha512; /* SHA-384 too */
    } u;
#endif
    bool failed;               /* a digest call failed during update */
    struct wm_checksum result; /* method of the digest computed; value when neither runs */
};

#if DIRECT_DIGESTS
static bool direct_init(struct integrity_ctx *c, enum wm_sum method)
{
    switch (method) {
    case WM_SUM_MD5:
        return MD5_Init(&c->u.md5) == 1;
    case WM_SUM_SHA256:
        return SHA256_Init(&c->u.sha256) == 1;
    case WM_SUM_SHA384:
        return SHA384_Init(&c->u.sha512) == 1;
    case WM_SUM_SHA512:
        return SHA512_Init(&c->u.sha512) == 1;
    default:
        return false;
    }
}

static bool direct_update(struct integrity_ctx *c, const void *data, size_t len)
{
    switch (c->result.method) {
    case WM_SUM_MD5:
        return MD5_Update(&c->u.md5, data, len) == 1;
    case WM_SUM_SHA256:
        return SHA256_Update(&c->u.sha256, data, len) == 1;
    case WM_SUM_SHA384:
        return SHA384_Update(&c->u.sha512, data, len) == 1;
    default:
        return SHA512_Update(&c->u.sha512, data, len) == 1;
    }
}

static bool direct_final(struct integrity_ctx *c)
{
    unsigned char *out = c->result.value;
    c->result.len = integrity_digest_len(c->result.method);
    switch (c->result.method) {
    case WM_SUM_MD5:
        return MD5_Final(out, &c->u.md5) == 1;
    case WM_SUM_SHA256:
        return SHA256_Final(out, &c->u.sha256) == 1;
    case WM_SUM_SHA384:
        return SHA384_Final(out, &c->u.sha512) == 1;
    default:
        return SHA512_Final(out, &c->u.sha512) == 1;
    }
}
#else
static bool direct_init(struct integrity_ctx *c, enum wm_sum method)
{
    (void)c;
    (void)method;
    return false;
}

static bool direct_update(struct integrity_ctx *c, const void *data, size_t len)
{
    (void)c;
    (void)data;
    (void)len;
    return false;
}

static bool direct_final(struct integrity_ctx *c)
{
    (void)c;
    return false;
}
#endif

static const EVP_MD *evp_of(enum wm_sum method)
{
    switch (method) {
    case WM_SUM_MD5:
    case WM_SUM_MD5NAME:
        return EVP_md5();
    case WM_SUM_SHA256:
        return EVP_sha256();
    case WM_SUM_SHA384:
        return EVP_sha384();
    case WM_SUM_SHA512:
        return EVP_sha512();
    case WM_SUM_SHA3_256:
        return EVP_sha3_256();
    case WM_SUM_SHA3_384:
        return EVP_sha3_384();
    case WM_SUM_SHA3_512:
        return EVP_sha3_512();
    default:
        return NULL;
    }
}

static const char *basename_of(const char *name)
{
    const char *slash = strrchr(name, '/');
    return slash ? slash + 1 : name;
}

static bool md5name_into(const char *name, struct wm_checksum *out)
{
    const char *base = basename_of(name);
    struct integrity_ctx c = {.result.method = WM_SUM_MD5};
    if (direct_init(&c, WM_SUM_MD5)) {
        if (!direct_update(&c, base, strlen(base)) || !direct_final(&c)) return false;
        memcpy(out->value, c.result.value, c.result.len);
        out->len = c.result.len;
        return true;
    }
    unsigned int n = 0;
    if (!EVP_Digest(base, strlen(base), out->value, &n, EVP_md5(), NULL)) return false;
    out->len = n;
    return true;
}

/* A fresh random token: hex text, so that it travels as-is in both formats. */
static bool random_into(struct wm_checksum *out)
{
    unsigned char raw[RANDOM_BYTES];
    /* The kernel's generator: a token, not a key, and no DRBG to set up in OpenSSL. */
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) return false;
    if (text_hex_encode(raw, sizeof raw, (char *)out->value, sizeof out->value) != WM_OK)
        return false;
    out->len = 2 * sizeof raw;
    return true;
}

/* Fills ctx for methods whose result does not depend on the content. */
static bool begin_known(struct integrity_ctx *ctx, const struct wm_checksum *like, const char *name)
{
    switch (like->method) {
    case WM_SUM_MD5NAME:
        if (!name) return false;
        return md5name_into(name, &ctx->result);
    case WM_SUM_RANDOM:
        /* Forwarders keep the token they were given, otherwise loops would never end. */
        if (like->len == 0) return random_into(&ctx->result);
        /* fall through */
    case WM_SUM_ARBITRARY:
        if (like->len > WM_SUM_MAX_LEN) return false;
        memcpy(ctx->result.value, like->value, like->len);
        ctx->result.len = like->len;
        return true;
    default:
        return false;
    }
}

/* False for methods whose result is known from the start (md5name, opaque values). */
static bool computing(const struct integrity_ctx *ctx)
{
    return ctx->direct || ctx->md;
}

struct integrity_ctx *integrity_begin(const struct wm_checksum *like, const char *name)
{
    if (!like) {
        errno = EINVAL;
        return NULL;
    }
    struct integrity_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    enum wm_sum method = like->method == WM_SUM_COD ? like->cod_method : like->method;
    ctx->result.method = method;
    if (like->method != WM_SUM_COD && !integrity_is_digest(method)) {
        if (begin_known(ctx, like, name)) return ctx;
        goto invalid;
    }
    if (!integrity_is_digest(method)) goto invalid;
    if ((ctx->direct = direct_init(ctx, method))) return ctx;
    ctx->md = EVP_MD_CTX_new();
    if (!ctx->md) goto nomem;
    if (EVP_DigestInit_ex(ctx->md, evp_of(method), NULL) != 1) goto invalid;
    return ctx;
invalid:
    integrity_abort(&ctx);
    errno = EINVAL;
    return NULL;
nomem:
    integrity_abort(&ctx);
    errno = ENOMEM;
    return NULL;
}

void integrity_update(struct integrity_ctx *ctx, const void *data, size_t len)
{
    if (!ctx || !computing(ctx) || len == 0) return;
    if (!data)
        ctx->failed = true;
    else if (ctx->direct)
        ctx->failed |= !direct_update(ctx, data, len);
    else if (EVP_DigestUpdate(ctx->md, data, len) != 1)
        ctx->failed = true;
}

enum wm_err integrity_finish(struct integrity_ctx **ctx, struct wm_checksum *out)
{
    if (!ctx || !*ctx) return WM_ERR_INVAL;
    struct integrity_ctx *c = *ctx;
    enum wm_err err = c->failed ? WM_ERR_LIB : WM_OK;
    if (err == WM_OK && c->direct && !direct_final(c)) err = WM_ERR_LIB;
    if (err == WM_OK && c->md) {
        unsigned int n = 0;
        if (EVP_DigestFinal_ex(c->md, c->result.value, &n) != 1) err = WM_ERR_LIB;
        c->result.len = n;
    }
    if (err == WM_OK && out) *out = c->result;
    integrity_abort(ctx);
    return out ? err : WM_ERR_INVAL;
}

void integrity_abort(struct integrity_ctx **ctx)
{
    if (!ctx || !*ctx) return;
    EVP_MD_CTX_free((*ctx)->md);
    free(*ctx);
    *ctx = NULL;
}

static enum wm_err begin_for(enum wm_sum method, const char *name, struct integrity_ctx **ctx)
{
    /* An arbitrary tag or a cod placeholder cannot be computed from content alone. */
    if (method == WM_SUM_ARBITRARY || method == WM_SUM_COD) return WM_ERR_METHOD;
    struct wm_checksum like = {.method = method};
    *ctx = integrity_begin(&like, name);
    if (*ctx) return WM_OK;
    return errno == ENOMEM ? WM_ERR_NOMEM : WM_ERR_METHOD;
}

enum wm_err integrity_of_buffer(enum wm_sum method, const char *name, const void *data, size_t len,
                                struct wm_checksum *out)
{
    if (!out || (!data && len)) return WM_ERR_INVAL;
    struct integrity_ctx *ctx = NULL;
    enum wm_err err = begin_for(method, name, &ctx);
    if (err != WM_OK) return err;
    integrity_update(ctx, data, len);
    return integrity_finish(&ctx, out);
}

enum wm_err integrity_of_fd(enum wm_sum method, const char *name, int fd, struct wm_checksum *out)
{
    if (!out || fd < 0) return WM_ERR_INVAL;
    struct integrity_ctx *ctx = NULL;
    enum wm_err err = begin_for(method, name, &ctx);
    if (err != WM_OK) return err;
    if (!computing(ctx)) return integrity_finish(&ctx, out); /* the content does not matter */
    unsigned char *buf = malloc(READ_CHUNK);
    if (!buf) {
        err = WM_ERR_NOMEM;
        goto fail;
    }
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, READ_CHUNK, off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            err = WM_ERR_IO;
            goto fail;
        }
        if (n == 0) break;
        integrity_update(ctx, buf, (size_t)n);
        off += n;
    }
    free(buf);
    return integrity_finish(&ctx, out);
fail:
    free(buf);
    integrity_abort(&ctx);
    return err;
}

enum wm_err integrity_sha1(const void *data, size_t len, unsigned char out[INTEGRITY_SHA1_LEN])
{
    if ((!data && len) || !out) return WM_ERR_INVAL;
#if DIRECT_DIGESTS
    /* As for MD5 and SHA-2: no provider to load for a hash of 60 bytes per connection. */
    SHA_CTX c;
    if (SHA1_Init(&c) != 1 || SHA1_Update(&c, data, len) != 1 || SHA1_Final(out, &c) != 1)
        return WM_ERR_LIB;
    return WM_OK;
#else
    unsigned int n = 0;
    if (!EVP_Digest(data, len, out, &n, EVP_sha1(), NULL) || n != INTEGRITY_SHA1_LEN)
        return WM_ERR_LIB;
    return WM_OK;
#endif
}

/* ---- v03 values ---- */

static void set_why(const char **why, const char *text)
{
    if (why) *why = text;
}

static enum wm_err parse_cod(const char *text, struct wm_checksum *out, const char **why)
{
    char name[16];
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        if (text_is_space(*p)) continue;
        if (n + 1 >= sizeof name) break;
        name[n++] = *p;
    }
    name[n] = '\0';
    enum wm_sum m =
        n == 1 ? integrity_method_from_letter(name[0]) : integrity_method_from_name(name);
    if (!integrity_is_digest(m)) {
        set_why(why, "cod names no known digest algorithm");
        return WM_ERR_METHOD;
    }
    out->cod_method = m;
    return WM_OK;
}

static enum wm_err parse_opaque(const char *text, struct wm_checksum *out, const char **why)
{
    size_t len = strlen(text);
    if (len > WM_SUM_MAX_LEN) {
        set_why(why, "value longer than 64 bytes");
        return WM_ERR_TOOBIG;
    }
    memcpy(out->value, text, len);
    out->len = len;
    return WM_OK;
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (text_hex_digit(s[i]) < 0) return false;
    return true;
}

static enum wm_err parse_digest(const char *text, struct wm_checksum *out, const char **why)
{
    size_t want = integrity_digest_len(out->method);
    char compact[VALUE_TEXT_MAX];
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        if (text_is_space(*p)) continue;
        if (n == sizeof compact) {
            set_why(why, "value too long for a digest");
            return WM_ERR_INVAL;
        }
        compact[n++] = *p;
    }
    unsigned char raw[VALUE_TEXT_MAX];
    size_t got = sizeof raw;
    enum wm_err err;
    /* Hex of a digest is 2*len characters, which as base64 would decode to 1.5*len bytes:
     * so this length and alphabet can only be hex. */
    if (n == 2 * want && !all_hex(compact, n)) {
        set_why(why, "value has the length of hex but is not hex");
        return WM_ERR_INVAL;
    }
    if (n == 2 * want)
        err = text_hex_decode(compact, n, raw, &got);
    else
        err = text_base64_decode(compact, n, raw, &got);
    if (err != WM_OK) {
        set_why(why, "value is neither base64 nor hex");
        return WM_ERR_INVAL;
    }
    if (got != want) {
        set_why(why, "value length does not match the digest length of the method");
        return WM_ERR_INVAL;
    }
    memcpy(out->value, raw, got);
    out->len = got;
    return WM_OK;
}

enum wm_err integrity_value_parse_why(enum wm_sum method, const char *text, struct wm_checksum *out,
                                      const char **why)
{
    set_why(why, "");
    if (!text || !out) {
        set_why(why, "missing value");
        return WM_ERR_INVAL;
    }
    memset(out, 0, sizeof *out);
    out->method = method;
    switch (method) {
    case WM_SUM_COD:
        return parse_cod(text, out, why);
    case WM_SUM_RANDOM:
    case WM_SUM_ARBITRARY:
        return parse_opaque(text, out, why);
    default:
        break;
    }
    if (integrity_digest_len(method) == 0) {
        set_why(why, "unknown checksum method");
        return WM_ERR_METHOD;
    }
    return parse_digest(text, out, why);
}

enum wm_err integrity_value_parse(enum wm_sum method, const char *text, struct wm_checksum *out)
{
    return integrity_value_parse_why(method, text, out, NULL);
}

enum wm_err integrity_value_format(const struct wm_checksum *sum, char *out, size_t outlen)
{
    if (!sum || !out || outlen == 0) return WM_ERR_INVAL;
    if (sum->len > WM_SUM_MAX_LEN) return WM_ERR_INVAL;
    int n;
    switch (sum->method) {
    case WM_SUM_COD:
        if (!integrity_is_digest(sum->cod_method)) return WM_ERR_METHOD;
        n = snprintf(out, outlen, "%s", integrity_method_name(sum->cod_method));
        break;
    case WM_SUM_RANDOM:
    case WM_SUM_ARBITRARY:
        if (memchr(sum->value, '\0', sum->len)) return WM_ERR_INVAL;
        n = snprintf(out, outlen, "%.*s", (int)sum->len, (const char *)sum->value);
        break;
    default:
        if (integrity_digest_len(sum->method) == 0) return WM_ERR_METHOD;
        if (sum->len != integrity_digest_len(sum->method)) return WM_ERR_INVAL;
        return text_base64_encode(sum->value, sum->len, out, outlen);
    }
    if (n < 0) return WM_ERR_INVAL;
    return (size_t)n < outlen ? WM_OK : WM_ERR_TOOBIG;
}
