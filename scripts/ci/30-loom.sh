#!/usr/bin/env bash
# Loom models of the ring protocol (loom-tests/tests/, one scenario per
# file). Built with the profilis_loom cfg in their own target dir so the flag
# does not rebuild the main target. About two minutes on two quiet cores.
set -euo pipefail
RUSTFLAGS="--cfg profilis_loom" CARGO_TARGET_DIR=loom-target LOOM_MAX_PREEMPTIONS=2 \
  cargo test -p loom-tests --release --locked
