#!/bin/bash
# 59-deb.sh: `make deb` builds build/wmesh_VERSION_ARCH.deb (reused when newer than every source
# file) and writes nothing into the repository's parent directory; extracted with dpkg-deb -x
# into a temporary root (never installed on this system), the package holds the program, wmesh(1),
# the systemd template unit, the examples, the copyright and the docs README points to
# (OPERATIONS, PROTOCOL, CATCHUP); its control file names VERSION and libssl3; the unit passes systemd-analyze verify; the postinst, run in a private mount namespace
# over copies of /etc and /var/lib, creates the user wmesh, /var/lib/wmesh and /etc/wmesh, and
# runs again without harm, and the postrm purge removes /var/lib/wmesh; the extracted program
# prints the version and runs examples/origin.conf (paths and broker overridden on the command
# line) against a real mosquitto, serving its tree and /metrics on its HTTP port.
# Skipped only when dpkg-buildpackage and debhelper cannot be installed.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
version=$(cat "$REPO/VERSION")

# --- the build tools ----------------------------------------------------------------------------
if ! command -v dpkg-buildpackage >/dev/null || ! command -v dh >/dev/null; then
    sh "$REPO/scripts/deps.sh" --deb >"$T/deps.log" 2>&1 || true
    { command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null; } ||
        skip "dpkg-buildpackage and debhelper cannot be installed: $(tail -n 1 "$T/deps.log")"
fi
arch=$(dpkg --print-architecture)
DEB=$REPO/build/wmesh_${version}_$arch.deb

# --- the package --------------------------------------------------------------------------------
# fresh: the .deb is newer than every file git knows of (tracked or not ignored).
fresh() {
    [ -f "$DEB" ] && command -v git >/dev/null && git -C "$REPO" rev-parse 2>/dev/null >&2 || return 1
    local f
    while IFS= read -r -d '' f; do
        [ ! "$REPO/$f" -nt "$DEB" ] || return 1
    done < <(git -C "$REPO" ls-files -z -co --exclude-standard)
}
# What dpkg-buildpackage writes beside the source tree by default: wmesh_<version>_* and
# wmesh-dbgsym_<version>_*. Only those count: the parent may be a shared directory (/tmp)
# where other programs come and go.
package_files() {
    local f
    for f in "$REPO"/../wmesh_* "$REPO"/../wmesh-dbgsym_*; do
        [ -e "$f" ] && echo "${f##*/}"
    done
    return 0
}
parent_before=$(package_files)
if fresh; then
    note "reusing $(basename "$DEB"), newer than every source file"
else
    # A plain build whatever make this test runs under (SANITIZER=... reaches it in MAKEFLAGS);
    # the unit tests already ran in make check.
    start=$SECONDS
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL DEB_BUILD_OPTIONS=nocheck \
        make -C "$REPO" --no-print-directory deb DEB_JOBS=2 >"$T/deb.log" 2>&1 ||
        fail "make deb failed: $(tail -n 30 "$T/deb.log")"
    note "make deb: $(basename "$DEB") in $((SECONDS - start)) s"
fi
[ -f "$DEB" ] || fail "no $DEB"
[ "$(package_files)" = "$parent_before" ] ||
    fail "make deb left files in $(cd "$REPO/.." && pwd): $(diff <(echo "$parent_before") <(package_files))"

ROOT=$T/root
dpkg-deb -x "$DEB" "$ROOT" || fail "dpkg-deb -x failed"
dpkg-deb -e "$DEB" "$T/control" || fail "dpkg-deb -e failed"
field() {
    sed -n "s/^$1: //p" "$T/control/control"
}
[ "$(field Package)" = wmesh ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "the package is version $(field Version), VERSION $version"
grep -q 'libssl3' <<<"$(field Depends)" || fail "Depends has no libssl3: $(field Depends)"
grep -q 'adduser' <<<"$(field Depends)" || fail "Depends has no adduser: $(field Depends)"

UNIT=$ROOT/lib/systemd/system/wmesh-peer@.service
EX=$ROOT/usr/share/doc/wmesh/examples
for f in usr/bin/wmesh usr/share/man/man1/wmesh.1.gz lib/systemd/system/wmesh-peer@.service \
    usr/share/doc/wmesh/copyright usr/share/doc/wmesh/changelog.gz; do
    [ -f "$ROOT/$f" ] || fail "the package has no /$f"
done
for f in origin.conf relay.conf wis2-cache.conf credentials.conf mosquitto-peer.conf acl \
    wis2-broker.conf wis2-broker.acl; do
    [ -f "$EX/$f" ] || fail "the package has no example $f"
done
# The documents README sends operators to, compressed or not (dh_compress decides by size).
for f in README.md OPERATIONS.md PROTOCOL.md CATCHUP.md; do
    [ -f "$ROOT/usr/share/doc/wmesh/$f" ] || [ -f "$ROOT/usr/share/doc/wmesh/$f.gz" ] ||
        fail "the package has no /usr/share/doc/wmesh/$f"
done
[ -x "$ROOT/usr/bin/wmesh" ] || fail "/usr/bin/wmesh is not executable"
grep -qx 'ExecStart=/usr/bin/wmesh peer --config /etc/wmesh/%i.conf --name %i' "$UNIT" ||
    fail "unexpected ExecStart: $(grep ExecStart "$UNIT")"
grep -q 'License: Apache-2.0' "$ROOT/usr/share/doc/wmesh/copyright" || fail "copyright: no licence"
zcat "$ROOT/usr/share/man/man1/wmesh.1.gz" | grep -q "^\.TH WMESH 1 .*\"wmesh $version\"" ||
    fail "the man page does not give version $version"
for s in postinst postrm; do
    [ -x "$T/control/$s" ] || fail "the package has no executable $s"
    sh -n "$T/control/$s" || fail "$s is not valid sh"
done
grep -q 'adduser --system --group' "$T/control/postinst" || fail "the postinst creates no system user"
note "package: $(dpkg-deb -c "$DEB" | grep -vc '/$') files, Depends: $(field Depends)"

out=$("$ROOT/usr/bin/wmesh" --version 2>&1) || fail "the packaged wmesh --version failed: $out"
[ "$out" = "wmesh $version" ] || fail "the packaged wmesh --version says '$out'"

# --- the systemd unit ---------------------------------------------------------------------------
verify_unit "$UNIT" "$ROOT/usr/bin/wmesh"

# --- the maintainer scripts ---------------------------------------------------------------------
# In a private mount namespace, /etc and /var/lib are copies in $T: adduser writes to the copy.
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null && unshare --mount true 2>/dev/null; then
    cp -a /etc "$T/etc"
    mkdir -p "$T/varlib"
    cat >"$T/maint.sh" <<EOF
set -e
mount --bind "$T/etc" /etc
mount --bind "$T/varlib" /var/lib
sh "$T/control/postinst" configure ''
sh "$T/control/postinst" configure ''
getent passwd wmesh | cut -d: -f1,6,7
stat -c '%U:%G %a' /var/lib/wmesh
stat -c '%U:%G %a' /etc/wmesh
sh "$T/control/postrm" purge
[ ! -e /var/lib/wmesh ] && echo purged
EOF
    unshare --mount --propagation private sh "$T/maint.sh" >"$T/maint.log" 2>&1 ||
        fail "the maintainer scripts failed: $(cat "$T/maint.log")"
    want="wmesh:/var/lib/wmesh:/usr/sbin/nologin
wmesh:wmesh 755
root:root 755
purged"
    [ "$(cat "$T/maint.log")" = "$want" ] ||
        fail "the maintainer scripts: $(cat "$T/maint.log"), not: $want"
    note "postinst (twice) made the user wmesh, /var/lib/wmesh, /etc/wmesh; postrm purge cleaned up"
else
    note "maintainer scripts not run: they need root and mount namespaces (unshare)"
fi

# --- a peer from an example configuration -------------------------------------------------------
WMESH=$ROOT/usr/bin/wmesh
start_broker home
port=$(free_port)
mkdir -p "$T/origin/tree/a"
echo "from the package" >"$T/origin/tree/a/hello.txt"
broker_url home owner >"$T/credentials.conf"
chmod 0600 "$T/credentials.conf"
start_peer origin --config "$EX/origin.conf" --dir "$T/origin/tree" --state-dir "$T/origin/state" \
    --credentials "$T/credentials.conf" --post-broker "mqtt://owner@127.0.0.1:$(broker_port home)" \
    --post-base-url "http://127.0.0.1:$port/data" --http-listen "127.0.0.1:$port"
got=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/data/a/hello.txt") ||
    fail "the packaged peer does not serve its tree"
[ "$got" = "from the package" ] || fail "the packaged peer served '$got'"
alive origin
note "the packaged wmesh runs examples/origin.conf: /metrics and the tree answer on port $port"
