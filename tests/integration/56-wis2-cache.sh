#!/usr/bin/env bash
# 56-wis2-cache: a WIS2 Global Cache (--centre-id) against a local test bed built like the WMO
# Global Cache functional tests (wis2-global-services-testing, cases F3..F10 in
# docs/OPERATIONS.md): a fake WIS2 node (an HTTP origin and messages published on
# origin/a/wis2/<centre>/data/core/...), the cache peer GC reading and writing one broker that
# plays the Global Broker (so its own cache/ messages come back to it), and a subscriber to
# origin/# and cache/#. Every cache message is validated with the WNM schema (tests/wis2) and
# pywis-pubsub's verify_data; the wmo_wis2_gc_* metrics are checked with their exact labels.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
WIS2=$(cd "$(dirname "$0")/../wis2" && pwd)
"$PY" -c 'import jsonschema' 2>/dev/null ||
    skip "Debian's python3-jsonschema is not installed (sh scripts/deps.sh --extra)"

broker_acl '*' xpublic/# origin/# cache/#

GC_ID=xx-test-global-cache
SYNOP=data/core/weather/surface-based-observations/synop

# node_pub N DATA_ID PUBTIME HREF FILE [wnm.py make options]: centre io-wis2dev-N-test publishes.
node_pub() {
    local n=$1
    shift
    pub gb "origin/a/wis2/io-wis2dev-$n-test/$SYNOP" "$("$PY" "$WIS2/wnm.py" make "$@")"
}

# check DATA_ID PUBTIME COUNT [options]: the cache messages for that version (wnm.py check).
check() {
    "$PY" "$WIS2/wnm.py" check "$WIS2/wis2-notification-message-bundled.json" "$T/obs.msgs" "$@"
}

cache_count() {
    grep -c "^cache/.*\"data_id\":\"$1\"" "$T/obs.msgs" || true
}

# m NAME CENTRE [DATASERVER]: the series of NAME for centre io-wis2dev-CENTRE-test.
m() {
    if [ -n "${3:-}" ]; then
        metric GC "$1{centre_id=\"io-wis2dev-$2-test\",dataserver=\"$3\",report_by=\"$GC_ID\"}"
    else
        metric GC "$1{centre_id=\"io-wis2dev-$2-test\",report_by=\"$GC_ID\"}"
    fi
}

# For wait_until, which runs its command again and again.
cached_at_least() { # cached_at_least DATA_ID N
    [ "$(cache_count "$1")" -ge "$2" ]
}
m_is() { # m_is NAME CENTRE VALUE
    [ "$(m "$1" "$2")" = "$3" ]
}

expect() { # expect NAME CENTRE [DATASERVER] VALUE
    local want=${*: -1} got
    got=$(m "${@:1:$#-1}")
    [ "$got" = "$want" ] || fail "$1 for centre $2 ${3:-}: $got, not $want"
}

iso() {
    date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ
}

start_broker gb
mkdir -p "$T/origin"
start_serve S "$T/origin"
ORIGIN=$(base_url S)
DEAD=http://localhost:1/random # a data server that refuses every connection
mesh_peer GC gb gb -- --exchange + --topic-prefix a/wis2 --subtopic '+/data/#' \
    --subtopic '+/metadata/#' --post-exchange cache --post-format wnm --centre-id "$GC_ID" \
    --max-size 100000 --max-downloads 16
mkdir -p "$T/obs"
mosquitto_sub -h 127.0.0.1 -p "$(broker_port gb)" -u guest -P guestpw -i "obs-$$" -q 1 -v \
    -t 'origin/#' -t 'cache/#' -t 'xpublic/#' >>"$T/obs.msgs" 2>>"$T/obs.log" &
track "$!"
echo "$!" >"$T/obs/pid"
wait_until 10 observer_ready obs gb || fail "the observer did not subscribe"

file() { # file NAME SIZE: a random file on the origin
    head -c "$2" /dev/urandom >"$T/origin/$1"
    echo "$T/origin/$1"
}
now=$(date -u +%s)

# --- F3: WNM processing (small file, also inline: downloaded all the same) ---------------------
f=$(file f3 300)
T3=$(iso "$now")
node_pub 12 gc_f3 "$T3" "$ORIGIN/f3" "$f" --embed
wait_until 20 cached_at_least gc_f3 1 || fail "F3: no cache message"
sleep 1 # its copy comes back through the broker: dropped, not published again
check gc_f3 "$T3" 1 || fail "F3: cache message wrong"
expect wmo_wis2_gc_downloaded_total 12 1
expect wmo_wis2_gc_dataserver_status_flag 12 127.0.0.1 1
[ "$(m wmo_wis2_gc_dataserver_last_download_timestamp_seconds 12 127.0.0.1 | cut -d. -f1)" -ge \
    "$now" ] || fail "F3: no last download time"
[ "$(m wmo_wis2_gc_last_download_timestamp_seconds 12 | cut -d. -f1)" -ge "$now" ] ||
    fail "F3: no last download time by centre"
note "F3: one cache message, new id, href at the cache, schema-valid, verify_data; metrics +1"

# --- F4: cache false -------------------------------------------------------------------------
f=$(file f4 200)
node_pub 13 gc_f4 "$T3" "$ORIGIN/f4" "$f" --cache-false
wait_until 10 cached_at_least gc_f4 1 || fail "F4: not passed on within 10 s"
sleep 1
check gc_f4 "$T3" 1 --same-href || fail "F4: cache message wrong"
expect wmo_wis2_gc_no_cache_total 13 1
expect wmo_wis2_gc_downloaded_total 13 0
expect wmo_wis2_gc_dataserver_status_flag 13 127.0.0.1 0
[ ! -e "$(tree_of GC)/gc_f4" ] || fail "F4: stored"
note "F4: cache false passed on at once, href unchanged, no download, no_cache_total 1"

# --- F5: source download failure -------------------------------------------------------------
f=$(file f5 200)
node_pub 14 gc_f5 "$T3" "$DEAD" "$f"
wait_until 10 m_is wmo_wis2_gc_downloaded_errors_total 14 1 ||
    fail "F5: no download error counted"
sleep 6 # retries (1 s, 2 s, 4 s) count no more
expect wmo_wis2_gc_downloaded_errors_total 14 1
expect wmo_wis2_gc_dataserver_status_flag 14 localhost 0
expect wmo_wis2_gc_downloaded_total 14 0
[ "$(cache_count gc_f5)" = 0 ] || fail "F5: a cache message"
note "F5: download failure: no cache message, errors_total 1 after $(metric GC wmesh_retries_total) retries"

# --- F6: integrity check failure (inline too) -------------------------------------------------
f=$(file f6 200)
node_pub 15 gc_f6 "$T3" "$ORIGIN/f6" "$f" --bad-integrity --embed
wait_until 10 m_is wmo_wis2_gc_integrity_failed_total 15 1 ||
    fail "F6: no integrity failure counted"
sleep 3
expect wmo_wis2_gc_integrity_failed_total 15 1
expect wmo_wis2_gc_downloaded_errors_total 15 0
expect wmo_wis2_gc_downloaded_total 15 0
expect wmo_wis2_gc_dataserver_status_flag 15 127.0.0.1 0
[ "$(cache_count gc_f6)" = 0 ] || fail "F6: a cache message"
note "F6: integrity \"invalid hash\": downloaded, refused, integrity_failed_total 1, nothing published"

# --- F7: deduplication: 5 versions with one data_id and pubtime -------------------------------
for i in 1 2 3 4 5; do
    f=$(file "f7-$i" 400)
    node_pub 11 gc_f7 "$T3" "$ORIGIN/f7-$i" "$f"
    sleep 0.5
done
wait_until 20 cached_at_least gc_f7 1 || fail "F7: no cache message"
sleep 2
check gc_f7 "$T3" 1 || fail "F7: not exactly one cache message"
expect wmo_wis2_gc_downloaded_total 11 1
expect wmo_wis2_gc_downloaded_errors_total 11 0
expect wmo_wis2_gc_integrity_failed_total 11 0
note "F7: 5 messages, one data_id + pubtime: one download, one cache message"

# --- F8: deduplication alt 1: a failing link, then the same version from a good one ----------
f=$(file f8 500)
node_pub 12 gc_f8 "$T3" "$DEAD" "$f"
sleep 2
node_pub 12 gc_f8 "$T3" "$ORIGIN/f8" "$f"
wait_until 20 cached_at_least gc_f8 1 || fail "F8: the good link was not taken"
sleep 2
check gc_f8 "$T3" 1 || fail "F8: cache message wrong"
expect wmo_wis2_gc_downloaded_total 12 2
expect wmo_wis2_gc_downloaded_errors_total 12 1
expect wmo_wis2_gc_dataserver_status_flag 12 localhost 0
note "F8: a failing message does not take the version: the good one is cached, errors_total 1"

# --- F9: deduplication alt 2: an older pubtime after a newer one -----------------------------
f=$(file f9a 1500)
node_pub 13 gc_f9 "$(iso "$now")" "$ORIGIN/f9a" "$f"
sleep 2
f=$(file f9b 1500)
node_pub 13 gc_f9 "$(iso $((now - 10)))" "$ORIGIN/f9b" "$f"
sleep 2
check gc_f9 "$(iso "$now")" 1 || fail "F9: the newer version"
check gc_f9 "$(iso $((now - 10)))" 0 || fail "F9: the older version was cached"
expect wmo_wis2_gc_downloaded_total 13 1
note "F9: an older pubtime of a cached data_id is dropped"

# --- F10: update ------------------------------------------------------------------------------
T10a=$(iso $((now - 600)))
f=$(file f10a 300)
node_pub 14 gc_f10 "$T10a" "$ORIGIN/f10a" "$f"
wait_until 20 cached_at_least gc_f10 1 || fail "F10: version 1 not cached"
f=$(file f10b 350)
node_pub 14 gc_f10 "$T3" "$ORIGIN/f10b" "$f" --rel update
wait_until 20 cached_at_least gc_f10 2 || fail "F10: the update not cached"
sleep 1
check gc_f10 "$T10a" 1 || fail "F10: version 1 (after the update)"
check gc_f10 "$T3" 1 --update || fail "F10: the update"
expect wmo_wis2_gc_downloaded_total 14 2
expect wmo_wis2_gc_dataserver_status_flag 14 127.0.0.1 1
note "F10: an update is a new version at its own URL; version 1 is still served"

# --- edge shapes, metadata, over --max-size, recommended ---------------------------------------
f=$(file e1 700)
node_pub 16 gc_e1 "$T3" "$ORIGIN/e1" "$f" --no-integrity --datetime-null
wait_until 20 cached_at_least gc_e1 1 || fail "no integrity: not cached"
check gc_e1 "$T3" 1 || fail "no integrity, datetime null: cache message wrong"
grep "^cache/.*gc_e1" "$T/obs.msgs" | grep -q '"method":"sha512"' || fail "no sha512 added"
f=$(file e2 150000)
node_pub 16 gc_e2 "$T3" "$ORIGIN/e2" "$f"
wait_until 10 cached_at_least gc_e2 1 || fail "over --max-size: not passed on"
check gc_e2 "$T3" 1 --same-href || fail "over --max-size: cache message wrong"
expect wmo_wis2_gc_cache_override_total 16 1
f=$(file e3 100)
pub gb origin/a/wis2/io-wis2dev-16-test/metadata \
    "$("$PY" "$WIS2/wnm.py" make gc_e3 "$T3" "$ORIGIN/e3" "$f")"
wait_until 10 cached_at_least gc_e3 1 || fail "metadata: not cached"
[ "$(m wmo_wis2_gc_last_metadata_timestamp_seconds 16 | cut -d. -f1)" -ge "$now" ] ||
    fail "no last metadata time"
f=$(file e4 100)
pub gb origin/a/wis2/io-wis2dev-16-test/data/recommended/weather/surface-based-observations/synop \
    "$("$PY" "$WIS2/wnm.py" make gc_e4 "$T3" "$ORIGIN/e4" "$f")"
sleep 2
[ "$(cache_count gc_e4)" = 0 ] || fail "recommended data cached"
expect wmo_wis2_gc_downloaded_total 16 2
note "no integrity + datetime null cached (sha512 added); over --max-size passed on; metadata; recommended ignored"

# One cache message per origin message, whatever came back through the broker.
total_origin=$(grep -c '^origin/' "$T/obs.msgs")
total_cache=$(grep -c '^cache/' "$T/obs.msgs")
note "messages: $total_origin origin, $total_cache cache"
[ "$total_cache" = 10 ] || fail "$total_cache cache messages, not 10"
alive GC
