#!/usr/bin/env bash
# Runs the CTest suite and closes with the line `N passed, M failed`.
set -uo pipefail
build_dir=${1:-build}
jobs=${2:-2}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" 2>&1 | tee "$log"
ctest_status=${PIPESTATUS[0]}
summary=$(grep -E '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1)
if [[ -z "$summary" ]]; then
  echo "run-tests: ctest printed no summary (status $ctest_status)" >&2
  exit 1
fi
failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$summary")
total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$summary")
echo "$((total - failed)) passed, $failed failed"
exit "$ctest_status"
