"""`python -m infra lock status|release` through the parser, against the real sshd as the VM: a lock left
by a deploy whose connection was cut is seen, refused without confirmation, broken with --yes (only the
holding that was shown), and the next operation proceeds."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime

import pytest

from infra.ops import cli
from infra.ops import lock as vm_lock
from infra.ops.reach import OpsContext
from infra.remote.ssh import connect
from infra.remote.vm import Vm, VmPaths, VmTools

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.fixture
def context(sshd):
    vm = Vm(tools=VmTools(sudo=()), paths=VmPaths(root=str(sshd.root)))
    return OpsContext(target=sshd.target(), vm=vm, vm_name="acme-vm", domain=None, vm_state=lambda: "RUNNING", key_ages=lambda: "n/a")


def run(context, *argv):
    parser = argparse.ArgumentParser(prog="python -m infra")
    cli.register(parser.add_subparsers(dest="command", required=True), context_factory=lambda stack, via: context, now=lambda: NOW)
    args = parser.parse_args(list(argv))
    return args.func(args)


def left_by_a_cut_deploy(context) -> vm_lock.HeldLock:
    request = vm_lock.LockRequest(operation="deploy release 0a1b2c3d4e5f6a7b", command="pulumi up", by="ops@acme-example.com", ssh_user="ops_acme", client="laptop-1")
    with connect(context.target) as session:
        return vm_lock.acquire(session, context.vm, request, now=lambda: datetime(2026, 11, 24, 12, 0, tzinfo=UTC))


def test_status_of_a_free_lock_and_of_a_stale_one(context, capsys):
    assert run(context, "lock", "status") == 0
    assert capsys.readouterr().out == "unlocked: no operation holds the VM's lock\n"
    held = left_by_a_cut_deploy(context)
    assert run(context, "lock", "status") == 0
    out = capsys.readouterr().out
    assert "locked by ops@acme-example.com (SSH user ops_acme, from laptop-1)" in out
    assert "operation: deploy release 0a1b2c3d4e5f6a7b" in out and "command:   pulumi up" in out
    assert "since:     2026-11-24T12:00:00Z (3 h ago)" in out and f"lock id:   {held.details.token}" in out
    assert run(context, "lock", "status", "--json") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["locked"] is True and document["lock_id"] == held.details.token and document["holder"]["command"] == "pulumi up"


def test_release_needs_confirmation_then_breaks_only_the_lock_it_showed(context, capsys, monkeypatch):
    held = left_by_a_cut_deploy(context)
    monkeypatch.setattr("sys.stdin", io.StringIO())  # no terminal
    assert run(context, "lock", "release") == 2
    assert "pass --yes" in capsys.readouterr().err
    assert run(context, "lock", "release", "--yes", "--id", "not-this-one") == 1
    assert "not not-this-one" in capsys.readouterr().err
    with connect(context.target) as session:
        assert vm_lock.read(session, context.vm).token == held.details.token

    assert run(context, "lock", "release", "--yes", "--id", held.details.token) == 0
    assert "released: the VM's lock is free" in capsys.readouterr().out
    with connect(context.target) as session:
        assert vm_lock.read(session, context.vm).verdict == "free"
        # The next operation takes it at once.
        request = vm_lock.LockRequest(operation="keys rotate event", command="python -m infra keys rotate event", by="someone@acme-example.com", ssh_user="x")
        assert vm_lock.acquire(session, context.vm, request, wait=0).took_over is None
    with open(context.vm.paths.audit_log) as log:
        audit = log.read().splitlines()
    assert json.loads(audit[-1])["action"] == "lock-broken" and json.loads(audit[-1])["holder"]["token"] == held.details.token
    assert run(context, "lock", "release", "--yes") == 0  # held by the new operation now: shown, then broken on --yes
