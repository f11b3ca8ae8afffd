"""What the metrics cost a click and a request: the counting call before and after prometheus_client

In-process A/B of the calls on the hot paths, nothing else: a click's outcome count (the click
handler's last step) and one latency observation (every request Flask or the edge answers,
SDK launches included). "before" is the code of `--before` (a git revision; default: main before
prometheus_client came in) loaded from git, "after" this tree's, in single-process mode and in
the multiprocess mode `linkgen serve` runs (files in a temporary directory). Best of `--rounds`
runs of `--number` calls each, in ns of CPU per call; the modes and the versions interleaved.

    .venv/bin/python benchmarks/metrics_cost.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import timeit
import types
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "a6cbab8"


def _old_module(rev: str) -> types.ModuleType:
    source = subprocess.check_output(["git", "show", f"{rev}:linkgen/web/metrics.py"], cwd=ROOT)
    module = types.ModuleType("linkgen_metrics_before")
    exec(compile(source, "metrics_before.py", "exec"), module.__dict__)  # noqa: S102 - our own code
    return module


def _calls_before(rev: str) -> dict[str, Callable[[], None]]:
    old = _old_module(rev)
    outcomes: dict[str, int] = {}

    def count() -> None:  # what ClickHandler did: its own dict
        outcomes["app_store"] = outcomes.get("app_store", 0) + 1

    hist = old.LatencyHistogram()
    return {
        "click outcome": count,
        "latency observe": lambda: hist.observe("sdk.post_launch", "POST", 200, 0.0123),
    }


def _calls_after(multiprocess: bool) -> dict[str, Callable[[], None]]:
    from prometheus_client import CollectorRegistry

    from linkgen.web import metrics

    registry = None if multiprocess else CollectorRegistry()
    if multiprocess:
        assert metrics.multiprocess_dir() is not None
    redirects = metrics.RedirectCounter(registry)
    hist = metrics.LatencyHistogram(registry)
    calls: dict[str, Callable[[], None]] = {
        "click outcome": lambda: redirects.count("app_store"),
        "latency observe": lambda: hist.observe("sdk.post_launch", "POST", 200, 0.0123),
    }
    for call in calls.values():
        call()  # make the labelled child now, with this mode's value class
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    before = _calls_before(args.before)
    single = _calls_after(multiprocess=False)
    with tempfile.TemporaryDirectory(prefix="metrics-cost-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        multi = _calls_after(multiprocess=True)  # after `single`: the value class changes here
        variants = {"before": before, "after, one process": single, "after, serve": multi}
        best: dict[tuple[str, str], float] = {}
        for _ in range(args.rounds):
            for variant, calls in variants.items():
                for name, call in calls.items():
                    # CPU time, not wall time: the machine is shared, waiting for it is not cost.
                    seconds = timeit.Timer(call, timer=time.process_time).timeit(args.number)
                    key = (variant, name)
                    best[key] = min(best.get(key, seconds), seconds)
    print(f"ns of CPU per call, best of {args.rounds} x {args.number:,} (before = {args.before})")
    print(f"| call | {' | '.join(variants)} |")
    print(f"|---|{'---|' * len(variants)}")
    for name in before:
        cells = [f"{best[(v, name)] / args.number * 1e9:.0f}" for v in variants]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
