"""The app (real inngest v4 SDK) and the Inngest stand-in on the engine: signatures and event keys, both ways."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
import uuid

from infra import naming
from tests.support.engine_checks import Traffic, wait_for_queue_drained
from tests.support.keys_stack import PROJECT, SECRET_IDS


def post(port: int, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def call_body() -> bytes:
    event = {"data": {"seq": 0}, "id": str(uuid.uuid4()), "name": "kit/ping", "ts": int(time.time() * 1000)}
    body = {"ctx": {"attempt": 0, "disable_immediate_execution": False, "fn_id": "kit-test-app-echo", "run_id": str(uuid.uuid4()), "stack": {"current": 0, "stack": []}, "use_api": False},
            "event": event, "events": [event], "steps": {}, "version": 1}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def signature(body: bytes, key: str) -> str:
    ts = str(int(time.time()))
    return f"t={ts}&s={hmac.new(key.encode(), body + ts.encode(), hashlib.sha256).hexdigest()}"


def current_value(bed, logical: str) -> str:
    """The version the VM reads: the alias `current` once a rotation set it, else Pulumi's first version."""
    secret = f"projects/{PROJECT}/secrets/{SECRET_IDS[logical]}"
    version = "current" if "current" in bed.client.get_secret(name=secret).version_aliases else "1"
    return bed.client.access_secret_version(name=f"{secret}/versions/{version}").payload.data.decode()


def test_the_sdk_accepts_a_call_signed_with_its_key_and_refuses_any_other(bed):
    """Through Caddy's loopback listener, as the VM reaches /api/inngest: the real SDK's verification."""
    path = "/api/inngest?fnId=kit-test-app-echo&stepId=step"
    body = call_body()
    status, answer = post(8290, path, body, {"X-Inngest-Signature": signature(body, current_value(bed, naming.SIGNING_KEY))})
    assert status in (200, 206) and b"RunComplete" in answer, answer  # 206: the SDK reports the run as ops
    status, _ = post(8290, path, body, {"X-Inngest-Signature": signature(body, "cd" * 32)})
    assert status == 401
    status, _ = post(8290, path, body, {})
    assert status == 401


def test_the_server_accepts_events_only_for_its_event_keys(bed):
    before = Traffic.read(bed.standin())
    payload = json.dumps([{"name": "kit/unheard", "data": {}}]).encode()
    assert post(8288, "/e/not-the-key", payload, {})[0] == 401
    assert post(8288, f"/e/{current_value(bed, naming.EVENT_KEY)}", payload, {})[0] == 200
    after = Traffic.read(bed.standin())
    assert (after.events_rejected - before.events_rejected, after.events_accepted - before.events_accepted) == (1, 1)


def test_events_from_the_app_become_signed_calls_to_the_app(bed):
    before = Traffic.read(bed.standin())
    bed.start_pump(100)
    time.sleep(3)
    moved = Traffic.read(wait_for_queue_drained(bed)).since(before)
    assert moved.events_accepted >= 10 and moved.calls_ok >= 10, moved
    assert moved.events_rejected == 0 and moved.calls_failed == 0 and moved.events_lost == 0, moved
