"""After a real rotation (the CLI against the fake Secret Manager and the sshd "VM"), `pulumi up`
must find nothing to revert: every field the rotation changed on a secret or a version is one the
Pulumi program ignores (infra/components/secrets.py), as the plan under mocks registers it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.json_format import MessageToDict

from infra import naming
from infra.plan.evaluate import evaluate

SECRET_TYPE = "gcp:secretmanager/secret:Secret"
VERSION_TYPE = "gcp:secretmanager/secretVersion:SecretVersion"
# Secret Manager's version state, as the Pulumi resource exposes it.
STATE_AS_PROPERTY = {"state": "enabled"}
# Set by the service on every write; no program sets them, so no diff can revert them.
OUTPUT_ONLY = {"etag", "createTime", "name"}


def snapshot(keys_stack) -> dict[str, dict]:
    shots = {}
    for logical in naming.KIT_SECRETS:
        name = keys_stack.secret_name(logical)
        secret = MessageToDict(keys_stack.client.get_secret(name=name)._pb)
        versions = {v.name.rsplit("/", 1)[1]: v.state.name for v in keys_stack.client.list_secret_versions(parent=name)}
        shots[logical] = {"secret": secret, "versions": versions}
    return shots


def changed_paths(before: dict, after: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key in set(before) | set(after):
        path = f"{prefix}{key}"
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict) and key == "rotation":
            paths |= changed_paths(old, new, path + ".")
        elif old != new:
            paths.add(path)
    return paths


def ignored(path: str, ignore_changes: list[str]) -> bool:
    return any(path == entry or path.startswith(entry + ".") for entry in ignore_changes)


@pytest.fixture(scope="module")
def planned():
    return {(r["type"], r["name"]): r["options"]["ignore_changes"] for r in evaluate("example").document["resources"]}


def test_a_completed_rotation_of_every_kind_changes_only_what_pulumi_ignores(keys_stack, planned):
    now = {"value": datetime(2026, 11, 24, 12, 0, 0)}
    keys_stack.clock = lambda: now["value"]

    def sleep(seconds):
        now["value"] += timedelta(seconds=seconds)

    for logical in naming.KIT_SECRETS:
        keys_stack.client.update_secret(
            secret={"name": keys_stack.secret_name(logical), "rotation": {"next_rotation_time": datetime(2026, 11, 30), "rotation_period": timedelta(days=90)}},
            update_mask=field_mask_pb2.FieldMask(paths=["rotation"]),
        )
    before = snapshot(keys_stack)
    assert keys_stack.run("rotate", "all", "--stack", "dev", "--yes", "--grace", "1m", sleep=sleep) == 0, keys_stack.output()
    after = snapshot(keys_stack)

    for logical in naming.KIT_SECRETS:
        changed = changed_paths(before[logical]["secret"], after[logical]["secret"]) - OUTPUT_ONLY
        assert changed, f"{logical}: the rotation changed nothing on the secret"
        unignored = [p for p in changed if not ignored(p, planned[(SECRET_TYPE, logical)])]
        assert unignored == [], f"{logical}: pulumi up would revert {unignored}"
        # The version Pulumi created (number 1) was disabled; the program must not re-enable it.
        assert (before[logical]["versions"]["1"], after[logical]["versions"]["1"]) == ("ENABLED", "DISABLED")
        assert ignored(STATE_AS_PROPERTY["state"], planned[(VERSION_TYPE, f"{logical}-initial")])
