/* mqtt.c: the only file that includes <mosquitto.h>: broker links driven by our event loop. */
#include "mqtt.h"

#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "url.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
#define MISC_INTERVAL_MS 1000
#define READ_BATCH 512
#define RECEIVE_MAXIMUM 1000

struct mqtt_link {
    struct loop *loop;
    struct mosquitto *mosq;
    struct mqtt_callbacks cb;
    void *arg;
    struct wm_url url;
    char label[256];
    char **subs;
    size_t nsubs;
    int keepalive_s;
    int fd;           /* the socket we watch, -1 when none */
    unsigned watched; /* events asked of the loop for fd */
    bool connected;   /* CONNACK accepted */
    bool ever_connected;
    bool closing;
    bool paused; /* not reading: backpressure */
    bool held;   /* not writing: acknowledgements must wait */
    int64_t backoff_ms;
    int pending;          /* QoS 1 publishes not yet acknowledged */
    bool v5;              /* speaking MQTT 5 */
    char last_error[256]; /* the library's last error message, to log each once a minute */
    int64_t last_error_ms;
    bool may_fall_back; /* MQTT_AUTO: retry with 3.1.1 if the broker refuses 5 */
    bool clean;
    unsigned session_expiry_s;
    mosquitto_property *publish_props; /* content type, for MQTT 5 publishes */
    struct loop_timer *reconnect_timer;
    struct loop_timer *misc_timer;
};

static void schedule_reconnect(struct mqtt_link *l);

static int lib_init_once(void)
{
    static bool done;
    if (done) return MOSQ_ERR_SUCCESS;
    done = true;
    return mosquitto_lib_init();
}

static void unwatch_socket(struct mqtt_link *l)
{
    if (l->fd >= 0) loop_unwatch(l->loop, l->fd);
    l->fd = -1;
    l->watched = 0;
}

static void link_lost(struct mqtt_link *l)
{
    unwatch_socket(l);
    l->connected = false;
    schedule_reconnect(l);
}

/* Reads only: writes wait for flush_hook, which runs after the hooks added before it (the
 * journal's sync), so a PUBACK never leaves before what it acknowledges is durable. */
static void on_socket(void *arg, int fd, unsigned events)
{
    struct mqtt_link *l = arg;
    (void)fd;
    if (!(events & (LOOP_READ | LOOP_ERROR))) return;
    /* mosquitto_loop_read() reads one packet when it has no QoS 2 state to catch up on. Read
     * until the socket is drained (EAGAIN), so a backlog is admitted in batches that share
     * one journal sync, not one sync per message. The cap keeps other sockets served. */
    for (int i = 0; i < READ_BATCH && l->fd >= 0 && !l->paused; i++) {
        errno = 0;
        int rc = mosquitto_loop_read(l->mosq, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            /* A failed read has already closed the socket and called on_disconnect. */
            if (l->fd >= 0 && mosquitto_socket(l->mosq) < 0) link_lost(l);
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    }
}

static void update_watch(struct mqtt_link *l)
{
    int fd = mosquitto_socket(l->mosq);
    if (fd < 0) {
        if (l->fd >= 0) unwatch_socket(l);
        return;
    }
    if (fd != l->fd) {
        unwatch_socket(l);
        l->fd = fd;
    }
    unsigned want =
        (l->paused ? 0 : LOOP_READ) | (!l->held && mosquitto_want_write(l->mosq) ? LOOP_WRITE : 0);
    if (want == l->watched) return;
    if (want == 0) {
        loop_unwatch(l->loop, fd); /* keeps l->fd: the socket is still ours */
        l->watched = 0;
    } else if (loop_watch(l->loop, fd, want, on_socket, l) == WM_OK) {
        l->watched = want;
    }
}

/* Before the loop sleeps: send what callbacks queued (PUBACKs, publishes) in one go. */
static void flush_hook(void *arg)
{
    struct mqtt_link *l = arg;
    if (l->fd >= 0 && !l->held && mosquitto_want_write(l->mosq)) {
        int rc = mosquitto_loop_write(l->mosq, 1);
        if (rc != MOSQ_ERR_SUCCESS && mosquitto_socket(l->mosq) < 0) {
            link_lost(l);
            return;
        }
    }
    update_watch(l);
}

static void on_misc_timer(void *arg)
{
    struct mqtt_link *l = arg;
    l->misc_timer = loop_timer_add(l->loop, MISC_INTERVAL_MS, on_misc_timer, l);
    if (l->fd >= 0) mosquitto_loop_misc(l->mosq);
}

static void start_connect(void *arg)
{
    struct mqtt_link *l = arg;
    l->reconnect_timer = NULL;
    if (l->closing) return;
    int rc = l->ever_connected
                 ? mosquitto_reconnect_async(l->mosq)
                 : mosquitto_connect_async(l->mosq, l->url.host, l->url.port, l->keepalive_s);
    if (rc != MOSQ_ERR_SUCCESS) {
        log_warn("broker %s: connect failed: %s", l->label,
                 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        schedule_reconnect(l);
        return;
    }
    l->ever_connected = true; /* from now on reconnect_async keeps the session's messages */
    update_watch(l);
}

static void schedule_reconnect(struct mqtt_link *l)
{
    if (l->closing || l->reconnect_timer) return;
    /* Exponential backoff with +-25% jitter, so peers that lost one broker together do not
     * all return at the same instant. */
    int64_t base = l->backoff_ms ? l->backoff_ms : BACKOFF_MIN_MS;
    int64_t jitter = base / 4 ? (int64_t)(random() % (base / 2 + 1)) - base / 4 : 0;
    l->reconnect_timer = loop_timer_add(l->loop, base + jitter, start_connect, l);
    l->backoff_ms = base * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : base * 2;
}

static enum wm_err set_protocol(struct mqtt_link *l, bool v5);

static bool refused_protocol(int rc)
{
    return rc == CONNACK_REFUSED_PROTOCOL_VERSION || rc == MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION;
}

static void cb_connect(struct mosquitto *m, void *arg, int rc)
{
    struct mqtt_link *l = arg;
    if (rc != 0 && l->v5 && l->may_fall_back && refused_protocol(rc)) {
        log_warn("broker %s: refuses MQTT 5; using 3.1.1", l->label);
        l->may_fall_back = false;
        set_protocol(l, false);
        l->backoff_ms = 0;
        return; /* the library drops the connection; on_disconnect schedules the retry */
    }
    if (rc != 0) {
        log_error("broker %s: connection refused: %s", l->label,
                  l->v5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc));
        return; /* the library drops the connection; on_disconnect schedules the retry */
    }
    l->connected = true;
    l->backoff_ms = 0;
    log_info("broker %s: connected (MQTT %s)", l->label, l->v5 ? "5" : "3.1.1");
    for (size_t i = 0; i < l->nsubs; i++) {
        int src = mosquitto_subscribe(m, NULL, l->subs[i], 1);
        if (src != MOSQ_ERR_SUCCESS)
            log_error("broker %s: subscribe %s: %s", l->label, l->subs[i], mosquitto_strerror(src));
    }
    if (l->cb.on_connect) l->cb.on_connect(l->arg, l, false);
}

static void cb_disconnect(struct mosquitto *m, void *arg, int rc)
{
    struct mqtt_link *l = arg;
    (void)m;
    bool was = l->connected;
    l->connected = false;
    unwatch_socket(l);
    if (l->closing) return;
    if (was) log_warn("broker %s: disconnected (%s)", l->label, mosquitto_strerror(rc));
    if (l->cb.on_disconnect) l->cb.on_disconnect(l->arg, l);
    schedule_reconnect(l);
}

static void cb_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
    struct mqtt_link *l = arg;
    (void)m;
    if (!l->cb.on_message) return;
    struct mqtt_msg mm = {.topic = msg->topic,
                          .payload = msg->payload,
                          .len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0,
                          .qos = msg->qos,
                          .retain = msg->retain};
    l->cb.on_message(l->arg, l, &mm);
}

static void cb_publish(struct mosquitto *m, void *arg, int mid)
{
    struct mqtt_link *l = arg;
    (void)m;
    if (l->pending > 0) l->pending--;
    if (l->cb.on_published) l->cb.on_published(l->arg, l, mid);
}

/* The library's errors name causes our return codes cannot, such as "certificate verify
 * failed": they are logged, each distinct one at most once a minute per link, since a link
 * that keeps failing retries every few seconds. */
static void cb_log(struct mosquitto *m, void *arg, int level, const char *str)
{
    struct mqtt_link *l = arg;
    (void)m;
    if (!(level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))) return;
    int64_t now = loop_now_ms(l->loop);
    if (strcmp(str, l->last_error) == 0 && now - l->last_error_ms < 60000) return;
    snprintf(l->last_error, sizeof l->last_error, "%s", str);
    l->last_error_ms = now;
    log_warn("broker %s: %s", l->label, str);
}

static enum wm_err copy_subscriptions(struct mqtt_link *l, const struct mqtt_options *o)
{
    if (o->nsubscriptions == 0) return WM_OK;
    l->subs = calloc(o->nsubscriptions, sizeof *l->subs);
    if (!l->subs) return WM_ERR_NOMEM;
    for (size_t i = 0; i < o->nsubscriptions; i++) {
        l->subs[i] = strdup(o->subscriptions[i]);
        if (!l->subs[i]) return WM_ERR_NOMEM;
        l->nsubs++;
    }
    return WM_OK;
}

/* Chooses the protocol of the next connection. MQTT 5 needs CONNECT properties (a session
 * expiry, or the broker ends a persistent session at disconnect), and libmosquitto 2.0 stores
 * them only in mosquitto_connect_bind_v5(), a blocking call. Given an invalid port it stores
 * them and returns before connecting; connect_async and reconnect_async then send them. */
static enum wm_err set_protocol(struct mqtt_link *l, bool v5)
{
    l->v5 = v5;
    mosquitto_int_option(l->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                         v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    mosquitto_property *props = NULL;
    if (v5 && !l->clean &&
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                     l->session_expiry_s) != MOSQ_ERR_SUCCESS)
        return WM_ERR_NOMEM;
    int rc = mosquitto_connect_bind_v5(l->mosq, l->url.host, -1, l->keepalive_s, NULL, props);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_INVAL) return WM_ERR_LIB; /* the library no longer works as described */
    l->ever_connected = false;                   /* the next attempt must be a full connect_async */
    mosquitto_property_free_all(&l->publish_props);
    if (v5 && mosquitto_property_add_string(&l->publish_props, MQTT_PROP_CONTENT_TYPE,
                                            "application/json") != MOSQ_ERR_SUCCESS)
        return WM_ERR_NOMEM;
    return WM_OK;
}

static enum wm_err configure(struct mqtt_link *l, const struct mqtt_options *o)
{
    bool clean = o->client_id ? o->clean_session : true;
    l->mosq = mosquitto_new(o->client_id, clean, l);
    if (!l->mosq) return errno == ENOMEM ? WM_ERR_NOMEM : WM_ERR_INVAL;
    mosquitto_threaded_set(l->mosq, true); /* packets are queued, never written in callbacks */
    l->clean = clean;
    l->session_expiry_s = o->session_expiry_s ? o->session_expiry_s : 7 * 24 * 3600;
    l->may_fall_back = o->protocol == MQTT_AUTO;
    enum wm_err e = set_protocol(l, o->protocol != MQTT_V311);
    if (e != WM_OK) return e;
    mosquitto_int_option(l->mosq, MOSQ_OPT_SEND_MAXIMUM, o->max_inflight ? o->max_inflight : 1000);
    mosquitto_int_option(l->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    /* MQTT 5: let the broker send up to this many unacknowledged messages (the default of 20
     * would cap each loop turn's batch at 20). */
    mosquitto_int_option(l->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, RECEIVE_MAXIMUM);
    if (l->url.user && mosquitto_username_pw_set(l->mosq, l->url.user, l->url.password))
        return WM_ERR_NOMEM;
    if (strcmp(l->url.scheme, "mqtts") == 0) {
        /* Certificates are always verified: against cafile, else the system's store. */
        int rc = mosquitto_tls_set(l->mosq, o->cafile, o->cafile ? NULL : "/etc/ssl/certs", NULL,
                                   NULL, NULL);
        if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_opts_set(l->mosq, 1, NULL, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            log_error("broker %s: TLS set-up: %s", l->label, mosquitto_strerror(rc));
            return WM_ERR_LIB;
        }
    } else if (strcmp(l->url.scheme, "mqtt") != 0) {
        return WM_ERR_INVAL;
    }
    mosquitto_connect_callback_set(l->mosq, cb_connect);
    mosquitto_disconnect_callback_set(l->mosq, cb_disconnect);
    mosquitto_message_callback_set(l->mosq, cb_message);
    mosquitto_publish_callback_set(l->mosq, cb_publish);
    mosquitto_log_callback_set(l->mosq, cb_log);
    return WM_OK;
}

struct mqtt_link *mqtt_link_new(struct loop *loop, const struct mqtt_options *o,
                                const struct mqtt_callbacks *cb, void *arg, enum wm_err *err)
{
    enum wm_err e = WM_ERR_INVAL;
    struct mqtt_link *l = NULL;
    if (!loop || !o || !o->url || !cb) goto fail;
    e = WM_ERR_NOMEM;
    if (lib_init_once() != MOSQ_ERR_SUCCESS || !(l = calloc(1, sizeof *l))) goto fail;
    l->loop = loop;
    l->cb = *cb;
    l->arg = arg;
    l->fd = -1;
    l->keepalive_s = o->keepalive_s ? o->keepalive_s : 30;
    e = url_parse(o->url, &l->url);
    if (e) goto fail;
    snprintf(l->label, sizeof l->label, "%s%s%s:%d", l->url.user ? l->url.user : "",
             l->url.user ? "@" : "", l->url.host, l->url.port);
    if ((e = copy_subscriptions(l, o)) || (e = configure(l, o))) goto fail;
    if ((e = loop_add_hook(loop, flush_hook, l))) goto fail;
    l->misc_timer = loop_timer_add(loop, MISC_INTERVAL_MS, on_misc_timer, l);
    l->reconnect_timer = loop_timer_add(loop, 0, start_connect, l);
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
    loop_timer_cancel(l->loop, &l->reconnect_timer);
    loop_timer_cancel(l->loop, &l->misc_timer);
    if (l->mosq) {
        if (l->connected) {
            mosquitto_disconnect(l->mosq);
            mosquitto_loop_write(l->mosq, 1);
        }
        unwatch_socket(l);
        mosquitto_destroy(l->mosq);
    }
    mosquitto_property_free_all(&l->publish_props);
    loop_remove_hook(l->loop, flush_hook, l);
    for (size_t i = 0; i < l->nsubs; i++)
        free(l->subs[i]);
    free(l->subs);
    url_clear(&l->url);
    free(l);
    *lp = NULL;
}

enum wm_err mqtt_publish(struct mqtt_link *l, const char *topic, const void *payload, size_t len,
                         int *mid)
{
    if (!l || !topic || len > 268435455u) return WM_ERR_INVAL;
    int rc = mosquitto_publish_v5(l->mosq, mid, topic, (int)len, payload, 1, false,
                                  l->v5 ? l->publish_props : NULL);
    switch (rc) {
    case MOSQ_ERR_SUCCESS:
    case MOSQ_ERR_NO_CONN:
        /* Not connected: libmosquitto has queued the message and sends it after CONNACK. */
        l->pending++;
        return WM_OK;
    case MOSQ_ERR_NOMEM:
        return WM_ERR_NOMEM;
    case MOSQ_ERR_PAYLOAD_SIZE:
    case MOSQ_ERR_OVERSIZE_PACKET:
        return WM_ERR_TOOBIG;
    default:
        log_warn("broker %s: publish on %s: %s", l->label, topic, mosquitto_strerror(rc));
        return WM_ERR_INVAL;
    }
}

void mqtt_flush(struct mqtt_link *l)
{
    if (l) flush_hook(l);
}

void mqtt_set_reading(struct mqtt_link *l, bool on)
{
    if (!l || l->paused == !on) return;
    l->paused = !on;
    update_watch(l);
}

void mqtt_hold_writes(struct mqtt_link *l, bool hold)
{
    if (!l || l->held == hold) return;
    l->held = hold;
    update_watch(l);
}

bool mqtt_connected(const struct mqtt_link *l)
{
    return l && l->connected;
}

const char *mqtt_label(const struct mqtt_link *l)
{
    return l ? l->label : "";
}

int mqtt_protocol_version(const struct mqtt_link *l)
{
    return l && l->v5 ? 5 : 4;
}

int mqtt_pending(const struct mqtt_link *l)
{
    return l ? l->pending : 0;
}
