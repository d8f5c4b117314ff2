"""Pure builders of the VM lock's remote commands, and the parsing of what they print.

The lock is a directory on the data disk (`/srv/kit/lock`, see infra/layout.py). mkdir(2) is atomic:
of two operations that try at once exactly one creates it. Because it is a directory and not a
process, it outlives the SSH command and the SSH session that took it, so it guards an operation made
of many commands, and a cut connection leaves it in place for the operator to see.

Inside the directory: `token`, a random id of this holding (only a holder that knows it may release
or take over), and `details.json`, who holds it, with which command, since when (`LockDetails`).
Kamal (basecamp/kamal lib/kamal/commands/lock.rb) also takes its deploy lock with mkdir and keeps the
details beside it; this lock adds the token and the operation id, so that a rerun of an interrupted
operation can take over its own lock, and no release can remove somebody else's.

Every script is a constant; values are positional parameters, and details travel on stdin.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from infra.remote.vm import Vm

DETAILS_FILE = "details.json"
TOKEN_FILE = "token"
# What the scripts print first; the parser reads it.
ACQUIRED, HELD, TAKEN_OVER, LOST, RELEASED, NOT_OURS, FREE = "acquired", "held", "taken-over", "lost", "released", "not-ours", "free"


@dataclass(frozen=True)
class LockDetails:
    """Who holds the lock. Never anything secret: it is printed to whoever asks."""

    token: str  # random id of this holding
    operation: str  # what the holder is doing, e.g. "deploy release 1a2b..." or "keys rotate signing"
    command: str  # what the operator ran, e.g. "pulumi up" or "python -m infra keys rotate signing"
    by: str  # the operator identity (e-mail, or the SSH user when none is known)
    ssh_user: str
    client: str  # the machine the operator ran it from
    since: str  # UTC, ISO 8601

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True) + "\n").encode()

    def same_operation_as(self, other: LockDetails) -> bool:
        """A rerun of the same operation by the same person: it may take this lock over (see infra/ops/lock.py)."""
        return (self.operation, self.by, self.ssh_user) == (other.operation, other.by, other.ssh_user)

    def describe(self) -> str:
        return f"{self.by} (SSH user {self.ssh_user}, from {self.client}) running `{self.command}` ({self.operation}) since {self.since}"


@dataclass(frozen=True)
class LockState:
    """What a lock command saw: its verdict, and the holder's details when the lock is held."""

    verdict: str
    details: LockDetails | None  # None when free, or when a holder's acquisition was cut short before it wrote them
    token: str | None  # the holder's token as read from the VM (a lock with no details may still have one)


# Prints `acquired` when this call made the directory; else `held`, then the holder's token and
# details. A mkdir that fails for another reason than "it exists" (a full disk, a missing data disk) is
# an error with mkdir's own words on stderr. The details are written to a temporary file and renamed,
# so a reader sees none or all of them.
ACQUIRE_SCRIPT = """\
set -u
lock=$1 token=$2
# The parent is the data disk's mount point; like the release directories, the lock does not wait for it.
if err=$(mkdir -p -- "${lock%/*}" 2>&1 && mkdir -- "$lock" 2>&1); then
  if printf '%s\\n' "$token" >"$lock/token.new" && mv -f -- "$lock/token.new" "$lock/token" \\
    && cat >"$lock/details.new" && mv -f -- "$lock/details.new" "$lock/details.json"; then
    echo acquired
    exit 0
  fi
  # Could not record who holds it (a full disk): give it back rather than leave an anonymous lock.
  rm -rf -- "$lock"
  echo "cannot record the lock's details in $lock" >&2
  exit 1
fi
if [ ! -d "$lock" ]; then
  printf '%s\\n' "$err" >&2
  exit 1
fi
# Details first: a holder writes its token before its details, so details read before the token
# always come with that token (a reader racing an acquisition sees no details, never details alone).
details=$(cat -- "$lock/details.json" 2>/dev/null) || details=""
echo held
cat -- "$lock/token" 2>/dev/null || echo
printf '%s\\n' "$details"
exit 0
"""


def acquire(vm: Vm, token: str) -> list[str]:
    """Send `LockDetails.to_json()` as stdin."""
    return [*vm.tools.sudo, "sh", "-c", ACQUIRE_SCRIPT, "lock-acquire", vm.paths.lock, token]


# Replaces the holder's token and details only if the token is still the one the caller saw, and only
# once per old token: `mkdir takeover.<old>` is the atomic step, so of two reruns taking over the same
# stale lock at once exactly one wins and the other sees `lost`.
TAKE_OVER_SCRIPT = """\
set -u
lock=$1 old=$2 token=$3
if [ "$(cat -- "$lock/token" 2>/dev/null)" != "$old" ] || ! mkdir -- "$lock/takeover.$old" 2>/dev/null; then
  echo lost
  exit 0
fi
printf '%s\\n' "$token" >"$lock/token.new" && mv -f -- "$lock/token.new" "$lock/token"
cat >"$lock/details.new" && mv -f -- "$lock/details.new" "$lock/details.json"
echo taken-over
"""


def take_over(vm: Vm, old_token: str, token: str) -> list[str]:
    """Send the new holder's `LockDetails.to_json()` as stdin."""
    return [*vm.tools.sudo, "sh", "-c", TAKE_OVER_SCRIPT, "lock-take-over", vm.paths.lock, old_token, token]


# Removes the lock only when it still carries the given token (the caller's own, or the one the
# operator saw in `lock status`): the rename is atomic, so a new holder's lock is never removed by a
# late release. An empty token matches a lock without a token file (an acquisition cut short).
RELEASE_SCRIPT = """\
set -u
lock=$1 token=$2
[ -d "$lock" ] || { echo free; exit 0; }
[ "$(cat -- "$lock/token" 2>/dev/null)" = "$token" ] || { echo not-ours; exit 0; }
mv -T -- "$lock" "$lock.released.$$"
rm -rf -- "$lock.released.$$"
echo released
"""


def release(vm: Vm, token: str) -> list[str]:
    return [*vm.tools.sudo, "sh", "-c", RELEASE_SCRIPT, "lock-release", vm.paths.lock, token]


STATUS_SCRIPT = """\
set -u
lock=$1
[ -d "$lock" ] || { echo free; exit 0; }
# Details first: a holder writes its token before its details, so details read before the token
# always come with that token (a reader racing an acquisition sees no details, never details alone).
details=$(cat -- "$lock/details.json" 2>/dev/null) || details=""
echo held
cat -- "$lock/token" 2>/dev/null || echo
printf '%s\\n' "$details"
exit 0
"""


def status(vm: Vm) -> list[str]:
    # Read-only; sudo because the directory is root's.
    return [*vm.tools.sudo, "sh", "-c", STATUS_SCRIPT, "lock-status", vm.paths.lock]


def parse(stdout: str) -> LockState:
    """Reads what any of the scripts above prints."""
    head, _, rest = stdout.partition("\n")
    verdict = head.strip()
    if verdict not in (ACQUIRED, HELD, TAKEN_OVER, LOST, RELEASED, NOT_OURS, FREE):
        raise ValueError(f"the lock command printed {head[:80]!r}, not a verdict; is the data disk mounted?")
    if verdict != HELD:
        return LockState(verdict, None, None)
    token_line, _, body = rest.partition("\n")
    return LockState(verdict, parse_details(body), token_line.strip() or None)


def parse_details(text: str) -> LockDetails | None:
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    fields = LockDetails.__dataclass_fields__
    if not all(isinstance(document.get(name), str) for name in fields):
        return None
    return LockDetails(**{name: document[name] for name in fields})
