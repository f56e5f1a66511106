#!/bin/bash
# run.sh: runs the integration tests (all, or those named: "10", "10-chain" or a path), each
# under a timeout, and prints PASS/FAIL/SKIP per test as it ends, then a final tally.
# TEST_JOBS=N runs up to N tests at once (default 1). Each job slot gets its own share of the
# ports (TEST_PORT_SLOT, read by lib.sh's free_port). A test with the header line
# "# run.sh: alone" runs with no other test beside it. VERBOSE=1 streams the output of one test
# at a time. A test that exits 77 (lib.sh's skip) could not run here, for the reason it printed:
# it is counted as skipped, neither passed nor failed.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@" # `sh run.sh` works too
set -eu

here=$(cd "$(dirname "$0")" && pwd)
: "${WMESH:=$here/../../build/wmesh}"
: "${TEST_TIMEOUT:=300}"
: "${TEST_JOBS:=1}"
export WMESH

case $TEST_JOBS in
'' | *[!0-9]* | 0* | ???*)
    echo "run.sh: TEST_JOBS must be a number from 1 to 99, not '$TEST_JOBS'" >&2
    exit 2
    ;;
esac
# Streamed output from two tests would interleave.
[ "${VERBOSE:-}" != 1 ] || TEST_JOBS=1

# The tests of 10 s or more, longest first (seconds, one at a time on 2 cores: 62 50 47 34 32
# 27 27 25 20 19 18 15 13 13 13 12 10 10). With TEST_JOBS > 1 they start first, so that the
# jobs end at about the same time.
LONGEST="45-outbox-kill 46-outbox-memory 47-outbox-refusals 32-bad-upstream 56-wis2-cache
    19-rabbitmq 50-client-cert 38-share-versions 39-tls-broker-gone 54-slow-dns 30-kill
    31-broker-restart 33-disk-full 34-hostile 58-catchup 59-deb 10-chain 36-credentials-tls"

# Prints the test scripts matching one argument.
resolve() {
    if [ -f "$1" ]; then
        echo "$1"
        return
    fi
    for t in "$here/$1" "$here/$1.sh" "$here/$1"-*.sh; do
        if [ -f "$t" ]; then
            echo "$t"
            return
        fi
    done
    echo "run.sh: no test named $1" >&2
    return 1
}

# True when test $1 says in its header (the comment lines at its top) that it runs alone.
alone() {
    awk '/^# run\.sh: alone/ { found = 1; exit } !/^#/ { exit } END { exit !found }' "$1"
}

# rank TEST: where a test starts with TEST_JOBS > 1: those that run alone first (nothing to wait
# for then), then the longest, longest first, then the others in their order.
rank() {
    local name i=1 n
    name=$(basename "$1" .sh)
    if alone "$1"; then
        echo 0
        return
    fi
    for n in $LONGEST; do
        if [ "$n" = "$name" ]; then
            echo "$i"
            return
        fi
        i=$((i + 1))
    done
    echo 1000
}

work=$(mktemp -d "${TMPDIR:-/tmp}/wmesh-run.XXXXXX")
declare -A slot_of=() # pid of each running test's timeout -> its job slot
# Stops the running tests (each test's own trap cleans up) and removes our files.
on_signal() {
    local pid
    for pid in "${!slot_of[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${!slot_of[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
    exit 130
}
trap on_signal INT TERM
trap 'rm -rf "$work"' EXIT

tests=()
if [ $# -eq 0 ]; then
    for t in "$here"/[0-9][0-9]-*.sh; do
        tests+=("$t")
    done
else
    for a in "$@"; do
        t=$(resolve "$a")
        tests+=("$t")
    done
fi
if [ "$TEST_JOBS" -gt 1 ] && [ ${#tests[@]} -gt 1 ]; then
    i=0
    for t in "${tests[@]}"; do
        i=$((i + 1))
        printf '%s %s %s\n' "$(rank "$t")" "$i" "$t"
    done | sort -n -k1,1 -k2,2 | cut -d' ' -f3- >"$work/order"
    mapfile -t tests <"$work/order"
fi

passed=0
failed=0
skipped=0
failures=""
skips=""
slot_test=() # per job slot (1..TEST_JOBS): the test it runs, "" when free
slot_start=()
for ((s = 1; s <= TEST_JOBS; s++)); do
    slot_test[s]=""
done

# start_test SLOT TEST: runs TEST in the background, its output in $work/SLOT.out.
start_test() {
    local slot=$1 t=$2
    slot_test[slot]=$t
    slot_start[slot]=$(date +%s)
    # timeout runs the test in its own process group; the main loop's "wait" lets the trap above
    # interrupt it.
    if [ "${VERBOSE:-}" = 1 ]; then
        TEST_PORT_SLOT=$slot/$TEST_JOBS timeout -k 15 "$TEST_TIMEOUT" bash "$t" </dev/null &
    else
        TEST_PORT_SLOT=$slot/$TEST_JOBS timeout -k 15 "$TEST_TIMEOUT" bash "$t" </dev/null \
            >"$work/$slot.out" 2>&1 &
    fi
    slot_of[$!]=$slot
}

# report SLOT RC: the line of the test that ran in SLOT and ended with status RC.
report() {
    local slot=$1 rc=$2 name secs why out=$work/$1.out
    name=$(basename "${slot_test[slot]}" .sh)
    secs=$(($(date +%s) - slot_start[slot]))
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        printf 'PASS %s (%ss)\n' "$name" "$secs"
    elif [ "$rc" -eq 77 ]; then
        skipped=$((skipped + 1))
        skips="$skips $name"
        why=""
        [ "${VERBOSE:-}" = 1 ] || why=$(sed -n 's/^.*: SKIP: //p' "$out" | head -n 1)
        printf 'SKIP %s (%ss)%s\n' "$name" "$secs" "${why:+: $why}"
    else
        failed=$((failed + 1))
        failures="$failures $name"
        [ "$rc" -eq 124 ] && why="timed out after ${TEST_TIMEOUT}s" || why="exit $rc"
        [ "${VERBOSE:-}" = 1 ] || sed 's/^/    /' "$out"
        printf 'FAIL %s (%s, %ss)\n' "$name" "$why" "$secs"
    fi
    slot_test[slot]=""
}

next=0
alone_running=0
while [ "$next" -lt ${#tests[@]} ] || [ ${#slot_of[@]} -gt 0 ]; do
    # Start what may start: up to TEST_JOBS tests, none beside one that runs alone.
    while [ "$next" -lt ${#tests[@]} ] && [ ${#slot_of[@]} -lt "$TEST_JOBS" ] &&
        [ "$alone_running" -eq 0 ]; do
        t=${tests[next]}
        if [ "$TEST_JOBS" -gt 1 ] && alone "$t"; then
            [ ${#slot_of[@]} -eq 0 ] || break
            alone_running=1
        fi
        for ((s = 1; s <= TEST_JOBS; s++)); do
            [ -n "${slot_test[s]}" ] || break
        done
        start_test "$s" "$t"
        next=$((next + 1))
    done
    # The first test to end, whichever it is.
    pid=""
    rc=0
    wait -n -p pid "${!slot_of[@]}" || rc=$?
    slot=${slot_of[$pid]}
    unset "slot_of[$pid]"
    alone_running=0
    report "$slot" "$rc"
done

[ -z "$skips" ] || printf 'skipped:%s\n' "$skips"
[ -z "$failures" ] || printf 'failed:%s\n' "$failures"
printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ]
