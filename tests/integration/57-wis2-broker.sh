#!/bin/bash
# 57-wis2-broker.sh: `wmesh gb`, a WIS2 Global Broker, against the WMO Global Broker functional
# tests (wis2-global-services-testing, tests/global_broker/gb_functional_tests.py) on this
# machine: nodes io-wis2dev-11..15-test each on a mosquitto of their own, the GB linked to them,
# a subscriber on the GB's broker as `everyone` would be.
#  8. The same message id from 4 centres: exactly one goes out; received +1 per centre,
#     published +1 once.
#  9. Node 12 publishing under centre 14's id: nothing out, no metric of centre 14 moves.
#  10/11. One message on each of the 21 valid topics: all go out, byte for byte, same topic.
#  12. The 22 invalid topics: none goes out; invalid_topic +20 (the two origin/a/wis3/...
#      topics never reach the GB: the node brokers deliver origin/a/wis2/<centre>/# only).
#  13. The 15 invalid messages: none goes out, invalid_format +15.
#  Then: connected_flag 1, and 0 once a node broker stops; two GBs each subscribed to the
#  other's broker publish each message once on each broker.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

# The brokers carry WIS2 topics: owner (a node, the GB) writes, guest (everyone) reads.
broker_acl '*' owner:origin/# owner:cache/# guest:origin/a/wis2/# guest:cache/a/wis2/#

command -v python3 >/dev/null || skip "python3 not found"
GB_ID=io-wis2dev-gb

# start_gb NAME HOME ARGS...: wmesh gb publishing on broker HOME, /metrics on a free port.
start_gb() {
    local name=$1 home=$2 port
    shift 2
    port=$(free_port)
    mkdir -p "$T/$name"
    echo "$port" >"$T/$name/http_port"
    "$WMESH" gb --name "$name" --centre-id "$GB_ID" --post-broker "$(broker_url "$home" owner)" \
        --http-listen "127.0.0.1:$port" -v "$@" 2>>"$T/$name.log" &
    track "$!"
    echo "$!" >"$T/$name/pid"
    wait_until 15 metrics_ready "$name" || fail "gb $name did not answer on port $port"
    note "gb $name on http port $port"
}

# gbm GB FAMILY CENTRE: one wmo_wis2_gb_FAMILY series of GB (0 when absent).
gbm() {
    metric "$1" "wmo_wis2_gb_$2{centre_id=\"$3\",report_by=\"$GB_ID\"}"
}

# start_sub NAME BROKER: everyone's view of BROKER: "topic payload" lines in $T/NAME.msgs.
start_sub() {
    mkdir -p "$T/$1"
    : >"$T/$1.msgs"
    mosquitto_sub -h 127.0.0.1 -p "$(broker_port "$2")" -u guest -P guestpw -i "sub-$1-$$" \
        -q 1 -v -t 'origin/a/wis2/#' -t 'cache/a/wis2/#' >>"$T/$1.msgs" 2>>"$T/$1.log" &
    track "$!"
    wait_until 10 sub_ready "$1" "$2" || fail "subscriber $1 did not subscribe"
}
sub_ready() {
    pub "$2" origin/a/wis2/ping/metadata "ping-$1" 2>/dev/null
    grep -q "^origin/a/wis2/ping/metadata ping-$1\$" "$T/$1.msgs"
}

# count_out SUB NEEDLE: lines SUB saw holding NEEDLE.
count_out() {
    grep -cF -- "$2" "$T/$1.msgs" || true
}
count_is() {
    [ "$(count_out "$1" "$2")" -eq "$3" ]
}

# node N: the broker of centre io-wis2dev-N-test.
centre() {
    echo "io-wis2dev-$1-test"
}

# Messages: generated once, one file per case, "topic<TAB>payload" a line.
python3 - "$T/msgs" <<'PY'
import json, os, sys, uuid
out = sys.argv[1]
os.makedirs(out)
def wnm(topic, data_id, **over):
    m = {"id": str(uuid.uuid4()),
         "conformsTo": ["http://wis.wmo.int/spec/wnm/1/conf/core"],
         "type": "Feature",
         "geometry": {"type": "Point", "coordinates": [-84.8428, 39.7572]},
         "properties": {"data_id": data_id, "datetime": "2024-08-28T19:35:00Z",
                        "pubtime": "2024-08-28T19:25:07Z",
                        "integrity": {"method": "sha512", "value": "A2KNxvks=="}},
         "links": [{"rel": "canonical", "type": "application/octet-stream",
                    "href": "https://test.wis2dev.io/" + data_id, "length": 300}]}
    for k, v in over.items():
        if k == "props":
            for pk, pv in v.items():
                if pv is False: m["properties"].pop(pk, None)
                else: m["properties"][pk] = pv
        elif v is False: m.pop(k, None)
        else: m[k] = v
    return m
def write(name, rows):
    with open(os.path.join(out, name), "w") as f:
        for topic, m in rows:
            f.write(topic + "\t" + json.dumps(m, separators=(",", ":")) + "\n")
synop = "origin/a/wis2/io-wis2dev-%d-test/data/core/weather/surface-based-observations/synop"
same = str(uuid.uuid4())
write("t8", [(synop % c, wnm(synop % c, "t8-%d" % c, id=same,
              props={"pubtime": "2024-09-23T11:37:12Z", "datetime": "2024-09-23T11:37:12Z"}))
             for c in (12, 13, 14, 15)])
ship14 = "origin/a/wis2/io-wis2dev-14-test/data/core/weather/surface-based-observations/ship"
write("t9", [(ship14, wnm(ship14, "t9-foreign"))])
valid = """origin/a/wis2/io-wis2dev-12-test/metadata
origin/a/wis2/io-wis2dev-12-test/metadata/core/weather/surface-based-observations/synop
origin/a/wis2/io-wis2dev-13-test/data/core/weather/aviation/metar
origin/a/wis2/io-wis2dev-13-test/data/core/weather/surface-based-observations/synop
origin/a/wis2/io-wis2dev-14-test/data/core/weather/surface-based-observations/ship
origin/a/wis2/io-wis2dev-14-test/data/core/weather/space-based-observations/sentinel-2b/msi
origin/a/wis2/io-wis2dev-15-test/data/core/weather/space-based-observations/swot/poseidon-3c
origin/a/wis2/io-wis2dev-15-test/data/core/space-weather/space-based-observations/xmm-newton/epic
origin/a/wis2/io-wis2dev-11-test/data/core/space-weather/space-based-observations/themis-a/scm
origin/a/wis2/io-wis2dev-11-test/data/core/weather/prediction/analysis/nowcasting/deterministic/global
origin/a/wis2/io-wis2dev-12-test/data/core/weather/prediction/analysis/seasonal/deterministic/global
origin/a/wis2/io-wis2dev-12-test/data/core/climate/surface-based-observations/monthly
origin/a/wis2/io-wis2dev-13-test/data/core/climate/surface-based-observations/daily
origin/a/wis2/io-wis2dev-13-test/data/core/cryosphere/experimental
origin/a/wis2/io-wis2dev-14-test/data/core/cryosphere/experimental/graviton/lambda
origin/a/wis2/io-wis2dev-14-test/data/core/hydrology/experimental
origin/a/wis2/io-wis2dev-15-test/data/core/hydrology/experimental/turbulent/laminar/flows
origin/a/wis2/io-wis2dev-15-test/data/core/atmospheric-composition/experimental
origin/a/wis2/io-wis2dev-13-test/data/core/atmospheric-composition/experimental/smog/tests
origin/a/wis2/io-wis2dev-15-test/data/core/ocean/surface-based-observations/drifting-buoys
origin/a/wis2/io-wis2dev-14-test/data/core/ocean/surface-based-observations/sea-ice""".split()
write("t10", [(t, wnm(t, "t10-%d" % i)) for i, t in enumerate(valid)])
invalid = """origin/a/wis2/io-wis2dev-12-test/data
origin/a/wis2/io-wis2dev-12-test/data/core
origin/a/wis2/io-wis2dev-14-test/data/core/weather/surface-based-observations
origin/a/wis3/io-wis2dev-15-test/data/core/weather/surface-based-observations/synop
origin/a/wis2/io-wis2dev-15-test/data/core/weather/surface-sed-observations/synop
origin/a/wis3/io-wis2dev-11-test/data/core/weather/surface-based-observations/synop
origin/a/wis2/io-wis2dev-11-test/database/core/weather/surface-based-observations/synop
origin/a/wis2/io-wis2dev-12-test/data/core/weather/surface-based-observations/synop/prediction
origin/a/wis2/io-wis2dev-12-test/data/core/weather/space-based-observations/smm-newton/epic
origin/a/wis2/io-wis2dev-13-test/data/core/weather/space-based-observations/themis-a/scm
origin/a/wis2/io-wis2dev-13-test/data/core/space-weather/space-based-observations/sentinel-2b/msi
origin/a/wis2/io-wis2dev-14-test/data/core/space-weather/space-based-observations/swot/poseidon-3c
origin/a/wis2/io-wis2dev-14-test/data/core/geospatial/surface-based-observations/synop
origin/a/wis2/io-wis2dev-15-test/data/core/ibweather/surface-based-observations/dynop
origin/a/wis2/io-wis2dev-15-test/data/core/atmospheric-composition/satellite
origin/a/wis2/io-wis2dev-12-test/data/core/atmospheric-composition
origin/a/wis2/io-wis2dev-12-test/data/core/weather/prediction
origin/a/wis2/io-wis2dev-13-test/data/core/weather/prediction/analysis
origin/a/wis2/io-wis2dev-13-test/data/core/weather/prediction/analysis/nowcasting
origin/a/wis2/io-wis2dev-14-test/data/core/weather/prediction/hindcast
origin/a/wis2/io-wis2dev-14-test/data/core/weather/prediction/hindcast/short-range
origin/a/wis2/io-wis2dev-15-test/data/core/weather/prediction/hindcast/nowcasting""".split()
write("t12", [(t, wnm(t, "t12-%d" % i)) for i, t in enumerate(invalid)])
# Test 13's pub_invalid_mesg applied as the generator does: False removes the key.
t12 = synop % 12
bad = [{"id": False}, {"id": "This is NOT a UUID"}, {"type": False}, {"type": "Not Feature"},
       {"links": [{"rel": "canonical"}]}, {"links": [{"href": "https://test.wis2dev.io/x"}]},
       {"conformsTo": []}, {"conformsTo": ["This is NOT correct"]},
       {"props": {"data_id": False}}, {"props": {"datetime": False}},
       {"props": {"datetime": "Not RFC3339 Compliant"}},
       {"props": {"datetime": False, "end_datetime": "2024-07-20t19:12:29z"}},
       {"props": {"datetime": False, "start_datetime": "2024-07-20t19:12:29z"}},
       {"props": {"pubtime": False}},
       {"props": {"start_datetime": "2024-07-20t19:12:29z",
                  "end_datetime": "2024-07-20t19:12:29z"}}]
rows = []
for i, over in enumerate(bad):
    m = wnm(t12, "t13-%d" % i, **over)
    if "data_id" not in m["properties"]:
        m["properties"]["wigos_station_identifier"] = "t13-%d" % i
    rows.append((t12, m))
write("t13", rows)
for c in (11, 12, 13, 14, 15):
    write("sentinel%d-%s" % (c, "a"), [(synop % c, wnm(synop % c, "sentinel-%d-a" % c))])
    for tag in "bc":
        write("sentinel%d-%s" % (c, tag), [(synop % c, wnm(synop % c, "sentinel-%d-%s" % (c, tag)))])
loop13 = synop % 13
write("loop", [(loop13, wnm(loop13, "loop-%d" % i)) for i in range(5)])
PY

# send FILE: publishes each line of $T/msgs/FILE on the broker of the centre in its topic.
send() {
    local topic payload n
    while IFS=$'\t' read -r topic payload; do
        n=$(sed -n 's|.*/io-wis2dev-\([0-9][0-9]\)-test/.*|\1|p;s|.*/io-wis2dev-\([0-9][0-9]\)-test$|\1|p' <<<"$topic" | head -n 1)
        pub "${SEND_TO:-n$n}" "$topic" "$payload"
    done <"$T/msgs/$1"
}

# sentinel N TAG: a valid message through node N comes out: everything sent before it on that
# node has been decided.
sentinel() {
    send "sentinel$1-$2"
    wait_until 10 count_is home "\"sentinel-$1-$2\"" 1 || fail "the sentinel of node $1 did not come out"
}

for n in 11 12 13 14 15; do
    start_broker "n$n"
done
start_broker home
nodes=()
for n in 11 12 13 14 15; do
    nodes+=(--node "$(centre "$n")=$(broker_url "n$n" guest)")
done
start_gb gb home "${nodes[@]}"
start_sub home home
for n in 11 12 13 14 15; do
    wait_until 10 metric_is gb "wmo_wis2_gb_connected_flag{centre_id=\"$(centre "$n")\",report_by=\"$GB_ID\"}" 1 ||
        fail "gb not connected to node $n"
done
note "gb connected to the 5 nodes, connected_flag 1 each"

# --- test 8: anti-loop -------------------------------------------------------------------------
send t8
for n in 12 13 14 15; do
    wait_until 10 metric_is gb "wmo_wis2_gb_messages_received_total{centre_id=\"$(centre "$n")\",report_by=\"$GB_ID\"}" 1 ||
        fail "test 8: centre $n: received is $(gbm gb messages_received_total "$(centre "$n")"), not 1"
done
for n in 12 13 14 15; do sentinel "$n" a; done
out=$(grep -cE '"t8-1[2-5]"' "$T/home.msgs" || true)
[ "$out" -eq 1 ] || fail "test 8: $out of the 4 messages with one id came out, not 1"
published=0
for n in 12 13 14 15; do
    published=$((published + $(gbm gb messages_published_total "$(centre "$n")") - 1)) # sentinel
done
[ "$published" -eq 1 ] || fail "test 8: published went up by $published, not 1"
note "test 8: one id from 4 centres: 1 out, received +1 per centre, published +1"

# --- test 9: a node publishing under another centre-id -----------------------------------------
before14=$(gbm gb messages_received_total "$(centre 14)")
SEND_TO=n12 send t9
sentinel 12 c
[ "$(count_out home '"t9-foreign"')" -eq 0 ] || fail "test 9: node 12's message as centre 14 came out"
[ "$(gbm gb messages_received_total "$(centre 14)")" = "$before14" ] ||
    fail "test 9: centre 14's received moved"
note "test 9: node 12 publishing as centre 14: nothing out, no metric"

# --- tests 10/11: valid topics, byte for byte --------------------------------------------------
rec0=$(metric gb wmo_wis2_gb_messages_received_total)
pub0=$(metric gb wmo_wis2_gb_messages_published_total)
send t10
wait_until 15 count_is home '"t10-' 21 || fail "test 10: $(count_out home '"t10-') of 21 came out"
while IFS=$'\t' read -r topic payload; do
    grep -qxF -- "$topic $payload" "$T/home.msgs" || fail "test 10: not byte for byte on $topic"
done <"$T/msgs/t10"
wait_until 5 metric_is gb wmo_wis2_gb_messages_published_total $((pub0 + 21)) ||
    fail "test 10: published went from $pub0 to $(metric gb wmo_wis2_gb_messages_published_total)"
[ "$(metric gb wmo_wis2_gb_messages_received_total)" -eq $((rec0 + 21)) ] || fail "test 10: received"
note "tests 10/11: 21 valid topics: all 21 out on the same topic, byte for byte; received and published +21"

# --- test 12: invalid topics -------------------------------------------------------------------
inv0=$(metric gb wmo_wis2_gb_messages_invalid_topic_total)
send t12
wait_until 10 metric_is gb wmo_wis2_gb_messages_invalid_topic_total $((inv0 + 20)) ||
    fail "test 12: invalid_topic went from $inv0 to $(metric gb wmo_wis2_gb_messages_invalid_topic_total), not +20"
for n in 11 12 13 14 15; do sentinel "$n" b; done
[ "$(count_out home '"t12-')" -eq 0 ] || fail "test 12: an invalid topic came out"
note "test 12: 22 invalid topics: none out, invalid_topic +20 (2 on origin/a/wis3 never delivered)"

# --- test 13: invalid messages -----------------------------------------------------------------
fmt0=$(gbm gb messages_invalid_format_total "$(centre 12)")
send t13
wait_until 10 metric_is gb "wmo_wis2_gb_messages_invalid_format_total{centre_id=\"$(centre 12)\",report_by=\"$GB_ID\"}" $((fmt0 + 15)) ||
    fail "test 13: invalid_format went from $fmt0 to $(gbm gb messages_invalid_format_total "$(centre 12)"), not +15"
[ "$(count_out home '"t13-')" -eq 0 ] || fail "test 13: an invalid message came out"
note "test 13: 15 invalid messages: none out, invalid_format +15"

# --- connected_flag ----------------------------------------------------------------------------
stop_pid "$(cat "$T/n11/pid")"
wait_until 10 metric_is gb "wmo_wis2_gb_connected_flag{centre_id=\"$(centre 11)\",report_by=\"$GB_ID\"}" 0 ||
    fail "connected_flag of node 11 did not drop to 0"
[ "$(gbm gb connected_flag "$(centre 12)")" = 1 ] || fail "connected_flag of node 12 dropped too"
note "connected_flag: node 11's broker stopped: 0 for it, 1 for the others"

# --- a loop of two Global Brokers --------------------------------------------------------------
# gbA2 on home (node 13 and homeB), gbB on homeB (home): a message goes node 13 -> gbA2 -> home
# -> gbB -> homeB -> gbA2, which drops it as a duplicate.
stop_pid "$(cat "$T/gb/pid")"
start_broker homeB
start_gb gbB homeB --peer-broker "gba=$(broker_url home guest)"
start_gb gbA2 home --node "$(centre 13)=$(broker_url n13 guest)" --peer-broker "gbb=$(broker_url homeB guest)"
start_sub homeB homeB
wait_until 10 metric_is gbA2 'wmo_wis2_gb_connected_flag{centre_id="gbb",report_by="io-wis2dev-gb"}' 1 ||
    fail "gbA2 not connected to homeB"
wait_until 10 metric_is gbB 'wmo_wis2_gb_connected_flag{centre_id="gba",report_by="io-wis2dev-gb"}' 1 ||
    fail "gbB not connected to home"
dup0=$(metric gbA2 wmesh_gb_duplicates_total)
send loop
wait_until 10 count_is homeB '"loop-' 5 || fail "loop: $(count_out homeB '"loop-') of 5 reached homeB"
# Each comes back to gbA2 from homeB: dropped as a duplicate.
wait_until 10 metric_is gbA2 wmesh_gb_duplicates_total $((dup0 + 5)) ||
    fail "loop: gbA2 dropped $(($(metric gbA2 wmesh_gb_duplicates_total) - dup0)) echoes, not 5"
sentinel 13 c
[ "$(count_out home '"loop-')" -eq 5 ] || fail "loop: home has $(count_out home '"loop-'), not 5"
[ "$(count_out homeB '"loop-')" -eq 5 ] || fail "loop: homeB has $(count_out homeB '"loop-'), not 5"
note "loop of two GBs: each message once on the second broker, its echo dropped by the first"
