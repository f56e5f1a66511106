#!/bin/bash
# 15-duplicate-race.sh: two upstreams announce the same files at the same moment: each file is
# downloaded once, announced once, and the second announcement counts as a duplicate.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

K=${K:-20}
start_broker up1
start_broker up2
start_broker home
mesh_peer P home up1 up2
start_observer obs home

# Two origins with the same bytes, as two upstream peers would have.
origin=$T/origin
day=$(date -u +%Y%m%d)
for i in $(seq 1 "$K"); do
    rel=$(printf '%s/WIS/CA/CMC/Race/00/RACE%02d_CWAO_250000___%05d.bin' "$day" "$((i % 7))" "$i")
    mkdir -p "$origin/$(dirname "$rel")"
    head -c $((512 * 1024 + i)) /dev/urandom >"$origin/$rel"
    echo "$rel"
done >"$T/list"
cp -a "$origin" "$T/origin2"
start_serve S1 "$origin"
start_serve S2 "$T/origin2"

# One message per line, for mosquitto_pub -l. Same pubTime on both sides, as a real re-announce.
now=$(pubtime_now)
while IFS= read -r rel; do
    sum=$(checksum_b64 sha512 "$origin/$rel")
    for s in S1 S2; do
        printf '{"pubTime": "%s", "baseUrl": "%s", "relPath": "%s", "integrity": {"method": "sha512", "value": "%s"}}\n' \
            "$now" "$(base_url "$s")" "$rel" "$sum" >>"$T/$s.lines"
    done
done <"$T/list"
# Every file is in one directory, so one topic serves them all.
topic=$(topic_of "$(head -n 1 "$T/list")")
pub_lines() {
    mosquitto_pub -h 127.0.0.1 -p "$(broker_port "$1")" -u owner -P ownerpw -i "race-$1-$$" \
        -q 1 -t "$topic" -l <"$T/$2.lines"
}
pub_lines up1 S1 &
p1=$!
pub_lines up2 S2 &
p2=$!
wait "$p1" || fail "publishing on up1 failed"
wait "$p2" || fail "publishing on up2 failed"
note "$K files announced on both upstreams at once"

wait_until 60 all_present "$(tree_of P)" "$T/list" ||
    fail "P holds $(count_present "$(tree_of P)" "$T/list") of $K files"
same_files "$origin" "$(tree_of P)" "$T/list" || fail "a file differs"
settle P
[ "$(metric P wmesh_messages_received_total)" -eq $((2 * K)) ] || fail "received: $(counters P)"
[ "$(metric P wmesh_downloads_total)" -eq "$K" ] || fail "downloads: $(counters P)"
[ "$(metric P wmesh_duplicates_total)" -eq "$K" ] || fail "duplicates: $(counters P)"
[ "$(metric P wmesh_published_total)" -eq "$K" ] || fail "published: $(counters P)"
once_each P downloaded
[ "$(logged P downloaded | wc -l)" -eq "$K" ] || fail "$(logged P downloaded | wc -l) downloads logged"
[ "$(observed obs | wc -l)" -eq "$K" ] || fail "$(observed obs | wc -l) announcements on home"
note "each file downloaded once: $(counters P)"
