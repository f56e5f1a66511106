#!/bin/bash
# 10-relay.sh: relay throughput of one peer for 1 KiB files, and the machine's ceilings for the
# same work in the same run (broker alone, nginx alone). Two summary lines: relay, ceilings.
#
# N announcements wait on the upstream broker in the peer's persistent session; the peer is
# started and timed until all N re-announcements have reached the downstream broker.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib_bench.sh"

N=$(by_scale 20000 500)
SIZE=1024
WRK_SECONDS=$(by_scale 5 1)

start_broker up
start_broker down
mkdir -p "$T/src"
start_nginx web "$T/src"
t=$EPOCHREALTIME
make_feed "$T/src" "$(nginx_url web)" relay "$N" "$SIZE"
make_feed "$T/src" "$(nginx_url web)" probe 1 "$SIZE"
detail "made $N files of $SIZE bytes and their announcements in $(elapsed "$t" "$EPOCHREALTIME") s"

# The peer's first run creates its persistent session on up; one probe file relayed proves the
# subscription is in place before the peer stops.
mesh_peer R down up -- "${PEER_ARGS[@]}"
wait_connected R 1
publish_feed up probe
wait_until 30 metric_is R wmesh_published_total 1 || fail "the probe was not relayed"
stop_pid "$(pid_of R)"

start_counter cdown down "$N"
t=$EPOCHREALTIME
publish_feed up relay
detail "published $N announcements to up in $(elapsed "$t" "$EPOCHREALTIME") s (the peer away)"

# Broker and nginx CPU over the timed run, to see who is busy.
nginx_pids=$(tree_pids "$(pid_of web)")
# shellcheck disable=SC2086 # lists of pids
read -r cpu_up0 cpu_down0 cpu_web0 <<<"$(cpu_seconds "$(pid_of up)") \
    $(cpu_seconds "$(pid_of down)") $(cpu_seconds $nginx_pids)"
ticks0=$(machine_ticks)
t0=$EPOCHREALTIME
mesh_peer R down up -- "${PEER_ARGS[@]}"
pid=$(pid_of R)
perf_attach "$pid"
wait_until "$(by_scale 600 60)" counter_done cdown "$N" ||
    fail "downstream got $(counted cdown) of $N announcements"
ticks1=$(machine_ticks)
t1=$(last_arrival cdown)
cpu=$(cpu_seconds "$pid")
read -r cpu_user cpu_sys <<<"$(user_sys_seconds "$pid")"
threads=$(thread_cpu "$pid")
hwm=$(kib "$pid" VmHWM)
# shellcheck disable=SC2086
read -r cpu_up cpu_down cpu_web <<<"$(cpu_seconds "$(pid_of up)") \
    $(cpu_seconds "$(pid_of down)") $(cpu_seconds $nginx_pids)"
cpu_others=$(awk -v u="$cpu_up" -v d="$cpu_down" -v w="$cpu_web" -v u0="$cpu_up0" -v d0="$cpu_down0" \
    -v w0="$cpu_web0" 'BEGIN { printf "%.2f (broker up %.2f, broker down %.2f, nginx %.2f)",
        u + d + w - u0 - d0 - w0, u - u0, d - d0, w - w0 }')
secs=$(elapsed "$t0" "$t1")
rate=$(per_second "$N" "$secs")
first=$(first_arrival cdown)
detail "relay: first re-announcement after $(elapsed "$t0" "$first") s, steady rate" \
    "$(per_second $((N - 1)) "$(elapsed "$first" "$t1")") files/s from first to last"
detail "relay: peer $(counters R | cut -d' ' -f2-) (received downloads inlined duplicates" \
    "published errors); peer CPU user $cpu_user s, system $cpu_sys s;" \
    "brokers+nginx used $cpu_others CPU s meanwhile; the machine's $(nproc) CPUs were" \
    "$(machine_busy "$ticks0" "$ticks1")% busy"
detail "relay: peer threads, user+system CPU s: $threads"
perf_report relay
stop_pid "$pid"
[ "$(count_present "$(tree_of R)" "$T/feed/relay.list")" -eq "$N" ] ||
    fail "the peer's tree holds $(count_present "$(tree_of R)" "$T/feed/relay.list") of $N files"

# Ceiling (a): the same messages through a broker alone, mosquitto_pub -l to mosquitto_sub.
start_broker alone
start_counter calone alone "$N"
t=$EPOCHREALTIME
publish_feed alone relay
wait_until 120 counter_done calone "$N" || fail "broker alone: $(counted calone) of $N arrived"
broker_secs=$(elapsed "$t" "$(last_arrival calone)")
broker_rate=$(per_second "$N" "$broker_secs")
detail "broker alone: $N QoS 1 messages in $broker_secs s"

# Ceiling (b): the filesystem's, the same number of files stored the way the peer stores them,
# one thread, no network. Run after the relay, so as not to change what the relay met: a
# journal-less ext4 makes creating a file dearer for minutes after files were deleted.
read -r store_secs store_rate store_user store_sys <<<"$("$WMESH_BENCH_TOOLS/storeonly" \
    "$T/store" "$N" "$SIZE")" || fail "storeonly failed"
detail "store alone: $N files of $SIZE bytes in $store_secs s (CPU user $store_user s, system" \
    "$store_sys s), through tree.c on one thread, in the same filesystem"

# Ceiling (c): the same files from the same nginx, 4 keep-alive connections, for a few seconds.
cat >"$T/paths.lua" <<'EOF'
local paths, i = {}, 0
function init(args)
    for line in io.lines(args[1]) do paths[#paths + 1] = args[2] .. line end
    i = math.random(#paths)
end
function request()
    i = i % #paths + 1
    return wrk.format("GET", paths[i])
end
EOF
command -v wrk >/dev/null || fail "wrk not found (sh scripts/deps.sh --extra installs it)"
wrk -t 2 -c 4 -d "$WRK_SECONDS" -s "$T/paths.lua" "$(nginx_url web)/" -- \
    "$T/feed/relay.list" /data/ >"$T/wrk.out" 2>&1 || fail "wrk failed: $(cat "$T/wrk.out")"
nginx_rate=$(awk '/^Requests\/sec:/ { printf "%.0f\n", $2 }' "$T/wrk.out")
non2xx=$(awk '/Non-2xx/ { print $NF }' "$T/wrk.out")
[ -z "$non2xx" ] || fail "wrk got $non2xx non-2xx answers: $(cat "$T/wrk.out")"
detail "nginx alone: $(grep -E 'requests in' "$T/wrk.out" | sed 's/^ *//') (wrk, 2 threads," \
    "4 connections, cycling over the $N files)"

summary relay "files=$N size=$SIZE seconds=$secs files_s=$rate cpu_s=$cpu peak_rss_kib=$hwm"
summary ceilings "broker_msgs_s=$broker_rate nginx_files_s=$nginx_rate store_files_s=$store_rate" \
    "relay_vs_broker=$(ratio "$rate" "$broker_rate") relay_vs_nginx=$(ratio "$rate" "$nginx_rate")" \
    "relay_vs_store=$(ratio "$rate" "$store_rate")"
