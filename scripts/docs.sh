#!/usr/bin/env bash
# Builds the documentation site with warnings as errors (-W): a broken link or toctree fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== docs (sphinx -W)" >&2
rm -rf docs/_build/html
.venv/bin/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
echo "docs built in docs/_build/html" >&2
