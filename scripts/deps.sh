#!/bin/sh
# deps.sh - install what keyward needs to build, test and benchmark: Debian packages, then
# the npm test tools, each pinned by its own package-lock.json (scripts/npm-ci.sh).
# Idempotent: does nothing when everything is present. Uses sudo when not root.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKGS="build-essential pkg-config ca-certificates curl python3 sqlite3 clang libclang-rt-14-dev
 libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev zlib1g-dev libcurl4-openssl-dev
 nginx wrk clang-format
 python3-aiosmtpd"
PKGS="$PKGS prometheus"  # promtool: checks deploy/prometheus rules and a live /metrics scrape
PKGS="$PKGS systemd"  # systemd-socket-activate, systemd-analyze: restart tests, unit checks
PKGS="$PKGS python3-yaml"  # docs/openapi.yaml -> JSON at build time (scripts/openapi-json.py)
PKGS="$PKGS man-db groff-base zsh"  # test_install.py: man -l, zsh completion
PKGS="$PKGS python3-requests-oauthlib"  # test_oauth.py: a standard OAuth2 client
PKGS="$PKGS postgresql libpq-dev"  # PostgreSQL store backend (libpq) and the test cluster (scripts/pg.sh)
PKGS="$PKGS chromium"  # test_console.py: tests/browser drives Debian's Chromium (playwright-core)
# npm test tools (their own package.json / package-lock.json)
NPM_DIRS="tools/openapi tests/oauth-client tests/browser tests/oidc"

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js and npm: Debian's, unless a node and npm are already installed.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
    echo "deps: installing$missing" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
for d in $NPM_DIRS; do
    sh "$ROOT/scripts/npm-ci.sh" "$ROOT/$d"
done
