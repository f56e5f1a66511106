/* outbox.c: the post broker's side of a peer: entries published through one link, refusals
 * retried with backoff then set aside, and the bound that pauses intake. */
#include "outbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadletter.h"
#include "list.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "mqtt.h"

/* A publish's tag holds its entry id and, in the top byte, the refusals it had so far: the
 * outbox keeps nothing of an entry while the link has it. */
#define ID_BITS 56
#define ID_MASK ((UINT64_C(1) << ID_BITS) - 1)
#define MAX_ATTEMPTS 255
#define RETRY_MAX_MS 60000
#define STATUS_TAG 0 /* entry ids are nonzero: tag 0 is the catch-up status */

/* A refused entry waiting for its next attempt: the link has dropped it, so it is kept here. */
struct retry {
    struct retry *prev, *next;
    int64_t due_ms;
    uint64_t id;
    int attempts; /* refusals so far */
    bool alone;   /* the broker closed the connection on it: sent alone next time */
    char *topic;  /* topic and message share one allocation after the struct */
    char *message;
    size_t len;
    char *why; /* the last refusal's reason */
};

struct outbox {
    struct loop *loop;
    struct mqtt_link *link;
    struct metrics *m;
    outbox_ended_fn ended;
    void *arg;
    size_t max_entries;
    uint64_t max_bytes;
    int retries;
    char *set_aside_path;
    size_t entries;
    uint64_t bytes;
    bool full;
    bool status_pending; /* a status is on its way: a newer one waits for it */
    /* Refused entries waiting, in no order: one timer, due at the earliest of them, serves
     * them all, however many a broker refuses at once. */
    struct retry *waiting;
    struct loop_timer timer;
    int64_t timer_due_ms; /* when it is due, while it is started */
};

static uint64_t size_of(const char *topic, size_t len)
{
    return (uint64_t)strlen(topic) + len;
}

static void count(struct outbox *o, int64_t entries, int64_t bytes)
{
    o->entries = (size_t)((int64_t)o->entries + entries);
    o->bytes = (uint64_t)((int64_t)o->bytes + bytes);
    atomic_store_explicit(&o->m->outbox_entries, (int_fast64_t)o->entries, memory_order_relaxed);
    atomic_store_explicit(&o->m->outbox_bytes, (int_fast64_t)o->bytes, memory_order_relaxed);
}

/* The entry has left the outbox: its size no longer counts, and the caller finishes it. */
static void end_entry(struct outbox *o, uint64_t id, uint64_t size)
{
    count(o, -1, -(int64_t)size);
    o->ended(o->arg, id, true);
}

int64_t outbox_retry_delay_ms(int attempt)
{
    int shift = attempt < 1 ? 0 : attempt > 16 ? 16 : attempt - 1;
    int64_t ms = (int64_t)1000 << shift;
    return ms > RETRY_MAX_MS ? RETRY_MAX_MS : ms;
}

/* ---- setting aside ---- */

/* Writes the entry to the dead-letter file; false when that failed (it is then kept and tried
 * again later: a full disk must not lose it). */
static bool set_aside(struct outbox *o, uint64_t id, const char *topic, const char *message,
                      size_t len, int attempts, const char *why)
{
    struct deadletter d = {.time_ns = loop_wall_ns(),
                           .topic = topic,
                           .message = message,
                           .len = len,
                           .attempts = attempts,
                           .reason = why};
    enum wm_err e = deadletter_append(o->set_aside_path, &d);
    if (e != WM_OK) {
        log_error("cannot set aside the announcement on %s in %s (%s): kept, tried again later",
                  topic, o->set_aside_path, e == WM_ERR_IO ? strerror(errno) : wm_strerror(e));
        return false;
    }
    atomic_fetch_add_explicit(&o->m->outbox_set_aside, 1, memory_order_relaxed);
    log_warn("set aside the announcement on %s (%zu bytes) after %d refusal%s: %s; `wmesh outbox "
             "--resend` sends it again",
             topic, len, attempts, attempts == 1 ? "" : "s", why);
    end_entry(o, id, size_of(topic, len));
    return true;
}

/* ---- retries ---- */

static void retry_free(struct outbox *o, struct retry *r)
{
    DLIST_REMOVE(o->waiting, r, next, prev);
    free(r->why);
    free(r);
}

static void retries_due(void *arg);

/* Arms the timer for the earliest entry waiting. */
static void arm(struct outbox *o)
{
    if (!o->waiting) {
        loop_timer_stop(o->loop, &o->timer);
        return;
    }
    int64_t due = INT64_MAX;
    for (struct retry *r = o->waiting; r; r = r->next)
        if (r->due_ms < due) due = r->due_ms;
    int64_t delay = due - loop_now_ms(o->loop);
    loop_timer_start(o->loop, &o->timer, delay > 0 ? delay : 0, retries_due, o);
    o->timer_due_ms = due;
}

/* One entry whose backoff is over: to the link again, behind what is queued; or, after its
 * last attempt, set aside. False when it must wait again. */
static bool retry_now(struct outbox *o, struct retry *r)
{
    if (r->attempts > o->retries) /* setting it aside failed before */
        return set_aside(o, r->id, r->topic, r->message, r->len, r->attempts, r->why);
    uint64_t tag = r->id | (uint64_t)r->attempts << ID_BITS;
    enum wm_err e = r->alone ? mqtt_publish_alone(o->link, r->topic, r->message, r->len, tag)
                             : mqtt_publish(o->link, r->topic, r->message, r->len, tag);
    if (e == WM_OK) return true;
    log_error("cannot queue the announcement on %s again (%s): tried again in 1 s", r->topic,
              wm_strerror(e));
    return false;
}

static void retries_due(void *arg)
{
    struct outbox *o = arg;
    int64_t now = loop_now_ms(o->loop);
    for (struct retry *r = o->waiting, *next; r; r = next) {
        next = r->next;
        if (r->due_ms > now) continue;
        if (retry_now(o, r))
            retry_free(o, r);
        else
            r->due_ms = now + (r->attempts > o->retries ? RETRY_MAX_MS : 1000);
    }
    arm(o);
}

/* Keeps a refused entry until its next attempt, or sets it aside after the last. */
static void refused(struct outbox *o, const struct mqtt_published *p)
{
    uint64_t id = p->tag & ID_MASK;
    int attempts = (int)(p->tag >> ID_BITS) + 1;
    atomic_fetch_add_explicit(&o->m->outbox_refusals, 1, memory_order_relaxed);
    if (attempts > o->retries) {
        if (set_aside(o, id, p->topic, p->payload, p->len, attempts, p->why)) return;
    } else if (attempts == 1) {
        log_info("the post broker refused the announcement on %s (%s): trying again in %.0f s",
                 p->topic, p->why, (double)outbox_retry_delay_ms(attempts) / 1000);
    }
    size_t tlen = strlen(p->topic);
    struct retry *r = malloc(sizeof *r + tlen + 1 + p->len);
    char *why = strdup(p->why);
    if (!r || !why) {
        log_error("out of memory: the refused announcement on %s is left to the journal", p->topic);
        free(r);
        free(why);
        count(o, -1, -(int64_t)size_of(p->topic, p->len));
        o->ended(o->arg, id, false);
        return;
    }
    int64_t delay = attempts > o->retries ? RETRY_MAX_MS : outbox_retry_delay_ms(attempts);
    *r = (struct retry){.due_ms = loop_now_ms(o->loop) + delay,
                        .id = id,
                        .attempts = attempts,
                        .alone = p->closed,
                        .len = p->len,
                        .why = why};
    r->topic = (char *)(r + 1);
    memcpy(r->topic, p->topic, tlen + 1);
    r->message = r->topic + tlen + 1;
    if (p->len) memcpy(r->message, p->payload, p->len);
    DLIST_PUSH(o->waiting, r, next, prev);
    if (!loop_timer_active(&o->timer) || o->timer_due_ms > r->due_ms) arm(o);
}

static void on_published(void *arg, struct mqtt_link *link, const struct mqtt_published *p)
{
    struct outbox *o = arg;
    (void)link;
    if (p->tag == STATUS_TAG) {
        /* A status is replaced by the next one: nothing to retry or set aside. */
        o->status_pending = false;
        if (p->why)
            log_warn("the post broker refused the catch-up status on %s: %s", p->topic, p->why);
        return;
    }
    if (p->why) {
        refused(o, p);
        return;
    }
    atomic_fetch_add_explicit(&o->m->published, 1, memory_order_relaxed);
    end_entry(o, p->tag & ID_MASK, size_of(p->topic, p->len));
}

/* ---- the outbox ---- */

enum wm_err outbox_publish_status(struct outbox *o, const char *topic, const void *message,
                                  size_t len)
{
    if (!o || !topic) return WM_ERR_INVAL;
    if (o->status_pending) return WM_ERR_EXISTS;
    enum wm_err e = mqtt_publish_retained(o->link, topic, message, len, STATUS_TAG);
    if (e == WM_OK) o->status_pending = true;
    return e;
}

struct outbox *outbox_new(struct loop *loop, const struct outbox_options *opt,
                          outbox_ended_fn ended, void *arg, struct metrics *m, enum wm_err *err)
{
    enum wm_err e = WM_ERR_INVAL;
    struct outbox *o = NULL;
    if (!loop || !opt || !opt->link || !opt->set_aside_path || !ended || !m) goto fail;
    e = WM_ERR_NOMEM;
    if (!(o = calloc(1, sizeof *o))) goto fail;
    *o = (struct outbox){.loop = loop,
                         .m = m,
                         .ended = ended,
                         .arg = arg,
                         .max_entries = opt->max_entries ? opt->max_entries : 10000,
                         .max_bytes = opt->max_bytes ? opt->max_bytes : 16u << 20,
                         .retries = opt->retries < 0 ? 0 : opt->retries,
                         .set_aside_path = strdup(opt->set_aside_path)};
    if (o->retries > MAX_ATTEMPTS - 1) o->retries = MAX_ATTEMPTS - 1;
    if (!o->set_aside_path) goto fail;
    struct mqtt_callbacks cb = {.on_published = on_published};
    if (!(o->link = mqtt_link_new(loop, opt->link, &cb, o, &e))) goto fail;
    if (err) *err = WM_OK;
    return o;
fail:
    if (err) *err = e;
    outbox_free(&o);
    return NULL;
}

void outbox_free(struct outbox **op)
{
    if (!op || !*op) return;
    struct outbox *o = *op;
    mqtt_link_free(&o->link);
    loop_timer_stop(o->loop, &o->timer);
    while (o->waiting)
        retry_free(o, o->waiting);
    free(o->set_aside_path);
    free(o);
    *op = NULL;
}

enum wm_err outbox_add(struct outbox *o, uint64_t id, const char *topic, const void *message,
                       size_t len)
{
    if (!o || id == 0 || id > ID_MASK || !topic || (!message && len)) return WM_ERR_INVAL;
    enum wm_err e = mqtt_publish(o->link, topic, message, len, id);
    if (e == WM_ERR_NOMEM) return e;
    count(o, 1, (int64_t)size_of(topic, len));
    if (e == WM_OK) return WM_OK;
    /* No broker would take it (a topic MQTT forbids, a message over MQTT's limit). */
    char why[200];
    snprintf(why, sizeof why, "no MQTT broker can take it: %s", wm_strerror(e));
    struct mqtt_published p = {
        .tag = id | (uint64_t)o->retries << ID_BITS, .why = why, .topic = topic, .len = len};
    p.payload = message;
    refused(o, &p);
    return WM_OK;
}

bool outbox_has_room(struct outbox *o)
{
    if (!o) return true;
    bool room = o->full ? o->entries < o->max_entries / 2 && o->bytes < o->max_bytes / 2
                        : o->entries < o->max_entries && o->bytes < o->max_bytes;
    o->full = !room;
    atomic_store_explicit(&o->m->outbox_full, room ? 0 : 1, memory_order_relaxed);
    return room;
}

size_t outbox_entries(const struct outbox *o)
{
    return o ? o->entries : 0;
}

uint64_t outbox_bytes(const struct outbox *o)
{
    return o ? o->bytes : 0;
}

bool outbox_connected(const struct outbox *o)
{
    return o && mqtt_connected(o->link);
}
