#!/usr/bin/env bash
# One command that shows Profilis working: builds the reader in release mode
# (scripts/build-reader.sh: the build the test command makes, so after
# `bash scripts/test.sh` nothing is compiled again) and runs
# `profilis-reader demo` (an instrumented sample workload, the reader, JSONL
# output kept under 64 MiB, the dashboard). Extra arguments go to the demo,
# e.g.
#   bash scripts/demo.sh --rate 5000 --keep
# Stop it with Ctrl-C; its temporary directory is removed unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
reader=$(bash scripts/build-reader.sh)
exec "$reader" demo "$@"
