#!/bin/bash
# 58-catchup.sh: A -> B -> C, where C misses announcements three ways and gets every file all
# the same from B's catch-up log (docs/CATCHUP.md): as a late joiner with an empty tree, after
# its sessions were lost while it was away, and behind a broker that dropped what it queued for
# it. Each file is still downloaded once by C, and B's log serves what the endpoints promise.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

N=${N:-60}

# start_c CLIENT_ID [OPTION...]: C reads bB, keeping its state directory across restarts.
start_c() {
    local cid=$1 port
    shift
    port=$(cat "$T/C.port" 2>/dev/null || free_port)
    echo "$port" >"$T/C.port"
    mkdir -p "$T/C/tree" "$T/C/state"
    start_peer C --dir "$T/C/tree" --state-dir "$T/C/state" --client-id "$cid" \
        --post-broker "$(broker_url bC owner)" --post-base-url "http://127.0.0.1:$port/data" \
        --http-listen "127.0.0.1:$port" --broker "$(broker_url bB guest)" "$@"
}

# post_batch TAG COUNT: COUNT new files posted at A; their relPaths in $T/TAG.list.
post_batch() {
    make_files "$(tree_of A)" "$2" "$1" >"$T/$1.list"
    post_files bA "$(base_url A)" "$(tree_of A)" "$T/$1.list"
    wait_until 30 all_present "$(tree_of B)" "$T/$1.list" || fail "B did not get batch $1"
    # B's announcements are in bB (and in its log) once bB acknowledged them all.
    wait_until 30 metric_is B wmesh_published_total "$(cat "$T"/*.list | wc -l)" ||
        fail "B's announcements of batch $1 were not acknowledged"
}

# held_within SECONDS LIST WHAT: C holds every file of LIST within SECONDS, or the test fails.
held_within() {
    local t0 got want
    t0=$(date +%s%N)
    want=$(wc -l <"$2")
    if ! wait_until "$1" all_present "$T/C/tree" "$2"; then
        got=$(count_present "$T/C/tree" "$2")
        fail "$3: C holds $got of $want files after $1 s"
    fi
    note "$3: C holds all $want files $(((($(date +%s%N) - t0) / 1000000))) ms later"
    same_files "$(tree_of A)" "$T/C/tree" "$2" || fail "$3: C's copies differ from A's"
}

chain_of_three --no-c

# --- B's log and its endpoints ------------------------------------------------------------------
post_batch early "$N"
status=$(curl -fsS "$(base_url B)/.wmesh/status") || fail "B serves no catch-up status"
epoch=$(printf '%s' "$status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["epoch"])')
last=$(printf '%s' "$status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seq"])')
[ "$last" -ge "$N" ] || fail "B's status says seq $last after $N announcements: $status"
curl -fsS "$(base_url B)/.wmesh/log?epoch=$epoch&after=0&limit=10" >"$T/page" ||
    fail "B's log did not answer"
python3 - "$T/page" "$epoch" <<'EOF' || fail "B's log page is not what docs/CATCHUP.md says"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
recs, trailer = lines[:-1], lines[-1]
assert len(recs) == 10, len(recs)
assert [r["seq"] for r in recs] == sorted(r["seq"] for r in recs)
assert all(r["topic"].startswith("xpublic/") and "relPath" in r["message"] for r in recs)
assert all(r["message"]["catchup"]["seq"] == r["seq"] for r in recs), "seq not in the message"
assert trailer["end"] is True and trailer["epoch"] == sys.argv[2] and trailer["more"] is True
assert trailer["next"] == recs[-1]["seq"], trailer
EOF
code=$(curl -s -o /dev/null -w '%{http_code}' "$(base_url B)/.wmesh/log?epoch=other&after=0")
[ "$code" = 409 ] || fail "a request for another epoch got $code, not 409"
code=$(curl -s -o /dev/null -w '%{http_code}' "$(base_url B)/.wmesh/log?after=x")
[ "$code" = 400 ] || fail "a malformed request got $code, not 400"
mosquitto_sub -h 127.0.0.1 -p "$(broker_port bB)" -u guest -P guestpw -t 'xpublic/_catchup/+' \
    -C 1 -W 5 >"$T/retained" || fail "no retained catch-up status on bB"
grep -q "\"epoch\":\"$epoch\"" "$T/retained" || fail "bB's retained status: $(cat "$T/retained")"

# --- a late joiner with an empty tree -----------------------------------------------------------
start_c it-C1-$$
held_within 30 "$T/early.list" "late joiner"
[ "$(metric C wmesh_catchup_records_total)" -ge "$N" ] || fail "C fetched no records"

# --- a peer whose sessions were lost while it was away --------------------------------------------
stop_pid "$(cat "$T/C/pid")"
post_batch away 30
start_c it-C2-$$ # a new client id: the session that queued batch "away" is not C's any more
held_within 10 "$T/away.list" "session lost"

# --- a broker that drops what it queues for a stalled subscriber --------------------------------
stop_pid "$(cat "$T/C/pid")"
stop_pid "$(cat "$T/bB/pid")"
# C speaks MQTT 3.1.1: to an MQTT 5 client mosquitto 2.0 allows the client's receive maximum in
# flight, not max_inflight_messages, and would hold every message for it.
write_broker_config bB "$(broker_port bB)" --max-queued-messages 5 --max-inflight-messages 5
"$MOSQUITTO" -c "$T/bB/mosquitto.conf" >>"$T/bB.log" 2>&1 &
track "$!"
echo "$!" >"$T/bB/pid"
wait_until 10 broker_ready bB || fail "bB did not restart"
start_c it-C2-$$ --mqtt-version 3.1.1
wait_until 20 is_connected C "$(broker_port bB)" 1 || fail "C did not connect to bB"
kill -STOP "$(cat "$T/C/pid")"
post_batch dropped 40
kill -CONT "$(cat "$T/C/pid")"
grep -q 'dropped' "$T/bB.log" || fail "bB dropped nothing: the fault did not happen"
held_within 15 "$T/dropped.list" "dropping broker"

# --- what it cost ------------------------------------------------------------------------------
cat "$T"/early.list "$T"/away.list "$T"/dropped.list >"$T/all.list"
settle B C
once_each C downloaded
[ "$(logged C downloaded | sort -u | wc -l)" -eq "$(wc -l <"$T/all.list")" ] ||
    fail "C downloaded $(logged C downloaded | sort -u | wc -l) files, not $(wc -l <"$T/all.list")"
[ "$(metric C wmesh_catchup_gaps_total)" -ge 1 ] || fail "C counted no gap"
note "C: $(metric C wmesh_catchup_requests_total) requests, $(metric C wmesh_catchup_records_total)" \
    "records fetched, $(metric C wmesh_catchup_gaps_total) gaps; B logged" \
    "$(metric B wmesh_catchup_logged_total)"
for p in A B C; do
    alive "$p"
done
