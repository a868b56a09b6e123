#!/usr/bin/env bash
# Fuzz smoke run: every cargo-fuzz target for FUZZ_SECONDS (default 15) on
# stable Rust, without a sanitizer. New inputs go to a scratch directory; the
# committed seed corpora in fuzz/corpus/ are read only.
# Long run: FUZZ_SECONDS=3600 bash scripts/ci/60-fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
seconds="${FUZZ_SECONDS:-15}"
cd fuzz
targets=$(cargo fuzz list)
cargo fuzz build --sanitizer none
for target in $targets; do
  scratch=$(mktemp -d)
  mkdir -p "corpus/$target"
  echo "fuzz $target for ${seconds}s"
  log="$scratch.log"
  if ! cargo fuzz run --sanitizer none "$target" "$scratch" "corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $target failed; the crashing input is under fuzz/artifacts/$target/"
    exit 1
  fi
  grep -E "stat::number_of_executed_units" "$log" || true
  rm -rf "$scratch" "$log"
done
