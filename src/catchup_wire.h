/* catchup_wire.h: what a catch-up subscriber reads from untrusted input (the (peer, epoch, seq)
 * mark in announcements, status messages, URLs) and the window of seqs it has received
 * (docs/CATCHUP.md). Pure: no loop, no peer, no I/O. */
#ifndef WMESH_CATCHUP_WIRE_H
#define WMESH_CATCHUP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "announce.h"
#include "error.h"

#define CATCHUP_ID_MAX 64                     /* bytes of a peer id */
#define CATCHUP_EPOCH_MAX 63                  /* bytes of an epoch */
#define CATCHUP_SEQ_LIMIT ((uint64_t)1 << 53) /* seqs are below this (JSON-safe integers) */
#define CATCHUP_STATUS_MAX 4096               /* bytes of a status payload read */
#define CATCHUP_URL_MAX 2048                  /* bytes of a status's URL */
#define CATCHUP_WINDOW 4096                   /* seqs above done whose arrival is kept */
#define CATCHUP_HOST_MAX 256                  /* room for a host, with its NUL */
#define CATCHUP_MARK_TEXT_MAX (CATCHUP_ID_MAX + CATCHUP_EPOCH_MAX + 20) /* "peer epoch seq" */

struct wm_json;

/* ---- identities ---- */

/* A peer id: [A-Za-z0-9._-]{1,64}. s need not be NUL-terminated. */
bool catchup_id_ok(const char *s, size_t len);
/* An epoch: 1..63 printable ASCII bytes, none a space, '"' or '\\'. */
bool catchup_epoch_ok(const char *s, size_t len);

/* A seq in decimal: len digits (s need not be NUL-terminated), no leading zero but in "0",
 * below 2^53. */
bool catchup_seq_parse(const char *s, size_t len, uint64_t *out);

/* ---- the mark an announcement carries ---- */

/* (peer, epoch, seq): peer passes catchup_id_ok, epoch catchup_epoch_ok, 1 <= seq < 2^53. */
struct catchup_mark {
    char peer[CATCHUP_ID_MAX + 1];
    char epoch[CATCHUP_EPOCH_MAX + 1];
    uint64_t seq;
};

/* Reads the mark of a: in a v03 message the object member "catchup" of a->extra, in an array
 * one the header string "catchup" ("peer epoch seq": exactly three fields, one space apart, seq
 * in decimal digits without a leading zero), in a WIS2 message the object properties.catchup.
 * Members of the object other than peer, epoch and seq are ignored. False (out undefined) when
 * a has none or it is not valid. */
bool catchup_mark_read(const struct announce *a, struct catchup_mark *out);
/* The array format's header text alone: len bytes, need not be NUL-terminated. */
bool catchup_mark_parse(const char *text, size_t len, struct catchup_mark *out);
/* The member that carries m in a message of format fmt: the string "peer epoch seq" for
 * WM_FORMAT_ARRAY, else the object {"peer":..,"epoch":..,"seq":..}. A new value the caller
 * owns, or NULL with errno set: EINVAL when m is not valid, ENOMEM. */
WM_WARN_UNUSED struct wm_json *catchup_mark_json(const struct catchup_mark *m, enum wm_format fmt);

/* ---- URLs ---- */

/* The host of url ("scheme://[user@]host[:port][/...]"), lower-cased, without the user info and
 * the port; an IPv6 literal keeps its brackets ("[::1]"). The host is the one url_parse, and so
 * the fetcher, finds: the user info ends at the last '@' before the first '/'. False when url
 * does not parse, its authority holds '?', '#', '\\', a space or a control byte (which other
 * parsers read differently), or the host does not fit in outlen bytes; out is then "". */
bool catchup_url_host(const char *url, char *out, size_t outlen);

/* ---- status messages ---- */

/* "<exchange>/_catchup/<peer>": exactly three levels, the second "_catchup". */
bool catchup_status_topic(const char *topic);

/* What a status says. Everything is copied into the struct: it owns no memory, and needs no
 * clearing. */
struct catchup_status {
    char peer[CATCHUP_ID_MAX + 1];     /* the last level of its topic */
    char epoch[CATCHUP_EPOCH_MAX + 1]; /* catchup_epoch_ok */
    char url[CATCHUP_URL_MAX + 1];     /* http:// or https://, no space or control byte, and
                                          catchup_url_host finds its host */
    bool down;                         /* state "down": the publisher stopped */
    uint64_t seq;                      /* the last seq logged; 0 when absent */
    uint64_t first;                    /* the lowest seq served; 0 when absent */
};

/* Reads the status payload (len bytes) that came on topic: a JSON object with "wmesh_catchup"
 * 1, "peer" equal to the topic's last level, "epoch" and "url" strings, and optionally "state"
 * (a string), "seq" and "first" (integers 0 .. 2^53-1). Other members are ignored. Returns
 * WM_OK, WM_ERR_INVAL (a NULL argument, or topic not a status topic), WM_ERR_TOOBIG (over
 * CATCHUP_STATUS_MAX bytes), WM_ERR_FORMAT (not such an object) or WM_ERR_NOMEM; out is
 * undefined unless WM_OK. */
WM_WARN_UNUSED enum wm_err catchup_status_read(const void *payload, size_t len, const char *topic,
                                               struct catchup_status *out);

/* ---- the seqs received from one upstream ---- */

/* Every seq up to done came or was fetched; of those above it, the arrival of the ones up to
 * done + CATCHUP_WINDOW is remembered (bit seq % CATCHUP_WINDOW). Zero it to start. */
struct catchup_seqs {
    uint64_t done;     /* every seq up to this came or was fetched */
    uint64_t max_seen; /* the highest seq that came, or that a status named */
    uint64_t bits[CATCHUP_WINDOW / 64];
};

/* Starts again at done (a new epoch: 0; a saved state), forgetting everything above it. */
void catchup_seqs_reset(struct catchup_seqs *s, uint64_t done);
/* seq came: remembered (when within the window above done), done moved over the seqs that came
 * in a row. True when done moved. */
bool catchup_seqs_note(struct catchup_seqs *s, uint64_t seq);
/* A status named seq: it exists, whether or not it came. True when max_seen rose. */
bool catchup_seqs_expect(struct catchup_seqs *s, uint64_t seq);
/* A fetch covered everything up to seq: done moves there (never back), then over what came
 * after it in a row. True when done moved. */
bool catchup_seqs_cover(struct catchup_seqs *s, uint64_t seq);
/* Whether a seq above done is known to exist that has not come (max_seen > done). */
bool catchup_seqs_missing(const struct catchup_seqs *s);

#endif
