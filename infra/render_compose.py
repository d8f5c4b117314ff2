"""The docker-compose.yml of a release, built as a dict and dumped with PyYAML (never string-built).

Files whose content compose cannot see (the Caddyfile, the scripts run inside containers) are
mounted from `/srv/kit/current/...`, an absolute path through the `current` symlink, not relative
to the release directory: the compose model then stays the same from release to release (so a
deploy recreates only what really changed), and restarting a service re-resolves the symlink and
picks up the new file. The deploy therefore switches `current` before `docker compose up`.
"""

from __future__ import annotations

from typing import Any

import yaml

from infra import layout
from infra.config import StackConfig
from infra.render import (
    APP_ENV_FILE,
    APP_HEALTHCHECK,
    APP_WRAPPER,
    CADDY_IMAGE,
    CADDYFILE,
    CONTAINER_KIT_DIR,
    CONTAINER_SECRETS_DIR,
    CONTAINER_SERVER_CA,
    INNGEST_START,
    REDIS_IMAGE,
    SERVER_CA_FILE,
    SYNC_PORT,
)
from infra.sql_proxy import add_proxy


# json-file with local rotation, shipped to Cloud Logging by the Google Ops Agent on the VM.
# Not the gcplogs driver: it pings Cloud Logging when a container starts and refuses to start the
# container when that fails, so a Logging API hiccup or a missing role would take the app down.
# `tag` adds the container name to every line, so the agent can label entries by service.
def _logging() -> dict[str, Any]:
    return {"driver": "json-file", "options": {"max-size": "10m", "max-file": "5", "tag": "{{.Name}}"}}

RESTART = "unless-stopped"


def _current(name: str) -> str:
    return f"{layout.CURRENT_LINK}/{name}"


def _kit(name: str) -> str:
    return f"{CONTAINER_KIT_DIR}/{name}"


def _secrets_dir(service: str) -> str:
    return f"{layout.SECRETS_DIR}/{service}"


# During start_period the engine probes every start_interval, so a service counts as healthy about a
# second after it is, not after the first 15 s interval (Docker Engine 25+, API 1.44: the VM pins 28;
# compose refuses the field on older engines).
def _healthcheck(test: list[str], start_period: str) -> dict[str, Any]:
    return {"test": test, "interval": "15s", "timeout": "5s", "retries": 3, "start_period": start_period, "start_interval": "1s"}


def compose_model(config: StackConfig) -> dict[str, Any]:
    app, inngest = config.app, config.inngest
    services: dict[str, Any] = {
        "caddy": {
            "image": CADDY_IMAGE,
            "restart": RESTART,
            "ports": ["80:80", "443:443", "443:443/udp", f"127.0.0.1:{SYNC_PORT}:{SYNC_PORT}"],
            "volumes": [
                f"{_current(CADDYFILE)}:/etc/caddy/Caddyfile:ro",
                f"{layout.CADDY_DATA_DIR}:/data",  # certificates and ACME account survive the VM
                f"{layout.CADDY_CONFIG_DIR}:/config",
            ],
            "depends_on": {"app": {"condition": "service_started"}},
            # The admin endpoint answers inside the container once the config is loaded; the
            # alpine image has busybox wget.
            "healthcheck": _healthcheck(["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:2019/config/"], "10s"),
            "logging": _logging(),
        },
        "app": {
            "image": app.image,
            # The wrapper exports the secret files as variables, then execs the command, so no
            # value is in the container's config (docker inspect). Overriding the entrypoint
            # clears the image's CMD, hence the configured command.
            "entrypoint": ["/bin/sh", _kit(APP_WRAPPER)],
            # `$$` is compose's literal dollar: compose would otherwise substitute the deploy host's variables.
            "command": [part.replace("$", "$$") for part in app.command],
            "env_file": [APP_ENV_FILE],
            "volumes": [
                f"{_current(APP_WRAPPER)}:{_kit(APP_WRAPPER)}:ro",
                f"{_current(APP_HEALTHCHECK)}:{_kit(APP_HEALTHCHECK)}:ro",
                f"{_secrets_dir('app')}:{CONTAINER_SECRETS_DIR}:ro",
            ],
            "healthcheck": _healthcheck(["CMD", "/bin/sh", _kit(APP_HEALTHCHECK)], "30s"),
            "restart": RESTART,
            "cpus": app.cpus,
            "mem_limit": f"{app.memory_mb}m",
            "logging": _logging(),
        },
        "inngest": {
            "image": inngest.image,
            # `inngest start` with the keys as flags, read from the secret files at start.
            "entrypoint": ["/bin/sh", _kit(INNGEST_START)],
            "ports": [f"127.0.0.1:{layout.INNGEST_PORT}:{layout.INNGEST_PORT}"],  # dashboard: SSH tunnel only
            "volumes": [
                f"{_current(INNGEST_START)}:{_kit(INNGEST_START)}:ro",
                f"{_secrets_dir('inngest')}:{CONTAINER_SECRETS_DIR}:ro",
            ],
            "depends_on": {"redis": {"condition": "service_healthy"}},
            # The image has no curl; this subcommand probes GET /health on 127.0.0.1:8288
            # (cmd/doctor/healthcheck in inngest/inngest, present since v1.19.3).
            "healthcheck": _healthcheck(["CMD", "inngest", "alpha", "doctor", "healthcheck", "--skip-connect-gateway"], "60s"),
            "restart": RESTART,
            # Time to finish in-flight steps before the kill.
            "stop_grace_period": "30s",
            "cpus": inngest.cpus,
            "mem_limit": f"{inngest.memory_mb}m",
            "logging": _logging(),
        },
        "redis": {
            "image": REDIS_IMAGE,
            # Append-only file on the data disk: queue and run state survive restarts.
            "command": ["redis-server", "--appendonly", "yes", "--appendfsync", "everysec"],
            "volumes": [f"{layout.REDIS_DIR}:/data"],
            "healthcheck": _healthcheck(["CMD-SHELL", "redis-cli ping | grep -q PONG"], "10s"),
            "restart": RESTART,
            "logging": _logging(),
        },
    }
    return {"name": layout.COMPOSE_PROJECT, "services": services}


DATABASE_CLIENTS = ("app", "inngest")


def add_database_access(model: dict[str, Any], sql_proxy_instance: str = "", sql_proxy_private_ip: bool = False) -> None:
    """How the database clients reach Cloud SQL: the instance's server CA mounted read-only, or,
    for an instance with only a public IP, the Cloud SQL Auth Proxy as a service (infra/sql_proxy.py)."""
    if sql_proxy_instance:
        add_proxy(model, sql_proxy_instance, DATABASE_CLIENTS, _logging(), sql_proxy_private_ip)
        return
    for client in DATABASE_CLIENTS:
        model["services"][client]["volumes"].append(f"{_current(SERVER_CA_FILE)}:{CONTAINER_SERVER_CA}:ro")


def compose_file(config: StackConfig, sql_proxy_instance: str = "", sql_proxy_private_ip: bool = False) -> str:
    header = "# Rendered by inngest-kit; the next deploy replaces it. Secret values are never in this file.\n"
    model = compose_model(config)
    add_database_access(model, sql_proxy_instance, sql_proxy_private_ip)
    return header + yaml.safe_dump(model, sort_keys=False, default_flow_style=False, width=1000)
