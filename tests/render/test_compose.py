"""The rendered docker-compose.yml: valid Compose, the right exposure, limits, persistence and mounts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from infra.render import render_stack
from tests.render.conftest import config_with, inputs_for

SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"


def model(files) -> dict:
    return yaml.safe_load(files["docker-compose.yml"])


def published(spec: dict) -> list[str]:
    return [str(port) for port in spec.get("ports", [])]


def test_validates_against_the_compose_specification(files):
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(model(files)), key=str)
    assert errors == []


def test_the_schema_check_catches_a_broken_file(files):
    broken = model(files)
    broken["services"]["app"]["restart"] = ["always"]
    assert list(jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(broken))


def test_project_and_services(files):
    compose = model(files)
    assert compose["name"] == "kit"
    assert set(compose["services"]) == {"caddy", "app", "inngest", "redis"}


def test_only_caddy_is_public_and_inngest_is_on_loopback_only(files):
    services = model(files)["services"]
    assert published(services["caddy"]) == ["80:80", "443:443", "443:443/udp", "127.0.0.1:8290:8290"]
    assert published(services["inngest"]) == ["127.0.0.1:8288:8288"]
    assert published(services["app"]) == []
    assert published(services["redis"]) == []
    every_port = " ".join(port for spec in services.values() for port in published(spec))
    assert "8289" not in every_port
    assert "expose" not in json.dumps(services)


def test_images_are_pinned(files, config):
    services = model(files)["services"]
    assert services["app"]["image"] == "ghcr.io/acme/web:1.4.2"
    assert services["inngest"]["image"] == "inngest/inngest:v1.43.0"
    for spec in services.values():
        repository, _, tag = spec["image"].rpartition(":")
        assert repository and tag and tag != "latest"
        assert tag[0].isdigit() or tag.startswith("v")


def test_app_runs_its_command_through_the_secrets_wrapper(files):
    app = model(files)["services"]["app"]
    assert app["entrypoint"] == ["/bin/sh", "/kit/with-secrets.sh"]
    assert app["command"] == ["node", "dist/server.js"]
    assert app["env_file"] == ["app.env"]
    assert "environment" not in app


def test_a_dollar_in_the_command_reaches_the_app_literally():
    config = config_with(command=["sh", "-c", "exec node server.js --port $PORT"])
    app = model(render_stack(config, inputs_for(config)))["services"]["app"]
    assert app["command"] == ["sh", "-c", "exec node server.js --port $$PORT"]


def test_inngest_starts_from_its_script_with_a_healthcheck_that_needs_no_curl(files):
    inngest = model(files)["services"]["inngest"]
    assert inngest["entrypoint"] == ["/bin/sh", "/kit/start-inngest.sh"]
    assert "command" not in inngest and "environment" not in inngest and "env_file" not in inngest
    assert inngest["healthcheck"]["test"] == ["CMD", "inngest", "alpha", "doctor", "healthcheck", "--skip-connect-gateway"]
    assert inngest["depends_on"] == {"redis": {"condition": "service_healthy"}}


def test_limits_come_from_the_config():
    config = config_with(cpus=0.5, memoryMb=384)
    services = model(render_stack(config, inputs_for(config)))["services"]
    assert (services["app"]["cpus"], services["app"]["mem_limit"]) == (0.5, "384m")
    assert (services["inngest"]["cpus"], services["inngest"]["mem_limit"]) == (1.0, "768m")


def test_every_service_restarts_is_health_checked_and_logs_with_rotation(files):
    for name, spec in model(files)["services"].items():
        assert spec["restart"] == "unless-stopped", name
        assert spec["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        assert spec["logging"]["driver"] == "json-file", name
        assert spec["logging"]["options"]["max-size"] == "10m", name
        assert int(spec["logging"]["options"]["max-file"]) >= 2, name


def test_redis_keeps_an_append_only_file_on_the_data_disk(files):
    redis = model(files)["services"]["redis"]
    assert redis["command"] == ["redis-server", "--appendonly", "yes", "--appendfsync", "everysec"]
    assert redis["volumes"] == ["/srv/kit/redis:/data"]


def test_caddy_keeps_certificates_on_the_data_disk_and_reads_the_current_caddyfile(files):
    caddy = model(files)["services"]["caddy"]
    assert caddy["volumes"] == [
        "/srv/kit/current/Caddyfile:/etc/caddy/Caddyfile:ro",
        "/srv/kit/caddy/data:/data",
        "/srv/kit/caddy/config:/config",
    ]


def test_each_service_mounts_only_its_own_secrets_read_only(files):
    services = model(files)["services"]
    mounts = {name: [v for v in spec.get("volumes", []) if v.startswith("/run/inngest-kit/secrets")] for name, spec in services.items()}
    assert mounts == {
        "caddy": [],
        "app": ["/run/inngest-kit/secrets/app:/run/kit-secrets:ro"],
        "inngest": ["/run/inngest-kit/secrets/inngest:/run/kit-secrets:ro"],
        "redis": [],
    }


@pytest.mark.parametrize("service", ["app", "inngest", "caddy"])
def test_release_files_are_mounted_read_only_through_the_current_link(files, service):
    spec = model(files)["services"][service]
    for volume in spec["volumes"]:
        if volume.startswith("/srv/kit/current/"):
            assert volume.endswith(":ro"), volume
            assert volume.split(":")[0].removeprefix("/srv/kit/current/") in files


def test_no_anchor_or_alias_in_the_yaml(files):
    assert "&id" not in files["docker-compose.yml"] and "*id" not in files["docker-compose.yml"]
