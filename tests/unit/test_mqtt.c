/* test_mqtt.c: the broker link (mqtt.c) against the scripted fake broker of fake_broker.h: the
 * fallback from MQTT 5 to 3.1.1, publishes resent with DUP after a drop, the broker's Receive
 * Maximum, keep-alive, malformed packets from the broker, delivery and acknowledgement of the
 * broker's messages, and refusals: a PUBACK reason, a DISCONNECT after a publish and the
 * broker's Maximum Packet Size, each refusing only its own message. Each test runs the client's
 * loop in this thread until the script has ended and the client has seen what it must, or a
 * deadline passes. */
#include <stdbool.h>
#include <stdlib.h>

#include "fake_broker.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "test.h"

/* How long one conversation may take before the test fails. Generous: the machine is shared,
 * and a passing test never waits for it. */
#define DEADLINE_MS 20000

struct received {
    char topic[64];
    char payload[64];
    size_t len;
    int qos;
    bool dup, retain;
};

/* One test's client: its loop and link, the fake broker it talks to, and what its callbacks saw. */
struct client {
    const char *name;
    int failed_before; /* test_failed when the test began: the transcript is printed if it grew */
    struct loop *loop;
    struct mqtt_link *link;
    struct fake_broker *fb;
    int connects, disconnects;
    bool session_present; /* of the last connect */
    uint64_t mids[32];    /* on_published's tags, in order */
    uint8_t reasons[32];  /* and their reasons (0: success) */
    char why[32][200];
    int nmids;
    uint64_t next_tag;
    struct received msgs[8];
    int nmsgs;
    /* The conversation is over once the script has ended and the client has seen these. */
    int want_connects, want_published, want_msgs;
};

static void on_connect(void *arg, struct mqtt_link *link, bool session_present)
{
    struct client *c = arg;
    (void)link;
    c->connects++;
    c->session_present = session_present;
}

static void on_disconnect(void *arg, struct mqtt_link *link)
{
    struct client *c = arg;
    (void)link;
    c->disconnects++;
}

static void on_published(void *arg, struct mqtt_link *link, const struct mqtt_published *p)
{
    struct client *c = arg;
    (void)link;
    if (c->nmids < (int)(sizeof c->mids / sizeof c->mids[0])) {
        c->mids[c->nmids] = p->tag;
        c->reasons[c->nmids] = p->reason;
        snprintf(c->why[c->nmids], sizeof c->why[0], "%s", p->why ? p->why : "");
    }
    c->nmids++;
}

static bool on_message(void *arg, struct mqtt_link *link, const struct mqtt_msg *m)
{
    struct client *c = arg;
    (void)link;
    if (c->nmsgs < (int)(sizeof c->msgs / sizeof c->msgs[0])) {
        struct received *r = &c->msgs[c->nmsgs];
        snprintf(r->topic, sizeof r->topic, "%s", m->topic);
        snprintf(r->payload, sizeof r->payload, "%.*s", (int)m->len, (const char *)m->payload);
        r->len = m->len;
        r->qos = m->qos;
        r->dup = m->dup;
        r->retain = m->retain;
    }
    c->nmsgs++;
    return true;
}

static const struct mqtt_callbacks callbacks = {
    .on_message = on_message,
    .on_connect = on_connect,
    .on_disconnect = on_disconnect,
    .on_published = on_published,
};

/* Starts the fake broker with its script, then a link to it with opts (its url is set here). */
static bool client_begin(struct client *c, const char *name, fake_script_fn script, void *arg,
                         struct mqtt_options *opts)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    c->failed_before = test_failed;
    c->fb = fake_start(script, arg);
    c->loop = loop_new();
    ASSERT_TRUE(c->fb != NULL);
    ASSERT_TRUE(c->loop != NULL);
    if (!c->fb || !c->loop) return false;
    opts->url = c->fb->url;
    enum wm_err err = WM_ERR_LIB;
    c->link = mqtt_link_new(c->loop, opts, &callbacks, c, &err);
    ASSERT_EQ_INT(err, WM_OK);
    return c->link != NULL;
}

static bool settled(const struct client *c)
{
    return fake_done(c->fb) && c->connects >= c->want_connects && c->nmids >= c->want_published &&
           c->nmsgs >= c->want_msgs;
}

struct watch {
    struct client *c;
    int64_t deadline_ms;
    bool met;
    struct loop_timer timer;
};

/* The fake's thread cannot wake the loop: the condition is looked at every 10 ms. */
static void check_settled(void *arg)
{
    struct watch *w = arg;
    w->met = settled(w->c);
    /* A script that failed is over too: its error says more than the deadline would. */
    bool failed = fake_done(w->c->fb) && fake_error(w->c->fb)[0];
    if (w->met || failed || loop_now_ms(w->c->loop) >= w->deadline_ms)
        loop_stop(w->c->loop);
    else
        loop_timer_start(w->c->loop, &w->timer, 10, check_settled, w);
}

/* Runs the client until the conversation is over (or the deadline), then stops the fake: its
 * transcript is then the test's to read. */
static void client_run(struct client *c)
{
    struct watch w = {.c = c, .deadline_ms = loop_now_ms(c->loop) + DEADLINE_MS};
    loop_timer_start(c->loop, &w.timer, 0, check_settled, &w);
    ASSERT_EQ_INT(loop_run(c->loop), WM_OK);
    loop_timer_stop(c->loop, &w.timer);
    bool script_done = fake_done(c->fb);
    fake_stop(c->fb);
    if (!w.met)
        TEST_FAIL_AT("%s: not over (deadline %d ms): script %s, %d/%d connects, %d/%d published, "
                     "%d/%d messages",
                     c->name, DEADLINE_MS, script_done ? "done" : "running", c->connects,
                     c->want_connects, c->nmids, c->want_published, c->nmsgs, c->want_msgs);
    ASSERT_EQ_STR(fake_error(c->fb), "");
}

static void client_end(struct client *c)
{
    mqtt_link_free(&c->link);
    if (c->fb && test_failed > c->failed_before) {
        fprintf(stderr, "%s failed\n", c->name);
        fake_dump(c->fb, stderr);
    }
    fake_free(&c->fb);
    loop_free(&c->loop);
}

/* Publishes with the next tag (1, 2, ...) and returns it. */
static uint64_t publish(struct client *c, const char *topic, const char *payload)
{
    uint64_t tag = ++c->next_tag;
    ASSERT_EQ_INT(mqtt_publish(c->link, topic, payload, strlen(payload), tag), WM_OK);
    return tag;
}

/* The i-th PUBLISH the client sent, or a blank one (so that a test can go on reading). */
static struct fake_packet publish_seen(const struct client *c, int i)
{
    const struct fake_packet *p = fake_seen(c->fb, FAKE_PUBLISH, i);
    ASSERT_TRUE(p != NULL);
    return p ? *p : (struct fake_packet){0};
}

/* ---- 1. the MQTT version ---- */

/* Refuses MQTT 5 as arg says, takes 3.1.1, and ends that connection: 3.1.1 must stay. */
static void script_refuse_v5(struct fake_broker *fb, void *arg)
{
    fake_accept(fb);
    fake_expect(fb, FAKE_CONNECT, NULL);
    fake_send_connack(fb, arg);
    fake_expect_close(fb);
    fake_connect(fb, NULL);
    fake_close(fb);
    fake_connect(fb, NULL);
}

static void test_refused_v5(const char *name, const struct fake_connack *refusal)
{
    struct client c;
    struct mqtt_options o = {0};
    if (client_begin(&c, name, script_refuse_v5, (void *)refusal, &o)) {
        c.want_connects = 2;
        client_run(&c);
        ASSERT_EQ_INT(fake_count(c.fb, FAKE_CONNECT), 3);
        const struct fake_packet *v5 = fake_seen(c.fb, FAKE_CONNECT, 0);
        const struct fake_packet *v311 = fake_seen(c.fb, FAKE_CONNECT, 1);
        const struct fake_packet *again = fake_seen(c.fb, FAKE_CONNECT, 2);
        if (v5 && v311 && again) {
            ASSERT_EQ_INT(v5->level, MQTT_LEVEL_5);
            ASSERT_EQ_INT(v311->level, MQTT_LEVEL_311);
            ASSERT_EQ_INT(again->level, MQTT_LEVEL_311);
            /* What the MQTT 5 CONNECT asks for, with no client id: a clean start and the
             * defaults. */
            ASSERT_EQ_STR(v5->client_id, "");
            ASSERT_TRUE(v5->clean_start);
            ASSERT_EQ_INT(v5->keepalive_s, 30);
            ASSERT_EQ_INT(v5->receive_maximum, 1000);
            ASSERT_EQ_INT(v5->maximum_packet_size, 16 * 1024 * 1024);
            ASSERT_EQ_INT(v5->session_expiry_s, 0);
        }
        ASSERT_EQ_INT(c.connects, 2);
        ASSERT_EQ_INT(c.disconnects, 1); /* the refusal was no connection */
        ASSERT_EQ_INT(mqtt_protocol_version(c.link), 4);
        ASSERT_TRUE(mqtt_connected(c.link));
    }
    client_end(&c);
}

/* Connections closed before any CONNACK: MQTT 5 closed, so 3.1.1; 3.1.1 reset too, so the
 * closes were not about the version and MQTT 5 comes back; closed again, 3.1.1 again, which
 * now gets a CONNACK and stays after the next drop. */
static void script_close_before_connack(struct fake_broker *fb, void *arg)
{
    (void)arg;
    fake_accept(fb);
    fake_expect(fb, FAKE_CONNECT, NULL);
    fake_close(fb);
    fake_accept(fb);
    fake_expect(fb, FAKE_CONNECT, NULL);
    fake_reset(fb);
    fake_accept(fb);
    fake_expect(fb, FAKE_CONNECT, NULL);
    fake_close(fb);
    fake_connect(fb, NULL);
    fake_close(fb);
    fake_connect(fb, NULL);
}

static void test_closed_before_connack(void)
{
    struct client c;
    struct mqtt_options o = {0};
    if (client_begin(&c, "closed before CONNACK", script_close_before_connack, NULL, &o)) {
        c.want_connects = 2;
        client_run(&c);
        static const int levels[] = {5, 4, 5, 4, 4};
        ASSERT_EQ_INT(fake_count(c.fb, FAKE_CONNECT), 5);
        for (int i = 0; i < 5; i++) {
            const struct fake_packet *p = fake_seen(c.fb, FAKE_CONNECT, i);
            ASSERT_TRUE(p != NULL);
            if (p) ASSERT_EQ_INT(p->level, levels[i]);
        }
        ASSERT_EQ_INT(c.connects, 2);
        ASSERT_EQ_INT(c.disconnects, 1);
        ASSERT_EQ_INT(mqtt_protocol_version(c.link), 4);
        ASSERT_TRUE(mqtt_connected(c.link));
    }
    client_end(&c);
}

/* ---- 2. publishes resent after a drop ---- */

/* With max_inflight 3 and m1..m4 queued: m1-m3 go out and are never acknowledged; on the
 * second connection they come again with DUP, m4 follows m1's PUBACK for the first time, m2 is
 * acknowledged twice (the second PUBACK is for an id no longer in use); on the third, m3 and m4
 * come again and are acknowledged. */
static void script_resend(struct fake_broker *fb, void *arg)
{
    struct fake_packet m1, m2, m3, m4;
    (void)arg;
    fake_connect(fb, NULL);
    for (int i = 0; i < 3; i++)
        fake_expect(fb, FAKE_PUBLISH, NULL);
    fake_close(fb);

    fake_connect(fb, &(struct fake_connack){.session_present = true});
    fake_expect(fb, FAKE_PUBLISH, &m1);
    fake_expect(fb, FAKE_PUBLISH, &m2);
    fake_expect(fb, FAKE_PUBLISH, &m3);
    fake_ack(fb, &m1);
    fake_expect(fb, FAKE_PUBLISH, &m4);
    fake_ack(fb, &m2);
    fake_ack(fb, &m2);
    fake_close(fb);

    fake_connect(fb, &(struct fake_connack){.session_present = true});
    fake_expect(fb, FAKE_PUBLISH, &m3);
    fake_expect(fb, FAKE_PUBLISH, &m4);
    fake_ack(fb, &m3);
    fake_ack(fb, &m4);
}

static void test_resend_with_dup(void)
{
    struct client c;
    struct mqtt_options o = {.client_id = "wm-resend", .clean_session = false, .max_inflight = 3};
    if (client_begin(&c, "resend with DUP", script_resend, NULL, &o)) {
        uint64_t mids[4];
        static const char *const topics[] = {"t/m1", "t/m2", "t/m3", "t/m4"};
        for (int i = 0; i < 4; i++)
            mids[i] = publish(&c, topics[i], "{}");
        ASSERT_EQ_INT(mqtt_pending(c.link), 4);
        c.want_connects = 3;
        c.want_published = 4;
        client_run(&c);

        const struct fake_packet *connect = fake_seen(c.fb, FAKE_CONNECT, 0);
        if (connect) {
            ASSERT_EQ_STR(connect->client_id, "wm-resend");
            ASSERT_TRUE(!connect->clean_start);
            ASSERT_EQ_INT(connect->session_expiry_s, 7 * 24 * 3600);
        }
        /* Connection, topic and DUP of every PUBLISH, in the order they came. */
        static const struct {
            int conn;
            const char *topic;
            bool dup;
        } want[] = {{1, "t/m1", false}, {1, "t/m2", false}, {1, "t/m3", false},
                    {2, "t/m1", true},  {2, "t/m2", true},  {2, "t/m3", true},
                    {2, "t/m4", false}, {3, "t/m3", true},  {3, "t/m4", true}};
        ASSERT_EQ_INT(fake_count(c.fb, FAKE_PUBLISH), 9);
        for (int i = 0; i < 9; i++) {
            struct fake_packet p = publish_seen(&c, i);
            ASSERT_EQ_INT(p.conn, want[i].conn);
            ASSERT_EQ_STR(p.topic, want[i].topic);
            ASSERT_EQ_INT(p.dup, want[i].dup);
            ASSERT_EQ_INT(p.qos, 1);
            ASSERT_TRUE(p.packet_id != 0);
            ASSERT_EQ_STR(p.content_type, "application/json");
            ASSERT_TRUE(p.payload_len == 2 && memcmp(p.payload, "{}", 2) == 0);
        }
        /* Each message reported once, in order, though m2 was acknowledged twice. */
        ASSERT_EQ_INT(c.nmids, 4);
        for (int i = 0; i < 4 && i < c.nmids; i++)
            ASSERT_EQ_INT(c.mids[i], mids[i]);
        ASSERT_EQ_INT(mqtt_pending(c.link), 0);
        ASSERT_TRUE(c.session_present);
        ASSERT_EQ_INT(c.disconnects, 2);
        /* A PUBLISH resent into a resumed session keeps its packet id (MQTT-4.4.0-1). */
        ASSERT_EQ_INT(publish_seen(&c, 3).packet_id, publish_seen(&c, 0).packet_id);
        ASSERT_EQ_INT(publish_seen(&c, 5).packet_id, publish_seen(&c, 2).packet_id);
        ASSERT_EQ_INT(publish_seen(&c, 7).packet_id, publish_seen(&c, 5).packet_id);
        ASSERT_EQ_INT(publish_seen(&c, 8).packet_id, publish_seen(&c, 6).packet_id);
    }
    client_end(&c);
}

/* ---- 3. the broker's Receive Maximum ---- */

#define WINDOW 3
#define WINDOW_MESSAGES 10

/* Receive Maximum 3. Publishes are taken while the window has room; when it is full, a client
 * that ignores it gets 50 ms to send one more (which the fake counts in max_inflight), then the
 * oldest is acknowledged. */
static void script_receive_maximum(struct fake_broker *fb, void *arg)
{
    uint16_t ids[WINDOW_MESSAGES];
    int got = 0, acked = 0;
    (void)arg;
    fake_connect(fb, &(struct fake_connack){.receive_maximum = WINDOW});
    while (acked < WINDOW_MESSAGES && !fake_failed(fb)) {
        if (got < WINDOW_MESSAGES && (got - acked < WINDOW || !fake_quiet(fb, 50))) {
            struct fake_packet p;
            if (fake_expect(fb, FAKE_PUBLISH, &p)) ids[got++] = p.packet_id;
            continue;
        }
        fake_send_puback(fb, ids[acked++], 0, NULL);
    }
}

static void test_receive_maximum(void)
{
    struct client c;
    struct mqtt_options o = {0};
    if (client_begin(&c, "receive maximum", script_receive_maximum, NULL, &o)) {
        for (int i = 0; i < WINDOW_MESSAGES; i++) {
            char topic[32];
            snprintf(topic, sizeof topic, "t/%d", i);
            publish(&c, topic, "x");
        }
        c.want_connects = 1;
        c.want_published = WINDOW_MESSAGES;
        client_run(&c);
        ASSERT_EQ_INT(c.fb->max_inflight, WINDOW);
        ASSERT_EQ_INT(fake_count(c.fb, FAKE_PUBLISH), WINDOW_MESSAGES);
        ASSERT_EQ_INT(c.nmids, WINDOW_MESSAGES);
        for (int i = 0; i < WINDOW_MESSAGES; i++) {
            char topic[32];
            snprintf(topic, sizeof topic, "t/%d", i);
            ASSERT_EQ_STR(publish_seen(&c, i).topic, topic);
        }
        ASSERT_EQ_INT(c.disconnects, 0);
    }
    client_end(&c);
}

/* ---- 4. keep-alive ---- */

/* Never answers the PINGREQ: the client must give up on the connection and come back. */
static void script_silent(struct fake_broker *fb, void *arg)
{
    (void)arg;
    fake_connect(fb, NULL);
    fake_expect(fb, FAKE_PINGREQ, NULL);
    fake_expect_close(fb);
    fake_connect(fb, NULL);
}

static void test_keepalive_timeout(void)
{
    struct client c;
    struct mqtt_options o = {.keepalive_s = 1};
    if (client_begin(&c, "keep-alive timeout", script_silent, NULL, &o)) {
        c.want_connects = 2;
        client_run(&c);
        const struct fake_packet *connect = fake_seen(c.fb, FAKE_CONNECT, 0);
        if (connect) ASSERT_EQ_INT(connect->keepalive_s, 1);
        ASSERT_EQ_INT(fake_count(c.fb, FAKE_PINGREQ), 1);
        ASSERT_EQ_INT(fake_count(c.fb, FAKE_CLOSED), 1);
        ASSERT_EQ_INT(c.disconnects, 1);
        ASSERT_TRUE(mqtt_connected(c.link));
    }
    client_end(&c);
}

/* Server Keep Alive 1 s against the client's 30: pings come at the broker's pace, and an
 * answered one keeps the connection (the second PINGREQ only comes once the first is answered). */
static void script_server_keepalive(struct fake_broker *fb, void *arg)
{
    (void)arg;
    fake_connect(fb, &(struct fake_connack){.server_keepalive_set = true, .server_keepalive_s = 1});
    fake_expect(fb, FAKE_PINGREQ, NULL);
    fake_send_pingresp(fb);
    fake_expect(fb, FAKE_PINGREQ, NULL);
    fake_send_pingresp(fb);
}

static void test_server_keepalive(void)
{
    struct client c;
    struct mqtt_options o = {0};
    if (client_begin(&c, "server keep alive", script_server_keepalive, NULL, &o)) {
        c.want_connects = 1;
        client_run(&c);
        const struct fake_packet *connect = fake_seen(c.fb, FAKE_CONNECT, 0);
        if (connect) ASSERT_EQ_INT(connect->keepalive_s, 30);
        ASSERT_EQ_INT(fake_count(c.fb, FAKE_PINGREQ), 2);
        ASSERT_EQ_INT(c.disconnects, 0);
        ASSERT_TRUE(mqtt_connected(c.link));
    }
    client_end(&c);
}

/* ---- 5. malformed and unexpected packets from the broker ---- */

struct bad_packet {
    const char *what;
    unsigned char raw[8]; /* sent as they are when nraw > 0 */
    size_t nraw;
    struct fake_publish publish; /* otherwise this PUBLISH */
    bool before_connack;
};

#define RAW(...) .raw = {__VA_ARGS__}, .nraw = sizeof((const unsigned char[]){__VA_ARGS__})

static const struct bad_packet bad_packets[] = {
    {"remaining length over 4 bytes", RAW(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01)},
    {"PUBACK shorter than a packet id", RAW(0x40, 0x01, 0x00)},
    {"PUBREC, for a QoS 2 never used", RAW(0x50, 0x02, 0x00, 0x01)},
    {"a second CONNACK", RAW(0x20, 0x03, 0x00, 0x00, 0x00)},
    {"PINGREQ, a client's packet", RAW(0xC0, 0x00)},
    {"AUTH, never asked for", RAW(0xF0, 0x00)},
    {"PUBLISH at QoS 2",
     .publish = {.topic = "t/q2", .payload = "x", .len = 1, .qos = 2, .packet_id = 5}},
    {"PUBLISH with a topic alias", .publish = {.topic = "t/alias",
                                               .payload = "x",
                                               .len = 1,
                                               .qos = 1,
                                               .packet_id = 6,
                                               .topic_alias = 1}},
    {"PUBLISH before CONNACK", .publish = {.topic = "t/early", .payload = "x", .len = 1},
     .before_connack = true},
};
#define NBAD (sizeof bad_packets / sizeof bad_packets[0])

/* One connection per bad packet, each ended by the client; then one that holds. */
static void script_bad_packets(struct fake_broker *fb, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < NBAD && !fake_failed(fb); i++) {
        const struct bad_packet *b = &bad_packets[i];
        fake_accept(fb);
        fake_expect(fb, FAKE_CONNECT, NULL);
        if (!b->before_connack) fake_send_connack(fb, NULL);
        if (b->nraw)
            fake_send_raw(fb, b->raw, b->nraw);
        else
            fake_send_publish(fb, &b->publish);
        if (!fake_expect_close(fb)) fake_fail(fb, "after %s", b->what);
    }
    fake_connect(fb, NULL);
}

static void test_bad_packets(void)
{
    struct client c;
    struct mqtt_options o = {0};
    if (client_begin(&c, "bad packets", script_bad_packets, NULL, &o)) {
        c.want_connects = (int)NBAD; /* all but the one before CONNACK, and the last */
        client_run(&c);
        ASSERT_EQ_INT(fake_count(c.fb, FAKE_CONNECT), NBAD + 1);
        ASSERT_EQ_INT(fake_count(c.fb, FAKE_CLOSED), NBAD);
        /* Nothing else: no PUBACK for the bad publishes, which never reached on_message. */
        ASSERT_EQ_INT(fake_count(c.fb, FAKE_ANY), 2 * NBAD + 1);
        ASSERT_EQ_INT(c.nmsgs, 0);
        ASSERT_EQ_INT(c.disconnects, (int)NBAD - 1);
        /* None of it was taken for a refusal of MQTT 5. */
        for (size_t i = 0; i <= NBAD; i++) {
            const struct fake_packet *p = fake_seen(c.fb, FAKE_CONNECT, (int)i);
            if (p) ASSERT_EQ_INT(p->level, MQTT_LEVEL_5);
        }
        ASSERT_TRUE(mqtt_connected(c.link));
    }
    client_end(&c);
}

/* ---- 6. messages from the broker ---- */

/* After the SUBACK: a QoS 1 message marked DUP and retained, acknowledged; a QoS 0 one, which
 * is not (the PUBACK that comes next is that of the QoS 1 message after it). */
static void script_deliver(struct fake_broker *fb, void *arg)
{
    struct fake_packet sub;
    (void)arg;
    fake_connect(fb, NULL);
    fake_expect(fb, FAKE_SUBSCRIBE, &sub);
    fake_send_suback(fb, &sub, 1);
    fake_send_publish(fb, &(struct fake_publish){.topic = "wis2/a",
                                                 .payload = "hello",
                                                 .len = 5,
                                                 .qos = 1,
                                                 .dup = true,
                                                 .retain = true,
                                                 .packet_id = 7});
    fake_expect_puback(fb, 7);
    fake_send_publish(fb, &(struct fake_publish){.topic = "wis2/b"});
    fake_send_publish(fb,
                      &(struct fake_publish){
                          .topic = "wis2/c", .payload = "!", .len = 1, .qos = 1, .packet_id = 8});
    fake_expect_puback(fb, 8);
}

static void test_deliver(const char *name, enum mqtt_protocol protocol)
{
    struct client c;
    static const char *const subs[] = {"wis2/#"};
    struct mqtt_options o = {.protocol = protocol, .subscriptions = subs, .nsubscriptions = 1};
    if (client_begin(&c, name, script_deliver, NULL, &o)) {
        c.want_connects = 1;
        c.want_msgs = 3;
        client_run(&c);
        const struct fake_packet *sub = fake_seen(c.fb, FAKE_SUBSCRIBE, 0);
        ASSERT_TRUE(sub != NULL);
        if (sub) {
            ASSERT_EQ_INT(sub->nfilters, 1);
            ASSERT_EQ_STR(sub->filter, "wis2/#");
        }
        ASSERT_EQ_INT(c.nmsgs, 3);
        if (c.nmsgs == 3) {
            ASSERT_EQ_STR(c.msgs[0].topic, "wis2/a");
            ASSERT_EQ_STR(c.msgs[0].payload, "hello");
            ASSERT_EQ_INT(c.msgs[0].qos, 1);
            ASSERT_TRUE(c.msgs[0].dup && c.msgs[0].retain);
            ASSERT_EQ_STR(c.msgs[1].topic, "wis2/b");
            ASSERT_EQ_INT(c.msgs[1].len, 0);
            ASSERT_EQ_INT(c.msgs[1].qos, 0);
            ASSERT_TRUE(!c.msgs[1].dup && !c.msgs[1].retain);
            ASSERT_EQ_STR(c.msgs[2].topic, "wis2/c");
            ASSERT_EQ_STR(c.msgs[2].payload, "!");
        }
        ASSERT_EQ_INT(fake_count(c.fb, FAKE_PUBACK), 2);
        const struct fake_packet *connect = fake_seen(c.fb, FAKE_CONNECT, 0);
        if (connect)
            ASSERT_EQ_INT(connect->level, protocol == MQTT_V311 ? MQTT_LEVEL_311 : MQTT_LEVEL_5);
    }
    client_end(&c);
}

/* ---- 7. refusals: reported with their reason, never holding up what follows ---- */

/* m1 refused (0x87, not authorized, with a reason string), m2 accepted with 0x10 (no matching
 * subscribers, a success). */
static void script_refused_publish(struct fake_broker *fb, void *arg)
{
    struct fake_packet m1, m2;
    (void)arg;
    fake_connect(fb, NULL);
    fake_expect(fb, FAKE_PUBLISH, &m1);
    fake_expect(fb, FAKE_PUBLISH, &m2);
    fake_send_puback(fb, m1.packet_id, 0x87, "not on this topic");
    fake_send_puback(fb, m2.packet_id, 0x10, NULL);
}

static void test_refused_publish(void)
{
    struct client c;
    struct mqtt_options o = {0};
    if (client_begin(&c, "refused publish", script_refused_publish, NULL, &o)) {
        uint64_t m1 = publish(&c, "t/refused", "{}");
        uint64_t m2 = publish(&c, "t/accepted", "{}");
        c.want_connects = 1;
        c.want_published = 2;
        client_run(&c);
        ASSERT_EQ_INT(c.nmids, 2);
        ASSERT_EQ_INT(c.mids[0], m1);
        ASSERT_EQ_INT(c.reasons[0], 0x87);
        ASSERT_EQ_STR(c.why[0], "not authorized: not on this topic");
        ASSERT_EQ_INT(c.mids[1], m2);
        ASSERT_EQ_INT(c.reasons[1], 0); /* 0x10 is a success */
        ASSERT_EQ_STR(c.why[1], "");
        ASSERT_EQ_INT(mqtt_pending(c.link), 0);
        ASSERT_TRUE(mqtt_connected(c.link));
    }
    client_end(&c);
}

/* The broker disconnects (0x99, payload format invalid) whenever m2 comes, acknowledging what
 * came before it. m3 may come with m2 on the first connection (not acknowledged), and the link
 * must find m2 and refuse it without holding m3 up. */
static void script_disconnect_after(struct fake_broker *fb, void *arg)
{
    (void)arg;
    for (int conn = 0; conn < 6 && !fake_error(fb)[0]; conn++) {
        fake_connect(fb, &(struct fake_connack){.session_present = conn > 0});
        for (;;) {
            struct fake_packet p;
            int type = fake_next(fb, &p, 1000);
            if (type < 0) return; /* all done: nothing more comes */
            if (type == FAKE_CLOSED) break;
            if (type != FAKE_PUBLISH) continue;
            if (strcmp(p.topic, "t/m2") == 0) {
                fake_send_disconnect(fb, 0x99, "bad payload");
                fake_expect_close(fb);
                break;
            }
            fake_ack(fb, &p);
        }
    }
}

static void test_disconnect_after_publish(void)
{
    struct client c;
    struct mqtt_options o = {.client_id = "wm-culprit"};
    if (client_begin(&c, "DISCONNECT after a publish", script_disconnect_after, NULL, &o)) {
        uint64_t m1 = publish(&c, "t/m1", "{}");
        uint64_t m2 = publish(&c, "t/m2", "{\"bad\"}");
        uint64_t m3 = publish(&c, "t/m3", "{}");
        c.want_published = 3;
        client_run(&c);
        ASSERT_EQ_INT(c.nmids, 3);
        bool ok1 = false, refused2 = false, ok3 = false;
        for (int i = 0; i < c.nmids && i < 3; i++) {
            if (c.mids[i] == m1) ok1 = c.reasons[i] == 0;
            if (c.mids[i] == m3) ok3 = c.reasons[i] == 0;
            if (c.mids[i] == m2) {
                refused2 = c.reasons[i] == 0x99;
                ASSERT_TRUE(strstr(c.why[i], "closed the connection on this message") != NULL);
            }
        }
        ASSERT_TRUE(ok1 && refused2 && ok3);
        /* Found on the third close at most: twice with it oldest, then alone in flight. */
        int culprit = 0;
        for (int i = 0; i < fake_count(c.fb, FAKE_PUBLISH); i++)
            culprit += strcmp(publish_seen(&c, i).topic, "t/m2") == 0;
        ASSERT_TRUE(culprit >= 2 && culprit <= 3);
        ASSERT_TRUE(c.disconnects <= 3);
        ASSERT_EQ_INT(mqtt_pending(c.link), 0);
    }
    client_end(&c);
}

/* A close without a reason (an MQTT 3.1.1 broker, NATS) blames a message the same way; a
 * DISCONNECT whose reason is about the server (0x8B shutting down) blames nothing. */
static void script_close_on_message(struct fake_broker *fb, void *arg)
{
    (void)arg;
    int shutdowns = 0;
    for (int conn = 0; conn < 8 && !fake_error(fb)[0]; conn++) {
        fake_connect(fb, NULL);
        for (;;) {
            struct fake_packet p;
            int type = fake_next(fb, &p, 1000);
            if (type < 0) return;
            if (type == FAKE_CLOSED) break;
            if (type != FAKE_PUBLISH) continue;
            if (strcmp(p.topic, "t/a.b") == 0) {
                fake_close(fb);
                break;
            }
            if (strcmp(p.topic, "t/ok") == 0 && shutdowns < 3) {
                shutdowns++;
                fake_send_disconnect(fb, 0x8B, NULL); /* shutting down, three times */
                fake_expect_close(fb);
                break;
            }
            fake_ack(fb, &p);
        }
    }
}

static void test_close_on_message(void)
{
    struct client c;
    struct mqtt_options o = {.protocol = MQTT_V311, .client_id = "wm-close"};
    if (client_begin(&c, "close on a message", script_close_on_message, NULL, &o)) {
        uint64_t ok = publish(&c, "t/ok", "{}");
        uint64_t bad = publish(&c, "t/a.b", "{}");
        uint64_t after = publish(&c, "t/after", "{}");
        c.want_published = 3;
        client_run(&c);
        ASSERT_EQ_INT(c.nmids, 3);
        for (int i = 0; i < c.nmids && i < 3; i++) {
            /* t/ok was in flight at three shutdowns: never blamed for them. */
            if (c.mids[i] == ok || c.mids[i] == after) ASSERT_EQ_INT(c.reasons[i], 0);
            if (c.mids[i] == bad) ASSERT_EQ_INT(c.reasons[i], 0x80);
        }
    }
    client_end(&c);
}

/* m2, published alone (a message the broker closed the connection on before), waits until m1
 * is acknowledged and holds m3 back while in flight; the close that follows it refuses it at
 * once, and m3 goes on the next connection. */
static void script_alone(struct fake_broker *fb, void *arg)
{
    struct fake_packet m1, m2, m3;
    (void)arg;
    fake_connect(fb, NULL);
    fake_expect_publish(fb, "t/m1", &m1);
    fake_quiet(fb, 300); /* m2 waits for the window to empty */
    fake_ack(fb, &m1);
    fake_expect_publish(fb, "t/m2", &m2);
    fake_quiet(fb, 300); /* and nothing goes with it */
    fake_close(fb);
    fake_connect(fb, NULL);
    fake_expect_publish(fb, "t/m3", &m3);
    fake_ack(fb, &m3);
}

static void test_alone(void)
{
    struct client c;
    struct mqtt_options o = {0};
    if (client_begin(&c, "published alone", script_alone, NULL, &o)) {
        uint64_t m1 = publish(&c, "t/m1", "{}");
        uint64_t m2 = ++c.next_tag;
        ASSERT_EQ_INT(mqtt_publish_alone(c.link, "t/m2", "{}", 2, m2), WM_OK);
        uint64_t m3 = publish(&c, "t/m3", "{}");
        c.want_published = 3;
        client_run(&c);
        ASSERT_EQ_INT(fake_count(c.fb, FAKE_PUBLISH), 3);
        ASSERT_EQ_INT(c.fb->max_inflight, 1);
        ASSERT_EQ_INT(c.nmids, 3);
        ASSERT_EQ_INT(c.mids[0], m1);
        ASSERT_EQ_INT(c.reasons[0], 0);
        ASSERT_EQ_INT(c.mids[1], m2);
        ASSERT_EQ_INT(c.reasons[1], 0x80);
        ASSERT_EQ_INT(c.mids[2], m3);
        ASSERT_EQ_INT(c.reasons[2], 0);
        ASSERT_EQ_INT(c.disconnects, 1);
    }
    client_end(&c);
}

#define SMALL_MAXIMUM 64

static void script_maximum_packet_size(struct fake_broker *fb, void *arg)
{
    struct fake_packet small;
    (void)arg;
    fake_connect(fb, &(struct fake_connack){.maximum_packet_size = SMALL_MAXIMUM});
    fake_expect(fb, FAKE_PUBLISH, &small);
    fake_ack(fb, &small);
}

static void test_maximum_packet_size(void)
{
    struct client c;
    struct mqtt_options o = {0};
    if (client_begin(&c, "maximum packet size", script_maximum_packet_size, NULL, &o)) {
        char payload[200];
        memset(payload, 'x', sizeof payload - 1);
        payload[sizeof payload - 1] = '\0';
        uint64_t big = publish(&c, "t/big", payload);
        uint64_t small = publish(&c, "t/small", "{}");
        c.want_connects = 1;
        c.want_published = 2;
        client_run(&c);
        /* The big one never leaves: refused at once, with the sizes; the small one goes. */
        ASSERT_EQ_INT(fake_count(c.fb, FAKE_PUBLISH), 1);
        ASSERT_EQ_STR(publish_seen(&c, 0).topic, "t/small");
        ASSERT_EQ_INT(c.fb->oversize, 0);
        ASSERT_EQ_INT(c.nmids, 2);
        ASSERT_EQ_INT(c.mids[0], big);
        ASSERT_EQ_INT(c.reasons[0], 0x95);
        ASSERT_TRUE(strstr(c.why[0], "the broker's maximum is 64") != NULL);
        ASSERT_EQ_INT(c.mids[1], small);
        ASSERT_EQ_INT(c.reasons[1], 0);
        ASSERT_EQ_INT(mqtt_max_packet(c.link), SMALL_MAXIMUM);
    }
    client_end(&c);
}

int main(void)
{
    /* The link's warnings are expected here (refusals, drops): shown only when asked for. */
    if (!getenv("TEST_VERBOSE")) log_set_level(WM_LOG_ERROR);
    test_refused_v5("refused MQTT 5 (reason 0x84)", &(struct fake_connack){.reason = 0x84});
    test_refused_v5("refused MQTT 5 (3.1.1 broker, code 1)",
                    &(struct fake_connack){.reason = 1, .level = MQTT_LEVEL_311});
    test_closed_before_connack();
    test_resend_with_dup();
    test_receive_maximum();
    test_keepalive_timeout();
    test_server_keepalive();
    test_bad_packets();
    test_deliver("deliver (MQTT 5)", MQTT_V5);
    test_deliver("deliver (MQTT 3.1.1)", MQTT_V311);
    test_refused_publish();
    test_disconnect_after_publish();
    test_close_on_message();
    test_alone();
    test_maximum_packet_size();
    return TEST_REPORT();
}
