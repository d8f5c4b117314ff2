"""A STAND-IN for a user's app that really speaks h2c: an ASGI app served by hypercorn (PyPI), which
answers an HTTP/1.1 `Upgrade: h2c` with 101 and then serves HTTP/2 on the same connection
(hypercorn/protocol/h11.py, `_check_protocol`), as Go's h2c handler and Jetty do. It also accepts
WebSocket upgrades, and answers every HTTP request with the request as it arrived, as JSON.

Each request it receives is appended to the JSON-lines file named by H2C_APP_LOG, so a test can tell
what got past the edge, and over which protocol.
"""

from __future__ import annotations

import json
import os


def _record(entry: dict) -> None:
    with open(os.environ["H2C_APP_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\n")


def _seen(scope: dict) -> dict:
    headers: dict[str, list[str]] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return {"type": scope["type"], "http_version": scope.get("http_version"), "path": scope["path"], "headers": headers}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    seen = _seen(scope)
    _record(seen)
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text") or ""})
        return
    while (await receive()).get("more_body"):
        pass
    body = json.dumps(seen).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
