#!/usr/bin/env bash
# C ABI and Python package: the C example and header checks (a C compiler
# builds against libprofilis_ffi), then the Python extension built with
# maturin into a virtualenv under target/ and its pytest suite (a real Flask
# app and SQLite through SQLAlchemy, sync and async), whose ring
# `profilis-reader --once --jsonl-dir` drains into the JSONL the tests check.
# Installs what it needs; a second run reuses the virtualenv.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
venv="$root/target/py-venv"
requirements="$root/python/requirements-dev.txt"

if ! command -v cc >/dev/null 2>&1; then
  echo "installing a C compiler"
  apt-get update -qq && apt-get install -y -qq gcc >/dev/null
fi
python=$(command -v python3 || true)
if [ -z "$python" ]; then
  echo "python3 is required" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
if ! cmp -s "$requirements" "$venv/.requirements"; then
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/.requirements"
fi

echo "--- C ABI: header, layouts, every function from C, the C example"
cargo test -p profilis-ffi --locked

echo "--- Python extension (maturin develop --release)"
cargo build --locked -q -p profilis-reader
(
  cd python
  export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
  unset CONDA_PREFIX
  maturin develop --release --locked -q
)

echo "--- Python tests"
cd python
PROFILIS_READER="$root/target/debug/profilis-reader" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests
