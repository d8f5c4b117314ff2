"""A rotation done by the keys CLI, outside Pulumi, must never show up as a diff that `pulumi up`
would revert.

Pulumi computes a diff between the program's inputs and what the provider reads back; a property
listed in ignore_changes keeps the value in the cloud. So: apply what a rotation does in the cloud
to the planned resources, and every property it changes must be ignored, for every secret.
"""

from __future__ import annotations

import pytest

from infra.plan.evaluate import evaluate

# What a rotation (infra/keys) changes in the cloud, per resource type, as engine property paths.
ROTATION_EFFECTS = {
    "gcp:secretmanager/secret:Secret": {
        "versionAliases": {"current": "2", "previous": "1"},
        "annotations": {"rotation.v2": "by=ops@example.com;at=2026-11-24T10:00:00Z;why=scheduled"},
        "rotation.nextRotationTime": "2027-02-22T00:00:00Z",
    },
    # The first version is disabled, then destroyed once past retention: its data can no longer be read.
    "gcp:secretmanager/secretVersion:SecretVersion": {"enabled": False, "secretData": ""},
    "gcp:sql/user:User": {"password": "a-new-password"},
}
APP_SECRET_VERSION_EFFECTS = {"enabled": False}  # the keys CLI never rotates the user's app secrets


def _get(inputs: dict, path: str):
    value = inputs
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _ignored(path: str, ignore_changes: list[str]) -> bool:
    return any(path == ignored or path.startswith(ignored + ".") for ignored in ignore_changes)


def reverted_by_up(resource: dict, effects: dict) -> list[str]:
    """The properties `pulumi up` would set back after the cloud side changed as in `effects`."""
    return [
        path
        for path, cloud_value in effects.items()
        if _get(resource["inputs"], path) != cloud_value and not _ignored(path, resource["options"]["ignore_changes"])
    ]


@pytest.fixture(scope="module")
def plan():
    return evaluate("example").document


def test_a_rotation_leaves_nothing_for_pulumi_up_to_revert(plan):
    checked = 0
    for resource in plan["resources"]:
        effects = ROTATION_EFFECTS.get(resource["type"])
        if effects is None:
            continue
        if resource["type"].endswith("SecretVersion") and resource["name"].startswith("app-"):
            effects = APP_SECRET_VERSION_EFFECTS
        assert reverted_by_up(resource, effects) == [], resource["name"]
        checked += 1
    assert checked == 6 + 6 + 6  # secrets, their first versions, database users (owners and login roles)


def test_the_model_catches_a_missing_ignore(plan):
    secret = next(r for r in plan["resources"] if r["type"] == "gcp:secretmanager/secret:Secret")
    stripped = {**secret, "options": {**secret["options"], "ignore_changes": ["annotations"]}}
    assert reverted_by_up(stripped, ROTATION_EFFECTS[secret["type"]]) == ["versionAliases", "rotation.nextRotationTime"]


def test_kit_versions_are_abandoned_not_destroyed_by_pulumi(plan):
    # Once rotated, a first version may already be destroyed; deleting it again must not fail a destroy.
    kit_versions = [r for r in plan["resources"] if r["type"].endswith("SecretVersion") and not r["name"].startswith("app-")]
    assert {r["inputs"]["deletionPolicy"] for r in kit_versions} == {"ABANDON"}


def test_an_app_secret_value_change_in_config_does_make_a_new_version(plan):
    app_version = next(r for r in plan["resources"] if r["name"] == "app-stripe-api-key-initial")
    assert "secretData" not in app_version["options"]["ignore_changes"]
