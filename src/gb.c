/* gb.c: the Global Broker's decision on one message (gb.h): centre-id, topic, format and
 * anti-loop checks in the order of the WIS2 Guide, and the wmo_wis2_gb_* series they move.
 * Per message it allocates only what the JSON parser does. */
#include "gb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hash.h"
#include "json.h"
#include "seen.h"
#include "series.h"
#include "strmap.h"
#include "wis2_topic.h"
#include "wnm_check.h"

#define CENTRE_ID_MAX 64 /* bytes of a centre-id kept as a label; WIS2 ones are shorter */
#define CENTRES_DEFAULT 4096

enum family {
    F_RECEIVED = 0,
    F_PUBLISHED,
    F_INVALID_TOPIC,
    F_INVALID_FORMAT,
    F_NO_METADATA,
    F_CONNECTED,
    F_LAST_MESSAGE,
    F_COUNT
};

#define LABELS                                                                                     \
    {                                                                                              \
        "centre_id", "report_by", NULL                                                             \
    }
static const struct series_family families[F_COUNT] = {
    {"wmo_wis2_gb_messages_received_total", "Messages received from the links.", true, LABELS},
    {"wmo_wis2_gb_messages_published_total", "Messages republished on the local broker.", true,
     LABELS},
    {"wmo_wis2_gb_messages_invalid_topic_total",
     "Messages dropped: topic not in the WIS2 topic hierarchy.", true, LABELS},
    {"wmo_wis2_gb_messages_invalid_format_total",
     "Messages dropped: not a valid WIS2 notification message.", true, LABELS},
    {"wmo_wis2_gb_messages_no_metadata_total",
     "Messages dropped: no discovery metadata (the check is off).", true, LABELS},
    {"wmo_wis2_gb_connected_flag", "1 while the link to the centre is up.", false, LABELS},
    {"wmo_wis2_gb_last_message_timestamp_seconds",
     "Unix time of the last message received from the centre.", false, LABELS},
};

struct gb_centre {
    char id[CENTRE_ID_MAX];
    struct series *s[F_COUNT];
};

struct gb_core {
    char report_by[SERIES_VALUE_MAX];
    const struct wis2_topics *topics;
    bool leaf_only;
    struct seen *ids;
    uint64_t seed; /* of the id hash: ids come from the network */
    struct series_table *series;
    struct strmap *centres; /* id -> struct gb_centre */
    size_t ncentres, max_centres;
    struct gb_counts counts;
};

struct gb_core *gb_core_new(const struct gb_core_config *c)
{
    if (!c || !c->topics || c->dedup_window_s < 1 || c->dedup_window_s > SEEN_TTL_MAX ||
        c->dedup_capacity < 1 || c->dedup_capacity > SEEN_CAPACITY_MAX) {
        errno = EINVAL;
        return NULL;
    }
    struct gb_core *core = calloc(1, sizeof *core);
    if (!core) return NULL;
    snprintf(core->report_by, sizeof core->report_by, "%s", c->report_by ? c->report_by : "");
    core->topics = c->topics;
    core->leaf_only = c->leaf_only;
    core->max_centres = c->max_centres ? c->max_centres : CENTRES_DEFAULT;
    if (getrandom(&core->seed, sizeof core->seed, GRND_NONBLOCK) != (ssize_t)sizeof core->seed)
        core->seed = (uint64_t)random() << 32 ^ (uint64_t)random();
    if (!(core->ids = seen_new(c->dedup_capacity, c->dedup_window_s)) ||
        !(core->series = series_table_new(core->max_centres * F_COUNT)) ||
        !(core->centres = strmap_new())) {
        gb_core_free(&core);
        errno = ENOMEM;
        return NULL;
    }
    return core;
}

static void free_centre(void *value)
{
    free(value);
}

void gb_core_free(struct gb_core **core)
{
    if (!core || !*core) return;
    struct gb_core *c = *core;
    if (c->centres) {
        void *v;
        while ((v = strmap_any(c->centres))) {
            strmap_remove(c->centres, ((struct gb_centre *)v)->id);
            free_centre(v);
        }
        strmap_free(&c->centres);
    }
    seen_free(&c->ids);
    series_table_free(&c->series);
    free(c);
    *core = NULL;
}

struct gb_centre *gb_core_centre(struct gb_core *core, const char *id, size_t len)
{
    char key[CENTRE_ID_MAX];
    if (!core || !id || len == 0 || len >= sizeof key) return NULL;
    memcpy(key, id, len);
    key[len] = '\0';
    struct gb_centre *c = strmap_get(core->centres, key);
    if (c || core->ncentres >= core->max_centres) return c;
    if (!(c = calloc(1, sizeof *c))) return NULL;
    memcpy(c->id, key, len + 1);
    const char *values[] = {c->id, core->report_by};
    for (int f = 0; f < F_COUNT; f++)
        c->s[f] = series_get(core->series, &families[f], values);
    if (strmap_put(core->centres, c->id, c) != WM_OK) {
        free(c);
        return NULL;
    }
    core->ncentres++;
    return c;
}

/* A 64-bit hash of an id, case folded (a UUID's hex digits are one value in either case),
 * seeded: FNV-1a, then MurmurHash3's finaliser. */
static uint64_t id_key(const struct gb_core *core, const char *id, size_t len)
{
    uint64_t h = HASH_FNV1A_INIT ^ core->seed;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (ch >= 'A' && ch <= 'Z') ch = (unsigned char)(ch - 'A' + 'a');
        h = hash_fnv1a_byte(h, ch);
    }
    return hash_mix64(h);
}

static bool authorised(const struct gb_source *src, const char *centre, size_t len)
{
    if (!src || src->ncentres == 0) return true;
    for (size_t i = 0; i < src->ncentres; i++) {
        const struct gb_centre *c = src->centres[i];
        if (c && strlen(c->id) == len && memcmp(c->id, centre, len) == 0) return true;
    }
    return false;
}

static void count(struct gb_centre *c, enum family f)
{
    if (c) series_add(c->s[f], 1);
}

enum gb_verdict gb_core_admit(struct gb_core *core, const struct gb_source *src, const char *topic,
                              size_t tlen, const void *payload, size_t len, uint64_t now_s,
                              struct gb_centre **centre, char *why, size_t whylen)
{
    char scratch[1];
    if (!why || whylen == 0) why = scratch, whylen = sizeof scratch;
    why[0] = '\0';
    size_t clen = 0;
    const char *cid = wis2_topic_level(topic, tlen, 4, &clen);
    *centre = NULL;
    /* A node's link subscribes to its own centre-ids only, so this only catches a broker that
     * delivers beyond the subscription; the WMO test wants no metric moved. */
    if (!authorised(src, cid ? cid : "", cid ? clen : 0)) {
        core->counts.unauthorised++;
        snprintf(why, whylen, "centre-id %.*s not this link's", (int)(clen > 64 ? 64 : clen),
                 cid ? cid : "");
        return GB_UNAUTHORISED;
    }
    struct gb_centre *c = cid ? gb_core_centre(core, cid, clen) : NULL;
    *centre = c;
    core->counts.received++;
    count(c, F_RECEIVED);
    if (c) series_set(c->s[F_LAST_MESSAGE], (double)now_s);

    struct wm_json *msg = NULL;
    char id[WNM_ID_LEN + 1];
    enum gb_verdict v = GB_INVALID_FORMAT;
    enum wis2_topic_verdict tv;
    if (len > WNM_MESSAGE_MAX) {
        snprintf(why, whylen, "%zu bytes, over %d", len, WNM_MESSAGE_MAX);
        goto invalid_format;
    }
    if (wm_json_parse(payload, len, &msg, why, whylen) != WM_OK) goto invalid_format;
    if ((tv = wis2_topic_check(core->topics, topic, tlen, core->leaf_only)) != WIS2_TOPIC_OK) {
        snprintf(why, whylen, "topic: %s", wis2_topic_verdict_name(tv));
        core->counts.invalid_topic++;
        count(c, F_INVALID_TOPIC);
        v = GB_INVALID_TOPIC;
        goto done;
    }
    if (wnm_check(msg, len, id, why, whylen) != WM_OK) goto invalid_format;
    uint64_t key = id_key(core, id, WNM_ID_LEN);
    if (seen_contains(core->ids, key, now_s)) {
        snprintf(why, whylen, "id %s already published", id);
        core->counts.duplicates++;
        v = GB_DUPLICATE;
        goto done;
    }
    /* seen_add fails only on arguments seen_contains took. */
    (void)seen_add(core->ids, key, now_s);
    v = GB_PUBLISH;
    goto done;
invalid_format:
    core->counts.invalid_format++;
    count(c, F_INVALID_FORMAT);
done:
    wm_json_free(&msg);
    return v;
}

void gb_core_published(struct gb_core *core, struct gb_centre *c)
{
    core->counts.published++;
    count(c, F_PUBLISHED);
}

void gb_core_connected(struct gb_core *core, struct gb_centre *c, bool up)
{
    (void)core;
    if (c) series_set(c->s[F_CONNECTED], up ? 1 : 0);
}

void gb_core_counts(const struct gb_core *core, struct gb_counts *out)
{
    *out = core->counts;
}

struct series_table *gb_core_series(struct gb_core *core)
{
    return core->series;
}

double gb_core_metric(struct gb_core *core, const char *name, const char *centre_id)
{
    struct gb_centre *c = strmap_get(core->centres, centre_id);
    if (!c) return -1;
    for (int f = 0; f < F_COUNT; f++)
        if (strcmp(families[f].name + strlen("wmo_wis2_gb_"), name) == 0)
            return c->s[f] ? series_value(c->s[f]) : -1;
    return -1;
}

size_t gb_core_dedup_count(const struct gb_core *core)
{
    return seen_count(core->ids);
}

uint64_t gb_core_dedup_evictions(const struct gb_core *core)
{
    return seen_evictions(core->ids);
}
