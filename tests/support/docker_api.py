"""STAND-INS for the two servers the VM's image pulls talk to, so that the REAL docker CLI can run
the kit's login and pull steps in tests:

- `DockerApiStandIn`: the Docker Engine API on a unix socket (DOCKER_HOST=unix://...), the few
  endpoints `docker login` and `docker pull` use (Engine API reference: `GET /_ping`,
  `POST /auth`, `GET /images/{name}/json`, `POST /images/create` with the `X-Registry-Auth`
  header, base64url JSON of the credentials the CLI resolved). It records what the CLI sent: that
  is where the credentials the CLI found (config file, credential helper) become visible.
- `MetadataStandIn`: the Compute Engine metadata server's token endpoint, which answers only
  with the `Metadata-Flavor: Google` header, as the real one does.

Neither pulls or stores anything.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socketserver
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API_VERSION = "1.47"


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@dataclass
class DockerApiStandIn:
    socket_path: str
    # `docker login` succeeds only with these, when set: server address -> (username, password).
    accepted_logins: dict[str, tuple[str, str]] = field(default_factory=dict)
    logins: list[dict] = field(default_factory=list)  # each POST /auth body
    pulls: list[dict] = field(default_factory=list)  # {"image", "auth"}: auth is the decoded X-Registry-Auth or None

    def __post_init__(self):
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Api-Version", API_VERSION)
                self.send_header("Ostype", "linux")
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _path(self) -> str:
                path = urlsplit(self.path).path
                parts = path.split("/", 2)
                return "/" + parts[2] if len(parts) > 2 and parts[1].startswith("v1.") else path

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                path = self._path()
                if path == "/_ping":
                    self._send(200, b"OK", "text/plain")
                elif path.startswith("/images/") and path.endswith("/json"):
                    self._send(404, json.dumps({"message": f"No such image: {path[8:-5]}"}).encode())
                else:
                    self._send(404, json.dumps({"message": f"stand-in does not serve GET {path}"}).encode())

            def do_POST(self):
                path = self._path()
                body = self._body()
                if path == "/auth":
                    request = json.loads(body or b"{}")
                    stand_in.logins.append(request)
                    wanted = stand_in.accepted_logins.get(request.get("serveraddress", ""))
                    if wanted is not None and wanted != (request.get("username"), request.get("password")):
                        self._send(401, json.dumps({"message": "login attempt failed with status: 401 Unauthorized"}).encode())
                        return
                    self._send(200, json.dumps({"IdentityToken": "", "Status": "Login Succeeded"}).encode())
                elif path == "/images/create":
                    query = parse_qs(urlsplit(self.path).query)
                    image = query.get("fromImage", [""])[0]
                    tag = query.get("tag", [""])[0]
                    header = self.headers.get("X-Registry-Auth")
                    auth = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))) if header else None
                    stand_in.pulls.append({"image": f"{image}:{tag}" if tag else image, "auth": auth})
                    self._send(200, json.dumps({"status": f"Status: Downloaded newer image for {image}:{tag}"}).encode() + b"\n")
                else:
                    self._send(404, json.dumps({"message": f"stand-in does not serve POST {path}"}).encode())

            def address_string(self):
                return "unix"

            def log_message(self, *args):
                pass

        self._server = _UnixHTTPServer(self.socket_path, Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)


@dataclass
class MetadataStandIn:
    """GET /computeMetadata/v1/instance/service-accounts/default/token on 127.0.0.1."""

    token: str = field(default_factory=lambda: "ya29.stand-in-" + secrets.token_urlsafe(24))
    requests: list[dict] = field(default_factory=list)

    def __post_init__(self):
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                stand_in.requests.append({"path": self.path, "flavor": self.headers.get("Metadata-Flavor")})
                if self.headers.get("Metadata-Flavor") != "Google":
                    status, body = 403, b"Missing Metadata-Flavor:Google header."
                elif self.path == "/computeMetadata/v1/instance/service-accounts/default/token":
                    status, body = 200, json.dumps({"access_token": stand_in.token, "expires_in": 3599, "token_type": "Bearer"}).encode()
                else:
                    status, body = 404, b"not found"
                self.send_response(status)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
