/* peer_gc.c: what a WIS2 Global Cache (--centre-id) adds to the peer for WIS2 messages: their
 * version keys (data_id + pubtime), the topics it ignores, and the wmo_wis2_gc_* metrics. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "log.h"
#include "peer_internal.h"
#include "series.h"
#include "tree.h"
#include "url.h"

#define GC_SERIES_MAX 8192 /* centres x dataservers x families: bounded, labels come from input */

/* Both the WIS2 metric hierarchy's current names and those the Global Cache test suite reads
 * (docs/OPERATIONS.md, "A WIS2 Global Cache"). */
static const struct series_family downloaded = {"wmo_wis2_gc_downloaded_total",
                                                "Data items cached (downloaded or taken inline)",
                                                true,
                                                {"centre_id", "report_by", NULL}};
static const struct series_family errors = {"wmo_wis2_gc_downloaded_errors_total",
                                            "Notifications whose data could not be downloaded",
                                            true,
                                            {"centre_id", "report_by", NULL}};
static const struct series_family integrity_failed = {
    "wmo_wis2_gc_integrity_failed_total",
    "Notifications whose data did not match properties.integrity",
    true,
    {"centre_id", "report_by", NULL}};
static const struct series_family last_download = {"wmo_wis2_gc_last_download_timestamp_seconds",
                                                   "When data from the centre was last cached",
                                                   false,
                                                   {"centre_id", "report_by", NULL}};
static const struct series_family no_cache = {"wmo_wis2_gc_no_cache_total",
                                              "Notifications with properties.cache false passed on",
                                              true,
                                              {"centre_id", "report_by", NULL}};
static const struct series_family cache_override = {
    "wmo_wis2_gc_cache_override_total",
    "Notifications passed on uncached because the cache would not keep the data (--max-size)",
    true,
    {"centre_id", "report_by", NULL}};
static const struct series_family last_metadata = {
    "wmo_wis2_gc_last_metadata_timestamp_seconds",
    "When a metadata resource from the centre was last cached",
    false,
    {"centre_id", "report_by", NULL}};
static const struct series_family ds_status = {
    "wmo_wis2_gc_dataserver_status_flag",
    "1 when the last download attempt from the data server succeeded, else 0",
    false,
    {"centre_id", "dataserver", "report_by"}};
static const struct series_family ds_last_download = {
    "wmo_wis2_gc_dataserver_last_download_timestamp_seconds",
    "When data was last downloaded from the data server",
    false,
    {"centre_id", "dataserver", "report_by"}};

enum wm_err peer_gc_start(struct peer *p)
{
    if (!p->cfg->centre_id) return WM_OK;
    if (!(p->series = series_table_new(GC_SERIES_MAX))) return WM_ERR_NOMEM;
    p->metrics.series = p->series;
    return WM_OK;
}

void peer_gc_stop(struct peer *p)
{
    p->metrics.series = NULL;
    series_table_free(&p->series);
}

bool peer_gc_wants(const struct peer *p, const struct announce *a)
{
    return p->cfg->centre_id && a->format == WM_FORMAT_WNM;
}

/* Level n (1-based) of topic into out; false when it has fewer levels. */
static bool topic_level(const char *topic, int n, char *out, size_t outlen)
{
    if (!topic) return false;
    for (int i = 1; i < n; i++) {
        topic = strchr(topic, '/');
        if (!topic) return false;
        topic++;
    }
    size_t len = strcspn(topic, "/");
    if (len == 0 || len >= outlen) return false;
    memcpy(out, topic, len);
    out[len] = '\0';
    return true;
}

bool peer_gc_ignored(const struct announce *a)
{
    char kind[16], policy[16];
    /* Recommended data is not the Global Caches' to cache (WIS2 Guide, GC-2). */
    return topic_level(a->topic, 5, kind, sizeof kind) && strcmp(kind, "data") == 0 &&
           topic_level(a->topic, 6, policy, sizeof policy) && strcmp(policy, "recommended") == 0;
}

bool peer_gc_metadata(const struct announce *a)
{
    char kind[16];
    return topic_level(a->topic, 5, kind, sizeof kind) && strcmp(kind, "metadata") == 0;
}

void peer_gc_centre(const struct announce *a, char *out, size_t outlen)
{
    char channel[16];
    const char *other = codec_wnm_global_cache(a);
    /* From another cache: the centre is that cache (WIS2 metric hierarchy, labels). */
    if (other && topic_level(a->topic, 1, channel, sizeof channel) &&
        strcmp(channel, "cache") == 0) {
        snprintf(out, outlen, "%s", other);
        return;
    }
    if (!topic_level(a->topic, 4, out, outlen)) snprintf(out, outlen, "unknown");
}

enum wm_err peer_gc_version_key(const struct announce *a, char *out, size_t outlen)
{
    char clean[PATH_MAX], when[48];
    enum wm_err e = tree_clean_relpath(a->rel_path, clean, sizeof clean);
    if (e == WM_OK)
        e = codec_pubtime_format(a->pubtime_ns, a->pubtime_digits, true, when, sizeof when);
    if (e != WM_OK) return e;
    int n = snprintf(out, outlen, "%s/%s", clean, when);
    return n > 0 && (size_t)n < outlen ? WM_OK : WM_ERR_TOOBIG;
}

bool peer_gc_newest(struct peer *p, const char *key, int64_t *newest_ns)
{
    const char *slash = strrchr(key, '/');
    if (!slash) return false;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - key), key);
    int fd = openat(tree_dirfd(p->tree), dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return false;
    }
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t ns;
        int digits;
        if (e->d_name[0] == '.' || (e->d_type != DT_REG && e->d_type != DT_UNKNOWN) ||
            codec_pubtime_parse(e->d_name, &ns, &digits) != WM_OK)
            continue;
        if (!found || ns > *newest_ns) *newest_ns = ns;
        found = true;
    }
    closedir(d);
    return found;
}

/* ---- metrics ---- */

static struct series *centre_series(struct job *j, const struct series_family *f)
{
    const char *values[] = {j->centre, j->peer->cfg->centre_id};
    return series_get(j->peer->series, f, values);
}

/* The data server of url: its host in lower case, without port. */
static void dataserver_of(const char *url, char *out, size_t outlen)
{
    struct wm_url u = {0};
    snprintf(out, outlen, "unknown");
    if (url_parse(url, &u) == WM_OK && u.host) {
        snprintf(out, outlen, "%s", u.host);
        for (char *c = out; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    url_clear(&u);
}

static struct series *dataserver_series(struct job *j, const struct series_family *f,
                                        const char *url)
{
    char ds[SERIES_VALUE_MAX];
    dataserver_of(url, ds, sizeof ds);
    const char *values[] = {j->centre, ds, j->peer->cfg->centre_id};
    return series_get(j->peer->series, f, values);
}

static double now_s(void)
{
    return (double)loop_wall_ns() / 1e9;
}

void peer_gc_cached(struct job *j, const char *url)
{
    double now = now_s();
    series_add(centre_series(j, &downloaded), 1);
    series_set(centre_series(j, &last_download), now);
    if (j->metadata) series_set(centre_series(j, &last_metadata), now);
    if (!url) return; /* taken from the message: no data server to speak of */
    series_set(dataserver_series(j, &ds_status, url), 1);
    series_set(dataserver_series(j, &ds_last_download, url), now);
}

void peer_gc_failed(struct job *j, const char *url, bool mismatch, bool count)
{
    if (url) series_set(dataserver_series(j, &ds_status, url), 0);
    if (!count) return;
    /* Once per notification, however many attempts and sources it takes. */
    if (mismatch && !j->gc_integrity_counted) {
        j->gc_integrity_counted = true;
        series_add(centre_series(j, &integrity_failed), 1);
    } else if (!mismatch && !j->gc_error_counted && !j->gc_integrity_counted) {
        j->gc_error_counted = true;
        series_add(centre_series(j, &errors), 1);
    }
}

void peer_gc_passed(struct job *j, bool override)
{
    series_add(centre_series(j, override ? &cache_override : &no_cache), 1);
}
