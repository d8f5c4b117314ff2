"""What the rotation planner sees: the state of each secret, and which versions the VM reads.

The VM's choice of versions lives in a small non-secret file on the data disk (`secret-versions.env`),
whose format `fetch-secrets.sh` defines (templates/fetch-secrets.sh.j2): one `NAME=VERSION` line per
slot, VERSION a number or an alias, a comma-separated list for INNGEST_EVENT_KEYS, empty only for the
fallback. A missing slot (or file) means `current`; INNGEST_EVENT_KEYS defaults to INNGEST_EVENT_KEY.
The DB_*_LOGIN slots name a role, not a version: the login role the service connects as (its
database's owner when missing, as before two login roles existed; infra/keys/db_roles.py).
The app and the server share INNGEST_SIGNING_KEY: `fetch-secrets.sh SERVICE` refreshes one service's
files, so between two restarts the services may hold different versions, and that is how a rotation
moves them one at a time. A database password moves with its login role (DB_*_PASSWORD with DB_*_LOGIN).
Redis's password works like the event key: REDIS_PASSWORDS lists every password Redis accepts (a
comma-separated list, default REDIS_PASSWORD), REDIS_PASSWORD is the one the server logs in with.
The CLI writes explicit numbers, so that moving an alias changes nothing on the VM by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from infra import naming

VERSIONS_FILE_NAME = "secret-versions.env"
KIT_SECRETS_READ = naming.KIT_SECRETS  # every secret a rotation observes
INITIAL_VERSION = 1  # what the Pulumi program creates, read while no `current` alias exists yet

ENABLED, DISABLED, DESTROYED = "ENABLED", "DISABLED", "DESTROYED"

APP, INNGEST = "app", "inngest"  # Compose service names
REDIS = "redis"


@dataclass(frozen=True)
class Slot:
    name: str
    logical: str  # which secret
    services: tuple[str, ...]  # which Compose services read it
    multiple: bool = False
    optional: bool = False
    login_of: str | None = None  # a login-role slot: the owner role whose login roles it may name

    def default(self) -> str:
        if self.login_of:
            return self.login_of
        return "" if self.optional else naming.CURRENT_ALIAS

    def login_choices(self) -> tuple[str, ...]:
        return (self.login_of, *naming.db_login_roles(self.login_of)) if self.login_of else ()


SLOTS = (
    Slot("INNGEST_SIGNING_KEY", naming.SIGNING_KEY, (APP, INNGEST)),
    Slot("INNGEST_SIGNING_KEY_FALLBACK", naming.SIGNING_KEY, (APP,), optional=True),
    Slot("INNGEST_EVENT_KEY", naming.EVENT_KEY, (APP,)),
    Slot("INNGEST_EVENT_KEYS", naming.EVENT_KEY, (INNGEST,), multiple=True),
    Slot("DB_APP_LOGIN", naming.DB_APP_PASSWORD, (APP,), login_of=naming.APP_DB_USER),
    Slot("DB_APP_PASSWORD", naming.DB_APP_PASSWORD, (APP,)),
    Slot("DB_INNGEST_LOGIN", naming.DB_INNGEST_PASSWORD, (INNGEST,), login_of=naming.INNGEST_DB_USER),
    Slot("DB_INNGEST_PASSWORD", naming.DB_INNGEST_PASSWORD, (INNGEST,)),
    Slot("REDIS_PASSWORD", naming.REDIS_PASSWORD, (INNGEST,)),
    Slot("REDIS_PASSWORDS", naming.REDIS_PASSWORD, (REDIS,), multiple=True),
)
# Per database password secret: its login slot and its version slot.
DB_SLOTS = {
    naming.DB_APP_PASSWORD: ("DB_APP_LOGIN", "DB_APP_PASSWORD"),
    naming.DB_INNGEST_PASSWORD: ("DB_INNGEST_LOGIN", "DB_INNGEST_PASSWORD"),
}
SLOT_BY_NAME = {slot.name: slot for slot in SLOTS}
EVENT_KEYS_DEFAULT_FROM = "INNGEST_EVENT_KEY"
REDIS_PASSWORDS_DEFAULT_FROM = "REDIS_PASSWORD"

# slot name -> version numbers, in order (for INNGEST_EVENT_KEYS: the older key first); for a
# login slot, a one-element tuple holding the role name
VmVersions = Mapping[str, tuple]


@dataclass(frozen=True)
class VersionInfo:
    number: int
    state: str  # ENABLED, DISABLED or DESTROYED
    created: datetime


@dataclass(frozen=True)
class SecretState:
    logical: str
    secret_id: str
    versions: tuple[VersionInfo, ...] = ()
    aliases: Mapping[str, int] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    next_rotation: datetime | None = None
    rotation_period: timedelta | None = None

    def version(self, number: int) -> VersionInfo | None:
        return next((v for v in self.versions if v.number == number), None)

    def is_enabled(self, number: int | None) -> bool:
        found = None if number is None else self.version(number)
        return found is not None and found.state == ENABLED

    @property
    def current(self) -> int | None:
        """The version the VM reads by default: the `current` alias, else the initial version."""
        if naming.CURRENT_ALIAS in self.aliases:
            return self.aliases[naming.CURRENT_ALIAS]
        return INITIAL_VERSION if self.version(INITIAL_VERSION) else None

    @property
    def previous(self) -> int | None:
        return self.aliases.get(naming.PREVIOUS_ALIAS)

    @property
    def next_number(self) -> int:
        """Secret Manager numbers versions 1, 2, 3... so this is what the next AddSecretVersion returns."""
        return max((v.number for v in self.versions), default=0) + 1

    def pending_after(self, number: int) -> int | None:
        """A newer enabled version not yet in service, left by an interrupted or rolled-back rotation.

        Only versions the keys CLI created count (they carry its `kit-vN-created-by` annotation): a
        version added by other means, say one Pulumi re-created with an old value, is never adopted.
        """
        newer = [v.number for v in self.versions if v.number > number and v.state == ENABLED and f"kit-v{v.number}-created-by" in self.annotations]
        return max(newer) if newer else None


class VersionsFileError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class LiveVersions:
    """The VM's versions file, resolved to numbers."""

    versions: VmVersions
    pinned: bool
    present: bool


def resolve_versions_file(text: str | None, secrets: Mapping[str, SecretState]) -> LiveVersions:
    """Parses the VM's file (None when absent) against the secrets' aliases; raises VersionsFileError.

    `pinned` is False when the file is absent or names an alias: then the VM follows alias moves.
    """
    problems: list[str] = []
    raw: dict[str, str] = {}
    for line_number, line in enumerate((text or "").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or name not in SLOT_BY_NAME:
            problems.append(f"{VERSIONS_FILE_NAME} line {line_number}: {name!r} is not a slot; the slots are {', '.join(SLOT_BY_NAME)}")
            continue
        raw[name] = value.strip()
    resolved: dict[str, tuple[int, ...]] = {}
    pinned = text is not None and all(slot.name in raw for slot in SLOTS if not slot.optional)
    if "INNGEST_EVENT_KEYS" not in raw and EVENT_KEYS_DEFAULT_FROM in raw:
        raw["INNGEST_EVENT_KEYS"] = raw[EVENT_KEYS_DEFAULT_FROM]
    if "REDIS_PASSWORDS" not in raw and REDIS_PASSWORDS_DEFAULT_FROM in raw:
        raw["REDIS_PASSWORDS"] = raw[REDIS_PASSWORDS_DEFAULT_FROM]
    for slot in SLOTS:
        value = raw.get(slot.name, slot.default())
        if slot.login_of:
            if value not in slot.login_choices():
                problems.append(f"{VERSIONS_FILE_NAME}: {slot.name} names {value!r}; it takes one of {', '.join(slot.login_choices())}")
            resolved[slot.name] = (value,)
            continue
        state = secrets.get(slot.logical)
        numbers: list[int] = []
        for part in [p.strip() for p in value.split(",") if p.strip()]:
            if part.isdigit():
                numbers.append(int(part))
                continue
            pinned = False
            alias_number = None
            if state is not None:
                alias_number = state.current if part == naming.CURRENT_ALIAS else state.aliases.get(part)
            if alias_number is None:
                problems.append(f"{VERSIONS_FILE_NAME}: {slot.name} names {part!r}, which is neither a version number nor an alias of {slot.logical}")
            else:
                numbers.append(alias_number)
        if not numbers and not slot.optional:
            problems.append(f"{VERSIONS_FILE_NAME}: {slot.name} names no version; give a version number")
        if len(numbers) > 1 and not slot.multiple:
            problems.append(f"{VERSIONS_FILE_NAME}: {slot.name} takes one version, got {len(numbers)}")
        resolved[slot.name] = tuple(numbers)
    if problems:
        raise VersionsFileError(problems)
    return LiveVersions(resolved, pinned, text is not None)


def render_versions_file(versions: VmVersions) -> str:
    """The file's text: every slot, explicit numbers, a header saying what it is."""
    lines = [
        "# Which Secret Manager version each service reads; written by `python -m infra keys`.",
        "# Not secret: version numbers and login role names. Edit only with the keys CLI (see infra/keys/README.md).",
    ]
    for slot in SLOTS:
        lines.append(f"{slot.name}={','.join(str(n) for n in versions.get(slot.name, ()))}")
    return "\n".join(lines) + "\n"


def unusable_slots(versions: VmVersions, secrets: Mapping[str, SecretState]) -> list[str]:
    """Slots naming a version the VM cannot read (missing, disabled, destroyed): the stack would not start."""
    problems = []
    for slot in SLOTS:
        state = secrets.get(slot.logical)
        if slot.login_of:
            continue
        for number in versions.get(slot.name, ()):
            if state is None:
                continue
            found = state.version(number)
            if found is None or found.state != ENABLED:
                what = "does not exist" if found is None else f"is {found.state}"
                problems.append(f"{slot.name} names v{number} of {slot.logical}, which {what}")
    return problems


def utc_now() -> datetime:
    """Naive UTC, the one time zone every comparison here uses."""
    return datetime.now(UTC).replace(tzinfo=None)
