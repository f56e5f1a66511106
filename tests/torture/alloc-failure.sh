#!/bin/bash
# alloc-failure.sh: allocation failure is a path like any other. A relay B (A -> B -> C) built
# with tests/torture/failalloc.c (`make torture` builds it and runs this) first runs once
# recording every allocation site it reaches; then, for every site in turn (or a seeded sample),
# a fresh B runs the same relay with that one site failing once. Each run must end with no
# crash and no sanitizer report (leaks included), and with nothing lost: B announces every file
# of its journal and every file posted meanwhile without a restart, and C holds the posted ones
# with A's bytes. One line per site: offset, file:line, outcome.
#
# Each run starts from the same state: a copy of a tree and state dir that B left with live
# journal entries (files it could not download yet, and files stored but not announced because
# its post broker was down), so the journal's replay and the outbox's are exercised too; then
# live files are posted at A (v03 with and without inline content, WIS2 notification messages,
# one of 4 MiB), B downloading or inlining them.
#
# Environment (make torture passes them on):
#   TORTURE_NTH="1 mid"    which call of each site fails, one case per site and mode: a number
#                          K (the K-th call), or mid (the middle call of the record run, for
#                          sites called 3 times or more); default both
#   TORTURE_SAMPLE=all|N   every case (default), or N cases drawn with TORTURE_SEED
#   TORTURE_SEED=S         the draw's seed (default: the time; printed, to repeat a run)
#   TORTURE_SITES="0x.."   these sites only (offsets as printed)
#   TORTURE_FILES=N        live files posted per run (default 16), TORTURE_DEADLINE=S how long
#                          a run waits for them (default 20 s: downloads retry after 1, 2, 4 s;
#                          half as long after a restart)
#   TORTURE_RESTART_OK=1   a run whose files arrive only after B is restarted passes (default:
#                          it fails: a live peer would not have delivered them)
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/lib_faults.sh"

SAMPLE=${TORTURE_SAMPLE:-all}
SEED=${TORTURE_SEED:-$(date +%s)}
NTH=${TORTURE_NTH:-1 mid}
NFILES=${TORTURE_FILES:-16}
DEADLINE=${TORTURE_DEADLINE:-20}
NREPLAY=6  # intake entries B journaled and could not download before it stopped
NPENDING=6 # outbox entries B journaled and could not announce before it stopped

nm "$WMESH" 2>/dev/null | grep -q '__wrap_malloc' ||
    fail "$WMESH is not built with tests/torture/failalloc.c (make torture builds build/torture)"
# Leaks are errors; a report ends the process (ASan's default exit code for leaks is 23).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=0"

for b in bA bB bC; do
    start_broker "$b"
done
mesh_peer A bA
mesh_peer C bC bB
echo '* 500' >"$T/faults"
start_badhttpd S "$(tree_of A)" "$T/faults"
mkdir -p "$T/B" "$T/runs"
B_PORT=$(free_port)
echo "$B_PORT" >"$T/B/http_port"
B_CLIENT=torture-B-$$

# start_b DIR [VAR=VALUE...]: B on DIR/tree and DIR/state (client id and HTTP port always the
# same), stderr appended to DIR/B.log; returns once it has started (logged "peer up" and
# answers), or 1 when it exited before.
start_b() {
    local dir=$1 ups
    shift
    mkdir -p "$dir/tree" "$dir/state"
    touch "$dir/B.log"
    ups=$(grep -c ' peer up: ' "$dir/B.log" || true)
    env "$@" "$WMESH" peer --name B --dir "$dir/tree" --state-dir "$dir/state" \
        --client-id "$B_CLIENT" --post-broker "$(broker_url bB owner)" \
        --post-base-url "http://127.0.0.1:$B_PORT/data" --http-listen "127.0.0.1:$B_PORT" \
        --broker "$(broker_url bA guest)" --inline 1024 --lag-warn 0 --lag-drop 0 --retention 7d \
        2>>"$dir/B.log" &
    B_PID=$!
    track "$B_PID"
    echo "$B_PID" >"$T/B/pid"
    wait_until 30 up_or_gone "$B_PID" "$dir/B.log" "$ups" ||
        fail "B neither started nor exited in 30 s"
    ! gone "$B_PID"
}

# up_or_gone PID LOG N: the process has exited, or LOG has more than N "peer up" lines and B
# answers.
up_or_gone() {
    gone "$1" || { [ "$(grep -c ' peer up: ' "$2")" -gt "$3" ] && metrics_ready B; }
}

# end_b: stops B with SIGTERM if it still runs; B_RC gets its exit status.
end_b() {
    B_RC=0
    if ! gone "$B_PID"; then
        kill -TERM "$B_PID" 2>/dev/null || true
        wait_until 60 gone "$B_PID" || kill -KILL "$B_PID" 2>/dev/null || true
    fi
    wait "$B_PID" 2>/dev/null || B_RC=$?
    untrack "$B_PID"
}

# announced_all LIST OFFSET: bB's observer saw, past byte OFFSET, an announcement of every
# relPath of LIST (B is the only publisher on bB).
announced_all() {
    [ "$(tail -c +$(($2 + 1)) "$T/oB.msgs" | sed 's#\\/#/#g' | grep -oF -f "$1" | sort -u |
        wc -l)" -eq "$(wc -l <"$1")" ]
}

# arrived DIR OFFSET: everything of the run in DIR has arrived.
arrived() {
    announced_all "$1/all.list" "$2" && all_present "$(tree_of C)" "$1/live.list"
}

# ---------------------------------------------------------------------------------------------
# The state every run starts from: B with live journal entries of both kinds, stopped.

tpl=$T/template
start_b "$tpl" || fail "B did not start: $(tail -n 20 "$tpl/B.log")"
make_files "$(tree_of A)" "$NREPLAY" rp >"$T/replay.list"
post_files bA "$(base_url S)" "$(tree_of A)" "$T/replay.list"
wait_until 30 metric_is B wmesh_journal_live "$NREPLAY" ||
    fail "B did not journal the $NREPLAY files it cannot download: $(counters B)"
stop_broker bB
make_files "$(tree_of A)" "$NPENDING" pd >"$T/pending.list"
post_files bA "$(base_url A)" "$(tree_of A)" "$T/pending.list"
wait_until 30 all_present "$tpl/tree" "$T/pending.list" || fail "B did not store the files"
wait_until 30 metric_is B wmesh_journal_live $((NREPLAY + NPENDING)) ||
    fail "B's journal does not hold $((NREPLAY + NPENDING)) entries: $(counters B)"
end_b
[ "$B_RC" -eq 0 ] || fail "B exited with status $B_RC: $(tail -n 30 "$tpl/B.log")"
! grep -qE 'Sanitizer|runtime error:' "$tpl/B.log" || fail "sanitizer: $(cat "$tpl/B.log")"
start_broker_again bB
echo '* ok' >"$T/faults"
start_observer oB bB
cat "$T/replay.list" "$T/pending.list" >"$T/journaled.list"
note "template: B stopped with $NREPLAY entries to download and $NPENDING to announce"

# 4 MiB and more are hashed on B's hasher thread: one such file per run.
head -c $((4 * 1024 * 1024 + 5)) /dev/urandom >"$T/big"

# run_once NAME [VAR=VALUE...]: one run from the template; sets OUTCOME (ok, or why not) and
# RESTARTED, and leaves B's log in $T/runs/NAME/B.log.
run_once() {
    local name=$1 dir=$T/runs/$1 off big
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    cp -a "$tpl/tree" "$tpl/state" "$dir/"
    OUTCOME=ok
    RESTARTED=""
    off=$(stat -c %s "$T/oB.msgs")
    make_files "$(tree_of A)" "$NFILES" "$name-" >"$dir/live.list"
    big=$(sed -n '1s#/[^/]*$##p' "$dir/live.list")/BIG_$name.bin
    cp "$T/big" "$(tree_of A)/$big"
    echo "$big" >>"$dir/live.list"
    cat "$T/journaled.list" "$dir/live.list" >"$dir/all.list"
    # A third of them with inline content, a third as WIS2 notification messages, the rest
    # (and the large file) plain v03.
    sed -n "1,$((NFILES / 3))p" "$dir/live.list" >"$dir/inline.list"
    sed -n "$((NFILES / 3 + 1)),$((NFILES * 2 / 3))p" "$dir/live.list" >"$dir/wnm.list"
    sed -n "$((NFILES * 2 / 3 + 1)),\$p" "$dir/live.list" >"$dir/plain.list"
    if ! start_b "$dir" "$@"; then
        end_b
        RESTARTED="exited at start ($B_RC)"
        [ "$B_RC" -lt 128 ] || OUTCOME="crash at start (status $B_RC)"
        start_b "$dir" || { OUTCOME="B does not start again"; return; }
    fi
    post_files bA "$(base_url A)" "$(tree_of A)" "$dir/inline.list" --inline 1024
    post_files bA "$(base_url A)" "$(tree_of A)" "$dir/wnm.list" --post-format wnm
    post_files bA "$(base_url A)" "$(tree_of A)" "$dir/plain.list"
    curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$B_PORT/" || true # the status page
    if ! wait_until "$DEADLINE" arrived_or_gone "$dir" "$off"; then
        RESTARTED="${RESTARTED:+$RESTARTED; }restarted: $(missing "$dir" "$off") missing after ${DEADLINE} s"
        end_b
        [ "$B_RC" -eq 0 ] || RESTARTED="$RESTARTED, stopped with $B_RC"
        start_b "$dir" || { OUTCOME="B does not start again"; return; }
    elif gone "$B_PID"; then
        end_b
        RESTARTED="${RESTARTED:+$RESTARTED; }exited ($B_RC) while running"
        [ "$B_RC" -lt 128 ] || OUTCOME="crash (status $B_RC)"
        start_b "$dir" || { OUTCOME="B does not start again"; return; }
    fi
    # After a restart without the failure (if any), the rest comes in a second or two.
    if ! wait_until "$((DEADLINE / 2))" arrived "$dir" "$off"; then
        [ "$OUTCOME" != ok ] || OUTCOME="LOST: $(missing "$dir" "$off")"
    elif ! same_files "$(tree_of A)" "$(tree_of C)" "$dir/live.list" 2>/dev/null; then
        OUTCOME="C holds other bytes"
    fi
    end_b
    if grep -qE 'Sanitizer|runtime error:' "$dir/B.log"; then
        OUTCOME="sanitizer: $(grep -m1 -oE '(ERROR|WARNING): [A-Za-z]+Sanitizer: [^ ]+( [^ ]+)?|runtime error: .{0,60}' "$dir/B.log")"
    elif [ "$B_RC" -ne 0 ] && [ "$OUTCOME" = ok ]; then
        OUTCOME="exit status $B_RC after SIGTERM"
    fi
}

arrived_or_gone() {
    gone "$B_PID" || arrived "$1" "$2"
}

# missing DIR OFFSET: what has not arrived, in words.
missing() {
    local a c
    a=$(tail -c +$(($2 + 1)) "$T/oB.msgs" | sed 's#\\/#/#g' | grep -oF -f "$1/all.list" |
        sort -u | wc -l)
    c=$(count_present "$(tree_of C)" "$1/live.list")
    echo "$(($(wc -l <"$1/all.list") - a)) of $(wc -l <"$1/all.list") unannounced by B," \
        "$(($(wc -l <"$1/live.list") - c)) of $(wc -l <"$1/live.list") not at C"
}

# ---------------------------------------------------------------------------------------------
# The record run: which sites B reaches (and that the relay works without failures).

rec=$T/sites.rec
run_once record WMESH_FAILALLOC_RECORD="$rec"
if [ "$OUTCOME" != ok ] || [ -n "$RESTARTED" ]; then
    fail "the record run, without failures, did not pass: $OUTCOME $RESTARTED"
fi
awk '$1 == "site" { print $2 }' "$rec" | sort -u >"$T/sites.all"
total=$(wc -l <"$T/sites.all")
note "record run: B reached $total allocation sites"

# The cases: a site and which of its calls fails, for each mode of TORTURE_NTH (mid: the middle
# call of the record run, for sites called three times or more: a call in the thick of the
# relay rather than the first, often made while the journal is replayed).
calls_of() {
    awk -v s="$1" '$1 == "calls" && $2 == s { n = $3 } END { print n + 0 }' "$rec"
}
if [ -n "${TORTURE_SITES:-}" ]; then
    tr ' ' '\n' <<<"$TORTURE_SITES" | grep . >"$T/sites.all"
fi
for mode in $NTH; do
    while IFS= read -r site; do
        case $mode in
        mid)
            calls=$(calls_of "$site")
            [ "$calls" -ge 3 ] && echo "$site $(((calls + 1) / 2))"
            ;;
        *) echo "$site $mode" ;;
        esac
    done <"$T/sites.all"
done >"$T/cases.all"
if [ "$SAMPLE" = all ]; then
    cp "$T/cases.all" "$T/cases"
else
    awk -v seed="$SEED" 'BEGIN { srand(seed) } { print rand() "\t" $0 }' "$T/cases.all" |
        sort -n | head -n "$SAMPLE" | cut -f2 | sort >"$T/cases"
    note "a sample of $(wc -l <"$T/cases") of $(wc -l <"$T/cases.all") cases, seed $SEED" \
        "(TORTURE_SEED=$SEED repeats it)"
fi

# where SITE: file:line (function) of the call, innermost first.
where() {
    addr2line -e "$WMESH" -f -i -p "$(printf '0x%x' $(($1 - 1)))" 2>/dev/null | head -n 1 |
        sed -E 's# \(discriminator [0-9]+\)$##; s#^([^ ]+) at .*/((src|tests)/[^/]*)#\1 \2#' |
        awk '{ print $2 " (" $1 ")" }'
}

failed=0
n=0
ncases=$(wc -l <"$T/cases")
printf '%-10s %5s  %-46s %s\n' site call "file:line (function)" outcome >"$T/table"
while read -r site nth; do
    n=$((n + 1))
    name=$site-$nth
    run_once "$name" WMESH_FAILALLOC_SITE="$site" WMESH_FAILALLOC_NTH="$nth" \
        WMESH_FAILALLOC_STACK=1
    log=$T/runs/$name/B.log
    if ! grep -q '^failalloc: failing' "$log"; then
        result="not reached"
    else
        result=$OUTCOME
        if [ -n "$RESTARTED" ]; then
            case $RESTARTED in
            "exited at start"*) ;; # it said why and stopped: nothing was in its hands
            *) [ "${TORTURE_RESTART_OK:-}" = 1 ] || [ "$OUTCOME" != ok ] || result="needs a restart" ;;
            esac
            result="$result ($RESTARTED)"
        fi
    fi
    case $result in
    ok* | "not reached") ;;
    *)
        failed=$((failed + 1))
        cp -r "$T/runs/$name" "$T/failed-$name" 2>/dev/null || true
        ;;
    esac
    line=$(printf '%-10s %5s  %-46s %s' "$site" "$nth" "$(where "$site")" "$result")
    echo "$line" >>"$T/table"
    printf '%s: [%ss] %d/%d %s\n' "$TEST_NAME" "$SECONDS" "$n" "$ncases" "$line" >&2
    rm -rf "$T/runs/$name"
done <"$T/cases"

cat "$T/table" >&2
note "$n cases ($total sites), $failed failed$([ "$SAMPLE" = all ] || echo ", seed $SEED")"
if [ "$failed" -gt 0 ]; then
    for d in "$T"/failed-*; do
        printf '\n===== %s: B.log (failalloc line and the last 40 lines) =====\n' "${d##*/failed-}" >&2
        grep -A 12 '^failalloc: failing' "$d/B.log" >&2 || true
        tail -n 40 "$d/B.log" >&2
    done
    exit 1
fi
