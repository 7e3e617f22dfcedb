#!/usr/bin/env bash
# web/test.sh — every check of the web client, in order:
#   1. npm ci (pinned dependencies from package-lock.json)
#   2. proto types: web/sdk/src/proto.gen.ts matches proto/*.proto
#   3. bundle staleness: rebuilding the app gives the committed web/dist
#   4. Go: go vet + go test of the web package (the embedded handler)
#   5. the SDK type-checks and builds (tsc → web/sdk/dist)
#   6. SDK unit tests (Vitest)
#   7. end-to-end tests against a real guildhall built from this checkout:
#      the app in headless Chromium, and the SDK from Node
# Prints "N passed, N failed" last and exits non-zero if anything failed.
# Needs Node 20+, Go, and Debian's chromium (CHROMIUM=/path to override).
# UPDATE_SCREENSHOTS=1 writes the e2e screenshots to docs/screenshots.
set -uo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)
passed=0 failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { # step NAME CMD... : runs one pass/fail step
  local name=$1; shift
  echo "== $name"
  if "$@"; then passed=$((passed + 1)); echo "-- ok: $name"; else failed=$((failed + 1)); echo "-- FAILED: $name"; fi
}

# counted runs: add a test runner's own pass/fail counts
count_vitest() {
  local out=$tmp/vitest.json
  node_modules/.bin/vitest run --root . sdk/test --reporter=default --reporter=json --outputFile="$out"
  local rc=$?
  if [ -s "$out" ]; then
    passed=$((passed + $(node -e "console.log(require('$out').numPassedTests)")))
    failed=$((failed + $(node -e "console.log(require('$out').numFailedTests)")))
  else
    failed=$((failed + 1))
  fi
  return $rc
}

count_e2e() {
  local out=$tmp/e2e.tap
  # Node 20 needs the flag for the WebSocket the SDK test uses; later Nodes have it anyway.
  node --experimental-websocket --test --test-concurrency=1 --test-reporter=tap e2e/ 2> >(grep -v ExperimentalWarning >&2) | tee "$out"
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(grep -E '^ok [0-9]+' "$out" | grep -vc '# SKIP'); f=$(grep -cE '^not ok [0-9]+' "$out")
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then failed=$((failed + 1)); fi
  return $rc
}

if ! npm ci --no-audit --no-fund; then
  echo "npm ci failed"; echo "0 passed, 1 failed"; exit 1
fi
step "proto types up to date" node scripts/protogen.mjs --check
step "bundle up to date" node scripts/check-stale.mjs
step "SDK type-checks and builds (tsc)" npm run --silent build:sdk
step "go vet + go test ./web" bash -c "cd '$root' && go vet ./web && go test -count=1 ./web"
echo "== SDK unit tests"; count_vitest
echo "== building guildhall for the browser tests"
if (cd "$root" && go build -o "$tmp/guildhall" ./cmd/guildhall); then
  echo "== browser tests"; GUILDHALL_BIN=$tmp/guildhall count_e2e
else
  failed=$((failed + 1)); echo "-- FAILED: go build ./cmd/guildhall"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
