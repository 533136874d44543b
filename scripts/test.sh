#!/usr/bin/env bash
# The test command (README and .ci/run both call this): set-up, a real Redis, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/ensure-redis.sh
export JWTGUARD_REQUIRE_REDIS=1
.venv/bin/python -m pytest "$@"
