/* outbox.h: re-announcements on their way to the post broker. Each is an entry that the caller
 * has journaled; it ends only when the broker acknowledges it with success, or when, refused
 * again and again, it is set aside in the dead-letter file (deadletter.h). Refusals never hold
 * up the entries behind them, and the outbox says when it holds too much for the caller to go
 * on taking work in. */
#ifndef WMESH_OUTBOX_H
#define WMESH_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct loop;
struct metrics;
struct mqtt_options;
struct outbox;

struct outbox_options {
    const struct mqtt_options *link; /* the post broker's link; copied */
    size_t max_entries;              /* outbox_has_room says no at this many entries ... */
    uint64_t max_bytes;              /* ... or this many bytes of topics and messages */
    int retries;                     /* attempts after a refusal before setting aside */
    const char *set_aside_path;      /* the dead-letter file; copied */
};

/* Runs in the loop thread when the outbox lets entry id go. finished: it has ended,
 * acknowledged with success or set aside (durably), and the caller finishes its journal record.
 * Not finished: memory ran out while it waited for a retry; its journal record must stay, to be
 * taken up again. */
typedef void (*outbox_ended_fn)(void *arg, uint64_t id, bool finished);

/* Connects to the post broker and returns the outbox (the caller's; outbox_free), or NULL with
 * *err set. Counters and gauges go to m (outbox_*, published), which must outlive it. */
WM_WARN_UNUSED struct outbox *outbox_new(struct loop *loop, const struct outbox_options *o,
                                         outbox_ended_fn ended, void *arg, struct metrics *m,
                                         enum wm_err *err);
/* Frees *o and its link (unacknowledged entries stay in the caller's journal), sets it NULL. */
void outbox_free(struct outbox **o);

/* Publishes message (len bytes) on topic as entry id: nonzero, below 2^56, journaled by the
 * caller, not in the outbox already. A message no broker could take (a topic MQTT refuses) is
 * set aside at once, and ended is called before this returns. WM_ERR_NOMEM: nothing was
 * taken, the entry is still the caller's. */
WM_WARN_UNUSED enum wm_err outbox_add(struct outbox *o, uint64_t id, const char *topic,
                                      const void *message, size_t len);

/* Publishes the peer's catch-up status (docs/CATCHUP.md): retained, not an entry, never retried
 * or set aside (the next status replaces it). WM_ERR_EXISTS while the previous one is still on
 * its way: the caller publishes the newer state later. */
WM_WARN_UNUSED enum wm_err outbox_publish_status(struct outbox *o, const char *topic,
                                                 const void *message, size_t len);

/* Whether the caller may take more work in. With a hysteresis: once full (max_entries or
 * max_bytes reached), room comes back only below half of both. */
bool outbox_has_room(struct outbox *o);
size_t outbox_entries(const struct outbox *o);
uint64_t outbox_bytes(const struct outbox *o);
/* Whether the link to the post broker is up. */
bool outbox_connected(const struct outbox *o);

/* The delay before attempt n (1 ...) after a refusal, in ms: 1 s doubling, at most 60 s. */
int64_t outbox_retry_delay_ms(int attempt);

#endif
