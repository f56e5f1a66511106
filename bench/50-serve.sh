#!/bin/bash
# 50-serve.sh: the embedded HTTP server, on the hot path of every download: requests per second
# for one 1 KiB file over keep-alive (wrk: 1 thread, 4 connections) from an idle peer, against
# nginx serving the same tree, then MiB/s for a 4 MiB file; and the peer's idle RSS.
# WMESH_OTHER=/path/to/wmesh adds the same figures for another build's peer (old against new).
# The machine's two cores are shared by wrk and the server: figures are for comparison only.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib_bench.sh"

command -v wrk >/dev/null || fail "wrk not found (sh scripts/deps.sh --extra installs it)"
DURATION=$(by_scale 10 3)
ROUNDS=$(by_scale 3 1)

start_broker up
start_broker down
# wrk_figure URL FIELD: one wrk run; FIELD is rps (requests/s) or mibps (transfer MiB/s).
wrk_figure() {
    wrk -t1 -c4 -d"${DURATION}s" "$1" >"$T/wrk.out" 2>&1 ||
        fail "wrk $1 failed: $(cat "$T/wrk.out")"
    grep -q 'Non-2xx' "$T/wrk.out" && fail "wrk $1 got errors: $(cat "$T/wrk.out")"
    if [ "$2" = rps ]; then
        awk '/^Requests\/sec/ { printf "%.0f\n", $2 }' "$T/wrk.out"
    else
        awk '/^Transfer\/sec/ { v = $2; u = substr(v, length(v) - 1); v += 0
            if (u == "GB") v *= 1024; else if (u == "KB") v /= 1024
            printf "%.0f\n", v }' "$T/wrk.out"
    fi
}

# measure NAME BASEURL: best of ROUNDS for the small and the large file.
measure() {
    local best=0 bestl=0 r v
    for ((r = 0; r < ROUNDS; r++)); do
        v=$(wrk_figure "$2/bench/one.bin" rps)
        [ "$v" -gt "$best" ] && best=$v
        v=$(wrk_figure "$2/bench/four.bin" mibps)
        [ "$v" -gt "$bestl" ] && bestl=$v
    done
    detail "$1: 1 KiB file $best requests/s, 4 MiB file $bestl MiB/s" \
        "(best of $ROUNDS x ${DURATION} s)"
    eval "${1}_rps=$best ${1}_mibps=$bestl"
}

# serve_peer NAME: a peer of the binary $WMESH holding the two files, idle for 2 s.
serve_peer() {
    mesh_peer "$1" down up -- "${PEER_ARGS[@]}"
    wait_connected "$1" 1
    wait_until 10 age_over "$(pid_of "$1")" 2 || fail "peer $1 did not live 2 s"
    mkdir -p "$(tree_of "$1")/bench"
    head -c 1024 /dev/urandom >"$(tree_of "$1")/bench/one.bin"
    head -c $((4 << 20)) /dev/urandom >"$(tree_of "$1")/bench/four.bin"
    detail "peer $1 ($WMESH) idle: VmRSS $(kib "$(pid_of "$1")" VmRSS) KiB"
    eval "${1}_rss=$(kib "$(pid_of "$1")" VmRSS)"
}

serve_peer P
start_nginx N "$(tree_of P)"
measure P "$(base_url P)"
measure N "$(nginx_url N)"
# shellcheck disable=SC2154 # set by eval in serve_peer and measure
line="rps=$P_rps nginx_rps=$N_rps mibps=$P_mibps nginx_mibps=$N_mibps idle_rss_kib=$P_rss"
if [ -n "${WMESH_OTHER:-}" ]; then
    WMESH=$WMESH_OTHER serve_peer O
    measure O "$(base_url O)"
    # shellcheck disable=SC2154
    line="$line other_rps=$O_rps other_mibps=$O_mibps other_idle_rss_kib=$O_rss"
fi
summary serve "$line"
