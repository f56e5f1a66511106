#!/bin/bash
# 39-tls-broker-gone.sh: `wmesh post` publishes a burst over mqtts:// and its broker goes away in
# the middle of it. A TLS write on the dead connection must not kill the command with SIGPIPE
# (exit status 141, and not a word said): it ends on its own, says what went wrong and exits with
# an error status of its own.
#
# The broker is `openssl s_server` speaking just enough MQTT, fed by the test: a CONNACK; then,
# once the publishes have stopped coming (wmesh waits for acknowledgements) and wmesh has been
# stopped (SIGSTOP), their PUBACKs and the end of its input, on which it closes the connection
# and exits. Its socket holds nothing unread then, so the kernel ends the connection with a FIN.
# wmesh, continued (SIGCONT), reads the PUBACKs and sends its next publishes at once, into the
# closed connection: the first write draws a RST, and the next one fails with EPIPE, which
# raises SIGPIPE unless the write says MSG_NOSIGNAL. (A broker killed while data waits in its
# socket answers with a RST at once: the write fails with ECONNRESET, which raises no signal.
# This is why the test neither kills mosquitto nor lets wmesh run while the broker closes.)
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

N=${N:-5000}
make_ca "$T/ca"
port=$(free_port)
mkfifo "$T/broker.in"
openssl s_server -accept "127.0.0.1:$port" -cert "$T/ca/server.pem" -key "$T/ca/server.key" \
    -naccept 1 -no_ign_eof <"$T/broker.in" >"$T/broker.out" 2>"$T/broker.log" &
broker=$!
track "$broker"
exec 3>"$T/broker.in" # s_server's input, open until the test closes it
wait_until 10 port_in_use "$port" || fail "openssl s_server did not listen on $port"
note "openssl s_server on port $port plays the broker"

tree=$T/tree
make_small_files "$tree" "$N" burst 2000 >"$T/list"
mapfile -t rels <"$T/list"
# wmesh post has no --cacert: OpenSSL's SSL_CERT_FILE names the CA to trust instead of the
# system's store. --timeout 15: enough for the first window of 1000 publishes (wmesh moves 256 KB
# of them to the socket per loop turn; they take 2 s), not so long that the test drags on once
# the broker is gone.
(cd "$tree" && exec env SSL_CERT_FILE="$T/ca/ca.pem" "$WMESH" post --timeout 15 \
    --post-broker "mqtts://owner:ownerpw@127.0.0.1:$port" \
    --post-base-url "http://127.0.0.1:9/data" --dir "$tree" "${rels[@]}") 2>"$T/post.log" 3>&- &
post=$!
track "$post"

received() { # publishes s_server has read (each names its topic once)
    grep -aoF 'xpublic/v03/post' "$T/broker.out" 2>/dev/null | wc -l
}
# quiet_received: the broker read publishes, and no more came for a second.
quiet_received() {
    local before
    before=$(received)
    sleep 1 # what "no more came" means
    [ "$before" -gt 0 ] && [ "$(received)" -eq "$before" ]
}
wait_until 30 grep -aqF MQTT "$T/broker.out" || fail "wmesh post sent no CONNECT"
printf '\x20\x03\x00\x00\x00' >&3 # CONNACK (MQTT 5): accepted, no properties
wait_until 30 quiet_received || fail "the broker read $(received) publishes and they kept coming"
got=$(received)
[ "$got" -lt "$N" ] || fail "wmesh post sent all $N announcements before any acknowledgement"
# PUBACKs for packet ids 1..got (wmesh numbers from 1), then the end of the broker's input.
kill -STOP "$post"
awk -v n="$got" 'BEGIN { for (i = 1; i <= n; i++) printf "4002%02X%02X", int(i / 256), i % 256 }' |
    basenc --base16 -d >&3
exec 3>&-
wait_until 10 gone "$broker" || fail "openssl s_server did not exit at the end of its input"
kill -CONT "$post"
note "the broker acknowledged $got of $N announcements and closed the connection"

rc=0
wait_until 60 gone "$post" || fail "wmesh post did not end after its broker went"
wait "$post" || rc=$?
untrack "$post"
note "wmesh post exited with status $rc; it said: $(grep -E 'broker|error' "$T/post.log" | grep -v ' posted ' | cut -c26- | head -n 4 | tr '\n' ' ')"
[ "$rc" -ne 141 ] || fail "wmesh post died of SIGPIPE (status 141) without a word"
[ "$rc" -ne 0 ] || fail "wmesh post exited 0 although its broker went away mid-burst"
grep -qE 'broker .*: disconnected \((write failed: )?TLS (write|read)' "$T/post.log" ||
    fail "wmesh post did not say that its TLS connection broke"
grep -q "broker did not acknowledge $((N - got)) announcement(s)" "$T/post.log" ||
    fail "wmesh post did not say that $((N - got)) announcements went unacknowledged"
