#!/bin/bash
# 16-mqtt5.sh: peers speak MQTT 5 where the broker does, and their announcements carry the
# content type application/json, without which Sarracenia 3 (sr3) subscribers drop them; an
# MQTT 3.1.1 subscriber still receives them.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

start_broker up
start_broker home
mesh_peer P home up
start_serve S "$T/origin"
port=$(broker_port home)
mosquitto_sub -V mqttv5 -h 127.0.0.1 -p "$port" -u guest -P guestpw -q 1 -t 'xpublic/#' \
    -F '%C %t' >"$T/v5.out" 2>"$T/v5.err" &
track $!
mosquitto_sub -V mqttv311 -h 127.0.0.1 -p "$port" -u guest -P guestpw -q 1 -t 'xpublic/#' \
    -F '%t' >"$T/v311.out" 2>"$T/v311.err" &
track $!
# Both subscribers are up once a probe published by hand reaches them.
probe() {
    pub home xpublic/probe probe
    [ -s "$T/v5.out" ] && [ -s "$T/v311.out" ]
}
wait_until 10 probe || fail "the subscribers did not start"
make_files "$T/origin" 5 >"$T/list"
post_files up "$(base_url S)" "$T/origin" "$T/list"
wait_until 20 metric_is P wmesh_published_total 5 || fail "P published: $(counters P)"
wait_until 10 test "$(grep -c '^application/json xpublic/v03/post/' "$T/v5.out")" -eq 5 ||
    fail "MQTT 5 subscriber saw: $(cat "$T/v5.out")"
wait_until 10 test "$(grep -c '^xpublic/v03/post/' "$T/v311.out")" -eq 5 ||
    fail "MQTT 3.1.1 subscriber saw: $(cat "$T/v311.out")"
grep -q 'connected (MQTT 5)' "$T/P.log" || fail "P did not use MQTT 5"
note "announcements carry content type application/json under MQTT 5; 3.1.1 subscribers get them too"
