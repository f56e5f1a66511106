#!/bin/bash
# 31-broker-restart.sh: A -> B -> C, and B's broker (persistence on) is stopped with SIGTERM and
# started again on the same port twice while files flow: B re-announces what it could not
# publish, C's persistent session keeps what was queued, and C ends with every file, once each.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

N=${N:-1500}
BATCH=${BATCH:-150}

chain_of_three

make_small_files "$(tree_of A)" "$N" r 8192 >"$T/list"
# Files keep flowing through both restarts.
start_posting "$T/list" "$BATCH" 0.5

c_has() {
    [ "$(log_count C downloaded)" -ge "$1" ]
}
b_has() {
    [ "$(log_count B downloaded)" -ge "$1" ]
}
down_enough() {
    b_has "$1" && [ "$SECONDS" -ge "$2" ]
}

RESTARTS=0
for at in 300 800; do
    wait_until 120 c_has "$at" || fail "C downloaded only $(log_count C downloaded) of $at"
    before_b=$(log_count B downloaded)
    stop_broker bB
    down_at=$SECONDS
    [ -s "$T/bB/db/mosquitto.db" ] || fail "bB saved no persistence file on SIGTERM"
    # B goes on downloading with its broker away, so announcements pile up at B: keep bB down
    # until B has 100 more files, and for at least 1 s the first time, 3 s the second.
    wait_until 20 down_enough $((before_b + 100)) $((down_at + 1 + 2 * RESTARTS)) ||
        note "B downloaded only $(($(log_count B downloaded) - before_b)) files while bB was down"
    start_broker_again bB
    RESTARTS=$((RESTARTS + 1))
    note "restart $RESTARTS of bB: down $((SECONDS - down_at)) s; C had $(log_count C downloaded)," \
        "B had $(log_count B downloaded) (+$(($(log_count B downloaded) - before_b)) while down)," \
        "A had posted $(cat "$T/posted")"
done

finish_posting
wait_until 180 all_present "$(tree_of C)" "$T/list" ||
    fail "C holds $(count_present "$(tree_of C)" "$T/list") of $N files after $RESTARTS broker restarts:
$(explain_missing "$(tree_of C)" "$T/list" A B C)"
settle A B C
same_files "$(tree_of A)" "$(tree_of C)" "$T/list" || fail "C: some file differs from A's"
same_files "$(tree_of A)" "$(tree_of B)" "$T/list" || fail "B: some file differs from A's"
for p in B C; do
    once_each "$p" downloaded
    left=$(tmp_leftovers "$(tree_of "$p")")
    [ -z "$left" ] || fail "$p holds temporary files: $(head -n 20 <<<"$left")"
    alive "$p"
done
[ "$(log_count C downloaded)" -eq "$N" ] || fail "C logged $(log_count C downloaded) downloads"
grep -q 'Restoring\|Saving in-memory database\|persistence' "$T/bB.log" ||
    note "(bB's log says nothing about its persistence file)"
note "C holds all $N files after $RESTARTS restarts of bB; counters $(counters B C | tr '\n' ';')"
