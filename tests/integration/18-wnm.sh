#!/bin/bash
# 18-wnm.sh: WIS2 notification messages through one peer P (--post-format wnm, --max-size 10000,
# --max-message 8192) reading two upstream brokers, re-announcing on its home broker.
#  1. A message published by hand is fetched from its canonical link, stored at its data_id and
#     re-announced as WIS2: a new id, a canonical link to P's copy, the same pubtime and
#     properties, the checksum of what was stored.
#  2. The same message (data_id, pubtime, checksum) again on the same broker, then from the second
#     broker with another id and a canonical link to another server holding the same bytes: not
#     downloaded, not re-announced, counted as duplicates.
#  3. An update (rel "update", newer pubtime, other checksum) replaces the stored file: its bytes,
#     its checksum xattr and its mtime (the new pubtime); it is re-announced once, as WIS2 with a
#     new id, the new pubtime and its link pointing at P's copy.
#  4. A version older than the one held (another checksum, an earlier pubtime) is dropped: not
#     downloaded, logged and counted as stale; the original version coming round again is a
#     duplicate. The file keeps the newer bytes.
#  5. Size limits: a link whose length is over --max-size is refused before any download; a file
#     whose link says less but whose download turns out bigger is refused, not retried; a
#     message over --max-message is refused. Each in one log line, counted, nothing stored.
#  6. A deletion link is refused in one log line, counted as unsupported; the file stays.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

# wnm ID DATA_ID HREF FILE PUBTIME [REL [LENGTH [MORE]]]: a WIS2 notification message for FILE
# (its sha512); LENGTH defaults to FILE's size; MORE is more properties, with a leading comma.
wnm() {
    local sum length
    sum=$(checksum_b64 sha512 "$4")
    length=${7:-$(stat -c %s "$4")}
    printf '%s' '{"id":"'"$1"'","conformsTo":["http://wis.wmo.int/spec/wnm/1/conf/core"],' \
        '"type":"Feature","geometry":{"type":"Point","coordinates":[6.1462,46.2233]},' \
        '"properties":{"pubtime":"'"$5"'","datetime":"'"$5"'","integrity":{"method":"sha512",' \
        '"value":"'"$sum"'"},"data_id":"'"$2"'","metadata_id":"urn:wmo:md:ca:obs"'"${8:-}"'},' \
        '"links":[{"href":"'"$3"'","rel":"'"${6:-canonical}"'","type":"application/bufr",' \
        '"length":'"$length"'}]}'
}

# iso EPOCH: an RFC 3339 UTC pubtime.
iso() {
    date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ
}

# reannounced SUM: P's re-announcements (on the home broker) of the version with checksum SUM.
reannounced() {
    observed obs | grep -F "\"value\":\"$1\"" || true
}

# lines NEEDLE: how many lines of P's log hold NEEDLE.
lines() {
    grep -cF -- "$1" "$T/P.log" || true
}

start_broker up
start_broker up2
start_broker home
mesh_peer P home up up2 -- --post-format wnm --max-size 10000 --max-message 8192
start_observer obs home
start_serve S "$T/origin"
start_serve S2 "$T/mirror"
tree=$(tree_of P)
topic=xpublic/v03/post/wis2/ca/obs
data_id=wis2/ca/obs/UANT01_CWAO_200445.bufr4
name=UANT01_CWAO_200445.bufr4
mkdir -p "$T/origin/obs/v0" "$T/origin/obs/v2" "$T/origin/big" "$T/mirror/obs"
head -c 6000 /dev/urandom >"$T/origin/obs/$name"
cp "$T/origin/obs/$name" "$T/mirror/obs/$name"
head -c 5500 /dev/urandom >"$T/origin/obs/v2/$name"
head -c 5000 /dev/urandom >"$T/origin/obs/v0/$name"
sum1=$(checksum_b64 sha512 "$T/origin/obs/$name")
sum2=$(checksum_b64 sha512 "$T/origin/obs/v2/$name")
# Three versions, dated 30, 20 and 10 s ago (within --lag-warn: no late-announcement lines).
now=$(date -u +%s)
t0=$(iso $((now - 30)))
t1=$(iso $((now - 20)))
t2=$(iso $((now - 10)))

# --- 1. fetched, stored at data_id, re-announced ---------------------------------------------
id1=31e9d66a-cd83-4174-9429-b932f1abe1be
msg1=$(wnm $id1 $data_id "$(base_url S)/obs/$name" "$T/origin/obs/$name" "$t1")
pub up $topic "$msg1"
wait_until 20 test -f "$tree/$data_id" || fail "not stored at data_id"
cmp -s "$T/origin/obs/$name" "$tree/$data_id" || fail "stored bytes differ"
wait_until 10 observed_has obs $data_id || fail "not re-announced: $(observed obs)"
out=$(reannounced "$sum1")
grep -q '"type":"Feature"' <<<"$out" || fail "not a WIS2 message: $out"
grep -qF "\"id\":\"$id1\"" <<<"$out" && fail "the id was not renewed: $out"
grep -qF "\"href\":\"$(base_url P)/$data_id\",\"rel\":\"canonical\"" <<<"$out" ||
    fail "canonical link does not point at P's copy: $out"
grep -qF "\"pubtime\":\"$t1\"" <<<"$out" || fail "pubtime changed: $out"
grep -qF '"metadata_id":"urn:wmo:md:ca:obs"' <<<"$out" || fail "properties not kept: $out"
out_id1=$(json_str id <<<"$out")
note "WIS2 message fetched via its link, stored at data_id, re-announced as WIS2 from P"

# --- 2. the same version again: same broker, then another broker and server -----------------
pub up $topic "$msg1"
wait_until 10 metric_is P wmesh_duplicates_total 1 || fail "not a duplicate: $(counters P)"
msg1b=$(wnm 9a6b3c2d-1e0f-4a5b-8c7d-6e5f4a3b2c1d $data_id "$(base_url S2)/obs/$name" \
    "$T/mirror/obs/$name" "$t1")
pub up2 $topic "$msg1b"
wait_until 10 metric_is P wmesh_duplicates_total 2 ||
    fail "the same version from up2 and S2 is not a duplicate: $(counters P)"
[ "$(metric P wmesh_downloads_total)" = 1 ] || fail "downloaded again: $(counters P)"
[ "$(metric P wmesh_published_total)" = 1 ] || fail "re-announced again: $(counters P)"
note "the same data_id, pubtime and checksum again (same broker; up2 with S2's link): 2 duplicates"

# --- 3. an update replaces the stored file ---------------------------------------------------
id2=5d1f0a9e-8c7b-4a6d-9e5f-4c3b2a1d0e9f
pub up $topic "$(wnm $id2 $data_id "$(base_url S)/obs/v2/$name" "$T/origin/obs/v2/$name" "$t2" \
    update)"
wait_until 20 observed_has obs "$sum2" || fail "the update was not re-announced: $(observed obs)"
cmp -s "$T/origin/obs/v2/$name" "$tree/$data_id" || fail "the update did not replace the file"
xattr=$(getfattr --absolute-names --only-values -n user.sr_integrity "$tree/$data_id" 2>&1) ||
    fail "no checksum xattr: $xattr"
[ "$xattr" = "{\"method\":\"sha512\",\"value\":\"$sum2\"}" ] || fail "xattr not the update's: $xattr"
[ "$(stat -c %Y "$tree/$data_id")" = $((now - 10)) ] ||
    fail "mtime $(stat -c %Y "$tree/$data_id") is not the update's pubtime $((now - 10))"
out=$(reannounced "$sum2")
grep -q '"type":"Feature"' <<<"$out" || fail "the update not re-announced as WIS2: $out"
out_id2=$(json_str id <<<"$out")
if [ -z "$out_id2" ] || [ "$out_id2" = $id2 ] || [ "$out_id2" = "$out_id1" ]; then
    fail "the update's id was not renewed ($out_id2): $out"
fi
grep -qF "\"pubtime\":\"$t2\"" <<<"$out" || fail "the update's pubtime changed: $out"
# The link keeps its relation, so that caches downstream take it as an update too.
grep -qF "\"href\":\"$(base_url P)/$data_id\",\"rel\":\"update\"" <<<"$out" ||
    fail "the update's link does not point at P's copy: $out"
note "update (newer pubtime): file, xattr and mtime replaced; re-announced with id $out_id2"

# --- 4. older versions are dropped -----------------------------------------------------------
pub up2 $topic "$(wnm 0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f $data_id "$(base_url S)/obs/v0/$name" \
    "$T/origin/obs/v0/$name" "$t0")"
wait_until 10 metric_is P 'wmesh_rejected_total{reason="stale"}' 1 ||
    fail "the older version was not refused as stale: $(counters P)"
grep -qF "rejected older than the version held $data_id" "$T/P.log" ||
    fail "the older version was not logged as such"
pub up2 $topic "$msg1" # the first version, coming round again after the update
wait_until 10 metric_is P wmesh_duplicates_total 3 || fail "version 1 again: $(counters P)"
cmp -s "$T/origin/obs/v2/$name" "$tree/$data_id" || fail "an older version replaced the update"
[ "$(metric P wmesh_downloads_total)" = 2 ] || fail "an older version was downloaded: $(counters P)"
note "an older version: rejected as stale; version 1 again: duplicate; the update stays"

# --- 5. size limits --------------------------------------------------------------------------
head -c 20000 /dev/urandom >"$T/origin/big/big1.bufr4"
head -c 20000 /dev/urandom >"$T/origin/big/big2.bufr4"
head -c 100 /dev/urandom >"$T/origin/big/big3.bufr4"
# a. The link says 20000 bytes: refused before any download.
pub up $topic "$(wnm 1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e wis2/ca/big/big1.bufr4 \
    "$(base_url S)/big/big1.bufr4" "$T/origin/big/big1.bufr4" "$t2")"
wait_until 10 metric_is P 'wmesh_rejected_total{reason="too_big"}' 1 ||
    fail "a link length over --max-size was not refused: $(counters P)"
[ "$(metric P wmesh_download_errors_total)" = 0 ] || fail "a download was tried: $(counters P)"
# b. The link says 5000 bytes, the server sends 20000: refused once the download shows it.
pub up $topic "$(wnm 2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f wis2/ca/big/big2.bufr4 \
    "$(base_url S)/big/big2.bufr4" "$T/origin/big/big2.bufr4" "$t2" canonical 5000)"
wait_until 10 metric_is P 'wmesh_rejected_total{reason="too_big"}' 2 ||
    fail "a download over --max-size was not refused: $(counters P)"
[ "$(metric P wmesh_download_errors_total)" = 1 ] || fail "not one cut download: $(counters P)"
# c. A 9000-byte message (WIS2 allows 8192).
pad=$(head -c 8500 /dev/zero | tr '\0' x)
pub up $topic "$(wnm 3d4e5f6a-7b8c-4d9e-8f0a-2b3c4d5e6f7a wis2/ca/big/big3.bufr4 \
    "$(base_url S)/big/big3.bufr4" "$T/origin/big/big3.bufr4" "$t2" canonical 100 \
    ",\"pad\":\"$pad\"")"
wait_until 10 metric_is P 'wmesh_rejected_total{reason="too_big"}' 3 ||
    fail "a message over --max-message was not refused: $(counters P)"
[ "$(metric P wmesh_downloads_total)" = 2 ] || fail "something big was downloaded: $(counters P)"
note "over --max-size by its link, over --max-size by its download, over --max-message: refused"

# --- 6. deletion -----------------------------------------------------------------------------
pub up $topic "$(wnm 4e5f6a7b-8c9d-4e0f-9a1b-3c4d5e6f7a8b $data_id "$(base_url S)/obs/v2/$name" \
    "$T/origin/obs/v2/$name" "$(iso "$(date -u +%s)")" deletion)"
wait_until 10 metric_is P 'wmesh_rejected_total{reason="unsupported"}' 1 ||
    fail "the deletion was not refused as unsupported: $(counters P)"
cmp -s "$T/origin/obs/v2/$name" "$tree/$data_id" || fail "the deletion changed the file"
note "deletion link: refused, the file stays"

# --- what each left behind, once P is quiet ---------------------------------------------------
settle P
for f in big1 big2 big3; do
    [ ! -e "$tree/wis2/ca/big/$f.bufr4" ] || fail "$f.bufr4 was stored"
    observed obs | grep -qF "$f.bufr4" && fail "$f.bufr4 was announced"
done
[ -z "$(ls -A "$tree/.wmesh-tmp" 2>/dev/null)" ] ||
    fail "temporary files left: $(ls -A "$tree/.wmesh-tmp")"
# One line each, and the oversized download was not retried (P has been quiet for 4 s).
for what in big1.bufr4 big2.bufr4 "-byte message on" deletion; do
    [ "$(lines "$what")" = 1 ] || fail "P logged $(lines "$what") lines for $what, not 1"
done
[ "$(metric P wmesh_retries_total)" = 0 ] || fail "P retried something: $(counters P)"
[ "$(observed obs | grep -cF "\"data_id\":\"$data_id\"")" = 2 ] ||
    fail "P announced $data_id other than twice: $(observed obs)"
[ "$(reannounced "$sum2" | wc -l)" = 1 ] || fail "the update was announced more than once"
alive P
note "counters (received downloads inlined duplicates published errors): $(counters P)"
grep -F rejected "$T/P.log" | sed 's/^[^ ]* [^ ]* P /  /' >&2
