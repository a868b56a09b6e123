#!/usr/bin/env bash
# The dashboard end to end: the reader (release) drains rings fed by two
# loadgen workers of one service and by the crash example (a worker that
# fills its ring behind a claim and dies by SIGKILL before committing it;
# the second loadgen's failed requests carry stack traces, which
# stacks.test.mjs expands in the recent errors), and serves the UI with a
# token on an ephemeral port; headless Chromium, driven by playwright-core, opens it (reader/tests/browser/) and
# compares what the page shows with metrics.json (routes slowest first with
# their bytes, errors by exception type, merged workers, losses by
# producer, the dead worker's post-mortem and its JSONL download, the
# processes panel's CPU and memory per service and worker), in both
# themes and at widths from a phone's to a desktop's, saving screenshots
# under target/screenshots/. Then promtool (Debian's prometheus
# package) checks the live /metrics and rendered samples with hostile label
# values; lint warnings fail the stage like parse errors. Installs chromium,
# promtool and playwright-core when missing; works as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir="${CARGO_TARGET_DIR:-target}"
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
apt_install promtool prometheus --no-install-recommends
apt_install node nodejs --no-install-recommends
apt_install npm npm --no-install-recommends

# The reader the demo runs (scripts/build-reader.sh), so that
# scripts/demo.sh after this finds it built.
reader=$(bash scripts/build-reader.sh 2>/dev/null)
# From a plain shell (none of test.sh's settings), the demo's build must
# compile nothing more.
if env -u CARGO_PROFILE_RELEASE_DEBUG -u CARGO_INCREMENTAL bash scripts/build-reader.sh 2>&1 >/dev/null \
    | grep -E '^ *Compiling'; then
  echo "scripts/demo.sh would compile the crates above again after the test build"; exit 1
fi
cargo build --release --locked -p profilis --example loadgen --example crash --quiet
loadgen="$target_dir/release/examples/loadgen"
crash="$target_dir/release/examples/crash"

browser_dir="$target_dir/browser"
mkdir -p "$browser_dir"
cp reader/tests/browser/package.json reader/tests/browser/package-lock.json \
  reader/tests/browser/session.mjs reader/tests/browser/dashboard.test.mjs \
  reader/tests/browser/processes.test.mjs \
  reader/tests/browser/stacks.test.mjs "$browser_dir/"
(cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The token lives in files only (never in a command line).
umask 077
od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$work/token"
printf 'Authorization: Bearer %s\n' "$(cat "$work/token")" > "$work/auth-header"
umask 022

ring="$work/app.ring"
ring2="$work/app2.ring"
crash_ring="$work/crash.ring"
"$loadgen" --ring "$ring" --threads 1 --events 4000000 --rate 20000 --service shop \
  > "$work/loadgen.out" &
pids+=($!)
"$loadgen" --ring "$ring2" --threads 1 --events 4000000 --rate 5000 --service shop --stacks \
  > "$work/loadgen2.out" &
pids+=($!)
# The crash worker's ring exists (empty) before the reader starts.
"$loadgen" --ring "$crash_ring" --events 0 --capacity 256 > /dev/null
"$reader" "$ring" "$ring2" "$crash_ring" --wait --accounting --jsonl-dir "$work/jsonl" \
  --ui-addr 127.0.0.1:0 --ui-token-file "$work/token" \
  --flush-interval 500ms --ui-refresh-ms 500 \
  > "$work/reader.out" 2> "$work/reader.err" &
reader_pid=$!
pids+=("$reader_pid")

url=""
for _ in $(seq 1 300); do
  url=$(grep -o 'http://[^ ]*' "$work/reader.err" | head -n 1 || true)
  [ -n "$url" ] && break
  kill -0 "$reader_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "the reader did not start its dashboard:"; cat "$work/reader.err"; exit 1
fi
echo "dashboard at $url"

# A worker of the same service that outruns the reader until its lane
# refuses events, then dies by SIGKILL in the middle of one (exit status
# 137).
crash_status=0
"$crash" --ring "$crash_ring" --events 200 --fill 400 --service shop > "$work/crash.out" || crash_status=$?
if [ "$crash_status" != 137 ] || ! grep -q '"claimed"' "$work/crash.out"; then
  echo "the crash example did not die mid-event (status $crash_status):"; cat "$work/crash.out"; exit 1
fi
echo "crash worker: $(cat "$work/crash.out")"

status=0
(cd "$browser_dir" && CHROMIUM="$(command -v chromium)" PROFILIS_URL="$url" PROFILIS_TOKEN_FILE="$work/token" \
  SCREENSHOT_DIR="$(cd .. && pwd)/screenshots" node --test dashboard.test.mjs processes.test.mjs stacks.test.mjs) || status=1

curl -sSf -H "@$work/auth-header" "${url}metrics" > "$work/metrics.txt"
if promtool check metrics < "$work/metrics.txt"; then
  echo "promtool: live /metrics ($(grep -vc '^#' "$work/metrics.txt") samples) is valid"
else
  echo "promtool rejected the live /metrics"; status=1
fi
PROFILIS_PROM_SAMPLE_OUT="$work/sample.txt" \
  cargo test --locked -p profilis-reader --lib --quiet prometheus::tests::values_units_and_escaping >/dev/null
if promtool check metrics < "$work/sample.txt"; then
  echo "promtool: rendered sample with escaped labels is valid"
else
  echo "promtool rejected the rendered sample"; status=1
fi
PROFILIS_PROM_ERRORS_SAMPLE_OUT="$work/errors-sample.txt" \
  cargo test --locked -p profilis-reader --lib --quiet prometheus::errors::tests >/dev/null
if promtool check metrics < "$work/errors-sample.txt"; then
  echo "promtool: rendered exception and byte counters with escaped labels are valid"
else
  echo "promtool rejected the exception and byte counters"; status=1
fi
if grep -qFf "$work/token" "$work/reader.err" "$work/reader.out"; then
  echo "the token appears in the reader's output"; status=1
fi

kill -TERM "$reader_pid"
if ! wait "$reader_pid"; then
  echo "the reader did not exit cleanly:"; cat "$work/reader.err"; status=1
fi
echo "reader accounting: $(grep '^{"ring"' "$work/reader.out" || true)"
ls -l "$target_dir"/screenshots/*.png || status=1
exit "$status"
