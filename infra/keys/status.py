"""`keys status` and `keys prune`, as pure functions of the observed state."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from infra import naming
from infra.keys.durations import format_duration
from infra.keys.model import DISABLED, ENABLED, INITIAL_VERSION, SLOTS, LiveVersions, SecretState
from infra.keys.plan import DB_USERS, GRACE_ANNOTATION
from infra.keys.store import version_annotation
from infra.ops.status import KeyAge

DEFAULT_RETENTION = timedelta(days=30)


def live_slots(logical: str, live: LiveVersions | None, state: SecretState) -> dict[int, list[str]]:
    """version number -> where the VM reads it (slot names; a database password with its login role)."""
    where: dict[int, list[str]] = {}
    if live is None:
        if logical in DB_USERS and state.current is not None:
            where.setdefault(state.current, []).append(f"{DB_USERS[logical][1]} (via {naming.CURRENT_ALIAS})")
        return where
    logins = {slot.logical: live.versions.get(slot.name, ("?",))[0] for slot in SLOTS if slot.login_of}
    for slot in SLOTS:
        if slot.logical == logical and not slot.login_of:
            for number in live.versions.get(slot.name, ()):
                where.setdefault(number, []).append(f"{slot.name} (as {logins[logical]})" if logical in logins else slot.name)
    return where


def due_text(state: SecretState, now: datetime) -> str:
    if state.next_rotation is None:
        return "rotation not scheduled (set a rotation period on the secret in the Pulumi program)"
    delta = state.next_rotation - now
    when = f"{state.next_rotation:%Y-%m-%d %H:%M} UTC"
    period = f", every {format_duration(state.rotation_period)}" if state.rotation_period else ""
    if delta <= timedelta(0):
        return f"rotation OVERDUE since {when} ({format_duration(-delta)} ago){period}"
    return f"rotation due {when} (in {format_duration(delta)}){period}"


def status_lines(
    secrets: Mapping[str, SecretState],
    live: LiveVersions | None,
    live_problem: str | None,
    fingerprints: Mapping[tuple[str, int], str],
    now: datetime,
) -> list[str]:
    """The report: per secret, each version's state, age, fingerprint, aliases and where the VM reads it."""
    lines = []
    if live_problem:
        lines.append(f"VM: {live_problem}")
    elif live is not None and not live.present:
        lines.append("VM: no versions file yet; every service reads `current`")
    for logical, state in secrets.items():
        lines.append(f"{logical}  ({state.secret_id})")
        where = live_slots(logical, live, state)
        alias_of: dict[int, list[str]] = {}
        for alias, number in sorted(state.aliases.items()):
            alias_of.setdefault(number, []).append(alias)
        for version in state.versions:
            age = format_duration(now - version.created) if version.created else "?"
            parts = [f"  v{version.number:<4}", f"{version.state:<9}", f"age {age:<8}", f"sha256 {fingerprints.get((logical, version.number), '-'):<8}"]
            if version.number in alias_of:
                parts.append("alias " + ",".join(alias_of[version.number]))
            if version.number in where:
                parts.append("live: " + ", ".join(where[version.number]))
            if version.state == DISABLED and version.number in where:
                parts.append("!! the VM names a disabled version: services cannot restart")
            lines.append("  ".join(parts).rstrip())
        if GRACE_ANNOTATION in state.annotations and state.previous is not None and state.is_enabled(state.previous):
            lines.append(f"  rotation in progress: fallback kept until {state.annotations[GRACE_ANNOTATION]}; rerun `keys rotate signing`")
        lines.append("  " + due_text(state, now))
    return lines


def key_ages(secrets: Mapping[str, SecretState]) -> list[KeyAge]:
    """For `python -m infra status`: each key's current version and when it was created."""
    ages = []
    for logical, state in secrets.items():
        found = state.version(state.current) if state.current is not None else None
        if found is not None:
            ages.append(KeyAge(name=logical, version=str(found.number), created=found.created))
    return ages


def disabled_since(state: SecretState, number: int) -> datetime | None:
    """When the keys CLI disabled the version; None when something else did (it left no annotation)."""
    recorded = state.annotations.get(version_annotation(number, "disabled-at"))
    return datetime.strptime(recorded, "%Y-%m-%dT%H:%M:%SZ") if recorded else None


def prunable(state: SecretState, live: LiveVersions | None, now: datetime, retention: timedelta) -> list[int]:
    """Disabled versions past the retention that the VM does not read (its file, or `current`).

    Only versions the keys CLI disabled count: for others the time they were disabled is unknown, so
    the retention cannot be honoured. A `previous` alias on such a version is only a record of the last
    rotation; prune removes it.
    """
    # The initial version belongs to the Pulumi program: destroyed, it would be created again.
    in_use = set(live_slots(state.logical, live, state)) | {state.current, INITIAL_VERSION}
    found = []
    for version in state.versions:
        if version.state != DISABLED or version.number in in_use:
            continue
        since = disabled_since(state, version.number)
        if since is not None and now - since >= retention:
            found.append(version.number)
    return sorted(found)


def enabled_numbers(state: SecretState) -> list[int]:
    return [v.number for v in state.versions if v.state == ENABLED]
