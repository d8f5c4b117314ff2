"""Typed stack configuration, parsed and validated before any resource is registered.

The settings are declared once, as frozen pydantic models: names (camelCase aliases, as in the Pulumi
config), types, defaults, limits and each rule's message live together, and the same models emit the
published JSON Schema (schema/stack-config.schema.json).

`parse_config` is pure: it takes the flat Pulumi config map (``{"gcp:project": ..., "inngest-kit:vm":
{...}}``) and returns a `StackConfig`, or raises `ConfigError` listing every problem at once, each as
"<setting>: <what is wrong>. Fix: <how>.". It never raises anything else, whatever the input.
Advice that does not stop a deploy (a secret-looking name in plain env, ...) is `StackConfig.warnings`.
"""

import ipaddress
import math
import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from infra import gcp_catalog
from infra.image_reference import parse_reference
from infra.images import artifact_repository, login_server

NAMESPACE = "inngest-kit"

# The first release whose Postgres pool flags are honoured (DESIGN.md, Inngest facts).
MIN_INNGEST_VERSION = (1, 27, 1)

IAP_SOURCE_RANGE = "35.235.240.0/20"

# What the offline plan hands over for a value stored encrypted (`secure:`), which it never decrypts.
ENCRYPTED = "[secret]"

# Cloud SQL's default max_connections for PostgreSQL, by tier memory. Source: Cloud SQL for
# PostgreSQL docs, "Quotas and limits" -> "Maximum concurrent connections" (checked 2026-11).
SHARED_CORE_MAX_CONNECTIONS = {"db-f1-micro": 25, "db-g1-small": 50}
MEMORY_MAX_CONNECTIONS = (  # (memory below this many MiB, max_connections)
    (6 * 1024, 100),
    (7680, 200),
    (15 * 1024, 400),
    (30 * 1024, 500),
    (60 * 1024, 600),
    (120 * 1024, 800),
)
LARGEST_MAX_CONNECTIONS = 1000
# Connections kept back for Cloud SQL's own agents and an operator's psql session.
RESERVED_CONNECTIONS = 5

# Memory the containers' limits may not take from the VM. Measured on Debian 12 GCE images: the
# kernel, systemd, journald and sshd hold about 120 MiB, dockerd with containerd about 100 MiB, the
# guest agent and OS Login about 40 MiB, and the Ops Agent (fluent-bit and the OpenTelemetry
# collector) about 120 MiB. 384 MiB covers them with a little room; the example stack's e2-small
# (2048 MiB) then fits the default limits exactly (512 + 768 + 128 + 256 = 1664).
VM_MEMORY_RESERVE_MIB = 384

POSTGRES_VERSIONS = ("POSTGRES_14", "POSTGRES_15", "POSTGRES_16", "POSTGRES_17")
CUSTOM_TIER_RE = re.compile(r"^db-custom-([0-9]{1,3})-([0-9]{1,7})$")
DOMAIN_RE = re.compile(r"(?=.{1,253}\Z)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
# acmeEmail goes into the Caddyfile verbatim, where quotes, backticks, braces and `{$VAR}` mean
# something. So: a plain dot-atom local part of letters, digits and . _ % + -, and a domain name.
EMAIL_LOCAL_RE = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*")
PROJECT_RE = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
REGION_RE = re.compile(r"[a-z]+-[a-z]+[0-9]+")
ZONE_RE = re.compile(r"[a-z]+-[a-z]+[0-9]+-[a-z]")
NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,18}[a-z0-9]")
ENV_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]*")
VERSION_RE = re.compile(r"v([0-9]{1,6})\.([0-9]{1,6})\.([0-9]{1,6})")
INSTANCE_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,96}")
POSIX_USER_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
REGISTRY_USER_RE = re.compile(r"[^\s:]{1,255}")
# The same characters infra/render.py accepts: they survive the health-check script and the Caddyfile.
HEALTH_PATH_RE = re.compile(r"/[A-Za-z0-9._~/-]*(?:\?[A-Za-z0-9._~=&-]*)?")
# Names that usually hold a secret; only a warning, since some (a public key id) are not.
SECRET_NAME_RE = re.compile(r"(?:^|_)(?:[A-Z]*KEY|SECRET|TOKEN|PASSWORD|PASSWD|PASS|PWD|CREDENTIALS?|PRIVATE|DSN)(?:_|$)")
PUBLIC_NAME_RE = re.compile(r"(?:^|_)PUBLIC(?:_|$)")
# Names the kit sets itself in the app's environment; the user may not override them.
RESERVED_APP_ENV = frozenset(
    {
        "INNGEST_BASE_URL",
        "INNGEST_DEV",
        "INNGEST_SIGNING_KEY",
        "INNGEST_SIGNING_KEY_FALLBACK",
        "INNGEST_EVENT_KEY",
        "INNGEST_SERVE_ORIGIN",
        "DATABASE_URL",
        "PORT",
    }
)
RESERVED_APP_PORTS = (8288, 8289, 6379)
# Secret Manager ids have at most 255 characters; an app secret's is <name (20)>-app-<env name>.
ENV_NAME_MAX = 255 - 20 - len("-app-")
# The database settings of a new instance, which an adopted one has of its own.
ADOPT_IGNORED = ("tier", "version", "disk_gb", "maintenance_day", "maintenance_hour")
GCP_KEYS = ("gcp:project", "gcp:region", "gcp:zone")
SHOWN_CHARACTERS = 60


class ConfigError(Exception):
    """Every problem found in a stack's configuration, each naming the setting and the fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _key(name: str) -> str:
    return f"{NAMESPACE}:{name}"


# -- value checks: each returns the clean value or raises one problem (what is wrong, and the fix) --


def _problem(what: str, fix: str) -> PydanticCustomError:
    # The message is passed as context, so braces in a user's value are never read as a template.
    return PydanticCustomError("kit", "{what}", {"what": what, "fix": fix})


def show(value: Any) -> str:
    """A short, safe repr of any input: huge numbers, long strings and deep nesting included."""
    try:
        text = repr(value)
    except Exception:  # ints over Python's digit limit, and anything with a broken __repr__
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 3] + "..."


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,18}", value.strip(), re.ASCII):
        return int(value.strip())
    return None


def _real_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}(?:\.[0-9]{1,9})?", value.strip(), re.ASCII):
        return float(value.strip())
    return None


def whole(low: int, high: int) -> Any:
    def check(value: Any) -> int:
        number = _whole_number(value)
        if number is None or not low <= number <= high:
            raise _problem(f"must be a whole number from {low} to {high}, got {show(value)}", "set a value in that range, or remove it for the default {default}")
        return number

    return Annotated[int, BeforeValidator(check), WithJsonSchema({"type": "integer", "minimum": low, "maximum": high})]


def real(low: float, high: float) -> Any:
    def check(value: Any) -> float:
        number = _real_number(value)
        if number is None or not low <= number <= high:
            raise _problem(f"must be a number from {low} to {high}, got {show(value)}", "set a value in that range, or remove it for the default {default}")
        return number

    return Annotated[float, BeforeValidator(check), WithJsonSchema({"type": "number", "minimum": low, "maximum": high})]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _problem(f"must be a string, got {type(value).__name__}", "quote the value")
    return value.strip()


def text(rule, schema: dict | None = None) -> Any:
    """A string setting: `rule(stripped text)` returns the clean value or raises a problem."""
    return Annotated[str, BeforeValidator(lambda value: rule(_text(value))), WithJsonSchema(schema or {"type": "string"})]


def optional_text(rule, schema: dict | None = None) -> Any:
    def check(value: Any) -> str | None:
        if value is None:
            return None
        cleaned = _text(value)
        return rule(cleaned) if cleaned else None

    return Annotated[str | None, BeforeValidator(check), WithJsonSchema(schema or {"type": ["string", "null"]})]


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _problem(f"must be true or false, got {show(value)}", "set true or false")


Flag = Annotated[bool, BeforeValidator(_flag)]


def _project(value: str) -> str:
    if not PROJECT_RE.fullmatch(value):
        raise _problem(f"{show(value)} is not a valid project id (6-30 lowercase letters, digits, hyphens)", "use the project id, not its display name or number")
    return value


def _region(value: str) -> str:
    if not REGION_RE.fullmatch(value):
        raise _problem(f"{show(value)} is not a region name", "use a region such as us-central1")
    if not gcp_catalog.region_zones(value):
        raise _problem(
            f"{show(value)} is not a Compute Engine region (infra/data/gcp_zones.json, as of {gcp_catalog.zones_table_date()})",
            "use a region such as us-central1 or europe-west1; if Google opened it since, add it to that table",
        )
    return value


def _zone(value: str) -> str:
    if not ZONE_RE.fullmatch(value):
        raise _problem(f"{show(value)} is not a zone name", "use a zone such as us-central1-a")
    region = value.rsplit("-", 1)[0]
    if gcp_catalog.zone_region(value) is None:
        known = gcp_catalog.region_zones(region)
        fix = f"use one of {', '.join(known)}" if known else "use a zone such as us-central1-a"
        raise _problem(f"{show(value)} is not a Compute Engine zone (infra/data/gcp_zones.json, as of {gcp_catalog.zones_table_date()})", fix)
    return value


def _resource_prefix(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise _problem(f"{show(value)} is not a valid resource prefix", "use 2-20 lowercase letters, digits and hyphens, starting with a letter")
    return value


def _domain(value: str) -> str:
    value = value.lower()
    if not DOMAIN_RE.fullmatch(value):
        raise _problem(f"{show(value)} is not a fully qualified domain name", "use a name such as app.example.com, with no scheme, port or path")
    return value


def _email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or len(value) > 254 or len(local) > 64 or not EMAIL_LOCAL_RE.fullmatch(local) or not DOMAIN_RE.fullmatch(domain.lower()):
        raise _problem(
            f"{show(value)} is not an email address (letters, digits and . _ % + - before the @, a domain name after it)",
            "use an address such as ops@example.com; it is written into the Caddyfile, where quotes, backticks and braces are not allowed",
        )
    return value


def _ssh_via(value: str) -> str:
    if value not in ("iap", "direct"):
        raise _problem(f"{show(value)} is not a way to reach the VM", "use iap (through Identity-Aware Proxy, the default) or direct")
    return value


def _posix_user(value: str) -> str:
    if not POSIX_USER_RE.fullmatch(value):
        raise _problem(f"{show(value)} is not a POSIX user name", "use the username from `gcloud compute os-login describe-profile`")
    return value


def _machine_type(value: str) -> str:
    if gcp_catalog.machine_shape(value) is None:
        raise _problem(
            f"{show(value)} is not a machine type that Compute Engine offers (infra/data/machine_types.json, as of {gcp_catalog.machine_types_table_date()})",
            "use one such as e2-small, e2-medium, n1-standard-1 or n2-standard-2, or a custom type such as e2-custom-2-4096",
        )
    return value


def _subnet_cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise _problem(f"{show(value)} is not a CIDR range", "write it as address/prefix with the host bits zero, e.g. 10.10.0.0/24") from None
    if network.version != 4 or not network.is_private or not 8 <= network.prefixlen <= 29:
        raise _problem(f"{value} is not a private IPv4 range from /8 to /29", "use a free private range such as 10.10.0.0/24")
    return str(network)


def _digest(value: str) -> str:
    """An image digest to pin after the kit's tag, e.g. from `docker buildx imagetools inspect <image:tag>`."""
    if not DIGEST_RE.fullmatch(value):
        raise _problem(f"{show(value)} is not an image digest", "give sha256: and 64 lower-case hex characters, as `docker buildx imagetools inspect` prints for the tag")
    return value


def _registry_user(value: str) -> str:
    if not REGISTRY_USER_RE.fullmatch(value):
        raise _problem(f"{show(value)} is not a registry user name", "give the user name alone, with no spaces or colon")
    return value


def _registry_token(value: Any) -> bool | None:
    """None when not set; True when stored encrypted; False when in plain text. Never shown."""
    if value is None or value == "":
        return None
    if is_encrypted(value):
        return True
    if isinstance(value, (str, float, bool)) or isinstance(value, int) and value.bit_length() < 1024:
        return False
    raise _problem("must be a single value", f"set it with `pulumi config set --secret {_key('registryToken')} <token>`")


def _tier(value: str) -> str:
    if tier_max_connections(value) is None:
        raise _problem(f"{show(value)} is not a known Cloud SQL tier", "use db-f1-micro, db-g1-small or db-custom-<cpus>-<memory MiB> (at least 3840 MiB)")
    return value


def _postgres_version(value: str) -> str:
    if value not in POSTGRES_VERSIONS:
        raise _problem(f"{show(value)} is not a supported PostgreSQL version", f"use one of {', '.join(POSTGRES_VERSIONS)}")
    return value


def _instance_name(value: str) -> str:
    if not INSTANCE_NAME_RE.fullmatch(value):
        raise _problem(f"{show(value)} is not a Cloud SQL instance name", "give the instance's name (not its connection name), e.g. shared-pg")
    return value


def _inngest_version(value: str) -> str:
    minimum = "v" + ".".join(map(str, MIN_INNGEST_VERSION))
    match = VERSION_RE.fullmatch(value)
    if match is None:
        raise _problem(f"{show(value)} is not a pinned release tag", f"use a tag of the form vX.Y.Z, at or after {minimum} (never 'latest')")
    if tuple(int(part) for part in match.groups()) < MIN_INNGEST_VERSION:
        raise _problem(f"{value} is older than {minimum}, which first honours the Postgres pool flags", f"pin {minimum} or later, e.g. v1.43.0")
    return value


def _image(value: str) -> str:
    reference = parse_reference(value)
    fix = "give a registry path with an explicit tag or digest, e.g. ghcr.io/acme/web:1.4.2 or registry.example.com:5000/acme/web@sha256:<64 hex> (not :latest)"
    if reference is None:
        raise _problem(f"{show(value)} is not a pinned image reference (it does not follow the OCI distribution reference grammar)", fix)
    if reference.tag is None and reference.digest is None or reference.tag == "latest" and reference.digest is None:
        raise _problem(f"{show(value)} is not a pinned image reference", fix)
    return value


def _health_path(value: str) -> str:
    if not HEALTH_PATH_RE.fullmatch(value or "/"):
        raise _problem(f"{show(value)} is not an absolute URL path the health check and the Caddyfile can carry", "use letters, digits and . _ ~ / - in the path, e.g. /healthz")
    return value or "/"


def _command(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(part, str) and part and "\x00" not in part for part in value):
        raise _problem(
            "must be a non-empty list of strings (the process the image runs)",
            "set it with `pulumi config set --path 'app.command[0]' node` and so on, e.g. [\"node\", \"server.js\"]",
        )
    return tuple(value)


def _app_port(value: Any) -> int:
    number = _whole_number(value)
    if number is None or not 1 <= number <= 65535:
        raise _problem(f"must be a whole number from 1 to 65535, got {show(value)}", "set a value in that range, or remove it for the default 3000")
    if number in RESERVED_APP_PORTS:
        raise _problem(f"{number} is used by Inngest or Redis on the same network", "pick another port such as 3000")
    return number


def _max_open_conns(value: Any) -> int:
    number = _whole_number(value)
    if number is not None and number in (0, 1):
        # Inngest v1.43 `inngest start` exits when --postgres-max-open-conns is 1 or less (DESIGN.md).
        raise _problem(f"is {number}, and Inngest v1.43 exits when its pool may open 1 connection or fewer", "set 2 or more, e.g. the default 10")
    if number is None or not 2 <= number <= 1000:
        raise _problem(f"must be a whole number from 2 to 1000, got {show(value)}", "set a value in that range, or remove it for the default 10")
    return number


def _env_name(value: Any) -> str:
    if not isinstance(value, str) or not ENV_NAME_RE.fullmatch(value):
        raise _problem("is not a valid environment variable name", "use upper-case letters, digits and underscores")
    if len(value) > ENV_NAME_MAX:
        raise _problem(
            f"is {len(value)} characters long; an app secret's Secret Manager id (<name>-app-<its name>) may have 255",
            f"use a name of at most {ENV_NAME_MAX} characters",
        )
    if value in RESERVED_APP_ENV:
        raise _problem("is set by the kit itself", "remove it; the kit wires Inngest and the database for you")
    return value


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if not isinstance(value, (str, int, float)):
        raise _problem("must be a plain value", "give a string")
    try:
        rendered = str(value)
    except ValueError:  # an int over Python's digit limit
        raise _problem("is a number too long to write", "give a shorter value, as a string") from None
    if "\x00" in rendered or rendered.endswith("\\") or "\\'" in rendered:
        raise _problem("a backslash before a quote or at the end, or a NUL, cannot be written to a compose env file", "change the value, or keep it in appSecrets")
    return rendered


def is_encrypted(value: Any) -> bool:
    """A value stored encrypted: `{secure: ...}` as the stack file holds it, or the plan's stand-in."""
    return value == ENCRYPTED or isinstance(value, Mapping) and set(value) == {"secure"} and isinstance(value["secure"], str)


def _secret_value(value: Any) -> bool:
    """True for a value stored encrypted; False for one stored in plain text (a warning, not an error)."""
    if is_encrypted(value):
        return True
    if isinstance(value, (str, float, bool)) or isinstance(value, int) and value.bit_length() < 1024:
        return False
    # Never show the value: it is meant to be a secret.
    raise _problem("must be a single value", "set it with `pulumi config set --secret --path 'appSecrets.<NAME>' <value>`")


def _ssh_range(value: Any) -> str:
    if not isinstance(value, str):
        raise _problem(f"{show(value)} is not a CIDR range", "write it as a quoted address/prefix, e.g. 203.0.113.0/24")
    try:
        network = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError:
        raise _problem(f"{show(value)} is not a CIDR range", "write it as address/prefix with the host bits zero, e.g. 203.0.113.0/24") from None
    if network.prefixlen == 0:
        raise _problem(f"{network} opens SSH to the whole internet", "list only your office or VPN ranges; IAP (35.235.240.0/20) is always allowed")
    return str(network)


def _ssh_ranges(value: Any) -> Any:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _problem("must be a list of CIDR ranges", f"set it with `pulumi config set --path '{_key('sshSourceRanges')}[0]' 203.0.113.0/24`")
    return value


def _union_is_the_internet(ranges: tuple[str, ...]) -> tuple[str, ...]:
    networks = [ipaddress.ip_network(cidr) for cidr in ranges]
    for version, everything in ((4, "0.0.0.0/0"), (6, "::/0")):
        family = [n for n in networks if n.version == version]
        if family and str(next(iter(ipaddress.collapse_addresses(family)))) == everything:
            raise _problem(
                f"together, {', '.join(str(n) for n in family)} cover the whole {'IPv4' if version == 4 else 'IPv6'} internet, which opens SSH to everyone",
                "list only your office or VPN ranges; IAP (35.235.240.0/20) is always allowed",
            )
    return ranges


def _section(data: Any) -> Any:
    return {} if data is None else data


SECURE_VALUE_SCHEMA = {"type": "object", "properties": {"secure": {"type": "string"}}, "required": ["secure"], "additionalProperties": False}
EnvName = Annotated[str, BeforeValidator(_env_name), WithJsonSchema({"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$", "maxLength": ENV_NAME_MAX})]
EnvValue = Annotated[str, BeforeValidator(_env_value), WithJsonSchema({"type": ["string", "number", "boolean"]})]
SecretValue = Annotated[bool, BeforeValidator(_secret_value), WithJsonSchema({"anyOf": [SECURE_VALUE_SCHEMA, {"type": "string"}]})]
SshRange = Annotated[str, BeforeValidator(_ssh_range), WithJsonSchema({"type": "string", "description": "a CIDR range, e.g. 203.0.113.0/24"})]
SshRanges = Annotated[tuple[SshRange, ...], BeforeValidator(_ssh_ranges), AfterValidator(_union_is_the_internet)]


# -- the models --


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True, validate_by_alias=True, validate_by_name=False, serialize_by_alias=True)


class _Section(_Model):
    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        return _section(data)


class VmConfig(_Section):
    machine_type: text(_machine_type) = Field("e2-small", alias="machineType", description="Compute Engine machine type, predefined or custom")
    boot_disk_gb: whole(10, 2000) = Field(20, alias="bootDiskGb")
    data_disk_gb: whole(10, 64000) = Field(20, alias="dataDiskGb", description="the persistent disk that holds all state")
    snapshot_retention_days: whole(1, 365) = Field(14, alias="snapshotRetentionDays")
    ready_timeout_seconds: whole(60, 7200) = Field(900, alias="readyTimeoutSeconds", description="how long the deploy waits for the startup script to finish")
    subnet_cidr: text(_subnet_cidr) = Field(
        "10.10.0.0/24", alias="subnetCidr", description="the VM's subnet (private IPv4, /8 to /29); in an adopted instance's VPC it must be free there"
    )

    @property
    def vcpus(self) -> int:
        return gcp_catalog.machine_shape(self.machine_type).vcpus

    @property
    def memory_mib(self) -> int:
        return gcp_catalog.machine_shape(self.machine_type).memory_mib


class DatabaseConfig(_Section):
    tier: text(_tier) = Field("db-f1-micro", alias="tier", description="Cloud SQL tier; sets the connection budget")
    version: text(_postgres_version, {"enum": list(POSTGRES_VERSIONS)}) = Field("POSTGRES_15", alias="version")
    disk_gb: whole(10, 65536) = Field(10, alias="diskGb")
    existing_instance: optional_text(_instance_name) = Field(None, alias="existingInstance", description="adopt this Cloud SQL instance instead of creating one")
    maintenance_day: whole(1, 7) = Field(7, alias="maintenanceDay", description="1 = Monday ... 7 = Sunday")
    maintenance_hour: whole(0, 23) = Field(4, alias="maintenanceHour", description="UTC")

    @property
    def adopted(self) -> bool:
        return self.existing_instance is not None


class InngestConfig(_Section):
    version: text(_inngest_version, {"type": "string", "pattern": r"^v[0-9]+\.[0-9]+\.[0-9]+$"}) = Field("v1.43.0", alias="version")
    postgres_max_open_conns: Annotated[int, BeforeValidator(_max_open_conns), WithJsonSchema({"type": "integer", "minimum": 2, "maximum": 1000})] = Field(
        10, alias="postgresMaxOpenConns", description="at least 2: Inngest v1.43 exits with 1 or less"
    )
    postgres_max_idle_conns: whole(0, 1000) = Field(2, alias="postgresMaxIdleConns")
    cpus: real(0.1, 64) = Field(1.0, alias="cpus")
    memory_mb: whole(128, 262144) = Field(768, alias="memoryMb")
    digest: optional_text(_digest) = Field(None, alias="digest", description="sha256:<hex> of the tag's image, pinned after the tag")

    @property
    def image(self) -> str:
        return f"inngest/inngest:{self.version}" + (f"@{self.digest}" if self.digest else "")


class CaddyConfig(_Section):
    cpus: real(0.1, 64) = Field(0.25, alias="cpus")
    memory_mb: whole(64, 262144) = Field(128, alias="memoryMb")
    digest: optional_text(_digest) = Field(None, alias="digest", description="sha256:<hex> of the kit's caddy tag, pinned after it")


class RedisConfig(_Section):
    cpus: real(0.1, 64) = Field(0.5, alias="cpus")
    memory_mb: whole(64, 262144) = Field(256, alias="memoryMb")
    digest: optional_text(_digest) = Field(None, alias="digest", description="sha256:<hex> of the kit's redis tag, pinned after it")


class RegistryConfig(_Section):
    """A private registry other than Artifact Registry: the user `docker login` uses; the token is
    the secret config value `registryToken`, kept in Secret Manager (infra/images.py)."""

    username: optional_text(_registry_user) = Field(None, alias="username")


class AppConfig(_Section):
    image: text(_image) = Field(alias="image", description="the app's image, pinned by tag or digest (never :latest)")
    command: Annotated[tuple[str, ...], BeforeValidator(_command), WithJsonSchema({"type": "array", "items": {"type": "string"}, "minItems": 1})] = Field(alias="command")
    port: Annotated[int, BeforeValidator(_app_port), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 65535, "not": {"enum": list(RESERVED_APP_PORTS)}})] = Field(
        3000, alias="port"
    )
    health_path: text(_health_path) = Field("/", alias="healthPath")
    env: Mapping[EnvName, EnvValue] = Field(default_factory=dict, alias="env", description="plain, non-secret environment")
    db_pool_size: whole(1, 1000) = Field(5, alias="dbPoolSize")
    expose_inngest_endpoint: Flag = Field(False, alias="exposeInngestEndpoint")
    cpus: real(0.1, 64) = Field(1.0, alias="cpus")
    memory_mb: whole(64, 262144) = Field(512, alias="memoryMb")
    registry: RegistryConfig = Field(default_factory=RegistryConfig, alias="registry", description="a private registry's user (the token is registryToken)")
    # The names of appSecrets, and the registry user when its token is set too, both read from the
    # top level of the config; set by StackConfig.
    _secrets: tuple[str, ...] = PrivateAttr(default=())
    _registry_username: str | None = PrivateAttr(default=None)

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    @property
    def registry_username(self) -> str | None:
        """The user to log in to the app's private registry with, or None for no login."""
        return self._registry_username


class StackConfig(_Model):
    project: text(_project) = Field(alias="gcp:project")
    region: text(_region) = Field("us-central1", alias="gcp:region")
    zone: text(_zone) = Field("", alias="gcp:zone", description="default: the region's first zone in infra/data/gcp_zones.json")
    name: text(_resource_prefix) = Field("app", alias=_key("name"), description="prefix of every resource name")
    domain: text(_domain) = Field(alias=_key("domain"))
    acme_email: Annotated[
        str, BeforeValidator(lambda value: ENCRYPTED if is_encrypted(value) else _email(_text(value))), WithJsonSchema({"anyOf": [{"type": "string", "format": "email"}, SECURE_VALUE_SCHEMA]})
    ] = Field(alias=_key("acmeEmail"))  # encrypted in the stack file: only `pulumi up` sees the value, and checks it
    vm: VmConfig = Field(default_factory=VmConfig, alias=_key("vm"))
    database: DatabaseConfig = Field(default_factory=DatabaseConfig, alias=_key("database"))
    inngest: InngestConfig = Field(default_factory=InngestConfig, alias=_key("inngest"))
    caddy: CaddyConfig = Field(default_factory=CaddyConfig, alias=_key("caddy"))
    redis: RedisConfig = Field(default_factory=RedisConfig, alias=_key("redis"))
    app: AppConfig = Field(alias=_key("app"))
    app_secrets: Annotated[Mapping[EnvName, SecretValue], BeforeValidator(_section)] = Field(
        default_factory=dict, alias=_key("appSecrets"), description="each app secret, stored encrypted (pulumi config set --secret)"
    )
    registry_token: Annotated[bool | None, BeforeValidator(_registry_token), WithJsonSchema({"anyOf": [SECURE_VALUE_SCHEMA, {"type": "string"}]})] = Field(
        None, alias=_key("registryToken"), description="a private registry's read token, stored encrypted (pulumi config set --secret)"
    )
    ssh_source_ranges: SshRanges = Field((), alias=_key("sshSourceRanges"), description="extra ranges allowed to reach port 22")
    ssh_via: text(_ssh_via, {"enum": ["iap", "direct"]}) = Field("iap", alias=_key("sshVia"))
    ssh_user: optional_text(_posix_user) = Field(None, alias=_key("sshUser"))

    @model_validator(mode="before")
    @classmethod
    def _zone_defaults_to_a_real_zone_of_the_region(cls, data: Any) -> Any:
        return _with_default_zone(data)

    @model_validator(mode="after")
    def _hand_secret_names_to_the_app(self) -> "StackConfig":
        self.app._secrets = tuple(sorted(self.app_secrets))
        self.app._registry_username = self.app.registry.username if self.registry_token is not None else None
        return self

    @property
    def connection_budget(self) -> int:
        return connection_budget(self.database.tier) or 0

    @property
    def ssh_ranges(self) -> tuple[str, ...]:
        """Every source range allowed to reach port 22: IAP first, then the user's."""
        return (IAP_SOURCE_RANGE, *self.ssh_source_ranges)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Advice that does not stop a deploy, in the same "<setting>: ... Fix: ..." form."""
        found = []
        if self.acme_email == ENCRYPTED:
            found.append(f"{_key('acmeEmail')}: is encrypted, so the offline plan cannot check it or show it in the Caddyfile. Fix: nothing to do; `pulumi up` checks the value.")
        for name, encrypted in sorted(self.app_secrets.items()):
            if not encrypted:
                found.append(
                    f"{_key('appSecrets')}.{name}: is stored in plain text in the stack file. "
                    f"Fix: set it encrypted with `pulumi config set --secret --path 'appSecrets.{name}' <value>`."
                )
        if self.registry_token is False:
            found.append(
                f"{_key('registryToken')}: is stored in plain text in the stack file. "
                f"Fix: set it encrypted with `pulumi config set --secret {_key('registryToken')} <token>`."
            )
        for name in sorted(self.app.env):
            if SECRET_NAME_RE.search(name) and not PUBLIC_NAME_RE.search(name):
                found.append(
                    f"{_key('app')}.env.{name}: looks like a secret, but plain env is written to the VM's disk and shown by the plan. "
                    f"Fix: move it to appSecrets with `pulumi config set --secret --path 'appSecrets.{name}' <value>`, unless it is not secret."
                )
        return tuple(found)


def _with_default_zone(data: Any) -> Any:
    if isinstance(data, Mapping) and data.get("gcp:zone") in (None, ""):
        region = data.get("gcp:region", "us-central1")
        zone = gcp_catalog.default_zone(region.strip()) if isinstance(region, str) else None
        if zone is not None:
            return {**data, "gcp:zone": zone}
    return data



def tier_max_connections(tier: str) -> int | None:
    """Cloud SQL's default max_connections for a tier, or None for a tier we do not know."""
    if tier in SHARED_CORE_MAX_CONNECTIONS:
        return SHARED_CORE_MAX_CONNECTIONS[tier]
    match = CUSTOM_TIER_RE.fullmatch(tier) if isinstance(tier, str) else None
    if not match:
        return None
    cpus, memory_mb = int(match.group(1)), int(match.group(2))
    if cpus < 1 or memory_mb < 3840:
        return None
    for below, connections in MEMORY_MAX_CONNECTIONS:
        if memory_mb < below:
            return connections
    return LARGEST_MAX_CONNECTIONS


def connection_budget(tier: str) -> int | None:
    """How many connections the app and Inngest together may open on this tier."""
    limit = tier_max_connections(tier)
    return None if limit is None else limit - RESERVED_CONNECTIONS


# -- parsing: pydantic's errors, rewritten as "<setting>: <what>. Fix: <how>." --

MISSING_FIXES = {
    "gcp:project": "run `pulumi config set gcp:project <project-id>`",
    _key("domain"): f"run `pulumi config set {_key('domain')} app.example.com`",
    _key("acmeEmail"): f"run `pulumi config set {_key('acmeEmail')} ops@example.com` (Let's Encrypt sends expiry notices there)",
    _key("app"): "set at least `pulumi config set --path 'app.image' ghcr.io/acme/web:1.4.2` and `--path 'app.command[0]' node`",
    f"{_key('app')}.image": "run `pulumi config set --path 'app.image' ghcr.io/acme/web:1.4.2`",
    f"{_key('app')}.command": "set it with `pulumi config set --path 'app.command[0]' node` and so on, e.g. [\"node\", \"server.js\"]",
}


def parse_config(raw: Mapping[str, Any], encrypted_keys: Collection[str] = ()) -> StackConfig:
    """Builds a StackConfig from the flat Pulumi config map, or raises ConfigError with every problem.

    Keys of other namespaces (gcp:credentials, a provider's settings) are left to their owners; every
    key of this namespace must be a known setting. `encrypted_keys` names the keys that hold a value
    set with `--secret` (the engine's list on `pulumi up`, the `secure:` values of the stack file in
    the plan): only appSecrets and acmeEmail may.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError([f"config: expected a map of settings, got {type(raw).__name__}. Fix: give `config:` a map, as in Pulumi.example.yaml."])
    problems: list[str] = []
    data: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            problems.append(f"{show(key)}: is not a setting name. Fix: use names such as {_key('domain')}, as in Pulumi.example.yaml.")
        elif key in GCP_KEYS or key.startswith(NAMESPACE + ":"):
            data[key] = value
    try:
        config = StackConfig.model_validate(data)
    except ValidationError as error:
        problems.extend(_describe(error))
        config = None
    except (RecursionError, ValueError, TypeError) as error:  # pydantic's own limits on absurd input
        problems.append(f"config: cannot be read ({type(error).__name__}). Fix: simplify the values; settings are plain strings, numbers, lists and maps.")
        config = None
    problems.extend(_encrypted_problems(encrypted_keys, data))
    values = _values_of(config) if config is not None else _partial_values(data)
    problems.extend(_cross_problems(values))
    if problems or config is None:
        raise ConfigError(problems or ["config: cannot be read. Fix: compare it with Pulumi.example.yaml."])
    return config


# Settings that may be set with `--secret`: appSecrets and registryToken go to Secret Manager; the ACME address is only
# private data. Every other setting is written in plain text to the VM and shown by the plan.
MAY_BE_ENCRYPTED = frozenset({_key("appSecrets"), _key("acmeEmail"), _key("registryToken")})


def _encrypted_problems(encrypted_keys: Collection[str], data: Mapping[str, Any]) -> list[str]:
    problems = []
    for key in sorted(k for k in encrypted_keys if isinstance(k, str) and k in data and k not in MAY_BE_ENCRYPTED):
        problems.append(
            f"{key}: holds a value set with --secret, but the kit writes this setting in plain text to the VM and the plan. "
            "Fix: keep secret values in appSecrets (handed to the app as env), and set this setting without --secret."
        )
    return problems


def _describe(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False, include_input=True):
        loc = tuple(part for part in item["loc"] if part != "[key]")
        setting = _setting(loc)
        what, fix = _what_and_fix(item, loc, setting)
        fix = fix.replace("{default}", _default_text(loc))
        problems.append(f"{setting}: {what}. Fix: {fix}.")
    return list(dict.fromkeys(problems))


def _setting(loc: tuple) -> str:
    if not loc:
        return "config"
    parts = [str(loc[0]) if isinstance(loc[0], str) else show(loc[0])]
    for part in loc[1:]:
        if isinstance(part, int) and not isinstance(part, bool):
            parts.append(f"[{part}]")
        else:
            parts.append("." + (part if isinstance(part, str) else show(part)))
    return "".join(parts)[:200]


def _what_and_fix(item: dict, loc: tuple, setting: str) -> tuple[str, str]:
    kind, ctx = item["type"], item.get("ctx") or {}
    if kind == "kit":
        return ctx["what"], ctx["fix"]
    if kind == "missing":
        return "is required", MISSING_FIXES.get(setting, "set it")
    if kind == "invalid_key":
        return "is not a setting name (names are strings)", f"remove it, or use one of: {', '.join(_known_keys(loc[:-1]))}"
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        return "is not a known setting", f"remove it, or use one of: {', '.join(known)}"
    if kind in ("model_type", "dict_type", "model_attributes_type", "mapping_type"):
        path = setting.split(":", 1)[-1]
        return f"expected an object, got {type(item.get('input')).__name__}", f"set it with `pulumi config set --path '{path}.<field>' <value>`"
    if kind in ("tuple_type", "list_type", "iterable_type"):
        return f"must be a list, got {type(item.get('input')).__name__}", "give a list, e.g. [\"a\", \"b\"]"
    if kind in ("string_type", "str_type"):
        return f"must be a string, got {type(item.get('input')).__name__}", "quote the value"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, got {show(item.get('input'))}", "set true or false"
    return str(item.get("msg", "is not valid")).rstrip("."), "compare it with Pulumi.example.yaml and the README's settings table"


def _field_at(loc: tuple):
    """The pydantic field a location names, and the model holding it; (None, None) off the models."""
    model, field = StackConfig, None
    for part in loc:
        if model is None:
            return None, None
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        if field is None:
            return None, None
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return field, model


def _known_keys(loc: tuple) -> list[str]:
    if not loc:
        return sorted(f.alias.split(":", 1)[1] for f in StackConfig.model_fields.values() if f.alias.startswith(NAMESPACE + ":"))
    _, model = _field_at(loc)
    return sorted(f.alias for f in model.model_fields.values()) if model is not None else []


def _default_text(loc: tuple) -> str:
    field, _ = _field_at(loc)
    if field is None or field.is_required():
        return "value"
    default = field.get_default(call_default_factory=True)
    return str(default)


def _values_of(config: StackConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in StackConfig.model_fields}


def _partial_values(data: dict[str, Any]) -> dict[str, Any]:
    """Each top-level setting validated alone (None where invalid), so the rules that span several
    settings still run, and report, when some other setting is wrong."""
    data = _with_default_zone(data)
    values: dict[str, Any] = {}
    for name, field in StackConfig.model_fields.items():
        if field.alias not in data:
            values[name] = None if field.is_required() else field.get_default(call_default_factory=True)
            continue
        try:
            kind = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
            values[name] = TypeAdapter(kind).validate_python(data[field.alias])
        except Exception:  # any failure here is already reported by the full validation
            values[name] = _valid_entries(data[field.alias]) if name == "app_secrets" else None
    return values


def _valid_entries(secrets: Any) -> dict[str, bool] | None:
    """The appSecrets entries that are valid on their own, so one bad name hides no other rule."""
    if not isinstance(secrets, Mapping):
        return None
    entry = TypeAdapter(dict[EnvName, SecretValue])
    valid = {}
    for name, value in secrets.items():
        try:
            valid.update(entry.validate_python({name: value}))
        except Exception:  # reported by the full validation
            continue
    return valid


def _cross_problems(v: dict[str, Any]) -> list[str]:
    """The rules that relate several settings; each runs only when the settings it reads are valid."""
    problems: list[str] = []

    def fail(setting: str, what: str, fix: str) -> None:
        problems.append(f"{setting}: {what}. Fix: {fix}.")

    region, zone = v.get("region"), v.get("zone")
    if region and zone and gcp_catalog.zone_region(zone) != region:
        fail("gcp:zone", f"zone {show(zone)} is not in region {show(region)}", f"pick a zone of {region} ({', '.join(gcp_catalog.region_zones(region))}), or change gcp:region")

    app, inngest, database, vm = v.get("app"), v.get("inngest"), v.get("database"), v.get("vm")
    if inngest is not None and inngest.postgres_max_idle_conns > inngest.postgres_max_open_conns:
        fail(
            f"{_key('inngest')}.postgresMaxIdleConns",
            f"{inngest.postgres_max_idle_conns} is above postgresMaxOpenConns ({inngest.postgres_max_open_conns})",
            "keep idle connections at or below the open limit",
        )
    if database is not None and database.adopted:
        # An adopted instance is read, never changed: its own tier, version, disk and maintenance apply.
        for name in ADOPT_IGNORED:
            if name in database.model_fields_set:
                alias = DatabaseConfig.model_fields[name].alias
                fail(
                    f"{_key('database')}.{alias}",
                    "has no effect when database.existingInstance is set: the adopted instance's own settings are read and never changed",
                    f"remove {alias} (the plan shows the adopted instance's tier and the connection budget it gives)",
                )
    # An adopted instance's budget comes from its real tier, read by the program (infra/adopted.py).
    if app is not None and inngest is not None and database is not None and not database.adopted:
        budget = connection_budget(database.tier)
        wanted = app.db_pool_size + inngest.postgres_max_open_conns
        if budget is not None and wanted > budget:
            fail(
                f"{_key('app')}.dbPoolSize + {_key('inngest')}.postgresMaxOpenConns",
                f"the pools open {app.db_pool_size} + {inngest.postgres_max_open_conns} = {wanted} connections, "
                f"over the {budget} that tier {database.tier} allows (max_connections {tier_max_connections(database.tier)} less {RESERVED_CONNECTIONS} reserved)",
                "lower the pools, or pick a larger database.tier",
            )

    ranges = v.get("ssh_source_ranges")
    if v.get("ssh_via") == "direct" and ranges is not None and not ranges:
        fail(
            _key("sshVia"),
            "direct SSH needs your address in sshSourceRanges, or the firewall drops it",
            f"add your range with `pulumi config set --path '{_key('sshSourceRanges')}[0]' 203.0.113.0/24`, or use iap",
        )

    secrets = v.get("app_secrets")
    if app is not None and secrets is not None:
        for name in sorted(set(secrets) & set(app.env)):
            fail(f"{_key('appSecrets')}.{name}", f"is also set as plain env {_key('app')}.env.{name}", "keep it in one place only: secrets belong in appSecrets")

    problems.extend(_registry_problems(app, v.get("registry_token")) if app is not None else [])

    services = {"app": app, "inngest": inngest, "caddy": v.get("caddy"), "redis": v.get("redis")}
    if vm is not None and all(service is not None for service in services.values()):
        problems.extend(_vm_fit_problems(vm, services))
    return problems


def _registry_problems(app: AppConfig, token: bool | None) -> list[str]:
    """`app.registry.username` with the secret `registryToken`: both or neither, and neither for
    Artifact Registry, which the VM reads with its own service account."""
    where = f"{_key('app')}.registry"
    username, has_token = app.registry.username, token is not None
    if artifact_repository(app.image) is not None and (username or has_token):
        return [
            f"{where}: {app.image} is in Artifact Registry, which the VM reads with its own service account (no key, no token). "
            f"Fix: remove {where} and {_key('registryToken')}."
        ]
    if username and not has_token:
        return [
            f"{_key('registryToken')}: is required with {where}.username. "
            f"Fix: run `pulumi config set --secret {_key('registryToken')} <token>` with a read-only token for {login_server(app.image)}."
        ]
    if has_token and not username:
        return [f"{where}.username: is required with {_key('registryToken')}. Fix: run `pulumi config set --path 'app.registry.username' <user>`."]
    return []


def _vm_fit_problems(vm: VmConfig, services: dict[str, Any]) -> list[str]:
    problems = []
    machine = vm.machine_type
    for name, service in services.items():
        if service.cpus > vm.vcpus:
            problems.append(
                f"{_key(name)}.cpus: {service.cpus:g} is above the {vm.vcpus} vCPUs of machine type {machine}, and Docker refuses a CPU limit above the host's. "
                f"Fix: set at most {vm.vcpus}, or pick a larger vm.machineType."
            )
    total = sum(service.memory_mb for service in services.values())
    room = vm.memory_mib - VM_MEMORY_RESERVE_MIB
    if total > room:
        parts = " + ".join(f"{service.memory_mb}" for service in services.values())
        problems.append(
            f"{' + '.join(f'{_key(name)}.memoryMb' for name in services)}: the memory limits add up to {parts} = {total} MiB, "
            f"over the {room} MiB that machine type {machine} leaves ({vm.memory_mib} MiB less {VM_MEMORY_RESERVE_MIB} MiB kept for the OS, Docker and the agents). "
            "Fix: lower the limits, or pick a larger vm.machineType."
        )
    return problems


def _tidy(schema: Any) -> Any:
    """Drops pydantic's generated titles, and closes maps whose keys follow a pattern."""
    if isinstance(schema, dict):
        tidy = {key: _tidy(value) for key, value in schema.items() if not (key == "title" and isinstance(value, str))}
        if "patternProperties" in tidy and "additionalProperties" not in tidy:
            tidy["additionalProperties"] = False
        return tidy
    if isinstance(schema, list):
        return [_tidy(item) for item in schema]
    return schema


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of a stack file (Pulumi.<stack>.yaml), generated from the models."""
    settings = _tidy(StackConfig.model_json_schema(by_alias=True, mode="validation"))
    definitions = settings.pop("$defs", {})
    known = sorted(settings["properties"])
    settings["properties"]["gcp:zone"].pop("default", None)  # the real default depends on the region
    # Keys of other namespaces (providers' settings) are allowed; unknown keys of ours are not.
    settings["propertyNames"] = {"anyOf": [{"enum": known}, {"not": {"pattern": f"^{NAMESPACE}:"}}]}
    settings["additionalProperties"] = True
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "stack-config.schema.json",
        "title": "inngest-kit stack file (Pulumi.<stack>.yaml)",
        "description": "Generated from infra/config.py by `python -m infra.config_schema`; do not edit by hand.",
        "type": "object",
        "properties": {
            "config": settings,
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
        },
        "required": ["config"],
        "$defs": definitions,
    }
