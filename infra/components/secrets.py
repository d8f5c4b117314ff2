"""Secret Manager secrets for the Inngest keys, the database and Redis passwords and the app's secrets.

Pulumi creates each secret and its first version, then hands the version lifecycle to the keys
CLI: a rotation adds versions, moves the `current`/`previous` aliases, writes audit annotations
and disables old versions. Everything a rotation changes is in an ignore list below, so a later
`pulumi up` never reverts a rotation.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

from infra import naming
from infra.keys.values import EVENT_KEY_LENGTH

# Fields of a Secret that the keys CLI writes (aliases, audit annotations) or that GCP itself
# advances (the next rotation reminder).
SECRET_IGNORE_CHANGES = ["versionAliases", "annotations", "rotation.nextRotationTime"]
# A rotation disables the first version; Pulumi must neither re-enable it nor (with the value
# ignored) ever replace it.
KIT_VERSION_IGNORE_CHANGES = ["enabled", "secretData"]
# App secrets are the user's: a new value in the stack config makes a new version on purpose.
APP_VERSION_IGNORE_CHANGES = ["enabled"]

ROTATION_PERIOD_DAYS = 90

SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"


@dataclass(frozen=True)
class SecretsArgs:
    project: str
    prefix: str
    accessor_email: pulumi.Input[str]  # the VM's service account
    app_secret_values: dict[str, pulumi.Input[str]] = field(default_factory=dict)  # ENV_NAME -> value
    rotation_period_days: int = ROTATION_PERIOD_DAYS
    registry_token: pulumi.Input[str] | None = None  # a private registry's read token (infra/images.py)


@dataclass
class ManagedSecret:
    logical: str
    secret: gcp.secretmanager.Secret
    version: gcp.secretmanager.SecretVersion
    accessor: gcp.secretmanager.SecretIamMember


class Secrets(pulumi.ComponentResource):
    def __init__(self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inngest-kit:index:Secrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.rotation_topic = gcp.pubsub.Topic("rotation-reminders", name=f"{args.prefix}-secret-rotation", project=args.project, opts=child)
        # Secret Manager publishes rotation reminders as its own service agent, which exists only
        # once asked for.
        self.agent = gcp.projects.ServiceIdentity("secretmanager-agent", project=args.project, service="secretmanager.googleapis.com", opts=child)
        self.topic_publisher = gcp.pubsub.TopicIAMMember(
            "rotation-publisher",
            project=args.project,
            topic=self.rotation_topic.name,
            role="roles/pubsub.publisher",
            member=self.agent.member,
            opts=child,
        )
        generated = self._generate_values(child)
        self.db_passwords = {
            naming.APP_DB_USER: generated[naming.DB_APP_PASSWORD],
            naming.INNGEST_DB_USER: generated[naming.DB_INNGEST_PASSWORD],
            # The login roles that take turns across rotations (infra/keys/db_roles.py) start with a
            # password no secret holds: a rotation sets the real one before any service uses it.
            **{
                role: self._password(f"db-login-{role}", child)
                for owner in (naming.APP_DB_USER, naming.INNGEST_DB_USER)
                for role in naming.db_login_roles(owner)
            },
        }
        self.managed: dict[str, ManagedSecret] = {}
        for logical in naming.KIT_SECRETS:
            self.managed[logical] = self._secret(args, logical, generated[logical], rotate=True, app=False)
        for env_name, value in sorted(args.app_secret_values.items()):
            logical = naming.app_secret_logical(env_name)
            self.managed[logical] = self._secret(args, logical, value, rotate=False, app=True)
        if args.registry_token is not None:
            # The user's token, like an app secret: a new value in the stack config makes a new version.
            self.managed[naming.REGISTRY_TOKEN] = self._secret(args, naming.REGISTRY_TOKEN, args.registry_token, rotate=False, app=True)
        self.secret_ids = {logical: m.secret.secret_id for logical, m in self.managed.items()}
        self.initial_versions = {logical: m.version.version for logical, m in self.managed.items()}
        self.register_outputs({"secret_ids": self.secret_ids})

    def _generate_values(self, child: pulumi.ResourceOptions) -> dict[str, pulumi.Output[str]]:
        # Only RandomPassword: its ID is the constant "none" and its result is a secret output
        # (infra/secret_material.py cites the providers). RandomId and RandomBytes both use the
        # value as the resource ID, which Pulumi stores in clear.
        def generated(logical: str, **shape) -> pulumi.Output[str]:
            return pulumi.Output.secret(random.RandomPassword(logical, opts=child, **shape).result)

        # Inngest's server hex-decodes the whole signing key (even length, no `signkey-` prefix):
        # 64 characters drawn uniformly from [0-9a-f], i.e. 32 random bytes as hex
        # (terraform-provider-random internal/random/string.go draws each character with crypto/rand).
        signing = generated(naming.SIGNING_KEY, length=64, upper=False, lower=False, numeric=True, special=True, override_special="abcdef")
        # The event key travels in the URL (POST /e/{key}) and in comma-separated lists: letters and
        # digits only, as the keys CLI generates them (infra/keys/values.py).
        event = generated(naming.EVENT_KEY, length=EVENT_KEY_LENGTH, special=False)
        passwords = {logical: self._password(logical, child) for logical in (naming.DB_APP_PASSWORD, naming.DB_INNGEST_PASSWORD, naming.REDIS_PASSWORD)}
        return {naming.SIGNING_KEY: signing, naming.EVENT_KEY: event, **passwords}

    @staticmethod
    def _password(name: str, child: pulumi.ResourceOptions) -> pulumi.Output[str]:
        # Cloud SQL accepts these, and they need no escaping inside a postgres:// URL.
        shape = dict(length=32, special=True, override_special="-_", min_lower=2, min_upper=2, min_numeric=2)
        return pulumi.Output.secret(random.RandomPassword(name, opts=child, **shape).result)

    def _rotation(self, args: SecretsArgs) -> gcp.secretmanager.SecretRotationArgs:
        # GCP requires a first reminder time with a period. A fixed past time would be rejected and
        # `now` would change every run, so the first reminder is one period after the program's
        # evaluation on creation and then ignored (GCP advances it; SECRET_IGNORE_CHANGES).
        first = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=args.rotation_period_days)
        return gcp.secretmanager.SecretRotationArgs(
            rotation_period=f"{args.rotation_period_days * 86400}s",
            next_rotation_time=first.strftime("%Y-%m-%dT00:00:00Z"),
        )

    def _secret(self, args: SecretsArgs, logical: str, value: pulumi.Input[str], *, rotate: bool, app: bool) -> ManagedSecret:
        child = pulumi.ResourceOptions(parent=self)
        secret = gcp.secretmanager.Secret(
            logical,
            secret_id=naming.Names(args.prefix).secret_id(logical),
            project=args.project,
            replication=gcp.secretmanager.SecretReplicationArgs(auto=gcp.secretmanager.SecretReplicationAutoArgs()),
            labels={"managed-by": "inngest-kit", "stack": args.prefix, "kind": "app" if app else "kit"},
            topics=[gcp.secretmanager.SecretTopicArgs(name=self.rotation_topic.id)] if rotate else None,
            rotation=self._rotation(args) if rotate else None,
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=SECRET_IGNORE_CHANGES,
                depends_on=[self.topic_publisher] if rotate else None,
            ),
        )
        version = gcp.secretmanager.SecretVersion(
            f"{logical}-initial",
            secret=secret.id,
            secret_data=pulumi.Output.secret(value),
            # After creation the keys CLI owns the lifecycle of kit versions; deleting the secret
            # on `pulumi destroy` removes every version anyway.
            deletion_policy="DELETE" if app else "ABANDON",
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=APP_VERSION_IGNORE_CHANGES if app else KIT_VERSION_IGNORE_CHANGES,
            ),
        )
        accessor = gcp.secretmanager.SecretIamMember(
            f"{logical}-accessor",
            project=args.project,
            secret_id=secret.secret_id,
            role=SECRET_ACCESSOR,
            member=pulumi.Output.concat("serviceAccount:", args.accessor_email),
            opts=child,
        )
        return ManagedSecret(logical, secret, version, accessor)
