"""The deploy's remote commands, asserted as exact argv lists (no SSH needed)."""

from __future__ import annotations

import getpass
import hashlib
import subprocess
from pathlib import Path

import pytest

from infra.remote import commands
from infra.remote.vm import Vm, VmPaths, VmTools

VM = Vm()  # production defaults: sudo, /srv/kit, project "kit"
COMPOSE = ["sudo", "-n", "docker", "compose", "-p", "kit", "-f", "/srv/kit/current/docker-compose.yml", "--project-directory", "/srv/kit/current"]


def test_compose_up_addresses_the_current_link_so_paths_stay_the_same_across_releases():
    assert commands.compose_up(VM) == [*COMPOSE, "up", "-d", "--remove-orphans"]


def test_recreate_names_only_the_given_services():
    assert commands.compose_recreate(VM, ["caddy"]) == [*COMPOSE, "up", "-d", "--no-deps", "--force-recreate", "caddy"]
    assert commands.compose_restart(VM, ("app", "inngest")) == [*COMPOSE, "restart", "app", "inngest"]


def test_targeted_commands_refuse_an_empty_service_list_which_compose_reads_as_all():
    with pytest.raises(ValueError, match="at least one service"):
        commands.compose_recreate(VM, [])


def test_ps_down_logs():
    assert commands.compose_ps(VM) == [*COMPOSE, "ps", "--all", "--format", "json"]
    assert commands.compose_down(VM) == [*COMPOSE, "down", "--remove-orphans"]


def test_release_directory_commands():
    release = "/srv/kit/releases/abc123"
    assert commands.read_manifest(VM, release) == ["cat", "--", f"{release}/.manifest.json"]
    assert commands.remove_tree(VM, release) == ["sudo", "-n", "rm", "-rf", "--", release]
    assert commands.prepare_release(VM, "abc123", owner="deployer", manifest_sha256="f" * 64, copy_from="/srv/kit/current", subdirs=["caddy"]) == [
        "sudo", "-n", "sh", "-c", commands.PREPARE_RELEASE_SCRIPT, "prepare-release", release, "deployer", "f" * 64, "/srv/kit/current", "caddy",
    ]
    assert commands.prepare_release(VM, "abc123", owner="deployer", manifest_sha256="f" * 64, copy_from=None, subdirs=[])[-3:] == ["deployer", "f" * 64, ""]
    assert commands.remove_files(VM, "abc123", [".manifest.json", "old.env"]) == ["sudo", "-n", "rm", "-f", "--", f"{release}/.manifest.json", f"{release}/old.env"]


def test_switch_is_a_rename_over_the_link_with_values_as_parameters_not_shell_text():
    argv = commands.switch_link(VM, "/srv/kit/releases/abc123", "/srv/kit/current")
    assert argv == ["sudo", "-n", "sh", "-c", 'ln -sfn -- "$1" "$2.next" && mv -T -- "$2.next" "$2"', "switch-link", "/srv/kit/releases/abc123", "/srv/kit/current"]


def test_secrets_probe_and_sync():
    endpoints = commands.VmEndpoints()
    assert commands.fetch_secrets(VM) == ["sudo", "-n", "/srv/kit/current/fetch-secrets.sh"]
    assert commands.probe(VM, endpoints.inngest_health) == ["curl", "--fail", "--silent", "--show-error", "--max-time", "5", "--output", "/dev/null", "http://127.0.0.1:8288/health"]
    assert commands.sync_app(VM, endpoints.app_sync) == ["curl", "--fail", "--silent", "--show-error", "--max-time", "30", "--request", "PUT", "--output", "/dev/null", "http://127.0.0.1:8290/api/inngest"]


def test_tools_and_paths_are_taken_from_the_vm_value():
    vm = Vm(tools=VmTools(sudo=(), docker=("/opt/stand-in/docker",), curl=("/usr/bin/curl",)), paths=VmPaths(root="/tmp/vm"), compose_project="kit2")
    assert commands.compose_up(vm) == ["/opt/stand-in/docker", "compose", "-p", "kit2", "-f", "/tmp/vm/srv/kit/current/docker-compose.yml", "--project-directory", "/tmp/vm/srv/kit/current", "up", "-d", "--remove-orphans"]
    assert commands.remove_tree(vm, "/tmp/vm/x") == ["rm", "-rf", "--", "/tmp/vm/x"]


def run_prepare(tmp_path, release_id, manifest_sha256, copy_from, *subdirs):
    vm = Vm(tools=VmTools(sudo=()), paths=VmPaths(root=str(tmp_path)))
    argv = commands.prepare_release(vm, release_id, owner=getpass.getuser(), manifest_sha256=manifest_sha256, copy_from=copy_from, subdirs=subdirs)
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    return completed.returncode, completed.stdout.strip(), vm.paths.release(release_id)


def test_prepare_release_script_copies_the_live_release_and_rebuilds_debris(tmp_path):
    live = tmp_path / "live"
    (live / "caddy").mkdir(parents=True)
    (live / "caddy" / "Caddyfile").write_text(":80\n")
    (live / ".manifest.json").write_text("{}")
    status, said, release = run_prepare(tmp_path, "r1", "0" * 64, str(live), "conf/extra")
    assert (status, said) == (0, "prepared")
    assert sorted(str(p.relative_to(release)) for p in Path(release).rglob("*")) == ["caddy", "caddy/Caddyfile", "conf", "conf/extra"]
    (Path(release) / "stray").write_text("debris of an interrupted run")
    run_prepare(tmp_path, "r1", "0" * 64, None)
    assert list(Path(release).iterdir()) == []


def test_prepare_release_script_leaves_a_complete_release_alone(tmp_path):
    status, said, release = run_prepare(tmp_path, "r2", "0" * 64, None)
    manifest = b'{"release": "r2"}\n'
    (Path(release) / ".manifest.json").write_bytes(manifest)
    (Path(release) / "app.env").write_text("A=1\n")
    status, said, _ = run_prepare(tmp_path, "r2", hashlib.sha256(manifest).hexdigest(), None)
    assert (status, said) == (0, "complete") and (Path(release) / "app.env").exists()


def test_logs_and_pending_recreate_builders():
    assert commands.compose_logs(VM, ["caddy"], lines=20) == [*COMPOSE, "logs", "--no-color", "--tail=20", "caddy"]
    with pytest.raises(ValueError):
        commands.compose_logs(VM, [])
    path = f"{VM.paths.data}/pending-recreate"
    assert commands.read_pending_recreate(VM) == ["cat", "--", path]
    assert commands.write_pending_recreate(VM)[-2:] == ["write-pending", path]
    assert commands.clear_pending_recreate(VM)[-3:] == ["-f", "--", path]
