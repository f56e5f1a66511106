/* peer.c: the mesh peer: wires broker links, decoding, admission, downloads, storage and
 * re-announcement on one event loop. See DESIGN.md for the pipeline. */
#include "peer.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "fetch.h"
#include "filter.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "mqtt.h"
#include "strmap.h"
#include "tree.h"
#include "url.h"

struct peer;

struct upstream {
    struct peer *peer;
    struct mqtt_link *link;
    int metric;
};

/* One file version being obtained: created at admission, freed by finish_job(). */
struct job {
    struct peer *peer;
    char *key;              /* the clean relPath: the in-flight table's key */
    struct announce *a;     /* the announcement acted on */
    char **urls;            /* sources: the first announcer, then any that announced it too */
    size_t nurls, next_url;
    struct tree_tmp tmp;
    bool has_tmp;
    struct integrity_ctx *hash;
    int64_t bytes;
    bool write_failed;
    struct announce **deferred; /* other versions of the same relPath, admitted after this one */
    size_t ndeferred;
    struct job *next_waiting;
};

struct peer {
    const struct peer_config *cfg;
    struct loop *loop;
    struct tree *tree;
    struct fetcher *fetcher;
    struct httpd *httpd;
    struct upstream *up;
    size_t nup;
    struct mqtt_link *post;
    struct strmap *inflight;
    struct job *wait_head, *wait_tail;
    int active;
    struct metrics metrics;
};

static void admit(struct peer *p, struct announce *a);

static double lag_of(const struct announce *a)
{
    return (double)(loop_wall_ns() - a->pubtime_ns) / 1e9;
}

static void count_reject(struct peer *p, enum wm_reject r)
{
    atomic_fetch_add_explicit(&p->metrics.rejected[r], 1, memory_order_relaxed);
}

static void add(atomic_uint_fast64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* ---- re-announcement ---- */

static void announce_stored(struct peer *p, const struct announce *in,
                            const struct wm_checksum *stored)
{
    if (!p->post) return;
    struct announce *out = announce_clone(in);
    char *text = NULL;
    size_t len = 0;
    char topic[1024];
    if (!out) goto fail;
    free(out->base_url);
    out->base_url = strdup(p->cfg->post_base_url);
    free(out->retrieve_path); /* we serve the file at its relPath */
    out->retrieve_path = NULL;
    out->sum = *stored;
    if (!out->base_url) goto fail;
    enum wm_err e = codec_encode(out, p->cfg->post_format, &text, &len);
    if (e == WM_OK) e = codec_topic(p->cfg->exchange, p->cfg->topic_prefix, out->rel_path, topic,
                                    sizeof topic);
    if (e == WM_OK) e = mqtt_publish(p->post, topic, text, len, NULL);
    if (e != WM_OK) {
        log_error("cannot announce %s: %s", in->rel_path, wm_strerror(e));
        goto done;
    }
    add(&p->metrics.published, 1);
    goto done;
fail:
    log_error("cannot announce %s: out of memory", in->rel_path);
done:
    free(text);
    announce_free(&out);
}

/* ---- jobs ---- */

static struct job *job_new(struct peer *p, const char *key, struct announce *a, const char *url)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->peer = p;
    j->a = a;
    j->tmp.fd = -1;
    j->key = strdup(key);
    j->urls = calloc(1, sizeof *j->urls);
    if (!j->key || !j->urls || !(j->urls[0] = strdup(url))) {
        free(j->key);
        free(j->urls);
        free(j);
        return NULL;
    }
    j->nurls = 1;
    return j;
}

static void job_add_source(struct job *j, const char *url)
{
    for (size_t i = 0; i < j->nurls; i++)
        if (strcmp(j->urls[i], url) == 0) return;
    char **u = realloc(j->urls, (j->nurls + 1) * sizeof *u);
    if (!u) return;
    j->urls = u;
    if ((j->urls[j->nurls] = strdup(url))) j->nurls++;
}

static void job_defer(struct job *j, struct announce *a)
{
    struct announce **d = realloc(j->deferred, (j->ndeferred + 1) * sizeof *d);
    if (!d) {
        log_error("dropping a newer version of %s: out of memory", j->key);
        announce_free(&a);
        return;
    }
    j->deferred = d;
    j->deferred[j->ndeferred++] = a;
}

static void discard_tmp(struct job *j)
{
    integrity_abort(&j->hash);
    if (j->has_tmp) tree_tmp_discard(j->peer->tree, &j->tmp);
    j->has_tmp = false;
}

static void start_waiting(struct peer *p);

/* Ends a job: forgets it, then admits the versions of its file that arrived meanwhile. */
static void finish_job(struct job *j)
{
    struct peer *p = j->peer;
    discard_tmp(j);
    strmap_remove(p->inflight, j->key);
    atomic_fetch_sub(&p->metrics.queue_depth, 1);
    struct announce **deferred = j->deferred;
    size_t ndeferred = j->ndeferred;
    for (size_t i = 0; i < j->nurls; i++) free(j->urls[i]);
    free(j->urls);
    free(j->key);
    announce_free(&j->a);
    free(j);
    for (size_t i = 0; i < ndeferred; i++) admit(p, deferred[i]);
    free(deferred);
}

/* The checksum to record for content that hashed to computed, or NULL if it must be refused. */
static const struct wm_checksum *verified_sum(const struct announce *a,
                                              const struct wm_checksum *computed)
{
    switch (a->sum.method) {
    case WM_SUM_RANDOM:
    case WM_SUM_ARBITRARY: return &a->sum; /* nothing to check against */
    case WM_SUM_COD:
    case WM_SUM_MD5NAME: return computed;
    default: return integrity_equal(computed, &a->sum) ? computed : NULL;
    }
}

static const char *basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static enum wm_err commit_and_announce(struct job *j, const struct wm_checksum *sum,
                                       const char *how)
{
    struct peer *p = j->peer;
    enum wm_err e = tree_tmp_commit(p->tree, &j->tmp, j->key, sum);
    j->has_tmp = false; /* commit consumed it, whatever the outcome */
    if (e != WM_OK) {
        log_error("failed %s lag=%.3fs: cannot store: %s", j->a->rel_path, lag_of(j->a),
                  wm_strerror(e));
        return e;
    }
    double lag = lag_of(j->a);
    metrics_observe_lag(&p->metrics, lag);
    log_info("%s %s lag=%.3fs size=%" PRId64, how, j->a->rel_path, lag, j->bytes);
    announce_stored(p, j->a, sum);
    return WM_OK;
}

/* ---- inline content ---- */

static enum wm_err write_all(int fd, const void *data, size_t len)
{
    const char *c = data;
    while (len > 0) {
        ssize_t n = write(fd, c, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return WM_ERR_IO;
        c += n;
        len -= (size_t)n;
    }
    return WM_OK;
}

static void store_inline(struct job *j)
{
    struct peer *p = j->peer;
    struct announce *a = j->a;
    struct wm_checksum computed;
    enum wm_err e = integrity_of_buffer(a->sum.method == WM_SUM_COD ? a->sum.cod_method
                                                                     : a->sum.method,
                                        basename_of(j->key), a->content, a->content_len,
                                        &computed);
    const struct wm_checksum *sum = e == WM_OK ? verified_sum(a, &computed) : NULL;
    if (!sum) {
        add(&p->metrics.integrity_failures, 1);
        log_warn("failed %s lag=%.3fs: inline content does not match its checksum", a->rel_path,
                 lag_of(a));
        finish_job(j);
        return;
    }
    e = tree_tmp_create(p->tree, &j->tmp);
    if (e == WM_OK) {
        j->has_tmp = true;
        e = write_all(j->tmp.fd, a->content, a->content_len);
    }
    if (e != WM_OK) {
        log_error("failed %s: cannot write: %s", a->rel_path, wm_strerror(e));
        finish_job(j);
        return;
    }
    j->bytes = (int64_t)a->content_len;
    if (commit_and_announce(j, sum, "inlined") == WM_OK) add(&p->metrics.inlined, 1);
    finish_job(j);
}

/* ---- downloads ---- */

static int on_data(void *arg, const void *data, size_t len)
{
    struct job *j = arg;
    if (write_all(j->tmp.fd, data, len) != WM_OK) {
        j->write_failed = true;
        return -1;
    }
    integrity_update(j->hash, data, len);
    j->bytes += (int64_t)len;
    return 0;
}

static void on_done(void *arg, enum wm_err err, long status, const char *why);

/* Starts fetching from the job's next source. Returns false when none is left. */
static bool try_next_source(struct job *j)
{
    struct peer *p = j->peer;
    while (j->next_url < j->nurls) {
        const char *url = j->urls[j->next_url++];
        discard_tmp(j);
        j->bytes = 0;
        j->write_failed = false;
        enum wm_err e = tree_tmp_create(p->tree, &j->tmp);
        if (e != WM_OK) {
            log_error("failed %s: no temporary file: %s", j->a->rel_path, wm_strerror(e));
            return false;
        }
        j->has_tmp = true;
        j->hash = integrity_begin(&j->a->sum, basename_of(j->key));
        if (!j->hash) {
            log_error("failed %s: cannot hash with %s", j->a->rel_path,
                      integrity_method_name(j->a->sum.method));
            return false;
        }
        e = fetch_start(p->fetcher, url, on_data, on_done, j);
        if (e == WM_OK) return true;
        log_warn("cannot start download of %s: %s", url, wm_strerror(e));
    }
    return false;
}

static void end_download(struct job *j)
{
    struct peer *p = j->peer;
    p->active--;
    finish_job(j);
    start_waiting(p);
}

static void on_done(void *arg, enum wm_err err, long status, const char *why)
{
    struct job *j = arg;
    struct peer *p = j->peer;
    const char *url = j->urls[j->next_url - 1];
    if (err != WM_OK) {
        add(&p->metrics.download_errors, 1);
        log_warn("download of %s failed: %s%s (HTTP %ld)", url, j->write_failed ? "disk: " : "",
                 j->write_failed ? strerror(errno) : why, status);
        if (try_next_source(j)) return;
        log_warn("failed %s lag=%.3fs: no source left", j->a->rel_path, lag_of(j->a));
        end_download(j);
        return;
    }
    struct wm_checksum computed;
    const struct wm_checksum *sum = NULL;
    if (integrity_finish(&j->hash, &computed) == WM_OK) sum = verified_sum(j->a, &computed);
    if (!sum) {
        add(&p->metrics.integrity_failures, 1);
        log_warn("failed %s lag=%.3fs: checksum mismatch from %s", j->a->rel_path, lag_of(j->a),
                 url);
        if (try_next_source(j)) return;
        end_download(j);
        return;
    }
    if (commit_and_announce(j, sum, "downloaded") == WM_OK) {
        add(&p->metrics.downloads, 1);
        add(&p->metrics.download_bytes, (uint64_t)j->bytes);
    }
    end_download(j);
}

static void start_waiting(struct peer *p)
{
    while (p->wait_head && p->active < p->cfg->max_downloads) {
        struct job *j = p->wait_head;
        p->wait_head = j->next_waiting;
        if (!p->wait_head) p->wait_tail = NULL;
        p->active++;
        if (!try_next_source(j)) {
            add(&p->metrics.download_errors, 1);
            end_download(j);
        }
    }
}

static void enqueue_download(struct peer *p, struct job *j)
{
    if (p->wait_tail) p->wait_tail->next_waiting = j;
    else p->wait_head = j;
    p->wait_tail = j;
    start_waiting(p);
}

/* ---- admission ---- */

static void reject(struct peer *p, struct announce **a, enum wm_reject r, const char *why)
{
    count_reject(p, r);
    log_warn("rejected %s %s lag=%.3fs", why, (*a)->rel_path, lag_of(*a));
    announce_free(a);
}

/* True when the tree already holds this version: the rule that ends loops in the mesh. */
static bool already_held(struct peer *p, const char *key, const struct announce *a)
{
    struct wm_checksum stored;
    enum wm_err e = tree_lookup(p->tree, key, &stored, NULL);
    if (e != WM_OK && e != WM_ERR_NOSUM) return false;
    /* Without a digest to compare, holding the relPath is all we can know. */
    if (!integrity_is_digest(a->sum.method) && a->sum.method != WM_SUM_MD5NAME) return true;
    if (e == WM_OK && integrity_equal(&stored, &a->sum)) return true;
    if (e == WM_OK && stored.method == a->sum.method) return false; /* another version */
    /* Cached under another method, or not at all: hash the file once with the announced one. */
    if (tree_checksum(p->tree, key, a->sum.method, &stored) != WM_OK) return false;
    return integrity_equal(&stored, &a->sum);
}

static bool admissible(struct peer *p, struct announce **a, const char *url)
{
    double lag = lag_of(*a);
    if (p->cfg->lag_drop_s > 0 && lag > p->cfg->lag_drop_s) {
        reject(p, a, WM_REJECT_LAG, "too late");
        return false;
    }
    if (p->cfg->lag_warn_s > 0 && lag > p->cfg->lag_warn_s)
        log_warn("late announcement %s lag=%.3fs: this peer may be falling behind",
                 (*a)->rel_path, lag);
    if (!(*a)->content && !url_is_http(url)) {
        reject(p, a, WM_REJECT_URL, "not an http(s) URL");
        return false;
    }
    const char *rule = NULL;
    if (!filter_accepts(p->cfg->filter, url, &rule)) {
        char why[300];
        snprintf(why, sizeof why, "by --reject %s", rule ? rule : "");
        reject(p, a, WM_REJECT_FILTER, why);
        return false;
    }
    return true;
}

/* Decides what to do with one decoded announcement; consumes a. */
static void admit(struct peer *p, struct announce *a)
{
    char key[PATH_MAX];
    if (tree_clean_relpath(a->rel_path, key, sizeof key) != WM_OK) {
        reject(p, &a, WM_REJECT_UNSAFE_PATH, "unsafe relPath");
        return;
    }
    char *url = url_join(a->base_url, a->retrieve_path ? a->retrieve_path : a->rel_path);
    if (!url) {
        log_error("dropping %s: out of memory", a->rel_path);
        announce_free(&a);
        return;
    }
    if (!admissible(p, &a, url)) goto done;
    struct job *j = strmap_get(p->inflight, key);
    if (j && integrity_equal(&j->a->sum, &a->sum)) {
        job_add_source(j, url);
        add(&p->metrics.duplicates, 1);
        log_info("duplicate %s lag=%.3fs (in flight)", a->rel_path, lag_of(a));
        announce_free(&a);
        goto done;
    }
    if (j) {
        job_defer(j, a); /* another version: decide once the current one is settled */
        goto done;
    }
    if (already_held(p, key, a)) {
        add(&p->metrics.duplicates, 1);
        log_info("duplicate %s lag=%.3fs", a->rel_path, lag_of(a));
        announce_free(&a);
        goto done;
    }
    j = job_new(p, key, a, url);
    if (!j || strmap_put(p->inflight, key, j) != WM_OK) {
        log_error("dropping %s: out of memory", a->rel_path);
        if (j) j->a = NULL;
        free(j ? j->key : NULL);
        free(j);
        announce_free(&a);
        goto done;
    }
    atomic_fetch_add(&p->metrics.queue_depth, 1);
    if (a->content) store_inline(j);
    else enqueue_download(p, j);
done:
    free(url);
}

static void on_message(void *arg, struct mqtt_link *link, const struct mqtt_msg *msg)
{
    struct upstream *u = arg;
    struct peer *p = u->peer;
    (void)link;
    add(&p->metrics.brokers[u->metric].received, 1);
    atomic_store(&p->metrics.last_message_ns, loop_wall_ns());
    if (msg->len > p->cfg->max_message) {
        count_reject(p, WM_REJECT_TOO_BIG);
        log_warn("rejected too big: %zu-byte message on %s (limit %zu)", msg->len, msg->topic,
                 p->cfg->max_message);
        return;
    }
    struct announce *a = NULL;
    char why[200];
    if (codec_decode(msg->payload, msg->len, &a, why, sizeof why) != WM_OK) {
        count_reject(p, WM_REJECT_MALFORMED);
        log_warn("rejected malformed: %s (topic %s)", why, msg->topic);
        return;
    }
    admit(p, a);
}

static void on_link_state(void *arg, struct mqtt_link *link, bool session_present)
{
    struct upstream *u = arg;
    (void)session_present;
    atomic_store(&u->peer->metrics.brokers[u->metric].connected, mqtt_connected(link) ? 1 : 0);
}

static void on_link_down(void *arg, struct mqtt_link *link)
{
    on_link_state(arg, link, false);
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
    uint32_t h = 2166136261u;
    for (const char *c = dir; *c; c++) h = (h ^ (unsigned char)*c) * 16777619u;
    /* Stable across restarts so the broker keeps our session and queues what we miss. */
    snprintf(out, outlen, "wmesh-%.40s-%08x", host, h);
}

static enum wm_err start_upstreams(struct peer *p, const char *client_id)
{
    size_t nsubs = p->cfg->nsubtopics;
    char **subs = calloc(nsubs, sizeof *subs);
    enum wm_err e = WM_ERR_NOMEM;
    if (!subs) return e;
    for (size_t i = 0; i < nsubs; i++) {
        char topic[1024];
        snprintf(topic, sizeof topic, "%s/%s%s%s", p->cfg->exchange, p->cfg->topic_prefix,
                 p->cfg->topic_prefix[0] ? "/" : "", p->cfg->subtopics[i]);
        if (!(subs[i] = strdup(topic))) goto done;
    }
    p->up = calloc(p->cfg->nbrokers, sizeof *p->up);
    if (!p->up) goto done;
    struct mqtt_callbacks cb = {.on_message = on_message,
                                .on_connect = on_link_state,
                                .on_disconnect = on_link_down};
    for (size_t i = 0; i < p->cfg->nbrokers; i++) {
        struct upstream *u = &p->up[i];
        struct mqtt_options o = {.url = p->cfg->brokers[i],
                                 .client_id = client_id,
                                 .clean_session = false,
                                 .subscriptions = (const char *const *)subs,
                                 .nsubscriptions = nsubs};
        u->peer = p;
        u->link = mqtt_link_new(p->loop, &o, &cb, u, &e);
        if (!u->link) {
            char red[256];
            url_redact(p->cfg->brokers[i], red, sizeof red);
            log_error("broker %s: %s", red, wm_strerror(e));
            goto done;
        }
        u->metric = metrics_add_broker(&p->metrics, mqtt_label(u->link));
        if (u->metric < 0) {
            e = WM_ERR_TOOBIG;
            goto done;
        }
        p->nup++;
    }
    e = WM_OK;
done:
    for (size_t i = 0; i < nsubs; i++) free(subs[i]);
    free(subs);
    return e;
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
    return httpd_add_page(p->httpd, "/metrics", metrics_page, p);
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
    enum wm_err e;
    p->loop = loop_new();
    p->inflight = strmap_new();
    if (!p->loop || !p->inflight) return WM_ERR_NOMEM;
    p->tree = tree_open(c->dir);
    if (!p->tree) {
        log_error("cannot open tree %s: %s", c->dir, strerror(errno));
        return WM_ERR_IO;
    }
    struct fetch_options fo = {.max_per_host = c->max_downloads, .max_total = c->max_downloads};
    p->fetcher = fetch_new(p->loop, &fo);
    if (!p->fetcher) return WM_ERR_LIB;
    derive_client_id(c, tree_path(p->tree), client_id, idlen);
    if ((e = loop_on_signal(p->loop, SIGINT, on_stop_signal, p)) ||
        (e = loop_on_signal(p->loop, SIGTERM, on_stop_signal, p)))
        return e;
    if ((e = start_http(p))) return e;
    if (c->post_broker) {
        char post_id[300];
        snprintf(post_id, sizeof post_id, "%s-post", client_id);
        struct mqtt_options o = {.url = c->post_broker, .client_id = post_id, .clean_session = true};
        struct mqtt_callbacks cb = {0};
        p->post = mqtt_link_new(p->loop, &o, &cb, p, &e);
        if (!p->post) {
            log_error("post broker: %s", wm_strerror(e));
            return e;
        }
    }
    return start_upstreams(p, client_id);
}

static void drop_waiting(struct peer *p)
{
    while (p->wait_head) {
        struct job *j = p->wait_head;
        p->wait_head = j->next_waiting;
        /* Freed, not admitted: we are stopping. */
        for (size_t i = 0; i < j->ndeferred; i++) announce_free(&j->deferred[i]);
        free(j->deferred);
        j->deferred = NULL;
        j->ndeferred = 0;
        finish_job(j);
    }
    p->wait_tail = NULL;
}

static void stop(struct peer *p)
{
    drop_waiting(p);
    httpd_stop(&p->httpd);
    for (size_t i = 0; i < p->nup; i++) mqtt_link_free(&p->up[i].link);
    free(p->up);
    mqtt_link_free(&p->post);
    /* Downloads still running are abandoned; their temporary files go with the tree's next
     * open. */
    fetch_free(&p->fetcher);
    strmap_free(&p->inflight);
    tree_close(&p->tree);
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
        log_info("peer up: tree %s, %zu upstream broker(s), client id %s", tree_path(p.tree),
                 p.nup, client_id);
        e = loop_run(p.loop);
    }
    stop(&p);
    return e == WM_OK ? 0 : 1;
}
