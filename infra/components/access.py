"""The deploy identity: an SSH key in the caller's OS Login profile and the least roles to use it.

OS Login ignores metadata ssh-keys, so the deploy (and the operator commands) log in with a key
registered in an OS Login profile, through IAP, with sudo on this one instance only. The POSIX user
name is read from that profile once the key is imported (`OsLoginUser`), never derived from the email.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pulumi_tls as tls
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult


def iam_member(email: str) -> str:
    kind = "serviceAccount" if email.endswith(".gserviceaccount.com") else "user"
    return f"{kind}:{email}"


class OsLoginUserProvider(ResourceProvider):
    """Reads the POSIX user name from the OS Login profile of `email` (infra/remote/oslogin.py).

    Read again whenever the account, project or imported key changes, and on `pulumi refresh`.
    `read_profile` and `identity_readers` exist for tests; production reads the OS Login API with
    Application Default Credentials, after checking they are the same account as `email`.
    """

    INPUTS = ("email", "project", "key_fingerprint")

    def __init__(self, read_profile: Callable[[str, str], Mapping[str, Any]] | None = None, identity_readers: Any = None):
        super().__init__()
        self.read_profile = read_profile
        self.identity_readers = identity_readers

    def _username(self, props: Mapping[str, Any]) -> str:
        from infra.remote.identity import IdentityError, require_one_identity
        from infra.remote.oslogin import api_login_profile, read_posix_username

        try:
            require_one_identity(props["email"], uses_gcloud=False, uses_adc=self.read_profile is None, readers=self.identity_readers)
        except IdentityError as error:
            raise ValueError("the OS Login profile cannot be read as the deploy's identity:\n" + "\n".join(f"  - {p}" for p in error.problems)) from None
        return read_posix_username(props["email"], props["project"], read_profile=self.read_profile or api_login_profile)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"users/{props['email']}", outs={**props, "username": self._username(props)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=any(olds.get(name) != news.get(name) for name in self.INPUTS))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={**news, "username": self._username(news)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs={**props, "username": self._username(props)})


class OsLoginUser(pulumi.dynamic.Resource, module="inngest-kit", name="OsLoginUser"):
    """The POSIX user name of an OS Login profile (output `username`)."""

    username: pulumi.Output[str]

    def __init__(self, name: str, email: pulumi.Input[str], project: str, key_fingerprint: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None, provider: OsLoginUserProvider | None = None):
        props = {"email": email, "project": project, "key_fingerprint": key_fingerprint, "username": None}
        super().__init__(provider or OsLoginUserProvider(), name, props, opts)


@dataclass(frozen=True)
class AccessArgs:
    project: str
    zone: str
    instance_name: pulumi.Input[str]
    vm_service_account: pulumi.Input[str]  # its full resource name
    ssh_user: str | None  # overrides the user name read from the OS Login profile


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
        if args.ssh_user:
            self.ssh_user = pulumi.Output.from_input(args.ssh_user)
        else:
            # After the key's import, which is what makes the profile's POSIX account.
            self.login_user = OsLoginUser(
                "deploy-user", self.email, args.project, self.ssh_key.fingerprint,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.ssh_key]),
            )
            self.ssh_user = self.login_user.username
        self.private_key = pulumi.Output.secret(self.key.private_key_openssh)
        self.register_outputs({"ssh_user": self.ssh_user})
