#!/bin/bash
# 60-version.sh: one version everywhere. VERSION states it; `wmesh --version` and `wmesh version`
# print it, an HTTP server sees it in wmesh's User-Agent (wmesh/VERSION), `make install` writes it
# into the man page's .TH line, and the top entry of debian/changelog and the latest release of
# CHANGELOG.md name it. (59-deb checks the package's own version.)
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
version=$(cat "$REPO/VERSION")
grep -qxE '[0-9]+\.[0-9]+\.[0-9]+' <<<"$version" || fail "VERSION is not x.y.z: '$version'"

# --- the program --------------------------------------------------------------------------------
for args in --version version; do
    out=$("$WMESH" $args 2>&1) || fail "wmesh $args exited non-zero: $out"
    [ "$out" = "wmesh $version" ] || fail "wmesh $args printed '$out', not 'wmesh $version'"
done

# --- what a server sees -------------------------------------------------------------------------
# wmesh status asks badhttpd for /metrics (a 404 there: only the request matters).
mkdir -p "$T/empty"
: >"$T/faults"
start_badhttpd web "$T/empty" "$T/faults"
"$WMESH" status "http://127.0.0.1:$(http_port web)" >"$T/status.log" 2>&1 || true
wait_until 5 grep -q 'GET /metrics ' "$T/web.log" || fail "wmesh status made no request"
agent=$(sed -n 's|^badhttpd: GET /metrics .* agent=\(.*\)$|\1|p' "$T/web.log" | head -n 1)
[ "$agent" = "wmesh/$version" ] || fail "the server saw User-Agent '$agent', not 'wmesh/$version'"

# --- the man page -------------------------------------------------------------------------------
make -C "$REPO" --no-print-directory install DESTDIR="$T/root" PREFIX=/usr >"$T/install.log" 2>&1 ||
    fail "make install failed: $(tail -n 20 "$T/install.log")"
th=$(zcat "$T/root/usr/share/man/man1/wmesh.1.gz" | grep '^\.TH ')
grep -qF " \"wmesh $version\" " <<<"$th" || fail "the man page's .TH line gives no version $version: $th"

# --- the changelogs -----------------------------------------------------------------------------
deb=$(sed -n '1s/^wmesh (\([^)]*\)) .*/\1/p' "$REPO/debian/changelog")
[ "$deb" = "$version" ] || fail "debian/changelog's top entry is '$deb', not $version"
# The latest release: the first "## [x.y.z]" heading ("## [Unreleased]" collects what comes next).
md=$(sed -n 's/^## \[\([0-9][^]]*\)\].*/\1/p' "$REPO/CHANGELOG.md" | head -n 1)
[ "$md" = "$version" ] || fail "CHANGELOG.md's latest release is '$md', not $version"
note "version $version: wmesh --version, User-Agent, man page, debian/changelog and CHANGELOG.md agree"
