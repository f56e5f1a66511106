/* peer.h: the mesh peer daemon: subscribe upstream, fetch what is missing, store, re-announce. */
#ifndef WMESH_PEER_H
#define WMESH_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "announce.h"
#include "error.h"
#include "mqtt.h"

struct filter;

/* Everything the peer needs; strings are borrowed and must outlive peer_run(). */
struct peer_config {
    const char *name;           /* for logs; NULL: none */
    const char *dir;            /* the tree */
    const char *state_dir;      /* journal and seen-cache; NULL: <dir>/.wmesh-state */
    const char *const *brokers; /* upstream broker URLs */
    size_t nbrokers;
    const char *post_broker;   /* NULL: do not announce */
    const char *post_base_url; /* baseUrl of our re-announcements */
    const char *http_listen;   /* NULL: no embedded HTTP server */
    const char *client_id;     /* NULL: derived from the host name, the tree and instance */
    int instance;              /* > 0: one of several processes sharing a subscription */
    const char *share_group;   /* NULL, or an MQTT 5 shared subscription group */
    const char *exchange;      /* subscriptions: <exchange>/<topic_prefix>/<subtopic> */
    const char *topic_prefix;
    const char *const *subtopics;
    size_t nsubtopics;
    /* Re-announcements go to <post_exchange>/<post_topic_prefix> (NULL: exchange, topic_prefix)
     * followed, with post_topic_copy, by the levels of the topic the original came on below
     * <exchange>/<topic_prefix>; without it (or when those levels are unknown or unusable), by
     * the directory of the relPath. */
    const char *post_exchange;
    const char *post_topic_prefix;
    bool post_topic_copy;
    enum wm_format post_format;
    /* NULL, or this WIS2 Global Cache's centre-id: WIS2 messages then follow the Global Cache
     * rules (docs/OPERATIONS.md), name it in properties.global-cache and report_by. */
    const char *centre_id;
    const struct filter *filter; /* NULL: accept everything */
    double lag_warn_s;           /* <= 0: never warn */
    double lag_drop_s;           /* <= 0: never drop */
    size_t max_message;          /* bytes; larger payloads are refused */
    int max_downloads;           /* concurrent downloads, and download connections in all */
    int max_host_connections;    /* download connections per server (scheme, host, port) */
    int pipeline;                /* HTTP requests in flight per connection, small files; 0: 1 */
    double retry_for_s;          /* keep retrying a failed download this long */
    int64_t max_size;            /* largest file downloaded, bytes; 0: no limit */
    size_t inline_max;           /* files up to this size go inside re-announcements; 0: none */
    double connect_timeout_s;    /* download connection timeout */
    double stall_timeout_s;      /* a download that moves no byte this long is cut */
    const char *cafile;          /* CA certificates for mqtts and https; NULL: system's */
    const char *certfile;        /* client certificate for mqtts and https; NULL: none */
    const char *keyfile;         /* its private key; NULL: in certfile */
    size_t seen_capacity;        /* seen-cache entries; 0: no cache */
    double seen_ttl_s;           /* how long a version stays in the seen-cache */
    size_t max_queue;            /* announcements held before reading pauses */
    size_t outbox_max;           /* re-announcements unacknowledged before reading pauses */
    uint64_t outbox_max_bytes;   /* their bytes before reading pauses */
    int outbox_retries;          /* attempts after a refusal before one is set aside */
    double retention_s;          /* remove files older than this; 0: keep everything */
    bool survive_power_loss;     /* fdatasync the journal and syncfs the tree every turn */
    /* Catch-up (docs/CATCHUP.md): keep and serve a log of our announcements, and fetch what we
     * missed from our upstreams' logs. */
    bool catchup;
    bool catchup_seq;        /* put (peer, epoch, seq) in each re-announcement */
    const char *catchup_id;  /* NULL: from the client id */
    double catchup_window_s; /* a new upstream's log is read this far back; 0: --lag-drop */
    double catchup_keep_s;   /* the log keeps records this long; 0: 24 h */
    /* The protocol of every broker link, upstream and post. */
    enum mqtt_protocol mqtt_version;
    const struct proxy_config *proxies; /* for every connection (proxy.h); NULL: none */
};

/* Runs the peer until SIGINT or SIGTERM. Returns 0 on a clean stop, non-zero when it could not
 * start (the reason is logged). */
int peer_run(const struct peer_config *cfg);

#endif
