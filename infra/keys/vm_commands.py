"""Pure builders of every remote command a rotation runs on the VM. Each returns an argv list."""

from __future__ import annotations

from dataclasses import dataclass

from infra import layout
from infra.keys.model import VERSIONS_FILE_NAME
from infra.ops.commands import compose
from infra.remote.vm import Vm

FETCH_SECRETS = "fetch-secrets.sh"  # in the release directory, rendered from templates/fetch-secrets.sh.j2


@dataclass(frozen=True)
class Endpoints:
    """What the verify step calls on the VM: Inngest's health, and Caddy's loopback listener to the app."""

    inngest_health: str = f"http://127.0.0.1:{layout.INNGEST_PORT}/health"
    app_sync: str = "http://127.0.0.1:8290/api/inngest"


def versions_file(vm: Vm) -> str:
    return f"{vm.paths.data}/{VERSIONS_FILE_NAME}"


def read_versions_file(vm: Vm) -> list[str]:
    """Fails with "No such file" when there is none yet: the caller reads that as "all `current`"."""
    return [*vm.tools.sudo, "env", "LC_ALL=C", "cat", "--", versions_file(vm)]  # C: the message is matched


def write_versions_file(vm: Vm) -> list[list[str]]:
    """Two commands: the text goes to a temporary file on stdin of the first, then a rename makes it atomic."""
    temporary = versions_file(vm) + ".new"
    return [[*vm.tools.sudo, "tee", temporary], [*vm.tools.sudo, "mv", "-f", temporary, versions_file(vm)]]


def fetch_secrets(vm: Vm, service: str) -> list[str]:
    return [*vm.tools.sudo, f"{vm.paths.current}/{FETCH_SECRETS}", service]


def recreate_service(vm: Vm, service: str) -> list[str]:
    # --force-recreate: the compose file is unchanged, only the secret files under it are new.
    # --no-deps: restart this one service, never its neighbours.
    return compose(vm, "up", "-d", "--force-recreate", "--no-deps", service)


def service_status(vm: Vm) -> list[str]:
    return compose(vm, "ps", "--all", "--format", "json")


def inngest_health(vm: Vm, endpoints: Endpoints) -> list[str]:
    return [*vm.tools.curl, "-fsS", "--max-time", "5", "-o", "/dev/null", endpoints.inngest_health]


def app_sync(vm: Vm, endpoints: Endpoints) -> list[str]:
    # A PUT makes the app register its functions with the server, signed with the app's key: it
    # succeeds only when the server and the app agree on a signing key.
    return [*vm.tools.curl, "-fsS", "--max-time", "30", "-o", "/dev/null", "-X", "PUT", endpoints.app_sync]
