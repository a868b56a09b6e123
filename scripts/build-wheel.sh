#!/usr/bin/env bash
# Builds the `profilis` Python wheel with `profilis-reader` inside and prints
# its path. The reader is built the one way the scripts build it
# (scripts/build-reader.sh, release) and goes into the wheel's data
# directory as a script, so `pip install` puts it on the virtualenv's PATH
# next to `python`, as tools that ship a native binary in their wheel do.
#
#   bash scripts/build-wheel.sh [OUT_DIR]      # default: $CARGO_TARGET_DIR/wheels
#
# Needs maturin on PATH (`pip install -r python/requirements-dev.txt`, or
# `pip install maturin`). The wheel is for this machine's CPython version
# and Linux; build it once per Python version to ship it to others.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target="${CARGO_TARGET_DIR:-$root/target}"
out="${1:-$target/wheels}"
if ! command -v maturin >/dev/null 2>&1; then
  echo "maturin is needed: pip install -r python/requirements-dev.txt (or pip install maturin)" >&2
  exit 1
fi
reader=$(bash scripts/build-reader.sh)
data="$root/python/wheel-data/scripts"
rm -rf "$root/python/wheel-data"
mkdir -p "$data"
cp "$reader" "$data/profilis-reader"
# Symbols are for profiling Profilis itself; a shipped binary goes without
# them (about 9 MB instead of 11).
if command -v strip >/dev/null 2>&1; then
  strip "$data/profilis-reader"
fi
mkdir -p "$out"
rm -f "$out"/profilis-*.whl
(cd python && maturin build --release --locked -q -o "$out" >&2)
ls "$out"/profilis-*.whl
