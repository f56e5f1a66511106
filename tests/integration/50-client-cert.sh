#!/bin/bash
# 50-client-cert.sh: client certificates (mTLS, issue 16). Brokers up and home each get an
# mqtts:// listener that wants a client certificate signed by the test CA (mosquitto's
# require_certificate), and nginx serves the origin's files over https to such clients only
# (ssl_verify_client on).
#  a. Files that cannot be used (missing, a key that is not the certificate's) stop `wmesh sub`,
#     `wmesh post` and `wmesh peer` at once, with one line naming the file.
#  b. `wmesh sub` and `wmesh post` with --cert/--key (or one file holding both) talk to the
#     broker; without a certificate, or with one of another CA, they are refused, saying why.
#  c. Peer P, whose upstream broker, post broker and origin all want client certificates, relays
#     files end to end; peer W, without a certificate, cannot reach the mqtts:// listener and gets
#     HTTP 400 from nginx: it stores nothing.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

require_peer_options --cacert --cert --key
[ -z "$(nginx_missing)" ] || skip "$(nginx_missing)"
ca=$T/ca
make_ca "$ca"
make_client_cert "$ca" client
make_client_cert "$ca" other
cat "$ca/client.pem" "$ca/client.key" >"$ca/client-both.pem"
make_ca "$T/ca2" # another CA, whose client certificates the servers do not trust
make_client_cert "$T/ca2" impostor

start_broker up
start_broker home
up_tls=$(add_tls_listener up "$ca" require)
home_tls=$(add_tls_listener home "$ca" require)
restart_broker up
restart_broker home
# tls_ready PORT: a client with the test certificate can publish on the listener at PORT.
tls_ready() {
    mosquitto_pub -h 127.0.0.1 -p "$1" --cafile "$ca/ca.pem" --cert "$ca/client.pem" \
        --key "$ca/client.key" -u owner -P ownerpw -i "tlsready-$$" -t xpublic/ping -n 2>/dev/null
}
wait_until 10 tls_ready "$up_tls" || fail "broker up has no TLS listener on $up_tls"
wait_until 10 tls_ready "$home_tls" || fail "broker home has no TLS listener on $home_tls"
note "mqtts:// listeners wanting client certificates: up on $up_tls, home on $home_tls"
start_observer obs home

origin=$T/origin
make_files "$origin" 6 >"$T/list"
start_nginx N "$origin" "$ca"
base=$(nginx_url N)
curl -fsS -o /dev/null --cacert "$ca/ca.pem" --cert "$ca/client.pem" --key "$ca/client.key" \
    "$base/$(sed -n 1p "$T/list")" || fail "nginx does not serve the origin to the client certificate"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca/ca.pem" "$base/$(sed -n 1p "$T/list")")
[ "$code" = 400 ] || fail "nginx answered $code, not 400, to a client without a certificate"

up_url="mqtts://guest:guestpw@127.0.0.1:$up_tls"
up_owner="mqtts://owner:ownerpw@127.0.0.1:$up_tls"
home_owner="mqtts://owner:ownerpw@127.0.0.1:$home_tls"
mine=(--cacert "$ca/ca.pem" --cert "$ca/client.pem" --key "$ca/client.key")

# --- a. files that cannot be used stop the commands at once ------------------------------------
# refused_at_once NAME PART CMD...: CMD exits at once with status 2 and one line on stderr that
# holds PART.
refused_at_once() {
    local name=$1 part=$2 rc=0
    shift 2
    timeout 15 "$@" 2>"$T/$name.err" >/dev/null </dev/null || rc=$?
    [ "$rc" -eq 2 ] || fail "$name: exit $rc, not 2: $(cat "$T/$name.err")"
    [ "$(wc -l <"$T/$name.err")" -eq 1 ] || fail "$name: not one line: $(cat "$T/$name.err")"
    grep -qF -- "$part" "$T/$name.err" || fail "$name: no '$part' in: $(cat "$T/$name.err")"
    note "a. $name: $(cat "$T/$name.err")"
}
refused_at_once sub-missing "cannot load client certificate $T/missing.pem" \
    "$WMESH" sub --broker "$up_url" --cacert "$ca/ca.pem" --cert "$T/missing.pem"
refused_at_once post-mismatch "does not match" \
    "$WMESH" post --post-broker "$up_owner" --post-base-url "$base" --dir "$origin" \
    --cacert "$ca/ca.pem" --cert "$ca/client.pem" --key "$ca/other.key" "$origin/x"
refused_at_once sub-nokey "holds no private key" \
    "$WMESH" sub --broker "$up_url" --cacert "$ca/ca.pem" --cert "$ca/client.pem"
refused_at_once peer-missing "cannot load client certificate $T/missing.pem" \
    "$WMESH" peer --dir "$T/none" --broker "$up_url" --post-broker none \
    --cacert "$ca/ca.pem" --cert "$T/missing.pem" --key "$ca/client.key"
refused_at_once peer-mismatch "$ca/other.key does not match certificate $ca/client.pem" \
    "$WMESH" peer --dir "$T/none" --broker "$up_url" --post-broker none \
    --cacert "$ca/ca.pem" --cert "$ca/client.pem" --key "$ca/other.key"
refused_at_once peer-keyonly "--key $ca/client.key needs --cert" \
    "$WMESH" peer --dir "$T/none" --broker "$up_url" --post-broker none --key "$ca/client.key"
[ ! -e "$T/none" ] || fail "a peer that could not start made its tree"

# --- b. wmesh sub and wmesh post -----------------------------------------------------------------
# One subscriber with the certificate and key in one file; a post with them apart.
"$WMESH" sub --broker "$up_url" --cacert "$ca/ca.pem" --cert "$ca/client-both.pem" --count 1 \
    >"$T/sub.out" 2>>"$T/sub.log" &
track "$!"
sub_pid=$!
rel=$(sed -n 1p "$T/list")
# posted_and_seen: posts rel (again: the subscriber may not have subscribed yet); true once the
# subscriber printed it.
posted_and_seen() {
    (cd "$origin" && "$WMESH" post --post-broker "$up_owner" --post-base-url "$base" \
        --dir "$origin" "${mine[@]}" "$rel") 2>>"$T/post.log" || fail "wmesh post with --cert failed"
    wait_until 1 grep -qF "$rel" "$T/sub.out"
}
wait_until 20 posted_and_seen || fail "wmesh sub with --cert did not print what wmesh post posted"
wait_until 10 gone "$sub_pid" || fail "wmesh sub --count 1 did not exit"
note "b. wmesh post (--cert, --key) and wmesh sub (--cert holding the key): $(head -c 160 "$T/sub.out")"

# refused CMD_NAME PART CMD...: CMD, without a usable certificate, gets nowhere in 6 s and logs a
# reason holding PART (a regular expression).
refused() {
    local name=$1 part=$2 rc=0
    shift 2
    timeout 6 "$@" >"$T/$name.out" 2>"$T/$name.log" </dev/null || rc=$?
    [ ! -s "$T/$name.out" ] || fail "$name printed something: $(head -n 3 "$T/$name.out")"
    grep -qiE "$part" "$T/$name.log" || fail "$name: no '$part' in its log"
    # A refused certificate says nothing of the MQTT version: no fallback to 3.1.1.
    ! grep -q "trying 3.1.1" "$T/$name.log" || fail "$name took a TLS refusal for a version refusal"
    note "b. $name (exit $rc): $(grep -iE "$part" "$T/$name.log" | head -n 1 | cut -c1-220)"
    echo "$rc"
}
refused sub-nocert 'requires a client certificate|wants a client certificate' \
    "$WMESH" sub --broker "$up_url" --cacert "$ca/ca.pem" --count 1 >/dev/null
refused sub-impostor 'refused our client certificate' \
    "$WMESH" sub --broker "$up_url" --cacert "$ca/ca.pem" --cert "$T/ca2/impostor.pem" \
    --key "$T/ca2/impostor.key" --count 1 >/dev/null
rc=$(refused post-nocert 'requires a client certificate|wants a client certificate' \
    "$WMESH" post --post-broker "$up_owner" --post-base-url "$base" --dir "$origin" \
    --cacert "$ca/ca.pem" --timeout 3 "$origin/$rel")
[ "$rc" -eq 1 ] || fail "wmesh post without a certificate: exit $rc, not 1"

# --- c. a peer relays through brokers and an origin that all want client certificates --------
port=$(free_port)
mkdir -p "$T/P/tree" "$T/P/state"
start_peer P --dir "$T/P/tree" --state-dir "$T/P/state" --client-id "it-P-$$" \
    --broker "$up_url" --post-broker "$home_owner" --post-base-url "http://127.0.0.1:$port/data" \
    --http-listen "127.0.0.1:$port" "${mine[@]}"
# W has no certificate: its mqtts:// link fails, its plain link to the same broker brings it the
# announcements, and nginx answers its downloads 400.
mesh_peer W home up -- --broker "$up_url" --cacert "$ca/ca.pem" --retry-for 3
wait_until 20 is_connected P "$up_tls" 1 || fail "P did not connect to up's mqtts:// listener"
wait_until 20 is_connected W "$(broker_port up)" 1 || fail "W did not connect to up"
note "c. P is up on up's mqtts:// listener with its certificate"
tail -n +2 "$T/list" >"$T/relay"
# Posted on up's plain listener: P reads it over mqtts://, W over mqtt://.
post_files up "$base" "$origin" "$T/relay"
wait_until 30 all_present "$T/P/tree" "$T/relay" ||
    fail "P holds $(count_present "$T/P/tree" "$T/relay") of $(wc -l <"$T/relay") files"
same_files "$origin" "$T/P/tree" "$T/relay" || fail "P stored other bytes than the origin's"
while IFS= read -r r; do
    wait_until 10 observed_has obs "$r" || fail "P did not re-announce $r on home over mqtts://"
done <"$T/relay"
note "c. P relayed $(wc -l <"$T/relay") files: mqtts:// in and out and https:// from nginx, all with its certificate"

last=$(tail -n 1 "$T/relay")
wait_until 30 logged_has W failed "$last" || fail "W did not give up on $last"
grep -F "failed $last" "$T/W.log" | grep -qF 400 ||
    fail "W's failure does not say HTTP 400: $(grep -F "$last" "$T/W.log")"
[ -z "$(tree_files "$(tree_of W)")" ] || fail "W stored files: $(tree_files "$(tree_of W)")"
[ "$(connected W "$up_tls")" = 0 ] || fail "W connected to a listener that wants a certificate"
grep -qiE 'requires a client certificate|wants a client certificate' "$T/W.log" ||
    fail "W did not log why its mqtts:// link failed"
alive W
note "c. W, without a certificate: $(grep -F "failed $last" "$T/W.log" | cut -c1-200)"
note "c. W's mqtts:// link: $(grep -iE 'client certificate' "$T/W.log" | head -n 1 | cut -c1-200)"
