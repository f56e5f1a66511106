/* mqtt.c: broker links (MQTT 5 with 3.1.1 fallback, QoS 1) driven by the event loop. Reads
 * drain the socket into one buffer and every packet in it is handled before the loop sleeps;
 * writes gather in one buffer that leaves in a loop hook, after the hooks added before it (the
 * journal's sync): one system call moves a whole batch each way. */
#include "mqtt.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "mqtt_wire.h"
#include "net.h"
#include "proxy.h"
#include "resolver.h"
#include "tls.h"
#include "url.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
#define TICK_MS 1000
#define RECEIVE_MAXIMUM 1000          /* MQTT 5: unacknowledged messages the broker may send */
#define READ_CHUNK (64 * 1024)        /* bytes asked of the socket per read */
#define READ_BUDGET (256 * 1024)      /* bytes read per readiness event before others run */
#define KEEP_BUFFER (256 * 1024)      /* an empty buffer larger than this is given back */
#define MAX_PACKET (16 * 1024 * 1024) /* largest packet accepted from a broker */
/* The input buffer's cap: a packet being read, one read budget and its chunk fit with room. */
#define IN_MAX (4 * (size_t)MAX_PACKET)
#define SEND_BUDGET (256 * 1024) /* bytes of queued publishes put in the write buffer per turn */
#define CONNECT_TIMEOUT_MS 30000 /* TCP, TLS and CONNACK together */

/* A QoS 1 publish until the broker acknowledges it; kept in publish order. */
struct outmsg {
    struct outmsg *next;
    uint64_t tag; /* the caller's */
    uint64_t seq; /* the link's own count: tells a message from a later one at the same address */
    uint16_t packet_id; /* 0 until first sent; kept when sent again (MQTT-4.4.0-1) */
    bool sent_before;   /* sent on an earlier connection: DUP when resent */
    bool alone;         /* sent only when nothing else is in flight (mqtt_publish_alone) */
    bool retain;        /* the broker keeps it for later subscribers (mqtt_publish_retained) */
    size_t len;
    char *topic; /* topic and payload share one allocation after the struct */
    unsigned char *payload;
};

enum link_state {
    LINK_IDLE,       /* no socket; a reconnect may be scheduled */
    LINK_CONNECTING, /* net.c connects: resolving, TCP, proxy, TLS */
    LINK_CONNACK,    /* CONNECT sent, waiting for CONNACK */
    LINK_UP,         /* CONNACK accepted */
};

struct mqtt_link {
    struct loop *loop;
    struct mqtt_callbacks cb;
    void *arg;
    struct wm_url url;
    char label[256];
    char *client_id;
    char *cafile, *certfile, *keyfile;
    struct tls_config *tls_cfg; /* set up at the first mqtts connection, kept for the next */
    char **subs;
    size_t nsubs;
    char **sub_filters; /* borrowed from subs: those of the last SUBSCRIBE */
    size_t nsub_filters;
    bool clean;
    int keepalive_s;        /* of the current connection */
    int keepalive_wanted_s; /* asked for in CONNECT */
    unsigned session_expiry_s;
    int version;        /* MQTT_LEVEL_5 or MQTT_LEVEL_311, for the current or next connection */
    bool may_fall_back; /* MQTT_AUTO: use 3.1.1 if the broker refuses 5 */
    bool trying_v311;   /* fell back after a close, not a CONNACK: settled by a 3.1.1 CONNACK */
    bool share_said;    /* the one line saying a 3.1.1 broker has no shared subscriptions */
    bool closing;
    bool paused; /* not reading: backpressure */
    /* Gating (mqtt_set_gated): on a connection that is up, out is written only up to byte
     * `released` of the connection; `written` counts what left. conn numbers connections. */
    bool gated;
    uint32_t conn;
    uint64_t written, released;
    enum link_state state;
    struct resolver *resolver;
    const struct proxy_config *proxies;
    struct net_conn *net;
    int fd;           /* net's socket once connected; -1 before */
    unsigned watched; /* events asked of the loop for fd */
    struct buf in;    /* bytes read, not yet handled */
    struct buf out;   /* bytes to write */
    struct buf probe; /* mqtt_publish's trial encoding of a topic */
    char *topic;      /* NUL-terminated copy of the topic of the message being delivered */
    size_t topic_cap;
    /* Publishes: [head, unsent) sent and awaiting PUBACK, [unsent, tail] not yet sent. */
    struct outmsg *head, *tail, *unsent;
    int inflight;     /* sent, not acknowledged */
    int send_quota;   /* most messages in flight: the broker's receive maximum, capped */
    int max_inflight; /* from the options */
    int pending;      /* publishes not yet acknowledged */
    uint64_t next_seq;
    uint32_t max_packet; /* the broker's Maximum Packet Size (CONNACK); 0: none */
    /* Finding a message the broker closes connections on: stuck_seq is the oldest message in
     * flight at the last close that blamed messages; when the next such close finds it still
     * there, the link probes: one message in flight at a time, so that the next close names
     * its culprit. */
    uint64_t stuck_seq;
    bool probing;
    uint16_t next_pid; /* packet ids, 1..65535 */
    uint16_t sub_pid;  /* SUBSCRIBE's packet id on this connection */
    unsigned char pid_used[65536 / 8];
    int64_t backoff_ms;
    int64_t last_write_ms, state_since_ms, ping_sent_ms;
    struct loop_timer reconnect_timer;
    struct loop_timer tick_timer;
    struct loop_timer resume_timer;
    char last_error[256]; /* to log a repeated connection error at most once a minute */
    int64_t last_error_ms;
};

static void schedule_reconnect(struct mqtt_link *l);
static void drop_connection(struct mqtt_link *l, const char *why);
static void blame_messages(struct mqtt_link *l, uint8_t blame, const char *how);
static void connection_lost(struct mqtt_link *l, const char *why, bool plain_close);
static void handle_input(struct mqtt_link *l);
static void update_watch(struct mqtt_link *l);

/* A link that keeps failing retries every few seconds: each distinct error is logged at most
 * once a minute. */
static void log_link_error(struct mqtt_link *l, const char *what)
{
    int64_t now = loop_now_ms(l->loop);
    if (strcmp(what, l->last_error) == 0 && now - l->last_error_ms < 60000) return;
    snprintf(l->last_error, sizeof l->last_error, "%s", what);
    l->last_error_ms = now;
    log_warn("broker %s: %s", l->label, what);
}

/* ---- packet ids ---- */

static bool pid_in_use(const struct mqtt_link *l, uint16_t pid)
{
    return l->pid_used[pid / 8] & (1u << (pid % 8));
}

static void pid_mark(struct mqtt_link *l, uint16_t pid, bool used)
{
    if (used)
        l->pid_used[pid / 8] = (unsigned char)(l->pid_used[pid / 8] | (1u << (pid % 8)));
    else
        l->pid_used[pid / 8] = (unsigned char)(l->pid_used[pid / 8] & ~(1u << (pid % 8)));
}

/* At most RECEIVE_MAXIMUM-sized windows are in flight, so a free id is always near. */
static uint16_t pid_take(struct mqtt_link *l)
{
    do {
        l->next_pid = (uint16_t)(l->next_pid + 1);
    } while (l->next_pid == 0 || pid_in_use(l, l->next_pid));
    pid_mark(l, l->next_pid, true);
    return l->next_pid;
}

/* ---- the socket ---- */

static void unwatch(struct mqtt_link *l)
{
    if (l->fd >= 0 && l->watched) loop_unwatch(l->loop, l->fd);
    l->watched = 0;
}

static void close_socket(struct mqtt_link *l)
{
    unwatch(l);
    net_close(&l->net);
    l->fd = -1;
    l->in.len = 0;
    l->out.len = 0;
    l->written = l->released = 0;
    l->conn++;
}

static bool write_wants_read(const struct mqtt_link *l)
{
    return l->net && net_write_wants_read(l->net);
}

/* Bytes of l->out that may be written now: all of them, but on a gated link that is up only
 * those released. */
static size_t writable(const struct mqtt_link *l)
{
    if (!l->gated || l->state != LINK_UP) return l->out.len;
    uint64_t allowed = l->released > l->written ? l->released - l->written : 0;
    return allowed < l->out.len ? (size_t)allowed : l->out.len;
}

/* Writes as much of l->out as the socket takes and gating allows. False when the connection
 * failed. */
static bool write_out(struct mqtt_link *l)
{
    /* Bytes of net.c's own first (WebSocket frames, a pong). */
    if (l->net && net_wants_write(l->net) && !net_flush(l->net) && errno != EAGAIN &&
        errno != EWOULDBLOCK) {
        int err = errno;
        char why[300];
        snprintf(why, sizeof why, "write failed: %s", net_error(l->net, err));
        connection_lost(l, why, false);
        return false;
    }
    size_t can;
    while ((can = writable(l)) > 0) {
        struct iovec iov = {l->out.data, can};
        ssize_t n = net_writev(l->net, &iov, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) {
            int err = n < 0 ? errno : EPIPE;
            char why[300];
            snprintf(why, sizeof why, "write failed: %s", net_error(l->net, err));
            connection_lost(l, why, false);
            return false;
        }
        buf_consume(&l->out, (size_t)n);
        l->written += (uint64_t)n;
        l->last_write_ms = loop_now_ms(l->loop);
    }
    if (l->out.len == 0 && l->out.cap > KEEP_BUFFER) buf_free(&l->out);
    return true;
}

/* ---- publishes ---- */

/* Takes m out of the queue (wherever it is) and frees its packet id. The caller frees m. */
static void unlink_msg(struct mqtt_link *l, struct outmsg *m)
{
    struct outmsg *prev = NULL, *c = l->head;
    bool in_flight = true; /* m comes before unsent */
    while (c && c != m) {
        if (c == l->unsent) in_flight = false;
        prev = c;
        c = c->next;
    }
    if (!c) return;
    if (m == l->unsent) {
        in_flight = false;
        l->unsent = m->next;
    }
    if (prev)
        prev->next = m->next;
    else
        l->head = m->next;
    if (l->tail == m) l->tail = prev;
    if (m->packet_id) pid_mark(l, m->packet_id, false);
    if (in_flight && m->packet_id) l->inflight--;
    l->pending--;
}

/* Tells the caller how m ended (why NULL: acknowledged with success) and frees it. */
static void finish_msg(struct mqtt_link *l, struct outmsg *m, uint8_t reason, const char *why,
                       bool closed)
{
    struct mqtt_published p = {.tag = m->tag,
                               .closed = closed,
                               .reason = why ? reason : 0,
                               .why = why,
                               .topic = m->topic,
                               .payload = m->payload,
                               .len = m->len};
    if (l->cb.on_published) l->cb.on_published(l->arg, l, &p);
    free(m); /* topic and payload live in the same allocation */
}

/* A message the broker must not be sent: over its Maximum Packet Size. */
static void refuse_too_big(struct mqtt_link *l, struct outmsg *m, size_t size)
{
    char why[160];
    snprintf(why, sizeof why, "packet too large: %zu bytes, the broker's maximum is %u", size,
             (unsigned)l->max_packet);
    unlink_msg(l, m);
    finish_msg(l, m, 0x95, why, false);
}

/* Moves queued publishes into the write buffer while the broker's window allows. */
static void send_publishes(struct mqtt_link *l)
{
    size_t budget = SEND_BUDGET;
    bool one = l->probing || (l->inflight == 1 && l->head->alone);
    int quota = one ? 1 : l->send_quota;
    while (l->unsent && l->inflight < quota && budget > 0) {
        struct outmsg *m = l->unsent;
        if (m->alone && l->inflight > 0) break; /* it waits for the window to empty */
        bool fresh_id = m->packet_id == 0;
        if (fresh_id) m->packet_id = pid_take(l);
        struct mqtt_publish pub = {.topic = m->topic,
                                   .payload = m->payload,
                                   .len = m->len,
                                   .qos = 1,
                                   .retain = m->retain,
                                   .dup = m->sent_before,
                                   .packet_id = m->packet_id,
                                   .content_type =
                                       l->version == MQTT_LEVEL_5 ? "application/json" : NULL};
        size_t before = l->out.len;
        enum wm_err e = mqtt_wire_publish(&l->out, l->version, &pub);
        if (e != WM_OK) {
            /* mqtt_publish checked topic and size, so only memory (or the output buffer's cap)
             * can be short: retried at the next turn. */
            if (fresh_id) {
                pid_mark(l, m->packet_id, false);
                m->packet_id = 0;
            }
            if (e != WM_ERR_NOMEM && e != WM_ERR_TOOBIG)
                log_error("broker %s: cannot encode a message on %s: %s", l->label, m->topic,
                          wm_strerror(e));
            return;
        }
        size_t size = l->out.len - before;
        if (l->max_packet && size > l->max_packet) {
            l->out.len = before; /* never sent: the broker would close the connection */
            refuse_too_big(l, m, size);
            continue;
        }
        l->inflight++;
        budget = m->len > budget ? 0 : budget - m->len;
        l->unsent = m->next;
        if (m->alone) quota = 1; /* and nothing goes with it */
    }
}

/* The broker acknowledged packet_id: the message is done, taken or refused. */
static void acknowledged(struct mqtt_link *l, uint16_t packet_id, uint8_t reason,
                         const struct mqtt_packet *p)
{
    struct outmsg *m = l->head;
    /* Brokers acknowledge in order, so the oldest message is nearly always the one. */
    while (m && m != l->unsent && m->packet_id != packet_id)
        m = m->next;
    if (!m || m == l->unsent) {
        log_warn("broker %s: PUBACK for unknown packet id %u ignored", l->label,
                 (unsigned)packet_id);
        return;
    }
    unlink_msg(l, m);
    l->probing = false; /* the one probed has its answer */
    if (reason < 0x80) {
        finish_msg(l, m, 0, NULL, false);
        return;
    }
    char why[300];
    snprintf(why, sizeof why, "%s%s%.*s", mqtt_wire_reason_text(reason),
             p->reason_string ? ": " : "", (int)(p->reason_string ? p->reason_string_len : 0),
             p->reason_string ? p->reason_string : "");
    finish_msg(l, m, reason, why, false);
}

/* The broker ended the connection, maybe because of a message (blame: the DISCONNECT's
 * reason, 0x80 for a close without one). A message alone in flight while probing, or sent
 * alone, is refused; the same oldest message in flight at two such closes in a row starts
 * probing. */
static void blame_messages(struct mqtt_link *l, uint8_t blame, const char *how)
{
    struct outmsg *oldest = l->head;
    if (!oldest || oldest == l->unsent) return; /* nothing in flight: nothing to blame */
    if ((l->probing || oldest->alone) && l->inflight == 1) {
        char why[200];
        snprintf(why, sizeof why, "the broker closed the connection on this message (%s)",
                 how ? how : mqtt_wire_reason_text(blame));
        l->probing = false;
        l->stuck_seq = 0;
        unlink_msg(l, oldest);
        finish_msg(l, oldest, blame, why, true);
        return;
    }
    if (oldest->seq == l->stuck_seq) {
        if (!l->probing)
            log_warn("broker %s: closed the connection twice with the message on %s "
                     "unacknowledged: sending one message at a time to find the one it refuses",
                     l->label, oldest->topic);
        l->probing = true;
        return;
    }
    l->stuck_seq = oldest->seq;
}

/* After a connection ends, everything sent but not acknowledged goes again on the next one,
 * with the DUP flag and its packet id (which stays taken). */
static void requeue_inflight(struct mqtt_link *l)
{
    for (struct outmsg *m = l->head; m && m != l->unsent; m = m->next)
        m->sent_before = true;
    l->unsent = l->head;
    l->inflight = 0;
}

/* ---- connection life ---- */

static void set_state(struct mqtt_link *l, enum link_state s)
{
    l->state = s;
    l->state_since_ms = loop_now_ms(l->loop);
}

/* Ends the connection. blame, when not 0, is the reason code to refuse a message with should
 * the broker have ended the connection because of it (blame_messages). */
static void drop_blaming(struct mqtt_link *l, const char *why, uint8_t blame)
{
    bool was_up = l->state == LINK_UP;
    close_socket(l);
    if (l->sub_pid) pid_mark(l, l->sub_pid, false);
    l->sub_pid = 0;
    set_state(l, LINK_IDLE);
    if (was_up && blame) blame_messages(l, blame, why);
    requeue_inflight(l);
    if (l->closing) return;
    if (was_up)
        log_warn("broker %s: disconnected (%s)", l->label, why);
    else if (why)
        log_link_error(l, why);
    if (was_up && l->cb.on_disconnect) l->cb.on_disconnect(l->arg, l);
    schedule_reconnect(l);
}

/* Ends the connection for a reason of ours (a timeout, a broker's packet we refuse): no
 * message is to blame. */
static void drop_connection(struct mqtt_link *l, const char *why)
{
    drop_blaming(l, why, 0);
}

/* Whether a DISCONNECT's reason may be about a message we sent. Shutdowns, take-overs,
 * keep-alive and rate limits are not. */
static bool reason_blames_message(uint8_t reason)
{
    switch (reason) {
    case 0x80: /* unspecified error */
    case 0x81: /* malformed packet */
    case 0x82: /* protocol error */
    case 0x83: /* implementation specific error */
    case 0x87: /* not authorized */
    case 0x90: /* topic name invalid */
    case 0x93: /* receive maximum exceeded */
    case 0x94: /* topic alias invalid */
    case 0x95: /* packet too large */
    case 0x99: /* payload format invalid */
    case 0x9A: /* retain not supported */
    case 0x9B: /* QoS not supported */
        return true;
    default:
        return false;
    }
}

/* The connection ended before any CONNACK. A broker that knows only MQTT 3.1.1 may close it on
 * an MQTT 5 CONNECT instead of answering "unacceptable protocol version" (RabbitMQ 3.x does):
 * try 3.1.1 next. A broker that is down behind a proxy closes connections the same way, so this
 * fallback stands only once 3.1.1 gets a CONNACK; if 3.1.1 is closed too, MQTT 5 comes back. */
static void closed_before_connack(struct mqtt_link *l)
{
    if (l->version == MQTT_LEVEL_5 && l->may_fall_back) {
        log_warn("broker %s: closed the connection on an MQTT 5 CONNECT; trying 3.1.1", l->label);
        l->may_fall_back = false;
        l->trying_v311 = true;
        l->version = MQTT_LEVEL_311;
        l->backoff_ms = 0;
    } else if (l->trying_v311) {
        log_info("broker %s: closed the connection on MQTT 3.1.1 too; back to MQTT 5", l->label);
        l->trying_v311 = false;
        l->may_fall_back = true;
        l->version = MQTT_LEVEL_5;
    }
}

/* The connection failed or the broker closed it. Only a close or reset read where the CONNACK
 * should be (plain_close) answers a CONNECT's protocol version: a TLS alert (a client
 * certificate refused, under TLS 1.3 only after the handshake), a broken WebSocket stream or a
 * write that failed (the alert waits unread behind it) say nothing about it. */
static void connection_lost(struct mqtt_link *l, const char *why, bool plain_close)
{
    if (l->state == LINK_CONNACK && plain_close) closed_before_connack(l);
    drop_blaming(l, why, 0x80); /* a broker that cannot say why may close on a message */
}

static bool queue_connect(struct mqtt_link *l)
{
    struct mqtt_connect c = {.version = l->version,
                             .client_id = l->client_id ? l->client_id : "",
                             .clean_start = l->clean,
                             .keepalive_s = (uint16_t)l->keepalive_wanted_s,
                             .username = l->url.user,
                             .password = l->url.password};
    if (l->version == MQTT_LEVEL_5) {
        c.receive_maximum = RECEIVE_MAXIMUM;
        c.maximum_packet_size = MAX_PACKET;
        if (!l->clean) c.session_expiry_s = l->session_expiry_s;
    }
    enum wm_err e = mqtt_wire_connect(&l->out, &c);
    if (e != WM_OK) {
        char why[128];
        snprintf(why, sizeof why, "cannot build CONNECT: %s", wm_strerror(e));
        drop_connection(l, why);
        return false;
    }
    set_state(l, LINK_CONNACK);
    return write_out(l);
}

/* net.c ended the connect: CONNECT goes out, or the link tries again later. */
static void on_net_ready(void *arg, struct net_conn *net, enum wm_err err, const char *why)
{
    struct mqtt_link *l = arg;
    (void)net;
    if (err != WM_OK) {
        log_link_error(l, why);
        close_socket(l);
        set_state(l, LINK_IDLE);
        schedule_reconnect(l);
        return;
    }
    l->fd = net_fd(l->net);
    if (queue_connect(l)) update_watch(l);
}

static void start_connect(void *arg)
{
    struct mqtt_link *l = arg;
    if (l->closing || l->state != LINK_IDLE) return;
    char why[300];
    bool tls = strcmp(l->url.scheme, "mqtts") == 0 || strcmp(l->url.scheme, "wss") == 0;
    bool ws = strcmp(l->url.scheme, "ws") == 0 || strcmp(l->url.scheme, "wss") == 0;
    struct tls_settings ts = {.cafile = l->cafile, .certfile = l->certfile, .keyfile = l->keyfile};
    if (tls && !l->tls_cfg && tls_config_new(&ts, &l->tls_cfg, why, sizeof why) != WM_OK) {
        log_link_error(l, why);
        schedule_reconnect(l);
        return;
    }
    if (!l->resolver && !(l->resolver = resolver_new(l->loop))) {
        log_link_error(l, "cannot start a resolver: out of memory or descriptors");
        schedule_reconnect(l);
        return;
    }
    const struct proxy_server *proxy = NULL;
    if (l->proxies &&
        proxy_for(l->proxies, l->url.scheme, l->url.host, &proxy, why, sizeof why) != WM_OK) {
        log_link_error(l, why);
        schedule_reconnect(l);
        return;
    }
    struct net_target target = {.host = l->url.host,
                                .port = l->url.port,
                                .tls = tls,
                                .tls_config = l->tls_cfg,
                                .ws_path = !ws              ? NULL
                                           : l->url.path[0] ? l->url.path
                                                            : "/mqtt",
                                .proxy = proxy,
                                .tunnel = true,
                                .timeout_ms = CONNECT_TIMEOUT_MS};
    if (net_connect(l->loop, l->resolver, &target, on_net_ready, l, &l->net) != WM_OK) {
        log_link_error(l, "cannot connect: out of memory");
        schedule_reconnect(l);
        return;
    }
    set_state(l, LINK_CONNECTING);
}

bool mqtt_url_scheme_ok(const char *scheme)
{
    static const char *const ok[] = {"mqtt", "mqtts", "ws", "wss"};
    for (size_t i = 0; scheme && i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(scheme, ok[i]) == 0) return true;
    return false;
}

static void schedule_reconnect(struct mqtt_link *l)
{
    if (l->closing || loop_timer_active(&l->reconnect_timer)) return;
    /* Exponential backoff with +-25% jitter, so peers that lost one broker together do not
     * all return at the same instant. */
    int64_t base = l->backoff_ms ? l->backoff_ms : BACKOFF_MIN_MS;
    int64_t jitter = base / 4 ? (int64_t)(random() % (base / 2 + 1)) - base / 4 : 0;
    loop_timer_start(l->loop, &l->reconnect_timer, base + jitter, start_connect, l);
    log_debug("broker %s: next attempt in %lld ms", l->label, (long long)(base + jitter));
    l->backoff_ms = base * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : base * 2;
}

/* Shared subscriptions ("$share/GROUP/filter") are an MQTT 5 feature. A broker that refused
 * MQTT 5 either refuses them or takes them literally (RabbitMQ 3.x: a filter that matches
 * nothing), and the processes of the group would silently get nothing: such filters are left
 * out, and the link says so once. */
static bool skip_shared(struct mqtt_link *l, const char *filter)
{
    if (l->version == MQTT_LEVEL_5 || strncmp(filter, "$share/", 7) != 0) return false;
    if (!l->share_said)
        log_error("broker %s: speaks MQTT 3.1.1 only, which has no shared subscriptions: not "
                  "subscribing to %s (--share cannot work with this broker)",
                  l->label, filter);
    l->share_said = true;
    return true;
}

/* One SUBSCRIBE for all filters; l->sub_filters lists them in the order of the SUBACK's codes. */
static void subscribe_all(struct mqtt_link *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->nsubs; i++)
        if (!skip_shared(l, l->subs[i])) l->sub_filters[n++] = l->subs[i];
    l->nsub_filters = n;
    if (n == 0) return;
    l->sub_pid = pid_take(l);
    enum wm_err e = mqtt_wire_subscribe(&l->out, l->version, l->sub_pid,
                                        (const char *const *)l->sub_filters, n, 1);
    if (e != WM_OK) log_error("broker %s: cannot subscribe: %s", l->label, wm_strerror(e));
}

static void on_connack(struct mqtt_link *l, const struct mqtt_packet *p)
{
    l->trying_v311 = false; /* the broker answered: the protocol of this attempt stands */
    if (p->reason != 0) {
        if (l->version == MQTT_LEVEL_5 && l->may_fall_back &&
            mqtt_wire_refuses_version(p->reason)) {
            log_warn("broker %s: refuses MQTT 5; using 3.1.1", l->label);
            l->version = MQTT_LEVEL_311;
            l->may_fall_back = false;
            l->backoff_ms = 0;
            drop_connection(l, NULL);
            return;
        }
        char why[300];
        snprintf(why, sizeof why, "connection refused: %s%s%.*s",
                 mqtt_wire_connack_text(l->version, p->reason), p->reason_string ? ": " : "",
                 (int)(p->reason_string ? p->reason_string_len : 0),
                 p->reason_string ? p->reason_string : "");
        drop_connection(l, why);
        return;
    }
    set_state(l, LINK_UP);
    /* MQTT 5: the broker may impose its own keep-alive, which the client must then use. */
    l->keepalive_s = p->server_keepalive_set ? p->server_keepalive_s : l->keepalive_wanted_s;
    l->ping_sent_ms = 0;
    l->may_fall_back = false; /* this broker speaks the protocol we chose */
    l->backoff_ms = 0;
    l->last_error[0] = '\0';
    int quota = l->version == MQTT_LEVEL_5 && p->receive_maximum ? p->receive_maximum : 65535;
    l->send_quota = quota < l->max_inflight ? quota : l->max_inflight;
    l->max_packet = l->version == MQTT_LEVEL_5 ? p->maximum_packet_size : 0;
    log_info("broker %s: connected (MQTT %s%s)", l->label,
             l->version == MQTT_LEVEL_5 ? "5" : "3.1.1",
             p->session_present ? ", session resumed" : "");
    subscribe_all(l);
    l->released = l->written + l->out.len; /* the subscriptions acknowledge nothing */
    if (l->cb.on_connect) l->cb.on_connect(l->arg, l, p->session_present);
}

static void on_suback(struct mqtt_link *l, const struct mqtt_packet *p)
{
    if (!l->sub_pid || p->packet_id != l->sub_pid) return;
    pid_mark(l, l->sub_pid, false);
    l->sub_pid = 0;
    /* A refused subscription would otherwise go unnoticed: the link is up, nothing arrives. */
    for (size_t i = 0; i < p->ncodes && i < l->nsub_filters; i++) {
        if (p->codes[i] >= 0x80)
            log_error("broker %s: refused the subscription to %s (code 0x%02x)", l->label,
                      l->sub_filters[i], (unsigned)p->codes[i]);
        else if (p->codes[i] == 0)
            log_warn("broker %s: granted QoS 0 only for %s: what is lost in transit is not resent",
                     l->label, l->sub_filters[i]);
    }
}

static bool deliver(struct mqtt_link *l, const struct mqtt_packet *p)
{
    if (p->topic_alias || p->qos > 1) {
        drop_connection(l, p->qos > 1 ? "broker sent QoS 2, which was never asked for"
                                      : "broker sent a topic alias, which was never allowed");
        return false;
    }
    if (p->topic_len + 1 > l->topic_cap) {
        size_t cap = p->topic_len + 1 < 256 ? 256 : p->topic_len + 1;
        char *t = realloc(l->topic, cap);
        if (!t) {
            drop_connection(l, "out of memory");
            return false;
        }
        l->topic = t;
        l->topic_cap = cap;
    }
    memcpy(l->topic, p->topic, p->topic_len);
    l->topic[p->topic_len] = '\0';
    if (l->cb.on_message) {
        struct mqtt_msg m = {.topic = l->topic,
                             .payload = p->payload,
                             .len = p->payload_len,
                             .qos = p->qos,
                             .retain = p->retain,
                             .dup = p->dup};
        if (!l->cb.on_message(l->arg, l, &m)) {
            drop_connection(l, "a message could not be taken: unacknowledged, the broker sends "
                               "it again");
            return false;
        }
    }
    /* The acknowledgement waits in l->out for the write hook, which runs after the journal. */
    if (p->qos == 1 && mqtt_wire_puback(&l->out, p->packet_id) != WM_OK) {
        drop_connection(l, "out of memory"); /* unacknowledged: the broker sends it again */
        return false;
    }
    return true;
}

/* Handles one packet; false when it ended the connection. */
static bool handle_packet(struct mqtt_link *l, const struct mqtt_packet *p)
{
    if (l->state == LINK_CONNACK && p->type != MQTT_CONNACK) {
        drop_connection(l, "broker sent a packet before CONNACK");
        return false;
    }
    switch (p->type) {
    case MQTT_CONNACK:
        if (l->state != LINK_CONNACK) {
            drop_connection(l, "unexpected CONNACK");
            return false;
        }
        on_connack(l, p);
        return l->state == LINK_UP;
    case MQTT_PUBLISH:
        return deliver(l, p);
    case MQTT_PUBACK:
        acknowledged(l, p->packet_id, p->reason, p);
        return l->fd >= 0;
    case MQTT_SUBACK:
        on_suback(l, p);
        return true;
    case MQTT_PINGRESP:
        l->ping_sent_ms = 0;
        return true;
    case MQTT_DISCONNECT: {
        char why[300];
        snprintf(why, sizeof why, "broker disconnected us (reason 0x%02x%s%.*s)",
                 (unsigned)p->reason, p->reason_string ? ": " : "",
                 (int)(p->reason_string ? p->reason_string_len : 0),
                 p->reason_string ? p->reason_string : "");
        drop_blaming(l, why, reason_blames_message(p->reason) ? p->reason : 0);
        return false;
    }
    default: {
        char why[64];
        snprintf(why, sizeof why, "unexpected packet type %d", (int)p->type);
        drop_connection(l, why);
        return false;
    }
    }
}

/* Handles every whole packet in l->in, unless reading is paused. */
static void handle_input(struct mqtt_link *l)
{
    size_t off = 0;
    while (l->fd >= 0 && !l->paused && off < l->in.len) {
        struct mqtt_packet p;
        size_t used = 0;
        char why[200] = "";
        enum wm_err e = mqtt_wire_parse(l->in.data + off, l->in.len - off, l->version, MAX_PACKET,
                                        &p, &used, why, sizeof why);
        if (e == WM_ERR_NOTFOUND) break;
        if (e != WM_OK) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s from the broker: %s",
                     e == WM_ERR_TOOBIG ? "packet too big" : "malformed packet", why);
            drop_connection(l, msg);
            return;
        }
        /* The packet's bytes stay in place while it is handled: the callbacks borrow them. */
        if (!handle_packet(l, &p)) return;
        off += used;
    }
    if (l->fd >= 0) buf_consume(&l->in, off);
    if (l->in.len == 0 && l->in.cap > KEEP_BUFFER) buf_free(&l->in); /* a burst is over */
}

/* Reads what the socket has (up to a budget, so other sockets are served too). False when the
 * connection ended. */
static bool read_in(struct mqtt_link *l)
{
    size_t budget = READ_BUDGET;
    while (budget > 0) {
        if (buf_reserve(&l->in, READ_CHUNK) != WM_OK) {
            drop_connection(l, "out of memory");
            return false;
        }
        size_t room = l->in.cap - l->in.len;
        ssize_t n = net_read(l->net, l->in.data + l->in.len, room);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        if (n <= 0) {
            int err = n < 0 ? errno : 0;
            char why[300];
            snprintf(why, sizeof why, "%s",
                     n == 0 ? "connection closed by the broker" : net_error(l->net, err));
            /* What came before the end counts: acknowledgements most of all. */
            if (l->in.len > 0) handle_input(l);
            if (l->fd >= 0) connection_lost(l, why, n == 0 || err == ECONNRESET);
            return false;
        }
        l->in.len += (size_t)n;
        budget = (size_t)n > budget ? 0 : budget - (size_t)n;
        if ((size_t)n < room && !net_pending(l->net)) return true; /* drained */
    }
    return true;
}

static void on_socket(void *arg, int fd, unsigned events)
{
    struct mqtt_link *l = arg;
    (void)fd;
    switch (l->state) {
    case LINK_CONNECTING: /* net.c watches the socket until then */
    case LINK_IDLE:
        return;
    default:
        break;
    }
    if ((events & LOOP_WRITE) || ((events & LOOP_READ) && write_wants_read(l))) {
        if (!write_out(l)) return;
    }
    if (events & (LOOP_READ | LOOP_ERROR)) {
        if (l->paused) {
            update_watch(l); /* an error while paused is found when reading resumes */
            return;
        }
        if (!read_in(l)) return;
        handle_input(l);
    }
    update_watch(l);
}

static void update_watch(struct mqtt_link *l)
{
    if (l->fd < 0 || l->state == LINK_CONNECTING) return;
    unsigned want = (l->paused ? 0 : LOOP_READ) |
                    (writable(l) > 0 || net_wants_write(l->net) ? LOOP_WRITE : 0) |
                    (write_wants_read(l) ? LOOP_READ : 0);
    if (want == l->watched) return;
    if (want == 0) {
        loop_unwatch(l->loop, l->fd);
        l->watched = 0;
    } else if (loop_watch(l->loop, l->fd, want, on_socket, l) == WM_OK) {
        l->watched = want;
    }
}

/* Before the loop sleeps: queued publishes and acknowledgements leave in one write. */
static void flush_hook(void *arg)
{
    struct mqtt_link *l = arg;
    if (l->state == LINK_UP) {
        send_publishes(l);
        if (!write_out(l)) return;
    }
    update_watch(l);
}

/* Once a second: keep-alive, and connections that hang. */
static void on_tick(void *arg)
{
    struct mqtt_link *l = arg;
    loop_timer_start(l->loop, &l->tick_timer, TICK_MS, on_tick, l);
    int64_t now = loop_now_ms(l->loop);
    int64_t limit_ms = (int64_t)l->keepalive_s * 1000;
    if (l->state == LINK_CONNECTING || l->state == LINK_CONNACK) {
        if (now - l->state_since_ms > CONNECT_TIMEOUT_MS)
            drop_connection(l, "broker did not answer in time");
        return;
    }
    if (l->state != LINK_UP || limit_ms == 0) return; /* keep-alive 0: the broker wants none */
    /* While paused the answer may wait unread behind messages: only a reading link judges. */
    if (l->ping_sent_ms && !l->paused && now - l->ping_sent_ms > limit_ms) {
        drop_connection(l, "broker did not answer PINGREQ");
        return;
    }
    /* On a gated link the PINGREQ waits behind the next release, like the PUBACKs before it:
     * a link whose acknowledgements stay held for long loses its connection either way. */
    if (!l->ping_sent_ms && now - l->last_write_ms >= limit_ms * 3 / 4) {
        if (mqtt_wire_pingreq(&l->out) == WM_OK) {
            l->ping_sent_ms = now;
            if (write_out(l)) update_watch(l);
        }
    }
}

/* Reading resumed: packets already read are handled without waiting for the socket. */
static void on_resume(void *arg)
{
    struct mqtt_link *l = arg;
    if (l->fd < 0 || l->paused || l->state == LINK_CONNECTING) return;
    handle_input(l);
    if (l->fd >= 0 && net_pending(l->net) && read_in(l)) handle_input(l);
    update_watch(l);
}

/* ---- set-up ---- */

static enum wm_err copy_options(struct mqtt_link *l, const struct mqtt_options *o)
{
    if (o->client_id && !(l->client_id = strdup(o->client_id))) return WM_ERR_NOMEM;
    if (o->cafile && !(l->cafile = strdup(o->cafile))) return WM_ERR_NOMEM;
    if (o->certfile && !(l->certfile = strdup(o->certfile))) return WM_ERR_NOMEM;
    if (o->keyfile && !(l->keyfile = strdup(o->keyfile))) return WM_ERR_NOMEM;
    if (o->nsubscriptions == 0) return WM_OK;
    l->subs = calloc(o->nsubscriptions, sizeof *l->subs);
    l->sub_filters = calloc(o->nsubscriptions, sizeof *l->sub_filters);
    if (!l->subs || !l->sub_filters) return WM_ERR_NOMEM;
    for (size_t i = 0; i < o->nsubscriptions; i++) {
        l->subs[i] = strdup(o->subscriptions[i]);
        if (!l->subs[i]) return WM_ERR_NOMEM;
        l->nsubs++;
    }
    return WM_OK;
}

struct mqtt_link *mqtt_link_new(struct loop *loop, const struct mqtt_options *o,
                                const struct mqtt_callbacks *cb, void *arg, enum wm_err *err)
{
    enum wm_err e = WM_ERR_INVAL;
    struct mqtt_link *l = NULL;
    if (!loop || !o || !o->url || !cb) goto fail;
    e = WM_ERR_NOMEM;
    if (!(l = calloc(1, sizeof *l))) goto fail;
    l->loop = loop;
    l->cb = *cb;
    l->arg = arg;
    l->proxies = o->proxies;
    l->fd = -1;
    l->in.max = IN_MAX;
    l->keepalive_wanted_s = o->keepalive_s > 0 && o->keepalive_s <= 65535 ? o->keepalive_s : 30;
    l->keepalive_s = l->keepalive_wanted_s;
    l->clean = o->client_id ? o->clean_session : true;
    l->session_expiry_s = o->session_expiry_s ? o->session_expiry_s : 7 * 24 * 3600;
    l->version = o->protocol == MQTT_V311 ? MQTT_LEVEL_311 : MQTT_LEVEL_5;
    l->may_fall_back = o->protocol == MQTT_AUTO;
    l->max_inflight = o->max_inflight > 0 ? o->max_inflight : 1000;
    if (l->max_inflight > 65000) l->max_inflight = 65000; /* packet ids must stay free */
    if ((e = url_parse(o->url, &l->url))) goto fail;
    e = WM_ERR_INVAL;
    if (!mqtt_url_scheme_ok(l->url.scheme)) goto fail;
    snprintf(l->label, sizeof l->label, "%s%s%s:%d", l->url.user ? l->url.user : "",
             l->url.user ? "@" : "", l->url.host, l->url.port);
    if ((e = copy_options(l, o))) goto fail;
    if ((e = loop_add_hook(loop, flush_hook, l))) goto fail;
    loop_timer_start(loop, &l->tick_timer, TICK_MS, on_tick, l);
    loop_timer_start(loop, &l->reconnect_timer, 0, start_connect, l);
    if (err) *err = WM_OK;
    return l;
fail:
    if (err) *err = e;
    mqtt_link_free(&l);
    return NULL;
}

void mqtt_link_free(struct mqtt_link **lp)
{
    if (!lp || !*lp) return;
    struct mqtt_link *l = *lp;
    l->closing = true;
    loop_timer_stop(l->loop, &l->reconnect_timer);
    loop_timer_stop(l->loop, &l->tick_timer);
    loop_timer_stop(l->loop, &l->resume_timer);
    if (l->state == LINK_UP) {
        /* A clean goodbye, best effort: what is held stays unwritten. */
        l->out.len = writable(l);
        l->gated = false;
        if (mqtt_wire_disconnect(&l->out, l->version) == WM_OK) write_out(l);
    }
    close_socket(l);
    loop_remove_hook(l->loop, flush_hook, l);
    while (l->head) {
        struct outmsg *m = l->head;
        l->head = m->next;
        free(m);
    }
    resolver_free(&l->resolver);
    buf_free(&l->in);
    buf_free(&l->out);
    buf_free(&l->probe);
    free(l->topic);
    for (size_t i = 0; i < l->nsubs; i++)
        free(l->subs[i]);
    free(l->subs);
    free(l->sub_filters);
    free(l->client_id);
    free(l->cafile);
    free(l->certfile);
    free(l->keyfile);
    tls_config_free(&l->tls_cfg);
    url_clear(&l->url);
    free(l);
    *lp = NULL;
}

static enum wm_err enqueue(struct mqtt_link *l, const char *topic, const void *payload, size_t len,
                           uint64_t tag, bool alone, bool retain)
{
    if (!l || !topic || !topic[0] || strpbrk(topic, "+#") || (len && !payload)) return WM_ERR_INVAL;
    size_t tlen = strlen(topic);
    if (tlen > 65535) return WM_ERR_INVAL;
    if (len > MQTT_MAX_REMAINING - tlen - 64) return WM_ERR_TOOBIG;
    /* A topic the encoder refuses (such as invalid UTF-8) is refused now, not when sending,
     * where it would hold up every message behind it. */
    struct mqtt_publish trial = {.topic = topic, .qos = 1, .packet_id = 1};
    l->probe.len = 0; /* reused: no allocation per publish once it has grown */
    enum wm_err e = mqtt_wire_publish(&l->probe, MQTT_LEVEL_311, &trial);
    if (e != WM_OK) return e;
    struct outmsg *m = malloc(sizeof *m + tlen + 1 + len);
    if (!m) return WM_ERR_NOMEM;
    *m = (struct outmsg){.len = len, .alone = alone, .retain = retain};
    m->topic = (char *)(m + 1);
    memcpy(m->topic, topic, tlen + 1);
    m->payload = (unsigned char *)m->topic + tlen + 1;
    if (len) memcpy(m->payload, payload, len);
    m->tag = tag;
    m->seq = ++l->next_seq;
    if (l->tail)
        l->tail->next = m;
    else
        l->head = m;
    l->tail = m;
    if (!l->unsent) l->unsent = m;
    l->pending++;
    return WM_OK; /* it leaves in the write hook, or after the next CONNACK */
}

enum wm_err mqtt_publish(struct mqtt_link *l, const char *topic, const void *payload, size_t len,
                         uint64_t tag)
{
    return enqueue(l, topic, payload, len, tag, false, false);
}

enum wm_err mqtt_publish_retained(struct mqtt_link *l, const char *topic, const void *payload,
                                  size_t len, uint64_t tag)
{
    return enqueue(l, topic, payload, len, tag, false, true);
}

enum wm_err mqtt_publish_alone(struct mqtt_link *l, const char *topic, const void *payload,
                               size_t len, uint64_t tag)
{
    return enqueue(l, topic, payload, len, tag, true, false);
}

void mqtt_flush(struct mqtt_link *l)
{
    if (l) flush_hook(l);
}

void mqtt_set_reading(struct mqtt_link *l, bool on)
{
    if (!l || l->paused == !on) return;
    l->paused = !on;
    if (on && !loop_timer_active(&l->resume_timer) && l->in.len > 0)
        loop_timer_start(l->loop, &l->resume_timer, 0, on_resume, l);
    else if (on && !loop_timer_active(&l->resume_timer) && l->net && net_pending(l->net))
        loop_timer_start(l->loop, &l->resume_timer, 0, on_resume, l);
    update_watch(l);
}

void mqtt_set_gated(struct mqtt_link *l, bool gated)
{
    if (!l || l->gated == gated) return;
    l->gated = gated;
    if (!gated && l->fd >= 0) update_watch(l);
}

struct mqtt_mark mqtt_mark(const struct mqtt_link *l)
{
    if (!l) return (struct mqtt_mark){0};
    return (struct mqtt_mark){.conn = l->conn, .offset = l->written + l->out.len};
}

void mqtt_release(struct mqtt_link *l, struct mqtt_mark mark)
{
    /* The link's pre-wait hook, which runs at the end of every turn, does the writing. */
    if (l && mark.conn == l->conn && mark.offset > l->released) l->released = mark.offset;
}

bool mqtt_connected(const struct mqtt_link *l)
{
    return l && l->state == LINK_UP;
}

const char *mqtt_label(const struct mqtt_link *l)
{
    return l ? l->label : "";
}

int mqtt_protocol_version(const struct mqtt_link *l)
{
    return l && l->version == MQTT_LEVEL_5 ? 5 : 4;
}

int mqtt_pending(const struct mqtt_link *l)
{
    return l ? l->pending : 0;
}

uint32_t mqtt_max_packet(const struct mqtt_link *l)
{
    return l ? l->max_packet : 0;
}
