"""Reading `docker compose ps --format json` and deciding whether the stack is healthy. Pure.

An empty `Health` in `compose ps` means "no healthcheck" as often as "not probed yet": a container that
crash-loops shows `running` with an empty or `starting` health between its restarts. So a service whose
compose definition declares a healthcheck is ready only when `healthy`, and the compose file, not the
`ps` output, says which services those are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    state: str  # running, exited, restarting, created, dead, ...
    health: str  # healthy, unhealthy, starting, or "" (no healthcheck, or not probed yet)
    exit_code: int = 0  # of the container's last run; says why a restarting or exited service stopped

    @property
    def ready(self) -> bool:
        return self.state == "running" and self.health in ("", "healthy")

    def ready_with(self, has_healthcheck: bool) -> bool:
        return self.state == "running" and (self.health == "healthy" if has_healthcheck else self.health in ("", "healthy"))

    def describe(self) -> str:
        exited = f", last exit code {self.exit_code}" if self.exit_code and self.state in ("restarting", "exited", "dead") else ""
        return f"{self.service} is {self.state}" + (f" ({self.health}{exited})" if self.health else f" ({exited[2:]})" if exited else "")


def compose_services(compose_text: str) -> tuple[str, ...]:
    """Service names declared in a compose file."""
    document = yaml.safe_load(compose_text)
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict) or not services:
        raise ValueError("the compose file declares no services")
    return tuple(sorted(services))


def healthchecked_services(compose_text: str) -> frozenset[str]:
    """Services whose compose definition declares a healthcheck that is not disabled."""
    document = yaml.safe_load(compose_text)
    services = document.get("services") if isinstance(document, dict) else None
    checked = set()
    for name, definition in (services or {}).items():
        check = (definition or {}).get("healthcheck") if isinstance(definition, dict) else None
        if not isinstance(check, dict) or check.get("disable") is True:
            continue
        test = check.get("test")
        if test in (None, "NONE", ["NONE"]):
            continue
        checked.add(name)
    return frozenset(checked)


def parse_ps(output: str) -> tuple[ServiceStatus, ...]:
    """Compose v2.21+ prints one JSON object per line; earlier v2 releases printed one JSON array."""
    text = output.strip()
    if not text:
        return ()
    if text.startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return tuple(ServiceStatus(row.get("Service", ""), str(row.get("State", "")).lower(), str(row.get("Health", "")).lower(), _int(row.get("ExitCode"))) for row in rows)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def not_ready(expected: tuple[str, ...], statuses: tuple[ServiceStatus, ...], healthchecked: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Why the stack is not ready yet, one phrase per service; empty when every expected service is ready.

    A service in `healthchecked` must be `healthy`; others need only be running."""
    return tuple(problem for _, problem in unready_services(expected, statuses, healthchecked))


def unready_services(expected: tuple[str, ...], statuses: tuple[ServiceStatus, ...], healthchecked: frozenset[str] = frozenset()) -> tuple[tuple[str, str], ...]:
    """(service, why) for each expected service that is not ready."""
    by_service = {status.service: status for status in statuses}
    problems = []
    for service in expected:
        status = by_service.get(service)
        if status is None:
            problems.append((service, f"{service} has no container"))
        elif not status.ready_with(service in healthchecked):
            problems.append((service, status.describe() if status.health or service not in healthchecked else f"{status.describe()} (not yet healthy)"))
    return tuple(problems)
