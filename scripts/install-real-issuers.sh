#!/usr/bin/env bash
# Installs the real token issuers tests/test_real_issuers.py runs against (panva's oidc-provider, from
# tests/real_issuers/package-lock.json) into tests/real_issuers/node_modules. Idempotent: when the lock file
# is the one last installed it returns at once, without asking the registry anything.
# Authlib, the other real issuer, is a Python package of the dev extra (scripts/bootstrap.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/../tests/real_issuers"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  # The same rule as the tests': without node they skip, unless the run must have the real issuers; then
  # Debian's packages are tried, as scripts/ensure-redis.sh does for redis-server.
  if [ "${JWTGUARD_REQUIRE_REAL_ISSUERS:-}" != "1" ]; then
    echo "install-real-issuers: no node/npm here; the real-issuer tests will skip" >&2
    exit 0
  fi
  if command -v apt-get >/dev/null; then
    echo "install-real-issuers: node/npm not found: installing Debian's nodejs and npm" >&2
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq && timeout 600 apt-get install -y -qq nodejs npm >/dev/null
  fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "install-real-issuers: JWTGUARD_REQUIRE_REAL_ISSUERS=1 but node and npm (Node.js 20 or later) are missing" >&2
    exit 1
  fi
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "install-real-issuers: oidc-provider 9 needs Node.js 20 or later; this is $(node --version)" >&2
  [ "${JWTGUARD_REQUIRE_REAL_ISSUERS:-}" = "1" ] && exit 1
  exit 0
fi
# The lock file's digest, stored after a successful install: the same digest means node_modules already holds
# exactly what the lock file says.
stamp=node_modules/.jwtguard-lock.sha256
digest=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
  exit 0
fi
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
echo "$digest" > "$stamp"
