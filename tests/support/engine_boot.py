"""A VM boot on the engine bed, in the order systemd gives the kit's rendered units (tests only).

There is no systemd here, so this reads the units infra/startup.py renders and applies the two
rules of theirs that decide the boot order around dockerd: a unit with `Before=docker.service` has
run when dockerd starts; a unit with `After=docker.service` runs once dockerd answers. A unit runs
only if its `ConditionPathExists=` holds; then its ExecStartPre= and ExecStart= lines, in order, in
its WorkingDirectory=, inside the VM namespace; with `Restart=on-failure`, a failed run starts again
after RestartSec= (a few times at most). Nothing else of systemd is modelled.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass

from tests.support.engine import Engine

DOCKER_UNIT = "docker.service"
RESTART_ATTEMPTS = 5


@dataclass(frozen=True)
class Unit:
    name: str
    directives: dict[str, list[str]]  # "Section.Key" -> values, in file order

    def values(self, key: str) -> list[str]:
        return [word for value in self.directives.get(key, []) for word in value.split()]

    def lines(self, key: str) -> list[str]:
        return self.directives.get(key, [])


def parse_unit(name: str, text: str) -> Unit:
    directives: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        directives.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return Unit(name, directives)


def before_docker(unit: Unit) -> bool:
    return DOCKER_UNIT in unit.values("Unit.Before")


def after_docker(unit: Unit) -> bool:
    return DOCKER_UNIT in unit.values("Unit.After") and not before_docker(unit)


def run_unit(engine: Engine, unit: Unit, env_prefix: tuple[str, ...]) -> list[str]:
    """Runs the unit's commands in the VM; returns what ran (empty when its condition failed)."""
    for path in unit.values("Unit.ConditionPathExists"):
        if engine.in_vm(["test", "-e", path], check=False).returncode != 0:
            return []
    directory = (unit.lines("Service.WorkingDirectory") or ["/"])[0]
    attempts = RESTART_ATTEMPTS if unit.values("Service.Restart") == ["on-failure"] else 1
    delay = float((unit.values("Service.RestartSec") or ["0.1"])[0])
    ran: list[str] = []
    for attempt in range(1, attempts + 1):
        try:
            for command in [*unit.lines("Service.ExecStartPre"), *unit.lines("Service.ExecStart")]:
                argv = shlex.split(command.lstrip("-"))
                ran.append(command)
                engine.in_vm(["sh", "-c", 'cd "$1" && shift && exec "$@"', "unit", directory, *env_prefix, *argv], timeout=300)
            return ran
        except RuntimeError:
            if attempt == attempts:
                raise
            ran.append(f"(failed; restarting after {delay:g} s)")
            time.sleep(delay)
    return ran


def boot(engine: Engine, units: dict[str, str], env_prefix: tuple[str, ...]) -> dict[str, list[str]]:
    """Boots the VM with `units` (name -> rendered text); returns what each unit ran, in boot order."""
    parsed = [parse_unit(name, text) for name, text in units.items()]
    ran: dict[str, list[str]] = {}

    def early() -> None:
        for unit in parsed:
            if before_docker(unit):
                ran[unit.name] = run_unit(engine, unit, env_prefix)

    engine.boot(before_dockerd=early)
    for unit in parsed:
        if after_docker(unit):
            ran[unit.name] = run_unit(engine, unit, env_prefix)
    return ran
