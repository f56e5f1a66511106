#!/bin/bash
# 43-install.sh: `make install DESTDIR=... PREFIX=/usr` puts the program, wmesh(1), the systemd
# unit and the examples in place with sane modes and without root; the man page renders without
# warnings and documents every option of every subcommand's --help; the unit runs /usr/bin/wmesh;
# every example peer configuration starts (paths and brokers overridden on the command line)
# against a broker configured by examples/mosquitto-peer.conf and examples/acl, and a file flows
# origin -> relay; `make uninstall` removes every file again.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
ROOT=$T/root
EX=$ROOT/usr/share/doc/wmesh/examples
UNIT=$ROOT/usr/lib/systemd/system/wmesh-peer@.service
MAN=$ROOT/usr/share/man/man1/wmesh.1.gz
EXAMPLES="origin.conf relay.conf wis2-cache.conf credentials.conf mosquitto-peer.conf acl
    wis2-broker.conf wis2-broker.acl"

# --- make install -------------------------------------------------------------------------------
make -C "$REPO" --no-print-directory install DESTDIR="$ROOT" PREFIX=/usr >"$T/install.log" 2>&1 ||
    fail "make install failed: $(tail -n 20 "$T/install.log")"

# mode_is FILE MODE: FILE exists, is a regular file and has MODE.
mode_is() {
    [ -f "$1" ] || fail "not installed: ${1#"$ROOT"}"
    [ "$(stat -c %a "$1")" = "$2" ] || fail "${1#"$ROOT"} has mode $(stat -c %a "$1"), not $2"
}
mode_is "$ROOT/usr/bin/wmesh" 755
mode_is "$MAN" 644
mode_is "$UNIT" 644
for f in $EXAMPLES; do
    mode_is "$EX/$f" 644
done
others=$(find "$ROOT" -type f | sed "s|^$ROOT||" | sort)
[ "$(wc -l <<<"$others")" -eq 11 ] || fail "unexpected files installed: $others"
bad=$(find "$ROOT" \( -perm -o+w -o -perm -g+w \) -print)
[ -z "$bad" ] || fail "group- or world-writable: $bad"
note "installed: $(tr '\n' ' ' <<<"$others")"

WMESH=$ROOT/usr/bin/wmesh
"$WMESH" --help >"$T/help.out" 2>&1 || fail "installed wmesh --help failed: $(cat "$T/help.out")"
grep -q '^usage: wmesh COMMAND' "$T/help.out" || fail "wmesh --help said: $(cat "$T/help.out")"

# --- the man page -------------------------------------------------------------------------------
command -v groff >/dev/null || fail "groff not found (sh scripts/deps.sh --extra installs groff-base)"
gzip -t "$MAN" || fail "the man page is not a valid gzip file"
zcat "$MAN" | groff -man -Tutf8 -ww -z 2>"$T/groff.err" || fail "groff failed on the man page"
[ ! -s "$T/groff.err" ] || fail "the man page renders with warnings: $(cat "$T/groff.err")"
# The same page, the version in its .TH line.
version=$(cat "$REPO/VERSION")
grep -qx ".TH WMESH 1 [0-9-]* \"wmesh $version\" \"User Commands\"" <(zcat "$MAN") ||
    fail "the installed man page's .TH line does not give version $version: $(zcat "$MAN" | grep '^\.TH')"
cmp -s <(zcat "$MAN" | grep -v '^\.TH ') <(grep -v '^\.TH ' "$REPO/docs/wmesh.1") ||
    fail "the installed man page differs from docs/wmesh.1"
# Rendered as plain ASCII (no bold, no underline), \- becomes '-': options read as typed.
zcat "$MAN" | groff -man -Tascii -P-c -P-b -P-u 2>/dev/null >"$T/man.txt"
for section in NAME SYNOPSIS DESCRIPTION "CONFIGURATION FILE" METRICS "EXIT STATUS" FILES \
    EXAMPLES "SEE ALSO"; do
    grep -qx "$section" "$T/man.txt" || fail "the man page has no $section section"
done
# shellcheck disable=SC2088 # a literal ~ as the man page writes it
for want in /etc/wmesh/NAME.conf '~/.config/wmesh/credentials.conf' /var/lib/wmesh /metrics \
    'mosquitto(8)' 'mosquitto.conf(5)'; do
    grep -qF -- "$want" "$T/man.txt" || fail "the man page does not mention $want"
done
# Every option of every subcommand's --help, each in the section of its subcommand.
checked=0
for cmd in peer post serve sub status clean gb demo; do
    grep -qx "  *wmesh $cmd" "$T/man.txt" || fail "the man page has no subsection for wmesh $cmd"
    awk -v c="wmesh $cmd" '$0 ~ "^ +wmesh [a-z]+$" { on = ($0 ~ c "$") } /^[A-Z]/ { on = 0 } on' \
        "$T/man.txt" >"$T/man-$cmd.txt"
    opts=$("$WMESH" "$cmd" --help 2>&1 | grep -oE -- '^ +--[a-z][a-z0-9-]*' | tr -d ' ')
    [ -n "$opts" ] || fail "wmesh $cmd --help lists no option"
    for o in $opts; do
        grep -qE -- "(^|[^a-z-])$o([^a-z-]|\$)" "$T/man-$cmd.txt" ||
            fail "wmesh $cmd $o (from --help) is not in its section of the man page"
        checked=$((checked + 1))
    done
done
# Defaults: every "[default: X]" of peer --help appears in the man page's peer section.
while IFS= read -r line; do
    o=$(grep -oE -- '--[a-z][a-z0-9-]*' <<<"$line" | head -n 1)
    d=$(sed -n 's/.*\[default: \(.*\)\]$/\1/p' <<<"$line")
    awk -v o="$o" '$1 == o { on = 1; next } /^       --/ { on = 0 } on' "$T/man-peer.txt" |
        tr '\n' ' ' | tr -s ' ' | grep -qF -- "Default: $d" ||
        fail "the man page does not give $o's default as $d"
done < <("$WMESH" peer --help 2>&1 | grep -F '[default: ')
note "man page: renders without warnings, documents all $checked options and the peer defaults"

# --- the systemd unit ---------------------------------------------------------------------------
grep -qx 'ExecStart=/usr/bin/wmesh peer --config /etc/wmesh/%i.conf --name %i' "$UNIT" ||
    fail "unexpected ExecStart: $(grep ExecStart "$UNIT")"
for want in Type=simple Restart=on-failure RestartSec=5 User=wmesh Group=wmesh \
    NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes ProtectHome=read-only \
    StateDirectory=wmesh/%i LimitNOFILE=65536; do
    grep -qx "$want" "$UNIT" || fail "the unit lacks $want"
done
verify_unit "$UNIT" "$ROOT/usr/bin/wmesh"
# The prefix is substituted, not assumed.
make -C "$REPO" --no-print-directory install DESTDIR="$T/opt" PREFIX=/opt/wmesh \
    >"$T/install-opt.log" 2>&1 || fail "make install PREFIX=/opt/wmesh failed"
grep -q '^ExecStart=/opt/wmesh/bin/wmesh peer ' "$T/opt/opt/wmesh/lib/systemd/system/wmesh-peer@.service" ||
    fail "PREFIX=/opt/wmesh did not reach ExecStart"
[ -x "$T/opt/opt/wmesh/bin/wmesh" ] || fail "PREFIX=/opt/wmesh: no program"

# Without root: the same installation as nobody, into a directory nobody owns.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1 &&
    setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups test -r "$REPO/Makefile"; then
    chmod 0711 "$T"
    mkdir "$T/user" && chown nobody "$T/user"
    # -o: the program was built above; nobody may not write build/ (sources may change meanwhile).
    setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
        make -C "$REPO" --no-print-directory -o build/wmesh -o build/asan/wmesh install \
        DESTDIR="$T/user/root" PREFIX=/usr \
        >"$T/install-user.log" 2>&1 || fail "make install as nobody failed: $(tail -n 20 "$T/install-user.log")"
    [ -x "$T/user/root/usr/bin/wmesh" ] || fail "make install as nobody installed no program"
    note "make install DESTDIR=... also works as nobody"
fi

# --- the broker of the examples -----------------------------------------------------------------
# Debian's layout: a main mosquitto.conf with persistence, then examples/mosquitto-peer.conf in
# conf.d/ with its password file and ACL moved into $T.
[ -n "$MOSQUITTO" ] || fail "mosquitto not found"
home_port=$(free_port)
mkdir -p "$T/home/db" "$T/home/conf.d"
echo "$home_port" >"$T/home/port"
mosquitto_passwd -b -c "$T/home/pwfile" owner ownerpw
mosquitto_passwd -b "$T/home/pwfile" guest guestpw
cp "$EX/acl" "$T/home/acl"
sed -e "s|^listener 1883\$|listener $home_port 127.0.0.1|" \
    -e "s|^password_file /etc/mosquitto/pwfile\$|password_file $T/home/pwfile|" \
    -e "s|^acl_file /etc/mosquitto/acl\$|acl_file $T/home/acl|" \
    "$EX/mosquitto-peer.conf" >"$T/home/conf.d/wmesh.conf"
for want in "listener $home_port" "password_file $T" "acl_file $T"; do
    grep -q "^$want" "$T/home/conf.d/wmesh.conf" || fail "mosquitto-peer.conf: no '$want' line"
done
cat >"$T/home/mosquitto.conf" <<EOF
persistence true
persistence_location $T/home/db/
log_dest file $T/home.log
log_type all
user $(id -un)
include_dir $T/home/conf.d
EOF
"$MOSQUITTO" -c "$T/home/mosquitto.conf" >>"$T/home.log" 2>&1 &
track "$!"
echo "$!" >"$T/home/pid"
wait_until 10 broker_ready home || fail "mosquitto with examples/mosquitto-peer.conf did not start"
note "broker home (examples/mosquitto-peer.conf, examples/acl) on port $home_port"
# The example ACL: guest reads xpublic/# but may not publish there.
mosquitto_sub -h 127.0.0.1 -p "$home_port" -u guest -P guestpw -i "acl-$$" -q 1 -C 1 -W 10 \
    -t 'xpublic/#' >"$T/acl.out" 2>&1 &
sub=$!
track "$sub"
wait_until 10 grep -q "Sending SUBACK to acl-$$" "$T/home.log" || fail "the guest did not subscribe"
mosquitto_pub -h 127.0.0.1 -p "$home_port" -u guest -P guestpw -i "aclpub-$$" -q 1 \
    -t xpublic/v03/post/x -m from-guest 2>/dev/null || true
mosquitto_pub -h 127.0.0.1 -p "$home_port" -u owner -P ownerpw -i "aclown-$$" -q 1 \
    -t xpublic/v03/post/x -m from-owner || fail "owner may not publish on the example broker"
wait_until 10 grep -q . "$T/acl.out" || fail "the guest got nothing"
[ "$(cat "$T/acl.out")" = from-owner ] || fail "example ACL: the guest read '$(cat "$T/acl.out")'"
stop_pid "$sub"

start_broker up1
start_broker up2

# Passwords come from a credentials file, as in the examples (URLs without passwords).
{
    echo "# test credentials"
    echo "mqtt://owner:ownerpw@127.0.0.1:$home_port"
    echo "mqtt://guest:guestpw@127.0.0.1:$home_port"
    echo "mqtt://guest:guestpw@127.0.0.1:$(broker_port up1)"
    echo "mqtt://guest:guestpw@127.0.0.1:$(broker_port up2)"
} >"$T/credentials.conf"
chmod 0600 "$T/credentials.conf"

# --- every example peer configuration comes up ---------------------------------------------------
# run_example NAME UPSTREAM...: wmesh peer --config examples/NAME.conf with the paths, brokers
# and addresses of this test on the command line (which overrides the file), as the unit runs it.
run_example() {
    local name=$1 port up
    local -a args
    shift
    port=$(free_port)
    mkdir -p "$T/$name"
    args=(--config "$EX/$name.conf" --dir "$T/$name/tree" --state-dir "$T/$name/state"
        --credentials "$T/credentials.conf" --post-broker "mqtt://owner@127.0.0.1:$home_port"
        --post-base-url "http://127.0.0.1:$port/data" --http-listen "127.0.0.1:$port")
    for up in "$@"; do
        args+=(--broker "mqtt://guest@127.0.0.1:$up")
    done
    start_peer "$name" "${args[@]}"
    wait_until 15 metric_is "$name" wmesh_broker_connected "$#" ||
        fail "$name: $(metric "$name" wmesh_broker_connected) of $# upstreams connected"
    [ -d "$T/$name/state" ] || fail "$name: no state directory where the command line put it"
    ! grep -qiE 'error|fatal' "$T/$name.log" || fail "$name logged errors"
    note "examples/$name.conf: up, $# upstream(s) connected"
}
run_example origin
run_example relay "$home_port" "$(broker_port up1)"
run_example wis2-cache "$(broker_port up1)" "$(broker_port up2)"
# The files were read, not just accepted: wis2-cache.conf asks for JSON log lines.
grep -q '^{"time":' "$T/wis2-cache.log" || fail "wis2-cache did not apply log-format json"

# A file from the origin's tree, announced on the example broker, reaches the relay.
make_files "$T/origin/tree" 3 >"$T/list"
post_files home "$(base_url origin)" "$T/origin/tree" "$T/list"
wait_until 30 all_present "$T/relay/tree" "$T/list" || fail "the relay did not get the origin's files"
same_files "$T/origin/tree" "$T/relay/tree" "$T/list" || fail "the relay's copies differ"
note "origin -> relay through the example broker: $(wc -l <"$T/list") files"
for name in origin relay wis2-cache; do
    alive "$name"
done

# examples/wis2-broker.conf: wmesh gb with this test's brokers for its placeholders.
gb_port=$(free_port)
mkdir -p "$T/wis2-broker"
echo "$gb_port" >"$T/wis2-broker/http_port"
"$WMESH" gb --config "$EX/wis2-broker.conf" --credentials "$T/credentials.conf" \
    --node "io-wis2dev-11-test=mqtt://guest@127.0.0.1:$(broker_port up1)" \
    --peer-broker "other-gb=mqtt://guest@127.0.0.1:$(broker_port up2)" \
    --post-broker "mqtt://owner@127.0.0.1:$home_port" --http-listen "127.0.0.1:$gb_port" \
    2>>"$T/wis2-broker.log" &
track "$!"
echo "$!" >"$T/wis2-broker/pid"
wait_until 15 metric_is wis2-broker wmo_wis2_gb_connected_flag 2 ||
    fail "wis2-broker: $(metric wis2-broker wmo_wis2_gb_connected_flag) of 2 links up"
! grep -qiE 'error|fatal' "$T/wis2-broker.log" || fail "wis2-broker logged errors"
note "examples/wis2-broker.conf: wmesh gb up, 2 links connected"

# A configuration error names the file and the line.
cp "$EX/relay.conf" "$T/broken.conf"
echo "max-downloads many" >>"$T/broken.conf"
n=$(wc -l <"$T/broken.conf")
rc=0
"$WMESH" peer --config "$T/broken.conf" --dir "$T/broken" 2>"$T/broken.err" || rc=$?
[ "$rc" -eq 2 ] || fail "a bad configuration exited $rc, not 2"
grep -qF "$T/broken.conf:$n:" "$T/broken.err" || fail "no file:line in: $(cat "$T/broken.err")"

# --- make uninstall -----------------------------------------------------------------------------
stop_all
make -C "$REPO" --no-print-directory uninstall DESTDIR="$ROOT" PREFIX=/usr >"$T/uninstall.log" 2>&1 ||
    fail "make uninstall failed: $(cat "$T/uninstall.log")"
left=$(find "$ROOT" -type f)
[ -z "$left" ] || fail "make uninstall left: $left"
[ ! -e "$ROOT/usr/share/doc/wmesh" ] || fail "make uninstall left the doc directory"
note "make uninstall removed every file"
