#!/usr/bin/env bash
# Runs the test files of `cargo test ARGS...` without stopping at the first failing one.
#
#   scripts/run-tests.sh NAME ARGS...     e.g. scripts/run-tests.sh e2e --features envoy-tests --test '*'
#
# Builds every test binary once (cargo test --no-run), then runs them TEST_JOBS at a time
# (default 2), the slowest of the last run first, each with its output in .run/tests/NAME/.
# Prints a line per file as it ends (result and seconds), the end of each failed file's
# output, and the failed files; exits non-zero when any failed. TEST_ARGS goes to every
# binary (e.g. TEST_ARGS="--test-threads 1").
set -uo pipefail
cd "$(dirname "$0")/.."
name="$1"
shift
jobs="${TEST_JOBS:-2}"
logs=".run/tests/$name"
durations=".run/tests/$name.durations"
mkdir -p "$logs"
rm -f "$logs"/*

# "label executable" per test binary, from cargo's build messages.
if ! ${CARGO:-cargo} test --no-run --message-format=json-render-diagnostics "$@" \
    | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        # "path+file:///x/core#tollgate-core@0.1.0", or "...#0.1.0" when the name is the directory name.
        where, _, fragment = m["package_id"].partition("#")
        package = fragment.split("@")[0] if "@" in fragment else where.rstrip("/").split("/")[-1]
        target = m["target"]
        print(package + "." + target["kind"][0] + "." + target["name"], m["executable"])
' > "$logs/binaries"; then
  echo "$name: the tests did not build"
  exit 1
fi

# The slowest files of the last run first: two at a time, the run ends sooner.
touch "$durations"
awk -v durations="$durations" '
  BEGIN { while ((getline line < durations) > 0) { split(line, f, " "); seconds[f[1]] = f[2] } }
  { print (($1 in seconds) ? seconds[$1] : 9999), $0 }' "$logs/binaries" \
  | sort -rn | cut -d' ' -f2- > "$logs/order"

run_one() {
  local label="$1" executable="$2" started elapsed
  started=$(date +%s)
  # shellcheck disable=SC2086
  if "$executable" ${TEST_ARGS:-} > "$logs/$label.log" 2>&1; then
    elapsed=$(( $(date +%s) - started ))
    echo "ok     ${elapsed}s $label ($(grep -ho '[0-9]* passed' "$logs/$label.log" | awk '{n += $1} END {print n + 0}') passed)"
  else
    elapsed=$(( $(date +%s) - started ))
    touch "$logs/$label.failed"
    echo "FAILED ${elapsed}s $label"
  fi
  echo "$label $elapsed" >> "$logs/durations"
}
export -f run_one
export logs

started=$(date +%s)
xargs -P "$jobs" -L 1 bash -c 'run_one "$@"' _ < "$logs/order"
elapsed=$(( $(date +%s) - started ))
[ -f "$logs/durations" ] && cp "$logs/durations" "$durations"

failed=$(cd "$logs" && ls -- *.failed 2>/dev/null | sed 's/\.failed$//')
total=$(wc -l < "$logs/order")
# The tests of every file, from cargo's closing lines ("test result: ... N passed; M failed").
tests_passed=$(cat "$logs"/*.log 2>/dev/null | grep -ho '[0-9]* passed;' | awk '{n += $1} END {print n + 0}')
tests_failed=$(cat "$logs"/*.log 2>/dev/null | grep -ho '[0-9]* failed;' | awk '{n += $1} END {print n + 0}')
if [ -n "$failed" ]; then
  for label in $failed; do
    echo
    echo "===== $label (last 40 lines; all of it in $logs/$label.log)"
    tail -n 40 "$logs/$label.log"
  done
  echo
  echo "$name: $(echo "$failed" | wc -l) of $total test files FAILED in ${elapsed}s:"
  echo "$failed" | sed 's/^/  /'
  echo "$name: $tests_passed passed, $tests_failed failed"
  exit 1
fi
echo "$name: all $total test files passed in ${elapsed}s"
echo "$name: $tests_passed passed, $tests_failed failed"
