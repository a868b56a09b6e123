#!/usr/bin/env bash
# Dependency review with cargo-deny against deny.toml (SECURITY.md): licenses,
# bans (wildcards, duplicate versions) and sources, which run offline; with
# the argument `advisories`, also the RustSec advisory database (fetched
# from github.com). Installs cargo-deny from crates.io when missing.
#
#   bash scripts/deny.sh [advisories]
set -euo pipefail
cd "$(dirname "$0")/.."
checks=(licenses bans sources)
case "${1:-}" in
  "") ;;
  advisories) checks+=(advisories) ;;
  *) echo "usage: $0 [advisories]" >&2; exit 2 ;;
esac
if ! cargo deny --version >/dev/null 2>&1; then
  echo "installing cargo-deny (a few minutes)"
  cargo install --locked cargo-deny
fi
cargo deny check "${checks[@]}"
