#!/bin/bash
# 34-hostile.sh: a table of malformed and hostile announcements, published one by one. After each:
# the peer is alive and answers /metrics, it logged exactly one 'rejected' or 'failed' line, it
# stored nothing, and nothing appeared outside its tree (the tree lives in a jail directory that
# is watched, and so are /etc and /tmp). Then a valid announcement still works and the counters
# add up.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

require_peer_options --retry-for --state-dir
start_broker up
start_broker home
TAG=hostile$$
jail=$T/jail
tree=$jail/tree
mkdir -p "$tree" "$jail/etc" "$T/Pstate"
echo sentinel >"$jail/sentinel"
port=$(free_port)
start_peer P --dir "$tree" --state-dir "$T/Pstate" --client-id "it-P-$$" \
    --broker "$(broker_url up guest)" --post-broker "$(broker_url home owner)" \
    --post-base-url "http://127.0.0.1:$port/data" --http-listen "127.0.0.1:$port" --retry-for 2

origin=$T/origin
day=$(date -u +%Y%m%d)
mkdir -p "$origin/$day/WIS/OK" "$origin/etc"
printf 'a file that exists\n' >"$origin/exists.txt"
printf 'root:x:0:0:pwned:/root:/bin/sh\n' >"$origin/etc/passwd"
cp "$origin/exists.txt" "$origin/$TAG-x"
start_serve S "$origin"
good=$(base_url S)
sum=$(checksum_b64 sha512 "$origin/exists.txt")
md5=$(checksum_b64 md5 "$origin/exists.txt")
md5hex=$(checksum_hex md5 "$origin/exists.txt")
SUMJSON="{\"method\": \"sha512\", \"value\": \"$sum\"}"
closed=$(free_port)
now=$(pubtime_now)
nowa=$(pubtime_now_array)
TOPIC=xpublic/v03/post/hostile

# v03 PUBTIME BASEURL RELPATH [EXTRA] [INTEGRITY]: a v03 message, fields as given (raw JSON).
v03() {
    printf '{"pubTime": %s, "baseUrl": %s, "relPath": %s, "integrity": %s%s}' \
        "$1" "$2" "$3" "${5:-$SUMJSON}" "${4:-}"
}
q() { # q STRING: a JSON string (the callers never pass quotes or backslashes needing escapes)
    printf '"%s"' "$1"
}

# The table: hostile EXPECT LABEL PAYLOAD. EXPECT: rejected, failed, or any (either).
H=0
mkdir -p "$T/msgs"
hostile() {
    H=$((H + 1))
    printf '%s' "$3" >"$T/msgs/$H"
    printf '%s\t%s\n' "$1" "$2" >"$T/msgs/$H.label"
}

N=$(q "$now")
G=$(q "$good")
# Broken JSON and wrong shapes.
hostile rejected "truncated JSON" '{"pubTime": "2024'
hostile rejected "truncated v03" "$(v03 "$N" "$G" '"exists.txt"' | head -c 60)"
hostile rejected "not JSON" 'hello world'
hostile rejected "empty payload" ''
hostile rejected "JSON null" 'null'
hostile rejected "JSON number" '42'
hostile rejected "JSON string" '"exists.txt"'
hostile rejected "empty object" '{}'
hostile rejected "empty array" '[]'
hostile rejected "relPath is a number" "$(v03 "$N" "$G" 42)"
hostile rejected "baseUrl is an array" "$(v03 "$N" "[$G]" '"exists.txt"')"
hostile rejected "integrity is a string" "$(v03 "$N" "$G" '"exists.txt"' '' '"sha512"')"
hostile rejected "integrity value is a number" "$(v03 "$N" "$G" '"exists.txt"' '' '{"method": "sha512", "value": 7}')"
hostile rejected "pubTime is a number" "$(v03 20240101 "$G" '"exists.txt"')"
hostile rejected "content value is a number" "$(v03 "$N" "$G" '"exists.txt"' ', "content": {"encoding": "utf-8", "value": 5}')"
hostile rejected "content encoding rot13" "$(v03 "$N" "$G" '"exists.txt"' ', "content": {"encoding": "rot13", "value": "nsvyr"}')"
hostile rejected "missing relPath" "{\"pubTime\": $N, \"baseUrl\": $G, \"integrity\": {\"method\": \"sha512\", \"value\": \"$sum\"}}"
hostile rejected "missing baseUrl" "{\"pubTime\": $N, \"relPath\": \"exists.txt\", \"integrity\": {\"method\": \"sha512\", \"value\": \"$sum\"}}"
hostile rejected "missing integrity" "{\"pubTime\": $N, \"baseUrl\": $G, \"relPath\": \"exists.txt\"}"
hostile rejected "missing pubTime" "{\"baseUrl\": $G, \"relPath\": \"exists.txt\", \"integrity\": {\"method\": \"sha512\", \"value\": \"$sum\"}}"
hostile rejected "duplicate relPath key" "$(v03 "$N" "$G" '"exists.txt"' ", \"relPath\": \"../$TAG-x\"")"
hostile rejected "nesting depth 1000 (arrays)" "$(printf '%.0s[' {1..1000})$(printf '%.0s]' {1..1000})"
nest="$(printf '%.0s{"a":' {1..1000})1$(printf '%.0s}' {1..1000})"
hostile any "nesting depth 1000 inside a field" "$(v03 "$N" "$G" "\"$TAG-nest\"" ", \"x\": $nest")"
hostile rejected "number overflow" "$(v03 "$N" "$G" '"exists.txt"' ', "size": 1e999999')"
hostile rejected "9 KiB message" "$(v03 "$N" "$G" '"exists.txt"' ", \"pad\": \"$(head -c 9216 /dev/zero | tr '\0' a)\"")"
hostile rejected "invalid UTF-8 in relPath" "$(v03 "$N" "$G" "$(printf '"\xff\xfe%s.txt"' "$TAG")")"
hostile rejected "overlong UTF-8 slash" "$(v03 "$N" "$G" "$(printf '"..\xc0\xaf%s"' "$TAG")")"
# relPaths that try to leave the tree, or land on names it keeps for itself.
for rel in "../$TAG-x" "/../../etc/$TAG-x" "a/../../$TAG-x" "%2e%2e/$TAG-x" \
    "a/%2E%2E/%2e%2e/$TAG-x" "..%2f$TAG-x" "..\\\\$TAG-x" "a/b/../../../$TAG-x" \
    "%2e%2e%2f%2e%2e%2fetc%2f$TAG-x" "a%00b" "./../$TAG-x"; do
    hostile rejected "relPath $rel" "$(v03 "$N" "$G" "\"$rel\"")"
done
hostile rejected "relPath with NUL" "$(v03 "$N" "$G" "\"exists.txt\\u0000$TAG\"")"
hostile rejected "relPath with a newline (log injection)" "$(v03 "$N" "$G" '"x\nrejected fake 2024"')"
hostile rejected "empty relPath" "$(v03 "$N" "$G" '""')"
hostile rejected "relPath ." "$(v03 "$N" "$G" '"."')"
hostile rejected "relPath /" "$(v03 "$N" "$G" '"/"')"
hostile rejected "relPath .wmesh-tmp/x" "$(v03 "$N" "$G" '".wmesh-tmp/x"')"
hostile rejected "dot-file" "$(v03 "$N" "$G" '".profile"')"
hostile rejected "dot-directory" "$(v03 "$N" "$G" '"a/.ssh/authorized_keys"')"
# URLs other than http and https, and an https server that is not there.
hostile rejected "file:// baseUrl" "$(v03 "$N" '"file:///etc"' '"passwd"')"
hostile rejected "FILE:// baseUrl" "$(v03 "$N" '"FILE:///etc"' '"passwd"')"
hostile rejected "fIlE:/ baseUrl" "$(v03 "$N" '"fIlE:/etc"' '"passwd"')"
hostile rejected "ftp:// baseUrl" "$(v03 "$N" '"ftp://127.0.0.1/pub"' '"exists.txt"')"
hostile rejected "gopher:// baseUrl" "$(v03 "$N" '"gopher://127.0.0.1:70/1"' '"exists.txt"')"
hostile rejected "dict:// baseUrl" "$(v03 "$N" '"dict://127.0.0.1:2628"' '"exists.txt"')"
hostile rejected "baseUrl without scheme" "$(v03 "$N" '"/etc"' '"passwd"')"
hostile failed "https to a closed port" "$(v03 "$N" "\"https://127.0.0.1:$closed/data\"" "\"$TAG-https\"")"
# Checksums.
hostile rejected "unknown checksum method" "$(v03 "$N" "$G" '"exists.txt"' '' '{"method": "crc32", "value": "AAAAAA=="}')"
hostile rejected "bad base64" "$(v03 "$N" "$G" '"exists.txt"' '' '{"method": "sha512", "value": "!!!not*base64???"}')"
hostile rejected "wrong digest length" "$(v03 "$N" "$G" '"exists.txt"' '' "{\"method\": \"sha512\", \"value\": \"$md5\"}")"
hostile failed "inline content not matching its checksum" "$(v03 "$N" "$G" "\"$TAG-inline\"" ', "content": {"encoding": "utf-8", "value": "tampered\n"}')"
hostile rejected "inline content to ../" "$(v03 "$N" "$G" "\"../$TAG-x\"" "$(printf ', "content": {"encoding": "base64", "value": "%s"}' "$(base64 -w0 "$origin/exists.txt")")")"
hostile rejected "inline content, bad base64" "$(v03 "$N" "$G" "\"$TAG-b64\"" ', "content": {"encoding": "base64", "value": "@@@@"}')"
# fileOp.
hostile rejected "fileOp link to /etc/passwd" "$(v03 "$N" "$G" "\"$TAG-link\"" ', "fileOp": {"link": "/etc/passwd"}')"
hostile rejected "fileOp link to ../../" "$(v03 "$N" "$G" "\"$TAG-link2\"" ', "fileOp": {"link": "../../../../etc/passwd"}')"
hostile rejected "fileOp remove" "$(v03 "$N" "$G" '"exists.txt"' ', "fileOp": {"remove": ""}')"
hostile rejected "fileOp rename" "$(v03 "$N" "$G" "\"$TAG-ren\"" ', "fileOp": {"rename": "../../etc/passwd"}')"
hostile rejected "fileOp directory" "$(v03 "$N" "$G" "\"$TAG-dir\"" ', "fileOp": {"directory": ""}')"
# The WMO mesh demo's array format.
hostile rejected "array of 2 elements" "[\"$nowa\", $G]"
hostile rejected "array headers not an object" "[\"$nowa\", $G, \"exists.txt\", \"d,$md5hex\"]"
hostile rejected "array sum without comma" "[\"$nowa\", $G, \"exists.txt\", {\"sum\": \"$md5hex\"}]"
hostile rejected "array relPath ../" "[\"$nowa\", $G, \"../$TAG-x\", {\"sum\": \"d,$md5hex\"}]"
hostile rejected "array link event" "[\"$nowa\", $G, \"$TAG-L\", {\"sum\": \"L,$md5hex\", \"link\": \"/etc/passwd\"}]"
hostile rejected "array remove event" "[\"$nowa\", $G, \"exists.txt\", {\"sum\": \"R,$md5hex\"}]"
hostile rejected "array pubTime garbage" "[\"not a time\", $G, \"exists.txt\", {\"sum\": \"d,$md5hex\"}]"
hostile rejected "array baseUrl file://" "[\"$nowa\", \"file:///etc\", \"passwd\", {\"sum\": \"d,$md5hex\"}]"
# Times.
hostile rejected "pubTime garbage" "$(v03 '"yesterday"' "$G" '"exists.txt"')"
hostile rejected "pubTime month 13" "$(v03 '"20241301T000000.0"' "$G" '"exists.txt"')"
hostile rejected "pubTime in year 9999" "$(v03 '"99991231T235959.999"' "$G" '"exists.txt"')"
hostile rejected "pubTime in year 2200 (future)" "$(v03 '"22000101T000000.0"' "$G" "\"$TAG-future\"")"
# A WIS2 notification pointing at a local file.
hostile rejected "WIS2 message with a file:// link" "{\"id\": \"x\", \"type\": \"Feature\", \"geometry\": null, \"properties\": {\"pubtime\": \"2024-01-01T00:00:00Z\", \"data_id\": \"../$TAG-x\"}, \"links\": [{\"href\": \"file:///etc/passwd\", \"rel\": \"canonical\"}]}"

[ "$H" -ge 40 ] || fail "only $H hostile messages in the table"
note "$H hostile messages"

# --- the watch -------------------------------------------------------------------------------
passwd_sum=$(sha256sum /etc/passwd)
# outside: everything that must not change: the jail outside the tree, names with TAG anywhere
# near, /etc/passwd.
outside() {
    find "$jail" -path "$tree" -prune -o -printf '%p %y %s\n' | LC_ALL=C sort
    find "$T" /tmp /etc / -maxdepth 2 -name "*$TAG*" -not -path "$origin/*" 2>/dev/null |
        LC_ALL=C sort
    sha256sum /etc/passwd
}
outside >"$T/outside.before"
[ "$(sha256sum /etc/passwd)" = "$passwd_sum" ] || fail "cannot read /etc/passwd twice alike"

# tree_entries: what the tree holds besides its temporary directory, directories included.
tree_entries() {
    (cd "$tree" && find . -mindepth 1 -path ./.wmesh-tmp -prune -o -print | LC_ALL=C sort)
}

# last_disposition: the disposition word and the rest of the last rejected/failed line.
last_disposition() {
    awk '{ for (i = 1; i <= NF; i++) if ($i == "rejected" || $i == "failed") { line = ""
            for (j = i; j <= NF; j++) line = line (j > i ? " " : "") $j; break } }
        END { print line }' "$T/P.log"
}

lines_at_least() {
    [ "$(log_count P rejected failed)" -ge "$1" ]
}

# Fatal at once: the peer died or stopped answering, something was stored or written outside the
# tree. Noted and reported at the end (so the whole table runs): a message that got no line, more
# than one line, or another disposition than expected.
: >"$T/problems"
problem() {
    printf '%s\n' "$*" >>"$T/problems"
    note "PROBLEM: $*"
}
for ((i = 1; i <= H; i++)); do
    IFS=$'\t' read -r expect label <"$T/msgs/$i.label"
    base=$(log_count P rejected failed)
    if [ -s "$T/msgs/$i" ]; then
        mosquitto_pub -h 127.0.0.1 -p "$(broker_port up)" -u owner -P ownerpw -i "hostile-$$-$i" \
            -q 1 -t "$TOPIC" -f "$T/msgs/$i" || fail "could not publish message $i ($label)"
    else
        mosquitto_pub -h 127.0.0.1 -p "$(broker_port up)" -u owner -P ownerpw -i "hostile-$$-$i" \
            -q 1 -t "$TOPIC" -n || fail "could not publish message $i ($label)"
    fi
    wait_until 20 lines_at_least $((base + 1)) || problem "message $i ($label): no rejected/failed line"
    alive P
    metrics_ready P || fail "message $i ($label): /metrics does not answer"
    got=$(last_disposition)
    lines=$(($(log_count P rejected failed) - base))
    [ "$lines" -le 1 ] || problem "message $i ($label): $lines rejected/failed lines: $(tail -n "$lines" "$T/P.log" | tr '\n' '|')"
    case "$expect:${got%% *}" in
    rejected:rejected | failed:failed | any:*) ;;
    *) problem "message $i ($label): expected '$expect', logged: $got" ;;
    esac
    [ "$(log_count P downloaded inlined)" -eq 0 ] || fail "message $i ($label) was stored"
    entries=$(tree_entries)
    [ -z "$entries" ] || fail "message $i ($label) left entries in the tree: $entries"
    outside >"$T/outside.after"
    cmp -s "$T/outside.before" "$T/outside.after" ||
        fail "message $i ($label) changed something outside the tree: $(diff "$T/outside.before" "$T/outside.after")"
    printf '%2d %-9s %-44s -> %s\n' "$i" "$expect" "$label" "${got:0:150}" >>"$T/table.txt"
done
cat "$T/table.txt" >&2

# --- a valid announcement still works ----------------------------------------------------------
valid=$day/WIS/OK/VALID_LFPW_250000___00001.txt
head -c 3000 /dev/urandom >"$origin/$valid"
pub up "$(topic_of "$valid")" "$(v03_msg "$good" "$valid" sha512 "$(checksum_b64 sha512 "$origin/$valid")")"
wait_until 20 test -f "$tree/$valid" || fail "the valid announcement after the hostile ones was not stored"
cmp -s "$origin/$valid" "$tree/$valid" || fail "the valid file has other bytes"
settle P
[ ! -s "$T/problems" ] || fail "$(wc -l <"$T/problems") hostile messages were not handled as expected:
$(cat "$T/problems")"

# Each hostile message: exactly one line; rejected ones counted by reason.
rejected_lines=$(log_count P rejected)
failed_lines=$(log_count P failed)
[ $((rejected_lines + failed_lines)) -eq "$H" ] ||
    fail "$rejected_lines rejected + $failed_lines failed lines for $H hostile messages"
[ "$(metric P wmesh_rejected_total)" -eq "$rejected_lines" ] ||
    fail "wmesh_rejected_total is $(metric P wmesh_rejected_total), $rejected_lines lines say rejected"
[ "$(metric P wmesh_integrity_failures_total)" -ge 1 ] || fail "the inline checksum mismatch was not counted"
expected_entries=$(printf '%s\n' "./$day" "./$day/WIS" "./$day/WIS/OK" "./$valid" | LC_ALL=C sort)
[ "$(tree_entries)" = "$expected_entries" ] || fail "the tree holds more than the valid file: $(tree_entries)"
outside >"$T/outside.after"
cmp -s "$T/outside.before" "$T/outside.after" || fail "something changed outside the tree"
alive P
note "$rejected_lines rejected + $failed_lines failed = $H hostile messages; by reason:" \
    "$(curl -fsS "http://127.0.0.1:$port/metrics" | grep '^wmesh_rejected_total' | sed 's/wmesh_rejected_total//' | tr '\n' ' ')"
note "the valid file was stored; the tree holds nothing else; nothing changed outside it"
