"""The VM lock: its builders as exact argv, its scripts run for real (locally: they are plain sh), and
the wait/takeover/refusal logic over them. The races it prevents are in test_lock_races.py."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.ops import lock as vm_lock
from infra.remote import lock as lock_commands
from infra.remote.lock import LockDetails
from infra.remote.vm import Vm, VmPaths, VmTools
from tests.deploy.support import LocalSession

SINCE = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def local_vm(tmp_path) -> Vm:
    return Vm(tools=VmTools(sudo=()), paths=VmPaths(root=str(tmp_path)))


def request(operation="deploy release 1111", by="ops@acme-example.com", command="pulumi up") -> vm_lock.LockRequest:
    return vm_lock.LockRequest(operation=operation, command=command, by=by, ssh_user="ops_acme_example_com", client="laptop-1")


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_builders_are_constant_scripts_with_values_as_parameters():
    vm = Vm()
    assert lock_commands.acquire(vm, "t1") == ["sudo", "-n", "sh", "-c", lock_commands.ACQUIRE_SCRIPT, "lock-acquire", "/srv/kit/lock", "t1"]
    assert lock_commands.take_over(vm, "t1", "t2") == ["sudo", "-n", "sh", "-c", lock_commands.TAKE_OVER_SCRIPT, "lock-take-over", "/srv/kit/lock", "t1", "t2"]
    assert lock_commands.release(vm, "t1") == ["sudo", "-n", "sh", "-c", lock_commands.RELEASE_SCRIPT, "lock-release", "/srv/kit/lock", "t1"]
    assert lock_commands.status(vm) == ["sudo", "-n", "sh", "-c", lock_commands.STATUS_SCRIPT, "lock-status", "/srv/kit/lock"]


def test_the_scripts_pass_shellcheck(tmp_path):
    for name in ("ACQUIRE_SCRIPT", "TAKE_OVER_SCRIPT", "RELEASE_SCRIPT", "STATUS_SCRIPT"):
        script = tmp_path / f"{name}.sh"
        script.write_text("#!/bin/sh\n" + getattr(lock_commands, name))
        completed = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, check=False)
        assert completed.returncode == 0, f"{name}: {completed.stdout}"


def test_of_many_acquisitions_at_once_exactly_one_wins_and_the_others_see_its_details(tmp_path):
    vm = local_vm(tmp_path)
    details = [request(operation=f"op {n}").details(f"token{n}", SINCE) for n in range(12)]

    def attempt(holding: LockDetails):
        completed = subprocess.run(lock_commands.acquire(vm, holding.token), input=holding.to_json(), capture_output=True, check=True)
        return lock_commands.parse(completed.stdout.decode())

    with ThreadPoolExecutor(max_workers=12) as pool:
        states = list(pool.map(attempt, details))
    winners = [n for n, state in enumerate(states) if state.verdict == lock_commands.ACQUIRED]
    assert len(winners) == 1
    winner = details[winners[0]]
    for state in states:
        if state.verdict == lock_commands.HELD:
            assert (state.token, state.details) in ((winner.token, winner), (None, None), (winner.token, None))


def test_release_removes_only_the_holding_it_names(tmp_path):
    vm, session = local_vm(tmp_path), LocalSession()
    held = vm_lock.acquire(session, vm, request())
    assert vm_lock.break_lock(session, vm, "someone-elses-token") == lock_commands.NOT_OURS
    assert Path(vm.paths.lock).is_dir()
    assert held.release(session) == lock_commands.RELEASED
    assert not Path(vm.paths.lock).exists()
    assert held.release(session) == lock_commands.FREE


def test_a_second_operation_waits_with_progress_then_fails_naming_holder_command_and_since(tmp_path):
    vm, session, clock = local_vm(tmp_path), LocalSession(), FakeClock()
    vm_lock.acquire(session, vm, request(operation="keys rotate signing", command="python -m infra keys rotate signing"), now=lambda: SINCE)
    said = []
    with pytest.raises(vm_lock.LockBusy) as caught:
        vm_lock.acquire(session, vm, request(operation="deploy release 2222"), wait=10, poll=3, report=said.append, clock=clock, sleep=clock.sleep)
    message = str(caught.value)
    assert "locked by ops@acme-example.com (SSH user ops_acme_example_com, from laptop-1)" in message
    assert "`python -m infra keys rotate signing`" in message and "since 2026-11-24T12:00:00Z" in message
    assert "waited 10 s" in message and "python -m infra lock release" in message and "INNGEST_KIT_LOCK_WAIT" in message
    assert said[0].startswith("lock: the VM is locked by ops@acme-example.com") and "waiting up to 10 s" in said[0]
    assert said[1:] == ["lock: still locked; 7 s left", "lock: still locked; 4 s left", "lock: still locked; 1 s left"]
    assert clock.sleeps == [3, 3, 3, 1]


def test_a_waiting_operation_gets_the_lock_once_the_holder_gives_it_back(tmp_path):
    vm, session, clock = local_vm(tmp_path), LocalSession(), FakeClock()
    first = vm_lock.acquire(session, vm, request(operation="keys prune"))

    def sleep(seconds):
        clock.sleep(seconds)
        first.release(session)  # the holder finishes while the second one waits

    second = vm_lock.acquire(session, vm, request(), wait=30, poll=1, clock=clock, sleep=sleep)
    assert vm_lock.read(session, vm).details == second.details and clock.sleeps == [1]


def test_a_rerun_of_the_same_operation_takes_its_stale_lock_over_and_says_so(tmp_path):
    vm, session = local_vm(tmp_path), LocalSession()
    stale = vm_lock.acquire(session, vm, request(), now=lambda: SINCE)  # the run whose connection was cut
    said = []
    rerun = vm_lock.acquire(session, vm, request(), wait=0, report=said.append)
    assert rerun.took_over == stale.details
    assert said == [f"lock: taking over the lock left by an interrupted run of this same operation: {stale.details.describe()}"]
    assert vm_lock.read(session, vm).token == rerun.details.token
    assert stale.release(session) == lock_commands.NOT_OURS  # the old holding can no longer remove it
    # Another person's run of the same operation is not a rerun: it waits like anyone else.
    with pytest.raises(vm_lock.LockBusy):
        vm_lock.acquire(session, vm, request(by="someone-else@acme-example.com"), wait=0)


def test_only_one_of_two_reruns_takes_over_the_same_stale_lock(tmp_path):
    vm = local_vm(tmp_path)
    stale = request().details("stale", SINCE)
    subprocess.run(lock_commands.acquire(vm, "stale"), input=stale.to_json(), check=True, capture_output=True)
    verdicts = []
    for token in ("rerun-a", "rerun-b"):
        completed = subprocess.run(lock_commands.take_over(vm, "stale", token), input=request().details(token, SINCE).to_json(), capture_output=True, check=True)
        verdicts.append(lock_commands.parse(completed.stdout.decode()).verdict)
    assert verdicts == [lock_commands.TAKEN_OVER, lock_commands.LOST]
    assert Path(vm.paths.lock, "token").read_text().strip() == "rerun-a"


def test_status_shows_the_holder_and_how_to_break_it_and_a_lock_without_details(tmp_path):
    vm, session = local_vm(tmp_path), LocalSession()
    assert vm_lock.status_lines(vm_lock.read(session, vm), SINCE) == ["unlocked: no operation holds the VM's lock"]
    held = vm_lock.acquire(session, vm, request(), now=lambda: SINCE)
    lines = vm_lock.status_lines(vm_lock.read(session, vm), datetime(2026, 11, 24, 14, 30, tzinfo=UTC))
    assert lines[:5] == [
        "locked by ops@acme-example.com (SSH user ops_acme_example_com, from laptop-1)",
        "  operation: deploy release 1111",
        "  command:   pulumi up",
        "  since:     2026-11-24T12:00:00Z (2 h ago)",
        f"  lock id:   {held.details.token}",
    ]
    # An acquisition cut between its mkdir and its details: still a lock, shown as such, breakable.
    held.release(session)
    Path(vm.paths.lock).mkdir()
    state = vm_lock.read(session, vm)
    assert state.details is None and "cut short" in vm_lock.status_lines(state, SINCE)[0]
    assert vm_lock.break_lock(session, vm, state.token or "") == lock_commands.RELEASED


def test_the_wait_comes_from_the_environment_and_a_bad_value_names_the_variable(monkeypatch):
    monkeypatch.delenv(vm_lock.LOCK_WAIT_ENV, raising=False)
    assert vm_lock.wait_from_environment() == vm_lock.DEFAULT_WAIT
    monkeypatch.setenv(vm_lock.LOCK_WAIT_ENV, "120")
    assert vm_lock.wait_from_environment() == 120.0
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv(vm_lock.LOCK_WAIT_ENV, bad)
        with pytest.raises(ValueError, match="INNGEST_KIT_LOCK_WAIT"):
            vm_lock.wait_from_environment()
