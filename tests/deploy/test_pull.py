"""The deploy's pull step, over the real sshd with the docker stand-in: every image of a release is
on the VM before `current` moves, with Docker's config on the tmpfs; a pull that fails names the
image and the fix, and leaves the live release exactly as it was."""

from __future__ import annotations

import pytest

from infra.deploy.deploy import DeployError
from infra.remote import commands
from infra.remote.vm import Vm, VmPaths
from tests.deploy.support import stack_files
from tests.deploy.test_deploy_e2e import fake, probe, stand  # noqa: F401  (fixtures)

DENIED = "Error response from daemon: pull access denied for {repo}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
AR_IMAGE = "us-central1-docker.pkg.dev/acme-shared/web/app:2.0.0"


def test_pull_images_command_is_exact():
    vm = Vm(paths=VmPaths(root="/scratch"))
    assert commands.pull_images(vm, "/srv/kit/releases/r2", ["a:1", "b:2"]) == [
        "sudo", "-n", "sh", "-c", commands.PULL_IMAGES_SCRIPT, "pull-images", "/srv/kit/releases/r2", "/scratch/run/inngest-kit/docker", "docker", "a:1", "b:2",
    ]  # fmt: skip


def test_every_image_is_pulled_before_the_switch_with_docker_config_on_the_tmpfs(stand, sshd, fake):  # noqa: F811
    result = stand.run(stack_files(sshd.root))
    calls = fake.calls()
    pulls = [index for index, call in enumerate(calls) if call["argv"][:1] == ["pull"]]
    first_compose = next(index for index, call in enumerate(calls) if call["argv"][:1] == ["compose"])
    assert pulls and max(pulls) < first_compose
    assert fake.pulled() == ["caddy:2.8", "ghcr.io/acme/web:1.0.0", "inngest/inngest:v1.43.0", "redis:7.4"]
    assert {calls[index]["docker_config"] for index in pulls} == {stand.vm.paths.docker_config}
    assert stand.current() == result.release_id


def test_images_already_on_the_vm_are_not_pulled_again(stand, sshd, fake):  # noqa: F811
    stand.seed(stack_files(sshd.root))
    stand.run(stack_files(sshd.root, app_version="1.1.0"))
    assert fake.pulled()[-1:] == ["ghcr.io/acme/web:1.1.0"] and len(fake.pulled()) == 5


def test_a_pull_failure_stops_the_deploy_before_anything_live_changes(stand, sshd, fake):  # noqa: F811
    first = stand.seed(stack_files(sshd.root))
    events, compose_calls = len(fake.events()), len(fake.compose_calls())
    fetched = (sshd.root / "secrets-fetched.log").read_text()
    fake.fail("pull", stderr=DENIED.format(repo="ghcr.io/acme/web"), times=1)  # only the new app image is missing

    with pytest.raises(DeployError) as caught:
        stand.run(stack_files(sshd.root, app_version="2.0.0"))

    message = str(caught.value)
    assert "image ghcr.io/acme/web:2.0.0 could not be pulled on the VM: Error response from daemon: pull access denied" in message
    assert "Fix: check that the name and tag exist (`docker pull ghcr.io/acme/web:2.0.0` on your machine)" in message
    assert "inngest-kit:registryToken" in message
    assert f"Release {first.release_id} is still current and running" in message
    assert caught.value.rolled_back_to == first.release_id
    # Nothing live moved: the link, the containers, the secrets in the tmpfs.
    assert stand.current() == first.release_id
    assert len(fake.events()) == events and len(fake.compose_calls()) == compose_calls
    assert fake.services()["app"]["image"] == "ghcr.io/acme/web:1.0.0"
    assert (sshd.root / "secrets-fetched.log").read_text() == fetched
    # Once the registry answers, the same deploy goes through.
    assert stand.run(stack_files(sshd.root, app_version="2.0.0")).release_id == stand.current() != first.release_id


def test_an_artifact_registry_failure_points_at_the_repository_and_the_reader_role(stand, sshd, fake):  # noqa: F811
    first = stand.seed(stack_files(sshd.root))
    files = stack_files(sshd.root)
    files["docker-compose.yml"] = files["docker-compose.yml"].replace("ghcr.io/acme/web:1.0.0", AR_IMAGE)
    fake.fail("pull", stderr=f"Error response from daemon: Head \"https://{AR_IMAGE.split('/')[0]}/v2/acme-shared/web/app/manifests/2.0.0\": denied: Permission \"artifactregistry.repositories.downloadArtifacts\" denied")
    with pytest.raises(DeployError) as caught:
        stand.run(files)
    message = str(caught.value)
    assert f"image {AR_IMAGE} could not be pulled" in message and "artifactregistry.repositories.downloadArtifacts" in message
    assert "roles/artifactregistry.reader on projects/acme-shared/locations/us-central1/repositories/web" in message
    assert stand.current() == first.release_id


def test_a_refused_registry_login_stops_the_deploy_with_the_scripts_own_words(stand, sshd, fake):  # noqa: F811
    from infra.deploy.deploy import deploy
    from infra.remote.ssh import connect
    from tests.deploy.support import EXECUTABLE_FILES, restarted_by

    first = stand.seed(stack_files(sshd.root))
    files = stack_files(sshd.root, app_version="2.0.0")
    # Stand-in for the rendered registry-login.sh (tests/render/test_registry_login.py runs the real one).
    files["registry-login.sh"] = "#!/bin/sh\necho 'registry-login: docker login to registry.example.com as deploy failed: 401 Unauthorized' >&2\nexit 1\n"
    with pytest.raises(DeployError) as caught:
        deploy(lambda: connect(sshd.target()), files, None, stand.vm, owner=sshd.user, restarted_by=restarted_by,
               executable_files=EXECUTABLE_FILES | {"registry-login.sh"}, settings=stand.settings)
    message = str(caught.value)
    assert "the registry login for the release's images failed: registry-login: docker login to registry.example.com as deploy failed: 401 Unauthorized" in message
    assert f"Release {first.release_id} is still current and running" in message
    assert stand.current() == first.release_id and fake.pulled()[-1] != "ghcr.io/acme/web:2.0.0"


def test_a_deploy_that_needs_no_new_image_does_not_log_in(stand, sshd, fake):  # noqa: F811
    from infra.deploy.deploy import deploy
    from infra.remote.ssh import connect
    from tests.deploy.support import EXECUTABLE_FILES, restarted_by

    stand.seed(stack_files(sshd.root))
    files = stack_files(sshd.root, log_level="debug")
    # A login that would fail (the registry is down): nothing is missing, so it is never run.
    files["registry-login.sh"] = f"#!/bin/sh\ntouch {sshd.root}/login-ran\nexit 1\n"
    result = deploy(lambda: connect(sshd.target()), files, None, stand.vm, owner=sshd.user, restarted_by=restarted_by,
                    executable_files=EXECUTABLE_FILES | {"registry-login.sh"}, settings=stand.settings)
    assert stand.current() == result.release_id and not (sshd.root / "login-ran").exists()
