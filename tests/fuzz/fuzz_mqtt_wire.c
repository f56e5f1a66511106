/* fuzz_mqtt_wire.c: libFuzzer harness: any bytes from a broker parse as a stream of packets or
 * fail cleanly, in MQTT 3.1.1 and 5, with the same result whether they come whole or in pieces;
 * what a packet borrows lies inside it, and a prefix of it only asks for more. The encoders,
 * given fields taken from the input, build packets that parse back (or are well-formed, for the
 * ones a client never receives) and agree with the parser on which topics are valid. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_wire.h"

#define MAX_LEN 4096 /* small enough for the fuzzer to reach WM_ERR_TOOBIG */
#define MAX_PACKETS 256

static void check(bool ok)
{
    if (!ok) abort();
}

/* p..p+n lies within the packet at start, of used bytes. */
static bool inside(const void *p, size_t n, const unsigned char *start, size_t used)
{
    const unsigned char *q = p;
    return q >= start && q <= start + used && n <= (size_t)(start + used - q);
}

static size_t header_size(const unsigned char *pkt)
{
    size_t n = 2;
    while (pkt[n - 1] & 0x80)
        n++;
    return n;
}

/* What a whole, accepted packet must satisfy. */
static void check_packet(const struct mqtt_packet *pk, const unsigned char *pkt, size_t used,
                         int version)
{
    check(used >= 2 && pk->type == pkt[0] >> 4 && pk->flags == (pkt[0] & 15));
    size_t head = header_size(pkt);
    check(head <= 5 && head <= used);
    check(!pk->topic || inside(pk->topic, pk->topic_len, pkt, used));
    check(!pk->payload || inside(pk->payload, pk->payload_len, pkt, used));
    check(!pk->reason_string || inside(pk->reason_string, pk->reason_string_len, pkt, used));
    check(!pk->codes || inside(pk->codes, pk->ncodes, pkt, used));
    check(pk->maximum_qos <= 1 && pk->receive_maximum > 0);
    if (pk->type == MQTT_PUBLISH) {
        check(pk->qos <= 2 && (pk->qos == 0) == (pk->packet_id == 0));
        check(pk->topic_len > 0 || pk->topic_alias > 0);
        check(!memchr(pk->topic, 0, pk->topic_len) && !memchr(pk->topic, '+', pk->topic_len) &&
              !memchr(pk->topic, '#', pk->topic_len));
        check(pk->payload + pk->payload_len == pkt + used);
    }
    if (pk->type == MQTT_CONNACK) check(mqtt_wire_connack_text(version, pk->reason)[0] != '\0');
    if (version == MQTT_LEVEL_311) {
        check(pk->type != MQTT_AUTH && !pk->reason_string && !pk->topic_alias);
        check(!pk->server_keepalive_set && pk->receive_maximum == 65535);
    }
    /* Every proper prefix asks for more: the total once the fixed header is there. */
    for (size_t k = 0; k<used; k += used> 64 && k > head ? used / 16 + 1 : 1) {
        struct mqtt_packet q;
        size_t want = 12345;
        check(mqtt_wire_parse(pkt, k, version, MAX_LEN, &q, &want, NULL, 0) == WM_ERR_NOTFOUND);
        check(want == (k >= head ? used : 0));
    }
}

/* A copy of n bytes of s as a C string (cut at the first NUL); the caller frees it. */
static char *cstring(const unsigned char *s, size_t n)
{
    char *c = malloc(n + 1);
    check(c != NULL);
    memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

/* An accepted PUBLISH or PUBACK encoded again carries the same; in 3.1.1, with a minimal remaining
 * length, in the same bytes. */
static void reencode(const struct mqtt_packet *pk, const unsigned char *pkt, size_t used,
                     int version)
{
    struct buf b = {0};
    if (pk->type == MQTT_PUBACK) {
        check(mqtt_wire_puback(&b, pk->packet_id) == WM_OK);
        if (version == MQTT_LEVEL_311 && header_size(pkt) == 2)
            check(b.len == used && memcmp(b.data, pkt, used) == 0);
    } else if (pk->type == MQTT_PUBLISH && pk->qos <= 1 && pk->topic_len > 0) {
        char *topic = cstring((const unsigned char *)pk->topic, pk->topic_len);
        struct mqtt_publish p = {.topic = topic,
                                 .payload = pk->payload,
                                 .len = pk->payload_len,
                                 .qos = pk->qos,
                                 .retain = pk->retain,
                                 .dup = pk->dup,
                                 .packet_id = pk->packet_id};
        check(mqtt_wire_publish(&b, version, &p) == WM_OK);
        struct mqtt_packet q;
        size_t n = 0;
        check(mqtt_wire_parse(b.data, b.len, version, SIZE_MAX, &q, &n, NULL, 0) == WM_OK);
        check(n == b.len && q.type == MQTT_PUBLISH && q.qos == pk->qos && q.dup == pk->dup);
        check(q.retain == pk->retain && q.packet_id == pk->packet_id);
        check(q.topic_len == pk->topic_len && memcmp(q.topic, pk->topic, q.topic_len) == 0);
        check(q.payload_len == pk->payload_len &&
              (!q.payload_len || memcmp(q.payload, pk->payload, q.payload_len) == 0));
        /* The same bytes when nothing was dropped and the length was written the short way. */
        if (version == MQTT_LEVEL_311 && header_size(pkt) == header_size(b.data))
            check(b.len == used && memcmp(b.data, pkt, used) == 0);
        free(topic);
    }
    buf_free(&b);
}

struct result {
    enum wm_err err;
    size_t used;
};

/* Parses data as a client would its socket, in one piece; returns how many results it wrote. */
static size_t whole(const unsigned char *data, size_t size, int version, struct result *res)
{
    size_t off = 0, n = 0;
    while (n < MAX_PACKETS) {
        struct mqtt_packet pk;
        size_t used = 12345;
        char why[128];
        enum wm_err err =
            mqtt_wire_parse(data + off, size - off, version, MAX_LEN, &pk, &used, why, sizeof why);
        res[n++] = (struct result){err, used};
        if (err == WM_OK) {
            check(used <= size - off);
            check_packet(&pk, data + off, used, version);
            reencode(&pk, data + off, used, version);
            off += used;
            continue;
        }
        if (err == WM_ERR_NOTFOUND) check(used == 0 || used > size - off);
        if (err == WM_ERR_TOOBIG) check(used > MAX_LEN);
        if (err == WM_ERR_PROTOCOL) check(used == 0 && why[0] != '\0');
        check(err == WM_ERR_NOTFOUND || err == WM_ERR_TOOBIG || err == WM_ERR_PROTOCOL);
        break;
    }
    return n;
}

/* The same bytes arriving in pieces of pseudo-random sizes into a buffer that is consumed packet
 * by packet must give the same results. */
static void pieces(const unsigned char *data, size_t size, int version, const struct result *res,
                   size_t nres)
{
    struct buf b = {0};
    uint32_t rnd = (uint32_t)size * 2654435761u + (uint32_t)version;
    size_t fed = 0, i = 0;
    bool done = false;
    while (!done) {
        size_t piece = (rnd >> 16) % 23;
        rnd = rnd * 1103515245u + 12345u;
        if (piece > size - fed) piece = size - fed;
        if (piece) {
            check(buf_reserve(&b, piece) == WM_OK);
            memcpy(b.data + b.len, data + fed, piece);
            b.len += piece;
            fed += piece;
        }
        for (;;) {
            struct mqtt_packet pk;
            size_t used = 0;
            enum wm_err err = mqtt_wire_parse(b.data, b.len, version, MAX_LEN, &pk, &used, NULL, 0);
            if (err == WM_ERR_NOTFOUND && fed < size) break; /* more is coming */
            check(i < nres && err == res[i].err && used == res[i].used);
            i++;
            if (err != WM_OK || i == nres) {
                done = true;
                break;
            }
            buf_consume(&b, used);
        }
    }
    check(i == nres);
    buf_free(&b);
}

/* Takes fields from the input, in turn. */
struct fields {
    const unsigned char *p;
    size_t left;
};

static unsigned take(struct fields *f)
{
    if (!f->left) return 0;
    f->left--;
    return *f->p++;
}

/* A string of up to 31 bytes from the input, or NULL when the length byte says so. */
static char *take_string(struct fields *f, bool may_be_null)
{
    unsigned n = take(f);
    if (may_be_null && n >= 0xF0) return NULL;
    n &= 31;
    if (n > f->left) n = (unsigned)f->left;
    char *s = cstring(f->p, n);
    f->p += n, f->left -= n;
    return s;
}

static size_t read_varint(const unsigned char *p, size_t *size)
{
    size_t v = 0, i = 0;
    do
        v |= (size_t)(p[i] & 0x7F) << (7 * i);
    while (p[i++] & 0x80);
    *size = i;
    return v;
}

/* Walks a two-byte-length field; false when it does not fit. */
static bool skip_string(const unsigned char **p, const unsigned char *end)
{
    if (end - *p < 2) return false;
    size_t n = (size_t)(*p)[0] << 8 | (*p)[1];
    if ((size_t)(end - *p - 2) < n) return false;
    *p += 2 + n;
    return true;
}

/* A whole packet in b: its remaining length matches; returns where the rest starts. */
static const unsigned char *after_header(const struct buf *b, unsigned first)
{
    check(b->len >= 2 && b->data[0] == first);
    size_t size, rem = read_varint(b->data + 1, &size);
    check(size <= 4 && 1 + size + rem == b->len);
    return b->data + 1 + size;
}

static void encoders(const unsigned char *data, size_t size)
{
    struct fields f = {data, size};
    unsigned bits = take(&f);
    int version = bits & 1 ? MQTT_LEVEL_5 : MQTT_LEVEL_311;
    int qos = (int)(bits >> 1 & 3); /* 2 and 3 must be refused */
    uint16_t id = (uint16_t)(take(&f) << 8 | take(&f));
    char *topic = take_string(&f, false);
    char *ctype = take_string(&f, true);
    char *client = take_string(&f, false);
    char *user = take_string(&f, true);
    char *pass = take_string(&f, true);
    struct buf b = {0};

    /* PUBLISH: what is accepted parses back. */
    struct mqtt_publish p = {.topic = topic,
                             .payload = f.p,
                             .len = f.left,
                             .qos = qos,
                             .retain = bits & 8,
                             .dup = bits & 16,
                             .packet_id = id,
                             .content_type = ctype};
    b.len = 0;
    enum wm_err err = mqtt_wire_publish(&b, version, &p);
    check(err == WM_OK || (err == WM_ERR_INVAL && b.len == 0));
    if (err == WM_OK) {
        struct mqtt_packet pk;
        size_t used = 0;
        check(mqtt_wire_parse(b.data, b.len, version, b.len, &pk, &used, NULL, 0) == WM_OK);
        check(used == b.len && pk.type == MQTT_PUBLISH && pk.qos == qos &&
              pk.packet_id == (qos ? id : 0) && pk.retain == p.retain && pk.dup == p.dup);
        check(pk.topic_len == strlen(topic) && memcmp(pk.topic, topic, pk.topic_len) == 0);
        check(pk.payload_len == f.left && (!f.left || memcmp(pk.payload, f.p, f.left) == 0));
    }

    /* The encoder and the parser agree on which topics are valid. */
    size_t tlen = strlen(topic);
    unsigned char raw[2 + 2 + 31];
    raw[0] = 0x30, raw[1] = (unsigned char)(2 + tlen);
    raw[2] = 0, raw[3] = (unsigned char)tlen;
    memcpy(raw + 4, topic, tlen);
    struct mqtt_packet pk;
    size_t used;
    bool parsed = mqtt_wire_parse(raw, 4 + tlen, MQTT_LEVEL_311, 64, &pk, &used, NULL, 0) == WM_OK;
    b.len = 0;
    struct mqtt_publish plain = {.topic = topic};
    check(parsed == (mqtt_wire_publish(&b, MQTT_LEVEL_311, &plain) == WM_OK));

    /* CONNECT: well-formed, strings where the flags say. */
    struct mqtt_connect c = {.version = version,
                             .client_id = client,
                             .clean_start = bits & 32,
                             .keepalive_s = id,
                             .username = user,
                             .password = pass,
                             .session_expiry_s = bits & 64 ? 0 : (uint32_t)id * 65537u,
                             .receive_maximum = (uint16_t)(bits & 128 ? 0 : id ^ 0x5555),
                             .maximum_packet_size = bits & 4 ? 0 : (uint32_t)id << 8};
    b.len = 0;
    err = mqtt_wire_connect(&b, &c);
    check(err == WM_OK || (err == WM_ERR_INVAL && b.len == 0));
    if (err == WM_OK) {
        const unsigned char *q = after_header(&b, 0x10), *end = b.data + b.len;
        check(end - q >= 10 && memcmp(q, "\0\4MQTT", 6) == 0 && q[6] == version);
        unsigned flags = q[7];
        check(flags ==
              ((user ? 0x80u : 0) | (user && pass ? 0x40u : 0) | (c.clean_start ? 0x02u : 0)));
        check((unsigned)(q[8] << 8 | q[9]) == id);
        q += 10;
        if (version == MQTT_LEVEL_5) {
            size_t n, props = read_varint(q, &n);
            check(props <= 15 && (size_t)(end - q) >= n + props);
            q += n + props;
        }
        check(skip_string(&q, end));
        if (flags & 0x80) check(skip_string(&q, end));
        if (flags & 0x40) check(skip_string(&q, end));
        check(q == end);
    }

    /* SUBSCRIBE: the filters, each with its options byte. */
    const char *filters[3] = {topic, client, user ? user : "a/#"};
    size_t nf = bits >> 5 & 3;
    b.len = 0;
    err = mqtt_wire_subscribe(&b, version, id, filters, nf, qos);
    check(err == WM_OK || (err == WM_ERR_INVAL && b.len == 0));
    if (err == WM_OK) {
        const unsigned char *q = after_header(&b, 0x82), *end = b.data + b.len;
        check(end - q >= 2 && (unsigned)(q[0] << 8 | q[1]) == id && id != 0);
        q += 2;
        if (version == MQTT_LEVEL_5) check(*q++ == 0);
        for (size_t i = 0; i < nf; i++) {
            check(skip_string(&q, end) && q < end);
            check(*q++ == qos);
        }
        check(q == end);
    }

    buf_free(&b);
    free(topic);
    free(ctype);
    free(client);
    free(user);
    free(pass);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct result res[MAX_PACKETS];
    for (int version = MQTT_LEVEL_311; version <= MQTT_LEVEL_5; version++) {
        size_t n = whole(data, size, version, res);
        pieces(data, size, version, res, n);
    }
    encoders(data, size);
    return 0;
}
