"""The deploy end to end: a real OpenSSH server on 127.0.0.1 as the VM, the recording docker stand-in
on its side, the real curl against a loopback HTTP server, through the real SSH layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.deploy.deploy import DeployError, DeployState, deploy
from infra.deploy.release import file_manifest, release_id_for
from infra.ops.audit import parse_audit
from infra.remote.ssh import HostKeyMismatch, connect
from tests.deploy.support import EXECUTABLE_FILES, LocalSession, ProbeServer, fast_settings, restarted_by, stack_files, vm_for
from tests.support.fake_docker import FakeDocker
from tests.support.sshd import generate_ed25519


@pytest.fixture
def probe():
    server = ProbeServer()
    yield server
    server.stop()


@pytest.fixture
def fake(tmp_path):
    return FakeDocker.install(tmp_path / "docker-stand-in")


@pytest.fixture
def stand(sshd, fake, probe, ssh_stats):
    """Everything a deploy needs, pointed at the local sshd."""

    class Stand:
        vm = vm_for(sshd.root, fake)
        settings = fast_settings(probe)
        stats = ssh_stats

        def run(self, files, *, previous_state=None, target=None, session_factory=None):
            factory = session_factory or (lambda: connect(target or sshd.target()))
            return deploy(factory, files, previous_state, self.vm, owner=sshd.user, restarted_by=restarted_by, executable_files=EXECUTABLE_FILES, settings=self.settings)

        def seed(self, files):
            """The release a test starts from, deployed without SSH (see LocalSession)."""
            return deploy(LocalSession, files, None, self.vm, owner=sshd.user, restarted_by=restarted_by, executable_files=EXECUTABLE_FILES, settings=self.settings)

        def current(self):
            link = self.vm.paths.current
            return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

        def previous(self):
            link = self.vm.paths.previous
            return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

        def live_file(self, path):
            with open(f"{self.vm.paths.current}/{path}") as handle:
                return handle.read()

    return Stand()


def actions(fake, since=0):
    return [(event["action"], event["service"]) for event in fake.events()[since:]]


def test_first_deploy_uploads_everything_brings_the_stack_up_and_syncs_over_one_connection(stand, sshd, fake, probe):
    files = stack_files(sshd.root)
    result = stand.run(files)
    assert result.release_id == release_id_for(file_manifest(files)) == stand.current()
    assert result.previous_release_id is None and stand.previous() is None
    assert sorted(result.uploaded) == sorted(files)
    assert all(stand.live_file(path) == content for path, content in files.items())
    assert os.access(f"{stand.vm.paths.current}/fetch-secrets.sh", os.X_OK)
    assert not os.access(f"{stand.vm.paths.current}/app.env", os.X_OK)
    assert sorted(actions(fake)) == [("create", "app"), ("create", "caddy"), ("create", "inngest"), ("create", "redis")]
    assert (sshd.root / "secrets-fetched.log").read_text() == f"fetched {result.release_id}\n"
    assert probe.syncs() == 1 and ("GET", "/health") in probe.requests
    assert stand.stats.connections_opened == 1
    [record] = parse_audit(Path(stand.vm.paths.audit_log).read_text())
    assert (record["action"], record["release"], record["previous"]) == ("deploy", result.release_id, None)


def test_changing_one_services_env_file_recreates_only_that_service(stand, sshd, fake):
    first = stand.seed(stack_files(sshd.root))
    seen = len(fake.events())
    second = stand.run(stack_files(sshd.root, log_level="debug"), previous_state=DeployState(first.release_id, first.manifest))
    assert second.uploaded == ("app.env",) and second.recreated == () and not second.drift
    assert actions(fake, seen) == [("recreate", "app")]
    assert (stand.current(), stand.previous()) == (second.release_id, first.release_id)
    assert stand.live_file("app.env") == "LOG_LEVEL=debug\n"
    assert stand.stats.connections_opened == 1


def test_a_caddyfile_change_recreates_caddy_which_compose_alone_would_miss(stand, sshd, fake):
    stand.seed(stack_files(sshd.root))
    seen = len(fake.events())
    second = stand.run(stack_files(sshd.root, caddy_port=8080))
    assert second.uploaded == ("caddy/Caddyfile",) and second.recreated == ("caddy",)
    assert actions(fake, seen) == [("recreate", "caddy")]
    # The forced recreation comes before the plain `up`, so that `up` finds caddy current (one recreation).
    last_two = fake.compose_calls("up")[-2:]
    assert last_two[0][-4:] == ["-d", "--no-deps", "--force-recreate", "caddy"] and last_two[1][-3:] == ["up", "-d", "--remove-orphans"]


def test_a_failed_health_check_rolls_back_to_the_previous_release(stand, sshd, fake):
    first = stand.seed(stack_files(sshd.root))
    v1_app_hash = fake.services()["app"]["config_hash"]
    fake.set_health("app", "unhealthy")
    with pytest.raises(DeployError) as caught:
        stand.run(stack_files(sshd.root, app_version="2.0.0"))
    message = str(caught.value)
    assert "app is running (unhealthy)" in message and f"release {first.release_id} is current again" in message
    assert caught.value.rolled_back_to == first.release_id
    assert stand.current() == first.release_id
    assert fake.services()["app"]["config_hash"] == v1_app_hash  # the old app was brought back up
    assert stand.stats.connections_opened == 1
    last = parse_audit(Path(stand.vm.paths.audit_log).read_text())[-1]
    assert (last["action"], last["release"]) == ("deploy-rolled-back", first.release_id)


def test_a_remote_failure_fails_the_update_with_the_remote_error_and_rolls_back(stand, sshd, fake, probe):
    first = stand.seed(stack_files(sshd.root))
    fake.fail("up", stderr="Error response from daemon: pull access denied for ghcr.io/acme/web", times=1)
    with pytest.raises(DeployError, match="pull access denied for ghcr.io/acme/web") as caught:
        stand.run(stack_files(sshd.root, app_version="9.9.9"))
    assert caught.value.rolled_back_to == first.release_id == stand.current()
    assert fake.services()["app"]["image"] == "ghcr.io/acme/web:1.0.0"


def test_a_failed_sync_rolls_back(stand, sshd, probe):
    # Run locally (same argv, real curl): this is about the deploy's logic, not about SSH.
    first = stand.seed(stack_files(sshd.root))
    probe.sync_status = 500
    with pytest.raises(DeployError, match=r"app sync \(PUT .*\) failed 2 time\(s\).*500"):
        stand.run(stack_files(sshd.root, log_level="warn"), session_factory=LocalSession)
    assert stand.current() == first.release_id


def test_a_wrong_host_key_is_refused_before_anything_is_sent(stand, sshd, fake):
    impostor_key = generate_ed25519("not-the-vm").public_line
    with pytest.raises(HostKeyMismatch):
        stand.run(stack_files(sshd.root), target=sshd.target(host_keys=(impostor_key,)))
    assert stand.stats.commands_run == 0 and stand.stats.uploads == 0
    assert fake.calls() == [] and not os.path.exists(stand.vm.paths.releases)


def test_a_connection_dropped_mid_upload_leaves_the_previous_release_current_and_a_rerun_converges(stand, sshd, fake, flaky_proxy):
    proxy = flaky_proxy(sshd.port)
    first = stand.seed(stack_files(sshd.root))

    class CutDuringUpload:
        """Drops the connection as the second changed file starts uploading."""

        def __init__(self, session):
            self.session, self.uploads = session, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            self.session.close()

        def run(self, *args, **kwargs):
            return self.session.run(*args, **kwargs)

        def upload(self, path, content, mode=0o644):
            self.uploads += 1
            if self.uploads == 2:
                proxy.cut()
            return self.session.upload(path, content, mode)

    changed = stack_files(sshd.root, log_level="debug", app_version="2.0.0")
    with pytest.raises(DeployError) as caught:
        stand.run(changed, session_factory=lambda: CutDuringUpload(connect(sshd.target(port=proxy.port))))
    assert caught.value.rolled_back_to is None  # nothing was switched, so nothing to roll back
    assert "the connection to the VM was lost during the upload of" in str(caught.value)
    assert f"Release {first.release_id} is still current and untouched" in str(caught.value)
    new_id = release_id_for(file_manifest(changed))
    assert stand.current() == first.release_id
    assert os.path.isdir(stand.vm.paths.release(new_id)) and not os.path.exists(f"{stand.vm.paths.release(new_id)}/.manifest.json")

    proxy.heal()
    rerun = stand.run(changed, target=sshd.target(port=proxy.port))
    assert rerun.release_id == new_id == stand.current() and stand.previous() == first.release_id
    assert all(stand.live_file(path) == content for path, content in changed.items())
    assert sorted(rerun.uploaded) == ["app.env", "docker-compose.yml"]


def test_a_rerun_of_a_release_already_live_converges_without_uploading(stand, sshd, fake):
    files = stack_files(sshd.root)
    first = stand.seed(files)
    again = stand.run(files, previous_state=DeployState("0" * 16, {}), session_factory=LocalSession)  # logic only: no SSH needed
    assert again.release_id == first.release_id and again.uploaded == () and again.drift
    assert again.recreated == ()  # no run left anything pending: nothing to recreate


def test_a_rerun_recreates_what_an_interrupted_run_left_pending_and_only_that(stand, sshd, fake):
    files = stack_files(sshd.root)
    first = stand.seed(files)
    pending = Path(stand.vm.paths.data) / "pending-recreate"
    pending.write_text(f"{first.release_id} caddy\n")
    again = stand.run(files, previous_state=DeployState(first.release_id, {}), session_factory=LocalSession)
    assert again.recreated == ("caddy",) and not pending.exists()
    pending.write_text("0123456789abcdef caddy\n")  # left by a deploy of another release: not this one's to finish
    assert stand.run(files, previous_state=DeployState(first.release_id, {}), session_factory=LocalSession).recreated == ()
