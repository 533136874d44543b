#!/usr/bin/env bash
# The supported ground, pair by pair (each in its own reusable venv, see scripts/venv.sh):
#   - the whole suite on the newest pair (Python 3.13 + Django 6.1) and on Python 3.11 + Django 5.2 LTS;
#   - the fast suite (-m "not slow", fewer property examples) on every other (Python, Django major) pair, and on
#     Django 6.0; the oldest pair (Python 3.10 + Django 4.2) on the lowest dependency versions pyproject.toml admits;
#   - the fast suite against the built wheel installed in a clean venv (scripts/test-wheel.sh).
# Every pair runs even when one fails; the closing lines say which pairs ran and how each went, and the exit
# status is non-zero if any failed or could not run (a missing Python is named, never skipped in silence).
# JWTGUARD_PAIRS="3.13:6.1:full 3.10:4.2:fast:lowest" runs only those. Arguments go to every pytest run.
set -uo pipefail
cd "$(dirname "$0")/.."

DEFAULT_PAIRS="3.13:6.1:full 3.11:5.2:full 3.10:4.2:fast:lowest 3.10:5.2:fast 3.11:4.2:fast 3.12:4.2:fast
3.12:5.2:fast 3.12:6.0:fast 3.13:4.2:fast 3.13:5.2:fast wheel"
pairs=${JWTGUARD_PAIRS:-$DEFAULT_PAIRS}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
export JWTGUARD_REQUIRE_REDIS=1
summary=()
failed_pairs=0
total_passed=0 total_failed=0 total_skipped=0

count() { grep -Eo "[0-9]+ $1" <<<"$2" | tail -n 1 | grep -Eo "^[0-9]+" || echo 0; }

record() {  # record LABEL LOG STATUS
  local label=$1 log=$2 status=$3 last passed failed errors skipped
  last=$(grep -E "^(=+ )?[0-9]+ (passed|failed|error)" "$log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')
  passed=$(count passed "$last") failed=$(count failed "$last") errors=$(count error "$last")
  skipped=$(count skipped "$last")
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed + errors))
  total_skipped=$((total_skipped + skipped))
  if [ "$status" -ne 0 ] || [ -z "$last" ]; then
    failed_pairs=$((failed_pairs + 1))
    [ -z "$last" ] && total_failed=$((total_failed + 1)) && last="did not run (exit $status)"
    summary+=("FAIL  $label: $last")
  else
    summary+=("ok    $label: $last")
  fi
}

for pair in $pairs; do
  if [ "$pair" = wheel ]; then
    log=$logs/wheel.log
    bash scripts/test-wheel.sh "$@" 2>&1 | tee "$log"
    record "$(grep -Eo 'wheel jwtguard-[^ ]+ on Python [0-9.]+ \+ Django [0-9.]+' "$log" | tail -n 1 || echo wheel), fast suite" \
      "$log" "${PIPESTATUS[0]}"
    continue
  fi
  IFS=: read -r py django suite flavour <<<"$pair"
  label="Python $py + Django $django${flavour:+ ($flavour dependencies)}"
  log=$logs/$py-$django.log
  if ! venv=$(bash scripts/venv.sh "$py" "$django" "${flavour:-newest}" 2>"$log.setup"); then
    cat "$log.setup" >&2
    cp "$log.setup" "$log"
    record "$label" "$log" 1
    continue
  fi
  cat "$log.setup" >&2
  versions=$("$venv/bin/python" -c 'import sys, django; print(f"Python {sys.version.split()[0]} + Django {django.get_version()}")')
  if [ "$suite" = full ]; then
    echo "== whole suite: $versions" >&2
    "$venv/bin/python" -m pytest -p no:cacheprovider "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
  else
    echo "== fast suite: $versions${flavour:+ ($flavour dependencies)}" >&2
    JWTGUARD_PROPERTY_EXAMPLES=${JWTGUARD_PROPERTY_EXAMPLES:-300} \
      "$venv/bin/python" -m pytest -m "not slow" -p no:cacheprovider "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
  fi
  record "$versions${flavour:+ ($flavour dependencies)}, ${suite/full/whole} suite" "$log" "$status"
done

echo
echo "== supported ground: what ran"
printf '   %s\n' "${summary[@]}"
echo "matrix: $total_passed passed, $total_failed failed, $total_skipped skipped"
[ "$failed_pairs" -eq 0 ]
