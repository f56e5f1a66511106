#!/bin/bash
# 40-memory.sh: resident memory of an idle peer (connected to its upstream and downstream brokers,
# nothing to do, 2 s after its start), and the bytes per entry and time per operation of the
# seen-cache filled with 1 000 000 entries (bench/seen_bench.c).
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib_bench.sh"

ENTRIES=1000000

start_broker up
start_broker down
mesh_peer I down up -- "${PEER_ARGS[@]}"
wait_connected I 1
pid=$(pid_of I)
wait_until 10 age_over "$pid" 2 || fail "the peer did not live 2 s"
rss=$(kib "$pid" VmRSS)
hwm=$(kib "$pid" VmHWM)
detail "idle peer: VmRSS $rss KiB (anonymous $(kib "$pid" RssAnon), file $(kib "$pid" RssFile))," \
    "VmHWM $hwm KiB, $(awk '/^Threads:/ { print $2 }' \
    "/proc/$pid/status") threads, $(find "/proc/$pid/fd" -mindepth 1 | wc -l) open descriptors" \
    "(peer options: ${BENCH_PEER_ARGS:-defaults})"

# The same with no seen-cache, to tell the cache's share from the rest.
mesh_peer J down up -- "${PEER_ARGS[@]}" --seen-capacity 0
wait_connected J 1
wait_until 10 age_over "$(pid_of J)" 2 || fail "the peer did not live 2 s"
detail "idle peer with --seen-capacity 0: VmRSS $(kib "$(pid_of J)" VmRSS) KiB"

line=$("$WMESH_BENCH_TOOLS/seen_bench" "$ENTRIES") || fail "seen_bench failed"
detail "$line"
field() {
    echo "$line" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'
}
summary memory "idle_rss_kib=$rss idle_hwm_kib=$hwm seen_entries=$ENTRIES" \
    "seen_bytes_per_entry=$(field bytes_per_entry) seen_add_ns=$(field add_ns)" \
    "seen_hit_ns=$(field hit_ns)"
