#!/bin/sh
# install.sh - install the pinned OpenAPI validator (@redocly/cli, package-lock.json) into
# tools/openapi/node_modules for tests/integration/test_openapi.py. Called by
# scripts/deps.sh; idempotent (does nothing when the installed tree matches the lock).
# Needs node >= 18.17 and npm: Debian's nodejs and npm packages when none is installed.
set -eu
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "deps: installing nodejs npm" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ -x node_modules/.bin/redocly ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    exit 0
fi
echo "deps: npm ci in tools/openapi" >&2
npm ci --no-audit --no-fund --loglevel=error >/dev/null
