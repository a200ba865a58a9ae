#!/bin/sh
# Installs the Debian packages weir needs, when missing.
#   scripts/deps.sh build   to build and run weir
#   scripts/deps.sh test    to build and run every test (the default)
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -e
BUILD_PKGS="gcc make pkg-config libyaml-dev libpcre2-dev libgnutls28-dev libnghttp2-dev libngtcp2-dev libngtcp2-crypto-gnutls-dev libnghttp3-dev"
TEST_PKGS="$BUILD_PKGS clang libclang-rt-14-dev libcmocka-dev curl nginx haproxy wrk \
python3 python3-pytest python3-h2 python3-hyperframe python3-cryptography procps iproute2 nghttp2-client nghttp2-server \
nftables gnutls-bin openssl ngtcp2-client chromium"
case "${1:-test}" in
build) PKGS=$BUILD_PKGS ;;
*) PKGS=$TEST_PKGS ;;
esac
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
apt-get install -y --no-install-recommends $missing
