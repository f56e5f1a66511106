/* url.c: small URL parser and joiner; no library: the rules we need are few and strict. */
#include "url.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "text.h"

static char *dup_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Percent-decodes n bytes of s into a new string; refuses encoded NUL. */
static char *decode_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = text_hex_digit(s[i + 1])) >= 0 &&
            (lo = text_hex_digit(s[i + 2])) >= 0 && (hi | lo)) {
            d[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            d[j++] = s[i];
        }
    }
    d[j] = '\0';
    return d;
}

bool url_decode(const char *s, size_t n, bool plus_space, char *out, size_t *outlen)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0') return false;
        if (s[i] != '%') {
            out[j++] = plus_space && s[i] == '+' ? ' ' : s[i];
            continue;
        }
        if (n - i < 3) return false;
        int hi = text_hex_digit(s[i + 1]), lo = text_hex_digit(s[i + 2]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0) return false;
        out[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[j] = '\0';
    *outlen = j;
    return true;
}

static int default_port(const char *scheme)
{
    static const struct {
        const char *scheme;
        int port;
    } ports[] = {{"mqtt", 1883}, {"mqtts", 8883}, {"ws", 80},     {"wss", 443},
                 {"http", 80},   {"https", 443},  {"amqp", 5672}, {"amqps", 5671}};
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++)
        if (strcmp(scheme, ports[i].scheme) == 0) return ports[i].port;
    return 0;
}

static enum wm_err parse_port(const char *s, size_t n, int *port)
{
    if (n == 0 || n > 5) return WM_ERR_INVAL;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return WM_ERR_INVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535) return WM_ERR_INVAL;
    *port = v;
    return WM_OK;
}

static enum wm_err parse_userinfo(const char *s, size_t n, struct wm_url *u)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;
    u->user = decode_range(s, ulen);
    if (!u->user) return WM_ERR_NOMEM;
    if (colon) {
        u->password = decode_range(colon + 1, n - ulen - 1);
        if (!u->password) return WM_ERR_NOMEM;
    }
    return WM_OK;
}

static enum wm_err parse_hostport(const char *s, size_t n, struct wm_url *u)
{
    const char *port_at = NULL;
    size_t hlen;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return WM_ERR_INVAL;
        u->host = dup_range(s + 1, (size_t)(close - s - 1));
        if (close + 1 < s + n) {
            if (close[1] != ':') return WM_ERR_INVAL;
            port_at = close + 2;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        hlen = colon ? (size_t)(colon - s) : n;
        u->host = dup_range(s, hlen);
        if (colon) port_at = colon + 1;
    }
    if (!u->host) return WM_ERR_NOMEM;
    if (!u->host[0]) return WM_ERR_INVAL;
    if (port_at) return parse_port(port_at, (size_t)(s + n - port_at), &u->port);
    u->port = default_port(u->scheme);
    return u->port ? WM_OK : WM_ERR_INVAL;
}

enum wm_err url_parse(const char *text, struct wm_url *out)
{
    if (!text || !out) return WM_ERR_INVAL;
    memset(out, 0, sizeof *out);
    const char *sep = strstr(text, "://");
    if (!sep || sep == text) return WM_ERR_INVAL;
    enum wm_err err = WM_ERR_NOMEM;
    out->scheme = dup_range(text, (size_t)(sep - text));
    if (!out->scheme) goto fail;
    for (char *c = out->scheme; *c; c++)
        *c = (char)tolower((unsigned char)*c);

    const char *auth = sep + 3;
    const char *slash = strchr(auth, '/');
    size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);
    out->path = strdup(slash ? slash : "");
    if (!out->path) goto fail;

    /* The last '@' ends the user info: passwords may contain '@' unencoded. */
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@') at = p;
    if (at) {
        err = parse_userinfo(auth, (size_t)(at - auth), out);
        if (err) goto fail;
        alen -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    err = parse_hostport(auth, alen, out);
    if (err) goto fail;
    return WM_OK;
fail:
    url_clear(out);
    return err;
}

void url_clear(struct wm_url *u)
{
    if (!u) return;
    free(u->scheme);
    free(u->user);
    free(u->password);
    free(u->host);
    free(u->path);
    memset(u, 0, sizeof *u);
}

void url_redact(const char *text, char *out, size_t outlen)
{
    struct wm_url u;
    if (outlen == 0) return;
    if (url_parse(text, &u) != WM_OK) {
        snprintf(out, outlen, "(unparsable URL)");
        return;
    }
    bool v6 = strchr(u.host, ':') != NULL;
    snprintf(out, outlen, "%s://%s%s%s%s%s:%d", u.scheme, u.user ? u.user : "", u.user ? "@" : "",
             v6 ? "[" : "", u.host, v6 ? "]" : "", u.port);
    url_clear(&u);
}

static bool needs_escape(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7f) return true;
    return strchr("#?\"<>\\^`{|}", c) != NULL;
}

char *url_join(const char *base, const char *rel)
{
    if (!base || !rel) {
        errno = EINVAL;
        return NULL;
    }
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    while (*rel == '/')
        rel++;
    size_t need = blen + 2;
    for (const char *p = rel; *p; p++)
        need += needs_escape((unsigned char)*p) ? 3 : 1;
    char *u = malloc(need);
    if (!u) return NULL;
    memcpy(u, base, blen);
    size_t j = blen;
    u[j++] = '/';
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)rel; *p; p++) {
        if (needs_escape(*p)) {
            u[j++] = '%';
            u[j++] = hex[*p >> 4];
            u[j++] = hex[*p & 15];
        } else {
            u[j++] = (char)*p;
        }
    }
    u[j] = '\0';
    return u;
}

bool url_is_http(const char *text)
{
    return text && (strncasecmp(text, "http://", 7) == 0 || strncasecmp(text, "https://", 8) == 0);
}

char *url_resolve(const char *base, const char *loc)
{
    size_t ll = strcspn(loc, "#");
    size_t i = 0;
    while (isalnum((unsigned char)loc[i]) || (loc[i] && strchr("+-.", loc[i])))
        i++;
    const char *auth = strstr(base, "://");
    size_t keep = 0;    /* bytes of base kept */
    bool slash = false; /* a '/' between them, when base has no path */
    if (i > 0 && loc[i] == ':') {
        keep = 0; /* it has a scheme: absolute already */
    } else if (!auth) {
        errno = EINVAL;
        return NULL;
    } else if (loc[0] == '/' && loc[1] == '/') {
        keep = (size_t)(auth - base) + 1; /* the scheme and its ':' */
    } else {
        size_t path_at = (size_t)(auth + 3 - base) + strcspn(auth + 3, "/");
        keep = path_at + strcspn(base + path_at, "?#");
        if (loc[0] == '/') {
            keep = path_at;
        } else {
            if (loc[0] != '?') /* a relative path replaces the last segment */
                while (keep > path_at && base[keep - 1] != '/')
                    keep--;
            slash = keep == path_at;
        }
    }
    char *u = malloc(keep + slash + ll + 1);
    if (!u) return NULL;
    memcpy(u, base, keep);
    if (slash) u[keep] = '/';
    memcpy(u + keep + slash, loc, ll);
    u[keep + slash + ll] = '\0';
    return u;
}
