/* mqtt_wire.h: MQTT 3.1.1 and 5 control packets to and from bytes, with no I/O: the client side
 * of what wmesh speaks (CONNECT, PUBLISH and PUBACK at QoS 0 and 1, SUBSCRIBE, PINGREQ,
 * DISCONNECT out; CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP, DISCONNECT in). */
#ifndef WMESH_MQTT_WIRE_H
#define WMESH_MQTT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

#define MQTT_LEVEL_311 4 /* protocol level byte of MQTT 3.1.1 */
#define MQTT_LEVEL_5 5
#define MQTT_MAX_REMAINING 268435455u /* the largest remaining length a packet can state */

/* The encoders append to a struct buf (buf.h). */

/* ---- encoding: each appends one whole packet to b, or leaves b unchanged on error ---- */

struct mqtt_connect {
    int version;                  /* MQTT_LEVEL_311 or MQTT_LEVEL_5 */
    const char *client_id;        /* may be "" (then clean_start must be true) */
    bool clean_start;             /* 3.1.1: the clean session flag */
    uint16_t keepalive_s;         /* 0: no keep-alive */
    const char *username;         /* NULL: none */
    const char *password;         /* NULL: none; sent only with a username */
    uint32_t session_expiry_s;    /* MQTT 5 property 0x11, sent when nonzero */
    uint16_t receive_maximum;     /* MQTT 5 property 0x21, sent when nonzero */
    uint32_t maximum_packet_size; /* MQTT 5 property 0x27, sent when nonzero */
};
/* WM_ERR_INVAL for a bad version, an empty client id without clean_start, or a string over
 * 65535 bytes. */
WM_WARN_UNUSED enum wm_err mqtt_wire_connect(struct buf *b, const struct mqtt_connect *c);

struct mqtt_publish {
    const char *topic; /* NUL-terminated, non-empty, no '+' or '#' */
    const void *payload;
    size_t len;
    int qos; /* 0 or 1 */
    bool retain;
    bool dup;
    uint16_t packet_id;       /* nonzero when qos is 1 */
    const char *content_type; /* MQTT 5 property 0x03 when not NULL; ignored for 3.1.1 */
};
/* WM_ERR_INVAL for a bad topic, qos or packet id; WM_ERR_TOOBIG when the packet would exceed
 * MQTT_MAX_REMAINING. */
WM_WARN_UNUSED enum wm_err mqtt_wire_publish(struct buf *b, int version,
                                             const struct mqtt_publish *p);
/* PUBACK with success (3.1.1: 2 bytes of packet id; 5: the same, reason code 0 implied). */
WM_WARN_UNUSED enum wm_err mqtt_wire_puback(struct buf *b, uint16_t packet_id);
/* One SUBSCRIBE for n filters at the given maximum qos (MQTT 5 subscription options: no local
 * off, retain as published off, send retained always). WM_ERR_INVAL when n is 0 or a filter is
 * empty or over 65535 bytes. */
WM_WARN_UNUSED enum wm_err mqtt_wire_subscribe(struct buf *b, int version, uint16_t packet_id,
                                               const char *const *filters, size_t n, int qos);
WM_WARN_UNUSED enum wm_err mqtt_wire_pingreq(struct buf *b);
/* Normal disconnection (MQTT 5: reason 0, no properties). */
WM_WARN_UNUSED enum wm_err mqtt_wire_disconnect(struct buf *b, int version);

/* ---- topic filters ---- */

/* True when f[0..n) is a valid topic filter: non-empty MQTT UTF-8, '+' filling a whole level,
 * '#' only as the whole last level (MQTT 5 4.7.1). */
bool mqtt_topic_filter_valid(const char *f, size_t n);
/* True when the topic name matches the filter (both NUL-terminated) under MQTT rules: '+'
 * matches exactly one level (an empty one too), '#' the parent level and all below it, and a
 * topic beginning with '$' is matched by no filter that begins with a wildcard (MQTT 5 4.7.2).
 * Pure; a filter that is not valid matches nothing. */
bool mqtt_topic_matches(const char *filter, const char *topic);

/* ---- decoding ---- */

enum mqtt_type {
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBACK = 9,
    MQTT_UNSUBACK = 11,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
    MQTT_AUTH = 15,
};

/* One packet from the server. Pointers borrow from the parsed buffer and are valid only while
 * it is unchanged; strings are not NUL-terminated. Fields not carried by the packet's type are
 * zero (NULL), except the defaults noted. */
struct mqtt_packet {
    enum mqtt_type type;
    uint8_t flags; /* the low four bits of the first byte */
    /* CONNACK */
    bool session_present;
    uint16_t receive_maximum;     /* MQTT 5 property; 65535 when absent */
    uint32_t maximum_packet_size; /* MQTT 5 property; 0 when absent (no limit) */
    uint8_t maximum_qos;          /* MQTT 5 property; 1 when absent (we use no more) */
    /* MQTT 5 property 0x13: when set, the client must use this keep-alive instead of its own */
    bool server_keepalive_set;
    uint16_t server_keepalive_s;
    /* CONNACK return code (3.1.1) or reason code (5); PUBACK, DISCONNECT reason (5); 0 when
     * absent */
    uint8_t reason;
    const char *reason_string; /* MQTT 5 property 0x1F, NULL when absent */
    size_t reason_string_len;
    /* PUBLISH */
    const char *topic;
    size_t topic_len;
    const unsigned char *payload;
    size_t payload_len;
    int qos;
    bool retain;
    bool dup;
    uint16_t topic_alias; /* MQTT 5 property 0x23; 0 when absent */
    /* PUBLISH (qos > 0), PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK */
    uint16_t packet_id;
    /* SUBACK: one return or reason code per filter */
    const unsigned char *codes;
    size_t ncodes;
};

/* Parses the packet at the start of buf[0..len). version is the protocol of the connection (it
 * decides whether properties follow); a CONNACK is also understood in the 3.1.1 layout (no
 * properties) when version is 5, since a broker that refuses MQTT 5 answers so.
 * Returns:
 *   WM_OK            a whole packet: *p is filled, *used its length in bytes;
 *   WM_ERR_NOTFOUND  not enough bytes yet (nothing is filled; *used is the total length the
 *                    packet will need when the header tells it already, else 0);
 *   WM_ERR_TOOBIG    the packet states a length over max_len bytes (whole packet; *used is
 *                    that length);
 *   WM_ERR_PROTOCOL  malformed or not a packet a client may receive; why (whylen bytes, may be
 *                    NULL) says what, fit for a log line.
 * Unknown MQTT 5 properties are skipped; a malformed property list is WM_ERR_PROTOCOL. A PUBLISH
 * with qos 3, qos 1 or 2 and packet id 0, or a topic containing a NUL byte is WM_ERR_PROTOCOL. */
WM_WARN_UNUSED enum wm_err mqtt_wire_parse(const unsigned char *buf, size_t len, int version,
                                           size_t max_len, struct mqtt_packet *p, size_t *used,
                                           char *why, size_t whylen);

/* The text of a CONNACK code (3.1.1 return code, or 5 reason code) for log lines. */
const char *mqtt_wire_connack_text(int version, uint8_t code);
/* The text of an MQTT 5 reason code (any packet's) for log lines. */
const char *mqtt_wire_reason_text(uint8_t code);
/* True when a CONNACK code means "this protocol version is not supported" (3.1.1 code 1, or
 * MQTT 5 reason 0x84). */
bool mqtt_wire_refuses_version(uint8_t code);

#endif
