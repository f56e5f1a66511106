#!/bin/bash
# 20-latency.sh: latency along a chain of three peers, A (origin) -> B -> C, at a steady rate.
#
# Files are posted into A's tree and announced on A's broker at RATE per second with the pubTime
# of their sending (bench/pace.c | mosquitto_pub -l); B relays from A's broker, C from B's. A
# counter on each broker records arrival times. Hop B = arrival on bB - arrival on bA (B's
# download, store and re-announcement, plus one broker pass), likewise hop C; publish = arrival
# on bA - pubTime (the publisher and one broker pass); end to end = arrival on bC - pubTime.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib_bench.sh"

RATE=200
DURATION=$(by_scale 30 5)
N=$((RATE * DURATION))
SIZE=1024
# BENCH_MIXED_MIB=M: meanwhile a file of M MiB goes down the chain every 5 s (a radar composite
# among the observations), to see what large transfers do to the small files' latency.
MIXED_MIB=${BENCH_MIXED_MIB:-0}
NLARGE=0
[ "$MIXED_MIB" -gt 0 ] && NLARGE=$(((DURATION + 4) / 5))

for b in bA bB bC; do
    start_broker "$b"
done
mesh_peer A bA -- "${PEER_ARGS[@]}"
mesh_peer B bB bA -- "${PEER_ARGS[@]}"
mesh_peer C bC bB -- "${PEER_ARGS[@]}"
wait_connected B 1
wait_connected C 1
# One more file than measured: the first is a warm-up sent once every process is connected,
# and the paced run starts when it has reached the end of the chain.
for b in bA bB bC; do
    start_counter "c$b" "$b" $((N + 1 + NLARGE))
done
make_feed "$(tree_of A)" "$(base_url A)" lat $((N + 1)) "$SIZE"
[ "$NLARGE" -gt 0 ] && make_feed "$(tree_of A)" "$(base_url A)" big "$NLARGE" $((MIXED_MIB << 20))

read -r topic file <"$T/feed/lat.topics"
("$WMESH_BENCH_TOOLS/pace" "$RATE" "$T/pubtimes" "$T/go" <"$file" 2>>"$T/pace.log" |
    mosquitto_pub -h 127.0.0.1 -p "$(broker_port bA)" -u owner -P ownerpw -i "pace-$$" -q 1 \
        -t "$topic" -l 2>>"$T/pace.log") &
pace_pid=$!
track "$pace_pid"
wait_until 30 counter_done cbC 1 || fail "the warm-up file did not reach C"
t0=$EPOCHREALTIME
touch "$T/go"
if [ "$NLARGE" -gt 0 ]; then
    read -r big_topic big_file <"$T/feed/big.topics"
    # Paced by sleep on purpose: this is the load, not a wait for readiness.
    while IFS= read -r msg; do
        mosquitto_pub -h 127.0.0.1 -p "$(broker_port bA)" -u owner -P ownerpw -i "big-$$" -q 1 \
            -t "$big_topic" -m "$msg" 2>>"$T/pace.log" || fail "publishing a large file failed"
        sleep 5
    done <"$big_file" &
    track "$!"
fi
wait "$pace_pid" || fail "paced publishing failed: $(cat "$T/pace.log")"
detail "published $N announcements in $(elapsed "$t0" "$EPOCHREALTIME") s; $(tail -n 1 "$T/pace.log")"
for b in bA bB bC; do
    wait_until 60 counter_done "c$b" $((N + 1 + NLARGE)) ||
        fail "$b carried $(counted "c$b") of $((N + 1 + NLARGE)) announcements"
done
[ "$NLARGE" -gt 0 ] && detail "meanwhile $NLARGE files of $MIXED_MIB MiB went down the chain," \
    "one every 5 s (BENCH_MIXED_MIB)"

# Arrival times of the measured files (the warm-up left out).
for b in bA bB bC; do
    arrivals "c$b" | awk 'NR == FNR { keep[$1] = 1; next } ($1 in keep)' "$T/pubtimes" - \
        >"$T/at.$b"
done
# delays FROM TO: TO's time minus FROM's for each relPath in both ("relPath time" files).
delays() {
    awk 'NR == FNR { t[$1] = $2; next } ($1 in t) { printf "%.6f\n", $2 - t[$1] }' "$1" "$2"
}
pub=$(delays "$T/pubtimes" "$T/at.bA" | ms_stats)
hopB=$(delays "$T/at.bA" "$T/at.bB" | ms_stats)
hopC=$(delays "$T/at.bB" "$T/at.bC" | ms_stats)
e2e=$(delays "$T/pubtimes" "$T/at.bC" | ms_stats)
detail "publish (pubTime -> bA):  $pub"
detail "hop B   (bA -> bB):       $hopB"
detail "hop C   (bB -> bC):       $hopC"
detail "end to end (pubTime -> bC): $e2e"
# Each peer's own part of its hop (its log's took=: from reading the announcement to handing
# the re-announcement to its broker link), the rest of the hop being the broker's pass and
# the waits for a CPU on both sides.
took() {
    awk '/ (downloaded|inlined) .* took=/ {
            t = $0; sub(/.* took=/, "", t); printf "%.6f\n", t / 1000 }' "$T/$1.log" | ms_stats
}
tookB=$(took B)
tookC=$(took C)
detail "peer B's part of hop B:   $tookB"
detail "peer C's part of hop C:   $tookC"
# What one synchronous write costs on the disk of the peers' state (a journal sync per batch and
# the file syncs of a durable store come before each re-announcement).
t=$EPOCHREALTIME
dd if=/dev/zero of="$T/sync.test" bs=4096 count=100 oflag=dsync 2>/dev/null
sync_ms=$(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f\n", (b - a) * 1000 / 100 }')
rm -f "$T/sync.test"
detail "disk: one 4 KiB O_DSYNC write takes $sync_ms ms on average (dd, 100 writes in $T)"
detail "peers: $(counters B C | tr '\n' ';') (received downloads inlined duplicates published errors)"

# "p50=1 p99=2 max=3 n=4" -> "P_p50_ms=1 P_p99_ms=2 P_max_ms=3"
keys() {
    echo "$2" | awk -v p="$1" '{ for (i = 1; i <= 3; i++) { split($i, kv, "="); \
        printf "%s%s_%s_ms=%s", (i > 1 ? " " : ""), p, kv[1], kv[2] } }'
}
summary latency "rate=$RATE seconds=$DURATION files=$N mixed_mib=$MIXED_MIB $(keys hopB "$hopB")" \
    "$(keys hopC "$hopC")" \
    "$(keys e2e "$e2e") $(keys peerB "$tookB") $(keys peerC "$tookC") disk_sync_ms=$sync_ms"
