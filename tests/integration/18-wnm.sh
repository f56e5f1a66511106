#!/bin/bash
# 18-wnm.sh: a WIS2 notification message published by hand is fetched from its canonical link,
# stored at its data_id and re-announced as a WIS2 message with a new id, a canonical link to
# this peer's copy, the same pubtime and data_id, and the checksum of what was stored.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

start_broker up
start_broker home
mesh_peer P home up -- --post-format wnm
start_observer obs home
start_serve S "$T/origin"
mkdir -p "$T/origin/obs"
head -c 3000 /dev/urandom >"$T/origin/obs/UANT01_CWAO_200445.bufr4"
sum=$(checksum_b64 sha512 "$T/origin/obs/UANT01_CWAO_200445.bufr4")
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
id=31e9d66a-cd83-4174-9429-b932f1abe1be
msg='{"id":"'$id'","conformsTo":["http://wis.wmo.int/spec/wnm/1/conf/core"],"type":"Feature",'
msg+='"geometry":{"type":"Point","coordinates":[6.1462,46.2233]},"properties":{"pubtime":"'$now'",'
msg+='"datetime":"'$now'","integrity":{"method":"sha512","value":"'$sum'"},'
msg+='"data_id":"wis2/ca/obs/UANT01_CWAO_200445.bufr4","metadata_id":"urn:wmo:md:ca:obs"},'
msg+='"links":[{"href":"'$(base_url S)'/obs/UANT01_CWAO_200445.bufr4","rel":"canonical",'
msg+='"type":"application/bufr","length":3000}]}'
pub up xpublic/v03/post/wis2/ca/obs "$msg"
tree=$(tree_of P)
wait_until 20 test -f "$tree/wis2/ca/obs/UANT01_CWAO_200445.bufr4" || fail "not stored at data_id"
cmp -s "$T/origin/obs/UANT01_CWAO_200445.bufr4" "$tree/wis2/ca/obs/UANT01_CWAO_200445.bufr4" ||
    fail "stored bytes differ"
wait_until 10 observed_has obs "wis2/ca/obs/UANT01_CWAO_200445.bufr4" || fail "not re-announced: $(observed obs)"
out=$(observed obs | grep -F UANT01_CWAO_200445)
grep -q '"type":"Feature"' <<<"$out" || fail "not a WIS2 message: $out"
grep -qF "\"id\":\"$id\"" <<<"$out" && fail "the id was not renewed: $out"
grep -qF "\"href\":\"$(base_url P)/wis2/ca/obs/UANT01_CWAO_200445.bufr4\"" <<<"$out" ||
    fail "canonical link does not point at P's copy: $out"
grep -qF "\"pubtime\":\"$now\"" <<<"$out" || fail "pubtime changed: $out"
grep -qF '"metadata_id":"urn:wmo:md:ca:obs"' <<<"$out" || fail "properties not kept: $out"
grep -qF "$sum" <<<"$out" || fail "checksum not the stored file's: $out"
note "WIS2 message fetched via its link, stored at data_id, re-announced as WIS2 from P"
