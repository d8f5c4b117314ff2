"""The VM's SSH host keys, read from its GCE guest attributes (namespace `hostkeys/`).

The guest agent publishes one attribute per key type shortly after boot. The parser is pure; the
fetch edge (Compute API) is thin and retried, because the attributes appear only once the agent
has run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from infra.remote.ssh import parse_host_key

NAMESPACE = "hostkeys"
QUERY_PATH = f"{NAMESPACE}/"
# paramiko offers the first expected key's type first, so the strongest comes first.
KEY_TYPE_ORDER = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")


class HostKeysNotReady(Exception):
    """The VM has not published its host keys yet (or guest attributes are not enabled)."""


def parse_guest_attributes(response: Mapping[str, Any]) -> tuple[str, ...]:
    """Host key lines ("TYPE BASE64") from a guest-attributes response, strongest type first.

    Accepts the REST shape (`queryValue.items`) and the client's `to_dict` shape (`query_value.items`).
    An attribute's value may be the base64 blob alone (key = type) or a whole "TYPE BASE64" line.
    Raises HostKeysNotReady when the response holds no usable key.
    """
    query_value = response.get("query_value") or response.get("queryValue") or {}
    lines: dict[str, str] = {}
    for item in query_value.get("items") or ():
        if item.get("namespace", NAMESPACE) != NAMESPACE:
            continue
        key_type, value = str(item.get("key", "")).strip(), str(item.get("value", "")).strip()
        fields = value.split()
        if not fields:
            continue
        line = " ".join(fields[:2]) if len(fields) >= 2 else f"{key_type} {fields[0]}"
        line_type = line.split()[0]
        if line_type not in KEY_TYPE_ORDER:
            continue
        try:
            parse_host_key(line)
        except ValueError:
            continue  # a damaged attribute must not stop us using a good one beside it
        lines[line_type] = line
    if not lines:
        raise HostKeysNotReady("the VM's guest attributes hold no SSH host key under hostkeys/ yet")
    return tuple(lines[key_type] for key_type in KEY_TYPE_ORDER if key_type in lines)


def wait_for_host_keys(
    fetch: Callable[[], Mapping[str, Any]],
    *,
    attempts: int = 30,
    interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, ...]:
    """Call `fetch` until it returns a response with host keys, at most `attempts` times."""
    last: HostKeysNotReady | None = None
    for attempt in range(1, max(1, attempts) + 1):
        try:
            return parse_guest_attributes(fetch())
        except HostKeysNotReady as exc:
            last = exc
        if attempt < attempts:
            sleep(interval)
    raise HostKeysNotReady(
        f"{last} after {attempts} attempt(s), {interval * (attempts - 1):.0f} s apart. "
        "Check that the VM is running and its metadata has enable-guest-attributes=TRUE."
    )


def compute_api_fetch(project: str, zone: str, instance: str) -> Callable[[], Mapping[str, Any]]:
    """The real fetch: Compute API `instances.getGuestAttributes` (cannot run without GCP)."""
    from google.api_core import exceptions
    from google.cloud import compute_v1

    client = compute_v1.InstancesClient()

    def fetch() -> Mapping[str, Any]:
        try:
            response = client.get_guest_attributes(project=project, zone=zone, instance=instance, query_path=QUERY_PATH)
        except exceptions.NotFound as exc:
            # The API answers 404 until the guest agent has written the namespace.
            raise HostKeysNotReady(f"guest attributes {QUERY_PATH} of {instance} not found yet") from exc
        return type(response).to_dict(response)

    return fetch


def fetch_host_keys(project: str, zone: str, instance: str, *, attempts: int = 30, interval: float = 5.0) -> tuple[str, ...]:
    return wait_for_host_keys(compute_api_fetch(project, zone, instance), attempts=attempts, interval=interval)
