#!/bin/bash
# 32-bad-upstream.sh: files served by badhttpd that answers 500, truncates, stalls or sends wrong
# bytes, small files and large ones (hashed on the peer's hasher thread). While the faults last no
# wrong byte is ever stored and the peer keeps retrying; once they clear every file arrives. Files also announced through a second, healthy upstream arrive from
# it while the first one stays broken.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

require_peer_options --retry-for --stall-timeout
start_broker up
start_broker up2
start_broker home
# stall-timeout 4 s: a stalled transfer is cut quickly, so the test sees several attempts.
mesh_peer P home up up2 -- --retry-for 150 --stall-timeout 4 --connect-timeout 3
tree=$(tree_of P)
origin=$T/origin
faults=$T/faults
day=$(date -u +%Y%m%d)

# mk LIST KIND N TAG [SIZE]: N files named KIND_*TAG* under origin; relPaths appended to LIST.
mk() {
    local list=$1 kind=$2 n=$3 tag=$4 size=${5:-} i rel
    mkdir -p "$origin/$day/WIS/BAD"
    for ((i = 1; i <= n; i++)); do
        rel=$day/WIS/BAD/${kind}_LFPW_${day:6:2}0000___$tag$i.bin
        head -c "${size:-$((RANDOM % 40000 + 20000))}" /dev/urandom >"$origin/$rel"
        echo "$rel" >>"$list"
    done
}
: >"$T/one.list"
mk "$T/one.list" E500 2 a
mk "$T/one.list" TRUN 2 a
mk "$T/one.list" STAL 2 a
mk "$T/one.list" WRNG 2 a
mk "$T/one.list" SLOW 1 a 3000
mk "$T/one.list" GOOD 1 a
# Large ones, announced without their size: past 4 MiB their hashing goes to the hasher's
# thread, which a cut or stalled transfer (half of 9 MiB) ends early and wrong bytes fail.
mk "$T/one.list" TRUN 1 big $((9 << 20))
mk "$T/one.list" STAL 1 big $((9 << 20))
mk "$T/one.list" WRNG 1 big $((9 << 20))
cat >"$faults" <<'EOF'
*/E500_* 500
*/TRUN_* truncate
*/STAL_* stall
*/WRNG_* wrong
*/SLOW_* slow
EOF
start_badhttpd BAD "$origin" "$faults"

announce() { # announce BROKER BASEURL LIST
    local rel
    while IFS= read -r rel; do
        pub "$1" "$(topic_of "$rel")" "$(v03_msg "$2" "$rel" sha512 \
            "$(checksum_b64 sha512 "$origin/$rel")")"
    done <"$3"
}

# tree_good LIST: every file of LIST the peer holds has the origin's bytes; fails the test at
# once otherwise. Also: nothing but those files in the tree.
tree_good() {
    local rel extra
    while IFS= read -r rel; do
        if [ -e "$tree/$rel" ] && ! cmp -s "$origin/$rel" "$tree/$rel"; then
            fail "$rel is stored with wrong bytes ($(stat -c %s "$tree/$rel") of $(stat -c %s "$origin/$rel"))"
        fi
    done <"$1"
    extra=$(extra_files "$tree" "$1")
    [ -z "$extra" ] || fail "the tree holds unexpected entries: $extra"
}

# requests REL: how many times badhttpd was asked for REL.
requests() {
    grep -cF "GET /data/$1 " "$T/BAD.log" || true
}

# faulted_twice LIST: every faulted file of LIST was asked for at least twice (retried); checks
# the tree on every turn.
faulted_twice() {
    local rel
    tree_good "$T/all.list"
    while IFS= read -r rel; do
        case $rel in */SLOW_* | */GOOD_*) continue ;; esac
        [ "$(requests "$rel")" -ge 2 ] || return 1
    done <"$1"
}

# --- Case 1: one broken upstream, faults cleared later -------------------------------------
cp "$T/one.list" "$T/all.list"
announce up "$(base_url BAD)" "$T/one.list"
note "announced $(wc -l <"$T/one.list") files served by badhttpd (500, truncate, stall, wrong, slow, ok)"
wait_until 90 faulted_twice "$T/one.list" || fail "badhttpd was not asked twice for every faulted file"
while IFS= read -r rel; do
    [ ! -e "$tree/$rel" ] || fail "$rel stored while its upstream is broken"
done < <(grep -E '/(E500|TRUN|STAL|WRNG)_' "$T/one.list")
wait_until 30 test -f "$tree/$(grep /GOOD_ "$T/one.list")" || fail "the healthy file did not arrive"
wait_until 30 test -f "$tree/$(grep /SLOW_ "$T/one.list")" || fail "the slow file did not arrive"
tree_good "$T/all.list"
alive P
note "faults on: every faulted file asked for >= 2 times, none stored; requests:" \
    "$(while IFS= read -r r; do printf '%s=%s ' "${r##*/}" "$(requests "$r")"; done <"$T/one.list")"
note "integrity failures $(metric P wmesh_integrity_failures_total)," \
    "download errors $(metric P wmesh_download_errors_total), retries $(metric P wmesh_retries_total)"
[ "$(metric P wmesh_integrity_failures_total)" -ge 2 ] || fail "wrong bytes were not counted"

: >"$faults"
cleared=$SECONDS
note "faults cleared"
wait_until 100 all_present "$tree" "$T/one.list" ||
    fail "P holds $(count_present "$tree" "$T/one.list") of $(wc -l <"$T/one.list") once the faults cleared"
same_files "$origin" "$tree" "$T/one.list" || fail "a file differs once the faults cleared"
note "every file arrived $((SECONDS - cleared)) s after the faults cleared"

# --- Case 2: the same files also come from a healthy upstream ------------------------------
: >"$T/two.list"
mk "$T/two.list" E500 1 b
mk "$T/two.list" TRUN 1 b
mk "$T/two.list" STAL 1 b
mk "$T/two.list" WRNG 1 b
: >"$T/three.list"
mk "$T/three.list" E500 1 c
mk "$T/three.list" TRUN 1 c
mk "$T/three.list" STAL 1 c
mk "$T/three.list" WRNG 1 c
cat "$T/one.list" "$T/two.list" "$T/three.list" >"$T/all.list"
cat >"$faults" <<'EOF'
*/E500_* 500
*/TRUN_* truncate
*/STAL_* stall
*/WRNG_* wrong
EOF
copy=$T/copy
cp -a "$origin" "$copy"
start_serve S2 "$copy"
started=$SECONDS
# two: the broken upstream first; the healthy one only once each file failed there.
announce up "$(base_url BAD)" "$T/two.list"
asked_once() {
    local rel
    tree_good "$T/all.list"
    while IFS= read -r rel; do
        [ "$(requests "$rel")" -ge 1 ] || return 1
    done <"$1"
}
wait_until 30 asked_once "$T/two.list" || fail "badhttpd was not asked for the files of case 2"
announce up2 "$(base_url S2)" "$T/two.list"
# three: both upstreams at once.
announce up "$(base_url BAD)" "$T/three.list"
announce up2 "$(base_url S2)" "$T/three.list"
cat "$T/two.list" "$T/three.list" >"$T/23.list"
all_good_present() {
    tree_good "$T/all.list"
    all_present "$tree" "$T/23.list"
}
wait_until 60 all_good_present ||
    fail "with a healthy second upstream, P holds $(count_present "$tree" "$T/23.list") of 8 files"
same_files "$copy" "$tree" "$T/23.list" || fail "a file from the second upstream differs"
note "with faults still on, 8 files arrived through the healthy upstream in $((SECONDS - started)) s"

settle P
tree_good "$T/all.list"
once_each P downloaded
left=$(tmp_leftovers "$tree")
[ -z "$left" ] || fail "temporary files left: $left"
alive P
note "final: $(counters P); integrity failures $(metric P wmesh_integrity_failures_total)," \
    "retries $(metric P wmesh_retries_total)"
