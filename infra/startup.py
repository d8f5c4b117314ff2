"""Renders the VM's startup script and the systemd unit it installs (pure)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jinja2
import yaml

from infra import layout
from infra.images import CREDENTIAL_HELPER

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# Pinned Docker Engine and compose plugin (Docker's Debian 12 "bookworm" repository).
DOCKER_VERSION = "5:28.5.2-1~debian.12~bookworm"
COMPOSE_VERSION = "2.40.3-1~debian.12~bookworm"

# docker looks a helper named in `credHelpers` up as docker-credential-<name> on PATH.
CREDENTIAL_HELPER_NAME = f"docker-credential-{CREDENTIAL_HELPER}"

DAEMON_CONFIG = {
    # Containers keep running while dockerd restarts (e.g. an unattended security upgrade).
    "live-restore": True,
    # Rotated JSON files: the Ops Agent reads them and ships them to Cloud Logging. (The gcplogs
    # driver would refuse to start a container whenever Cloud Logging is unreachable.)
    "log-driver": "json-file",
    "log-opts": {"max-size": "10m", "max-file": "5"},
}

# The Ops Agent's log pipeline for container logs: Cloud Logging gets one entry per line.
OPS_AGENT_CONFIG = {
    "logging": {
        "receivers": {
            "docker_containers": {
                "type": "files",
                "include_paths": ["/var/lib/docker/containers/*/*-json.log"],
                "record_log_file_path": True,
            }
        },
        "processors": {
            "docker_json": {"type": "parse_json", "time_key": "time", "time_format": "%Y-%m-%dT%H:%M:%S.%L%z"}
        },
        "service": {"pipelines": {"docker": {"receivers": ["docker_containers"], "processors": ["docker_json"]}}},
    }
}


# apt waits this long for a dpkg lock held by another apt run (unattended-upgrades at first boot)
# instead of failing at once; every apt-get is then retried a few times for transient errors.
APT_CONFIG = 'DPkg::Lock::Timeout "300";\nAcquire::Retries "3";'
APT_ATTEMPTS = 5
APT_RETRY_SECONDS = 10


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_unit() -> str:
    return _environment().get_template("inngest-kit.service.j2").render(
        data_mount=layout.DATA_MOUNT,
        current=layout.CURRENT_LINK,
        compose_project=layout.COMPOSE_PROJECT,
        secrets_unit=layout.SECRETS_UNIT,
        docker_config_dir=layout.DOCKER_CONFIG_DIR,
    )


def render_secrets_unit() -> str:
    """The unit that fills the secrets tmpfs before dockerd starts (and restarts the containers) at boot."""
    return _environment().get_template("inngest-kit-secrets.service.j2").render(data_mount=layout.DATA_MOUNT, current=layout.CURRENT_LINK)


def _render(version: str) -> str:
    return _environment().get_template("startup.sh.j2").render(
        version=version,
        record=layout.STARTUP_RECORD,
        data_device=layout.DATA_DISK_DEVICE,
        data_mount=layout.DATA_MOUNT,
        docker_version=DOCKER_VERSION,
        compose_version=COMPOSE_VERSION,
        apt_config=APT_CONFIG,
        apt_attempts=APT_ATTEMPTS,
        apt_retry_seconds=APT_RETRY_SECONDS,
        daemon_json=json.dumps(DAEMON_CONFIG, indent=2),
        ops_agent_config=yaml.safe_dump(OPS_AGENT_CONFIG, sort_keys=False).rstrip("\n"),
        unit_name=layout.SYSTEMD_UNIT,
        unit=render_unit().rstrip("\n"),
        secrets_unit_name=layout.SECRETS_UNIT,
        secrets_unit=render_secrets_unit().rstrip("\n"),
        credential_helper_name=CREDENTIAL_HELPER_NAME,
        credential_helper=credential_helper().rstrip("\n"),
    )


def credential_helper() -> str:
    """The Docker credential helper for Artifact Registry (templates/docker-credential-gce-metadata.sh)."""
    return (TEMPLATES / f"{CREDENTIAL_HELPER_NAME}.sh").read_text()


def startup_script_version() -> str:
    """The version the script records when it completes: the sha256 of the script as rendered with an
    empty version (a script cannot hold its own hash). Any change to the script changes it."""
    return hashlib.sha256(_render("").encode()).hexdigest()


def render_startup_script() -> str:
    return _render(startup_script_version())
