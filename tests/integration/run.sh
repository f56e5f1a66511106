#!/bin/sh
# run.sh: runs the integration tests (all, or those named: "10", "10-chain" or a path), each
# under a timeout, and prints PASS/FAIL/SKIP per test and a final tally. VERBOSE=1 streams output.
# A test that exits 77 (lib.sh's skip) could not run here, for the reason it printed: it is
# counted as skipped, neither passed nor failed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
: "${WMESH:=$here/../../build/wmesh}"
: "${TEST_TIMEOUT:=300}"
export WMESH

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

list=$(mktemp "${TMPDIR:-/tmp}/wmesh-run.XXXXXX")
out=$(mktemp "${TMPDIR:-/tmp}/wmesh-run-out.XXXXXX")
pid=""
# Stops the running test (its own trap cleans up) and removes our files.
on_signal() {
    [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true
    [ -z "$pid" ] || wait "$pid" 2>/dev/null || true
    rm -f "$list" "$out"
    exit 130
}
trap on_signal INT TERM
trap 'rm -f "$list" "$out"' EXIT

if [ $# -eq 0 ]; then
    for t in "$here"/[0-9][0-9]-*.sh; do
        echo "$t"
    done >"$list"
else
    for a in "$@"; do
        resolve "$a"
    done >"$list"
fi

passed=0
failed=0
skipped=0
failures=""
skips=""
while IFS= read -r t; do
    name=$(basename "$t" .sh)
    start=$(date +%s)
    # timeout runs the test in its own process group; "wait" lets the trap above interrupt it.
    if [ "${VERBOSE:-}" = 1 ]; then
        timeout -k 15 "$TEST_TIMEOUT" bash "$t" </dev/null &
    else
        timeout -k 15 "$TEST_TIMEOUT" bash "$t" </dev/null >"$out" 2>&1 &
    fi
    pid=$!
    rc=0
    wait "$pid" || rc=$?
    pid=""
    secs=$(($(date +%s) - start))
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
done <"$list"

[ -z "$skips" ] || printf 'skipped:%s\n' "$skips"
[ -z "$failures" ] || printf 'failed:%s\n' "$failures"
printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ]
