"""The deploy's first remote step: wait until the VM's startup script has completed, at this version.

A new VM (first `up`, adopt mode, or any replacement) is reachable over SSH well before its startup
script has installed Docker; deploying then fails with `docker: command not found`. The script's
last act is a record of its version (templates/startup.sh.j2); this step polls for that record over
the deploy's own connection. A record of another version means the script changed since it last ran:
GCE updates the metadata in place but runs startup scripts only at boot, so this step runs it again
(it is idempotent) instead of asking for a reboot.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from infra.remote import startup_record
from infra.remote.startup_record import StartupRecord
from infra.remote.vm import Vm

COMMAND_TIMEOUT = 60.0


@dataclass(frozen=True)
class ReadySettings:
    timeout: float = 900.0  # seconds for the startup script to finish (Docker and the Ops Agent install in a few minutes)
    poll_interval: float = 10.0


@dataclass(frozen=True)
class Where:
    """Names the VM in messages: the commands that show its startup logs."""

    vm_name: str
    zone: str | None = None
    project: str | None = None
    via_iap: bool = True


class VmNotReady(Exception):
    """The startup script did not record completion of the expected version in time."""


def short(version: str) -> str:
    return version[:12]


def wait_until_ready(
    session,
    vm: Vm,
    expected_version: str,
    *,
    where: Where,
    settings: ReadySettings = ReadySettings(),
    progress: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> StartupRecord:
    """Poll the VM's startup record over `session` until it names `expected_version`; returns it.

    Reruns the startup script when the record names another version, once per record seen (a rerun
    that records the old version again means the metadata server still served the old script), and
    once when the script has ended without any record.
    Raises VmNotReady after `settings.timeout` seconds, naming the commands that show the logs.
    """
    started = clock()
    deadline = started + settings.timeout
    rerun_after: StartupRecord | None = None
    reran_unrecorded = False
    polls = max(1, math.ceil(settings.timeout / max(settings.poll_interval, 0.001)) + 2)  # a stuck clock cannot loop forever
    record = None
    for _ in range(polls):
        result = session.run(startup_record.read_record(vm), check=False, timeout=COMMAND_TIMEOUT)
        record = startup_record.parse_record(result.stdout) if result.exit_status == 0 else None
        if record is not None and record.version == expected_version:
            if record.ops_agent == "failed":
                progress("warning: the VM's startup script could not install the Ops Agent, so container logs do not reach "
                         f"Cloud Logging (the stack is unaffected). See: {startup_record.startup_log_commands(where.vm_name, where.zone, where.project, via_iap=where.via_iap)[1]}")
            return record
        if record is None and not reran_unrecorded and _has_ended(session, vm):
            # Ended without a record: a VM set up before the script recorded itself, or a failed run
            # (a transient one may pass now). Run it once more; a second failure is left to the timeout.
            progress("the VM's startup script is not running and recorded no completion: running it again on the VM")
            session.run(startup_record.rerun_startup_script(vm), timeout=COMMAND_TIMEOUT)
            reran_unrecorded = True
        if record is not None and record != rerun_after:
            progress(f"the VM's startup script last completed as version {short(record.version)}, this deploy needs "
                     f"{short(expected_version)}: running it again on the VM (no reboot needed)")
            session.run(startup_record.rerun_startup_script(vm), timeout=COMMAND_TIMEOUT)
            rerun_after = record
        now = clock()
        if now >= deadline:
            break
        state = "running the new version" if rerun_after is not None else "not finished yet"
        progress(f"waiting for the VM's startup script (version {short(expected_version)}, {state}): "
                 f"{now - started:.0f} s of at most {settings.timeout:.0f} s")
        sleep(max(0.0, min(settings.poll_interval, deadline - now)))
    raise VmNotReady(_not_ready_message(session, vm, expected_version, record, where, settings))


def _has_ended(session, vm: Vm) -> bool:
    state = session.run(startup_record.startup_script_state(vm), check=False, timeout=COMMAND_TIMEOUT)
    return state.stdout.strip() in ("inactive", "failed")


def _not_ready_message(session, vm: Vm, expected: str, record: StartupRecord | None, where: Where, settings: ReadySettings) -> str:
    seen = "no completion record yet" if record is None else f"its record names version {short(record.version)} (completed {record.completed})"
    lines = [
        f"the VM {where.vm_name}'s startup script did not complete version {short(expected)} within {settings.timeout:.0f} s: {seen}.",
        "Nothing was deployed. The startup script installs Docker and the unit that runs the stack; see what it did with:",
        *(f"  {command}" for command in startup_record.startup_log_commands(where.vm_name, where.zone, where.project, via_iap=where.via_iap)),
        "Then run `pulumi up` again (if it only needs longer, raise vm.readyTimeoutSeconds).",
    ]
    tail = session.run(startup_record.startup_journal_tail(vm), check=False, timeout=COMMAND_TIMEOUT)
    if tail.exit_status == 0 and tail.stdout.strip():
        lines += ["Its last lines:", *(f"  | {line}" for line in tail.stdout.rstrip().splitlines())]
    return "\n".join(lines)
