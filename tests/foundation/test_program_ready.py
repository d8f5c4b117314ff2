"""The program hands the deploy what its readiness step needs: the startup script's version (the one
in the VM's metadata), the configured bound, and the Pulumi provider's identity."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, parse_config
from infra.plan.evaluate import evaluate
from infra.plan.mocks import KNOWN_AFTER_DEPLOY
from infra.startup import render_startup_script, startup_script_version
from tests.foundation.plan_helpers import example_raw, one

DEPLOYMENT = "pulumi-python:dynamic/inngest-kit:StackDeployment"


def test_the_deploy_waits_for_the_version_of_the_script_in_the_vms_metadata():
    raw = example_raw()
    raw["inngest-kit:vm"] = {**raw.get("inngest-kit:vm", {}), "readyTimeoutSeconds": 1200}
    plan = evaluate("ready", raw=raw).document
    metadata = one(plan, "gcp:compute/instance:Instance", "vm")["inputs"]["metadata"]
    assert metadata["startup-script"] == render_startup_script()
    inputs = one(plan, DEPLOYMENT, "stack")["inputs"]
    assert inputs["startup"] == {"version": startup_script_version(), "timeout": 1200}
    assert f"STARTUP_VERSION={inputs['startup']['version']}\n" in metadata["startup-script"]
    assert inputs["identity"] == KNOWN_AFTER_DEPLOY  # the caller's email, from get_client_open_id_user_info


def test_ready_timeout_defaults_to_fifteen_minutes_and_is_bounded():
    assert parse_config(example_raw()).vm.ready_timeout_seconds == 900
    raw = example_raw()
    raw["inngest-kit:vm"] = {**raw.get("inngest-kit:vm", {}), "readyTimeoutSeconds": 10}
    with pytest.raises(ConfigError) as failure:
        parse_config(raw)
    assert any(p.startswith("inngest-kit:vm.readyTimeoutSeconds: must be a whole number from 60 to 7200, got 10") for p in failure.value.problems)
