"""Taking, holding and giving back the VM's lock (builders in infra/remote/lock.py).

Every mutating operation (the deploy, each key rotation and prune, and the mutating operator commands)
takes the lock before its first change and gives it back at the end, whatever the outcome, when the
VM can still be reached. A second operation waits for it within a bound, printing who holds it, and
then fails naming the holder, its command and since when.

A cut connection leaves the lock behind: the lock is a directory on the data disk, not a process, so
it outlives the connection that took it (an operation is many commands, and a deploy reconnects to
roll back). Two ways out, both printed by every refusal:
- Rerun the same operation. The lock records an operation id ("deploy release <id>", "keys rotate
  signing") and who ran it; the same operation by the same person takes the lock over, printing what
  it took over. A deploy rerun renders the same files and so the same release id; a rotation rerun
  resumes from where the last one stopped. Two copies of one deploy cannot run at once, as Pulumi's
  own stack lock stops the second `pulumi up`; the residual risk is one person running the same key
  rotation twice at the same moment, which the takeover message makes visible.
- `python -m infra lock status` shows the holder; `python -m infra lock release --yes` breaks it,
  and only the holding that status showed (its token), never one taken since.

We chose this over a lease with a heartbeat: a heartbeat needs a second channel kept busy during
steps that run for many minutes (`compose up` pulling images), and a lease that expires under a slow
step would let a second operation in while the first still runs.
"""

from __future__ import annotations

import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from infra.remote import disk
from infra.remote import lock as lock_commands
from infra.remote.lock import LockDetails, LockState
from infra.remote.vm import Vm

LOCK_WAIT_ENV = "INNGEST_KIT_LOCK_WAIT"  # seconds a second operation waits for the lock, for every command
DEFAULT_WAIT = 60.0
DEFAULT_POLL = 2.0  # one round trip per poll; through IAP that is about half a second
STATUS_HINT = "python -m infra lock status --stack STACK"
RELEASE_HINT = "python -m infra lock release --stack STACK --yes"


class LockSession(Protocol):
    def run(self, argv: Sequence[str], *, check: bool = True, stdin: bytes | None = None): ...


class LockBusy(Exception):
    """Another operation holds the VM's lock and did not give it back within the wait."""

    def __init__(self, state: LockState, waited: float):
        self.state = state
        self.waited = waited
        super().__init__(busy_message(state, waited))


class LockError(Exception):
    """The lock could not be taken or read for another reason than being held (a full disk, say)."""


def busy_message(state: LockState, waited: float) -> str:
    holder = state.details.describe() if state.details else "an operation whose acquisition was cut short before it recorded who it is"
    return (
        f"the VM is locked by {holder}; waited {waited:g} s. Nothing was changed. "
        f"If that operation is still running, let it finish and run this again (or raise the wait with ${LOCK_WAIT_ENV}=SECONDS). "
        f"If it was interrupted (its connection cut, its terminal closed), rerun that same operation, which takes over its own lock, "
        f"or see the lock with `{STATUS_HINT}` and break it with `{RELEASE_HINT}`."
    )


def wait_from_environment(default: float = DEFAULT_WAIT) -> float:
    """The lock wait from $INNGEST_KIT_LOCK_WAIT (seconds); the default when unset. Raises ValueError naming it."""
    text = os.environ.get(LOCK_WAIT_ENV, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"${LOCK_WAIT_ENV}={text!r} is not a number of seconds; set it to e.g. 120, or 0 to fail at once")
    return value


@dataclass(frozen=True)
class LockRequest:
    """Who asks for the lock, for what. `operation` decides whether a rerun may take over (see the module doc)."""

    operation: str
    command: str
    by: str
    ssh_user: str
    client: str = field(default_factory=socket.gethostname)

    def details(self, token: str, since: datetime) -> LockDetails:
        return LockDetails(token, self.operation, self.command, self.by, self.ssh_user, self.client, since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


@dataclass
class HeldLock:
    vm: Vm
    details: LockDetails
    took_over: LockDetails | None = None  # the stale holding this one replaced
    released: bool = False

    def release(self, session: LockSession) -> str:
        """Gives the lock back; returns what happened (see infra/remote/lock.py: released, not-ours, free)."""
        result = session.run(lock_commands.release(self.vm, self.details.token), check=False)
        if result.exit_status != 0:
            raise LockError(f"giving the VM's lock back failed: {result.stderr.strip() or f'exit status {result.exit_status}'}")
        self.released = True
        return lock_commands.parse(result.stdout).verdict


def _no_report(_text: str) -> None:
    pass


def acquire(
    session: LockSession,
    vm: Vm,
    request: LockRequest,
    *,
    wait: float = DEFAULT_WAIT,
    poll: float = DEFAULT_POLL,
    report: Callable[[str], None] = _no_report,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> HeldLock:
    """Takes the VM's lock, waiting up to `wait` seconds with progress; raises LockBusy naming the holder."""
    token = uuid.uuid4().hex
    details = request.details(token, now())
    deadline = clock() + wait
    shown = False
    state = LockState(lock_commands.HELD, None, None)
    # Bounded by the deadline and by a count, so a stuck clock cannot loop forever; +3 leaves room for
    # a takeover lost to another rerun.
    for _ in range(math.ceil(wait / max(poll, 0.001)) + 3):
        result = session.run(lock_commands.acquire(vm, token), stdin=details.to_json(), check=False)
        if result.exit_status != 0:
            raise LockError(_cannot_lock(session, vm, result.stderr))
        state = lock_commands.parse(result.stdout)
        if state.verdict == lock_commands.ACQUIRED:
            return HeldLock(vm, details)
        holder = state.details
        if holder is not None and state.token and holder.same_operation_as(details):
            taken = session.run(lock_commands.take_over(vm, state.token, token), stdin=details.to_json(), check=False)
            if taken.exit_status == 0 and lock_commands.parse(taken.stdout).verdict == lock_commands.TAKEN_OVER:
                report(f"lock: taking over the lock left by an interrupted run of this same operation: {holder.describe()}")
                return HeldLock(vm, details, took_over=holder)
            continue  # another rerun took it first: it is now an ordinary holder to wait for
        remaining = deadline - clock()
        if remaining <= 0:
            break
        if not shown:
            who = holder.describe() if holder else "an operation that has not recorded its details yet"
            report(f"lock: the VM is locked by {who}; waiting up to {wait:g} s for it")
            shown = True
        else:
            report(f"lock: still locked; {remaining:.0f} s left")
        sleep(min(poll, remaining))
    raise LockBusy(state, wait)


def _cannot_lock(session: LockSession, vm: Vm, stderr: str) -> str:
    if disk.says_no_space(stderr):
        return disk.full_disk_message(vm, vm.paths.data, None)
    # Some shells say only "I/O error" when a write finds the disk full: ask the disk.
    free = disk.parse_free_kb(session.run(disk.free_space(vm, vm.paths.data), check=False).stdout)
    if free is not None and free < disk.MIN_FREE_KB:
        return disk.full_disk_message(vm, vm.paths.data, free)
    return f"cannot take the VM's lock at {vm.paths.lock}: {stderr.strip() or 'no message'}. Is the data disk mounted at {vm.paths.data}?"


@contextmanager
def held(
    session: LockSession,
    vm: Vm,
    request: LockRequest,
    *,
    report: Callable[[str], None] = _no_report,
    release_with: Callable[[], LockSession] | None = None,
    **options,
) -> Iterator[HeldLock]:
    """`with held(session, vm, request): ...` takes the lock and gives it back however the block ends.

    Giving it back is best effort: when the VM cannot be reached any more, the lock stays for the rerun
    to take over, and the report says so. `release_with` gives a fresh session when the first one died.
    """
    holding = acquire(session, vm, request, report=report, **options)
    try:
        yield holding
    finally:
        give_back(holding, session, report=report, release_with=release_with)


def give_back(holding: HeldLock, session: LockSession, *, report: Callable[[str], None] = _no_report, release_with: Callable[[], LockSession] | None = None) -> bool:
    """Releases the lock; False (and a report saying what to do) when it could not be given back."""
    if holding.released:
        return True
    sessions = [lambda: session] + ([release_with] if release_with else [])
    problem = "no session"
    for opener in sessions:
        try:
            verdict = holding.release(opener())
        except Exception as error:  # a dead connection fails in many ways; try the next session
            problem = f"{type(error).__name__}: {str(error).strip() or 'no message'}"
            continue
        if verdict == lock_commands.NOT_OURS:
            report("lock: warning: the VM's lock was broken and taken by another operation while this one ran; left it to that one")
        return True
    report(
        f"lock: warning: could not give the VM's lock back ({problem}). It stays until this same operation is run again "
        f"(which takes it over) or someone runs `{RELEASE_HINT}`."
    )
    return False


def read(session: LockSession, vm: Vm) -> LockState:
    result = session.run(lock_commands.status(vm), check=False)
    if result.exit_status != 0:
        raise LockError(f"cannot read the VM's lock at {vm.paths.lock}: {result.stderr.strip() or f'exit status {result.exit_status}'}")
    return lock_commands.parse(result.stdout)


def break_lock(session: LockSession, vm: Vm, token: str) -> str:
    """Removes the lock if it still carries `token` (what `read` showed); returns the verdict."""
    result = session.run(lock_commands.release(vm, token), check=False)
    if result.exit_status != 0:
        raise LockError(f"cannot remove the VM's lock at {vm.paths.lock}: {result.stderr.strip() or f'exit status {result.exit_status}'}")
    return lock_commands.parse(result.stdout).verdict


def status_lines(state: LockState, now: datetime) -> list[str]:
    """What `python -m infra lock status` prints."""
    if state.verdict == lock_commands.FREE:
        return ["unlocked: no operation holds the VM's lock"]
    details = state.details
    if details is None:
        return [
            "locked, by an operation whose acquisition was cut short before it recorded who it is",
            f"  break it with `{RELEASE_HINT}` once you know no operation runs",
        ]
    age = ""
    try:
        since = datetime.strptime(details.since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        age = f" ({_age(now - since)} ago)"
    except ValueError:
        pass
    return [
        f"locked by {details.by} (SSH user {details.ssh_user}, from {details.client})",
        f"  operation: {details.operation}",
        f"  command:   {details.command}",
        f"  since:     {details.since}{age}",
        f"  lock id:   {details.token}",
        "  if that operation is no longer running, rerun it (it takes over its own lock), or break the lock with",
        f"  `{RELEASE_HINT}`",
    ]


def _age(delta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
