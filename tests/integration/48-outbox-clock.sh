#!/bin/bash
# 48-outbox-clock.sh: files stored but not announced before a SIGKILL are announced after the
# restart whatever the wall clock says. 37-resent's scenario, twice: the peer stores 20 files
# while its journal fails (no PUBACK leaves) and its post broker is down, and is SIGKILLed; its
# next process, which gets the 20 messages again flagged DUP, runs with the wall clock stepped
# (libfaketime) 10 minutes behind in round 1 and 10 minutes ahead in round 2, and must announce
# every one of them, none downloaded again.
# The announcements' pubTimes are 8 minutes old (their `wmesh post` runs with its clock 8 minutes
# behind), so that neither clock refuses them: 2 minutes "in the future" for the clock behind
# (the peer refuses more than 5), 18 minutes late for the clock ahead (it drops after 2 hours).
# The monotonic clock and the times of files on disk are left alone, as an NTP step leaves them.
# CLOCKS="+10m" runs the rounds named (one per offset, in order).
# Issue 15, 5: whether a held file needed its announcement was decided by comparing its ctime
# with the process's start on the wall clock: 0 of 20 announced with the clock behind.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

FAKETIME_LIB=
for f in /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 \
    /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/*/faketime/libfaketime.so.1; do
    [ -f "$f" ] && FAKETIME_LIB=$f && break
done
[ -n "$FAKETIME_LIB" ] || skip "libfaketime is not installed (sh scripts/deps.sh --extra)"
use_failio_shim
require_peer_options --state-dir
start_broker up
start_broker home
origin=$T/origin
start_serve S "$origin"

WMESH_FAILIO_DIR=$T/Q/state WMESH_FAILIO_SWITCH=$T/state.on WMESH_FAILIO_ERRNO=ENOSPC \
    WMESH_FAILIO_LOG=$T/shim-state.txt LD_PRELOAD=$SHIM mesh_peer Q home up
remember_argv Q
cp "$T/Q/environ" "$T/Q/environ.real"
tree=$(tree_of Q)

# with_clock OFFSET: Q's next start runs with its wall clock moved by OFFSET (libfaketime's
# FAKETIME, e.g. -10m); "real": no faking. As after an NTP step, the monotonic clock and the
# times of files already on disk (what stat(2) says) are left alone.
with_clock() {
    if [ "$1" = real ]; then
        cp "$T/Q/environ.real" "$T/Q/environ"
        return
    fi
    {
        tr '\0' '\n' <"$T/Q/environ.real" | grep -v '^LD_PRELOAD=' | tr '\n' '\0'
        printf 'LD_PRELOAD=%s %s\0FAKETIME=%s\0%s\0%s\0' "$SHIM" "$FAKETIME_LIB" "$1" \
            FAKETIME_DONT_FAKE_MONOTONIC=1 NO_FAKE_STAT=1
    } >"$T/Q/environ"
}

# clock_skew NAME: seconds between the time on NAME's last log line and now (negative: behind).
clock_skew() {
    local stamp
    stamp=$(tail -n 1 "$T/$1.log" | cut -d' ' -f1)
    echo $(($(date -u -d "${stamp%.*}" +%s) - $(date -u +%s)))
}

announced() { # announced OBS LIST: how many relPaths of LIST the observer saw
    local rel n=0
    while IFS= read -r rel; do
        observed_has "$1" "$rel" && n=$((n + 1))
    done <"$2"
    echo "$n"
}
metric_is_at_least() {
    [ "$(metric "$1" "$2")" -ge "$3" ]
}
announced_all() {
    [ "$(announced "$1" "$2")" -eq "$(wc -l <"$2")" ]
}

# round N OFFSET: 20 files stored unannounced, SIGKILL, a restart with the clock at OFFSET.
round() {
    local n=$1 offset=$2 list=$T/list$1 skew downloaded
    make_files "$origin" 20 "r$n" >"$list"
    # The fault starts once Q is up: a peer may refuse to start on a state dir it cannot write.
    touch "$T/state.on"
    stop_broker home
    LD_PRELOAD=$FAKETIME_LIB FAKETIME=-8m FAKETIME_DONT_FAKE_MONOTONIC=1 \
        post_files up "$(base_url S)" "$origin" "$list"
    wait_until 60 all_present "$tree" "$list" ||
        fail "Q stored $(count_present "$tree" "$list") of 20 files while its journal failed"
    same_files "$origin" "$tree" "$list" || fail "a file Q stored differs from the origin's"
    grep -q "journal sync failed" "$T/Q.log" || fail "Q never logged its failing journal"
    kill_peer Q KILL
    note "$n: Q stored 20 files with its journal failing and its post broker down; killed"

    rm "$T/state.on"
    start_broker_again home
    start_observer "obs$n" home
    with_clock "$offset"
    restart_peer Q
    skew=$(clock_skew Q)
    note "$n: Q restarted with FAKETIME=$offset: its log's clock is $skew s off"
    case $offset in
    -10m) [ "$skew" -le -540 ] && [ "$skew" -ge -660 ] ;;
    +10m) [ "$skew" -ge 540 ] && [ "$skew" -le 660 ] ;;
    esac || fail "Q's clock is $skew s off, not $offset: libfaketime did not take"
    wait_until 30 metric_is_at_least Q wmesh_resent_total 20 ||
        fail "Q's upstream broker resent $(metric Q wmesh_resent_total) of the 20 messages"
    wait_until 30 announced_all "obs$n" "$list" ||
        fail "with its clock at $offset Q announced $(announced "obs$n" "$list") of 20 held" \
            "files; it logged $(log_count Q duplicate) 'duplicate', $(log_count Q reannounced)" \
            "'reannounced' in all, and received $(metric Q wmesh_resent_total) resent messages"
    downloaded=$(log_count Q downloaded)
    [ "$downloaded" -eq $((20 * n)) ] || fail "Q downloaded $downloaded times for $((20 * n)) files"
    wait_until 30 metric_is Q wmesh_journal_live 0 ||
        fail "Q's journal holds $(metric Q wmesh_journal_live) entries"
    wait_until 30 metric_is Q wmesh_outbox_entries 0 ||
        fail "Q's outbox holds $(metric Q wmesh_outbox_entries) entries"
    alive Q
    note "$n: with the clock at $offset, Q announced all 20 held files, downloading none again"
}

# Round 2 stores with the real clock again, and restarts 10 minutes ahead.
n=0
for clock in ${CLOCKS:--10m +10m}; do
    if [ "$n" -gt 0 ]; then
        kill_peer Q TERM
        with_clock real
        restart_peer Q
    fi
    n=$((n + 1))
    round "$n" "$clock"
done
note "Q: $(counters Q)"
