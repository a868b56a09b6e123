#!/usr/bin/env bash
# Ordering mutants of the ring protocol: weakens each non-Relaxed atomic
# ordering and each fence in src/ring/, src/strings.rs, src/messages/ and
# src/sigbus.rs alone, in a scratch copy of the tree, and runs the loom
# models on it until one fails (see docs/verification.md, "Ordering
# mutants"). Exits non-zero when a mutant inside the loom build is not
# caught. Arguments go to scripts/mutants.py (--jobs N, --only TEXT,
# --models a,b, --list, --markdown FILE, --all-models).
#
#   bash scripts/mutants.sh --jobs 2
#   bash scripts/mutants.sh --only consume.rs --models dead_writer
#
# The whole table takes about 25 minutes on two cores; CI runs a handful of
# the most important sites (scripts/ci/30-loom.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/mutants.py "$@"
