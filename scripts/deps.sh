#!/bin/sh
# Installs the Debian packages wmesh needs to build, test and run its demo, if any are missing.
set -eu
PKGS="build-essential pkg-config mosquitto mosquitto-clients \
libssl-dev attr curl openssl"
# --deb: what `make deb` needs on top (dpkg-buildpackage, debhelper; Build-Depends in
# debian/control are the base packages above).
[ "${1:-}" = "--deb" ] && PKGS="$PKGS dpkg-dev debhelper fakeroot"
[ "${1:-}" = "--extra" ] && PKGS="$PKGS clang libclang-rt-14-dev nginx-light valgrind wrk chromium groff-base clang-format \
rabbitmq-server nats-server faketime squid python3-jsonschema"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing >&2
