#!/usr/bin/env bash
# The monitoring examples, checked with real tools. promtool checks the
# example scrape config and the rules in docs/examples/, and unit-tests the
# alerts (docs/examples/tests/profilis-rules.test.yml: each alert fires and
# resolves on synthetic series); the example collector config is checked
# for pipelines that name undefined components. A real Prometheus server
# scraping two live readers with these files, and the Grafana board's
# queries against it, are tested by `cargo test`
# (reader/tests/prometheus_server.rs, run by 20-test.sh); the OTLP export by
# reader/tests/otlp.rs, against a receiver built on the official protobuf
# definitions. Installs promtool (Debian's prometheus package) and a
# virtualenv with PyYAML when missing; works as root.
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
if ! "$venv/bin/python" -c "import yaml" >/dev/null 2>&1; then
  echo "creating $venv (PyYAML)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "PyYAML>=6,<7"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The scrape config names its token file relative to itself: check a copy
# with a stand-in token beside it.
cp docs/examples/prometheus.yml docs/examples/profilis-rules.yml "$work/"
echo "stand-in-token" > "$work/profilis-ui-token"
promtool check config "$work/prometheus.yml"
promtool check rules docs/examples/profilis-rules.yml
promtool test rules docs/examples/tests/profilis-rules.test.yml
python3 -c "import json, sys; json.load(open(sys.argv[1]))" docs/examples/grafana-dashboard.json

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
echo "otlp-prom: config, rules, rule tests and collector config passed"
