"""Point 3 of the day-one review, in the plan and the config: the VM reads the app image's Artifact
Registry repository with its own identity, granted on that repository only; any other private
registry takes a user name and a token kept in Secret Manager."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, parse_config
from infra.images import artifact_repository, compose_images, login_server, pull_fix, registry_host
from infra.plan.evaluate import SECRET, evaluate
from tests.foundation.plan_helpers import example_raw, of_type, one

READER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
DEPLOYMENT = "pulumi-python:dynamic/inngest-kit:StackDeployment"


def _with_app(**app) -> dict:
    raw = example_raw()
    raw["inngest-kit:app"] = {**raw["inngest-kit:app"], **app}
    return raw


def _vm_member(plan: dict) -> str:
    account = one(plan, "gcp:serviceaccount/account:Account", "vm-sa")["inputs"]["accountId"]
    return f"serviceAccount:{account}@acme-web-prod.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    ("image", "project", "location", "repository"),
    [
        ("us-central1-docker.pkg.dev/acme-web-prod/web/app:1.4.2", "acme-web-prod", "us-central1", "web"),
        # another project's repository: the binding goes there, not to the stack's project
        ("europe-west1-docker.pkg.dev/acme-shared/images/team/app@sha256:" + "a" * 64, "acme-shared", "europe-west1", "images"),
        # gcr.io, now served by an Artifact Registry repository named after the host
        ("eu.gcr.io/acme-legacy/web:1.4.2", "acme-legacy", "europe", "eu.gcr.io"),
    ],
)
def test_an_artifact_registry_image_grants_reader_on_that_repository_only(image, project, location, repository):
    plan = evaluate("ar", raw=_with_app(image=image)).document
    readers = of_type(plan, READER)
    assert [r["inputs"] for r in readers] == [
        {"project": project, "location": location, "repository": repository, "role": "roles/artifactregistry.reader", "member": _vm_member(plan)}
    ]
    # No project-wide Artifact Registry role, and the deploy (which pulls) waits for the grant.
    assert not [r for r in of_type(plan, "gcp:projects/iAMMember:IAMMember") if "artifactregistry" in r["inputs"]["role"]]
    assert readers[0]["urn"] in one(plan, DEPLOYMENT, "stack")["depends_on"]
    login = plan["files"]["registry-login.sh"]
    assert f'"{image.split("/")[0]}": "gce-metadata"' in login and "docker login --username" not in login


def test_an_image_elsewhere_grants_nothing_and_needs_no_artifact_registry_api():
    plan = evaluate("example").document
    assert of_type(plan, READER) == []
    assert "docker login --username" not in plan["files"]["registry-login.sh"]


def test_a_private_registry_token_is_a_secret_the_vm_reads_and_logs_in_with():
    raw = _with_app(image="registry.example.com/acme/web:1.4.2", registry={"username": "deploy"})
    raw["inngest-kit:registryToken"] = {"secure": "v1:placeholder"}
    plan = evaluate("private", raw=raw).document
    secret = one(plan, "gcp:secretmanager/secret:Secret", "registry-token")
    assert secret["inputs"]["secretId"] == "acme-registry-token"
    assert one(plan, "gcp:secretmanager/secretVersion:SecretVersion", "registry-token-initial")["inputs"]["secretData"] == SECRET
    accessor = one(plan, "gcp:secretmanager/secretIamMember:SecretIamMember", "registry-token-accessor")["inputs"]
    assert accessor["role"] == "roles/secretmanager.secretAccessor" and accessor["member"] == _vm_member(plan)
    assert plan["outputs"]["secret_ids"]["registry-token"] == "acme-registry-token"
    login = plan["files"]["registry-login.sh"]
    assert "--secret=acme-registry-token" in login and "docker login --username \"$username\" --password-stdin \"$server\"" in login
    assert "server=registry.example.com\n" in login and "username=deploy\n" in login


@pytest.mark.parametrize(
    ("app", "token", "problem"),
    [
        ({"registry": {"username": "deploy"}}, False, "inngest-kit:registryToken: is required with inngest-kit:app.registry.username"),
        ({}, True, "inngest-kit:app.registry.username: is required with inngest-kit:registryToken"),
        ({"image": "us-docker.pkg.dev/acme-web-prod/web/app:1.0.0", "registry": {"username": "deploy"}}, True, "inngest-kit:app.registry: us-docker.pkg.dev/acme-web-prod/web/app:1.0.0 is in Artifact Registry"),
        ({"registry": {"username": "de ploy"}}, True, "inngest-kit:app.registry.username: 'de ploy' is not a registry user name"),
        ({"registry": {"user": "deploy"}}, True, "inngest-kit:app.registry.user: is not a known setting"),
    ],
)
def test_registry_settings_are_refused_when_incomplete_or_pointless(app, token, problem):
    raw = _with_app(**app)
    if token:
        raw["inngest-kit:registryToken"] = "[secret]"
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    assert any(p.startswith(problem) for p in error.value.problems), error.value.problems


def test_registry_settings_parse():
    raw = _with_app(registry={"username": "deploy"})
    raw["inngest-kit:registryToken"] = "[secret]"
    assert parse_config(raw).app.registry_username == "deploy"
    assert parse_config(example_raw()).app.registry_username is None


@pytest.mark.parametrize(
    ("image", "host", "server"),
    [
        ("ghcr.io/acme/web:1.4.2", "ghcr.io", "ghcr.io"),
        ("registry.example.com:5000/acme/web:1.4.2", "registry.example.com:5000", "registry.example.com:5000"),
        ("localhost/web:1", "localhost", "localhost"),
        ("acme/web:1.4.2", "docker.io", "https://index.docker.io/v1/"),
        ("redis:7.4.6-alpine", "docker.io", "https://index.docker.io/v1/"),
        ("us-docker.pkg.dev/p-1/r/i:1", "us-docker.pkg.dev", "us-docker.pkg.dev"),
    ],
)
def test_registry_host_follows_dockers_split(image, host, server):
    assert registry_host(image) == host and login_server(image) == server


def test_artifact_repository_parsing():
    repo = artifact_repository("asia-southeast1-docker.pkg.dev/acme-shared/images/team/app:1")
    assert repo is not None and repo.id == "projects/acme-shared/locations/asia-southeast1/repositories/images"
    gcr = artifact_repository("gcr.io/acme/app:1")
    assert gcr is not None and (gcr.location, gcr.repository, gcr.docker_path) == ("us", "gcr.io", "gcr.io/acme")
    assert artifact_repository("ghcr.io/acme/app:1") is None
    assert artifact_repository("us-docker.pkg.dev/acme/app:1") is None  # no repository part
    assert "roles/artifactregistry.reader on projects/acme-shared/locations/asia-southeast1/repositories/images" in pull_fix(
        "asia-southeast1-docker.pkg.dev/acme-shared/images/team/app:1"
    )
    assert "registryToken" in pull_fix("ghcr.io/acme/web:1")


def test_compose_images_lists_each_image_once_in_order():
    text = "services:\n  a: {image: 'x:1'}\n  b: {image: 'y:2'}\n  c: {image: 'x:1'}\n  d: {build: .}\n"
    assert compose_images(text) == ("x:1", "y:2")
