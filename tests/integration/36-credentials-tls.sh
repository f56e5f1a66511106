#!/bin/bash
# 36-credentials-tls.sh: (a) broker URLs without passwords take them from a --credentials file
# (mode 0600); a file others can read is refused with a clear message; no password shows in logs
# or in ps. (b) with a throwaway CA, a peer reaches an mqtts:// listener with --cacert and fails
# (certificate verification, logged) without it, staying alive. (c) the same for https:// downloads.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

require_peer_options --credentials --cacert --retry-for
start_broker up
start_broker home
start_observer obs home
origin=$T/origin
make_files "$origin" 4 >"$T/list"
start_serve S "$origin"
up_port=$(broker_port up)
home_port=$(broker_port home)

# announce BROKER BASEURL REL: a v03 announcement of origin's REL.
announce() {
    pub "$1" "$(topic_of "$3")" "$(v03_msg "$2" "$3" sha512 "$(checksum_b64 sha512 "$origin/$3")")"
}
no_password_in() { # no_password_in FILE WHAT
    ! grep -qE 'guestpw|ownerpw' "$1" || fail "a password shows in $2: $(grep -E 'guestpw|ownerpw' "$1" | head -n 3)"
}

# --- (a) credentials file ----------------------------------------------------------------------
umask 077
printf '# brokers\nmqtt://guest:guestpw@127.0.0.1:%s\nmqtt://owner:ownerpw@127.0.0.1:%s\n' \
    "$up_port" "$home_port" >"$T/creds"
umask 022
[ "$(stat -c %a "$T/creds")" = 600 ] || fail "could not make a 0600 file"
port=$(free_port)
mkdir -p "$T/P/tree" "$T/P/state"
start_peer P --dir "$T/P/tree" --state-dir "$T/P/state" --client-id "it-P-$$" \
    --broker "mqtt://guest@127.0.0.1:$up_port" --post-broker "mqtt://owner@127.0.0.1:$home_port" \
    --credentials "$T/creds" --post-base-url "http://127.0.0.1:$port/data" \
    --http-listen "127.0.0.1:$port"
rel=$(sed -n 1p "$T/list")
announce up "$(base_url S)" "$rel"
wait_until 20 test -f "$T/P/tree/$rel" || fail "P (passwords from the credentials file) did not fetch $rel"
cmp -s "$origin/$rel" "$T/P/tree/$rel" || fail "P stored other bytes"
wait_until 10 observed_has obs "$rel" || fail "P did not re-announce $rel on home (as owner)"
note "(a) passwords from a 0600 credentials file: subscribed as guest, announced as owner"
no_password_in "$T/P.log" "P's log"
tr '\0' ' ' <"/proc/$(pid_of P)/cmdline" >"$T/P.cmdline"
no_password_in "$T/P.cmdline" "P's command line"
if command -v ps >/dev/null; then
    ps -eo pid,args >"$T/ps.txt"
else # no procps: what ps would print, from /proc
    printf '%s %s\n' "$(pid_of P)" "$(cat "$T/P.cmdline")" >"$T/ps.txt"
fi
grep -E "^ *$(pid_of P) " "$T/ps.txt" >"$T/ps.P" || fail "ps does not show P"
no_password_in "$T/ps.P" "ps output"

# A peer given the passwords on its command line does not log them either.
mesh_peer R home up
announce up "$(base_url S)" "$(sed -n 2p "$T/list")"
wait_until 20 test -f "$(tree_of R)/$(sed -n 2p "$T/list")" || fail "R did not fetch its file"
no_password_in "$T/R.log" "R's log (passwords given in --broker URLs)"
stop_pid "$(pid_of R)"

# A credentials file that others may read is refused, clearly, without echoing its secrets.
cp "$T/creds" "$T/creds644"
chmod 644 "$T/creds644"
rc=0
timeout 15 "$WMESH" peer --name Q --dir "$T/P/tree" --broker "mqtt://guest@127.0.0.1:$up_port" \
    --post-broker none --credentials "$T/creds644" 2>"$T/Q.log" || rc=$?
[ "$rc" -ne 0 ] || fail "a peer started with a 0644 credentials file"
[ "$rc" -ne 124 ] || fail "a peer with a 0644 credentials file neither started nor exited"
grep -qF "$T/creds644" "$T/Q.log" || fail "the refusal does not name the file: $(cat "$T/Q.log")"
grep -qiE 'mode|permission|0600|chmod|readable' "$T/Q.log" ||
    fail "the refusal does not say what is wrong: $(cat "$T/Q.log")"
no_password_in "$T/Q.log" "the refusal"
note "(a) a 0644 credentials file is refused (exit $rc): $(head -n 1 "$T/Q.log")"

# --- (b) mqtts:// with a throwaway CA ----------------------------------------------------------
make_ca "$T/ca"
tls_port=$(add_tls_listener up "$T/ca")
restart_broker up
tls_ready() {
    mosquitto_pub -h 127.0.0.1 -p "$tls_port" --cafile "$T/ca/ca.pem" -u owner -P ownerpw \
        -i "tlsready-$$" -t xpublic/ping -n 2>/dev/null
}
wait_until 10 tls_ready || fail "broker up has no TLS listener on $tls_port"
note "(b) broker up also listens with TLS on $tls_port"
tls_url="mqtts://guest:guestpw@127.0.0.1:$tls_port"
mesh_peer V home -- --broker "$tls_url" --cacert "$T/ca/ca.pem"
mesh_peer W home -- --broker "$tls_url"
wait_until 20 is_connected V "$tls_port" 1 || fail "V (with --cacert) did not connect: $(connected V "$tls_port")"
rel=$(sed -n 3p "$T/list")
announce up "$(base_url S)" "$rel"
wait_until 20 test -f "$(tree_of V)/$rel" || fail "V did not fetch $rel through mqtts://"
cmp -s "$origin/$rel" "$(tree_of V)/$rel" || fail "V stored other bytes"
note "(b) V verified the broker with --cacert and fetched $rel"
verify_logged() {
    grep -qiE 'certificate|verif' "$T/W.log"
}
# Checked last (the rest runs first): the failure names the certificate, not just "TLS error".
wait_until 20 grep -qE 'TLS|SSL|[Cc]ertificate|verif' "$T/W.log" || fail "W (no --cacert) logged nothing about its TLS link"
verify_ok=0
verify_logged && verify_ok=1
[ "$(connected W "$tls_port")" = 0 ] || fail "W connected to a broker whose certificate it cannot verify"
[ ! -e "$(tree_of W)/$rel" ] || fail "W fetched $rel through a broker it could not verify"
alive W
metrics_ready W || fail "W stopped answering"
note "(b) W without --cacert: $(grep -iE 'certificate|verif|TLS error' "$T/W.log" | head -n 1 | cut -c1-200)"
no_password_in "$T/V.log" "V's log"
no_password_in "$T/W.log" "W's log"

# --- (c) https:// downloads with the same CA ---------------------------------------------------
https_port=$(free_port)
mkdir -p "$T/https"
cp -a "$origin/." "$T/https/"
# The server refuses a handshake whose SNI names another host than "localhost" (alert
# unrecognized_name). RFC 6066 keeps addresses out of SNI: X's download below proves that wmesh
# sends none for 127.0.0.1 (curl sends none either).
(cd "$T/https" && exec openssl s_server -accept "$https_port" -cert "$T/ca/server.pem" \
    -key "$T/ca/server.key" -cert2 "$T/ca/server.pem" -key2 "$T/ca/server.key" \
    -servername localhost -servername_fatal -WWW -quiet) </dev/null >>"$T/https.log" 2>&1 &
track "$!"
rel=$(sed -n 4p "$T/list")
wait_until 10 curl -fsS -o /dev/null --cacert "$T/ca/ca.pem" "https://127.0.0.1:$https_port/$rel" ||
    fail "openssl s_server does not serve https on $https_port"
mesh_peer X home up -- --cacert "$T/ca/ca.pem" --retry-for 5
mesh_peer Y home up -- --retry-for 5
announce up "https://127.0.0.1:$https_port" "$rel"
wait_until 30 test -f "$(tree_of X)/$rel" || fail "X (with --cacert) did not fetch $rel over https"
cmp -s "$origin/$rel" "$(tree_of X)/$rel" || fail "X stored other bytes"
wait_until 30 logged_has Y failed "$rel" || fail "Y (no --cacert) did not give up on $rel"
grep -F "$rel" "$T/Y.log" | grep -qiE 'certificate|verify|ssl' ||
    fail "Y's failure does not mention the certificate: $(grep -F "$rel" "$T/Y.log")"
[ ! -e "$(tree_of Y)/$rel" ] || fail "Y fetched $rel from a server it could not verify"
alive Y
note "(c) https: X verified with --cacert; Y refused: $(grep -F "failed $rel" "$T/Y.log" | cut -c1-200)"
[ "$verify_ok" = 1 ] ||
    fail "W (no --cacert) logged no certificate verification failure, only: $(grep -E 'TLS|SSL' "$T/W.log" | head -n 2)"
