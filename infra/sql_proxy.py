"""Google's Cloud SQL Auth Proxy as a service of the stack, for an adopted instance that has only a
public IP. Pure: the compose service as a dict.

Why the proxy there: a public-IP-only instance with no authorized networks refuses a direct
connection from the VM, and authorizing the VM's address would open the instance to that address
with nothing but a password. The proxy instead connects with the VM's own service account
(`roles/cloudsql.client`, granted in infra/components/vm.py) over mutual TLS whose certificates it
obtains from the Cloud SQL Admin API, and verifies the server against the instance's CA. So the
path that leaves the VM is encrypted and verified; the app and Inngest reach the proxy over the
stack's private bridge network, unencrypted (`sslmode=disable`), which is the proxy's documented use.

Verified against GoogleCloudPlatform/cloud-sql-proxy v2.25.3:
- `cmd/root.go`: `--address` (default 127.0.0.1: only the container itself), `--port`, `--health-check`
  (endpoints /startup, /liveness, /readiness on `--http-address`:`--http-port`, default
  localhost:9090), `--structured-logs`, and the `wait` subcommand, which polls
  http://localhost:9090/startup until `--max`.
- `Dockerfile`: distroless, `ENTRYPOINT ["/cloud-sql-proxy"]`, user 65532; no shell, so the health
  check runs the proxy binary's own `wait`.
- README, "Credentials": Application Default Credentials, i.e. the VM's service account through the
  metadata server; the VM's `cloud-platform` scope covers `sqlservice.admin`.
"""

from __future__ import annotations

import re
from typing import Any

PROXY_VERSION = "2.25.3"
PROXY_IMAGE = f"gcr.io/cloud-sql-connectors/cloud-sql-proxy:{PROXY_VERSION}"
PROXY_SERVICE = "cloudsql-proxy"
PROXY_PORT = 5432
# `project:region:instance`; a domain-scoped project id carries one more colon (example.com:project).
CONNECTION_NAME_RE = re.compile(r"^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]:[a-z]+-[a-z]+\d+:[a-z][a-z0-9-]{0,96}$")


def proxy_command(connection_name: str, private_ip: bool = False) -> list[str]:
    """The proxy's arguments (its image's entry point is the binary). `--private-ip` dials the
    instance's private IP instead of its public one (the default)."""
    return [
        # Listen on the stack's network, not only inside the container.
        "--address", "0.0.0.0",
        "--port", str(PROXY_PORT),
        # /startup for the compose health check (the `wait` subcommand polls it).
        "--health-check",
        # One JSON object per line, which the Ops Agent ships to Cloud Logging.
        "--structured-logs",
        *(["--private-ip"] if private_ip else []),
        connection_name,
    ]  # fmt: skip


def proxy_service(connection_name: str, logging: dict[str, Any], private_ip: bool = False) -> dict[str, Any]:
    return {
        "image": PROXY_IMAGE,
        "command": proxy_command(connection_name, private_ip),
        "healthcheck": {
            "test": ["CMD", "/cloud-sql-proxy", "wait", "--max", "5s"],
            "interval": "15s",
            "timeout": "10s",
            "retries": 3,
            "start_period": "10s",
        },
        "restart": "unless-stopped",
        "logging": logging,
    }


def add_proxy(model: dict[str, Any], connection_name: str, clients: tuple[str, ...], logging: dict[str, Any], private_ip: bool = False) -> None:
    """Adds the proxy to a compose model, and makes each client service wait until it is up."""
    services = model["services"]
    services[PROXY_SERVICE] = proxy_service(connection_name, logging, private_ip)
    for client in clients:
        depends = services[client].setdefault("depends_on", {})
        depends[PROXY_SERVICE] = {"condition": "service_healthy"}
