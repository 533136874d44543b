#!/usr/bin/env bash
# The test command (README and .ci/run both call this): set-up, lint and types, the docs, a real Redis, then
# the whole suite on Django 5.2 (.venv) and the fast suite on Django 4.2 (.venv-dj42). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/lint.sh
bash scripts/docs.sh
bash scripts/ensure-redis.sh
bash scripts/validate-compose.sh
export JWTGUARD_REQUIRE_REDIS=1
.venv/bin/python -m pytest "$@"
bash scripts/test-django42.sh "$@"
