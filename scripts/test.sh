#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit and integration
# tests, loom models, fuzz smoke runs, browser and Python tests. Installs what
# the stages need. Each stage is a script in scripts/ci/, run in name order;
# `bash scripts/test.sh loom` runs only the stages whose name contains "loom".
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Builds from scratch, as in CI: incremental compilation and release debug
# info only cost time there (set either variable to keep them).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG:-false}"
filter="${1:-}"
start=$(date +%s)
failed=()
for stage in scripts/ci/[0-9]*.sh; do
  name=$(basename "$stage" .sh)
  if [ -n "$filter" ] && [[ "$name" != *"$filter"* ]]; then continue; fi
  t0=$(date +%s)
  echo "=== stage $name"
  if bash "$stage"; then
    echo "=== stage $name passed in $(( $(date +%s) - t0 ))s"
  else
    echo "=== stage $name FAILED after $(( $(date +%s) - t0 ))s"
    failed+=("$name")
  fi
done
echo "=== all stages done in $(( $(date +%s) - start ))s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed stages: ${failed[*]}"
  exit 1
fi
