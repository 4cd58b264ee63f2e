#!/usr/bin/env bash
# scripts/test.sh — what `npm test` runs.
#
#   1. `npm run build` (dist/ is what the integration tests spawn). A failed build counts as one
#      failure and the tests still run, so the log shows everything. DW_TEST_SKIP_BUILD=1 skips it.
#   2. `scripts/test-env.sh up` (the private dockerd + test image; needs root) and its `env` exports
#      (DW_TEST_DOCKER_HOST, ...). A failed `up` counts as one failure; the tests still run.
#   3. One tap run over every test/**/*.test.ts (or the files given as arguments, e.g.
#      `npm test -- test/unit/x.test.ts`), with the tap reporter. Files under test/integration are
#      passed to `--serial test/integration`: tap runs each of them alone, with nothing else in
#      parallel; the other files run in parallel (tap's default jobs = CPUs). The raw TAP goes to
#      stdout and to .tap/test-output.tap.
#   4. A closing line `N passed, N failed, N skipped`, alone on a line. The counts come from tap's own
#      final summary `# { total: T, pass: P, fail: F, todo: D, skip: S }` (test points at every level,
#      plus a point for each test file that crashed); skipped = skip + todo. If that line is missing
#      (tap itself died), the top-level per-file points are counted instead. Build / env failures
#      add to "failed".
# Exit code: 0 only when nothing failed, at least one test point ran, and tap exited 0.
#
# The test environment stays up afterwards (next run starts in ~0.1 s, and other work on the machine
# can use it); DW_TEST_DOWN=1 runs `scripts/test-env.sh down` at the end. `scripts/test-env.sh down`
# stops it by hand.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/.tap/test-output.tap
mkdir -p "$ROOT/.tap"

extra_failed=0
secs() { echo $((${EPOCHREALTIME/./} / 1000)); } # ms
took() { local ms=$(($(secs) - $1)); printf '%d.%01d' $((ms / 1000)) $((ms % 1000 / 100)); }

# A fresh checkout: the one command that runs the tests also installs what they need.
if [[ ! -d node_modules ]]; then
  echo "# test.sh: node_modules missing: scripts/test-env.sh install && npm ci"
  bash "$ROOT/scripts/test-env.sh" install && npm ci --no-audit --no-fund </dev/null || extra_failed=$((extra_failed + 1))
fi

if [[ ${DW_TEST_SKIP_BUILD:-0} != 1 ]]; then
  echo "# test.sh: npm run build"
  t0=$(secs)
  if npm run build; then
    echo "# test.sh: build ok in $(took "$t0") s"
  else
    echo "# test.sh: BUILD FAILED (counted as 1 failure)"
    extra_failed=$((extra_failed + 1))
  fi
fi

echo "# test.sh: scripts/test-env.sh up"
t0=$(secs)
if bash "$ROOT/scripts/test-env.sh" up; then
  echo "# test.sh: test env up in $(took "$t0") s"
  eval "$(bash "$ROOT/scripts/test-env.sh" env)"
else
  echo "# test.sh: TEST ENV FAILED TO START (counted as 1 failure)"
  extra_failed=$((extra_failed + 1))
fi

if (($#)); then
  files=("$@")
else
  mapfile -t files < <(find test -name node_modules -prune -o -type f -name '*.test.ts' -print | LC_ALL=C sort)
fi

tap_rc=0
if ((${#files[@]})); then
  echo "# test.sh: tap over ${#files[@]} file(s); test/integration serially"
  t0=$(secs)
  npx tap --reporter=tap --serial test/integration "${files[@]}" 2>&1 | tee "$OUT"
  tap_rc=${PIPESTATUS[0]}
  echo "# test.sh: tap exited $tap_rc in $(took "$t0") s"
else
  echo "# test.sh: no test files found"
  : >"$OUT"
fi

# tap's final summary, at column 0: "# { total: 11, pass: 10, fail: 1, skip: 0 }" (zero keys omitted)
summary=$(grep -E '^# \{ total: [0-9]+' "$OUT" | tail -n 1 || true)
field() { sed -nE "s/.*[{ ,]$1: ([0-9]+).*/\1/p" <<<"$summary"; }
if [[ -n $summary ]]; then
  total=$(field total)
  passed=$(field pass)
  failed=$(field fail)
  skip=$(field skip) todo=$(field todo)
  skipped=$((${skip:-0} + ${todo:-0}))
else
  # no summary: count the per-file points at the top level
  passed=$(grep -cE '^ok [0-9]+' "$OUT" || true)
  failed=$(grep -cE '^not ok [0-9]+' "$OUT" || true)
  skipped=0
  total=$((passed + failed))
fi
passed=${passed:-0} failed=${failed:-0} skipped=${skipped:-0} total=${total:-0}
# tap failed but counted no failure (crash, timeout of the runner itself): still a failure
if ((tap_rc != 0 && failed == 0)); then failed=1; fi
failed=$((failed + extra_failed))

if [[ ${DW_TEST_DOWN:-0} == 1 ]]; then
  bash "$ROOT/scripts/test-env.sh" down || true
fi

if ((total == 0)); then echo "# test.sh: no test ran"; fi
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0 && total > 0 && tap_rc == 0))
