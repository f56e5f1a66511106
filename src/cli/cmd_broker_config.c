/* cmd_broker_config.c: `wmesh broker-config`: prints the mosquitto.conf (or the ACL) of a broker
 * next to a wmesh peer, as broker_conf renders it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_conf.h"
#include "cli.h"
#include "options.h"

#define STR_(x) #x
#define STR(x) STR_(x)

// clang-format off
static const struct option_spec specs[] = {
    {"port", OPT_NUMBER, false, "N", STR(BROKER_CONF_PORT), "MQTT listener port", 1, 65535},
    {"host", OPT_STRING, false, "ADDR", NULL,
     "address the listeners bind (default: every interface)", 0, 0},
    {"websockets", OPT_NUMBER, false, "PORT", "0",
     "a second listener speaking MQTT over websockets (0: none)", 0, 65535},
    {"cafile", OPT_STRING, false, "FILE", NULL, "TLS on the MQTT listener: CA certificates", 0, 0},
    {"certfile", OPT_STRING, false, "FILE", NULL, "TLS: the broker's certificate", 0, 0},
    {"keyfile", OPT_STRING, false, "FILE", NULL, "TLS: the broker's private key", 0, 0},
    {"password-file", OPT_STRING, false, "FILE", NULL,
     "mosquitto_passwd file of the users", 0, 0},
    {"acl-file", OPT_STRING, false, "FILE", NULL, "the ACL file (wmesh broker-config --acl)", 0, 0},
    {"persistence", OPT_STRING, false, "DIR", NULL,
     "keep sessions and queues in DIR (default: as set elsewhere, as Debian does)", 0, 0},
    {"autosave-interval", OPT_NUMBER, false, "S", STR(BROKER_CONF_AUTOSAVE_S),
     "seconds between saves of the persistence database (0: mosquitto's default)", 0, 1e9},
    {"log-file", OPT_STRING, false, "FILE", NULL,
     "log there, with timestamps and connections (-: stderr; default: mosquitto's)", 0, 0},
    {"user", OPT_STRING, false, "NAME", NULL, "user that mosquitto started as root becomes", 0, 0},
    {"max-queued-messages", OPT_NUMBER, false, "N", STR(BROKER_CONF_MAX_QUEUED),
     "messages queued per absent or slow client", 0, 4e9},
    {"max-inflight-messages", OPT_NUMBER, false, "N", STR(BROKER_CONF_MAX_INFLIGHT),
     "QoS 1 messages in flight per MQTT 3.1.1 client", 0, 65535},
    {"message-size-limit", OPT_NUMBER, false, "BYTES", STR(BROKER_CONF_MESSAGE_SIZE_LIMIT),
     "largest message accepted", 0, 268435455},
    {"max-keepalive", OPT_NUMBER, false, "S", "0",
     "keep-alive imposed on MQTT 5 clients (0: mosquitto's default)", 0, 65535},
    {"session-expiry", OPT_STRING, false, "DURATION", BROKER_CONF_SESSION_EXPIRY,
     "how long an absent client's session is kept, such as 7d (none: forever)", 0, 0},
    {"acl", OPT_FLAG, false, NULL, NULL, "print the ACL file instead", 0, 0},
    {"owner", OPT_STRING, false, "NAME", BROKER_CONF_OWNER,
     "ACL: the user who reads and writes the topics (the peer)", 0, 0},
    {"guest", OPT_STRING, false, "NAME", BROKER_CONF_GUEST,
     "ACL: the user who reads them (*: every user)", 0, 0},
    {"topic", OPT_STRING, true, "T", BROKER_CONF_TOPIC,
     "ACL: a topic of both users; owner:T or guest:T for one of them", 0, 0},
    {NULL, 0, false, NULL, NULL, NULL, 0, 0},
};
// clang-format on

#define USAGE "wmesh broker-config [--port N] [--persistence DIR] [--acl] [OPTIONS]"

/* The value of number option name; options_parse has checked its range. */
static double number(const struct options *o, const char *name)
{
    double v = 0;
    return options_number(o, name, &v) == WM_OK ? v : 0;
}

int cmd_broker_config(int argc, char **argv)
{
    bool help;
    struct options *o = options_parse(USAGE, specs, argc, argv, &help);
    if (!o) return help ? 0 : 2;
    struct broker_conf c;
    broker_conf_init(&c);
    c.port = (unsigned)number(o, "port");
    c.host = options_get(o, "host");
    c.websockets_port = (unsigned)number(o, "websockets");
    c.cafile = options_get(o, "cafile");
    c.certfile = options_get(o, "certfile");
    c.keyfile = options_get(o, "keyfile");
    c.password_file = options_get(o, "password-file");
    c.acl_file = options_get(o, "acl-file");
    c.persistence_dir = options_get(o, "persistence");
    c.autosave_interval = (unsigned)number(o, "autosave-interval");
    c.log_file = options_get(o, "log-file");
    c.run_as = options_get(o, "user");
    c.max_queued_messages = (unsigned long)number(o, "max-queued-messages");
    c.max_inflight_messages = (unsigned long)number(o, "max-inflight-messages");
    c.message_size_limit = (unsigned long)number(o, "message-size-limit");
    c.max_keepalive = (unsigned)number(o, "max-keepalive");
    c.session_expiry = options_get(o, "session-expiry");
    if (strcmp(c.session_expiry, "none") == 0) c.session_expiry = NULL;
    c.owner = options_get(o, "owner");
    c.guest = options_get(o, "guest");
    const char **topics = options_get_all(o, "topic", &c.ntopics);
    c.topics = topics;
    int rc = 1;
    enum wm_err e = topics ? options_flag(o, "acl") ? broker_conf_write_acl(&c, stdout)
                                                    : broker_conf_write(&c, stdout)
                           : WM_ERR_NOMEM;
    if (e == WM_ERR_INVAL) {
        fprintf(stderr, "wmesh broker-config: a value holds a line break or a blank, the TLS "
                        "files are not all three, or --websockets is --port\n");
        rc = 2;
    } else if (e != WM_OK) {
        fprintf(stderr, "wmesh broker-config: cannot print: %s\n", wm_strerror(e));
    } else {
        rc = 0;
    }
    free(topics);
    options_free(&o);
    return rc;
}
