#!/bin/sh
# Installs the Debian packages weir needs to build and test, when missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -e
PKGS="gcc make pkg-config clang libclang-rt-14-dev libyaml-dev libpcre2-dev libcmocka-dev \
curl nginx haproxy wrk python3 python3-pytest python3-h2 procps iproute2"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "weir needs these Debian packages:$missing"
    echo "run: sudo apt-get update && sudo apt-get install -y$missing"
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y $missing
