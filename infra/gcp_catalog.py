"""The Compute Engine facts the config is checked against: real regions and zones, and the vCPUs and
memory of each machine type. Both come from committed tables (infra/data/*.json), each naming its
source and date, so a check never needs a cloud call and a stale table is easy to spot and refresh."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
ZONES_FILE = DATA / "gcp_zones.json"
MACHINE_TYPES_FILE = DATA / "machine_types.json"

# Custom types: <prefix><vCPUs>-<memory MiB>[-ext], e.g. e2-custom-2-4096, custom-4-15360-ext.
CUSTOM_TAIL_RE = re.compile(r"([0-9]{1,3})-([0-9]{1,7})(-ext)?")
CUSTOM_MEMORY_STEP_MIB = 256


@dataclass(frozen=True)
class MachineShape:
    vcpus: int
    memory_mib: int


@cache
def _zones() -> dict:
    return json.loads(ZONES_FILE.read_text())


@cache
def _machine_types() -> dict:
    return json.loads(MACHINE_TYPES_FILE.read_text())


def zones_table_date() -> str:
    return _zones()["as_of"]


def machine_types_table_date() -> str:
    return _machine_types()["as_of"]


def regions() -> tuple[str, ...]:
    return tuple(sorted(_zones()["regions"]))


def region_zones(region: str) -> tuple[str, ...]:
    """The zones of a region, or () for a region the table does not know."""
    return tuple(_zones()["regions"].get(region, ()))


def default_zone(region: str) -> str | None:
    """The region's first zone in the table: a real zone (europe-west1 has no -a)."""
    zones = region_zones(region)
    return zones[0] if zones else None


def zone_region(zone: str) -> str | None:
    for region, zones in _zones()["regions"].items():
        if zone in zones:
            return region
    return None


def machine_shape(machine_type: str) -> MachineShape | None:
    """vCPUs and memory of a predefined or custom machine type, or None if it is not a real one."""
    table = _machine_types()
    if machine_type in table["shared_core"]:
        entry = table["shared_core"][machine_type]
        return MachineShape(entry["vcpus"], entry["memory_mib"])
    for family, rule in table["predefined"].items():
        prefix = family + "-"
        if machine_type.startswith(prefix):
            size = machine_type[len(prefix) :]
            if size.isascii() and size.isdigit() and int(size) in rule["vcpus"]:
                return MachineShape(int(size), int(size) * rule["memory_mib_per_vcpu"])
    return _custom_shape(machine_type, table["custom"])


def _custom_shape(machine_type: str, rules: dict) -> MachineShape | None:
    for rule in rules.values():
        if not machine_type.startswith(rule["prefix"]):
            continue
        match = CUSTOM_TAIL_RE.fullmatch(machine_type[len(rule["prefix"]) :])
        if not match:
            return None
        vcpus, memory, extended = int(match.group(1)), int(match.group(2)), bool(match.group(3))
        if vcpus not in rule["vcpus"] or memory % CUSTOM_MEMORY_STEP_MIB:
            return None
        if memory < vcpus * rule["min_mib_per_vcpu"] or memory > rule["max_memory_mib"]:
            return None
        if extended and not rule["extended_memory"]:
            return None
        if not extended and memory > vcpus * rule["max_mib_per_vcpu"]:
            return None
        return MachineShape(vcpus, memory)
    return None
