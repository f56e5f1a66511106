/* gb.h: the WIS2 Global Broker role (`wmesh gb`): notifications relayed verbatim from the
 * brokers of WIS2 Nodes and of other Global Services to one local broker, once each, after the
 * checks of the WIS2 Guide (centre-id, topic hierarchy, message format, anti-loop), with the
 * wmo_wis2_gb_* metrics. Nothing is downloaded.
 *
 * gb_core is the decision for one message, apart from any broker so that tests drive it
 * directly; gb_run is the daemon around it. */
#ifndef WMESH_GB_H
#define WMESH_GB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "mqtt.h"

struct gb_core;
struct gb_centre;
struct series_table;
struct wis2_topics;

struct gb_core_config {
    const char *report_by;            /* this Global Broker's centre-id (label report_by) */
    const struct wis2_topics *topics; /* borrowed: must outlive the core */
    bool leaf_only;                   /* refuse topics that are not leaves of the hierarchy */
    uint32_t dedup_window_s;          /* how long a message id is remembered (1..) */
    size_t dedup_capacity;            /* ids remembered at most (15 bytes each) */
    size_t max_centres;               /* centre-ids with metrics; 0: 4096 */
};

/* A new core, the caller's; NULL with errno set (EINVAL: the configuration is out of range,
 * ENOMEM). */
WM_WARN_UNUSED struct gb_core *gb_core_new(const struct gb_core_config *c);
void gb_core_free(struct gb_core **core);

/* The centre of centre-id id (made, with its series at 0, if need be): labels the metrics of a
 * link or of the messages of that centre. NULL when the table of centres is full or out of
 * memory (the metrics are then not kept). Valid until the core is freed. */
struct gb_centre *gb_core_centre(struct gb_core *core, const char *id, size_t len);

/* Where a message came from: a node's link carries the centre-ids it may publish under; a
 * link to another Global Service (ncentres 0) any. */
struct gb_source {
    struct gb_centre *const *centres;
    size_t ncentres;
};

enum gb_verdict {
    GB_PUBLISH = 0,    /* passed every check: republish it; received counted */
    GB_UNAUTHORISED,   /* a node's message under another centre-id: dropped, no metric */
    GB_INVALID_FORMAT, /* not JSON or not a valid notification: invalid_format */
    GB_INVALID_TOPIC,  /* not in the WIS2 topic hierarchy: invalid_topic */
    GB_DUPLICATE,      /* its id was published within the window: dropped, received only */
};

/* Decides on one message (topic tlen bytes, payload len bytes) at now_s (seconds, any
 * epoch the caller keeps to). In order: centre-id against the source (a node's); received
 * +1; JSON; topic; format; the id against those published within the window. GB_PUBLISH
 * records the id as published, so that the next copy is a duplicate: the caller republishes
 * and calls gb_core_published when the local broker acknowledged. *centre gets the message's
 * centre (topic level 4), NULL if it has none or the table is full. why (may be NULL) gets one
 * line when the message is dropped. */
enum gb_verdict gb_core_admit(struct gb_core *core, const struct gb_source *src, const char *topic,
                              size_t tlen, const void *payload, size_t len, uint64_t now_s,
                              struct gb_centre **centre, char *why, size_t whylen);
/* The local broker acknowledged the republished message of centre c: published +1. */
void gb_core_published(struct gb_core *core, struct gb_centre *c);
/* Sets connected_flag of c (1 up, 0 down). */
void gb_core_connected(struct gb_core *core, struct gb_centre *c, bool up);

/* Counts since gb_core_new, for tests and the wmesh_gb_* metrics. */
struct gb_counts {
    uint64_t received, published, invalid_topic, invalid_format, unauthorised, duplicates;
};
void gb_core_counts(const struct gb_core *core, struct gb_counts *out);
/* The series of the wmo_wis2_gb_* metrics (render with series_render from any thread). */
struct series_table *gb_core_series(struct gb_core *core);
/* The value of one wmo_wis2_gb_* series of centre id (e.g. "messages_received_total"), for
 * tests; -1 when it does not exist. */
double gb_core_metric(struct gb_core *core, const char *name, const char *centre_id);
/* Ids remembered now, and ids forgotten before their window ended because the set was full. */
size_t gb_core_dedup_count(const struct gb_core *core);
uint64_t gb_core_dedup_evictions(const struct gb_core *core);

/* A link of the daemon. */
struct gb_link_config {
    const char *url;            /* with its password if any */
    const char *const *centres; /* centre-ids: a node's own (subscribes to
                                 * origin/a/wis2/<centre-id>/# for each); a Global Service's
                                 * name, for connected_flag only */
    size_t ncentres;
    bool node; /* else another Global Broker or Cache: origin/a/wis2/# and cache/a/wis2/# */
};

struct gb_config {
    const struct gb_link_config *links;
    size_t nlinks;
    const char *post_broker; /* where messages are republished */
    const char *client_id;   /* of the post broker link; NULL: random, clean session */
    const char *http_listen; /* /metrics; NULL: none */
    const char *centre_id;   /* report_by */
    const char *topic_table; /* NULL: built in */
    bool leaf_only;
    uint32_t dedup_window_s;
    size_t dedup_capacity;
    size_t max_pending; /* republished and not acknowledged before the links stop reading */
    enum mqtt_protocol mqtt_version;
    const char *cafile, *certfile, *keyfile;
    const struct proxy_config *proxies;
};

/* Runs the Global Broker until SIGINT or SIGTERM. Returns the exit status: 0, 1 on a failure
 * while running, 2 on a bad configuration. */
int gb_run(const struct gb_config *c);

#endif
