"""The kit's stack on the real engine (tests/support/engine.py), driven by the kit's own code.

- The files are the real render (infra/render.py) of a test configuration, with two adaptations
  for a machine with no internet: the Caddyfile is rendered with `local_certs` (Caddy's internal CA,
  never ACME), and on an engine older than API 1.44 (Docker 25), which compose refuses the
  healthchecks' `start_interval` for, that value becomes the interval instead.
- The deploy is infra/deploy/deploy.py over infra/remote/ssh.py to the sshd inside the VM namespace;
  key rotations are the keys CLI (infra/keys/cli.py) over the same layer.
- Secret Manager is the in-process fake (tests/support/fake_secretmanager.py); the VM's `gcloud` is
  the keys tests' STAND-IN script that reads a version through a sidecar with the real client.
- Steady clients: an HTTPS client through Caddy (TLS verified against Caddy's local root), the
  app's event pump (real SDK `inngest.send`), and the Inngest stand-in's signed calls to the app.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import ThreadingHTTPServer
from pathlib import Path

import yaml

from infra import naming
from infra.config import StackConfig, parse_config
from infra.deploy.deploy import DeployResult, DeploySettings, DeployState, deploy
from infra.keys import cli
from infra.plan.mocks import STAND_IN_SERVER_CA
from infra.remote import ssh
from infra.remote.vm import Vm, VmTools
from infra.render import (
    CADDYFILE,
    COMPOSE_FILE,
    EXECUTABLE_FILES,
    SYNC_PORT,
    CaddySites,
    RenderInputs,
    SecretRef,
    render_caddyfile,
    render_stack,
    services_restarted_by,
)
from tests.support.engine import APP_IMAGE, Engine
from tests.support.fake_secretmanager import FakeSecretManager
from tests.support.keys_stack import (
    GCLOUD_STANDIN,
    INITIAL_VALUES,
    PREFIX,
    PROJECT,
    SECRET_IDS,
    SQL_CONNECTION,
    RecordingDatabaseUsers,
    _access_handler,
)

DOMAIN = "app.kit-engine.test"
STANDIN_STATE = "http://127.0.0.1:8288/standin/state"
START_INTERVAL_API = (1, 44)  # compose refuses healthcheck.start_interval on older engines (Docker < 25)


def bed_config(**app_overrides) -> StackConfig:
    """The test stack's configuration. The app's event pump starts at every boot (PUMP_MS), so the steady
    stream of events, and the signed calls they cause, runs across the app's restarts."""
    env = {"PUMP_MS": "100", **app_overrides.pop("env", {})}
    app = {"image": APP_IMAGE, "command": ["node", "server.js"], "healthPath": "/healthz", "env": env, **app_overrides}
    return parse_config(
        {
            "gcp:project": PROJECT,
            "inngest-kit:name": PREFIX,
            "inngest-kit:domain": DOMAIN,
            "inngest-kit:acmeEmail": "ops@kit-engine.test",
            "inngest-kit:app": app,
        }
    )


def local_caddyfile(config: StackConfig, marker: str = "") -> str:
    sites = CaddySites(public_site=DOMAIN, sync_site=f":{SYNC_PORT}", app_upstream=f"app:{config.app.port}", global_options=("local_certs", "skip_install_trust"))
    text = render_caddyfile(config, sites)
    return text + (f"# {marker}\n" if marker else "")


def without_start_interval(compose_text: str) -> str:
    """For an engine older than Docker 25, which compose refuses `start_interval` for: probe at the
    start interval all the time instead, so that health arrives about when it would on the VM's engine."""
    document = yaml.safe_load(compose_text)
    for service in document["services"].values():
        check = service.get("healthcheck") or {}
        if "start_interval" in check:
            check["interval"] = check.pop("start_interval")
    header = compose_text.split("\n", 1)[0] + "\n" if compose_text.startswith("#") else ""
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=1000)


@dataclass
class Bed:
    engine: Engine
    work: Path
    sm: FakeSecretManager
    vm: Vm
    settings: DeploySettings
    database: RecordingDatabaseUsers
    servers: list = field(default_factory=list)
    state: DeployState | None = None
    stdout: io.StringIO = field(default_factory=io.StringIO)
    _client: object = None

    @property
    def client(self):
        if self._client is None:
            self._client = self.sm.client()
        return self._client

    @property
    def target(self) -> ssh.SshTarget:
        login = self.engine.login()
        return ssh.SshTarget(host="127.0.0.1", port=login.port, user=login.user, private_key=login.client_private_key, host_keys=(login.host_public_key,), connect_timeout=10.0)

    # --- files and deploys ----------------------------------------------------------------------

    def files(self, config: StackConfig | None = None, *, caddyfile: str | None = None) -> dict[str, str]:
        config = config or bed_config()
        refs = {logical: SecretRef(secret_id, "1") for logical, secret_id in SECRET_IDS.items()}
        files = render_stack(config, RenderInputs(PROJECT, "10.20.0.3", refs, server_ca_pem=STAND_IN_SERVER_CA))
        files[CADDYFILE] = caddyfile if caddyfile is not None else local_caddyfile(config)
        if self.engine.api_version() < START_INTERVAL_API:
            files[COMPOSE_FILE] = without_start_interval(files[COMPOSE_FILE])
        return files

    def session(self):
        return ssh.connect(self.target, attempts=20, backoff=0.25, max_wait=30)

    def deploy(self, files: dict[str, str], settings: DeploySettings | None = None) -> DeployResult:
        result = deploy(self.session, files, self.state, self.vm, owner="root", restarted_by=services_restarted_by, executable_files=EXECUTABLE_FILES, settings=settings or self.settings)
        self.state = DeployState(result.release_id, result.manifest)
        return result

    def run_unit(self) -> None:
        """What inngest-kit.service does at boot (its ExecStartPre, then ExecStart), inside the VM."""
        self.engine.in_vm([*self.vm.tools.sudo, f"{self.vm.paths.current}/fetch-secrets.sh"])
        self.engine.in_vm([*self.vm.tools.docker, "compose", "-p", "kit", "-f", f"{self.vm.paths.current}/docker-compose.yml", "--project-directory", self.vm.paths.current, "up", "-d", "--remove-orphans"])

    # --- observation ----------------------------------------------------------------------------

    def wait_healthy(self, services=("app", "caddy", "inngest", "redis"), timeout: float = 120.0) -> float:
        """Seconds until every service is running and healthy."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            containers = self.engine.containers()
            if all(containers.get(name, {}).get("health") == "healthy" and containers[name]["status"] == "running" for name in services):
                return time.monotonic() - started
            time.sleep(0.25)
        raise AssertionError(f"not healthy after {timeout:g} s: {self.engine.containers()}")

    def standin(self) -> dict:
        return _get_json("127.0.0.1", 8288, "/standin/state")

    def app_get(self, path: str, *, method: str = "GET", timeout: float = 5.0) -> tuple[int, bytes]:
        """A request to the app through Caddy's public HTTPS site, verified against Caddy's local root."""
        connection = http.client.HTTPSConnection("127.0.0.1", 443, timeout=timeout, context=self.tls_context())
        try:
            connection.request(method, path, headers={"Host": DOMAIN})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def tls_context(self) -> ssl.SSLContext:
        root = Path(self.engine.disk) / "caddy" / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        context = ssl.create_default_context(cafile=str(root))
        return _SniContext(context, DOMAIN)

    def start_pump(self, every_ms: int = 100) -> None:
        status, body = self.app_get(f"/pump/start?ms={every_ms}", method="POST")
        if status != 200:
            raise AssertionError(f"pump did not start: {status} {body[:200]!r}")

    # --- keys CLI -------------------------------------------------------------------------------

    def keys(self, *argv: str, sleep=time.sleep) -> int:
        environment = cli.Environment(
            load_outputs=lambda stack: {"project": PROJECT, "secret_ids": dict(SECRET_IDS), "sql_connection_name": SQL_CONNECTION, "vm_name": f"{PREFIX}-vm", "zone": "us-central1-a"},
            secret_client=lambda outputs: self.client,
            ssh_target=lambda outputs: self.target,
            database_users=lambda outputs: self.database,
            operator=lambda: "ops@kit-engine.test",
            connect=lambda target: ssh.connect(target, attempts=5, backoff=0.2),
            vm=self.vm,
            sleep=sleep,
            stdout=self.stdout,
            stderr=self.stdout,
            health_polls=60,
            poll_interval=1.0,
        )
        return cli.main(["keys", *argv], environment)

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        self.sm.stop()


class _SniContext:
    """An SSLContext whose connections present `hostname` (SNI and verification) while the socket goes to 127.0.0.1."""

    def __init__(self, context: ssl.SSLContext, hostname: str):
        self._context = context
        self._hostname = hostname

    def wrap_socket(self, sock, server_hostname=None, **kwargs):
        return self._context.wrap_socket(sock, server_hostname=self._hostname, **kwargs)

    def __getattr__(self, name):
        return getattr(self._context, name)


def _get_json(host: str, port: int, path: str, timeout: float = 5.0) -> dict:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise AssertionError(f"GET {path}: {response.status} {body[:200]!r}")
        return json.loads(body)
    finally:
        connection.close()


def build_bed(engine: Engine, work: Path) -> Bed:
    """Secrets v1 in the fake Secret Manager, the gcloud stand-in on the VM's PATH; nothing deployed yet."""
    work.mkdir(parents=True, exist_ok=True)
    sm = FakeSecretManager().__enter__()
    try:
        client = sm.client()
        for logical, secret_id in SECRET_IDS.items():
            secret = client.create_secret(parent=f"projects/{PROJECT}", secret_id=secret_id, secret={"replication": {"automatic": {}}, "labels": {"kit": PREFIX}})
            client.add_secret_version(parent=secret.name, payload={"data": INITIAL_VALUES[logical].encode()})
        stack_ref: dict = {}
        sidecar = ThreadingHTTPServer(("127.0.0.1", 0), _access_handler(stack_ref))
        sidecar.daemon_threads = True
        threading.Thread(target=sidecar.serve_forever, kwargs={"poll_interval": 0.05}, name="engine-secrets-sidecar", daemon=True).start()
        bin_dir = work / "bin"
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "gcloud").write_text(GCLOUD_STANDIN.replace("{port}", str(sidecar.server_address[1])))
        (bin_dir / "gcloud").chmod(0o755)
        # Root over SSH, as an OS Login admin's passwordless sudo is on the VM; PATH finds the gcloud stand-in.
        environment = ("env", f"PATH={bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        vm = Vm(tools=VmTools(sudo=environment, docker=(*environment, "docker"), curl=("curl",)))
        settings = DeploySettings(health_timeout=90.0, poll_interval=0.5, sync_attempts=10, sync_interval=1.0, command_timeout=300.0)
        bed = Bed(
            engine=engine,
            work=work,
            sm=sm,
            vm=vm,
            settings=settings,
            database=RecordingDatabaseUsers({naming.APP_DB_USER: INITIAL_VALUES[naming.DB_APP_PASSWORD], naming.INNGEST_DB_USER: INITIAL_VALUES[naming.DB_INNGEST_PASSWORD]}),
            servers=[sidecar],
        )
        stack_ref["stack"] = bed
        return bed
    except BaseException:
        sm.stop()
        raise


class SteadyClient:
    """Calls `probe` every `interval` s in a thread until stopped; counts every failure with its reason."""

    def __init__(self, probe, interval: float = 0.05):
        self.probe = probe
        self.interval = interval
        self.total = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SteadyClient:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.total += 1
            try:
                problem = self.probe()
            except (TimeoutError, OSError, http.client.HTTPException, ssl.SSLError) as error:
                problem = f"{type(error).__name__}: {error}"
            if problem:
                self.failures.append(problem)
            self._stop.wait(self.interval)

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for failure in self.failures:
            kind = re.sub(r"\d+\.\d+\.\d+\.\d+(:\d+)?", "ADDR", failure)[:80]
            kinds[kind] = kinds.get(kind, 0) + 1
        return f"{len(self.failures)}/{self.total} failed" + (f" ({kinds})" if kinds else "")


def app_probe(bed: Bed):
    def probe() -> str | None:
        status, _ = bed.app_get("/", timeout=5.0)
        return None if status == 200 else f"HTTP {status}"

    return probe


__all__ = ["Bed", "build_bed", "SteadyClient", "app_probe", "bed_config", "local_caddyfile", "replace"]
