#!/usr/bin/env bash
# Formatting and lints of the whole workspace.
set -euo pipefail
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
