#!/usr/bin/env bash
# The supported ground, pair by pair (each in its own reusable venv, see scripts/venv.sh):
#   - the whole suite on the newest pair (Python 3.13 + Django 6.1) and on Python 3.11 + Django 5.2 LTS;
#   - the fast suite (-m "not slow", fewer property examples) on every other (Python, Django major) pair, and on
#     Django 6.0; the oldest pair (Python 3.10 + Django 4.2) on the lowest dependency versions pyproject.toml admits;
#   - the fast suite against the built wheel installed in a clean venv (scripts/test-wheel.sh).
# Every pair runs even when one fails; the closing lines say which pairs ran and how each went, and the exit
# status is non-zero if any failed or could not run (a missing Python is named, never skipped in silence).
# The whole-suite pairs run alone; the fast pairs and the wheel run JWTGUARD_JOBS (default 2) at a time.
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

run_pair() {  # run_pair N PAIR ARGS...: one pair, its output in $logs/N.log, its label and exit status beside it
  local n=$1 pair=$2 py django suite flavour venv versions status=0
  shift 2
  if [ "$pair" = wheel ]; then
    bash scripts/test-wheel.sh "$@" >"$logs/$n.log" 2>&1 || status=$?
    versions=$(grep -Eo 'wheel jwtguard-[^ ]+ on Python [0-9.]+ \+ Django [0-9.]+' "$logs/$n.log" | tail -n 1)
    echo "${versions:-the wheel}, fast suite" >"$logs/$n.label"
    echo "$status" >"$logs/$n.status"
    return
  fi
  IFS=: read -r py django suite flavour <<<"$pair"
  echo "Python $py + Django $django${flavour:+ ($flavour dependencies)}, ${suite/full/whole} suite" >"$logs/$n.label"
  if ! venv=$(bash scripts/venv.sh "$py" "$django" "${flavour:-newest}" 2>"$logs/$n.log"); then
    echo 1 >"$logs/$n.status"
    return
  fi
  versions=$("$venv/bin/python" -c 'import sys, django; print(f"Python {sys.version.split()[0]} + Django {django.get_version()}")')
  echo "$versions${flavour:+ ($flavour dependencies)}, ${suite/full/whole} suite" >"$logs/$n.label"
  echo "== ${suite/full/whole} suite: $versions${flavour:+ ($flavour dependencies)}" >>"$logs/$n.log"
  if [ "$suite" = full ]; then
    "$venv/bin/python" -m pytest -p no:cacheprovider "$@" >>"$logs/$n.log" 2>&1 || status=$?
  else
    JWTGUARD_PROPERTY_EXAMPLES=${JWTGUARD_PROPERTY_EXAMPLES:-300} \
      "$venv/bin/python" -m pytest -m "not slow" -p no:cacheprovider "$@" >>"$logs/$n.log" 2>&1 || status=$?
  fi
  echo "$status" >"$logs/$n.status"
}

# The whole-suite pairs one at a time, alone on the machine (their multi-process tests measure fetch counts
# and timings); then the fast pairs and the wheel, JWTGUARD_JOBS at a time (2: one pytest process per core).
jobs=${JWTGUARD_JOBS:-2}
n=0
order=()
for pair in $pairs; do
  n=$((n + 1))
  order+=("$n")
  case $pair in
    *:full*)
      echo "== $pair" >&2
      run_pair "$n" "$pair" "$@"
      cat "$logs/$n.log"
      ;;
    *)
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
      echo "== $pair (in the background, its output follows when it ends)" >&2
      ( run_pair "$n" "$pair" "$@"; cat "$logs/$n.log" ) &
      ;;
  esac
done
wait

for n in "${order[@]}"; do
  record "$(cat "$logs/$n.label")" "$logs/$n.log" "$(cat "$logs/$n.status" 2>/dev/null || echo 1)"
done

echo
echo "== supported ground: what ran"
printf '   %s\n' "${summary[@]}"
echo "matrix: $total_passed passed, $total_failed failed, $total_skipped skipped"
[ "$failed_pairs" -eq 0 ]
