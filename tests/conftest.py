"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest

from infra.remote import ssh
from tests.support.flaky_proxy import FlakyProxy
from tests.support.keys_stack import build_stack
from tests.support.sshd import SKIP_REASON, SshdProcess, SshdServer, sshd_available


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory):
    """One real sshd for the session: starting one per test would cost more than every test it serves."""
    if not sshd_available():
        pytest.skip(SKIP_REASON)
    with SshdProcess(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def sshd(sshd_server, tmp_path) -> SshdServer:
    """The session's sshd, with a fresh `root` directory (use it as VmPaths(root=...)) for this test."""
    root = tmp_path / "vm"
    root.mkdir()
    return sshd_server.with_root(root)


@pytest.fixture
def keys_stack(sshd, tmp_path):
    """A deployed stack on the session's real sshd, driven by the keys CLI (tests/support/keys_stack.py)."""
    stack = build_stack(sshd, tmp_path / "work")
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def flaky_proxy():
    """Factory: `flaky_proxy(port, cut_after_bytes=N)` -> a started FlakyProxy, stopped at teardown."""
    started: list[FlakyProxy] = []

    def start(upstream_port: int, **options) -> FlakyProxy:
        proxy = FlakyProxy(upstream_port, **options).__enter__()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def ssh_stats():
    """The SSH layer's counters, zeroed for this test."""
    ssh.STATS.reset()
    return ssh.STATS


def pytest_terminal_summary(terminalreporter):
    """Names every skip reason once; each reason names the one command that enables its tests."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    terminalreporter.section("skipped tests, by reason")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count:4d}  {reason}")
