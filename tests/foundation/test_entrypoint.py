"""`__main__.py`, as `pulumi up` runs it: config read from the engine, validated, then the program."""

from __future__ import annotations

import json
import runpy

import pulumi
import pytest
from pulumi.runtime import settings
from pulumi.runtime.sync_await import _sync_await

from infra.plan.evaluate import PROJECT_ROOT
from infra.plan.mocks import PlanMocks, RecordingMonitor
from tests.foundation.plan_helpers import example_raw

STRIPE = "sk_live_entrypoint_canary"


def engine_config(raw: dict) -> dict[str, str]:
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in raw.items()}


def run_entrypoint(raw: dict, monitor: RecordingMonitor | None = None) -> RecordingMonitor:
    mocks = PlanMocks("acme-web-prod", "us-central1")
    monitor = monitor or RecordingMonitor(mocks)
    monitor.mocks = mocks
    pulumi.runtime.set_all_config(engine_config(raw), ["inngest-kit:appSecrets"])
    pulumi.runtime.set_mocks(mocks, project="inngest-kit", stack="test", preview=False, monitor=monitor)
    settings.SETTINGS.rpc_manager.clear()
    _sync_await(pulumi.runtime.stack.run_pulumi_func(lambda: runpy.run_path(str(PROJECT_ROOT / "__main__.py"))))
    return monitor


def test_the_entrypoint_reads_the_engine_config_and_builds_the_stack():
    raw = example_raw()
    raw["inngest-kit:appSecrets"] = {"STRIPE_API_KEY": STRIPE}
    monitor = run_entrypoint(raw)
    by_name = {(r.type, r.name): r for r in monitor.registrations}
    version = by_name[("gcp:secretmanager/secretVersion:SecretVersion", "app-stripe-api-key-initial")]
    data = version.inputs["secretData"]
    # The app secret's value reaches its version, as a secret.
    assert isinstance(data, dict) and data["value"] == STRIPE
    assert ("gcp:compute/instance:Instance", "vm") in by_name
    # The server hex-decodes the whole signing key; the event key travels in a URL and the server
    # splits a key list on commas.
    signing = by_name[("gcp:secretmanager/secretVersion:SecretVersion", "inngest-signing-key-initial")].inputs["secretData"]["value"]
    assert len(signing) == 64 and all(c in "0123456789abcdef" for c in signing)
    event = by_name[("gcp:secretmanager/secretVersion:SecretVersion", "inngest-event-key-initial")].inputs["secretData"]["value"]
    assert event and all(c.isalnum() or c in "-_" for c in event)
    deployment = by_name[("pulumi-python:dynamic/inngest-kit:StackDeployment", "stack")]
    assert STRIPE not in json.dumps(deployment.inputs["files"])


def test_a_bad_config_stops_before_any_resource_with_exit_2(capsys):
    raw = example_raw()
    raw["gcp:zone"] = "europe-west1-b"
    raw["inngest-kit:appSecrets"] = {}
    monitor = RecordingMonitor(PlanMocks("acme-web-prod", "us-central1"))
    with pytest.raises(SystemExit) as stopped:
        run_entrypoint(raw, monitor)
    assert stopped.value.code == 2
    assert monitor.registrations == []
    assert "gcp:zone: zone 'europe-west1-b' is not in region 'us-central1'" in capsys.readouterr().err
