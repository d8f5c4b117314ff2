"""The deploy identity: an SSH key in the caller's OS Login profile and the least roles to use it.

OS Login ignores metadata ssh-keys, so the deploy (and the operator commands) log in with a key
registered in an OS Login profile, through IAP, with sudo on this one instance only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp
import pulumi_tls as tls


def iam_member(email: str) -> str:
    kind = "serviceAccount" if email.endswith(".gserviceaccount.com") else "user"
    return f"{kind}:{email}"


def os_login_username(email: str) -> str:
    """OS Login's default POSIX name for a user account: user@example.com -> user_example_com."""
    return re.sub(r"[^a-z0-9_-]", "_", email.lower())[:32]


@dataclass(frozen=True)
class AccessArgs:
    project: str
    zone: str
    instance_name: pulumi.Input[str]
    vm_service_account: pulumi.Input[str]  # its full resource name
    ssh_user: str | None  # overrides the derived OS Login user name


class OperatorAccess(pulumi.ComponentResource):
    def __init__(self, name: str, args: AccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inngest-kit:index:OperatorAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.email = gcp.organizations.get_client_open_id_user_info_output().email
        member = self.email.apply(iam_member)
        self.key = tls.PrivateKey("deploy-key", algorithm="ED25519", opts=child)
        self.ssh_key = gcp.oslogin.SshPublicKey(
            "deploy-key",
            user=self.email,
            key=self.key.public_key_openssh,
            project=args.project,
            opts=child,
        )
        self.os_admin = gcp.compute.InstanceIAMMember(
            "os-admin-login",
            project=args.project,
            zone=args.zone,
            instance_name=args.instance_name,
            role="roles/compute.osAdminLogin",
            member=member,
            opts=child,
        )
        self.tunnel = gcp.iap.TunnelInstanceIAMMember(
            "iap-tunnel",
            project=args.project,
            zone=args.zone,
            instance=args.instance_name,
            role="roles/iap.tunnelResourceAccessor",
            member=member,
            opts=child,
        )
        # OS Login asks for this when the instance runs as a service account.
        self.act_as = gcp.serviceaccount.IAMMember(
            "act-as-vm",
            service_account_id=args.vm_service_account,
            role="roles/iam.serviceAccountUser",
            member=member,
            opts=child,
        )
        self.ssh_user = pulumi.Output.from_input(args.ssh_user) if args.ssh_user else self.email.apply(os_login_username)
        self.private_key = pulumi.Output.secret(self.key.private_key_openssh)
        self.register_outputs({"ssh_user": self.ssh_user})
