#!/bin/sh
# run.sh: runs the benchmarks (all, or those named: relay latency large memory serve wan gb gc),
# then prints a line of machine facts and one summary line per scenario. A poor figure is
# reported, not failed; the exit status is non-zero only when a scenario could not run.
#   WMESH=build/wmesh BENCH_SCALE=full|small sh bench/run.sh [SCENARIO...]   (or: make bench)
set -eu

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
: "${WMESH:=$BENCH_DIR/../build/wmesh}"
: "${WMESH_BENCH_TOOLS:=$BENCH_DIR/../build/bench}"
: "${WMESH_TOOLS:=$BENCH_DIR/../build/tools}"
: "${BENCH_SCALE:=full}"
ALL="relay latency large memory serve wan gb gc"
scenarios=${*:-$ALL}

scripts=""
for s in $scenarios; do
    f=""
    for candidate in "$BENCH_DIR"/[0-9][0-9]-"$s".sh; do
        [ -f "$candidate" ] && f=$candidate
    done
    if [ -z "$f" ]; then
        echo "bench: no scenario '$s' (have: $ALL)" >&2
        exit 2
    fi
    scripts="$scripts $f"
done
[ -x "$WMESH" ] || {
    echo "bench: no wmesh binary at $WMESH (make _all builds it)" >&2
    exit 2
}

out=$(mktemp -d "${TMPDIR:-/tmp}/wmesh-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT
# One binary throughout, even if build/ is rebuilt meanwhile.
cp "$WMESH" "$out/wmesh"
WMESH=$out/wmesh
export WMESH WMESH_BENCH_TOOLS WMESH_TOOLS BENCH_SCALE

version() {
    "$@" 2>&1 | head -n 1 | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -n 1 || true
}
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
rev=$(git -C "$BENCH_DIR/.." describe --always --dirty 2>/dev/null || echo unknown)
machine="bench machine: nproc=$(nproc) cpu=\"$cpu\" kernel=$(uname -r)\
 mosquitto=$(version mosquitto -h) nginx=$(version nginx -v) curl=$(version curl --version)\
 wrk=$(version wrk -v) load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) wmesh=$rev\
 scale=$BENCH_SCALE"
echo "$machine"

failed=""
for f in $scripts; do
    name=$(basename "$f" .sh)
    echo "== $name"
    # The scenario's details as they come; its exit status through a file (no pipefail in sh).
    {
        rc=0
        bash "$f" 2>&1 || rc=$?
        echo "$rc" >"$out/$name.rc"
    } | tee "$out/$name.out"
    rc=$(cat "$out/$name.rc")
    if [ "$rc" -ne 0 ]; then
        failed="$failed ${name#[0-9][0-9]-}"
        echo "bench ${name#[0-9][0-9]-}: could not run (exit $rc)" >>"$out/$name.out"
    fi
done

echo
echo "$machine"
for f in $scripts; do
    grep -h '^bench ' "$out/$(basename "$f" .sh).out" || true
done
if [ -n "$failed" ]; then
    echo "bench: could not run:$failed" >&2
    exit 1
fi
