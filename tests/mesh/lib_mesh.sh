# lib_mesh.sh: hosts as network namespaces joined by one veth pair per edge, each with its own
# mosquitto and wmesh peer; sourced by meshtest.sh after tests/integration/lib.sh.
# shellcheck shell=bash
#
# Host I (1..) is the namespace wm-<pid>-I with the address $(addr I) (10.77.x.y/32 on its
# loopback). An edge A-B of the topology is a veth pair eA-B (in A) / eB-A (in B) with a /32
# route to the other end's address: hosts reach their neighbours only, as in a real mesh where
# each peer reads its neighbours' brokers and downloads from them. A cut edge drops every packet
# silently in both directions (a pfifo queue of length 0 on both ends: this kernel has no netem
# and no tc actions), so TCP connections hang as across a broken WAN link rather than fail.
#
# Every host has: $T/hI/tree, $T/hI/state, $T/hI.log
# (peer), $T/bI/ (broker: mosquitto.conf, db/) and $T/bI.log. $T/edges holds the topology ("A B" per line, A < B).

NS_PREFIX=wm-$$-
declare -A BROKER_PID=() PEER_PID=()

ns() {
    echo "$NS_PREFIX$1"
}

addr() {
    echo "10.77.$(($1 / 250)).$(($1 % 250 + 1))"
}

# in_ns I CMD...: runs CMD inside host I's namespace.
in_ns() {
    local i=$1
    shift
    ip netns exec "$(ns "$i")" "$@"
}

# topology NAME N SEED: the edges of topology NAME over hosts 1..N, "A B" (A < B) per line.
# random3: a random ring (so the graph is connected) plus a random matching of chords (the best
# of 50 tries: fewest chords that repeat an edge), which gives every host degree 3 (one host
# degree 2 when N is odd).
topology() {
    awk -v t="$1" -v n="$2" -v seed="$3" '
        function key(a, b) { return a < b ? a " " b : b " " a }
        function shuffle(   i, j, x) {
            for (i = 1; i <= n; i++) p[i] = i
            for (i = n; i > 1; i--) { j = int(rand() * i) + 1; x = p[i]; p[i] = p[j]; p[j] = x }
        }
        function edge(a, b) {
            if (a == b || (key(a, b) in E)) return
            E[key(a, b)] = 1; print key(a, b)
        }
        BEGIN {
            srand(seed)
            if (t == "chain" || t == "ring") {
                for (i = 1; i < n; i++) edge(i, i + 1)
                if (t == "ring" && n > 2) edge(n, 1)
            } else if (t == "full") {
                for (i = 1; i < n; i++) for (j = i + 1; j <= n; j++) edge(i, j)
            } else if (t == "random3") {
                shuffle()
                for (i = 1; i <= n; i++) edge(p[i], p[i % n + 1])
                best = -1
                for (try = 0; try < 50; try++) {
                    shuffle(); bad = 0
                    for (i = 1; i + 1 <= n; i += 2) if (p[i] == p[i+1] || (key(p[i], p[i+1]) in E)) bad++
                    if (best < 0 || bad < best) { best = bad; for (i = 1; i <= n; i++) q[i] = p[i] }
                    if (bad == 0) break
                }
                for (i = 1; i + 1 <= n; i += 2) edge(q[i], q[i + 1])
            } else {
                print "meshtest: unknown topology " t > "/dev/stderr"; exit 1
            }
        }'
}

# neighbours I: the hosts joined to I in $T/edges.
neighbours() {
    awk -v i="$1" '$1 == i { print $2 } $2 == i { print $1 }' "$T/edges"
}

# distances EDGES ORIGIN: prints "host distance" for every host reached from ORIGIN (BFS).
distances() {
    awk -v o="$2" '
        { adj[$1] = adj[$1] " " $2; adj[$2] = adj[$2] " " $1 }
        END {
            d[o] = 0; q[1] = o; head = 1; tail = 1
            while (head <= tail) {
                u = q[head++]; n = split(adj[u], a, " ")
                for (k = 1; k <= n; k++) if (!(a[k] in d)) { d[a[k]] = d[u] + 1; q[++tail] = a[k] }
            }
            for (h in d) print h, d[h]
        }' "$1"
}

# connected_without EDGES HOST N: true when hosts 1..N other than HOST stay connected without it.
connected_without() {
    local start=1
    [ "$2" -ne 1 ] || start=2
    [ "$(awk -v x="$2" '$1 != x && $2 != x' "$1" | distances /dev/stdin "$start" | wc -l)" -ge $(($3 - 1)) ]
}

# ---------------------------------------------------------------------------------------------
# Network

# net_host I: the namespace of host I with its address on its loopback.
net_host() {
    ip netns add "$(ns "$1")"
    ip -n "$(ns "$1")" link set lo up
    ip -n "$(ns "$1")" addr add "$(addr "$1")/32" dev lo
}

# net_edge A B: the veth pair of edge A-B, up, with a route to each end's address.
net_edge() {
    local a=$1 b=$2
    ip link add name "e$a-$b" netns "$(ns "$a")" type veth peer name "e$b-$a" netns "$(ns "$b")"
    ip -n "$(ns "$a")" link set "e$a-$b" up
    ip -n "$(ns "$b")" link set "e$b-$a" up
    ip -n "$(ns "$a")" route add "$(addr "$b")/32" dev "e$a-$b" src "$(addr "$a")"
    ip -n "$(ns "$b")" route add "$(addr "$a")/32" dev "e$b-$a" src "$(addr "$b")"
}

# link_cut A B / link_restore A B: every packet of edge A-B dropped (both ways) / carried again.
link_cut() {
    tc -n "$(ns "$1")" qdisc replace dev "e$1-$2" root pfifo limit 0
    tc -n "$(ns "$2")" qdisc replace dev "e$2-$1" root pfifo limit 0
}

link_restore() {
    tc -n "$(ns "$1")" qdisc del dev "e$1-$2" root
    tc -n "$(ns "$2")" qdisc del dev "e$2-$1" root
}

# net_down: removes every namespace of this run (their veth pairs go with them).
net_down() {
    local n
    for n in $(ip netns list 2>/dev/null | awk -v p="$NS_PREFIX" 'index($1, p) == 1 { print $1 }'); do
        ip netns del "$n" 2>/dev/null || true
    done
}

# ---------------------------------------------------------------------------------------------
# Brokers

# broker_start I [MAX_QUEUED]: mosquitto of host I on $(addr I):1883, configured as the
# integration tests' brokers (persistence on, users owner and guest) in $T/bI/; a small
# MAX_QUEUED also caps its in-flight window, so a stalled subscriber's excess is dropped.
broker_start() {
    local i=$1 q=${2:-1000000} inflight=1000 conf=$T/b$1/mosquitto.conf
    [ "$q" -ge 1000 ] || inflight=$q
    write_broker_config "b$i" 1883 --host "$(addr "$i")" --max-queued-messages "$q" \
        --max-inflight-messages "$inflight" >/dev/null
    # ip itself, not in_ns: a function run with & is a subshell, and $! would not be mosquitto.
    ip netns exec "$(ns "$i")" "$MOSQUITTO" -c "$conf" >>"$T/b$i.log" 2>&1 &
    BROKER_PID[$i]=$!
    track "$!"
}

broker_up() {
    in_ns "$1" mosquitto_pub -h "$(addr "$1")" -p 1883 -u owner -P ownerpw -i "ready-$1-$$" \
        -t xpublic/ping -n 2>/dev/null
}

broker_stop() {
    stop_pid "${BROKER_PID[$1]}"
    unset "BROKER_PID[$1]"
}

# ---------------------------------------------------------------------------------------------
# Peers

# peer_start I [CLIENT_ID [OPTION...]]: wmesh peer of host I reading its neighbours' brokers.
peer_start() {
    local i=$1 cid=${2:-mt-h$1} j a
    local -a args
    shift $(($# < 2 ? $# : 2))
    a=$(addr "$i")
    mkdir -p "$T/h$i/tree" "$T/h$i/state"
    args=(--name "h$i" --dir "$T/h$i/tree" --state-dir "$T/h$i/state" --client-id "$cid"
        --post-broker "mqtt://owner:ownerpw@$a:1883" --post-base-url "http://$a:8080/data"
        --http-listen "$a:8080")
    for j in $(neighbours "$i"); do
        args+=(--broker "mqtt://guest:guestpw@$(addr "$j"):1883")
    done
    # shellcheck disable=SC2086 # MESH_PEER_ARGS is a list of options
    ip netns exec "$(ns "$i")" "$WMESH" peer "${args[@]}" ${MESH_PEER_ARGS:-} "$@" 2>>"$T/h$i.log" &
    PEER_PID[$i]=$!
    track "$!"
}

peer_stop() {
    stop_pid "${PEER_PID[$1]}"
    unset "PEER_PID[$1]"
}

# metrics_of I: the /metrics text of host I's peer.
metrics_of() {
    in_ns "$1" curl -fsS --max-time 5 "http://$(addr "$1"):8080/metrics" 2>/dev/null
}

# peer_linked I: the peer answers and every one of its upstream links is up.
peer_linked() {
    local want
    want=$(neighbours "$1" | wc -l)
    metrics_of "$1" | awk -v want="$want" '
        /^wmesh_broker_connected\{/ { n++; if ($2 == 1) up++ }
        END { exit !(n == want && up == want) }'
}

# msum I NAME...: the sum of the metric families NAME... of host I.
msum() {
    local i=$1
    shift
    metrics_of "$i" | awk -v names=" $* " '
        /^#/ { next }
        { f = $1; sub(/\{.*/, "", f); if (index(names, " " f " ")) s += $2 }
        END { printf "%.15g\n", s + 0 }'
}

# ---------------------------------------------------------------------------------------------
# Meshes

# mesh_up HOSTS [SMALL_QUEUE_HOSTS]: hosts 1..HOSTS and the edges of $T/edges, a broker on
# every host (those listed in SMALL_QUEUE_HOSTS with max_queued_messages $MESH_DROP_QUEUE) and a
# peer on hosts 1..$MESH_PEERS (default HOSTS; host $MESH_V311 speaking MQTT 3.1.1); returns once
# every link of every peer is up.
mesh_up() {
    local hosts=$1 small=" ${2:-} " peers=${MESH_PEERS:-$1} i a b
    for ((i = 1; i <= hosts; i++)); do
        net_host "$i"
    done
    while read -r a b; do
        net_edge "$a" "$b"
    done <"$T/edges"
    for ((i = 1; i <= hosts; i++)); do
        case $small in
        *" $i "*) broker_start "$i" "$MESH_DROP_QUEUE" ;;
        *) broker_start "$i" ;;
        esac
    done
    for ((i = 1; i <= hosts; i++)); do
        wait_until 20 broker_up "$i" || die "broker of h$i did not start"
    done
    for ((i = 1; i <= peers; i++)); do
        if [ "$i" = "${MESH_V311:-}" ]; then
            peer_start "$i" "mt-h$i" --mqtt-version 3.1.1
        else
            peer_start "$i"
        fi
    done
    for ((i = 1; i <= peers; i++)); do
        wait_until 30 peer_linked "$i" || die "peer h$i did not connect to all its brokers"
    done
}

# mesh_down: every process and namespace of the current mesh gone; logs kept apart for debugging.
mesh_down() {
    stop_all
    net_down
    BROKER_PID=()
    PEER_PID=()
}

# ---------------------------------------------------------------------------------------------
# Files

# inject COUNT TAG EXCLUDE...: COUNT files made at random hosts among 1..$MESH_HOSTS_LIVE other
# than EXCLUDE and posted there (one wmesh post per host); "origin relPath" lines are appended to
# $T/files and to $T/TAG.files.
inject() {
    local count=$1 tag=$2 h k n rel
    local -a pool=() rels=()
    local -A per=()
    shift 2
    for ((h = 1; h <= MESH_HOSTS_LIVE; h++)); do
        case " $* " in *" $h "*) continue ;; esac
        pool+=("$h")
    done
    : >"$T/$tag.files"
    for ((k = 0; k < count; k++)); do
        h=${pool[$((RANDOM % ${#pool[@]}))]}
        per[$h]=$((${per[$h]:-0} + 1))
    done
    for h in "${!per[@]}"; do
        n=${per[$h]}
        make_files "$T/h$h/tree" "$n" "${tag}h${h}x" >"$T/$tag.h$h.list"
        while IFS= read -r rel; do
            echo "$h $rel"
        done <"$T/$tag.h$h.list" >>"$T/$tag.files"
        mapfile -t rels <"$T/$tag.h$h.list"
        (cd "$T/h$h/tree" && in_ns "$h" "$WMESH" post \
            --post-broker "mqtt://owner:ownerpw@$(addr "$h"):1883" \
            --post-base-url "http://$(addr "$h"):8080/data" --dir "$T/h$h/tree" "${rels[@]}") \
            2>>"$T/post.log" || die "wmesh post at h$h failed"
    done
    cat "$T/$tag.files" >>"$T/files"
}

# held I FILES: how many files of FILES ("origin relPath" lines) host I holds.
held() {
    local o rel n=0
    while read -r o rel; do
        [ -f "$T/h$1/tree/$rel" ] && n=$((n + 1))
    done <"$2"
    echo "$n"
}

# all_hold FILES HOST...: every HOST holds every file of FILES.
all_hold() {
    local f=$1 want h
    shift
    want=$(wc -l <"$f")
    for h in "$@"; do
        [ "$(held "$h" "$f")" -eq "$want" ] || return 1
    done
}

# identical FILES HOST...: every HOST holds every file of FILES with its origin's bytes (SHA-256).
identical() {
    local f=$1 h o rel
    shift
    : >"$T/sums"
    while read -r o rel; do
        (cd "$T/h$o/tree" && sha256sum -- "$rel") >>"$T/sums"
    done <"$f"
    for h in "$@"; do
        (cd "$T/h$h/tree" && sha256sum --quiet --strict -c "$T/sums") >/dev/null 2>&1 || return 1
    done
}

# stores: every file stored by any peer so far, "host relPath t_ms lag_ms" (t from the log
# line's UTC timestamp, in ms since the start of its month; lag = store time - pubTime).
stores() {
    local f
    for f in "$T"/h*.log; do
        [ -f "$f" ] || continue
        awk '$4 == "downloaded" || $4 == "inlined" {
                ts = $1; h = $3; sub(/^h/, "", h)
                t = ((substr(ts, 9, 2) * 24 + substr(ts, 12, 2)) * 60 + substr(ts, 15, 2)) * 60
                t = (t + substr(ts, 18, 6)) * 1000
                lag = $6; sub(/^lag=/, "", lag); sub(/s$/, "", lag)
                printf "%s %s %.3f %.3f\n", h, $5, t, lag * 1000
            }' "$f"
    done
}

# propagation FILES HOST...: "converge_s p50_ms p99_ms max_ms hops_mean hops_max shortest_max
# stores" over the stores of FILES at HOSTs other than each file's origin. Hops: each store is
# counted as coming from the neighbour (or origin) that held the file first; shortest_max is the
# longest shortest path between an origin and a host, the least hops_max can be.
propagation() {
    local f=$1 o
    shift
    : >"$T/dist"
    awk '{ print $1 }' "$f" | sort -u | while read -r o; do
        distances "$T/edges" "$o" | sed "s/^/$o /" >>"$T/dist"
    done
    stores | sort -k2,2 -k3,3n |
        awk -v hosts=" $* " -v files="$f" -v edges="$T/edges" -v dist="$T/dist" '
        function rank(p,   r) { r = int(p * n + 0.999999); if (r < 1) r = 1; return lag[r] }
        BEGIN {
            while ((getline line < files) > 0) { split(line, a, " "); origin[a[2]] = a[1] }
            while ((getline line < edges) > 0) { split(line, a, " "); adj[a[1] " " a[2]] = 1; adj[a[2] " " a[1]] = 1 }
            while ((getline line < dist) > 0) { split(line, a, " "); sp[a[1] " " a[2]] = a[3] }
        }
        !($2 in origin) || !index(hosts, " " $1 " ") || $1 == origin[$2] { next }
        {
            if ($2 != cur) { cur = $2; delete hop; hop[origin[cur]] = 0; nh = 0; held[++nh] = origin[cur] }
            if ($1 in hop) next # stored twice: counted once
            best = -1
            for (k = 1; k <= nh; k++) if ((held[k] " " $1) in adj) { best = held[k]; break }
            h = best < 0 ? 1 : hop[best] + 1
            hop[$1] = h; held[++nh] = $1
            n++; lag[n] = $4; hsum += h; if (h > hmax) hmax = h
            d = sp[origin[cur] " " $1]; if (d > smax) smax = d
            pub = $3 - $4; if (first == "" || pub < first) first = pub; if ($3 > last) last = $3
        }
        END {
            if (n == 0) { print "0 0 0 0 0 0 0 0"; exit }
            # insertion sort would be slow for 10^4 values: a simple heap sort
            for (i = int(n / 2); i >= 1; i--) sift(i, n)
            for (i = n; i > 1; i--) { x = lag[1]; lag[1] = lag[i]; lag[i] = x; sift(1, i - 1) }
            printf "%.2f %.0f %.0f %.0f %.2f %d %d %d\n", (last - first) / 1000, rank(0.5),
                rank(0.99), lag[n], hsum / n, hmax, smax, n
        }
        function sift(i, m,   c, x) {
            while ((c = 2 * i) <= m) {
                if (c < m && lag[c + 1] > lag[c]) c++
                if (lag[i] >= lag[c]) return
                x = lag[i]; lag[i] = lag[c]; lag[c] = x; i = c
            }
        }'
}
