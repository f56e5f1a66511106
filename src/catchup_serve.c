/* catchup_serve.c: the catch-up endpoints on the peer's HTTP server: the status object and log
 * queries answered as ndjson with a trailer line (docs/CATCHUP.md, "HTTP endpoints"). */
#include "catchup_serve.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "json.h"
#include "log.h"
#include "mqtt_wire.h"
#include "url.h"

#define SEQ_LIMIT ((uint64_t)1 << 53)
#define EPOCH_PARAM_MAX 64
#define DEFAULT_INTERVAL_S 60
#define TRAILER_MAX 192

struct catchup_serve {
    struct catchup_log *log; /* not owned */
    struct catchup_serve_options o;
    char *peer_id, *url; /* owned copies behind o */
};

/* ---- the query string ---- */

__attribute__((format(printf, 4, 5))) static enum wm_err bad(char *why, size_t whylen,
                                                             enum wm_err err, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return err;
}

static bool parse_u53(const char *s, uint64_t *out)
{
    if (!*s || strlen(s) > 16) return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v >= SEQ_LIMIT) return false;
    *out = v;
    return true;
}

/* "YYYYMMDDTHHMMSS[.fraction][Z]", "YYYYMMDDHHMMSS[.fraction]" or RFC 3339. */
static bool parse_time(const char *s, int64_t *ns)
{
    int digits = 0;
    if (strchr(s, '-')) return codec_rfc3339_parse(s, ns, &digits, NULL) == WM_OK;
    return codec_pubtime_parse(s, ns, &digits) == WM_OK;
}

/* One decoded "name=value": fills q or says why not. */
static enum wm_err take_param(struct catchup_query *q, const char *name, const char *value,
                              bool has_value, char *why, size_t whylen)
{
    static const char *const known[] = {"epoch", "after", "until", "since", "topic", "limit"};
    bool is_known = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        is_known = is_known || strcmp(name, known[i]) == 0;
    if (!is_known) return WM_OK;
    if (!has_value) return bad(why, whylen, WM_ERR_INVAL, "%s without a value", name);
    if (strcmp(name, "epoch") == 0) {
        if (!*value || strlen(value) > EPOCH_PARAM_MAX)
            return bad(why, whylen, WM_ERR_INVAL, "bad %s", name);
        q->epoch = value;
        q->has_epoch = true;
    } else if (strcmp(name, "after") == 0 || strcmp(name, "until") == 0) {
        bool after = name[0] == 'a';
        if (!parse_u53(value, after ? &q->after : &q->until))
            return bad(why, whylen, WM_ERR_INVAL, "bad %s (want a seq)", name);
        *(after ? &q->has_after : &q->has_until) = true;
    } else if (strcmp(name, "since") == 0) {
        if (!parse_time(value, &q->since_ns))
            return bad(why, whylen, WM_ERR_INVAL, "bad %s (want YYYYMMDDTHHMMSS or RFC 3339)",
                       name);
        q->has_since = true;
    } else if (strcmp(name, "topic") == 0) {
        if (q->ntopics == CATCHUP_TOPICS_MAX)
            return bad(why, whylen, WM_ERR_TOOBIG, "more than 16 %s filters", name);
        if (!mqtt_topic_filter_valid(value, strlen(value)))
            return bad(why, whylen, WM_ERR_INVAL, "bad %s filter", name);
        q->topics[q->ntopics++] = value;
    } else {
        uint64_t limit = 0;
        if (!parse_u53(value, &limit) || limit == 0)
            return bad(why, whylen, WM_ERR_INVAL, "bad %s", name);
        q->limit = limit > CATCHUP_LIMIT_MAX ? CATCHUP_LIMIT_MAX : (size_t)limit;
    }
    return WM_OK;
}

enum wm_err catchup_query_parse(const char *q, size_t len, struct catchup_query *out, char *why,
                                size_t whylen)
{
    if (!out || (!q && len)) return WM_ERR_INVAL;
    memset(out, 0, offsetof(struct catchup_query, text));
    out->limit = CATCHUP_LIMIT_DEFAULT;
    if (len > CATCHUP_QUERY_MAX) return bad(why, whylen, WM_ERR_TOOBIG, "%s too long", "query");
    size_t used = 0; /* of out->text; each name and value take at most their raw length + 1 */
    for (size_t i = 0; i < len;) {
        const char *p = q + i, *amp = memchr(p, '&', len - i);
        size_t plen = amp ? (size_t)(amp - p) : len - i;
        i += plen + 1;
        if (plen == 0) continue;
        const char *eq = memchr(p, '=', plen);
        size_t nlen = eq ? (size_t)(eq - p) : plen, nout = 0, vout = 0;
        char *name = out->text + used;
        if (!url_decode(p, nlen, true, name, &nout))
            return bad(why, whylen, WM_ERR_INVAL, "bad percent-encoding in %s", "a name");
        used += nout + 1;
        char *value = out->text + used;
        if (!url_decode(eq ? eq + 1 : "", eq ? plen - nlen - 1 : 0, true, value, &vout))
            return bad(why, whylen, WM_ERR_INVAL, "bad percent-encoding in %s", name);
        used += vout + 1;
        enum wm_err err = take_param(out, name, value, eq != NULL, why, whylen);
        if (err != WM_OK) return err;
    }
    if (out->has_after && !out->has_epoch)
        return bad(why, whylen, WM_ERR_INVAL, "%s without epoch", "after");
    if (!out->has_after && !out->has_since)
        return bad(why, whylen, WM_ERR_INVAL, "%s: want after or since", "query");
    return WM_OK;
}

/* ---- the status object ---- */

static enum wm_err set_string(struct wm_json *obj, const char *key, const char *text)
{
    struct wm_json *v = wm_json_string_new(text, strlen(text));
    if (!v) return errno == ENOMEM ? WM_ERR_NOMEM : WM_ERR_INVAL;
    return wm_json_object_set(obj, key, v);
}

static enum wm_err set_integer(struct wm_json *obj, const char *key, int64_t n)
{
    struct wm_json *v = wm_json_integer_new(n);
    if (!v) return WM_ERR_NOMEM;
    return wm_json_object_set(obj, key, v);
}

enum wm_err catchup_status_json(struct catchup_log *l, const struct catchup_serve_options *o,
                                const char *state, int64_t now_ns, char **out, size_t *len)
{
    if (!l || !o || !o->peer_id || !o->url || !state || !out) return WM_ERR_INVAL;
    *out = NULL;
    bool up = strcmp(state, "down") != 0;
    uint64_t first = 0, last = 0;
    catchup_log_bounds(l, &first, &last);
    char when[32], stamp[40];
    enum wm_err err = codec_pubtime_format(now_ns, 0, true, when, sizeof when);
    if (err != WM_OK) return err;
    snprintf(stamp, sizeof stamp, "%sZ", when);
    struct wm_json *obj = wm_json_object_new();
    if (!obj) return WM_ERR_NOMEM;
    err = set_integer(obj, "wmesh_catchup", 1);
    if (err == WM_OK) err = set_string(obj, "peer", o->peer_id);
    if (err == WM_OK) err = set_string(obj, "epoch", catchup_log_epoch(l));
    if (err == WM_OK && up) err = set_integer(obj, "seq", (int64_t)last);
    if (err == WM_OK && up) err = set_integer(obj, "first", (int64_t)first);
    if (err == WM_OK) err = set_string(obj, "url", o->url);
    if (err == WM_OK)
        err = set_integer(obj, "interval", o->interval_s > 0 ? o->interval_s : DEFAULT_INTERVAL_S);
    if (err == WM_OK) err = set_string(obj, "time", stamp);
    if (err == WM_OK) err = set_string(obj, "state", state);
    if (err == WM_OK) err = wm_json_dump(obj, out, len);
    wm_json_free(&obj);
    return err;
}

/* ---- the handler ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void reply_text(struct httpd_reply *r, int status, const char *text)
{
    r->status = status;
    r->content_type = "text/plain";
    size_t n = strlen(text);
    r->body = malloc(n + 1);
    if (r->body) {
        memcpy(r->body, text, n + 1);
        r->body_len = n;
    }
}

/* The status object with the given HTTP status (200, 409, 410). */
static void reply_status(struct catchup_serve *s, struct httpd_reply *r, int status)
{
    size_t len = 0;
    if (catchup_status_json(s->log, &s->o, "up", now_ns(), &r->body, &len) != WM_OK) {
        reply_text(r, 503, "status unavailable\n");
        snprintf(r->extra, sizeof r->extra, "Retry-After: 1\r\n");
        return;
    }
    r->status = status;
    r->content_type = "application/json";
    r->body_len = len;
    snprintf(r->extra, sizeof r->extra, "Cache-Control: no-cache\r\n");
}

static bool match_topics(void *arg, const char *topic)
{
    const struct catchup_query *q = arg;
    for (size_t i = 0; i < q->ntopics; i++)
        if (mqtt_topic_matches(q->topics[i], topic)) return true;
    return false;
}

/* Appends the trailer line to b. */
static enum wm_err put_trailer(struct buf *b, const char *epoch,
                               const struct catchup_read_result *res)
{
    enum wm_err err = buf_reserve(b, TRAILER_MAX);
    if (err != WM_OK) return err;
    int n = snprintf((char *)b->data + b->len, TRAILER_MAX,
                     "{\"end\":true,\"epoch\":\"%s\",\"next\":%" PRIu64 ",\"last\":%" PRIu64
                     ",\"more\":%s}\n",
                     epoch, res->next, res->last, res->more ? "true" : "false");
    if (n < 0 || n >= TRAILER_MAX) return WM_ERR_TOOBIG;
    b->len += (size_t)n;
    return WM_OK;
}

static void reply_log(struct catchup_serve *s, const char *query, size_t query_len,
                      struct httpd_reply *r)
{
    struct catchup_query *q = malloc(sizeof *q);
    if (!q) {
        reply_text(r, 503, "out of memory\n");
        snprintf(r->extra, sizeof r->extra, "Retry-After: 1\r\n");
        return;
    }
    char why[128];
    const char *epoch = catchup_log_epoch(s->log);
    if (catchup_query_parse(query, query_len, q, why, sizeof why) != WM_OK) {
        char text[160];
        snprintf(text, sizeof text, "bad request: %s\n", why);
        reply_text(r, 400, text);
        goto out;
    }
    if (q->has_epoch && strcmp(q->epoch, epoch) != 0) {
        reply_status(s, r, 409);
        goto out;
    }
    struct catchup_read rq = {
        .after = q->after,
        .until = q->has_until ? q->until : 0,
        .check_gone = q->has_after,
        .use_since = q->has_since,
        .since_ns = q->since_ns,
        .match = q->ntopics ? match_topics : NULL,
        .match_arg = q,
        .limit = q->limit,
        .max_bytes = CATCHUP_BODY_MAX,
    };
    struct catchup_read_result res = {.next = q->after};
    struct buf body = {0};
    enum wm_err err = WM_OK;
    /* For the log, until 0 means "the last": a query up to 0 asks for nothing. */
    if (q->has_until && q->until == 0)
        catchup_log_bounds(s->log, &res.first, &res.last);
    else
        err = catchup_log_read(s->log, &rq, &body, &res);
    if (err == WM_OK) err = put_trailer(&body, epoch, &res);
    if (err == WM_ERR_NOTFOUND) {
        reply_status(s, r, 410);
    } else if (err != WM_OK) {
        reply_text(r, 503, "log unavailable\n");
        snprintf(r->extra, sizeof r->extra, "Retry-After: 1\r\n");
    } else {
        r->content_type = "application/x-ndjson; charset=utf-8";
        r->body = (char *)body.data;
        r->body_len = body.len;
        body.data = NULL;
        snprintf(r->extra, sizeof r->extra, "Cache-Control: public, max-age=5\r\n");
    }
    buf_free(&body);
out:
    free(q);
}

static void handle(void *arg, const char *rest, size_t rest_len, const char *query,
                   size_t query_len, struct httpd_reply *r)
{
    struct catchup_serve *s = arg;
    if (rest_len == 6 && memcmp(rest, "status", 6) == 0)
        reply_status(s, r, 200);
    else if (rest_len == 3 && memcmp(rest, "log", 3) == 0)
        reply_log(s, query, query_len, r);
    else
        reply_text(r, 404, "not found\n");
}

void catchup_serve_free(struct catchup_serve **sp)
{
    if (!sp || !*sp) return;
    free((*sp)->peer_id);
    free((*sp)->url);
    free(*sp);
    *sp = NULL;
}

enum wm_err catchup_serve_attach(struct httpd *h, const char *url_prefix, struct catchup_log *l,
                                 const struct catchup_serve_options *o, struct catchup_serve **out)
{
    if (!h || !l || !o || !o->peer_id || !o->url || !out) return WM_ERR_INVAL;
    *out = NULL;
    const char *p = url_prefix ? url_prefix : "";
    size_t plen = strlen(p);
    while (plen > 0 && p[plen - 1] == '/')
        plen--;
    char prefix[512];
    int n = snprintf(prefix, sizeof prefix, "%s%.*s/.wmesh/", plen && p[0] != '/' ? "/" : "",
                     (int)plen, p);
    if (n < 0 || (size_t)n >= sizeof prefix) return WM_ERR_TOOBIG;
    struct catchup_serve *s = calloc(1, sizeof *s);
    if (!s) return WM_ERR_NOMEM;
    s->log = l;
    s->o = *o;
    s->peer_id = strdup(o->peer_id);
    s->url = strdup(o->url);
    enum wm_err err = s->peer_id && s->url ? WM_OK : WM_ERR_NOMEM;
    s->o.peer_id = s->peer_id;
    s->o.url = s->url;
    if (err == WM_OK) err = httpd_add_handler(h, prefix, handle, s);
    if (err != WM_OK) {
        catchup_serve_free(&s);
        return err;
    }
    *out = s;
    return WM_OK;
}
