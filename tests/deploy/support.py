"""A small stack to deploy in tests and the benchmark, and the loopback HTTP server it probes.

The deploy probes Inngest's /health and PUTs the app's /api/inngest with the real curl on the
"VM" (the local sshd). Rather than a stand-in for curl, a tiny HTTP server on 127.0.0.1 answers for
Inngest and for Caddy's internal listener, so the curl flags the deploy builds are really exercised.
"""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from infra.deploy.deploy import DeploySettings
from infra.remote.commands import VmEndpoints
from infra.remote.ssh import CommandResult, RemoteCommandError
from infra.remote.vm import Vm, VmPaths, VmTools
from tests.support.fake_docker import FakeDocker

COMPOSE = """\
services:
  caddy:
    image: caddy:2.8
    volumes: ["./caddy/Caddyfile:/etc/caddy/Caddyfile:ro"]
    healthcheck: {test: ["CMD", "caddy", "version"]}
  app:
    image: ghcr.io/acme/web:{app_version}
    env_file: [app.env]
    healthcheck: {test: ["CMD", "true"]}
  inngest:
    image: inngest/inngest:v1.43.0
    env_file: [inngest.env]
  redis:
    image: redis:7.4
"""

FETCH_SECRETS = """\
#!/bin/sh
# Test stand-in for the rendered fetch-secrets.sh: records that it ran, as root would before compose up.
set -eu
echo "fetched $(basename "$(dirname "$(readlink -f "$0")")")" >> "{marker}"
"""


def stack_files(root: Path, *, app_version: str = "1.0.0", log_level: str = "info", caddy_port: int = 80) -> dict[str, str]:
    return {
        "docker-compose.yml": COMPOSE.replace("{app_version}", app_version),
        "app.env": f"LOG_LEVEL={log_level}\n",
        "inngest.env": "INNGEST_LOG_LEVEL=info\n",
        "caddy/Caddyfile": f":{caddy_port} {{\n  reverse_proxy app:3000\n}}\n",
        "fetch-secrets.sh": FETCH_SECRETS.replace("{marker}", str(root / "secrets-fetched.log")),
    }


def restarted_by(path: str) -> tuple[str, ...]:
    """What the render module answers for this stack: compose cannot see the Caddyfile's content."""
    return {"caddy/Caddyfile": ("caddy",)}.get(path, ())


EXECUTABLE_FILES = frozenset({"fetch-secrets.sh"})


@dataclass
class ProbeServer:
    """Answers GET /health (Inngest) and PUT /api/inngest (the app via Caddy) on 127.0.0.1."""

    health_status: int = 200
    sync_status: int = 200
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self):
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int) -> None:
                probe.requests.append((self.command, self.path))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                self._answer(probe.health_status if self.path == "/health" else 404)

            def do_PUT(self):
                self._answer(probe.sync_status if self.path == "/api/inngest" else 404)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def endpoints(self) -> VmEndpoints:
        port = self._server.server_address[1]
        return VmEndpoints(inngest_health=f"http://127.0.0.1:{port}/health", app_sync=f"http://127.0.0.1:{port}/api/inngest")

    def syncs(self) -> int:
        return sum(1 for method, path in self.requests if (method, path) == ("PUT", "/api/inngest"))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def vm_for(root: Path, fake: FakeDocker) -> Vm:
    return Vm(tools=VmTools(sudo=(), docker=(fake.executable,), curl=("curl",)), paths=VmPaths(root=str(root)))


def fast_settings(probe: ProbeServer) -> DeploySettings:
    return DeploySettings(health_timeout=0.4, poll_interval=0.05, sync_attempts=2, sync_interval=0.05, command_timeout=30.0, endpoints=probe.endpoints)


class LocalSession:
    """Runs the deploy's argv lists on this machine, without SSH.

    Only for *seeding* the release a test starts from: each command over SSH costs about a tenth
    of a second on loopback, and the step under test still goes through the real sshd.
    """

    def __enter__(self) -> LocalSession:
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def run(self, argv, *, check=True, stdin=None, timeout=None) -> CommandResult:
        completed = subprocess.run(list(argv), input=stdin, capture_output=True, timeout=timeout, check=False)
        result = CommandResult(completed.returncode, completed.stdout.decode(errors="replace"), completed.stderr.decode(errors="replace"))
        if check and result.exit_status != 0:
            raise RemoteCommandError(argv, result.exit_status, result.stderr)
        return result

    def upload(self, path: str, content: bytes, mode: int = 0o644) -> None:
        temporary = f"{path}.tmp-local"
        with open(temporary, "wb") as handle:
            handle.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
