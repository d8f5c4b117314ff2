"""Helpers for reading the plan document in tests."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from infra.plan.evaluate import PROJECT_ROOT, evaluate


def example_raw() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load((PROJECT_ROOT / "Pulumi.example.yaml").read_text())["config"])


def of_type(document: dict, type_: str) -> list[dict]:
    return [r for r in document["resources"] if r["type"] == type_]


def one(document: dict, type_: str, name: str) -> dict:
    found = [r for r in of_type(document, type_) if r["name"] == name]
    assert len(found) == 1, f"expected one {type_} named {name}, found {len(found)}"
    return found[0]


def closure(document: dict, urn: str) -> set[str]:
    """Every resource this one waits for, directly or through others (including its parents')."""
    by_urn = {r["urn"]: r for r in document["resources"]}
    seen: set[str] = set()
    stack = [urn]
    while stack:
        current = by_urn.get(stack.pop())
        if current is None:
            continue
        for dep in current["depends_on"] + ([current["parent"]] if current["parent"] else []):
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return seen


def adopted_document() -> dict:
    """The plan document of the example stack adopting the instance `shared-pg` (the plan's stand-in description)."""
    raw = example_raw()
    raw["inngest-kit:database"] = {"existingInstance": "shared-pg"}
    return evaluate("adopted", raw=raw).document
