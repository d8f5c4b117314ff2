"""Pure parsers of what the operator commands' remote commands print."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime


class UnexpectedOutput(ValueError):
    """A remote tool printed something we cannot read; the message says which and what was expected."""


@dataclass(frozen=True)
class ContainerState:
    service: str
    name: str
    state: str  # running, exited, restarting, ...
    health: str  # healthy, unhealthy, starting, or "" without a healthcheck
    status: str  # docker's own summary, e.g. "Up 3 hours (healthy)"

    @property
    def ok(self) -> bool:
        return self.state == "running" and self.health in ("", "healthy")


def parse_compose_ps(stdout: str) -> list[ContainerState]:
    """`docker compose ps --format json`: one object per line (compose >= 2.21) or one array (older)."""
    text = stdout.strip()
    if not text:
        return []
    try:
        rows = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise UnexpectedOutput(f"`docker compose ps --format json` printed something that is not JSON ({exc.msg}); is the docker compose plugin v2 installed?") from None
    containers = []
    for row in rows:
        if not isinstance(row, dict):
            raise UnexpectedOutput("`docker compose ps --format json` printed a row that is not an object")
        containers.append(
            ContainerState(
                service=str(row.get("Service", "")),
                name=str(row.get("Name", "")),
                state=str(row.get("State", "")),
                health=str(row.get("Health", "")),
                status=str(row.get("Status", "")),
            )
        )
    return sorted(containers, key=lambda container: (container.service, container.name))


@dataclass(frozen=True)
class HealthCheck:
    ok: bool
    detail: str


def parse_http_probe(exit_status: int, stdout: str, stderr: str) -> HealthCheck:
    """curl with `--write-out %{http_code}`: a status code when something answered, an error otherwise."""
    code = stdout.strip()
    if exit_status != 0 or not code.isdigit() or code == "000":
        reason = stderr.strip().splitlines()[-1] if stderr.strip() else f"curl exit status {exit_status}"
        return HealthCheck(False, f"not answering ({reason})")
    return HealthCheck(code == "200", f"HTTP {code}")


@dataclass(frozen=True)
class Release:
    release_id: str
    path: str
    deployed_at: datetime


def parse_live_release(stdout: str) -> Release:
    """Two lines: the `current` link's target, then the link's mtime in epoch seconds."""
    lines = stdout.strip().splitlines()
    if len(lines) != 2 or not lines[1].strip().isdigit():
        raise UnexpectedOutput("reading the live release printed something other than a link target and an mtime")
    path = lines[0].strip()
    return Release(path.rstrip("/").rsplit("/", 1)[-1], path, datetime.fromtimestamp(int(lines[1]), UTC))


def parse_enddate(stdout: str) -> datetime:
    """`openssl x509 -enddate -noout`: `notAfter=Feb 22 12:00:00 2027 GMT`."""
    line = stdout.strip()
    if not line.startswith("notAfter="):
        raise UnexpectedOutput("openssl printed no notAfter= line for the certificate")
    value = " ".join(line.removeprefix("notAfter=").split())  # openssl pads single-digit days with a space
    try:
        return datetime.strptime(value, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC)
    except ValueError:
        raise UnexpectedOutput(f"openssl printed a notAfter date we cannot read: {value!r}") from None
