#!/usr/bin/env bash
# C ABI and Python package: the C example and header checks (a C compiler
# builds against libprofilis_ffi), then the `profilis` wheel (the extension
# and profilis-reader inside, scripts/build-wheel.sh) installed into a
# virtualenv under the target directory and the pytest suite run against
# that installation (a real Flask app and SQLite through SQLAlchemy, sync
# and async; the wheel's profilis-reader drains the ring into the JSONL the
# tests check); last, the wheel alone in a fresh virtualenv, as a user
# installs it. Installs what it needs; a second run reuses the virtualenv.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/py-venv"
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

echo "--- Python: the wheel (scripts/build-wheel.sh), installed into $venv"
wheel=$(VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" bash scripts/build-wheel.sh)
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel"

echo "--- Python tests, against the installed wheel"
# The venv's pytest, not `python -m pytest`: the source tree stays off
# sys.path, so the tests import the installed package.
(cd python && PROFILIS_READER="$venv/bin/profilis-reader" "$venv/bin/pytest" -p no:cacheprovider tests)

echo "--- the wheel alone in a fresh virtualenv"
fresh="$target/py-wheel-check"
rm -rf "$fresh"
"$python" -m venv "$fresh"
"$fresh/bin/pip" install -q --disable-pip-version-check --no-index "$wheel"
scratch=$(mktemp -d)
(cd "$scratch" && "$fresh/bin/python" "$root/python/tests/wheel/check_installed.py")
rm -rf "$scratch" "$fresh"
