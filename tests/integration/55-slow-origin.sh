#!/bin/bash
# 55-slow-origin.sh: one slow origin with a backlog never holds up the others. Origin SLOW is
# reached through a delay proxy that passes 50 KB/s per connection; 300 of its files are
# announced, more than the downloads a peer runs at once (--max-downloads, 256), then 20 files
# of a fast origin. With default options the fast files are stored at once, while the slow
# origin's backlog is still far from done: the peer passes over files whose host already has
# all the transfers its connections can carry.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

require_tool delayproxy
start_broker up
start_broker home
make_files "$T/slow" 300 slow >"$T/slow.list"
make_files "$T/fast" 20 fast >"$T/fast.list"
start_serve S "$T/slow"
start_serve F "$T/fast"
slow_port=$(free_port)
"$WMESH_TOOLS/delayproxy" --listen "127.0.0.1:$slow_port" --connect "127.0.0.1:$(http_port S)" \
    --rate 50000 --delay-ms 20 2>>"$T/slowproxy.log" &
track "$!"
wait_until 10 port_in_use "$slow_port" || fail "the delay proxy did not listen on $slow_port"
note "origin SLOW behind a delay proxy on $slow_port: 50 KB/s per connection, 40 ms round trip"

mesh_peer P home up
wait_until 10 subscribed P up || fail "P did not subscribe"
post_files up "http://127.0.0.1:$slow_port/data" "$T/slow" "$T/slow.list"
wait_until 10 test "$(metric P wmesh_messages_received_total)" -ge 200 ||
    fail "P did not receive the slow origin's announcements"
t0=$(date +%s%N)
post_files up "$(base_url F)" "$T/fast" "$T/fast.list"
fast_stored() {
    while read -r rel; do
        [ -f "$(tree_of P)/$rel" ] || return 1
    done <"$T/fast.list"
}
wait_until 30 fast_stored || fail "P did not store the fast origin's 20 files"
ms=$((($(date +%s%N) - t0) / 1000000))
slow_done=0
while read -r rel; do
    [ ! -f "$(tree_of P)/$rel" ] || slow_done=$((slow_done + 1))
done <"$T/slow.list"
same_files "$T/fast" "$(tree_of P)" "$T/fast.list" || fail "P stored other bytes"
note "the fast origin's 20 files stored in $ms ms, with $slow_done of the slow origin's 300 done"
[ "$slow_done" -lt 200 ] || fail "the slow origin was not slow enough to show anything ($slow_done done)"
[ "$ms" -lt 10000 ] || fail "the fast files waited $ms ms behind the slow origin's backlog"
