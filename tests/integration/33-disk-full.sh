#!/bin/bash
# 33-disk-full.sh: writes fail (ENOSPC, then EIO) through an LD_PRELOAD shim. In the tree: nothing
# partial is ever visible, the peer stays up, and once space returns every file arrives. In the
# state dir (the journal): no announcement is lost, whether the peer keeps running until the
# fault clears or is killed while it lasts.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

use_failio_shim
require_peer_options --retry-for --state-dir
start_broker up
start_broker home
origin=$T/origin
make_files "$origin" 60 >"$T/all.list"
head -n 20 "$T/all.list" >"$T/tree1.list"
sed -n 21,40p "$T/all.list" >"$T/state1.list"
sed -n 41,60p "$T/all.list" >"$T/state2.list"
start_serve S "$origin"
printf "* 500\n" >"$T/faults"
start_badhttpd BAD "$origin" "$T/faults"
start_observer obs home

# no_partial DIR LIST: every file of LIST under DIR has the origin's bytes, nothing else is there.
no_partial() {
    local rel extra
    while IFS= read -r rel; do
        if [ -e "$1/$rel" ] && ! cmp -s "$origin/$rel" "$1/$rel"; then
            fail "$1/$rel holds $(stat -c %s "$1/$rel") bytes that are not the origin's"
        fi
    done <"$2"
    extra=$(extra_files "$1" "$2")
    [ -z "$extra" ] || fail "$1 holds unexpected entries: $extra"
}

shim_failures() { # shim_failures LOG: lines the shim wrote
    if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

# --- 1: the tree's disk is full (writes and syncs fail) ---------------------------------------
touch "$T/tree.on"
WMESH_FAILIO_DIR=$T/P/tree WMESH_FAILIO_SWITCH=$T/tree.on WMESH_FAILIO_ERRNO=ENOSPC \
    WMESH_FAILIO_LOG=$T/shim-tree.txt LD_PRELOAD=$SHIM mesh_peer P home up -- --retry-for 300
remember_argv P
tree=$(tree_of P)
post_files up "$(base_url S)" "$origin" "$T/tree1.list"
# Every file hit the fault at least once (a 0-byte file may never write: count those apart).
nonempty=$(while IFS= read -r rel; do [ -s "$origin/$rel" ] && echo "$rel"; done <"$T/tree1.list" | wc -l)
hit_all() {
    no_partial "$tree" "$T/tree1.list"
    alive P
    metrics_ready P || fail "P's /metrics does not answer while its disk is full"
    [ "$(cut -d' ' -f4 "$T/shim-tree.txt" 2>/dev/null | grep -c '^/')" -ge "$nonempty" ]
}
wait_until 60 hit_all || fail "the shim failed only $(shim_failures "$T/shim-tree.txt") writes"
# Keep the fault on a little longer: retries meet it again.
before=$(shim_failures "$T/shim-tree.txt")
more_failures() {
    no_partial "$tree" "$T/tree1.list"
    [ "$(shim_failures "$T/shim-tree.txt")" -gt "$before" ]
}
wait_until 60 more_failures || fail "P stopped retrying while its disk was full"
stored=$(count_present "$tree" "$T/tree1.list")
note "disk full: $(shim_failures "$T/shim-tree.txt") writes failed with ENOSPC; $stored of 20" \
    "files stored meanwhile (only empty ones can be), nothing partial; P alive"
alive P
rm "$T/tree.on"
cleared=$SECONDS
wait_until 90 all_present "$tree" "$T/tree1.list" ||
    fail "once space returned P holds $(count_present "$tree" "$T/tree1.list") of 20 files"
same_files "$origin" "$tree" "$T/tree1.list" || fail "a file differs once space returned"
note "space back: all 20 files arrived within $((SECONDS - cleared)) s"
# syncfs of the tree failed too: finished entries waited in the journal for a tree sync that
# works, and were recorded once it did.
grep -q "tree sync failed .*holding finished entries" "$T/P.log" || fail "no failed tree sync was logged"
wait_until 30 grep -q "tree sync works again" "$T/P.log" || fail "the tree sync never recovered"
wait_until 30 metric_is P wmesh_journal_live 0 || fail "P's journal holds $(metric P wmesh_journal_live) entries"
settle P
left=$(tmp_leftovers "$tree")
[ -z "$left" ] || fail "temporary files left: $left"
once_each P downloaded

# EIO on the tree, briefly, with the same peer: the same outcome.
kill_peer P TERM
sed -z -i "s/^WMESH_FAILIO_ERRNO=ENOSPC\$/WMESH_FAILIO_ERRNO=EIO/" "$T/P/environ"
touch "$T/tree.on"
restart_peer P
head -n 5 "$T/state2.list" >"$T/eio.list"
post_files up "$(base_url S)" "$origin" "$T/eio.list"
eio_hits() {
    no_partial "$tree" "$T/tree1.list"
    grep -q 'EIO$' "$T/shim-tree.txt"
}
wait_until 30 eio_hits || fail "the shim never failed a write with EIO"
rm "$T/tree.on"
wait_until 90 all_present "$tree" "$T/eio.list" || fail "after EIO, P holds $(count_present "$tree" "$T/eio.list") of 5"
same_files "$origin" "$tree" "$T/eio.list" || fail "a file differs after EIO"
note "EIO: $(grep -c 'EIO$' "$T/shim-tree.txt") writes failed; all 5 files arrived once it cleared"
stop_pid "$(pid_of P)"

# --- 2: the state dir's disk is full: journal writes and syncs fail ---------------------------
WMESH_FAILIO_DIR=$T/Q/state WMESH_FAILIO_SWITCH=$T/state.on WMESH_FAILIO_ERRNO=ENOSPC \
    WMESH_FAILIO_LOG=$T/shim-state.txt LD_PRELOAD=$SHIM mesh_peer Q home up -- --retry-for 300
remember_argv Q
# The fault starts once Q is up: a peer may refuse to start on a state dir it cannot write.
touch "$T/state.on"
qtree=$(tree_of Q)
# 2a: the fault clears while Q runs.
post_files up "$(base_url S)" "$origin" "$T/state1.list"
state_hit() {
    no_partial "$qtree" "$T/all.list"
    alive Q
    [ "$(shim_failures "$T/shim-state.txt")" -ge 3 ]
}
wait_until 30 state_hit || fail "the shim failed only $(shim_failures "$T/shim-state.txt") journal writes"
note "journal full: $(shim_failures "$T/shim-state.txt") writes failed; Q holds" \
    "$(count_present "$qtree" "$T/state1.list") of 20 meanwhile"
rm "$T/state.on"
wait_until 90 all_present "$qtree" "$T/state1.list" ||
    fail "once the journal could be written Q holds $(count_present "$qtree" "$T/state1.list") of 20"
same_files "$origin" "$qtree" "$T/state1.list" || fail "a file differs at Q"
note "2a: all 20 files arrived once the journal could be written"
# 2b: the fault lasts until Q is killed; Q restarts with space back and loses nothing. The files
# come from badhttpd answering 500 until then, so Q cannot have them before the kill: only the
# broker (unacknowledged messages) or the journal can bring them back.
touch "$T/state.on"
before=$(shim_failures "$T/shim-state.txt")
post_files up "$(base_url BAD)" "$origin" "$T/state2.list"
state_hit_again() {
    local rel
    no_partial "$qtree" "$T/all.list"
    [ "$(shim_failures "$T/shim-state.txt")" -ge $((before + 3)) ] || return 1
    while IFS= read -r rel; do
        grep -qF "GET /data/$rel " "$T/BAD.log" || return 1
    done <"$T/state2.list"
}
wait_until 30 state_hit_again || fail "the journal fault was not hit again"
held=$(count_present "$qtree" "$T/state2.list")
kill_peer Q KILL
rm "$T/state.on"
: >"$T/faults"
restart_peer Q
note "2b: Q killed while its journal was failing (it held $held of 20); restarted"
wait_until 90 all_present "$qtree" "$T/state2.list" ||
    fail "after the kill Q holds $(count_present "$qtree" "$T/state2.list") of 20"
same_files "$origin" "$qtree" "$T/state2.list" || fail "a file differs at Q after the kill"
settle Q
cat "$T/state1.list" "$T/state2.list" >"$T/q.list"
no_partial "$qtree" "$T/q.list"
left=$(tmp_leftovers "$qtree")
[ -z "$left" ] || fail "temporary files left at Q: $left"
alive Q
note "2b: all 20 files arrived after the restart; Q: $(counters Q)"
while IFS= read -r rel; do
    observed_has obs "$rel" || fail "$rel was never re-announced on home"
done <"$T/all.list"
note "every file was re-announced on the home broker"
