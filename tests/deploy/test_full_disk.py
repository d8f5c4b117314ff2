# ruff: noqa: F811  (the deploy fixtures are imported from test_deploy_e2e and named as parameters)
"""A full disk on the VM, for real: the VM's root directory is a small tmpfs, filled at the step under
test. The deploy must fail cleanly with words an operator can act on (not `OSError: Failure`), leave
the old release current and whole, and converge once space is freed. Plus the repair of a release that
an older kit left with empty files under a valid manifest."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from infra.deploy.deploy import DeployError
from infra.deploy.release import file_manifest, release_id_for
from infra.remote.ssh import connect
from tests.deploy.support import stack_files
from tests.deploy.test_deploy_e2e import fake, probe, stand  # noqa: F401  (fixtures)
from tests.deploy.test_fault_sweep import live_release_is_whole

TMPFS_SIZE = "4m"


@pytest.fixture
def small_disk(sshd):
    """Mounts a tmpfs over the VM's root directory (the test's own temporary directory)."""
    root = Path(sshd.root)
    completed = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755", "tmpfs", str(root)], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root with CAP_SYS_ADMIN (run the suite as root, as `make test` does): {completed.stderr.strip()}")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def fill(root: Path) -> Path:
    """Writes one file until the disk has no room left; returns it (delete it to free the space)."""
    filler = root / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (65536, 512):  # then the last partial page
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as error:
                    assert error.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return filler


class FillBefore:
    """A real SSH session that fills the disk just before the first step matching `trigger`."""

    def __init__(self, target, root: Path, trigger):
        self.session, self.root, self.trigger = connect(target), root, trigger
        self.filled = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.session.close()

    def _maybe_fill(self, what):
        if not self.filled and self.trigger(what):
            fill(self.root)
            self.filled = True

    def run(self, argv, **options):
        self._maybe_fill(" ".join(argv))
        return self.session.run(argv, **options)

    def upload(self, path, content, mode=0o644):
        self._maybe_fill(f"upload {path}")
        return self.session.upload(path, content, mode)


@pytest.mark.parametrize("where", ["copy", "upload"])
def test_a_full_disk_fails_the_deploy_cleanly_names_the_disk_and_a_rerun_converges_once_space_is_freed(stand, sshd, small_disk, where):
    first = stand.seed(stack_files(sshd.root))
    changed = stack_files(sshd.root, log_level="debug")
    trigger = (lambda what: "prepare-release" in what) if where == "copy" else (lambda what: what.startswith("upload "))

    with pytest.raises(DeployError) as caught:
        stand.run(changed, session_factory=lambda: FillBefore(sshd.target(), small_disk, trigger))

    message = str(caught.value)
    assert "the VM's disk is full" in message, message
    assert "docker image prune" in message and "releases" in message and "run the same command again" in message
    assert "OSError" not in message and "Failure" not in message
    assert f"Release {first.release_id} is still current and untouched" in message
    assert live_release_is_whole(stand) == first.release_id

    (small_disk / "filler").unlink()
    rerun = stand.run(changed)
    assert rerun.release_id == release_id_for(file_manifest(changed)) == live_release_is_whole(stand)


def test_a_full_disk_when_taking_the_lock_says_so_and_changes_nothing(stand, sshd, small_disk):
    first = stand.seed(stack_files(sshd.root))
    filler = fill(small_disk)
    with pytest.raises(DeployError, match="did not start: the VM's disk is full"):
        stand.run(stack_files(sshd.root, log_level="debug"))
    assert live_release_is_whole(stand) == first.release_id and not os.path.exists(stand.vm.paths.lock)
    filler.unlink()


def test_a_release_left_complete_but_with_empty_files_by_an_older_kit_is_repaired_by_the_rerun(stand, sshd):
    """Before prepare checked every file, such a release was "complete" forever and went live empty."""
    old = stand.seed(stack_files(sshd.root))
    changed = stack_files(sshd.root, log_level="debug")
    new = stand.seed(changed)
    Path(stand.vm.paths.release(new.release_id), "app.env").write_text("")  # what the full disk left
    stand.seed(stack_files(sshd.root))  # back to the old release, the broken one still on disk
    assert live_release_is_whole(stand) == old.release_id

    rerun = stand.run(changed)
    assert rerun.release_id == new.release_id == live_release_is_whole(stand)
    assert rerun.uploaded  # rebuilt, not taken as complete
