"""Pulumi mocks for the offline plan: a monitor that records every registration as the engine
would receive it (parent, dependencies, options), and resource mocks that fill in the values a
cloud provider would compute."""

from __future__ import annotations

import base64
import json
import secrets as random_source
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from infra.secret_material import SECRET_MATERIAL

KNOWN_AFTER_DEPLOY = "(known after deploy)"
# Values only the cloud (or the caller's credentials) can tell. The program needs well-formed values
# (the render checks addresses; the OS Login user name is read from a profile), so the mocks
# answer with reserved documentation values (RFC 5737 addresses, the .invalid domain) and the plan
# shows each of them, and whatever is derived from them, as unknown.
EXTERNAL_IP = "192.0.2.253"
PRIVATE_IP = "192.0.2.254"
CALLER_EMAIL = "deployer@example.invalid"
STAND_INS_DIR = Path(__file__).resolve().parent / "stand_ins"
# A stand-in server CA certificate (made for the plan, not Google's): what the program renders into
# server-ca.pem until the real instance's CA is known. The plan shows it as unknown.
STAND_IN_SERVER_CA = (STAND_INS_DIR / "server-ca.pem").read_text()
# The STAND-IN description of an adopted instance the plan answers the instance read with, unless
# the caller gives a real one (`plan --adopted-instance FILE`, from `gcloud sql instances describe`).
STAND_IN_ADOPTED_INSTANCE = STAND_INS_DIR / "adopted-instance.json"
GET_DATABASE_INSTANCE = "gcp:sql/getDatabaseInstance:getDatabaseInstance"
UNKNOWN_VALUES = {
    STAND_IN_SERVER_CA: KNOWN_AFTER_DEPLOY,
    EXTERNAL_IP: KNOWN_AFTER_DEPLOY,
    PRIVATE_IP: KNOWN_AFTER_DEPLOY,
    CALLER_EMAIL: KNOWN_AFTER_DEPLOY,
    "deployer_example_invalid": KNOWN_AFTER_DEPLOY,  # its OS Login user name
}
OS_LOGIN_USERNAME = "deployer_example_invalid"


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str | None
    dependencies: list[str]
    inputs: dict[str, Any]
    custom: bool
    read: bool = False
    protect: bool = False
    retain_on_delete: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    secret_outputs: list[str] = field(default_factory=list)  # what the SDK asks the engine to mark secret
    id: str = ""  # what the mocks (faithful to the provider for value generators) returned


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def _record(self, urn: str, request, inputs, **options) -> None:
        self.registrations.append(
            Registration(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                dependencies=sorted(set(request.dependencies)),
                inputs=rpc.deserialize_properties(inputs),
                **options,
            )
        )

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self._record(
                response.urn,
                request,
                request.object,
                custom=bool(request.custom),
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                ignore_changes=list(request.ignoreChanges),
                secret_outputs=sorted(request.additionalSecretOutputs),
                id=response.id,
            )
        return response

    def ReadResource(self, request):
        response = super().ReadResource(request)
        self._record(response.urn, request, request.properties, custom=True, read=True, secret_outputs=sorted(request.additionalSecretOutputs), id=request.id)
        return response


def random_string(inputs: dict) -> str:
    """terraform-provider-random internal/random/string.go CreateString: the minimum of each class,
    then the rest drawn from every enabled class, shuffled; `overrideSpecial` replaces the symbols."""
    classes = {
        "upper": (string.ascii_uppercase, "minUpper"),
        "lower": (string.ascii_lowercase, "minLower"),
        "numeric": (string.digits, "minNumeric"),
        "special": (inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?", "minSpecial"),
    }
    enabled = "".join(chars for key, (chars, _) in classes.items() if inputs.get(key, True))
    drawn = [random_source.choice(chars) for chars, minimum in classes.values() for _ in range(int(inputs.get(minimum, 0)))]
    drawn += [random_source.choice(enabled) for _ in range(int(inputs["length"]) - len(drawn))]
    random_source.SystemRandom().shuffle(drawn)
    return "".join(drawn)


class PlanMocks(pulumi.runtime.Mocks):
    """Computed values: deterministic where GCP's are (names, emails, connection names), a marker
    where only the deploy can tell (addresses), and fresh random values for generated secrets, so
    that tests can prove those values never leak into the plan."""

    def __init__(self, project: str, region: str, adopted_instance: dict[str, Any] | None = None):
        self.project = project
        self.region = region
        self.generated_secrets: list[str] = []
        # An API-format description (gcloud sql instances describe --format=json) of the adopted instance.
        self.adopted_instance = adopted_instance if adopted_instance is not None else load_adopted_instance(STAND_IN_ADOPTED_INSTANCE)

    def _secret_value(self, value: str) -> str:
        self.generated_secrets.append(value)
        return value

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        inputs = dict(args.inputs)
        # A read of an existing resource (`.get`) names it by id only.
        name = args.resource_id.rsplit("/", 1)[-1] if args.resource_id else inputs.get("name", args.name)
        state = dict(inputs)
        if args.resource_id:
            state["name"] = name
        project = inputs.get("project", self.project)
        t = args.typ
        if t == "gcp:compute/address:Address":
            state["address"] = EXTERNAL_IP
        elif t == "gcp:sql/databaseInstance:DatabaseInstance":
            state["connectionName"] = f"{project}:{inputs.get('region', self.region)}:{name}"
            state["privateIpAddress"] = PRIVATE_IP
            state["serverCaCerts"] = [{"cert": STAND_IN_SERVER_CA, "commonName": "stand-in"}]
        elif t == "gcp:serviceaccount/account:Account":
            email = f"{inputs['accountId']}@{project}.iam.gserviceaccount.com"
            state.update(email=email, name=f"projects/{project}/serviceAccounts/{email}")
        elif t == "gcp:secretmanager/secret:Secret":
            return f"projects/{project}/secrets/{inputs['secretId']}", state
        elif t == "gcp:secretmanager/secretVersion:SecretVersion":
            # Secret Manager numbers a new secret's versions from 1.
            state["version"] = "1"
        elif t == "gcp:projects/serviceIdentity:ServiceIdentity":
            state["member"] = f"serviceAccount:service-{KNOWN_AFTER_DEPLOY}@gcp-sa-secretmanager.iam.gserviceaccount.com"
        elif t == "gcp:pubsub/topic:Topic":
            return f"projects/{project}/topics/{name}", state
        elif t in SECRET_MATERIAL and t.startswith("random:"):
            return self._random_resource(t, inputs, state)
        elif t == "tls:index/privateKey:PrivateKey":
            state["privateKeyOpenssh"] = self._secret_value("-----BEGIN OPENSSH PRIVATE KEY-----\n" + random_source.token_hex(32))
            state["publicKeyOpenssh"] = KNOWN_AFTER_DEPLOY
        elif t == "gcp:compute/instance:Instance":
            state["instanceId"] = KNOWN_AFTER_DEPLOY
        elif t.endswith(":OsLoginUser"):
            # The POSIX name is read from the caller's OS Login profile at deploy time.
            state["username"] = OS_LOGIN_USERNAME
        elif t.startswith("pulumi-python:dynamic"):
            # The deploy's outputs come from the VM.
            state.update(release_id=KNOWN_AFTER_DEPLOY, manifest=KNOWN_AFTER_DEPLOY)
        return f"{name}-id", state

    def _random_resource(self, t: str, inputs: dict, state: dict) -> tuple[str, dict]:
        """Values shaped as pulumi-random makes them, and the ID its provider returns
        (infra/secret_material.py cites where each comes from)."""
        if t == "random:index/randomPassword:RandomPassword" or t == "random:index/randomString:RandomString":
            state["result"] = self._secret_value(random_string(inputs))
            if t.endswith("RandomString"):
                return state["result"], state
            state["bcryptHash"] = self._secret_value("$2a$10$" + random_source.token_urlsafe(40))
            return "none", state
        raw = random_source.token_bytes(int(inputs.get("byteLength", inputs.get("length", 32))))
        if t == "random:index/randomBytes:RandomBytes":
            state["hex"] = self._secret_value(raw.hex())
            state["base64"] = self._secret_value(base64.b64encode(raw).decode())
            return state["base64"], state
        state["hex"] = self._secret_value(raw.hex())
        state["b64Url"] = self._secret_value(base64.urlsafe_b64encode(raw).decode().rstrip("="))
        return state["b64Url"], state

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "gcp:organizations/getClientOpenIdUserInfo:getClientOpenIdUserInfo":
            return {"email": CALLER_EMAIL}
        if args.token == GET_DATABASE_INSTANCE:
            return invoke_result(self.adopted_instance, name=args.args["name"], project=args.args.get("project") or self.project)
        return {}


def load_adopted_instance(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def invoke_result(described: dict[str, Any], *, name: str, project: str) -> dict[str, Any]:
    """What `gcp.sql.get_database_instance` returns for an instance described in the Cloud SQL Admin
    API's format (pulumi-gcp's data source maps the API's fields to these, lists for blocks). The
    described instance is answered under the name asked for, in the project asked for."""
    settings = described.get("settings", {})
    ip = settings.get("ipConfiguration", {})
    addresses = described.get("ipAddresses", [])
    region = described.get("region", "")

    def first(kind: str) -> str:
        return next((a["ipAddress"] for a in addresses if a.get("type") == kind), "")

    ca = described.get("serverCaCert", {})
    return {
        "name": name,
        "project": project,
        "region": region,
        "connectionName": f"{project}:{region}:{name}",
        "databaseVersion": described.get("databaseVersion", ""),
        "ipAddresses": [{"ipAddress": a["ipAddress"], "type": a.get("type", ""), "timeToRetire": ""} for a in addresses],
        "privateIpAddress": first("PRIVATE"),
        "publicIpAddress": first("PRIMARY"),
        "serverCaCerts": [{"cert": ca["cert"], "commonName": ca.get("commonName", "")}] if ca.get("cert") else [],
        "settings": [
            {
                "tier": settings.get("tier", ""),
                "ipConfigurations": [
                    {
                        "ipv4Enabled": bool(ip.get("ipv4Enabled", False)),
                        "privateNetwork": ip.get("privateNetwork", ""),
                        "sslMode": ip.get("sslMode", ""),
                        "authorizedNetworks": [{"name": n.get("name", ""), "value": n["value"], "expirationTime": ""} for n in ip.get("authorizedNetworks", [])],
                    }
                ],
                "databaseFlags": [{"name": f["name"], "value": f["value"]} for f in settings.get("databaseFlags", [])],
            }
        ],
    }
