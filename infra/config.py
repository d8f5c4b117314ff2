"""Typed stack configuration, parsed and validated before any resource is registered.

`parse_config` is pure: it takes the flat Pulumi config map (``{"gcp:project": ..., "inngest-kit:vm":
{...}}``) and returns a `StackConfig`, or raises `ConfigError` listing every problem at once.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.images import artifact_repository, login_server

NAMESPACE = "inngest-kit"

# The first release whose Postgres pool flags are honoured (DESIGN.md, Inngest facts).
MIN_INNGEST_VERSION = (1, 27, 1)

IAP_SOURCE_RANGE = "35.235.240.0/20"

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

POSTGRES_VERSIONS = ("POSTGRES_14", "POSTGRES_15", "POSTGRES_16", "POSTGRES_17")
MACHINE_TYPE_RE = re.compile(r"^(e2|n2|n2d|n4|c3|c4|t2d|t2a)-(micro|small|medium|standard|highcpu|highmem)(-\d+)?$")
CUSTOM_TIER_RE = re.compile(r"^db-custom-(\d+)-(\d+)$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z]+-[a-z]+\d+$")
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
VERSION_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$")
INSTANCE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,96}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
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


class ConfigError(Exception):
    """Every problem found in a stack's configuration, each naming the setting and the fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class VmConfig:
    machine_type: str = "e2-small"
    boot_disk_gb: int = 20
    data_disk_gb: int = 20
    snapshot_retention_days: int = 14
    ready_timeout_seconds: int = 900  # how long the deploy waits for the startup script to finish
    subnet_cidr: str = "10.10.0.0/24"  # the VM's subnet; in an adopted instance's VPC it must be free there


@dataclass(frozen=True)
class DatabaseConfig:
    tier: str = "db-f1-micro"
    version: str = "POSTGRES_15"
    disk_gb: int = 10
    existing_instance: str | None = None
    maintenance_day: int = 7  # Sunday
    maintenance_hour: int = 4  # UTC

    @property
    def adopted(self) -> bool:
        return self.existing_instance is not None


@dataclass(frozen=True)
class InngestConfig:
    version: str = "v1.43.0"
    postgres_max_open_conns: int = 10
    postgres_max_idle_conns: int = 2
    cpus: float = 1.0
    memory_mb: int = 768
    digest: str | None = None  # sha256:<hex> of the tag's image, pinned after the tag

    @property
    def image(self) -> str:
        return f"inngest/inngest:{self.version}" + (f"@{self.digest}" if self.digest else "")


@dataclass(frozen=True)
class CaddyConfig:
    cpus: float = 0.25
    memory_mb: int = 128
    digest: str | None = None


@dataclass(frozen=True)
class RedisConfig:
    cpus: float = 0.5
    memory_mb: int = 256
    digest: str | None = None


@dataclass(frozen=True)
class AppConfig:
    image: str
    command: tuple[str, ...]
    port: int = 3000
    health_path: str = "/"
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    db_pool_size: int = 5
    expose_inngest_endpoint: bool = False
    cpus: float = 1.0
    memory_mb: int = 512
    # A private registry other than Artifact Registry: the user `docker login` uses; the token is
    # the secret config value `registryToken`, kept in Secret Manager (infra/images.py).
    registry_username: str | None = None


@dataclass(frozen=True)
class StackConfig:
    project: str
    region: str
    zone: str
    domain: str
    acme_email: str
    app: AppConfig
    name: str = "app"
    vm: VmConfig = field(default_factory=VmConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    inngest: InngestConfig = field(default_factory=InngestConfig)
    caddy: CaddyConfig = field(default_factory=CaddyConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    ssh_source_ranges: tuple[str, ...] = ()
    ssh_via: str = "iap"
    ssh_user: str | None = None

    @property
    def connection_budget(self) -> int:
        return connection_budget(self.database.tier) or 0

    @property
    def ssh_ranges(self) -> tuple[str, ...]:
        """Every source range allowed to reach port 22: IAP first, then the user's."""
        return (IAP_SOURCE_RANGE, *self.ssh_source_ranges)


def tier_max_connections(tier: str) -> int | None:
    """Cloud SQL's default max_connections for a tier, or None for a tier we do not know."""
    if tier in SHARED_CORE_MAX_CONNECTIONS:
        return SHARED_CORE_MAX_CONNECTIONS[tier]
    match = CUSTOM_TIER_RE.match(tier)
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


class _Reader:
    """Reads one namespaced section and records problems instead of stopping at the first."""

    def __init__(self, problems: list[str]):
        self.problems = problems

    def fail(self, setting: str, what: str, fix: str) -> None:
        self.problems.append(f"{setting}: {what}. Fix: {fix}.")

    def section(self, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = raw.get(key, {})
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(key, f"expected an object, got {type(value).__name__}", f"set it with `pulumi config set --path '{key.split(':')[1]}.<field>' <value>`")
            return {}
        return value

    def unknown_keys(self, section: Mapping[str, Any], known: set[str], where: str) -> None:
        for key in sorted(set(section) - known):
            self.fail(f"{where}.{key}", "is not a known setting", f"remove it, or use one of: {', '.join(sorted(known))}")

    def integer(self, section: Mapping[str, Any], key: str, default: int, where: str, low: int, high: int) -> int:
        value = section.get(key, default)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(f"{where}.{key}", f"must be a whole number from {low} to {high}, got {value!r}", f"set a value in that range, or remove it for the default {default}")
            return default
        return value

    def number(self, section: Mapping[str, Any], key: str, default: float, where: str, low: float, high: float) -> float:
        value = section.get(key, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if isinstance(value, bool) or number is None or not low <= number <= high:
            self.fail(f"{where}.{key}", f"must be a number from {low} to {high}, got {value!r}", f"set a value in that range, or remove it for the default {default}")
            return default
        return number

    def text(self, section: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str | None:
        value = section.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(f"{where}.{key}", f"must be a string, got {type(value).__name__}", "quote the value")
            return default
        return value.strip()

    def boolean(self, section: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
        value = section.get(key, default)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            self.fail(f"{where}.{key}", f"must be true or false, got {value!r}", "set true or false")
            return default
        return value


def _parse_version(text: str) -> tuple[int, int, int] | None:
    match = VERSION_RE.match(text)
    return tuple(int(part) for part in match.groups()) if match else None  # type: ignore[return-value]


def _digest(r: _Reader, section: Mapping[str, Any], where: str) -> str | None:
    """An image digest to pin after the kit's tag, e.g. from `docker buildx imagetools inspect <image:tag>`."""
    digest = r.text(section, "digest", where) or None
    if digest is not None and not DIGEST_RE.match(digest):
        r.fail(f"{where}.digest", f"{digest!r} is not an image digest", "give sha256: and 64 lower-case hex characters, as `docker buildx imagetools inspect` prints for the tag")
        return None
    return digest


def parse_config(raw: Mapping[str, Any]) -> StackConfig:
    """Builds a StackConfig from the flat Pulumi config map, or raises ConfigError with every problem."""
    problems: list[str] = []
    r = _Reader(problems)
    ns = NAMESPACE

    def key(name: str) -> str:
        return f"{ns}:{name}"

    known_top = {"name", "domain", "acmeEmail", "vm", "database", "inngest", "caddy", "redis", "app", "appSecrets", "registryToken", "sshSourceRanges", "sshVia", "sshUser"}
    for full in sorted(raw):
        if full.startswith(ns + ":") and full.split(":", 1)[1] not in known_top:
            r.fail(full, "is not a known setting", f"remove it, or use one of: {', '.join(sorted(known_top))}")

    project = r.text(raw, "gcp:project", "gcp:project")
    if not project:
        r.fail("gcp:project", "is required", "run `pulumi config set gcp:project <project-id>`")
    elif not PROJECT_RE.match(project):
        r.fail("gcp:project", f"{project!r} is not a valid project id (6-30 lowercase letters, digits, hyphens)", "use the project id, not its display name or number")
    region = r.text(raw, "gcp:region", "gcp:region", "us-central1") or ""
    if not REGION_RE.match(region):
        r.fail("gcp:region", f"{region!r} is not a region name", "use a region such as us-central1")
    zone = r.text(raw, "gcp:zone", "gcp:zone", f"{region}-a") or ""
    if not re.match(r"^[a-z]+-[a-z]+\d+-[a-z]$", zone):
        r.fail("gcp:zone", f"{zone!r} is not a zone name", f"use a zone such as {region}-a")
    elif zone.rsplit("-", 1)[0] != region:
        r.fail("gcp:zone", f"zone {zone!r} is not in region {region!r}", f"pick a zone of {region}, such as {region}-a, or change gcp:region")

    name = r.text(raw, key("name"), key("name"), "app") or ""
    if not NAME_RE.match(name):
        r.fail(key("name"), f"{name!r} is not a valid resource prefix", "use 2-20 lowercase letters, digits and hyphens, starting with a letter")

    domain = (r.text(raw, key("domain"), key("domain")) or "").lower()
    if not domain:
        r.fail(key("domain"), "is required", f"run `pulumi config set {key('domain')} app.example.com`")
    elif not DOMAIN_RE.match(domain):
        r.fail(key("domain"), f"{domain!r} is not a fully qualified domain name", "use a name such as app.example.com, with no scheme, port or path")
    acme_email = r.text(raw, key("acmeEmail"), key("acmeEmail")) or ""
    if not acme_email:
        r.fail(key("acmeEmail"), "is required (Let's Encrypt sends expiry notices there)", f"run `pulumi config set {key('acmeEmail')} ops@example.com`")
    elif not EMAIL_RE.match(acme_email):
        r.fail(key("acmeEmail"), f"{acme_email!r} is not an email address", "use an address such as ops@example.com")

    vm_raw = r.section(raw, key("vm"))
    r.unknown_keys(vm_raw, {"machineType", "bootDiskGb", "dataDiskGb", "snapshotRetentionDays", "readyTimeoutSeconds", "subnetCidr"}, key("vm"))
    machine_type = r.text(vm_raw, "machineType", key("vm"), "e2-small") or ""
    if not MACHINE_TYPE_RE.match(machine_type):
        r.fail(f"{key('vm')}.machineType", f"{machine_type!r} is not a machine type", "use one such as e2-small or e2-medium")
    vm = VmConfig(
        machine_type=machine_type,
        boot_disk_gb=r.integer(vm_raw, "bootDiskGb", 20, key("vm"), 10, 2000),
        data_disk_gb=r.integer(vm_raw, "dataDiskGb", 20, key("vm"), 10, 64000),
        snapshot_retention_days=r.integer(vm_raw, "snapshotRetentionDays", 14, key("vm"), 1, 365),
        ready_timeout_seconds=r.integer(vm_raw, "readyTimeoutSeconds", 900, key("vm"), 60, 7200),
        subnet_cidr=_subnet_cidr(r, vm_raw, key("vm")),
    )

    db_raw = r.section(raw, key("database"))
    r.unknown_keys(db_raw, {"tier", "version", "diskGb", "existingInstance", "maintenanceDay", "maintenanceHour"}, key("database"))
    tier = r.text(db_raw, "tier", key("database"), "db-f1-micro") or ""
    if tier_max_connections(tier) is None:
        r.fail(f"{key('database')}.tier", f"{tier!r} is not a known Cloud SQL tier", "use db-f1-micro, db-g1-small or db-custom-<cpus>-<memory MiB> (at least 3840 MiB)")
    pg_version = r.text(db_raw, "version", key("database"), "POSTGRES_15") or ""
    if pg_version not in POSTGRES_VERSIONS:
        r.fail(f"{key('database')}.version", f"{pg_version!r} is not a supported PostgreSQL version", f"use one of {', '.join(POSTGRES_VERSIONS)}")
    existing = r.text(db_raw, "existingInstance", key("database")) or None
    if existing is not None and not INSTANCE_NAME_RE.match(existing):
        r.fail(f"{key('database')}.existingInstance", f"{existing!r} is not a Cloud SQL instance name", "give the instance's name (not its connection name), e.g. shared-pg")
    if existing is not None:
        # An adopted instance is read, never changed: its own tier, version, disk and maintenance apply.
        for ignored in ("tier", "version", "diskGb", "maintenanceDay", "maintenanceHour"):
            if ignored in db_raw:
                r.fail(
                    f"{key('database')}.{ignored}",
                    "has no effect when database.existingInstance is set: the adopted instance's own settings are read and never changed",
                    f"remove {ignored} (the plan shows the adopted instance's tier and the connection budget it gives)",
                )
    database = DatabaseConfig(
        tier=tier,
        version=pg_version,
        disk_gb=r.integer(db_raw, "diskGb", 10, key("database"), 10, 65536),
        existing_instance=existing,
        maintenance_day=r.integer(db_raw, "maintenanceDay", 7, key("database"), 1, 7),
        maintenance_hour=r.integer(db_raw, "maintenanceHour", 4, key("database"), 0, 23),
    )

    inngest_raw = r.section(raw, key("inngest"))
    r.unknown_keys(inngest_raw, {"version", "postgresMaxOpenConns", "postgresMaxIdleConns", "cpus", "memoryMb", "digest"}, key("inngest"))
    inngest_version = r.text(inngest_raw, "version", key("inngest"), "v1.43.0") or ""
    parsed = _parse_version(inngest_version)
    minimum = "v" + ".".join(map(str, MIN_INNGEST_VERSION))
    if parsed is None:
        r.fail(f"{key('inngest')}.version", f"{inngest_version!r} is not a pinned release tag", f"use a tag of the form vX.Y.Z, at or after {minimum} (never 'latest')")
    elif parsed < MIN_INNGEST_VERSION:
        r.fail(f"{key('inngest')}.version", f"{inngest_version} is older than {minimum}, which first honours the Postgres pool flags", f"pin {minimum} or later, e.g. v1.43.0")
    inngest = InngestConfig(
        version=inngest_version,
        postgres_max_open_conns=r.integer(inngest_raw, "postgresMaxOpenConns", 10, key("inngest"), 1, 1000),
        postgres_max_idle_conns=r.integer(inngest_raw, "postgresMaxIdleConns", 2, key("inngest"), 0, 1000),
        cpus=r.number(inngest_raw, "cpus", 1.0, key("inngest"), 0.1, 64),
        memory_mb=r.integer(inngest_raw, "memoryMb", 768, key("inngest"), 128, 262144),
        digest=_digest(r, inngest_raw, key("inngest")),
    )
    caddy_raw = r.section(raw, key("caddy"))
    r.unknown_keys(caddy_raw, {"cpus", "memoryMb", "digest"}, key("caddy"))
    caddy = CaddyConfig(
        cpus=r.number(caddy_raw, "cpus", 0.25, key("caddy"), 0.1, 64),
        memory_mb=r.integer(caddy_raw, "memoryMb", 128, key("caddy"), 64, 262144),
        digest=_digest(r, caddy_raw, key("caddy")),
    )
    redis_raw = r.section(raw, key("redis"))
    r.unknown_keys(redis_raw, {"cpus", "memoryMb", "digest"}, key("redis"))
    redis = RedisConfig(
        cpus=r.number(redis_raw, "cpus", 0.5, key("redis"), 0.1, 64),
        memory_mb=r.integer(redis_raw, "memoryMb", 256, key("redis"), 64, 262144),
        digest=_digest(r, redis_raw, key("redis")),
    )
    if inngest.postgres_max_idle_conns > inngest.postgres_max_open_conns:
        r.fail(f"{key('inngest')}.postgresMaxIdleConns", f"{inngest.postgres_max_idle_conns} is above postgresMaxOpenConns ({inngest.postgres_max_open_conns})", "keep idle connections at or below the open limit")

    app = _parse_app(r, raw, key)

    ranges_raw = raw.get(key("sshSourceRanges"), [])
    ssh_ranges: list[str] = []
    if not isinstance(ranges_raw, list):
        r.fail(key("sshSourceRanges"), "must be a list of CIDR ranges", f"set it with `pulumi config set --path '{key('sshSourceRanges')}[0]' 203.0.113.0/24`")
        ranges_raw = []
    for index, cidr in enumerate(ranges_raw):
        setting = f"{key('sshSourceRanges')}[{index}]"
        try:
            network = ipaddress.ip_network(str(cidr), strict=True)
        except ValueError:
            r.fail(setting, f"{cidr!r} is not a CIDR range", "write it as address/prefix with the host bits zero, e.g. 203.0.113.0/24")
            continue
        if network.prefixlen == 0:
            r.fail(setting, f"{cidr} opens SSH to the whole internet", "list only your office or VPN ranges; IAP (35.235.240.0/20) is always allowed")
            continue
        ssh_ranges.append(str(network))

    ssh_via = r.text(raw, key("sshVia"), key("sshVia"), "iap") or ""
    if ssh_via not in ("iap", "direct"):
        r.fail(key("sshVia"), f"{ssh_via!r} is not a way to reach the VM", "use iap (through Identity-Aware Proxy, the default) or direct")
    elif ssh_via == "direct" and not ssh_ranges:
        r.fail(key("sshVia"), "direct SSH needs your address in sshSourceRanges, or the firewall drops it", f"add your range with `pulumi config set --path '{key('sshSourceRanges')}[0]' 203.0.113.0/24`, or use iap")
    ssh_user = r.text(raw, key("sshUser"), key("sshUser")) or None
    if ssh_user is not None and not re.match(r"^[a-z_][a-z0-9_.-]{0,31}$", ssh_user):
        r.fail(key("sshUser"), f"{ssh_user!r} is not a POSIX user name", "use the username from `gcloud compute os-login describe-profile`")

    # An adopted instance's budget comes from its real tier, read by the program (infra/adopted.py).
    budget = connection_budget(tier) if existing is None else None
    if budget is not None and app is not None:
        wanted = app.db_pool_size + inngest.postgres_max_open_conns
        if wanted > budget:
            r.fail(
                f"{key('app')}.dbPoolSize + {key('inngest')}.postgresMaxOpenConns",
                f"the pools open {app.db_pool_size} + {inngest.postgres_max_open_conns} = {wanted} connections, "
                f"over the {budget} that tier {tier} allows (max_connections {tier_max_connections(tier)} less {RESERVED_CONNECTIONS} reserved)",
                "lower the pools, or pick a larger database.tier",
            )

    if problems or app is None:
        raise ConfigError(problems)
    return StackConfig(
        project=project or "",
        region=region,
        zone=zone,
        domain=domain,
        acme_email=acme_email,
        app=app,
        name=name,
        vm=vm,
        database=database,
        inngest=inngest,
        caddy=caddy,
        redis=redis,
        ssh_source_ranges=tuple(ssh_ranges),
        ssh_via=ssh_via,
        ssh_user=ssh_user,
    )


def _subnet_cidr(r: _Reader, vm_raw: Mapping[str, Any], where: str) -> str:
    default = VmConfig.subnet_cidr
    text = r.text(vm_raw, "subnetCidr", where, default) or default
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        r.fail(f"{where}.subnetCidr", f"{text!r} is not a CIDR range", "write it as address/prefix with the host bits zero, e.g. 10.10.0.0/24")
        return default
    if network.version != 4 or not network.is_private or not 8 <= network.prefixlen <= 29:
        r.fail(f"{where}.subnetCidr", f"{text} is not a private IPv4 range from /8 to /29", "use a free private range such as 10.10.0.0/24")
        return default
    return str(network)


def _parse_app(r: _Reader, raw: Mapping[str, Any], key) -> AppConfig | None:
    where = key("app")
    app_raw = r.section(raw, where)
    r.unknown_keys(app_raw, {"image", "command", "port", "healthPath", "env", "dbPoolSize", "exposeInngestEndpoint", "cpus", "memoryMb", "registry"}, where)
    image = r.text(app_raw, "image", where) or ""
    if not image:
        r.fail(f"{where}.image", "is required", f"run `pulumi config set --path '{where.split(':')[1]}.image' ghcr.io/acme/web:1.4.2`")
    elif not IMAGE_RE.match(image) or image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
        r.fail(f"{where}.image", f"{image!r} is not a pinned image reference", "give a registry path with an explicit tag or digest, e.g. ghcr.io/acme/web:1.4.2 (not :latest)")
    command = app_raw.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(part, str) and part for part in command):
        r.fail(f"{where}.command", "must be a non-empty list of strings (the process the image runs)", f"set it with `pulumi config set --path '{where.split(':')[1]}.command[0]' node` and so on, e.g. [\"node\", \"server.js\"]")
        command = []
    port = r.integer(app_raw, "port", 3000, where, 1, 65535)
    if port in (8288, 8289, 6379):
        r.fail(f"{where}.port", f"{port} is used by Inngest or Redis on the same network", "pick another port such as 3000")
    health_path = r.text(app_raw, "healthPath", where, "/") or "/"
    if not health_path.startswith("/") or any(ch.isspace() for ch in health_path):
        r.fail(f"{where}.healthPath", f"{health_path!r} is not an absolute URL path", "use a path such as /healthz")
    env_raw = app_raw.get("env", {}) or {}
    env: dict[str, str] = {}
    if not isinstance(env_raw, Mapping):
        r.fail(f"{where}.env", "must be an object of NAME: value", f"set entries with `pulumi config set --path '{where.split(':')[1]}.env.LOG_LEVEL' info`")
    else:
        for env_name, value in env_raw.items():
            if not ENV_NAME_RE.match(str(env_name)):
                r.fail(f"{where}.env.{env_name}", "is not a valid environment variable name", "use upper-case letters, digits and underscores")
            elif env_name in RESERVED_APP_ENV:
                r.fail(f"{where}.env.{env_name}", "is set by the kit itself", "remove it; the kit wires Inngest and the database for you")
            elif not isinstance(value, (str, int, float, bool)) or isinstance(value, Mapping):
                r.fail(f"{where}.env.{env_name}", "must be a plain value", "give a string")
            else:
                env[str(env_name)] = str(value).lower() if isinstance(value, bool) else str(value)
    secrets_raw = raw.get(key("appSecrets"), {}) or {}
    secret_names: list[str] = []
    if not isinstance(secrets_raw, Mapping):
        r.fail(key("appSecrets"), "must be an object of NAME: secret value", "set each with `pulumi config set --secret --path 'appSecrets.STRIPE_KEY' <value>`")
    else:
        for secret_name in sorted(secrets_raw):
            if not ENV_NAME_RE.match(str(secret_name)):
                r.fail(f"{key('appSecrets')}.{secret_name}", "is not a valid environment variable name", "use upper-case letters, digits and underscores")
            elif secret_name in RESERVED_APP_ENV:
                r.fail(f"{key('appSecrets')}.{secret_name}", "is set by the kit itself", "remove it")
            elif secret_name in env:
                r.fail(f"{key('appSecrets')}.{secret_name}", f"is also set as plain env {where}.env.{secret_name}", "keep it in one place only: secrets belong in appSecrets")
            else:
                secret_names.append(str(secret_name))
    registry_username = _parse_registry(r, raw, key, app_raw, image)
    if not command or not image:
        return None
    return AppConfig(
        image=image,
        command=tuple(command),
        port=port,
        health_path=health_path,
        env=env,
        secrets=tuple(secret_names),
        db_pool_size=r.integer(app_raw, "dbPoolSize", 5, where, 1, 1000),
        expose_inngest_endpoint=r.boolean(app_raw, "exposeInngestEndpoint", False, where),
        cpus=r.number(app_raw, "cpus", 1.0, where, 0.1, 64),
        memory_mb=r.integer(app_raw, "memoryMb", 512, where, 64, 262144),
        registry_username=registry_username,
    )


def _parse_registry(r: _Reader, raw: Mapping[str, Any], key, app_raw: Mapping[str, Any], image: str) -> str | None:
    """`app.registry.username` with the secret `registryToken`: both or neither, and neither for
    Artifact Registry, which the VM reads with its own service account."""
    where = f"{key('app')}.registry"
    registry_raw = r.section(app_raw, "registry")
    r.unknown_keys(registry_raw, {"username"}, where)
    username = r.text(registry_raw, "username", where) or None
    has_token = raw.get(key("registryToken")) not in (None, "")
    if username is not None and not re.match(r"^[^\s:]{1,255}$", username):
        r.fail(f"{where}.username", f"{username!r} is not a registry user name", "give the user name alone, with no spaces or colon")
    if image and artifact_repository(image) is not None and (username or has_token):
        r.fail(where, f"{image} is in Artifact Registry, which the VM reads with its own service account (no key, no token)", f"remove {where} and {key('registryToken')}")
        return None
    if username and not has_token:
        r.fail(key("registryToken"), f"is required with {where}.username", f"run `pulumi config set --secret {key('registryToken')} <token>` with a read-only token for {login_server(image) if image else 'the registry'}")
    elif has_token and not username:
        r.fail(f"{where}.username", f"is required with {key('registryToken')}", f"run `pulumi config set --path '{where.split(':')[1]}.username' <user>`")
    return username if has_token else None
