"""The VM startup script and the systemd unit it installs."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from infra import layout
from infra.startup import COMPOSE_VERSION, DOCKER_VERSION, render_startup_script, render_unit


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
    agent = yaml.safe_load(script.split("/etc/google-cloud-ops-agent/config.yaml <<'YAML'\n", 1)[1].split("\nYAML\n", 1)[0])
    receiver = agent["logging"]["receivers"]["docker_containers"]
    assert receiver["include_paths"] == ["/var/lib/docker/containers/*/*-json.log"]
    assert agent["logging"]["service"]["pipelines"]["docker"]["receivers"] == ["docker_containers"]
    assert "google-cloud-ops-agent" in script
