"""`make bench`: run every benchmark in turn (each bounded, each writes its RESULTS.md section)."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ("redirects", "crash", "memory", "links", "attribution", "postbacks", "scale")


def main() -> int:
    """Run each benchmark as `python -m benchmarks.<name>`; non-zero if any failed."""
    failed = []
    for name in BENCHMARKS:
        print(f"== benchmarks/{name}.py", flush=True)
        if subprocess.call([sys.executable, "-m", f"benchmarks.{name}"]) != 0:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
