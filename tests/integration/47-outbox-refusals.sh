#!/bin/bash
# 47-outbox-refusals.sh: announcements the post broker will not take are set aside, counted and
# listed, and never hold up the others; once the cause is fixed, `wmesh outbox --resend` delivers
# them. Three peers read one upstream broker (each its own subtopic), each posting to a broker
# that refuses some announcements among 200 good ones:
#  a. mosquitto (MQTT 5) whose ACL denies the peer one subtree: it answers each of those
#     publishes with PUBACK reason 0x87 (not authorized) and keeps the connection. 20 are set
#     aside after their retries (wmesh_outbox_refusals_total counts each refused attempt),
#     wmesh_published_total counts only the 200 delivered; the ACL fixed (SIGHUP), a re-send
#     delivers the 20.
#  b. mosquitto with max_packet_size 2048, which it tells MQTT 5 clients in its CONNACK and
#     enforces by cutting the connection ("disconnected due to oversize packet"): 10 announcements
#     of ~3.4 KB are set aside without ever being sent; the limit lifted, a re-send asked for
#     while the peer is stopped delivers them once it starts again.
#  c. NATS (MQTT 3.1.1), which cuts the connection on a topic with '.' or ' ' ("characters ' '
#     and '.' not supported for MQTT topics"): the announcements of files in directories named
#     'a.b' and 'x y' are set aside, the rest flows.
# PARTS="a c" runs some of them. Issue 15, 3 and 4: a refusal counted as published, and one
# message a broker will not take jamming the link (reconnecting 4-5 times a second, the same
# message first).
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

PARTS=${PARTS:-a b c}
GOOD=200
require_peer_options --state-dir
require_tool mkinline
case " $PARTS " in *" c "*) [ -z "$(nats_missing)" ] || skip "$(nats_missing)" ;; esac
start_broker up

# feed TAG GOOD_ARGS BAD...: $T/TAG.feed holds GOOD good announcements (mkinline GOOD_ARGS)
# with bad ones spread among them, each BAD being "COUNT MKINLINE_ARGS"; $T/TAG.good and
# $T/TAG.bad list their relPaths.
feed() {
    local tag=$1 good=$2 bad i=0
    shift 2
    # shellcheck disable=SC2086 # the arguments are words
    "$WMESH_TOOLS/mkinline" $good "$tag-good" "$GOOD" "$T/$tag.good.feed" "$T/$tag.good" ||
        fail "mkinline failed"
    : >"$T/$tag.bad.feed"
    : >"$T/$tag.bad"
    for bad in "$@"; do
        i=$((i + 1))
        eval "set -- $bad"
        "$WMESH_TOOLS/mkinline" "${@:2}" "$tag-bad$i" "$1" "$T/$tag.b.feed" "$T/$tag.b" ||
            fail "mkinline failed"
        cat "$T/$tag.b.feed" >>"$T/$tag.bad.feed"
        cat "$T/$tag.b" >>"$T/$tag.bad"
    done
    awk 'NR == FNR { bad[NR] = $0; n = NR; next }
         { print } FNR % 10 == 5 && i < n { print bad[++i] }
         END { while (i < n) print bad[++i] }' "$T/$tag.bad.feed" "$T/$tag.good.feed" \
        >"$T/$tag.feed"
}

# observed_all OBS LIST: the observer saw every relPath of LIST.
observed_all() {
    local rel
    while IFS= read -r rel; do
        observed_has "$1" "$rel" || return 1
    done <"$2"
}
# observed_none OBS LIST: it saw none of them.
observed_none() {
    local rel
    while IFS= read -r rel; do
        ! observed_has "$1" "$rel" || fail "$1 saw $rel, which its broker should have refused"
    done <"$2"
}

# set_aside_holds PEER LIST: the peer's set-aside file holds each relPath of LIST, once, with its
# topic, size and reason.
set_aside_holds() {
    local file=$T/$1/state/outbox-set-aside rel n
    [ -f "$file" ] || fail "$1 has no $file"
    while IFS= read -r rel; do
        n=$(grep -cF "$rel" "$file" || true)
        [ "$n" -eq 1 ] || fail "$1's set-aside file names $rel $n times: $(head -c 600 "$file")"
    done <"$2"
    for key in topic size reason; do
        n=$(grep -c "\"$key\" *:" "$file" || true)
        [ "$n" -eq "$(wc -l <"$2")" ] ||
            fail "$n lines of $1's set-aside file have \"$key\": $(head -c 600 "$file")"
    done
}

# outbox_lists PEER TOPIC N: `wmesh outbox` on the peer's state dir lists N entries on TOPIC.
outbox_lists() {
    local out n
    out=$("$WMESH" outbox --state-dir "$T/$1/state" 2>>"$T/outbox-cmd.log") ||
        fail "wmesh outbox --state-dir $T/$1/state failed: $(tail -n 3 "$T/outbox-cmd.log")"
    n=$(grep -cF "$2" <<<"$out" || true)
    [ "$n" -eq "$3" ] || fail "wmesh outbox lists $n entries on $2, expected $3: $out"
}

resend() {
    "$WMESH" outbox --state-dir "$T/$1/state" --resend >>"$T/outbox-cmd.log" 2>&1 ||
        fail "wmesh outbox --resend failed: $(tail -n 3 "$T/outbox-cmd.log")"
    note "$1: wmesh outbox --resend"
}

# set_aside_count_is PEER N: for wait_until.
set_aside_count_is() {
    metric_is "$1" wmesh_outbox_set_aside_total "$2"
}

# flows PEER OBS TAG: the good announcements reach the observer; none of the bad does.
flows() {
    local p=$1 obs=$2 tag=$3 since=$SECONDS
    wait_until 60 observed_all "$obs" "$T/$tag.good" ||
        fail "$obs saw $(while IFS= read -r r; do observed_has "$obs" "$r" && echo; done \
            <"$T/$tag.good" | wc -l) of the $GOOD good announcements; $p logged" \
            "$(grep -c 'disconnected' "$T/$p.log" || true) disconnections from its brokers"
    note "$p: all $GOOD good announcements observed within $((SECONDS - since)) s"
    observed_none "$obs" "$T/$tag.bad"
}

# --- a: ACL denial (PUBACK 0x87) --------------------------------------------------------------
part_a() {
    start_broker homeA
    # write_acl deny|allow: homeA's ACL, the owner denied a/denied/ or not.
    write_acl() {
        {
            echo "user owner"
            echo "topic readwrite xpublic/#"
            [ "$1" = allow ] || echo "topic deny xpublic/v03/post/a/denied/#"
            printf '\nuser guest\ntopic read xpublic/#\n'
        } >"$T/homeA/acl"
    }
    # fixed: a probe on the denied subtree gets through (for wait_until).
    fixed() {
        pub homeA xpublic/v03/post/a/denied/fixed probe
        grep -q '^xpublic/v03/post/a/denied/fixed ' "$T/obsA.msgs"
    }
    write_acl deny
    restart_broker homeA
    start_observer obsA homeA
    # The ACL in force: a denied publish by hand is not seen.
    pub homeA xpublic/v03/post/a/denied/probe probe
    pub homeA xpublic/v03/post/a/ok/probe probe
    wait_until 10 grep -q '^xpublic/v03/post/a/ok/probe' "$T/obsA.msgs" || fail "no probe seen"
    ! grep -q '^xpublic/v03/post/a/denied/' "$T/obsA.msgs" || fail "homeA's ACL does not deny"
    feed a "--dir a/ok --dirs 4" "20 --dir a/denied"
    local bad
    bad=$(wc -l <"$T/a.bad")
    mesh_peer Pa homeA up -- --subtopic 'a/#'
    wait_until 20 subscribed Pa up xpublic/v03/post/a/probe ||
        fail "Pa never received the probe from up"
    publish_lines up xpublic/v03/post/a/feed "$T/a.feed"
    flows Pa obsA a
    settle Pa
    metric_is Pa wmesh_published_total "$GOOD" ||
        fail "Pa: wmesh_published_total is $(metric Pa wmesh_published_total), but the broker" \
            "took $GOOD and denied $bad; Pa logged $(grep -c 'refused' "$T/Pa.log" || true)" \
            "lines 'refused', $(grep -c 'set aside' "$T/Pa.log" || true) 'set aside', such as:" \
            "$(grep -m 2 'refused' "$T/Pa.log")"
    wait_until 60 set_aside_count_is Pa "$bad" ||
        fail "Pa: wmesh_outbox_set_aside_total $(metric Pa wmesh_outbox_set_aside_total) of" \
            "$bad denied, refusals $(metric Pa wmesh_outbox_refusals_total)"
    # Each denied announcement was tried 1 + 3 times (--outbox-retries' default).
    metric_is Pa wmesh_outbox_refusals_total $((bad * 4)) ||
        fail "Pa: wmesh_outbox_refusals_total is $(metric Pa wmesh_outbox_refusals_total)," \
            "expected $((bad * 4)): $bad refused on 4 attempts each"
    set_aside_holds Pa "$T/a.bad"
    n=$(grep -c 'set aside' "$T/Pa.log" || true)
    [ "$n" -eq "$bad" ] || fail "Pa logged $n lines 'set aside' for $bad entries set aside"
    outbox_lists Pa xpublic/v03/post/a/denied "$bad"
    note "a: $bad denied announcements set aside after" \
        "$(metric Pa wmesh_outbox_refusals_total) refusals (PUBACK 0x87), listed by wmesh" \
        "outbox; $GOOD delivered and counted published"
    write_acl allow
    kill -HUP "$(pid_of homeA)" # mosquitto reloads its ACL file
    wait_until 10 fixed || fail "homeA still denies a/denied/ after its ACL was fixed"
    resend Pa
    wait_until 60 observed_all obsA "$T/a.bad" || fail "the re-sent announcements were not seen"
    wait_until 30 metric_is Pa wmesh_published_total $((GOOD + bad)) ||
        fail "Pa: wmesh_published_total is $(metric Pa wmesh_published_total) after the re-send"
    wait_until 30 metric_is Pa wmesh_outbox_entries 0 || fail "Pa's outbox is not empty"
    metric_is Pa wmesh_journal_live 0 || fail "Pa's journal holds entries"
    outbox_lists Pa xpublic/v03/post/a/denied 0
    alive Pa
    note "a: with the ACL fixed (SIGHUP), the re-send delivered all $bad; nothing left aside"
}

# --- b: over the broker's maximum packet size -------------------------------------------------
part_b() {
    start_broker homeB
    echo "max_packet_size 2048" >>"$T/homeB/mosquitto.conf"
    restart_broker homeB
    # A persistent session: the observer stays subscribed across the broker's restart below.
    : >"$T/obsB.msgs"
    mosquitto_sub -h 127.0.0.1 -p "$(broker_port homeB)" -u guest -P guestpw -c -i "obsB-$$" \
        -q 1 -v -t 'xpublic/#' >>"$T/obsB.msgs" 2>>"$T/obsB.log" &
    track "$!"
    wait_until 10 observer_ready obsB homeB || fail "observer obsB did not subscribe"
    # observer_back: obsB sees what is published after homeB's restart (for wait_until).
    observer_back() {
        mosquitto_pub -h 127.0.0.1 -p "$(broker_port homeB)" -u owner -P ownerpw -i "back-$$" \
            -t xpublic/ping -m back-obsB 2>/dev/null
        grep -q '^xpublic/ping back-obsB$' "$T/obsB.msgs"
    }
    feed b "--dir b/small --dirs 4" "10 --dir b/large --size 3000"
    local bad
    bad=$(wc -l <"$T/b.bad")
    mesh_peer Pb homeB up -- --subtopic 'b/#'
    remember_argv Pb
    wait_until 20 subscribed Pb up xpublic/v03/post/b/probe ||
        fail "Pb never received the probe from up"
    publish_lines up xpublic/v03/post/b/feed "$T/b.feed"
    flows Pb obsB b
    wait_until 60 set_aside_count_is Pb "$bad" ||
        fail "Pb: wmesh_outbox_set_aside_total $(metric Pb wmesh_outbox_set_aside_total) of $bad"
    ! grep 'oversize packet' "$T/homeB.log" ||
        fail "homeB disconnected a client for an oversized packet (above)"
    settle Pb
    metric_is Pb wmesh_published_total "$GOOD" ||
        fail "Pb: wmesh_published_total is $(metric Pb wmesh_published_total), expected $GOOD"
    set_aside_holds Pb "$T/b.bad"
    outbox_lists Pb xpublic/v03/post/b/large "$bad"
    note "b: $bad announcements over max_packet_size set aside, never sent; $GOOD delivered"
    # This time the re-send is asked for while the peer is stopped: its next start takes it.
    kill_peer Pb TERM
    sed -i '/^max_packet_size/d' "$T/homeB/mosquitto.conf"
    restart_broker homeB
    wait_until 10 observer_back || fail "observer obsB is not back"
    resend Pb
    restart_peer Pb
    wait_until 60 observed_all obsB "$T/b.bad" || fail "the re-sent announcements were not seen"
    wait_until 30 metric_is Pb wmesh_published_total "$bad" ||
        fail "Pb: wmesh_published_total is $(metric Pb wmesh_published_total) after the re-send"
    wait_until 30 metric_is Pb wmesh_outbox_entries 0 || fail "Pb's outbox is not empty"
    metric_is Pb wmesh_journal_live 0 || fail "Pb's journal holds entries"
    outbox_lists Pb xpublic/v03/post/b/large 0
    alive Pb
    note "b: with the limit lifted, the re-send asked for while Pb was stopped delivered all" \
        "$bad at its next start"
}

# --- c: a topic NATS refuses ('.' or ' ' in a level) ------------------------------------------
# wmesh post meets the same refusal: the message NATS closes the connection on is refused in one
# line, the files around it are delivered, and the command ends (status 1) rather than
# reconnecting with the same message first, again and again.
post_to_nats() {
    local dir=$T/postc rc=0 started=$SECONDS f
    mkdir -p "$dir/c/post-ok" "$dir/c/post.bad"
    for f in 1 2 3; do echo "ok $f" >"$dir/c/post-ok/f$f"; done
    echo bad >"$dir/c/post.bad/f"
    timeout 60 "$WMESH" post --post-broker "$(broker_url homeC owner)" \
        --post-base-url http://127.0.0.1:9/data --dir "$dir" "$dir/c/post-ok/f1" \
        "$dir/c/post.bad/f" "$dir/c/post-ok/f2" "$dir/c/post-ok/f3" 2>"$T/postc.log" || rc=$?
    [ "$rc" -eq 1 ] || fail "wmesh post to NATS ended with status $rc, expected 1"
    [ "$(grep -c 'refused the announcement on' "$T/postc.log")" -eq 1 ] &&
        grep -q 'refused the announcement on xpublic/v03/post/c/post.bad' "$T/postc.log" ||
        fail "wmesh post did not say, once, that NATS refused c/post.bad/f"
    for f in 1 2 3; do
        wait_until 10 grep -q "c/post-ok/f$f" "$T/obsC.msgs" ||
            fail "obsC never saw c/post-ok/f$f from wmesh post"
    done
    note "c: wmesh post found the message NATS refuses and delivered the others in" \
        "$((SECONDS - started)) s, $(grep -c 'disconnected' "$T/postc.log" || true) disconnections"
}

part_c() {
    start_nats homeC
    start_observer obsC homeC
    feed c "--dir c/ok --dirs 4" "5 --dir c/a.b" "5 --dir 'c/x y'"
    local bad
    bad=$(wc -l <"$T/c.bad")
    mesh_peer Pc homeC up -- --subtopic 'c/#'
    wait_until 20 subscribed Pc up xpublic/v03/post/c/probe ||
        fail "Pc never received the probe from up"
    publish_lines up xpublic/v03/post/c/feed "$T/c.feed"
    flows Pc obsC c
    wait_until 60 set_aside_count_is Pc "$bad" ||
        fail "Pc: wmesh_outbox_set_aside_total $(metric Pc wmesh_outbox_set_aside_total) of $bad"
    settle Pc
    metric_is Pc wmesh_published_total "$GOOD" ||
        fail "Pc: wmesh_published_total is $(metric Pc wmesh_published_total), expected $GOOD"
    set_aside_holds Pc "$T/c.bad"
    outbox_lists Pc xpublic/v03/post/c/a.b $((bad / 2))
    outbox_lists Pc "xpublic/v03/post/c/x y" $((bad / 2))
    wait_until 30 metric_is Pc wmesh_outbox_entries 0 || fail "Pc's outbox is not empty"
    metric_is Pc wmesh_journal_live 0 || fail "Pc's journal holds entries"
    alive Pc
    post_to_nats
    note "c: $bad announcements on topics NATS refuses set aside after" \
        "$(grep -c "characters ' ' and '.' not supported" "$T/homeC.log" || true) refusals;" \
        "$GOOD delivered; Pc logged $(grep -c 'disconnected' "$T/Pc.log" || true) disconnections"
}

for part in $PARTS; do
    "part_$part"
done
