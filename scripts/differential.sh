#!/usr/bin/env bash
# Builds the module at git revision $1 (in .run/base, a worktree of its own with its own
# target directory) and compares it with the module built from the working tree: every row
# of the hostile-input table and mutations of each, through two Envoys
# (tests/e2e_module_differential.rs).
set -euo pipefail
base=${1:?usage: scripts/differential.sh <git revision>}
root=$(git rev-parse --show-toplevel)
cd "$root"
tree=.run/base
rev=$(git rev-parse --verify "$base^{commit}")
if [ -d "$tree" ]; then
  git -C "$tree" checkout --quiet --detach "$rev"
else
  git worktree add --quiet --detach "$tree" "$rev"
fi
(cd "$tree" && ${CARGO:-cargo} build --quiet --release --target wasm32-wasip1 --lib \
  --target-dir "$root/.run/base-target")
baseline="$root/.run/base-target/wasm32-wasip1/release/tollgate.wasm"
echo "baseline: $base ($rev), $(stat -c %s "$baseline") bytes"
exec ${CARGO:-cargo} test --features envoy-tests --test e2e_module_differential -- --ignored --nocapture
