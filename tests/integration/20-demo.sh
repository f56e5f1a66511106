#!/bin/bash
# 20-demo.sh: `wmesh demo` succeeds with a table, and cleans up everything on Ctrl-C.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

# processes_under DIR: pids whose command line mentions DIR.
processes_under() {
    local f cmd
    for f in /proc/[0-9]*/cmdline; do
        cmd=$(tr '\0' ' ' <"$f" 2>/dev/null) || continue
        case $cmd in *"$1"*) basename "$(dirname "$f")" ;; esac
    done
}

TMPDIR=$T "$WMESH" demo --files "${FILES:-60}" >"$T/demo.out" 2>"$T/demo.log" ||
    { cat "$T/demo.out" >&2; fail "wmesh demo failed"; }
cat "$T/demo.out" >&2
grep -q '^demo: OK' "$T/demo.out" || fail "no OK line"
for p in AWZZ BWAC CWAP; do
    grep -Eq "^$p +[0-9]+/[0-9]+ +[0-9]+ +[0-9]+ +[0-9.]+ +[0-9.]+\$" "$T/demo.out" ||
        fail "no table row for $p"
done
for d in "$T"/wmesh-demo.*; do
    [ ! -e "$d" ] || fail "the demo left $d behind"
done

# Ctrl-C while files flow: every process goes, and the directory too.
TMPDIR=$T "$WMESH" demo --files 3000 >"$T/int.out" 2>"$T/int.log" &
demo=$!
track "$demo"
wait_until 30 grep -q '^demo: peers' "$T/int.out" || fail "the second demo did not start its peers"
root=$(sed -n 's/^demo: working in \([^ ]*\) .*/\1/p' "$T/int.out")
[ -d "${root:-/nonexistent}" ] || fail "no working directory announced"
[ -n "$(processes_under "$root")" ] || fail "no process runs under $root"
kill -INT "$demo"
wait_until 15 sh -c "! kill -0 $demo 2>/dev/null" || fail "demo still running 15 s after SIGINT"
rc=0
wait "$demo" || rc=$?
[ "$rc" -ne 0 ] || fail "an interrupted demo exited 0"
left=$(processes_under "$root")
[ -z "$left" ] || fail "left running after Ctrl-C: $(for p in $left; do tr '\0' ' ' <"/proc/$p/cmdline"; echo; done)"
[ ! -e "$root" ] || fail "$root left behind after Ctrl-C"
note "Ctrl-C: exit $rc, no process left, $root removed"
