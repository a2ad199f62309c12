#!/usr/bin/env bash
# Puts what the browser tests (internal/web) need where they look for it:
# axe-core from the npm registry in .cache/npm (ROLLCALL_AXE_JS points the
# tests elsewhere), and Debian's Chromium at /usr/bin/chromium (installed
# here only when running as root, as CI does). Without them the browser tests
# skip on a developer's machine and fail in CI (CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
AXE_CORE=4.14.1

if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "browser tools: installing chromium from Debian" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
if [ ! -f .cache/npm/node_modules/axe-core/axe.min.js ] || ! grep -q "\"version\": \"$AXE_CORE\"" .cache/npm/node_modules/axe-core/package.json; then
  if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "browser tools: installing npm from Debian" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm
  fi
  if command -v npm >/dev/null 2>&1; then
    echo "browser tools: installing axe-core $AXE_CORE into .cache/npm" >&2
    mkdir -p .cache/npm
    npm install --prefix .cache/npm --no-audit --no-fund --no-save --ignore-scripts "axe-core@$AXE_CORE" >/dev/null
  fi
fi
