"""Read access for the VM to the Artifact Registry repository its app image is in.

The VM pulls with its own service account (an access token from the metadata server, through the
credential helper the startup script installs), so no key exists to leak. The role is granted on
that one repository, in whichever project holds it, never project-wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.images import ARTIFACT_REGISTRY_READER, artifact_repository


@dataclass(frozen=True)
class ImagePullArgs:
    images: tuple[str, ...]
    vm_service_account_email: pulumi.Input[str]


class ImagePullAccess(pulumi.ComponentResource):
    def __init__(self, name: str, args: ImagePullArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inngest-kit:index:ImagePullAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        member = pulumi.Output.concat("serviceAccount:", args.vm_service_account_email)
        repositories = {repo.id: repo for repo in (artifact_repository(image) for image in args.images) if repo is not None}
        self.readers = [
            gcp.artifactregistry.RepositoryIamMember(
                f"reader-{repo.project}-{repo.location}-{repo.repository}",
                project=repo.project,
                location=repo.location,
                repository=repo.repository,
                role=ARTIFACT_REGISTRY_READER,
                member=member,
                opts=child,
            )
            for repo in repositories.values()
        ]
        self.register_outputs({})
