#!/bin/bash
# 42-status-page.sh: the status page at / of a peer, loaded in headless Chromium, shows its
# upstream connected then down, the counters and rates, a lag chart and when it last updated.
# STATUS_PAGE_PNG=docs/status-page.png also keeps the screenshot there.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
    skip "chromium is not installed (sh scripts/deps.sh --extra installs it)"
fi

# browse OUT ARGS...: loads the status page of P in headless Chromium, whose virtual time runs
# 6 s (three polls of /metrics after the first), and writes its stdout to OUT.
browse() {
    local out=$1
    shift
    mkdir -p "$T/home"
    timeout -k 5 90 env HOME="$T/home" XDG_CONFIG_HOME="$T/home/.config" \
        XDG_CACHE_HOME="$T/home/.cache" "$CHROMIUM" --headless --no-sandbox --disable-gpu \
        --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --disable-dev-shm-usage \
        --user-data-dir="$T/chromium" --virtual-time-budget=6000 "$@" "$URL" \
        >"$out" 2>>"$T/chromium.log" &
    track "$!"
    local pid=$!
    wait "$pid" || return 1
}

# dump NAME: the DOM after the page ran, in $T/NAME.html, one table row per line; skips the
# test when Chromium cannot start at all.
dump() {
    browse "$T/$1.raw" --dump-dom || true
    if ! grep -q '<html' "$T/$1.raw"; then
        tail -n 20 "$T/chromium.log" >&2 || true
        skip "chromium did not start or printed no DOM (see above)"
    fi
    tr '\n' ' ' <"$T/$1.raw" | sed 's#</tr>#</tr>\n#g' >"$T/$1.html"
}

# text NAME ID: the text of the element with that id in dump NAME.
text() {
    grep -o "id=\"$2\"[^>]*>[^<]*<" "$T/$1.html" | head -n 1 | sed 's/^[^>]*>//; s/<$//'
}

# expect NAME ID VALUE: the element shows VALUE.
expect() {
    local got
    got=$(text "$1" "$2")
    [ "$got" = "$3" ] || fail "$1: #$2 shows '$got', not '$3'"
}

# broker_row NAME STATE: the row of the upstream broker, with class up or down.
broker_row() {
    grep -E "<tr class=\"broker $2\" data-broker=\"guest@127\\.0\\.0\\.1:$(broker_port up)\">" \
        "$T/$1.html"
}

peer_with_files 20
post_files up "$(base_url S)" "$T/origin" "$T/list"
wait_until 30 metric_is P wmesh_duplicates_total 20 || fail "the second posting made no duplicates"
wait_until 30 metric_is P wmesh_published_total 20 || fail "P did not publish 20"
URL="http://127.0.0.1:$(http_port P)/"

# Served as one HTML page that loads nothing else.
curl -fsS -D "$T/headers" -o "$T/page.html" "$URL" || fail "no page at $URL"
grep -qi '^content-type: text/html; charset=utf-8' "$T/headers" || fail "not HTML: $(cat "$T/headers")"
if grep -Eiq '(src|href)=|@import|url\(|https?://' "$T/page.html"; then
    fail "the page refers to other resources: $(grep -Eio '(src|href)=.{0,40}|https?://.{0,40}' "$T/page.html")"
fi

dump up
cat "$T/up.html" >"$T/up.dom.log" # shown by fail
row=$(broker_row up up) || fail "no row for the upstream broker shown as up"
grep -q '<span class="dot"></span>connected</td><td class="num">40</td>' <<<"$row" ||
    fail "the upstream row does not show connected with 40 received: $row"
expect up received-total 40
expect up downloads-total 20
expect up duplicates-total 20
expect up published-total 20
expect up rejected-total 0
expect up errors-total 0
expect up queue-depth 0
expect up conn live
# Rates come from two successive samples: three polls ran, so they are shown.
for k in received downloads duplicates published rejected errors; do
    [[ "$(text up "$k-rate")" =~ ^[0-9.,]+/s$ ]] || fail "no rate for $k: '$(text up "$k-rate")'"
done
[[ "$(text up lag-max)" =~ ^[0-9.]+\ (ms|s)$ ]] || fail "no max lag: '$(text up lag-max)'"
[[ "$(text up last-message)" =~ (ago|just\ now)$ ]] || fail "no last message age: '$(text up last-message)'"
[[ "$(text up updated)" =~ ^updated\ [0-9]{2}:[0-9]{2}:[0-9]{2}$ ]] ||
    fail "no update time: '$(text up updated)'"
grep -q "<title>wmesh 127.0.0.1:$(http_port P)</title>" "$T/up.html" || fail "wrong page title"
points=$(grep -o 'id="lag-chart"[^>]*data-points="[0-9]*"' "$T/up.html" | sed 's/.*="//; s/"//')
[ "${points:-0}" -ge 1 ] || fail "the lag chart has no point"
grep -Eq '<path id="lag-line" d="M[0-9.]+ [0-9.]+' "$T/up.html" ||
    grep -Eq '<g id="lag-dots"><circle' "$T/up.html" || fail "the lag chart draws nothing"
note "page shows the broker connected, counters, rates, lag chart ($points points), update time"

browse "$T/shot.out" --screenshot="$T/status.png" --window-size=1200,900 ||
    fail "chromium took no screenshot"
[ "$(head -c 8 "$T/status.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "the screenshot is not a PNG"
if [ -n "${STATUS_PAGE_PNG:-}" ]; then
    cp "$T/status.png" "$STATUS_PAGE_PNG"
    note "screenshot kept in $STATUS_PAGE_PNG"
fi

# The upstream goes away: the page says so.
stop_pid "$(cat "$T/up/pid")"
wait_until 30 metric_is P wmesh_broker_connected 0 || fail "P never saw the upstream go"
dump down
cat "$T/down.html" >"$T/down.dom.log"
broker_row down down >/dev/null || fail "the upstream is not shown down"
grep -q '<span class="dot"></span>down</td>' "$T/down.html" || fail "no 'down' state shown"
note "page shows the broker down once it stopped"
