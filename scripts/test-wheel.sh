#!/usr/bin/env bash
# Tests what users install, not the source tree:
#   1. builds the sdist and the wheel (python -m build) and checks them (twine check --strict);
#   2. the wheel must hold every file git tracks under jwtguard/ (py.typed, the pytest plugin, any template);
#   3. a clean Python 3.13 venv gets the newest Django, DRF and django-redis first, then the wheel with
#      [drf,redis]: Django must stay where it was (installing jwtguard never moves a user's Django);
#   4. the fast suite runs from a copy of the repository without jwtguard/, so every import is the installed one.
# Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${JWTGUARD_WHEEL_PYTHON:-3.13}
root=$(pwd)

echo "== building the sdist and the wheel" >&2
rm -rf dist
.venv/bin/python -m build --outdir dist . >/dev/null
.venv/bin/python -m twine check --strict dist/*
wheel=$(ls dist/jwtguard-*.whl)
.venv/bin/python - "$wheel" <<'PY'
import subprocess, sys, zipfile
tracked = set(subprocess.run(["git", "ls-files", "jwtguard"], capture_output=True, text=True, check=True).stdout.split())
shipped = set(zipfile.ZipFile(sys.argv[1]).namelist())
missing = sorted(tracked - shipped)
if missing:
    sys.exit(f"the wheel lacks files git tracks under jwtguard/: {missing}")
entry_points = next(name for name in shipped if name.endswith(".dist-info/entry_points.txt"))
if "jwtguard.testing.pytest_plugin" not in zipfile.ZipFile(sys.argv[1]).read(entry_points).decode():
    sys.exit("the wheel does not register the pytest plugin (pytest11 entry point)")
print(f"{sys.argv[1]}: all {len(tracked)} tracked package files are in it, and the pytest plugin entry point")
PY

venv=.venvs/wheel-py$PY
rm -rf "$venv"
python=$(bash scripts/venv.sh --find-python "$PY")
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip >/dev/null 2>&1
log=$venv/pip-install.log
echo "== a user's venv: the newest Django, DRF and django-redis, then the wheel with [drf,redis]" >&2
"${pip[@]}" Django djangorestframework django-redis >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
before=$("$venv/bin/python" -c 'import django; print(django.get_version())')
"${pip[@]}" "$wheel[drf,redis]" >>"$log" 2>&1 || { cat "$log" >&2; exit 1; }
after=$("$venv/bin/python" -c 'import django; print(django.get_version())')
if [ "$before" != "$after" ]; then
  echo "installing jwtguard moved Django from $before to $after" >&2
  exit 1
fi
echo "Django $before stayed where it was" >&2
# The test tools, from the same wheel's dev extra (jwtguard itself is already installed from the wheel).
"${pip[@]}" "$wheel[dev]" >>"$log" 2>&1 || { cat "$log" >&2; exit 1; }

copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
git ls-files -z --cached --others --exclude-standard | grep -zv '^jwtguard/' | xargs -0 cp --parents -t "$copy"
version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("jwtguard"))')
echo "== fast suite: wheel jwtguard-$version on Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())') + Django $after" >&2
cd "$copy"
JWTGUARD_TEST_INSTALLED=1 JWTGUARD_REQUIRE_REDIS=1 JWTGUARD_PROPERTY_EXAMPLES=${JWTGUARD_PROPERTY_EXAMPLES:-300} \
  "$root/$venv/bin/python" -m pytest -m "not slow" -p no:cacheprovider "$@"
