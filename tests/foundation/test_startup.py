"""The VM startup script and the systemd unit it installs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from infra import layout, startup
from infra.startup import COMPOSE_VERSION, DOCKER_VERSION, render_startup_script, render_unit, startup_script_version


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck (Debian package) is missing: run `sudo make test-deps`")
def test_startup_script_is_clean_under_shellcheck(tmp_path):
    path = tmp_path / "startup.sh"
    path.write_text(render_startup_script())
    run = subprocess.run(["shellcheck", "--shell=bash", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout


def test_docker_and_compose_are_pinned():
    script = render_startup_script()
    assert f"DOCKER_VERSION={DOCKER_VERSION}" in script
    assert f"COMPOSE_VERSION={COMPOSE_VERSION}" in script
    assert '"docker-ce=$DOCKER_VERSION"' in script and '"docker-compose-plugin=$COMPOSE_VERSION"' in script
    assert "apt-mark hold" in script


def test_data_disk_is_mounted_at_the_fixed_path_and_only_a_blank_disk_is_formatted():
    script = render_startup_script()
    assert f"DATA_DEVICE={layout.DATA_DISK_DEVICE}" in script
    assert f"DATA_MOUNT={layout.DATA_MOUNT}" in script
    assert script.index("blkid -p") < script.index("mkfs.ext4")
    assert 'mountpoint -q "$DATA_MOUNT" || mount' in script


def test_unit_brings_the_current_release_up_after_fetching_secrets():
    unit = render_unit()
    assert f"ConditionPathExists={layout.CURRENT_LINK}/docker-compose.yml" in unit
    assert f"ExecStartPre={layout.CURRENT_LINK}/fetch-secrets.sh" in unit
    assert "ExecStart=/usr/bin/docker compose -p kit up -d --remove-orphans" in unit
    assert f"RequiresMountsFor={layout.DATA_MOUNT}" in unit
    assert "WantedBy=multi-user.target" in unit
    assert unit in render_startup_script()


def test_container_logs_are_rotated_and_shipped_to_cloud_logging():
    script = render_startup_script()
    daemon = json.loads(script.split("/etc/docker/daemon.json <<'JSON'\n", 1)[1].split("\nJSON\n", 1)[0])
    assert daemon["log-driver"] == "json-file"
    assert daemon["log-opts"] == {"max-size": "10m", "max-file": "5"}
    agent = yaml.safe_load(script.split("/etc/google-cloud-ops-agent/config.yaml <<'YAML' || return 1\n", 1)[1].split("\nYAML\n", 1)[0])
    receiver = agent["logging"]["receivers"]["docker_containers"]
    assert receiver["include_paths"] == ["/var/lib/docker/containers/*/*-json.log"]
    assert agent["logging"]["service"]["pipelines"]["docker"]["receivers"] == ["docker_containers"]
    assert "google-cloud-ops-agent" in script


def test_the_script_records_its_own_version_which_is_the_hash_of_the_script_without_it(monkeypatch):
    script = render_startup_script()
    version = startup_script_version()
    assert f"STARTUP_VERSION={version}\n" in script
    assert hashlib.sha256(script.replace(f"STARTUP_VERSION={version}", "STARTUP_VERSION=").encode()).hexdigest() == version
    monkeypatch.setattr(startup, "DOCKER_VERSION", "5:29.0.0-1~debian.12~bookworm")
    assert startup_script_version() != version


def test_the_stack_unit_comes_before_the_optional_ops_agent_and_the_record_comes_last():
    script = render_startup_script()
    unit_installed = script.index(f"systemctl enable {layout.SYSTEMD_UNIT}")
    assert script.index('"docker-ce=$DOCKER_VERSION"') < unit_installed < script.index("add-google-cloud-ops-agent-repo.sh")
    assert script.index("if ! install_ops_agent; then") < script.index('mv -f "$record_tmp" "$RECORD"')
    assert script.rstrip().splitlines()[-1] == 'log "done (version $STARTUP_VERSION)"'
    assert f"RECORD={layout.STARTUP_RECORD}" in script and 'rm -f "$RECORD"' in script


def test_every_apt_run_waits_for_the_dpkg_lock_and_is_retried():
    script = render_startup_script()
    assert 'DPkg::Lock::Timeout "300";' in script.split("/etc/apt/apt.conf.d/90inngest-kit <<'APT'\n", 1)[1].split("\nAPT\n", 1)[0]
    bare = [line for line in script.splitlines() if re.search(r"(^|\s)apt-get\s", line) and "apt_get" not in line and 'apt-get "$@"' not in line and "log " not in line]
    assert bare == []
    assert script.count("apt_get update") == 2 and script.count("apt_get install") == 2


# --- the rendered script, run: stand-ins for the system's tools, a private mount namespace ---------

STANDIN = """#!/bin/bash
# Stand-in for `{name}` (tests only): records its argv, answers as told by the files beside it.
here=$(dirname "$0")
printf '%s\\n' "{name} $*" >> "$here/calls.log"
count_file="$here/{name}.count"; count=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 )); echo "$count" > "$count_file"
case "{name}" in
  apt-get) [ "$count" -le "$(cat "$here/apt-get.failures" 2>/dev/null || echo 0)" ] && { echo "E: Could not get lock /var/lib/dpkg/lock-frontend" >&2; exit 100; } ;;
  curl)
    out=""; previous=""
    for arg in "$@"; do
      case "$arg" in *ops-agent*) echo "curl: (6) Could not resolve host" >&2; exit 6 ;; esac
      [ "$previous" = "-o" ] && out="$arg"; previous="$arg"
    done
    [ -n "$out" ] && echo "stand-in download" > "$out" ;;
  dpkg) echo amd64 ;;
  dpkg-query) exit 1 ;;
  blkid) case "$*" in *UUID*) echo 0f0e0d0c-0000-4000-8000-000000000001 ;; esac ;;
esac
exit 0
"""
TOOLS = ("apt-get", "apt-mark", "curl", "dpkg", "dpkg-query", "blkid", "mkfs.ext4", "mountpoint", "mount", "systemctl", "sleep")


def _namespaces_usable() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _namespaces_usable(), reason="needs root and unshare(1) for a private mount namespace (util-linux); run the suite as root (`sudo make test`)")
def test_the_script_survives_a_busy_dpkg_lock_and_a_failing_ops_agent_and_records_its_version(tmp_path):
    standins = tmp_path / "standins"
    standins.mkdir()
    for name in TOOLS:
        (standins / name).write_text(STANDIN.replace("{name}", name))
        (standins / name).chmod(0o755)
    (standins / "apt-get.failures").write_text("2")  # the lock is busy twice, then free
    device = tmp_path / "google-data"
    device.write_text("")
    script = tmp_path / "startup.sh"
    script.write_text(render_startup_script().replace(f"DATA_DEVICE={layout.DATA_DISK_DEVICE}", f"DATA_DEVICE={device}"))
    for directory in ("etc-upper", "etc-work", "usr-local-upper", "usr-local-work", "run", "srv"):
        (tmp_path / directory).mkdir()
    # Throwaway overlays over every host directory the script writes (/etc, /usr/local for the
    # registry credential helper), so that running it here changes nothing on this machine.
    inside = (
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={tmp_path}/etc-upper,workdir={tmp_path}/etc-work /etc && "
        f"mount -t overlay overlay -o lowerdir=/usr/local,upperdir={tmp_path}/usr-local-upper,workdir={tmp_path}/usr-local-work /usr/local && "
        f"mount --bind {tmp_path}/run /run && mount --bind {tmp_path}/srv /srv && "
        f"PATH={standins}:$PATH exec bash {script}"
    )
    run = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", inside], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    calls = (standins / "calls.log").read_text().splitlines()
    assert sum(call.startswith("apt-get update") for call in calls) == 4  # two refused by the lock, then both updates
    record = (tmp_path / "run" / layout.STARTUP_RECORD.removeprefix("/run/")).read_text()
    assert f"version={startup_script_version()}\n" in record and "ops_agent=failed\n" in record
    unit = tmp_path / "etc-upper" / "systemd" / "system" / layout.SYSTEMD_UNIT
    assert unit.read_text().rstrip("\n") == render_unit().rstrip("\n")
    assert f"systemctl enable {layout.SYSTEMD_UNIT}" in calls and "systemctl restart google-cloud-ops-agent" not in calls
    assert "Ops Agent could not be installed" in run.stdout
    assert 'DPkg::Lock::Timeout "300";' in (tmp_path / "etc-upper" / "apt" / "apt.conf.d" / "90inngest-kit").read_text()


def test_secrets_are_fetched_before_dockerd_starts_at_boot():
    """dockerd starts restart-policy containers as soon as it starts (measured in tests/engine): the
    secrets unit must be ordered before docker.service, and the stack's unit after both."""
    from infra.startup import render_secrets_unit

    secrets_unit = render_secrets_unit()
    assert "Before=docker.service" in secrets_unit and "WantedBy=docker.service" in secrets_unit
    assert f"ExecStart={layout.CURRENT_LINK}/fetch-secrets.sh" in secrets_unit
    assert "After=network-online.target" in secrets_unit and f"RequiresMountsFor={layout.DATA_MOUNT}" in secrets_unit
    unit = render_unit()
    assert f"After=docker.service network-online.target {layout.SECRETS_UNIT}" in unit
    assert "Restart=on-failure" in unit  # compose up can collide with dockerd's own restarts at boot
    script = render_startup_script()
    assert secrets_unit.rstrip("\n") in script
    assert script.index(f"systemctl enable {layout.SECRETS_UNIT}") < script.index(f"systemctl enable {layout.SYSTEMD_UNIT}")
