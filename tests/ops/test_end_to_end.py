"""`python -m infra status | logs | audit | ssh` end to end: a real sshd as the VM, the recording
stand-in for `docker`, the real curl and openssl, and an HTTP server standing in for Inngest's /health."""

from __future__ import annotations

import argparse
import http.server
import io
import json
import os
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infra import layout
from infra.ops import cli
from infra.ops.audit import entry
from infra.ops.commands import audit_append
from infra.ops.reach import OpsContext
from infra.ops.status import KeyAge
from infra.remote import ssh
from infra.remote.vm import Vm, VmPaths, VmTools
from tests.support.fake_docker import FakeDocker
from tests.support.sshd import generate_ed25519

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DOMAIN = "app.acme-example.com"
COMPOSE = {"services": {"app": {"image": "ghcr.io/acme/web:1.4.2", "healthcheck": {"test": ["CMD", "true"]}}, "inngest": {"image": "inngest/inngest:v1.43.0"}}}


class HealthHandler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def inngest_health():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HealthHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()
    thread.join(timeout=2)


@pytest.fixture
def vm(sshd, tmp_path):
    fake = FakeDocker.install(tmp_path / "docker")
    return fake, Vm(tools=VmTools(sudo=(), docker=(fake.executable,), curl=("curl",)), paths=VmPaths(root=str(sshd.root)))


def context(sshd, vm: Vm, url: str, key_ages=lambda: "not available (no Secret Manager in this test)", **target_overrides) -> OpsContext:
    return OpsContext(
        target=sshd.target(**target_overrides),
        vm=vm,
        vm_name="acme-vm",
        domain=DOMAIN,
        vm_state=lambda: "RUNNING",
        key_ages=key_ages,
        inngest_url=url,
    )


def deploy_release(fake: FakeDocker, vm: Vm, release_id: str, deployed_at: datetime) -> Path:
    release = Path(vm.paths.release(release_id))
    release.mkdir(parents=True)
    (release / "docker-compose.yml").write_text(json.dumps(COMPOSE))
    current = Path(vm.paths.current)
    current.symlink_to(release)
    os.utime(current, (deployed_at.timestamp(), deployed_at.timestamp()), follow_symlinks=False)
    subprocess.run([fake.executable, "compose", "-p", "kit", "-f", f"{current}/docker-compose.yml", "--project-directory", str(current), "up", "-d"], check=True, capture_output=True)
    return release


def write_certificate(vm: Vm, expires: datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(expires - timedelta(days=90))
        .not_valid_after(expires)
        .sign(key, hashes.SHA256())
    )
    directory = Path(f"{vm.paths.root}{layout.CADDY_DATA_DIR}/caddy/certificates/acme-v02.api.letsencrypt.org-directory/{DOMAIN}")
    directory.mkdir(parents=True)
    (directory / f"{DOMAIN}.crt").write_bytes(certificate.public_bytes(serialization_pem()))


def serialization_pem():
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.PEM


def parser_with(ctx: OpsContext) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra")
    subparsers = parser.add_subparsers(dest="command", required=True)
    cli.register(subparsers, context_factory=lambda stack, via: ctx, now=lambda: NOW)
    return parser


def run_cli(ctx: OpsContext, argv: list[str], capsys) -> tuple[int, str, str]:
    args = parser_with(ctx).parse_args(argv)
    code = args.func(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_status_reports_everything_over_one_connection(sshd, vm, inngest_health, capsys, ssh_stats):
    fake, machine = vm
    deploy_release(fake, machine, "20261124-090000-ab12", NOW - timedelta(hours=3))
    fake.set_health("app", "healthy")
    write_certificate(machine, datetime(2027, 2, 1, 10, 0, tzinfo=UTC))

    # Secret Manager reports naive UTC times; the status must take them as UTC.
    ages = [KeyAge("inngest-signing-key", "3", datetime(2026, 11, 14, 12, 0)), KeyAge("inngest-event-key", "1", datetime(2026, 9, 1, 12, 0))]
    code, out, err = run_cli(context(sshd, machine, inngest_health, key_ages=lambda: ages), ["status"], capsys)

    assert (code, err) == (0, "")
    assert out == (
        "VM          acme-vm: RUNNING\n"
        "containers  app      running  healthy\n"
        "            inngest  running\n"
        "inngest     /health HTTP 200\n"
        "release     20261124-090000-ab12 (live since 2026-11-24 09:00 UTC, 3h ago)\n"
        "TLS         app.acme-example.com expires 2027-02-01 10:00 UTC (in 68 days)\n"
        "keys        inngest-signing-key version 3, created 10d ago\n"
        "            inngest-event-key version 1, created 84d ago\n"
    )
    assert ssh_stats.connections_opened == 1
    assert fake.compose_calls("ps")[-1][-4:] == ["ps", "--all", "--format", "json"]


def test_status_json_for_a_vm_with_nothing_deployed(sshd, vm, capsys):
    _, machine = vm
    # Nothing listens on the "Inngest" port: a free port from the sshd helper's allocator.
    from tests.support.sshd import free_port

    code, out, _ = run_cli(context(sshd, machine, f"http://127.0.0.1:{free_port()}/health"), ["status", "--json"], capsys)

    data = json.loads(out)
    assert code == 0
    assert data["ok"] is False
    assert data["containers"] == []
    assert data["inngest"]["ok"] is False and data["inngest"]["detail"].startswith("not answering (curl: (7)")
    assert (data["release"], data["release_problem"]) == (None, "no release deployed yet")
    assert data["certificate"]["problem"].startswith("no certificate yet")
    assert (data["keys"], data["keys_problem"]) == (None, "not available (no Secret Manager in this test)")


def test_unhealthy_inngest_and_container_show_in_json(sshd, vm, inngest_health, capsys, monkeypatch):
    fake, machine = vm
    deploy_release(fake, machine, "r1", NOW - timedelta(minutes=5))
    fake.set_health("app", "unhealthy")
    monkeypatch.setattr(HealthHandler, "status", 503)

    _, out, _ = run_cli(context(sshd, machine, inngest_health), ["status", "--json"], capsys)

    data = json.loads(out)
    assert data["ok"] is False
    assert {c["service"]: (c["health"], c["ok"]) for c in data["containers"]} == {"app": ("unhealthy", False), "inngest": ("", True)}
    assert data["inngest"] == {"ok": False, "detail": "HTTP 503"}


def test_logs_runs_the_exact_compose_command_and_streams_its_output(sshd, vm, inngest_health):
    fake, machine = vm
    deploy_release(fake, machine, "r1", NOW)
    out, err = io.BytesIO(), io.BytesIO()

    code = cli.run_logs(context(sshd, machine, inngest_health), service="app", follow=False, since="10m", lines=5, stdout=out, stderr=err)

    current = machine.paths.current
    assert code == 0
    assert fake.compose_calls("logs") == [
        ["compose", "-p", "kit", "-f", f"{current}/docker-compose.yml", "--project-directory", current, "logs", "--no-color", "--tail=5", "--since=10m", "app"]
    ]
    assert out.getvalue() == b"app-1  | stand-in: create\n"


def test_logs_failure_is_a_remote_failure(sshd, vm, inngest_health):
    fake, machine = vm
    fake.fail("logs", stderr="no such service: nope", exit_status=1)
    err = io.BytesIO()
    code = cli.run_logs(context(sshd, machine, inngest_health), service="nope", follow=False, since=None, lines=5, stdout=io.BytesIO(), stderr=err)
    assert (code, err.getvalue()) == (1, b"no such service: nope\n")


def test_audit_reads_back_what_the_deploy_appended(sshd, vm, inngest_health, capsys):
    _, machine = vm
    Path(machine.paths.audit_log).parent.mkdir(parents=True)
    with ssh.connect(sshd.target()) as session:
        session.run(audit_append(machine), stdin=entry("deploy", at=NOW, release="r1").encode())
        session.run(audit_append(machine), stdin=entry("rotate", at=NOW + timedelta(minutes=1), key="signing", fingerprint="3f2a9c1d").encode())

    code, out, _ = run_cli(context(sshd, machine, inngest_health), ["audit", "--lines", "1"], capsys)
    assert (code, out) == (0, "2026-11-24T12:01:00Z  rotate  key=signing  fingerprint=3f2a9c1d\n")

    code, out, _ = run_cli(context(sshd, machine, inngest_health), ["audit", "--json"], capsys)
    assert [record["action"] for record in json.loads(out)] == ["deploy", "rotate"]


def test_audit_without_a_log_says_so(sshd, vm, inngest_health, capsys):
    _, machine = vm
    assert run_cli(context(sshd, machine, inngest_health), ["audit"], capsys)[:2] == (0, "no deploy or rotation recorded yet\n")


def test_wrong_host_key_is_a_remote_failure_and_runs_nothing(sshd, vm, inngest_health, capsys):
    fake, machine = vm
    ctx = context(sshd, machine, inngest_health, host_keys=(generate_ed25519().public_line,))
    for argv in (["status"], ["logs"], ["audit"], ["ssh"]):
        code, out, err = run_cli(ctx, argv, capsys)
        assert (code, out) == (1, "")
        assert "cannot reach the VM" in err and "does not match" in err
    assert fake.calls() == []
