#!/usr/bin/env python3
"""Ordering mutants: weaken each atomic ordering of the ring protocol alone
and check that a loom model fails.

Every non-Relaxed ordering argument and every fence in the protocol files is
a site. Each site gives one mutant per weakening: an ordering becomes
Relaxed (AcqRel also Acquire and Release), a fence is removed. Each mutant
is built in a scratch copy of the working tree (which is never modified) and
the loom models run on it, fastest first, until one fails: the mutant is
then caught by that model. A mutant whose test binaries are identical to the
unmutated build is reported as outside the loom build (code the models do
not compile, such as the SIGBUS handler itself).

Usage: scripts/mutants.sh [--jobs N] [--only SUBSTRING]... [--models a,b]
       [--all-models] [--skip-baseline] [--list] [--markdown FILE]
       [--scratch DIR] [--target DIR]
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ["src/ring/*.rs", "src/strings.rs", "src/messages/*.rs", "src/sigbus.rs"]
SKIP_FILES = {"src/ring/tests.rs", "src/messages/tests.rs"}
ORDERINGS = ("SeqCst", "AcqRel", "Acquire", "Release")
WEAKER = {
    "SeqCst": ["Relaxed", "Acquire", "Release", "AcqRel"],
    "AcqRel": ["Relaxed", "Acquire", "Release"],
    "Acquire": ["Relaxed"],
    "Release": ["Relaxed"],
}
# A model run that takes longer than this many times its unmutated time (and
# at least MIN_TIMEOUT seconds) is stopped and reported as a timeout.
TIMEOUT_FACTOR = 6
MIN_TIMEOUT = 60
# The limit per model run with --skip-baseline.
SKIPPED_BASELINE_TIMEOUT = 300


class Site:
    def __init__(self, path, line, col, function, ordering, kind):
        self.path = path
        self.line = line
        self.col = col
        self.function = function
        self.ordering = ordering
        self.kind = kind  # "fence" or "op"
        self.nth = 0  # set when the line holds several orderings

    def where(self):
        """`file:line`, with the ordering's index on the line when it holds
        several (a CAS's success and failure orderings)."""
        return f"{self.path}:{self.line}" + (f"#{self.nth}" if self.nth else "")


class Mutant:
    def __init__(self, site, to):
        self.site = site
        self.to = to  # None: remove the fence

    def label(self):
        s = self.site
        if self.to is None:
            return f"{s.where()} {s.function}: remove fence({s.ordering})"
        return f"{s.where()} {s.function}: {s.ordering} -> {self.to}"

    def apply(self, text):
        lines = text.split("\n")
        i = self.site.line - 1
        line = lines[i]
        if self.to is None:
            new = line.replace(f"fence({self.site.ordering});", "", 1)
        else:
            c = self.site.col
            assert line[c : c + len(self.site.ordering)] == self.site.ordering
            new = line[:c] + self.to + line[c + len(self.site.ordering) :]
        assert new != line, self.label()
        lines[i] = new
        return "\n".join(lines)


def protocol_files():
    out = []
    for pattern in FILES:
        for p in sorted(ROOT.glob(pattern)):
            rel = p.relative_to(ROOT).as_posix()
            if rel not in SKIP_FILES:
                out.append(rel)
    return out


def find_sites(snapshot):
    sites = []
    fn_re = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")
    tok_re = re.compile(r"\b(" + "|".join(ORDERINGS) + r")\b")
    for rel in protocol_files():
        function = "?"
        for n, raw in enumerate(snapshot[rel].decode().split("\n"), start=1):
            if re.match(r"\s*#\[cfg\((all\()?test", raw):
                break  # unit tests at the bottom of the file
            code = raw.split("//", 1)[0]
            m = fn_re.search(code)
            if m:
                function = m.group(1)
            if code.lstrip().startswith("use "):
                continue
            found = []
            for t in tok_re.finditer(code):
                before = code[: t.start()]
                kind = "fence" if before.rstrip().endswith("fence(") else "op"
                found.append(Site(rel, n, t.start(), function, t.group(1), kind))
            if len(found) > 1:
                for k, site in enumerate(found, start=1):
                    site.nth = k
            sites.extend(found)
    return sites


def mutants_of(site):
    if site.kind == "fence":
        return [Mutant(site, None)]
    return [Mutant(site, to) for to in WEAKER[site.ordering]]


def run(cmd, cwd, env=None, timeout=None):
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        timeout=timeout,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def loom_env(target):
    env = dict(os.environ)
    env["RUSTFLAGS"] = "--cfg profilis_loom"
    env["CARGO_TARGET_DIR"] = str(target)
    # As scripts/test.sh builds: no debug info (links faster).
    env["CARGO_PROFILE_RELEASE_DEBUG"] = "false"
    env.setdefault("LOOM_MAX_PREEMPTIONS", "2")
    return env


def snapshot_tree():
    """The working tree's files (tracked, and untracked but not ignored) as
    {path: bytes}, read once so that every scratch copy and every mutant
    starts from the same state, whatever happens to the working tree
    meanwhile."""
    files = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], ROOT
    ).stdout.split("\0")
    return {f: (ROOT / f).read_bytes() for f in files if f and (ROOT / f).is_file()}


class Scratch:
    """A copy of the tree snapshot with its own target directory."""

    def __init__(self, path, snapshot, target=None):
        self.path = Path(path)
        self.target = Path(target).resolve() if target else self.path / "target"
        src = self.path / "tree"
        # Only files whose content differs are written, so that their
        # modification time moves and cargo rebuilds what changed: a copy
        # that kept the original times could look older than a mutant's
        # build and be skipped.
        for f, data in snapshot.items():
            dst = src / f
            if dst.is_file() and dst.read_bytes() == data:
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
        # The protocol files are the ones mutants overwrite: a previous run
        # may have left a mutant's build behind them, so they are always
        # marked changed.
        for rel in protocol_files():
            os.utime(src / rel)
        keep = {src / f for f in snapshot}
        for path in list(src.rglob("*")) if src.exists() else []:
            if path.is_file() and path not in keep:
                path.unlink()
        self.tree = src

    def build(self):
        """Builds the loom test binaries: {model name: (path, hash)}, or an
        error text."""
        r = run(
            [
                "cargo",
                "test",
                "-p",
                "loom-tests",
                "--release",
                "--no-run",
                "--message-format=json",
            ],
            self.tree,
            env=loom_env(self.target),
        )
        bins = {}
        for line in r.stdout.splitlines():
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            if (
                msg.get("reason") == "compiler-artifact"
                and msg.get("executable")
                and msg["target"]["kind"] == ["test"]
                and msg["package_id"].find("loom-tests") >= 0
            ):
                exe = msg["executable"]
                digest = hashlib.sha256(Path(exe).read_bytes()).hexdigest()
                bins[msg["target"]["name"]] = (exe, digest)
        if r.returncode != 0:
            return None, r.stdout[-4000:]
        return bins, None

    def run_model(self, exe, timeout):
        start = time.monotonic()
        try:
            r = run([exe, "--test-threads=1"], self.tree, env=loom_env(self.target), timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", time.monotonic() - start, ""
        status = "pass" if r.returncode == 0 else "fail"
        return status, time.monotonic() - start, r.stdout

    def write(self, rel, text):
        (self.tree / rel).write_text(text)


RESULTS_FILE = None


def record(mutant, results):
    """Appends the mutant's result to the --json file, if any, as soon as it
    is known (a run that stops part-way keeps what it found)."""
    if RESULTS_FILE is None:
        return
    status, caught, detail = results[mutant.label()]
    s = mutant.site
    line = {
        "site": s.where(),
        "function": s.function,
        "ordering": f"fence({s.ordering})" if s.kind == "fence" else s.ordering,
        "mutant": "removed" if mutant.to is None else mutant.to,
        "result": status,
        "models": caught,
        "failure": detail,
    }
    with open(RESULTS_FILE, "a") as f:
        f.write(json.dumps(line) + "\n")


def first_line_of_failure(output):
    for pattern in (r"panicked at [^\n]*\n([^\n]+)", r"(Causality violation[^\n]*)"):
        m = re.search(pattern, output)
        if m:
            return m.group(1).strip()[:160]
    return output.strip().splitlines()[-1][:160] if output.strip() else "?"


def worker(index, scratch_root, snapshot, target, mutants, baseline, order, timeouts, all_models, results, log):
    scratch = Scratch(Path(scratch_root) / f"w{index}", snapshot, target if index == 0 else None)
    for m in mutants:
        rel = m.site.path
        original = snapshot[rel].decode()
        scratch.write(rel, m.apply(original))
        bins, err = scratch.build()
        scratch.write(rel, original)
        if bins is None:
            results[m.label()] = ("build error", [], err.splitlines()[-1] if err else "")
            log(f"{m.label()}: build error")
            record(m, results)
            continue
        if all(bins.get(k, (None, None))[1] == baseline[k][1] for k in baseline):
            results[m.label()] = ("outside the loom build", [], "")
            log(f"{m.label()}: outside the loom build")
            record(m, results)
            continue
        caught = []
        detail = ""
        status = "NOT caught"
        for name in order:
            outcome, secs, out = scratch.run_model(bins[name][0], timeouts[name])
            if outcome == "fail":
                caught.append(name)
                detail = detail or first_line_of_failure(out)
                status = "caught"
                if not all_models:
                    break
            elif outcome == "timeout" and status == "NOT caught":
                status = "NOT caught (a model timed out)"
                detail = detail or f"{name} ran past {timeouts[name]:.0f}s"
        results[m.label()] = (status, caught, detail)
        log(f"{m.label()}: {status} {' '.join(caught)} {detail}")
        record(m, results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=1, help="scratch copies built and run in parallel")
    ap.add_argument("--only", action="append", default=[], help="mutants whose label contains this")
    ap.add_argument("--models", default="", help="comma-separated models to run (default: all)")
    ap.add_argument("--all-models", action="store_true", help="run every model on each mutant")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument(
        "--skip-baseline",
        action="store_true",
        help="do not run the models unmutated first (they just passed); run them in --models order",
    )
    ap.add_argument("--markdown", help="write the result table to this file")
    ap.add_argument("--json", help="append each mutant's result to this file as a JSON line")
    ap.add_argument("--scratch", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "profilis-mutants"))
    ap.add_argument(
        "--target",
        help="cargo target directory of the first scratch copy (default: inside it); "
        "pointing it at the loom suite's target reuses the dependencies built there",
    )
    args = ap.parse_args()

    snapshot = snapshot_tree()
    mutants = [m for s in find_sites(snapshot) for m in mutants_of(s)]
    if args.only:
        mutants = [m for m in mutants if any(o in m.label() for o in args.only)]
    if args.list:
        for m in mutants:
            print(m.label())
        print(f"{len(mutants)} mutants", file=sys.stderr)
        return 0

    global RESULTS_FILE
    RESULTS_FILE = args.json
    Path(args.scratch).mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    log_lock = __import__("threading").Lock()

    def log(text):
        with log_lock:
            print(f"[{time.monotonic() - start:7.1f}s] {text}", flush=True)

    # Baseline: build and time every model unmutated.
    base = Scratch(Path(args.scratch) / "w0", snapshot, args.target)
    baseline, err = base.build()
    if baseline is None:
        print(err, file=sys.stderr)
        return 2
    wanted = [m for m in args.models.split(",") if m] or sorted(baseline)
    unknown = [m for m in wanted if m not in baseline]
    if unknown:
        print(f"no such model: {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.skip_baseline:
        # The models just passed unmutated (CI runs them first): keep the
        # order given and a generous fixed limit.
        order = wanted
        timeouts = {n: SKIPPED_BASELINE_TIMEOUT for n in order}
    else:
        times = {}
        for name in wanted:
            outcome, secs, out = base.run_model(baseline[name][0], None)
            if outcome != "pass":
                print(f"model {name} fails unmutated:\n{out[-3000:]}", file=sys.stderr)
                return 2
            times[name] = secs
            log(f"baseline {name}: {secs:.1f}s")
        order = sorted(wanted, key=lambda n: times[n])
        timeouts = {n: max(MIN_TIMEOUT, TIMEOUT_FACTOR * times[n]) for n in order}

    log(f"{len(mutants)} mutants, {args.jobs} job(s)")
    results = {}
    shares = [mutants[i :: args.jobs] for i in range(args.jobs)]
    # Worker 0 reuses the baseline scratch copy and its build.
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = [
            pool.submit(
                worker,
                i,
                args.scratch,
                snapshot,
                args.target,
                share,
                baseline,
                order,
                timeouts,
                args.all_models,
                results,
                log,
            )
            for i, share in enumerate(shares)
        ]
        for f in futures:
            f.result()

    rows = [(m, *results[m.label()]) for m in mutants]
    lines = [
        "| site | function | ordering | mutant | result | model(s) | failure |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, status, caught, detail in rows:
        s = m.site
        what = f"fence({s.ordering})" if s.kind == "fence" else s.ordering
        to = "removed" if m.to is None else m.to
        lines.append(
            f"| `{s.where()}` | `{s.function}` | {what} | {to} | {status} | "
            f"{', '.join(caught)} | {detail.replace('|', '/')} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    missed = [r for r in rows if not r[1].startswith("caught") and r[1] != "outside the loom build"]
    log(f"done: {len(rows) - len(missed)} of {len(rows)} caught or outside the loom build")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
