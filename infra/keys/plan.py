"""The rotation planner: from what is observed now, the steps that remain. Pure.

A rotation walks through a few VM configurations (which version each slot of the versions file
names), each reached by restarting one service, with Secret Manager steps in between. Where the walk
stands is read from the versions file and the secret's aliases, so a rerun after an interruption
plans only what remains. On a rerun the restart that led to the observed configuration is repeated
first: the file may have been written before the interruption while the service never restarted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from infra import naming
from infra.keys import db_roles
from infra.keys.durations import format_duration
from infra.keys.model import APP, DB_SLOTS, INNGEST, REDIS, SecretState, VmVersions

KINDS = ("signing", "event", "db", "redis")
SECRETS_OF_KIND = {
    "signing": (naming.SIGNING_KEY,),
    "event": (naming.EVENT_KEY,),
    "db": (naming.DB_APP_PASSWORD, naming.DB_INNGEST_PASSWORD),
    "redis": (naming.REDIS_PASSWORD,),
}
GRACE_ANNOTATION = "kit-fallback-until"  # on the signing key's secret: when the app may drop the old key
# Set on each secret of a command's scope when it starts (the `current` version then), removed when
# the whole command completes: a rerun of `rotate db` or `rotate all` skips what it already rotated.
ROTATION_MARKER = "kit-rotating-from"
# Who uses each database password: the owner role (whose login roles take turns) and Compose service.
DB_USERS = {
    naming.DB_APP_PASSWORD: (naming.APP_DB_USER, APP),
    naming.DB_INNGEST_PASSWORD: (naming.INNGEST_DB_USER, INNGEST),
}
DB_NAMES = {naming.DB_APP_PASSWORD: naming.APP_DB_NAME, naming.DB_INNGEST_PASSWORD: naming.INNGEST_DB_NAME}


class PlanError(Exception):
    """The observed state is not one a rotation produces; nothing can be planned safely."""


def _describe_versions(versions: VmVersions, names: tuple[str, ...]) -> str:
    def shown(value) -> str:
        return f"v{value}" if isinstance(value, int) else str(value)  # a login slot holds a role name

    return ", ".join(f"{name}={','.join(shown(n) for n in versions[name]) or 'none'}" for name in names)


@dataclass(frozen=True)
class AddVersion:
    logical: str
    kind: str
    predicted: int  # Secret Manager's next number; the runner re-plans if it differs

    def describe(self) -> str:
        return f"add v{self.predicted} of {self.logical}: a new {self.kind} value"


@dataclass(frozen=True)
class ApplyVersions:
    """Write the versions file, fetch one service's secrets, recreate that service, verify.

    `restore` is the file a rollback writes before restarting the service again: the configuration
    in which this service last worked.
    """

    service: str
    versions: VmVersions
    restore: VmVersions
    shown: tuple[str, ...]  # the slots this step is about, for messages
    purpose: str
    check_sync: bool = True

    def describe(self) -> str:
        return f"restart {self.service} reading {_describe_versions(self.versions, self.shown)} ({self.purpose}), then verify"

    def rollback(self) -> ApplyVersions:
        return ApplyVersions(self.service, self.restore, self.restore, self.shown, f"roll back: {self.purpose}", self.check_sync)


@dataclass(frozen=True)
class EnsureDbRoles:
    """Idempotent SQL, as the service's live login: both login roles members of the owner, acting as it."""

    logical: str
    owner: str
    database: str
    service: str

    def describe(self) -> str:
        first, second = db_roles.logins_of(self.owner)
        return f"make {first} and {second} members of {self.owner} that act as it (SQL on the VM as {self.service}'s login)"


@dataclass(frozen=True)
class SetLoginPassword:
    """The new password goes to the login role no service uses, so no connection is refused."""

    logical: str
    login: str
    number: int

    def describe(self) -> str:
        return f"set Cloud SQL user {self.login!r}, which no service logs in as, to v{self.number} of {self.logical}"


@dataclass(frozen=True)
class RetireLogins:
    """After the switch: every other role of the database gets a password nobody holds."""

    logical: str
    owner: str
    database: str
    service: str
    roles: tuple[str, ...]

    def describe(self) -> str:
        return f"retire {', '.join(self.roles)}: a random password nobody holds ({self.owner} cannot log in)"


@dataclass(frozen=True)
class MoveAliases:
    logical: str
    current: int
    previous: int
    grace_until: datetime | None = None  # recorded in an annotation for a later run

    def describe(self) -> str:
        text = f"point {naming.CURRENT_ALIAS} at v{self.current} and {naming.PREVIOUS_ALIAS} at v{self.previous} of {self.logical}"
        if self.grace_until is not None:
            text += f"; record the fallback deadline {self.grace_until:%Y-%m-%d %H:%M:%S} UTC"
        return text


@dataclass(frozen=True)
class AwaitGrace:
    logical: str
    until: datetime

    def describe(self) -> str:
        return f"keep the old signing key as the app's fallback until {self.until:%Y-%m-%d %H:%M:%S} UTC"


@dataclass(frozen=True)
class DisableVersion:
    logical: str
    number: int

    def describe(self) -> str:
        return f"disable v{self.number} of {self.logical} (kept, not destroyed: `keys prune` does that after the retention)"


@dataclass(frozen=True)
class ScheduleNextRotation:
    """Move Secret Manager's rotation reminder to one period after this rotation, not the last one."""

    logical: str
    at: datetime

    def describe(self) -> str:
        return f"set the next rotation reminder of {self.logical} to {self.at:%Y-%m-%d %H:%M} UTC"


Step = AddVersion | ApplyVersions | EnsureDbRoles | SetLoginPassword | RetireLogins | MoveAliases | AwaitGrace | DisableVersion | ScheduleNextRotation


def _with(versions: VmVersions, **changes: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    updated = {name: tuple(value) for name, value in versions.items()}
    updated.update(changes)
    return updated


def _finishing(state: SecretState, live: int) -> tuple[int, bool] | None:
    """When the VM uses one version everywhere: the old version a rotation has yet to retire, if any.

    Returns (old, aliases_moved), or None for a settled secret (the next rotation starts afresh).
    """
    current = state.current
    if current is not None and current < live and state.is_enabled(current):
        return current, False  # interrupted between the last restart and the alias move
    previous = state.previous
    if current == live and previous is not None and previous != live and state.is_enabled(previous):
        return previous, True
    return None


def rotated_in_this_run(state: SecretState) -> bool:
    """The secret was rotated since the command in progress began, and nothing of it remains to do."""
    marker = state.annotations.get(ROTATION_MARKER, "")
    current = state.current
    if not marker.isdigit() or current is None or current <= int(marker):
        return False
    return _finishing(state, current) is None and state.pending_after(current) is None


def _start(state: SecretState, old: int, kind: str, steps: list) -> int:
    """The version to bring in: one left by an interrupted run, or a new one (an AddVersion step)."""
    pending = state.pending_after(old)
    if pending is not None:
        return pending
    steps.append(AddVersion(state.logical, kind, state.next_number))
    return state.next_number


def plan_signing(state: SecretState, live: VmVersions, *, now: datetime, grace: timedelta, resume: bool) -> list[Step]:
    key, fallback = live["INNGEST_SIGNING_KEY"][0], live["INNGEST_SIGNING_KEY_FALLBACK"]
    steps: list[Step] = []
    aliases_moved = False
    if not fallback:
        finishing = _finishing(state, key)
        if not finishing and key == state.current and rotated_in_this_run(state):
            return []
        if finishing:
            (old, aliases_moved), new, stage = finishing, key, 3
        else:
            old, stage = key, 0
            new = _start(state, old, "signing", steps)
    elif fallback[0] != key:
        old, new = fallback[0], key
        # The file is the same before and after the server's restart; the alias move, done only
        # once the server is verified on the new key, tells the two apart.
        aliases_moved = state.current == new and state.previous == old
        stage = 2 if aliases_moved else 1
    else:
        raise PlanError(
            f"the VM's versions file names v{key} as both the signing key and its fallback; "
            "set INNGEST_SIGNING_KEY_FALLBACK= (empty) in it by hand, then rerun"
        )
    shown = ("INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK")
    c0 = _with(live, INNGEST_SIGNING_KEY=(old,), INNGEST_SIGNING_KEY_FALLBACK=())
    c1 = _with(c0, INNGEST_SIGNING_KEY=(new,), INNGEST_SIGNING_KEY_FALLBACK=(old,))
    c3 = _with(c1, INNGEST_SIGNING_KEY_FALLBACK=())
    until = now + grace
    recorded = state.annotations.get(GRACE_ANNOTATION)
    if aliases_moved and recorded:
        until = datetime.fromisoformat(recorded)
    staged: list[tuple[int, Step]] = [
        (1, ApplyVersions(APP, c1, c0, shown, "app: new signing key, old one as fallback")),
        # A rollback puts the server back on the old key; the app keeps both, which is safe.
        (2, ApplyVersions(INNGEST, c1, c0, shown, "server signs with the new key")),
        (3, ApplyVersions(APP, c3, c1, shown, "app drops the fallback")),
    ]
    for index, step in staged:
        if index == 3:
            # The aliases move once the server signs with the new key, before the fallback goes.
            if not aliases_moved:
                steps.append(MoveAliases(naming.SIGNING_KEY, new, old, until))
            if stage < 3:
                steps.append(AwaitGrace(naming.SIGNING_KEY, until))
        # Stage 2 is known only from the alias move, which follows the server's verified restart:
        # nothing to repeat there.
        if index > stage or (index == stage and resume and stage != 2):
            steps.append(step)
    steps.append(DisableVersion(naming.SIGNING_KEY, old))
    return steps


def plan_event(state: SecretState, live: VmVersions, *, resume: bool) -> list[Step]:
    app, server = live["INNGEST_EVENT_KEY"][0], live["INNGEST_EVENT_KEYS"]
    steps: list[Step] = []
    aliases_moved = False
    if server == (app,):
        finishing = _finishing(state, app)
        if not finishing and app == state.current and rotated_in_this_run(state):
            return []
        if finishing:
            (old, aliases_moved), new, stage = finishing, app, 3
        else:
            old, stage = app, 0
            new = _start(state, old, "event", steps)
    elif len(server) == 2 and app == server[0]:  # the file lists the older key first
        (old, new), stage = server, 1
    elif len(server) == 2 and app == server[1]:
        (old, new), stage = server, 2
    else:
        raise PlanError(
            f"the VM's versions file has the app sending event key v{app} while the server accepts "
            f"{', '.join(f'v{n}' for n in server)}; not a state a rotation produces. Set INNGEST_EVENT_KEYS by hand "
            "so it includes the app's INNGEST_EVENT_KEY, then rerun"
        )
    shown = ("INNGEST_EVENT_KEY", "INNGEST_EVENT_KEYS")
    c0 = _with(live, INNGEST_EVENT_KEY=(old,), INNGEST_EVENT_KEYS=(old,))
    c1 = _with(c0, INNGEST_EVENT_KEYS=(old, new))
    c2 = _with(c1, INNGEST_EVENT_KEY=(new,))
    c3 = _with(c2, INNGEST_EVENT_KEYS=(new,))
    staged = [
        (1, ApplyVersions(INNGEST, c1, c0, shown, "server accepts both event keys", check_sync=False)),
        (2, ApplyVersions(APP, c2, c1, shown, "app sends the new event key")),
        (3, ApplyVersions(INNGEST, c3, c2, shown, "server accepts only the new event key")),
    ]
    for index, step in staged:
        # Once the aliases moved, the last restart had been verified: nothing to repeat.
        if index > stage or (index == stage and resume and not aliases_moved):
            steps.append(step)
    if not aliases_moved:
        steps.append(MoveAliases(naming.EVENT_KEY, new, old))
    steps.append(DisableVersion(naming.EVENT_KEY, old))
    return steps


def plan_db(state: SecretState, live: VmVersions, *, resume: bool) -> list[Step]:
    """Two login roles take turns (infra/keys/db_roles.py): the new password goes to the one no service
    uses, the service switches to it, and only then is the old one retired. No connection is refused."""
    owner, service = DB_USERS[state.logical]
    database = DB_NAMES[state.logical]
    login_slot, version_slot = DB_SLOTS[state.logical]
    if state.current is None:
        raise PlanError(f"{state.logical} has no `current` alias and no version 1; run `pulumi up` to create it")
    if rotated_in_this_run(state):
        return []
    login, in_use = live[login_slot][0], live[version_slot][0]
    shown = (login_slot, version_slot)
    steps: list[Step] = []
    finishing = _finishing(state, in_use)
    if finishing:
        old, aliases_moved = finishing
        if resume and not aliases_moved:
            # The file names the new login and password, but the restart may not have happened. Its
            # rollback keeps this configuration: the previous login is not recorded, and a rerun converges.
            steps.append(ApplyVersions(service, dict(live), dict(live), shown, "service logs in with the new login role"))
        if not aliases_moved:
            steps.append(MoveAliases(state.logical, in_use, old))
    else:
        old = in_use
        new = _start(state, old, "db", steps)
        standby = db_roles.standby_login(owner, login)
        switched = _with(live, **{login_slot: (standby,), version_slot: (new,)})
        steps += [
            EnsureDbRoles(state.logical, owner, database, service),
            SetLoginPassword(state.logical, standby, new),
            ApplyVersions(service, switched, dict(live), shown, f"service logs in as {standby} with the new password"),
            MoveAliases(state.logical, new, old),
        ]
        login = standby
    steps.append(RetireLogins(state.logical, owner, database, service, db_roles.retired_logins(owner, login)))
    steps.append(DisableVersion(state.logical, old))
    return steps


def plan_redis(state: SecretState, live: VmVersions, *, resume: bool) -> list[Step]:
    """Redis's password, the event key's way round: Redis accepts both (a Redis ACL user holds several
    passwords, reloaded with ACL LOAD, no restart), the server moves to the new one, Redis drops the old."""
    used, accepted = live["REDIS_PASSWORD"][0], live["REDIS_PASSWORDS"]
    steps: list[Step] = []
    aliases_moved = False
    if accepted == (used,):
        finishing = _finishing(state, used)
        if not finishing and used == state.current and rotated_in_this_run(state):
            return []
        if finishing:
            (old, aliases_moved), new, stage = finishing, used, 3
        else:
            old, stage = used, 0
            new = _start(state, old, "redis", steps)
    elif len(accepted) == 2 and used == accepted[0]:  # the file lists the older password first
        (old, new), stage = accepted, 1
    elif len(accepted) == 2 and used == accepted[1]:
        (old, new), stage = accepted, 2
    else:
        raise PlanError(
            f"the VM's versions file has the server logging in to Redis with v{used} while Redis accepts "
            f"{', '.join(f'v{n}' for n in accepted)}; not a state a rotation produces. Set REDIS_PASSWORDS by hand "
            "so it includes REDIS_PASSWORD, then rerun"
        )
    shown = ("REDIS_PASSWORD", "REDIS_PASSWORDS")
    c0 = _with(live, REDIS_PASSWORD=(old,), REDIS_PASSWORDS=(old,))
    c1 = _with(c0, REDIS_PASSWORDS=(old, new))
    c2 = _with(c1, REDIS_PASSWORD=(new,))
    c3 = _with(c2, REDIS_PASSWORDS=(new,))
    staged = [
        (1, ApplyVersions(REDIS, c1, c0, shown, "Redis accepts both passwords", check_sync=False)),
        (2, ApplyVersions(INNGEST, c2, c1, shown, "server logs in to Redis with the new password")),
        (3, ApplyVersions(REDIS, c3, c2, shown, "Redis accepts only the new password", check_sync=False)),
    ]
    for index, step in staged:
        if index > stage or (index == stage and resume and not aliases_moved):
            steps.append(step)
    if not aliases_moved:
        steps.append(MoveAliases(naming.REDIS_PASSWORD, new, old))
    steps.append(DisableVersion(naming.REDIS_PASSWORD, old))
    return steps


def plan_kind(kind: str, secrets: Mapping[str, SecretState], live: VmVersions, *, now: datetime, grace: timedelta, resume: bool) -> list[Step]:
    """Every remaining step to rotate one kind of key, from the observed state."""
    if kind == "signing":
        steps = plan_signing(secrets[naming.SIGNING_KEY], live, now=now, grace=grace, resume=resume)
    elif kind == "event":
        steps = plan_event(secrets[naming.EVENT_KEY], live, resume=resume)
    elif kind == "db":
        steps = []
        # One database after the other: each starts from the versions file the previous one left,
        # or its restart would put the other service's old login back in the file.
        after = dict(live)
        for logical in SECRETS_OF_KIND["db"]:
            planned = plan_db(secrets[logical], after, resume=resume)
            after = next((dict(step.versions) for step in reversed(planned) if isinstance(step, ApplyVersions)), after)
            steps += planned
    elif kind == "redis":
        steps = plan_redis(secrets[naming.REDIS_PASSWORD], live, resume=resume)
    else:
        raise PlanError(f"unknown key kind {kind!r}; use one of {', '.join(KINDS)}")
    rotated = {step.logical for step in steps if isinstance(step, DisableVersion)}
    for logical in SECRETS_OF_KIND[kind]:
        period = secrets[logical].rotation_period
        if logical in rotated and period:
            steps.append(ScheduleNextRotation(logical, now + period))
    return steps


def format_plan(kind: str, steps: list[Step], now: datetime) -> list[str]:
    lines = [f"{kind}: {len(steps)} step(s)"]
    for number, step in enumerate(steps, 1):
        text = step.describe()
        if isinstance(step, AwaitGrace) and step.until > now:
            text += f" ({format_duration(step.until - now)} from now)"
        lines.append(f"  {number}. {text}")
    return lines
