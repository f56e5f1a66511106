#!/bin/bash
# 60-wan.sh: one peer draining a backlog of files from 20 distant origins (round trips of 50 and
# 150 ms), over HTTP and over HTTPS, against the ceiling of the same harness in the same run
# (curl --parallel through the same links); then a steady feed, each file's delay counted in
# round trips of its origin. One summary line: wan.
#
# One nginx listens on 20 ports for HTTP and 20 for HTTPS (a CA and certificate made here); each
# origin is reachable only through a delay proxy of its own (tests/tools/delayproxy.c: a delay
# each way, the TCP handshake's round trip, the connections it accepted counted). Files i go to
# origin i % 20: the origins 0-9 are 50 ms away, 10-19 150 ms.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib_bench.sh"

N=$(by_scale 2000 200)
ORIGINS=20
SIZES=1024-174080 # 1 - 170 KiB, 85.5 KiB on average
STEADY_RATE=33
STEADY_SECONDS=$(by_scale 20 4)
NSTEADY=$((STEADY_RATE * STEADY_SECONDS))
# The ceiling's connections: as many as the peer may open to each origin.
CEILING_PER_ORIGIN=${BENCH_WAN_CEILING_PER_ORIGIN:-4}
PROTOCOLS=${BENCH_WAN_PROTOCOLS:-http https}
: "${WMESH_TOOLS:=$BENCH_DIR/../build/tools}"
[ -x "$WMESH_TOOLS/delayproxy" ] || fail "no $WMESH_TOOLS/delayproxy (make build/tools/delayproxy)"

rtt_of() { # origin -> round trip in ms
    if [ "$1" -lt $((ORIGINS / 2)) ]; then echo 50; else echo 150; fi
}

# ---------------------------------------------------------------------------------------------
# Origins: certificates, nginx, one delay proxy per origin and protocol

mkdir -p "$T/pki" "$T/src" "$T/web"
(cd "$T/pki" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=wmesh-bench-ca -keyout ca.key -out ca.pem \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
        -keyout server.key -out server.csr &&
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile ext -out server.pem) >"$T/pki.log" 2>&1 ||
    fail "cannot make certificates: $(cat "$T/pki.log")"

listens=""
for ((o = 0; o < ORIGINS; o++)); do
    hp=$(free_port)
    sp=$(free_port)
    echo "$hp" >"$T/web/http.$o"
    echo "$sp" >"$T/web/https.$o"
    listens="$listens        listen 127.0.0.1:$hp;
        listen 127.0.0.1:$sp ssl;
"
done
nginx_config web "$T/src" "$listens" "    ssl_certificate $T/pki/server.pem;
    ssl_certificate_key $T/pki/server.key;"
run_nginx web "http://127.0.0.1:$(cat "$T/web/http.0")/"

# Proxy (protocol, origin) listens on its own port, counts into $T/proxy/PROTO.O.count.
mkdir -p "$T/proxy"
for proto in $PROTOCOLS; do
    for ((o = 0; o < ORIGINS; o++)); do
        port=$(free_port)
        echo "$port" >"$T/proxy/$proto.$o.port"
        "$WMESH_TOOLS/delayproxy" --listen "127.0.0.1:$port" \
            --connect "127.0.0.1:$(cat "$T/web/$proto.$o")" --delay-ms $(($(rtt_of "$o") / 2)) \
            --handshake --count "$T/proxy/$proto.$o.count" 2>>"$T/proxy.log" &
        track "$!"
    done
done
for proto in $PROTOCOLS; do
    for ((o = 0; o < ORIGINS; o++)); do
        wait_until 10 port_in_use "$(cat "$T/proxy/$proto.$o.port")" ||
            fail "delay proxy $proto $o did not listen"
    done
done

# origin_url PROTO O: the baseUrl of origin O through its proxy.
origin_url() {
    echo "$1://127.0.0.1:$(cat "$T/proxy/$1.$2.port")/data"
}

# conn_counts PROTO: the connections each proxy of PROTO accepted so far, one line.
conn_counts() {
    local o line=""
    for ((o = 0; o < ORIGINS; o++)); do
        line="$line $(tr -d ' \n' <"$T/proxy/$1.$o.count")"
    done
    echo "$line"
}

# conn_stats "BEFORE" "AFTER": "MAX TOTAL" connections opened per origin between two counts.
conn_stats() {
    awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); split(b, y, " ")
        for (i = 1; i <= n; i++) { d = y[i] - x[i]; t += d; if (d > m) m = d }
        printf "%d %d\n", m, t }'
}

# ---------------------------------------------------------------------------------------------
# Files and announcements

t=$EPOCHREALTIME
make_feed "$T/src" http://origin.invalid/data wan "$N" "$SIZES"
make_feed "$T/src" http://origin.invalid/data steady "$NSTEADY" "$SIZES"
make_feed "$T/src" "http://127.0.0.1:$(cat "$T/web/http.0")/data" probe 1 1024
bytes=$(cd "$T/src" && xargs stat -c %s <"$T/feed/wan.list" | awk '{ s += $1 } END { print s }')
detail "made $N files of $SIZES bytes ($(awk -v b="$bytes" -v n="$N" \
    'BEGIN { printf "%.1f KiB", b / n / 1024 }') on average) and $NSTEADY more for the steady" \
    "feed in $(elapsed "$t" "$EPOCHREALTIME") s"

# spread TAG PROTO: TAG's announcements with their baseUrls through the proxies of PROTO, file
# i to origin i % ORIGINS, into $T/feed/TAG.PROTO.msgs; $T/feed/TAG.rtt: "relPath rtt_ms".
spread() {
    local tag=$1 proto=$2 urls="" o
    for ((o = 0; o < ORIGINS; o++)); do
        urls="$urls $(origin_url "$proto" "$o")"
    done
    read -r _ file <"$T/feed/$tag.topics"
    awk -v urls="$urls" -v rtts="$T/feed/$tag.rtt" -v half=$((ORIGINS / 2)) '
        BEGIN { n = split(urls, u, " ") }
        {
            o = (NR - 1) % n
            sub(/"baseUrl":"http:\/\/origin\.invalid\/data"/, "\"baseUrl\":\"" u[o + 1] "\"")
            print
            match($0, /"relPath":"[^"]*"/)
            print substr($0, RSTART + 11, RLENGTH - 12), (o < half ? 50 : 150) >rtts
        }' "$file" >"$T/feed/$tag.$proto.msgs"
}

# publish_msgs BROKER TAG FILE: the messages of FILE, one a line, QoS 1, on TAG's topic.
publish_msgs() {
    local topic
    read -r topic _ <"$T/feed/$2.topics"
    mosquitto_pub -h 127.0.0.1 -p "$(broker_port "$1")" -u owner -P ownerpw \
        -i "feed-$$-$RANDOM" -q 1 -t "$topic" -l <"$3" || fail "mosquitto_pub of $3 failed"
}

# ---------------------------------------------------------------------------------------------
# One protocol: the backlog, the steady feed, the ceiling

summary_fields=""

run_protocol() {
    local proto=$1 up=up_$1 down=down_$1 peer=R_$1 pid c0 c1 t0 t1 secs cpu hwm
    local -a args=("${PEER_ARGS[@]}")
    [ "$proto" = https ] && args+=(--cacert "$T/pki/ca.pem")
    spread wan "$proto"
    spread steady "$proto"
    start_broker "$up"
    start_broker "$down"
    # The persistent session first, proved by a probe file fetched from nginx directly.
    mesh_peer "$peer" "$down" "$up" -- "${args[@]}"
    wait_connected "$peer" 1
    publish_feed "$up" probe
    wait_until 30 metric_is "$peer" wmesh_published_total 1 || fail "the probe was not relayed"
    stop_pid "$(pid_of "$peer")"

    start_counter "c$proto" "$down" "$N"
    publish_msgs "$up" wan "$T/feed/wan.$proto.msgs"
    c0=$(conn_counts "$proto")
    t0=$EPOCHREALTIME
    mesh_peer "$peer" "$down" "$up" -- "${args[@]}"
    pid=$(pid_of "$peer")
    wait_until "$(by_scale 300 60)" counter_done "c$proto" "$N" ||
        fail "$proto: downstream got $(counted "c$proto") of $N announcements"
    t1=$(last_arrival "c$proto")
    cpu=$(cpu_seconds "$pid")
    c1=$(conn_counts "$proto")
    secs=$(elapsed "$t0" "$t1")
    read -r cmax ctotal <<<"$(conn_stats "$c0" "$c1")"
    detail "$proto backlog: $N files in $secs s, first re-announcement after" \
        "$(elapsed "$t0" "$(first_arrival "c$proto")") s; peer CPU $cpu s; connections opened" \
        "per origin:$(awk -v a="$c0" -v b="$c1" 'BEGIN { n = split(a, x, " "); split(b, y, " ")
            for (i = 1; i <= n; i++) printf " %d", y[i] - x[i] }')"
    detail "$proto backlog: peer $(counters "$peer" | cut -d' ' -f2-) (received downloads" \
        "inlined duplicates published errors)"

    # The steady feed, on the connections the backlog left.
    start_counter "s$proto" "$down" "$NSTEADY"
    local s0 s1
    s0=$(conn_counts "$proto")
    "$WMESH_BENCH_TOOLS/pace" "$STEADY_RATE" "$T/pubtimes.$proto" <"$T/feed/steady.$proto.msgs" \
        2>>"$T/pace.log" | publish_msgs "$up" steady /dev/stdin
    wait_until 60 counter_done "s$proto" "$NSTEADY" ||
        fail "$proto steady: downstream got $(counted "s$proto") of $NSTEADY announcements"
    s1=$(conn_counts "$proto")
    hwm=$(kib "$pid" VmHWM)
    stop_pid "$pid"
    [ "$(count_present "$(tree_of "$peer")" "$T/feed/wan.list")" -eq "$N" ] ||
        fail "$proto: the peer's tree holds $(count_present "$(tree_of "$peer")" \
            "$T/feed/wan.list") of $N files"
    # Delay of each file: its arrival downstream - its pubTime, in round trips of its origin.
    arrivals "s$proto" >"$T/steady.$proto.at"
    awk 'FILENAME == ARGV[1] { pub[$1] = $2; next } FILENAME == ARGV[2] { rtt[$1] = $2; next }
        ($1 in pub) { printf "%.6f %.6f\n", ($2 - pub[$1]) * 1000 / rtt[$1], ($2 - pub[$1]) }' \
        "$T/pubtimes.$proto" "$T/feed/steady.rtt" "$T/steady.$proto.at" >"$T/steady.$proto.delay"
    local rtts50 rtts99
    read -r rtts50 rtts99 <<<"$(cut -d' ' -f1 "$T/steady.$proto.delay" | sort -g | awk '
        { v[++n] = $1 }
        function rank(p,   r) { r = int(p * n); if (r < p * n) r++; if (r < 1) r = 1; return v[r] }
        END { if (n == 0) print "n/a n/a"; else printf "%.2f %.2f\n", rank(0.5), rank(0.99) }')"
    detail "$proto steady: $NSTEADY files at $STEADY_RATE/s; delay in round trips p50 $rtts50," \
        "p99 $rtts99; in ms $(cut -d' ' -f2 "$T/steady.$proto.delay" | ms_stats);" \
        "connections opened meanwhile: $(conn_stats "$s0" "$s1" | cut -d' ' -f2)"

    # The ceiling: curl fetching the same URLs through the same proxies, in the same order.
    awk '{ match($0, /"baseUrl":"[^"]*"/); b = substr($0, RSTART + 11, RLENGTH - 12)
           match($0, /"relPath":"[^"]*"/); r = substr($0, RSTART + 11, RLENGTH - 12)
           printf "url = \"%s/%s\"\noutput = \"/dev/null\"\n", b, r }' \
        "$T/feed/wan.$proto.msgs" >"$T/curl.$proto.cfg"
    local k0 k1 kt0 kt1 ksecs kmax ktotal
    k0=$(conn_counts "$proto")
    kt0=$EPOCHREALTIME
    curl --parallel --parallel-max $((ORIGINS * CEILING_PER_ORIGIN)) -sS --fail \
        --cacert "$T/pki/ca.pem" -K "$T/curl.$proto.cfg" >"$T/curl.$proto.out" 2>&1 ||
        fail "$proto ceiling: curl failed: $(tail -n 5 "$T/curl.$proto.out")"
    kt1=$EPOCHREALTIME
    k1=$(conn_counts "$proto")
    ksecs=$(elapsed "$kt0" "$kt1")
    read -r kmax ktotal <<<"$(conn_stats "$k0" "$k1")"
    detail "$proto ceiling: curl --parallel-max $((ORIGINS * CEILING_PER_ORIGIN)) fetched the" \
        "$N files in $ksecs s over $ktotal connections (at most $kmax per origin)"

    summary_fields="$summary_fields ${proto}_s=$secs ${proto}_files_s=$(per_second "$N" "$secs")\
 ${proto}_mb_s=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.1f", b / s / 1e6 }')\
 ${proto}_cpu_s=$cpu ${proto}_conns_max=$cmax ${proto}_conns_total=$ctotal\
 ${proto}_ceiling_s=$ksecs ${proto}_vs_ceiling=$(ratio "$ksecs" "$secs")\
 ${proto}_steady_p50_rtt=$rtts50 ${proto}_steady_p99_rtt=$rtts99 ${proto}_peak_rss_kib=$hwm"
}

for proto in $PROTOCOLS; do
    run_protocol "$proto"
done
summary wan "files=$N mean_kib=$(awk -v b="$bytes" -v n="$N" 'BEGIN { printf "%.1f", b / n / 1024 }')" \
    "origins=$ORIGINS rtt_ms=50,150$summary_fields"
