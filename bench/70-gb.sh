#!/bin/bash
# 70-gb.sh: wmesh gb, a WIS2 Global Broker, relaying from NODES node brokers to its local
# broker; and, in the same run, the ceiling: a mosquitto bridge relaying the same feed. One
# summary line: gb msg/s in and out, duplicates dropped, CPU, and the bridge's msg/s.
#
# The nodes are one mosquitto with NODES listeners (NODES processes cost 2 cores more than they
# measure); the GB links each listener as one node with a centre-id of its own. Messages (valid
# WIS2 notifications, about 600 bytes; one in DUP_EVERY carries the id of a message of the next
# node, as another Global Broker would send it back) are generated beforehand. While the GB is
# stopped (SIGSTOP) they are published in bulk (mosquitto_pub -l, one per node) and queue for
# it in the nodes' broker; it is then let go and timed until every unique message has reached
# its local broker. The bridge is timed the same way.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib_bench.sh"

NODES=$(by_scale 200 20)
PER_NODE=$(by_scale 500 100)
DUP_EVERY=20
TOTAL=$((NODES * PER_NODE))
UNIQUE=$((TOTAL - NODES * ((PER_NODE + DUP_EVERY - 1) / DUP_EVERY)))

broker_acl '*' owner:origin/# guest:origin/a/wis2/# xpublic/#

# The nodes' broker: NODES listeners.
start_broker nodes
ports=()
for i in $(seq 1 "$NODES"); do
    ports+=("$(free_port)")
done
stop_pid "$(cat "$T/nodes/pid")"
for p in "${ports[@]}"; do
    echo "listener $p 127.0.0.1" >>"$T/nodes/mosquitto.conf"
done
"$MOSQUITTO" -c "$T/nodes/mosquitto.conf" >>"$T/nodes.log" 2>&1 &
track "$!"
echo "$!" >"$T/nodes/pid"
wait_until 10 broker_ready nodes || fail "the nodes' broker did not restart with $NODES listeners"
start_broker home

t=$EPOCHREALTIME
python3 - "$T/feed" "$NODES" "$PER_NODE" "$DUP_EVERY" <<'PY' || fail "cannot generate the feed"
import json, os, sys, uuid
out, nodes, per, dup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(out)
ids = [[str(uuid.uuid4()) for _ in range(per)] for _ in range(nodes)]
for k in range(nodes):
    centre = "bench-%03d" % k
    with open(os.path.join(out, centre), "w") as f:
        for j in range(per):
            # A copy of the next node's message j + 1, which is itself an original.
            mid = ids[(k + 1) % nodes][j + 1] if j % dup == 0 else ids[k][j]
            m = {"id": mid, "conformsTo": ["http://wis.wmo.int/spec/wnm/1/conf/core"],
                 "type": "Feature",
                 "geometry": {"type": "Point", "coordinates": [6.146255, 46.223296]},
                 "properties": {"pubtime": "2024-09-23T11:37:12Z",
                                "datetime": "2024-09-23T11:30:00Z",
                                "data_id": "%s/synop/%06d" % (centre, j),
                                "metadata_id": "urn:wmo:md:%s:synop" % centre,
                                "integrity": {"method": "sha512", "value": "A" * 86 + "=="}},
                 "links": [{"href": "https://%s.example.org/data/%06d.bufr4" % (centre, j),
                            "rel": "canonical", "type": "application/bufr", "length": 1234}]}
            f.write(json.dumps(m, separators=(",", ":")) + "\n")
PY
detail "made $TOTAL messages ($UNIQUE unique ids) for $NODES nodes in $(elapsed "$t" "$EPOCHREALTIME") s"

topic_of_node() {
    echo "origin/a/wis2/bench-$(printf %03d "$1")/data/core/weather/surface-based-observations/synop"
}

# publish_all: every node's messages on its listener, the nodes in parallel (8 at a time).
publish_all() {
    local k=0 p pids=()
    for p in "${ports[@]}"; do
        mosquitto_pub -h 127.0.0.1 -p "$p" -u owner -P ownerpw -i "feed-$k-$$" -q 1 \
            -t "$(topic_of_node "$k")" -l <"$T/feed/bench-$(printf %03d "$k")" &
        pids+=("$!")
        k=$((k + 1))
        if [ ${#pids[@]} -eq 8 ]; then
            wait "${pids[@]}" || fail "mosquitto_pub failed"
            pids=()
        fi
    done
    [ ${#pids[@]} -eq 0 ] || wait "${pids[@]}" || fail "mosquitto_pub failed"
}

# start_count NAME BROKER N: "%U payload" of N messages on BROKER into $T/NAME.out.
start_count() {
    mosquitto_sub -h 127.0.0.1 -p "$(broker_port "$2")" -u guest -P guestpw -i "count-$1-$$" \
        -q 1 -C "$3" -F '%U %p' -t 'origin/a/wis2/#' >"$T/$1.out" 2>>"$T/$1.log" &
    track "$!"
    echo "$!" >"$T/$1.pid"
}
count_done() {
    ! kill -0 "$(cat "$T/$1.pid")" 2>/dev/null
}
span() {
    awk 'NR == 1 { f = $1 } { l = $1 } END { printf "%.3f\n", l - f }' "$T/$1.out"
}

# --- the GB -------------------------------------------------------------------------------------
k=0
for p in "${ports[@]}"; do
    echo "bench-$(printf %03d "$k")=mqtt://guest:guestpw@127.0.0.1:$p"
    k=$((k + 1))
done >"$T/nodes.list"
gbport=$(free_port)
mkdir -p "$T/gb"
echo "$gbport" >"$T/gb/http_port"
"$WMESH" gb --name gb --centre-id bench-gb --nodes-file "$T/nodes.list" \
    --post-broker "$(broker_url home owner)" --http-listen "127.0.0.1:$gbport" 2>>"$T/gb.log" &
track "$!"
gbpid=$!
echo "$gbpid" >"$T/gb/pid"
wait_until 30 metric_is gb wmo_wis2_gb_connected_flag "$NODES" ||
    fail "gb connected to $(metric gb wmo_wis2_gb_connected_flag) of $NODES nodes"
sleep 0.5 # the last SUBACKs after the last CONNACK
start_count gbout home "$UNIQUE"
sleep 0.3
kill -STOP "$gbpid"
t=$EPOCHREALTIME
publish_all
detail "published $TOTAL messages on $NODES listeners in $(elapsed "$t" "$EPOCHREALTIME") s (the gb stopped)"
cpu0=$(cpu_seconds "$gbpid")
read -r cpu_nodes0 cpu_home0 <<<"$(cpu_seconds "$(cat "$T/nodes/pid")") $(cpu_seconds "$(cat "$T/home/pid")")"
t0=$EPOCHREALTIME
kill -CONT "$gbpid"
wait_until 300 count_done gbout || fail "gb: $(wc -l <"$T/gbout.out") of $UNIQUE out"
t1=$EPOCHREALTIME
wait_until 30 metric_is gb wmo_wis2_gb_messages_received_total "$TOTAL" ||
    fail "gb received $(metric gb wmo_wis2_gb_messages_received_total) of $TOTAL"
t2=$EPOCHREALTIME
cpu1=$(cpu_seconds "$gbpid")
read -r cpu_nodes1 cpu_home1 <<<"$(cpu_seconds "$(cat "$T/nodes/pid")") $(cpu_seconds "$(cat "$T/home/pid")")"
# wmesh_gb_* figures are refreshed once a second.
wait_until 5 metric_is gb wmesh_gb_duplicates_total $((TOTAL - UNIQUE)) || true
dups=$(metric gb wmesh_gb_duplicates_total)
published=$(metric gb wmo_wis2_gb_messages_published_total)
twice=$(grep -o '"id":"[^"]*"' "$T/gbout.out" | sort | uniq -d | wc -l)
distinct=$(grep -o '"id":"[^"]*"' "$T/gbout.out" | sort -u | wc -l)
[ "$twice" -eq 0 ] || fail "gb: $twice ids went out twice"
[ "$distinct" -eq "$UNIQUE" ] || fail "gb: $distinct distinct ids out, not $UNIQUE"
[ "$dups" -eq $((TOTAL - UNIQUE)) ] || {
    curl -s "http://127.0.0.1:$(http_port gb)/metrics" | grep "^wmesh_gb\|total" | grep -v "^#" | head -12
    fail "gb: $dups duplicates dropped, not $((TOTAL - UNIQUE))"
}
out_s=$(elapsed "$t0" "$t1")
in_s=$(elapsed "$t0" "$t2")
gb_cpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
detail "gb: $TOTAL in over $in_s s, $UNIQUE out over $out_s s ($(span gbout) s first to last arrival), $dups duplicates dropped, published_total $published, none twice"
detail "cpu: gb $gb_cpu s, nodes' mosquitto $(awk -v a="$cpu_nodes0" -v b="$cpu_nodes1" 'BEGIN { printf "%.2f", b - a }') s, home mosquitto $(awk -v a="$cpu_home0" -v b="$cpu_home1" 'BEGIN { printf "%.2f", b - a }') s; gb max RSS $(kib "$gbpid" VmHWM) KiB"
gb_in=$(per_second "$TOTAL" "$in_s")
gb_out=$(per_second "$UNIQUE" "$out_s")
stop_pid "$gbpid"

# --- the ceiling: a mosquitto bridge from the nodes' broker -------------------------------------
start_broker ceil
stop_pid "$(cat "$T/ceil/pid")"
cat >>"$T/ceil/mosquitto.conf" <<EOF3
connection nodes
address 127.0.0.1:$(broker_port nodes)
remote_username guest
remote_password guestpw
topic origin/a/wis2/# in 1
cleansession true
EOF3
"$MOSQUITTO" -c "$T/ceil/mosquitto.conf" >>"$T/ceil.log" 2>&1 &
track "$!"
echo "$!" >"$T/ceil/pid"
wait_until 10 broker_ready ceil || fail "the bridge broker did not start"
start_count ceilout ceil "$TOTAL"
sleep 1 # the bridge's subscription
ceilpid=$(cat "$T/ceil/pid")
kill -STOP "$ceilpid"
publish_all
c0=$(cpu_seconds "$ceilpid")
t0=$EPOCHREALTIME
kill -CONT "$ceilpid"
wait_until 300 count_done ceilout || fail "bridge: $(wc -l <"$T/ceilout.out") of $TOTAL out"
ceil_s=$(elapsed "$t0" "$EPOCHREALTIME")
c1=$(cpu_seconds "$ceilpid")
ceil_rate=$(per_second "$TOTAL" "$ceil_s")
detail "bridge: $TOTAL out over $ceil_s s, bridge mosquitto cpu $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }') s"

summary gb "nodes=$NODES in=${gb_in}/s out=${gb_out}/s messages=$TOTAL duplicates=$dups" \
    "twice=0 gb_cpu=${gb_cpu}s bridge_ceiling=${ceil_rate}/s gb/bridge=$(ratio "$gb_out" "$ceil_rate")"
