#!/bin/bash
# 45-outbox-kill.sh: 100 000 re-announcements pending behind a throttled post broker, the peer
# SIGKILLed at random points while they drain and restarted each time with the same state dir
# and client id: an observer on the post broker, subscribed before the first announcement and
# never stopped, sees every relPath at least once; at the end the journal and the outbox are
# empty. The peer's post link goes through delayproxy, paused until the peer has taken in all
# it will (the whole backlog, or what its outbox holds), then capped at RATE bytes/s.
# Issue 15, 1: with more than 65 536 announcements pending, acknowledgements mapped by
# mid % 65536 finished the journal entries of announcements never sent, which a kill then lost.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

# Under a sanitizer 70 000: still past 65 536 pending, where acknowledgements once aliased.
if [ -z "${N:-}" ] && wmesh_sanitized; then N=70000; fi
N=${N:-100000}
RATE=${RATE:-1500000} # bytes/s to the post broker: ~4 400 announcements of ~340 bytes a second
require_peer_options --state-dir
require_tool mkinline
start_broker up
start_broker home
start_delayproxy slow home --rate "$RATE"
touch "$T/slow/pause"
start_observer obs home
"$WMESH_TOOLS/mkinline" --dirs 50 k "$N" "$T/feed" "$T/list"
LC_ALL=C sort "$T/list" >"$T/list.sorted"
note "made $N announcements with inline content, in 50 directories"

mesh_peer P slow up
remember_argv P
wait_until 20 subscribed P up || fail "P never received the probe from up"
publish_lines up xpublic/v03/post/feed "$T/feed"
note "published $N announcements on up"

# The post link is paused: P takes in everything (an unbounded publish queue) or stops once
# its outbox is full.
took_all() {
    [ "$(metric P wmesh_messages_received_total)" -gt "$N" ] || metric_is P wmesh_outbox_full 1
}
wait_until 90 took_all || fail "P received $(metric P wmesh_messages_received_total) of $N" \
    "and its outbox is not full"
pending=$(metric P wmesh_journal_live)
note "P took in $(($(metric P wmesh_messages_received_total) - 1)) announcements with its post" \
    "link paused: $pending journaled, outbox $(metric P wmesh_outbox_entries) entries"
rm "$T/slow/pause"

observed_lines() {
    local n
    n=$(wc -l <"$T/obs.msgs")
    echo $((n - 1)) # the observer's ping
}
progress_past() {
    [ "$(observed_lines)" -ge "$1" ]
}

KILLS=0
kill_p() {
    local live
    live=$(metric P wmesh_journal_live 2>/dev/null || echo '?')
    kill_peer P KILL
    KILLS=$((KILLS + 1))
    note "kill $KILLS ($1): P had $live journal entries live; the observer had" \
        "$(observed_lines) announcements"
}

# Three kills at random points of the drain, and one at a random moment of the restart after
# the second (during its journal replay, or soon after).
for span in "3 15" "30 20" "60 20"; do
    read -r from width <<<"$span"
    at=$((N * (from + RANDOM % width) / 100))
    wait_until 120 progress_past "$at" || fail "the observer saw only $(observed_lines)" \
        "announcements, waiting for $at"
    sleep "0.$((RANDOM % 10))"
    kill_p "past $at announcements observed"
    sleep "0.$((RANDOM % 10))"
    restart_peer P
    if [ "$KILLS" -eq 2 ]; then
        sleep "$((RANDOM % 2)).$((RANDOM % 10))"
        kill_p "soon after a restart"
        restart_peer P
    fi
done
[ "$KILLS" -ge 3 ] || fail "only $KILLS kills"

# seen_all: every relPath of the list was observed; $T/missing lists those that were not.
seen_all() {
    grep -o '"relPath": *"[^"]*"' "$T/obs.msgs" | cut -d'"' -f4 | LC_ALL=C sort -u >"$T/seen"
    LC_ALL=C comm -23 "$T/list.sorted" "$T/seen" >"$T/missing"
    [ ! -s "$T/missing" ]
}
# Waits until every relPath was observed, or nothing new was for 20 s (P has given up on some).
last=-1
still=$SECONDS
while :; do
    lines=$(observed_lines)
    if [ "$lines" -ne "$last" ]; then
        last=$lines
        still=$SECONDS
    fi
    if [ "$lines" -ge "$N" ] && seen_all; then
        break
    fi
    if [ $((SECONDS - still)) -ge 20 ]; then
        seen_all || true
        fail "the observer saw $(wc -l <"$T/seen") of $N relPaths ($lines announcements)," \
            "nothing more for 20 s; P's journal holds $(metric P wmesh_journal_live) entries," \
            "it published $(metric P wmesh_published_total) since its last start; missing," \
            "for example: $(head -n 3 "$T/missing" | tr '\n' ' ')"
    fi
    sleep 1
done
note "the observer saw all $N relPaths ($(observed_lines) announcements:" \
    "$(($(observed_lines) - N)) again after a kill)"

wait_until 30 metric_is P wmesh_journal_live 0 ||
    fail "P's journal holds $(metric P wmesh_journal_live) entries once everything was seen"
wait_until 30 metric_is P wmesh_outbox_entries 0 ||
    fail "P's outbox holds $(metric P wmesh_outbox_entries) entries once everything was seen"
curl -fsS "http://127.0.0.1:$(http_port P)/metrics" | grep -q '^wmesh_outbox_entries ' ||
    fail "P has no wmesh_outbox_entries metric"
alive P
note "P's journal and outbox are empty; P: $(counters P)"
