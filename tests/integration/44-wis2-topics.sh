#!/bin/bash
# 44-wis2-topics.sh: WIS2 topics and the journal of WIS2 messages.
#  1. A cache peer subscribed to origin/a/wis2/# (--exchange origin --topic-prefix a/wis2
#     --post-exchange cache --post-format wnm) re-announces each message on cache/a/wis2/ with the
#     levels it came on below origin/a/wis2, not on a topic made from the data_id.
#  2. A second cache subscribed to the first one's cache/a/wis2/# does the same: origin -> cache
#     -> cache, geometry and properties kept, a new id and link at each hop.
#  3. By default a v03 peer still announces on the relPath's directory (sr3 topics), whatever topic
#     the message came on; --post-topic copy keeps the incoming levels there too.
#  4. A WIS2 message journaled while its download fails, then the peer SIGKILLed: after the restart
#     it comes from the journal (raw, with its topic), not from the broker, and is re-announced on
#     the cache topic with its geometry and properties intact.
#  5. A newer version announced while an older one is downloading waits behind it journaled (its
#     PUBACK has left): after a SIGKILL both are replayed and the newer one ends up stored and
#     re-announced.
#  6. A wildcard --exchange without --post-exchange is refused at start-up.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

# The brokers of this test also carry WIS2 topics: the owner writes origin/# and cache/#, the
# guest reads them (lib.sh's ACL has xpublic/# only).
broker_acl '*' xpublic/# origin/# cache/#

# start_wis2_observer NAME BROKER: as start_observer, for origin/#, cache/# and xpublic/#.
start_wis2_observer() {
    local name=$1 broker=$2
    mkdir -p "$T/$name"
    : >"$T/$name.msgs"
    mosquitto_sub -h 127.0.0.1 -p "$(broker_port "$broker")" -u guest -P guestpw \
        -i "obs-$name-$$" -q 1 -v -t 'origin/#' -t 'cache/#' -t 'xpublic/#' \
        >>"$T/$name.msgs" 2>>"$T/$name.log" &
    track "$!"
    echo "$!" >"$T/$name/pid"
    wait_until 10 observer_ready "$name" "$broker" || fail "observer $name did not subscribe"
}

# topic_of_msg OBSERVER NEEDLE: the topic of the first message seen holding NEEDLE.
topic_of_msg() {
    observed "$1" | grep -F -- "$2" | head -n 1 | cut -d' ' -f1
}

# msg_of OBSERVER NEEDLE: the payload of the first message seen holding NEEDLE.
msg_of() {
    observed "$1" | grep -F -- "$2" | head -n 1 | cut -d' ' -f2-
}

# wnm_msg ID DATA_ID HREF FILE [PUBTIME]: a WIS2 notification with a polygon and extra
# properties; PUBTIME defaults to now.
wnm_msg() {
    local now sum
    now=${5:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
    sum=$(checksum_b64 sha512 "$4")
    printf '%s' '{"id":"'"$1"'","conformsTo":["http://wis.wmo.int/spec/wnm/1/conf/core"],' \
        '"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[139.5,35.25],' \
        '[140.75,35.25],[140.75,36.5],[139.5,35.25]]]},"properties":{"pubtime":"'"$now"'",' \
        '"datetime":"'"$now"'","integrity":{"method":"sha512","value":"'"$sum"'"},' \
        '"data_id":"'"$2"'","metadata_id":"urn:wmo:md:jp-jma:synop",' \
        '"wigos_station_identifier":"0-20000-0-47662","cache":true},' \
        '"links":[{"href":"'"$3"'","rel":"canonical","type":"application/bufr",' \
        '"length":'"$(stat -c %s "$4")"'},{"href":"https://example.org/about","rel":"about"}]}'
}

# kept_intact MSG: the geometry, the properties and the extra link of wnm_msg are all there.
kept_intact() {
    local want
    for want in '"geometry":{"type":"Polygon","coordinates":[[[139.5,35.25],[140.75,35.25],' \
        '"metadata_id":"urn:wmo:md:jp-jma:synop"' '"wigos_station_identifier":"0-20000-0-47662"' \
        '"cache":true' '"href":"https://example.org/about"' '"datetime":"'; do
        grep -qF -- "$want" <<<"$1" || {
            echo "missing $want"
            return 1
        }
    done
}

# expect_cache_copy OBSERVER PEER DATA_ID: waits for PEER's re-announcement of DATA_ID, checks
# that it is on CACHE_TOPIC, kept what wnm_msg put in and links to PEER's copy; prints it.
expect_cache_copy() {
    local obs=$1 peer=$2 data_id=$3 got out why
    wait_until 20 observed_has "$obs" "$data_id" || fail "$peer did not re-announce: $(observed "$obs")"
    got=$(topic_of_msg "$obs" "$data_id")
    [ "$got" = "$CACHE_TOPIC" ] || fail "$peer re-announced on $got, not $CACHE_TOPIC"
    out=$(msg_of "$obs" "$data_id")
    why=$(kept_intact "$out") || fail "$peer's re-announcement lost something ($why): $out"
    grep -qF "\"href\":\"$(base_url "$peer")/$data_id\"" <<<"$out" ||
        fail "$peer's link is not its copy: $out"
    printf '%s\n' "$out"
}

WIS2_TOPIC=origin/a/wis2/jp-jma/data/core/weather/surface-based-observations/synop
CACHE_TOPIC=cache/a/wis2/jp-jma/data/core/weather/surface-based-observations/synop
WIS2_ARGS=(--exchange origin --topic-prefix a/wis2 --post-exchange cache --post-format wnm)

start_broker gb
start_broker c1home
start_broker c2home
start_serve S "$T/origin"
mkdir -p "$T/origin/synop"

# --- 6. a wildcard exchange needs --post-exchange -------------------------------------------
rc=0
"$WMESH" peer --dir "$T/bad" --broker "$(broker_url gb guest)" --post-broker "$(broker_url c1home owner)" \
    --post-base-url http://127.0.0.1:1/data --exchange + --topic-prefix a/wis2 >"$T/bad.out" 2>&1 ||
    rc=$?
[ "$rc" -eq 2 ] || fail "--exchange + without --post-exchange exited $rc, not 2: $(cat "$T/bad.out")"
grep -qF -- "--post-exchange" "$T/bad.out" || fail "no hint at --post-exchange: $(cat "$T/bad.out")"
note "--exchange + without --post-exchange refused: $(cat "$T/bad.out")"

# --- 1, 2. origin -> cache -> cache ---------------------------------------------------------
mesh_peer C1 c1home gb -- "${WIS2_ARGS[@]}"
mesh_peer C2 c2home c1home -- --exchange cache --topic-prefix a/wis2 --post-format wnm
start_wis2_observer obs1 c1home
start_wis2_observer obs2 c2home

head -c 2000 /dev/urandom >"$T/origin/synop/ISMN01_RJTD_120000.bufr4"
# The data_id's directory is not the topic: the topic must come from the topic.
data_id=jp-jma/synop/ISMN01_RJTD_120000.bufr4
msg=$(wnm_msg 6c1c3b4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f "$data_id" \
    "$(base_url S)/synop/ISMN01_RJTD_120000.bufr4" "$T/origin/synop/ISMN01_RJTD_120000.bufr4")
pub gb "$WIS2_TOPIC" "$msg"
out=$(expect_cache_copy obs1 C1 "$data_id") || exit 1
note "origin -> C1: re-announced on $CACHE_TOPIC, geometry and properties kept"
out2=$(expect_cache_copy obs2 C2 "$data_id") || exit 1
id1=$(json_str id <<<"$out" | head -n 1)
id2=$(json_str id <<<"$out2" | head -n 1)
if [ -z "$id1" ] || [ "$id1" = "$id2" ]; then
    fail "the id was not renewed at C2: $id1 / $id2"
fi
for p in C1 C2; do
    cmp -s "$T/origin/synop/ISMN01_RJTD_120000.bufr4" "$(tree_of "$p")/$data_id" ||
        fail "$p's copy differs"
done
note "C1 -> C2 (cache/a/wis2/#): re-announced on $CACHE_TOPIC with a new id, bytes identical"

# --- 3. sr3 topics unchanged by default; copy on request ------------------------------------
mesh_peer V c1home gb
mesh_peer VC c2home gb -- --post-topic copy
head -c 100 /dev/urandom >"$T/origin/synop/v03file.txt"
v03=$(v03_msg "$(base_url S)" synop/v03file.txt sha512 "$(checksum_b64 sha512 "$T/origin/synop/v03file.txt")")
pub gb xpublic/v03/post/some/other/levels "$v03"
wait_until 20 observed_has obs1 synop/v03file.txt || fail "V did not re-announce: $(observed obs1)"
got=$(topic_of_msg obs1 synop/v03file.txt)
[ "$got" = xpublic/v03/post/synop ] || fail "V (default) re-announced on $got, not the relPath's"
wait_until 20 observed_has obs2 synop/v03file.txt || fail "VC did not re-announce: $(observed obs2)"
got=$(topic_of_msg obs2 synop/v03file.txt)
[ "$got" = xpublic/v03/post/some/other/levels ] || fail "VC (copy) re-announced on $got"
note "v03: the relPath's topic by default, the incoming levels with --post-topic copy"

# --- 4. a WIS2 message from the journal after SIGKILL ----------------------------------------
start_broker kup
start_broker khome
mesh_peer K khome kup -- "${WIS2_ARGS[@]}" --retry-for 600
remember_argv K
start_wis2_observer obsk khome
head -c 3000 /dev/urandom >"$T/late.bufr4"
data_id=jp-jma/synop/ISMN01_RJTD_180000.bufr4
# The file is not on the server yet: the download fails (404) and is retried, journaled.
msg=$(wnm_msg 0f9e8d7c-6b5a-4948-8372-615049382716 "$data_id" \
    "$(base_url S)/synop/ISMN01_RJTD_180000.bufr4" "$T/late.bufr4")
pub kup "$WIS2_TOPIC" "$msg"
wait_until 20 grep -qF "retrying $data_id" "$T/K.log" || fail "K did not try to download"
wait_until 10 metric_is K wmesh_journal_live 1 || fail "K's journal holds $(metric K wmesh_journal_live)"
# The journal keeps the message as it came and its topic.
grep -qaF '"wigos_station_identifier":"0-20000-0-47662"' "$T/K/state/journal" ||
    fail "the journal does not hold the message as received"
grep -qaF "$WIS2_TOPIC" "$T/K/state/journal" || fail "the journal does not hold the topic"
kill_peer K KILL
note "K SIGKILLed with the message journaled and not downloaded"
cp "$T/late.bufr4" "$T/origin/synop/ISMN01_RJTD_180000.bufr4"
restart_peer K
wait_until 20 observed_has obsk "$data_id" || fail "K did not re-announce after its restart: $(observed obsk)"
grep -qF "finishing 1 announcement(s) from the journal" "$T/K.log" || fail "K did not replay its journal"
[ "$(metric K wmesh_messages_received_total)" = 0 ] ||
    fail "the message came from the broker again, not from the journal"
got=$(topic_of_msg obsk "$data_id")
[ "$got" = "$CACHE_TOPIC" ] || fail "K re-announced on $got, not $CACHE_TOPIC"
out=$(msg_of obsk "$data_id")
why=$(kept_intact "$out") || fail "K's re-announcement from the journal lost something ($why): $out"
cmp -s "$T/late.bufr4" "$(tree_of K)/$data_id" || fail "K's copy differs"
wait_until 10 metric_is K wmesh_journal_live 0 || fail "K's journal entry was not finished"
note "after SIGKILL: replayed from the journal, re-announced on $got, geometry and properties intact"

# --- 5. a newer version waiting behind a download is journaled ----------------------------
start_broker dup
start_broker dhome
mkdir -p "$T/slow/v1" "$T/origin/v2"
echo 'v1/* slow' >"$T/faults"
start_badhttpd B "$T/slow" "$T/faults"
mesh_peer D dhome dup -- "${WIS2_ARGS[@]}" --retry-for 600
remember_argv D
start_wis2_observer obsd dhome
data_id=jp-jma/synop/ISMN01_RJTD_000000.bufr4
head -c 40000 /dev/urandom >"$T/slow/v1/ISMN01_RJTD_000000.bufr4" # 40 s at 1 KiB/s
head -c 2000 /dev/urandom >"$T/origin/v2/ISMN01_RJTD_000000.bufr4"
v2sum=$(checksum_b64 sha512 "$T/origin/v2/ISMN01_RJTD_000000.bufr4")
msg=$(wnm_msg 11111111-2222-4333-8444-555555555555 "$data_id" \
    "$(base_url B)/v1/ISMN01_RJTD_000000.bufr4" "$T/slow/v1/ISMN01_RJTD_000000.bufr4" \
    "$(date -u -d '-10 seconds' +%Y-%m-%dT%H:%M:%SZ)")
pub dup "$WIS2_TOPIC" "$msg"
wait_until 10 metric_is D wmesh_journal_live 1 || fail "D did not journal version 1"
msg=$(wnm_msg 66666666-7777-4888-9999-000000000000 "$data_id" \
    "$(base_url S)/v2/ISMN01_RJTD_000000.bufr4" "$T/origin/v2/ISMN01_RJTD_000000.bufr4")
pub dup "$WIS2_TOPIC" "$msg"
wait_until 10 metric_is D wmesh_journal_live 2 ||
    fail "the newer version waiting behind the download was not journaled: $(metric D wmesh_journal_live) live"
kill_peer D KILL
note "D SIGKILLed downloading version 1 with version 2 waiting behind it, both journaled"
echo '* ok' >"$T/faults"
restart_peer D
wait_until 30 observed_has obsd "$v2sum" || fail "D did not re-announce version 2: $(observed obsd)"
cmp -s "$T/origin/v2/ISMN01_RJTD_000000.bufr4" "$(tree_of D)/$data_id" || fail "D does not hold version 2"
got=$(topic_of_msg obsd "$v2sum")
[ "$got" = "$CACHE_TOPIC" ] || fail "D re-announced version 2 on $got, not $CACHE_TOPIC"
why=$(kept_intact "$(msg_of obsd "$v2sum")") || fail "D's version 2 lost something ($why)"
wait_until 10 metric_is D wmesh_journal_live 0 || fail "D's journal entries were not finished"
note "after SIGKILL: version 1 then version 2 replayed, version 2 stored and re-announced"

for p in C1 C2 V VC K D; do
    alive "$p"
done
