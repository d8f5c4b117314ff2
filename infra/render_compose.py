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
    REDIS_ACL_FILE,
    REDIS_GID,
    REDIS_HEALTH_USER,
    REDIS_IMAGE,
    REDIS_UID,
    SERVER_CA_FILE,
    SYNC_PORT,
    redis_maxmemory_mb,
)
from infra.sql_proxy import PROXY_SERVICE, add_proxy


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


# Each service's own tmpfs directory (written by fetch-secrets.sh) goes in through Compose's own
# `secrets:`, which Compose (without Swarm) bind-mounts read-only (docker/compose v2.40.3,
# pkg/compose/create.go, buildContainerSecretMounts). A whole directory rather than one secret per
# file: the set of files changes during a rotation (a fallback key, a second event key), and
# fetch-secrets.sh replaces files by rename, which a running container sees only in a mounted directory.
SECRETS_OF = {"app": "app-secrets", "inngest": "inngest-secrets", "redis": "redis-secrets"}


def _secrets(service: str) -> list[dict[str, str]]:
    return [{"source": SECRETS_OF[service], "target": CONTAINER_SECRETS_DIR}]


def _image(image: str, digest: str | None) -> str:
    return f"{image}@{digest}" if digest else image


# Hardening shared by every service (compose-lint CL-0003, CL-0006): no process may gain privileges
# through a setuid binary or file capabilities, and no service keeps Docker's default capabilities;
# each adds back only what it needs. What compose-lint still reports is in
# tests/render/test_compose_lint.py, each finding with its reason.
def _hardened(cap_add: list[str] | None = None) -> dict[str, Any]:
    hardening: dict[str, Any] = {"security_opt": ["no-new-privileges:true"], "cap_drop": ["ALL"]}
    if cap_add:
        hardening["cap_add"] = cap_add
    return hardening


# During start_period the engine probes every start_interval, so a service counts as healthy about a
# second after it is, not after the first 15 s interval (Docker Engine 25+, API 1.44: the VM pins 28;
# compose refuses the field on older engines).
def _healthcheck(test: list[str], start_period: str) -> dict[str, Any]:
    return {"test": test, "interval": "15s", "timeout": "5s", "retries": 3, "start_period": start_period, "start_interval": "1s"}


def compose_model(config: StackConfig) -> dict[str, Any]:
    app, inngest = config.app, config.inngest
    services: dict[str, Any] = {
        "caddy": {
            "image": _image(CADDY_IMAGE, config.caddy.digest),
            "restart": RESTART,
            # The public edge: published on every address on purpose (compose-lint CL-0005). The VPC
            # firewall admits 80 and 443 only, and Docker's published ports bypass no firewall on GCE:
            # the firewall sits outside the VM.
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
            # Runs as root in its image; binding 80 and 443 is the one privilege it needs. It writes
            # only to /data and /config (the data disk), so the image itself stays read-only.
            **_hardened(["NET_BIND_SERVICE"]),
            "read_only": True,
            "tmpfs": ["/tmp"],
            "cpus": config.caddy.cpus,
            "mem_limit": f"{config.caddy.memory_mb}m",
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
            ],
            "secrets": _secrets("app"),
            "healthcheck": _healthcheck(["CMD", "/bin/sh", _kit(APP_HEALTHCHECK)], "30s"),
            "restart": RESTART,
            # The app's port is above 1024 and its wrapper reads world-readable files, so it needs no
            # capability. Its root filesystem stays writable: the image is the user's, and whether it
            # writes outside /tmp is not ours to know (compose-lint CL-0007 is low).
            **_hardened(),
            "cpus": app.cpus,
            "mem_limit": f"{app.memory_mb}m",
            "logging": _logging(),
        },
        "inngest": {
            "image": inngest.image,  # with inngest.digest when set
            # `inngest start` with the keys as flags, read from the secret files at start.
            "entrypoint": ["/bin/sh", _kit(INNGEST_START)],
            "ports": [f"127.0.0.1:{layout.INNGEST_PORT}:{layout.INNGEST_PORT}"],  # dashboard: SSH tunnel only
            "volumes": [
                f"{_current(INNGEST_START)}:{_kit(INNGEST_START)}:ro",
            ],
            "secrets": _secrets("inngest"),
            "depends_on": {"redis": {"condition": "service_healthy"}},
            # Runs as root in its image and reads its secret files as their owner; it listens above
            # 1024 and needs no capability. The root filesystem stays writable: the server's writes
            # outside Postgres and Redis are not documented (compose-lint CL-0007 is low).
            **_hardened(),
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
            "image": _image(REDIS_IMAGE, config.redis.digest),
            # Started as the image's own redis user: its entrypoint, started as root, chowns /data and
            # switches user with gosu, which needs CHOWN, SETUID and SETGID (docker-library/redis,
            # docker-entrypoint.sh); started as that user it skips both and needs no capability.
            # fetch-secrets.sh gives the data and secrets directories to this uid.
            "user": f"{REDIS_UID}:{REDIS_GID}",
            "command": redis_command(config),
            "volumes": [f"{layout.REDIS_DIR}:/data"],
            "secrets": _secrets("redis"),
            # A user that may only PING: the probe needs no password (templates/fetch-secrets.sh.j2).
            "healthcheck": _healthcheck(
                ["CMD-SHELL", f"redis-cli --no-auth-warning --user {REDIS_HEALTH_USER} --pass {REDIS_HEALTH_USER} ping | grep -q PONG"], "10s"
            ),
            "restart": RESTART,
            **_hardened(),
            "read_only": True,  # writes only to /data
            "cpus": config.redis.cpus,
            "mem_limit": f"{config.redis.memory_mb}m",
            "logging": _logging(),
        },
    }
    secrets = {SECRETS_OF[service]: {"file": _secrets_dir(service)} for service in SECRETS_OF}
    return {"name": layout.COMPOSE_PROJECT, "services": services, "secrets": secrets}


def redis_command(config: StackConfig) -> list[str]:
    """Redis as Inngest's queue: append-only file on the data disk, never evict, a password per ACL."""
    return [
        "redis-server",
        # Append-only file on the data disk: queue and run state survive restarts.
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        # A queue must never lose a key to make room: when full, Redis refuses writes instead.
        "--maxmemory", f"{redis_maxmemory_mb(config.redis.memory_mb)}mb",
        "--maxmemory-policy", "noeviction",
        # Users and password hashes (never a password) from the redis service's tmpfs directory.
        "--aclfile", f"{CONTAINER_SECRETS_DIR}/{REDIS_ACL_FILE}",
    ]


DATABASE_CLIENTS = ("app", "inngest")
PROXY_CPUS = 0.25
PROXY_MEMORY = "128m"


def add_database_access(model: dict[str, Any], sql_proxy_instance: str = "", sql_proxy_private_ip: bool = False) -> None:
    """How the database clients reach Cloud SQL: the instance's server CA mounted read-only, or,
    for an instance with only a public IP, the Cloud SQL Auth Proxy as a service (infra/sql_proxy.py)."""
    if sql_proxy_instance:
        add_proxy(model, sql_proxy_instance, DATABASE_CLIENTS, _logging(), sql_proxy_private_ip)
        # Hardened like the others: its distroless image runs as a non-root user, listens above 1024
        # and writes nothing to disk (its certificates stay in memory), so no capability, a read-only
        # image, and limits for a small Go process.
        model["services"][PROXY_SERVICE].update({**_hardened(), "read_only": True, "tmpfs": ["/tmp"], "cpus": PROXY_CPUS, "mem_limit": PROXY_MEMORY})
        return
    for client in DATABASE_CLIENTS:
        model["services"][client]["volumes"].append(f"{_current(SERVER_CA_FILE)}:{CONTAINER_SERVER_CA}:ro")


def compose_file(config: StackConfig, sql_proxy_instance: str = "", sql_proxy_private_ip: bool = False) -> str:
    header = "# Rendered by inngest-kit; the next deploy replaces it. Secret values are never in this file.\n"
    model = compose_model(config)
    add_database_access(model, sql_proxy_instance, sql_proxy_private_ip)
    return header + yaml.safe_dump(model, sort_keys=False, default_flow_style=False, width=1000)
