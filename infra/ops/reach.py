"""How the operator commands reach the VM: stack outputs -> verified SshTarget, plus the Compute API edges.

Everything here is an edge (Pulumi CLI, Compute API); the operator commands receive the resulting
`OpsContext`, so tests give them one pointing at a local sshd instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlparse

from infra.ops import commands
from infra.ops.status import KeyAge
from infra.remote.hostkeys import fetch_host_keys
from infra.remote.identity import IdentityReaders, require_one_identity
from infra.remote.ssh import SshTarget
from infra.remote.target import StackOutputsError, load_stack_outputs, resolve_via, target_from_outputs
from infra.remote.vm import Vm

# The operator is waiting at a terminal: a short retry covers a flaky tunnel, not a booting VM.
CONNECT_ATTEMPTS = 2
HOST_KEY_ATTEMPTS = 2


@dataclass(frozen=True)
class OpsContext:
    target: SshTarget
    vm: Vm
    vm_name: str
    domain: str | None
    vm_state: Callable[[], str]
    key_ages: Callable[[], list[KeyAge] | str]
    inngest_url: str = commands.INNGEST_HEALTH_URL


def domain_from_outputs(outputs: Mapping[str, Any]) -> str | None:
    url = outputs.get("url")
    return urlparse(str(url)).hostname if url else None


def pinned_host_keys(outputs: Mapping[str, Any]) -> tuple[str, ...]:
    """Host keys the stack exported itself (`ssh_host_keys`: a list or newline-separated text), if any."""
    value = outputs.get("ssh_host_keys")
    if not value:
        return ()
    lines = value.splitlines() if isinstance(value, str) else list(value)
    return tuple(str(line).strip() for line in lines if str(line).strip())


def compute_vm_state(project: str, zone: str, instance: str) -> str:
    """RUNNING, TERMINATED, ... from the Compute API; a sentence instead when it cannot be asked."""
    try:
        from google.cloud import compute_v1

        return str(compute_v1.InstancesClient().get(project=project, zone=zone, instance=instance, timeout=10).status)
    except Exception as exc:  # any failure here (no credentials, no network) must not stop the report
        return f"unknown (the Compute API could not be asked: {type(exc).__name__})"


def secret_manager_key_ages(outputs: Mapping[str, Any]) -> list[KeyAge] | str:
    """The live version of each kit key and its age, from Secret Manager; a sentence when unavailable."""
    try:
        import google.auth
        from google.cloud import secretmanager_v1

        from infra import naming
        from infra.keys.status import key_ages
        from infra.keys.store import SecretStore
    except ImportError as exc:
        return f"not available (the keys module cannot be loaded: {exc})"
    secret_ids = outputs.get("secret_ids") or {}
    wanted = {logical: secret_ids[logical] for logical in naming.KIT_SECRETS if logical in secret_ids}
    if not wanted or not outputs.get("project"):
        return "not available (the stack has no secret_ids or project output)"
    try:
        credentials, _ = google.auth.default()
        store = SecretStore(secretmanager_v1.SecretManagerServiceClient(credentials=credentials), str(outputs["project"]))
        return key_ages({logical: store.observe(logical, secret_id) for logical, secret_id in wanted.items()})
    except Exception as exc:  # no credentials, no network, no permission: report, do not fail the status
        return f"not available (Secret Manager could not be asked: {type(exc).__name__})"


def require_operator_identity(outputs: Mapping[str, Any], via: str | None, readers: IdentityReaders | None = None) -> None:
    """The IAP tunnel (gcloud) and the host-key read (ADC) must run as the account whose OS Login
    profile holds the deploy key (`ssh_user_email`); raises IdentityError with the fix otherwise."""
    require_one_identity(
        str(outputs.get("ssh_user_email") or "") or None,
        uses_gcloud=resolve_via(outputs, via) == "iap",
        uses_adc=not pinned_host_keys(outputs),
        readers=readers,
    )


def context_from_outputs(
    outputs: Mapping[str, Any],
    *,
    via: str | None,
    fetch_keys: Callable[..., tuple[str, ...]] = fetch_host_keys,
    identity_check: Callable[[Mapping[str, Any], str | None], None] | None = None,
) -> OpsContext:
    problems: list[str] = []
    target = None
    try:
        target = target_from_outputs(outputs, host_keys=(), via=via)
    except StackOutputsError as exc:
        problems += exc.problems
    host_keys = pinned_host_keys(outputs)
    where = [name for name in ("project", "zone", "vm_name") if not outputs.get(name)]
    # Through IAP, target_from_outputs has already named these.
    if where and resolve_via(outputs, via) != "iap":
        problems.append(f"stack output(s) missing: {', '.join(where)}; they locate the VM for its host keys and state")
    if problems:
        raise StackOutputsError(problems)
    project, zone, vm_name = (str(outputs[name]) for name in ("project", "zone", "vm_name"))
    if identity_check is not None:
        identity_check(outputs, via)  # before the host-key fetch and the tunnel, which would retry as another account
    if not host_keys:
        host_keys = fetch_keys(project, zone, vm_name, attempts=HOST_KEY_ATTEMPTS)
    return OpsContext(
        target=replace(target, host_keys=host_keys),
        vm=Vm(),
        vm_name=vm_name,
        domain=domain_from_outputs(outputs),
        vm_state=lambda: compute_vm_state(project, zone, vm_name),
        key_ages=lambda: secret_manager_key_ages(outputs),
    )


def context_from_stack(stack: str | None, via: str | None) -> OpsContext:
    return context_from_outputs(load_stack_outputs(stack), via=via, identity_check=require_operator_identity)
