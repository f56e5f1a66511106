#!/bin/bash
# 41-retention.sh: a peer with --retention removes the files whose pubTime is older than that
# (their mtime) and keeps the others, without stopping its work; `wmesh clean` does it once.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

start_broker up
start_broker home
mesh_peer P home up -- --retention 20s --lag-drop 0
start_serve S "$T/origin"
make_files "$T/origin" 4 >"$T/list"
tree=$(tree_of P)
old=$(date -u -d '-1 hour' +%Y%m%dT%H%M%S.%N)
n=0
while IFS= read -r rel; do
    n=$((n + 1))
    msg=$(v03_msg "$(base_url S)" "$rel" sha512 "$(checksum_b64 sha512 "$T/origin/$rel")")
    # The first two are an hour old: stored, then removed by retention; the others stay.
    [ "$n" -le 2 ] && msg=$(sed "s/\"pubTime\": \"[^\"]*\"/\"pubTime\": \"$old\"/" <<<"$msg")
    pub up "$(topic_of "$rel")" "$msg"
done <"$T/list"
first=$(sed -n 1p "$T/list")
second=$(sed -n 2p "$T/list")
wait_until 20 metric_is P wmesh_downloads_total 4 || fail "downloads: $(counters P)"
wait_until 20 metric_is P wmesh_retention_removed_total 2 ||
    fail "retention removed $(metric P wmesh_retention_removed_total) files, expected 2"
[ ! -e "$tree/$first" ] && [ ! -e "$tree/$second" ] || fail "old files still there"
for rel in $(sed -n '3,4p' "$T/list"); do
    cmp -s "$T/origin/$rel" "$tree/$rel" || fail "a fresh file was removed: $rel"
done
alive P
note "the peer removed the two hour-old files and kept the fresh ones"

# wmesh clean: one sweep, here over the origin tree whose files are fresh but for one.
touch -d '-2 hours' "$T/origin/$first"
out=$("$WMESH" clean --dir "$T/origin" --retention 1h)
grep -q '^removed 1 file(s)' <<<"$out" || fail "clean said: $out"
[ ! -e "$T/origin/$first" ] || fail "clean kept the old file"
[ -e "$T/origin/$second" ] || fail "clean removed a fresh file"
"$WMESH" clean --dir "$T/origin" --retention soon 2>/dev/null && fail "clean accepted a bad duration"
note "wmesh clean removed exactly the old file"
