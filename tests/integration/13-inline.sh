#!/bin/bash
# 13-inline.sh: v03 messages with inline content (utf-8 and base64) and the right checksum are
# stored without any download and re-announced; inline content with a wrong checksum is not.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

start_broker up
start_broker home
mesh_peer P home up
start_observer obs home
# Nothing listens there: any attempt to download fails.
nowhere="http://127.0.0.1:$(free_port)/data"
day=$(date -u +%Y%m%d)

# utf-8: accents, quotes and a newline, escaped in JSON.
utf_rel=$day/WIS/CA/CMC/Inline/00/UTF8_CWAO_250000___00001.txt
printf 'Bonjour \303\240 tous, "mesh"\n' >"$T/utf8"
pub up "$(topic_of "$utf_rel")" "$(v03_msg "$nowhere" "$utf_rel" sha512 \
    "$(checksum_b64 sha512 "$T/utf8")" \
    ', "content": {"encoding": "utf-8", "value": "Bonjour \u00e0 tous, \"mesh\"\n"}')"

# base64: binary bytes, with an md5 checksum.
b64_rel=$day/WIS/CA/CMC/Inline/00/BIN1_CWAO_250000___00002.bin
head -c 700 /dev/urandom >"$T/binary"
pub up "$(topic_of "$b64_rel")" "$(v03_msg "$nowhere" "$b64_rel" md5 \
    "$(checksum_b64 md5 "$T/binary")" \
    ", \"content\": {\"encoding\": \"base64\", \"value\": \"$(base64 -w0 "$T/binary")\"}")"

tree=$(tree_of P)
wait_until 20 test -f "$tree/$utf_rel" || fail "utf-8 inline content not stored"
wait_until 20 test -f "$tree/$b64_rel" || fail "base64 inline content not stored"
cmp -s "$T/utf8" "$tree/$utf_rel" || fail "utf-8 inline content stored with other bytes"
cmp -s "$T/binary" "$tree/$b64_rel" || fail "base64 inline content stored with other bytes"
wait_until 10 metric_is P wmesh_inlined_total 2 || fail "inlined_total: $(counters P)"
for rel in "$utf_rel" "$b64_rel"; do
    logged P inlined | grep -qxF "$rel" || fail "no 'inlined $rel' log line"
    wait_until 10 observed_has obs "$rel" || fail "$rel not re-announced"
done
note "inline utf-8 and base64 stored and re-announced"

# Wrong checksum: nothing stored, nothing announced, a 'failed' line.
bad_rel=$day/WIS/CA/CMC/Inline/00/BAD1_CWAO_250000___00003.txt
pub up "$(topic_of "$bad_rel")" "$(v03_msg "$nowhere" "$bad_rel" sha512 \
    "$(checksum_b64 sha512 "$T/utf8")" ', "content": {"encoding": "utf-8", "value": "tampered\n"}')"
wait_until 20 logged_has P failed "$bad_rel" || fail "no 'failed $bad_rel' log line"
# A good message after the bad one: once it is announced, the bad one had its chance.
late_rel=$day/WIS/CA/CMC/Inline/00/LATE_CWAO_250000___00004.txt
printf 'late\n' >"$T/late"
pub up "$(topic_of "$late_rel")" "$(v03_msg "$nowhere" "$late_rel" sha512 \
    "$(checksum_b64 sha512 "$T/late")" ', "content": {"encoding": "utf-8", "value": "late\n"}')"
wait_until 20 observed_has obs "$late_rel" || fail "the good message after the bad one was lost"
[ ! -e "$tree/$bad_rel" ] || fail "content with a wrong checksum was stored"
! observed_has obs "$bad_rel" || fail "content with a wrong checksum was re-announced"
note "inline content with a wrong checksum neither stored nor announced"

[ "$(metric P wmesh_downloads_total)" -eq 0 ] || fail "P downloaded something: $(counters P)"
[ "$(metric P wmesh_download_errors_total)" -eq 0 ] || fail "P tried to download: $(counters P)"
[ "$(metric P wmesh_published_total)" -eq 3 ] || fail "P published: $(counters P)"
alive P
