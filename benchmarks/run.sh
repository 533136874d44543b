#!/usr/bin/env bash
# The benchmark entry point: installs what it needs (the `bench` extra, a Redis on 127.0.0.1:6379, wrk),
# then runs `python -m benchmarks` with the arguments given (try --help, or --quick for a smoke run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if ! .venv/bin/python -c "import gunicorn, rest_framework_simplejwt" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet -e '.[bench]'
fi
bash scripts/ensure-redis.sh
if ! command -v wrk >/dev/null 2>&1; then
  echo "wrk not found: installing it with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq wrk >/dev/null) || echo "could not install wrk: the load benchmark will be skipped" >&2
fi
exec .venv/bin/python -m benchmarks "$@"
