#!/bin/bash
# 19-rabbitmq.sh: a mesh over RabbitMQ brokers (Debian's rabbitmq-server and its MQTT plugin,
# which speaks MQTT 3.1.1 only and closes the connection on an MQTT 5 CONNECT). Every wmesh link
# falls back from MQTT 5 to 3.1.1; A -> B -> C relays N files, each downloaded once per peer with
# identical bytes and announced once per broker; B stopped (SIGTERM) while more files are posted
# resumes its persistent session (QoS 1, clean session off) when it starts again and gets them,
# and B killed (SIGKILL) amid a flow loses nothing either; `wmesh post` and `wmesh sub` work (sub also
# with the vhost in its user name); a --share peer says in one line that it cannot share there.
# Skipped, saying why, where rabbitmq-server is not installed.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

missing=$(rabbitmq_missing)
[ -z "$missing" ] || skip "$missing"

N=${N:-300} # relayed with every peer up
M=${M:-60}  # posted while B is stopped
K=${K:-150} # posted, then B is killed amid their flow

# A's files are made while the RabbitMQ node boots (10 s or more).
mkdir -p "$(tree_of A)"
(
    make_files "$(tree_of A)" 1 first >"$T/first"
    make_files "$(tree_of A)" "$N" relay >"$T/list"
    make_files "$(tree_of A)" "$M" down >"$T/down"
    make_files "$(tree_of A)" "$K" kill >"$T/kill"
) &
maker=$!
track "$maker"
start_rabbitmq bA bB bC
wait "$maker" || fail "make_files failed"
untrack "$maker"
mesh_peer A bA
mesh_peer B bB bA
mesh_peer C bC bB
# D wants a shared subscription on bB, which RabbitMQ 3.x does not have.
mesh_peer D bC bB -- --share grp --instance 1
for b in bA bB bC; do
    start_observer "o$b" "$b"
done

# Two `wmesh sub` of bC: one by its port, one through bA's port with the vhost in its user name
# ("bC:guest", ':' %-encoded in the URL). Each is subscribed once a probe published on bC
# reaches it.
"$WMESH" sub --broker "$(broker_url bC guest)" >"$T/sub.out" 2>>"$T/sub.log" &
track "$!"
"$WMESH" sub --broker "mqtt://bC%3Aguest:guestpw@127.0.0.1:$(broker_port bA)" \
    >"$T/subvh.out" 2>>"$T/subvh.log" &
track "$!"
subs_ready() {
    pub bC xpublic/v03/post/probe "$(v03_msg http://127.0.0.1:9/data probe/ready md5 \
        1B2M2Y8AsgTpgAmY7PqCDg==)"
    grep -q 'probe/ready' "$T/sub.out" && grep -q 'probe/ready' "$T/subvh.out"
}
wait_until 30 subs_ready || fail "wmesh sub did not receive a probe: $(cat "$T/sub.out" "$T/subvh.out")"
# what_arrived OBSERVER: its announcements, probes left out.
what_arrived() {
    observed "$1" | grep -v 'probe/ready' || true
}

# One file first: once it reaches C, B and C are subscribed (their sessions exist from then on).
post_files bA "$(base_url A)" "$(tree_of A)" "$T/first"
wait_until 60 all_present "$(tree_of C)" "$T/first" || fail "the first file did not reach C"
for p in A B C D; do
    grep -q 'closed the connection on an MQTT 5 CONNECT; trying 3.1.1' "$T/$p.log" ||
        fail "$p did not fall back from MQTT 5"
    grep -q 'connected (MQTT 3.1.1' "$T/$p.log" || fail "$p did not connect with MQTT 3.1.1"
    ! grep -q 'connected (MQTT 5' "$T/$p.log" || fail "$p claims MQTT 5 with RabbitMQ"
done
grep -q 'trying 3.1.1' "$T/post.log" || fail "wmesh post did not fall back from MQTT 5"
note "every link fell back from MQTT 5 to 3.1.1: $(grep -h 'trying 3.1.1' "$T/B.log" | head -n 1)"

post_files bA "$(base_url A)" "$(tree_of A)" "$T/list"
note "posted $N files at A"
reach_all "$T/list" A C B
settle A B C
total=$((N + 1))
for p in B C; do
    metrics_are "$p" "$total" wmesh_downloads_total wmesh_published_total \
        wmesh_messages_received_total
    [ "$(metric "$p" wmesh_download_errors_total)" -eq 0 ] || fail "$p had download errors"
    once_each "$p" downloaded
    [ -z "$(logged "$p" failed)" ] || fail "$p logged failures"
done
[ "$(metric A wmesh_published_total)" -eq 0 ] || fail "A re-published its own posts"
for b in bA bB bC; do
    n=$(what_arrived "o$b" | wc -l)
    [ "$n" -eq "$total" ] || fail "broker $b carried $n announcements, expected $total"
done
for s in sub subvh; do
    n=$(grep -c '___relay' "$T/$s.out" || true)
    [ "$n" -eq "$N" ] || fail "wmesh sub ($s) printed $n of the $N announcements on bC"
done
note "B and C downloaded and announced each file once; both wmesh sub saw all $N on bC"

# D has said, once, that it cannot share; it is still up and has done nothing.
n=$(grep -c 'no shared subscriptions' "$T/D.log" || true)
[ "$n" -eq 1 ] || fail "D logged $n lines about shared subscriptions, expected 1"
alive D
[ "$(metric D wmesh_messages_received_total)" -eq 0 ] || fail "D received announcements"
note "D (--share): $(grep -h 'no shared subscriptions' "$T/D.log" | sed 's/^[^ ]* //')"

# B stopped: what A announces meanwhile waits in B's session on bA, then reaches C.
remember_argv B
kill_peer B TERM
post_files bA "$(base_url A)" "$(tree_of A)" "$T/down"
[ "$(count_present "$(tree_of C)" "$T/down")" -eq 0 ] || fail "files reached C without B"
restart_peer B
wait_until 60 all_present "$(tree_of C)" "$T/down" ||
    fail "after B's restart C holds $(count_present "$(tree_of C)" "$T/down") of $M files"
same_files "$(tree_of A)" "$(tree_of C)" "$T/down" || fail "C: some file differs from A's"
grep -q "guest@127.0.0.1:$(broker_port bA): connected (MQTT 3.1.1, session resumed)" "$T/B.log" ||
    fail "B's session on bA was not resumed"
note "B resumed its session: the $M files posted while it was stopped reached C"

# B killed amid a flow: what it had not acknowledged comes again, nothing twice, nothing lost.
post_files bA "$(base_url A)" "$(tree_of A)" "$T/kill"
holds_some() {
    [ "$(count_present "$1" "$2")" -ge 10 ]
}
wait_until 60 holds_some "$(tree_of B)" "$T/kill" || fail "B did not start on the files"
kill_peer B KILL
had=$(count_present "$(tree_of B)" "$T/kill")
restart_peer B
wait_until 60 all_present "$(tree_of C)" "$T/kill" ||
    fail "after B's kill C holds $(count_present "$(tree_of C)" "$T/kill") of $K files"
same_files "$(tree_of A)" "$(tree_of B)" "$T/kill" || fail "B: some file differs from A's"
same_files "$(tree_of A)" "$(tree_of C)" "$T/kill" || fail "C: some file differs from A's"
settle A B C
# B's log spans its three lives: no file was downloaded twice, before or after a restart.
for p in B C; do
    once_each "$p" downloaded
    [ -z "$(logged "$p" failed)" ] || fail "$p logged failures"
done
n=$(logged C downloaded | wc -l)
[ "$n" -eq $((total + M + K)) ] || fail "C logged $n downloads, expected $((total + M + K))"
note "B killed holding $had of $K files: after its restart every file reached C, once"
for p in A B C D; do
    alive "$p"
done
