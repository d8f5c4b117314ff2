"""The Pulumi dynamic provider's methods, called directly (there is no Pulumi engine here)."""

from __future__ import annotations

import pytest

from infra.deploy.provider import StackDeployProvider, input_problems
from infra.deploy.release import file_manifest, release_id_for
from tests.deploy.support import EXECUTABLE_FILES, ProbeServer, restarted_by, stack_files
from tests.support.fake_docker import FakeDocker

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # how Pulumi passes a value not known during a preview


@pytest.fixture
def probe():
    server = ProbeServer()
    yield server
    server.stop()


@pytest.fixture
def provider():
    return StackDeployProvider(restarted_by=restarted_by, executable_files=EXECUTABLE_FILES, sleep=lambda seconds: None)


@pytest.fixture
def props(sshd, tmp_path, probe):
    fake = FakeDocker.install(tmp_path / "docker-stand-in")
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
        "vm": {"sudo": [], "docker": [fake.executable], "curl": ["curl"], "root": str(sshd.root)},
        "settings": {"health_timeout": 0.4, "poll_interval": 0.05, "sync_attempts": 1, "inngest_health_url": probe.endpoints.inngest_health, "app_sync_url": probe.endpoints.app_sync},
        "release_id": None,
        "manifest": None,
        "__provider": "serialized-provider",
    }


def deployed(props):
    return {**props, "release_id": release_id_for(file_manifest(props["files"])), "manifest": file_manifest(props["files"])}


def test_diff_of_unchanged_files_reports_no_change_and_opens_no_connection(provider, props, ssh_stats):
    olds = deployed(props)
    result = provider.diff("id", olds, {**props, "__provider": "another-serialization"})
    assert (result.changes, result.replaces) == (False, [])
    assert ssh_stats.connection_attempts == 0


def test_diff_sees_a_changed_file_a_new_machine_and_unknown_files(provider, props):
    olds = deployed(props)
    changed = {**props, "files": {**props["files"], "app.env": "LOG_LEVEL=debug\n"}}
    assert (provider.diff("id", olds, changed).changes, provider.diff("id", olds, changed).replaces) == (True, [])
    assert provider.diff("id", olds, {**props, "machine_id": "999"}).replaces == ["machine_id"]
    assert provider.diff("id", olds, {**props, "files": UNKNOWN}).changes is True


def test_check_reports_every_problem_at_once(provider, props):
    bad = {**props, "files": {"../etc/passwd": "x"}, "host_keys": None, "port": 0, "user": ""}
    failures = provider.check({}, bad).failures
    assert sorted(failure.property for failure in failures) == ["files", "host_keys", "port", "user"]
    assert any("never trusts a key on first use" in failure.reason for failure in failures)
    assert input_problems(props) == []


def test_create_then_noop_update_then_change_then_delete(provider, props, sshd, tmp_path, ssh_stats):
    fake = FakeDocker(tmp_path / "docker-stand-in")
    created = provider.create(props)
    assert created.id == f"{sshd.host}/kit"
    assert created.outs["release_id"] == release_id_for(file_manifest(props["files"]))
    assert ssh_stats.connections_opened == 1

    connection_options_only = {**props, "connect": {"attempts": 2, "timeout": 5}}
    updated = provider.update(created.id, created.outs, connection_options_only)
    assert updated.outs["release_id"] == created.outs["release_id"] and ssh_stats.connection_attempts == 1

    changed = {**props, "files": {**props["files"], "app.env": "LOG_LEVEL=debug\n"}}
    events_before = len(fake.events())
    changed_outs = provider.update(created.id, created.outs, changed).outs
    assert changed_outs["release_id"] != created.outs["release_id"] and ssh_stats.connections_opened == 2
    assert [(e["action"], e["service"]) for e in fake.events()[events_before:]] == [("recreate", "app")]

    provider.delete(created.id, changed_outs)
    assert fake.services() == {} and fake.compose_calls("down")
    assert ssh_stats.connections_opened == 3


def test_host_keys_can_come_from_guest_attributes(props, sshd, ssh_stats):
    asked = []

    def fetch_host_keys(project, zone, instance):
        asked.append((project, zone, instance))
        return (sshd.host_public_key,)

    provider = StackDeployProvider(restarted_by=restarted_by, executable_files=EXECUTABLE_FILES, fetch_host_keys=fetch_host_keys)
    source = {"project": "acme-web-prod", "zone": "us-central1-a", "instance": "acme-vm"}
    # delete on a VM with no live release: the cheapest call that has to connect
    provider.delete("id", {**props, "host_keys": None, "host_key_source": source})
    assert asked == [("acme-web-prod", "us-central1-a", "acme-vm")] and ssh_stats.connections_opened == 1
