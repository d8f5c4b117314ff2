"""Reading one service check (vm_commands.check_services): is the restarted service in service? Pure."""

from __future__ import annotations

from dataclasses import dataclass

from infra.ops.parse import ContainerState, UnexpectedOutput, parse_compose_ps


@dataclass(frozen=True)
class CheckResult:
    containers: tuple[ContainerState, ...]  # the restarted service's containers
    health: str | None  # None when Inngest's /health answered, else curl's complaint
    sync: str | None  # None when the sync succeeded or was not asked for

    @property
    def broken(self) -> bool:
        """A state waiting will not cure: the container is unhealthy or has stopped."""
        return any(c.health == "unhealthy" or c.state in ("exited", "dead") for c in self.containers)

    def problem(self, service: str) -> str | None:
        if not self.containers:
            return f"{service} is not running"
        if not all(c.ok for c in self.containers):
            return f"{service} is " + ", ".join(f"{c.state}/{c.health or 'no healthcheck'}" for c in self.containers)
        if self.health is not None:
            return f"Inngest /health failed: {self.health}"
        if self.sync is not None:
            return f"the sync between Inngest and the app failed: {self.sync}"
        return None


def _probe(section: str) -> str | None:
    lines = [line for line in section.splitlines() if line.strip()]
    if lines and lines[-1] == "exit 0":
        return None
    status = lines[-1] if lines and lines[-1].startswith("exit ") else "no exit status"
    detail = lines[-2] if len(lines) >= 2 else ""
    return f"{detail} ({status})".strip()


def parse_check(stdout: str, service: str) -> CheckResult:
    ps, marker, rest = stdout.partition("--- health\n")
    if not marker:
        raise UnexpectedOutput("the service check printed no health section; did `sh` run the check script?")
    health, _, sync = rest.partition("--- sync\n")
    containers = tuple(c for c in parse_compose_ps(ps) if c.service == service)
    return CheckResult(containers, _probe(health), _probe(sync) if sync else None)
