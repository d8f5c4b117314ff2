"""The deploy's first remote step, against the real sshd: it waits for the VM's startup script to
record completion of the expected version, reruns a changed script, and fails with the commands that
show the startup logs. The VM's record is written by the test at a chosen poll (through `sleep`), or
by a stand-in for `systemctl` playing the guest agent's unit."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import layout
from infra.deploy.ready import ReadySettings, VmNotReady, Where, wait_until_ready
from infra.remote import ssh
from infra.remote.startup_record import parse_record, startup_log_commands
from infra.remote.vm import Vm, VmPaths, VmTools

EXPECTED = "a" * 64
OLD = "b" * 64
WHERE = Where("acme-vm", "us-central1-a", "acme-web-prod")
SERIAL = "gcloud compute instances get-serial-port-output acme-vm --zone us-central1-a --project acme-web-prod"
JOURNAL = "gcloud compute ssh acme-vm --zone us-central1-a --project acme-web-prod --tunnel-through-iap -- sudo journalctl -u google-startup-scripts --no-pager"


class Clock:
    """Monotonic time that moves only when the code under test sleeps."""

    def __init__(self, on_sleep=None):
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))


def record_path(root: Path) -> Path:
    return root / layout.STARTUP_RECORD.lstrip("/")


def write_record(root: Path, version: str, completed: str = "2026-11-24T22:00:00Z", ops_agent: str = "installed") -> None:
    path = record_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"version={version}\ncompleted={completed}\nops_agent={ops_agent}\n")


def systemctl_stand_in(directory: Path, root: Path, writes_version: str, state: str = "activating") -> tuple[str, Path]:
    """A stand-in for `sudo systemctl` (tests only): records argv; `is-active` answers `state`;
    `start` writes the record as the rerun script would."""
    log = directory / "systemctl.log"
    program = directory / "systemctl"
    program.write_text(
        "#!/bin/sh\n"
        f"[ \"$1\" = is-active ] && {{ echo {state}; exit 3; }}\n"
        f"echo \"$*\" >> {log}\n"
        f"mkdir -p {record_path(root).parent}\n"
        f"[ \"$1\" = start ] && printf 'version={writes_version}\\ncompleted=2026-11-24T23:00:00Z\\nops_agent=installed\\n' > {record_path(root)}\n"
        "exit 0\n"
    )
    program.chmod(0o755)
    return str(program), log


def vm_at(root: Path, systemctl: str = "false") -> Vm:
    return Vm(tools=VmTools(sudo=(), systemctl=(systemctl,)), paths=VmPaths(root=str(root)))


def test_waits_for_the_record_that_appears_later_and_shows_progress(sshd):
    clock = Clock(on_sleep=lambda calls: calls == 3 and write_record(sshd.root, EXPECTED))
    progress: list[str] = []
    with ssh.connect(sshd.target()) as session:
        record = wait_until_ready(session, vm_at(sshd.root), EXPECTED, where=WHERE, settings=ReadySettings(timeout=60, poll_interval=5), progress=progress.append, clock=clock, sleep=clock.sleep)
    assert record.version == EXPECTED
    assert clock.sleeps == [5, 5, 5]
    assert progress == [
        f"waiting for the VM's startup script (version {EXPECTED[:12]}, not finished yet): {seconds} s of at most 60 s" for seconds in (0, 5, 10)
    ]


def test_a_record_that_never_appears_fails_within_the_bound_naming_the_startup_logs(sshd):
    clock = Clock()
    with ssh.connect(sshd.target()) as session, pytest.raises(VmNotReady) as failure:
        wait_until_ready(session, vm_at(sshd.root), EXPECTED, where=WHERE, settings=ReadySettings(timeout=30, poll_interval=10), progress=lambda line: None, clock=clock, sleep=clock.sleep)
    assert sum(clock.sleeps) == 30
    message = str(failure.value)
    assert "did not complete version aaaaaaaaaaaa within 30 s: no completion record yet" in message
    assert f"  {SERIAL}\n" in message and f"  {JOURNAL}\n" in message
    assert "Nothing was deployed" in message


def test_an_old_version_is_rerun_in_the_guest_agents_unit_without_a_reboot(sshd, tmp_path):
    write_record(sshd.root, OLD)
    systemctl, log = systemctl_stand_in(tmp_path, sshd.root, writes_version=EXPECTED)
    clock = Clock()
    progress: list[str] = []
    with ssh.connect(sshd.target()) as session:
        record = wait_until_ready(session, vm_at(sshd.root, systemctl), EXPECTED, where=WHERE, settings=ReadySettings(timeout=60, poll_interval=5), progress=progress.append, clock=clock, sleep=clock.sleep)
    assert record.version == EXPECTED
    assert log.read_text() == "start --no-block google-startup-scripts.service\n"
    assert progress[0] == f"the VM's startup script last completed as version {OLD[:12]}, this deploy needs {EXPECTED[:12]}: running it again on the VM (no reboot needed)"


def test_a_rerun_that_keeps_recording_the_old_version_fails_and_says_which_version_it_saw(sshd, tmp_path):
    write_record(sshd.root, OLD)
    systemctl, log = systemctl_stand_in(tmp_path, sshd.root, writes_version=OLD)  # the metadata server still serves the old script
    clock = Clock()
    with ssh.connect(sshd.target()) as session, pytest.raises(VmNotReady) as failure:
        wait_until_ready(session, vm_at(sshd.root, systemctl), EXPECTED, where=WHERE, settings=ReadySettings(timeout=20, poll_interval=5), progress=lambda line: None, clock=clock, sleep=clock.sleep)
    # Once for the first record, once more for the rerun's own (new completion time), then it waits.
    assert log.read_text().splitlines() == ["start --no-block google-startup-scripts.service"] * 2
    assert f"its record names version {OLD[:12]} (completed 2026-11-24T23:00:00Z)" in str(failure.value)


def test_a_script_that_ended_without_a_record_is_rerun_once(sshd, tmp_path):
    """A VM set up before the script recorded itself, or a failed boot run: nothing is running, nothing recorded."""
    systemctl, log = systemctl_stand_in(tmp_path, sshd.root, writes_version=EXPECTED, state="inactive")
    progress: list[str] = []
    clock = Clock()
    with ssh.connect(sshd.target()) as session:
        record = wait_until_ready(session, vm_at(sshd.root, systemctl), EXPECTED, where=WHERE, settings=ReadySettings(timeout=60, poll_interval=5), progress=progress.append, clock=clock, sleep=clock.sleep)
    assert record.version == EXPECTED
    assert log.read_text() == "start --no-block google-startup-scripts.service\n"
    assert progress[0] == "the VM's startup script is not running and recorded no completion: running it again on the VM"


def test_a_script_still_running_is_not_started_twice(sshd, tmp_path):
    systemctl, log = systemctl_stand_in(tmp_path, sshd.root, writes_version=EXPECTED, state="activating")
    clock = Clock()
    with ssh.connect(sshd.target()) as session, pytest.raises(VmNotReady):
        wait_until_ready(session, vm_at(sshd.root, systemctl), EXPECTED, where=WHERE, settings=ReadySettings(timeout=10, poll_interval=5), progress=lambda line: None, clock=clock, sleep=clock.sleep)
    assert not log.exists()


def test_a_failed_ops_agent_is_a_warning_not_a_failure(sshd):
    write_record(sshd.root, EXPECTED, ops_agent="failed")
    progress: list[str] = []
    with ssh.connect(sshd.target()) as session:
        record = wait_until_ready(session, vm_at(sshd.root), EXPECTED, where=WHERE, progress=progress.append)
    assert record.ops_agent == "failed"
    assert len(progress) == 1 and progress[0].startswith("warning: the VM's startup script could not install the Ops Agent") and JOURNAL in progress[0]


def test_record_parsing_and_log_commands():
    assert parse_record("") is None and parse_record("completed=x\n") is None
    assert parse_record(f"version={EXPECTED}\ncompleted=T\nops_agent=installed\n").version == EXPECTED
    assert startup_log_commands("vm", None, None, via_iap=False) == [
        "gcloud compute instances get-serial-port-output vm",
        "gcloud compute ssh vm -- sudo journalctl -u google-startup-scripts --no-pager",
    ]
