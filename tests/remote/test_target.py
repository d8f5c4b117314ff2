"""Stack outputs -> SshTarget, and the `pulumi stack output` edge with a recording stand-in for subprocess.run."""

from __future__ import annotations

import json
import subprocess

import pytest

from infra.remote.target import (
    StackOutputsError,
    load_stack_outputs,
    target_from_outputs,
)

OUTPUTS = {
    "project": "acme-web-prod",
    "zone": "us-central1-a",
    "vm_name": "acme-vm",
    "external_ip": "203.0.113.7",
    "ssh_user": "deployer_acme_iam_gserviceaccount_com",
    "ssh_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-body\n-----END OPENSSH PRIVATE KEY-----\n",
    "ssh_via": "iap",
}
HOST_KEYS = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholder",)


class RecordingRun:
    """Stands in for subprocess.run: records argv and answers as pulumi would."""

    def __init__(self, stdout: str = "", returncode: int = 0, stderr: str = "", missing: bool = False):
        self.calls: list[list[str]] = []
        self.answer = subprocess.CompletedProcess([], returncode, stdout, stderr)
        self.missing = missing

    def __call__(self, argv, **kwargs):
        self.calls.append(list(argv))
        if self.missing:
            raise FileNotFoundError(argv[0])
        return self.answer


def test_loads_outputs_with_the_exact_command():
    run = RecordingRun(json.dumps(OUTPUTS))
    assert load_stack_outputs("prod", run=run) == OUTPUTS
    assert run.calls == [["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", "prod"]]


def test_without_a_stack_name_the_selected_stack_is_used():
    run = RecordingRun(json.dumps(OUTPUTS))
    load_stack_outputs(None, run=run)
    assert run.calls == [["pulumi", "stack", "output", "--json", "--show-secrets"]]


def test_missing_pulumi_says_how_to_install_it():
    with pytest.raises(StackOutputsError, match="pulumi is not installed.*install"):
        load_stack_outputs("prod", run=RecordingRun(missing=True))


def test_stack_without_outputs_says_to_run_pulumi_up():
    with pytest.raises(StackOutputsError, match="no outputs: run `pulumi up` first"):
        load_stack_outputs("prod", run=RecordingRun("{}"))


def test_pulumi_failure_carries_its_last_line():
    run = RecordingRun(returncode=255, stderr="warning: x\nerror: no stack named 'nope' found\n")
    with pytest.raises(StackOutputsError, match="exit status 255.*no stack named 'nope'"):
        load_stack_outputs("nope", run=run)


def test_bad_json_is_reported_without_echoing_the_text():
    with pytest.raises(StackOutputsError) as failure:
        load_stack_outputs("prod", run=RecordingRun('{"ssh_private_key": "hunter2-secret"'))
    assert "did not print JSON" in str(failure.value)
    assert "hunter2" not in str(failure.value)


def test_iap_target_goes_through_start_iap_tunnel_to_the_instance_name():
    target = target_from_outputs(OUTPUTS, host_keys=HOST_KEYS)
    assert target.host == "acme-vm"
    assert target.port == 22
    assert target.user == "deployer_acme_iam_gserviceaccount_com"
    assert target.host_keys == HOST_KEYS
    assert target.proxy_command == (
        "gcloud", "compute", "start-iap-tunnel", "acme-vm", "22", "--listen-on-stdin",
        "--zone", "us-central1-a", "--project", "acme-web-prod",
    )


def test_direct_target_goes_to_the_external_ip():
    target = target_from_outputs({**OUTPUTS, "ssh_via": "direct"}, host_keys=HOST_KEYS)
    assert (target.host, target.proxy_command) == ("203.0.113.7", None)


def test_via_argument_overrides_the_output():
    assert target_from_outputs(OUTPUTS, host_keys=HOST_KEYS, via="direct").host == "203.0.113.7"


def test_iap_is_the_default_when_ssh_via_is_absent():
    outputs = {k: v for k, v in OUTPUTS.items() if k != "ssh_via"}
    assert target_from_outputs(outputs, host_keys=HOST_KEYS).proxy_command[:3] == ("gcloud", "compute", "start-iap-tunnel")


def test_every_missing_output_is_reported_at_once():
    outputs = {"ssh_via": "iap", "zone": "us-central1-a"}
    with pytest.raises(StackOutputsError) as failure:
        target_from_outputs(outputs, host_keys=HOST_KEYS)
    message = str(failure.value)
    for name in ("ssh_user", "ssh_private_key", "vm_name", "project"):
        assert name in message
    assert "zone" not in message.split("missing:")[1].split(";")[0]


def test_unknown_via_is_reported_with_the_choices_and_missing_outputs_too():
    with pytest.raises(StackOutputsError) as failure:
        target_from_outputs({"ssh_via": "carrier-pigeon"}, host_keys=HOST_KEYS)
    assert len(failure.value.problems) == 2
    assert "iap, direct" in failure.value.problems[0]
