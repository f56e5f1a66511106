#!/bin/bash
# 46-outbox-memory.sh: 100 000 re-announcements (512 bytes of inline content each) pending with
# the post broker stopped: the peer's peak RSS (VmHWM) stays under 64 MiB, it says once that its
# outbox is full and stops reading its upstream broker, which keeps the rest in its session;
# when the post broker returns everything drains: a persistent subscriber on it sees every
# relPath, the journal and the outbox end empty, and the peak stays under the bound (not judged
# under a sanitizer).
# N, SIZE and BOUND_MIB change the backlog, the content size and the bound.
# Issue 15, 2: the publish queue had no bound (RSS grew linearly, 109.5 MB at 250 000 pending).
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

# Under a sanitizer the bound is not judged (below): 30 000, three times what the outbox holds,
# still fills it and drains it, in a third of the time.
if [ -z "${N:-}" ] && wmesh_sanitized; then N=30000; fi
N=${N:-100000}
SIZE=${SIZE:-512}
BOUND_KB=$((${BOUND_MIB:-64} * 1024))
require_peer_options --state-dir
require_tool mkinline
start_broker up
start_broker home
# A persistent session (-c, a fixed id): what is published while it reconnects after the
# broker's restart is kept for it. mosquitto_sub reconnects by itself.
: >"$T/obs.msgs"
mosquitto_sub -h 127.0.0.1 -p "$(broker_port home)" -u guest -P guestpw -c -i "obs-$$" -q 1 \
    -t 'xpublic/v03/post/#' -F '%p' >>"$T/obs.msgs" 2>>"$T/obs.log" &
track "$!"
observer_subscribed() {
    pub home xpublic/v03/post/ping "{\"relPath\": \"ping\"}"
    grep -q '"ping"' "$T/obs.msgs"
}
wait_until 10 observer_subscribed || fail "the observer did not subscribe"
"$WMESH_TOOLS/mkinline" --dirs 50 --size "$SIZE" m "$N" "$T/feed" "$T/list"
LC_ALL=C sort "$T/list" >"$T/list.sorted"
note "made $N announcements with $SIZE bytes of inline content ($(($(stat -c %s \
    "$T/feed") / 1048576)) MiB)"

mesh_peer P home up
wait_until 20 subscribed P up || fail "P never received the probe from up"
pid=$(pid_of P)
hwm_kb() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status"
}
note "P's peak RSS at the start: $(hwm_kb) kB"
stop_broker home
publish_lines up xpublic/v03/post/feed "$T/feed"
note "post broker stopped; published $N announcements on up"

# P takes in what it can hold, then stops: the rest waits in its session on up.
received() {
    echo $(($(metric P wmesh_messages_received_total) - 1)) # the probe
}
stopped_reading() {
    [ "$(received)" -ge "$N" ] || metric_is P wmesh_outbox_full 1
}
# A sanitizer's shadow memory and quarantine (ASan keeps 256 MiB of freed blocks) say nothing
# of the peer's own: under SANITIZER=address or thread everything is checked but the bound.
JUDGE_RSS=1
if wmesh_sanitized; then
    JUDGE_RSS=0
    note "$WMESH is built with a sanitizer: its RSS is shown, not judged"
fi
within_bound() {
    [ "$JUDGE_RSS" = 0 ] || [ "$(hwm_kb)" -lt "$BOUND_KB" ] ||
        fail "P's peak RSS is $(hwm_kb) kB (bound $BOUND_KB kB) with $(received) announcements" \
            "received, $(metric P wmesh_journal_live) journaled, outbox" \
            "$(metric P wmesh_outbox_entries) entries, $(metric P wmesh_outbox_bytes) bytes"
}
# stable_for S: nothing more came in for S seconds (for wait_until).
stable_for() {
    local before
    before=$(received)
    sleep "$1"
    [ "$(received)" -eq "$before" ]
}
wait_until 60 stopped_reading || fail "P received $(received) of $N and its outbox is not full"
# What was read before the pause is still taken in; then nothing more comes.
wait_until 30 stable_for 2 || fail "P goes on reading with its outbox full: $(received) received"
within_bound
before=$(received)
[ "$before" -lt "$N" ] || fail "P took in all $N announcements with its post broker down"
grep -q 'outbox full' "$T/P.log" || fail "P never logged 'outbox full'"
note "post broker down: P received $before of $N and stopped; outbox" \
    "$(metric P wmesh_outbox_entries) entries, $(metric P wmesh_outbox_bytes) bytes;" \
    "peak RSS $(hwm_kb) kB; $(grep -c 'outbox full' "$T/P.log") line(s) 'outbox full'"

start_broker_again home
back=$SECONDS
seen_all() {
    grep -o '"relPath": *"[^"]*"' "$T/obs.msgs" | cut -d'"' -f4 | LC_ALL=C sort -u >"$T/seen"
    LC_ALL=C comm -23 "$T/list.sorted" "$T/seen" >"$T/missing"
    [ ! -s "$T/missing" ]
}
drained() {
    within_bound
    [ "$(wc -l <"$T/obs.msgs")" -gt "$N" ] && seen_all
}
wait_until 90 drained || fail "the observer saw $(wc -l <"$T/seen") of $N relPaths" \
    "$((SECONDS - back)) s after the post broker returned; P: $(counters P)"
note "post broker back: the observer saw all $N relPaths within $((SECONDS - back)) s"
wait_until 30 metric_is P wmesh_journal_live 0 ||
    fail "P's journal holds $(metric P wmesh_journal_live) entries once everything was seen"
wait_until 30 metric_is P wmesh_outbox_entries 0 ||
    fail "P's outbox holds $(metric P wmesh_outbox_entries) entries once everything was seen"
metric_is P wmesh_outbox_full 0 || fail "wmesh_outbox_full is $(metric P wmesh_outbox_full)"
within_bound
alive P
note "P's journal and outbox are empty; peak RSS $(hwm_kb) kB; P: $(counters P)"
