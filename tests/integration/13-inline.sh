#!/bin/bash
# 13-inline.sh: v03 messages with inline content (utf-8 and base64) and the right checksum are
# stored without any download and re-announced; inline content with a wrong checksum is not.
# Then A -> B -> C with B --inline 2048: B puts each file of up to 2048 bytes into its
# re-announcement, and C stores those without a download, with A's bytes; `wmesh post --inline`
# does the same at the origin.
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

# --- --inline: B carries small files inside its announcements, and C downloads only the rest.
N=60
limit=2048
for b in bA bB bC; do
    start_broker "$b"
done
mesh_peer A bA
mesh_peer B2 bB bA -- --inline "$limit"
mesh_peer C bC bB
start_observer obB bB
make_files "$(tree_of A)" "$N" >"$T/list"
small=$(cd "$(tree_of A)" && xargs -d '\n' stat -c '%s' -- <"$T/list" | awk -v m="$limit" '$1 <= m' | wc -l)
[ "$small" -gt 0 ] && [ "$small" -lt "$N" ] || fail "make_files gave $small of $N files <= $limit bytes"
post_files bA "$(base_url A)" "$(tree_of A)" "$T/list"
reach_all "$T/list" A C B2
settle B2 C
metrics_are B2 "$N" wmesh_downloads_total wmesh_published_total
metrics_are B2 "$small" wmesh_published_inline_total
metrics_are C "$small" wmesh_inlined_total
metrics_are C $((N - small)) wmesh_downloads_total
[ "$(logged C inlined | wc -l)" -eq "$small" ] || fail "C logged $(logged C inlined | wc -l) inlined"
with_content=$(observed obB | grep -c '"content": *{' || true)
[ "$with_content" -eq "$small" ] || fail "$with_content of B2's announcements carry content"
note "B2 --inline $limit: $small of $N files went inline, C downloaded the other $((N - small))"

# A file whose announcement, with its content, would exceed 8192 bytes (here an upstream field
# of 6000 bytes that B2 passes on) is announced without content, and C downloads it.
padded_rel=$day/WIS/CA/CMC/Inline/00/PADDED_CWAO_250000___00005.txt
mkdir -p "$(tree_of A)/${padded_rel%/*}"
head -c 2000 /dev/urandom | base64 -w0 | head -c 2000 >"$(tree_of A)/$padded_rel"
padding=$(head -c 6000 /dev/zero | tr '\0' x)
pub bA "$(topic_of "$padded_rel")" "$(v03_msg "$(base_url A)" "$padded_rel" sha512 \
    "$(checksum_b64 sha512 "$(tree_of A)/$padded_rel")" ", \"padding\": \"$padding\"")"
wait_until 20 test -f "$(tree_of C)/$padded_rel" || fail "the padded file did not reach C"
cmp -s "$(tree_of A)/$padded_rel" "$(tree_of C)/$padded_rel" || fail "padded file differs at C"
metrics_are B2 "$small" wmesh_published_inline_total
metrics_are C $((N - small + 1)) wmesh_downloads_total
observed obB | grep -F "$padded_rel" | grep -q '"padding"' || fail "B2 did not pass the field on"
! observed obB | grep -F "$padded_rel" | grep -q '"content"' || fail "B2 sent 8 KiB or more"
note "an announcement that content would take over 8192 bytes went without it"

# wmesh post --inline at the origin: B2 stores the small files without asking A for them.
make_files "$(tree_of A)" 30 posted >"$T/list2"
small2=$(cd "$(tree_of A)" && xargs -d '\n' stat -c '%s' -- <"$T/list2" | awk -v m="$limit" '$1 <= m' | wc -l)
post_files bA "$(base_url A)" "$(tree_of A)" "$T/list2" --inline "$limit"
reach_all "$T/list2" A C B2
metrics_are B2 "$small2" wmesh_inlined_total
metrics_are B2 $((N + 1 + 30 - small2)) wmesh_downloads_total
note "wmesh post --inline $limit: B2 stored $small2 of 30 files from the announcements"

# The array format has no place for content: the option is refused at start, in one line.
if "$WMESH" peer --dir "$T/x" --broker "$(broker_url bA guest)" --post-broker none \
    --post-format array --inline 100 2>"$T/refused.log"; then
    fail "--inline with --post-format array was accepted"
fi
grep -q 'inline.*array' "$T/refused.log" || fail "no reason given: $(cat "$T/refused.log")"
alive B2
alive C
