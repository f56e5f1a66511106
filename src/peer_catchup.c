/* peer_catchup.c: catch-up (docs/CATCHUP.md). As a publisher, the peer gives each of its
 * re-announcements a seq in its log, which its HTTP server serves, and keeps a retained status on
 * its post broker saying how far the log goes. As a subscriber, it keeps for each upstream (a
 * broker and a publishing peer on it) the seq up to which it has everything, and fetches from
 * that upstream's log what it finds it missed: a seq that never came, a session the broker
 * lost, a new upstream, a new epoch. What it fetches goes through the ordinary admission, which
 * drops what the peer holds. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "catchup_log.h"
#include "catchup_serve.h"
#include "catchup_wire.h"
#include "codec.h"
#include "fetch.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "outbox.h"
#include "peer_catchup.h"
#include "peer_internal.h"
#include "url.h"

#define GAP_GRACE_MS 2000        /* a seq still missing this long after a later one came */
#define STATUS_GRACE_MS 1000     /* ... after a status said it exists */
#define STATUS_FAST_MS 5000      /* the status while the log grows, and for a minute after */
#define STATUS_FAST_FOR_MS 60000 /* (a subscriber whose queue dropped it learns soon) */
#define STATUS_IDLE_MS 600000    /* otherwise */
#define TICK_MS 500
#define SAVE_EVERY_MS 60000
#define FETCHES_AT_ONCE 2
#define RESPONSE_MAX (16u << 20)
#define PAGE_LIMIT 1000
#define NOT_SERVED_MS 3600000 /* a 404: the upstream serves no log */
#define RETRY_MAX_MS 60000
#define STATE_FILE "catchup-upstreams"

/* One upstream: a publishing peer on one of the brokers the peer reads. */
struct source {
    struct source *next;
    struct peer_catchup *cu;
    size_t up; /* its broker: index in peer->up */
    char peer[CATCHUP_ID_MAX + 1];
    char epoch[CATCHUP_EPOCH_MAX + 1]; /* "" until known */
    char url[CATCHUP_URL_MAX + 1];     /* its catch-up URL, from its status; "" before one */
    /* The host of the baseUrl its announcements carry: a status's URL is used only on that host
     * or the broker's, so that a forged status cannot aim subscribers at a third party. */
    char base_host[CATCHUP_HOST_MAX];
    struct catchup_seqs seqs; /* which came, of this epoch */
    bool fresh;               /* never heard of before (no saved state): a late join */
    bool urgent;              /* fetch at once: the broker lost the session */
    bool more;                /* the last page said more records follow */
    int64_t since_ns;         /* > 0: the next fetch asks for records since this time */
    int64_t gap_ms;           /* when the missing seqs were first seen missing; 0: none */
    int64_t grace_ms;         /* how long they may stay missing before a fetch */
    int64_t not_before_ms;    /* after a failed fetch, or a 404 */
    int failures;
    bool fetching;
    struct buf body; /* the response in progress, at most RESPONSE_MAX */
};

struct peer_catchup {
    struct peer *p;
    /* Publisher: NULL without --catchup, a post broker or an HTTP server. */
    struct catchup_log *log;
    struct catchup_serve_options serve;
    struct catchup_serve *served; /* its endpoints on the HTTP server */
    char peer_id[CATCHUP_ID_MAX + 1];
    char *status_topic;
    char *url;
    uint64_t status_seq, status_first; /* what the last status said */
    int64_t status_ms, changed_ms;
    bool post_up;
    /* Subscriber. */
    bool tracking; /* seqs in messages are followed (not with --share) */
    struct source *sources;
    bool *lost;    /* per upstream: its last connect found no session */
    char **labels; /* per upstream: its broker's label, the key of the saved state */
    char **filters;
    size_t nfilters;
    int fetching;
    bool dirty;
    int64_t saved_ms;
    int64_t window_ns;
    char state_path[PATH_MAX + 32];
    struct loop_timer tick;
};

/* ---- helpers ---- */

/* The peer id: --catchup-id, else the client id with what an id cannot hold made '-'. */
static void make_peer_id(const char *from, char *out)
{
    size_t n = 0;
    for (const char *c = from; *c && n < CATCHUP_ID_MAX; c++)
        out[n++] = catchup_id_ok(c, 1) ? *c : '-';
    out[n] = '\0';
    if (n == 0) snprintf(out, CATCHUP_ID_MAX + 1, "wmesh");
}

/* An MQTT filter as a query parameter value: every byte but unreserved ones and '/' escaped. */
static bool append_filter(struct buf *b, const char *filter)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)filter; *c; c++) {
        char esc[3] = {'%', hex[*c >> 4], hex[*c & 15]};
        bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                     (*c >= '0' && *c <= '9') || strchr("-._~/", *c);
        if (buf_append(b, plain ? (const char *)c : esc, plain ? 1 : 3) != WM_OK) return false;
    }
    return true;
}

/* ---- publisher ---- */

static void status_topic_and_url(struct peer_catchup *cu)
{
    const struct peer_config *cfg = cu->p->cfg;
    const char *ex = cfg->post_exchange ? cfg->post_exchange : cfg->exchange;
    size_t n = strlen(ex) + strlen(cu->peer_id) + 16;
    if ((cu->status_topic = malloc(n)))
        snprintf(cu->status_topic, n, "%s/_catchup/%s", ex, cu->peer_id);
    const char *base = cfg->post_base_url;
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    if ((cu->url = malloc(blen + 16)))
        snprintf(cu->url, blen + 16, "%.*s/.wmesh/", (int)blen, base);
}

static enum wm_err start_log(struct peer_catchup *cu)
{
    struct peer *p = cu->p;
    const struct peer_config *cfg = p->cfg;
    if (!cfg->catchup || !p->outbox || !p->httpd) return WM_OK;
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/catchup", p->state_dir);
    double keep = cfg->catchup_keep_s > 0 ? cfg->catchup_keep_s : 86400;
    struct catchup_log_options o = {
        .dir = dir, .sync = cfg->survive_power_loss, .keep_s = (int64_t)keep};
    enum wm_err e;
    if (!(cu->log = catchup_log_open(&o, &e))) {
        log_error("catch-up log %s: %s", dir, wm_strerror(e));
        return e;
    }
    status_topic_and_url(cu);
    if (!cu->status_topic || !cu->url) return WM_ERR_NOMEM;
    cu->serve = (struct catchup_serve_options){
        .peer_id = cu->peer_id, .url = cu->url, .interval_s = STATUS_FAST_MS / 1000};
    struct wm_url base = {0};
    if (url_parse(cfg->post_base_url, &base) != WM_OK) return WM_ERR_INVAL;
    e = catchup_serve_attach(p->httpd, base.path ? base.path : "", cu->log, &cu->serve,
                             &cu->served);
    url_clear(&base);
    if (e != WM_OK) return e;
    uint64_t first, last;
    catchup_log_bounds(cu->log, &first, &last);
    log_info("catch-up: serving the log of %s at %s (epoch %s, seqs %" PRIu64 "-%" PRIu64
             "), status on %s",
             cu->peer_id, cu->url, catchup_log_epoch(cu->log), first, last, cu->status_topic);
    return WM_OK;
}

/* Publishes the status at start, on each connect to the post broker, every STATUS_FAST_MS
 * while the log grows and for a minute after, and every STATUS_IDLE_MS otherwise. */
static void publish_status(struct peer_catchup *cu, int64_t now)
{
    if (!cu->log) return;
    bool up = outbox_connected(cu->p->outbox);
    bool connected_now = up && !cu->post_up;
    cu->post_up = up;
    if (!up) return;
    uint64_t first, last;
    catchup_log_bounds(cu->log, &first, &last);
    if (last != cu->status_seq || first != cu->status_first) cu->changed_ms = now;
    int64_t every = now - cu->changed_ms < STATUS_FAST_FOR_MS ? STATUS_FAST_MS : STATUS_IDLE_MS;
    if (!connected_now && cu->status_ms && now - cu->status_ms < every) return;
    char *json = NULL;
    size_t len = 0;
    if (catchup_status_json(cu->log, &cu->serve, "up", loop_wall_ns(), &json, &len) != WM_OK)
        return;
    if (outbox_publish_status(cu->p->outbox, cu->status_topic, json, len) == WM_OK) {
        cu->status_ms = now;
        cu->status_seq = last;
        cu->status_first = first;
    }
    free(json);
}

uint64_t peer_catchup_take(struct peer *p)
{
    struct peer_catchup *cu = p->catchup;
    return cu && cu->log ? catchup_log_take_seq(cu->log) : 0;
}

/* The member that carries (peer, epoch, seq), in the place the post format keeps extras. */
bool peer_catchup_stamp(struct peer *p, struct announce *out, uint64_t seq)
{
    struct peer_catchup *cu = p->catchup;
    if (!cu || !cu->log || !seq || !p->cfg->catchup_seq) return false;
    struct catchup_mark mark = {.seq = seq};
    snprintf(mark.peer, sizeof mark.peer, "%s", cu->peer_id);
    snprintf(mark.epoch, sizeof mark.epoch, "%s", catchup_log_epoch(cu->log));
    struct wm_json *holder = NULL;
    enum wm_format fmt = p->cfg->post_format;
    if (!out->extra && fmt != WM_FORMAT_WNM && !(out->extra = wm_json_object_new())) return false;
    if (fmt == WM_FORMAT_WNM) {
        /* Only a WIS2 message carried as it came has properties to hold it. */
        holder = out->format == WM_FORMAT_WNM && out->extra
                     ? wm_json_object_get(out->extra, "properties")
                     : NULL;
        if (!wm_json_is_object(holder)) return false;
    } else {
        holder = out->extra;
    }
    struct wm_json *member = catchup_mark_json(&mark, fmt);
    /* The setter takes member, also when it fails. */
    return member && wm_json_object_set(holder, "catchup", member) == WM_OK;
}

/* Removes an upstream's member from what is re-announced without a seq of ours. */
void peer_catchup_unstamp(struct announce *out)
{
    if (!out->extra) return;
    struct wm_json *props = wm_json_object_get(out->extra, "properties");
    if (out->format == WM_FORMAT_WNM && wm_json_is_object(props))
        (void)wm_json_object_del(props, "catchup");
    (void)wm_json_object_del(out->extra, "catchup");
}

void peer_catchup_logged(struct peer *p, uint64_t seq, const char *topic, const char *message,
                         size_t len)
{
    struct peer_catchup *cu = p->catchup;
    if (!cu || !cu->log || !seq) return;
    enum wm_err e = catchup_log_append(cu->log, seq, topic, message, len, loop_wall_ns());
    if (e == WM_OK)
        peer_count(&p->metrics.catchup_logged, 1);
    else
        log_error("catch-up log: announcement on %s not recorded: %s", topic, wm_strerror(e));
}

/* ---- subscriber: sources and their seqs ---- */

static struct source *find_source(struct peer_catchup *cu, size_t up, const char *peer, size_t len)
{
    for (struct source *s = cu->sources; s; s = s->next)
        if (s->up == up && strlen(s->peer) == len && memcmp(s->peer, peer, len) == 0) return s;
    return NULL;
}

static struct source *add_source(struct peer_catchup *cu, size_t up, const char *peer, size_t len)
{
    struct source *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->body.max = RESPONSE_MAX;
    s->cu = cu;
    s->up = up;
    memcpy(s->peer, peer, len);
    s->fresh = true;
    s->next = cu->sources;
    cu->sources = s;
    return s;
}

/* Notes whether seqs are missing, and since when: a fetch asks for them after grace. */
static void watch_gap(struct source *s, int64_t now, int64_t grace)
{
    if (!catchup_seqs_missing(&s->seqs)) {
        s->gap_ms = 0;
    } else if (!s->gap_ms) {
        s->gap_ms = now;
        s->grace_ms = grace;
    }
}

static void forget_epoch(struct source *s, const char *epoch, size_t len)
{
    memcpy(s->epoch, epoch, len);
    s->epoch[len] = '\0';
    catchup_seqs_reset(&s->seqs, 0);
    s->gap_ms = 0;
    s->more = false;
    s->cu->dirty = true;
}

void peer_catchup_received(struct peer *p, size_t up, const struct announce *a)
{
    struct peer_catchup *cu = p->catchup;
    struct catchup_mark m;
    if (!cu || !cu->tracking || !catchup_mark_read(a, &m)) return;
    size_t plen = strlen(m.peer);
    struct source *s = find_source(cu, up, m.peer, plen);
    if (!s && !(s = add_source(cu, up, m.peer, plen))) return;
    if (!s->base_host[0] && a->base_url)
        (void)catchup_url_host(a->base_url, s->base_host, sizeof s->base_host);
    if (!s->epoch[0]) forget_epoch(s, m.epoch, strlen(m.epoch));
    /* Another epoch: its status will say so, and the fetch it starts covers this one. */
    if (strcmp(s->epoch, m.epoch) != 0) return;
    if (catchup_seqs_note(&s->seqs, m.seq)) cu->dirty = true;
    watch_gap(s, loop_now_ms(p->loop), GAP_GRACE_MS);
}

void peer_catchup_connected(struct peer *p, size_t up, bool session_present)
{
    struct peer_catchup *cu = p->catchup;
    if (!cu || up >= p->cfg->nbrokers) return;
    cu->lost[up] = !session_present;
    if (session_present) return;
    for (struct source *s = cu->sources; s; s = s->next)
        if (s->up == up && s->epoch[0] && !s->fresh) s->urgent = true;
}

/* ---- subscriber: statuses ---- */

/* Whether the status's URL lies on the broker's host or that of the upstream's baseUrl. */
static bool url_trusted(const struct source *s)
{
    char host[CATCHUP_HOST_MAX], broker[CATCHUP_HOST_MAX];
    if (!catchup_url_host(s->url, host, sizeof host)) return false;
    if (s->base_host[0] && strcmp(host, s->base_host) == 0) return true;
    return catchup_url_host(s->cu->p->cfg->brokers[s->up], broker, sizeof broker) &&
           strcmp(host, broker) == 0;
}

static const char *get_string(const struct wm_json *o, const char *key, size_t *len)
{
    return wm_json_string(wm_json_object_get(o, key), len);
}

/* Takes what a status says into source s. */
static void take_status(struct peer_catchup *cu, struct source *s, const struct catchup_status *st,
                        bool retained)
{
    int64_t now = loop_now_ms(cu->p->loop);
    if (strcmp(s->url, st->url) != 0) {
        memcpy(s->url, st->url, sizeof s->url);
        s->not_before_ms = 0;
        if (!url_trusted(s))
            log_warn("catch-up: the status of %s names %s, on neither its broker's host nor its "
                     "announcements': used once an announcement of it comes from that host",
                     s->peer, s->url);
    }
    bool same = strcmp(s->epoch, st->epoch) == 0;
    if (s->fresh) {
        /* A new upstream: what it announced before we heard of it, within the window. */
        s->fresh = false;
        if (!same) forget_epoch(s, st->epoch, strlen(st->epoch));
        s->since_ns = loop_wall_ns() - cu->window_ns;
        log_info("catch-up: new upstream %s on %s (epoch %s, seq %" PRIu64
                 "): fetching what it announced in the last %.0f s",
                 s->peer, mqtt_label(cu->p->up[s->up].link), s->epoch, st->seq,
                 (double)cu->window_ns / 1e9);
        cu->dirty = true;
        return;
    }
    if (!same) {
        log_info("catch-up: upstream %s on %s has a new log (epoch %s): fetching its window",
                 s->peer, mqtt_label(cu->p->up[s->up].link), st->epoch);
        forget_epoch(s, st->epoch, strlen(st->epoch));
        s->since_ns = loop_wall_ns() - cu->window_ns;
        return;
    }
    if (st->seq <= s->seqs.done) return;
    (void)catchup_seqs_expect(&s->seqs, st->seq);
    /* A retained status replayed at subscribe, with the session kept: what it names is still
     * in the session's queue. A live status follows the announcements it counts. */
    if (retained && !cu->lost[s->up]) return;
    if (cu->lost[s->up]) s->urgent = true;
    watch_gap(s, now, STATUS_GRACE_MS);
}

bool peer_catchup_status(struct peer *p, size_t up, const struct mqtt_msg *msg)
{
    struct peer_catchup *cu = p->catchup;
    if (!catchup_status_topic(msg->topic)) return false;
    if (!cu || !cu->tracking || up >= p->cfg->nbrokers) return true;
    /* About 2 KiB: the status is copied whole, url included, and owns nothing. */
    struct catchup_status st;
    enum wm_err e = catchup_status_read(msg->payload, msg->len, msg->topic, &st);
    if (e != WM_OK) {
        peer_count(&p->metrics.catchup_bad, 1);
        log_warn("catch-up: status on %s is not one this wmesh reads: %s", msg->topic,
                 wm_strerror(e));
    } else if (!st.down) {
        size_t len = strlen(st.peer);
        struct source *s = find_source(cu, up, st.peer, len);
        if (s || (s = add_source(cu, up, st.peer, len))) take_status(cu, s, &st, msg->retain);
    }
    return true;
}

/* ---- subscriber: fetching ---- */

static void tick(void *arg);

static void fetch_ended(struct source *s)
{
    struct peer_catchup *cu = s->cu;
    s->fetching = false;
    buf_free(&s->body);
    cu->fetching--;
    loop_timer_start(cu->p->loop, &cu->tick, 0, tick, cu); /* the next page, or another source */
}

static void fetch_failed(struct source *s, const char *why)
{
    int64_t delay = 1000LL << (s->failures < 6 ? s->failures : 6);
    s->failures++;
    if (delay > RETRY_MAX_MS) delay = RETRY_MAX_MS;
    s->not_before_ms = loop_now_ms(s->cu->p->loop) + delay;
    if (s->failures == 1 || s->failures % 10 == 0)
        log_warn("catch-up from %s (%s): %s; trying again in %.0f s", s->peer, s->url, why,
                 (double)delay / 1000);
}

static int on_body(void *arg, const void *data, size_t len)
{
    struct source *s = arg;
    return buf_append(&s->body, data, len) == WM_OK ? 0 : 1;
}

/* Admits one record; false when the peer could not take it (it is fetched again later). */
static bool take_record(struct source *s, const struct wm_json *rec)
{
    struct peer *p = s->cu->p;
    size_t tlen;
    const char *topic = get_string(rec, "topic", &tlen);
    const struct wm_json *message = wm_json_object_get(rec, "message");
    char *text = NULL;
    size_t len = 0;
    if (!topic || !message || memchr(topic, '\0', tlen)) {
        peer_count(&p->metrics.catchup_bad, 1);
        return true;
    }
    if (wm_json_dump(message, &text, &len) != WM_OK) return false;
    bool taken = true;
    if (len > p->cfg->max_message) {
        peer_count(&p->metrics.rejected[WM_REJECT_TOO_BIG], 1);
    } else {
        struct journal_entry raw = {.topic = topic, .topic_len = tlen, .payload = text, .len = len};
        struct announce *a = NULL;
        char why[200];
        enum wm_err e = peer_decode(&raw, &a, why, sizeof why);
        if (e == WM_ERR_NOMEM) {
            taken = false;
        } else if (e != WM_OK) {
            peer_count(&p->metrics.catchup_bad, 1);
        } else {
            peer_count(&p->metrics.catchup_records, 1);
            taken = peer_admit(p, a, 0, ADMIT_FRESH, &raw);
        }
    }
    free(text);
    return taken;
}

/* Reads the trailer: where the log goes on. */
static void take_trailer(struct source *s, const struct wm_json *t, uint64_t *next, bool *more)
{
    size_t elen;
    const char *epoch = get_string(t, "epoch", &elen);
    int64_t n = 0;
    if (epoch && catchup_epoch_ok(epoch, elen) &&
        (strlen(s->epoch) != elen || memcmp(s->epoch, epoch, elen) != 0))
        forget_epoch(s, epoch, elen);
    /* A next past the seqs a log can hold would stop this upstream's counting for good. */
    if (wm_json_integer(wm_json_object_get(t, "next"), &n) && n > 0 &&
        (uint64_t)n < CATCHUP_SEQ_LIMIT)
        *next = (uint64_t)n;
    *more = wm_json_object_get(t, "more") &&
            wm_json_type(wm_json_object_get(t, "more")) == WM_JSON_TRUE;
}

/* Admits the records of a page, in order, and moves done past what it covered. */
static void take_page(struct source *s)
{
    struct peer_catchup *cu = s->cu;
    uint64_t next = 0, last_taken = 0;
    bool more = false, trailer = false, stopped = false;
    size_t off = 0, records = 0;
    const char *body = (const char *)s->body.data;
    while (off < s->body.len && !stopped) {
        const char *nl = memchr(body + off, '\n', s->body.len - off);
        if (!nl) break; /* a cut line: asked again */
        size_t n = (size_t)(nl - (body + off));
        struct wm_json *line = NULL;
        char why[120];
        if (n > 0 && wm_json_parse(body + off, n, &line, why, sizeof why) == WM_OK) {
            int64_t seq = 0;
            if (wm_json_object_get(line, "end")) {
                take_trailer(s, line, &next, &more);
                trailer = true;
            } else if (wm_json_integer(wm_json_object_get(line, "seq"), &seq) && seq > 0) {
                if (take_record(s, line)) {
                    last_taken = (uint64_t)seq;
                    records++;
                } else {
                    stopped = true;
                }
            }
        } else if (n > 0) {
            peer_count(&cu->p->metrics.catchup_bad, 1);
        }
        wm_json_free(&line);
        off += n + 1;
    }
    bool moved;
    if (trailer && !stopped) {
        moved = catchup_seqs_cover(&s->seqs, next);
        s->more = more;
    } else {
        moved = catchup_seqs_cover(&s->seqs, last_taken);
        s->more = true; /* cut short, or the peer could not take more now */
    }
    if (moved) cu->dirty = true;
    if (!s->more) {
        s->since_ns = 0;
        s->urgent = false;
    }
    watch_gap(s, loop_now_ms(cu->p->loop), GAP_GRACE_MS);
    if (records)
        log_info("catch-up from %s: %zu announcement(s) up to seq %" PRIu64, s->peer, records,
                 s->seqs.done);
    peer_backpressure(cu->p);
}

static void on_fetched(void *arg, enum wm_err err, long status, const char *why)
{
    struct source *s = arg;
    struct peer_catchup *cu = s->cu;
    if (err == WM_OK && status == 200) {
        s->failures = 0;
        take_page(s);
    } else if (status == 404) {
        log_warn("catch-up: %s serves no log (404 from %s): not asked again for an hour", s->peer,
                 s->url);
        s->not_before_ms = loop_now_ms(cu->p->loop) + NOT_SERVED_MS;
    } else if (status == 409 || status == 410) {
        /* Another epoch, or records gone: start again from the window. */
        if (status == 410) {
            peer_count(&cu->p->metrics.catchup_lost, 1);
            log_warn("catch-up: %s no longer holds the records after seq %" PRIu64
                     ": fetching its window",
                     s->peer, s->seqs.done);
        }
        s->epoch[0] = '\0';
        s->since_ns = loop_wall_ns() - cu->window_ns;
    } else {
        fetch_failed(s, why ? why : "failed");
    }
    fetch_ended(s);
}

static bool want_fetch(const struct source *s, int64_t now)
{
    if (s->fetching || !s->url[0] || now < s->not_before_ms || !url_trusted(s)) return false;
    if (s->urgent || s->since_ns > 0 || s->more) return true;
    return s->gap_ms && now - s->gap_ms >= s->grace_ms && catchup_seqs_missing(&s->seqs);
}

static char *request_url(const struct source *s)
{
    const struct peer_catchup *cu = s->cu;
    struct buf u = {0};
    char when[40];
    size_t ulen = strlen(s->url);
    bool ok = buf_printf(&u, "%s%s", s->url, ulen && s->url[ulen - 1] == '/' ? "" : "/") == WM_OK;
    if (s->since_ns > 0 && !s->more)
        ok = ok && codec_pubtime_format(s->since_ns, 3, true, when, sizeof when) == WM_OK &&
             buf_printf(&u, "log?since=%s&limit=%d", when, PAGE_LIMIT) == WM_OK;
    else
        ok = ok && buf_printf(&u, "log?epoch=%s&after=%" PRIu64 "&limit=%d", s->epoch, s->seqs.done,
                              PAGE_LIMIT) == WM_OK;
    for (size_t i = 0; ok && i < cu->nfilters; i++)
        ok = buf_append(&u, "&topic=", 7) == WM_OK && append_filter(&u, cu->filters[i]);
    if (!ok) {
        buf_free(&u);
        return NULL;
    }
    return buf_detach(&u, NULL);
}

static void start_fetch(struct source *s)
{
    struct peer_catchup *cu = s->cu;
    char *url = request_url(s);
    if (!url) return;
    /* A first page after done (not a next page, not a window) is a gap found. */
    if (!s->more && s->since_ns == 0) peer_count(&cu->p->metrics.catchup_gaps, 1);
    log_debug("catch-up: GET %s", url);
    s->fetching = true;
    cu->fetching++;
    peer_count(&cu->p->metrics.catchup_requests, 1);
    if (fetch_start(cu->p->fetcher, url, -1, on_body, on_fetched, s) != WM_OK) {
        s->fetching = false;
        cu->fetching--;
        fetch_failed(s, "out of memory");
    }
    free(url);
}

/* ---- persistence: where each upstream was, across restarts ---- */

static void save_state(struct peer_catchup *cu)
{
    char tmp[PATH_MAX + 48];
    snprintf(tmp, sizeof tmp, "%s.tmp", cu->state_path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    for (const struct source *s = cu->sources; s; s = s->next)
        if (s->epoch[0] && !s->fresh)
            fprintf(f, "%s %s %s %" PRIu64 "\n", cu->labels[s->up], s->peer, s->epoch,
                    s->seqs.done);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, cu->state_path) == 0)
        cu->dirty = false;
    else
        unlink(tmp);
}

static void load_state(struct peer_catchup *cu)
{
    FILE *f = fopen(cu->state_path, "r");
    if (!f) return;
    char label[300], peer[CATCHUP_ID_MAX + 2], epoch[CATCHUP_EPOCH_MAX + 2];
    uint64_t done;
    while (fscanf(f, "%299s %65s %64s %" SCNu64, label, peer, epoch, &done) == 4) {
        size_t plen = strlen(peer), elen = strlen(epoch);
        if (!catchup_id_ok(peer, plen) || !catchup_epoch_ok(epoch, elen) ||
            done >= CATCHUP_SEQ_LIMIT)
            continue;
        for (size_t up = 0; up < cu->p->nup; up++) {
            if (!cu->labels[up] || strcmp(cu->labels[up], label) != 0) continue;
            struct source *s = find_source(cu, up, peer, plen);
            if (!s && !(s = add_source(cu, up, peer, plen))) break;
            s->fresh = false;
            memcpy(s->epoch, epoch, elen + 1);
            catchup_seqs_reset(&s->seqs, done);
        }
    }
    fclose(f);
}

/* ---- the tick ---- */

static void tick(void *arg)
{
    struct peer_catchup *cu = arg;
    struct peer *p = cu->p;
    int64_t now = loop_now_ms(p->loop);
    loop_timer_start(p->loop, &cu->tick, TICK_MS, tick, cu);
    if (cu->log) {
        if (catchup_log_flush(cu->log) != WM_OK) log_error("catch-up log: cannot write it");
        publish_status(cu, now);
    }
    if (p->reading)
        for (struct source *s = cu->sources; s && cu->fetching < FETCHES_AT_ONCE; s = s->next)
            if (want_fetch(s, now)) start_fetch(s);
    if (cu->dirty && now - cu->saved_ms >= SAVE_EVERY_MS) {
        cu->saved_ms = now;
        save_state(cu);
    }
}

/* ---- set-up ---- */

enum wm_err peer_catchup_subscription(const struct peer_config *cfg, char **out)
{
    *out = NULL;
    if (!cfg->catchup || cfg->share_group) return WM_OK;
    size_t n = strlen(cfg->exchange) + 16;
    if (!(*out = malloc(n))) return WM_ERR_NOMEM;
    snprintf(*out, n, "%s/_catchup/+", cfg->exchange);
    return WM_OK;
}

enum wm_err peer_catchup_start(struct peer *p, const char *client_id)
{
    if (!p->cfg->catchup) return WM_OK;
    struct peer_catchup *cu = calloc(1, sizeof *cu);
    if (!cu) return WM_ERR_NOMEM;
    p->catchup = cu;
    cu->p = p;
    make_peer_id(p->cfg->catchup_id ? p->cfg->catchup_id : client_id, cu->peer_id);
    cu->tracking = !p->cfg->share_group;
    double window = p->cfg->catchup_window_s;
    if (window <= 0) window = p->cfg->lag_drop_s > 0 ? p->cfg->lag_drop_s : 86400;
    cu->window_ns = (int64_t)(window * 1e9);
    snprintf(cu->state_path, sizeof cu->state_path, "%s/%s", p->state_dir, STATE_FILE);
    if (!(cu->lost = calloc(p->cfg->nbrokers + 1, sizeof *cu->lost)) ||
        !(cu->labels = calloc(p->cfg->nbrokers + 1, sizeof *cu->labels)))
        return WM_ERR_NOMEM;
    enum wm_err e = start_log(cu);
    if (e != WM_OK) return e;
    if (p->cfg->share_group)
        log_info("catch-up: with --share, this process serves its log but fetches nothing");
    return WM_OK;
}

enum wm_err peer_catchup_begin(struct peer *p, char *const *filters, size_t nfilters)
{
    struct peer_catchup *cu = p->catchup;
    if (!cu) return WM_OK;
    if (nfilters && !(cu->filters = calloc(nfilters, sizeof *cu->filters))) return WM_ERR_NOMEM;
    for (size_t i = 0; i < nfilters; i++, cu->nfilters++)
        if (!(cu->filters[i] = strdup(filters[i]))) return WM_ERR_NOMEM;
    for (size_t up = 0; up < p->nup; up++)
        if (!(cu->labels[up] = strdup(mqtt_label(p->up[up].link)))) return WM_ERR_NOMEM;
    if (cu->tracking) load_state(cu);
    loop_timer_start(p->loop, &cu->tick, 0, tick, cu);
    return WM_OK;
}

void peer_catchup_housekeeping(struct peer *p)
{
    struct peer_catchup *cu = p->catchup;
    if (cu && cu->log) catchup_log_prune(cu->log, loop_wall_ns());
}

void peer_catchup_stop(struct peer *p)
{
    struct peer_catchup *cu = p->catchup;
    if (!cu) return;
    loop_timer_stop(p->loop, &cu->tick);
    if (cu->tracking && cu->labels && cu->labels[0]) save_state(cu);
    while (cu->sources) {
        struct source *s = cu->sources;
        cu->sources = s->next;
        buf_free(&s->body);
        free(s);
    }
    catchup_serve_free(&cu->served);
    catchup_log_close(&cu->log);
    for (size_t i = 0; i < cu->nfilters; i++)
        free(cu->filters[i]);
    free(cu->filters);
    for (size_t i = 0; cu->labels && cu->labels[i]; i++)
        free(cu->labels[i]);
    free(cu->labels);
    free(cu->lost);
    free(cu->status_topic);
    free(cu->url);
    free(cu);
    p->catchup = NULL;
}
