#!/usr/bin/env bash
# `make test` N times in a row (default 10) from one fresh clone of this checkout's HEAD, while
# two CPU-bound busy loops run beside it, as on a busy two-core machine. Prints a line per run
# and a summary; exits 0 only when every run passed. The loops are bounded (they end by
# themselves after RUNS x 15 minutes) and are stopped, by their PIDs, when the script ends.
# The environment is passed on: export LINKGEN_TEST_DATABASE_URL (and the LINKGEN_TEST_REQUIRE_*
# variables .ci/run sets) to run the PostgreSQL and browser halves too.
set -u
runs=${1:-10}
src=$(git rev-parse --show-toplevel)
work=$(mktemp -d /tmp/linkgen-repeat.XXXXXX)
git clone -q "$src" "$work/clone"

busy_loop() {
  local end=$((SECONDS + $1))
  while [ "$SECONDS" -lt "$end" ]; do :; done
}
busy_loop $((runs * 900)) &
loop1=$!
busy_loop $((runs * 900)) &
loop2=$!
trap 'kill "$loop1" "$loop2" 2>/dev/null; wait "$loop1" "$loop2" 2>/dev/null' EXIT

passed=0
for i in $(seq 1 "$runs"); do
  began=$SECONDS
  if (cd "$work/clone" && make test >"$work/run-$i.log" 2>&1); then
    passed=$((passed + 1))
    outcome=passed
  else
    outcome=FAILED
  fi
  summary=$(grep -E '(passed|failed|error)' "$work/run-$i.log" | tail -n 1)
  echo "run $i: $outcome in $((SECONDS - began)) s: $summary"
done
echo "$passed of $runs runs of make test passed beside two busy loops (logs: $work)"
[ "$passed" -eq "$runs" ]
