#!/bin/bash
# 12-formats.sh: one peer announces in the WMO mesh demo's array format, the other in v03; files
# flow both ways, and an array message published by hand (with an MD5 "d," sum) is fetched.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

N=${N:-40}
start_broker bA
start_broker bB
mesh_peer A bA bB -- --post-format array
mesh_peer B bB bA -- --post-format v03
start_observer obA bA
start_observer obB bB

make_files "$(tree_of A)" "$N" a >"$T/a.list"
make_files "$(tree_of B)" "$N" b >"$T/b.list"
post_files bA "$(base_url A)" "$(tree_of A)" "$T/a.list" --post-format array
post_files bB "$(base_url B)" "$(tree_of B)" "$T/b.list" --post-format v03

wait_until 60 all_present "$(tree_of B)" "$T/a.list" ||
    fail "B holds $(count_present "$(tree_of B)" "$T/a.list") of A's $N files"
wait_until 60 all_present "$(tree_of A)" "$T/b.list" ||
    fail "A holds $(count_present "$(tree_of A)" "$T/b.list") of B's $N files"
same_files "$(tree_of A)" "$(tree_of B)" "$T/a.list" || fail "a file from A differs at B"
same_files "$(tree_of B)" "$(tree_of A)" "$T/b.list" || fail "a file from B differs at A"
note "array -> v03 and v03 -> array: $N files each way, identical bytes"

# A hand-made array message with an MD5 sum and extra headers, for a file served by an origin.
origin=$T/origin
rel=$(date -u +%Y%m%d)/WIS/CA/CMC/UpperAir/04/UANT01_CWAO_250445___15103.txt
mkdir -p "$origin/$(dirname "$rel")"
head -c 5000 /dev/urandom >"$origin/$rel"
start_serve S "$origin"
msg=$(array_msg "$(base_url S)" "$rel" "d,$(checksum_hex md5 "$origin/$rel")" \
    ', "source": "handmade", "from_cluster": "ORIGIN"')
pub bA "$(topic_of "$rel")" "$msg"
note "published by hand on bA: $msg"

wait_until 30 test -f "$(tree_of B)/$rel" || fail "B did not fetch the hand-made array announcement"
wait_until 30 test -f "$(tree_of A)/$rel" || fail "A did not get the file back from B"
cmp -s "$origin/$rel" "$(tree_of B)/$rel" || fail "B stored different bytes"
cmp -s "$origin/$rel" "$(tree_of A)/$rel" || fail "A stored different bytes"

settle A B
# Each peer speaks its own format on its broker.
observed obA | cut -d' ' -f2- | grep -v '^\[' && fail "a non-array message on A's broker"
observed obB | cut -d' ' -f2- | grep -v '^{' && fail "a non-v03 message on B's broker"
# B re-announced the hand-made one in v03 with its own base URL and the unknown headers kept.
line=$(observed obB | grep -F "\"$rel\"") || fail "B did not re-announce $rel"
[ "$(json_str baseUrl <<<"${line#* }")" = "$(base_url B)" ] || fail "B's baseUrl in $line"
grep -q '"handmade"' <<<"$line" || fail "B dropped the unknown header source: $line"
grep -q '"ORIGIN"' <<<"$line" || fail "B dropped the unknown header from_cluster: $line"
[ "$(metric A wmesh_downloads_total)" -eq $((N + 1)) ] || fail "A downloads: $(counters A)"
[ "$(metric B wmesh_downloads_total)" -eq $((N + 1)) ] || fail "B downloads: $(counters B)"
for p in A B; do
    once_each "$p" downloaded
    [ -z "$(logged "$p" failed)" ] || fail "$p logged failures"
done
