"""Runs bench_emit.py for two or more builds of the package, alternating
run by run so that the load of a shared machine hits them alike, and
prints, per operation, the median over the runs of each figure.

    python python/bench/compare_builds.py --runs 7 old=/path/to/old new=python -- --batches 100

Each build is NAME=DIRECTORY, a directory holding a `profilis` package
(with its built `_native` module) put first on PYTHONPATH. Arguments after
`--` go to bench_emit.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

BENCH = Path(__file__).with_name("bench_emit.py")


def main() -> int:
    argv = sys.argv[1:]
    extra: List[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("builds", nargs="+", help="NAME=DIRECTORY")
    args = parser.parse_args(argv)
    builds = [b.split("=", 1) for b in args.builds]
    results: Dict[str, List[dict]] = {name: [] for name, _ in builds}
    for _ in range(args.runs):
        for name, directory in builds:
            env = dict(os.environ, PYTHONPATH=str(Path(directory).resolve()))
            out = subprocess.run(
                [sys.executable, str(BENCH), *extra], env=env, capture_output=True, text=True, check=True
            ).stdout
            results[name].append(json.loads(out.strip().splitlines()[-1])["results"])

    def med(name: str, row: str, key: str) -> float:
        return statistics.median(r[row][key] for r in results[name])

    print(f"{args.runs} alternating runs per build of bench_emit.py {' '.join(extra)}; medians over the runs, ns")
    header = "".join(f"{name + ' median':>14}{'p99':>8}{'over':>8}{'x emit':>8}" for name, _ in builds)
    print(f"{'operation':30}{header}")
    for row in results[builds[0][0]][0]:
        line = f"{row:30}"
        for name, _ in builds:
            first = results[name][0][row]
            line += f"{med(name, row, 'median_ns'):14.0f}{med(name, row, 'p99_ns'):8.0f}"
            if "over_baseline_ns" in first:
                ratio = statistics.median(
                    r[row]["over_baseline_ns"] / r["emit_fn"]["over_baseline_ns"] for r in results[name]
                )
                line += f"{med(name, row, 'over_baseline_ns'):8.0f}{ratio:8.2f}"
            elif "overhead_ns" in first:
                line += f"{med(name, row, 'overhead_ns'):8.0f}{'':8}"
            else:
                line += f"{'':16}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
