"""The VM's disks as the operator meets them: free space, and a full disk said in words one can act on.

SFTP reports a write to a full disk as a bare `Failure` (SSH_FX_FAILURE; paramiko raises
`OSError: Failure`), and the shell tools as "No space left on device". Both become one message that
names the disk and says how to free space.
"""

from __future__ import annotations

from infra import layout
from infra.remote.vm import Vm

NO_SPACE_WORDS = ("No space left on device", "Disk quota exceeded")
MIN_FREE_KB = 1024  # below this a data disk is full for any practical purpose


def free_space(vm: Vm, path: str) -> list[str]:
    """Prints POSIX `df` output for the filesystem holding `path` (kilobytes)."""
    return ["df", "-P", "-k", "--", path]


def parse_free_kb(stdout: str) -> int | None:
    """Available kilobytes from `df -P -k` output, or None when it cannot be read."""
    lines = [line.split() for line in stdout.splitlines() if line.strip()]
    if len(lines) < 2 or len(lines[1]) < 4 or not lines[1][3].isdigit():
        return None
    return int(lines[1][3])


def says_no_space(text: str) -> bool:
    return any(words in text for words in NO_SPACE_WORDS)


def full_disk_message(vm: Vm, where: str, free_kb: int | None) -> str:
    free = "no" if free_kb is None else f"{free_kb} KB of"
    return (
        f"the VM's disk is full: {where} has {free} free space left. Nothing of the new release went live. "
        f"Free space on the VM (`python -m infra ssh`): delete old releases under {vm.paths.releases}/ "
        f"(never the ones {layout.CURRENT_LINK} and {layout.PREVIOUS_LINK} point to), remove unused images with "
        "`sudo docker image prune -a`, or grow the data disk; then run the same command again."
    )
