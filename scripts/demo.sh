#!/usr/bin/env bash
# The README's first command: jwtguard at work on this machine, with no identity-provider account and no Docker.
#   bash scripts/demo.sh           start a local issuer and sample_site (gunicorn, 4 workers), call it with good and
#                                  bad tokens, print every answer and the issuer's JWKS count, stop everything
#   bash scripts/demo.sh --serve   the same servers, left running until Ctrl-C, with the commands to call them
# Everything listens on 127.0.0.1 on free ports; scripts/demo.py stops what it started, on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python scripts/demo.py "$@"
