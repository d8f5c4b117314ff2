"""The SSH layer against a real sshd on 127.0.0.1."""

from __future__ import annotations

import io
import os
import sys
import tempfile

import paramiko
import pytest

from infra.remote import ssh
from tests.support.sshd import free_port, generate_ed25519

# Pipes stdin/stdout to a TCP port, as `gcloud compute start-iap-tunnel ... --listen-on-stdin` does.
STDIO_TO_TCP = """
import os, selectors, socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
sel = selectors.DefaultSelector()
sel.register(0, selectors.EVENT_READ)
sel.register(sock, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj == 0:
            data = os.read(0, 65536)
            if not data:
                sock.shutdown(socket.SHUT_WR); sel.unregister(0); continue
            sock.sendall(data)
        else:
            data = sock.recv(65536)
            if not data:
                sys.exit(0)
            os.write(1, data)
"""


def test_run_returns_output_and_exit_status(sshd, ssh_stats):
    with ssh.connect(sshd.target()) as session:
        result = session.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert result == ssh.CommandResult(3, "out\n", "err\n")
    assert (ssh_stats.connections_opened, ssh_stats.commands_run) == (1, 1)


def test_failed_command_raises_with_command_status_and_stderr(sshd):
    with ssh.connect(sshd.target()) as session, pytest.raises(ssh.RemoteCommandError) as failure:
        session.run(["sh", "-c", "echo 'disk is full' >&2; exit 5"])
    assert failure.value.exit_status == 5
    assert failure.value.command == ["sh", "-c", "echo 'disk is full' >&2; exit 5"]
    assert "disk is full" in failure.value.stderr
    assert "exit status 5" in str(failure.value) and "sh -c" in str(failure.value)


def test_arguments_reach_the_remote_side_literally(sshd):
    marker = sshd.root / "marker"
    tricky = f"a b; touch {marker}; $(touch {marker}) 'q' \"d\" *"
    with ssh.connect(sshd.target()) as session:
        result = session.run(["printf", "%s", tricky])
    assert result.stdout == tricky
    assert not marker.exists()


def test_stdin_is_passed_to_the_command(sshd):
    with ssh.connect(sshd.target()) as session:
        assert session.run(["cat"], stdin=b"line one\nline two\n").stdout == "line one\nline two\n"


def test_timeout_stops_waiting_for_a_command(sshd):
    with ssh.connect(sshd.target()) as session, pytest.raises(ssh.RemoteCommandError, match="timed out"):
        session.run(["sleep", "30"], timeout=0.3)


def test_stream_copies_output_as_it_arrives(sshd):
    out, err = io.BytesIO(), io.BytesIO()
    with ssh.connect(sshd.target()) as session:
        status = session.stream(["sh", "-c", "echo one; echo two >&2; exit 4"], out, err)
    assert (status, out.getvalue(), err.getvalue()) == (4, b"one\n", b"two\n")


def test_upload_writes_content_and_mode(sshd, ssh_stats):
    path = sshd.root / "compose.yaml"
    with ssh.connect(sshd.target()) as session:
        session.upload(str(path), b"services: {}\n", 0o640)
    assert path.read_bytes() == b"services: {}\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert os.listdir(sshd.root) == ["compose.yaml"]  # no temporary file left behind
    assert ssh_stats.uploads == 1


def test_upload_replaces_the_file_by_rename_not_in_place(sshd):
    path = sshd.root / "settings.env"
    path.write_bytes(b"old\n")
    reader_view = sshd.root / "held-open-by-a-reader"
    os.link(path, reader_view)  # a reader holding the old file must keep seeing it whole
    with ssh.connect(sshd.target()) as session:
        session.upload(str(path), b"new\n")
    assert path.read_bytes() == b"new\n"
    assert reader_view.read_bytes() == b"old\n"


def test_upload_dropped_mid_way_leaves_the_old_file_intact(sshd, flaky_proxy):
    path = sshd.root / "big.bin"
    path.write_bytes(b"previous release\n")
    proxy = flaky_proxy(sshd.port, cut_after_bytes=200_000)
    target = sshd.target(port=proxy.port, host_keys=(sshd.host_public_key,))
    with pytest.raises((OSError, EOFError, paramiko.SSHException)), ssh.connect(target) as session:
        session.upload(str(path), os.urandom(2_000_000))
    assert path.read_bytes() == b"previous release\n"


def _record_authentication(monkeypatch) -> list[str]:
    attempts: list[str] = []
    original = paramiko.Transport.auth_publickey

    def recording(self, username, key, *args, **kwargs):
        attempts.append(username)
        return original(self, username, key, *args, **kwargs)

    monkeypatch.setattr(paramiko.Transport, "auth_publickey", recording)
    return attempts


def test_wrong_host_key_is_refused_before_authentication(sshd, monkeypatch):
    authentications = _record_authentication(monkeypatch)
    impostor_key = generate_ed25519().public_line
    marker = sshd.root / "ran"
    with pytest.raises(ssh.HostKeyMismatch, match="does not match"), ssh.connect(sshd.target(host_keys=(impostor_key,))) as session:
        session.run(["touch", str(marker)])
    assert authentications == []
    assert not marker.exists()


def test_host_key_of_an_unexpected_type_is_refused(sshd, monkeypatch):
    authentications = _record_authentication(monkeypatch)
    ecdsa = paramiko.ECDSAKey.generate()
    with pytest.raises(ssh.HostKeyMismatch):
        ssh.connect(sshd.target(host_keys=(f"{ecdsa.get_name()} {ecdsa.get_base64()}",)))
    assert authentications == []


def test_right_key_among_several_is_accepted(sshd):
    ecdsa = paramiko.ECDSAKey.generate()
    keys = (f"{ecdsa.get_name()} {ecdsa.get_base64()}", sshd.host_public_key)
    with ssh.connect(sshd.target(host_keys=keys)) as session:
        assert session.run(["true"]).exit_status == 0


def test_no_host_keys_means_no_connection_at_all(sshd, flaky_proxy, ssh_stats):
    proxy = flaky_proxy(sshd.port)
    with pytest.raises(ssh.HostKeyMismatch, match="no host key is known"):
        ssh.connect(sshd.target(port=proxy.port, host_keys=()))
    assert proxy.connections == 0
    assert ssh_stats.connection_attempts == 0


def test_malformed_host_key_is_a_clear_error(sshd):
    with pytest.raises(ValueError, match="expected 'TYPE BASE64"):
        ssh.connect(sshd.target(host_keys=("not-a-key",)))


def test_refused_connection_is_retried_with_growing_waits():
    waits: list[float] = []
    target = ssh.SshTarget("127.0.0.1", "deploy", generate_ed25519().private_openssh, (generate_ed25519().public_line,), port=free_port())
    ssh.STATS.reset()
    with pytest.raises(ssh.SshConnectionError, match="after 3 attempt"):
        ssh.connect(target, attempts=3, backoff=2.0, sleep=waits.append)
    assert waits == [2.0, 4.0]
    assert ssh.STATS.connection_attempts == 3


def test_waiting_stops_at_max_wait():
    waits: list[float] = []
    target = ssh.SshTarget("127.0.0.1", "deploy", generate_ed25519().private_openssh, (generate_ed25519().public_line,), port=free_port())
    with pytest.raises(ssh.SshConnectionError):
        ssh.connect(target, attempts=10, backoff=2.0, max_wait=5.0, sleep=waits.append)
    assert waits == [2.0, 3.0]


def test_server_that_is_not_ready_yet_is_retried_until_it_answers(sshd, flaky_proxy):
    proxy = flaky_proxy(sshd.port)
    proxy.cut()  # accepts TCP and hangs up at once, like a VM whose sshd is still starting
    waits: list[float] = []

    def wait_while_the_vm_boots(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            proxy.heal()

    with ssh.connect(sshd.target(port=proxy.port, host_keys=(sshd.host_public_key,)), attempts=5, sleep=wait_while_the_vm_boots) as session:
        assert session.run(["echo", "up"]).stdout == "up\n"
    assert len(waits) == 2


def test_refused_login_is_not_retried(sshd):
    waits: list[float] = []
    stranger = sshd.target(private_key=generate_ed25519().private_openssh)
    with pytest.raises(ssh.SshAuthenticationError, match="OS Login"):
        ssh.connect(stranger, attempts=5, sleep=waits.append)
    assert waits == []


def test_host_key_mismatch_is_not_retried(sshd):
    waits: list[float] = []
    with pytest.raises(ssh.HostKeyMismatch):
        ssh.connect(sshd.target(host_keys=(generate_ed25519().public_line,)), attempts=5, sleep=waits.append)
    assert waits == []


def test_proxy_command_carries_the_connection(sshd):
    # As through IAP: the host is the instance name, and the host key is checked against that name.
    proxy = (sys.executable, "-c", STDIO_TO_TCP, "127.0.0.1", str(sshd.port))
    target = sshd.target(host="kit-vm", port=22, proxy_command=proxy)
    with ssh.connect(target) as session:
        assert session.run(["echo", "through the tunnel"]).stdout == "through the tunnel\n"


def test_proxy_command_still_checks_the_host_key(sshd):
    proxy = (sys.executable, "-c", STDIO_TO_TCP, "127.0.0.1", str(sshd.port))
    target = sshd.target(host="kit-vm", port=22, proxy_command=proxy, host_keys=(generate_ed25519().public_line,))
    with pytest.raises(ssh.HostKeyMismatch):
        ssh.connect(target)


def test_interactive_shell_forwards_input_and_returns_the_exit_status(sshd):
    read_end, write_end = os.pipe()
    os.write(write_end, b"echo from-the-$((6*7))-shell\nexit 7\n")
    os.close(write_end)
    with tempfile.TemporaryFile() as screen, ssh.connect(sshd.target()) as session:
        status = session.interactive_shell(stdin_fd=read_end, stdout_fd=screen.fileno())
        screen.seek(0)
        shown = screen.read()
    os.close(read_end)
    assert status == 7
    assert b"from-the-42-shell" in shown


def test_private_key_never_appears_in_repr(sshd):
    target = sshd.target()
    assert "PRIVATE KEY" not in repr(target)
    assert target.private_key.strip().splitlines()[1] not in repr(target)


def _authorized_keys(sshd):
    return sshd.state_dir / "authorized_keys"


def test_a_refused_login_is_retried_until_the_key_is_honoured(sshd):
    """A freshly granted OS Login role or imported key takes minutes to reach the VM."""
    late = generate_ed25519("granted-late")
    authorized = _authorized_keys(sshd)
    original = authorized.read_text()
    waits: list[float] = []

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 2:  # the grant arrives during the second wait
            authorized.write_text(original + late.public_line + "\n")

    try:
        with ssh.connect(sshd.target(private_key=late.private_openssh), auth_wait=120, sleep=sleep) as session:
            assert session.run(["true"]).exit_status == 0
    finally:
        authorized.write_text(original)
    assert waits == [15.0, 15.0]


def test_a_login_still_refused_after_the_auth_wait_fails_saying_how_long_it_tried(sshd, ssh_stats):
    waits: list[float] = []
    with pytest.raises(ssh.SshAuthenticationError, match=r"refused the deploy key .*still refused after 40 s of retrying"):
        ssh.connect(sshd.target(private_key=generate_ed25519().private_openssh), attempts=1, auth_wait=40, sleep=waits.append)
    assert waits == [15.0, 15.0, 10.0]
    assert ssh_stats.connection_attempts == 4


def test_without_an_auth_wait_a_refused_login_fails_at_once(sshd):
    waits: list[float] = []
    with pytest.raises(ssh.SshAuthenticationError, match="refused the deploy key"):
        ssh.connect(sshd.target(private_key=generate_ed25519().private_openssh), attempts=5, sleep=waits.append)
    assert waits == []
