#!/bin/bash
# 02-post-sub.sh: `wmesh post` publishes well-formed v03 and array messages on the right topics
# with the right checksums; `wmesh sub` and mosquitto_sub both see them; `wmesh sub | head` ends.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

start_broker B
start_observer obs B
tree=$T/tree
base=http://127.0.0.1:9/data # never fetched here
make_files "$tree" 12 v >"$T/v03.list"
make_files "$tree" 6 a >"$T/array.list"
make_files "$tree" 4 m >"$T/md5.list"
make_files "$tree" 4 d >"$T/arraymd5.list"

"$WMESH" sub --broker "$(broker_url B guest)" >"$T/sub.out" 2>>"$T/sub.log" &
track "$!"
# wmesh sub is subscribed once a probe announcement shows in its output.
probe() {
    pub B xpublic/v03/post/probe "$(v03_msg "$base" probe/probe.txt md5 1B2M2Y8AsgTpgAmY7PhCfg==)"
    grep -q probe.txt "$T/sub.out"
}
wait_until 15 probe || fail "wmesh sub never printed the probe announcement"

# message_of REL: the one "topic payload" line the observer saw for REL.
message_of() {
    local lines
    lines=$(observed obs | grep -F "\"$1\"" || true)
    [ -n "$lines" ] || fail "no message for $1"
    [ "$(printf '%s\n' "$lines" | wc -l)" -eq 1 ] || fail "more than one message for $1"
    printf '%s\n' "$lines"
}

seen_all() {
    [ "$(observed obs | grep -vc '"probe/probe.txt"')" -ge "$1" ]
}

# check_v03 LIST METHOD: every file of LIST was announced in v03 with METHOD.
check_v03() {
    local rel line topic payload sum
    while IFS= read -r rel; do
        line=$(message_of "$rel")
        topic=${line%% *}
        payload=${line#* }
        [ "$topic" = "$(topic_of "$rel")" ] || fail "$rel: topic $topic"
        case $payload in "{"*) ;; *) fail "$rel: not a JSON object: $payload" ;; esac
        [ "$(json_str relPath <<<"$payload")" = "$rel" ] || fail "$rel: relPath in $payload"
        [ "$(json_str baseUrl <<<"$payload")" = "$base" ] || fail "$rel: baseUrl in $payload"
        json_str pubTime <<<"$payload" | grep -Eq '^[0-9]{8}T[0-9]{6}(\.[0-9]+)?Z?$' ||
            fail "$rel: pubTime in $payload"
        sum=$(sed -n 's/.*"integrity"[[:space:]]*:[[:space:]]*{\([^}]*\)}.*/\1/p' <<<"$payload")
        [ -n "$sum" ] || fail "$rel: no integrity object in $payload"
        [ "$(json_str method <<<"$sum")" = "$2" ] || fail "$rel: method in $payload"
        [ "$(json_str value <<<"$sum")" = "$(checksum_b64 "$2" "$tree/$rel")" ] ||
            fail "$rel: $2 value in $payload"
        if grep -q '"size"' <<<"$payload"; then
            grep -Eq "\"size\"[[:space:]]*:[[:space:]]*\"?$(stat -c %s "$tree/$rel")[\",}]" \
                <<<"$payload" || fail "$rel: size in $payload"
        fi
    done <"$1"
}

# check_array LIST LETTER ALGO: every file of LIST was announced as an array with sum LETTER.
check_array() {
    local rel line topic payload fields
    while IFS= read -r rel; do
        line=$(message_of "$rel")
        topic=${line%% *}
        payload=${line#* }
        [ "$topic" = "$(topic_of "$rel")" ] || fail "$rel: topic $topic"
        fields=$(sed -n 's#^\[[[:space:]]*"\([^"]*\)"[[:space:]]*,[[:space:]]*"\([^"]*\)"[[:space:]]*,[[:space:]]*"\([^"]*\)"[[:space:]]*,[[:space:]]*{.*"sum"[[:space:]]*:[[:space:]]*"\([^"]*\)".*}[[:space:]]*\]$#\1 \2 \3 \4#p' <<<"$payload" | sed 's#\\/#/#g')
        [ -n "$fields" ] || fail "$rel: not a 4-element array with a sum: $payload"
        read -r ptime purl prel psum <<<"$fields"
        grep -Eq '^[0-9]{14}(\.[0-9]+)?$' <<<"$ptime" || fail "$rel: array pubTime $ptime"
        [ "$purl" = "$base" ] || fail "$rel: baseUrl $purl"
        [ "$prel" = "$rel" ] || fail "$rel: relPath $prel"
        [ "$psum" = "$2,$(checksum_hex "$3" "$tree/$rel")" ] || fail "$rel: sum $psum"
    done <"$1"
}

post_files B "$base" "$tree" "$T/v03.list"
wait_until 15 seen_all 12 || fail "mosquitto_sub saw $(observed obs | wc -l) messages, not 12"
check_v03 "$T/v03.list" sha512
note "v03 with sha512 by default: topics, relPath, baseUrl, pubTime and checksums right"

post_files B "$base" "$tree" "$T/array.list" --post-format array
wait_until 15 seen_all 18 || fail "array messages missing"
check_array "$T/array.list" s sha512
note "array format: topics, fields and s, sums right"

post_files B "$base" "$tree" "$T/md5.list" --integrity md5
post_files B "$base" "$tree" "$T/arraymd5.list" --integrity md5 --post-format array
wait_until 15 seen_all 26 || fail "md5 messages missing"
check_v03 "$T/md5.list" md5
check_array "$T/arraymd5.list" d md5
note "--integrity md5 in both formats right"

# wmesh sub printed every announcement once, with a lag.
sub_saw_all() {
    local rel
    while IFS= read -r rel; do
        [ "$(grep -cF "$rel" "$T/sub.out")" -eq 1 ] || return 1
    done < <(cat "$T/v03.list" "$T/array.list" "$T/md5.list" "$T/arraymd5.list")
}
wait_until 10 sub_saw_all || fail "wmesh sub did not print each announcement once: $(cat "$T/sub.out")"
grep -F "$(head -n 1 "$T/v03.list")" "$T/sub.out" | grep -qi lag || fail "wmesh sub prints no lag"

# wmesh ignores SIGPIPE, so that no write kills it without a word: wmesh sub still ends, quietly
# and with status 0, once the reader of its output has gone, as `| head` expects.
(
    rc=0
    "$WMESH" sub --broker "$(broker_url B guest)" 2>>"$T/subhead.log" || rc=$?
    echo "$rc" >"$T/subhead.rc"
) | head -n 1 >"$T/head.out" &
track "$!"
sub_head_ended() {
    pub B xpublic/v03/post/probe "$(v03_msg "$base" probe/probe.txt md5 1B2M2Y8AsgTpgAmY7PhCfg==)"
    [ -s "$T/subhead.rc" ]
}
wait_until 15 sub_head_ended || fail "wmesh sub | head -n 1 did not end: $(cat "$T/head.out")"
[ "$(cat "$T/subhead.rc")" -eq 0 ] || fail "wmesh sub | head -n 1: status $(cat "$T/subhead.rc")"
! grep -v ' info ' "$T/subhead.log" || fail "wmesh sub | head -n 1 complained (above)"
grep -q probe.txt "$T/head.out" || fail "wmesh sub | head -n 1 printed $(cat "$T/head.out")"
note "wmesh sub | head -n 1: one line, then wmesh sub ended with status 0"
