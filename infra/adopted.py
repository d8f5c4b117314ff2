"""An adopted Cloud SQL instance, as read at preview (`gcp.sql.get_database_instance`), and the pure
decisions taken from it: how the VM reaches the instance, and the connection budget of its real tier.

How the VM reaches it (README, "Adopting an existing Cloud SQL instance"):
- the instance has a private IP: the VM joins the instance's own VPC (a subnet and the kit's firewall
  rules are created there). VPC peering is not transitive, so a VM in the kit's own VPC could never
  reach a private IP that sits in the peering of another VPC. The connection is direct, TLS with
  `verify-ca` against the instance's server CA.
- only a public IP: the VM stays in the kit's own VPC and the stack runs Google's Cloud SQL Auth
  Proxy (infra/sql_proxy.py), which authorizes with the VM's service account: no authorized network
  is needed, and none is added.
- an instance that demands client certificates (ssl_mode TRUSTED_CLIENT_CERTIFICATE_REQUIRED) refuses
  a plain TLS client: the Auth Proxy, which presents one, serves it (over the private IP from inside
  the instance's VPC when it has one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from infra.config import MEMORY_MAX_CONNECTIONS, NAMESPACE, RESERVED_CONNECTIONS, ConfigError, tier_max_connections

VIA_PRIVATE_NETWORK = "private-network"
VIA_AUTH_PROXY = "auth-proxy"
VIA_PRIVATE_AUTH_PROXY = "private-network-auth-proxy"
VIA_KIT_NETWORK = "kit-network"  # a new instance: private IP through the kit's own VPC and PSA

CLIENT_CERTIFICATES_REQUIRED = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
NETWORK_RE = re.compile(r"^(?:https://www\.googleapis\.com/compute/v1/)?projects/([^/]+)/global/networks/([^/]+)$")
# Legacy tiers still common on older instances: memory per vCPU (Cloud SQL "Machine series" docs).
_N1_MEMORY_MB = {"standard": 3840, "highmem": 6656}
_N1_TIER_RE = re.compile(r"^db-n1-(standard|highmem)-(\d+)$")
_SETTING = f"{NAMESPACE}:database.existingInstance"


@dataclass(frozen=True)
class AdoptedInstance:
    name: str
    connection_name: str
    region: str
    tier: str
    database_version: str
    private_ip: str  # "" when none
    public_ip: str  # "" when none
    private_network: str  # projects/<p>/global/networks/<n>, "" when no private IP
    authorized_networks: tuple[str, ...]
    server_ca_pem: str  # every current server CA certificate, PEM, concatenated
    max_connections_flag: int | None  # the instance's `max_connections` database flag, if set
    ssl_mode: str = ""  # settings.ipConfiguration.sslMode


@dataclass(frozen=True)
class DatabaseReach:
    via: str  # one of the VIA_* names
    address: str  # what the drivers connect to: an IP, or "" through the proxy
    network: str  # the VPC the VM joins: "" for the kit's own
    proxy_instance: str  # the connection name the proxy serves, "" when direct
    description: str  # one sentence for the plan and the stack output
    proxy_private_ip: bool = False  # the proxy dials the private IP (`--private-ip`)


def _get(source: Any, name: str, default: Any = None) -> Any:
    # Attributes on pulumi-gcp's result types; plain dicts in the pure tests.
    value = getattr(source, name, None)
    if value is None and isinstance(source, dict):
        value = source.get(name)
    return default if value is None else value


def from_invoke(result: Any) -> AdoptedInstance:
    """Reads the fields the kit needs from a GetDatabaseInstanceResult (pulumi-gcp)."""
    settings = (_get(result, "settings", []) or [{}])[0]
    ip_config = (_get(settings, "ip_configurations", []) or [{}])[0]
    addresses = _get(result, "ip_addresses", [])

    def first(kind: str) -> str:
        return next((_get(a, "ip_address", "") for a in addresses if _get(a, "type") == kind), "")

    flags = {_get(f, "name"): _get(f, "value") for f in _get(settings, "database_flags", [])}
    max_connections = flags.get("max_connections")
    certs = [_get(c, "cert", "").strip() for c in _get(result, "server_ca_certs", []) if _get(c, "cert")]
    return AdoptedInstance(
        name=_get(result, "name", ""),
        connection_name=_get(result, "connection_name", ""),
        region=_get(result, "region", ""),
        tier=_get(settings, "tier", ""),
        database_version=_get(result, "database_version", ""),
        private_ip=_get(result, "private_ip_address", "") or first("PRIVATE"),
        public_ip=_get(result, "public_ip_address", "") or first("PRIMARY"),
        private_network=_get(ip_config, "private_network", ""),
        authorized_networks=tuple(_get(n, "value", "") for n in _get(ip_config, "authorized_networks", [])),
        server_ca_pem="\n".join(certs) + ("\n" if certs else ""),
        max_connections_flag=int(max_connections) if max_connections and str(max_connections).isdigit() else None,
        ssl_mode=_get(ip_config, "ssl_mode", ""),
    )


def choose_reach(instance: AdoptedInstance, project: str) -> DatabaseReach:
    """Private IP first (the VM joins that VPC), else the Auth Proxy over the public IP."""
    if instance.private_ip and instance.private_network:
        match = NETWORK_RE.match(instance.private_network)
        if not match:
            raise ConfigError([f"{_SETTING}: instance {instance.name!r} names its network {instance.private_network!r}, which the kit cannot read. Fix: report it; the kit expects projects/<project>/global/networks/<name>."])
        network_project, network_name = match.groups()
        if network_project != project:
            if instance.public_ip:
                return _through_proxy(instance, f"its private IP is on network {network_name} of project {network_project} (Shared VPC), where the kit places no VM")
            raise ConfigError([
                f"{_SETTING}: instance {instance.name!r} has only a private IP, on network {network_name} of project {network_project} (Shared VPC), "
                f"and the kit places its VM in project {project}. Fix: enable the instance's public IP (no authorized network needed: the kit then "
                "connects through the Cloud SQL Auth Proxy with the VM's service account), or deploy the kit in a service project attached to that Shared VPC."
            ])
        network = f"projects/{network_project}/global/networks/{network_name}"
        if instance.ssl_mode == CLIENT_CERTIFICATES_REQUIRED:
            return DatabaseReach(
                via=VIA_PRIVATE_AUTH_PROXY,
                address="",
                network=network,
                proxy_instance=instance.connection_name,
                proxy_private_ip=True,
                description=(
                    f"Cloud SQL Auth Proxy to {instance.connection_name} over private IP {instance.private_ip}: the VM joins the instance's network "
                    f"{network_name} (VPC peering is not transitive), and the instance demands client certificates, which the proxy presents"
                ),
            )
        return DatabaseReach(
            via=VIA_PRIVATE_NETWORK,
            address=instance.private_ip,
            network=network,
            proxy_instance="",
            description=(
                f"direct to private IP {instance.private_ip}: the VM joins the instance's network {network_name} "
                "(VPC peering is not transitive), TLS verify-ca against the instance's server CA"
            ),
        )
    if instance.public_ip:
        return _through_proxy(instance, "it has no private IP")
    raise ConfigError([f"{_SETTING}: instance {instance.name!r} has neither a private nor a public IPv4 address (Private Service Connect only?). Fix: enable its private IP or its public IP."])


def _through_proxy(instance: AdoptedInstance, why: str) -> DatabaseReach:
    if instance.ssl_mode == CLIENT_CERTIFICATES_REQUIRED:
        why += "; it demands client certificates, which the proxy presents"
    return DatabaseReach(
        via=VIA_AUTH_PROXY,
        address="",
        network="",
        proxy_instance=instance.connection_name,
        description=(
            f"Cloud SQL Auth Proxy to {instance.connection_name} over its public IP ({why}): "
            "the proxy authorizes with the VM's service account (roles/cloudsql.client) and verifies the server; no authorized network is added"
        ),
    )


def new_instance_reach(private_ip: str = "") -> DatabaseReach:
    return DatabaseReach(
        via=VIA_KIT_NETWORK,
        address=private_ip,
        network="",
        proxy_instance="",
        description="direct to the new instance's private IP through the kit's VPC and Private Service Access, TLS verify-ca against the instance's server CA",
    )


def max_connections(instance: AdoptedInstance) -> int | None:
    """The instance's real max_connections: its database flag, else Cloud SQL's default for its tier."""
    if instance.max_connections_flag is not None:
        return instance.max_connections_flag
    known = tier_max_connections(instance.tier)
    if known is not None:
        return known
    match = _N1_TIER_RE.match(instance.tier)
    if match:
        memory_mb = _N1_MEMORY_MB[match.group(1)] * int(match.group(2))
        return next((connections for below, connections in MEMORY_MAX_CONNECTIONS if memory_mb < below), 1000)
    return None


def adopted_budget(instance: AdoptedInstance, app_pool: int, inngest_pool: int) -> int:
    """The connection budget of the adopted instance; raises ConfigError when the pools do not fit."""
    limit = max_connections(instance)
    if limit is None:
        raise ConfigError([
            f"{_SETTING}: instance {instance.name!r} has tier {instance.tier!r}, whose default max_connections the kit does not know. "
            "Fix: set the instance's max_connections database flag (gcloud sql instances patch NAME --database-flags=max_connections=N), which the kit reads."
        ])
    budget = limit - RESERVED_CONNECTIONS
    wanted = app_pool + inngest_pool
    if wanted > budget:
        raise ConfigError([
            f"{NAMESPACE}:app.dbPoolSize + {NAMESPACE}:inngest.postgresMaxOpenConns: the pools open {app_pool} + {inngest_pool} = {wanted} connections, "
            f"over the {budget} that the adopted instance {instance.name!r} allows (max_connections {limit} of its tier {instance.tier}, less {RESERVED_CONNECTIONS} reserved). "
            "Fix: lower the pools; other clients of a shared instance need connections too."
        ])
    return budget
