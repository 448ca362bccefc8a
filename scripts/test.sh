#!/usr/bin/env bash
# The whole test suite, as CI runs it: peers, install, build, typecheck, lint, unit, integration, e2e.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run -s build
npm run -s typecheck
npm run -s lint
node scripts/run-tests.mjs unit integration e2e
