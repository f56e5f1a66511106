#!/bin/bash
# 52-proxy.sh: the proxy test bench (issue 16). An nginx origin serves http and https under a
# name, origin.test, that only the squid proxies resolve (their own hosts file): a client that
# ignores its proxy cannot reach it. Checked with curl for now: http through the proxy
# (absolute-form GET), https through a CONNECT tunnel with the origin's certificate verified end
# to end, the proxy variables, and a proxy that wants Basic credentials and allows CONNECT to one
# port only (407, 403). Then wmesh peers: through --proxy (brokers too, by names only the proxy
# knows), through the proxy variables, with the proxy's password from the credentials file,
# without it (407 said clearly) and with --no-proxy.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

missing=$(squid_missing)
[ -z "$missing" ] || skip "$missing"
command -v nginx >/dev/null || skip "nginx is not installed (sh scripts/deps.sh --extra installs it)"

# make_origin_cert DIR NAME: make_ca's CA in DIR, and DIR/NAME.pem + DIR/NAME.key for the name
# NAME (DNS SAN), which only the proxies resolve.
make_origin_cert() {
    make_ca "$1"
    sign_cert "$1" "$2" "/CN=$2" "subjectAltName=DNS:$2
extendedKeyUsage=serverAuth"
}

# start_origin NAME ROOT CERTDIR: nginx serving ROOT under /data/ over http ($T/NAME/http_port)
# and https ($T/NAME/https_port) on 127.0.0.1, as origin.test, with an access log.
start_origin() {
    local name=$1 root=$2 certs=$3 http https
    http=$(free_port)
    https=$(free_port)
    mkdir -p "$T/$name"
    echo "$http" >"$T/$name/http_port"
    echo "$https" >"$T/$name/https_port"
    nginx_config "$name" "$root" "        listen 127.0.0.1:$http;
        listen 127.0.0.1:$https ssl;
        server_name origin.test;
        access_log $T/$name/access.log;
        ssl_certificate $certs/origin.test.pem;
        ssl_certificate_key $certs/origin.test.key;"
    # Polled by address: the name resolves nowhere but in the proxies.
    run_nginx "$name" "http://127.0.0.1:$http/"
    note "origin $name: http on $http, https on $https (as origin.test, known to the proxies only)"
}

# through [VAR=VALUE...] CURL-ARGS...: curl with the proxy variables cleared, then set to the
# VAR=VALUEs; prints the HTTP status and that of the CONNECT (000: none). Never fails: they say.
through() {
    local -a vars=()
    while [[ ${1:-} =~ ^[A-Za-z_]+= ]]; do
        vars+=("$1")
        shift
    done
    env -u http_proxy -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY -u no_proxy \
        -u NO_PROXY "${vars[@]}" curl -s --max-time 10 -o "$T/got" \
        -w '%{http_code} %{http_connect}' "$@" 2>>"$T/curl.log" || true
}

origin=$T/origin
mkdir -p "$origin"
make_files "$origin" 2 >"$T/list"
rel=$(sed -n 1p "$T/list")
make_origin_cert "$T/certs" origin.test
start_origin O "$origin" "$T/certs"
http_url="http://origin.test:$(cat "$T/O/http_port")/data/$rel"
https_url="https://origin.test:$(cat "$T/O/https_port")/data/$rel"
start_squid P --host origin.test=127.0.0.1
start_squid A --auth alice:wonder-land --connect-ports "$(cat "$T/O/https_port")" \
    --host origin.test=127.0.0.1

# --- without a proxy, the origin is out of reach -------------------------------------------------
rc=0
env -u http_proxy -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY \
    curl -s -o /dev/null --max-time 5 --noproxy '*' "$http_url" 2>>"$T/curl.log" || rc=$?
[ "$rc" -ne 0 ] || fail "origin.test answered without the proxy: the test proves nothing"
note "direct: curl cannot reach origin.test (exit $rc)"

# --- http through the proxy: absolute-form GET ---------------------------------------------------
[ "$(through -x "$(proxy_url P)" "$http_url")" = "200 000" ] || fail "no 200 for http via squid P"
cmp -s "$T/got" "$origin/$rel" || fail "http via squid P: other bytes"
grep -qF "GET $http_url" "$T/P/access.log" || fail "squid P did not log the GET: $(cat "$T/P/access.log")"
note "http via squid P: 200, the file's bytes"

# --- https through a CONNECT tunnel, the origin's certificate verified through it ---------------
[ "$(through --cacert "$T/certs/ca.pem" -x "$(proxy_url P)" "$https_url")" = "200 200" ] ||
    fail "no 200 for https via squid P: $(tail -n 3 "$T/curl.log")"
cmp -s "$T/got" "$origin/$rel" || fail "https via squid P: other bytes"
grep -qF "CONNECT origin.test:$(cat "$T/O/https_port")" "$T/P/access.log" ||
    fail "squid P did not log the CONNECT: $(cat "$T/P/access.log")"
# Without the CA, the tunnel comes up and TLS fails: it is the origin's certificate, end to end.
[ "$(through -x "$(proxy_url P)" "$https_url")" = "000 200" ] ||
    fail "https via squid P without the CA did not fail on the certificate"
note "https via squid P: CONNECT 200, TLS with origin.test end to end"

# --- the variables, as wmesh reads them (curl's rules) -------------------------------------------
[ "$(through http_proxy="$(proxy_url P)" "$http_url")" = "200 000" ] || fail "http_proxy not used"
[ "$(through HTTPS_PROXY="$(proxy_url P)" --cacert "$T/certs/ca.pem" "$https_url")" = "200 200" ] ||
    fail "HTTPS_PROXY not used"
[ "$(through ALL_PROXY="$(proxy_url P)" NO_PROXY=.test "$http_url")" = "000 000" ] ||
    fail "NO_PROXY=.test did not bypass the proxy"
note "http_proxy, HTTPS_PROXY and NO_PROXY behave"

# --- a proxy that wants credentials and allows CONNECT to one port ---------------------------------
[ "$(through --cacert "$T/certs/ca.pem" -x "$(proxy_url A)" "$https_url")" = "000 407" ] ||
    fail "squid A did not ask for credentials"
[ "$(through --cacert "$T/certs/ca.pem" -x "$(proxy_url A alice:wrong)" "$https_url")" = "000 407" ] ||
    fail "squid A took a wrong password"
[ "$(through --cacert "$T/certs/ca.pem" -x "$(proxy_url A alice:wonder-land)" "$https_url")" = "200 200" ] ||
    fail "squid A refused alice: $(tail -n 3 "$T/curl.log")"
[ "$(through -p -x "$(proxy_url A alice:wonder-land)" "$http_url")" = "000 403" ] ||
    fail "squid A tunnelled to a port it does not allow"
[ "$(through -x "$(proxy_url A alice:wonder-land)" "$http_url")" = "200 000" ] ||
    fail "squid A did not pass alice's GET"
note "squid A: 407 without or with wrong credentials, 403 for CONNECT to another port, else 200"

# --- wmesh peers through the proxy ---------------------------------------------------------------
# Squid Q knows origin.test and broker.test, and tunnels to any port.
start_squid Q --host origin.test=127.0.0.1 --host broker.test=127.0.0.1
start_broker up
start_broker home
http_base="http://origin.test:$(cat "$T/O/http_port")/data"
https_base="https://origin.test:$(cat "$T/O/https_port")/data"
rel2=$(sed -n 2p "$T/list")
# announce: rel over http, rel2 over https, both on up.
announce() {
    pub up "$(topic_of "$rel")" "$(v03_msg "$http_base" "$rel" sha512 "$(checksum_b64 sha512 "$origin/$rel")")"
    pub up "$(topic_of "$rel2")" "$(v03_msg "$https_base" "$rel2" sha512 "$(checksum_b64 sha512 "$origin/$rel2")")"
}
# stored PEER: PEER holds both files, byte for byte.
stored() {
    cmp -s "$origin/$rel" "$(tree_of "$1")/$rel" && cmp -s "$origin/$rel2" "$(tree_of "$1")/$rel2"
}
# peer_via NAME ARGS...: a peer (subscribed to up, announcing on home) with ARGS, subscribed.
peer_via() {
    local name=$1 port
    shift
    port=$(free_port)
    mkdir -p "$T/$name/tree" "$T/$name/state"
    start_peer "$name" --dir "$T/$name/tree" --state-dir "$T/$name/state" --client-id "it-$name-$$" \
        --cacert "$T/certs/ca.pem" --post-base-url "http://127.0.0.1:$port/data" \
        --http-listen "127.0.0.1:$port" --retry-for 30 "$@"
    wait_until 15 subscribed "$name" up || fail "$name did not subscribe to up"
}
no_password_in() { # no_password_in FILE WHAT
    ! grep -q 'wonder-land' "$1" || fail "the proxy's password shows in $2"
}

# (a) --proxy for everything: both brokers by a name only Q knows, through CONNECT tunnels; the
# http file by an absolute-form GET, the https one through a tunnel, verified end to end.
peer_via D --proxy "$(proxy_url Q)" \
    --broker "mqtt://guest:guestpw@broker.test:$(broker_port up)" \
    --post-broker "mqtt://owner:ownerpw@broker.test:$(broker_port home)"
# (b) the variables instead of --proxy: http_proxy, https_proxy, mqtt_proxy.
http_proxy=$(proxy_url Q) https_proxy=$(proxy_url Q) mqtt_proxy=$(proxy_url Q) \
    peer_via E --broker "$(broker_url up guest)" --post-broker "$(broker_url home owner)"
# (c) squid A: alice's password from the credentials file; brokers direct (--no-proxy).
umask 077
printf '%s\n' "http://alice:wonder-land@127.0.0.1:$(cat "$T/A/port")" >"$T/creds"
umask 022
peer_via F --proxy "http://alice@127.0.0.1:$(cat "$T/A/port")" --credentials "$T/creds" \
    --no-proxy 127.0.0.1 --broker "$(broker_url up guest)" --post-broker "$(broker_url home owner)"
# ... and without credentials: 407, said clearly.
peer_via G --proxy "$(proxy_url A)" --no-proxy 127.0.0.1 \
    --broker "$(broker_url up guest)" --post-broker "$(broker_url home owner)"
# (d) --no-proxy origin.test: straight to a name that does not resolve here.
peer_via H --proxy "$(proxy_url Q)" --no-proxy "origin.test,127.0.0.1" \
    --broker "$(broker_url up guest)" --post-broker "$(broker_url home owner)"
start_observer obs home
announce
for p in D E F; do
    wait_until 20 stored "$p" || fail "$p did not store both files through its proxy"
done
note "D (--proxy), E (proxy variables), F (squid A, password from --credentials): both files"
grep -qF "GET $http_base/$rel" "$T/Q/access.log" || fail "Q did not log the peers' GET"
# Squid logs a tunnel when it closes, and these stay open: the peers' own sockets show where
# they go. D and E reach the brokers only through Q.
peer_ports() { # peer_ports NAME: the remote ports of NAME's established TCP connections
    ss -Htnp state established 2>/dev/null | grep "pid=$(pid_of "$1")," | awk '{print $4}' |
        sed 's/.*://' | sort -u
}
for p in D E; do
    ports=$(peer_ports "$p")
    grep -qx "$(cat "$T/Q/port")" <<<"$ports" || fail "$p has no connection to squid Q ($ports)"
    for b in up home; do
        ! grep -qx "$(broker_port "$b")" <<<"$ports" || fail "$p reaches broker $b directly"
    done
done
wait_until 10 observed_has obs "$rel2" || fail "home did not see the re-announcements"
note "Q logged the GET; D and E reach both brokers only through Q (D by a name only Q knows)"
wait_until 20 grep -q "asks for credentials" "$T/G.log" ||
    fail "G did not say that the proxy asks for credentials: $(grep -i proxy "$T/G.log" | tail -n 3)"
note "G without credentials: $(grep -m1 'asks for credentials' "$T/G.log" | cut -c26-)"
wait_until 20 grep -q "cannot resolve origin.test" "$T/H.log" ||
    fail "H (--no-proxy origin.test) did not go direct: $(tail -n 3 "$T/H.log")"
! stored G || fail "G stored files without credentials"
! stored H || fail "H stored files it cannot reach"
for p in D E F G H; do no_password_in "$T/$p.log" "$p's log"; done
grep -q "proxies: " "$T/D.log" || fail "D did not log its proxies at start"
note "H with --no-proxy origin.test went direct: cannot resolve origin.test; no password logged"
