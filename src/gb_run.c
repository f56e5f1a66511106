/* gb_run.c: the Global Broker daemon (gb.h): one event loop holding a link to every upstream
 * broker and one to the local broker, gb_core deciding, /metrics served by the HTTP server. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gb.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"
#include "series.h"
#include "tree.h"
#include "wis2_topic.h"

#define STATS_MS 1000
#define PENDING_DEFAULT 20000

struct gb_up {
    struct gb *gb;
    const struct gb_link_config *cfg;
    struct mqtt_link *link;
    struct gb_centre **centres; /* of cfg->centres */
    struct gb_source source;
    char **subs;
    size_t nsubs;
};

/* What the HTTP thread reads: copied from the loop's counters once a second. */
struct gb_stats {
    atomic_uint_fast64_t unauthorised, duplicates, refused, dedup_entries, dedup_evictions, pending;
};

struct gb {
    const struct gb_config *cfg;
    struct loop *loop;
    struct wis2_topics *topics;
    struct gb_core *core;
    struct gb_up *ups;
    size_t nups;
    struct mqtt_link *post;
    bool paused;
    size_t max_pending;
    uint64_t refused;
    struct loop_timer stats_timer;
    struct gb_stats stats;
    struct httpd *httpd;
    struct tree *empty; /* the HTTP server wants a tree: an empty one */
    char empty_dir[64];
};

static uint64_t now_s(void)
{
    return (uint64_t)(loop_wall_ns() / 1000000000);
}

static void set_reading(struct gb *g, bool on)
{
    if (g->paused == !on) return;
    g->paused = !on;
    for (size_t i = 0; i < g->nups; i++)
        mqtt_set_reading(g->ups[i].link, on);
    log_info("%s reading the upstream links: %d republished messages unacknowledged",
             on ? "resumed" : "paused", mqtt_pending(g->post));
}

static bool on_message(void *arg, struct mqtt_link *link, const struct mqtt_msg *msg)
{
    struct gb_up *u = arg;
    struct gb *g = u->gb;
    struct gb_centre *centre = NULL;
    char why[200];
    (void)link;
    enum gb_verdict v = gb_core_admit(g->core, &u->source, msg->topic, strlen(msg->topic),
                                      msg->payload, msg->len, now_s(), &centre, why, sizeof why);
    if (v != GB_PUBLISH) {
        log_debug("dropped a message on %s from %s: %s", msg->topic, mqtt_label(u->link), why);
        return true;
    }
    enum wm_err e =
        mqtt_publish(g->post, msg->topic, msg->payload, msg->len, (uint64_t)(uintptr_t)centre);
    if (e != WM_OK) {
        /* Not acknowledged: the upstream broker sends it again after a reconnect. */
        log_warn("cannot republish a message on %s: %s", msg->topic, wm_strerror(e));
        return false;
    }
    if ((size_t)mqtt_pending(g->post) >= g->max_pending) set_reading(g, false);
    return true;
}

static void on_published(void *arg, struct mqtt_link *link, const struct mqtt_published *p)
{
    struct gb *g = arg;
    if (p->reason == 0)
        gb_core_published(g->core, (struct gb_centre *)(uintptr_t)p->tag);
    else {
        g->refused++;
        log_warn("the local broker refused a message on %s: %s", p->topic, p->why);
    }
    if (g->paused && (size_t)mqtt_pending(link) <= g->max_pending / 2) set_reading(g, true);
}

static void on_up_connect(void *arg, struct mqtt_link *link, bool session_present)
{
    struct gb_up *u = arg;
    (void)session_present;
    log_info("connected to %s", mqtt_label(link));
    for (size_t i = 0; i < u->cfg->ncentres; i++)
        gb_core_connected(u->gb->core, u->centres[i], true);
}

static void on_up_disconnect(void *arg, struct mqtt_link *link)
{
    struct gb_up *u = arg;
    log_warn("lost %s", mqtt_label(link));
    for (size_t i = 0; i < u->cfg->ncentres; i++)
        gb_core_connected(u->gb->core, u->centres[i], false);
}

static void on_post_connect(void *arg, struct mqtt_link *link, bool session_present)
{
    (void)arg;
    (void)session_present;
    log_info("connected to the local broker %s", mqtt_label(link));
}

static void on_post_disconnect(void *arg, struct mqtt_link *link)
{
    (void)arg;
    log_warn("lost the local broker %s", mqtt_label(link));
}

static void publish_stats(void *arg)
{
    struct gb *g = arg;
    struct gb_counts c;
    gb_core_counts(g->core, &c);
    atomic_store(&g->stats.unauthorised, c.unauthorised);
    atomic_store(&g->stats.duplicates, c.duplicates);
    atomic_store(&g->stats.refused, g->refused);
    atomic_store(&g->stats.dedup_entries, gb_core_dedup_count(g->core));
    atomic_store(&g->stats.dedup_evictions, gb_core_dedup_evictions(g->core));
    atomic_store(&g->stats.pending, (uint64_t)mqtt_pending(g->post));
    loop_timer_start(g->loop, &g->stats_timer, STATS_MS, publish_stats, g);
}

static void stat_line(struct buf *b, const char *name, const char *help, bool counter, uint64_t v)
{
    /* A line that does not fit is left out, as the series' own are when memory runs short. */
    if (buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name,
                   counter ? "counter" : "gauge", name, (unsigned long long)v) != WM_OK)
        return;
}

static char *metrics_page(void *arg, size_t *len, const char **content_type)
{
    struct gb *g = arg;
    struct buf page = {0};
    *content_type = "text/plain; version=0.0.4; charset=utf-8";
    if (!series_render(gb_core_series(g->core), &page)) {
        buf_free(&page);
        return NULL;
    }
    struct gb_stats *s = &g->stats;
    stat_line(&page, "wmesh_gb_unauthorised_total",
              "Messages dropped: a node's message under another centre-id.", true,
              atomic_load(&s->unauthorised));
    stat_line(&page, "wmesh_gb_duplicates_total",
              "Messages dropped: their id was published within the window.", true,
              atomic_load(&s->duplicates));
    stat_line(&page, "wmesh_gb_refused_total", "Messages the local broker refused.", true,
              atomic_load(&s->refused));
    stat_line(&page, "wmesh_gb_dedup_entries", "Message ids remembered.", false,
              atomic_load(&s->dedup_entries));
    stat_line(&page, "wmesh_gb_dedup_evictions_total",
              "Message ids forgotten before their window ended (set full).", true,
              atomic_load(&s->dedup_evictions));
    stat_line(&page, "wmesh_gb_pending",
              "Republished messages not yet acknowledged by the local broker.", false,
              atomic_load(&s->pending));
    char *text = buf_detach(&page, len);
    buf_free(&page);
    return text;
}

static void on_signal(void *arg)
{
    loop_stop(arg);
}

static enum wm_err start_http(struct gb *g)
{
    enum wm_err e;
    const char *tmp = getenv("TMPDIR");
    snprintf(g->empty_dir, sizeof g->empty_dir, "%s/wmesh-gb-XXXXXX",
             tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(g->empty_dir)) {
        g->empty_dir[0] = '\0';
        log_error("cannot make a directory for the HTTP server: %s", strerror(errno));
        return WM_ERR_IO;
    }
    if (!(g->empty = tree_attach(g->empty_dir))) return WM_ERR_IO;
    if (!(g->httpd = httpd_start(g->cfg->http_listen, g->empty, "/.none", &e))) return e;
    if ((e = httpd_add_page(g->httpd, "/metrics", metrics_page, g)) != WM_OK) return e;
    log_info("metrics at http://%s/metrics", g->cfg->http_listen);
    return WM_OK;
}

/* Subscribes u to <prefix><centre>/#. */
static enum wm_err add_subscription(struct gb_up *u, const char *prefix, const char *centre)
{
    char topic[256];
    int n = snprintf(topic, sizeof topic, "%s%s%s#", prefix, centre, *centre ? "/" : "");
    if (n < 0 || (size_t)n >= sizeof topic) return WM_ERR_TOOBIG;
    if (!(u->subs[u->nsubs] = strdup(topic))) return WM_ERR_NOMEM;
    u->nsubs++;
    return WM_OK;
}

static enum wm_err start_up(struct gb *g, struct gb_up *u, const struct gb_link_config *lc)
{
    enum wm_err e = WM_ERR_NOMEM;
    u->gb = g;
    u->cfg = lc;
    if (!(u->centres = calloc(lc->ncentres ? lc->ncentres : 1, sizeof *u->centres)) ||
        !(u->subs = calloc(lc->ncentres + 2, sizeof *u->subs)))
        return WM_ERR_NOMEM;
    for (size_t i = 0; i < lc->ncentres; i++) {
        u->centres[i] = gb_core_centre(g->core, lc->centres[i], strlen(lc->centres[i]));
        if (!u->centres[i]) return WM_ERR_NOMEM;
        if (lc->node && (e = add_subscription(u, "origin/a/wis2/", lc->centres[i])) != WM_OK)
            return e;
        gb_core_connected(g->core, u->centres[i], false);
    }
    if (lc->node) {
        u->source.centres = u->centres;
        u->source.ncentres = lc->ncentres;
    } else if ((e = add_subscription(u, "origin/a/wis2/", "")) != WM_OK ||
               (e = add_subscription(u, "cache/a/wis2/", "")) != WM_OK)
        return e;
    struct mqtt_options mo = {.protocol = g->cfg->mqtt_version,
                              .url = lc->url,
                              .subscriptions = (const char *const *)u->subs,
                              .nsubscriptions = u->nsubs,
                              .cafile = g->cfg->cafile,
                              .certfile = g->cfg->certfile,
                              .keyfile = g->cfg->keyfile,
                              .proxies = g->cfg->proxies};
    struct mqtt_callbacks cb = {
        .on_message = on_message, .on_connect = on_up_connect, .on_disconnect = on_up_disconnect};
    if (!(u->link = mqtt_link_new(g->loop, &mo, &cb, u, &e))) return e;
    return WM_OK;
}

static void free_up(struct gb_up *u)
{
    mqtt_link_free(&u->link);
    for (size_t i = 0; u->subs && i < u->nsubs; i++)
        free(u->subs[i]);
    free(u->subs);
    free(u->centres);
}

static enum wm_err start(struct gb *g)
{
    const struct gb_config *c = g->cfg;
    enum wm_err e = WM_ERR_NOMEM;
    char why[512];
    if (c->topic_table) {
        if (!(g->topics = wis2_topics_load(c->topic_table, &e, why, sizeof why))) {
            log_error("topic table: %s", why);
            return e;
        }
    } else if (!(g->topics = wis2_topics_builtin()))
        return WM_ERR_NOMEM;
    log_info("topic hierarchy: %zu earth-system-discipline paths (%s), leaf-only %s",
             wis2_topics_count(g->topics), c->topic_table ? c->topic_table : "built in",
             c->leaf_only ? "on" : "off");
    struct gb_core_config cc = {.report_by = c->centre_id,
                                .topics = g->topics,
                                .leaf_only = c->leaf_only,
                                .dedup_window_s = c->dedup_window_s,
                                .dedup_capacity = c->dedup_capacity};
    if (!(g->core = gb_core_new(&cc)) || !(g->loop = loop_new()))
        return errno == EINVAL ? WM_ERR_INVAL : errno == ENOMEM ? WM_ERR_NOMEM : WM_ERR_IO;
    struct mqtt_options po = {.protocol = c->mqtt_version,
                              .url = c->post_broker,
                              .client_id = c->client_id,
                              .clean_session = true,
                              .cafile = c->cafile,
                              .certfile = c->certfile,
                              .keyfile = c->keyfile,
                              .proxies = c->proxies};
    struct mqtt_callbacks pcb = {.on_published = on_published,
                                 .on_connect = on_post_connect,
                                 .on_disconnect = on_post_disconnect};
    if (!(g->post = mqtt_link_new(g->loop, &po, &pcb, g, &e))) return e;
    if (!(g->ups = calloc(c->nlinks ? c->nlinks : 1, sizeof *g->ups))) return WM_ERR_NOMEM;
    for (size_t i = 0; i < c->nlinks; i++, g->nups++)
        if ((e = start_up(g, &g->ups[i], &c->links[i])) != WM_OK) {
            g->nups++;
            return e;
        }
    if (c->http_listen && (e = start_http(g)) != WM_OK) return e;
    if ((e = loop_on_signal(g->loop, SIGINT, on_signal, g->loop)) != WM_OK ||
        (e = loop_on_signal(g->loop, SIGTERM, on_signal, g->loop)) != WM_OK)
        return e;
    publish_stats(g);
    return WM_OK;
}

int gb_run(const struct gb_config *c)
{
    struct gb g = {.cfg = c, .max_pending = c->max_pending ? c->max_pending : PENDING_DEFAULT};
    int rc = 1;
    enum wm_err e = start(&g);
    if (e != WM_OK) {
        log_error("cannot start the Global Broker: %s", wm_strerror(e));
        goto done;
    }
    log_info("Global Broker %s: %zu upstream links, republishing on %s, dedup window %u s",
             c->centre_id ? c->centre_id : "", g.nups, mqtt_label(g.post), c->dedup_window_s);
    rc = loop_run(g.loop) == WM_OK ? 0 : 1;
    struct gb_counts n;
    gb_core_counts(g.core, &n);
    log_info("stopping: %llu received, %llu published, %llu duplicates, %llu invalid topic, "
             "%llu invalid format",
             (unsigned long long)n.received, (unsigned long long)n.published,
             (unsigned long long)n.duplicates, (unsigned long long)n.invalid_topic,
             (unsigned long long)n.invalid_format);
done:
    httpd_stop(&g.httpd);
    tree_close(&g.empty);
    if (g.empty_dir[0]) rmdir(g.empty_dir);
    for (size_t i = 0; i < g.nups; i++)
        free_up(&g.ups[i]);
    free(g.ups);
    mqtt_link_free(&g.post);
    if (g.loop) loop_timer_stop(g.loop, &g.stats_timer);
    loop_free(&g.loop);
    gb_core_free(&g.core);
    wis2_topics_free(&g.topics);
    return rc;
}
