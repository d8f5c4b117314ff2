"""The startup script's completion record on the VM: the commands that read it and rerun the script,
and the parser of what they print (pure). The record's format is set by templates/startup.sh.j2."""

from __future__ import annotations

from dataclasses import dataclass

from infra import layout
from infra.remote.vm import Vm


@dataclass(frozen=True)
class StartupRecord:
    version: str  # the sha256 the script was rendered with (infra.startup.startup_script_version)
    completed: str  # when it finished, UTC, ISO 8601
    ops_agent: str  # "installed" or "failed": the Ops Agent is optional and never stops the script


def read_record(vm: Vm) -> list[str]:
    # World-readable and outside the data disk: readable before sudo or the data disk work.
    return ["cat", vm.paths.startup_record]


def rerun_startup_script(vm: Vm) -> list[str]:
    """Run the metadata startup script again, in the guest agent's own unit (so its output goes where
    the boot run's went: the journal and the serial console). `--no-block`: a dropped SSH connection
    cannot cut it short. A oneshot unit still running is joined, not started twice."""
    return [*vm.tools.systemctl, "start", "--no-block", layout.STARTUP_SCRIPT_UNIT]


def startup_script_state(vm: Vm) -> list[str]:
    """`activating` while the script runs; `inactive` or `failed` once it has ended (a oneshot unit)."""
    return [*vm.tools.systemctl, "is-active", layout.STARTUP_SCRIPT_UNIT]


def startup_journal_tail(vm: Vm, lines: int = 15) -> list[str]:
    return [*vm.tools.sudo, "journalctl", "-u", layout.STARTUP_SCRIPT_UNIT, "-n", str(lines), "--no-pager", "-o", "cat"]


def parse_record(text: str) -> StartupRecord | None:
    """The record from the file's text; None when it is empty or lacks a version (a run in progress)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip()] = value.strip()
    if not fields.get("version"):
        return None
    return StartupRecord(fields["version"], fields.get("completed", ""), fields.get("ops_agent", ""))


def startup_log_commands(vm_name: str, zone: str | None, project: str | None, *, via_iap: bool = True) -> list[str]:
    """The exact commands that show what the startup script did, for error messages."""
    where = "".join(f" --{flag} {value}" for flag, value in (("zone", zone), ("project", project)) if value)
    tunnel = " --tunnel-through-iap" if via_iap else ""
    return [
        f"gcloud compute instances get-serial-port-output {vm_name}{where}",
        f"gcloud compute ssh {vm_name}{where}{tunnel} -- sudo journalctl -u {layout.STARTUP_SCRIPT_UNIT.removesuffix('.service')} --no-pager",
    ]
