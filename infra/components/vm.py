"""The Compute Engine VM: its own service account, a disposable boot disk and a persistent,
snapshotted data disk that holds every piece of state."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.components.network import SSH_TAG, WEB_TAG
from infra.config import VmConfig
from infra.naming import Names

IMAGE = "debian-cloud/debian-12"
DATA_DEVICE_NAME = "data"  # appears on the VM as /dev/disk/by-id/google-data (infra/layout.py)

# Project roles the VM's own service account needs: write logs and metrics, and connect to Cloud
# SQL. Secret access is granted per secret by the Secrets component, never project-wide.
VM_PROJECT_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/cloudsql.client",
)

VM_METADATA = {
    "enable-oslogin": "TRUE",
    "block-project-ssh-keys": "TRUE",
    "serial-port-enable": "FALSE",
    # The guest agent publishes the SSH host keys here, so the deploy can verify them.
    "enable-guest-attributes": "TRUE",
}


@dataclass(frozen=True)
class VmIdentityArgs:
    project: str
    prefix: str


class VmIdentity(pulumi.ComponentResource):
    """The VM's service account. Separate from the VM so that secrets can grant it access
    without waiting for the instance, and the instance need not wait for the secrets."""

    def __init__(self, name: str, args: VmIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inngest-kit:index:VmIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.account = gcp.serviceaccount.Account(
            "vm-sa",
            account_id=f"{args.prefix}-vm",
            display_name=f"{args.prefix} VM (inngest-kit)",
            project=args.project,
            opts=child,
        )
        self.roles = [
            gcp.projects.IAMMember(
                f"vm-{role.split('/')[1]}",
                project=args.project,
                role=role,
                member=self.account.email.apply(lambda email: f"serviceAccount:{email}"),
                opts=child,
            )
            for role in VM_PROJECT_ROLES
        ]
        self.email = self.account.email
        self.register_outputs({"email": self.email})


@dataclass(frozen=True)
class VmArgs:
    project: str
    zone: str
    prefix: str
    settings: VmConfig
    subnet_id: pulumi.Input[str]
    nat_ip: pulumi.Input[str]
    service_account_email: pulumi.Input[str]
    startup_script: str


class Vm(pulumi.ComponentResource):
    def __init__(self, name: str, args: VmArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inngest-kit:index:Vm", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        region = args.zone.rsplit("-", 1)[0]
        self.snapshot_policy = gcp.compute.ResourcePolicy(
            "data-snapshots",
            name=f"{args.prefix}-data-daily",
            project=args.project,
            region=region,
            snapshot_schedule_policy=gcp.compute.ResourcePolicySnapshotSchedulePolicyArgs(
                schedule=gcp.compute.ResourcePolicySnapshotSchedulePolicyScheduleArgs(
                    daily_schedule=gcp.compute.ResourcePolicySnapshotSchedulePolicyScheduleDailyScheduleArgs(
                        days_in_cycle=1, start_time="02:00"
                    )
                ),
                retention_policy=gcp.compute.ResourcePolicySnapshotSchedulePolicyRetentionPolicyArgs(
                    max_retention_days=s.snapshot_retention_days,
                    on_source_disk_delete="KEEP_AUTO_SNAPSHOTS",
                ),
                snapshot_properties=gcp.compute.ResourcePolicySnapshotSchedulePolicySnapshotPropertiesArgs(
                    labels={"managed-by": "inngest-kit"}, storage_locations=region, guest_flush=False
                ),
            ),
            opts=child,
        )
        self.data_disk = gcp.compute.Disk(
            "data",
            name=f"{args.prefix}-data",
            project=args.project,
            zone=args.zone,
            type="pd-balanced",
            size=s.data_disk_gb,
            labels={"managed-by": "inngest-kit", "role": "data"},
            # The data disk holds Redis's queue, Caddy's certificates and the releases.
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.snapshot_attachment = gcp.compute.DiskResourcePolicyAttachment(
            "data-snapshots",
            name=self.snapshot_policy.name,
            disk=self.data_disk.name,
            project=args.project,
            zone=args.zone,
            opts=child,
        )
        self.instance = gcp.compute.Instance(
            "vm",
            name=Names(args.prefix).vm,
            project=args.project,
            zone=args.zone,
            machine_type=s.machine_type,
            tags=[WEB_TAG, SSH_TAG],
            boot_disk=gcp.compute.InstanceBootDiskArgs(
                auto_delete=True,
                initialize_params=gcp.compute.InstanceBootDiskInitializeParamsArgs(
                    image=IMAGE, size=s.boot_disk_gb, type="pd-balanced"
                ),
            ),
            attached_disks=[
                gcp.compute.InstanceAttachedDiskArgs(source=self.data_disk.id, device_name=DATA_DEVICE_NAME, mode="READ_WRITE")
            ],
            network_interfaces=[
                gcp.compute.InstanceNetworkInterfaceArgs(
                    subnetwork=args.subnet_id,
                    access_configs=[gcp.compute.InstanceNetworkInterfaceAccessConfigArgs(nat_ip=args.nat_ip)],
                )
            ],
            can_ip_forward=False,
            shielded_instance_config=gcp.compute.InstanceShieldedInstanceConfigArgs(
                enable_secure_boot=True, enable_vtpm=True, enable_integrity_monitoring=True
            ),
            service_account=gcp.compute.InstanceServiceAccountArgs(
                email=args.service_account_email,
                # Access is bounded by the account's IAM roles; the scope only lets those roles apply.
                scopes=["https://www.googleapis.com/auth/cloud-platform"],
            ),
            metadata={**VM_METADATA, "startup-script": args.startup_script},
            allow_stopping_for_update=True,
            labels={"managed-by": "inngest-kit"},
            opts=child,
        )
        self.register_outputs({"name": self.instance.name})
