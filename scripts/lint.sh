#!/usr/bin/env bash
# Static checks, as CI runs them: ruff lint and ruff format (no rewriting) over every Python file of the
# repository (exclusions in pyproject.toml's [tool.ruff]), mypy strict (config in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff check" >&2
.venv/bin/ruff check .
echo "== ruff format --check" >&2
.venv/bin/ruff format --check .
echo "== mypy (strict)" >&2
.venv/bin/mypy
