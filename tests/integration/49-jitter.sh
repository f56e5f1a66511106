#!/bin/bash
# 49-jitter.sh: peers that lose a broker together do not come back together. Two peers start at
# once against a broker port where nothing listens; the delays they draw between attempts
# (logged at debug level) must differ. Issue 15: random() was never seeded, so every peer drew
# the same delays, to the millisecond.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

port=$(free_port)
for n in 1 2; do
    mkdir -p "$T/tree$n"
    "$WMESH" peer --name "p$n" --dir "$T/tree$n" --broker "mqtt://127.0.0.1:$port" \
        --post-broker none --http-listen none -v 2>"$T/p$n.log" &
    track "$!"
done
delays() {
    grep -o 'next attempt in [0-9]* ms' "$T/$1.log" | head -n 5 | awk '{ print $4 }' | paste -sd' '
}
five() {
    [ "$(delays p1 | wc -w)" -ge 5 ] && [ "$(delays p2 | wc -w)" -ge 5 ]
}
wait_until 30 five || fail "the peers did not retry five times in 30 s"
note "p1 waited $(delays p1) ms between attempts; p2 $(delays p2) ms"
[ "$(delays p1)" != "$(delays p2)" ] || fail "both peers drew the same delays: $(delays p1)"
