#!/bin/bash
# 30-kill.sh: origin A -> relay B -> end C. 3000 small files flow while B is killed with SIGKILL
# five times at varied moments and restarted with the same state dir and client id: C ends with
# every file and the right bytes, no tree shows a partial or temporary file, and no peer logged
# 'downloaded' twice for one relPath (B's log spans all its lives).
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

N=${N:-3000}
BATCH=${BATCH:-250}
require_peer_options --state-dir

chain_of_three
remember_argv B

make_small_files "$(tree_of A)" "$N" k 4096 >"$T/list"
note "made $N files of 0..4096 bytes"

# The origin posts batch after batch in the background, at a pace that keeps files flowing
# through the whole kill sequence; $T/posted counts what has been announced so far.
start_posting "$T/list" "$BATCH" 0.7

downloaded_by() {
    log_count "$1" downloaded
}
at_least() {
    [ "$(downloaded_by B)" -ge "$1" ]
}

# kill_b LABEL: SIGKILL B now and report what it had in hand.
kill_b() {
    local depth live posted got
    depth=$(metric B wmesh_queue_depth 2>/dev/null || echo '?')
    live=$(metric B wmesh_journal_live 2>/dev/null || echo '?')
    posted=$(cat "$T/posted")
    kill_peer B KILL
    present_good "$(tree_of A)" "$(tree_of B)" || fail "after kill $((KILLS + 1)) B's tree holds a partial or wrong file"
    present_good "$(tree_of A)" "$(tree_of C)" || fail "after kill $((KILLS + 1)) C's tree holds a partial or wrong file"
    got=$(downloaded_by B)
    KILLS=$((KILLS + 1))
    note "kill $KILLS ($1): B had $depth announcements in flight ($live journaled, unfinished);" \
        "A had posted $posted, B had downloaded $got"
}

KILLS=0
# 1: early in the flow.
wait_until 90 at_least 150 || fail "B downloaded only $(downloaded_by B) files before kill 1"
kill_b "after 150 downloads"
sleep 0.5 # B stays down a while: its session on bA queues what it misses
restart_peer B
# 2: right after the restart, while it replays its journal and drains its session.
sleep 0.05
kill_b "0.05 s after restarting"
restart_peer B
# 3, 4, 5: at growing counts, after varied pauses.
for step in "900 0.3 0" "1600 0.9 1.5" "2300 0.1 0.2"; do
    read -r count pause down <<<"$step"
    wait_until 120 at_least "$count" || fail "B downloaded only $(downloaded_by B) of $count"
    sleep "$pause"
    kill_b "past $count downloads, +${pause}s"
    sleep "$down"
    restart_peer B
done
[ "$KILLS" -ge 4 ] || fail "only $KILLS kills"

finish_posting
note "A posted all $N files"

wait_until 120 all_present "$(tree_of C)" "$T/list" ||
    fail "C holds $(count_present "$(tree_of C)" "$T/list") of $N files:
$(explain_missing "$(tree_of C)" "$T/list" A B C)"
note "C holds all $N files"
settle A B C

for p in B C; do
    same_files "$(tree_of A)" "$(tree_of "$p")" "$T/list" || fail "$p: some file differs from A's"
done
for p in A B C; do
    extra=$(extra_files "$(tree_of "$p")" "$T/list")
    [ -z "$extra" ] || fail "$p holds entries that were never posted: $(head -n 20 <<<"$extra")"
    left=$(tmp_leftovers "$(tree_of "$p")")
    [ -z "$left" ] || fail "$p holds temporary files: $(head -n 20 <<<"$left")"
    once_each "$p" downloaded
    alive "$p"
done
note "B and C: every file with A's bytes, nothing extra, no temporary file left, no double download"
note "downloads logged: B $(downloaded_by B), C $(downloaded_by C);" \
    "B duplicates $(log_count B duplicate); counters now $(counters B C | tr '\n' ';')"
