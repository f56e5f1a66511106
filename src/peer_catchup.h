/* peer_catchup.h: the peer's side of catch-up (docs/CATCHUP.md): its own log, served and
 * announced in a status, and the fetching of what it missed from its upstreams' logs. All in the
 * loop thread. */
#ifndef WMESH_PEER_CATCHUP_H
#define WMESH_PEER_CATCHUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct announce;
struct mqtt_msg;
struct peer;
struct peer_config;

/* The extra filter each upstream link subscribes to: <exchange>/_catchup/+. *out NULL when
 * catch-up is off (or the subscription shared); else the caller frees it. */
WM_WARN_UNUSED enum wm_err peer_catchup_subscription(const struct peer_config *cfg, char **out);
/* Opens the log and serves it (with a post broker and an HTTP server), once both are up; the
 * peer id is --catchup-id or client_id. */
WM_WARN_UNUSED enum wm_err peer_catchup_start(struct peer *p, const char *client_id);
/* Starts following the upstreams, once their links exist; filters are their subscriptions. */
WM_WARN_UNUSED enum wm_err peer_catchup_begin(struct peer *p, char *const *filters,
                                              size_t nfilters);
/* Saves where each upstream was and frees it all; after the fetcher and the HTTP server. */
void peer_catchup_stop(struct peer *p);
void peer_catchup_housekeeping(struct peer *p);

/* Publisher: the seq of the next re-announcement (0: none kept), put in the announcement out
 * (false when its format has no place for it), and recorded once it is in the journal. */
uint64_t peer_catchup_take(struct peer *p);
bool peer_catchup_stamp(struct peer *p, struct announce *out, uint64_t seq);
void peer_catchup_unstamp(struct announce *out);
void peer_catchup_logged(struct peer *p, uint64_t seq, const char *topic, const char *message,
                         size_t len);

/* Subscriber. */
/* Takes a status message from upstream link up; false when msg is not one (an announcement). */
bool peer_catchup_status(struct peer *p, size_t up, const struct mqtt_msg *msg);
/* Notes the seq an announcement from link up carries. */
void peer_catchup_received(struct peer *p, size_t up, const struct announce *a);
void peer_catchup_connected(struct peer *p, size_t up, bool session_present);

#endif
