/* mqtt.h: one broker link (our own MQTT 5 / 3.1.1 client, mqtt.c over mqtt_wire.c) driven by
 * the event loop: connect, reconnect with backoff, subscribe, publish at QoS 1. Acknowledgements
 * and publishes only queue; they leave in a loop hook, after every earlier hook (such as a
 * journal sync) has run, all of a turn's packets in one write. */
#ifndef WMESH_MQTT_H
#define WMESH_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct loop;
struct mqtt_link;

struct mqtt_msg {
    const char *topic;
    const void *payload;
    size_t len;
    int qos;
    bool retain;
    /* The DUP flag: the broker sent this message before, on an earlier connection of this
     * client id (maybe an earlier process's), and was not acknowledged. */
    bool dup;
};

/* How a publish ended. The link has dropped it: after a refusal the caller decides whether to
 * publish it again (later: the same cause usually gives the same answer) or to set it aside. */
struct mqtt_published {
    uint64_t tag; /* what mqtt_publish was given */
    /* 0: acknowledged with success. Else an MQTT 5 reason code (>= 0x80): the PUBACK's; the
     * DISCONNECT's that followed the message; 0x95 (packet too large) for a message over the
     * broker's Maximum Packet Size, which is never sent; 0x80 when the broker closed the
     * connection on the message without saying why (MQTT 3.1.1 brokers, NATS). */
    uint8_t reason;
    bool closed;     /* refused because the broker closed the connection on it */
    const char *why; /* NULL on success; else one line for the log: the reason and the
                      * broker's text */
    const char *topic;
    const void *payload;
    size_t len;
};

/* Callbacks run in the loop thread. payload and topic are only valid during the call. */
struct mqtt_callbacks {
    /* A message arrived. Returns false when it could not be taken (no memory, a journal that
     * refuses it): it is then not acknowledged, and the link drops the connection so that the
     * broker sends it again after the reconnect. */
    bool (*on_message)(void *arg, struct mqtt_link *link, const struct mqtt_msg *msg);
    void (*on_connect)(void *arg, struct mqtt_link *link, bool session_present);
    void (*on_disconnect)(void *arg, struct mqtt_link *link);
    /* A publish has ended, acknowledged with success or refused. Each publish ends exactly
     * once, unless the link is freed first. */
    void (*on_published)(void *arg, struct mqtt_link *link, const struct mqtt_published *p);
};

enum mqtt_protocol {
    MQTT_AUTO = 0, /* MQTT 5, falling back to 3.1.1 when the broker refuses it (a CONNACK
                    * saying so, or a close before any CONNACK that 3.1.1 then gets) */
    MQTT_V311,
    MQTT_V5,
};

struct mqtt_options {
    enum mqtt_protocol protocol;
    const char *url;       /* mqtt[s]://user:pass@host:port, or ws[s]://user:pass@host:port/path
                            * (MQTT over WebSockets; path /mqtt when none) */
    const char *client_id; /* NULL: random id and a clean session */
    bool clean_session;    /* false keeps a persistent session (with a client_id) */
    int keepalive_s;       /* 0: 30 */
    const char *const *subscriptions; /* topic filters subscribed at QoS 1 on every connect;
                                       * "$share/..." ones only under MQTT 5 (logged once) */
    size_t nsubscriptions;
    int max_inflight;          /* outgoing QoS 1 messages awaiting PUBACK; 0: 1000 */
    const char *cafile;        /* mqtts: CA certificates to trust; NULL: the system's store */
    const char *certfile;      /* mqtts: client certificate (PEM); NULL: none */
    const char *keyfile;       /* its private key (PEM); NULL: in certfile */
    unsigned session_expiry_s; /* MQTT 5 persistent sessions: kept this long; 0: 7 days */
    /* Proxies (proxy.h) by the broker URL's scheme; NULL: none. Borrowed: must outlive the
     * link. */
    const struct proxy_config *proxies;
};

/* Whether a broker URL's scheme is one a link speaks: mqtt, mqtts, ws, wss. */
bool mqtt_url_scheme_ok(const char *scheme);

/* Creates a link and starts connecting. Options are copied. The caller owns the link. */
WM_WARN_UNUSED struct mqtt_link *mqtt_link_new(struct loop *loop, const struct mqtt_options *opts,
                                               const struct mqtt_callbacks *cb, void *arg,
                                               enum wm_err *err);
/* Disconnects cleanly (flushing what it can) and frees *link, setting it to NULL. */
void mqtt_link_free(struct mqtt_link **link);

/* Queues a QoS 1 publish; tag, the caller's own, identifies it in on_published (a journal id,
 * say: the link never interprets it). Messages published while disconnected are sent after the
 * next connect; messages sent and not acknowledged when a connection ends are sent again, with
 * the DUP flag, on the next. Under MQTT 5 the message carries the content type
 * application/json, without which Sarracenia 3 subscribers drop it.
 *
 * One message a broker will not take never holds up those behind it: a message over the
 * Maximum Packet Size of the broker's CONNACK is refused without being sent; when the broker
 * closes the connection twice with the same oldest message unacknowledged, the link sends one
 * message at a time until that one is acknowledged, and a message alone in flight when the
 * broker closes the connection is refused (on_published). Closes the broker gives a reason
 * unrelated to messages for (shutting down, session taken over, ...) blame nothing. */
WM_WARN_UNUSED enum wm_err mqtt_publish(struct mqtt_link *link, const char *topic,
                                        const void *payload, size_t len, uint64_t tag);
/* mqtt_publish for a message the broker closed the connection on before: it is sent only when
 * nothing else is in flight, and nothing else while it is, so that should the broker close the
 * connection again, it is refused at once, and nothing else is resent. */
WM_WARN_UNUSED enum wm_err mqtt_publish_alone(struct mqtt_link *link, const char *topic,
                                              const void *payload, size_t len, uint64_t tag);

/* mqtt_publish with the retain flag: the broker keeps the message (the last one per topic) for
 * whoever subscribes later. */
WM_WARN_UNUSED enum wm_err mqtt_publish_retained(struct mqtt_link *link, const char *topic,
                                                 const void *payload, size_t len, uint64_t tag);

/* Writes what is queued now rather than in the link's pre-wait hook (for publishes queued by a
 * later hook in the same turn). Honours gating. */
void mqtt_flush(struct mqtt_link *link);
/* Stops (false) or resumes (true) reading from the broker: unread announcements stay queued in
 * the broker's session, which is how a busy peer pushes back instead of buffering without end. */
void mqtt_set_reading(struct mqtt_link *link, bool on);
/* Gating, for links whose acknowledgements must wait until what they acknowledge is durable.
 * On a gated link whose connection is up, queued bytes leave only up to the last mark
 * released. A mark (mqtt_mark) stands for everything queued on the current connection so far;
 * releasing it (mqtt_release) lets that go at the end of the loop turn. Marks of an earlier
 * connection release nothing: its unwritten PUBACKs died with it, and the broker sends those
 * messages again. Nothing queued to set a connection up (CONNECT, SUBSCRIBE) is ever held. */
struct mqtt_mark {
    uint32_t conn;
    uint64_t offset;
};
void mqtt_set_gated(struct mqtt_link *link, bool gated);
struct mqtt_mark mqtt_mark(const struct mqtt_link *link);
void mqtt_release(struct mqtt_link *link, struct mqtt_mark mark);

bool mqtt_connected(const struct mqtt_link *link);
/* 5 or 4 (3.1.1): the protocol of the current or last connection. */
int mqtt_protocol_version(const struct mqtt_link *link);
/* "user@host:port", for logs and metric labels; never the password. */
const char *mqtt_label(const struct mqtt_link *link);
/* Messages queued for the broker and not yet acknowledged. */
int mqtt_pending(const struct mqtt_link *link);
/* The broker's Maximum Packet Size (MQTT 5 CONNACK) on the current or last connection; 0: none
 * stated. */
uint32_t mqtt_max_packet(const struct mqtt_link *link);

#endif
