"""The one SSH layer: every remote action (deploy, keys CLI, operator commands) goes through it.

A connection is made only to a server presenting one of the host keys we were given (from the VM's
guest attributes); there is no trust-on-first-use. Commands are argv lists, quoted here and only
here with `shlex.join`, so no caller builds shell strings by hand.
"""

from __future__ import annotations

import base64
import binascii
import errno
import io
import os
import select
import shlex
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Self

import paramiko

# Connection errors that mean "the VM is not reachable yet" (still booting, sshd not up, IAP tunnel
# not ready); anything else (a wrong host key, a refused login) will not get better by waiting.
_TRANSIENT_ERRNOS = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNRESET, errno.ETIMEDOUT}
_MAX_SINGLE_WAIT = 30.0
_AUTH_RETRY_INTERVAL = 15.0  # between logins refused while OS Login grants propagate
_STDERR_TAIL_CHARS = 2000
_READ_CHUNK = 32768


class SshError(Exception):
    """Base of every error this layer raises."""


class HostKeyMismatch(SshError):
    """The server did not present an expected host key; raised before authentication, so nothing was sent."""


class SshAuthenticationError(SshError):
    """The server refused our key."""


class SshConnectionError(SshError):
    """The server could not be reached, after every attempt allowed."""


class RemoteCommandError(SshError):
    def __init__(self, command: Sequence[str], exit_status: int, stderr: str):
        self.command = list(command)
        self.exit_status = exit_status
        self.stderr = stderr[-_STDERR_TAIL_CHARS:]
        message = f"remote command failed with exit status {exit_status}: {shlex.join(self.command)}"
        if self.stderr.strip():
            message += f"\n{self.stderr.rstrip()}"
        super().__init__(message)


@dataclass(frozen=True)
class SshTarget:
    host: str  # address to connect to (external IP, or the instance name when going through IAP)
    user: str
    private_key: str = field(repr=False)  # OpenSSH/PEM private key text; repr=False keeps it out of logs
    host_keys: tuple[str, ...]  # "ssh-ed25519 AAAA..." lines the server must present; empty -> refuse
    port: int = 22
    proxy_command: tuple[str, ...] | None = None  # argv, e.g. gcloud compute start-iap-tunnel ... --listen-on-stdin
    connect_timeout: float = 10.0

    @property
    def address(self) -> str:
        return self.host if self.port == 22 else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str


@dataclass
class SshStats:
    """Counts of what this process did over SSH, for benchmarks and for "a no-op opens no connection" tests."""

    connection_attempts: int = 0
    connections_opened: int = 0
    commands_run: int = 0
    uploads: int = 0

    def reset(self) -> None:
        self.connection_attempts = self.connections_opened = self.commands_run = self.uploads = 0


STATS = SshStats()
_stats_lock = threading.Lock()


def _count(attribute: str) -> None:
    with _stats_lock:
        setattr(STATS, attribute, getattr(STATS, attribute) + 1)


def parse_host_key(line: str) -> paramiko.PKey:
    """A key from an OpenSSH public key line ("ssh-ed25519 AAAA... [comment]")."""
    parts = line.split()
    if len(parts) < 2:
        raise ValueError(f"host key {line!r} is not an OpenSSH public key line; expected 'TYPE BASE64 [comment]'")
    key_type, blob = parts[0], parts[1]
    try:
        return paramiko.PKey.from_type_string(key_type, base64.b64decode(blob, validate=True))
    except (binascii.Error, paramiko.SSHException, ValueError) as exc:
        raise ValueError(f"host key of type {key_type!r} cannot be read ({exc}); expected 'TYPE BASE64 [comment]'") from exc


def _load_private_key(text: str) -> paramiko.PKey:
    errors = []
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError) as exc:
            errors.append(f"{key_class.__name__}: {exc}")
    # Never include the key text itself in the message.
    raise SshAuthenticationError("the SSH private key could not be read as an Ed25519, ECDSA or RSA key (" + "; ".join(errors) + ")")


class _RejectUnknownHostKey(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key):
        raise HostKeyMismatch(
            f"{hostname} presented a {key.get_name()} host key ({key.fingerprint}) that is not among the expected keys; "
            "refusing to connect. If the VM was recreated, fetch its current keys from the guest attributes (hostkeys/)."
        )


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (HostKeyMismatch, paramiko.BadHostKeyException, paramiko.AuthenticationException)):
        return False
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return True
    if isinstance(exc, (socket.timeout, TimeoutError, EOFError, paramiko.ProxyCommandFailure)):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _TRANSIENT_ERRNOS
    # sshd accepted the TCP connection but closed it before its banner: it is still starting.
    return isinstance(exc, paramiko.SSHException) and "banner" in str(exc).lower()


def _require_host_keys(target: SshTarget) -> None:
    if not target.host_keys:
        raise HostKeyMismatch(
            f"no host key is known for {target.address}; refusing to connect without one. "
            "The VM publishes its keys in guest attributes (hostkeys/) shortly after boot."
        )
    for line in target.host_keys:
        parse_host_key(line)


def _client_for(target: SshTarget) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    # Deliberately no load_system_host_keys(): only the keys we were given count.
    known = client.get_host_keys()
    for line in target.host_keys:
        key = parse_host_key(line)
        for name in (target.host, f"[{target.host}]:{target.port}"):
            known.add(name, key.get_name(), key)
    client.set_missing_host_key_policy(_RejectUnknownHostKey())
    return client


def _open(target: SshTarget, pkey: paramiko.PKey) -> paramiko.SSHClient:
    client = _client_for(target)
    sock = paramiko.ProxyCommand(shlex.join(target.proxy_command)) if target.proxy_command else None
    try:
        client.connect(
            hostname=target.host,
            port=target.port,
            username=target.user,
            pkey=pkey,
            sock=sock,
            timeout=target.connect_timeout,
            banner_timeout=target.connect_timeout,
            auth_timeout=target.connect_timeout,
            allow_agent=False,
            look_for_keys=False,
        )
    except BaseException:
        client.close()
        if sock is not None:
            sock.close()
        raise
    return client


def connect(
    target: SshTarget,
    *,
    attempts: int = 1,
    backoff: float = 2.0,
    max_wait: float = 300.0,
    auth_wait: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Session:
    """Open a verified connection, retrying while the VM is unreachable.

    Waits `backoff`, then twice as long each time (at most 30 s per wait), for up to `attempts`
    attempts in all and at most `max_wait` seconds of waiting. A host-key mismatch fails at once.
    A refused login is retried for up to `auth_wait` seconds (none by default): a freshly granted
    OS Login role or imported key takes minutes to reach the VM (IAM changes "typically" within 2
    minutes, sometimes 7 or more: https://cloud.google.com/iam/docs/access-change-propagation).
    """
    _require_host_keys(target)
    pkey = _load_private_key(target.private_key)
    waited = auth_waited = 0.0
    attempt = unreachable = 0
    last_error: BaseException | None = None
    while True:
        attempt += 1
        _count("connection_attempts")
        try:
            client = _open(target, pkey)
        except paramiko.BadHostKeyException as exc:
            raise HostKeyMismatch(
                f"{target.address} presented a {exc.key.get_name()} host key ({exc.key.fingerprint}) that does not match "
                f"the expected one ({exc.expected_key.fingerprint}); refusing to connect. "
                "If the VM was recreated, fetch its current keys from the guest attributes (hostkeys/)."
            ) from None
        except paramiko.AuthenticationException as exc:
            delay = min(_AUTH_RETRY_INTERVAL, auth_wait - auth_waited)
            if delay > 0:
                sleep(delay)
                auth_waited += delay
                continue
            retried = f" (still refused after {auth_waited:.0f} s of retrying)" if auth_waited else ""
            raise SshAuthenticationError(
                f"{target.address} refused the deploy key for user {target.user!r}{retried} ({exc}). "
                "Check that the key is registered in that user's OS Login profile (`gcloud compute os-login describe-profile`) "
                "and the user has roles/compute.osAdminLogin."
            ) from None
        except Exception as exc:
            if not _is_transient(exc):
                raise SshConnectionError(f"cannot connect to {target.address}: {exc}") from exc
            last_error = exc
            unreachable += 1
            delay = min(backoff * (2 ** (unreachable - 1)), _MAX_SINGLE_WAIT, max_wait - waited)
            if unreachable >= max(1, attempts) or delay <= 0:
                break
            sleep(delay)
            waited += delay
            continue
        _count("connections_opened")
        return Session(target, client)
    raise SshConnectionError(
        f"cannot connect to {target.address} after {attempt} attempt(s) and {waited:.0f} s of waiting: {last_error}. "
        "Is the VM running, and is port 22 open to you (IAP range or your own)?"
    )


class Session:
    """One live, verified connection. Use it as a context manager so it is always closed."""

    def __init__(self, target: SshTarget, client: paramiko.SSHClient):
        self.target = target
        self._client = client
        self._sftp: paramiko.SFTPClient | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None
        self._client.close()

    def _exec(self, argv: Sequence[str], timeout: float | None) -> paramiko.Channel:
        if not argv:
            raise ValueError("a remote command needs at least one argument")
        _count("commands_run")
        channel = self._client.get_transport().open_session(timeout=timeout)
        channel.exec_command(shlex.join(argv))
        return channel

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run argv on the VM and collect its output. `timeout` bounds the whole command, in seconds."""
        stdout, stderr = io.BytesIO(), io.BytesIO()
        status = self._pump(argv, stdout, stderr, stdin=stdin, timeout=timeout)
        result = CommandResult(status, stdout.getvalue().decode(errors="replace"), stderr.getvalue().decode(errors="replace"))
        if check and status != 0:
            raise RemoteCommandError(argv, status, result.stderr)
        return result

    def stream(self, argv: Sequence[str], stdout: BinaryIO, stderr: BinaryIO, *, timeout: float | None = None) -> int:
        """Run argv, copying its output to the given files as it arrives (for `logs -f`); returns the exit status."""
        return self._pump(argv, stdout, stderr, stdin=None, timeout=timeout)

    def _pump(self, argv: Sequence[str], stdout: BinaryIO, stderr: BinaryIO, *, stdin: bytes | None, timeout: float | None) -> int:
        channel = self._exec(argv, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            if stdin is not None:
                channel.sendall(stdin)
            channel.shutdown_write()
            wake = channel.fileno()
            while True:
                while channel.recv_ready():
                    _write(stdout, channel.recv(_READ_CHUNK))
                while channel.recv_stderr_ready():
                    _write(stderr, channel.recv_stderr(_READ_CHUNK))
                drained = not channel.recv_ready() and not channel.recv_stderr_ready()
                if drained and channel.exit_status_ready() and (channel.eof_received or channel.closed):
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise RemoteCommandError(argv, -1, f"timed out after {timeout} s")
                select.select([wake], [], [], min(remaining, 1.0) if remaining is not None else 1.0)
            return channel.recv_exit_status()
        finally:
            channel.close()

    def upload(self, path: str, content: bytes, mode: int = 0o644) -> None:
        """Write a file atomically: a temporary file beside it, then a rename over the target."""
        if self._sftp is None:
            self._sftp = self._client.open_sftp()
        temporary = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
        try:
            with self._sftp.open(temporary, "wb") as remote_file:
                remote_file.write(content)
            self._sftp.chmod(temporary, mode)
            self._sftp.posix_rename(temporary, path)
        except BaseException:
            try:
                self._sftp.remove(temporary)
            except (OSError, paramiko.SSHException):
                pass  # the connection may be gone; a stray temporary file is harmless
            raise
        _count("uploads")

    def interactive_shell(self, stdin_fd: int | None = None, stdout_fd: int | None = None) -> int:
        """An interactive login shell on the VM, wired to this terminal; returns the shell's exit status."""
        in_fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
        out_fd = sys.stdout.fileno() if stdout_fd is None else stdout_fd
        try:
            columns, lines = os.get_terminal_size(out_fd)
        except OSError:
            columns, lines = 80, 24
        channel = self._client.get_transport().open_session()
        channel.get_pty(term=os.environ.get("TERM", "xterm"), width=columns, height=lines)
        channel.invoke_shell()
        _count("commands_run")
        restore = _raw_terminal(in_fd)
        try:
            stdin_open = True
            while not channel.exit_status_ready() or channel.recv_ready():
                readable, _, _ = select.select([channel] + ([in_fd] if stdin_open else []), [], [], 1.0)
                if channel in readable:
                    data = channel.recv(_READ_CHUNK)
                    if not data:
                        break
                    os.write(out_fd, data)
                if in_fd in readable:
                    data = os.read(in_fd, 1024)
                    if data:
                        channel.sendall(data)
                    else:
                        stdin_open = False
                        channel.shutdown_write()
            return channel.recv_exit_status()
        finally:
            restore()
            channel.close()


def _write(target: BinaryIO, data: bytes) -> None:
    target.write(data)
    if hasattr(target, "flush"):
        target.flush()


def _raw_terminal(fd: int) -> Callable[[], None]:
    """Put a terminal in raw mode so keys (Ctrl-C included) go to the remote shell; returns the undo."""
    if not os.isatty(fd):
        return lambda: None
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)
