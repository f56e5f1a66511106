#!/bin/bash
# 10-chain.sh: A -> B -> C. Files posted at A reach C with identical bytes, each downloaded
# once per peer, and the announcements stop once every peer has every file.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

N=${N:-200}
chain_of_three # A only serves and announces what is posted into its tree
for b in bA bB bC; do
    start_observer "o$b" "$b"
done

make_files "$(tree_of A)" "$N" >"$T/list"
post_files bA "$(base_url A)" "$(tree_of A)" "$T/list"
note "posted $N files at A"

reach_all "$T/list" A C B

settle A B C
for p in B C; do
    metrics_are "$p" "$N" wmesh_downloads_total wmesh_published_total \
        wmesh_messages_received_total wmesh_relay_seconds_count
    [ "$(metric "$p" wmesh_download_errors_total)" -eq 0 ] || fail "$p had download errors"
    [ "$(metric "$p" wmesh_lag_seconds_count)" -gt 0 ] || fail "$p measured no lag"
    # Each file's time through the peer: in the histogram, and the longest of the log lines'
    # took= is its max.
    awk -v max="$(metric "$p" wmesh_relay_max_seconds)" '/ downloaded .* took=/ {
            t = $0; sub(/.* took=/, "", t); t += 0; if (t > m) m = t; n++ }
        END { d = m / 1000 - max; exit !(n > 0 && m > 0 && d < 1e-5 && d > -1e-5) }' \
        "$T/$p.log" || fail "$p: took= lines do not match wmesh_relay_max_seconds"
    once_each "$p" downloaded
    [ "$(logged "$p" downloaded | wc -l)" -eq "$N" ] || fail "$p logged $(logged "$p" downloaded | wc -l) downloads"
    [ -z "$(logged "$p" failed)" ] || fail "$p logged failures"
done
[ "$(metric A wmesh_downloads_total)" -eq 0 ] || fail "A downloaded what it originated"
[ "$(metric A wmesh_published_total)" -eq 0 ] || fail "A re-published its own posts"
note "B and C downloaded and published each file once: $(counters A B C | tr '\n' ';')"

# One announcement per file on each broker: nobody re-announced anything twice.
for b in bA bB bC; do
    n=$(observed "o$b" | wc -l)
    [ "$n" -eq "$N" ] || fail "broker $b carried $n announcements, expected $N"
done
for p in A B C; do
    alive "$p"
done
