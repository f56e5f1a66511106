/* mqtt_wire.c: MQTT 3.1.1 and 5 control packets to and from bytes for the client side, no I/O. */
#include "mqtt_wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* Packet types only a client sends; named here for the property table and for log lines. */
#define PKT_CONNECT 1
#define PKT_SUBSCRIBE 8
#define PKT_UNSUBSCRIBE 10
#define PKT_PINGREQ 12

#define MAX_STRING 65535u /* a two-byte length prefix */

/* ---- strings ---- */

/* A string we may send: fits its two-byte length and is valid MQTT UTF-8. */
static bool string_ok(const char *s, size_t n)
{
    /* Well-formed UTF-8 without U+0000, which MQTT requires of every string (MQTT 5 1.5.4,
     * 3.1.1 1.5.3). */
    return n <= MAX_STRING && text_utf8_valid(s, n, TEXT_UTF8_NO_NUL);
}

bool mqtt_topic_filter_valid(const char *f, size_t n)
{
    if (!f) return false;
    if (n == 0 || !string_ok(f, n)) return false;
    for (size_t i = 0; i < n; i++) {
        bool starts_level = i == 0 || f[i - 1] == '/';
        bool ends_level = i + 1 == n || f[i + 1] == '/';
        if (f[i] == '+' && !(starts_level && ends_level)) return false;
        if (f[i] == '#' && !(starts_level && i + 1 == n)) return false;
    }
    return true;
}

bool mqtt_topic_matches(const char *filter, const char *topic)
{
    if (!filter || !topic || !mqtt_topic_filter_valid(filter, strlen(filter))) return false;
    if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) return false;
    const char *f = filter, *t = topic;
    for (;;) {
        size_t flen = strcspn(f, "/"), tlen = strcspn(t, "/");
        if (flen == 1 && f[0] == '#') return true;
        if (!(flen == 1 && f[0] == '+') && (flen != tlen || memcmp(f, t, flen) != 0)) return false;
        f += flen;
        t += tlen;
        if (!*f && !*t) return true;
        /* "a/#" also matches "a": the '#' stands for the parent level too. */
        if (!*t) return f[0] == '/' && f[1] == '#' && !f[2];
        if (!*f) return false;
        f++;
        t++;
    }
}

/* ---- encoding ---- */

static size_t varint_size(size_t v)
{
    return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static unsigned char *put_u8(unsigned char *w, unsigned v)
{
    *w = (unsigned char)v;
    return w + 1;
}

static unsigned char *put_u16(unsigned char *w, unsigned v)
{
    w[0] = (unsigned char)(v >> 8);
    w[1] = (unsigned char)v;
    return w + 2;
}

static unsigned char *put_u32(unsigned char *w, uint32_t v)
{
    w[0] = (unsigned char)(v >> 24);
    w[1] = (unsigned char)(v >> 16);
    w[2] = (unsigned char)(v >> 8);
    w[3] = (unsigned char)v;
    return w + 4;
}

/* v <= MQTT_MAX_REMAINING, checked by every caller. */
static unsigned char *put_varint(unsigned char *w, size_t v)
{
    do {
        unsigned char byte = (unsigned char)(v & 0x7F);
        v >>= 7;
        *w++ = v ? (unsigned char)(byte | 0x80) : byte;
    } while (v);
    return w;
}

/* A UTF-8 string or binary data: two-byte length, then the bytes (n <= 65535). */
static unsigned char *put_bytes(unsigned char *w, const void *s, size_t n)
{
    w = put_u16(w, (unsigned)n);
    if (n) memcpy(w, s, n);
    return w + n;
}

/* Reserves room for a packet of fixed-header byte `first` and `rem` remaining bytes, writes the
 * fixed header and returns where the rest goes; NULL when memory runs out. */
static unsigned char *begin(struct buf *b, unsigned first, size_t rem, size_t *total)
{
    *total = 1 + varint_size(rem) + rem;
    if (buf_reserve(b, *total) != WM_OK) return NULL;
    unsigned char *w = b->data + b->len;
    w = put_u8(w, first);
    return put_varint(w, rem);
}

static bool version_ok(int version)
{
    return version == MQTT_LEVEL_311 || version == MQTT_LEVEL_5;
}

enum wm_err mqtt_wire_connect(struct buf *b, const struct mqtt_connect *c)
{
    if (!b || !c || !c->client_id || !version_ok(c->version)) return WM_ERR_INVAL;
    size_t id_len = strlen(c->client_id);
    if (id_len == 0 && !c->clean_start) return WM_ERR_INVAL;
    if (!string_ok(c->client_id, id_len)) return WM_ERR_INVAL;
    size_t user_len = c->username ? strlen(c->username) : 0;
    if (c->username && !string_ok(c->username, user_len)) return WM_ERR_INVAL;
    /* 3.1.1 forbids a password without a user name [MQTT-3.1.2-22]; we keep to that in 5. */
    const char *password = c->username ? c->password : NULL;
    size_t pass_len = password ? strlen(password) : 0;
    if (pass_len > MAX_STRING) return WM_ERR_INVAL;

    bool v5 = c->version == MQTT_LEVEL_5;
    size_t props = 0;
    if (v5) {
        props += c->session_expiry_s ? 5 : 0;
        props += c->receive_maximum ? 3 : 0;
        props += c->maximum_packet_size ? 5 : 0;
    }
    size_t rem = 10 + (v5 ? varint_size(props) + props : 0) + 2 + id_len;
    rem += (c->username ? 2 + user_len : 0) + (password ? 2 + pass_len : 0);

    unsigned flags =
        (c->username ? 0x80u : 0) | (password ? 0x40u : 0) | (c->clean_start ? 0x02u : 0);
    size_t total;
    unsigned char *w = begin(b, PKT_CONNECT << 4, rem, &total);
    if (!w) return WM_ERR_NOMEM;
    w = put_bytes(w, "MQTT", 4);
    w = put_u8(w, (unsigned)c->version);
    w = put_u8(w, flags);
    w = put_u16(w, c->keepalive_s);
    if (v5) {
        w = put_varint(w, props);
        if (c->session_expiry_s) w = put_u32(put_u8(w, 0x11), c->session_expiry_s);
        if (c->receive_maximum) w = put_u16(put_u8(w, 0x21), c->receive_maximum);
        if (c->maximum_packet_size) w = put_u32(put_u8(w, 0x27), c->maximum_packet_size);
    }
    w = put_bytes(w, c->client_id, id_len);
    if (c->username) w = put_bytes(w, c->username, user_len);
    if (password) put_bytes(w, password, pass_len);
    b->len += total;
    return WM_OK;
}

enum wm_err mqtt_wire_publish(struct buf *b, int version, const struct mqtt_publish *p)
{
    if (!b || !p || !p->topic || !version_ok(version)) return WM_ERR_INVAL;
    if (p->qos != 0 && p->qos != 1) return WM_ERR_INVAL;
    if (p->qos == 1 && p->packet_id == 0) return WM_ERR_INVAL;
    if (p->qos == 0 && p->dup) return WM_ERR_INVAL; /* [MQTT-3.3.1-2] */
    if (p->len && !p->payload) return WM_ERR_INVAL;
    size_t topic_len = strlen(p->topic);
    if (topic_len == 0 || !string_ok(p->topic, topic_len)) return WM_ERR_INVAL;
    if (strpbrk(p->topic, "+#")) return WM_ERR_INVAL;
    bool v5 = version == MQTT_LEVEL_5;
    const char *ctype = v5 ? p->content_type : NULL;
    size_t ctype_len = ctype ? strlen(ctype) : 0;
    if (ctype && !string_ok(ctype, ctype_len)) return WM_ERR_INVAL;

    size_t props = ctype ? 3 + ctype_len : 0;
    size_t head = 2 + topic_len + (p->qos ? 2 : 0) + (v5 ? varint_size(props) + props : 0);
    if (p->len > MQTT_MAX_REMAINING - head) return WM_ERR_TOOBIG;
    unsigned first = 0x30u | (p->dup ? 0x08u : 0) | (unsigned)p->qos << 1 | (p->retain ? 1u : 0);
    size_t total;
    unsigned char *w = begin(b, first, head + p->len, &total);
    if (!w) return WM_ERR_NOMEM;
    w = put_bytes(w, p->topic, topic_len);
    if (p->qos) w = put_u16(w, p->packet_id);
    if (v5) {
        w = put_varint(w, props);
        if (ctype) w = put_bytes(put_u8(w, 0x03), ctype, ctype_len);
    }
    if (p->len) memcpy(w, p->payload, p->len);
    b->len += total;
    return WM_OK;
}

enum wm_err mqtt_wire_puback(struct buf *b, uint16_t packet_id)
{
    if (!b || packet_id == 0) return WM_ERR_INVAL;
    size_t total;
    unsigned char *w = begin(b, MQTT_PUBACK << 4, 2, &total);
    if (!w) return WM_ERR_NOMEM;
    put_u16(w, packet_id);
    b->len += total;
    return WM_OK;
}

enum wm_err mqtt_wire_subscribe(struct buf *b, int version, uint16_t packet_id,
                                const char *const *filters, size_t n, int qos)
{
    if (!b || !version_ok(version) || packet_id == 0 || !filters || n == 0) return WM_ERR_INVAL;
    if (qos < 0 || qos > 2) return WM_ERR_INVAL;
    bool v5 = version == MQTT_LEVEL_5;
    size_t rem = 2 + (v5 ? 1 : 0);
    for (size_t i = 0; i < n; i++) {
        if (!filters[i]) return WM_ERR_INVAL;
        size_t flen = strlen(filters[i]);
        if (!mqtt_topic_filter_valid(filters[i], flen)) return WM_ERR_INVAL;
        if (flen + 3 > MQTT_MAX_REMAINING - rem) return WM_ERR_TOOBIG;
        rem += flen + 3;
    }
    size_t total;
    /* The flags of SUBSCRIBE are fixed at 0b0010 [MQTT-3.8.1-1]. */
    unsigned char *w = begin(b, PKT_SUBSCRIBE << 4 | 0x02, rem, &total);
    if (!w) return WM_ERR_NOMEM;
    w = put_u16(w, packet_id);
    if (v5) w = put_u8(w, 0); /* no properties */
    for (size_t i = 0; i < n; i++) {
        w = put_bytes(w, filters[i], strlen(filters[i]));
        w = put_u8(w, (unsigned)qos); /* MQTT 5 options beyond the qos all 0 */
    }
    b->len += total;
    return WM_OK;
}

static enum wm_err empty_packet(struct buf *b, unsigned first)
{
    if (!b) return WM_ERR_INVAL;
    if (buf_reserve(b, 2) != WM_OK) return WM_ERR_NOMEM;
    b->data[b->len] = (unsigned char)first;
    b->data[b->len + 1] = 0;
    b->len += 2;
    return WM_OK;
}

enum wm_err mqtt_wire_pingreq(struct buf *b)
{
    return empty_packet(b, PKT_PINGREQ << 4);
}

enum wm_err mqtt_wire_disconnect(struct buf *b, int version)
{
    if (!version_ok(version)) return WM_ERR_INVAL;
    /* MQTT 5 allows the reason code and properties to be left out when the reason is 0. */
    return empty_packet(b, MQTT_DISCONNECT << 4);
}

/* ---- decoding ---- */

static const char *type_name(unsigned type)
{
    static const char *const names[16] = {
        "reserved type 0", "CONNECT",  "CONNACK",    "PUBLISH", "PUBACK",      "PUBREC",
        "PUBREL",          "PUBCOMP",  "SUBSCRIBE",  "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",
        "PINGREQ",         "PINGRESP", "DISCONNECT", "AUTH",
    };
    return names[type & 15];
}

enum prop_type { PT_NONE, PT_BYTE, PT_U16, PT_U32, PT_VARINT, PT_UTF8, PT_BINARY, PT_PAIR };

#define IN(t) (1u << (t))
#define ACKS (IN(MQTT_PUBACK) | IN(MQTT_PUBREC) | IN(MQTT_PUBREL) | IN(MQTT_PUBCOMP))

/* Every property MQTT 5 defines (2.2.2.2): its type, which packets may carry it (Will properties
 * left out: a client never receives them) and its name for log lines. */
static const struct {
    unsigned char type;
    uint16_t in;
    const char *name;
} props[] = {
    [0x01] = {PT_BYTE, IN(MQTT_PUBLISH), "Payload Format Indicator"},
    [0x02] = {PT_U32, IN(MQTT_PUBLISH), "Message Expiry Interval"},
    [0x03] = {PT_UTF8, IN(MQTT_PUBLISH), "Content Type"},
    [0x08] = {PT_UTF8, IN(MQTT_PUBLISH), "Response Topic"},
    [0x09] = {PT_BINARY, IN(MQTT_PUBLISH), "Correlation Data"},
    [0x0B] = {PT_VARINT, IN(MQTT_PUBLISH) | IN(PKT_SUBSCRIBE), "Subscription Identifier"},
    [0x11] = {PT_U32, IN(PKT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_DISCONNECT),
              "Session Expiry Interval"},
    [0x12] = {PT_UTF8, IN(MQTT_CONNACK), "Assigned Client Identifier"},
    [0x13] = {PT_U16, IN(MQTT_CONNACK), "Server Keep Alive"},
    [0x15] = {PT_UTF8, IN(PKT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_AUTH), "Authentication Method"},
    [0x16] = {PT_BINARY, IN(PKT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_AUTH), "Authentication Data"},
    [0x17] = {PT_BYTE, IN(PKT_CONNECT), "Request Problem Information"},
    [0x18] = {PT_U32, 0, "Will Delay Interval"},
    [0x19] = {PT_BYTE, IN(PKT_CONNECT), "Request Response Information"},
    [0x1A] = {PT_UTF8, IN(MQTT_CONNACK), "Response Information"},
    [0x1C] = {PT_UTF8, IN(MQTT_CONNACK) | IN(MQTT_DISCONNECT), "Server Reference"},
    [0x1F] = {PT_UTF8,
              IN(MQTT_CONNACK) | ACKS | IN(MQTT_SUBACK) | IN(MQTT_UNSUBACK) | IN(MQTT_DISCONNECT) |
                  IN(MQTT_AUTH),
              "Reason String"},
    [0x21] = {PT_U16, IN(PKT_CONNECT) | IN(MQTT_CONNACK), "Receive Maximum"},
    [0x22] = {PT_U16, IN(PKT_CONNECT) | IN(MQTT_CONNACK), "Topic Alias Maximum"},
    [0x23] = {PT_U16, IN(MQTT_PUBLISH), "Topic Alias"},
    [0x24] = {PT_BYTE, IN(MQTT_CONNACK), "Maximum QoS"},
    [0x25] = {PT_BYTE, IN(MQTT_CONNACK), "Retain Available"},
    [0x26] = {PT_PAIR, 0xFFFEu & ~IN(PKT_PINGREQ) & ~IN(MQTT_PINGRESP), "User Property"},
    [0x27] = {PT_U32, IN(PKT_CONNECT) | IN(MQTT_CONNACK), "Maximum Packet Size"},
    [0x28] = {PT_BYTE, IN(MQTT_CONNACK), "Wildcard Subscription Available"},
    [0x29] = {PT_BYTE, IN(MQTT_CONNACK), "Subscription Identifier Available"},
    [0x2A] = {PT_BYTE, IN(MQTT_CONNACK), "Shared Subscription Available"},
};
#define NPROPS (sizeof props / sizeof props[0])

/* The rest of one packet being parsed. */
struct parse {
    const unsigned char *p;
    size_t left;
    int version;
    unsigned type;
    char *why;
    size_t whylen;
};

/* Says why the packet is refused, after its type; false, for the caller to return. */
__attribute__((format(printf, 2, 3))) static bool fail(struct parse *s, const char *fmt, ...)
{
    if (!s->why || s->whylen == 0) return false;
    int n = snprintf(s->why, s->whylen, "%s: ", type_name(s->type));
    if (n < 0 || (size_t)n >= s->whylen) return false;
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(s->why + n, s->whylen - (size_t)n, fmt, ap) < 0) s->why[0] = '\0';
    va_end(ap);
    return false;
}

static bool take_u8(struct parse *s, unsigned *v, const char *what)
{
    if (s->left < 1) return fail(s, "%s missing", what);
    *v = s->p[0];
    s->p++, s->left--;
    return true;
}

static bool take_u16(struct parse *s, unsigned *v, const char *what)
{
    if (s->left < 2) return fail(s, "%s truncated (%zu of 2 bytes)", what, s->left);
    *v = (unsigned)s->p[0] << 8 | s->p[1];
    s->p += 2, s->left -= 2;
    return true;
}

static bool take_u32(struct parse *s, uint32_t *v, const char *what)
{
    if (s->left < 4) return fail(s, "%s truncated (%zu of 4 bytes)", what, s->left);
    *v = (uint32_t)s->p[0] << 24 | (uint32_t)s->p[1] << 16 | (uint32_t)s->p[2] << 8 | s->p[3];
    s->p += 4, s->left -= 4;
    return true;
}

/* Decodes a variable byte integer: 1 when whole, 0 when n bytes end it early, -1 when longer than
 * the four bytes MQTT allows. */
static int varint(const unsigned char *p, size_t n, uint32_t *v, size_t *size)
{
    uint32_t value = 0;
    for (size_t i = 0; i < 4; i++) {
        if (i >= n) return 0;
        value |= (uint32_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = value;
            *size = i + 1;
            return 1;
        }
    }
    return -1;
}

static bool take_varint(struct parse *s, uint32_t *v, const char *what)
{
    size_t size = 0;
    int rc = varint(s->p, s->left, v, &size);
    if (rc < 0) return fail(s, "%s: variable byte integer longer than 4 bytes", what);
    if (rc == 0) return fail(s, "%s truncated", what);
    s->p += size, s->left -= size;
    return true;
}

/* Two-byte length, then that many bytes, which must fit in what is left of the packet. */
static bool take_bytes(struct parse *s, const unsigned char **v, size_t *n, const char *what)
{
    unsigned len = 0;
    if (!take_u16(s, &len, what)) return false;
    if (len > s->left) return fail(s, "%s of %u bytes but only %zu left", what, len, s->left);
    *v = s->p;
    *n = len;
    s->p += len, s->left -= len;
    return true;
}

static bool take_string(struct parse *s, const unsigned char **v, size_t *n, const char *what)
{
    if (!take_bytes(s, v, n, what)) return false;
    if (!text_utf8_valid(*v, *n, TEXT_UTF8_NO_NUL))
        return fail(s, "%s is not valid UTF-8 or contains U+0000", what);
    return true;
}

static bool take_packet_id(struct parse *s, struct mqtt_packet *pk)
{
    unsigned id = 0;
    if (!take_u16(s, &id, "packet identifier")) return false;
    if (id == 0) return fail(s, "packet identifier 0");
    pk->packet_id = (uint16_t)id;
    return true;
}

/* One property value of the given type; *num gets integers, *str and *len the rest (a string
 * pair: its value, after the name is checked). */
static bool take_value(struct parse *s, unsigned type, const char *name, uint32_t *num,
                       const unsigned char **str, size_t *len)
{
    unsigned u = 0;
    switch (type) {
    case PT_BYTE:
        if (!take_u8(s, &u, name)) return false;
        *num = u;
        return true;
    case PT_U16:
        if (!take_u16(s, &u, name)) return false;
        *num = u;
        return true;
    case PT_U32:
        return take_u32(s, num, name);
    case PT_VARINT:
        return take_varint(s, num, name);
    case PT_UTF8:
        return take_string(s, str, len, name);
    case PT_BINARY:
        return take_bytes(s, str, len, name);
    case PT_PAIR:
        return take_string(s, str, len, name) && take_string(s, str, len, name);
    }
    return fail(s, "property %s of no known type", name);
}

/* Checks a received value where MQTT 5 restricts it and keeps the ones we use. */
static bool use_property(struct parse *s, struct mqtt_packet *pk, unsigned id, uint32_t num,
                         const unsigned char *str, size_t len)
{
    const char *name = props[id].name;
    if (props[id].type == PT_BYTE && num > 1)
        return fail(s, "property %s is %u, not 0 or 1", name, (unsigned)num);
    switch (id) {
    case 0x0B:
        if (num == 0) return fail(s, "property %s is 0", name);
        break;
    case 0x13:
        pk->server_keepalive_set = true;
        pk->server_keepalive_s = (uint16_t)num;
        break;
    case 0x1F:
        pk->reason_string = (const char *)str;
        pk->reason_string_len = len;
        break;
    case 0x21:
        if (num == 0) return fail(s, "property %s is 0", name);
        pk->receive_maximum = (uint16_t)num;
        break;
    case 0x23:
        if (num == 0) return fail(s, "property %s is 0", name);
        pk->topic_alias = (uint16_t)num;
        break;
    case 0x24:
        pk->maximum_qos = (uint8_t)num;
        break;
    case 0x27:
        if (num == 0) return fail(s, "property %s is 0", name);
        pk->maximum_packet_size = num;
        break;
    }
    return true;
}

/* An MQTT 5 property list: its variable byte length, then properties that must fill it exactly. */
static bool take_properties(struct parse *s, struct mqtt_packet *pk)
{
    uint32_t total = 0;
    if (!take_varint(s, &total, "property length")) return false;
    if (total > s->left)
        return fail(s, "properties of %u bytes but only %zu left", (unsigned)total, s->left);
    struct parse in = *s;
    in.left = total;
    s->p += total, s->left -= total;
    uint64_t seen = 0;
    while (in.left) {
        uint32_t id = 0;
        if (!take_varint(&in, &id, "property identifier")) return false;
        if (id >= NPROPS || props[id].type == PT_NONE)
            return fail(s, "undefined property identifier 0x%02X", (unsigned)id);
        const char *name = props[id].name;
        if (!(props[id].in & IN(s->type)))
            return fail(s, "property 0x%02X (%s) is not allowed here", (unsigned)id, name);
        /* Only User Property and Subscription Identifier may repeat (2.2.2.2, 3.3.2.3.8). */
        if (id != 0x26 && id != 0x0B) {
            if (seen & (uint64_t)1 << id)
                return fail(s, "property 0x%02X (%s) given twice", (unsigned)id, name);
            seen |= (uint64_t)1 << id;
        }
        uint32_t num = 0;
        const unsigned char *str = NULL;
        size_t len = 0;
        if (!take_value(&in, props[id].type, name, &num, &str, &len)) return false;
        if (!use_property(&in, pk, id, num, str, len)) return false;
    }
    return true;
}

static bool no_trailing(struct parse *s, const char *after)
{
    if (s->left) return fail(s, "trailing bytes after the %s (%zu)", after, s->left);
    return true;
}

static bool parse_connack(struct parse *s, struct mqtt_packet *pk)
{
    unsigned flags = 0, code = 0;
    /* The 3.1.1 layout: a broker that knows no MQTT 5 refuses it so. */
    bool old_layout = s->left == 2;
    if (s->version == MQTT_LEVEL_311 && !old_layout)
        return fail(s, "remaining length %zu, not 2", s->left);
    if (!take_u8(s, &flags, "acknowledge flags") || !take_u8(s, &code, "reason code")) return false;
    if (flags & 0xFE) return fail(s, "reserved acknowledge flags set (0x%02X)", flags);
    pk->session_present = flags & 1;
    pk->reason = (uint8_t)code;
    if (old_layout) {
        if (s->version == MQTT_LEVEL_5 && code == 0)
            return fail(s, "accepted an MQTT 5 connection in the MQTT 3.1.1 layout");
        return true;
    }
    return take_properties(s, pk) && no_trailing(s, "properties");
}

static bool parse_publish(struct parse *s, struct mqtt_packet *pk)
{
    const unsigned char *topic = NULL;
    size_t topic_len = 0;
    if (!take_string(s, &topic, &topic_len, "topic")) return false;
    for (size_t i = 0; i < topic_len; i++)
        if (topic[i] == '+' || topic[i] == '#') return fail(s, "wildcard in the topic name");
    pk->topic = (const char *)topic;
    pk->topic_len = topic_len;
    if (pk->qos > 0 && !take_packet_id(s, pk)) return false;
    if (s->version == MQTT_LEVEL_5 && !take_properties(s, pk)) return false;
    /* MQTT 5 sends an empty topic with a Topic Alias that stands for it (3.3.2.3.4). */
    if (topic_len == 0 && pk->topic_alias == 0) return fail(s, "empty topic name");
    pk->payload = s->p;
    pk->payload_len = s->left;
    s->p += s->left, s->left = 0;
    return true;
}

/* The MQTT 5 tail of acknowledgements, DISCONNECT and AUTH: a reason code and properties, each
 * of which may be left out (then 0 and none). */
static bool take_optional_reason(struct parse *s, struct mqtt_packet *pk)
{
    if (s->left == 0) return true;
    unsigned code = 0;
    if (!take_u8(s, &code, "reason code")) return false;
    pk->reason = (uint8_t)code;
    if (s->left == 0) return true;
    return take_properties(s, pk) && no_trailing(s, "properties");
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP: MQTT 5 may leave out the reason code (then 0) and, with it or
 * alone, the property length (then 0). */
static bool parse_ack(struct parse *s, struct mqtt_packet *pk)
{
    if (s->version == MQTT_LEVEL_311 && s->left != 2)
        return fail(s, "remaining length %zu, not 2", s->left);
    return take_packet_id(s, pk) && take_optional_reason(s, pk);
}

/* SUBACK and UNSUBACK; UNSUBACK carries no codes in 3.1.1. */
static bool parse_suback(struct parse *s, struct mqtt_packet *pk)
{
    bool v5 = s->version == MQTT_LEVEL_5;
    if (!v5 && s->type == MQTT_UNSUBACK && s->left != 2)
        return fail(s, "remaining length %zu, not 2", s->left);
    if (!take_packet_id(s, pk)) return false;
    if (v5 && !take_properties(s, pk)) return false;
    if (!v5 && s->type == MQTT_UNSUBACK) return true;
    if (s->left == 0) return fail(s, "no reason codes");
    pk->codes = s->p;
    pk->ncodes = s->left;
    s->p += s->left, s->left = 0;
    return true;
}

/* DISCONNECT and AUTH: reason code and property length may be left out, each then 0. */
static bool parse_reason_only(struct parse *s, struct mqtt_packet *pk)
{
    if (s->version == MQTT_LEVEL_311) {
        if (s->left) return fail(s, "remaining length %zu, not 0", s->left);
        return true;
    }
    return take_optional_reason(s, pk);
}

__attribute__((format(printf, 3, 4))) static void say(char *why, size_t whylen, const char *fmt,
                                                      ...)
{
    if (!why || whylen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(why, whylen, fmt, ap) < 0) why[0] = '\0';
    va_end(ap);
}

/* What the first byte alone tells: a type a client may receive, with the flags the spec fixes. */
static bool first_byte_ok(unsigned type, unsigned flags, int version, char *why, size_t whylen)
{
    switch (type) {
    case 0:
    case PKT_CONNECT:
    case PKT_SUBSCRIBE:
    case PKT_UNSUBSCRIBE:
    case PKT_PINGREQ:
        say(why, whylen, "%s: not a packet a server sends", type_name(type));
        return false;
    case MQTT_AUTH:
        if (version == MQTT_LEVEL_311) {
            say(why, whylen, "packet type 15 is reserved in MQTT 3.1.1");
            return false;
        }
        break;
    case MQTT_PUBLISH:
        if ((flags & 6) == 6) {
            say(why, whylen, "PUBLISH: QoS 3");
            return false;
        }
        if ((flags & 6) == 0 && (flags & 8)) {
            say(why, whylen, "PUBLISH: DUP set at QoS 0");
            return false;
        }
        return true;
    }
    unsigned want = type == MQTT_PUBREL ? 2 : 0;
    if (flags != want) {
        say(why, whylen, "%s: fixed header flags 0x%X, not 0x%X", type_name(type), flags, want);
        return false;
    }
    return true;
}

enum wm_err mqtt_wire_parse(const unsigned char *buf, size_t len, int version, size_t max_len,
                            struct mqtt_packet *p, size_t *used, char *why, size_t whylen)
{
    if (why && whylen) why[0] = '\0';
    if (used) *used = 0;
    if (!p || !used || (!buf && len) || !version_ok(version)) return WM_ERR_INVAL;
    if (len == 0) return WM_ERR_NOTFOUND;
    unsigned type = buf[0] >> 4, flags = buf[0] & 0x0Fu;
    if (!first_byte_ok(type, flags, version, why, whylen)) return WM_ERR_PROTOCOL;

    uint32_t rem;
    size_t size;
    int rc = varint(buf + 1, len - 1, &rem, &size);
    if (rc == 0) return WM_ERR_NOTFOUND;
    if (rc < 0) {
        say(why, whylen, "%s: remaining length longer than 4 bytes", type_name(type));
        return WM_ERR_PROTOCOL;
    }
    size_t total = 1 + size + rem;
    if (total > max_len) {
        *used = total;
        say(why, whylen, "%s of %zu bytes, over the limit of %zu", type_name(type), total, max_len);
        return WM_ERR_TOOBIG;
    }
    if (len < total) {
        *used = total;
        return WM_ERR_NOTFOUND;
    }

    struct mqtt_packet pk = {
        .type = (enum mqtt_type)type,
        .flags = (uint8_t)flags,
        .receive_maximum = 65535,
        .maximum_qos = 1,
    };
    struct parse s = {buf + 1 + size, rem, version, type, why, whylen};
    bool ok = false;
    switch (type) {
    case MQTT_CONNACK:
        ok = parse_connack(&s, &pk);
        break;
    case MQTT_PUBLISH:
        pk.dup = flags & 8;
        pk.qos = (int)(flags >> 1 & 3);
        pk.retain = flags & 1;
        ok = parse_publish(&s, &pk);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        ok = parse_ack(&s, &pk);
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        ok = parse_suback(&s, &pk);
        break;
    case MQTT_PINGRESP:
        ok = s.left == 0 || fail(&s, "remaining length %zu, not 0", s.left);
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        ok = parse_reason_only(&s, &pk);
        break;
    }
    if (!ok) return WM_ERR_PROTOCOL;
    *p = pk;
    *used = total;
    return WM_OK;
}

const char *mqtt_wire_connack_text(int version, uint8_t code)
{
    static const char *const v311[] = {
        "connection accepted", "unacceptable protocol version", "identifier rejected",
        "server unavailable",  "bad user name or password",     "not authorized",
    };
    /* A code below 0x80 but 0 under MQTT 5 comes from a CONNACK in the 3.1.1 layout. */
    if (version != MQTT_LEVEL_5 || (code > 0 && code < 0x80))
        return code < sizeof v311 / sizeof v311[0] ? v311[code] : "unknown return code";
    return mqtt_wire_reason_text(code);
}

const char *mqtt_wire_reason_text(uint8_t code)
{
    switch (code) {
    case 0x00:
        return "success";
    case 0x04:
        return "disconnect with will message";
    case 0x10:
        return "no matching subscribers";
    case 0x80:
        return "unspecified error";
    case 0x81:
        return "malformed packet";
    case 0x82:
        return "protocol error";
    case 0x83:
        return "implementation specific error";
    case 0x84:
        return "unsupported protocol version";
    case 0x85:
        return "client identifier not valid";
    case 0x86:
        return "bad user name or password";
    case 0x87:
        return "not authorized";
    case 0x88:
        return "server unavailable";
    case 0x89:
        return "server busy";
    case 0x8A:
        return "banned";
    case 0x8B:
        return "server shutting down";
    case 0x8C:
        return "bad authentication method";
    case 0x8D:
        return "keep alive timeout";
    case 0x8E:
        return "session taken over";
    case 0x8F:
        return "topic filter invalid";
    case 0x90:
        return "topic name invalid";
    case 0x91:
        return "packet identifier in use";
    case 0x92:
        return "packet identifier not found";
    case 0x93:
        return "receive maximum exceeded";
    case 0x94:
        return "topic alias invalid";
    case 0x95:
        return "packet too large";
    case 0x96:
        return "message rate too high";
    case 0x97:
        return "quota exceeded";
    case 0x98:
        return "administrative action";
    case 0x99:
        return "payload format invalid";
    case 0x9A:
        return "retain not supported";
    case 0x9B:
        return "QoS not supported";
    case 0x9C:
        return "use another server";
    case 0x9D:
        return "server moved";
    case 0x9E:
        return "shared subscriptions not supported";
    case 0x9F:
        return "connection rate exceeded";
    case 0xA0:
        return "maximum connect time";
    case 0xA1:
        return "subscription identifiers not supported";
    case 0xA2:
        return "wildcard subscriptions not supported";
    }
    return "unknown reason code";
}

bool mqtt_wire_refuses_version(uint8_t code)
{
    return code == 1 || code == 0x84;
}
