#!/bin/bash
# 38-share-versions.sh: two `wmesh peer` processes on one tree, each hearing of a different
# version of the same 6 files. P1 admits version 1 (the older pubTime) and fetches it from a
# server that trickles it at 1 KiB/s; meanwhile P2 admits version 2 (a pubTime 10 s later),
# fetches it at once, stores and announces it. P1's slow downloads finish afterwards: each
# process checked the tree at admission, when it held nothing, so only the commit itself can
# tell that the tree now holds a newer version. The newest version must stay in the tree for
# every file and the older one must never be announced on the home broker. Then both processes
# fetch version 3, P1 slowly: its commit finds the same version stored by P2, a duplicate that is
# not announced again.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

N=6
start_broker up1
start_broker up2
start_broker home
shared=$T/shared-tree
mkdir -p "$shared"
# P1 reads up1 only, P2 up2 only: neither hears of the other's version before its commit.
mesh_peer P1 home up1 -- --instance 1 --dir "$shared"
mesh_peer P2 home up2 -- --instance 2 --dir "$shared"
start_observer obs home

old=$T/old
new=$T/new
day=$(date -u +%Y%m%d)
: >"$T/list"
for ((i = 1; i <= N; i++)); do
    rel=$day/WIS/SHARE/VERS${i}_LFPW_${day:6:2}0000___$i.bin
    mkdir -p "$(dirname "$old/$rel")" "$(dirname "$new/$rel")"
    # Version 1: 2.2 to 3.5 KiB, 2 to 4 s each at 1 KiB/s. Version 2: on both sides of the 4 KiB
    # above which the checksum is kept in an xattr.
    head -c $((2048 + i * 256)) /dev/urandom >"$old/$rel"
    head -c $((i * 1500)) /dev/urandom >"$new/$rel"
    echo "$rel" >>"$T/list"
done
echo '* slow' >"$T/faults"
start_badhttpd SLOW "$old" "$T/faults"
start_serve FAST "$new"

now=$(date +%s)
t1=$((now - 20))
t2=$((now - 10))
# announce BROKER BASEURL DIR EPOCH: v03 announcements of every file of $T/list, as found in DIR,
# with pubTime EPOCH.
announce() {
    local rel pubtime
    pubtime=$(date -u -d "@$4" +%Y%m%dT%H%M%S.000)
    while IFS= read -r rel; do
        pub "$1" "$(topic_of "$rel")" "$(printf '{"pubTime": "%s", "baseUrl": "%s", "relPath": "%s", "size": %d, "integrity": {"method": "sha512", "value": "%s"}}' \
            "$pubtime" "$2" "$rel" "$(stat -c %s "$3/$rel")" "$(checksum_b64 sha512 "$3/$rel")")"
    done <"$T/list"
}

announce up1 "$(base_url SLOW)" "$old" "$t1"
# Admitted: its downloads have started, and nothing is stored yet.
wait_until 20 metric_is P1 wmesh_messages_received_total "$N" ||
    fail "P1 received $(metric P1 wmesh_messages_received_total) of $N announcements"
announce up2 "$(base_url FAST)" "$new" "$t2"
wait_until 20 metric_is P2 wmesh_downloads_total "$N" ||
    fail "P2 stored $(metric P2 wmesh_downloads_total) of $N files of version 2"
# The set-up, not the code under test: every version-1 commit must come after version 2's.
p1_done=$(grep -cE ' (downloaded|rejected|duplicate) ' "$T/P1.log" || true)
[ "$p1_done" -eq 0 ] || fail "set-up: P1 finished $p1_done version-1 files before P2 stored version 2"
note "P2 stored and announced version 2 of $N files while P1 was still fetching version 1"

p1_finished() {
    [ "$(grep -cE ' (downloaded|rejected|duplicate|failed) ' "$T/P1.log" || true)" -ge "$N" ]
}
wait_until 90 p1_finished || fail "P1 did not finish the $N version-1 files: $(counters P1)"
settle P1 P2
stale=$(metric P1 'wmesh_rejected_total{reason="stale"}')
note "P1's version-1 commits came after: $(metric P1 wmesh_downloads_total) stored, $stale refused as older"

# The tree holds version 2 of every file, bytes and pubTime (the mtime).
wrong=0
while IFS= read -r rel; do
    if ! cmp -s "$new/$rel" "$shared/$rel"; then
        wrong=$((wrong + 1))
        cmp -s "$old/$rel" "$shared/$rel" && note "the tree holds version 1 of $rel"
    elif [ "$(stat -c %Y "$shared/$rel")" -ne "$t2" ]; then
        fail "$rel has version 2's bytes but the mtime $(stat -c %Y "$shared/$rel"), not $t2"
    fi
done <"$T/list"

# What the home broker carried, per file, in order: version 1 must never come, in particular not
# after version 2.
v1_announced=0
v1_after_v2=0
v2_announced=0
while IFS= read -r rel; do
    v1=$(checksum_b64 sha512 "$old/$rel")
    v2=$(checksum_b64 sha512 "$new/$rel")
    seq=$(observed obs | grep -F "\"$rel\"" | awk -v v1="$v1" -v v2="$v2" '
        index($0, v1) { printf "1" } index($0, v2) { printf "2" }')
    case $seq in *1*) v1_announced=$((v1_announced + 1)) ;; esac
    case $seq in *2*1*) v1_after_v2=$((v1_after_v2 + 1)) ;; esac
    case $seq in 2) v2_announced=$((v2_announced + 1)) ;; esac
done <"$T/list"
note "home carried: version 1 of $v1_announced files ($v1_after_v2 after version 2), version 2 alone of $v2_announced"
[ "$wrong" -eq 0 ] || fail "the tree holds version 2 of only $((N - wrong)) of $N files"
[ "$v1_after_v2" -eq 0 ] || fail "version 1 was announced after version 2 for $v1_after_v2 files"
[ "$v1_announced" -eq 0 ] || fail "version 1 was announced for $v1_announced files"
[ "$v2_announced" -eq "$N" ] || fail "version 2 was announced once for $v2_announced of $N files"

# P1 refused each version 1 at its commit, in one log line, counted as stale, announced nothing.
[ "$stale" -eq "$N" ] || fail "P1 counted $stale stale rejections, expected $N: $(counters P1)"
metrics_are P1 0 wmesh_downloads_total wmesh_published_total
[ "$(grep -c 'rejected older than the version held' "$T/P1.log")" -eq "$N" ] ||
    fail "P1 did not log one 'rejected older than the version held' line per file"
metrics_are P1 0 wmesh_journal_live
metrics_are P2 0 wmesh_journal_live
note "the tree holds version 2 of all $N files; version 1 was refused at its commit and never announced"

# Version 3, the same bytes from both servers, to both processes: P1 admits it first (the tree
# holds the older version 2) and fetches it slowly, P2 stores it meanwhile. P1's commit then
# finds the very same version there: a duplicate, not announced a second time.
v3=$T/v3
while IFS= read -r rel; do
    mkdir -p "$(dirname "$v3/$rel")"
    head -c $((2048 + RANDOM % 1024)) /dev/urandom >"$v3/$rel"
done <"$T/list"
start_badhttpd SLOW3 "$v3" "$T/faults"
start_serve FAST3 "$v3"
t3=$((now - 5))
dups=$(metric P1 wmesh_duplicates_total)
announce up1 "$(base_url SLOW3)" "$v3" "$t3"
wait_until 20 metric_is P1 wmesh_messages_received_total $((2 * N)) ||
    fail "P1 received $(metric P1 wmesh_messages_received_total) of $((2 * N)) announcements"
announce up2 "$(base_url FAST3)" "$v3" "$t3"
wait_until 20 metric_is P2 wmesh_downloads_total $((2 * N)) ||
    fail "P2 stored $(metric P2 wmesh_downloads_total) of $N files of version 3"
wait_until 60 metric_is P1 wmesh_duplicates_total $((dups + N)) ||
    fail "P1 found $(($(metric P1 wmesh_duplicates_total) - dups)) of $N files of version 3 stored: $(counters P1)"
settle P1 P2
same_files "$v3" "$shared" "$T/list" || fail "the tree does not hold version 3 of every file"
[ "$(grep -c 'duplicate .* (stored meanwhile)' "$T/P1.log")" -eq "$N" ] ||
    fail "P1 did not log one 'duplicate ... (stored meanwhile)' line per file"
metrics_are P1 0 wmesh_downloads_total wmesh_published_total wmesh_journal_live
v3_announced=0
while IFS= read -r rel; do
    n=$(observed obs | grep -cF "$(checksum_b64 sha512 "$v3/$rel")" || true)
    [ "$n" -eq 1 ] && v3_announced=$((v3_announced + 1))
done <"$T/list"
[ "$v3_announced" -eq "$N" ] || fail "version 3 was announced once for $v3_announced of $N files"
[ -z "$(tmp_leftovers "$shared")" ] || fail "temporary files left: $(tmp_leftovers "$shared")"
note "version 3 stored by P2 while P1 fetched it too: $N duplicates at P1's commit, each file announced once"
