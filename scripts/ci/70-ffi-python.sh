#!/usr/bin/env bash
# C ABI and Python package: the C example and header checks (a C compiler
# builds against libprofilis_ffi), then the `profilis` wheel (the extension
# and profilis-reader inside, scripts/build-wheel.sh) installed into a
# virtualenv under the target directory and the pytest suite run against
# that installation (a real Flask app and SQLite through SQLAlchemy, sync
# and async; the wheel's profilis-reader drains the ring into the JSONL the
# tests check; the classic API's example app under Werkzeug and under
# gunicorn with 4 workers, with its reader sidecar, and its mounted
# dashboard in headless Chromium through playwright-core); last, the wheel
# alone in a fresh virtualenv, as a user installs it. Installs what it
# needs (Chromium and node as scripts/ci/80-browser.sh does); a second run
# reuses the virtualenv.
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
export DEBIAN_FRONTEND=noninteractive
updated=0
apt_install() { # apt_install COMMAND PACKAGE [apt options]
  local command=$1 package=$2
  shift 2
  if command -v "$command" >/dev/null 2>&1; then return; fi
  echo "installing $package"
  if [ "$updated" = 0 ]; then apt-get update -qq; updated=1; fi
  apt-get install -y -qq "$@" "$package" >/dev/null
}
apt_install chromium chromium
apt_install node nodejs --no-install-recommends
apt_install npm npm --no-install-recommends
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
# playwright-core for the browser check of the dashboard mounted in Flask.
browser_dir="$target/browser-flask"
mkdir -p "$browser_dir"
cp python/tests/browser/package.json python/tests/browser/package-lock.json \
  python/tests/browser/flask_dashboard.mjs "$browser_dir/"
(cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
export PROFILIS_BROWSER_DIR="$browser_dir"
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
