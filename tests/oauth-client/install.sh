#!/bin/sh
# install.sh - install the pinned Node OAuth2 client of test_oauth.py (package-lock.json)
# into tests/oauth-client/node_modules. Called by scripts/deps.sh once Node is present.
set -eu
cd "$(dirname "$0")"
[ -d node_modules/oauth4webapi ] && exit 0
npm ci --no-audit --no-fund
