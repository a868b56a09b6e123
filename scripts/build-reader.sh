#!/usr/bin/env bash
# Builds the release profilis-reader the one way the scripts build it and
# prints its path: scripts/demo.sh and the browser stage of scripts/test.sh
# both call this, so the demo after a test run finds the reader built. The
# same package and target (hence the same features of every dependency:
# cargo unifies features over the packages of one build, so building more
# packages, or the whole workspace, would change them and rebuild dozens of
# crates) and the same profile settings: no debug info, as test.sh builds,
# unless CARGO_PROFILE_RELEASE_DEBUG says otherwise. Cargo's progress goes
# to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG:-false}"
cargo build --release --locked -p profilis-reader --bin profilis-reader >&2
echo "${CARGO_TARGET_DIR:-$PWD/target}/release/profilis-reader"
