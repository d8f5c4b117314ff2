"""Bad input to the operator commands: a clear message, exit 2, and not one connection attempted."""

from __future__ import annotations

import argparse

import pytest

from infra.ops import cli
from infra.ops.reach import context_from_outputs, domain_from_outputs, pinned_host_keys, secret_manager_key_ages
from infra.remote.target import StackOutputsError

OUTPUTS = {
    "project": "acme-web-prod",
    "zone": "us-central1-a",
    "vm_name": "acme-vm",
    "external_ip": "203.0.113.7",
    "url": "https://app.acme-example.com",
    "ssh_user": "deployer",
    "ssh_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
}
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKvQ"


def parser(factory) -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m infra")
    cli.register(root.add_subparsers(dest="command", required=True), context_factory=factory)
    return root


def never_called(stack, via):
    raise AssertionError("bad input must be rejected before the stack is read")


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["logs", "--lines", "0"], "'0' is not a whole number of at least 1"),
        (["logs", "--lines", "ten"], "'ten' is not a whole number"),
        (["logs", "--since", "yesterday"], "'yesterday' is not a duration"),
        (["logs", "app; reboot"], "is not a service name"),
        (["status", "--via", "vpn"], "invalid choice: 'vpn'"),
        (["audit", "--lines", "-3"], "'-3' is not a whole number"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(argv, complaint, capsys, ssh_stats):
    with pytest.raises(SystemExit) as exit_info:
        parser(never_called).parse_args(argv)
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err
    assert ssh_stats.connection_attempts == 0


def test_good_log_arguments_are_accepted():
    args = parser(never_called).parse_args(["logs", "inngest", "-f", "--since", "1h30m", "--lines", "20", "--stack", "prod", "--via", "direct"])
    assert (args.service, args.follow, args.since, args.lines, args.stack, args.via) == ("inngest", True, "1h30m", 20, "prod", "direct")


def test_unusable_stack_outputs_exit_2_listing_every_problem(capsys, ssh_stats):
    def broken_stack(stack, via):
        return context_from_outputs({"ssh_via": "iap", "zone": "z"}, via=via, fetch_keys=lambda *a, **k: (HOST_KEY,))

    args = parser(broken_stack).parse_args(["status", "--stack", "prod"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the stack outputs are not usable:\n")
    for name in ("ssh_user", "ssh_private_key", "vm_name", "project"):
        assert name in err
    assert ssh_stats.connection_attempts == 0


def test_context_uses_pinned_host_keys_without_asking_the_api():
    context = context_from_outputs({**OUTPUTS, "ssh_host_keys": [HOST_KEY]}, via="direct", fetch_keys=lambda *a, **k: pytest.fail("fetched"))
    assert (context.target.host, context.target.host_keys, context.domain, context.vm_name) == ("203.0.113.7", (HOST_KEY,), "app.acme-example.com", "acme-vm")


def test_context_fetches_host_keys_from_guest_attributes_of_the_vm():
    asked = []

    def fetch(project, zone, instance, **options):
        asked.append((project, zone, instance))
        return (HOST_KEY,)

    context = context_from_outputs(OUTPUTS, via="iap", fetch_keys=fetch)
    assert asked == [("acme-web-prod", "us-central1-a", "acme-vm")]
    assert context.target.host_keys == (HOST_KEY,)
    assert context.target.proxy_command[:4] == ("gcloud", "compute", "start-iap-tunnel", "acme-vm")


def test_direct_without_the_vm_location_is_reported():
    outputs = {k: v for k, v in OUTPUTS.items() if k not in ("zone", "project")}
    with pytest.raises(StackOutputsError, match="missing: project, zone"):
        context_from_outputs(outputs, via="direct", fetch_keys=lambda *a, **k: (HOST_KEY,))


def test_output_helpers():
    assert domain_from_outputs({"url": "https://app.example.com"}) == "app.example.com"
    assert domain_from_outputs({}) is None
    assert pinned_host_keys({"ssh_host_keys": f"{HOST_KEY}\n\nssh-rsa AAAAB3\n"}) == (HOST_KEY, "ssh-rsa AAAAB3")


def test_key_ages_say_why_they_are_missing():
    assert secret_manager_key_ages({"project": "acme-web-prod"}) == "not available (the stack has no secret_ids or project output)"
