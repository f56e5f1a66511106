#!/bin/bash
# 30-large.sh: relay of a few large files, against the download-and-verify ceiling measured in the
# same run from the same nginx: curl -o /dev/null of the files one after the other on one
# keep-alive connection, plus sha512sum of the same files (ceiling = bytes / (curl time +
# sha512sum time)). curl piped into sha512sum is shown too, as a detail.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib_bench.sh"

# BENCH_LARGE_FILES and BENCH_LARGE_FILE_MIB change the count and size (MiB) of the files.
N=${BENCH_LARGE_FILES:-4}
MIB=${BENCH_LARGE_FILE_MIB:-$(by_scale 256 16)}
SIZE=$((MIB * 1024 * 1024))
BYTES=$((N * SIZE))

start_broker up
start_broker down
mkdir -p "$T/src"
start_nginx web "$T/src"
t=$EPOCHREALTIME
make_feed "$T/src" "$(nginx_url web)" large "$N" "$SIZE"
detail "made $N files of $MIB MiB in $(elapsed "$t" "$EPOCHREALTIME") s"

mesh_peer L down up -- "${PEER_ARGS[@]}"
wait_connected L 1
pid=$(pid_of L)
start_counter cdown down "$N"
perf_attach "$pid"
t0=$EPOCHREALTIME
publish_feed up large
wait_until "$(by_scale 600 120)" counter_done cdown "$N" ||
    fail "downstream got $(counted cdown) of $N announcements"
secs=$(elapsed "$t0" "$(last_arrival cdown)")
cpu=$(cpu_seconds "$pid")
threads=$(thread_cpu "$pid")
hwm=$(kib "$pid" VmHWM)
perf_report large
stop_pid "$pid"
(cd "$T/src" && xargs -d '\n' sha512sum -- <"$T/feed/large.list") >"$T/sums"
(cd "$(tree_of L)" && sha512sum --quiet --strict -c "$T/sums") >&2 ||
    fail "the peer's copies differ from the originals"
relay=$(awk -v b="$BYTES" -v s="$secs" 'BEGIN { printf "%.1f\n", b / 1048576 / s }')
detail "relay: $N x $MIB MiB in $secs s (publish to last re-announcement); peer CPU $cpu s," \
    "peak RSS $hwm KiB"
detail "relay: peer threads, user+system CPU s: $threads"

# The ceiling, from the same nginx and the same files (in the page cache, as for the peer).
args=()
while IFS= read -r rel; do
    args+=(-o /dev/null "$(nginx_url web)/$rel")
done <"$T/feed/large.list"
t=$EPOCHREALTIME
curl -fsS "${args[@]}" || fail "curl of the large files failed"
curl_secs=$(elapsed "$t" "$EPOCHREALTIME")
t=$EPOCHREALTIME
(cd "$T/src" && xargs -d '\n' sha512sum -- <"$T/feed/large.list") >/dev/null
sha_secs=$(elapsed "$t" "$EPOCHREALTIME")
t=$EPOCHREALTIME
while IFS= read -r rel; do
    curl -fsS "$(nginx_url web)/$rel" | sha512sum >/dev/null
done <"$T/feed/large.list"
piped_secs=$(elapsed "$t" "$EPOCHREALTIME")
mibs() {
    awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.1f\n", b / 1048576 / s }'
}
ceiling=$(mibs "$(awk -v a="$curl_secs" -v b="$sha_secs" 'BEGIN { print a + b }')")
detail "curl -o /dev/null: $(mibs "$curl_secs") MiB/s; sha512sum: $(mibs "$sha_secs") MiB/s;" \
    "download-and-verify ceiling (bytes / (curl + sha512sum time)): $ceiling MiB/s"
detail "curl | sha512sum, file by file: $(mibs "$piped_secs") MiB/s (relay/piped" \
    "$(ratio "$relay" "$(mibs "$piped_secs")"))"

summary large "files=$N file_mib=$MIB seconds=$secs relay_mib_s=$relay ceiling_mib_s=$ceiling" \
    "ratio=$(ratio "$relay" "$ceiling") cpu_s=$cpu peak_rss_kib=$hwm"
