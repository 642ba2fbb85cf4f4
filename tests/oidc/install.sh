#!/bin/sh
# install.sh - npm packages of the oidc-provider interop test (tests/oidc), exactly as
# package-lock.json pins them. Called by scripts/deps.sh; skipped without npm.
set -eu
cd "$(dirname "$0")"
command -v npm >/dev/null 2>&1 || { echo "oidc: npm not found; skipping" >&2; exit 0; }
[ -d node_modules/oidc-provider ] && exit 0
npm ci --no-audit --no-fund >/dev/null
