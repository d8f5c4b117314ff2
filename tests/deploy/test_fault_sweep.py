# ruff: noqa: F811  (the deploy fixtures are imported from test_deploy_e2e and named as parameters)
"""The fault sweep: the connection is cut at every remote step of a deploy (a first deploy and a change
deploy), against the real sshd through a FlakyProxy. In every case:
- `current` names the old release or the new one, and the live files match the live manifest;
- the message says what happened in words an operator can act on;
- a rerun converges on the new release and leaves the lock free.

Two ways to cut at step k:
- outage: the connection drops before step k is sent, and stays down for the rest of the run (no
  rollback connection can be opened);
- reply-lost: step k runs on the VM, then the connection drops before its answer arrives (the error
  is the one the SSH layer raises then), and the network comes back at once, so the rollback's fresh
  connection works.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from infra.deploy.deploy import DeployError, deploy
from infra.deploy.release import file_manifest, parse_manifest, release_id_for
from infra.ops import lock as vm_lock
from infra.remote.ssh import SshConnectionError, connect
from tests.deploy.support import EXECUTABLE_FILES, LocalSession, restarted_by, stack_files
from tests.deploy.test_deploy_e2e import fake, probe, stand  # noqa: F401  (fixtures)

MAX_STEPS = 40  # a bound on the sweep; a deploy has about 18 remote steps


class CutAtStep:
    """Counts the remote steps (commands and uploads) of every session it opens; cuts at step `at`."""

    def __init__(self, proxy, target, at: int, mode: str):
        self.proxy, self.target, self.at, self.mode = proxy, target, at, mode
        self.count = 0
        self.cut_during: str | None = None

    def open(self):
        return _Counted(self, connect(self.target))

    def before(self, what: str) -> None:
        if self.count == self.at and self.mode == "outage":
            self.cut_during = what
            self.proxy.cut()

    def after(self, what: str) -> None:
        at = self.count
        self.count += 1
        if at == self.at and self.mode == "reply-lost":
            self.cut_during = what
            self.proxy.cut()
            self.proxy.heal()
            raise SshConnectionError(f"the connection was lost while running {what} (cut by the test after it ran)")


def _name(argv) -> str:
    if "-c" in argv:
        return argv[argv.index("-c") + 2]  # the constant script's $0
    return " ".join(os.path.basename(word) for word in argv[:4])


class _Counted:
    def __init__(self, cutter: CutAtStep, session):
        self.cutter, self.session = cutter, session

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.session.close()

    def run(self, argv, **options):
        what = _name(argv)
        self.cutter.before(what)
        try:
            result = self.session.run(argv, **options)
        except BaseException:
            self.cutter.count += 1
            raise
        self.cutter.after(what)
        return result

    def upload(self, path, content, mode=0o644):
        what = f"upload {os.path.basename(path)}"
        self.cutter.before(what)
        try:
            self.session.upload(path, content, mode)
        except BaseException:
            self.cutter.count += 1
            raise
        self.cutter.after(what)


def live_release_is_whole(stand) -> str | None:
    """The live release id, after checking every live file against the live manifest."""
    current = stand.vm.paths.current
    if not os.path.islink(current):
        return None
    manifest = parse_manifest(Path(current, ".manifest.json").read_text())
    assert manifest is not None, "`current` names a release without a valid manifest"
    for path, digest in manifest.items():
        assert file_manifest({path: Path(current, path).read_text()})[path] == digest, f"live {path} does not match the manifest"
    return os.path.basename(os.readlink(current))


ACTIONABLE = ("run `pulumi up` again", "Run `pulumi up` again")
WHAT_HAPPENED = ("connection to the VM was lost", "lost while running", "cut by the test")


class Snapshot:
    """The VM's data directory and the docker stand-in's state, saved once and put back before each cut."""

    def __init__(self, stand, fake):
        self.paths = [Path(stand.vm.paths.data), fake.directory / "state"]
        self.saved = [path.with_name(path.name + ".snapshot") for path in self.paths]
        for path, saved in zip(self.paths, self.saved, strict=True):
            if path.exists():
                shutil.copytree(path, saved, symlinks=True)

    def restore(self):
        for path, saved in zip(self.paths, self.saved, strict=True):
            shutil.rmtree(path, ignore_errors=True)
            if saved.exists():
                shutil.copytree(saved, path, symlinks=True)


def sweep(stand, sshd, fake, proxy, *, old_files, new_files, mode):
    old_id = release_id_for(file_manifest(old_files)) if old_files else None
    new_id = release_id_for(file_manifest(new_files))
    snapshot = Snapshot(stand, fake)
    seen = []
    for at in range(MAX_STEPS):
        snapshot.restore()
        cutter = CutAtStep(proxy, sshd.target(port=proxy.port), at, mode)
        outcome, message = "succeeded", ""
        try:
            result = stand.run(new_files, session_factory=cutter.open)
            message = "\n".join(result.warnings)
        except DeployError as error:
            outcome, message = "failed", str(error)
        proxy.heal()
        if cutter.cut_during is None:
            assert outcome == "succeeded", message
            break  # every step has been cut once
        seen.append((at, cutter.cut_during, outcome))
        case = f"cut ({mode}) at step {at}, {cutter.cut_during}: {outcome}\n{message}"
        live = live_release_is_whole(stand)
        assert live in (old_id, new_id), case
        assert "refused the deploy key" not in message and "OSError: Failure" not in message, case
        if outcome == "failed":
            assert any(words in message for words in ACTIONABLE), case
            assert any(words in message for words in WHAT_HAPPENED), case
        elif message:
            # After verification the deploy has succeeded; what did not finish is a warning naming its fix.
            assert live == new_id and ("`previous`" in message or "audit log" in message or "lock" in message), case
        # The rerun (same argv without SSH: this is about convergence) takes over any lock left behind.
        rerun = deploy(LocalSession, new_files, None, stand.vm, owner=sshd.user, restarted_by=restarted_by, executable_files=EXECUTABLE_FILES, settings=stand.settings)
        assert rerun.release_id == new_id == live_release_is_whole(stand), case
        assert vm_lock.read(LocalSession(), stand.vm).verdict == "free", case
    steps = " ".join(what for _, what, _ in seen)
    for step in ("lock-acquire", "manifest.json", "prepare-release", "upload", "verify-release", "switch-link", "fetch-secrets", "compose", "curl", "tee", "lock-release"):
        assert step in steps, f"the sweep never cut during {step}: {seen}"
    return seen


def test_a_cut_at_every_step_of_a_first_deploy(stand, sshd, fake, flaky_proxy):  # noqa: F811
    # Outage only: with nothing to roll back to, a lost reply after the switch is the same case as a
    # cut before the next step, which the outage sweep covers.
    proxy = flaky_proxy(sshd.port)
    sweep(stand, sshd, fake, proxy, old_files=None, new_files=stack_files(sshd.root), mode="outage")


@pytest.mark.parametrize("mode", ["outage", "reply-lost"])
def test_a_cut_at_every_step_of_a_change_deploy(stand, sshd, fake, flaky_proxy, mode):  # noqa: F811
    proxy = flaky_proxy(sshd.port)
    old = stack_files(sshd.root)
    stand.seed(old)
    sweep(stand, sshd, fake, proxy, old_files=old, new_files=stack_files(sshd.root, log_level="debug", caddy_port=8080), mode=mode)
