# lib_bench.sh: what the benchmarks add to tests/integration/lib.sh: scale, feeds, arrival
# counters, figures from /proc, percentiles and the summary line.
# shellcheck shell=bash
#
# A benchmark starts with:   . "$(dirname "$0")/lib_bench.sh"
# and has everything of lib.sh ($T, start_broker, mesh_peer, wait_until, metric, ...), then:
#   by_scale FULL SMALL            FULL, or SMALL when BENCH_SCALE=small
#   start_nginx NAME ROOT, nginx_url NAME  (from lib.sh) nginx serving ROOT
#   nginx_config, run_nginx (from lib.sh) nginx with other server directives
#   make_feed ROOT BASEURL TAG COUNT SIZE   files and their announcements (bench/mkfeed.c) in
#                                  $T/feed: $T/feed/TAG.topics ("TOPIC MSGFILE"), TAG.list
#   publish_feed BROKER TAG        mosquitto_pub -l -q 1 of the feed TAG on BROKER, as owner
#   start_counter NAME BROKER N    mosquitto_sub -C of N announcements with their arrival times
#                                  ("%U topic payload") into $T/NAME.arrivals; returns once it
#                                  is subscribed. counted NAME, counter_done NAME N, last_arrival
#   start_listener NAME BROKER COUNT TOPIC...  the same for any topics (COUNT 0: no end)
#   cpu_seconds PID..., thread_cpu PID, kib PID FIELD (VmHWM, VmRSS), age_over PID SECONDS
#   ms_stats                       p50, p99 and max in ms of the seconds on stdin
#   ratio A B, per_second N SECONDS, detail MSG, summary SCENARIO KEY=VALUE...

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/lib.sh
. "$BENCH_DIR/../tests/integration/lib.sh"

: "${WMESH_BENCH_TOOLS:=$BENCH_DIR/../build/bench}"
: "${BENCH_SCALE:=full}"
# Extra options for every peer a benchmark starts, e.g. BENCH_PEER_ARGS="--max-downloads 32".
: "${BENCH_PEER_ARGS:=}"
# Where results that outlive $T go (perf reports).
: "${BENCH_OUT:=$(cd "$BENCH_DIR/.." && pwd)/build/bench}"
case $BENCH_SCALE in
full | small) ;;
*) fail "BENCH_SCALE must be full or small, not '$BENCH_SCALE'" ;;
esac
for tool in mkfeed pace seen_bench; do
    [ -x "$WMESH_BENCH_TOOLS/$tool" ] || fail "no $WMESH_BENCH_TOOLS/$tool (make bench-tools)"
done
HZ=$(getconf CLK_TCK)
# shellcheck disable=SC2206,SC2034 # split on purpose: options; used by the scenarios
PEER_ARGS=($BENCH_PEER_ARGS)

by_scale() {
    if [ "$BENCH_SCALE" = small ]; then echo "$2"; else echo "$1"; fi
}

detail() {
    printf '  %s\n' "$*"
}

# summary SCENARIO KEY=VALUE...: the one line of a scenario that bench/run.sh collects.
summary() {
    local s=$1
    shift
    echo "bench $s: $*"
}

# ratio A B: A/B with two decimals ("n/a" when B is 0).
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# per_second N SECONDS: N/SECONDS, rounded.
per_second() {
    awk -v n="$1" -v s="$2" 'BEGIN { if (s + 0 <= 0) print "n/a"; else printf "%.0f\n", n / s }'
}

# elapsed T0 T1: T1 - T0 in seconds, three decimals.
elapsed() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'
}

# ---------------------------------------------------------------------------------------------
# Processes

# user_sys_seconds PID: "USER SYS" CPU seconds of one process, to tell its own work from the
# kernel's (file creation, sockets).
user_sys_seconds() {
    sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null |
        awk -v hz="$HZ" '{ printf "%.2f %.2f\n", $12 / hz, $13 / hz }'
}

# thread_cpu PID: "name=USER+SYS(runqueue S)" CPU seconds of each thread of one process (wmesh
# names its threads: the loop is "wmesh", then wmesh-httpd, wmesh-journal, wmesh-tree...), and
# the seconds it spent runnable but waiting for a CPU (from schedstat): a thread that waits there
# long is short of CPU, not of work.
thread_cpu() {
    local task
    for task in /proc/"$1"/task/*; do
        printf '%s %s\n' "$(sed 's/^[0-9]* (\(.*\)) /\1 /' "$task/stat" 2>/dev/null)" \
            "$(cat "$task/schedstat" 2>/dev/null)"
    done | awk -v hz="$HZ" '{ printf "%s%s=%.2f+%.2f", sep, $1, $13 / hz, $14 / hz; sep = " "
            if (NF >= 3) printf "(runqueue %.2f)", $(NF - 1) / 1e9 }
        END { print "" }'
}

# perf_attach PID: with BENCH_PERF=1, samples PID (cpu-clock, call graphs) until perf_report.
perf_pid=""
perf_attach() {
    if [ "${BENCH_PERF:-0}" = 1 ] && ! perf stat -e cpu-clock true >/dev/null 2>&1; then
        detail "perf: not usable here (BENCH_PERF=1 ignored)"
    elif [ "${BENCH_PERF:-0}" = 1 ]; then
        perf record -q -e cpu-clock -F 1999 -g -p "$1" -o "$T/perf.data" 2>>"$T/perf.log" &
        perf_pid=$!
        track "$perf_pid"
    fi
}

# perf_report NAME: stops perf_attach's sampling and prints the process's top 15 symbols by self
# time (all of them in $BENCH_OUT/NAME-perf.txt) and its time inside each system call.
perf_report() {
    [ -n "$perf_pid" ] || return 0
    stop_pid "$perf_pid" # perf record writes its data on SIGTERM too
    perf_pid=""
    mkdir -p "$BENCH_OUT"
    # Self time by symbol, then time inside each system call (children of __x64_sys_*).
    perf report -i "$T/perf.data" --stdio --no-children -g none --sort dso,symbol \
        2>>"$T/perf.log" | grep -v '^#' | grep -v '^$' |
        sed 's/[[:space:]-]*$//' >"$BENCH_OUT/$1-perf.txt" || true
    perf report -i "$T/perf.data" --stdio --children -g none --sort symbol 2>>"$T/perf.log" |
        awk '$4 ~ /^__x64_sys_/ { printf "%8s  %s\n", $1, substr($4, 11) }' |
        head -n 10 >"$BENCH_OUT/$1-perf-syscalls.txt" || true
    detail "perf: the peer's top 15 by self time (cpu-clock samples; all in" \
        "$BENCH_OUT/$1-perf.txt):"
    head -n 15 "$BENCH_OUT/$1-perf.txt" | sed 's/^/    /'
    detail "perf: the peer's time inside system calls, by call:"
    sed 's/^/    /' "$BENCH_OUT/$1-perf-syscalls.txt"
}

# cpu_seconds PID...: user + system CPU time of the processes so far (threads included).
cpu_seconds() {
    local pid total=0 t
    for pid in "$@"; do
        # Fields after "pid (comm) ": utime and stime are the 12th and 13th.
        t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=0
        total=$((total + ${t:-0}))
    done
    awk -v t="$total" -v hz="$HZ" 'BEGIN { printf "%.2f\n", t / hz }'
}

# machine_ticks: "busy total" clock ticks of all CPUs so far, from /proc/stat (busy: neither
# idle nor waiting for I/O). Two readings give machine_busy.
machine_ticks() {
    local user nice system idle iowait irq softirq steal
    read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
    echo "$((user + nice + system + irq + softirq + steal)) \
$((user + nice + system + idle + iowait + irq + softirq + steal))"
}

# machine_busy "BUSY0 TOTAL0" "BUSY1 TOTAL1": percent of the machine's CPU time that was busy
# between two machine_ticks readings: near 100 means the run was bound by CPU, whoever used it.
machine_busy() {
    local b0 t0 b1 t1
    read -r b0 t0 <<<"$1"
    read -r b1 t1 <<<"$2"
    awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.0f\n", (t > 0 ? 100 * b / t : 0) }'
}

# kib PID FIELD: a memory figure of /proc/PID/status in KiB (VmHWM: peak RSS, VmRSS: now).
kib() {
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# age_over PID SECONDS: true once the process has run SECONDS, for wait_until.
age_over() {
    local start up
    start=$(sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $20 }')
    up=$(cut -d' ' -f1 /proc/uptime)
    awk -v s="$start" -v u="$up" -v hz="$HZ" -v min="$2" 'BEGIN { exit !(u - s / hz >= min) }'
}

# pid_of NAME: the process recorded for a broker, peer or server NAME.
pid_of() {
    cat "$T/$1/pid"
}

# tree_pids PID: PID and its descendants (nginx's workers, for CPU figures).
tree_pids() {
    echo "$1" "$(descendants "$1" | tr '\n' ' ')"
}

# ---------------------------------------------------------------------------------------------
# Feeds and counters

# make_feed ROOT BASEURL TAG COUNT SIZE: COUNT files of SIZE bytes under ROOT/TAG/d00/.
make_feed() {
    mkdir -p "$T/feed"
    "$WMESH_BENCH_TOOLS/mkfeed" "$1" "$2" "$3" "$4" "$5" 1 "$T/feed" ||
        fail "mkfeed $3 failed"
    # Written back now, so that a peer's syncs do not pay for the files of its upstream.
    sync -f "$1"
}

# publish_feed BROKER TAG: publishes the feed's messages, QoS 1, one mosquitto_pub per topic.
publish_feed() {
    local topic file
    while read -r topic file; do
        mosquitto_pub -h 127.0.0.1 -p "$(broker_port "$1")" -u owner -P ownerpw \
            -i "feed-$2-$$-$RANDOM" -q 1 -t "$topic" -l <"$file" ||
            fail "mosquitto_pub of $file to $1 failed"
    done <"$T/feed/$2.topics"
}

# start_counter NAME BROKER N: subscribes (QoS 1) to every announcement on BROKER and records
# "%U topic payload" of N of them. Subscribed once a retained message on a topic of its own
# comes back (so it counts N + 1 messages in all, that one included).
start_counter() {
    start_listener "$1" "$2" $(($3 + 1)) 'xpublic/v03/post/#'
    echo "$3" >"$T/$1/target"
}

# start_listener NAME BROKER COUNT TOPIC...: subscribes (QoS 1, as guest) to the TOPICs and to
# a topic of its own on BROKER, and records "%U topic payload" of what comes into
# $T/NAME.arrivals: COUNT messages, then it exits (0: until stopped). Returns once subscribed
# (its own retained message came back: one of the COUNT).
start_listener() {
    local name=$1 port count=$3 topic
    local -a args=()
    port=$(broker_port "$2")
    shift 3
    for topic in "$@"; do
        args+=(-t "$topic")
    done
    [ "$count" -gt 0 ] && args+=(-C "$count")
    mkdir -p "$T/$name"
    mosquitto_pub -h 127.0.0.1 -p "$port" -u owner -P ownerpw -i "ready-$name-$$" -q 1 -r \
        -t "xpublic/bench/ready/$name" -m ready || fail "cannot publish on $port"
    mosquitto_sub -h 127.0.0.1 -p "$port" -u guest -P guestpw -i "count-$name-$$" -q 1 \
        -F '%U %t %p' "${args[@]}" -t "xpublic/bench/ready/$name" \
        >"$T/$name.arrivals" 2>>"$T/$name.log" &
    track "$!"
    echo "$!" >"$T/$name/pid"
    wait_until 10 grep -q "^[0-9.]* xpublic/bench/ready/$name " "$T/$name.arrivals" ||
        fail "$name did not subscribe on port $port"
}

# counted NAME: announcements recorded so far.
counted() {
    grep -c '^[0-9.]* xpublic/v03/' "$T/$1.arrivals" || true
}

# counter_done NAME N: true once NAME has recorded N announcements. While the counter still
# waits for more than N it is not done, and that is told without reading its file: grep over a
# file of megabytes every 0.1 s took a tenth of a CPU from the relay it was timing.
counter_done() {
    local pid target
    read -r pid <"$T/$1/pid"
    read -r target <"$T/$1/target"
    if [ "$2" -ge "$target" ] && kill -0 "$pid" 2>/dev/null; then
        return 1
    fi
    [ "$(counted "$1")" -ge "$2" ]
}

# last_arrival NAME, first_arrival NAME: Unix time of the last and first announcement.
last_arrival() {
    awk '$2 ~ /^xpublic\/v03\// && $1 > m { m = $1 } END { printf "%.6f\n", m }' "$T/$1.arrivals"
}

first_arrival() {
    awk '$2 ~ /^xpublic\/v03\// && (m == "" || $1 < m) { m = $1 } END { printf "%.6f\n", m }' \
        "$T/$1.arrivals"
}

# arrivals NAME: "relPath time" of each announcement the counter recorded.
arrivals() {
    awk '$2 ~ /^xpublic\/v03\// && match($0, /"relPath": *"[^"]*"/) {
            rel = substr($0, RSTART, RLENGTH); sub(/^"relPath": *"/, "", rel); sub(/"$/, "", rel)
            print rel, $1
        }' "$T/$1.arrivals"
}

# ms_stats: "p50=X p99=Y max=Z n=N" in milliseconds of the values (seconds) on stdin, nearest
# rank.
ms_stats() {
    sort -g | awk '
        { v[++n] = $1 }
        function rank(p,   r) { r = int(p * n); if (r < p * n) r++; if (r < 1) r = 1; return v[r] }
        END {
            if (n == 0) { print "p50=n/a p99=n/a max=n/a n=0"; exit }
            printf "p50=%.3f p99=%.3f max=%.3f n=%d\n", rank(0.5) * 1000, rank(0.99) * 1000,
                v[n] * 1000, n
        }'
}

# wait_connected PEER N: until N upstream broker links of PEER are up (the metric counts only
# upstream links).
wait_connected() {
    wait_until 15 metric_is "$1" wmesh_broker_connected "$2" ||
        fail "$1 connected to $(metric "$1" wmesh_broker_connected) of $2 brokers"
}
