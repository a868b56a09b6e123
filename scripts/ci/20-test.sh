#!/usr/bin/env bash
# Unit and integration tests of the workspace (real mappings, real processes).
set -euo pipefail
cargo test --workspace --locked --no-fail-fast
