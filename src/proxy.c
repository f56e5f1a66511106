/* proxy.c: the choice of a proxy per destination (curl's environment rules, --proxy and
 * --no-proxy) and the words that describe proxies without their passwords; no I/O. */
#include "proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_PROXY_PORT 1080 /* curl's, for a proxy URL without a port */

static const char *const scheme_names[PROXY_SCHEMES] = {"http", "https", "ws",
                                                        "wss",  "mqtt",  "mqtts"};

/* The variables of each scheme, in the order they are looked at; all_proxy and ALL_PROXY come
 * after them for every scheme. HTTP_PROXY is left out on purpose (httpoxy). */
static const char *const scheme_vars[PROXY_SCHEMES][5] = {
    {"http_proxy", NULL},
    {"https_proxy", "HTTPS_PROXY", NULL},
    {"ws_proxy", "WS_PROXY", "http_proxy", NULL},
    {"wss_proxy", "WSS_PROXY", "https_proxy", "HTTPS_PROXY", NULL},
    {"mqtt_proxy", "MQTT_PROXY", NULL},
    {"mqtts_proxy", "MQTTS_PROXY", NULL},
};

static int scheme_index(const char *scheme)
{
    for (int i = 0; i < PROXY_SCHEMES; i++)
        if (strcasecmp(scheme, scheme_names[i]) == 0) return i;
    return -1;
}

/* Whether the authority of a URL url_parse() accepted names a port. */
static bool has_port(const char *text)
{
    const char *auth = strstr(text, "://") + 3;
    size_t n = strcspn(auth, "/");
    for (size_t i = n; i > 0; i--)
        if (auth[i - 1] == '@') {
            auth += i;
            n -= i;
            break;
        }
    if (n > 0 && auth[0] == '[') {
        const char *close = memchr(auth, ']', n);
        return close && close + 1 < auth + n && close[1] == ':';
    }
    return memchr(auth, ':', n) != NULL;
}

static bool starts_with_scheme(const char *text, const char *scheme)
{
    size_t n = strlen(scheme);
    return strncasecmp(text, scheme, n) == 0 && strncmp(text + n, "://", 3) == 0;
}

/* Parses the proxy URL text into s (source already set). Only WM_ERR_NOMEM is returned; an
 * unusable URL leaves its reason in s->err and s->why. */
static enum wm_err parse_proxy(struct proxy_server *s, const char *text,
                               const struct credentials *creds)
{
    static const char *const socks[] = {"socks4", "socks4a", "socks5", "socks5h"};
    for (size_t i = 0; i < sizeof socks / sizeof socks[0]; i++) {
        if (starts_with_scheme(text, socks[i])) {
            s->err = WM_ERR_NOTSUP;
            snprintf(
                s->why, sizeof s->why,
                "SOCKS proxies (%s://) are not supported: give an HTTP proxy, http://host:port",
                socks[i]);
            return WM_OK;
        }
    }
    if (starts_with_scheme(text, "https")) {
        s->err = WM_ERR_NOTSUP;
        snprintf(s->why, sizeof s->why,
                 "HTTPS proxies (TLS to the proxy) are not supported: give an http:// proxy "
                 "(https destinations stay encrypted end to end through it)");
        return WM_OK;
    }
    const char *sep = strstr(text, "://");
    if (sep && !starts_with_scheme(text, "http")) {
        s->err = WM_ERR_INVAL;
        snprintf(s->why, sizeof s->why, "unknown proxy scheme \"%.*s\": give http://host:port",
                 (int)(sep - text < 16 ? sep - text : 16), text);
        return WM_OK;
    }
    size_t n = strlen(text) + sizeof "http://";
    char *full = malloc(n);
    if (!full) return WM_ERR_NOMEM;
    snprintf(full, n, "%s%s", sep ? "" : "http://", text);
    char *with_password = credentials_apply(creds, full);
    enum wm_err e = WM_ERR_NOMEM;
    if (!with_password) goto done;
    e = url_parse(with_password, &s->url);
    if (e == WM_ERR_NOMEM) goto done;
    if (e != WM_OK) {
        s->err = WM_ERR_INVAL;
        snprintf(s->why, sizeof s->why, "not a proxy URL: give http://[user@]host[:port]");
    } else if (!has_port(full)) {
        s->url.port = DEFAULT_PROXY_PORT;
    }
    e = WM_OK;
done:
    if (with_password) {
        memset(with_password, 0, strlen(with_password));
        free(with_password);
    }
    memset(full, 0, strlen(full));
    free(full);
    return e;
}

/* The value of the first variable of names that is set and not empty; its name in *name. */
static const char *first_set(const char *const *names, const char **name)
{
    for (; *names; names++) {
        const char *v = getenv(*names);
        if (v && *v) {
            *name = *names;
            return v;
        }
    }
    return NULL;
}

static bool is_none(const char *v)
{
    return !v[0] || strcasecmp(v, "none") == 0;
}

enum wm_err proxy_config_from_env(const char *option_proxy, const char *option_no_proxy,
                                  const struct credentials *creds, struct proxy_config *out,
                                  char *why, size_t whylen)
{
    static const char *const all_vars[] = {"all_proxy", "ALL_PROXY", NULL};
    static const char *const no_vars[] = {"no_proxy", "NO_PROXY", NULL};
    if (!out) return WM_ERR_INVAL;
    memset(out, 0, sizeof *out);
    enum wm_err e = WM_OK;
    for (int i = 0; i < PROXY_SCHEMES && !e; i++) {
        struct proxy_server *s = &out->slot[i];
        const char *text = NULL, *name = NULL;
        if (option_proxy) {
            if (!is_none(option_proxy)) {
                text = option_proxy;
                name = "--proxy";
            }
        } else if (!(text = first_set(scheme_vars[i], &name))) {
            text = first_set(all_vars, &name);
        }
        if (!text) continue;
        s->source = name;
        e = parse_proxy(s, text, creds);
        if (!e && s->err && option_proxy) {
            snprintf(why, whylen, "--proxy: %s", s->why);
            e = s->err;
        }
    }
    const char *list = option_no_proxy, *list_name = "--no-proxy";
    if (!e && !list) list = first_set(no_vars, &list_name);
    if (!e && list && list[0]) {
        out->no_proxy_source = list_name;
        if (!(out->no_proxy = strdup(list))) e = WM_ERR_NOMEM;
    }
    if (e == WM_ERR_NOMEM) snprintf(why, whylen, "no memory for the proxy settings");
    if (e) proxy_config_clear(out);
    return e;
}

void proxy_config_clear(struct proxy_config *c)
{
    if (!c) return;
    for (int i = 0; i < PROXY_SCHEMES; i++) {
        struct wm_url *u = &c->slot[i].url;
        if (u->password) memset(u->password, 0, strlen(u->password));
        url_clear(u);
    }
    free(c->no_proxy);
    memset(c, 0, sizeof *c);
}

enum wm_err proxy_for(const struct proxy_config *c, const char *scheme, const char *host,
                      const struct proxy_server **proxy, char *why, size_t whylen)
{
    if (!proxy) return WM_ERR_INVAL;
    *proxy = NULL;
    if (!c || !scheme || !host) return WM_ERR_INVAL;
    int i = scheme_index(scheme);
    if (i < 0) {
        snprintf(why, whylen, "no proxy rule for %.16s:// destinations", scheme);
        return WM_ERR_INVAL;
    }
    const struct proxy_server *s = &c->slot[i];
    if (!s->source || proxy_bypassed(c->no_proxy, host)) return WM_OK;
    if (s->err) {
        snprintf(why, whylen, "%s: %s", s->source, s->why);
        return s->err;
    }
    *proxy = s;
    return WM_OK;
}

/* ---- no_proxy ---- */

enum kind { NAME, V4, V6 };

/* An address of family af from text[0..n), brackets allowed around an IPv6 one. */
static bool parse_addr(const char *text, size_t n, int af, unsigned char *addr)
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, text, n);
    buf[n] = '\0';
    return inet_pton(af, buf, addr) == 1;
}

/* Whether the first bits bits of a and b are equal. */
static bool same_prefix(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    size_t whole = bits / 8;
    if (memcmp(a, b, whole) != 0) return false;
    unsigned rest = bits % 8;
    if (rest == 0) return true;
    unsigned mask = (0xffu << (8 - rest)) & 0xffu;
    return ((a[whole] ^ b[whole]) & mask) == 0;
}

/* An address entry, "addr" or "addr/bits", against the host's address. */
static bool addr_entry(const char *e, size_t n, int af, const unsigned char *host)
{
    unsigned max = af == AF_INET ? 32 : 128, bits = max;
    const char *slash = memchr(e, '/', n);
    if (slash) {
        size_t digits = (size_t)(e + n - slash - 1);
        if (digits == 0 || digits > 3) return false;
        bits = 0;
        for (const char *d = slash + 1; d < e + n; d++) {
            if (!isdigit((unsigned char)*d)) return false;
            bits = bits * 10 + (unsigned)(*d - '0');
        }
        if (bits > max) return false;
        n = (size_t)(slash - e);
    }
    unsigned char net[16];
    return parse_addr(e, n, af, net) && same_prefix(host, net, bits);
}

/* A name entry against the host name h[0..hn) (its trailing dot already dropped). */
static bool name_entry(const char *e, size_t n, const char *h, size_t hn)
{
    if (n >= 2 && e[0] == '*' && e[1] == '.') {
        e++;
        n--;
    }
    if (n > 0 && e[0] == '.') {
        e++;
        n--;
    }
    if (n > 0 && e[n - 1] == '.') n--;
    if (n == 0 || n > hn) return false;
    if (strncasecmp(e, h + hn - n, n) != 0) return false;
    return n == hn || h[hn - n - 1] == '.';
}

bool proxy_bypassed(const char *list, const char *host)
{
    if (!list || !host || !host[0]) return false;
    unsigned char addr[16];
    size_t hn = strlen(host);
    enum kind kind = NAME;
    if (parse_addr(host, hn, AF_INET, addr))
        kind = V4;
    else if (parse_addr(host, hn, AF_INET6, addr))
        kind = V6;
    else if (host[hn - 1] == '.')
        hn--;
    const char *p = list;
    while (*p) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ", \t");
        if (n == 0) break;
        bool match;
        if (n == 1 && p[0] == '*')
            match = true;
        else if (kind == NAME)
            match = name_entry(p, n, host, hn);
        else
            match = addr_entry(p, n, kind == V4 ? AF_INET : AF_INET6, addr);
        if (match) return true;
        p += n;
    }
    return false;
}

/* ---- words ---- */

/* "host:port", brackets around an IPv6 literal. */
static void authority(const char *host, int port, char *out, size_t outlen)
{
    bool v6 = strchr(host, ':') != NULL && host[0] != '[';
    snprintf(out, outlen, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

void proxy_describe(const struct proxy_server *p, char *out, size_t outlen)
{
    if (!out || outlen == 0) return;
    if (!p || !p->source) {
        snprintf(out, outlen, "direct");
        return;
    }
    if (p->err) {
        snprintf(out, outlen, "unusable (from %s): %s", p->source, p->why);
        return;
    }
    char where[300];
    authority(p->url.host, p->url.port, where, sizeof where);
    snprintf(out, outlen, "http://%s%s%s (from %s)", p->url.user ? p->url.user : "",
             p->url.user ? "@" : "", where, p->source);
}

void proxy_config_describe(const struct proxy_config *c, char *out, size_t outlen)
{
    if (!out || outlen == 0) return;
    out[0] = '\0';
    if (!c) return;
    size_t len = 0;
    for (int i = 0; i < PROXY_SCHEMES && len < outlen; i++) {
        char one[512];
        proxy_describe(&c->slot[i], one, sizeof one);
        int n = snprintf(out + len, outlen - len, "%s%s: %s", i ? "; " : "", scheme_names[i], one);
        if (n < 0) return;
        len += (size_t)n;
    }
    if (len < outlen && c->no_proxy)
        snprintf(out + len, outlen - len, "; not for: %s (from %s)", c->no_proxy,
                 c->no_proxy_source);
}

void proxy_refusal(const struct proxy_server *p, int status, const char *host, int port, char *out,
                   size_t outlen)
{
    if (!out || outlen == 0) return;
    char who[600], where[300];
    proxy_describe(p, who, sizeof who);
    authority(host ? host : "?", port, where, sizeof where);
    if (status == 407 && p && p->url.user)
        snprintf(out, outlen, "proxy %s refused the credentials of %s (407) for %s", who,
                 p->url.user, where);
    else if (status == 407)
        snprintf(out, outlen,
                 "proxy %s asks for credentials (407) for %s: give a user in the proxy URL and "
                 "its password there or in the credentials file",
                 who, where);
    else
        snprintf(out, outlen, "proxy %s refused CONNECT to %s: HTTP %d", who, where, status);
}
