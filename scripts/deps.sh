#!/bin/sh
# deps.sh - install the Debian packages keyward needs to build, test and benchmark.
# Idempotent: does nothing when everything is present. Uses sudo when not root.
set -eu
PKGS="build-essential pkg-config ca-certificates curl python3 sqlite3 clang libclang-rt-14-dev
 libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev zlib1g-dev libcurl4-openssl-dev
 nginx wrk clang-format
 python3-aiosmtpd"
PKGS="$PKGS nodejs"  # watched: oidc-provider interop test (tests/oidc; npm comes with it here)
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# watched: the interop test's npm packages, once Node is there (tests/oidc/install.sh)
oidc_npm() { "$(dirname "$0")/../tests/oidc/install.sh"; }
[ -z "$missing" ] && { oidc_npm; exit 0; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
oidc_npm
