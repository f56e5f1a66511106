#!/bin/bash
# 54-slow-dns.sh: a name server that never answers stalls lookups, never the peer. The peer runs
# alone in a private mount namespace whose /etc/resolv.conf names a UDP sink that reads queries
# and never answers (timeout:5 attempts:2: each lookup stalls 10 s); brokers and origin are
# outside, reached by IP literal. Files whose baseUrl names 5 such hosts are announced among 20
# whose baseUrl is the origin:
#  1. the 20 are stored and re-announced within 4 s, long before the first stalled lookup ends,
#     and 5 more announced 9 s later (5 more stalled hosts with them) within 3 s; the peer's HTTP
#     port answers at once all along;
#  2. the stalled files then fail, each in one line ("cannot resolve stalled-N.example: ..."),
#     counted as download errors and retried; nothing else failed;
#  3. no broker link drops for 17 s of stalled lookups although both brokers impose a 10 s
#     keep-alive (max_keepalive 10: a loop blocked 15 s would have been dropped);
#  4. SIGTERM while lookups hang ends the peer within 3 s, status 0;
#  5. restarted (same state) with /etc/hosts naming the stalled hosts, the peer takes the 10
#     stalled files from its journal and stores them; nothing is downloaded twice.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

command -v unshare >/dev/null || skip "no unshare (util-linux) to make a private mount namespace"
command -v python3 >/dev/null || fail "python3 is needed for the silent name server"

# Both brokers impose a 10 s keep-alive on MQTT 5 clients (mosquitto's smallest max_keepalive):
# the peer then pings every 7.5 s and a broker drops it after 15 s of silence.
BROKER_OPTIONS=(--max-keepalive 10)

now_ms() {
    date +%s%3N
}

# unshare -m -u sh -c "$NS_SCRIPT" sh RESOLV HOSTS CMD...: CMD in a private mount namespace
# where RESOLV is /etc/resolv.conf and, unless HOSTS is empty, HOSTS is /etc/hosts. unshare and
# sh exec: CMD keeps the pid of the unshare started (no shell function around it, which would
# fork). The host name, in a namespace of its own too, has no dot: glibc would search the domain
# of a dotted one after the name itself, doubling the stall.
# shellcheck disable=SC2016 # expanded by that sh
NS_SCRIPT='echo wmesh-slow-dns >/proc/sys/kernel/hostname && mount --make-rprivate / &&
    mount --bind "$1" /etc/resolv.conf &&
    if [ -n "$2" ]; then mount --bind "$2" /etc/hosts; fi && shift 2 && exec "$@"'

# start_silent_dns: a UDP sink on port 53 of a loopback address (127.0.0.77, or another when
# something holds that one) that logs each query's name to $T/dns.log and never answers; sets
# DNS_ADDR.
start_silent_dns() {
    local try pid
    for try in 1 2 3 4 5; do
        DNS_ADDR=127.0.0.77
        [ "$try" -eq 1 ] || DNS_ADDR=127.77.$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1))
        : >"$T/dns.log"
        python3 -u -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print("ready", flush=True)
while True:
    d, _ = s.recvfrom(4096)
    i, labels = 12, []
    while i < len(d) and d[i]:
        labels.append(d[i + 1:i + 1 + d[i]].decode("ascii", "replace"))
        i += 1 + d[i]
    print("%.3f query %s" % (time.time(), ".".join(labels)), flush=True)
' "$DNS_ADDR" >>"$T/dns.log" 2>>"$T/dns.err" &
        pid=$!
        track "$pid"
        if wait_until 5 dns_ready "$pid" && ! gone "$pid"; then
            note "silent name server on $DNS_ADDR:53 (reads, never answers)"
            return 0
        fi
        wait "$pid" 2>/dev/null || true
        untrack "$pid"
    done
    fail "no UDP sink could bind port 53 of a loopback address: $(tail -n 2 "$T/dns.err")"
}

dns_ready() {
    gone "$1" || grep -q '^ready$' "$T/dns.log"
}

# start_ns_peer NAME HOSTS ARGS...: start_peer inside the namespace (HOSTS as for NS_SCRIPT); the
# pid recorded is wmesh's own.
start_ns_peer() {
    local name=$1 hosts=$2 port pid exe
    shift 2
    port=$(free_port)
    mkdir -p "$T/$name"
    echo "$port" >"$T/$name/http_port"
    unshare -m -u sh -c "$NS_SCRIPT" sh "$T/resolv.conf" "$hosts" "$WMESH" peer --name "$name" \
        "$@" --post-base-url "http://127.0.0.1:$port/data" --http-listen "127.0.0.1:$port" \
        2>>"$T/$name.log" &
    pid=$!
    track "$pid"
    echo "$pid" >"$T/$name/pid"
    wait_until 15 metrics_ready "$name" || fail "peer $name did not answer on port $port"
    exe=$(readlink "/proc/$pid/exe") || fail "peer $name (pid $pid) is gone"
    [ "$exe" -ef "$WMESH" ] || fail "pid $pid of peer $name is $exe, not wmesh"
    grep -q "^nameserver $DNS_ADDR\$" "/proc/$pid/root/etc/resolv.conf" ||
        fail "peer $name does not see the silent name server in its /etc/resolv.conf"
    note "peer $name (pid $pid) on http port $port, in its own mount namespace"
}

# announce BROKER BASEURL REL: a v03 announcement of origin's REL.
announce() {
    pub "$1" "$(topic_of "$3")" "$(v03_msg "$2" "$3" sha512 "$(checksum_b64 sha512 "$origin/$3")")"
}

# all_observed LIST: the observer on home saw a re-announcement of every relPath of LIST.
all_observed() {
    local rel seen
    seen=$(observed obs)
    while IFS= read -r rel; do
        grep -qF "\"$rel\"" <<<"$seen" || return 1
    done <"$1"
}

# stored_and_announced LIST: for wait_until.
stored_and_announced() {
    all_present "$(tree_of P)" "$1" && all_observed "$1"
}

# failed_lines: the peer's "download of REL failed" lines.
failed_lines() {
    grep -F 'download of ' "$T/P.log" | grep -F ' failed: ' || true
}

# all_failed LIST: each relPath of LIST has a failed line. For wait_until.
all_failed() {
    local rel lines
    lines=$(failed_lines)
    while IFS= read -r rel; do
        grep -qF "download of $rel failed" <<<"$lines" || return 1
    done <"$1"
}

# link_drops: what the peer logged about a dropped link, and the brokers about the peer's
# connection timing out or breaking.
link_drops() {
    grep -E 'disconnected|did not answer PINGREQ' "$T/P.log" || true
    broker_drops
}

broker_drops() {
    grep -hE "it-P-$$.*(exceeded timeout|Socket error)|(Socket error|timeout).*it-P-$$" \
        "$T/up.log" "$T/home.log" || true
}

# --- the private namespace: allowed here (root)? -----------------------------------------------
echo "nameserver 127.0.0.77" >"$T/probe.conf"
seen=$(unshare -m -u sh -c "$NS_SCRIPT" sh "$T/probe.conf" "" cat /etc/resolv.conf \
    2>"$T/unshare.err") || true
grep -q "^nameserver 127.0.0.77\$" <<<"$seen" ||
    skip "no private mount namespace with a bind-mounted /etc/resolv.conf here (root needed):" \
        "$(head -n 1 "$T/unshare.err")"
start_silent_dns
printf 'nameserver %s\noptions timeout:5 attempts:2\n' "$DNS_ADDR" >"$T/resolv.conf"

start_broker up
start_broker home
start_observer obs home
origin=$T/origin
make_files "$origin" 35 >"$T/list"
start_serve S "$origin"
oport=$(http_port S)
good=$(base_url S)
sed -n 1,20p "$T/list" >"$T/goodA"
sed -n 21,25p "$T/list" >"$T/goodB"
sed -n 26,30p "$T/list" >"$T/stalledA"
sed -n 31,35p "$T/list" >"$T/stalledB"
cat "$T/stalledA" "$T/stalledB" >"$T/stalled"
cat "$T/goodA" "$T/goodB" >"$T/good"
stalled_url() { # stalled_url N: the baseUrl of stalled host N, the origin's port
    echo "http://stalled-$1.example:$oport/data"
}
# announce_mixed GOOD STALLED EVERY FIRST: the files of list GOOD from the origin, with one of
# list STALLED after every EVERY of them, from stalled hosts FIRST, FIRST+1...
announce_mixed() {
    local n=0 host=$4 rel srel
    exec 3<"$2"
    while IFS= read -r rel; do
        announce up "$good" "$rel"
        n=$((n + 1))
        if [ $((n % $3)) -eq 0 ] && IFS= read -r srel <&3; then
            announce up "$(stalled_url "$host")" "$srel"
            host=$((host + 1))
        fi
    done <"$1"
    exec 3<&-
}

mkdir -p "$T/P/tree" "$T/P/state"
# --connect-timeout 15: the resolver's own answer (at 10 s) ends a stalled attempt, not the
# connection deadline.
peer_args=(--dir "$T/P/tree" --state-dir "$T/P/state" --client-id "it-P-$$"
    --broker "$(broker_url up guest)" --post-broker "$(broker_url home owner)"
    --connect-timeout 15)
start_ns_peer P "" "${peer_args[@]}"
pid=$(pid_of P)
wait_until 10 subscribed P up || fail "P's subscription to up is not in place"
mport=$(http_port P)

# The peer's HTTP port, asked every 0.2 s while lookups stall: how long each answer took.
(
    while :; do
        curl -s -o /dev/null --max-time 30 -w '%{time_total}\n' \
            "http://127.0.0.1:$mport/metrics" >>"$T/latency" || echo 99 >>"$T/latency"
        sleep 0.2 # polling pace
    done
) &
prober=$!
track "$prober"

# --- 1. 5 stalled hosts among 20 good files -----------------------------------------------------
t0=$(now_ms)
announce_mixed "$T/goodA" "$T/stalledA" 4 1
t_pub=$(($(now_ms) - t0))
wait_until 10 stored_and_announced "$T/goodA" ||
    fail "P stored $(count_present "$(tree_of P)" "$T/goodA") of the 20 reachable files in 10 s"
t_good=$(($(now_ms) - t0))
note "25 announcements (5 stalled hosts) published in ${t_pub} ms; the 20 reachable files stored and re-announced ${t_good} ms after the first"
[ "$t_good" -lt 4000 ] || fail "the 20 reachable files took ${t_good} ms (stalled lookups last 10 s)"
same_files "$origin" "$(tree_of P)" "$T/goodA" || fail "P stored other bytes"
[ "$(count_present "$(tree_of P)" "$T/stalledA")" -eq 0 ] || fail "a stalled file was stored"
[ -z "$(failed_lines)" ] || fail "a download failed already: $(failed_lines | head -n 3)"
for i in 1 2 3 4 5; do
    grep -q " query stalled-$i.example\$" "$T/dns.log" ||
        fail "the silent name server got no query for stalled-$i.example"
done
note "the name server got $(grep -c ' query ' "$T/dns.log") queries for the 5 stalled hosts; none answered"

# 9 s in, while the 5 lookups still hang: 5 more reachable files and 5 more stalled hosts.
while [ $(($(now_ms) - t0)) -lt 9000 ]; do sleep 0.1; done # wait for the 9 s mark
[ -z "$(failed_lines)" ] || fail "a stalled lookup ended before 9 s: $(failed_lines | head -n 1)"
t1=$(now_ms)
announce_mixed "$T/goodB" "$T/stalledB" 1 6
wait_until 10 stored_and_announced "$T/goodB" ||
    fail "P stored $(count_present "$(tree_of P)" "$T/goodB") of 5 files announced amid stalls"
t_goodB=$(($(now_ms) - t1))
note "5 more reachable files (and 5 more stalled hosts) at $(((t1 - t0) / 1000)) s: stored and re-announced in ${t_goodB} ms"
[ "$t_goodB" -lt 3000 ] || fail "the 5 files announced amid stalls took ${t_goodB} ms"

# --- 2. the stalled files fail, one line each ---------------------------------------------------
wait_until 15 all_failed "$T/stalledA" ||
    fail "the 5 stalled files did not fail 25 s after their announcements: $(failed_lines | head -n 5)"
t_fail=$(($(now_ms) - t0))
note "the first 5 stalled files failed by ${t_fail} ms: $(failed_lines | head -n 1 | sed 's/.* failed: //; s/ from http:.*//')"
[ "$t_fail" -ge 8000 ] || fail "the stalled lookups ended after ${t_fail} ms: did the name server stall them?"
i=0
while IFS= read -r rel; do
    i=$((i + 1))
    failed_lines | grep -F "download of $rel failed" | head -n 1 |
        grep -qE "(cannot resolve|timed out resolving) stalled-$i\.example" ||
        fail "the failure of $rel does not say stalled-$i.example cannot be resolved: $(failed_lines | grep -F "$rel" | head -n 1)"
done <"$T/stalledA"
others=$(failed_lines | grep -vE '(cannot resolve|timed out resolving) stalled-[0-9]+\.example' || true)
[ -z "$others" ] || fail "other downloads failed: $(head -n 3 <<<"$others")"
errors=$(metric P wmesh_download_errors_total)
[ "$errors" -ge 5 ] || fail "wmesh_download_errors_total is $errors after 5 failures"
metrics_are P 25 wmesh_downloads_total
retries=$(metric P wmesh_retries_total)
[ "$retries" -ge 5 ] || fail "wmesh_retries_total is $retries: the stalled files are not retried"
note "counted: wmesh_download_errors_total $errors, wmesh_retries_total $retries, wmesh_downloads_total 25"

# --- 3. no link dropped while lookups hung: 17 s since the first ------------------------------
# A loop blocked for all that time would have been silent for more than the brokers' 15 s.
while [ $(($(now_ms) - t0)) -lt 17000 ]; do sleep 0.1; done # wait for the 17 s mark
early=$(failed_lines | grep -F -f "$T/stalledB" || true)
[ -z "$early" ] || fail "a lookup of the second stalled hosts ended early: $(head -n 1 <<<"$early")"
drops=$(link_drops)
[ -z "$drops" ] || fail "a broker link dropped while lookups stalled: $(head -n 3 <<<"$drops")"
[ "$(connected P "$(broker_port up)")" = 1 ] || fail "P's link to up is down"
stop_pid "$prober"
slowest=$(sort -g "$T/latency" | tail -n 1)
note "P's /metrics asked $(wc -l <"$T/latency") times in 17 s of stalled lookups: slowest answer ${slowest} s; no broker link dropped (keep-alive 10 s)"
awk -v s="$slowest" 'BEGIN { exit !(s < 2) }' || fail "P's HTTP port took ${slowest} s to answer"

# --- 4. SIGTERM while lookups hang ---------------------------------------------------------------
t2=$(now_ms)
kill -TERM "$pid"
wait_until 10 gone "$pid" || fail "P did not end 10 s after SIGTERM"
t_term=$(($(now_ms) - t2))
rc=0
wait "$pid" || rc=$?
untrack "$pid"
note "SIGTERM with 5 lookups hanging: P ended in ${t_term} ms, status $rc"
[ "$t_term" -lt 3000 ] || fail "P took ${t_term} ms to end on SIGTERM"
[ "$rc" -eq 0 ] || fail "P ended with status $rc on SIGTERM"
[ "$(count_present "$(tree_of P)" "$T/stalled")" -eq 0 ] || fail "a stalled file was stored"

# --- 5. the journal kept the stalled files -------------------------------------------------------
cp /etc/hosts "$T/hosts"
for i in 1 2 3 4 5 6 7 8 9 10; do
    echo "127.0.0.1 stalled-$i.example" >>"$T/hosts"
done
start_ns_peer P "$T/hosts" "${peer_args[@]}"
wait_until 20 stored_and_announced "$T/stalled" ||
    fail "restarted, P holds $(count_present "$(tree_of P)" "$T/stalled") of the 10 stalled files"
same_files "$origin" "$(tree_of P)" "$T/stalled" || fail "P stored other bytes"
metrics_are P 10 wmesh_downloads_total
once_each P downloaded
drops=$(broker_drops)
[ -z "$drops" ] || fail "a broker link dropped: $(head -n 3 <<<"$drops")"
note "restarted with /etc/hosts naming them: the 10 stalled files came from the journal and were stored, nothing downloaded twice"
