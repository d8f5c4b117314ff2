"""Reading `docker compose ps --format json` and deciding whether the stack is healthy. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    state: str  # running, exited, restarting, created, dead, ...
    health: str  # healthy, unhealthy, starting, or "" when the service has no healthcheck

    @property
    def ready(self) -> bool:
        return self.state == "running" and self.health in ("", "healthy")

    def describe(self) -> str:
        return f"{self.service} is {self.state}" + (f" ({self.health})" if self.health else "")


def compose_services(compose_text: str) -> tuple[str, ...]:
    """Service names declared in a compose file."""
    document = yaml.safe_load(compose_text)
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict) or not services:
        raise ValueError("the compose file declares no services")
    return tuple(sorted(services))


def parse_ps(output: str) -> tuple[ServiceStatus, ...]:
    """Compose v2.21+ prints one JSON object per line; earlier v2 releases printed one JSON array."""
    text = output.strip()
    if not text:
        return ()
    if text.startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return tuple(ServiceStatus(row.get("Service", ""), str(row.get("State", "")).lower(), str(row.get("Health", "")).lower()) for row in rows)


def not_ready(expected: tuple[str, ...], statuses: tuple[ServiceStatus, ...]) -> tuple[str, ...]:
    """Why the stack is not ready yet, one phrase per service; empty when every expected service is ready."""
    by_service = {status.service: status for status in statuses}
    problems = []
    for service in expected:
        status = by_service.get(service)
        if status is None:
            problems.append(f"{service} has no container")
        elif not status.ready:
            problems.append(status.describe())
    return tuple(problems)
