"""A real OpenSSH server on 127.0.0.1 standing in for the VM.

It runs in the foreground as the current user, with its own ed25519 host key and one authorized
client key, both generated per server. Tests reach it through the same `infra.remote.ssh` layer the
deploy uses, so host-key checks, SFTP and exit statuses are OpenSSH's own.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from infra.remote.ssh import SshTarget

SSHD_BINARY = Path("/usr/sbin/sshd")
# sshd running as root chroots its pre-auth child here; the distribution's service unit normally
# creates it at boot, which does not happen in a container.
PRIVSEP_DIR = Path("/run/sshd")
SKIP_REASON = "openssh-server (Debian package) is missing: run `sudo make test-deps`"
_STARTUP_POLLS = 100  # x 0.05 s: sshd listens within a few hundred ms


@dataclass(frozen=True)
class KeyPair:
    private_openssh: str
    public_line: str  # "ssh-ed25519 AAAA..."


def generate_ed25519(comment: str = "") -> KeyPair:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return KeyPair(private, f"{public} {comment}".strip())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen | None = None, polls: int = _STARTUP_POLLS) -> None:
    for _ in range(polls):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"sshd exited with status {process.returncode} before listening on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {polls * 0.05:.0f} s")


def sshd_config_text(port: int, host_key_file: Path, pid_file: Path, authorized_keys: Path, user: str) -> str:
    """The test sshd's configuration: loopback only, key login only, for one user."""
    return "\n".join(
        [
            "ListenAddress 127.0.0.1",
            f"Port {port}",
            f"HostKey {host_key_file}",
            f"PidFile {pid_file}",
            f"AuthorizedKeysFile {authorized_keys}",
            f"AllowUsers {user}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            # The test's tmp dirs are not owned the way StrictModes wants.
            "StrictModes no",
            "Subsystem sftp internal-sftp",
            # Commands run as this machine's user, whose ~/.bashrc (pyenv init) costs ~60 ms per
            # command; bash skips ~/.bashrc for an ssh command when SHLVL says it is nested
            # (bash shell.c, run_startup_files: run_by_ssh && shell_level < 2). A VM's OS Login
            # user has no such rc file, so this changes what is timed, not what is tested.
            "SetEnv SHLVL=1",
            "LogLevel ERROR",
            "MaxStartups 100",
            "MaxSessions 50",
            "",
        ]
    )


@dataclass(frozen=True)
class SshdServer:
    """A running sshd. `root` is a fresh directory per test, to be used as VmPaths(root=...)."""

    host: str
    port: int
    user: str
    client_private_key: str
    host_public_key: str
    root: Path
    state_dir: Path

    def target(self, **overrides) -> SshTarget:
        values = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "private_key": self.client_private_key,
            "host_keys": (self.host_public_key,),
            "connect_timeout": 5.0,
        }
        values.update(overrides)
        return SshTarget(**values)

    def with_root(self, root: Path) -> SshdServer:
        return replace(self, root=root)


class SshdProcess:
    """Starts and stops one sshd; use as a context manager."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.process: subprocess.Popen | None = None
        self.server: SshdServer | None = None

    def __enter__(self) -> SshdServer:
        state = self.state_dir
        state.mkdir(parents=True, exist_ok=True)
        host_key = generate_ed25519("test-host")
        client_key = generate_ed25519("test-client")
        host_key_file = state / "host_ed25519"
        host_key_file.write_text(host_key.private_openssh)
        host_key_file.chmod(0o600)
        authorized = state / "authorized_keys"
        authorized.write_text(client_key.public_line + "\n")
        authorized.chmod(0o600)
        if os.geteuid() == 0 and not PRIVSEP_DIR.exists():
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
        user = getpass.getuser()
        port = free_port()
        config = state / "sshd_config"
        config.write_text(sshd_config_text(port, host_key_file, state / "sshd.pid", authorized, user))
        # A file, not a pipe: nobody reads sshd's log while tests run, and a full pipe would stall it.
        self._log = open(state / "sshd.log", "wb")
        self.process = subprocess.Popen(
            [str(SSHD_BINARY), "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        try:
            wait_for_port(port, self.process)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}; sshd said: {(state / 'sshd.log').read_text(errors='replace')}") from None
        except BaseException:
            self.stop()
            raise
        root = state / "root"
        root.mkdir(exist_ok=True)
        self.server = SshdServer("127.0.0.1", port, user, client_key.private_openssh, host_key.public_line, root, state)
        return self.server

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()
        self.process = None

    def __exit__(self, *exc_info) -> None:
        self.stop()


def sshd_available() -> bool:
    return SSHD_BINARY.exists() and os.access(SSHD_BINARY, os.X_OK)
