#!/usr/bin/env bash
# Unit and integration tests of the workspace (real mappings, real processes).
# reader/tests/prometheus_server.rs scrapes two readers with a real
# Prometheus server: Debian's prometheus package (server and promtool) is
# installed when missing (as root; the test fails under CI=true without it).
set -euo pipefail
if ! command -v prometheus >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing prometheus (server and promtool)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
cargo test --workspace --locked --no-fail-fast
