"""Runs a rotation: observe, plan (infra.keys.plan), execute step by step, roll back the failed step.

This is the I/O shell around the pure planner. State lives only in Secret Manager (versions, aliases,
annotations) and in the VM's versions file, so a rerun observes where the last run stopped.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

from infra import naming
from infra.keys import vm_commands
from infra.keys.database import DatabaseRoles, DatabaseUsers
from infra.keys.durations import format_duration
from infra.keys.model import (
    KIT_SECRETS_READ,
    LiveVersions,
    SecretState,
    render_versions_file,
    resolve_versions_file,
    unusable_slots,
    utc_now,
)
from infra.keys.plan import (
    GRACE_ANNOTATION,
    AddVersion,
    ApplyVersions,
    AwaitGrace,
    DisableVersion,
    EnsureDbRoles,
    MoveAliases,
    RetireLogins,
    ScheduleNextRotation,
    SetLoginPassword,
    Step,
    format_plan,
    plan_kind,
)
from infra.keys.store import SecretStore, version_annotation
from infra.keys.values import GENERATORS, value_problem
from infra.keys.verify import parse_check
from infra.ops import audit
from infra.ops import commands as ops_commands
from infra.ops.parse import UnexpectedOutput
from infra.remote.ssh import RemoteCommandError
from infra.remote.vm import Vm

MAX_PLANS = 4  # a plan is recomputed only when Secret Manager numbers a new version unexpectedly
AUDIT_ACTION = "keys-rotate"


class Outcome(enum.Enum):
    COMPLETED = "completed"
    PAUSED = "paused"  # waiting out the signing key's grace period; a rerun finishes
    ROLLED_BACK = "rolled back"
    FAILED = "failed"  # a step failed and so did its rollback; a rerun converges


class VerifyError(Exception):
    """A restarted service did not prove healthy."""


class RefusedState(Exception):
    """What was observed cannot be rotated safely; the message says what to fix."""


@dataclass
class VmLink:
    """One SSH session, opened on first use and again after a drop."""

    open_session: Callable[[], object]
    _session: object | None = None

    def run(self, argv: list[str], *, stdin: bytes | None = None, check: bool = True):
        if self._session is None:
            self._session = self.open_session()
        try:
            return self._session.run(argv, stdin=stdin, check=check, timeout=300)
        except RemoteCommandError:
            raise  # the command failed; the connection is fine
        except Exception:
            self.drop()  # the connection is suspect; the next command opens a fresh one
            raise

    def drop(self) -> None:
        if self._session is not None:
            try:
                self._session.close()
            except Exception:  # closing a dead connection may fail in many ways; it is gone either way
                pass
            self._session = None


@dataclass
class RotationContext:
    store: SecretStore
    secret_ids: Mapping[str, str]
    vm: Vm
    link: VmLink
    operator: str
    reason: str
    out: TextIO
    endpoints: vm_commands.Endpoints = field(default_factory=vm_commands.Endpoints)
    database: DatabaseUsers | None = None
    sql_instance: str | None = None
    roles: DatabaseRoles | None = None  # runs the login roles' SQL on the VM (infra/keys/db_roles.py)
    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep
    generators: Mapping[str, Callable[[], str]] = field(default_factory=lambda: dict(GENERATORS))
    health_polls: int = 30
    poll_interval: float = 2.0
    max_wait: timedelta = timedelta(minutes=15)
    on_step: Callable[[Step], None] | None = None  # progress hook, called before each step

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


# --- observing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VmState:
    versions_text: str | None  # None: no versions file yet
    audit_tail: tuple[str, ...]


def parse_vm_state(stdout: str) -> VmState:
    """Reads what vm_commands.read_vm_state prints."""
    head, _, rest = stdout.partition("\n")
    if head not in ("versions-file: present", "versions-file: absent"):
        raise ValueError(f"reading the VM's state printed {head[:80]!r}, not the expected header; is the data disk mounted?")
    body, _, audit_tail = rest.partition("--- audit tail\n")
    text = body if head.endswith("present") else None
    return VmState(text, tuple(line for line in audit_tail.splitlines() if line.strip()))


def read_vm_state(link: VmLink, vm: Vm) -> VmState:
    return parse_vm_state(link.run(vm_commands.read_vm_state(vm)).stdout)


CLEAN_ENDS = {Outcome.COMPLETED.value, Outcome.ROLLED_BACK.value, Outcome.PAUSED.value}


def ended_cleanly(state: VmState, kind: str) -> bool:
    """Whether the last rotation of this kind ended with its services verified (its audit line says so).

    After a clean end a rerun need not repeat the last restart; after an interruption it must.
    """
    for record in reversed(audit.parse_audit("\n".join(state.audit_tail))):
        if record.get("action") == AUDIT_ACTION and record.get("kind") == kind:
            return record.get("result") in CLEAN_ENDS
    return False


def observe(ctx: RotationContext) -> tuple[dict[str, SecretState], LiveVersions, VmState]:
    secrets = {logical: ctx.store.observe(logical, ctx.secret_ids[logical]) for logical in KIT_SECRETS_READ if logical in ctx.secret_ids}
    vm_state = read_vm_state(ctx.link, ctx.vm)
    return secrets, resolve_versions_file(vm_state.versions_text, secrets), vm_state


# --- executing ------------------------------------------------------------------------------------


def _audit_annotations(ctx: RotationContext, number: int, event: str) -> dict[str, str]:
    at = ctx.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        version_annotation(number, f"{event}-at"): at,
        version_annotation(number, f"{event}-by"): ctx.operator,
        version_annotation(number, f"{event}-why"): ctx.reason,
    }


def _apply(ctx: RotationContext, versions, service: str, check_sync: bool) -> None:
    ctx.link.run(vm_commands.apply_versions(ctx.vm, service), stdin=render_versions_file(versions).encode())
    verify(ctx, service, check_sync)


def verify(ctx: RotationContext, service: str, check_sync: bool) -> None:
    """The service runs and is healthy, Inngest answers /health, and (if asked) an app sync succeeds."""
    problem = "no answer"
    for attempt in range(ctx.health_polls):
        result = ctx.link.run(vm_commands.check_services(ctx.vm, ctx.endpoints, sync=check_sync), check=False)
        try:
            check = parse_check(result.stdout, service)
        except UnexpectedOutput as error:
            raise VerifyError(str(error)) from None
        problem = check.problem(service)
        if problem is None:
            return
        if check.broken:
            raise VerifyError(f"{problem} after its restart")
        if attempt + 1 < ctx.health_polls:
            ctx.sleep(ctx.poll_interval)
    raise VerifyError(f"{problem} after {ctx.health_polls} checks")


def execute(ctx: RotationContext, step: Step) -> int | None:
    store, ids = ctx.store, ctx.secret_ids
    if isinstance(step, AddVersion):
        value = ctx.generators[step.kind]()
        problem = value_problem(step.kind, value)
        if problem:
            raise ValueError(f"the generated {step.kind} value {problem}")
        number = store.add_version(ids[step.logical], value)
        store.update(ids[step.logical], annotations=_audit_annotations(ctx, number, "created"))
        return number
    if isinstance(step, ApplyVersions):
        _apply(ctx, step.versions, step.service, step.check_sync)
    elif isinstance(step, EnsureDbRoles):
        _need_database(ctx, roles=True).ensure(step.service, step.owner, step.database)
    elif isinstance(step, SetLoginPassword):
        password = store.access(ids[step.logical], step.number)
        _need_database(ctx).set_password(ctx.sql_instance, step.login, password)
    elif isinstance(step, RetireLogins):
        # As the new live login: it also takes LOGIN away from the owner once no service uses it.
        _need_database(ctx, roles=True).ensure(step.service, step.owner, step.database)
        for role in step.roles:
            ctx.database.set_password(ctx.sql_instance, role, ctx.generators["db"]())
    elif isinstance(step, MoveAliases):
        annotations = None
        if step.logical == naming.SIGNING_KEY:
            annotations = {GRACE_ANNOTATION: step.grace_until.isoformat() if step.grace_until else None}
        store.update(ids[step.logical], aliases={naming.CURRENT_ALIAS: step.current, naming.PREVIOUS_ALIAS: step.previous}, annotations=annotations)
    elif isinstance(step, DisableVersion):
        store.disable(ids[step.logical], step.number)
        store.update(ids[step.logical], annotations=_audit_annotations(ctx, step.number, "disabled"))
    elif isinstance(step, ScheduleNextRotation):
        store.update(ids[step.logical], next_rotation=step.at)
    return None


def _need_database(ctx: RotationContext, *, roles: bool = False):
    if ctx.database is None or not ctx.sql_instance:
        raise RefusedState("no Cloud SQL instance is known (stack output sql_connection_name); cannot change a database password")
    if roles and ctx.roles is None:
        raise RefusedState("no way to run SQL on the VM is known; cannot set up the login roles")
    return ctx.roles if roles else ctx.database


def _await(ctx: RotationContext, step: AwaitGrace) -> bool:
    """Waits out a short grace period with progress; False when it is too long to wait for now."""
    remaining = step.until - ctx.clock()
    if remaining <= timedelta(0):
        return True
    if remaining > ctx.max_wait:
        return False
    # Bounded: at most one tick per 30 s of the (at most max_wait long) remainder, plus one.
    for _ in range(int(ctx.max_wait.total_seconds() // 30) + 2):
        remaining = step.until - ctx.clock()
        if remaining <= timedelta(0):
            return True
        ctx.say(f"      waiting for the grace period: {format_duration(remaining)} left")
        ctx.sleep(min(30.0, remaining.total_seconds()))
    return step.until <= ctx.clock()


def _rollback(ctx: RotationContext, step: Step) -> Outcome:
    if not isinstance(step, ApplyVersions):
        ctx.say("      nothing to undo: the stack still runs as before this step")
        return Outcome.ROLLED_BACK
    undo = step.rollback()
    ctx.say(f"      rolling back: {undo.describe()}")
    try:
        execute(ctx, undo)
    except Exception as error:
        ctx.say(f"      rollback failed: {_explain(error)}")
        return Outcome.FAILED
    ctx.say("      rolled back: the old key is in service again")
    return Outcome.ROLLED_BACK


def _explain(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).strip() or 'no message'}"


def _log(ctx: RotationContext, kind: str, outcome: Outcome, detail: str) -> None:
    line = audit.entry(AUDIT_ACTION, at=ctx.clock(), actor=ctx.operator, kind=kind, result=outcome.value, reason=ctx.reason, detail=detail)
    try:
        ctx.link.run(ops_commands.audit_append(ctx.vm), stdin=line.encode())
    except Exception as error:
        ctx.say(f"warning: the audit line could not be appended on the VM ({_explain(error)})")


def rotate(ctx: RotationContext, kind: str, *, grace: timedelta, announce: bool = False, observed=None) -> Outcome:
    """Rotates one kind of key from wherever the last run stopped. Raises RefusedState before any change.

    `announce` prints the plan first (the CLI has already shown it when it asked for confirmation).
    `observed` is what `observe` returned just before, if nothing has changed since.
    """
    replanned = False
    resume = None
    for _ in range(MAX_PLANS):
        secrets, live, vm_state = observed or observe(ctx)
        observed = None
        if resume is None:
            resume = not ended_cleanly(vm_state, kind)
        broken = unusable_slots(live.versions, secrets)
        if broken:
            raise RefusedState("the VM's versions file names versions it cannot read: " + "; ".join(broken))
        steps = plan_kind(kind, secrets, live.versions, now=ctx.clock(), grace=grace, resume=resume)
        if announce or replanned:
            for line in format_plan(kind, steps, ctx.clock()):
                ctx.say(line)
        resume = False
        replan = False
        for number, step in enumerate(steps, 1):
            ctx.say(f"[{number}/{len(steps)}] {step.describe()}")
            if ctx.on_step is not None:
                ctx.on_step(step)
            if isinstance(step, AwaitGrace):
                if not _await(ctx, step):
                    ctx.say(f"paused: the app keeps the old signing key as its fallback until {step.until:%Y-%m-%d %H:%M:%S} UTC; "
                            "run the same command again after that to finish")
                    _log(ctx, kind, Outcome.PAUSED, f"fallback until {step.until.isoformat()}")
                    return Outcome.PAUSED
                continue
            started = time.monotonic()
            try:
                result = execute(ctx, step)
            except RefusedState:
                raise
            except Exception as error:
                ctx.say(f"      failed: {_explain(error)}")
                outcome = _rollback(ctx, step)
                _log(ctx, kind, outcome, f"step {number} failed: {step.describe()}")
                return outcome
            ctx.say(f"      ok ({time.monotonic() - started:.1f} s)")
            if isinstance(step, AddVersion) and result != step.predicted:
                ctx.say(f"      Secret Manager numbered it v{result}, not v{step.predicted}: planning again")
                replan = replanned = True
                break
        if not replan:
            _log(ctx, kind, Outcome.COMPLETED, "; ".join(step.describe() for step in steps))
            return Outcome.COMPLETED
    raise RefusedState(f"the plan for {kind} kept changing under us; is another rotation running?")
