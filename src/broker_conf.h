/* broker_conf.h: the mosquitto configuration and ACL of a broker next to a wmesh peer, rendered
 * from a few settings: the one writer behind `wmesh broker-config`, `wmesh demo`, the tests and
 * examples/mosquitto-peer.conf. */
#ifndef WMESH_BROKER_CONF_H
#define WMESH_BROKER_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"

/* What wmesh recommends (docs/OPERATIONS.md, Broker settings): mosquitto's default queue (1000)
 * drops messages for a slow peer, and a message may carry inline content. */
#define BROKER_CONF_PORT 1883
#define BROKER_CONF_MAX_QUEUED 1000000
#define BROKER_CONF_MAX_INFLIGHT 1000
#define BROKER_CONF_MESSAGE_SIZE_LIMIT 500000
#define BROKER_CONF_AUTOSAVE_S 60
#define BROKER_CONF_SESSION_EXPIRY "7d"
#define BROKER_CONF_OWNER "owner"
#define BROKER_CONF_GUEST "guest"
#define BROKER_CONF_TOPIC "xpublic/#"

/* The settings; broker_conf_init gives the recommended ones. Strings are borrowed: the caller
 * keeps them alive while the struct is used. Numbers at 0 and NULL strings leave mosquitto's own
 * default (no line is written). */
struct broker_conf {
    const char *host;         /* listener address; NULL: every interface */
    unsigned port;            /* MQTT listener */
    unsigned websockets_port; /* a second listener speaking MQTT over websockets; 0: none */
    const char *cafile;       /* TLS on the MQTT listener: all three, or none */
    const char *certfile;
    const char *keyfile;
    const char *password_file; /* anonymous clients are refused either way */
    const char *acl_file;
    const char *persistence_dir; /* persistence true there; NULL: set elsewhere (Debian) */
    unsigned autosave_interval;  /* seconds between saves of the persistence database */
    const char *log_file;        /* "-": stderr; NULL: mosquitto's default */
    const char *run_as;          /* `user`: whom mosquitto started as root becomes */
    unsigned long max_queued_messages;
    unsigned long max_inflight_messages;
    unsigned long message_size_limit;
    unsigned max_keepalive;     /* seconds imposed on MQTT 5 clients */
    const char *session_expiry; /* persistent_client_expiration, such as "7d" */
    /* The ACL: the owner (the peer) reads and writes each topic, the guest reads it; a topic
     * "owner:T" or "guest:T" is for that one only. A guest of "*" is every user (pattern). */
    const char *owner;
    const char *guest;
    const char *const *topics;
    size_t ntopics;
};

/* Fills c with the recommended settings: port 1883 on every interface, no persistence, the queue
 * limits above, owner and guest sharing BROKER_CONF_TOPIC. */
void broker_conf_init(struct broker_conf *c);

/* Writes mosquitto.conf for c to out. Returns WM_ERR_INVAL when c is incomplete or a value would
 * break the file (a newline, part of the TLS files, no port), WM_ERR_IO when writing fails. */
WM_WARN_UNUSED enum wm_err broker_conf_write(const struct broker_conf *c, FILE *out);

/* Writes the ACL file of c's users and topics to out; same returns as broker_conf_write. */
WM_WARN_UNUSED enum wm_err broker_conf_write_acl(const struct broker_conf *c, FILE *out);

#endif
