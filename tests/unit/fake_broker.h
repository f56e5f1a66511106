/* fake_broker.h: a scripted MQTT broker on loopback for unit tests of our client (mqtt.c), as
 * mosquitto tests its client library. It produces on demand what real brokers rarely or never
 * do (refusals, drops at a chosen moment, silence, malformed packets) and records every packet
 * of the conversation for the test to inspect afterwards.
 *
 * A script, a function of the test, runs in the broker's own thread and calls the blocking
 * steps below in order: fake_accept, fake_expect, fake_send_connack, fake_close... The first
 * step that fails (an unexpected packet, or fake_stop while it waits) records why in
 * fake_error() and makes every later step a no-op returning false, so a script reads straight
 * down without checking each call. Scripts never use the ASSERT macros (test.h counts are not
 * thread-safe): they drive the conversation; the test asserts on the transcript after
 * fake_stop. Header-only, since each unit test binary is built from one file. */
#ifndef WMESH_FAKE_BROKER_H
#define WMESH_FAKE_BROKER_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loopback.h"

#include "mqtt_wire.h"
#include "thread.h"

/* Packet types as on the wire (the high four bits of the first byte), and one pseudo type. */
#define FAKE_CLOSED 0 /* the client closed the connection (or reset it) */
#define FAKE_CONNECT 1
#define FAKE_CONNACK 2
#define FAKE_PUBLISH 3
#define FAKE_PUBACK 4
#define FAKE_SUBSCRIBE 8
#define FAKE_SUBACK 9
#define FAKE_PINGREQ 12
#define FAKE_PINGRESP 13
#define FAKE_DISCONNECT 14
#define FAKE_ANY (-1) /* for fake_count and fake_seen: every type */

#define FAKE_MAX_SEEN 512         /* transcript entries; more fails the script */
#define FAKE_MAX_IN (1024 * 1024) /* the largest packet the fake takes from the client */
#define FAKE_MAX_OUT 2048         /* the largest packet the fake builds (fake_send_raw: any) */

/* One entry of the transcript: a packet the client sent (from_broker false), which the fake
 * decodes in full, or one the fake sent, with the fields that identify it. Strings are
 * NUL-terminated and truncated to their arrays. */
struct fake_packet {
    int conn;         /* the connection it went over, counted from 1 */
    bool from_broker; /* sent by the fake */
    int type;         /* FAKE_CONNECT... or FAKE_CLOSED */
    uint8_t flags;    /* the low four bits of the first byte */
    size_t size;      /* bytes on the wire, fixed header included */
    /* CONNECT */
    int level; /* protocol level: MQTT_LEVEL_311 (4) or MQTT_LEVEL_5 */
    char client_id[64];
    char username[64];
    bool clean_start;
    uint16_t keepalive_s;
    uint32_t session_expiry_s; /* MQTT 5 properties; 0 when absent */
    uint16_t receive_maximum;
    uint32_t maximum_packet_size;
    /* PUBLISH; packet_id also of PUBACK, SUBSCRIBE and SUBACK */
    uint16_t packet_id;
    int qos;
    bool dup, retain;
    char topic[128];
    char content_type[64]; /* MQTT 5 property 0x03, "" when absent */
    uint16_t topic_alias;  /* MQTT 5 property 0x23, 0 when absent */
    size_t payload_len;
    unsigned char payload[256]; /* its first bytes */
    /* CONNACK, PUBACK, SUBACK (the first code), DISCONNECT: 0 when absent */
    uint8_t reason;
    /* SUBSCRIBE */
    int nfilters;
    char filter[128]; /* the first */
};

struct fake_broker;
typedef void (*fake_script_fn)(struct fake_broker *fb, void *arg);

struct fake_broker {
    char url[64]; /* "mqtt://127.0.0.1:PORT", for mqtt_options.url */
    fake_script_fn script;
    void *arg;
    pthread_t thread;
    bool stopped;
    int lfd;     /* listening on 127.0.0.1, port 0 */
    int wake[2]; /* fake_stop writes a byte here: every wait of the script then returns */
    /* Only the script's thread touches these while it runs (then the test, after the join). */
    int fd;        /* the current connection, -1 between connections */
    int conns;     /* connections accepted */
    int level;     /* of the current connection's CONNECT: the layout of what is sent */
    struct buf in; /* bytes read from the client, not yet decoded */
    /* Publishes received on this connection and not yet acknowledged, by packet id: what a
     * broker counts against the Receive Maximum it announced. */
    unsigned char unacked[65536 / 8];
    int inflight;
    int max_inflight; /* the most there ever were, over every connection */
    /* The Maximum Packet Size of this connection's CONNACK (0: none), and the packets the client
     * sent over the one announced to it, over every connection. */
    uint32_t maximum_packet_size;
    int oversize;
    bool failed;
    char error[256];
    /* Read by the test while the script runs, so under the lock. */
    pthread_mutex_t lock;
    bool done;
    int nseen;
    struct fake_packet seen[FAKE_MAX_SEEN];
};

/* ---- failures ---- */

/* Records the first failure of the script (later ones follow from it) and ends the script:
 * every later step returns false at once. Always returns false. */
static inline bool fake_fail(struct fake_broker *fb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline bool fake_fail(struct fake_broker *fb, const char *fmt, ...)
{
    if (fb->failed) return false;
    fb->failed = true;
    int n = snprintf(fb->error, sizeof fb->error, "connection %d: ", fb->conns);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof fb->error)
        vsnprintf(fb->error + n, sizeof fb->error - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static inline bool fake_failed(const struct fake_broker *fb)
{
    return fb->failed;
}

/* ---- the transcript ---- */

static inline const char *fake_type_name(int type)
{
    static const char *const names[16] = {
        "CLOSED",  "CONNECT",  "CONNACK",    "PUBLISH", "PUBACK",      "PUBREC",
        "PUBREL",  "PUBCOMP",  "SUBSCRIBE",  "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",
        "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
    };
    return type >= 0 && type < 16 ? names[type] : "?";
}

static inline bool fake_record(struct fake_broker *fb, struct fake_packet *p)
{
    p->conn = fb->conns;
    pthread_mutex_lock(&fb->lock);
    bool room = fb->nseen < FAKE_MAX_SEEN;
    if (room) fb->seen[fb->nseen++] = *p;
    pthread_mutex_unlock(&fb->lock);
    return room || fake_fail(fb, "transcript full (%d entries)", FAKE_MAX_SEEN);
}

/* Packets of type (FAKE_ANY: all) the client has sent so far. Thread-safe. */
static inline int fake_count(struct fake_broker *fb, int type)
{
    int n = 0;
    pthread_mutex_lock(&fb->lock);
    for (int i = 0; i < fb->nseen; i++)
        n += !fb->seen[i].from_broker && (type == FAKE_ANY || fb->seen[i].type == type);
    pthread_mutex_unlock(&fb->lock);
    return n;
}

/* The i-th packet (from 0) of type the client sent, or NULL. Only after fake_stop: the pointer
 * goes into the transcript, which the script's thread appends to. */
static inline const struct fake_packet *fake_seen(const struct fake_broker *fb, int type, int i)
{
    for (int k = 0; k < fb->nseen; k++) {
        const struct fake_packet *p = &fb->seen[k];
        if (p->from_broker || (type != FAKE_ANY && p->type != type)) continue;
        if (i-- == 0) return p;
    }
    return NULL;
}

/* Prints the whole conversation, both ways, one packet a line: for a test that failed. */
static inline void fake_dump(struct fake_broker *fb, FILE *f)
{
    pthread_mutex_lock(&fb->lock);
    fprintf(f, "  fake broker transcript (%d entries):\n", fb->nseen);
    for (int i = 0; i < fb->nseen; i++) {
        const struct fake_packet *p = &fb->seen[i];
        fprintf(f, "    conn %d %s %s", p->conn, p->from_broker ? "broker->" : "client->",
                fake_type_name(p->type));
        if (p->type == FAKE_CONNECT)
            fprintf(f, " level %d id \"%s\" clean %d keepalive %u", p->level, p->client_id,
                    p->clean_start, (unsigned)p->keepalive_s);
        if (p->type == FAKE_PUBLISH) fprintf(f, " \"%s\" qos %d dup %d", p->topic, p->qos, p->dup);
        if (p->packet_id) fprintf(f, " id %u", (unsigned)p->packet_id);
        if (p->reason) fprintf(f, " reason 0x%02x", (unsigned)p->reason);
        if (p->type != FAKE_CLOSED) fprintf(f, " (%zu bytes)", p->size);
        fputc('\n', f);
    }
    pthread_mutex_unlock(&fb->lock);
}

/* ---- waiting ---- */

static inline int64_t fake_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum fake_wait { FAKE_READY, FAKE_TIMEOUT, FAKE_STOPPED };

/* Waits until fd is readable, timeout_ms pass (-1: no limit) or fake_stop is called. */
static inline enum fake_wait fake_wait_fd(struct fake_broker *fb, int fd, int timeout_ms)
{
    int64_t deadline = fake_now_ms() + timeout_ms;
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = fb->wake[0], .events = POLLIN}};
        int64_t left = timeout_ms < 0 ? -1 : deadline - fake_now_ms();
        if (timeout_ms >= 0 && left < 0) left = 0;
        int n = poll(p, 2, (int)left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || p[1].revents) return FAKE_STOPPED;
        if (p[0].revents) return FAKE_READY;
        if (timeout_ms >= 0 && fake_now_ms() >= deadline) return FAKE_TIMEOUT;
    }
}

/* ---- decoding what the client sends ---- */

struct fake_cursor {
    const unsigned char *p;
    size_t left;
    bool bad; /* read past the end, or a value the fake does not know */
};

static inline unsigned fake_get_u8(struct fake_cursor *c)
{
    if (c->left < 1) {
        c->bad = true;
        return 0;
    }
    c->left--;
    return *c->p++;
}

static inline unsigned fake_get_u16(struct fake_cursor *c)
{
    unsigned hi = fake_get_u8(c);
    return hi << 8 | fake_get_u8(c);
}

static inline uint32_t fake_get_u32(struct fake_cursor *c)
{
    uint32_t hi = fake_get_u16(c);
    return hi << 16 | fake_get_u16(c);
}

static inline uint32_t fake_get_varint(struct fake_cursor *c)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned b = fake_get_u8(c);
        v |= (uint32_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) return v;
    }
    c->bad = true;
    return 0;
}

/* A two-byte length and its bytes, copied into out (truncated, NUL-terminated; out may be
 * NULL). */
static inline void fake_get_string(struct fake_cursor *c, char *out, size_t cap)
{
    size_t n = fake_get_u16(c);
    if (n > c->left) {
        c->bad = true;
        n = c->left;
    }
    if (out && cap) {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(out, c->p, k);
        out[k] = '\0';
    }
    c->p += n;
    c->left -= n;
}

/* MQTT 5 properties: those the client may send are kept, any other marks the packet bad, so
 * that a client sending something new shows up in the tests. */
static inline void fake_get_properties(struct fake_cursor *c, struct fake_packet *p)
{
    uint32_t len = fake_get_varint(c);
    if (len > c->left) {
        c->bad = true;
        return;
    }
    struct fake_cursor props = {c->p, len, false};
    c->p += len;
    c->left -= len;
    while (props.left > 0 && !props.bad) {
        switch (fake_get_varint(&props)) {
        case 0x03:
            fake_get_string(&props, p->content_type, sizeof p->content_type);
            break;
        case 0x11:
            p->session_expiry_s = fake_get_u32(&props);
            break;
        case 0x21:
            p->receive_maximum = (uint16_t)fake_get_u16(&props);
            break;
        case 0x23:
            p->topic_alias = (uint16_t)fake_get_u16(&props);
            break;
        case 0x27:
            p->maximum_packet_size = fake_get_u32(&props);
            break;
        default:
            props.bad = true;
        }
    }
    c->bad |= props.bad;
}

/* Fills p from one whole packet the client sent (body: after the fixed header). False when it
 * is malformed or of a type a client never sends. */
static inline bool fake_decode(struct fake_broker *fb, unsigned first, const unsigned char *body,
                               size_t len, struct fake_packet *p)
{
    struct fake_cursor c = {body, len, false};
    p->type = (int)(first >> 4);
    p->flags = (uint8_t)(first & 0x0F);
    bool v5 = fb->level == MQTT_LEVEL_5;
    switch (p->type) {
    case FAKE_CONNECT: {
        char name[8];
        fake_get_string(&c, name, sizeof name);
        p->level = (int)fake_get_u8(&c);
        unsigned flags = fake_get_u8(&c);
        p->clean_start = flags & 0x02;
        p->keepalive_s = (uint16_t)fake_get_u16(&c);
        if (p->level == MQTT_LEVEL_5) fake_get_properties(&c, p);
        fake_get_string(&c, p->client_id, sizeof p->client_id);
        if (flags & 0x04) c.bad = true; /* a will: the client never sets one */
        if (flags & 0x80) fake_get_string(&c, p->username, sizeof p->username);
        if (flags & 0x40) fake_get_string(&c, NULL, 0);
        if (strcmp(name, "MQTT") != 0) c.bad = true;
        break;
    }
    case FAKE_PUBLISH:
        p->dup = p->flags & 0x08;
        p->qos = (p->flags >> 1) & 3;
        p->retain = p->flags & 0x01;
        fake_get_string(&c, p->topic, sizeof p->topic);
        if (p->qos) p->packet_id = (uint16_t)fake_get_u16(&c);
        if (v5) fake_get_properties(&c, p);
        if (c.bad) break;
        p->payload_len = c.left;
        memcpy(p->payload, c.p, c.left < sizeof p->payload ? c.left : sizeof p->payload);
        c.left = 0;
        break;
    case FAKE_PUBACK:
        p->packet_id = (uint16_t)fake_get_u16(&c);
        if (v5 && c.left) p->reason = (uint8_t)fake_get_u8(&c);
        if (v5 && c.left) fake_get_properties(&c, p);
        break;
    case FAKE_SUBSCRIBE:
        p->packet_id = (uint16_t)fake_get_u16(&c);
        if (v5) fake_get_properties(&c, p);
        while (c.left > 0 && !c.bad) {
            fake_get_string(&c, p->nfilters ? NULL : p->filter, sizeof p->filter);
            fake_get_u8(&c); /* options */
            p->nfilters++;
        }
        break;
    case FAKE_PINGREQ:
        break;
    case FAKE_DISCONNECT:
        if (v5 && c.left) p->reason = (uint8_t)fake_get_u8(&c);
        if (v5 && c.left) fake_get_properties(&c, p);
        break;
    default:
        return false;
    }
    return !c.bad && c.left == 0;
}

enum fake_read { FAKE_READ_PACKET, FAKE_READ_CLOSED, FAKE_READ_NOTHING };

/* The length of the fixed header at the start of in, 0 while incomplete; sets *rem. False when
 * the remaining length is malformed. */
static inline bool fake_header(const struct buf *in, size_t *head, size_t *rem)
{
    *head = *rem = 0;
    for (size_t i = 1; i < 5 && i < in->len; i++) {
        *rem |= (size_t)(in->data[i] & 0x7F) << (7 * (i - 1));
        if (!(in->data[i] & 0x80)) {
            *head = i + 1;
            return true;
        }
    }
    return in->len < 5;
}

/* Takes the packet at the start of fb->in (whole): decodes it into *p, records it, counts it. */
static inline bool fake_take(struct fake_broker *fb, size_t head, size_t rem, struct fake_packet *p,
                             const char *what)
{
    unsigned first = fb->in.data[0];
    if (!fake_decode(fb, first, fb->in.data + head, rem, p))
        return fake_fail(fb, "waiting for %s: a malformed %s", what,
                         fake_type_name((int)(first >> 4)));
    p->size = head + rem;
    buf_consume(&fb->in, head + rem);
    if (fb->maximum_packet_size && p->size > fb->maximum_packet_size) fb->oversize++;
    if (p->type == FAKE_CONNECT) fb->level = p->level;
    uint16_t id = p->packet_id;
    if (p->type == FAKE_PUBLISH && p->qos > 0 && !(fb->unacked[id / 8] & (1u << (id % 8)))) {
        fb->unacked[id / 8] |= (unsigned char)(1u << (id % 8));
        if (++fb->inflight > fb->max_inflight) fb->max_inflight = fb->inflight;
    }
    return fake_record(fb, p);
}

/* Reads the next packet of the connection, or its end, into *p (recorded either way; at the end
 * fb->fd is closed). FAKE_READ_NOTHING when timeout_ms passed first (-1: no limit; not a
 * failure, the caller decides) or the script failed; what names the step for the message. */
static inline enum fake_read fake_read(struct fake_broker *fb, struct fake_packet *p,
                                       int timeout_ms, const char *what)
{
    memset(p, 0, sizeof *p);
    if (fb->failed) return FAKE_READ_NOTHING;
    if (fb->fd < 0) {
        fake_fail(fb, "waiting for %s with no connection", what);
        return FAKE_READ_NOTHING;
    }
    for (;;) {
        size_t head, rem;
        if (!fake_header(&fb->in, &head, &rem)) {
            fake_fail(fb, "waiting for %s: a remaining length over 4 bytes", what);
            return FAKE_READ_NOTHING;
        }
        if (head && rem > FAKE_MAX_IN) {
            fake_fail(fb, "waiting for %s: a packet of %zu bytes", what, rem);
            return FAKE_READ_NOTHING;
        }
        if (head && fb->in.len >= head + rem)
            return fake_take(fb, head, rem, p, what) ? FAKE_READ_PACKET : FAKE_READ_NOTHING;
        enum fake_wait w = fake_wait_fd(fb, fb->fd, timeout_ms);
        if (w == FAKE_STOPPED) fake_fail(fb, "stopped while waiting for %s", what);
        if (w != FAKE_READY) return FAKE_READ_NOTHING;
        if (buf_reserve(&fb->in, 4096) != WM_OK) {
            fake_fail(fb, "out of memory");
            return FAKE_READ_NOTHING;
        }
        ssize_t n = recv(fb->fd, fb->in.data + fb->in.len, fb->in.cap - fb->in.len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { /* the end of the stream, or a reset: the client is gone either way */
            close(fb->fd);
            fb->fd = -1;
            fb->in.len = 0;
            p->type = FAKE_CLOSED;
            return fake_record(fb, p) ? FAKE_READ_CLOSED : FAKE_READ_NOTHING;
        }
        fb->in.len += (size_t)n;
    }
}

/* ---- steps of a script: receiving ---- */

/* Waits for the next connection; one still open is closed first (as by fake_reset). */
static inline bool fake_accept(struct fake_broker *fb)
{
    if (fb->failed) return false;
    if (fb->fd >= 0) close(fb->fd);
    fb->fd = -1;
    if (fake_wait_fd(fb, fb->lfd, -1) != FAKE_READY)
        return fake_fail(fb, "stopped while waiting for connection %d", fb->conns + 1);
    fb->fd = accept4(fb->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fb->fd < 0) return fake_fail(fb, "accept: %s", strerror(errno));
    /* Packets sent one after the other must not wait for the client's delayed ACK. */
    int one = 1;
    setsockopt(fb->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fb->conns++;
    fb->level = 0;
    fb->maximum_packet_size = 0;
    fb->in.len = 0;
    memset(fb->unacked, 0, sizeof fb->unacked);
    fb->inflight = 0;
    return true;
}

/* The next packet the client sends must be of type; it is recorded and copied to *out (may be
 * NULL; zeroed when the step fails, so that later steps may read it). A CONNECT sets the layout
 * of what the fake sends on this connection. */
static inline bool fake_expect(struct fake_broker *fb, int type, struct fake_packet *out)
{
    struct fake_packet p;
    const char *what = fake_type_name(type);
    bool ok = fake_read(fb, &p, -1, what) == FAKE_READ_PACKET;
    if (ok && p.type != type)
        ok = fake_fail(fb, "expected %s, got %s", what, fake_type_name(p.type));
    if (!ok) memset(&p, 0, sizeof p);
    if (out) *out = p;
    return ok;
}

/* The next packet must be a PUBLISH on topic (NULL: any); as fake_expect otherwise. */
static inline bool fake_expect_publish(struct fake_broker *fb, const char *topic,
                                       struct fake_packet *out)
{
    struct fake_packet p;
    bool ok = fake_expect(fb, FAKE_PUBLISH, &p);
    if (ok && topic && strcmp(p.topic, topic) != 0)
        ok = fake_fail(fb, "expected a PUBLISH on %s, got one on %s", topic, p.topic);
    if (out) *out = p;
    return ok;
}

/* The next packet must be a PUBACK of packet_id. */
static inline bool fake_expect_puback(struct fake_broker *fb, uint16_t packet_id)
{
    struct fake_packet p;
    if (!fake_expect(fb, FAKE_PUBACK, &p)) return false;
    if (p.packet_id != packet_id)
        return fake_fail(fb, "expected a PUBACK of %u, got one of %u", (unsigned)packet_id,
                         (unsigned)p.packet_id);
    return true;
}

/* Any next packet, within timeout_ms (-1: no limit): its type (into *out, may be NULL),
 * FAKE_CLOSED when the client closed the connection, -1 when none came in time (not a failure:
 * the script decides) or the script failed. */
static inline int fake_next(struct fake_broker *fb, struct fake_packet *out, int timeout_ms)
{
    struct fake_packet p;
    if (fake_read(fb, &p, timeout_ms, "any packet") == FAKE_READ_NOTHING) return -1;
    if (out) *out = p;
    return p.type;
}

/* True when the client sends nothing for ms; what it sends is left for the next step. For
 * safety checks (the client must not send more now), never for waiting on the client. */
static inline bool fake_quiet(struct fake_broker *fb, int ms)
{
    if (fb->failed || fb->fd < 0) return false;
    if (fb->in.len > 0) return false;
    enum fake_wait w = fake_wait_fd(fb, fb->fd, ms);
    if (w == FAKE_STOPPED) return fake_fail(fb, "stopped while watching the client keep quiet");
    return w == FAKE_TIMEOUT;
}

/* Waits for the client to close the connection. What it sends first is recorded (the test may
 * count it); the close itself too, as FAKE_CLOSED. */
static inline bool fake_expect_close(struct fake_broker *fb)
{
    struct fake_packet p;
    enum fake_read got;
    while ((got = fake_read(fb, &p, -1, "the client to close")) == FAKE_READ_PACKET)
        continue;
    return got == FAKE_READ_CLOSED;
}

/* ---- steps of a script: sending ---- */

/* A packet being built: bytes past the end are dropped and the packet refused. */
struct fake_out {
    unsigned char b[FAKE_MAX_OUT];
    size_t n;
    bool full;
};

static inline void fake_put(struct fake_out *o, const void *p, size_t n)
{
    if (n > sizeof o->b - o->n) {
        o->full = true;
        return;
    }
    if (n) memcpy(o->b + o->n, p, n); /* p may be NULL then (an empty payload) */
    o->n += n;
}

static inline void fake_put_u8(struct fake_out *o, unsigned v)
{
    unsigned char b = (unsigned char)v;
    fake_put(o, &b, 1);
}

static inline void fake_put_u16(struct fake_out *o, unsigned v)
{
    fake_put_u8(o, v >> 8);
    fake_put_u8(o, v & 0xFF);
}

static inline void fake_put_u32(struct fake_out *o, uint32_t v)
{
    fake_put_u16(o, v >> 16);
    fake_put_u16(o, v & 0xFFFF);
}

static inline void fake_put_varint(struct fake_out *o, size_t v)
{
    do {
        unsigned b = v & 0x7F;
        v >>= 7;
        fake_put_u8(o, v ? b | 0x80 : b);
    } while (v);
}

static inline void fake_put_string(struct fake_out *o, const char *s)
{
    size_t n = strlen(s);
    fake_put_u16(o, (unsigned)n);
    fake_put(o, s, n);
}

static inline void fake_put_prop_u8(struct fake_out *o, unsigned id, unsigned v)
{
    fake_put_u8(o, id);
    fake_put_u8(o, v);
}

static inline void fake_put_prop_u16(struct fake_out *o, unsigned id, unsigned v)
{
    fake_put_u8(o, id);
    fake_put_u16(o, v);
}

static inline void fake_put_prop_u32(struct fake_out *o, unsigned id, uint32_t v)
{
    fake_put_u8(o, id);
    fake_put_u32(o, v);
}

static inline void fake_put_prop_string(struct fake_out *o, unsigned id, const char *s)
{
    fake_put_u8(o, id);
    fake_put_string(o, s);
}

/* MQTT 5 properties (built apart, since their length comes first). */
static inline void fake_put_properties(struct fake_out *o, const struct fake_out *props)
{
    fake_put_varint(o, props->n);
    fake_put(o, props->b, props->n);
    o->full |= props->full;
}

/* Sends bytes as they are: for malformed packets. Not recorded (the test knows them). */
static inline bool fake_send_raw(struct fake_broker *fb, const void *bytes, size_t n)
{
    if (fb->failed) return false;
    if (fb->fd < 0) return fake_fail(fb, "sending with no connection");
    const unsigned char *p = bytes;
    while (n > 0) {
        ssize_t w = send(fb->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return fake_fail(fb, "send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Sends one packet: fixed header byte first, then body; recorded as *rec says. */
static inline bool fake_send_packet(struct fake_broker *fb, unsigned first,
                                    const struct fake_out *body, struct fake_packet *rec)
{
    if (fb->failed) return false;
    struct fake_out pkt = {.n = 0};
    fake_put_u8(&pkt, first);
    fake_put_varint(&pkt, body->n);
    fake_put(&pkt, body->b, body->n);
    if (pkt.full || body->full) return fake_fail(fb, "a packet over %d bytes", FAKE_MAX_OUT);
    rec->from_broker = true;
    rec->type = (int)(first >> 4);
    rec->flags = (uint8_t)(first & 0x0F);
    rec->size = pkt.n;
    return fake_send_raw(fb, pkt.b, pkt.n) && fake_record(fb, rec);
}

struct fake_connack {
    uint8_t reason; /* 3.1.1 return code or MQTT 5 reason code */
    bool session_present;
    /* The layout: 0 for that of the CONNECT's level; MQTT_LEVEL_311 to answer an MQTT 5
     * CONNECT as a broker that knows only 3.1.1 does. */
    int level;
    /* MQTT 5 properties, sent when nonzero (set) */
    uint16_t receive_maximum;
    uint32_t maximum_packet_size; /* packets over it are counted in fb->oversize */
    bool server_keepalive_set;    /* Server Keep Alive, 0 included */
    uint16_t server_keepalive_s;
    bool maximum_qos_set; /* Maximum QoS (0 or 1) */
    uint8_t maximum_qos;
    const char *reason_string;
};

/* Answers the CONNECT; a (may be NULL: success) says how. */
static inline bool fake_send_connack(struct fake_broker *fb, const struct fake_connack *a)
{
    static const struct fake_connack success;
    if (!a) a = &success;
    struct fake_out body = {.n = 0}, props = {.n = 0};
    fake_put_u8(&body, a->session_present ? 1 : 0);
    fake_put_u8(&body, a->reason);
    if ((a->level ? a->level : fb->level) == MQTT_LEVEL_5) {
        if (a->receive_maximum) fake_put_prop_u16(&props, 0x21, a->receive_maximum);
        if (a->maximum_packet_size) fake_put_prop_u32(&props, 0x27, a->maximum_packet_size);
        if (a->server_keepalive_set) fake_put_prop_u16(&props, 0x13, a->server_keepalive_s);
        if (a->maximum_qos_set) fake_put_prop_u8(&props, 0x24, a->maximum_qos);
        if (a->reason_string) fake_put_prop_string(&props, 0x1F, a->reason_string);
        fake_put_properties(&body, &props);
        fb->maximum_packet_size = a->maximum_packet_size;
    }
    struct fake_packet rec = {.reason = a->reason};
    return fake_send_packet(fb, FAKE_CONNACK << 4, &body, &rec);
}

/* Acknowledges a publish with a reason code (MQTT 5; 3.1.1 has none and ignores it) and an
 * optional reason string. */
static inline bool fake_send_puback(struct fake_broker *fb, uint16_t packet_id, uint8_t reason,
                                    const char *reason_string)
{
    struct fake_out body = {.n = 0}, props = {.n = 0};
    fake_put_u16(&body, packet_id);
    if (fb->level == MQTT_LEVEL_5 && (reason || reason_string)) {
        fake_put_u8(&body, reason);
        if (reason_string) fake_put_prop_string(&props, 0x1F, reason_string);
        fake_put_properties(&body, &props);
    }
    struct fake_packet rec = {.packet_id = packet_id, .reason = reason};
    if (fb->unacked[packet_id / 8] & (1u << (packet_id % 8))) {
        fb->unacked[packet_id / 8] &= (unsigned char)~(1u << (packet_id % 8));
        fb->inflight--;
    }
    return fake_send_packet(fb, FAKE_PUBACK << 4, &body, &rec);
}

/* Acknowledges a publish the client sent, with success. */
static inline bool fake_ack(struct fake_broker *fb, const struct fake_packet *publish)
{
    return fake_send_puback(fb, publish->packet_id, 0, NULL);
}

struct fake_publish {
    const char *topic;
    const void *payload;
    size_t len;
    int qos; /* any of 0..3: the client asked for at most 1 */
    bool dup, retain;
    uint16_t packet_id;   /* sent when qos > 0 */
    uint16_t topic_alias; /* MQTT 5 property 0x23 when nonzero: the client never allows one */
};

/* Sends a message to the client. */
static inline bool fake_send_publish(struct fake_broker *fb, const struct fake_publish *m)
{
    struct fake_out body = {.n = 0}, props = {.n = 0};
    fake_put_string(&body, m->topic);
    if (m->qos) fake_put_u16(&body, m->packet_id);
    if (fb->level == MQTT_LEVEL_5) {
        if (m->topic_alias) fake_put_prop_u16(&props, 0x23, m->topic_alias);
        fake_put_properties(&body, &props);
    }
    fake_put(&body, m->payload, m->len);
    unsigned first = FAKE_PUBLISH << 4 | (m->dup ? 0x08u : 0) | (unsigned)(m->qos & 3) << 1 |
                     (m->retain ? 1u : 0);
    struct fake_packet rec = {
        .packet_id = m->packet_id, .qos = m->qos, .dup = m->dup, .retain = m->retain};
    snprintf(rec.topic, sizeof rec.topic, "%s", m->topic);
    return fake_send_packet(fb, first, &body, &rec);
}

/* Answers a SUBSCRIBE: one code for each of its filters. */
static inline bool fake_send_suback(struct fake_broker *fb, const struct fake_packet *subscribe,
                                    uint8_t code)
{
    struct fake_out body = {.n = 0}, props = {.n = 0};
    fake_put_u16(&body, subscribe->packet_id);
    if (fb->level == MQTT_LEVEL_5) fake_put_properties(&body, &props);
    for (int i = 0; i < subscribe->nfilters; i++)
        fake_put_u8(&body, code);
    struct fake_packet rec = {.packet_id = subscribe->packet_id, .reason = code};
    return fake_send_packet(fb, FAKE_SUBACK << 4, &body, &rec);
}

static inline bool fake_send_pingresp(struct fake_broker *fb)
{
    struct fake_out body = {.n = 0};
    struct fake_packet rec = {.type = FAKE_PINGRESP};
    return fake_send_packet(fb, FAKE_PINGRESP << 4, &body, &rec);
}

/* A server DISCONNECT (MQTT 5; under 3.1.1, which has none, the two bytes E0 00). */
static inline bool fake_send_disconnect(struct fake_broker *fb, uint8_t reason,
                                        const char *reason_string)
{
    struct fake_out body = {.n = 0}, props = {.n = 0};
    if (fb->level == MQTT_LEVEL_5) {
        fake_put_u8(&body, reason);
        if (reason_string) fake_put_prop_string(&props, 0x1F, reason_string);
        fake_put_properties(&body, &props);
    }
    struct fake_packet rec = {.reason = reason};
    return fake_send_packet(fb, FAKE_DISCONNECT << 4, &body, &rec);
}

/* A new connection taken up to the point where publishes flow: accepts it, expects its
 * CONNECT and answers with ack (NULL: success). */
static inline bool fake_connect(struct fake_broker *fb, const struct fake_connack *ack)
{
    return fake_accept(fb) && fake_expect(fb, FAKE_CONNECT, NULL) && fake_send_connack(fb, ack);
}

/* Ends the connection as a broker that goes away does, without a DISCONNECT: the client reads
 * what was sent before, then the end of the stream. Waits for the client's own close (recording
 * what it sends meanwhile), so that the next fake_accept takes a new connection. */
static inline bool fake_close(struct fake_broker *fb)
{
    if (fb->failed) return false;
    if (fb->fd < 0) return fake_fail(fb, "closing with no connection");
    shutdown(fb->fd, SHUT_WR);
    return fake_expect_close(fb);
}

/* Resets the connection (RST): the client's next read or write fails with ECONNRESET. Anything
 * sent just before may be lost, as with a broker that crashed. */
static inline bool fake_reset(struct fake_broker *fb)
{
    if (fb->failed) return false;
    if (fb->fd < 0) return fake_fail(fb, "resetting with no connection");
    struct linger now = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fb->fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
    close(fb->fd);
    fb->fd = -1;
    return true;
}

/* ---- the test's side ---- */

static inline void *fake_main(void *arg)
{
    struct fake_broker *fb = arg;
    fb->script(fb, fb->arg);
    pthread_mutex_lock(&fb->lock);
    fb->done = true;
    pthread_mutex_unlock(&fb->lock);
    return NULL;
}

/* Listens on a free port of 127.0.0.1 and runs script(fb, arg) in a thread of its own. The
 * caller owns the broker (fake_free). NULL on failure. */
static inline struct fake_broker *fake_start(fake_script_fn script, void *arg)
{
    struct fake_broker *fb = calloc(1, sizeof *fb);
    if (!fb) return NULL;
    fb->script = script;
    fb->arg = arg;
    fb->fd = -1;
    fb->wake[0] = fb->wake[1] = -1;
    pthread_mutex_init(&fb->lock, NULL);
    unsigned port = 0;
    if ((fb->lfd = listen_loopback(16, &port)) < 0 || pipe2(fb->wake, O_CLOEXEC) != 0) goto fail;
    snprintf(fb->url, sizeof fb->url, "mqtt://127.0.0.1:%u", port);
    if (thread_start(&fb->thread, "fake-broker", fake_main, fb) != WM_OK) goto fail;
    return fb;
fail:
    if (fb->lfd >= 0) close(fb->lfd);
    if (fb->wake[0] >= 0) close(fb->wake[0]), close(fb->wake[1]);
    pthread_mutex_destroy(&fb->lock);
    free(fb);
    return NULL;
}

/* Whether the script has returned (finished or failed). Thread-safe. */
static inline bool fake_done(struct fake_broker *fb)
{
    pthread_mutex_lock(&fb->lock);
    bool done = fb->done;
    pthread_mutex_unlock(&fb->lock);
    return done;
}

/* Ends the script (a step still waiting fails, saying what it waited for) and joins its
 * thread; the connection and the listening socket are closed. Then the transcript, fake_error
 * and the counts in fb (conns, max_inflight, oversize) are the test's to read. Calling it
 * again does nothing. */
static inline void fake_stop(struct fake_broker *fb)
{
    if (!fb || fb->stopped) return;
    fb->stopped = true;
    if (write(fb->wake[1], "x", 1) != 1) perror("fake_stop");
    pthread_join(fb->thread, NULL);
    if (fb->fd >= 0) close(fb->fd);
    fb->fd = -1;
    close(fb->lfd);
    fb->lfd = -1;
}

/* The first failure of the script, "" when none: after fake_stop, or once fake_done() (whose
 * lock orders the script's writes before it). */
static inline const char *fake_error(const struct fake_broker *fb)
{
    return fb->error;
}

/* Stops the broker if it runs, frees *fbp and sets it to NULL. */
static inline void fake_free(struct fake_broker **fbp)
{
    if (!fbp || !*fbp) return;
    struct fake_broker *fb = *fbp;
    fake_stop(fb);
    close(fb->wake[0]);
    close(fb->wake[1]);
    buf_free(&fb->in);
    pthread_mutex_destroy(&fb->lock);
    free(fb);
    *fbp = NULL;
}

#endif
