#!/bin/bash
# 17-share.sh: three `wmesh peer` processes on one tree with --share split one upstream's
# announcements (MQTT 5 shared subscription): each file is downloaded once in all, every
# process does part of the work, and all files are announced once on the local broker.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

N=${N:-300}
start_broker up
start_broker home
start_serve S "$T/origin"
shared=$T/shared-tree
mkdir -p "$shared"
for i in 1 2 3; do
    # Each its own client id and state dir, one tree: the later --dir wins over mesh_peer's.
    mesh_peer "P$i" home up -- --share wmesh --instance "$i" --dir "$shared"
done
start_observer obs home
make_files "$T/origin" "$N" >"$T/list"
post_files up "$(base_url S)" "$T/origin" "$T/list"
wait_until 60 all_present "$shared" "$T/list" ||
    fail "the tree holds $(count_present "$shared" "$T/list") of $N files"
same_files "$T/origin" "$shared" "$T/list" || fail "some file differs"
settle P1 P2 P3
total=0
for i in 1 2 3; do
    d=$(metric "P$i" wmesh_downloads_total)
    [ "$d" -gt 0 ] || fail "P$i did no work: $(counters P1 P2 P3)"
    total=$((total + d))
done
[ "$total" -eq "$N" ] || fail "$total downloads for $N files: $(counters P1 P2 P3)"
wait_until 10 test "$(observed obs | wc -l)" -eq "$N" ||
    fail "home carried $(observed obs | wc -l) announcements, expected $N"
if [ -n "$(ls -A "$shared/.wmesh-tmp" 2>/dev/null)" ]; then
    fail "temporary files left: $(ls -A "$shared/.wmesh-tmp")"
fi
note "$N files split $(metric P1 wmesh_downloads_total)/$(metric P2 wmesh_downloads_total)/$(metric P3 wmesh_downloads_total), each downloaded once"
