#!/bin/bash
# 51-mqtt-version.sh: --mqtt-version (issue 16). NATS speaks MQTT 3.1.1 only and logs an error
# for each MQTT 5 CONNECT, which `auto` (MQTT 5 first, then 3.1.1) sends at every connection.
#  a. With --mqtt-version 3.1.1, peer P (upstream NATS, post broker mosquitto), `wmesh sub` and
#     `wmesh post` on NATS all work, and NATS logs no error; mosquitto shows P's post link as
#     3.1.1.
#  b. With auto, `wmesh sub` still gets announcements from NATS (it falls back).
#  c. With --mqtt-version 5, peer Q's links to mosquitto are MQTT 5, and `wmesh sub` never falls
#     back to 3.1.1 on NATS.
#  d. A bad value is refused at once by peer, post and sub, naming the option and the value.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

[ -z "$(nats_missing)" ] || skip "$(nats_missing)"
"$WMESH" peer --help 2>&1 | grep -q -- "--mqtt-version " || fail "wmesh peer has no --mqtt-version"

# --- d. bad values ------------------------------------------------------------------------------
# refused_value CMD ARGS...: exit 2 at once, one line naming --mqtt-version and the value 4.
refused_value() {
    local rc=0
    timeout 15 "$WMESH" "$@" --mqtt-version 4 >/dev/null 2>"$T/bad.err" </dev/null || rc=$?
    [ "$rc" -eq 2 ] || fail "wmesh $1 --mqtt-version 4: exit $rc, not 2: $(cat "$T/bad.err")"
    [ "$(wc -l <"$T/bad.err")" -eq 1 ] || fail "wmesh $1: not one line: $(cat "$T/bad.err")"
    grep -q -- '--mqtt-version.*"4"' "$T/bad.err" || fail "wmesh $1: $(cat "$T/bad.err")"
}
refused_value peer --dir "$T/none" --broker mqtt://127.0.0.1:1 --post-broker none
refused_value sub --broker mqtt://127.0.0.1:1
refused_value post --post-broker mqtt://127.0.0.1:1 --post-base-url http://x --dir "$T" "$T/x"
note "d. a bad value is refused: $(cat "$T/bad.err")"
printf 'dir %s\nbroker mqtt://127.0.0.1:1\npost-broker none\nmqtt-version 3\n' "$T/none" >"$T/bad.conf"
rc=0
timeout 15 "$WMESH" peer --config "$T/bad.conf" 2>"$T/badconf.err" || rc=$?
if [ "$rc" -ne 2 ] || ! grep -q -- '--mqtt-version.*"3"' "$T/badconf.err"; then
    fail "a bad mqtt-version in a configuration file: exit $rc: $(cat "$T/badconf.err")"
fi

# --- a. 3.1.1 on NATS ---------------------------------------------------------------------------
start_nats up
start_broker home
start_observer obs home
origin=$T/origin
make_files "$origin" 6 >"$T/list"
start_serve S "$origin"
nats_url=$(broker_url up guest)
nats_errors() { # NATS's error lines so far
    grep -c '\[ERR\]' "$T/up.log" || true
}
before=$(nats_errors)
mesh_peer P home up -- --mqtt-version 3.1.1
wait_until 20 is_connected P "$(broker_port up)" 1 || fail "P (3.1.1) did not connect to NATS"
wait_until 10 grep -q "as it-P-$$-post (p2," "$T/home.log" || fail "P's post link to mosquitto is not MQTT 3.1.1"
"$WMESH" sub --broker "$nats_url" --mqtt-version 3.1.1 --count 2 >"$T/sub311.out" \
    2>>"$T/sub311.log" &
track "$!"
sub311=$!
head -n 2 "$T/list" >"$T/first"
# posted_and_seen LIST OUT [OPTION...]: posts LIST on NATS as owner with wmesh post (again:
# the subscriber may not be subscribed yet); true once OUT holds each of LIST.
posted_and_seen() {
    local list=$1 out=$2 r
    shift 2
    post_files up "$(base_url S)" "$origin" "$list" "$@"
    while IFS= read -r r; do
        wait_until 1 grep -qF "$r" "$out" || return 1
    done <"$list"
}
wait_until 20 posted_and_seen "$T/first" "$T/sub311.out" --mqtt-version 3.1.1 ||
    fail "wmesh sub --mqtt-version 3.1.1 did not print what wmesh post --mqtt-version 3.1.1 posted"
wait_until 10 gone "$sub311" || fail "wmesh sub --count 2 did not exit"
wait_until 30 all_present "$(tree_of P)" "$T/first" || fail "P (3.1.1) did not fetch the files"
while IFS= read -r r; do
    wait_until 10 observed_has obs "$r" || fail "P did not re-announce $r on home"
done <"$T/first"
after=$(nats_errors)
[ "$after" -eq "$before" ] ||
    fail "NATS logged $((after - before)) error(s) with 3.1.1 everywhere: $(grep '\[ERR\]' "$T/up.log" | tail -n 3)"
note "a. 3.1.1: P, wmesh sub and wmesh post worked through NATS, which logged no error"

# --- b. auto on NATS ----------------------------------------------------------------------------
"$WMESH" sub --broker "$nats_url" --count 1 >"$T/subauto.out" 2>>"$T/subauto.log" &
track "$!"
sed -n 3p "$T/list" >"$T/third"
wait_until 30 posted_and_seen "$T/third" "$T/subauto.out" ||
    fail "wmesh sub (auto) did not fall back to 3.1.1 on NATS"
grep -q "3.1.1" "$T/subauto.log" || fail "wmesh sub (auto) did not say it fell back"
# What part a checked for: auto's MQTT 5 CONNECTs are errors in NATS's log.
[ "$(nats_errors)" -gt "$after" ] || fail "NATS logged no error for MQTT 5 CONNECTs either"
note "b. auto: wmesh sub fell back to 3.1.1 ($(grep -m1 '3.1.1' "$T/subauto.log" | cut -c26-160)); NATS logged $(($(nats_errors) - after)) error(s): $(grep '\[ERR\]' "$T/up.log" | tail -n 1 | cut -c1-160)"

# --- c. 5 --------------------------------------------------------------------------------------
mesh_peer Q home -- --broker "$(broker_url home guest)" --mqtt-version 5 --share g
wait_until 20 is_connected Q "$(broker_port home)" 1 || fail "Q (MQTT 5) did not connect"
wait_until 10 grep -q "as it-Q-$$ (p5," "$T/home.log" || fail "Q's upstream link to mosquitto is not MQTT 5"
wait_until 10 grep -q "as it-Q-$$-post (p5," "$T/home.log" || fail "Q's post link to mosquitto is not MQTT 5"
rc=0
timeout 5 "$WMESH" sub --broker "$nats_url" --mqtt-version 5 >"$T/sub5.out" 2>"$T/sub5.log" ||
    rc=$?
[ "$rc" -eq 124 ] || fail "wmesh sub --mqtt-version 5 on NATS ended with $rc"
! grep -q "trying 3.1.1" "$T/sub5.log" || fail "wmesh sub --mqtt-version 5 fell back to 3.1.1"
! grep -q "connected (MQTT" "$T/sub5.log" || fail "wmesh sub --mqtt-version 5 connected to NATS"
note "c. 5: Q's links to mosquitto are MQTT 5; on NATS, wmesh sub stays unconnected: $(head -n 1 "$T/sub5.log" | cut -c26-200)"
