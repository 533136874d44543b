#!/usr/bin/env bash
# Static checks, as CI runs them: ruff lint, ruff format (no rewriting), mypy strict (config in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff check" >&2
.venv/bin/ruff check jwtguard tests docs/conf.py
echo "== ruff format --check" >&2
.venv/bin/ruff format --check jwtguard tests docs/conf.py
echo "== mypy (strict)" >&2
.venv/bin/mypy
