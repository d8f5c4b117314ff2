"""/proc with hidepid=invisible on the VM (templates/hidepid.sh.j2, part of the startup script): the
exact lines, that they hold across reboots (/etc/fstab) and are idempotent, and, on this kernel, that
the option does what we claim: an unprivileged user can neither see nor read another user's process,
and a member of the exception group still can."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.startup import TEMPLATES, render_startup_script

BLOCK = (TEMPLATES / "hidepid.sh.j2").read_text()
GID = 4242  # the kit-proc group of the stand-in getent below

# STAND-INS for the commands that would change this machine's accounts and services.
GETENT = f"#!/bin/sh\n[ \"$1 $2\" = 'group kit-proc' ] && echo 'kit-proc:x:{GID}:'\n"
RECORDER = '#!/bin/sh\necho "$(basename "$0") $*" >> "$KIT_ROOT/calls"\n'


def test_the_startup_script_hides_other_users_processes_and_keeps_it_across_reboots():
    script = render_startup_script()
    assert BLOCK in script
    for line in (
        'PROC_OPTIONS="nosuid,nodev,noexec,hidepid=invisible,gid=$PROC_GID"',
        'PROC_LINE="proc /proc proc $PROC_OPTIONS 0 0"',
        'mount -o "remount,$PROC_OPTIONS" /proc',
        "getent group kit-proc >/dev/null || groupadd --system kit-proc",
        "SupplementaryGroups=kit-proc",
    ):
        assert f"\n{line}\n" in script, line
    # Before the stack comes up (Docker and the unit are installed below it).
    assert script.index("hidepid=invisible") < script.index("systemctl enable --now docker")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck (Debian package) is missing: run `sudo make test-deps`")
def test_the_block_is_clean_under_shellcheck(tmp_path):
    path = tmp_path / "hidepid.sh"
    path.write_text("#!/bin/bash\nset -euo pipefail\n" + BLOCK)
    result = subprocess.run(["shellcheck", "--shell=bash", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


class Machine:
    """A scratch /etc and stand-ins for getent, groupadd, systemctl (and mount, unless `real_mount`)."""

    def __init__(self, tmp_path: Path, fstab: str, real_mount: bool = False):
        self.root = tmp_path / "root"
        (self.root / "etc").mkdir(parents=True)
        (self.root / "etc" / "fstab").write_text(fstab)
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        stand_ins = {"getent": GETENT, "groupadd": RECORDER, "systemctl": RECORDER}
        if not real_mount:
            stand_ins["mount"] = RECORDER
        for name, text in stand_ins.items():
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        self.script = tmp_path / "hidepid.sh"
        self.script.write_text("#!/bin/bash\nset -euo pipefail\n" + BLOCK)

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin}:/usr/sbin:/usr/bin:/sbin:/bin", "KIT_ROOT": str(self.root)}

    def run(self) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(self.script)], env=self.env, capture_output=True, text=True, timeout=60)

    def fstab(self) -> str:
        return (self.root / "etc" / "fstab").read_text()

    def calls(self) -> list[str]:
        path = self.root / "calls"
        return path.read_text().splitlines() if path.exists() else []


FSTAB = "# /etc/fstab: static file system information.\nUUID=abcd / ext4 rw,discard,errors=remount-ro 0 1\nproc /proc proc defaults 0 0\n"
PROC_LINE = f"proc /proc proc nosuid,nodev,noexec,hidepid=invisible,gid={GID} 0 0"


def test_fstab_gets_one_proc_line_and_a_rerun_changes_nothing(tmp_path):
    machine = Machine(tmp_path, FSTAB)
    assert machine.run().returncode == 0
    first = machine.fstab()
    assert first == FSTAB.replace("proc /proc proc defaults 0 0", PROC_LINE)
    for unit in ("systemd-logind", "systemd-journald"):
        dropin = machine.root / "etc" / "systemd" / "system" / f"{unit}.service.d" / "kit-hidepid.conf"
        assert dropin.read_text() == "[Service]\nSupplementaryGroups=kit-proc\n"
    assert machine.calls() == ["systemctl daemon-reload", f"mount -o remount,nosuid,nodev,noexec,hidepid=invisible,gid={GID} /proc"]
    assert machine.run().returncode == 0
    assert machine.fstab() == first
    assert oct((machine.root / "etc" / "fstab").stat().st_mode & 0o777) == "0o644"


def test_an_fstab_without_a_proc_line_gets_one(tmp_path):
    machine = Machine(tmp_path, "UUID=abcd / ext4 defaults 0 1\n")
    assert machine.run().returncode == 0
    assert machine.fstab() == "UUID=abcd / ext4 defaults 0 1\n" + PROC_LINE + "\n"


def unshare_allowed() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create a mount and pid namespace (run `make test` as root)"
    for tool in ("unshare", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} (util-linux) is missing: run `sudo make test-deps`"
    probe = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"this machine does not permit mount and pid namespaces: {probe.stderr.strip()}"
    return None


# Inside a private mount and pid namespace with its own /proc: a root-owned process with a marker in
# its command line, what an unprivileged user sees of it before and after the block remounts this
# namespace's /proc, and what a member of the exception group sees.
PROOF = """set -u
python3 -c "import time; time.sleep(120)" kit-secret-marker &
target=$!
look() {
	setpriv --reuid=65534 --regid=65534 "$@" -- sh -c "
		if ls /proc | grep -qx $target; then echo listed; else echo unlisted; fi
		if tr '\\\\0' ' ' < /proc/$target/cmdline 2>/dev/null | grep -q kit-secret-marker; then echo read; else echo unread; fi
		if ps -eo args 2>/dev/null | grep -v grep | grep -q kit-secret-marker; then echo in-ps; else echo not-in-ps; fi
	"
}
echo "before: $(look --clear-groups | tr '\\n' ' ')"
bash "$1" || { echo "block failed"; kill "$target"; exit 1; }
echo "after: $(look --clear-groups | tr '\\n' ' ')"
echo "group: $(look --groups={gid} | tr '\\n' ' ')"
echo "mount: $(grep ' /proc proc ' /proc/self/mounts | tail -n 1)"
kill "$target"
"""


def test_on_this_kernel_an_unprivileged_user_cannot_see_or_read_another_users_process(tmp_path):
    reason = unshare_allowed()
    if reason:
        pytest.skip(reason)
    machine = Machine(tmp_path, FSTAB, real_mount=True)
    proof = tmp_path / "proof.sh"
    proof.write_text(PROOF.replace("{gid}", str(GID)))
    result = subprocess.run(
        ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "bash", str(proof), str(machine.script)],
        env=machine.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert result.returncode == 0, result.stdout + result.stderr
    # The control: without the option, nobody sees root's process and reads its command line.
    assert lines["before"].split() == ["listed", "read", "in-ps"]
    assert lines["after"].split() == ["unlisted", "unread", "not-in-ps"]
    assert lines["group"].split() == ["listed", "read", "in-ps"]  # the exception group still sees it
    assert "hidepid=invisible" in lines["mount"] and f"gid={GID}" in lines["mount"]
