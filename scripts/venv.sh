#!/usr/bin/env bash
# Prints the path of a ready virtualenv for one supported pair, creating or updating it first:
#   bash scripts/venv.sh PYTHON DJANGO [lowest]      e.g.  bash scripts/venv.sh 3.13 6.1
# The venv lives in .venvs/py<PYTHON>-dj<DJANGO>[-lowest] and is reused between runs: it is rebuilt only when
# pyproject.toml's [project] table or this script changes. It holds jwtguard (editable) with its dev extra and the newest Django of
# that series; "lowest" pins every dependency to the lowest version pyproject.toml admits (proves the floors).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --find-python ]; then  # bash scripts/venv.sh --find-python 3.13: that interpreter's path
  py=$2
else
  py=$1 django=$2 flavour=${3:-newest}
fi

find_python() {
  local candidate
  for candidate in "python$py" "$(pyenv root 2>/dev/null)/versions/$py"*/bin/"python$py" /usr/local/bin/"python$py" \
    /usr/bin/"python$py"; do
    if "$candidate" -c 'import sys, venv; assert sys.version_info[:2] == tuple(map(int, sys.argv[1].split(".")))' "$py" \
      >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

missing_python() {
  cat >&2 <<MSG
Python $py is not installed, and the supported ground includes it (README, Development).
Install it, for example with pyenv:   pyenv install $py   (or Debian/Ubuntu: apt-get install python$py-venv)
then run the test command again. No pair is skipped silently.
MSG
  exit 3
}

if [ "${1:-}" = --find-python ]; then
  find_python || missing_python
  exit 0
fi

name="py$py-dj$django"
[ "$flavour" = lowest ] && name="$name-lowest"
venv=.venvs/$name
stamp=$venv/.jwtguard-installed
# What the venv is built from: pyproject.toml's [project] table (not the tool settings below it) and this script.
want=$( (sed -n '/^\[project\]/,/^\[tool\./p' pyproject.toml; cat scripts/venv.sh) | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  echo "$venv"
  exit 0
fi
python=$(find_python) || missing_python
echo "== creating $venv with $python (Django $django, $flavour dependencies)" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1
pins=("Django~=$django.0")
if [ "$flavour" = lowest ]; then
  # The floors pyproject.toml states, each pinned: if one of them stops working, this venv's run fails.
  pins+=($("$venv/bin/python" scripts/lowest_requirements.py))
fi
log=$venv/pip-install.log
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]' "${pins[@]}" >"$log" 2>&1; then
  grep -v "^WARNING: Location 'file:" "$log" >&2
  echo "pip could not install the dependencies of $venv (log: $log)" >&2
  exit 1
fi
"$venv/bin/python" - "$django" <<'PY'
import sys
import django
assert django.get_version().startswith(sys.argv[1] + "."), (django.get_version(), sys.argv[1])
PY
echo "$want" >"$stamp"
echo "$venv"
