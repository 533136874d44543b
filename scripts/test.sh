#!/usr/bin/env bash
# The test command (README and .ci/run both call this): set-up, lint and types, the docs, a real Redis, the
# compose file, then the supported ground (scripts/matrix.sh): the whole suite on Python 3.13 + Django 6.1 and on
# Python 3.11 + Django 5.2, the fast suite on every other (Python, Django major) pair and on Django 6.0, the
# oldest pair on the lowest dependency versions, and the fast suite against the built wheel; the slow tests of
# the whole-suite pairs include two real, independent issuers (oidc-provider, Authlib). Arguments go to
# every pytest run; JWTGUARD_PAIRS narrows the matrix (see scripts/matrix.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# The test command needs every real part: a missing Redis or real issuer fails the run rather than skipping.
export JWTGUARD_REQUIRE_REDIS=1 JWTGUARD_REQUIRE_REAL_ISSUERS=1
bash scripts/bootstrap.sh
bash scripts/install-real-issuers.sh
bash scripts/lint.sh
bash scripts/docs.sh
bash scripts/ensure-redis.sh
bash scripts/validate-compose.sh
bash scripts/matrix.sh "$@"
