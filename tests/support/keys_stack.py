"""A deployed stack for the keys CLI tests: real sshd as the VM, real rendered fetch-secrets.sh, real
Secret Manager client against the in-process fake, real curl; stand-ins only where no real part runs.

On the "VM" (a directory below the sshd fixture's root, reached over SSH):
- the release rendered by infra/render.py (docker-compose.yml, fetch-secrets.sh, ...) at /srv/kit/current;
- `gcloud` is a STAND-IN (shell script) for `gcloud secrets versions access`: it asks an HTTP sidecar in
  the test process, which reads the version with the real client from the fake Secret Manager, so
  "a disabled version cannot be accessed" holds for the VM too;
- `docker` is the recording STAND-IN (tests/support/fake_docker.py), wrapped so that each successful
  `compose up`/`restart` of a service also records the fingerprints of that service's secret files:
  the timeline of which key each side held;
- Inngest's /health and Caddy's sync listener are answered by a small HTTP server that judges from that
  timeline whether the server's signing key is among the app's keys, as a real sync would.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
from google.api_core import exceptions as api_exceptions

from infra import naming
from infra.config import parse_config
from infra.keys import cli
from infra.keys.database import DatabaseUsers
from infra.keys.vm_commands import Endpoints
from infra.plan.mocks import STAND_IN_SERVER_CA
from infra.remote import ssh
from infra.remote.vm import Vm, VmPaths, VmTools
from infra.render import RenderInputs, SecretRef, render_stack
from tests.support.fake_docker import FakeDocker
from tests.support.fake_secretmanager import FakeSecretManager

PROJECT = "acme-web-prod"
PREFIX = "acme"
SECRET_IDS = {logical: f"{PREFIX}-{logical}" for logical in naming.KIT_SECRETS}
SQL_CONNECTION = f"{PROJECT}:us-central1:{PREFIX}-pg"
INITIAL_VALUES = {
    naming.SIGNING_KEY: "ab" * 32,
    naming.EVENT_KEY: "InitialEventKey0123456789abcdefghijklmnop",
    naming.DB_APP_PASSWORD: "Initial-app-password-0123456789",
    naming.DB_INNGEST_PASSWORD: "Initial-inngest-password-012345",
    naming.REDIS_PASSWORD: "Initial-redis-password-0123456",
}

GCLOUD_STANDIN = """#!/bin/sh
# STAND-IN for `gcloud secrets versions access VERSION --secret=ID --project=P` (tests only): the value
# on stdout, gcloud's kind of error message on stderr.
version=$4
secret=${5#--secret=}
body=$(mktemp)
status=$(curl -sS -o "$body" -w '%{http_code}' --max-time 10 "http://127.0.0.1:{port}/access?secret=$secret&version=$version") || { rm -f "$body"; exit 1; }
if [ "$status" = 200 ]; then
	cat "$body"
	rm -f "$body"
	exit 0
fi
cat "$body" >&2
rm -f "$body"
exit 1
"""

DOCKER_WRAPPER = """#!{python}
# Wraps the recording docker STAND-IN: after a successful `compose up`/`restart` of named services,
# records the fingerprints of each one's secret files (tests only).
import sys
sys.path.insert(0, {repo!r})
from tests.support.keys_docker import docker_wrapper_main
sys.exit(docker_wrapper_main(sys.argv[1:], {docker_dir!r}, {secrets_dir!r}, {timeline!r}))
"""


def fingerprint_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


@dataclass
class Held:
    """What each side holds after one restart, as fingerprints."""

    app: dict[str, str]
    inngest: dict[str, str]
    redis_accepted: tuple[str, ...] = ()  # fingerprints of the passwords Redis accepts (tests/support/keys_docker.py)

    @property
    def app_signing(self) -> set[str]:
        return {self.app[name] for name in ("INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK") if name in self.app}

    @property
    def server_signing(self) -> str | None:
        return self.inngest.get("signing-key")

    @property
    def server_event_keys(self) -> set[str]:
        return {fp for name, fp in self.inngest.items() if name.startswith("event-key-")}

    def signing_agrees(self) -> bool:
        return self.server_signing in self.app_signing

    def event_accepted(self) -> bool:
        return self.app.get("INNGEST_EVENT_KEY") in self.server_event_keys

    def redis_accepts_server(self) -> bool:
        return self.inngest.get("redis-password") in self.redis_accepted


def read_timeline(path: Path) -> list[Held]:
    """Every moment of the stack: the state after each restart, starting from the first deploy."""
    held: dict[str, dict[str, str]] = {}
    accepted: tuple[str, ...] = ()
    moments = []
    if not path.exists():
        return moments
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["service"] == "redis":
            accepted = tuple(record["accepted"])
        else:
            held[record["service"]] = record["files"]
        if "app" in held and "inngest" in held:
            moments.append(Held(dict(held["app"]), dict(held["inngest"]), accepted))
    return moments


class _AccessSidecar(ThreadingHTTPServer):
    daemon_threads = True


class RecordingDatabaseUsers:
    """Recording fake of the Cloud SQL Admin edge: keeps each user's password (tests only)."""

    def __init__(self, initial: dict[str, str]):
        self.passwords = dict(initial)
        self.calls: list[tuple[str, str, str]] = []  # (instance, user, fingerprint)
        self.fail_next = 0

    def set_password(self, instance: str, user: str, password: str) -> None:
        if self.fail_next:
            self.fail_next -= 1
            from infra.keys.database import DatabaseError

            raise DatabaseError(f"injected Cloud SQL failure for {user!r}")
        self.calls.append((instance, user, fingerprint_bytes(password.encode())))
        self.passwords[user] = password


class RecordingDatabaseRoles:
    """Recording fake of the edge that runs the login roles' SQL on the VM (tests only; the SQL itself
    runs against a real PostgreSQL in tests/keys/test_db_roles_postgres.py)."""

    def __init__(self):
        self.calls: list[tuple[str, str, str]] = []  # (service, owner, database)
        self.fail_next = 0

    def ensure(self, service: str, owner: str, database: str) -> None:
        if self.fail_next:
            self.fail_next -= 1
            from infra.keys.database import DatabaseError

            raise DatabaseError(f"injected failure of the roles SQL for {owner!r}")
        self.calls.append((service, owner, database))


@dataclass
class KeysStack:
    root: Path  # the VM's root directory (VmPaths(root=...))
    work: Path  # test-side files (stand-ins, timeline)
    sm: FakeSecretManager
    docker: FakeDocker
    vm: Vm
    endpoints: Endpoints
    target: ssh.SshTarget
    database: RecordingDatabaseUsers
    timeline_path: Path
    health_failures: dict[str, int] = field(default_factory=lambda: {"health": 0, "sync": 0})
    stdout: io.StringIO = field(default_factory=io.StringIO)
    stderr: io.StringIO = field(default_factory=io.StringIO)
    servers: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    on_step: object = None
    clock: object = None
    sleeps: list = field(default_factory=list)
    roles: RecordingDatabaseRoles = field(default_factory=RecordingDatabaseRoles)

    _client: object = None

    @property
    def client(self):
        """One real client for the test side (the sidecar, the helpers, the CLI): channels are costly."""
        if self._client is None:
            self._client = self.sm.client()
        return self._client

    # --- observation helpers ----------------------------------------------------------------------

    def secret_name(self, logical: str) -> str:
        return f"projects/{PROJECT}/secrets/{SECRET_IDS[logical]}"

    def states(self, logical: str) -> dict[int, str]:
        return self.sm.version_states(self.secret_name(logical))

    def aliases(self, logical: str) -> dict[str, int]:
        return dict(self.client.get_secret(name=self.secret_name(logical)).version_aliases)

    def annotations(self, logical: str) -> dict[str, str]:
        return dict(self.client.get_secret(name=self.secret_name(logical)).annotations)

    def value(self, logical: str, number: int) -> bytes | None:
        return self.sm.payload(self.secret_name(logical), number)

    def timeline(self) -> list[Held]:
        return read_timeline(self.timeline_path)

    def versions_file(self) -> str | None:
        path = Path(self.vm.paths.data) / "secret-versions.env"
        return path.read_text() if path.exists() else None

    def audit_lines(self) -> list[dict]:
        path = Path(self.vm.paths.audit_log)
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def every_value(self) -> list[str]:
        """Every secret value ever stored, to assert none is printed."""
        values = []
        for logical in naming.KIT_SECRETS:
            for number in self.states(logical):
                data = self.value(logical, number)
                if data:
                    values.append(data.decode())
        values += list(self.database.passwords.values())
        return values

    # --- running the CLI ----------------------------------------------------------------------

    def environment(self, **overrides) -> cli.Environment:
        values = dict(
            load_outputs=lambda stack: self.outputs,
            secret_client=lambda outputs: self.client,
            ssh_target=lambda outputs: self.target,
            database_users=lambda outputs: self.database,
            database_roles=lambda outputs, run: self.roles,
            operator=lambda: "ops@acme-example.com",
            connect=lambda target: ssh.connect(target, attempts=2, backoff=0.01),
            vm=self.vm,
            endpoints=self.endpoints,
            sleep=self.sleeps.append,
            stdout=self.stdout,
            stderr=self.stderr,
            on_step=self.on_step,
            health_polls=2,
            poll_interval=0.0,
        )
        if self.clock is not None:
            values["clock"] = self.clock
        values.update(overrides)
        return cli.Environment(**values)

    def run(self, *argv: str, **overrides) -> int:
        return cli.main(["keys", *argv], self.environment(**overrides))

    def output(self) -> str:
        return self.stdout.getvalue() + self.stderr.getvalue()

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        self.sm.stop()


def _access_handler(stack_ref: dict):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            stack: KeysStack = stack_ref["stack"]
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            if self.path.startswith("/access"):
                secret, version = query["secret"][0], query["version"][0]
                try:
                    data = stack.client.access_secret_version(name=f"projects/{PROJECT}/secrets/{secret}/versions/{version}").payload.data
                except api_exceptions.GoogleAPICallError as error:
                    code = error.grpc_status_code.name if error.grpc_status_code else "UNKNOWN"
                    self._answer(400, f"ERROR: ({code}) {error.message}\n".encode())
                    return
                self._answer(200, data)
            elif self.path.startswith("/health"):
                self._judge("health", lambda moments: bool(moments))
            else:
                self._answer(404, b"not found\n")

        def do_PUT(self):
            if self.path.startswith("/api/inngest"):
                self._judge("sync", lambda moments: bool(moments) and moments[-1].signing_agrees())
            else:
                self._answer(404, b"not found\n")

        def _judge(self, what: str, ok) -> None:
            stack: KeysStack = stack_ref["stack"]
            if stack.health_failures[what] > 0:
                stack.health_failures[what] -= 1
                self._answer(503, f"injected {what} failure\n".encode())
                return
            self._answer(200 if ok(stack.timeline()) else 401, b"")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def build_stack(sshd, work: Path) -> KeysStack:
    """Deploys the initial stack: secrets v1 each (as Pulumi creates them), both services up."""
    work.mkdir(parents=True, exist_ok=True)
    sm = FakeSecretManager().__enter__()
    try:
        client = sm.client()
        for logical, secret_id in SECRET_IDS.items():
            secret = client.create_secret(parent=f"projects/{PROJECT}", secret_id=secret_id, secret={"replication": {"automatic": {}}, "labels": {"kit": PREFIX}})
            client.add_secret_version(parent=secret.name, payload={"data": INITIAL_VALUES[logical].encode()})

        stack_ref: dict = {}
        server = _AccessSidecar(("127.0.0.1", 0), _access_handler(stack_ref))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="keys-sidecar", daemon=True).start()
        port = server.server_address[1]

        root = Path(sshd.root)
        bin_dir = work / "bin"
        bin_dir.mkdir()
        (bin_dir / "gcloud").write_text(GCLOUD_STANDIN.replace("{port}", str(port)))
        (bin_dir / "gcloud").chmod(0o755)
        docker = FakeDocker.install(work / "docker-standin")
        paths = VmPaths(root=str(root))
        timeline = work / "timeline.jsonl"
        repo = str(Path(__file__).resolve().parents[2])
        (bin_dir / "docker").write_text(
            DOCKER_WRAPPER.format(python=sys.executable, repo=repo, docker_dir=str(docker.directory), secrets_dir=paths.secrets, timeline=str(timeline))
        )
        (bin_dir / "docker").chmod(0o755)
        environment = ("env", f"KIT_ROOT={root}", f"PATH={bin_dir}:/usr/bin:/bin")
        vm = Vm(tools=VmTools(sudo=environment, docker=(*environment, str(bin_dir / "docker")), curl=("curl",)), paths=paths)

        config = parse_config(
            {
                "gcp:project": PROJECT,
                "inngest-kit:name": PREFIX,
                "inngest-kit:domain": "app.acme-example.com",
                "inngest-kit:acmeEmail": "ops@acme-example.com",
                "inngest-kit:app": {"image": "ghcr.io/acme/web:1.4.2", "command": ["node", "server.js"], "healthPath": "/healthz"},
            }
        )
        secrets = {logical: SecretRef(secret_id, "1") for logical, secret_id in SECRET_IDS.items()}
        files = render_stack(config, RenderInputs(PROJECT, "10.20.0.3", secrets, server_ca_pem=STAND_IN_SERVER_CA))
        release = Path(paths.release("r1"))
        for relative, content in files.items():
            target = release / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            if relative.endswith(".sh"):
                target.chmod(0o755)
        os.symlink(release, paths.current)

        stack = KeysStack(
            root=root,
            work=work,
            sm=sm,
            docker=docker,
            vm=vm,
            endpoints=Endpoints(inngest_health=f"http://127.0.0.1:{port}/health", app_sync=f"http://127.0.0.1:{port}/api/inngest"),
            target=sshd.target(),
            # As Pulumi leaves them: the owners with the first versions, the login roles with
            # placeholders no secret holds.
            database=RecordingDatabaseUsers(
                {
                    naming.APP_DB_USER: INITIAL_VALUES[naming.DB_APP_PASSWORD],
                    naming.INNGEST_DB_USER: INITIAL_VALUES[naming.DB_INNGEST_PASSWORD],
                    **{role: f"placeholder-{role}-0123456789" for owner in (naming.APP_DB_USER, naming.INNGEST_DB_USER) for role in naming.db_login_roles(owner)},
                }
            ),
            timeline_path=timeline,
            servers=[server],
            outputs={"project": PROJECT, "secret_ids": dict(SECRET_IDS), "sql_connection_name": SQL_CONNECTION, "sql_private_ip": "10.20.0.3", "vm_name": f"{PREFIX}-vm", "zone": "us-central1-a"},
        )
        stack_ref["stack"] = stack
        # The first deploy, as the systemd unit does it: every secret, then every service.
        for argv in (vm_fetch_all(vm), [*vm.tools.docker, "compose", "-p", "kit", "-f", f"{paths.current}/docker-compose.yml", "up", "-d", "redis", "app", "inngest"]):
            completed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
            if completed.returncode != 0:
                raise RuntimeError(f"setting up the test stack failed: {argv[-3:]}: {completed.stderr}")
        return stack
    except BaseException:
        sm.stop()
        raise


def vm_fetch_all(vm: Vm) -> list[str]:
    return [*vm.tools.sudo, f"{vm.paths.current}/fetch-secrets.sh"]


__all__ = ["KeysStack", "build_stack", "read_timeline", "Held", "RecordingDatabaseUsers", "DatabaseUsers", "grpc"]
