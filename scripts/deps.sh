#!/bin/sh
# deps.sh - install the Debian packages keyward needs to build, test and benchmark.
# Idempotent: does nothing when everything is present. Uses sudo when not root.
set -eu
PKGS="build-essential pkg-config ca-certificates curl python3 sqlite3 clang libclang-rt-14-dev
 libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev zlib1g-dev libcurl4-openssl-dev
 nginx wrk clang-format
 python3-aiosmtpd"
PKGS="$PKGS chromium nodejs"  # console: tests/browser drives Debian's Chromium with playwright-core
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"  # console: (a nodesource nodejs brings its own)
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    "$(dirname "$0")/../tests/browser/install.sh"  # console: playwright-core (npm ci)
    exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
"$(dirname "$0")/../tests/browser/install.sh"  # console: playwright-core (npm ci)
