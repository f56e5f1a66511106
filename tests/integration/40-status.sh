#!/bin/bash
# 40-status.sh: `wmesh status` shows a running peer's brokers, counters, rates and lag, from its
# /metrics, and fails clearly when nothing answers.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

peer_with_files 20

"$WMESH" status "http://127.0.0.1:$(http_port P)" >"$T/status.out" 2>&1 || fail "status failed: $(cat "$T/status.out")"
cat "$T/status.out"
grep -Eq '^guest@127\.0\.0\.1:[0-9]+ +connected +20$' "$T/status.out" ||
    fail "no connected upstream with 20 messages received"
grep -Eq '^downloaded +20 ' "$T/status.out" || fail "no downloaded count of 20"
grep -q 'lag mean' "$T/status.out" || fail "no lag line"
grep -Eq '^outbox 0 announcements, 0 bytes not yet acknowledged$' "$T/status.out" ||
    fail "no outbox line, or not an empty outbox"

port=$(free_port)
if "$WMESH" status "http://127.0.0.1:$port" >"$T/none.out" 2>&1; then
    fail "status of nothing succeeded"
fi
grep -q "no metrics at" "$T/none.out" || fail "no clear message: $(cat "$T/none.out")"
note "status shows brokers, counters and lag; fails clearly on a dead URL"
