# lib_faults.sh: fault-injection helpers for the 3x tests; sourced after lib.sh, sources nothing.
# shellcheck shell=bash
#
#   require_peer_options OPT...    fails at once, naming them, when `wmesh peer` lacks options
#   untrack PID                    forgets a process that is gone (so clean-up never signals a
#                                  recycled pid)
#   kill_peer NAME [SIGNAL]        signals peer NAME (default KILL) and waits until it is gone
#   restart_peer NAME              starts NAME again with the argv it had (read from /proc when
#                                  it was started: call remember_argv NAME first), stderr appended
#   remember_argv NAME             saves the argv of the running process NAME for restart_peer
#   stop_broker NAME               SIGTERM (mosquitto saves its persistence file), waits
#   start_broker_again NAME        the same configuration, the same port; waits until it answers
#   restart_broker NAME            both
#   add_tls_listener NAME DIR [require]  adds a TLS listener (cafile/certfile/keyfile from DIR,
#                                  make_ca's) to the configuration of broker NAME, with "require"
#                                  one that wants client certificates signed by DIR's CA; prints
#                                  its port; needs a restart
#   start_badhttpd NAME DIR FAULTS badhttpd serving DIR under /data at $(base_url NAME)
#   make_small_files DIR N TAG MAX N text files of 0..MAX bytes; prints their relPaths
#   tree_files DIR                 every entry under DIR outside .wmesh-tmp/, relative, sorted
#   tmp_leftovers DIR              entries in DIR/.wmesh-tmp (but a live peer's empty spares)
#                                  and names that look temporary
#   pid_of NAME                    the pid recorded for NAME
#   use_failio_shim                sets SHIM to tests/tools' shim_failio.so (fails when absent)
#                                  and lets it come before libasan under SANITIZER=address
#   start_delayproxy NAME BROKER [OPT...]  delayproxy (tests/tools) on a free port in front of
#                                  broker BROKER: broker_port and broker_url NAME reach BROKER
#                                  through it; OPTs: --rate B, --delay-ms MS; the file
#                                  $T/NAME/pause, while it exists, holds every byte both ways
#   subscribed PEER BROKER [TOPIC] true once PEER gets messages from BROKER (a probe it counts,
#                                  on TOPIC, default xpublic/v03/post/probe)
#   publish_lines BROKER TOPIC FILE  each line of FILE as one message (QoS 1, as owner)

: "${WMESH_TOOLS:=$LIB_DIR/../../build/tools}"
export WMESH_TOOLS

pid_of() {
    cat "$T/$1/pid"
}

require_peer_options() {
    local help o missing=""
    help=$("$WMESH" peer --help 2>&1 || true)
    for o in "$@"; do
        grep -q -- "$o " <<<"$help" || missing="$missing $o"
    done
    [ -z "$missing" ] || fail "wmesh peer has no option$missing (not implemented yet)"
}

require_tool() {
    [ -x "$WMESH_TOOLS/$1" ] || [ -f "$WMESH_TOOLS/$1" ] ||
        fail "no $WMESH_TOOLS/$1: build it with 'make build/tools/$1' (make integration does)"
}

use_failio_shim() {
    require_tool shim_failio.so
    SHIM=$WMESH_TOOLS/shim_failio.so
    # Under AddressSanitizer (make SANITIZER=address) the shim comes before libasan: allow it.
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

untrack() {
    local pid rest=""
    for pid in $PIDS; do
        [ "$pid" = "$1" ] || rest="$rest $pid"
    done
    PIDS=$rest
}

# gone PID: true once PID has exited (a zombie counts as gone).
gone() {
    ! kill -0 "$1" 2>/dev/null || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

remember_argv() {
    local pid
    pid=$(pid_of "$1")
    cp "/proc/$pid/cmdline" "$T/$1/argv" || fail "cannot read the argv of $1"
    # Environment too: a peer started under LD_PRELOAD is restarted under it.
    cp "/proc/$pid/environ" "$T/$1/environ" || fail "cannot read the environment of $1"
}

# kill_peer NAME [SIGNAL]: returns once the process is gone and reaped.
kill_peer() {
    local pid sig=${2:-KILL}
    pid=$(pid_of "$1")
    kill "-$sig" "$pid" 2>/dev/null || true
    wait_until 60 gone "$pid" || fail "$1 (pid $pid) did not stop on SIG$sig"
    wait "$pid" 2>/dev/null || true
    untrack "$pid"
}

restart_peer() {
    local name=$1
    local -a argv envv
    [ -f "$T/$name/argv" ] || fail "restart_peer $name: call remember_argv $name first"
    mapfile -d '' -t argv <"$T/$name/argv"
    mapfile -d '' -t envv <"$T/$name/environ"
    env -i "${envv[@]}" "${argv[@]}" 2>>"$T/$name.log" &
    track "$!"
    echo "$!" >"$T/$name/pid"
    wait_until 30 metrics_ready "$name" || fail "peer $name did not answer after its restart"
}

stop_broker() {
    local pid
    pid=$(pid_of "$1")
    kill -TERM "$pid" 2>/dev/null || true
    wait_until 30 gone "$pid" || fail "broker $1 did not stop on SIGTERM"
    wait "$pid" 2>/dev/null || true
    untrack "$pid"
}

start_broker_again() {
    local name=$1 i
    # The port may linger for a moment in the kernel: try to bind it for a few seconds.
    for i in 1 2 3 4 5 6 7 8 9 10; do
        "$MOSQUITTO" -c "$T/$name/mosquitto.conf" >>"$T/$name.log" 2>&1 &
        track "$!"
        echo "$!" >"$T/$name/pid"
        if wait_until 10 broker_ready_or_dead "$name" "$!" && ! gone "$!"; then
            return 0
        fi
        wait "$!" 2>/dev/null || true
        untrack "$!"
        note "broker $name did not start again (attempt $i); retrying"
        sleep 0.5
    done
    fail "broker $name did not start again on port $(broker_port "$name")"
}

broker_ready_or_dead() {
    gone "$2" || broker_ready "$1"
}

restart_broker() {
    stop_broker "$1"
    start_broker_again "$1"
}

# add_tls_listener NAME CADIR [require]: prints the new port.
add_tls_listener() {
    local port
    port=$(free_port)
    cat >>"$T/$1/mosquitto.conf" <<EOF

listener $port 127.0.0.1
cafile $2/ca.pem
certfile $2/server.pem
keyfile $2/server.key
EOF
    [ "${3:-}" != require ] || echo "require_certificate true" >>"$T/$1/mosquitto.conf"
    echo "$port"
}

# start_delayproxy NAME BROKER [OPTION...]: a slow link to BROKER, reached as broker NAME.
start_delayproxy() {
    local name=$1 broker=$2 port
    shift 2
    require_tool delayproxy
    port=$(free_port)
    mkdir -p "$T/$name"
    echo "$port" >"$T/$name/port"
    "$WMESH_TOOLS/delayproxy" --listen "127.0.0.1:$port" \
        --connect "127.0.0.1:$(broker_port "$broker")" --pause "$T/$name/pause" "$@" \
        2>>"$T/$name.log" &
    track "$!"
    echo "$!" >"$T/$name/pid"
    wait_until 10 port_in_use "$port" || fail "delayproxy $name did not listen on port $port"
    note "delayproxy $name on port $port in front of broker $broker ($*)"
}

# subscribed PEER BROKER [TOPIC]: publishes a probe (not an announcement: the peer counts it
# received and rejects it) on TOPIC of BROKER and succeeds once PEER has received something, so
# its subscription is in place: what is published next is kept for it. For wait_until.
subscribed() {
    [ "$(metric "$1" wmesh_messages_received_total)" -gt 0 ] && return 0
    mosquitto_pub -h 127.0.0.1 -p "$(broker_port "$2")" -u owner -P ownerpw -i "probe-$$" -q 1 \
        -t "${3:-xpublic/v03/post/probe}" -m "probe" 2>/dev/null
    sleep 0.2
    [ "$(metric "$1" wmesh_messages_received_total)" -gt 0 ]
}

# publish_lines BROKER TOPIC FILE: one mosquitto_pub -l per 20 000 lines: a single one given
# more than 65 535 lines reuses message ids still in flight, and mosquitto (2.0.11) cuts it off
# ("disconnected due to out of memory") with a third of them sent.
publish_lines() {
    local part
    rm -f "$T"/lines.part.*
    split -l 20000 -d -a 4 "$3" "$T/lines.part."
    for part in "$T"/lines.part.*; do
        mosquitto_pub -h 127.0.0.1 -p "$(broker_port "$1")" -u owner -P ownerpw -i "lines-$$" \
            -q 1 -t "$2" -l <"$part" || fail "mosquitto_pub -l of $3 failed"
    done
    rm -f "$T"/lines.part.*
}

# start_badhttpd NAME DIR FAULTS: serves DIR at $(base_url NAME) (http://127.0.0.1:PORT/data).
start_badhttpd() {
    local name=$1 dir=$2 faults=$3 port
    require_tool badhttpd
    port=$(free_port)
    mkdir -p "$T/$name"
    echo "$port" >"$T/$name/http_port"
    "$WMESH_TOOLS/badhttpd" --dir "$dir" --listen "127.0.0.1:$port" --faults "$faults" \
        --prefix /data 2>>"$T/$name.log" &
    track "$!"
    echo "$!" >"$T/$name/pid"
    wait_until 10 curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/" ||
        fail "badhttpd $name did not answer on port $port"
    note "badhttpd $name on port $port"
}

# make_small_files DIR N TAG MAX: N files of 0..MAX bytes of random base64 text, in 40
# directories; prints their relPaths. One awk process writes them all (thousands in a second).
make_small_files() {
    local dir=$1 n=$2 tag=$3 max=$4 day i
    day=$(date -u +%Y%m%d)
    for ((i = 0; i < 40; i++)); do
        mkdir -p "$(printf '%s/%s/WIS/KILL/%02d' "$dir" "$day" "$i")"
    done
    head -c $((max * 3 / 4 + 65536)) /dev/urandom | base64 -w0 |
        awk -v dir="$dir" -v n="$n" -v tag="$tag" -v max="$max" -v day="$day" -v seed="$RANDOM" '
        {
            pool = $0; len = length(pool); srand(seed)
            for (i = 1; i <= n; i++) {
                rel = sprintf("%s/WIS/KILL/%02d/SMAL%02d_KWBC_%s___%s%05d.txt", day, i % 40,
                    i % 97, substr(day, 7, 2), tag, i)
                size = int(rand() * (max + 1)); if (i % 10 == 0) size = 0
                off = int(rand() * (len - size)) + 1
                printf "%s", substr(pool, off, size) > (dir "/" rel)
                close(dir "/" rel)
                print rel
            }
        }'
}

# tree_files DIR: every file, link or directory under DIR except .wmesh-tmp and what is in it.
tree_files() {
    (cd "$1" && find . -mindepth 1 -path ./.wmesh-tmp -prune -o \( -type d -o -print \) |
        sed 's#^\./##' | LC_ALL=C sort)
}

# tmp_leftovers DIR: what lies in DIR/.wmesh-tmp but a running peer's spares (empty files named
# after its live pid, made ahead of need: src/tree_spares.h), and anything elsewhere that looks
# temporary.
tmp_leftovers() {
    local f pid
    if [ -d "$1/.wmesh-tmp" ]; then
        for f in "$1"/.wmesh-tmp/* "$1"/.wmesh-tmp/.[!.]*; do
            [ -e "$f" ] || [ -L "$f" ] || continue
            pid=$(sed -n 's/^tmp\.\([0-9]*\)\..*/\1/p' <<<"${f##*/}")
            if [ -f "$f" ] && [ ! -L "$f" ] && [ ! -s "$f" ] && [ -n "$pid" ] &&
                kill -0 "$pid" 2>/dev/null; then
                continue
            fi
            echo ".wmesh-tmp/${f##*/}"
        done
    fi
    (cd "$1" && find . -mindepth 1 -path ./.wmesh-tmp -prune -o \
        \( -name '.*' -o -name 'tmp.*' -o -name '*.tmp' -o -name '*.part' -o -name '*~' \) -print)
}

# extra_files DIR LIST: entries of DIR (outside .wmesh-tmp) that LIST does not name.
extra_files() {
    local sorted
    sorted=$(mktemp "$T/sorted.XXXXXX")
    LC_ALL=C sort "$2" >"$sorted"
    tree_files "$1" | LC_ALL=C comm -23 - "$sorted"
}

# log_count PEER WORD...: log lines of PEER whose disposition (first matching word) is one of WORDs.
log_count() {
    local peer=$1
    shift
    awk -v words=" $* " '{
        for (i = 1; i <= NF; i++) if (index(words, " " $i " ")) { n++; break }
    } END { print n + 0 }' "$T/$peer.log"
}

# present_good REFDIR DIR: every file DIR holds (outside .wmesh-tmp) exists in REFDIR with the
# same bytes: what a crash may leave is a missing file, never a partial or wrong one.
present_good() {
    local names sums
    names=$(mktemp "$T/names.XXXXXX")
    sums=$(mktemp "$T/sums.XXXXXX")
    tree_files "$2" >"$names"
    [ -s "$names" ] || return 0
    (cd "$1" && xargs -d '\n' sha256sum --) <"$names" >"$sums" 2>&1 || {
        echo "present_good: $2 holds files that $1 does not: $(grep -v '^[0-9a-f]\{64\} ' "$sums" | head -n 5)" >&2
        return 1
    }
    (cd "$2" && sha256sum --quiet --strict -c "$sums") >&2
}

# explain_missing DIR LIST PEER...: for each relPath of LIST missing from DIR (at most 10), what
# each PEER's log and tree say about it; for the failure message of a test that lost files.
explain_missing() {
    local dir=$1 list=$2 rel p n=0
    shift 2
    while IFS= read -r rel; do
        [ -f "$dir/$rel" ] && continue
        n=$((n + 1))
        [ "$n" -le 10 ] || break
        echo "missing: $rel"
        for p in "$@"; do
            if [ -f "$(tree_of "$p")/$rel" ]; then
                echo "  $p holds it"
            else
                echo "  $p does not hold it"
            fi
            grep -F "$rel" "$T/$p.log" | sed "s/^/  $p: /" | cut -c1-240
        done
    done <"$list"
}
