#!/usr/bin/env bash
# Loom models of the ring protocol (loom-tests/tests/, one scenario per
# file). Built with the profilis_loom cfg in their own target dir so the flag
# does not rebuild the main target. About 95 s of models on two quiet cores,
# plus the build.
#
# Then the ordering mutants of the five sites whose loss would corrupt data
# silently (docs/verification.md, "Ordering mutants"): each is weakened in a
# scratch copy of the tree and must make a model fail. The whole table is
# `bash scripts/mutants.sh` (about 7 minutes on two cores).
set -euo pipefail
RUSTFLAGS="--cfg profilis_loom" CARGO_TARGET_DIR=loom-target LOOM_MAX_PREEMPTIONS=2 \
  cargo test -p loom-tests --release --locked
bash scripts/mutants.sh --skip-baseline --target loom-target \
  --models dead_writer,consumer_restart,wrap_around,two_lanes,overwrite_oldest \
  --only "publish: Release -> Relaxed" \
  --only "begin: remove fence(Release)" \
  --only "read_slot: remove fence(Acquire)" \
  --only "hand_back: Release -> Relaxed"
