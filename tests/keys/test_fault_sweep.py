"""The rotation fault sweep: for each kind (signing, event, db), the connection to the VM is cut before
each remote command of a rotation in turn (the proxy then stays down for the rest of that run), against
the real sshd. In every case the stack keeps working on keys both sides agree on, the versions file names
only versions that can be read, the output says what happened and to run the command again, and a rerun
(once the network is back) completes. Each case starts a fresh rotation from where the last ended, so one
stack serves the whole sweep.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from infra import naming
from infra.keys.model import VERSIONS_FILE_NAME
from infra.remote import ssh
from tests.keys.test_rotation import assert_nothing_secret_leaked, assert_stack_working

MAX_STEPS = 40  # a bound; a rotation runs about a dozen remote commands
VERSION_VARIABLES = {"INNGEST_SIGNING_KEY": naming.SIGNING_KEY, "INNGEST_EVENT_KEY": naming.EVENT_KEY}


class CutBefore:
    """Counts the remote commands of every session opened; cuts the connection before command `at`."""

    def __init__(self, proxy, at: int):
        self.proxy, self.at, self.count = proxy, at, 0
        self.cut_before: str | None = None

    def connect(self, target):
        return _Counted(self, ssh.connect(target, attempts=1))


class _Counted:
    def __init__(self, cutter: CutBefore, session):
        self.cutter, self.session = cutter, session
        self.target = session.target

    def close(self):
        self.session.close()

    def run(self, argv, **options):
        if self.cutter.count == self.cutter.at:
            self.cutter.cut_before = argv[argv.index("-c") + 2] if "-c" in argv else argv[0]
            self.cutter.proxy.cut()
        self.cutter.count += 1
        return self.session.run(argv, **options)


def versions_named_are_readable(stack) -> None:
    text = (Path(stack.vm.paths.data) / VERSIONS_FILE_NAME).read_text() if (Path(stack.vm.paths.data) / VERSIONS_FILE_NAME).exists() else ""
    for line in text.splitlines():
        name, _, number = line.partition("=")
        if name in VERSION_VARIABLES and number:
            state = stack.states(VERSION_VARIABLES[name])[int(number)]
            assert state == "ENABLED", f"the versions file names {name}={number}, which is {state}: the stack would not start at the next boot"


@pytest.mark.parametrize("kind", ["signing", "event", "db"])
def test_a_cut_before_every_remote_command_of_a_rotation(keys_stack, flaky_proxy, capfd, kind):
    proxy = flaky_proxy(keys_stack.target.port)
    keys_stack.target = replace(keys_stack.target, port=proxy.port)
    cases = []
    for at in range(MAX_STEPS):
        cutter = CutBefore(proxy, at)
        keys_stack.stdout.truncate(0), keys_stack.stdout.seek(0), keys_stack.stderr.truncate(0), keys_stack.stderr.seek(0)
        code = keys_stack.run("rotate", kind, "--stack", "dev", "--yes", "--grace", "0s", connect=cutter.connect)
        said = keys_stack.output()
        proxy.heal()
        if cutter.cut_before is None:
            assert code == 0, said
            break
        case = f"{kind}: cut before command {at} ({cutter.cut_before}): exit {code}\n{said}"
        cases.append((at, cutter.cut_before, code))
        assert code in (0, 1, 3), case  # done (the cut fell after the last change), failed, or rolled back
        assert "run the same command again" in said or "rerun" in said or code == 0, case
        if code == 0:
            assert "could not give the VM's lock back" in said, case
        if kind == "db" and "rollback failed" in said:
            # One password per role: a cut after Cloud SQL took the new password and before the service did
            # cannot be undone while the VM is unreachable (the rollback moves Cloud SQL back, the service
            # keeps the new one). The output says so; the rerun below must converge. Two login roles per
            # database that take turns (issue 9, point 3) remove this window.
            assert "may run a mix of old and new keys" in said, case
        else:
            assert_stack_working(keys_stack, kind)
        versions_named_are_readable(keys_stack)
        # The rerun, with the network back, takes over the lock left behind and converges.
        rerun = keys_stack.run("rotate", kind, "--stack", "dev", "--yes", "--grace", "0s")
        assert rerun == 0, f"{case}\nrerun:\n{keys_stack.output()}"
        assert_stack_working(keys_stack, kind)
        versions_named_are_readable(keys_stack)
    cut = {name for _, name, _ in cases}
    assert {"lock-acquire", "read-state", "apply-versions", "check-services", "lock-release"} <= cut, cases
    assert_nothing_secret_leaked(keys_stack, capfd)
