/* cli_common.c: helpers shared by the subcommands' argument handling. */
#include "cli_common.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "credentials.h"
#include "log.h"
#include "loop.h"
#include "options.h"
#include "proxy.h"
#include "tls.h"
#include "url.h"

const char *cli_none_to_null(const char *text)
{
    return text && strcmp(text, "none") != 0 ? text : NULL;
}

int cli_parse_format(const char *text, enum wm_format *out)
{
    if (text && strcmp(text, "v03") == 0)
        *out = WM_FORMAT_V03;
    else if (text && strcmp(text, "array") == 0)
        *out = WM_FORMAT_ARRAY;
    else if (text && strcmp(text, "wnm") == 0)
        *out = WM_FORMAT_WNM;
    else {
        fprintf(stderr, "wmesh: unknown message format \"%s\" (v03, array or wnm)\n",
                text ? text : "");
        return -1;
    }
    return 0;
}

int cli_parse_inline(struct options *o, const char *cmd, enum wm_format fmt, size_t *out)
{
    double bytes = 0;
    if (options_number(o, "inline", &bytes) != WM_OK) return -1; /* the spec's range holds */
    if (bytes > 0 && codec_inline_capacity(fmt) == 0) {
        fprintf(stderr,
                "wmesh %s: --inline needs --post-format v03 or wnm: the array format "
                "has no place for content\n",
                cmd);
        return -1;
    }
    *out = (size_t)bytes;
    return 0;
}

int cli_set_logging(const struct options *o)
{
    if (options_flag(o, "verbose")) log_set_level(WM_LOG_DEBUG);
    if (options_flag(o, "quiet")) log_set_level(WM_LOG_WARN);
    const char *format = options_get(o, "log-format");
    if (!format || strcmp(format, "text") == 0) return 0;
    if (strcmp(format, "json") == 0) {
        log_set_format(WM_LOG_JSON);
        return 0;
    }
    fprintf(stderr, "wmesh: unknown --log-format %s (text or json)\n", format);
    return -1;
}

/* --cacert, --cert and --key into *s, checked by loading them. */
static int tls_settings(const struct options *o, const char *cmd, struct tls_settings *s)
{
    s->cafile = options_get(o, "cacert");
    s->certfile = options_get(o, "cert");
    s->keyfile = options_get(o, "key");
    if (!s->cafile && !s->certfile && !s->keyfile) return 0;
    if (s->keyfile && !s->certfile) {
        fprintf(stderr, "wmesh %s: --key %s needs --cert, the certificate it belongs to\n", cmd,
                s->keyfile);
        return -1;
    }
    struct tls_config *cfg = NULL;
    char why[600];
    enum wm_err e = tls_config_new(s, &cfg, why, sizeof why);
    tls_config_free(&cfg);
    if (e == WM_OK) return 0;
    fprintf(stderr, "wmesh %s: %s\n", cmd, why[0] ? why : wm_strerror(e));
    return -1;
}

static int mqtt_version(const struct options *o, const char *cmd, enum mqtt_protocol *out)
{
    const char *v = options_get(o, "mqtt-version");
    if (!v || strcmp(v, "auto") == 0)
        *out = MQTT_AUTO;
    else if (strcmp(v, "5") == 0)
        *out = MQTT_V5;
    else if (strcmp(v, "3.1.1") == 0)
        *out = MQTT_V311;
    else {
        fprintf(stderr, "wmesh %s: --mqtt-version is 5, 3.1.1 or auto, not \"%s\"\n", cmd, v);
        return -1;
    }
    return 0;
}

int cli_credentials(const struct options *o, const char *cmd, struct credentials **c)
{
    const char *path = options_get(o, "credentials");
    char def[4096];
    const char *home = getenv("HOME");
    bool explicit = path != NULL;
    *c = NULL;
    if (!path && home) {
        snprintf(def, sizeof def, "%s/.config/wmesh/credentials.conf", home);
        path = def;
    }
    if (!path) return 0;
    enum wm_err e;
    char why[512];
    *c = credentials_load(path, &e, why, sizeof why);
    if (*c || (e == WM_ERR_NOTFOUND && !explicit)) return 0;
    fprintf(stderr, "wmesh %s: credentials: %s\n", cmd, why);
    return -1;
}

int cli_proxies(const struct options *o, const char *cmd, const struct credentials *creds,
                struct proxy_config *out)
{
    char why[256];
    if (proxy_config_from_env(options_get(o, "proxy"), options_get(o, "no-proxy"), creds, out, why,
                              sizeof why) != WM_OK) {
        fprintf(stderr, "wmesh %s: --proxy: %s\n", cmd, why);
        return -1;
    }
    bool any = false;
    for (int i = 0; i < PROXY_SCHEMES; i++)
        any = any || out->slot[i].source != NULL;
    if (any) {
        char line[1024];
        proxy_config_describe(out, line, sizeof line);
        log_info("proxies: %s", line);
    }
    return 0;
}

int cli_link_options(const struct options *o, const char *cmd, struct mqtt_options *mo)
{
    struct tls_settings tls;
    if (tls_settings(o, cmd, &tls) != 0 || mqtt_version(o, cmd, &mo->protocol) != 0) return -1;
    mo->cafile = tls.cafile;
    mo->certfile = tls.certfile;
    mo->keyfile = tls.keyfile;
    return 0;
}

/* Why mqtt_link_new refused url with WM_ERR_INVAL, which covers both of these. */
static const char *url_trouble(const char *url)
{
    struct wm_url u = {0};
    const char *why = NULL;
    if (url_parse(url, &u) != WM_OK)
        why = "not a URL such as mqtt://USER:PASS@HOST:PORT";
    else if (!mqtt_url_scheme_ok(u.scheme))
        why = "not an mqtt://, mqtts://, ws:// or wss:// URL";
    url_clear(&u);
    return why;
}

int cli_link_new(const char *cmd, const char *option, const struct mqtt_options *mo,
                 const struct mqtt_callbacks *cb, void *arg, struct loop **loop,
                 struct mqtt_link **link)
{
    if (!(*loop = loop_new())) {
        fprintf(stderr, "wmesh %s: cannot make an event loop: %s\n", cmd, strerror(errno));
        return -1;
    }
    enum wm_err e = WM_ERR_NOMEM;
    if ((*link = mqtt_link_new(*loop, mo, cb, arg, &e))) return 0;
    const char *why = e == WM_ERR_INVAL ? url_trouble(mo->url) : NULL;
    char shown[256];
    const char *at = strrchr(mo->url, '@'), *sep = strstr(mo->url, "://");
    if (!why)
        url_redact(mo->url, shown, sizeof shown);
    else if (at) /* whatever it is, what comes before the '@' may be a password */
        snprintf(shown, sizeof shown, "%.*s...%s", sep && sep < at ? (int)(sep - mo->url) + 3 : 0,
                 mo->url, at);
    else
        snprintf(shown, sizeof shown, "%s", mo->url);
    fprintf(stderr, "wmesh %s: --%s %s: %s\n", cmd, option, shown, why ? why : wm_strerror(e));
    return -1;
}
