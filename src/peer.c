/* peer.c: the mesh peer: set-up, broker intake, the journal and housekeeping, all on one event
 * loop. Admission of announcements is in peer_admit.c, obtaining and storing a file in
 * peer_job.c. */
#include "peer.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "deadletter.h"
#include "fetch.h"
#include "hasher.h"
#include "httpd.h"
#include "journal.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "outbox.h"
#include "peer_catchup.h"
#include "peer_internal.h"
#include "retention.h"
#include "seen.h"
#include "status_page.h"
#include "strmap.h"
#include "tree_spares.h"
#include "url.h"

#define HOUSEKEEPING_MS 10000
/* Temporary files kept ready (tree_spares.h): a burst of this many downloads starting in one
 * turn finds them made, and the thread wakes once per half of them. */
#define SPARE_TMP_FILES 64
#define SEEN_SAVE_EVERY 6 /* housekeeping rounds */
/* Versions handled by this process that a broker's resend still finds: a resend comes within
 * moments of a reconnect, for at most a receive window's worth of messages per upstream. */
#define HANDLED_CAPACITY 65536
#define RESEND_CHECK_MS 1000 /* how often entries handed back by `wmesh outbox` are looked for */

double peer_lag(const struct announce *a)
{
    return (double)(loop_wall_ns() - a->pubtime_ns) / 1e9;
}

/* ---- intake ---- */

/* Reading upstream brokers pauses while too many announcements are in hand or the outbox is
 * full: the brokers keep the rest in our sessions, so memory stays bounded. */
void peer_backpressure(struct peer *p)
{
    size_t held = strmap_count(p->inflight);
    bool jobs_ok = p->reading ? held < p->cfg->max_queue : held < p->cfg->max_queue / 2;
    bool outbox_ok = outbox_has_room(p->outbox);
    bool want = jobs_ok && outbox_ok;
    if (want == p->reading) return;
    p->reading = want;
    if (want)
        log_info("resuming reading upstream brokers: %zu announcements in hand, %zu in the "
                 "outbox",
                 held, outbox_entries(p->outbox));
    else if (!outbox_ok)
        log_warn("pausing reading upstream brokers: outbox full (%zu announcements, %llu bytes "
                 "not yet acknowledged by the post broker; --outbox-max %zu, --outbox-max-bytes "
                 "%llu)",
                 outbox_entries(p->outbox), (unsigned long long)outbox_bytes(p->outbox),
                 p->cfg->outbox_max, (unsigned long long)p->cfg->outbox_max_bytes);
    else
        log_info("pausing reading upstream brokers: %zu announcements in hand", held);
    for (size_t i = 0; i < p->nup; i++)
        mqtt_set_reading(p->up[i].link, want);
}

enum wm_err peer_decode(const struct journal_entry *m, struct announce **a, char *why,
                        size_t whylen)
{
    enum wm_err e = codec_decode(m->payload, m->len, a, why, whylen);
    if (e != WM_OK || !m->topic) return e;
    if (!((*a)->topic = strndup(m->topic, m->topic_len))) {
        announce_free(a);
        snprintf(why, whylen, "out of memory");
        return WM_ERR_NOMEM;
    }
    return WM_OK;
}

static bool on_message(void *arg, struct mqtt_link *link, const struct mqtt_msg *msg)
{
    struct upstream *u = arg;
    struct peer *p = u->peer;
    (void)link;
    if (peer_catchup_status(p, (size_t)(u - p->up), msg)) return true;
    peer_count(&p->metrics.brokers[u->metric].received, 1);
    atomic_store(&p->metrics.last_message_ns, loop_wall_ns());
    if (msg->len > p->cfg->max_message) {
        peer_count(&p->metrics.rejected[WM_REJECT_TOO_BIG], 1);
        log_warn("rejected too big: %zu-byte message on %s (limit %zu)", msg->len, msg->topic,
                 p->cfg->max_message);
        return true;
    }
    struct journal_entry raw = {.topic = msg->topic,
                                .topic_len = msg->topic ? strlen(msg->topic) : 0,
                                .payload = msg->payload,
                                .len = msg->len};
    struct announce *a = NULL;
    char why[200];
    enum wm_err e = peer_decode(&raw, &a, why, sizeof why);
    if (e == WM_ERR_NOMEM) {
        log_error("cannot take a message on %s: out of memory", msg->topic);
        return false; /* unacknowledged: the broker sends it again */
    }
    if (e != WM_OK) {
        /* A valid message asking for what a peer does not do (a WIS2 deletion) is no garbage. */
        enum wm_reject r = e == WM_ERR_NOTSUP ? WM_REJECT_UNSUPPORTED : WM_REJECT_MALFORMED;
        peer_count(&p->metrics.rejected[r], 1);
        log_warn("rejected %s: %s (topic %s)", metrics_reject_name(r), why, msg->topic);
        return true;
    }
    if (msg->dup) peer_count(&p->metrics.resent, 1);
    peer_catchup_received(p, (size_t)(u - p->up), a);
    bool taken = peer_admit(p, a, 0, msg->dup ? ADMIT_RESENT : ADMIT_FRESH, &raw);
    peer_backpressure(p);
    return taken;
}

static void on_upstream_state(void *arg, struct mqtt_link *link, bool session_present)
{
    struct upstream *u = arg;
    if (mqtt_connected(link))
        peer_catchup_connected(u->peer, (size_t)(u - u->peer->up), session_present);
    atomic_store(&u->peer->metrics.brokers[u->metric].connected, mqtt_connected(link) ? 1 : 0);
}

static void on_upstream_down(void *arg, struct mqtt_link *link)
{
    on_upstream_state(arg, link, false);
}

/* A re-announcement reached the post broker, or was set aside: its outbox entry is finished.
 * Or the outbox ran out of memory holding it: the journal keeps it for the sweep. */
static void on_outbox_ended(void *arg, uint64_t id, bool finished)
{
    struct peer *p = arg;
    if (finished)
        peer_journal_done(p, id);
    else
        peer_orphan(p, id);
    peer_backpressure(p);
}

/* ---- housekeeping ---- */

static void housekeeping(void *arg)
{
    struct peer *p = arg;
    loop_timer_start(p->loop, &p->housekeeping, HOUSEKEEPING_MS, housekeeping, p);
    if (p->journal && !p->journal_failing) journal_maybe_compact(p->journal);
    if (p->seen && ++p->housekeeping_rounds % SEEN_SAVE_EVERY == 0) {
        seen_expire(p->seen, peer_now_s());
        seen_save(p->seen, p->seen_path);
    }
    peer_catchup_housekeeping(p);
}

/* ---- set-up ---- */

static char *metrics_page(void *arg, size_t *len, const char **content_type)
{
    struct peer *p = arg;
    *content_type = "text/plain; version=0.0.4; charset=utf-8";
    return metrics_render(&p->metrics, len);
}

static void derive_client_id(const struct peer_config *cfg, const char *dir, char *out,
                             size_t outlen)
{
    if (cfg->client_id) {
        snprintf(out, outlen, "%s", cfg->client_id);
        return;
    }
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    char real[PATH_MAX];
    if (realpath(dir, real)) dir = real;
    uint32_t h = 2166136261u;
    for (const char *c = dir; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    /* Stable across restarts so the broker keeps our session and queues what we miss. */
    if (cfg->instance > 0)
        snprintf(out, outlen, "wmesh-%.40s-%08x-%d", host, h, cfg->instance);
    else
        snprintf(out, outlen, "wmesh-%.40s-%08x", host, h);
}

static enum wm_err subscriptions(const struct peer_config *c, char ***out)
{
    char **subs = calloc(c->nsubtopics + 2, sizeof *subs);
    if (!subs) return WM_ERR_NOMEM;
    *out = subs; /* NULL-terminated as it fills: the caller frees what was made */
    for (size_t i = 0; i < c->nsubtopics; i++) {
        size_t n = strlen(c->exchange) + strlen(c->topic_prefix) + strlen(c->subtopics[i]) + 16 +
                   (c->share_group ? strlen(c->share_group) : 0);
        if (!(subs[i] = malloc(n))) return WM_ERR_NOMEM;
        /* "$share/GROUP/filter": the broker hands each message to one member of the group. */
        snprintf(subs[i], n, "%s%s%s%s/%s%s%s", c->share_group ? "$share/" : "",
                 c->share_group ? c->share_group : "", c->share_group ? "/" : "", c->exchange,
                 c->topic_prefix, c->topic_prefix[0] ? "/" : "", c->subtopics[i]);
    }
    /* Last, so that subs[0 .. nsubtopics) stay the announcements' filters. */
    return peer_catchup_subscription(c, &subs[c->nsubtopics]);
}

static enum wm_err start_upstreams(struct peer *p, const char *client_id)
{
    char **subs = NULL;
    enum wm_err e = subscriptions(p->cfg, &subs);
    if (e == WM_OK && !(p->up = calloc(p->cfg->nbrokers, sizeof *p->up))) e = WM_ERR_NOMEM;
    struct mqtt_callbacks cb = {.on_message = on_message,
                                .on_connect = on_upstream_state,
                                .on_disconnect = on_upstream_down};
    for (size_t i = 0; e == WM_OK && i < p->cfg->nbrokers; i++) {
        struct upstream *u = &p->up[i];
        struct mqtt_options o = {.url = p->cfg->brokers[i],
                                 .client_id = client_id,
                                 .clean_session = false,
                                 .subscriptions = (const char *const *)subs,
                                 .nsubscriptions =
                                     p->cfg->nsubtopics + (subs[p->cfg->nsubtopics] ? 1 : 0),
                                 .protocol = p->cfg->mqtt_version,
                                 .cafile = p->cfg->cafile,
                                 .certfile = p->cfg->certfile,
                                 .proxies = p->cfg->proxies,
                                 .keyfile = p->cfg->keyfile};
        u->peer = p;
        u->link = mqtt_link_new(p->loop, &o, &cb, u, &e);
        if (!u->link) {
            char red[256];
            url_redact(p->cfg->brokers[i], red, sizeof red);
            log_error("broker %s: %s", red, wm_strerror(e));
            break;
        }
        p->nup++;
        mqtt_set_gated(u->link, true); /* see peer_sync.c */
        u->metric = metrics_add_broker(&p->metrics, mqtt_label(u->link));
        if (u->metric < 0) e = WM_ERR_TOOBIG;
    }
    if (e == WM_OK) e = peer_catchup_begin(p, subs, p->cfg->nsubtopics);
    for (size_t i = 0; subs && subs[i]; i++)
        free(subs[i]);
    free(subs);
    return e;
}

static enum wm_err start_post(struct peer *p, const char *client_id)
{
    if (!p->cfg->post_broker) return WM_OK;
    char post_id[300], set_aside[PATH_MAX + 32];
    snprintf(post_id, sizeof post_id, "%s-post", client_id);
    snprintf(set_aside, sizeof set_aside, "%s/%s", p->state_dir, DEADLETTER_FILE);
    struct mqtt_options link = {.url = p->cfg->post_broker,
                                .client_id = post_id,
                                .clean_session = true,
                                .protocol = p->cfg->mqtt_version,
                                .cafile = p->cfg->cafile,
                                .certfile = p->cfg->certfile,
                                .proxies = p->cfg->proxies,
                                .keyfile = p->cfg->keyfile};
    struct outbox_options o = {.link = &link,
                               .max_entries = p->cfg->outbox_max,
                               .max_bytes = p->cfg->outbox_max_bytes,
                               .retries = p->cfg->outbox_retries,
                               .set_aside_path = set_aside};
    enum wm_err e;
    p->outbox = outbox_new(p->loop, &o, on_outbox_ended, p, &p->metrics, &e);
    if (!p->outbox) log_error("post broker: %s", wm_strerror(e));
    return p->outbox ? WM_OK : e;
}

static enum wm_err start_http(struct peer *p)
{
    if (!p->cfg->http_listen) return WM_OK;
    struct wm_url base = {0};
    if (p->cfg->post_base_url && url_parse(p->cfg->post_base_url, &base) != WM_OK) {
        log_error("--post-base-url %s is not a URL", p->cfg->post_base_url);
        return WM_ERR_INVAL;
    }
    enum wm_err e;
    p->httpd = httpd_start(p->cfg->http_listen, p->tree, base.path ? base.path : "", &e);
    url_clear(&base);
    if (!p->httpd) {
        log_error("cannot serve on %s: %s", p->cfg->http_listen, wm_strerror(e));
        return e;
    }
    if ((e = httpd_add_page(p->httpd, "/", status_page_render, NULL)) != WM_OK) return e;
    return httpd_add_page(p->httpd, "/metrics", metrics_page, p);
}

/* Publishes an outbox entry as it was recorded. */
static void announce_recorded(struct peer *p, uint64_t id, const struct journal_outbox *o)
{
    char *topic = strndup(o->topic, o->topic_len);
    enum wm_err e = topic ? outbox_add(p->outbox, id, topic, o->message, o->len) : WM_ERR_NOMEM;
    if (e != WM_OK) peer_orphan(p, id);
    free(topic);
}

/* The key an outbox entry names, NUL-terminated in out; false when it cannot be one. */
static bool recorded_key(const struct journal_outbox *o, char *out, size_t outlen)
{
    if (o->key_len == 0 || o->key_len >= outlen || memchr(o->key, '\0', o->key_len)) return false;
    memcpy(out, o->key, o->key_len);
    out[o->key_len] = '\0';
    return out[0] != '/';
}

/* An outbox entry from before a restart: announced again as recorded while the tree holds its
 * version; else what it was made of is admitted again (fetched anew, or refused as older than
 * the version held); without that, it ends. */
static void replay_outbox(struct peer *p, uint64_t id, const void *record, size_t len)
{
    struct journal_outbox o;
    char key[PATH_MAX] = "", why[200];
    if (journal_outbox_read(record, len, &o) != WM_OK ||
        (o.key && !recorded_key(&o, key, sizeof key))) {
        log_error("journal entry %llu skipped: a truncated outbox entry", (unsigned long long)id);
        peer_journal_done(p, id);
        return;
    }
    if (!p->outbox) {
        log_warn("journal entry %llu dropped: an announcement, and --post-broker is none",
                 (unsigned long long)id);
        peer_journal_done(p, id);
        return;
    }
    if (!o.key || peer_holds(p, key, &o.sum, true)) {
        if (o.key) peer_handled(p, key, &o.sum);
        announce_recorded(p, id, &o);
        return;
    }
    struct announce *a = NULL;
    enum wm_err e =
        o.origin.payload ? peer_decode(&o.origin, &a, why, sizeof why) : WM_ERR_NOTFOUND;
    if (e == WM_OK) {
        peer_admit(p, a, id, ADMIT_REPLAYED, &o.origin);
        return;
    }
    if (e == WM_ERR_NOMEM) {
        peer_orphan(p, id);
        return;
    }
    log_warn("not announced again: the tree no longer holds the version of %s its journal entry "
             "%llu names",
             key, (unsigned long long)id);
    peer_journal_done(p, id);
}

static void replay_one(void *arg, uint64_t id, const void *record, size_t len)
{
    struct peer *p = arg;
    struct announce *a = NULL;
    struct journal_entry entry;
    char why[200];
    atomic_fetch_add(&p->metrics.journal_live, 1);
    if (journal_record_version(record, len) == JOURNAL_OUTBOX_VERSION) {
        replay_outbox(p, id, record, len);
        return;
    }
    if (journal_entry_read(record, len, &entry) != WM_OK) {
        if (entry.version == JOURNAL_ENTRY_VERSION || entry.version == 0)
            log_error("journal entry %llu skipped: truncated", (unsigned long long)id);
        else
            log_error("journal entry %llu skipped: its format (version %d) is not one this wmesh "
                      "reads (written by a newer wmesh?)",
                      (unsigned long long)id, entry.version);
        peer_journal_done(p, id);
        return;
    }
    /* Decoded exactly as a live message: the same payload, the same topic. */
    enum wm_err e = peer_decode(&entry, &a, why, sizeof why);
    if (e == WM_ERR_NOMEM) {
        peer_orphan(p, id);
        return;
    }
    if (e != WM_OK) {
        log_error("journal entry %llu unreadable: %s", (unsigned long long)id, why);
        peer_journal_done(p, id);
        return;
    }
    peer_admit(p, a, id, ADMIT_REPLAYED, &entry);
}

/* ---- entries handed back by `wmesh outbox --resend` ---- */

static void resend_one(void *arg, const struct deadletter *d)
{
    struct peer *p = arg;
    struct journal_outbox o = {
        .topic = d->topic, .topic_len = strlen(d->topic), .message = d->message, .len = d->len};
    uint64_t id;
    enum wm_err e = journal_add_outbox(p->journal, &o, &id);
    if (e != WM_OK) {
        log_error("cannot re-send the announcement on %s: %s", d->topic, wm_strerror(e));
        return;
    }
    atomic_fetch_add(&p->metrics.journal_live, 1);
    if (outbox_add(p->outbox, id, d->topic, d->message, d->len) != WM_OK) peer_orphan(p, id);
}

/* Takes the entries `wmesh outbox --resend` handed back into the journal and the outbox. The
 * file goes once they are durable; a crash before that sends them again, never loses them. */
static void take_resends(struct peer *p)
{
    char resend[PATH_MAX + 32], taken[PATH_MAX + 32];
    snprintf(resend, sizeof resend, "%s/%s", p->state_dir, DEADLETTER_RESEND);
    snprintf(taken, sizeof taken, "%s/%s", p->state_dir, DEADLETTER_TAKEN);
    if (!p->outbox || p->batch || p->journal_failing) return; /* no journal_sync now */
    if (!p->resend_unsynced) {
        if (access(taken, F_OK) != 0 && rename(resend, taken) != 0) return;
        size_t bad = 0;
        uint64_t before = (uint64_t)atomic_load(&p->metrics.journal_live);
        enum wm_err e = deadletter_each(taken, resend_one, p, &bad);
        if (e != WM_OK && e != WM_ERR_NOTFOUND)
            log_error("cannot read %s: %s", taken, wm_strerror(e));
        log_info("re-sending %llu announcement(s) handed back by wmesh outbox%s",
                 (unsigned long long)((uint64_t)atomic_load(&p->metrics.journal_live) - before),
                 bad ? " (lines that are not entries skipped)" : "");
        p->resend_unsynced = true;
    }
    if (journal_sync(p->journal) != WM_OK) return; /* logged; tried again at the next check */
    if (unlink(taken) != 0 && errno != ENOENT)
        log_warn("cannot remove %s: %s", taken, strerror(errno));
    p->resend_unsynced = false;
}

/* ---- entries nothing in memory stands for ---- */

void peer_orphan(struct peer *p, uint64_t jid)
{
    if (!jid) return;
    for (size_t i = 0; i < p->norphans; i++)
        if (p->orphans[i] == jid) return;
    if (p->norphans == PEER_ORPHANS_MAX) {
        log_error("journal entry %llu waits for the next start: too many left by failed "
                  "allocations",
                  (unsigned long long)jid);
        return;
    }
    p->orphans[p->norphans++] = jid;
}

struct sweep {
    struct peer *p;
    uint64_t ids[PEER_ORPHANS_MAX];
    size_t n, found;
};

static void replay_one(void *arg, uint64_t id, const void *record, size_t len);

static void readmit(void *arg, uint64_t id, const void *record, size_t len)
{
    struct sweep *s = arg;
    for (size_t i = 0; i < s->n; i++) {
        if (s->ids[i] != id) continue;
        s->found++;
        atomic_fetch_sub(&s->p->metrics.journal_live, 1); /* counted again by replay_one */
        replay_one(s->p, id, record, len);
        return;
    }
}

/* Takes the orphaned entries up again from the journal: one pass over its file. Entries that
 * fail again are orphaned again, for the next sweep. */
static void sweep_orphans(struct peer *p)
{
    if (!p->norphans || p->batch || p->journal_failing) return; /* journal_replay syncs */
    struct sweep *s = malloc(sizeof *s);
    if (!s) return;
    s->p = p;
    s->n = p->norphans;
    s->found = 0;
    memcpy(s->ids, p->orphans, s->n * sizeof *s->ids);
    p->norphans = 0;
    enum wm_err e = journal_replay(p->journal, readmit, s);
    if (e != WM_OK) {
        log_error("cannot read the journal again: %s", wm_strerror(e));
        for (size_t i = 0; i < s->n; i++)
            peer_orphan(p, s->ids[i]);
    } else {
        log_info("took up %zu journal entr%s again after failed allocations", s->found,
                 s->found == 1 ? "y" : "ies");
    }
    free(s);
}

static void on_resend_check(void *arg)
{
    struct peer *p = arg;
    loop_timer_start(p->loop, &p->resend_timer, RESEND_CHECK_MS, on_resend_check, p);
    take_resends(p);
    sweep_orphans(p);
    peer_backpressure(p);
}

static enum wm_err open_state(struct peer *p, char *path, size_t pathlen)
{
    const struct peer_config *c = p->cfg;
    char *dir = p->state_dir;
    size_t dirlen = sizeof p->state_dir;
    if (c->state_dir)
        snprintf(dir, dirlen, "%s", c->state_dir);
    else if (c->instance > 0)
        snprintf(dir, dirlen, "%s/.wmesh-state-%d", c->dir, c->instance);
    else
        snprintf(dir, dirlen, "%s/.wmesh-state", c->dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        log_error("cannot make the state directory %s: %s", dir, strerror(errno));
        return WM_ERR_IO;
    }
    enum wm_err e;
    snprintf(path, pathlen, "%s/journal", dir);
    p->journal = journal_open(path, &e);
    if (!p->journal) {
        log_error("cannot open the journal %s: %s", path, wm_strerror(e));
        return e;
    }
    journal_set_fdatasync(p->journal, c->survive_power_loss);
    if (c->seen_capacity) {
        p->seen = seen_new(c->seen_capacity, (uint32_t)c->seen_ttl_s);
        if (!p->seen) return WM_ERR_NOMEM;
        snprintf(p->seen_path, sizeof p->seen_path, "%s/seen", dir);
        e = seen_load(p->seen, p->seen_path, peer_now_s());
        if (e != WM_OK && e != WM_ERR_NOTFOUND)
            log_warn("seen-cache %s not loaded (%s): starting empty", p->seen_path, wm_strerror(e));
    }
    return WM_OK;
}

static void on_stop_signal(void *arg)
{
    struct peer *p = arg;
    log_info("stopping");
    loop_stop(p->loop);
}

static enum wm_err start(struct peer *p, char *client_id, size_t idlen)
{
    const struct peer_config *c = p->cfg;
    char journal_path[PATH_MAX + 16];
    enum wm_err e;
    p->reading = true;
    p->loop = loop_new();
    p->inflight = strmap_new();
    p->handled = seen_new(HANDLED_CAPACITY, SEEN_TTL_MAX);
    if (!p->loop || !p->inflight || !p->handled) return WM_ERR_NOMEM;
    p->tree = tree_open(c->dir);
    if (!p->tree) {
        log_error("cannot open tree %s: %s", c->dir, strerror(errno));
        return WM_ERR_IO;
    }
    /* One syncfs per tree round (peer_sync.c) instead of two fsyncs per file. */
    tree_set_sync(p->tree, false);
    if (!(p->spares = tree_spares_start(p->tree, SPARE_TMP_FILES)))
        log_warn("temporary files are made as needed: %s", strerror(errno));
    if (!(p->hasher = hasher_new(p->loop)))
        log_warn("large files are hashed on the loop's thread: %s", strerror(errno));
    if ((e = open_state(p, journal_path, sizeof journal_path))) return e;
    if ((e = peer_gc_start(p))) return e;
    derive_client_id(c, c->dir, client_id, idlen);
    /* The listening port before any connection out: an outgoing connection's ephemeral port
     * could otherwise be the very port this peer is told to serve on. */
    if ((e = start_http(p))) return e;
    /* The sync hook comes first: under --durability process its round writes the outbox
     * entries before the post link's hook sends them, and the upstream links' PUBACKs wait for
     * it (peer_sync.c says why). */
    if ((e = peer_sync_start(p))) return e;
    if ((e = start_post(p, client_id))) return e;
    if ((e = peer_catchup_start(p, client_id))) return e;
    /* Connections are kept per server and never traded between servers below the total cap:
     * over a long round trip a new connection costs a round trip more (two with TLS), and
     * downloads beyond the connections are pipelined or wait in their server's queue. */
    struct fetch_options fo = {.max_per_host = c->max_host_connections,
                               .max_total = c->max_downloads > c->max_host_connections
                                                ? c->max_downloads
                                                : c->max_host_connections,
                               .pipeline = c->pipeline,
                               .max_size = c->max_size,
                               .connect_timeout_ms = (long)(c->connect_timeout_s * 1000),
                               .low_speed_time_s = (long)c->stall_timeout_s,
                               .cafile = c->cafile,
                               .certfile = c->certfile,
                               .proxies = c->proxies,
                               .keyfile = c->keyfile};
    if (!(p->fetcher = fetch_new(p->loop, &fo))) {
        log_error("cannot start the downloader: %s", strerror(errno));
        return WM_ERR_NOMEM;
    }
    if ((e = loop_on_signal(p->loop, SIGINT, on_stop_signal, p)) ||
        (e = loop_on_signal(p->loop, SIGTERM, on_stop_signal, p)))
        return e;
    size_t live = journal_live(p->journal);
    if (live) log_info("finishing %zu announcement(s) from the journal", live);
    if ((e = journal_replay(p->journal, replay_one, p))) {
        log_error("cannot replay the journal %s: %s", journal_path, wm_strerror(e));
        return e;
    }
    loop_timer_start(p->loop, &p->housekeeping, HOUSEKEEPING_MS, housekeeping, p);
    loop_timer_start(p->loop, &p->resend_timer, 0, on_resend_check, p);
    if (c->retention_s > 0) {
        /* Its own thread: a sweep of a large tree must not hold up the loop. */
        double every = c->retention_s / 10 < 300 ? c->retention_s / 10 : 300;
        p->retention = retention_start(tree_path(p->tree), c->retention_s, every < 1 ? 1 : every,
                                       &p->metrics.retention_removed);
        if (!p->retention) {
            log_error("cannot start retention: %s", strerror(errno));
            return WM_ERR_IO;
        }
    }
    return start_upstreams(p, client_id);
}

static void stop(struct peer *p)
{
    retention_stop(&p->retention);
    /* Durable first: only then may the links' last writes acknowledge anything. */
    bool durable = peer_sync_stop(p);
    for (size_t i = 0; i < p->nup; i++) {
        if (durable) mqtt_release(p->up[i].link, mqtt_mark(p->up[i].link));
        mqtt_link_free(&p->up[i].link);
    }
    free(p->up);
    outbox_free(&p->outbox);
    httpd_stop(&p->httpd);
    peer_gc_stop(p);         /* after the server: its thread renders the series */
    hasher_free(&p->hasher); /* first: it reads the files of the jobs dropped next */
    if (p->inflight) jobs_drop_all(p);
    fetch_free(&p->fetcher);
    peer_catchup_stop(p); /* after the fetcher (its transfers) and the server (its pages) */
    if (p->seen && seen_save(p->seen, p->seen_path) != WM_OK)
        log_warn("seen-cache not saved: it starts empty next time");
    seen_free(&p->seen);
    journal_close(&p->journal);
    strmap_free(&p->inflight);
    seen_free(&p->handled);
    tree_spares_stop(&p->spares);
    tree_close(&p->tree);
    if (p->loop) loop_timer_stop(p->loop, &p->housekeeping);
    if (p->loop) loop_timer_stop(p->loop, &p->resend_timer);
    loop_free(&p->loop);
}

int peer_run(const struct peer_config *cfg)
{
    struct peer p = {.cfg = cfg};
    metrics_init(&p.metrics);
    signal(SIGPIPE, SIG_IGN);
    if (cfg->name) log_set_name(cfg->name);
    char client_id[256];
    enum wm_err e = start(&p, client_id, sizeof client_id);
    if (e == WM_OK) {
        log_info("peer up: tree %s, %zu upstream broker(s), client id %s", tree_path(p.tree), p.nup,
                 client_id);
        e = loop_run(p.loop);
    }
    stop(&p);
    return e == WM_OK ? 0 : 1;
}
