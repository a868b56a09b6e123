"""Cross-reader aggregation, checked with a real Prometheus parser.

Reads the /metrics scrapes of two readers (reader0.prom, reader1.prom) and
the events they drained (events.json: route and duration of each request),
as written by reader/tests/otlp.rs with PROFILIS_PROM_AGG_OUT set. Parses the
scrapes with prometheus_client, sums the `_bucket`, `_count` and `_sum`
samples of both readers, and checks them bucket by bucket against the
histogram of the union of the events (`le` is an inclusive upper bound), for
profilis_request_duration_seconds and per route for
profilis_route_request_duration_seconds.
"""

import json
import sys
from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

FAMILIES = ("profilis_request_duration_seconds", "profilis_route_request_duration_seconds")


def le_ns(le):
    return None if le == "+Inf" else int(Decimal(le) * 1_000_000_000)


def main(out):
    summed, counts, sums = {}, {}, {}
    scrapes = sorted(out.glob("reader*.prom"))
    assert len(scrapes) == 2, f"two scrapes expected in {out}, found {scrapes}"
    for scrape in scrapes:
        seen = set()
        for family in text_string_to_metric_families(scrape.read_text()):
            if family.name not in FAMILIES:
                continue
            assert family.type == "histogram", f"{family.name} is a {family.type}"
            seen.add(family.name)
            for s in family.samples:
                route = s.labels.get("route", "")
                key = (family.name, route)
                if s.name.endswith("_bucket"):
                    k = (family.name, route, s.labels["le"])
                    summed[k] = summed.get(k, 0) + s.value
                elif s.name.endswith("_count"):
                    counts[key] = counts.get(key, 0) + s.value
                elif s.name.endswith("_sum"):
                    sums[key] = sums.get(key, 0) + s.value
        assert seen == set(FAMILIES), f"{scrape}: histograms missing: {set(FAMILIES) - seen}"

    events = json.loads((out / "events.json").read_text())
    les = sorted({k[2] for k in summed}, key=lambda le: float("inf") if le == "+Inf" else float(le))
    expected, want_counts, want_sums = {}, {}, {}
    for e in events:
        for family, route in ((FAMILIES[0], ""), (FAMILIES[1], e["route"])):
            want_counts[(family, route)] = want_counts.get((family, route), 0) + 1
            want_sums[(family, route)] = want_sums.get((family, route), 0) + e["dur_ns"]
            for le in les:
                bound = le_ns(le)
                k = (family, route, le)
                expected[k] = expected.get(k, 0) + (1 if bound is None or e["dur_ns"] <= bound else 0)

    assert set(summed) == set(expected), f"bucket sets differ: {set(summed) ^ set(expected)}"
    for k, want in sorted(expected.items()):
        assert summed[k] == want, f"{k}: the readers sum to {summed[k]}, the union of the events has {want}"
    for k, want in want_counts.items():
        assert counts[k] == want, f"{k} _count: {counts[k]} != {want}"
        assert abs(sums[k] - want_sums[k] / 1e9) < 1e-6 * max(1, sums[k]), f"{k} _sum: {sums[k]} != {want_sums[k] / 1e9}"
    routes = len({k[1] for k in expected if k[0] == FAMILIES[1]})
    print(
        f"prometheus_client: {len(events)} requests of 2 readers, {len(expected)} buckets "
        f"({len(les)} bounds, all requests and {routes} routes): the sum of the readers "
        "equals the histogram of all events"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
