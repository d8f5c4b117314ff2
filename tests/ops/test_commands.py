"""The exact remote commands the operator commands run."""

from __future__ import annotations

import pytest

from infra.ops import commands
from infra.remote.vm import Vm, VmPaths, VmTools

VM = Vm()
COMPOSE = ["sudo", "-n", "docker", "compose", "-p", "kit", "-f", "/srv/kit/current/docker-compose.yml", "--project-directory", "/srv/kit/current"]


def test_container_states_lists_every_container_as_json():
    assert commands.container_states(VM) == [*COMPOSE, "ps", "--all", "--format", "json"]


def test_logs_defaults():
    assert commands.container_logs(VM) == [*COMPOSE, "logs", "--no-color", "--tail=100"]


def test_logs_with_every_option():
    assert commands.container_logs(VM, "inngest", lines=20, since="10m", follow=True) == [
        *COMPOSE, "logs", "--no-color", "--tail=20", "--since=10m", "--follow", "inngest",
    ]


def test_inngest_health_prints_the_status_code_of_the_loopback_endpoint():
    assert commands.inngest_health(VM) == [
        "curl", "--silent", "--show-error", "--max-time", "5", "--output", "/dev/null", "--write-out", "%{http_code}", "http://127.0.0.1:8288/health",
    ]


def test_live_release_passes_the_link_as_a_parameter_not_as_shell_text():
    assert commands.live_release(VM) == ["sh", "-c", commands.RELEASE_SCRIPT, "live-release", "/srv/kit/current"]


def test_certificate_commands():
    assert commands.find_certificates(VM, "app.example.com") == [
        "sudo", "-n", "find", "/srv/kit/caddy/data/caddy/certificates", "-type", "f", "-name", "app.example.com.crt",
    ]
    assert commands.certificate_expiry(VM, "/x/app.example.com.crt") == ["sudo", "-n", "openssl", "x509", "-enddate", "-noout", "-in", "/x/app.example.com.crt"]


def test_audit_commands():
    assert commands.audit_tail(VM, lines=7) == ["sudo", "-n", "tail", "-n", "7", "--", "/srv/kit/audit.log"]
    assert commands.audit_append(VM) == ["sudo", "-n", "tee", "-a", "--", "/srv/kit/audit.log"]


@pytest.mark.parametrize(
    "builder",
    [
        lambda vm: commands.container_states(vm),
        lambda vm: commands.live_release(vm),
        lambda vm: commands.find_certificates(vm, "d.example.com"),
        lambda vm: commands.audit_tail(vm),
    ],
)
def test_relocated_vm_moves_every_path_and_tool(builder):
    vm = Vm(tools=VmTools(sudo=(), docker=("/t/docker",), curl=("/t/curl",)), paths=VmPaths(root="/tmp/vm"))
    argv = builder(vm)
    assert "sudo" not in argv
    paths = [arg for arg in argv if arg.startswith("/") and arg != "/t/docker"]
    assert paths and all(path.startswith("/tmp/vm/srv/kit") for path in paths)
