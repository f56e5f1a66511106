/* cli_common.h: small helpers shared by the subcommands' argument handling. */
#ifndef WMESH_CLI_COMMON_H
#define WMESH_CLI_COMMON_H

#include "announce.h"
#include "codec.h"
#include "mqtt.h"

struct options;

/* The option_spec entries of the commands that talk to brokers (and servers) over TLS:
 * --cacert, --cert, --key and --mqtt-version; read them with cli_link_options. */
// clang-format off
#define CLI_LINK_OPTIONS                                                                           \
    {"cacert", OPT_STRING, false, "FILE", NULL,                                                    \
     "CA certificates (PEM) that mqtts:// and https:// servers are checked against "               \
     "(default: the system's)", 0, 0},                                                             \
    {"cert", OPT_STRING, false, "FILE", NULL,                                                      \
     "client certificate (PEM, its chain after it) for TLS servers that ask for one", 0, 0},       \
    {"key", OPT_STRING, false, "FILE", NULL,                                                       \
     "private key (PEM, unencrypted) of --cert (default: in the --cert file)", 0, 0},              \
    {"mqtt-version", OPT_STRING, false, "5|3.1.1|auto", "auto",                                    \
     "MQTT protocol of every broker link (auto: 5, and 3.1.1 when a broker refuses 5)", 0, 0},     \
    {"proxy", OPT_STRING, false, "URL", NULL,                                                      \
     "HTTP proxy for every connection, overriding http_proxy, https_proxy, mqtt_proxy, ... "       \
     "(none: no proxy)", 0, 0},                                                                    \
    {"no-proxy", OPT_STRING, false, "LIST", NULL,                                                  \
     "hosts, domains and networks reached directly, overriding no_proxy", 0, 0}
// clang-format on

/* The option_spec entries of the commands that announce (peer, post): where and how. */
// clang-format off
#define CLI_POST_OPTIONS                                                                           \
    {"post-base-url", OPT_STRING, false, "URL", NULL,                                              \
     "baseUrl of the announcements: where the tree is served", 0, 0},                              \
    {"post-format", OPT_STRING, false, "v03|array|wnm", "v03",                                     \
     "format of the announcements", 0, 0},                                                         \
    {"exchange", OPT_STRING, false, "X", "xpublic", "first topic level", 0, 0},                    \
    {"topic-prefix", OPT_STRING, false, "P", "v03/post", "topic levels after the exchange", 0, 0}, \
    {"inline", OPT_NUMBER, false, "BYTES", "0",                                                    \
     "carry files up to BYTES (at most 4096) inside the announcements, so that the next peers "    \
     "need no download (0: never)", 0, WM_INLINE_MAX}
// clang-format on

/* NULL for NULL or "none", else text. */
const char *cli_none_to_null(const char *text);
/* "v03" or "array" (and later "wnm"); prints a reason and returns -1 otherwise. */
int cli_parse_format(const char *text, enum wm_format *out);

/* --inline BYTES for a command announcing in fmt: 0 to WM_INLINE_MAX, and only with a format
 * that has a place for content. Prints a reason (naming cmd) and returns -1 otherwise. */
int cli_parse_inline(struct options *o, const char *cmd, enum wm_format fmt, size_t *out);

/* CLI_LINK_OPTIONS of command cmd into the protocol, cafile, certfile and keyfile of *mo (the
 * strings stay owned by o). The certificate files are checked by loading them once, so that one
 * that cannot be used is reported now rather than at each connection. Returns -1 after one line
 * on stderr naming cmd and the file or the option and its value. */
int cli_link_options(const struct options *o, const char *cmd, struct mqtt_options *mo);

struct credentials;
struct proxy_config;
/* Loads --credentials of command cmd, or ~/.config/wmesh/credentials.conf when it exists; *c
 * stays NULL when there is none. Returns -1 after one line on stderr when the file cannot be
 * used (unreadable, readable by others, malformed). */
int cli_credentials(const struct options *o, const char *cmd, struct credentials **c);
/* The proxies of command cmd (--proxy, --no-proxy, the environment's variables; passwords from
 * creds, which may be NULL) into *out, which the caller clears with proxy_config_clear; one
 * line logged when any proxy applies. Returns -1 after one line on stderr naming cmd and what
 * is wrong (never a password). */
int cli_proxies(const struct options *o, const char *cmd, const struct credentials *creds,
                struct proxy_config *out);

struct loop;
/* A new loop (*loop) and a link on it to the broker of mo, for command cmd whose option named
 * the broker's URL. The caller frees both (even after a failure, as either may be set). Returns
 * -1 after one line on stderr that names cmd, the option, its URL (without password) and what
 * is wrong with it, or the system's reason when no loop can be made. */
int cli_link_new(const char *cmd, const char *option, const struct mqtt_options *mo,
                 const struct mqtt_callbacks *cb, void *arg, struct loop **loop,
                 struct mqtt_link **link);

/* Applies --verbose/-v, --quiet/-q and --log-format when the command has them. */
int cli_set_logging(const struct options *o);

#endif
