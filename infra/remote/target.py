"""Where the VM is and how to reach it, from the Pulumi stack outputs (see infra/ARCHITECTURE.md)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

from infra.remote.ssh import SshTarget

VIA_CHOICES = ("iap", "direct")
DEFAULT_VIA = "iap"


class StackOutputsError(Exception):
    """The stack outputs cannot be read or lack what is needed; lists every problem at once."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def stack_output_command(stack: str | None) -> list[str]:
    argv = ["pulumi", "stack", "output", "--json", "--show-secrets"]
    if stack:
        argv += ["--stack", stack]
    return argv


def load_stack_outputs(stack: str | None, *, run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> dict:
    """The stack's outputs, secrets included (the deploy key is one). Never print the result whole."""
    which = f"stack {stack!r}" if stack else "the selected stack"
    try:
        completed = run(stack_output_command(stack), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise StackOutputsError(
            ["pulumi is not installed or not on PATH: install it (https://www.pulumi.com/docs/install/) and log in with `pulumi login`"]
        ) from None
    if completed.returncode != 0:
        detail = (completed.stderr or "").strip().splitlines()[-1:] or ["no message"]
        raise StackOutputsError(
            [f"`pulumi stack output` failed for {which} (exit status {completed.returncode}): {detail[0]}. Pass --stack NAME or run `pulumi stack select`."]
        )
    try:
        outputs = json.loads(completed.stdout or "")
    except json.JSONDecodeError as exc:
        # The text holds secrets (--show-secrets), so say where it broke, not what it said.
        raise StackOutputsError([f"`pulumi stack output --json` for {which} did not print JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"]) from None
    if not isinstance(outputs, dict):
        raise StackOutputsError([f"`pulumi stack output --json` for {which} printed a {type(outputs).__name__}, not an object of outputs"])
    if not outputs:
        raise StackOutputsError([f"{which} has no outputs: run `pulumi up` first"])
    return outputs


def resolve_via(outputs: Mapping[str, Any], via: str | None) -> str:
    return via or str(outputs.get("ssh_via") or DEFAULT_VIA)


def iap_proxy_command(vm_name: str, zone: str, project: str) -> tuple[str, ...]:
    return ("gcloud", "compute", "start-iap-tunnel", vm_name, "22", "--listen-on-stdin", "--zone", zone, "--project", project)


def target_from_outputs(outputs: Mapping[str, Any], *, host_keys: tuple[str, ...], via: str | None = None) -> SshTarget:
    """An SshTarget for the stack's VM: through IAP to the instance name, or directly to its external IP."""
    chosen = resolve_via(outputs, via)
    problems: list[str] = []
    if chosen not in VIA_CHOICES:
        problems.append(f"ssh via {chosen!r} is not known: use one of {', '.join(VIA_CHOICES)}")
    needed = ["ssh_user", "ssh_private_key"]
    needed += ["vm_name", "zone", "project"] if chosen == "iap" else ["external_ip"] if chosen == "direct" else []
    missing = [name for name in needed if not outputs.get(name)]
    if missing:
        problems.append(f"stack output(s) missing: {', '.join(missing)}; run `pulumi up` so the stack exports them (see infra/ARCHITECTURE.md)")
    if problems:
        raise StackOutputsError(problems)
    common = {"user": str(outputs["ssh_user"]), "private_key": str(outputs["ssh_private_key"]), "host_keys": tuple(host_keys)}
    if chosen == "iap":
        proxy = iap_proxy_command(str(outputs["vm_name"]), str(outputs["zone"]), str(outputs["project"]))
        return SshTarget(host=str(outputs["vm_name"]), proxy_command=proxy, **common)
    return SshTarget(host=str(outputs["external_ip"]), **common)
