#!/usr/bin/env bash
# Running at scale, checked with real tools. Two profilis-reader processes
# drain two rings of known request durations; their /metrics are parsed by
# Python's prometheus_client and summed bucket by bucket, which must equal
# the histogram of the union of the events (reader/tests/otlp.rs writes the
# scrapes and the events; scripts/ci/prom_aggregate.py checks them). Then
# promtool checks the scrapes, the example scrape config and the recording
# rules in docs/examples/, and the example collector config is checked for
# pipelines that name undefined components. The OTLP export itself is
# tested by `cargo test` (reader/tests/otlp.rs, against a receiver built on
# the official protobuf definitions). Installs promtool (Debian's
# prometheus package) and a virtualenv with prometheus_client and PyYAML
# when missing; works as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir="${CARGO_TARGET_DIR:-target}"
export DEBIAN_FRONTEND=noninteractive

if ! command -v promtool >/dev/null 2>&1; then
  echo "installing prometheus (promtool)"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
venv="$target_dir/ci-venv-prom"
if ! "$venv/bin/python" -c "import prometheus_client, yaml" >/dev/null 2>&1; then
  echo "creating $venv (prometheus_client, PyYAML)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "prometheus_client>=0.20,<1" "PyYAML>=6,<7"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

PROFILIS_PROM_AGG_OUT="$work/agg" cargo test --locked -p profilis-reader --test otlp \
  --quiet prometheus_histograms_of_two_readers_add_up
"$venv/bin/python" scripts/ci/prom_aggregate.py "$work/agg"

for scrape in "$work"/agg/reader*.prom; do
  promtool check metrics < "$scrape"
done
echo "promtool: both readers' /metrics are valid"

# The scrape config names its token file relative to itself: check a copy
# with a stand-in token beside it.
cp docs/examples/prometheus.yml docs/examples/profilis-rules.yml "$work/"
echo "stand-in-token" > "$work/profilis-ui-token"
promtool check config "$work/prometheus.yml"
promtool check rules docs/examples/profilis-rules.yml

"$venv/bin/python" - docs/examples/otel-collector.yaml <<'PY'
import sys, yaml
path = sys.argv[1]
config = yaml.safe_load(open(path))
pipelines = config["service"]["pipelines"]
assert pipelines, "no pipelines"
for name, pipeline in pipelines.items():
    for kind in ("receivers", "processors", "exporters"):
        for component in pipeline.get(kind, []):
            assert component in (config.get(kind) or {}), f"{path}: pipeline {name} uses undefined {kind[:-1]} {component}"
receiver = config["receivers"]["otlp"]["protocols"]
assert "grpc" in receiver and "http" in receiver, "the otlp receiver takes gRPC and HTTP"
print(f"{path}: {len(pipelines)} pipelines, every component defined")
PY
echo "otlp-prom: 1 passed, 0 failed"
