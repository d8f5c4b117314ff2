"""`make bench`: runs every benchmark in turn and prints its figures."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("bench_plan.py", "bench_deploy.py", "bench_engine.py")


def main() -> int:
    sys.path.insert(0, str(HERE.parents[1]))
    for name in BENCHMARKS:
        path = HERE / name
        if not path.exists():
            print(f"{name}: not present, skipped")
            continue
        print(f"== {name}")
        try:
            runpy.run_path(str(path), run_name="__main__")
        except SystemExit as done:  # a benchmark ending with sys.exit must not end the others
            if done.code not in (None, 0):
                print(f"{name}: exited with {done.code}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
