"""Benchmark: the deploy over loopback SSH (real sshd, docker stand-in), as `pulumi up` drives it.

Scenarios: a first deploy (provider.create on an empty VM), a one-file change (provider.update),
and a no-op (provider.diff says "no change", so Pulumi calls nothing else). Prints the median wall
time of a few runs and the SSH connections, remote commands and uploads of one run. The goal: one
connection for a changed deploy, zero for a no-op.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from infra import layout  # noqa: E402
from infra.deploy.provider import StackDeployProvider  # noqa: E402
from infra.remote import ssh  # noqa: E402
from tests.deploy.support import EXECUTABLE_FILES, ProbeServer, restarted_by, stack_files  # noqa: E402
from tests.support.fake_docker import FakeDocker  # noqa: E402
from tests.support.sshd import SKIP_REASON, SshdProcess, sshd_available  # noqa: E402

RUNS = 5


def props_for(server, root: Path, fake: FakeDocker, probe: ProbeServer, files: dict[str, str]) -> dict:
    return {
        "files": files,
        "host": server.host,
        "user": server.user,
        "port": server.port,
        "private_key": server.client_private_key,
        "machine_id": "bench",
        "host_keys": [server.host_public_key],
        "host_key_source": None,
        "proxy_command": None,
        "connect": {"attempts": 1, "timeout": 5},
        "vm": {"sudo": [], "docker": [fake.executable], "curl": ["curl"], "root": str(root)},
        "settings": {"health_timeout": 5, "poll_interval": 0.1, "inngest_health_url": probe.endpoints.inngest_health, "app_sync_url": probe.endpoints.app_sync},
        "startup": {"version": BENCH_STARTUP_VERSION},  # the readiness step, as in production
        "release_id": None,
        "manifest": None,
    }


BENCH_STARTUP_VERSION = "0" * 64


def startup_completed(root: Path) -> None:
    """The record the VM's startup script leaves when done: the readiness step finds it at its first look."""
    record = root / layout.STARTUP_RECORD.lstrip("/")
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(f"version={BENCH_STARTUP_VERSION}\ncompleted=2026-11-24T00:00:00Z\nops_agent=installed\n")


def measure(runs: list, action, *args):
    """Time one call, record it with the SSH layer's counters, and return its result."""
    ssh.STATS.reset()
    started = time.perf_counter()
    value = action(*args)
    elapsed = time.perf_counter() - started
    runs.append((elapsed, (ssh.STATS.connections_opened, ssh.STATS.commands_run, ssh.STATS.uploads)))
    return value


def main() -> int:
    if not sshd_available():
        print(f"skipped: {SKIP_REASON}")
        return 0
    provider = StackDeployProvider(restarted_by=restarted_by, executable_files=EXECUTABLE_FILES)
    results: dict[str, list[tuple[float, tuple[int, int, int]]]] = {"first deploy": [], "one-file change": [], "no-op": []}
    probe = ProbeServer()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-deploy-") as scratch, SshdProcess(Path(scratch) / "sshd") as server:
            fake = FakeDocker.install(Path(scratch) / "docker-stand-in")
            for run in range(RUNS):
                root = Path(scratch) / f"vm-{run}"
                root.mkdir()
                startup_completed(root)
                first = props_for(server, root, fake, probe, stack_files(root))
                created = measure(results["first deploy"], provider.create, first).outs
                changed = {**first, "files": stack_files(root, log_level="debug")}
                outs = measure(results["one-file change"], provider.update, "bench", created, changed).outs
                if measure(results["no-op"], provider.diff, "bench", outs, changed).changes:
                    raise SystemExit("the no-op diff reported a change")
    finally:
        probe.stop()
    print(f"{'scenario':<18} {'median s':>9} {'connections':>12} {'commands':>9} {'uploads':>8}")
    for scenario, runs in results.items():
        median = statistics.median(elapsed for elapsed, _ in runs)
        connections, commands, uploads = runs[-1][1]
        print(f"{scenario:<18} {median:>9.3f} {connections:>12} {commands:>9} {uploads:>8}")
    print(f"({RUNS} runs each; goal: 1 connection per changed deploy, 0 for a no-op)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
