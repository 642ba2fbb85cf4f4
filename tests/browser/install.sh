#!/bin/sh
# install.sh - install the browser tests' npm packages (playwright-core, pinned in
# package-lock.json) into tests/browser/node_modules. Called by scripts/deps.sh; needs
# node and npm (Debian's). The browser is Debian's chromium; nothing is downloaded for it.
set -eu
cd "$(dirname "$0")"
if [ -f node_modules/playwright-core/package.json ] &&
    [ "$(node -p 'require("./node_modules/playwright-core/package.json").version')" = \
      "$(node -p 'require("./package-lock.json").packages["node_modules/playwright-core"].version')" ]; then
    exit 0
fi
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts >/dev/null
