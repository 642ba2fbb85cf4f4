#!/bin/sh
# deps.sh - install the Debian packages keyward needs to build, test and benchmark.
# Idempotent: does nothing when everything is present. Uses sudo when not root.
set -eu
PKGS="build-essential pkg-config ca-certificates curl python3 sqlite3 clang libclang-rt-14-dev
 libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev zlib1g-dev libcurl4-openssl-dev
 nginx wrk clang-format
 python3-aiosmtpd"
PKGS="$PKGS prometheus"  # promtool: checks deploy/prometheus rules and a live /metrics scrape
PKGS="$PKGS systemd"  # systemd-socket-activate: socket-activation restart tests and bench
PKGS="$PKGS python3-yaml"  # opkit: docs/openapi.yaml -> JSON at build time (scripts/openapi-json.py)
PKGS="$PKGS systemd man-db groff-base zsh"  # opkit: systemd-analyze verify, man -l, zsh -n in test_install.py
# opkit: the pinned OpenAPI validator (its own package.json / package-lock.json)
"$(dirname "$0")/../tools/openapi/install.sh"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
