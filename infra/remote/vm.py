"""What the remote command builders need to know about the VM: its tools and its paths.

Both are values, not globals, so that tests can point them at a temporary directory and at the
recording stand-in for `docker` on a local sshd, while production uses the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra import layout


@dataclass(frozen=True)
class VmTools:
    """argv prefixes for the tools the remote commands call. OS Login admins have passwordless sudo."""

    sudo: tuple[str, ...] = ("sudo", "-n")
    docker: tuple[str, ...] = ("sudo", "-n", "docker")
    curl: tuple[str, ...] = ("curl",)
    systemctl: tuple[str, ...] = ("sudo", "-n", "systemctl")


@dataclass(frozen=True)
class VmPaths:
    """Paths on the VM (see infra/layout.py). `root` relocates all of them, for tests."""

    root: str = ""

    def _at(self, path: str) -> str:
        return f"{self.root}{path}"

    @property
    def data(self) -> str:
        return self._at(layout.DATA_MOUNT)

    @property
    def releases(self) -> str:
        return self._at(layout.RELEASES_DIR)

    @property
    def current(self) -> str:
        return self._at(layout.CURRENT_LINK)

    @property
    def previous(self) -> str:
        return self._at(layout.PREVIOUS_LINK)

    @property
    def caddy_data(self) -> str:
        return self._at(layout.CADDY_DATA_DIR)

    @property
    def secrets(self) -> str:
        return self._at(layout.SECRETS_DIR)

    @property
    def docker_config(self) -> str:
        return self._at(layout.DOCKER_CONFIG_DIR)

    @property
    def audit_log(self) -> str:
        return self._at(layout.AUDIT_LOG)

    @property
    def startup_record(self) -> str:
        return self._at(layout.STARTUP_RECORD)

    def release(self, release_id: str) -> str:
        return f"{self.releases}/{release_id}"


@dataclass(frozen=True)
class Vm:
    tools: VmTools = VmTools()
    paths: VmPaths = VmPaths()
    compose_project: str = layout.COMPOSE_PROJECT
