"""The dynamic provider's first remote step: one identity for every edge, then the VM's readiness,
then the deploy over the same connection. Against the real sshd, with the recording docker stand-in."""

from __future__ import annotations

import pytest

from infra.deploy.provider import StackDeployProvider
from infra.deploy.ready import VmNotReady
from infra.remote.identity import GcloudState, IdentityReaders, Observed
from tests.deploy.support import EXECUTABLE_FILES, ProbeServer, restarted_by, stack_files
from tests.deploy.test_ready import EXPECTED, OLD, systemctl_stand_in, write_record
from tests.support.fake_docker import FakeDocker


@pytest.fixture
def probe():
    server = ProbeServer()
    yield server
    server.stop()


@pytest.fixture
def props(sshd, tmp_path, probe):
    fake = FakeDocker.install(tmp_path / "docker-stand-in")
    systemctl, _ = systemctl_stand_in(tmp_path, sshd.root, writes_version=EXPECTED)
    return {
        "files": stack_files(sshd.root),
        "host": sshd.host,
        "user": sshd.user,
        "port": sshd.port,
        "private_key": sshd.client_private_key,
        "machine_id": "1234567890",
        "host_keys": [sshd.host_public_key],
        "host_key_source": None,
        "proxy_command": None,
        "connect": {"attempts": 1, "timeout": 5},
        "vm": {"sudo": [], "docker": [fake.executable], "curl": ["curl"], "systemctl": [systemctl], "root": str(sshd.root)},
        "settings": {"health_timeout": 0.4, "poll_interval": 0.05, "sync_attempts": 1, "inngest_health_url": probe.endpoints.inngest_health, "app_sync_url": probe.endpoints.app_sync},
        "startup": {"version": EXPECTED, "timeout": 30, "poll_interval": 10},
        "identity": "ops@acme-example.com",
        "release_id": None,
        "manifest": None,
    }


def provider(progress=None, readers=None) -> StackDeployProvider:
    return StackDeployProvider(restarted_by=restarted_by, executable_files=EXECUTABLE_FILES, sleep=lambda seconds: None, progress=(progress if progress is not None else []).append, identity_readers=readers)


def test_a_vm_still_starting_up_gets_no_deploy_and_a_pointer_to_its_startup_logs(props, tmp_path, ssh_stats):
    fake = FakeDocker(tmp_path / "docker-stand-in")
    with pytest.raises(VmNotReady, match="get-serial-port-output"):
        provider().create(props)
    assert fake.calls() == []  # not one docker command: the release was not even built
    assert ssh_stats.connections_opened == 1


def test_a_ready_vm_is_deployed_over_the_one_connection_the_readiness_step_opened(props, sshd, tmp_path, ssh_stats):
    write_record(sshd.root, EXPECTED)
    created = provider().create(props)
    assert created.outs["release_id"] and FakeDocker(tmp_path / "docker-stand-in").compose_calls("up")
    assert ssh_stats.connections_opened == 1


def test_a_changed_startup_script_alone_is_rerun_on_the_running_vm_and_nothing_is_redeployed(props, sshd, tmp_path, ssh_stats):
    write_record(sshd.root, OLD)
    olds = provider().create({**props, "startup": {**props["startup"], "version": OLD}}).outs
    fake = FakeDocker(tmp_path / "docker-stand-in")
    docker_calls = len(fake.calls())
    progress: list[str] = []
    updated = provider(progress).update("id", olds, props)
    assert updated.outs["release_id"] == olds["release_id"]
    assert len(fake.calls()) == docker_calls
    assert (tmp_path / "systemctl.log").read_text() == "start --no-block google-startup-scripts.service\n"
    assert any("running it again on the VM (no reboot needed)" in line for line in progress)


def test_an_iap_tunnel_as_another_account_stops_the_deploy_before_any_connection(props, ssh_stats):
    readers = IdentityReaders(gcloud=lambda: GcloudState(Observed("me@gmail.com"), known_accounts=("me@gmail.com", "ops@acme-example.com")), adc=lambda: Observed("ops@acme-example.com"))
    iap = {**props, "proxy_command": ["gcloud", "compute", "start-iap-tunnel", "acme-vm", "22", "--listen-on-stdin"]}
    with pytest.raises(ValueError) as failure:
        provider(readers=readers).create(iap)
    assert str(failure.value) == (
        "the deploy cannot reach the VM as one Google identity; nothing was changed:\n"
        "  - gcloud: the IAP tunnel would run as me@gmail.com, but the deploy key and its roles belong to "
        "ops@acme-example.com (the Pulumi provider's identity). Fix: `gcloud config set account ops@acme-example.com`"
    )
    assert ssh_stats.connection_attempts == 0


def test_missing_adc_for_the_host_keys_stops_the_deploy_before_any_wait(props, ssh_stats):
    readers = IdentityReaders(gcloud=lambda: GcloudState(Observed("ops@acme-example.com")), adc=lambda: Observed(problem="missing"))
    source = {**props, "host_keys": None, "host_key_source": {"project": "acme-web-prod", "zone": "us-central1-a", "instance": "acme-vm"}}
    with pytest.raises(ValueError, match=r"Application Default Credentials: none found.*Fix: `gcloud auth application-default login` and sign in as ops@acme-example.com"):
        provider(readers=readers).create(source)
    assert ssh_stats.connection_attempts == 0
