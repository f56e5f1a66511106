#!/bin/bash
# 14-mismatch.sh: a file announced with a wrong checksum is neither stored nor re-announced, the
# peer logs 'failed' and counts one integrity failure, and it keeps working.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

start_broker up
start_broker home
# No retries: the wrong checksum fails at once (retries are 32-bad-upstream's subject).
mesh_peer P home up -- --retry-for 0
start_observer obs home
origin=$T/origin
make_files "$origin" 6 >"$T/list"
start_serve S "$origin"
tree=$(tree_of P)

# The biggest of them, so a partial temporary file would have something to hold.
rel=$(while IFS= read -r r; do echo "$(stat -c %s "$origin/$r") $r"; done <"$T/list" |
    sort -n | tail -n 1 | cut -d' ' -f2)
printf 'other bytes' >"$T/other"
pub up "$(topic_of "$rel")" "$(v03_msg "$(base_url S)" "$rel" sha512 \
    "$(checksum_b64 sha512 "$T/other")")"
wait_until 20 logged_has P failed "$rel" || fail "no 'failed $rel' log line"
wait_until 10 metric_is P wmesh_integrity_failures_total 1 ||
    fail "integrity failures: $(metric P wmesh_integrity_failures_total), expected 1"
[ ! -e "$tree/$rel" ] || fail "a file with a wrong checksum was stored"
if [ -d "$tree/.wmesh-tmp" ] && [ -n "$(ls -A "$tree/.wmesh-tmp")" ]; then
    fail "temporary files left behind: $(ls -A "$tree/.wmesh-tmp")"
fi
note "wrong checksum: logged failed, counted, nothing stored"

# A correct announcement afterwards is stored and re-announced, once.
pub up "$(topic_of "$rel")" "$(v03_msg "$(base_url S)" "$rel" sha512 \
    "$(checksum_b64 sha512 "$origin/$rel")")"
wait_until 20 test -f "$tree/$rel" || fail "the correct announcement was not stored"
cmp -s "$origin/$rel" "$tree/$rel" || fail "stored bytes differ"
wait_until 10 observed_has obs "$rel" || fail "the correct announcement was not re-announced"
[ "$(observed obs | grep -cF "\"$rel\"")" -eq 1 ] || fail "announced more than once: $(observed obs)"
line=$(observed obs | grep -F "\"$rel\"")
sum=$(sed -n 's/.*"integrity"[[:space:]]*:[[:space:]]*{\([^}]*\)}.*/\1/p' <<<"${line#* }")
[ "$(json_str value <<<"$sum")" = "$(checksum_b64 sha512 "$origin/$rel")" ] ||
    fail "re-announced with a checksum other than the stored file's: $line"
[ "$(metric P wmesh_downloads_total)" -eq 1 ] || fail "downloads: $(counters P)"
[ "$(metric P wmesh_published_total)" -eq 1 ] || fail "published: $(counters P)"
[ "$(metric P wmesh_integrity_failures_total)" -eq 1 ] || fail "integrity failures moved"
alive P

# A large file (6 MiB: hashed on the hasher's thread, behind the writes) is judged the same way:
# refused on a wrong checksum, stored and re-announced with the right one.
big=Radar/large/composite.bin
mkdir -p "$origin/${big%/*}"
head -c $((6 * 1024 * 1024 + 12345)) /dev/urandom >"$origin/$big"
size=", \"size\": $(stat -c %s "$origin/$big")"
pub up "$(topic_of "$big")" "$(v03_msg "$(base_url S)" "$big" sha512 \
    "$(checksum_b64 sha512 "$T/other")" "$size")"
wait_until 20 logged_has P failed "$big" || fail "no 'failed $big' log line"
wait_until 10 metric_is P wmesh_integrity_failures_total 2 ||
    fail "integrity failures: $(metric P wmesh_integrity_failures_total), expected 2"
[ ! -e "$tree/$big" ] || fail "a large file with a wrong checksum was stored"
# Without its size this time: the hasher takes over where the file turns out to be large.
pub up "$(topic_of "$big")" "$(v03_msg "$(base_url S)" "$big" md5 \
    "$(checksum_b64 md5 "$origin/$big")")"
wait_until 20 observed_has obs "$big" || fail "the large file was not re-announced"
cmp -s "$origin/$big" "$tree/$big" || fail "the large file's stored bytes differ"
line=$(observed obs | grep -F "\"$big\"")
sum=$(sed -n 's/.*"integrity"[[:space:]]*:[[:space:]]*{\([^}]*\)}.*/\1/p' <<<"${line#* }")
[ "$(json_str value <<<"$sum")" = "$(checksum_b64 md5 "$origin/$big")" ] ||
    fail "the large file re-announced with a checksum other than its own: $line"
[ "$(metric P wmesh_downloads_total)" -eq 2 ] || fail "downloads: $(counters P)"
note "a large file hashed behind its writes: wrong checksum refused, right one stored once"
alive P
