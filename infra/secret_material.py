"""Which resource types produce secret material, which of their outputs hold it, and what their ID is.

A resource ID is never secret in Pulumi: it sits in clear in the state, in `pulumi stack export`
and in every URN-to-ID listing. So a type whose ID is derived from the value it generates can never
hold a key, whatever its outputs are marked. The table is checked against the program's
registrations (tests/foundation/test_secret_material.py) and drives the plan's mocks, so a new
generator type cannot come in without an entry here. Pure data: no Pulumi import.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SecretMaterial:
    secret_outputs: tuple[str, ...]  # engine property names the provider marks secret
    id_rule: str  # what the provider returns as the resource's ID
    id_from_value: bool  # the ID reveals the generated value: never usable for a secret
    source: str


TERRAFORM_RANDOM = "hashicorp/terraform-provider-random"
PULUMI_RANDOM = "pulumi/pulumi-random"

SECRET_MATERIAL: dict[str, SecretMaterial] = {
    "random:index/randomPassword:RandomPassword": SecretMaterial(
        ("bcryptHash", "result"),
        'the constant "none"',
        False,
        f"{TERRAFORM_RANDOM} internal/provider/resource_password.go: `result` and `bcrypt_hash` are "
        'Sensitive, Create sets `plan.ID = "none"`; pulumi-random has no ComputeID for it, and its SDK '
        "registers additional_secret_outputs=[bcryptHash, result]",
    ),
    "tls:index/privateKey:PrivateKey": SecretMaterial(
        ("privateKeyOpenssh", "privateKeyPem", "privateKeyPemPkcs8"),
        "the SHA1 hex of the public key",
        False,
        "hashicorp/terraform-provider-tls internal/provider/resource_private_key.go: the private key "
        "encodings are Sensitive; common_key.go sets the ID to hashForState (SHA1 hex) of the public key; "
        "the pulumi-tls SDK registers the encodings as additional_secret_outputs",
    ),
    "gcp:secretmanager/secretVersion:SecretVersion": SecretMaterial(
        ("secretData", "secretDataWo"),
        "the version's resource name (projects/…/secrets/…/versions/N)",
        False,
        "pulumi-gcp SDK secretmanager/secret_version.py: additional_secret_outputs=[secretData, secretDataWo]",
    ),
    "gcp:sql/user:User": SecretMaterial(
        ("password", "passwordWo"),
        "project/instance/name of the user",
        False,
        "pulumi-gcp SDK sql/user.py: additional_secret_outputs=[password, passwordWo]",
    ),
    "gcp:sql/databaseInstance:DatabaseInstance": SecretMaterial(
        ("replicaConfiguration", "rootPassword", "rootPasswordWo", "serverCaCerts"),
        "the instance name",
        False,
        "pulumi-gcp SDK sql/database_instance.py: additional_secret_outputs; the kit sets no root password",
    ),
    "pulumi-python:dynamic/inngest-kit:StackDeployment": SecretMaterial(
        ("private_key",),
        "host/compose project",
        False,
        "infra/deploy/provider.py: create() returns that ID; the resource registers private_key as a secret output",
    ),
    # Refused: each one's ID is its value.
    "random:index/randomId:RandomId": SecretMaterial(
        (),
        "the value itself, base64url",
        True,
        f"{TERRAFORM_RANDOM} internal/provider/resource_id.go: Create sets ID to "
        "base64.RawURLEncoding of the bytes, and no attribute is Sensitive (hex is the same bytes)",
    ),
    "random:index/randomBytes:RandomBytes": SecretMaterial(
        ("base64", "hex"),
        "the value itself, base64",
        True,
        f"{TERRAFORM_RANDOM} internal/provider/resource_bytes.go marks base64/hex Sensitive, but "
        f"{PULUMI_RANDOM} provider/resources.go computeRandomBytesID returns the base64 value as the "
        "ID (its comment: Pulumi cannot put a secret marker on an ID)",
    ),
    "random:index/randomString:RandomString": SecretMaterial(
        (),
        "the value itself",
        True,
        f"{TERRAFORM_RANDOM} internal/provider/resource_string.go: `result` is not Sensitive and Create sets the ID to it",
    ),
}

# Packages whose every resource generates a value: each registered type of theirs must be tabled.
GENERATOR_PACKAGES = ("random", "tls")


def package_of(type_token: str) -> str:
    return type_token.split(":", 1)[0]


# pulumi-gcp marks the label maps of every labelled type secret (labels are plain names here).
NOT_MATERIAL_OUTPUTS = frozenset({"effectiveLabels", "pulumiLabels"})


def must_be_tabled(type_token: str, secret_outputs: list[str] | tuple[str, ...]) -> bool:
    """A type produces secret material when it generates values or its SDK marks outputs secret."""
    return package_of(type_token) in GENERATOR_PACKAGES or bool(set(secret_outputs) - NOT_MATERIAL_OUTPUTS)
