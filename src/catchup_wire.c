/* catchup_wire.c: the catch-up subscriber's readers of untrusted input (marks in announcements,
 * statuses, URLs) and its window of received seqs. Pure. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "catchup_wire.h"
#include "json.h"
#include "url.h"

/* ---- identities ---- */

bool catchup_id_ok(const char *s, size_t len)
{
    if (!s || len == 0 || len > CATCHUP_ID_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool catchup_epoch_ok(const char *s, size_t len)
{
    if (!s || len == 0 || len > CATCHUP_EPOCH_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || c == '"' || c == '\\') return false;
    }
    return true;
}

/* ---- the mark ---- */

bool catchup_seq_parse(const char *s, size_t len, uint64_t *out)
{
    if (!s || !out || len == 0 || len > 16 || (s[0] == '0' && len > 1)) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v >= CATCHUP_SEQ_LIMIT) return false;
    *out = v;
    return true;
}

/* Copies a peer and an epoch into out, once both pass their checks. */
static bool set_names(struct catchup_mark *out, const char *peer, size_t plen, const char *epoch,
                      size_t elen)
{
    if (!catchup_id_ok(peer, plen) || !catchup_epoch_ok(epoch, elen)) return false;
    memcpy(out->peer, peer, plen);
    out->peer[plen] = '\0';
    memcpy(out->epoch, epoch, elen);
    out->epoch[elen] = '\0';
    return true;
}

bool catchup_mark_parse(const char *text, size_t len, struct catchup_mark *out)
{
    if (!text || !out) return false;
    const char *sp1 = memchr(text, ' ', len);
    if (!sp1) return false;
    const char *epoch = sp1 + 1;
    const char *sp2 = memchr(epoch, ' ', len - (size_t)(epoch - text));
    if (!sp2) return false;
    const char *num = sp2 + 1;
    /* A third space, or an empty field, falls to the checks: neither a peer, an epoch nor a seq
     * holds a space, and none is empty. */
    return catchup_seq_parse(num, len - (size_t)(num - text), &out->seq) && out->seq > 0 &&
           set_names(out, text, (size_t)(sp1 - text), epoch, (size_t)(sp2 - epoch));
}

bool catchup_mark_read(const struct announce *a, struct catchup_mark *out)
{
    if (!a || !out || !a->extra) return false;
    const struct wm_json *m;
    if (a->format == WM_FORMAT_WNM)
        m = wm_json_object_get(wm_json_object_get(a->extra, "properties"), "catchup");
    else
        m = wm_json_object_get(a->extra, "catchup");
    if (a->format == WM_FORMAT_ARRAY) {
        size_t len;
        const char *text = wm_json_string(m, &len);
        return text && catchup_mark_parse(text, len, out);
    }
    size_t plen, elen;
    const char *peer = wm_json_string(wm_json_object_get(m, "peer"), &plen);
    const char *epoch = wm_json_string(wm_json_object_get(m, "epoch"), &elen);
    int64_t seq;
    if (!peer || !epoch || !wm_json_integer(wm_json_object_get(m, "seq"), &seq) || seq <= 0 ||
        (uint64_t)seq >= CATCHUP_SEQ_LIMIT)
        return false;
    out->seq = (uint64_t)seq;
    return set_names(out, peer, plen, epoch, elen);
}

/* Valid names, NUL-terminated: a name filling its array is longer than the checks allow. */
static bool mark_ok(const struct catchup_mark *m)
{
    return m && catchup_id_ok(m->peer, strnlen(m->peer, sizeof m->peer)) &&
           catchup_epoch_ok(m->epoch, strnlen(m->epoch, sizeof m->epoch)) && m->seq > 0 &&
           m->seq < CATCHUP_SEQ_LIMIT;
}

struct wm_json *catchup_mark_json(const struct catchup_mark *m, enum wm_format fmt)
{
    if (!mark_ok(m)) {
        errno = EINVAL;
        return NULL;
    }
    if (fmt == WM_FORMAT_ARRAY) {
        char text[CATCHUP_MARK_TEXT_MAX + 1];
        int n = snprintf(text, sizeof text, "%s %s %" PRIu64, m->peer, m->epoch, m->seq);
        return wm_json_string_new(text, (size_t)n);
    }
    struct wm_json *o = wm_json_object_new();
    /* Each setter takes its value, also when it fails: nothing to free but o. */
    if (!o ||
        wm_json_object_set(o, "peer", wm_json_string_new(m->peer, strlen(m->peer))) != WM_OK ||
        wm_json_object_set(o, "epoch", wm_json_string_new(m->epoch, strlen(m->epoch))) != WM_OK ||
        wm_json_object_set(o, "seq", wm_json_integer_new((int64_t)m->seq)) != WM_OK) {
        wm_json_free(&o);
        errno = ENOMEM;
    }
    return o;
}

/* ---- URLs ---- */

bool catchup_url_host(const char *url, char *out, size_t outlen)
{
    if (!out || outlen == 0) return false;
    out[0] = '\0';
    if (!url) return false;
    const char *auth = strstr(url, "://");
    if (!auth) return false;
    auth += 3;
    size_t alen = strcspn(auth, "/");
    for (size_t i = 0; i < alen; i++) {
        unsigned char c = (unsigned char)auth[i];
        if (c <= ' ' || c == 0x7f || c == '?' || c == '#' || c == '\\') return false;
    }
    /* The fetcher's own parser, so that the host checked is the host it connects to. */
    struct wm_url u;
    if (url_parse(url, &u) != WM_OK) return false;
    bool v6 = strchr(u.host, ':') != NULL;
    int n = snprintf(out, outlen, "%s%s%s", v6 ? "[" : "", u.host, v6 ? "]" : "");
    bool ok = n > 0 && (size_t)n < outlen;
    for (char *c = out; ok && *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
    url_clear(&u);
    if (!ok) out[0] = '\0';
    return ok;
}

/* ---- statuses ---- */

bool catchup_status_topic(const char *topic)
{
    const char *slash = topic ? strchr(topic, '/') : NULL;
    return slash && strncmp(slash + 1, "_catchup/", 9) == 0 && !strchr(slash + 10, '/');
}

/* An optional integer member in 0 .. 2^53-1; *v 0 when absent. */
static bool get_count(const struct wm_json *o, const char *key, uint64_t *v)
{
    const struct wm_json *j = wm_json_object_get(o, key);
    int64_t n = 0;
    *v = 0;
    if (!j) return true;
    if (!wm_json_integer(j, &n) || n < 0 || (uint64_t)n >= CATCHUP_SEQ_LIMIT) return false;
    *v = (uint64_t)n;
    return true;
}

static bool url_ok(const char *url, size_t len)
{
    char host[CATCHUP_HOST_MAX];
    if (len > CATCHUP_URL_MAX || !url_is_http(url)) return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= ' ' || (unsigned char)url[i] == 0x7f) return false;
    return catchup_url_host(url, host, sizeof host);
}

/* Fills out from the parsed status st; false when it is not one. */
static bool take_fields(const struct wm_json *st, const char *peer, struct catchup_status *out)
{
    int64_t version = 0;
    size_t nlen, elen, ulen, slen = 0;
    const char *named = wm_json_string(wm_json_object_get(st, "peer"), &nlen);
    const char *epoch = wm_json_string(wm_json_object_get(st, "epoch"), &elen);
    const char *url = wm_json_string(wm_json_object_get(st, "url"), &ulen);
    const struct wm_json *state = wm_json_object_get(st, "state");
    const char *stext = wm_json_string(state, &slen);
    size_t plen = strlen(peer);
    if (!wm_json_integer(wm_json_object_get(st, "wmesh_catchup"), &version) || version != 1 ||
        !named || nlen != plen || memcmp(named, peer, plen) != 0 || !catchup_id_ok(peer, plen) ||
        !epoch || !catchup_epoch_ok(epoch, elen) || !url || !url_ok(url, ulen) ||
        (state && !stext) || !get_count(st, "seq", &out->seq) ||
        !get_count(st, "first", &out->first))
        return false;
    memcpy(out->peer, peer, plen + 1);
    memcpy(out->epoch, epoch, elen);
    out->epoch[elen] = '\0';
    memcpy(out->url, url, ulen);
    out->url[ulen] = '\0';
    out->down = stext && slen == 4 && memcmp(stext, "down", 4) == 0;
    return true;
}

enum wm_err catchup_status_read(const void *payload, size_t len, const char *topic,
                                struct catchup_status *out)
{
    if (!payload || !topic || !out || !catchup_status_topic(topic)) return WM_ERR_INVAL;
    if (len > CATCHUP_STATUS_MAX) return WM_ERR_TOOBIG;
    struct wm_json *st = NULL;
    enum wm_err err = wm_json_parse(payload, len, &st, NULL, 0);
    if (err == WM_ERR_NOMEM) return err;
    if (err != WM_OK) return WM_ERR_FORMAT;
    err = wm_json_is_object(st) && take_fields(st, strrchr(topic, '/') + 1, out) ? WM_OK
                                                                                 : WM_ERR_FORMAT;
    wm_json_free(&st);
    return err;
}

/* ---- the seqs ---- */

static bool came(const struct catchup_seqs *s, uint64_t seq)
{
    return (s->bits[(seq % CATCHUP_WINDOW) / 64] >> (seq % 64)) & 1;
}

static void set_came(struct catchup_seqs *s, uint64_t seq, bool on)
{
    uint64_t bit = UINT64_C(1) << (seq % 64);
    if (on)
        s->bits[(seq % CATCHUP_WINDOW) / 64] |= bit;
    else
        s->bits[(seq % CATCHUP_WINDOW) / 64] &= ~bit;
}

/* Moves done over the seqs that came in a row; true when it moved. */
static bool advance(struct catchup_seqs *s)
{
    uint64_t was = s->done;
    while (s->done < s->max_seen && came(s, s->done + 1)) {
        set_came(s, s->done + 1, false);
        s->done++;
    }
    return s->done != was;
}

void catchup_seqs_reset(struct catchup_seqs *s, uint64_t done)
{
    memset(s->bits, 0, sizeof s->bits);
    s->done = s->max_seen = done;
}

bool catchup_seqs_note(struct catchup_seqs *s, uint64_t seq)
{
    if (seq <= s->done) return false;
    if (seq > s->max_seen) s->max_seen = seq;
    if (seq - s->done <= CATCHUP_WINDOW) set_came(s, seq, true);
    return advance(s);
}

bool catchup_seqs_expect(struct catchup_seqs *s, uint64_t seq)
{
    if (seq <= s->max_seen) return false;
    s->max_seen = seq;
    return true;
}

bool catchup_seqs_cover(struct catchup_seqs *s, uint64_t seq)
{
    bool moved = false;
    if (seq > s->done) {
        /* What came below seq is forgotten: its bits would stand for seqs a window on. */
        if (seq - s->done >= CATCHUP_WINDOW)
            memset(s->bits, 0, sizeof s->bits);
        else
            for (uint64_t q = s->done + 1; q <= seq; q++)
                set_came(s, q, false);
        s->done = seq;
        moved = true;
    }
    if (s->max_seen < s->done) s->max_seen = s->done;
    return advance(s) || moved;
}

bool catchup_seqs_missing(const struct catchup_seqs *s)
{
    return s->max_seen > s->done;
}
