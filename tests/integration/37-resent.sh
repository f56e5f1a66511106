#!/bin/bash
# 37-resent.sh: a peer stores and announces a file without waiting for its journal record to be
# durable, so a message its broker sends again (DUP) may be for a file an earlier process stored
# and never announced.
#  1. The peer stores 20 files it can neither journal (its state dir fails every write and
#     sync, so no PUBACK leaves) nor announce (its own broker is down), and is killed. Its next
#     process gets the 20 messages again, flagged DUP, finds the files held and announces every
#     one: none is dropped as a duplicate, none is downloaded again.
#  2. The same process stores and announces 10 more while its journal fails; its upstream
#     broker restarts and sends them again, flagged DUP: files it stored itself are duplicates,
#     announced once only.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

use_failio_shim
require_peer_options --state-dir
start_broker up
start_broker home
origin=$T/origin
make_files "$origin" 20 >"$T/list"
start_serve S "$origin"

WMESH_FAILIO_DIR=$T/Q/state WMESH_FAILIO_SWITCH=$T/state.on WMESH_FAILIO_ERRNO=ENOSPC \
    WMESH_FAILIO_LOG=$T/shim-state.txt LD_PRELOAD=$SHIM mesh_peer Q home up
remember_argv Q
tree=$(tree_of Q)
# The fault starts once Q is up: a peer may refuse to start on a state dir it cannot write.
touch "$T/state.on"
stop_broker home
post_files up "$(base_url S)" "$origin" "$T/list"
wait_until 60 all_present "$tree" "$T/list" ||
    fail "Q stored $(count_present "$tree" "$T/list") of 20 files while its journal failed"
same_files "$origin" "$tree" "$T/list" || fail "a file Q stored differs from the origin's"
grep -q "journal sync failed" "$T/Q.log" || fail "Q never logged its failing journal"
kill_peer Q KILL
note "Q stored all 20 files with its journal failing and its broker down, and was killed"

rm "$T/state.on"
start_broker_again home
start_observer obs home
restart_peer Q
announced_all() {
    local rel
    while IFS= read -r rel; do
        observed_has obs "$rel" || return 1
    done <"$T/list"
}
wait_until 60 announced_all || fail "Q's next process announced only some files:
$(observed obs | head -n 40)"
reannounced=$(log_count Q reannounced)
[ "$reannounced" -eq 20 ] || fail "Q re-announced $reannounced of 20 held files"
metric_is Q wmesh_reannounced_total 20 || fail "wmesh_reannounced_total is $(metric Q wmesh_reannounced_total)"
[ "$(metric Q wmesh_resent_total)" -ge 20 ] || fail "Q counted $(metric Q wmesh_resent_total) resent of 20"
downloaded=$(log_count Q downloaded)
[ "$downloaded" -eq 20 ] || fail "Q downloaded $downloaded times for 20 files (once each)"
grep -q "^.*duplicate " "$T/Q.log" && fail "Q dropped a resent announcement as a duplicate"
wait_until 30 metric_is Q wmesh_journal_live 0 || fail "Q's journal holds $(metric Q wmesh_journal_live) entries"
alive Q
note "1: Q's next process re-announced all 20 held files from the resent messages"

# --- 2 -------------------------------------------------------------------------------------
make_files "$origin" 10 second >"$T/list2"
touch "$T/state.on"
post_files up "$(base_url S)" "$origin" "$T/list2"
announced_list2() {
    local rel
    while IFS= read -r rel; do
        observed_has obs "$rel" || return 1
    done <"$T/list2"
}
wait_until 60 announced_list2 || fail "Q did not announce the second batch with its journal failing"
duplicates=$(metric Q wmesh_duplicates_total)
resent=$(metric Q wmesh_resent_total)
restart_broker up
more_duplicates() {
    [ "$(metric Q wmesh_duplicates_total)" -ge $((duplicates + 10)) ] &&
        [ "$(metric Q wmesh_resent_total)" -ge $((resent + 10)) ]
}
wait_until 60 more_duplicates ||
    fail "Q counted $(($(metric Q wmesh_duplicates_total) - duplicates)) duplicates and" \
        "$(($(metric Q wmesh_resent_total) - resent)) resent of the 10 sent again"
rm "$T/state.on"
wait_until 30 metric_is Q wmesh_journal_live 0 || fail "Q's journal holds $(metric Q wmesh_journal_live) entries"
settle Q
while IFS= read -r rel; do
    n=$(observed obs | grep -cF "\"$rel\"")
    [ "$n" -eq 1 ] || fail "$rel was announced $n times on home"
done <"$T/list2"
metric_is Q wmesh_reannounced_total 20 || fail "Q re-announced a file it stored itself"
alive Q
note "2: the 10 files resent after the upstream broker restarted were duplicates, announced once"
note "Q: $(counters Q)"
