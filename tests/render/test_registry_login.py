"""Where Docker's credentials live on the VM, shown with the REAL docker CLI: the rendered
registry-login.sh and the deploy's pull step (infra/remote/commands.py) run against a stand-in of
the Docker Engine API on a unix socket (tests/support/docker_api.py), which records what the CLI
sends with each pull. The credential helper the startup script installs runs for real as well,
against a stand-in of the metadata server's token endpoint."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from infra.remote import commands
from infra.remote.vm import Vm, VmPaths, VmTools
from infra.render import EXECUTABLE_FILES, render_stack
from infra.startup import CREDENTIAL_HELPER_NAME, credential_helper, render_startup_script, render_unit
from tests.render.conftest import config_from, example_raw, inputs_for
from tests.support.docker_api import DockerApiStandIn, MetadataStandIn

DOCKER = shutil.which("docker")
pytestmark = pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed; `sudo make test-deps` installs it (docker.io)")

AR_IMAGE = "europe-west1-docker.pkg.dev/acme-shared/web/app:1.4.2"
PRIVATE_IMAGE = "registry.example.com/acme/web:1.4.2"
TOKEN = "glpat-" + "s3cr3t-registry-token"


def _tmpfs_root() -> Path:
    shm = Path("/dev/shm")
    if not shm.is_dir() or subprocess.run(["stat", "-f", "-c", "%T", str(shm)], capture_output=True, text=True).stdout.strip() != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm to stand in for the VM's /run")
    return Path(tempfile.mkdtemp(prefix="kit-run-", dir=shm))


@pytest.fixture
def vm_root():
    root = _tmpfs_root()
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def engine():
    directory = tempfile.mkdtemp(prefix="dk-")  # a short path: unix socket paths are limited to 108 bytes
    stand_in = DockerApiStandIn(os.path.join(directory, "docker.sock"))
    yield stand_in
    stand_in.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def metadata():
    stand_in = MetadataStandIn()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def bin_dir(tmp_path):
    """On PATH first: the credential helper as the startup script installs it, and a gcloud stand-in
    that answers `secrets versions access` with the token and records its argv."""
    directory = tmp_path / "bin"
    directory.mkdir()
    helper = directory / CREDENTIAL_HELPER_NAME
    helper.write_text(credential_helper())
    helper.chmod(0o755)
    gcloud = directory / "gcloud"
    gcloud.write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path}/gcloud.log"\nprintf %s "{TOKEN}"\n')
    gcloud.chmod(0o755)
    return directory


def _release(root: Path, image: str, *, username: str | None = None) -> Path:
    raw = example_raw()
    raw["inngest-kit:app"] = {**raw["inngest-kit:app"], "image": image}
    if username:
        raw["inngest-kit:app"]["registry"] = {"username": username}
        raw["inngest-kit:registryToken"] = "[secret]"
    config = config_from(raw)
    release = root / "srv/kit/releases/r1"
    release.mkdir(parents=True)
    for path, content in render_stack(config, inputs_for(config)).items():
        target = release / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(0o755 if path in EXECUTABLE_FILES else 0o644)
    return release


def _environment(tmp_path: Path, root: Path, bin_dir: Path, engine: DockerApiStandIn, metadata: MetadataStandIn) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(home),
        "KIT_ROOT": str(root),
        "DOCKER_HOST": engine.docker_host,
        "GCE_METADATA_HOST": metadata.host,
    }


def _pull(vm_root: Path, release: Path, env: dict[str, str], *images: str) -> subprocess.CompletedProcess:
    vm = Vm(tools=VmTools(sudo=(), docker=(DOCKER,)), paths=VmPaths(root=str(vm_root)))
    return subprocess.run(commands.pull_images(vm, str(release), images), env=env, capture_output=True, text=True, timeout=60)


def _files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")} if path.exists() else set()


def test_a_private_registry_login_lives_in_the_tmpfs_and_the_pull_sends_it(tmp_path, vm_root, bin_dir, engine, metadata):
    engine.accepted_logins["registry.example.com"] = ("deploy", TOKEN)
    release = _release(vm_root, PRIVATE_IMAGE, username="deploy")
    env = _environment(tmp_path, vm_root, bin_dir, engine, metadata)
    release_files = _files_under(release)

    result = _pull(vm_root, release, env, PRIVATE_IMAGE)

    assert result.returncode == 0, result.stderr
    # The CLI logged in with the token from Secret Manager, through stdin ...
    assert [(login["serveraddress"], login["username"], login["password"]) for login in engine.logins] == [("registry.example.com", "deploy", TOKEN)]
    assert (tmp_path / "gcloud.log").read_text().split() == ["secrets", "versions", "access", "1", "--secret=acme-registry-token", "--project=acme-web-prod"]
    # ... wrote the credentials only under DOCKER_CONFIG, on the tmpfs ...
    docker_config = vm_root / "run/inngest-kit/docker"
    assert _files_under(docker_config) == {"config.json"}
    saved = json.loads((docker_config / "config.json").read_text())
    assert base64.b64decode(saved["auths"]["registry.example.com"]["auth"]).decode() == f"deploy:{TOKEN}"
    assert stat.S_IMODE(docker_config.stat().st_mode) == 0o700 and stat.S_IMODE((docker_config / "config.json").stat().st_mode) == 0o600
    assert _files_under(Path(env["HOME"])) == set()  # not ~/.docker
    assert _files_under(release) == release_files  # nothing written into the release (the data disk)
    # ... and the pull carried them.
    assert engine.pulls == [{"image": PRIVATE_IMAGE, "auth": {"username": "deploy", "password": TOKEN, "serveraddress": "registry.example.com"}}]
    assert TOKEN not in result.stdout + result.stderr


def test_an_artifact_registry_pull_uses_the_helper_with_the_vms_own_token(tmp_path, vm_root, bin_dir, engine, metadata):
    release = _release(vm_root, AR_IMAGE)
    env = _environment(tmp_path, vm_root, bin_dir, engine, metadata)

    result = _pull(vm_root, release, env, AR_IMAGE, "redis:7.4.6-alpine")

    assert result.returncode == 0, result.stderr
    saved = json.loads((vm_root / "run/inngest-kit/docker/config.json").read_text())
    assert saved == {"credHelpers": {"europe-west1-docker.pkg.dev": "gce-metadata"}}  # no credential stored at all
    assert engine.logins == [] and not (tmp_path / "gcloud.log").exists()
    assert engine.pulls[0] == {"image": AR_IMAGE, "auth": {"username": "oauth2accesstoken", "password": metadata.token, "serveraddress": "europe-west1-docker.pkg.dev"}}
    assert engine.pulls[1]["image"] == "docker.io/library/redis:7.4.6-alpine" and not (engine.pulls[1]["auth"] or {}).get("password")  # Docker Hub: anonymous
    assert metadata.requests == [{"path": "/computeMetadata/v1/instance/service-accounts/default/token", "flavor": "Google"}]


def test_a_refused_login_names_the_registry_and_the_fix_and_never_the_token(tmp_path, vm_root, bin_dir, engine, metadata):
    engine.accepted_logins["registry.example.com"] = ("deploy", "another-token")
    release = _release(vm_root, PRIVATE_IMAGE, username="deploy")
    result = _pull(vm_root, release, _environment(tmp_path, vm_root, bin_dir, engine, metadata), PRIVATE_IMAGE)

    assert result.returncode == commands.REGISTRY_LOGIN_FAILED_STATUS
    assert "docker login to registry.example.com as deploy" in result.stderr and "401 Unauthorized" in result.stderr
    assert "Fix: check inngest-kit:app.registry.username and the token" in result.stderr
    assert TOKEN not in result.stdout + result.stderr
    assert engine.pulls == []
    assert _files_under(vm_root / "run/inngest-kit/docker") == {"config.json"}  # the error file is gone too


def test_credentials_are_refused_on_a_persistent_disk(tmp_path, bin_dir, engine, metadata):
    root = tmp_path / "disk"
    root.mkdir()
    if subprocess.run(["stat", "-f", "-c", "%T", str(root)], capture_output=True, text=True).stdout.strip() == "tmpfs":
        pytest.skip("the test's temporary directory is itself a tmpfs")
    release = _release(root, PRIVATE_IMAGE, username="deploy")
    result = _pull(root, release, _environment(tmp_path, root, bin_dir, engine, metadata), PRIVATE_IMAGE)
    assert result.returncode == commands.REGISTRY_LOGIN_FAILED_STATUS
    assert "not a tmpfs; registry credentials must never reach a disk" in result.stderr
    assert _files_under(root / "run/inngest-kit/docker") == set() and engine.logins == [] and not (tmp_path / "gcloud.log").exists()


def _helper(bin_dir: Path, metadata: MetadataStandIn, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / CREDENTIAL_HELPER_NAME), *args], input=stdin, capture_output=True, text=True, env={"PATH": os.environ["PATH"], "GCE_METADATA_HOST": metadata.host}, timeout=30)


def test_the_credential_helper_speaks_the_protocol(bin_dir, metadata):
    got = _helper(bin_dir, metadata, "get", stdin="us-docker.pkg.dev")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {"ServerURL": "us-docker.pkg.dev", "Username": "oauth2accesstoken", "Secret": metadata.token}
    assert _helper(bin_dir, metadata, "list").stdout.strip() == "{}"
    refused = _helper(bin_dir, metadata, "store", stdin='{"ServerURL":"x","Username":"u","Secret":"s"}')
    assert refused.returncode == 1 and "not supported" in refused.stderr
    bad = _helper(bin_dir, metadata, "get", stdin='x","Secret":"y')
    assert bad.returncode == 1 and "not a registry address" in bad.stderr


def test_the_credential_helper_fails_clearly_without_a_metadata_server(bin_dir, metadata):
    metadata.stop()
    got = _helper(bin_dir, metadata, "get", stdin="us-docker.pkg.dev")
    assert got.returncode == 1 and got.stdout == ""
    assert "no access token from the metadata server" in got.stderr


def test_the_startup_script_installs_this_helper_on_path():
    script = render_startup_script()
    assert f"install -m 0755 /dev/stdin /usr/local/bin/{CREDENTIAL_HELPER_NAME} <<'HELPER'\n{credential_helper()}HELPER\n" in script


def test_the_unit_logs_in_before_compose_and_points_docker_at_the_tmpfs():
    # At boot /run is empty: a VM whose image store is empty (a new boot disk) pulls through this.
    unit = render_unit()
    assert "Environment=DOCKER_CONFIG=/run/inngest-kit/docker\n" in unit
    login = "ExecStartPre=-/bin/sh -c 'if [ -x /srv/kit/current/registry-login.sh ]; then exec /srv/kit/current/registry-login.sh; fi'"
    assert login in unit and unit.index(login) < unit.index("ExecStartPre=/srv/kit/current/fetch-secrets.sh") < unit.index("ExecStart=")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck (Debian package) is missing: run `sudo make test-deps`")
def test_the_login_script_with_a_registry_the_helper_and_the_pull_script_pass_shellcheck(tmp_path):
    release = _release(tmp_path, PRIVATE_IMAGE, username="deploy")
    pull = tmp_path / "pull-images.sh"
    pull.write_text("#!/bin/sh\n" + commands.PULL_IMAGES_SCRIPT)
    helper = tmp_path / "helper.sh"
    helper.write_text(credential_helper())
    for script in (release / "registry-login.sh", pull, helper):
        result = subprocess.run(["shellcheck", "--shell=sh", str(script)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout


def test_a_vm_without_the_helper_is_told_how_to_get_it(tmp_path, vm_root, engine, metadata):
    # A VM created before the kit installed the helper, whose startup script has not run since.
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    release = _release(vm_root, AR_IMAGE)
    env = _environment(tmp_path, vm_root, empty_bin, engine, metadata)
    # Leave out any directory of this machine that has a helper of that name (docker runs by full path).
    env["PATH"] = ":".join(d for d in env["PATH"].split(":") if not (Path(d) / CREDENTIAL_HELPER_NAME).exists())
    result = _pull(vm_root, release, env, AR_IMAGE)
    assert result.returncode == commands.REGISTRY_LOGIN_FAILED_STATUS
    assert "docker-credential-gce-metadata for europe-west1-docker.pkg.dev is not installed" in result.stderr
    assert "sudo google_metadata_script_runner startup" in result.stderr and engine.pulls == []


def test_a_login_kept_in_a_platform_store_instead_of_the_tmpfs_is_refused(tmp_path, vm_root, bin_dir, engine, metadata):
    # The docker CLI on Linux uses docker-credential-pass when it is on PATH and no credsStore is set.
    store = bin_dir / "docker-credential-pass"
    store.write_text(f'#!/bin/sh\ncat > "{tmp_path}/stored-elsewhere"\n')
    (bin_dir / "pass").write_text("#!/bin/sh\nexit 0\n")
    for path in (store, bin_dir / "pass"):
        path.chmod(0o755)
    release = _release(vm_root, PRIVATE_IMAGE, username="deploy")
    result = _pull(vm_root, release, _environment(tmp_path, vm_root, bin_dir, engine, metadata), PRIVATE_IMAGE)
    assert (tmp_path / "stored-elsewhere").exists()  # the CLI really did go to the platform store
    assert result.returncode == commands.REGISTRY_LOGIN_FAILED_STATUS and "kept the token outside" in result.stderr
    assert engine.pulls == []
