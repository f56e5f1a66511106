#!/bin/bash
# meshtest.sh: a mesh of MESH_N hosts (network namespaces, one veth pair per edge), each with its
# own mosquitto and wmesh peer; measures convergence per topology and what each fault leaves.
# tests/mesh/README.md tells how to run it and what it prints. Needs root (ip netns, tc).
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib_mesh.sh"
TEST_NAME=meshtest

: "${MESH_N:=20}"
: "${MESH_TOPOLOGIES=chain ring random3 full}"
: "${MESH_FAULTS=linkcut brokerdown sessionlost latejoin drop}"
: "${MESH_FAULT_TOPOLOGY:=random3}"
: "${MESH_SEED:=$$}"
: "${MESHTEST_EXPECT_CATCHUP:=1}"
if [ "${MESH_QUICK:-0}" = 1 ]; then
    : "${MESH_FILES:=20}" "${MESH_FAULT_FILES:=10}" "${MESH_FAULT_DOWN_S:=5}"
    : "${MESH_FAULT_CUT_S:=3}" "${MESH_LATE_FILES:=50}" "${MESH_LATE_S:=5}"
    : "${MESH_RETURN_S:=10}" "${MESH_DROP_FILES:=50}" "${MESH_CONVERGE_S:=60}"
fi
: "${MESH_FILES:=100}"         # files per topology
: "${MESH_FAULT_FILES:=30}"    # files per batch in the fault phases
: "${MESH_FAULT_DOWN_S:=60}"   # how long the broker stays down
: "${MESH_FAULT_CUT_S:=20}"    # how long the link stays cut
: "${MESH_LATE_FILES:=500}"    # files posted before the late joiner comes
: "${MESH_LATE_S:=30}"         # what it must hold by then
: "${MESH_RETURN_S:=10}"       # what a returning / resumed peer must hold by then
: "${MESH_DROP_FILES:=100}"    # files posted while the peer behind dropping brokers is stopped
: "${MESH_DROP_QUEUE:=10}"     # max_queued_messages of the dropping brokers
: "${MESH_CONVERGE_S:=180}"    # longest wait for convergence before a phase fails
: "${MESH_OUT=}"               # a directory: each topology's edges and the summary, kept
MESH_HOSTS_LIVE=$MESH_N
RANDOM=$MESH_SEED
PASSED=0
FAILED=0
EXPECTED=0

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
if ! command -v ip >/dev/null || ! command -v tc >/dev/null; then
    skip "needs iproute2 (ip, tc)"
fi
[ -n "$MOSQUITTO" ] || skip "mosquitto not found (sh scripts/deps.sh installs it)"
[ "$MESH_N" -ge 2 ] || skip "MESH_N must be 2 or more"

mesh_cleanup() {
    local rc=$? pid
    trap - EXIT
    for pid in $PIDS; do
        kill -CONT "$pid" 2>/dev/null || true # a stopped peer would ignore SIGTERM
    done
    stop_all
    net_down
    set +e # cleanup takes the exit status from $?, which errexit would act on first
    (exit "$rc")
    cleanup
}
trap mesh_cleanup EXIT

# say LINE...: a summary line, printed and kept in $T/summary (and $MESH_OUT/summary.txt).
say() {
    printf '%s\n' "$*" | tee -a "$T/summary" ${MESH_OUT:+"$MESH_OUT/summary.txt"}
}

# die MSG: the harness itself could not go on (a broker or peer that did not start).
die() {
    local f
    printf 'meshtest: FAIL: %s\n' "$*" >&2
    for f in "$T"/h*.log "$T"/b*.log; do
        [ -f "$f" ] || continue
        printf '\n===== %s (last 20 lines) =====\n' "${f#"$T"/}" >&2
        tail -n 20 "$f" >&2
    done
    exit 1
}

now_ms() {
    date +%s%3N
}

secs_since() {
    awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'
}

# verdict must|catchup NAME OK TEXT: one result line; a catch-up fault counts only with
# MESHTEST_EXPECT_CATCHUP=1, else its failure is reported as expected.
verdict() {
    local kind=$1 name=$2 ok=$3
    shift 3
    if [ "$ok" = 1 ]; then
        say "meshtest $name: $*: PASS"
        PASSED=$((PASSED + 1))
    elif [ "$kind" = catchup ] && [ "$MESHTEST_EXPECT_CATCHUP" != 1 ]; then
        say "meshtest $name: $*: FAIL (expected: needs catch-up)"
        EXPECTED=$((EXPECTED + 1))
    else
        say "meshtest $name: $*: FAIL"
        FAILED=$((FAILED + 1))
    fi
}

hosts_list() {
    seq 1 "$1" | tr '\n' ' '
}

# total_received: the announcements received by every peer, to tell when the mesh is quiet.
total_received() {
    local i s=0
    for i in "${!PEER_PID[@]}"; do
        s=$((s + $(msum "$i" wmesh_messages_received_total)))
    done
    echo "$s"
}

quiet_1s() {
    local a
    a=$(total_received)
    sleep 1
    [ "$a" = "$(total_received)" ]
}

# phase_begin NAME EDGES_FILE: a fresh temp area for one mesh (the last one's files moved aside).
phase_begin() {
    local f
    PHASE=$1
    mkdir -p "$T/old"
    for f in "$T"/h* "$T"/b* "$T"/files "$T"/*.files "$T"/*.list "$T"/post.log "$T"/edges; do
        [ -e "$f" ] && mv "$f" "$T/old/$PHASE_PREV-${f##*/}"
    done
    PHASE_PREV=$PHASE
    : >"$T/files"
    cp "$2" "$T/edges"
    MESH_HOSTS_LIVE=$MESH_N
}
PHASE_PREV=none

# figures FILES HOST...: the propagation figures of FILES over HOSTs, as name=value pairs.
figures() {
    local f=$1 conv p50 p99 max hmean hmax smax n
    shift
    read -r conv p50 p99 max hmean hmax smax n <<<"$(propagation "$f" "$@")"
    echo "converge_s=$conv p50_ms=$p50 p99_ms=$p99 max_ms=$max hops_mean=$hmean" \
        "hops_max=$hmax shortest_max=$smax"
}

# ---------------------------------------------------------------------------------------------
# Topologies: files injected at random hosts, convergence, per-file costs

run_topology() {
    local t=$1 all ok=1 i recv=0 got=0 ident=no files start conv_s missing=""
    topology "$t" "$MESH_N" "$MESH_SEED" >"$T/topo.edges" || die "no topology $t"
    phase_begin "$t" "$T/topo.edges"
    # The graph the figures were measured on, for bench/meshsim --edges to simulate.
    [ -z "$MESH_OUT" ] || cp "$T/edges" "$MESH_OUT/$t.edges" || die "cannot write $MESH_OUT/$t.edges"
    all=$(hosts_list "$MESH_N")
    note "$t: $MESH_N hosts, $(wc -l <"$T/edges") edges"
    mesh_up "$MESH_N"
    start=$(now_ms)
    # shellcheck disable=SC2086 # host lists are words
    inject "$MESH_FILES" "t$t"
    files=$(wc -l <"$T/files")
    # shellcheck disable=SC2086
    if ! wait_until "$MESH_CONVERGE_S" all_hold "$T/files" $all; then
        ok=0
        for i in $all; do
            [ "$(held "$i" "$T/files")" -eq "$files" ] || missing="$missing h$i:$(held "$i" "$T/files")"
        done
    fi
    conv_s=$(secs_since "$start")
    wait_until 30 quiet_1s || note "$t: announcements still arriving after 30 s"
    for i in $all; do
        recv=$((recv + $(msum "$i" wmesh_messages_received_total)))
        got=$((got + $(msum "$i" wmesh_downloads_total wmesh_inlined_total)))
    done
    # shellcheck disable=SC2086
    identical "$T/files" $all && ident=yes
    # shellcheck disable=SC2086
    say "meshtest $t: n=$MESH_N edges=$(wc -l <"$T/edges") files=$files $(figures "$T/files" $all)" \
        "ann_per_file_peer=$(awk -v a="$recv" -v f="$files" -v n="$MESH_N" 'BEGIN { printf "%.2f", a / (f * n) }')" \
        "dl_per_file_peer=$(awk -v a="$got" -v f="$files" -v n="$MESH_N" 'BEGIN { printf "%.2f", a / (f * (n - 1)) }')" \
        "identical=$ident wall_s=$conv_s"
    [ "$got" -eq $((files * (MESH_N - 1))) ] || ok=0
    [ "$ident" = yes ] || ok=0
    verdict must "$t" "$ok" "every host holds all $files files, each obtained once per peer${missing:+; short:$missing}"
    mesh_down
}

# ---------------------------------------------------------------------------------------------
# Faults, each on a fresh mesh of MESH_FAULT_TOPOLOGY

fault_mesh() {
    topology "$MESH_FAULT_TOPOLOGY" "$MESH_N" "$MESH_SEED" >"$T/topo.edges"
    phase_begin "$1" "$T/topo.edges"
    note "fault $1 on $MESH_FAULT_TOPOLOGY"
}

random_host() {
    echo $((RANDOM % MESH_N + 1))
}

# converge NAME FILES HOST...: waits for HOSTs to hold FILES or dies; warm-up batches only.
converge() {
    local name=$1 f=$2
    shift 2
    wait_until "$MESH_CONVERGE_S" all_hold "$f" "$@" || die "$name: the mesh did not converge before the fault"
}

# short FILES HOST...: " hI:held/want" for each HOST that lacks some file.
short() {
    local f=$1 want h out=""
    shift
    want=$(wc -l <"$f")
    for h in "$@"; do
        [ "$(held "$h" "$f")" -eq "$want" ] || out="$out h$h:$(held "$h" "$f")/$want"
    done
    echo "$out"
}

# live NAME HOST WHEN EXCLUDE...: 5 files posted now (not at EXCLUDE) must reach HOST.
live() {
    local name=$1 h=$2 when=$3 t0 ok=0
    shift 3
    t0=$(now_ms)
    inject 5 "${name}live" "$@"
    wait_until 60 all_hold "$T/${name}live.files" "$h" && ok=1
    verdict must "fault-$name-live" "$ok" "h$h got $(held "$h" "$T/${name}live.files")/5 files" \
        "posted after $when, in $(secs_since "$t0")s"
}

fault_linkcut() {
    local all a b ok=0 t0 s line at_restore
    fault_mesh linkcut
    all=$(hosts_list "$MESH_N")
    mesh_up "$MESH_N"
    inject "$MESH_FAULT_FILES" c1
    # shellcheck disable=SC2086
    converge linkcut "$T/c1.files" $all
    line=$((RANDOM % $(wc -l <"$T/edges") + 1))
    read -r a b < <(sed -n "${line}p" "$T/edges")
    link_cut "$a" "$b"
    note "linkcut: edge h$a-h$b cut for $MESH_FAULT_CUT_S s"
    inject "$MESH_FAULT_FILES" c2
    sleep "$MESH_FAULT_CUT_S" # the fault's duration, not a wait for readiness
    # shellcheck disable=SC2086
    at_restore=$(short "$T/c2.files" $all)
    link_restore "$a" "$b"
    t0=$(now_ms)
    inject "$MESH_FAULT_FILES" c3
    # shellcheck disable=SC2086
    wait_until "$MESH_CONVERGE_S" all_hold "$T/files" $all && identical "$T/files" $all && ok=1
    s=$(secs_since "$t0")
    # Both ends' links over the edge must be up again (not only the files come round).
    wait_until 60 peer_linked "$a" && wait_until 60 peer_linked "$b" || ok=0
    # shellcheck disable=SC2086
    say "meshtest fault-linkcut: n=$MESH_N files=$(wc -l <"$T/files") $(figures "$T/files" $all)"
    # shellcheck disable=SC2086
    verdict must fault-linkcut "$ok" "edge h$a-h$b cut ${MESH_FAULT_CUT_S}s" \
        "(short at restore:${at_restore:- none}); $(($(wc -l <"$T/files")))" \
        "files on all $MESH_N hosts, identical, ${s}s after restore; links over it up$(short "$T/files" $all)"
    mesh_down
}

fault_brokerdown() {
    local all k ok=0 t0 s
    fault_mesh brokerdown
    all=$(hosts_list "$MESH_N")
    k=$(random_host)
    mesh_up "$MESH_N"
    inject "$MESH_FAULT_FILES" d1
    # shellcheck disable=SC2086
    converge brokerdown "$T/d1.files" $all
    broker_stop "$k"
    note "brokerdown: broker of h$k down for $MESH_FAULT_DOWN_S s"
    inject "$MESH_FAULT_FILES" d2 "$k"
    sleep "$MESH_FAULT_DOWN_S" # the fault's duration
    broker_start "$k"
    wait_until 20 broker_up "$k" || die "broker of h$k did not restart"
    t0=$(now_ms)
    inject "$MESH_FAULT_FILES" d3
    # shellcheck disable=SC2086
    wait_until "$MESH_CONVERGE_S" all_hold "$T/files" $all && identical "$T/files" $all && ok=1
    s=$(secs_since "$t0")
    # shellcheck disable=SC2086
    say "meshtest fault-brokerdown: n=$MESH_N files=$(wc -l <"$T/files") $(figures "$T/files" $all)"
    # shellcheck disable=SC2086
    verdict must fault-brokerdown "$ok" "broker of h$k down ${MESH_FAULT_DOWN_S}s;" \
        "$(wc -l <"$T/files") files on all $MESH_N hosts, identical, ${s}s after its restart$(short "$T/files" $all)"
    mesh_down
}

fault_sessionlost() {
    local all others k tries=0 ok=0 got want t0
    fault_mesh sessionlost
    all=$(hosts_list "$MESH_N")
    # A host whose absence leaves the others connected: what it misses is then its own loss.
    k=$(random_host)
    while ! connected_without "$T/edges" "$k" "$MESH_N" && [ "$tries" -lt 100 ]; do
        k=$(random_host)
        tries=$((tries + 1))
    done
    others=$(hosts_list "$MESH_N" | tr ' ' '\n' | grep -vx "$k" | tr '\n' ' ')
    mesh_up "$MESH_N"
    inject "$MESH_FAULT_FILES" s1
    # shellcheck disable=SC2086
    converge sessionlost "$T/s1.files" $all
    peer_stop "$k"
    inject "$MESH_FAULT_FILES" s2 "$k"
    # shellcheck disable=SC2086
    wait_until "$MESH_CONVERGE_S" all_hold "$T/s2.files" $others ||
        verdict must fault-sessionlost-others 0 "the others did not get the files posted while h$k was away:$(short "$T/s2.files" $others)"
    # A new client id: its sessions on its upstream brokers, and what they queued, are lost.
    peer_start "$k" "mt-h$k-new"
    t0=$(now_ms)
    wait_until 30 peer_linked "$k" || die "h$k did not reconnect"
    wait_until "$MESH_RETURN_S" all_hold "$T/s2.files" "$k" && ok=1
    got=$(held "$k" "$T/s2.files")
    want=$(wc -l <"$T/s2.files")
    say "meshtest fault-sessionlost: n=$MESH_N files=$(wc -l <"$T/files") host=h$k missed_while_away=$want held_after_${MESH_RETURN_S}s=$got all_held_s=$([ "$ok" = 1 ] && secs_since "$t0" || echo -)"
    verdict catchup fault-sessionlost "$ok" "h$k (session lost while away): $got/$want files" \
        "missed while away, ${MESH_RETURN_S}s after its return"
    live sessionlost "$k" "its return" "$k"
    mesh_down
}

fault_latejoin() {
    local all j ok=0 got want x n=0 t0
    local -a pick=()
    fault_mesh latejoin
    all=$(hosts_list "$MESH_N")
    j=$((MESH_N + 1))
    # The joiner's edges: up to 3 distinct hosts of the mesh.
    while [ "${#pick[@]}" -lt 3 ] && [ "${#pick[@]}" -lt "$MESH_N" ] && [ "$n" -lt 1000 ]; do
        x=$(random_host)
        n=$((n + 1))
        case " ${pick[*]} " in *" $x "*) continue ;; esac
        pick+=("$x")
        echo "$x $j" >>"$T/edges"
    done
    # Its broker is up from the start (its neighbours read it); its peer comes after the files.
    MESH_PEERS=$MESH_N mesh_up "$j"
    inject "$MESH_LATE_FILES" l1
    # shellcheck disable=SC2086
    converge latejoin "$T/l1.files" $all
    t0=$(now_ms)
    peer_start "$j"
    wait_until 30 peer_linked "$j" || die "late joiner h$j did not connect"
    wait_until "$MESH_LATE_S" all_hold "$T/l1.files" "$j" && ok=1
    got=$(held "$j" "$T/l1.files")
    want=$(wc -l <"$T/l1.files")
    say "meshtest fault-latejoin: n=$j files=$want joiner=h$j neighbours=$(printf "h%s," "${pick[@]}" | sed "s/,$//") held_after_${MESH_LATE_S}s=$got all_held_s=$([ "$ok" = 1 ] && secs_since "$t0" || echo -)"
    verdict catchup fault-latejoin "$ok" "late joiner h$j (empty tree): $got/$want files after ${MESH_LATE_S}s"
    live latejoin "$j" "it joined"
    mesh_down
}

fault_drop() {
    local all others s ups ok=0 got want drops=0 u rest t0
    fault_mesh drop
    all=$(hosts_list "$MESH_N")
    s=$(random_host)
    ups=$(neighbours "$s" | tr '\n' ' ')
    ups=${ups% }
    others=$(hosts_list "$MESH_N" | tr ' ' '\n' | grep -vx "$s" | tr '\n' ' ')
    # Every broker that s reads keeps at most MESH_DROP_QUEUE messages for a stalled client. s
    # speaks MQTT 3.1.1: to an MQTT 5 client mosquitto allows the client's own receive maximum
    # in flight, not its max_inflight_messages, and would hold every message for it.
    MESH_V311=$s mesh_up "$MESH_N" "$ups"
    kill -STOP "${PEER_PID[$s]}"
    note "drop: h$s stopped; brokers of h${ups// /,h} keep $MESH_DROP_QUEUE messages"
    inject "$MESH_DROP_FILES" p1 "$s"
    # shellcheck disable=SC2086
    wait_until "$MESH_CONVERGE_S" all_hold "$T/p1.files" $others
    # shellcheck disable=SC2086
    rest=$(short "$T/p1.files" $others)
    kill -CONT "${PEER_PID[$s]}"
    t0=$(now_ms)
    wait_until "$MESH_RETURN_S" all_hold "$T/p1.files" "$s" && ok=1
    [ "$ok" = 1 ] && t0=$(secs_since "$t0") || t0=-
    got=$(held "$s" "$T/p1.files")
    want=$(wc -l <"$T/p1.files")
    for u in $ups; do
        grep -q 'dropped' "$T/b$u.log" 2>/dev/null && drops=$((drops + 1))
    done
    say "meshtest fault-drop: n=$MESH_N files=$want host=h$s upstreams=h${ups// /,h} max_queued=$MESH_DROP_QUEUE brokers_that_dropped=$drops held_after_${MESH_RETURN_S}s=$got all_held_s=$t0 others_short=${rest:-none}"
    verdict catchup fault-drop "$ok" "h$s behind dropping brokers: $got/$want files ${MESH_RETURN_S}s" \
        "after it resumed; other peers:${rest:- all complete}"
    live drop "$s" "it resumed" "$s"
    mesh_down
}

# ---------------------------------------------------------------------------------------------

if [ -n "$MESH_OUT" ]; then
    mkdir -p "$MESH_OUT" || die "cannot create MESH_OUT=$MESH_OUT"
    MESH_OUT=$(cd "$MESH_OUT" && pwd)
    : >"$MESH_OUT/summary.txt" || die "cannot write $MESH_OUT/summary.txt" # this run's lines only
fi
say "meshtest: n=$MESH_N seed=$MESH_SEED topologies=\"$MESH_TOPOLOGIES\" faults=\"$MESH_FAULTS\"" \
    "files=$MESH_FILES wmesh=$(git -C "$LIB_DIR" describe --always --dirty 2>/dev/null || echo '?')"
for t in $MESH_TOPOLOGIES; do
    run_topology "$t"
done
for f in $MESH_FAULTS; do
    case $f in
    linkcut | brokerdown | sessionlost | latejoin | drop) "fault_$f" ;;
    *) die "unknown fault $f (linkcut brokerdown sessionlost latejoin drop)" ;;
    esac
done

echo
echo "meshtest summary (seed $MESH_SEED):"
grep -v '^meshtest: n=' "$T/summary"
[ "$EXPECTED" -eq 0 ] || echo "meshtest: $EXPECTED expected failure(s): faults that need catch-up" \
    "(MESHTEST_EXPECT_CATCHUP=1 counts them)"
echo "meshtest: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
