# lib.sh: helpers sourced by every integration test: temp dir, ports, brokers, peers, polling.
# shellcheck shell=bash
#
# A test starts with:   . "$(dirname "$0")/lib.sh"
# It then has $T, a fresh temp dir removed on exit once every process started here (and their
# children, deepest first) has been stopped and waited for; KEEP=1 or KEEP=fail keeps it. Then:
#   start_broker NAME              mosquitto on a free port, users owner/ownerpw (read-write
#                                  xpublic/#) and guest/guestpw (read xpublic/#); log $T/NAME.log
#   broker_url NAME USER           mqtt://USER:USERpw@127.0.0.1:PORT
#   pub BROKER TOPIC PAYLOAD       one message published by hand as owner
#   start_peer NAME ARGS...        "$WMESH" peer --name NAME ARGS... (with --http-listen); stderr
#                                  to $T/NAME.log; returns once its /metrics answers
#   mesh_peer NAME HOME [UP...] [-- ARGS]  start_peer with its tree in $(tree_of NAME),
#                                  announcing on broker HOME as owner, reading each UP as guest
#   start_serve NAME DIR           "$WMESH serve" of DIR at $(base_url NAME)
#   start_observer NAME BROKER     mosquitto_sub of xpublic/# into $T/NAME.msgs; see observed
#   post_files BROKER BASEURL DIR LIST [OPT...]  "$WMESH post" of the relPaths in file LIST
#   make_files DIR N [TAG]         N files with WMO-like names; prints their relPaths
#   wait_until SECONDS CMD...      polls CMD every 0.1 s; returns 1 after SECONDS
#   metric PEER NAME, counters PEER..., settle PEER...   read /metrics; wait for quiet
#   connected PEER PORT, is_connected PEER PORT 0|1  whether PEER's link to port PORT is up
#   metrics_are PEER VALUE METRIC...; reach_all LIST ORIGIN LAST [PEER...]  counts; arrival
#   peer_with_files N              up -> P -> home, N files from server S already in P's tree
#   chain_of_three; start_posting LIST BATCH PAUSE; finish_posting   A -> B -> C; paced posts
#   logged PEER DISPOSITION        relPaths of the peer's log lines with that disposition
#   start_rabbitmq NAME...         one RabbitMQ node (MQTT plugin) serving brokers NAME... as
#                                  start_broker would (ports, users, rights); rabbitmq_missing
#                                  says why it cannot start here
#   start_nats NAME                a NATS server (MQTT 3.1.1, JetStream) as broker NAME, as
#                                  start_broker would; nats_missing says why it cannot start
#   make_ca DIR; make_client_cert DIR NAME  a throwaway CA and its server certificate for
#                                  127.0.0.1; a client certificate DIR/NAME.pem (key NAME.key)
#   start_nginx NAME ROOT [CADIR]  nginx serving ROOT at $(nginx_url NAME); with CADIR over https
#                                  and to clients with a certificate of that CA only;
#                                  nginx_missing says why it cannot start
#   start_squid NAME [--auth USER:PASSWORD] [--connect-ports "PORT..."] [--host NAME=ADDR]...
#                                  a squid HTTP proxy on a free loopback port, reachable from
#                                  localhost only; proxy_url NAME [USER:PASSWORD] gives its URL;
#                                  squid_missing says why it cannot start
#   verify_unit UNIT PROGRAM       systemd-analyze verify of the unit file UNIT, its ExecStart's
#                                  /usr/bin/wmesh replaced by PROGRAM; a note where it cannot run
#   free_port, track PID, fail MSG (prints every log in $T, exits 1), note MSG, skip WHY (exit
#   77: run.sh counts the test as skipped)

set -eu

# The tests' servers are all on loopback: a machine's proxy settings must not send the peers,
# curl or mosquitto_pub through a proxy. Tests of proxies set these variables themselves.
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY ws_proxy WS_PROXY \
    wss_proxy WSS_PROXY mqtt_proxy MQTT_PROXY mqtts_proxy MQTTS_PROXY

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${WMESH:=$LIB_DIR/../../build/wmesh}"
export WMESH
TEST_NAME=$(basename "$0" .sh)

T=$(mktemp -d "${TMPDIR:-/tmp}/wmesh-$TEST_NAME.XXXXXX")
PIDS=""       # every process started here, in start order
# The ports free_port handed out, one a line, never handed out twice: a file, as most callers
# run it in a command substitution, whose variables are lost.
USED_PORTS=$T/.ports
: >"$USED_PORTS"

# ---------------------------------------------------------------------------------------------
# Processes and clean-up

# Prints the descendants of pid $1, each after its own descendants (from /proc: no procps).
descendants() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
        function walk(p,   n, a, i) {
            n = split(kids[p], a, " ")
            for (i = 1; i <= n; i++) { walk(a[i]); print a[i] }
        }
        { pid = $1; sub(/^.*\) /, ""); kids[$2] = kids[$2] " " pid } # the name may hold spaces
        END { walk(root) }'
}

# Sends SIGTERM to the descendants of $1, deepest first, then to $1.
kill_tree() {
    local pid
    for pid in $(descendants "$1") "$1"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
}

# Waits up to 10 s for pid $1 to go, then kills it outright.
reap() {
    local i=0
    while kill -0 "$1" 2>/dev/null && [ "$i" -lt 100 ]; do
        # A direct child that has exited is a zombie until waited: wait for it.
        if grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; then
            break
        fi
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; then
        echo "lib: pid $1 ignored SIGTERM; killing it" >&2
        kill -KILL "$1" 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null || true
}

# Stops the processes started here, the most recent first (peers before brokers).
stop_all() {
    local pid reversed=""
    for pid in $PIDS; do
        reversed="$pid $reversed"
    done
    for pid in $reversed; do
        kill_tree "$pid"
    done
    for pid in $reversed; do
        reap "$pid"
    done
    PIDS=""
}

# Prints the logs in $T that hold a sanitizer report (make SANITIZER=address or thread builds
# wmesh so; ThreadSanitizer reports are WARNINGs and the process goes on).
sanitizer_reports() {
    grep -lE '(ERROR|WARNING): (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$T"/*.log 2>/dev/null ||
        true
}

cleanup() {
    local rc=$? f
    trap - EXIT INT TERM
    stop_all
    # Reports written at exit (leaks) only exist now that every process has stopped.
    for f in $(sanitizer_reports); do
        printf '%s: FAIL: sanitizer report in %s:\n' "$TEST_NAME" "${f#"$T"/}" >&2
        grep -A 30 -E 'Sanitizer|runtime error:' "$f" | head -n 60 >&2
        rc=1
    done
    # KEEP=1 keeps the temp dir; KEEP=fail keeps it when the test fails.
    if [ "${KEEP:-}" = 1 ] || { [ "${KEEP:-}" = fail ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; }; then
        echo "lib: kept $T" >&2
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Records a background process for clean-up: call right after starting it with "&".
track() {
    PIDS="$PIDS $1"
}

# Stops one tracked process (and its descendants) now.
stop_pid() {
    local pid rest=""
    kill_tree "$1"
    reap "$1"
    for pid in $PIDS; do
        [ "$pid" = "$1" ] || rest="$rest $pid"
    done
    PIDS=$rest
}

# ---------------------------------------------------------------------------------------------
# Messages, polling

note() {
    printf '%s: [%ss] %s\n' "$TEST_NAME" "$SECONDS" "$*" >&2
}

# skip WHY: ends a test that cannot run here (a package or tool is missing) with exit code 77,
# which run.sh counts and shows as skipped: never a silent pass.
skip() {
    printf '%s: SKIP: %s\n' "$TEST_NAME" "$*" >&2
    exit 77
}

fail() {
    local f
    printf '%s: FAIL: %s\n' "$TEST_NAME" "$*" >&2
    for f in "$T"/*.log "$T"/*.msgs; do
        [ -f "$f" ] || continue
        printf '\n===== %s (last 300 lines) =====\n' "${f#"$T"/}" >&2
        tail -n 300 "$f" >&2
    done
    exit 1
}

# wait_until SECONDS CMD...: runs CMD every 0.1 s until it succeeds; returns 1 after SECONDS.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            return 1
        fi
        sleep 0.1
    done
}

# ---------------------------------------------------------------------------------------------
# Ports

# True when some socket in /proc/net/tcp{,6} uses local port $1, in any state.
port_in_use() {
    local hex
    hex=$(printf ':%04X ' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{ print $2 " " }' | grep -qF "$hex"
}

# Ports come from below the kernel's ephemeral range (ip_local_port_range), where no outgoing
# connection takes one: a port handed out here could otherwise be taken, while its server
# restarts, by some client's connection (the restarting peer's own among them).
# TEST_PORT_SLOT=I/N (run.sh sets it for tests that run side by side) narrows that range to its
# I-th of N shares: two tests running at once never draw the same port between pick and bind.
free_port() {
    local port tries=0 low=32768 base=10000 span slot=${TEST_PORT_SLOT:-1/1} i=0 n=0
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    [ "$low" -gt 11024 ] || low=32768
    if [[ $slot =~ ^([1-9][0-9]?)/([1-9][0-9]?)$ ]]; then
        i=${BASH_REMATCH[1]}
        n=${BASH_REMATCH[2]}
    fi
    ((i >= 1 && i <= n)) || fail "TEST_PORT_SLOT is '$slot', not I/N (1 <= I <= N < 100)"
    span=$(((low - base) / n))
    base=$((base + (i - 1) * span))
    while [ "$tries" -lt 200 ]; do
        port=$((base + (RANDOM * 32768 + RANDOM) % span))
        tries=$((tries + 1))
        grep -qxF "$port" "$USED_PORTS" && continue
        port_in_use "$port" && continue
        echo "$port" >>"$USED_PORTS"
        echo "$port"
        return 0
    done
    echo "lib: no free port found" >&2
    return 1
}

# ---------------------------------------------------------------------------------------------
# Brokers

MOSQUITTO=$(command -v mosquitto || true)
for d in /usr/sbin /usr/local/sbin; do
    [ -n "$MOSQUITTO" ] || [ ! -x "$d/mosquitto" ] || MOSQUITTO=$d/mosquitto
done

# broker_acl NAME TOPIC...: the topics of broker NAME (or of every broker when NAME is '*'),
# before it starts: the owner reads and writes each TOPIC, the guest reads it; "owner:TOPIC" and
# "guest:TOPIC" give it to one of them only. Without it: xpublic/# for both.
declare -gA BROKER_ACL=()
broker_acl() {
    local name=$1
    shift
    BROKER_ACL[$name]="$*"
}

# write_broker_config NAME PORT [OPTION...]: broker NAME listening on 127.0.0.1:PORT, configured in
# $T/NAME/ by `wmesh broker-config` (docs/wmesh.1): users owner/ownerpw and guest/guestpw with
# broker_acl's topics, persistence in db/, the log in $T/NAME.log; then BROKER_OPTIONS (an array a
# test sets for all its brokers) and OPTION..., which override the settings before them.
declare -ga BROKER_OPTIONS=()
write_broker_config() {
    local name=$1 port=$2 dir=$T/$1 t
    local -a acl topics=()
    shift 2
    mkdir -p "$dir/db"
    mosquitto_passwd -b -c "$dir/passwd" owner ownerpw
    mosquitto_passwd -b "$dir/passwd" guest guestpw
    read -r -a acl <<<"${BROKER_ACL[$name]:-${BROKER_ACL['*']:-xpublic/#}}"
    for t in "${acl[@]}"; do topics+=(--topic "$t"); done
    "$WMESH" broker-config --acl "${topics[@]}" >"$dir/acl" || fail "broker-config --acl failed"
    # mosquitto's own autosave interval (30 min) and session expiry (never), as before the
    # recommended ones existed: the figures of tests and benchmarks stay comparable.
    "$WMESH" broker-config --host 127.0.0.1 --port "$port" --password-file "$dir/passwd" \
        --acl-file "$dir/acl" --persistence "$dir/db/" --autosave-interval 0 \
        --session-expiry none --log-file "$T/$name.log" --user "$(id -un)" \
        "${BROKER_OPTIONS[@]}" "$@" >"$dir/mosquitto.conf" || fail "broker-config failed"
}

# Succeeds once broker $1 accepts an authenticated connection.
broker_ready() {
    mosquitto_pub -h 127.0.0.1 -p "$(broker_port "$1")" -u owner -P ownerpw \
        -i "ready-$1-$$" -t xpublic/ping -n 2>/dev/null
}

start_broker() {
    local name=$1 port
    [ -n "$MOSQUITTO" ] || fail "mosquitto not found (sh scripts/deps.sh installs it)"
    port=$(free_port)
    write_broker_config "$name" "$port"
    echo "$port" >"$T/$name/port"
    "$MOSQUITTO" -c "$T/$name/mosquitto.conf" >>"$T/$name.log" 2>&1 &
    track "$!"
    echo "$!" >"$T/$name/pid"
    wait_until 10 broker_ready "$name" || fail "broker $name did not start on port $port"
    note "broker $name on port $port"
}

broker_port() {
    cat "$T/$1/port"
}

# broker_url NAME USER: the URL for USER (owner or guest) on broker NAME.
broker_url() {
    echo "mqtt://$2:$2pw@127.0.0.1:$(broker_port "$1")"
}

# ---------------------------------------------------------------------------------------------
# RabbitMQ (Debian's rabbitmq-server and its MQTT plugin, which speaks MQTT 3.1.1 only)

# The script itself, not /usr/sbin's wrapper, which runs it as the system user 'rabbitmq'.
: "${RABBITMQ_SERVER:=/usr/lib/rabbitmq/bin/rabbitmq-server}"

# rabbitmq_missing: prints why no RabbitMQ node can be started here, or nothing.
rabbitmq_missing() {
    if [ ! -x "$RABBITMQ_SERVER" ]; then
        echo "rabbitmq-server is not installed (sh scripts/deps.sh --extra installs it)"
    elif ! ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/rabbitmq_mqtt-* >/dev/null 2>&1; then
        echo "rabbitmq-server has no rabbitmq_mqtt plugin"
    elif ! command -v epmd >/dev/null; then
        echo "epmd (erlang-base) is not installed"
    fi
}

# write_rabbitmq_definitions FILE NAME...: users owner/ownerpw and guest/guestpw, one vhost per
# broker NAME mapped from its MQTT port, and the rights write_broker_config gives: the owner
# reads and writes xpublic/#, the guest only reads it (it may make and bind its subscription
# queue, never publish to the amq.topic exchange, where MQTT messages go).
write_rabbitmq_definitions() {
    local file=$1 name sep="" vhosts="" perms="" tperms="" ports=""
    local rx='^xpublic($|\\.)' # JSON for the routing keys of xpublic/# (MQTT '/' is AMQP '.')
    shift
    for name in "$@"; do
        vhosts="$vhosts$sep{\"name\": \"$name\"}"
        perms="$perms$sep
        {\"user\": \"owner\", \"vhost\": \"$name\", \"configure\": \".*\", \"write\": \".*\",
         \"read\": \".*\"},
        {\"user\": \"guest\", \"vhost\": \"$name\", \"configure\": \"^mqtt-subscription-\",
         \"write\": \"^mqtt-subscription-\", \"read\": \".*\"}"
        tperms="$tperms$sep
        {\"user\": \"owner\", \"vhost\": \"$name\", \"exchange\": \"amq.topic\",
         \"write\": \"$rx\", \"read\": \"$rx\"},
        {\"user\": \"guest\", \"vhost\": \"$name\", \"exchange\": \"amq.topic\",
         \"write\": \"^$\", \"read\": \"$rx\"}"
        ports="$ports$sep\"$(broker_port "$name")\": \"$name\""
        sep=", "
    done
    cat >"$file" <<EOF
{
    "users": [{"name": "owner", "password": "ownerpw", "tags": ""},
              {"name": "guest", "password": "guestpw", "tags": ""}],
    "vhosts": [$vhosts],
    "permissions": [$perms],
    "topic_permissions": [$tperms],
    "global_parameters": [{"name": "mqtt_port_to_vhost_mapping", "value": {$ports}}]
}
EOF
}

# start_rabbitmq NAME...: one RabbitMQ node on free loopback ports holding brokers NAME... as
# vhosts, each on an MQTT port of its own (RabbitMQ maps the port to the vhost), so that
# broker_port, broker_url, pub, start_observer and mosquitto_sub work on them as on mosquitto
# brokers (a user name "VHOST:USER", with ':' %-encoded in a URL, picks a vhost too). The node
# has its own name, epmd, distribution port, cookie and HOME, and keeps its data under
# $T/rabbitmq and its log in $T/rabbitmq.log: a system-wide RabbitMQ is never touched.
start_rabbitmq() {
    local dir=$T/rabbitmq name epmd_port amqp_port dist_port node pid n=0 started=$SECONDS
    local missing
    missing=$(rabbitmq_missing)
    [ -z "$missing" ] || fail "no RabbitMQ here: $missing"
    mkdir -p "$dir/home" "$dir/mnesia" "$dir/log"
    epmd_port=$(free_port)
    amqp_port=$(free_port)
    dist_port=$(free_port)
    node=wmesh-$$-$RANDOM@localhost
    {
        echo "listeners.tcp.default = 127.0.0.1:$amqp_port"
        echo "mqtt.allow_anonymous = false"
        for name in "$@"; do
            mkdir -p "$T/$name"
            free_port >"$T/$name/port"
            n=$((n + 1))
            echo "mqtt.listeners.tcp.$n = 127.0.0.1:$(broker_port "$name")"
        done
        echo "load_definitions = $dir/definitions.json"
        echo "log.console = false"
        echo "log.file.level = info"
    } >"$dir/rabbitmq.conf"
    write_rabbitmq_definitions "$dir/definitions.json" "$@"
    echo '[rabbitmq_mqtt].' >"$dir/enabled_plugins"
    : >"$dir/rabbitmq-env.conf" # instead of /etc/rabbitmq/rabbitmq-env.conf
    (umask 077 && head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$dir/home/.erlang.cookie")
    chmod 0400 "$dir/home/.erlang.cookie"
    # An epmd of our own: nothing outlives the test, and a system node's epmd is never used.
    epmd -port "$epmd_port" -address 127.0.0.1 >>"$T/epmd.log" 2>&1 &
    track "$!"
    wait_until 10 port_in_use "$epmd_port" || fail "epmd did not start on port $epmd_port"
    (
        cd "$dir"
        export HOME=$dir/home ERL_EPMD_PORT=$epmd_port ERL_CRASH_DUMP=$dir/erl_crash.dump \
            RABBITMQ_NODENAME=$node RABBITMQ_USE_LONGNAME=false \
            RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$amqp_port \
            RABBITMQ_DIST_PORT=$dist_port RABBITMQ_MNESIA_BASE=$dir/mnesia \
            RABBITMQ_LOG_BASE=$dir/log RABBITMQ_LOGS=$T/rabbitmq.log \
            RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf \
            RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config \
            RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf \
            RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins \
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
        exec "$RABBITMQ_SERVER"
    ) >>"$T/rabbitmq-server.log" 2>&1 </dev/null &
    pid=$!
    track "$pid"
    echo "$pid" >"$dir/pid"
    # Erlang and RabbitMQ boot in 10 s or more; the MQTT listeners open last.
    for name in "$@"; do
        wait_until 120 rabbitmq_ready "$name" "$pid" || fail "RabbitMQ broker $name did not start"
        kill -0 "$pid" 2>/dev/null || fail "the RabbitMQ node exited while starting"
    done
    note "RabbitMQ node $node up in $((SECONDS - started)) s, MQTT 3.1.1:$(for name in "$@"; do
        printf ' %s on port %s' "$name" "$(broker_port "$name")"
    done)"
}

# rabbitmq_ready NAME PID: broker NAME answers (or the node, PID, has exited).
rabbitmq_ready() {
    ! kill -0 "$2" 2>/dev/null || broker_ready "$1"
}

# ---------------------------------------------------------------------------------------------
# NATS (Debian's nats-server: MQTT 3.1.1 only, on top of JetStream)

: "${NATS_SERVER:=$(command -v nats-server || echo /usr/sbin/nats-server)}"

# nats_missing: prints why no NATS server can be started here, or nothing.
nats_missing() {
    if [ ! -x "$NATS_SERVER" ]; then
        echo "nats-server is not installed (sh scripts/deps.sh --extra installs it)"
    fi
}

# start_nats NAME: a NATS server whose MQTT listener is broker NAME, so that broker_port,
# broker_url, pub and start_observer work on it as on a mosquitto broker. Users owner/ownerpw
# (publishes and reads anything) and guest/guestpw (reads; may not publish under xpublic/).
# Its client port and MQTT port are free loopback ports; JetStream (which NATS' MQTT needs)
# keeps its data under $T/NAME/jetstream; its log goes to $T/NAME.log.
start_nats() {
    local name=$1 dir=$T/$1 client_port port missing pid
    missing=$(nats_missing)
    [ -z "$missing" ] || fail "no NATS here: $missing"
    mkdir -p "$dir/jetstream"
    client_port=$(free_port)
    port=$(free_port)
    echo "$port" >"$dir/port"
    cat >"$dir/nats.conf" <<EOF
server_name: "wmesh-$name-$$"
listen: "127.0.0.1:$client_port"
jetstream {
    store_dir: "$dir/jetstream"
    max_memory_store: 256MB
    max_file_store: 1GB
}
mqtt {
    listen: "127.0.0.1:$port"
}
authorization {
    users = [
        {user: owner, password: ownerpw}
        {user: guest, password: guestpw, permissions: {publish: {deny: ["xpublic.>"]}}}
    ]
}
EOF
    "$NATS_SERVER" -c "$dir/nats.conf" >>"$T/$name.log" 2>&1 &
    pid=$!
    track "$pid"
    echo "$pid" >"$dir/pid"
    wait_until 20 broker_ready "$name" || fail "NATS server $name did not start on port $port"
    note "NATS server $name: MQTT 3.1.1 on port $port, NATS on $client_port"
}

# ---------------------------------------------------------------------------------------------
# Certificates and nginx

# make_ca DIR: a throwaway CA (DIR/ca.pem, DIR/ca.key) and the server certificate it signed for
# 127.0.0.1 (CN and IP SAN): DIR/server.pem, DIR/server.key.
make_ca() {
    local d=$1
    mkdir -p "$d"
    command -v openssl >/dev/null || fail "openssl is needed for the TLS tests"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=wmesh test CA $$ ${d##*/}" \
        -keyout "$d/ca.key" -out "$d/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>>"$T/openssl.log" || fail "openssl could not make a CA"
    sign_cert "$d" server "/CN=127.0.0.1" 'subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth'
}

# make_client_cert DIR NAME: DIR/NAME.pem and DIR/NAME.key, a client certificate (CN NAME)
# signed by the CA make_ca made in DIR.
make_client_cert() {
    sign_cert "$1" "$2" "/CN=$2" extendedKeyUsage=clientAuth
}

# sign_cert DIR NAME SUBJECT EXTENSIONS: a new key DIR/NAME.key and its certificate DIR/NAME.pem
# for SUBJECT, signed by DIR's CA with EXTENSIONS (openssl's extension lines).
sign_cert() {
    local d=$1 name=$2
    openssl req -newkey rsa:2048 -nodes -subj "$3" -keyout "$d/$name.key" -out "$d/$name.csr" \
        2>>"$T/openssl.log" || fail "openssl could not make a request for $name"
    printf 'basicConstraints=CA:FALSE\n%s\n' "$4" >"$d/$name.ext"
    openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/$name.ext" -out "$d/$name.pem" 2>>"$T/openssl.log" ||
        fail "openssl could not sign the certificate of $name"
}

# nginx_missing: prints why nginx cannot be started here, or nothing.
nginx_missing() {
    command -v nginx >/dev/null || echo "nginx is not installed (sh scripts/deps.sh --extra installs nginx-light)"
}

# nginx_config NAME ROOT SERVER [HTTP]: $T/NAME/nginx.conf: nginx in the foreground, access log
# off, keep-alive, sendfile; one server block with the directives SERVER (lines: listen, ssl_*,
# locations) that serves ROOT under /data/ unless ROOT is empty; HTTP (lines) in the http block.
nginx_config() {
    local name=$1 root=$2 dir=$T/$1 user="" data=""
    mkdir -p "$dir/tmp"
    # As root, nginx's workers would run as nobody, who cannot read the 0700 temp dir.
    [ "$(id -u)" -ne 0 ] || user="user root;"
    [ -z "$root" ] || data="        location /data/ { alias $root/; }"
    cat >"$dir/nginx.conf" <<EOF
daemon off;
$user
worker_processes 2;
pid $dir/nginx.pid;
error_log $T/$name.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
${4:-}
    server {
$3
$data
    }
}
EOF
}

# run_nginx NAME URL [CURL_ARG...]: nginx with $T/NAME/nginx.conf; returns once URL answers
# (curl with CURL_ARGs, such as --cacert).
run_nginx() {
    local name=$1 url=$2 missing
    shift 2
    missing=$(nginx_missing)
    [ -z "$missing" ] || fail "$missing"
    # shellcheck disable=SC2094 # nginx and its stderr both append to the one log
    nginx -p "$T/$name" -e "$T/$name.log" -c "$T/$name/nginx.conf" 2>>"$T/$name.log" &
    track "$!"
    echo "$!" >"$T/$name/pid"
    wait_until 10 curl -s -o /dev/null --max-time 2 --noproxy '*' "$@" "$url" ||
        fail "nginx $name did not answer at $url"
    note "nginx $name at $url"
}

# start_nginx NAME ROOT [CADIR]: nginx serving ROOT at $(nginx_url NAME) on a free port. With
# CADIR (make_ca's), over https with its server certificate, and only to clients whose
# certificate its CA signed (ssl_verify_client on: nginx answers the others 400).
start_nginx() {
    local name=$1 root=$2 cadir=${3:-} port scheme=http tls=""
    local -a ready=()
    port=$(free_port)
    mkdir -p "$T/$name"
    echo "$port" >"$T/$name/http_port"
    if [ -n "$cadir" ]; then
        scheme=https
        ready=(--cacert "$cadir/ca.pem")
        tls="        ssl_certificate $cadir/server.pem;
        ssl_certificate_key $cadir/server.key;
        ssl_client_certificate $cadir/ca.pem;
        ssl_verify_client on;"
    fi
    echo "$scheme" >"$T/$name/scheme"
    nginx_config "$name" "$root" "        listen 127.0.0.1:$port${tls:+ ssl};
$tls"
    run_nginx "$name" "$scheme://127.0.0.1:$port/" "${ready[@]}"
}

nginx_url() {
    echo "$(cat "$T/$1/scheme")://127.0.0.1:$(http_port "$1")/data"
}

# ---------------------------------------------------------------------------------------------
# squid (Debian's): an HTTP proxy for the tests of --proxy and the proxy variables

: "${SQUID:=$(command -v squid || echo /usr/sbin/squid)}"
: "${SQUID_NCSA_AUTH:=/usr/lib/squid/basic_ncsa_auth}"

# squid_missing: prints why no squid can be started here, or nothing.
squid_missing() {
    if [ ! -x "$SQUID" ]; then
        echo "squid is not installed (sh scripts/deps.sh --extra installs it)"
    elif [ ! -x "$SQUID_NCSA_AUTH" ]; then
        echo "squid has no $SQUID_NCSA_AUTH"
    fi
}

# start_squid NAME [--auth USER:PASSWORD] [--connect-ports "PORT..."] [--host NAME=ADDR]...: squid
# on a free loopback port ($T/NAME/port, proxy_url NAME), serving localhost only, caching nothing,
# its log in $T/NAME.log and its access log in $T/NAME/access.log. It resolves names from its
# own hosts file first: --host origin.test=127.0.0.1 makes a name that only the proxy knows, so
# that a client reaches that origin through the proxy or not at all. CONNECT goes to any port,
# or with --connect-ports only to those (others get 403, as squid's default allows 443 alone).
# --auth asks for Basic credentials (407 without them), checked by basic_ncsa_auth.
start_squid() {
    local name=$1 dir=$T/$1 port auth="" ports="" hosts="" missing pid user pass
    shift
    missing=$(squid_missing)
    [ -z "$missing" ] || fail "no squid here: $missing"
    while [ $# -gt 0 ]; do
        case $1 in
        --auth) auth=$2 ;;
        --connect-ports) ports=$2 ;;
        --host) hosts="$hosts${2#*=} ${2%%=*}"$'\n' ;;
        *) fail "start_squid: unknown option $1" ;;
        esac
        shift 2
    done
    mkdir -p "$dir/cache"
    port=$(free_port)
    echo "$port" >"$dir/port"
    printf '127.0.0.1 localhost\n::1 localhost\n%s' "$hosts" >"$dir/hosts"
    {
        echo "http_port 127.0.0.1:$port"
        echo "pid_filename $dir/squid.pid"
        echo "cache_log $T/$name.log"
        echo "access_log stdio:$dir/access.log"
        echo "cache_store_log none"
        echo "coredump_dir $dir/cache"
        echo "netdb_filename none"
        echo "cache deny all"
        echo "pinger_enable off"
        echo "hosts_file $dir/hosts"
        echo "visible_hostname wmesh-test-$name"
        echo "shutdown_lifetime 0 seconds"
        echo "max_filedescriptors 1024"
        echo "acl CONNECT method CONNECT"
        if [ -n "$ports" ]; then
            echo "acl tunnel_ports port $ports"
            echo "http_access deny CONNECT !tunnel_ports"
        fi
        if [ -n "$auth" ]; then
            user=${auth%%:*}
            pass=${auth#*:}
            printf '%s:%s\n' "$user" "$(openssl passwd -apr1 "$pass")" >"$dir/passwd"
            echo "auth_param basic program $SQUID_NCSA_AUTH $dir/passwd"
            echo "auth_param basic realm wmesh-test"
            echo "acl known proxy_auth REQUIRED"
            echo "http_access deny !known"
        fi
        echo "http_access allow localhost"
        echo "http_access deny all"
    } >"$dir/squid.conf"
    # As root, squid runs as its cache_effective_user (Debian: proxy), who must reach its files
    # in the 0700 temp dir: the dir is opened for passing through, squid's own dir handed over.
    if [ "$(id -u)" -eq 0 ]; then
        chmod o+x "$T"
        touch "$T/$name.log"
        chown -R proxy "$dir" "$T/$name.log"
    fi
    "$SQUID" -N -f "$dir/squid.conf" >>"$T/$name.log" 2>&1 &
    pid=$!
    track "$pid"
    echo "$pid" >"$dir/pid"
    wait_until 20 squid_ready "$name" "$pid" || fail "squid $name did not start on port $port"
    kill -0 "$pid" 2>/dev/null || fail "squid $name exited while starting"
    note "squid $name on port $port${auth:+ (Basic auth)}${ports:+, CONNECT to $ports only}"
}

# squid_ready NAME PID: squid answers on its port (or has exited): any HTTP status will do.
squid_ready() {
    ! kill -0 "$2" 2>/dev/null ||
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
            "http://127.0.0.1:$(cat "$T/$1/port")/" 2>/dev/null)" != 000 ]
}

# proxy_url NAME [USER:PASSWORD]: http://[USER:PASSWORD@]127.0.0.1:PORT of squid NAME.
proxy_url() {
    echo "http://${2:+$2@}127.0.0.1:$(cat "$T/$1/port")"
}

# ---------------------------------------------------------------------------------------------
# wmesh processes

http_port() {
    cat "$T/$1/http_port"
}

# base_url NAME: where peer or server NAME serves its tree.
base_url() {
    echo "http://127.0.0.1:$(http_port "$1")/data"
}

metrics_ready() {
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$(http_port "$1")/metrics" 2>/dev/null
}

# True when $WMESH is built with AddressSanitizer or ThreadSanitizer (make SANITIZER=...).
wmesh_sanitized() {
    nm "$WMESH" 2>/dev/null | grep -qE '__(asan|tsan)_init'
}

# Fails the test when the process recorded for NAME is gone.
alive() {
    kill -0 "$(cat "$T/$1/pid")" 2>/dev/null || fail "$1 exited"
}

# start_peer NAME ARGS...: ARGS must include --http-listen 127.0.0.1:PORT.
start_peer() {
    local name=$1 a prev="" port=""
    shift
    for a in "$@"; do
        [ "$prev" = "--http-listen" ] && port=${a##*:}
        prev=$a
    done
    [ -n "$port" ] || fail "start_peer $name: no --http-listen given"
    mkdir -p "$T/$name"
    echo "$port" >"$T/$name/http_port"
    "$WMESH" peer --name "$name" "$@" 2>>"$T/$name.log" &
    track "$!"
    echo "$!" >"$T/$name/pid"
    wait_until 15 metrics_ready "$name" || fail "peer $name did not answer on port $port"
    note "peer $name on http port $port"
}

# mesh_peer NAME HOME [UPSTREAM...] [-- EXTRA ARGS...]
mesh_peer() {
    local name=$1 home=$2 port
    local -a args
    shift 2
    port=$(free_port)
    mkdir -p "$T/$name/tree" "$T/$name/state"
    args=(--dir "$T/$name/tree" --state-dir "$T/$name/state" --client-id "it-$name-$$"
        --post-broker "$(broker_url "$home" owner)"
        --post-base-url "http://127.0.0.1:$port/data" --http-listen "127.0.0.1:$port")
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        args+=(--broker "$(broker_url "$1" guest)")
        shift
    done
    [ $# -gt 0 ] && shift
    start_peer "$name" "${args[@]}" "$@"
}

# The tree of a peer made by mesh_peer.
tree_of() {
    echo "$T/$1/tree"
}

# verify_unit UNIT PROGRAM: systemd-analyze verify of a copy of the unit file UNIT whose
# ExecStart runs PROGRAM (the installed /usr/bin/wmesh may not exist here). Fails on any
# complaint; notes why it did not run where systemd-analyze is missing or wants a running systemd.
verify_unit() {
    local copy
    if ! command -v systemd-analyze >/dev/null; then
        note "systemd-analyze verify skipped: systemd-analyze is not installed (package systemd)"
        return 0
    fi
    mkdir -p "$T/verify"
    copy=$T/verify/$(basename "$1")
    sed "s|^ExecStart=/usr/bin/wmesh |ExecStart=$2 |" "$1" >"$copy"
    if systemd-analyze verify --man=no "$copy" >"$T/verify.log" 2>&1 && [ ! -s "$T/verify.log" ]; then
        note "systemd-analyze verify: no complaint"
    elif grep -qiE 'failed to (connect|initialize)|not booted|no such file or directory.*bus' \
        "$T/verify.log"; then
        note "systemd-analyze verify skipped (needs a running systemd): $(head -n 1 "$T/verify.log")"
    else
        fail "systemd-analyze verify: $(cat "$T/verify.log")"
    fi
}


# start_serve NAME DIR: serves DIR alone with "wmesh serve".
start_serve() {
    local name=$1 dir=$2 port
    port=$(free_port)
    mkdir -p "$T/$name"
    echo "$port" >"$T/$name/http_port"
    "$WMESH" serve --dir "$dir" --http-listen "127.0.0.1:$port" 2>>"$T/$name.log" &
    track "$!"
    echo "$!" >"$T/$name/pid"
    wait_until 10 curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/" ||
        fail "server $name did not answer on port $port"
    note "server $name on port $port"
}

# start_observer NAME BROKER: records "topic payload" of every xpublic/# message in $T/NAME.msgs.
start_observer() {
    local name=$1 broker=$2
    mkdir -p "$T/$name"
    : >"$T/$name.msgs"
    mosquitto_sub -h 127.0.0.1 -p "$(broker_port "$broker")" -u guest -P guestpw \
        -i "obs-$name-$$" -q 1 -v -t 'xpublic/#' >>"$T/$name.msgs" 2>>"$T/$name.log" &
    track "$!"
    echo "$!" >"$T/$name/pid"
    # Subscribed once a message published now comes back: the guest cannot publish, so
    # publish as owner on a topic the observer sees and drop those lines later.
    wait_until 10 observer_ready "$name" "$broker" || fail "observer $name did not subscribe"
}

observer_ready() {
    mosquitto_pub -h 127.0.0.1 -p "$(broker_port "$2")" -u owner -P ownerpw -i "obsping-$$" \
        -t xpublic/ping -m "ping-$1" 2>/dev/null
    grep -q "^xpublic/ping ping-$1\$" "$T/$1.msgs"
}

# observed NAME: the announcements an observer saw (pings and catch-up statuses left out).
observed() {
    grep -v -e '^xpublic/ping ' -e '^xpublic/_catchup/' "$T/$1.msgs" || true
}

# post_files BROKER BASEURL DIR LISTFILE [OPTION...]: announces the files of DIR named in
# LISTFILE (relPaths) as owner on BROKER. It runs inside DIR, so relPaths are file names too.
post_files() {
    local broker=$1 base=$2 dir=$3 list=$4
    local -a rels
    shift 4
    mapfile -t rels <"$list"
    (cd "$dir" && "$WMESH" post --post-broker "$(broker_url "$broker" owner)" \
        --post-base-url "$base" --dir "$dir" "$@" "${rels[@]}") \
        2>>"$T/post.log" || fail "wmesh post failed"
}

# pub BROKER TOPIC PAYLOAD: publishes one message by hand as owner, QoS 1.
pub() {
    mosquitto_pub -h 127.0.0.1 -p "$(broker_port "$1")" -u owner -P ownerpw -i "pub-$$-$RANDOM" \
        -q 1 -t "$2" -m "$3"
}

# ---------------------------------------------------------------------------------------------
# Metrics and logs

# metric PEER NAME: NAME with labels ('x_total{reason="y"}') picks one series; without, the
# family is summed. Prints 0 when absent.
metric() {
    curl -fsS --max-time 5 "http://127.0.0.1:$(http_port "$1")/metrics" |
        awk -v want="$2" '
            /^#/ { next }
            {
                name = $1; family = name; sub(/\{.*/, "", family)
                if (name == want || (index(want, "{") == 0 && family == want)) { sum += $2; n++ }
            }
            END { if (n == 0) print 0; else printf "%.15g\n", sum }'
}

# connected PEER PORT: the value of wmesh_broker_connected for PEER's link to the broker at PORT.
connected() {
    curl -fsS --max-time 5 "http://127.0.0.1:$(http_port "$1")/metrics" |
        awk -v p=":$2\"" '/^wmesh_broker_connected/ && index($0, p) { print $2 }'
}

# is_connected PEER PORT VALUE: for wait_until.
is_connected() {
    [ "$(connected "$1" "$2")" = "$3" ]
}

# metric_is PEER NAME VALUE: for wait_until.
metric_is() {
    [ "$(metric "$1" "$2")" = "$3" ]
}

# logged PEER DISPOSITION: the relPaths of the peer's log lines with that disposition.
logged() {
    awk -v d="$2" '{ for (i = 1; i < NF; i++) if ($i == d) { print $(i + 1); break } }' \
        "$T/$1.log"
}

# counters PEER...: one line per peer with its main counters, to compare over time.
counters() {
    local p
    for p in "$@"; do
        curl -fsS --max-time 5 "http://127.0.0.1:$(http_port "$p")/metrics" | awk -v peer="$p" '
            BEGIN {
                n = split("wmesh_messages_received_total wmesh_downloads_total " \
                    "wmesh_inlined_total wmesh_duplicates_total wmesh_published_total " \
                    "wmesh_download_errors_total", names, " ")
            }
            /^#/ { next }
            { family = $1; sub(/\{.*/, "", family); sum[family] += $2 }
            END {
                line = peer
                for (i = 1; i <= n; i++) line = line " " (sum[names[i]] + 0)
                print line
            }'
    done
}

# quiet_for SECONDS PEER...: true when no counter of the peers moves for SECONDS.
quiet_for() {
    local before after secs=$1
    shift
    before=$(counters "$@")
    sleep "$secs"
    after=$(counters "$@")
    [ "$before" = "$after" ]
}

# settle PEER...: waits (60 s at most) until the peers have been quiet for 1 s, then checks
# that nothing moves for 3 s more: re-announcements have stopped.
settle() {
    wait_until 60 quiet_for 1 "$@" || fail "the peers never went quiet: $(counters "$@")"
    quiet_for 3 "$@" || fail "the peers were quiet, then counters moved again"
}

# logged_has PEER DISPOSITION RELPATH: for wait_until.
logged_has() {
    logged "$1" "$2" | grep -qxF "$3"
}

# observed_has OBSERVER RELPATH: the observer saw an announcement of RELPATH.
observed_has() {
    observed "$1" | grep -qF "\"$2\""
}

# once_each PEER DISPOSITION: fails when a relPath appears twice with DISPOSITION in the log.
once_each() {
    local twice
    twice=$(logged "$1" "$2" | sort | uniq -d)
    [ -z "$twice" ] || fail "$1 logged '$2' more than once for: $twice"
}

# ---------------------------------------------------------------------------------------------
# Files

# checksum_b64 ALGO FILE: base64 of the raw digest, as v03 carries it (coreutils only).
checksum_b64() {
    "${1}sum" "$2" | cut -d' ' -f1 | tr 'a-f' 'A-F' | basenc --base16 -d | base64 -w0
}

checksum_hex() {
    "${1}sum" "$2" | cut -d' ' -f1
}

# v03 pubTime of now: YYYYMMDDTHHMMSS.fraction, UTC.
pubtime_now() {
    date -u +%Y%m%dT%H%M%S.%N
}

# Array-format pubTime of now: YYYYMMDDHHMMSS.fraction, UTC.
pubtime_now_array() {
    date -u +%Y%m%d%H%M%S.%N
}

# topic_of RELPATH: xpublic/v03/post/<directory of relPath>.
topic_of() {
    local dir
    dir=$(dirname "$1")
    if [ "$dir" = "." ]; then
        echo "xpublic/v03/post"
    else
        echo "xpublic/v03/post/${dir#/}"
    fi
}

# make_files DIR N [TAG]: N files with WMO-like names and 0..64 KiB of random bytes under DIR;
# prints their relPaths. TAG keeps the names of two calls apart. Few forks: it makes hundreds.
make_files() {
    local dir=$1 n=$2 tag=${3:-} i day hh mm size rel kind origin sub
    local -a kinds=(UpperAir/UANT01 Surface/SACN31 Radar/RADAR1 GRIB/HRPA85 Marine/SMVD21
        Aviation/FTCN31)
    local -a origins=(CA/CMC/CWAO US/NCEP/KWBC GB/UKMO/EGRR FR/MF/LFPW AU/BOM/AMMC)
    local -A made=()
    day=$(date -u +%Y%m%d)
    for ((i = 1; i <= n; i++)); do
        printf -v hh '%02d' $((i % 24))
        printf -v mm '%02d' $(((i * 7) % 60))
        kind=${kinds[$((i % ${#kinds[@]}))]}
        origin=${origins[$(((i / 3) % ${#origins[@]}))]}
        sub=$day/WIS/${origin%/*}/${kind%/*}/$hh
        printf -v rel '%s/%s_%s_%s%s%s___%s%05d.txt' "$sub" "${kind#*/}" "${origin##*/}" \
            "${day:6:2}" "$hh" "$mm" "$tag" "$i"
        case $((i % 10)) in
        0) size=0 ;;
        1 | 2 | 3) size=$((RANDOM % 1024 + 1)) ;;
        *) size=$(((RANDOM * 32768 + RANDOM) % 65536 + 1)) ;;
        esac
        if [ -z "${made[$sub]:-}" ]; then
            mkdir -p "$dir/$sub"
            made[$sub]=1
        fi
        if [ "$size" -eq 0 ]; then
            : >"$dir/$rel"
        else
            head -c "$size" /dev/urandom >"$dir/$rel"
        fi
        echo "$rel"
    done
}

# same_files REFDIR DIR LISTFILE: true when DIR holds every relPath of LISTFILE with the bytes
# of REFDIR (compared by SHA-256, two processes instead of one cmp per file).
same_files() {
    local sums
    sums=$(mktemp "$T/sums.XXXXXX")
    (cd "$1" && xargs -d '\n' sha256sum --) <"$3" >"$sums" || return 1
    (cd "$2" && sha256sum --quiet --strict -c "$sums") >&2
}

# peer_with_files N: brokers up and home, peer P (up -> home), server S of $T/origin; N files
# made in $T/origin (relPaths in $T/list) are posted on up and waited for in P's tree.
peer_with_files() {
    start_broker up
    start_broker home
    mesh_peer P home up
    start_serve S "$T/origin"
    make_files "$T/origin" "$1" >"$T/list"
    post_files up "$(base_url S)" "$T/origin" "$T/list"
    wait_until 30 all_present "$(tree_of P)" "$T/list" || fail "P did not get the files"
}

# chain_of_three [--no-c]: brokers bA bB bC and peers A (origin, subscribed to nobody), B
# (bA -> bB) and C (bB -> bC); with --no-c, C is left for the test to start.
chain_of_three() {
    local b
    for b in bA bB bC; do
        start_broker "$b"
    done
    mesh_peer A bA
    mesh_peer B bB bA
    [ "${1:-}" = --no-c ] || mesh_peer C bC bB
}

# start_posting LIST BATCH PAUSE: posts LIST at A in batches of BATCH relPaths, PAUSE seconds
# apart, in the background, so files keep flowing while a test breaks things; $T/posted counts
# what has been announced so far. finish_posting waits for the last batch.
start_posting() {
    local list=$1 batch=$2 pause=$3
    split -l "$batch" -d -a 3 "$list" "$T/batch."
    echo 0 >"$T/posted"
    (
        n=0
        for f in "$T"/batch.*; do
            post_files bA "$(base_url A)" "$(tree_of A)" "$f"
            n=$((n + $(wc -l <"$f")))
            echo "$n" >"$T/posted"
            sleep "$pause" # deliberate pacing between batches
        done
    ) &
    POSTER=$!
    track "$POSTER"
}

finish_posting() {
    wait "$POSTER" || fail "posting at A failed"
    untrack "$POSTER"
}

# reach_all LIST ORIGIN LAST [PEER...]: waits (120 s) until peer LAST holds every relPath of
# LIST, then checks that LAST and every PEER hold them with the bytes of ORIGIN's tree.
reach_all() {
    local list=$1 origin=$2 last=$3 p n
    shift 3
    n=$(wc -l <"$list")
    wait_until 120 all_present "$(tree_of "$last")" "$list" ||
        fail "$last holds $(count_present "$(tree_of "$last")" "$list") of $n files"
    for p in "$last" "$@"; do
        same_files "$(tree_of "$origin")" "$(tree_of "$p")" "$list" ||
            fail "$p: some file differs from $origin's"
    done
    note "$last holds all $n files, identical to $origin's"
}

# metrics_are PEER VALUE METRIC...: fails unless each METRIC of PEER equals VALUE.
metrics_are() {
    local p=$1 want=$2 m
    shift 2
    for m in "$@"; do
        [ "$(metric "$p" "$m")" -eq "$want" ] ||
            fail "$p: $m is $(metric "$p" "$m"), expected $want: $(counters "$p")"
    done
}

# count_present DIR LISTFILE: how many relPaths of LISTFILE exist under DIR.
count_present() {
    local rel n=0
    while IFS= read -r rel; do
        [ -f "$1/$rel" ] && n=$((n + 1))
    done <"$2"
    echo "$n"
}

all_present() {
    [ "$(count_present "$@")" -eq "$(wc -l <"$2")" ]
}

# v03_msg BASEURL RELPATH METHOD VALUE [EXTRA]: a v03 announcement made by hand; EXTRA is more
# JSON members, with their leading comma.
v03_msg() {
    printf '{"pubTime": "%s", "baseUrl": "%s", "relPath": "%s", "integrity": {"method": "%s", "value": "%s"}%s}' \
        "$(pubtime_now)" "$1" "$2" "$3" "$4" "${5:-}"
}

# array_msg BASEURL RELPATH SUM [EXTRA]: the WMO mesh demo's array format; SUM is "d,<md5 hex>" etc.
array_msg() {
    printf '["%s", "%s", "%s", {"sum": "%s"%s}]' "$(pubtime_now_array)" "$1" "$2" "$3" "${4:-}"
}

# json_str FIELD: the string value of FIELD in the JSON on stdin (our flat messages only).
json_str() {
    sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' | sed 's#\\/#/#g'
}

[ -x "$WMESH" ] || fail "no wmesh binary at $WMESH (make _all builds it)"
