#!/usr/bin/env bash
# scripts/bench/run-all.sh — every benchmark, one after the other (scripts/bench/README.md).
#
#   bash scripts/bench/run-all.sh                      build, test env up, all five benches
#   bash scripts/bench/run-all.sh scale daemon-rss     only these
#
# Needs root. Runs `npm run build` first (DW_BENCH_SKIP_BUILD=1 skips it) and `scripts/test-env.sh up`.
# Each bench prints readable lines and one final JSON line `{"bench": NAME, ...}`; the JSON lines are
# repeated together at the end. Exit 0 when every bench ran (whatever its targets say), else the
# first non-zero exit code (1 failed/broken, 3 refused to run, 124 over its time limit).
# DW_BENCH_WAIT_SECONDS=N lets each bench wait up to N s for running integration tests or daemons to end.
set -uo pipefail

cd "$(dirname "$0")/../.."
readonly ALL=(enforce-latency exposure-window scale daemon-rss startup kill-latency alerts relabel bridge-throughput event-lines policy-parse path-probe gate signatures flush-repair)
readonly LOADER=@isaacs/ts-node-temp-fork-for-pr-2009/import
# Each bench stops itself (and cleans up) after ~170 s of work; this is the backstop, plus the wait.
readonly BACKSTOP=$((200 + ${DW_BENCH_WAIT_SECONDS:-0}))

[[ $(id -u) -eq 0 ]] || { echo "run-all: must run as root" >&2; exit 3; }

benches=("$@")
((${#benches[@]})) || benches=("${ALL[@]}")
for b in "${benches[@]}"; do
  [[ -f scripts/bench/$b.ts ]] || { echo "run-all: no bench named $b (have: ${ALL[*]})" >&2; exit 2; }
done

if [[ ${DW_BENCH_SKIP_BUILD:-0} != 1 ]]; then
  echo "# run-all: npm run build"
  npm run build --silent || { echo "run-all: build failed" >&2; exit 1; }
fi
bash scripts/test-env.sh up || { echo "run-all: test environment did not come up" >&2; exit 3; }
eval "$(bash scripts/test-env.sh env)"

json=$(mktemp /tmp/dw-bench-json.XXXXXX)
trap 'rm -f "$json"' EXIT
first_rc=0
for b in "${benches[@]}"; do
  echo "# === $b ($(date -Is))"
  timeout --signal=TERM --kill-after=20 "$BACKSTOP" node --import "$LOADER" "scripts/bench/$b.ts" | tee >(grep '^{"bench":' >>"$json")
  rc=${PIPESTATUS[0]}
  echo "# === $b: exit $rc"
  ((rc != 0 && first_rc == 0)) && first_rc=$rc
done
sleep 0.2 # let the tee'd grep finish writing
echo "# run-all: results (one JSON line per bench)"
cat "$json"
exit "$first_rc"
