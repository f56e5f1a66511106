#!/bin/bash
# 80-gc.sh: a WIS2 Global Cache peer (docs/OPERATIONS.md) under the WMO Global Cache performance
# test: 2 000 notifications of 85 000 - 90 000 byte files from 5 centres, each publishing 400 at
# 10 a second, the data behind delay proxies; then the same 2 000 as a backlog, against curl
# through the same proxies; then 1 000 concurrent downloads of one large object from the peer's
# embedded HTTP server against nginx serving the same file. One summary line: gc.
#
# Two brokers: gb plays the Global Broker (the centres publish on origin/a/wis2/<centre>/...),
# local is the cache's own broker (its cache/a/wis2/... messages are counted there). One nginx
# listens on one port per centre (HTTPS by default: BENCH_GC_PROTOCOL=http for plain HTTP),
# each reachable only through its own delay proxy: round trips of 50, 75, 100, 125 and 150 ms.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib_bench.sh"

PY=/usr/bin/python3
WIS2=$(cd "$BENCH_DIR/../tests/wis2" && pwd)
CENTRES=5
PER_CENTRE=$(by_scale 400 40)
N=$((CENTRES * PER_CENTRE))
RATE=10 # messages a second per centre: the WMO trigger's "delay 100"
SIZES=85000-90000
PROTO=${BENCH_GC_PROTOCOL:-https}
SERVE_MIB=$(by_scale 200 20)
SERVE_CONNS=$(by_scale 1000 100)
SERVE_SECONDS=$(by_scale 10 3)
GC_ID=xx-bench-global-cache
SYNOP=data/core/weather/surface-based-observations/synop
: "${WMESH_TOOLS:=$BENCH_DIR/../build/tools}"
[ -x "$WMESH_TOOLS/delayproxy" ] || fail "no $WMESH_TOOLS/delayproxy (make build/tools/delayproxy)"
[ -x "$PY" ] || fail "no $PY (Debian's python3)"
command -v wrk >/dev/null || fail "wrk not found (sh scripts/deps.sh --extra installs it)"

centre_of() { # index 0..4 -> io-wis2dev-11-test .. io-wis2dev-15-test
    echo "io-wis2dev-$((11 + $1))-test"
}
rtt_of() { # index -> round trip in ms
    echo $((50 + 25 * $1))
}

# The brokers let the owner write origin/# and cache/# too, and the guest read them.
broker_acl '*' xpublic/# origin/# cache/#

# ---------------------------------------------------------------------------------------------
# Origins: nginx on one port per centre, a delay proxy before each

mkdir -p "$T/src" "$T/web" "$T/proxy"
make_ca "$T/pki"
listens=""
for ((c = 0; c < CENTRES; c++)); do
    port=$(free_port)
    echo "$port" >"$T/web/$c"
    if [ "$PROTO" = https ]; then
        listens="$listens        listen 127.0.0.1:$port ssl;
"
    else
        listens="$listens        listen 127.0.0.1:$port;
"
    fi
done
nginx_config web "$T/src" "$listens" "    ssl_certificate $T/pki/server.pem;
    ssl_certificate_key $T/pki/server.key;"
run_nginx web "$PROTO://127.0.0.1:$(cat "$T/web/0")/" --cacert "$T/pki/ca.pem"
for ((c = 0; c < CENTRES; c++)); do
    port=$(free_port)
    echo "$port" >"$T/proxy/$c.port"
    "$WMESH_TOOLS/delayproxy" --listen "127.0.0.1:$port" --connect "127.0.0.1:$(cat "$T/web/$c")" \
        --delay-ms $(($(rtt_of "$c") / 2)) --handshake --count "$T/proxy/$c.count" \
        2>>"$T/proxy.log" &
    track "$!"
done
for ((c = 0; c < CENTRES; c++)); do
    wait_until 10 port_in_use "$(cat "$T/proxy/$c.port")" || fail "delay proxy $c did not listen"
done

# ---------------------------------------------------------------------------------------------
# Files and notifications: $T/feed/TAG.C.msgs, one WNM a line, for centre C (tests/wis2/wnm.py)

# The Python helpers (Debian's python3): wnmfeed.py WIS2 SRC FEED TAG COUNT SIZES URLS makes
# the files and their notifications (tests/wis2/wnm.py's make); pace.py GO RATE passes lines on
# from stdin, line i at GO + i/RATE (RATE 0: at once), flushing each.
cat >"$T/wnmfeed.py" <<'PY'
import contextlib, datetime, io, os, random, sys
wis2, src, feed, tag, count, sizes, urls = sys.argv[1:8]
sys.path.insert(0, wis2)
import wnm
lo, hi = (int(s) for s in sizes.split("-"))
rng = random.Random(tag)
for c, pair in enumerate(urls.split()):
    centre, base = pair.split("=", 1)
    os.makedirs(os.path.join(src, tag, centre), exist_ok=True)
    with open(os.path.join(feed, "%s.%d.msgs" % (tag, c)), "w") as out:
        for i in range(int(count)):
            name = "%s/%s/synop-%04d.bufr4" % (tag, centre, i)
            path = os.path.join(src, name)
            with open(path, "wb") as f:
                f.write(os.urandom(rng.randint(lo, hi)))
            now = datetime.datetime.now(datetime.timezone.utc)
            pubtime = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            data_id = "%s/%s/%s/gcbench-%s-%04d" % (centre, "data/core/weather", "synop", tag, i)
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                wnm.make([data_id, pubtime, base + "/" + name, path])
            out.write(buf.getvalue())
PY
cat >"$T/pace.py" <<'PY'
import sys, time
go, rate = float(open(sys.argv[1]).read()), float(sys.argv[2])
time.sleep(max(0.0, go - time.time()))
for i, line in enumerate(sys.stdin):
    if rate > 0:
        time.sleep(max(0.0, go + i / rate - time.time()))
    sys.stdout.write(line)
    sys.stdout.flush()
PY

# make_wnm TAG COUNT: COUNT files of SIZES bytes per centre under $T/src/TAG/ and their messages,
# with data_ids of their own (TAG in them) and hrefs through the centre's proxy.
make_wnm() {
    local urls="" c
    for ((c = 0; c < CENTRES; c++)); do
        urls="$urls $(centre_of "$c")=$PROTO://127.0.0.1:$(cat "$T/proxy/$c.port")/data"
    done
    mkdir -p "$T/feed"
    "$PY" "$T/wnmfeed.py" "$WIS2" "$T/src" "$T/feed" "$1" "$2" "$SIZES" "$urls" ||
        fail "cannot make the $1 feed"
    sync -f "$T/src"
}

# pace_to BROKER C TAG RATE: centre C's messages of TAG on its topic, QoS 1, RATE a second (0:
# as fast as mosquitto_pub takes them), the first at the time in $T/go (Unix seconds).
pace_to() {
    local broker=$1 c=$2 tag=$3 rate=$4
    "$PY" "$T/pace.py" "$T/go" "$rate" <"$T/feed/$tag.$c.msgs" |
        mosquitto_pub -h 127.0.0.1 -p "$(broker_port "$broker")" -u owner -P ownerpw \
            -i "gc-$tag-$c-$$" -q 1 -t "origin/a/wis2/$(centre_of "$c")/$SYNOP" -l
}

# publish_all BROKER TAG RATE: every centre at once; returns when all have published.
publish_all() {
    local c pids=""
    echo "$EPOCHREALTIME" | awk '{ printf "%.6f\n", $1 + 0.5 }' >"$T/go"
    for ((c = 0; c < CENTRES; c++)); do
        pace_to "$1" "$c" "$2" "$3" 2>>"$T/pub.log" &
        pids="$pids $!"
    done
    for p in $pids; do
        wait "$p" || fail "publishing $2 failed: $(tail -n 5 "$T/pub.log")"
    done
}

# listen_on NAME BROKER TOPIC TAG: records the messages on TOPIC (start_listener); heard, span
# and cached_versions count those of the feed TAG.
listen_on() {
    start_listener "$1" "$2" 0 "$3"
    echo "$4" >"$T/$1/tag"
}

heard() { # heard NAME: messages of its feed recorded
    grep -c "\"data_id\":\"[^\"]*/gcbench-$(cat "$T/$1/tag")-" "$T/$1.arrivals" || true
}
heard_all() { # heard_all NAME N
    [ "$(heard "$1")" -ge "$2" ]
}
# span NAME: "FIRST LAST" Unix times of the recorded messages.
span() {
    grep "\"data_id\":\"[^\"]*/gcbench-$(cat "$T/$1/tag")-" "$T/$1.arrivals" |
        awk '{ if (f == "" || $1 < f) f = $1; if ($1 > l) l = $1 }
            END { printf "%.6f %.6f\n", f, l }'
}
# cached_versions NAME: distinct data_ids of its feed among the messages recorded.
cached_versions() {
    grep -o "\"data_id\":\"[^\"]*/gcbench-$(cat "$T/$1/tag")-[^\"]*\"" "$T/$1.arrivals" |
        sort -u | wc -l
}

# gc_peer NAME: a Global Cache as docs/OPERATIONS.md configures one, reading gb, posting on local.
gc_peer() {
    local -a args=("${PEER_ARGS[@]}")
    [ "$PROTO" = https ] && args+=(--cacert "$T/pki/ca.pem")
    mesh_peer "$1" local gb -- --exchange + --topic-prefix a/wis2 --subtopic '+/data/core/#' \
        --subtopic '+/metadata/#' --post-exchange cache --post-format wnm --centre-id "$GC_ID" \
        --max-size 100000000 "${args[@]}"
    wait_connected "$1" 1
}

# probe NAME: one notification cached proves the peer's subscription (and makes its session).
probe() {
    listen_on "probe$1" local 'cache/#' "probe$1"
    pace_to gb 0 "probe$1" 0 2>>"$T/pub.log" || fail "cannot publish the probe"
    wait_until 30 heard_all "probe$1" 1 || fail "$1 did not cache the probe"
}

start_broker gb
start_broker local
t=$EPOCHREALTIME
echo "$EPOCHREALTIME" >"$T/go"
make_wnm live "$PER_CENTRE"
make_wnm backlog "$PER_CENTRE"
make_wnm probeL 1
make_wnm probeB 1
detail "made $N files of $SIZES bytes and their notifications, twice, in" \
    "$(elapsed "$t" "$EPOCHREALTIME") s; origins over $PROTO at round trips of" \
    "$(for ((c = 0; c < CENTRES; c++)); do printf '%s ' "$(rtt_of "$c")"; done)ms"

# ---------------------------------------------------------------------------------------------
# 1. The WMO performance test: 5 centres x PER_CENTRE at RATE a second each

gc_peer L
probe L
pid=$(pid_of L)
listen_on origin gb 'origin/#' live
listen_on cache local 'cache/#' live
cpu0=$(cpu_seconds "$pid")
m0=$(machine_ticks)
publish_all gb live "$RATE"
wait_until "$(by_scale 180 60)" heard_all cache "$N" ||
    fail "live: $(heard cache) cache messages of $N"
m1=$(machine_ticks)
cpu=$(awk -v a="$cpu0" -v b="$(cpu_seconds "$pid")" 'BEGIN { printf "%.2f\n", b - a }')
read -r o_first o_last <<<"$(span origin)"
read -r c_first c_last <<<"$(span cache)"
live_s=$(elapsed "$o_first" "$c_last")
pub_s=$(elapsed "$o_first" "$o_last")
lag_s=$(elapsed "$o_last" "$c_last")
cached=$(cached_versions cache)
msgs_s=$(awk -v n="$cached" -v s="$live_s" 'BEGIN { printf "%.1f\n", n / s }')
meets=$(awk -v lag="$lag_s" -v r="$msgs_s" -v c="$cached" -v n="$N" \
    'BEGIN { print (c == n && lag <= 60 && r >= 5) ? "yes" : "no" }')
cpu_pct=$(awk -v c="$cpu" -v s="$live_s" 'BEGIN { printf "%.0f\n", 100 * c / s }')
detail "live: $N notifications published in $pub_s s ($(per_second "$N" "$pub_s")/s), first" \
    "cache message $(elapsed "$o_first" "$c_first") s after the first origin message, last" \
    "$lag_s s after the last; $cached versions cached; peer CPU $cpu s ($cpu_pct% of a core)," \
    "machine busy $(machine_busy "$m0" "$m1")%"
detail "live: peer $(counters L | cut -d' ' -f2-) (received downloads inlined duplicates" \
    "published errors); wmo_wis2_gc_downloaded_total $(metric L wmo_wis2_gc_downloaded_total)"
[ "$cached" -eq "$N" ] || fail "live: $cached versions cached of $N"
stop_pid "$pid" # it would cache the backlog too

# ---------------------------------------------------------------------------------------------
# 2. The same notifications as a backlog, drained by a fresh cache, against curl's ceiling

gc_peer B
probe B
stop_pid "$(pid_of B)"
listen_on bcache local 'cache/#' backlog
publish_all gb backlog 0
t0=$EPOCHREALTIME
gc_peer B
pid=$(pid_of B)
wait_until "$(by_scale 300 60)" heard_all bcache "$N" ||
    fail "backlog: $(heard bcache) cache messages of $N"
read -r _ b_last <<<"$(span bcache)"
b_s=$(elapsed "$t0" "$b_last")
b_cpu=$(cpu_seconds "$pid")
b_cached=$(cached_versions bcache)
[ "$b_cached" -eq "$N" ] || fail "backlog: $b_cached versions cached of $N"
detail "backlog: $N files in $b_s s from the peer's start; peer CPU $b_cpu s;" \
    "peer $(counters B | cut -d' ' -f2-)"
# The ceiling: curl fetching the same hrefs through the same proxies, as many connections per
# origin as the peer keeps (4 by default).
cat "$T"/feed/backlog.*.msgs | grep -o '"href":"[^"]*"' | cut -d'"' -f4 |
    awk '{ printf "url = \"%s\"\noutput = \"/dev/null\"\n", $0 }' >"$T/curl.cfg"
k0=$EPOCHREALTIME
curl --parallel --parallel-max $((CENTRES * 4)) -sS --fail --cacert "$T/pki/ca.pem" \
    -K "$T/curl.cfg" >"$T/curl.out" 2>&1 || fail "ceiling: curl failed: $(tail -n 5 "$T/curl.out")"
k_s=$(elapsed "$k0" "$EPOCHREALTIME")
detail "backlog ceiling: curl --parallel-max $((CENTRES * 4)) fetched the $N files in $k_s s"

# ---------------------------------------------------------------------------------------------
# 3. Serving: SERVE_CONNS concurrent downloads of one SERVE_MIB MiB object, peer against nginx

mkdir -p "$(tree_of B)/bench"
head -c $((SERVE_MIB << 20)) /dev/urandom >"$(tree_of B)/bench/big.bin"
start_nginx N "$(tree_of B)"
# Both read the file from the page cache.
cat "$(tree_of B)/bench/big.bin" >/dev/null

# serve_figures NAME URL PIDS...: wrk -t2 -cSERVE_CONNS; sets NAME_mib_s, NAME_done, NAME_failed.
serve_figures() {
    local name=$1 url=$2 c0 m0 mib ndone failed timeouts
    shift 2
    c0=$(cpu_seconds "$@")
    m0=$(machine_ticks)
    wrk -t2 -c"$SERVE_CONNS" -d"${SERVE_SECONDS}s" --timeout 30s "$url" >"$T/wrk.$name" 2>&1 ||
        fail "wrk $url failed: $(cat "$T/wrk.$name")"
    mib=$(awk '/^Transfer\/sec/ { v = $2; u = substr(v, length(v) - 1); v += 0
            if (u == "GB") v *= 1024; else if (u == "KB") v /= 1024
            printf "%.0f\n", v }' "$T/wrk.$name")
    ndone=$(awk '/requests in/ { print $1 }' "$T/wrk.$name")
    # Connect, read and write errors and non-2xx answers; requests still running at the end
    # (timeouts, over 30 s) are counted apart.
    failed=$(awk '/Socket errors/ { gsub(/,/, ""); f += $4 + $6 + $8 }
        /Non-2xx/ { f += $NF } END { print f + 0 }' "$T/wrk.$name")
    timeouts=$(awk '/Socket errors/ { print $NF + 0 }' "$T/wrk.$name")
    detail "serve $name: $SERVE_CONNS connections for $SERVE_SECONDS s: $mib MiB/s, $ndone" \
        "requests completed, $failed failed, ${timeouts:-0} timed out; server CPU" \
        "$(awk -v a="$c0" -v b="$(cpu_seconds "$@")" 'BEGIN { printf "%.2f", b - a }') s," \
        "machine busy $(machine_busy "$m0" "$(machine_ticks)")%"
    eval "${name}_mib_s=$mib ${name}_done=$ndone ${name}_failed=$failed"
}
serve_figures peer "$(base_url B)/bench/big.bin" "$(pid_of B)"
# shellcheck disable=SC2046 # the pids, one word each
serve_figures nginx "$(nginx_url N)/bench/big.bin" $(tree_pids "$(pid_of N)")

# shellcheck disable=SC2154 # set by serve_figures
summary gc "files=$N size=$SIZES centres=$CENTRES rate=$((CENTRES * RATE)) proto=$PROTO" \
    "live_s=$live_s pub_s=$pub_s lag_s=$lag_s cache_msgs_s=$msgs_s cached=$cached" \
    "cpu_s=$cpu cpu_pct=$cpu_pct meets_wmo=$meets" \
    "backlog_s=$b_s backlog_files_s=$(per_second "$N" "$b_s") backlog_cpu_s=$b_cpu" \
    "backlog_ceiling_s=$k_s backlog_vs_ceiling=$(ratio "$k_s" "$b_s")" \
    "serve_mib=$SERVE_MIB serve_conns=$SERVE_CONNS serve_mib_s=$peer_mib_s" \
    "serve_done=$peer_done serve_failed=$peer_failed nginx_mib_s=$nginx_mib_s" \
    "nginx_done=$nginx_done nginx_failed=$nginx_failed" \
    "serve_vs_nginx=$(ratio "$peer_mib_s" "$nginx_mib_s")"
