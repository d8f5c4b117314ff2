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


def run_prepare(tmp_path, release_id, manifest_sha256, copy_from, *subdirs, files=None):
    """Runs the real script locally; `files` (path -> content) gives the checklist sent on stdin."""
    vm = Vm(tools=VmTools(sudo=()), paths=VmPaths(root=str(tmp_path)))
    argv = commands.prepare_release(vm, release_id, owner=getpass.getuser(), manifest_sha256=manifest_sha256, copy_from=copy_from, subdirs=subdirs)
    checklist = commands.release_checklist({path: hashlib.sha256(content.encode()).hexdigest() for path, content in (files or {"app.env": "A=1\n"}).items()})
    completed = subprocess.run(argv, input=checklist, capture_output=True, check=False)
    return completed.returncode, completed.stdout.decode().strip(), vm.paths.release(release_id)


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


def complete_release(tmp_path, release_id, files):
    _, _, release = run_prepare(tmp_path, release_id, "0" * 64, None, files=files)
    for path, content in files.items():
        (Path(release) / path).write_text(content)
    manifest = b'{"release": "r2"}\n'
    (Path(release) / ".manifest.json").write_bytes(manifest)
    return release, hashlib.sha256(manifest).hexdigest()


def test_prepare_release_script_leaves_a_complete_release_alone(tmp_path):
    files = {"app.env": "A=1\n"}
    release, manifest_sha256 = complete_release(tmp_path, "r2", files)
    status, said, _ = run_prepare(tmp_path, "r2", manifest_sha256, None, files=files)
    assert (status, said) == (0, "complete") and (Path(release) / "app.env").exists()


def test_prepare_release_rebuilds_a_release_whose_files_a_full_disk_left_empty_under_a_valid_manifest(tmp_path):
    # What the kit before `set -e` left behind: every rerun found it "complete" and switched to empty files.
    files = {"app.env": "A=1\n", "docker-compose.yml": "services: {}\n"}
    release, manifest_sha256 = complete_release(tmp_path, "r3", files)
    (Path(release) / "docker-compose.yml").write_text("")
    status, said, _ = run_prepare(tmp_path, "r3", manifest_sha256, None, files=files)
    assert (status, said) == (0, "prepared")
    assert list(Path(release).iterdir()) == []  # rebuilt from scratch: the uploads fill it again


def test_prepare_release_fails_with_the_copy_error_instead_of_saying_prepared(tmp_path):
    status, said, _ = run_prepare(tmp_path, "r4", "0" * 64, str(tmp_path / "no-such-live-release"))
    assert status != 0 and "prepared" not in said


def test_verify_release_names_a_file_that_differs_from_the_manifest(tmp_path):
    vm = Vm(tools=VmTools(sudo=()), paths=VmPaths(root=str(tmp_path)))
    release = Path(vm.paths.release("r5"))
    release.mkdir(parents=True)
    (release / "app.env").write_text("")
    checklist = commands.release_checklist({"app.env": hashlib.sha256(b"A=1\n").hexdigest()})
    assert commands.verify_release(vm, "r5") == ["sh", "-c", commands.VERIFY_RELEASE_SCRIPT, "verify-release", str(release)]
    completed = subprocess.run(commands.verify_release(vm, "r5"), input=checklist, capture_output=True, check=False)
    assert completed.returncode != 0 and b"app.env: FAILED" in completed.stdout
    (release / "app.env").write_text("A=1\n")
    assert subprocess.run(commands.verify_release(vm, "r5"), input=checklist, capture_output=True, check=False).returncode == 0


def test_logs_and_pending_recreate_builders():
    assert commands.compose_logs(VM, ["caddy"], lines=20) == [*COMPOSE, "logs", "--no-color", "--tail=20", "caddy"]
    with pytest.raises(ValueError):
        commands.compose_logs(VM, [])
    path = f"{VM.paths.data}/pending-recreate"
    assert commands.read_pending_recreate(VM) == ["cat", "--", path]
    assert commands.write_pending_recreate(VM)[-2:] == ["write-pending", path]
    assert commands.clear_pending_recreate(VM)[-3:] == ["-f", "--", path]
