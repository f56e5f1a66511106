/* proxy.h: which HTTP proxy, if any, a connection goes through: curl's rules for the
 * environment, overridden by --proxy and --no-proxy; what to log of a proxy (never its password)
 * and what to say when it refuses.
 *
 * The proxy of a destination scheme://host, in this order:
 *   1. --proxy URL, for every scheme ("" or "none": no proxy, whatever the environment says);
 *   2. else the scheme's variable, lower case first (curl's [scheme]_proxy):
 *        http   http_proxy (never HTTP_PROXY: a CGI program gets it from a request's "Proxy:"
 *               field, the httpoxy attack)
 *        https  https_proxy, HTTPS_PROXY
 *        ws     ws_proxy, WS_PROXY, then http_proxy (WebSocket is HTTP: curl does the same)
 *        wss    wss_proxy, WSS_PROXY, then https_proxy, HTTPS_PROXY
 *        mqtt   mqtt_proxy, MQTT_PROXY
 *        mqtts  mqtts_proxy, MQTTS_PROXY
 *      MQTT does not fall back on https_proxy (as in curl): the proxies set for web traffic
 *      often refuse CONNECT to ports other than 443, and a broker reached directly today must
 *      not become unreachable because https_proxy is set;
 *   3. else all_proxy, ALL_PROXY; else none. An empty variable counts as unset.
 * Then the no-proxy list (--no-proxy LIST, else no_proxy, else NO_PROXY; --no-proxy "" bypasses
 * nothing) sends the destinations it names directly, whichever of the above gave the proxy.
 *
 * A proxy URL is "http://[user[:password]@]host[:port][/]", or "[user[:password]@]host[:port]"
 * (http:// is understood); the port is 1080 when absent, as in curl. Only HTTP proxies are
 * spoken to: https:// (TLS to the proxy) and socks4/4a/5/5h:// are refused (WM_ERR_NOTSUP).
 * A URL with a user but no password takes it from the credentials file (credentials_apply). */
#ifndef WMESH_PROXY_H
#define WMESH_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "credentials.h"
#include "error.h"
#include "url.h"

/* The destination schemes that have a rule, in the order of struct proxy_config's slots. */
enum proxy_scheme {
    PROXY_HTTP = 0,
    PROXY_HTTPS,
    PROXY_WS,
    PROXY_WSS,
    PROXY_MQTT,
    PROXY_MQTTS,
    PROXY_SCHEMES
};

/* The proxy of one scheme, or why its setting cannot be used. Owned by its proxy_config. */
struct proxy_server {
    const char *source; /* static: "--proxy", "https_proxy", "ALL_PROXY", ...; NULL: no proxy */
    enum wm_err err;    /* WM_OK, or WM_ERR_NOTSUP / WM_ERR_INVAL: the setting is unusable */
    char why[160];      /* with err: what is wrong, without the URL (it may hold a password) */
    struct wm_url url;  /* with WM_OK: scheme "http", host, port, user and password or NULL */
};

/* The proxies of every scheme and the no-proxy list, built once at start. */
struct proxy_config {
    struct proxy_server slot[PROXY_SCHEMES];
    char *no_proxy;              /* the list in effect, or NULL */
    const char *no_proxy_source; /* static: "--no-proxy", "no_proxy" or "NO_PROXY" */
};

/* Fills out from the environment (getenv) and the options, either of which may be NULL when
 * not given: option_proxy is --proxy, option_no_proxy --no-proxy; creds (may be NULL) gives
 * passwords to proxy URLs with a user and none. An unusable --proxy fails here (WM_ERR_INVAL,
 * WM_ERR_NOTSUP, why says what, without the URL); an unusable variable does not, since it may
 * concern schemes wmesh will not use: proxy_for() reports it. WM_ERR_NOMEM. On success the
 * caller owns out and frees it with proxy_config_clear(); on failure out holds nothing. */
WM_WARN_UNUSED enum wm_err proxy_config_from_env(const char *option_proxy,
                                                 const char *option_no_proxy,
                                                 const struct credentials *creds,
                                                 struct proxy_config *out, char *why,
                                                 size_t whylen);
void proxy_config_clear(struct proxy_config *c);

/* The proxy for a connection to scheme://host (host as in struct wm_url: an IPv6 literal with
 * or without brackets). WM_OK with *proxy NULL: connect directly; WM_OK with *proxy set: go
 * through it (CONNECT for https, wss, mqtts, mqtt and ws; an absolute-form GET for http).
 * WM_ERR_NOTSUP or WM_ERR_INVAL when the setting that applies is unusable (why names it: never
 * connect directly then, the user asked for a proxy); WM_ERR_INVAL for a scheme without a rule.
 * *proxy points into c. */
WM_WARN_UNUSED enum wm_err proxy_for(const struct proxy_config *c, const char *scheme,
                                     const char *host, const struct proxy_server **proxy, char *why,
                                     size_t whylen);

/* Whether list (no_proxy's syntax) sends host directly. Entries are separated by commas and/or
 * blanks. "*" matches every host. A name matches itself and its subdomains, on a label boundary,
 * without regard to case, a leading "." or "*." and a trailing "." being ignored ("example.com"
 * and ".example.com" both match example.com and www.example.com, not notexample.com). An IPv4
 * or IPv6 address (the latter with or without brackets) matches that address, and with "/bits"
 * (CIDR, 192.168.0.0/16, fe80::/10) the addresses of that network. Names never match addresses
 * and no name is resolved. An entry with a port ("host:8080") matches nothing, as in curl. */
bool proxy_bypassed(const char *list, const char *host);

/* Writes "http://user@host:port (from SOURCE)" into out: never the password. */
void proxy_describe(const struct proxy_server *p, char *out, size_t outlen);

/* Writes one line for the start-up log: each scheme's proxy (described as above), "direct", or
 * what is wrong with its setting, and the no-proxy list with its source. */
void proxy_config_describe(const struct proxy_config *c, char *out, size_t outlen);

/* Writes the one-line error for a proxy's final answer other than 2xx to a request for
 * host:port: "proxy http://p:3128 (from https_proxy) refused CONNECT to host:443: HTTP 403"; for
 * 407 that it asks for credentials, or refused those it was given (p has a user). */
void proxy_refusal(const struct proxy_server *p, int status, const char *host, int port, char *out,
                   size_t outlen);

#endif
