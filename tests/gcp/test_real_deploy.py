"""The one end-to-end test against real Google Cloud, through the Pulumi Automation API.

It needs what these test machines never have: the Pulumi CLI, Google credentials and a throwaway
project (KIT_E2E_PROJECT, billing enabled). It creates real, billed resources and leaves the
protected ones (Cloud SQL, the data disk) for the operator to remove.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from infra.plan.evaluate import PROJECT_ROOT
from tests.foundation.plan_helpers import example_raw


def _missing() -> str | None:
    if shutil.which("pulumi") is None:
        return "the Pulumi CLI is not installed"
    if not os.environ.get("KIT_E2E_PROJECT"):
        return "KIT_E2E_PROJECT (a throwaway GCP project with billing) is not set"
    if shutil.which("gcloud") is None:
        return "the gcloud CLI is not installed"
    token = subprocess.run(["gcloud", "auth", "application-default", "print-access-token"], capture_output=True, timeout=60)
    if token.returncode != 0:
        return "no Google application-default credentials (gcloud auth application-default login)"
    return None


MISSING = None if os.environ.get("KIT_E2E_PROJECT") is None else _missing()
REASON = MISSING or "KIT_E2E_PROJECT (a throwaway GCP project with billing) is not set; needs the Pulumi CLI and Google credentials"


@pytest.mark.skipif(os.environ.get("KIT_E2E_PROJECT") is None or MISSING is not None, reason=REASON)
def test_pulumi_up_on_real_gcp_deploys_and_a_second_up_changes_nothing():
    from pulumi import automation

    stack = automation.create_or_select_stack(stack_name="e2e", work_dir=str(PROJECT_ROOT))
    raw = example_raw()
    raw["gcp:project"] = os.environ["KIT_E2E_PROJECT"]
    raw.pop("inngest-kit:appSecrets", None)
    for key, value in raw.items():
        stack.set_config(key, automation.ConfigValue(value=value if isinstance(value, str) else json.dumps(value)))
    first = stack.up(on_output=print)
    outputs = first.outputs
    assert outputs["vm_name"].value == "acme-vm"
    assert outputs["release_id"].value
    second = stack.up(on_output=print)
    assert set(second.summary.resource_changes) <= {"same"}
