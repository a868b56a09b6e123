#!/usr/bin/env bash
# Fuzz smoke run: every cargo-fuzz target in fuzz/ (docs/fuzzing.md) for
# FUZZ_SECONDS each (default 5) on stable Rust, without a sanitizer. The
# build (about 2 minutes cold on 2 cores: the reader's dependencies come
# with the JSONL and CLI targets) dominates; the runs add about 7 s per
# target. New inputs go to a scratch directory; the committed seed corpora
# in fuzz/corpus/ are only read. A crash fails the stage and leaves the
# input under fuzz/artifacts/TARGET/.
# Long run: FUZZ_SECONDS=3600 bash scripts/ci/60-fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
seconds="${FUZZ_SECONDS:-5}"
cd fuzz
targets=$(cargo fuzz list)
t0=$(date +%s)
cargo fuzz build --sanitizer none
echo "fuzz targets built in $(( $(date +%s) - t0 ))s"
for target in $targets; do
  scratch=$(mktemp -d)
  mkdir -p "corpus/$target"
  log="$scratch.log"
  if ! cargo fuzz run --sanitizer none "$target" "$scratch" "corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $target failed; the crashing input is under fuzz/artifacts/$target/"
    exit 1
  fi
  runs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
  echo "fuzz $target: ${seconds}s, $runs inputs, no failure"
  rm -rf "$scratch" "$log"
done
