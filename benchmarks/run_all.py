"""`make bench`: run every benchmark in turn (each bounded, each writes its RESULTS.md section).

    .venv/bin/python -m benchmarks.run_all [--quick]

`--quick` runs the benchmarks that have a small mode in it (click_storage: 100,000 and 300,000
clicks instead of 1, 3 and 8 million: a minute or two instead of a quarter of an hour).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

BENCHMARKS = (
    "redirects",
    "crash",
    "memory",
    "links",
    "attribution",
    "front_cost",
    "postbacks",
    "scale",
    "click_storage",
    "slow_clients",
    "scanners",
    "reports",
    "rollup_sqlite",
)
QUICK_ARGS = {"click_storage": ("--quick",), "reports": ("--quick",)}


def main() -> int:
    """Run each benchmark as `python -m benchmarks.<name>`; non-zero if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small mode where there is one")
    args = parser.parse_args()
    failed = []
    for name in BENCHMARKS:
        print(f"== benchmarks/{name}.py", flush=True)
        extra = QUICK_ARGS.get(name, ()) if args.quick else ()
        if subprocess.call([sys.executable, "-m", f"benchmarks.{name}", *extra]) != 0:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
