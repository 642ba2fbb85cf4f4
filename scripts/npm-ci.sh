#!/bin/sh
# npm-ci.sh DIR - install DIR's npm test tool exactly as its package-lock.json pins it
# (npm ci), unless node_modules already matches the lock. Called by scripts/deps.sh for
# every directory of the project that has a package.json; nothing is vendored.
set -eu
cd "$1"
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    exit 0
fi
echo "deps: npm ci in $1" >&2
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null
