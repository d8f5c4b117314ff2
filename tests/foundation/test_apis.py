"""Point 4 of the day-one review: every resource the program registers calls only APIs the program
enables, and waits for their enablement (infra/components/apis.py holds the table)."""

from __future__ import annotations

import pytest

from infra.components.apis import PREENABLED, apis_for
from infra.plan.evaluate import evaluate
from tests.foundation.plan_helpers import example_raw, of_type
from tests.foundation.test_adopt import PUBLIC_ONLY

SERVICE = "gcp:projects/service:Service"


def _plans() -> dict[str, dict]:
    registry = example_raw()
    registry["inngest-kit:app"] = {**registry["inngest-kit:app"], "image": "europe-west1-docker.pkg.dev/acme-shared/web/web:1.4.2"}
    private = example_raw()
    private["inngest-kit:app"] = {**private["inngest-kit:app"], "image": "registry.example.com/acme/web:1.4.2", "registry": {"username": "deploy"}}
    private["inngest-kit:registryToken"] = {"secure": "v1:placeholder"}
    return {"example": evaluate("example").document, "adopted": evaluate("adopt").document,
            "adopted-public-ip": evaluate("adopt", adopted_instance=PUBLIC_ONLY).document,
            "artifact-registry": evaluate("ar", raw=registry).document, "private-registry": evaluate("private", raw=private).document}


@pytest.fixture(scope="module")
def plans():
    return _plans()


def _enabled(plan: dict) -> dict[str, str]:
    """Enabled API -> the URN of the resource that enables it."""
    return {r["inputs"]["service"]: r["urn"] for r in of_type(plan, SERVICE)}


def api_problems(plan: dict) -> list[str]:
    """Every resource whose type is not in the table, whose API is not enabled, or that does not
    itself depend on its API's enablement (a parent's depends_on is not inherited in Pulumi's SDK)."""
    enabled = _enabled(plan)
    problems = []
    for resource in plan["resources"]:
        where = f"{resource['type']} {resource['name']}"
        apis = apis_for(resource["type"], resource["inputs"])
        if apis is None:
            problems.append(f"{where}: type missing from RESOURCE_APIS")
            continue
        for api in apis:
            if api in PREENABLED:
                continue
            if api not in enabled:
                problems.append(f"{where}: needs {api}, which is not enabled")
            elif enabled[api] not in resource["depends_on"]:
                problems.append(f"{where}: does not depend on the enablement of {api}")
    return problems


@pytest.mark.parametrize("stack", ["example", "adopted", "adopted-public-ip", "artifact-registry", "private-registry"])
def test_every_resource_calls_only_enabled_apis_and_waits_for_them(plans, stack):
    assert api_problems(plans[stack]) == []


def test_a_type_missing_from_the_table_fails_the_check(plans):
    plan = plans["example"]
    plan = {**plan, "resources": [*plan["resources"], {"type": "gcp:storage/bucket:Bucket", "name": "extra", "inputs": {}, "depends_on": []}]}
    assert api_problems(plan) == ["gcp:storage/bucket:Bucket extra: type missing from RESOURCE_APIS"]


def test_a_missing_dependency_fails_the_check(plans):
    plan = plans["example"]
    account = next(r for r in plan["resources"] if r["type"] == "gcp:serviceaccount/account:Account")
    stripped = {**account, "depends_on": []}
    plan = {**plan, "resources": [stripped if r is account else r for r in plan["resources"]]}
    assert api_problems(plan) == ["gcp:serviceaccount/account:Account vm-sa: does not depend on the enablement of iam.googleapis.com"]


def test_fresh_project_apis_named_by_the_review_are_enabled(plans):
    assert {"iam.googleapis.com", "cloudresourcemanager.googleapis.com"} <= set(_enabled(plans["example"]))
    assert "artifactregistry.googleapis.com" not in _enabled(plans["example"])
    assert "artifactregistry.googleapis.com" in _enabled(plans["artifact-registry"])
