"""The engine benchmark's (a) and (b) for this working tree beside earlier revisions, in one run.

Run: .venv/bin/python scripts/bench/compare.py REV [REV ...] [--rounds-a 7] [--rounds-b 3]
     [--only a|b]

Each REV (a commit, tag or branch) is exported with `git archive` into a temporary directory,
and every measurement runs in a process of its own with that tree's own
`scripts/bench/engine.py` (so each revision is measured as it was), its collector settled as
`flow8 serve` settles it where the tree has `settle_after_startup`. The trees take turns, in
a rotating order, one process at a time: a machine that slows down or speeds up during the
run moves every column alike, so the ratios hold where absolute figures do not.

  (a) full / normal   ms per step of a 40-step flow (median of 15 plays per process)
  (b) full / normal   plays/s of a 3-step flow, 100 in flight (3,000 plays per process)

Prints the median over the rounds for each tree and the working tree's change against each
REV (for (a) lower is better, for (b) higher is better).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# One measurement in a fresh interpreter, inside the tree being measured.
RUNNER = """
import importlib, importlib.util, json, os, sys, trio
sys.path.insert(0, os.getcwd())
case, durability = sys.argv[1:3]
sys.argv = ["engine.py"]  # the tree's bench reads its own flags
spec = importlib.util.spec_from_file_location("bench_engine", "scripts/bench/engine.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
bench.configure_logging("warning", "console")
for home in ("flow8.interpreter", "flow8.heap"):
    try:
        importlib.import_module(home).settle_after_startup()
        break
    except (ImportError, AttributeError):
        continue
if case == "a":
    value = trio.run(bench.bench_a, durability)[0]
else:
    value = trio.run(bench.bench_b, durability)
print(json.dumps(value))
"""

# No FLOW8_ setting of the caller's shell may tune one tree and not another.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW8_", "PYTHON"))}

CASES = (("a", "full"), ("a", "normal"), ("b", "full"), ("b", "normal"))


def export(rev: str, into: Path) -> Path:
    """The tree of ``rev`` as files under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev],
        check=True,
        capture_output=True,
    ).stdout
    tree = into / rev.replace("/", "_")
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def measure(tree: Path, case: str, durability: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, case, durability],
        cwd=tree,
        env={**CLEAN_ENV, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"{tree}: ({case}) {durability} failed:\n{done.stderr[-2000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revs", nargs="+", metavar="REV", help="revisions to measure beside")
    parser.add_argument("--rounds-a", type=int, default=7)
    parser.add_argument("--rounds-b", type=int, default=3)
    parser.add_argument("--only", choices=("a", "b"), help="measure one of (a) and (b)")
    args = parser.parse_args()
    cases = [c for c in CASES if args.only in (None, c[0])]
    with tempfile.TemporaryDirectory(prefix="flow8-compare-") as tmp:
        trees = {rev: export(rev, Path(tmp)) for rev in args.revs}
        trees["this tree"] = ROOT
        names = list(trees)
        results: dict[tuple[str, str, str], list[float]] = {}
        for case, durability in cases:
            rounds = args.rounds_a if case == "a" else args.rounds_b
            for turn in range(rounds):
                order = names[turn % len(names) :] + names[: turn % len(names)]
                for name in order:
                    value = measure(trees[name], case, durability)
                    results.setdefault((name, case, durability), []).append(value)
    print(
        f"engine benchmark, this tree beside {', '.join(args.revs)}: medians of "
        f"{args.rounds_a} processes for (a), {args.rounds_b} for (b), trees taking turns"
    )
    width = max(12, *(len(n) for n in names))
    header = f"{'':24}" + "".join(f"{n:>{width}}" for n in names)
    header += "".join(f"{'vs ' + rev:>{width + 2}}" for rev in args.revs)
    print(header)
    for case, durability in cases:
        unit = "ms/step" if case == "a" else "plays/s"
        medians = {n: statistics.median(results[(n, case, durability)]) for n in names}
        row = f"({case}) {durability:6} {unit:13}"
        row += "".join(
            f"{medians[n]:>{width}.3f}" if case == "a" else f"{medians[n]:>{width},.0f}"
            for n in names
        )
        for rev in args.revs:
            change = medians["this tree"] / medians[rev] - 1
            row += f"{change:>+{width + 1}.0%} "
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
