"""Where an image comes from, and how the VM may pull it (pure).

Docker splits a reference into a registry host and a path the same way everywhere: the first
path component is a registry host when it holds a `.` or a `:`, or is `localhost`; otherwise the
image is on Docker Hub (docker/distribution `reference/normalize.go`, `splitDockerDomain`).
An Artifact Registry Docker image is `<location>-docker.pkg.dev/<project>/<repository>/<image>`
(Artifact Registry docs, "Docker repository names"); `gcr.io/<project>/<image>` is served by an
Artifact Registry repository named after the host (Artifact Registry docs, "gcr.io repositories",
domain support table: gcr.io and us.gcr.io in `us`, eu.gcr.io in `europe`, asia.gcr.io in `asia`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import yaml

DOCKER_HUB = "docker.io"
# The key the docker CLI stores Docker Hub credentials under (docker/cli `registry.IndexServer`).
DOCKER_HUB_LOGIN_SERVER = "https://index.docker.io/v1/"
ARTIFACT_REGISTRY_HOST_RE = re.compile(r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev$")
GCR_HOST_LOCATIONS = {"gcr.io": "us", "us.gcr.io": "us", "eu.gcr.io": "europe", "asia.gcr.io": "asia"}
# The credential helper the startup script installs: `docker-credential-<name>` on the VM's PATH.
CREDENTIAL_HELPER = "gce-metadata"
ARTIFACT_REGISTRY_READER = "roles/artifactregistry.reader"


@dataclass(frozen=True)
class ArtifactRepository:
    """An Artifact Registry repository, as the IAM binding on it needs it."""

    host: str
    location: str
    project: str
    repository: str

    @property
    def id(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/repositories/{self.repository}"

    @property
    def docker_path(self) -> str:
        """The prefix of the repository's image names."""
        if self.host in GCR_HOST_LOCATIONS:
            return f"{self.host}/{self.project}"
        return f"{self.host}/{self.project}/{self.repository}"


def registry_host(image: str) -> str:
    """The registry an image is pulled from: `docker.io` for Docker Hub names."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def login_server(image: str) -> str:
    """What `docker login` must be given so that pulls of `image` find the credentials."""
    host = registry_host(image)
    return DOCKER_HUB_LOGIN_SERVER if host == DOCKER_HUB else host


def artifact_repository(image: str) -> ArtifactRepository | None:
    """The Artifact Registry repository holding `image`, or None for any other registry."""
    host = registry_host(image)
    parts = image.split("/")
    if host in GCR_HOST_LOCATIONS and len(parts) >= 3:  # host / project / image
        return ArtifactRepository(host=host, location=GCR_HOST_LOCATIONS[host], project=parts[1], repository=host)
    match = ARTIFACT_REGISTRY_HOST_RE.match(host)
    if not match:
        return None
    if len(parts) < 4:  # host / project / repository / image
        return None
    return ArtifactRepository(host=host, location=match.group("location"), project=parts[1], repository=parts[2])


def compose_images(compose_text: str) -> tuple[str, ...]:
    """Every image the compose file runs, each once, in the file's order of services."""
    document = yaml.safe_load(compose_text) or {}
    services = document.get("services") or {}
    return _unique(str(service["image"]) for service in services.values() if isinstance(service, dict) and service.get("image"))


def pull_fix(image: str) -> str:
    """What to do when the VM cannot pull `image`: the reader role for Artifact Registry, the
    registry credentials for any other registry."""
    repository = artifact_repository(image)
    if repository is not None:
        return (
            f"check that the image and tag exist (`gcloud artifacts docker images list {repository.docker_path} --include-tags`) "
            f"and that the Artifact Registry API is enabled in project {repository.project}; the VM pulls with its own service account, "
            f"which `pulumi up` grants {ARTIFACT_REGISTRY_READER} on {repository.id}"
        )
    return (
        f"check that the name and tag exist (`docker pull {image}` on your machine); for a private registry set "
        "`inngest-kit:app.registry.username` and the token with `pulumi config set --secret inngest-kit:registryToken <token>` "
        "(README, \"Private images\"), and check that this user may read the image"
    )


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
