#!/bin/bash
# 53-websockets.sh: MQTT over WebSockets, as WIS2 Global Brokers serve it (wss on 443, path
# /mqtt). Broker "up" has a mosquitto websockets listener; broker "home" has one behind nginx,
# which terminates TLS on a port of its own and proxies /mqtt. `wmesh post` announces over ws://,
# a peer subscribes over ws:// (--broker) and re-announces over wss:// (--post-broker) through
# nginx, `wmesh sub` listens over ws://; every file is relayed once, byte for byte. A wrong path
# is refused with one clear line naming the HTTP status.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

require_peer_options --cacert
command -v nginx >/dev/null || skip "nginx not installed (sh scripts/deps.sh --extra installs it)"

start_broker up
start_broker home
start_observer obs home
# add_ws_listener NAME: a websockets listener on broker NAME; prints its port.
add_ws_listener() {
    local port
    port=$(free_port)
    write_broker_config "$1" "$(broker_port "$1")" --websockets "$port" >/dev/null
    echo "$port"
}
up_ws=$(add_ws_listener up)
home_ws=$(add_ws_listener home)
restart_broker up
restart_broker home
wait_until 10 port_in_use "$up_ws" || fail "broker up has no websockets listener on $up_ws"
wait_until 10 port_in_use "$home_ws" || fail "broker home has no websockets listener on $home_ws"
note "websockets listeners: up on $up_ws, home on $home_ws"

# nginx in front of home's websockets listener, with TLS: wss://127.0.0.1:$wss/mqtt.
make_ca "$T/ca"
wss=$(free_port)
nginx_config nginx "" "        listen 127.0.0.1:$wss ssl;
        ssl_certificate $T/ca/server.pem;
        ssl_certificate_key $T/ca/server.key;
        location /mqtt {
            proxy_pass http://127.0.0.1:$home_ws;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \"upgrade\";
            proxy_read_timeout 600s;
        }"
run_nginx nginx "https://127.0.0.1:$wss/" --cacert "$T/ca/ca.pem"
note "nginx terminates TLS on $wss for home's websockets listener"

origin=$T/origin
make_files "$origin" 6 >"$T/list"
start_serve S "$origin"
port=$(free_port)
mkdir -p "$T/P/tree" "$T/P/state"
start_peer P --dir "$T/P/tree" --state-dir "$T/P/state" --client-id "it-P-$$" \
    --broker "ws://guest:guestpw@127.0.0.1:$up_ws/mqtt" \
    --post-broker "wss://owner:ownerpw@127.0.0.1:$wss/mqtt" --cacert "$T/ca/ca.pem" \
    --post-base-url "http://127.0.0.1:$port/data" --http-listen "127.0.0.1:$port"
wait_until 15 grep -q "broker guest@127.0.0.1:$up_ws: connected" "$T/P.log" ||
    fail "P did not connect to up over ws://"
wait_until 15 grep -q "broker owner@127.0.0.1:$wss: connected" "$T/P.log" ||
    fail "P did not connect to home through nginx over wss://"
wait_until 10 subscribed P up || fail "P's subscription over ws:// is not in place"

# A listener over ws:// on up, then the files announced over ws:// on up.
"$WMESH" sub --broker "ws://guest:guestpw@127.0.0.1:$up_ws/mqtt" --count 6 >"$T/sub.out" \
    2>>"$T/sub.log" &
track "$!"
wait_until 10 grep -q connected "$T/sub.log" || fail "wmesh sub did not connect over ws://"
(cd "$origin" && mapfile -t rels <"$T/list" && "$WMESH" post \
    --post-broker "ws://owner:ownerpw@127.0.0.1:$up_ws/mqtt" --post-base-url "$(base_url S)" \
    --dir "$origin" "${rels[@]}") 2>>"$T/post.log" || fail "wmesh post over ws:// failed"
note "wmesh post announced 6 files over ws://"

while read -r rel; do
    wait_until 20 test -f "$T/P/tree/$rel" || fail "P did not fetch $rel"
done <"$T/list"
same_files "$origin" "$T/P/tree" "$T/list" || fail "P stored other bytes"
wait_until 20 test "$(observed obs | wc -l)" -ge 6 ||
    fail "home saw $(observed obs | wc -l) of 6 re-announcements sent over wss://"
while read -r rel; do
    [ "$(observed obs | grep -c -- "$rel")" -eq 1 ] || fail "home did not see $rel exactly once"
done <"$T/list"
wait_until 10 test "$(grep -c ' v03 http' "$T/sub.out")" -ge 6 ||
    fail "wmesh sub over ws:// printed $(grep -c ' v03 http' "$T/sub.out") of 6 announcements"
note "6 files: posted over ws://, relayed by P (ws:// in, wss:// through nginx out), seen by sub"

# A path the server does not upgrade: one clear line with the status, and retries, no crash.
timeout 5 "$WMESH" sub --broker "ws://127.0.0.1:$(http_port S)/mqtt" --count 1 \
    >/dev/null 2>"$T/badpath.log" || true
grep -q "WebSocket upgrade at 127.0.0.1:$(http_port S)/mqtt refused: .*404" "$T/badpath.log" ||
    fail "a refused upgrade is not said clearly: $(head -n 3 "$T/badpath.log")"
[ "$(grep -c "refused" "$T/badpath.log")" -eq 1 ] || fail "the refusal was logged more than once"
note "a path the server does not upgrade: $(grep -m1 refused "$T/badpath.log" | cut -c26-)"
alive P

