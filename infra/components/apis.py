"""The project services the stack needs, enabled before anything that calls them."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

SERVICES = (
    "compute.googleapis.com",
    "sqladmin.googleapis.com",
    "servicenetworking.googleapis.com",
    "secretmanager.googleapis.com",
    "iap.googleapis.com",
    "oslogin.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
)


@dataclass(frozen=True)
class ApisArgs:
    project: str
    services: tuple[str, ...] = SERVICES


class ProjectApis(pulumi.ComponentResource):
    def __init__(self, name: str, args: ApisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inngest-kit:index:ProjectApis", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.services = [
            gcp.projects.Service(
                service.split(".")[0],
                project=args.project,
                service=service,
                # Turning an API off on destroy would break anything else in the project using it.
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=child,
            )
            for service in args.services
        ]
        self.register_outputs({})
