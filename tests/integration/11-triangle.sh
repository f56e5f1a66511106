#!/bin/bash
# 11-triangle.sh: three peers, each subscribed to the other two; files injected at two of them
# reach all three, each downloaded once per peer, and duplicates are suppressed.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

N1=${N1:-120}
N2=${N2:-80}
for b in bA bB bC; do
    start_broker "$b"
done
mesh_peer A bA bB bC
mesh_peer B bB bA bC
mesh_peer C bC bA bB
for b in bA bB bC; do
    start_observer "o$b" "$b"
done

make_files "$(tree_of A)" "$N1" a >"$T/a.list"
make_files "$(tree_of B)" "$N2" b >"$T/b.list"
cat "$T/a.list" "$T/b.list" >"$T/all.list"
post_files bA "$(base_url A)" "$(tree_of A)" "$T/a.list" &
track "$!"
post_files bB "$(base_url B)" "$(tree_of B)" "$T/b.list"
wait "$!" || fail "posting at A failed"
note "posted $N1 files at A and $N2 at B"

for p in A B C; do
    wait_until 120 all_present "$(tree_of "$p")" "$T/all.list" ||
        fail "$p holds $(count_present "$(tree_of "$p")" "$T/all.list") of $((N1 + N2)) files"
done
for p in B C; do
    same_files "$(tree_of A)" "$(tree_of "$p")" "$T/a.list" || fail "$p: a file from A differs"
done
for p in A C; do
    same_files "$(tree_of B)" "$(tree_of "$p")" "$T/b.list" || fail "$p: a file from B differs"
done
note "every peer holds all $((N1 + N2)) files with identical bytes"

settle A B C
# expect PEER FILES: the peer obtained exactly FILES files, once each, and re-announced each once.
expect() {
    local got received dups
    got=$(($(metric "$1" wmesh_downloads_total) + $(metric "$1" wmesh_inlined_total)))
    [ "$got" -eq "$2" ] || fail "$1 obtained $got files, expected $2"
    [ "$(metric "$1" wmesh_published_total)" -eq "$2" ] ||
        fail "$1 published $(metric "$1" wmesh_published_total), expected $2"
    dups=$(metric "$1" wmesh_duplicates_total)
    [ "$dups" -gt 0 ] || fail "$1 suppressed no duplicates"
    received=$(metric "$1" wmesh_messages_received_total)
    [ "$received" -eq $((got + dups)) ] ||
        fail "$1 received $received messages but obtained $got and dropped $dups duplicates"
    once_each "$1" downloaded
    once_each "$1" inlined
    [ "$(logged "$1" downloaded | wc -l)" -eq "$(metric "$1" wmesh_downloads_total)" ] ||
        fail "$1 logged $(logged "$1" downloaded | wc -l) downloads"
    [ -z "$(logged "$1" failed)" ] || fail "$1 logged failures"
    alive "$1"
}
expect A "$N2"
expect B "$N1"
expect C $((N1 + N2))
note "downloads per peer = files it did not originate: $(counters A B C | tr '\n' ';')"

for b in bA bB bC; do
    n=$(observed "o$b" | wc -l)
    [ "$n" -eq $((N1 + N2)) ] || fail "broker $b carried $n announcements, expected $((N1 + N2))"
done
