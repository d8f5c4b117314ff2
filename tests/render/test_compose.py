"""The rendered docker-compose.yml: valid Compose, the right exposure, limits, persistence and mounts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from infra.config import ConfigError
from infra.render import render_stack
from tests.render.conftest import config_from, config_with, example_raw, inputs_for

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


def test_redis_keeps_an_append_only_file_on_the_data_disk_never_evicts_and_reads_an_acl_file(files):
    redis = model(files)["services"]["redis"]
    assert redis["command"] == [
        "redis-server",
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--maxmemory", "128mb",  # half of redis.memoryMb (256): room for the AOF rewrite's copy-on-write
        "--maxmemory-policy", "noeviction",
        "--aclfile", "/run/kit-secrets/users.acl",
    ]
    assert redis["volumes"] == ["/srv/kit/redis:/data"]
    assert redis["user"] == "999:1000"


def test_redis_maxmemory_follows_its_memory_limit():
    raw = example_raw()
    raw["inngest-kit:redis"] = {"memoryMb": 1024}
    raw["inngest-kit:vm"] = {**raw["inngest-kit:vm"], "machineType": "e2-medium"}  # room for it: the config checks the sum
    redis = model(render_stack(config_from(raw), inputs_for(config_from(raw))))["services"]["redis"]
    assert redis["mem_limit"] == "1024m"
    assert redis["command"][redis["command"].index("--maxmemory") + 1] == "512mb"


def test_no_password_in_the_compose_model(files):
    # Redis's password reaches Inngest through its secret file; the healthcheck uses a PING-only user.
    redis = model(files)["services"]["redis"]
    assert redis["healthcheck"]["test"] == [
        "CMD-SHELL", "redis-cli --no-auth-warning --user healthcheck --pass healthcheck ping | grep -q PONG",
    ]
    assert "requirepass" not in files["docker-compose.yml"]
    assert "redis://" not in files["docker-compose.yml"]


def test_caddy_keeps_certificates_on_the_data_disk_and_reads_the_current_caddyfile(files):
    caddy = model(files)["services"]["caddy"]
    assert caddy["volumes"] == [
        "/srv/kit/current/Caddyfile:/etc/caddy/Caddyfile:ro",
        "/srv/kit/caddy/data:/data",
        "/srv/kit/caddy/config:/config",
    ]


def test_each_service_mounts_only_its_own_secrets_through_compose_secrets(files):
    compose = model(files)
    assert compose["secrets"] == {
        "app-secrets": {"file": "/var/lib/inngest-kit/secrets/app"},
        "inngest-secrets": {"file": "/var/lib/inngest-kit/secrets/inngest"},
        "redis-secrets": {"file": "/var/lib/inngest-kit/secrets/redis"},
    }
    services = compose["services"]
    assert {name: spec.get("secrets") for name, spec in services.items()} == {
        "caddy": None,
        "app": [{"source": "app-secrets", "target": "/run/kit-secrets"}],
        "inngest": [{"source": "inngest-secrets", "target": "/run/kit-secrets"}],
        "redis": [{"source": "redis-secrets", "target": "/run/kit-secrets"}],
    }
    for name, spec in services.items():
        assert not [v for v in spec.get("volumes", []) if v.startswith("/var/lib/inngest-kit")], name


def test_every_service_is_hardened(files):
    services = model(files)["services"]
    for name, spec in services.items():
        assert spec["security_opt"] == ["no-new-privileges:true"], name
        assert spec["cap_drop"] == ["ALL"], name
    assert {name: spec.get("cap_add") for name, spec in services.items()} == {"caddy": ["NET_BIND_SERVICE"], "app": None, "inngest": None, "redis": None}
    assert {name for name, spec in services.items() if spec.get("read_only")} == {"caddy", "redis"}
    assert services["caddy"]["tmpfs"] == ["/tmp"]


def test_caddy_and_redis_have_limits_from_the_config(files):
    services = model(files)["services"]
    assert (services["caddy"]["cpus"], services["caddy"]["mem_limit"]) == (0.25, "128m")
    assert (services["redis"]["cpus"], services["redis"]["mem_limit"]) == (0.5, "256m")
    raw = example_raw()
    raw["inngest-kit:caddy"] = {"cpus": 0.5, "memoryMb": 200}
    raw["inngest-kit:redis"] = {"cpus": "1", "memoryMb": 512}
    raw["inngest-kit:vm"] = {**raw["inngest-kit:vm"], "machineType": "e2-medium"}  # room for them: the config checks the sum
    services = model(render_stack(config_from(raw), inputs_for(config_from(raw))))["services"]
    assert (services["caddy"]["cpus"], services["caddy"]["mem_limit"]) == (0.5, "200m")
    assert (services["redis"]["cpus"], services["redis"]["mem_limit"]) == (1.0, "512m")


DIGEST = "sha256:" + "ab" * 32


def test_image_digests_from_the_config_pin_each_image():
    raw = example_raw()
    raw["inngest-kit:caddy"] = {"digest": DIGEST}
    raw["inngest-kit:redis"] = {"digest": DIGEST}
    raw["inngest-kit:inngest"] = {**raw.get("inngest-kit:inngest", {}), "digest": DIGEST}
    raw["inngest-kit:app"]["image"] = "ghcr.io/acme/web:1.4.2@" + DIGEST
    services = model(render_stack(config_from(raw), inputs_for(config_from(raw))))["services"]
    assert services["caddy"]["image"] == "caddy:2.11.7-alpine@" + DIGEST
    assert services["redis"]["image"] == "redis:7.4.6-alpine@" + DIGEST
    assert services["inngest"]["image"] == "inngest/inngest:v1.43.0@" + DIGEST
    assert services["app"]["image"] == "ghcr.io/acme/web:1.4.2@" + DIGEST


@pytest.mark.parametrize("section", ["caddy", "redis", "inngest"])
def test_a_malformed_digest_is_refused_naming_the_setting(section):
    raw = example_raw()
    raw[f"inngest-kit:{section}"] = {**raw.get(f"inngest-kit:{section}", {}), "digest": "sha256:short"}
    with pytest.raises(ConfigError) as error:
        config_from(raw)
    assert f"inngest-kit:{section}.digest: 'sha256:short' is not an image digest" in str(error.value)


@pytest.mark.parametrize("service", ["app", "inngest", "caddy"])
def test_release_files_are_mounted_read_only_through_the_current_link(files, service):
    spec = model(files)["services"][service]
    for volume in spec["volumes"]:
        if volume.startswith("/srv/kit/current/"):
            assert volume.endswith(":ro"), volume
            assert volume.split(":")[0].removeprefix("/srv/kit/current/") in files


def test_no_anchor_or_alias_in_the_yaml(files):
    assert "&id" not in files["docker-compose.yml"] and "*id" not in files["docker-compose.yml"]
