"""Benchmark: wall time and peak memory of the offline plan (`python -m infra plan`), per run."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNS = 7


def one_run(out: str) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one plan process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "infra", "plan", "--stack", "example", "--json", "--out", out],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"plan failed: {process.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        runs = [one_run(out) for _ in range(RUNS)]
    times = [t for t, _ in runs]
    memory = [m for _, m in runs]
    print(f"plan (offline evaluation, example stack), {RUNS} runs")
    print(f"  wall time: median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})   goal < 3 s")
    print(f"  peak RSS:  median {statistics.median(memory):.0f} MiB (max {max(memory):.0f})   goal < 400 MiB")


if __name__ == "__main__":
    main()
