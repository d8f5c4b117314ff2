"""The keys CLI and the VM's lock, on the real sshd: a rotation or prune refuses to start while another
operation holds the lock (exit 5, naming it, changing nothing); a dry run needs no lock; a rerun of an
interrupted rotation takes its own stale lock over; the lock is given back after every run."""

from __future__ import annotations

from datetime import UTC, datetime

from infra import naming
from infra.ops import lock as vm_lock
from infra.remote.ssh import connect


def hold(stack, operation="deploy release 0a1b2c3d4e5f6a7b", by="ci@acme-example.com") -> vm_lock.HeldLock:
    request = vm_lock.LockRequest(operation=operation, command="pulumi up", by=by, ssh_user=stack.target.user, client="ci-runner")
    with connect(stack.target) as session:
        return vm_lock.acquire(session, stack.vm, request, now=lambda: datetime(2026, 11, 24, 12, 0, tzinfo=UTC))


def lock_state(stack):
    with connect(stack.target) as session:
        return vm_lock.read(session, stack.vm)


def test_a_rotation_does_not_start_while_a_deploy_holds_the_lock(keys_stack):
    hold(keys_stack)
    assert keys_stack.run("rotate", "event", "--stack", "dev", "--yes", "--lock-wait", "0s") == 5
    err = keys_stack.stderr.getvalue()
    assert "not started: the VM is locked by ci@acme-example.com" in err and "`pulumi up` (deploy release 0a1b2c3d4e5f6a7b) since 2026-11-24T12:00:00Z" in err
    assert keys_stack.states(naming.EVENT_KEY) == {1: "ENABLED"} and keys_stack.versions_file() is None
    assert keys_stack.run("prune", "--stack", "dev", "--yes", "--lock-wait", "0s") == 5
    assert keys_stack.run("rotate", "event", "--stack", "dev", "--dry-run") == 0  # changes nothing, needs no lock


def test_a_rotation_gives_the_lock_back_and_its_rerun_takes_over_a_stale_one(keys_stack):
    assert keys_stack.run("rotate", "event", "--stack", "dev", "--yes") == 0
    assert lock_state(keys_stack).verdict == "free"
    # What a run cut off after taking the lock leaves: the same operation, by the same operator.
    hold(keys_stack, operation="keys rotate event", by="ops@acme-example.com")
    assert keys_stack.run("rotate", "event", "--stack", "dev", "--yes") == 0, keys_stack.output()
    assert "taking over the lock left by an interrupted run of this same operation: ops@acme-example.com" in keys_stack.output()
    assert lock_state(keys_stack).verdict == "free"
