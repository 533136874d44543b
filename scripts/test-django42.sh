#!/usr/bin/env bash
# The suite on the oldest supported Django (4.2 LTS), in a venv of its own (.venv-dj42); slow tests are
# left to the main run on Django 5.2 to keep CI fast. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
venv=.venv-dj42
stamp=$venv/.jwtguard-installed
if [ ! -x "$venv/bin/python" ]; then
  "$PYTHON" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e '.[dev]' 'Django>=4.2,<5.0'
  touch "$stamp"
fi
"$venv/bin/python" -c 'import django, sys; print("== pytest on Django", django.get_version(), file=sys.stderr); assert django.VERSION[:2] == (4, 2)'
export JWTGUARD_REQUIRE_REDIS=1
"$venv/bin/python" -m pytest -m "not slow" -p no:cacheprovider "$@"
